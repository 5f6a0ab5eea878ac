/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sock_lb.h - load balancing at the socket: connect()/sendmsg() to VIP:port
 * is rewritten to a backend chosen from the service's Maglev table (the
 * datapath's own maps, so weights and draining are the same), and
 * recvmsg()/getpeername() are rewritten back to the VIP. The packets then
 * carry the backend address from the start: no conntrack, no per-packet NAT.
 *
 * The flow hash is the socket cookie instead of the (not yet known)
 * 5-tuple: every connect() is a new pick, and an unconnected UDP socket
 * keeps talking to one backend per service, which keeps request/response
 * protocols (DNS) on one backend and the reverse map small.
 */
#ifndef SLUICE_BPF_SOCK_LB_H
#define SLUICE_BPF_SOCK_LB_H

#include "common.h"
#include "maps.h"
#include "lb.h"
#include "policy.h"
#include "stats.h"
#include "counters.h"
#include "sockaddr.h"
#include "sock_maps.h"

#define SYS_REJECT 0
#define SYS_PROCEED 1

/* Load-time knobs, SLUICE_SOCK_CFG_*. */
const volatile __u32 sock_cfg = 0;

/* A socket address as the hooks see it, IPv4-mapped IPv6 normalized to
 * IPv4 (mapped remembers how to write it back). */
struct sock_ep {
	__u32 addr[4];
	__u16 port;
	__u8 family;
	bool mapped;
};

static __always_inline void sock_count(enum sluice_sock_counter c)
{
	counter_add(&sock_counters, c, 1);
}

/* user_ip4/user_ip6/user_port: the destination for connect/sendmsg, the
 * source for recvmsg, the peer for getpeername. @v6 is a constant at every
 * call site, so v4 hooks never touch the v6 fields (the verifier refuses). */
static __always_inline void sock_ep_read(struct bpf_sock_addr *ctx, bool v6, struct sock_ep *ep)
{
	__builtin_memset(ep, 0, sizeof(*ep));
	ep->port = (__u16)ctx->user_port;
	if (!v6) {
		ep->family = SLUICE_AF_INET;
		ep->addr[0] = ctx->user_ip4;
		return;
	}
	ep->addr[0] = ctx->user_ip6[0];
	ep->addr[1] = ctx->user_ip6[1];
	ep->addr[2] = ctx->user_ip6[2];
	ep->addr[3] = ctx->user_ip6[3];
	ep->family = SLUICE_AF_INET6;
	if (sockaddr_is_v4mapped(ep->addr)) {
		sockaddr_unmap_v4(ep->addr);
		ep->family = SLUICE_AF_INET;
		ep->mapped = true;
	}
}

/* Write addr:port (family of @ep) back in the form the socket uses. */
static __always_inline void sock_ep_write(struct bpf_sock_addr *ctx, bool v6,
					  const struct sock_ep *ep, const __u32 *addr, __u16 port)
{
	if (!v6) {
		ctx->user_ip4 = addr[0];
	} else if (ep->mapped) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = addr[0];
	} else {
		ctx->user_ip6[0] = addr[0];
		ctx->user_ip6[1] = addr[1];
		ctx->user_ip6[2] = addr[2];
		ctx->user_ip6[3] = addr[3];
	}
	ctx->user_port = port;
}

/* Remember backend -> VIP for this socket. Returns true when the entry is
 * new: a connect() always is; a datagram only for the socket's first one
 * to this backend, so `flows` counts sockets, not datagrams. */
