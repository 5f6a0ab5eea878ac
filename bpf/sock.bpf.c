// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sock.bpf.c - socket-level load balancing (cgroup v2 sock_addr hooks and
 * one sockops program).
 *
 * connect4/6 and sendmsg4/6 send a socket addressing VIP:port straight to
 * a backend picked from the datapath's Maglev table; recvmsg4/6 and
 * getpeername4/6 show the VIP again. sock_health_ops tells passive
 * outlier detection how each balanced TCP connect() ended. Userspace
 * loads this object with the datapath's maps (services, maglev, backends,
 * svc_stats, backend_health, ...) reused, so both paths serve the same
 * services with the same weights and health. See lib/sock_lb.h and
 * lib/sock_health.h for the rules.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/sock_lb.h"
#include "lib/sock_health.h"

SEC("cgroup/connect4")
int sock_connect4(struct bpf_sock_addr *ctx)
{
	return sock_lb_xlate(ctx, false, true);
}

SEC("cgroup/connect6")
int sock_connect6(struct bpf_sock_addr *ctx)
{
	return sock_lb_xlate(ctx, true, true);
}

SEC("cgroup/sendmsg4")
int sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_lb_xlate(ctx, false, false);
}

SEC("cgroup/sendmsg6")
int sock_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock_lb_xlate(ctx, true, false);
}

SEC("cgroup/recvmsg4")
int sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	return sock_lb_revnat(ctx, false, SLUICE_SOCK_CNT_RECVMSG);
}

SEC("cgroup/recvmsg6")
int sock_recvmsg6(struct bpf_sock_addr *ctx)
{
	return sock_lb_revnat(ctx, true, SLUICE_SOCK_CNT_RECVMSG);
}

SEC("cgroup/getpeername4")
int sock_peername4(struct bpf_sock_addr *ctx)
{
	return sock_lb_revnat(ctx, false, SLUICE_SOCK_CNT_PEERNAME);
}

SEC("cgroup/getpeername6")
int sock_peername6(struct bpf_sock_addr *ctx)
{
	return sock_lb_revnat(ctx, true, SLUICE_SOCK_CNT_PEERNAME);
}

SEC("sockops")
int sock_health_ops(struct bpf_sock_ops *ops)
{
	switch (ops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		sock_health_on_connect(ops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		sock_health_on_established(ops);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		sock_health_on_state(ops);
		break;
	case BPF_SOCK_OPS_RTO_CB:
		sock_health_on_rto(ops);
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
