/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sock_health.h - the socket path's signals for passive outlier
 * detection (lib/health.h has the rules): a sockops program watches how
 * each TCP connect() the socket LB balanced ends. Such a socket has an
 * sk_origin entry naming its service and backend, as long as it still
 * talks to that backend (a socket may connect() again elsewhere).
 *
 *  - established (ACTIVE_ESTABLISHED): success;
 *  - SYN_SENT -> CLOSE: failure when sk_err says the backend or the way
 *    to it failed (ECONNREFUSED, i.e. RST or ICMP port unreachable:
 *    SOCK_REFUSED; ETIMEDOUT: SOCK_TIMEOUT; EHOSTUNREACH, ENETUNREACH:
 *    SOCK_ERROR). The client's own abort (close() or shutdown in
 *    SYN_SENT: happy eyeballs, dial timeouts, Ctrl-C; sk_err 0 or
 *    ECONNRESET) says nothing about the backend and is not counted;
 *  - a retransmission timeout while in SYN_SENT: SOCK_TIMEOUT at the
 *    first RTO (1 s), so a blackholed backend counts long before the
 *    kernel gives up; the close that may follow is the same failure
 *    (SLUICE_SKO_F_FAIL_COUNTED).
 *
 * The STATE and RTO callbacks are asked for at TCP_CONNECT_CB, OR-ed into
 * the socket's flags: telemetry and the redirect attach sockops programs
 * of their own to the same cgroup, and cgroup links run them all.
 * Sockops socket storage: 5.3; bpf_skc_to_tcp_sock(): 5.9.
 */
#ifndef SLUICE_BPF_SOCK_HEALTH_H
#define SLUICE_BPF_SOCK_HEALTH_H

#include "common.h"
#include "maps.h"
#include "health.h"
#include "sockaddr.h"

#define SOCK_HEALTH_CB_FLAGS (BPF_SOCK_OPS_STATE_CB_FLAG | BPF_SOCK_OPS_RTO_CB_FLAG)

/* The socket LB's record of this socket's connect(), while the socket
 * talks to the backend it was sent to. */
static __always_inline struct sluice_sk_origin *sock_health_origin(struct bpf_sock_ops *ops)
{
	__u32 laddr[4] = {}, raddr[4] = {};
	struct bpf_sock *sk = ops->sk;
	struct sluice_sk_origin *o;
	__u32 family;
	__u8 fam;

	if (!sk)
		return NULL;
	o = bpf_sk_storage_get(&sk_origin, sk, NULL, 0);
	if (!o || !o->backend_id)
		return NULL;
	family = sockaddr_of_sockops(ops, laddr, raddr);
	if (family == AF_INET) {
		fam = SLUICE_AF_INET;
	} else if (family == AF_INET6) {
		fam = SLUICE_AF_INET6;
		if (sockaddr_is_v4mapped(raddr)) {
			sockaddr_unmap_v4(raddr);
			fam = SLUICE_AF_INET;
		}
	} else {
		return NULL;
	}
	if (o->family != fam || o->port != bpf_htons(sockaddr_remote_port(ops->remote_port)) ||
	    !sockaddr_eq(o->addr, raddr))
		return NULL;
	return o;
}

static __always_inline int sock_health_sk_err(struct bpf_sock_ops *ops)
{
	struct bpf_sock *sk = ops->sk;
	struct tcp_sock *tp = sk ? bpf_skc_to_tcp_sock(sk) : NULL;

	/* set before tcp_done() moves the socket to CLOSE */
	return tp ? tp->inet_conn.icsk_inet.sk.sk_err : 0;
}

/* Does this sk_err of a connect() that ended in SYN_SENT blame the
 * backend (or the path to it) rather than the client? */
static __always_inline bool sock_health_err_is_backend(int err)
{
	return err == ECONNREFUSED || err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH;
}

static __always_inline __u8 sock_health_reason(int err)
{
	if (err == ECONNREFUSED)
		return SLUICE_HEALTH_R_SOCK_REFUSED;
	if (err == ETIMEDOUT)
		return SLUICE_HEALTH_R_SOCK_TIMEOUT;
	return SLUICE_HEALTH_R_SOCK_ERROR;
}

/* A failure of this connect(), counted once. */
static __always_inline void sock_health_fail(struct sluice_sk_origin *o, __u8 reason)
{
	if (o->hflags & SLUICE_SKO_F_FAIL_COUNTED)
		return;
	o->hflags |= SLUICE_SKO_F_FAIL_COUNTED;
	health_fail(o->svc_id, o->backend_id, reason, bpf_ktime_get_ns());
}

static __always_inline void sock_health_on_connect(struct bpf_sock_ops *ops)
{
	struct sluice_sk_origin *o = sock_health_origin(ops);

	if (!o)
		return;
	if (o->hflags)
		o->hflags = 0; /* a new attempt of this socket */
	bpf_sock_ops_cb_flags_set(ops, ops->bpf_sock_ops_cb_flags | SOCK_HEALTH_CB_FLAGS);
}

static __always_inline void sock_health_on_state(struct bpf_sock_ops *ops)
{
	struct sluice_sk_origin *o;
	int err;

	/* args: old state, new state */
	if (ops->args[0] != BPF_TCP_SYN_SENT || ops->args[1] != BPF_TCP_CLOSE)
		return;
	err = sock_health_sk_err(ops);
	if (!sock_health_err_is_backend(err))
		return;
	o = sock_health_origin(ops);
	if (o)
		sock_health_fail(o, sock_health_reason(err));
}

static __always_inline void sock_health_on_rto(struct bpf_sock_ops *ops)
{
	struct sluice_sk_origin *o;

	if (ops->state != BPF_TCP_SYN_SENT)
		return;
	o = sock_health_origin(ops);
	if (o)
		sock_health_fail(o, SLUICE_HEALTH_R_SOCK_TIMEOUT);
}

static __always_inline void sock_health_on_established(struct bpf_sock_ops *ops)
{
	struct sluice_sk_origin *o = sock_health_origin(ops);

	if (o)
		health_success(o->svc_id, o->backend_id, bpf_ktime_get_ns());
}

#endif /* SLUICE_BPF_SOCK_HEALTH_H */