static __always_inline bool sock_nat_record(__u64 cookie, const struct sluice_backend *be,
					    const struct sock_ep *vip, __u32 svc_id,
					    bool is_connect)
{
	struct sluice_sock_nat_key key = {
		.cookie = cookie,
		.port = be->port,
		.family = be->family,
	};
	struct sluice_sock_nat val = {
		.port = vip->port,
		.svc_id = svc_id,
	};
	struct sluice_sock_nat *old;

	__builtin_memcpy(key.addr, be->addr, sizeof(key.addr));
	__builtin_memcpy(val.addr, vip->addr, sizeof(val.addr));
	if (!is_connect) {
		old = bpf_map_lookup_elem(&sock_nat, &key);
		if (old && old->svc_id == svc_id && old->port == val.port &&
		    sockaddr_eq(old->addr, val.addr))
			return false;
	}
	/* LRU: never fails for lack of room, evicts the oldest instead. */
	bpf_map_update_elem(&sock_nat, &key, &val, BPF_ANY);
	return true;
}

/*
 * TCP connect(): keep the VIP the client asked for with the socket
 * (sk_origin), so telemetry credits that VIP's service even when the
 * backend serves others too. UDP is left out: telemetry follows TCP
 * only, and resolvers connect() a UDP socket per query. Best effort:
 * without memory the socket is attributed by its backend address.
 */
static __always_inline void sock_origin_record(struct bpf_sock_addr *ctx, const struct sock_ep *vip,
					       const struct sluice_backend *be, __u32 svc_id,
					       __u32 backend_id)
{
	struct bpf_sock *sk = ctx->sk;
	struct sluice_sk_origin *o;

	if (!sk)
		return;
	o = bpf_sk_storage_get(&sk_origin, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!o)
		return;
	__builtin_memcpy(o->vip, vip->addr, sizeof(o->vip));
	__builtin_memcpy(o->addr, be->addr, sizeof(o->addr));
	o->vip_port = vip->port;
	o->port = be->port;
	o->svc_id = svc_id;
	o->backend_id = backend_id;
	o->family = vip->family;
}

/*
 * sock_policy() - the access policy (#15) at connect()/sendmsg() to the
 * service @svc (its entry in `services`). The client is the socket's bound address and port
 * (bind() before connect(), or an earlier connect()/sendmsg() that
 * bound it); an unbound socket has no source yet (the route picks it
 * after this hook). Return: 0 to balance, -1 to leave the socket alone
 * (policy applies but the source, or a port the verdict depends on, is
 * unknown: the packet path checks the real source on the first packet),
 * or 1 when denied (the caller rejects with EPERM).
 */
static __noinline int sock_policy(struct bpf_sock_addr *ctx, bool v6, const struct sock_ep *ep,
				  const struct sluice_svc *svc)
{
	__u32 flags = svc->flags;
	struct sluice_ct_key t = {};
	struct bpf_sock *sk = ctx->sk;
	int r;

	if (!(flags & SLUICE_SVC_F_POLICY) && !policy_node_any(ep->family))
		return 0;
	if (!sk)
		return -1;
	t.family = ep->family;
	if (!v6) {
		t.saddr[0] = sk->src_ip4;
	} else if (ep->mapped) {
		if (sk->src_ip6[2] != bpf_htonl(0xffff))
			return -1;
		t.saddr[0] = sk->src_ip6[3];
	} else {
		t.saddr[0] = sk->src_ip6[0];
		t.saddr[1] = sk->src_ip6[1];
		t.saddr[2] = sk->src_ip6[2];
		t.saddr[3] = sk->src_ip6[3];
	}
	if (!t.saddr[0] && !t.saddr[1] && !t.saddr[2] && !t.saddr[3])
		return -1;
	t.sport = bpf_htons((__u16)sk->src_port);
	r = policy_sock_denies(&t, svc->svc_id, flags, svc->policy_lens);
	return r < 0 ? -1 : r > 0;
}

/**
 * sock_lb_xlate() - connect/sendmsg: VIP:port -> backend.
 *
 * Returns SYS_PROCEED (with the destination rewritten when it was a
 * service) or SYS_REJECT with -ECONNREFUSED as the syscall's error when
 * the service has no backends.
 */
static __always_inline int sock_lb_xlate(struct bpf_sock_addr *ctx, bool v6, bool is_connect)
{
	struct sluice_svc_key skey = {};
	struct sluice_ct_key hkey = {};
	struct sluice_backend *be;
	struct sluice_svc *svc;
	__u32 backend_id = 0;
	struct sock_ep ep;
	__u8 proto;
	__u64 cookie;

	proto = ctx->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return SYS_PROCEED;
	if (proto == IPPROTO_UDP && (sock_cfg & SLUICE_SOCK_CFG_NO_UDP))
		return SYS_PROCEED;

	sock_ep_read(ctx, v6, &ep);
	__builtin_memcpy(skey.addr, ep.addr, sizeof(skey.addr));
	skey.port = ep.port;
	skey.proto = proto;
	skey.family = ep.family;
	svc = bpf_map_lookup_elem(&services, &skey);
	if (!svc || (svc->flags & SLUICE_SVC_F_VIP_MARKER))
		return SYS_PROCEED;

	switch (sock_policy(ctx, v6, &ep, svc)) {
	case 1:
		sock_count(SLUICE_SOCK_CNT_POLICY_DENIED);
		bpf_set_retval(-EPERM);
		return SYS_REJECT;
	case -1:
		sock_count(SLUICE_SOCK_CNT_POLICY_DEFER);
		return SYS_PROCEED;
	}

	if (!svc->backend_count) {
		if (sock_cfg & SLUICE_SOCK_CFG_NO_REFUSE)
			return SYS_PROCEED;
		sock_count(SLUICE_SOCK_CNT_REFUSED);
		stats_svc_refused(svc->svc_id);
		/* Without it, returning SYS_REJECT reads as EPERM. */
		bpf_set_retval(-ECONNREFUSED);
		return SYS_REJECT;
	}

	cookie = bpf_get_socket_cookie(ctx);
	hkey.saddr[0] = (__u32)cookie;
	hkey.saddr[1] = (__u32)(cookie >> 32);
	__builtin_memcpy(hkey.daddr, ep.addr, sizeof(hkey.daddr));
	hkey.dport = ep.port;
	hkey.proto = proto;
	hkey.family = ep.family;
	if (svc->flags & SLUICE_SVC_F_AFFINITY)
		be = aff_pick_netns(ctx, svc, &hkey, &backend_id);
	else
		be = lb_pick(svc->svc_id, &hkey, &backend_id, true);
	if (!be || be->family != ep.family) {
		/* A removal raced with us: the packet path decides instead. */
		sock_count(SLUICE_SOCK_CNT_NO_BACKEND);
		return SYS_PROCEED;
	}

	if (sock_nat_record(cookie, be, &ep, svc->svc_id, is_connect))
		stats_flow(svc->svc_id, backend_id);
	if (is_connect && proto == IPPROTO_TCP)
		sock_origin_record(ctx, &ep, be, svc->svc_id, backend_id);
	sock_count(is_connect ? SLUICE_SOCK_CNT_CONNECT : SLUICE_SOCK_CNT_SENDMSG);
	sock_ep_write(ctx, v6, &ep, be->addr, be->port);
	return SYS_PROCEED;
}

/* recvmsg/getpeername: backend -> VIP:port for sockets sock_lb_xlate()
 * rewrote; others are left alone. These hooks must return SYS_PROCEED. */
static __always_inline int sock_lb_revnat(struct bpf_sock_addr *ctx, bool v6,
					  enum sluice_sock_counter c)
{
	struct sluice_sock_nat_key key = {};
	struct sluice_sock_nat *nat;
	struct sock_ep ep;

	sock_ep_read(ctx, v6, &ep);
	key.cookie = bpf_get_socket_cookie(ctx);
	__builtin_memcpy(key.addr, ep.addr, sizeof(key.addr));
	key.port = ep.port;
	key.family = ep.family;
	nat = bpf_map_lookup_elem(&sock_nat, &key);
	if (!nat)
		return SYS_PROCEED;
	sock_ep_write(ctx, v6, &ep, nat->addr, nat->port);
	sock_count(c);
	return SYS_PROCEED;
}

#endif /* SLUICE_BPF_SOCK_LB_H */
