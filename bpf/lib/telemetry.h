/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * telemetry.h - helpers of the connection telemetry sockops program:
 * reading a socket's ends, deciding whether it talks to a service,
 * failure reasons, and writing records to the ring buffer with loss
 * accounting. Included by telemetry.bpf.c only.
 *
 * A socket is tracked when
 *  - outbound: at connect(), the socket LB sent it from a VIP to a
 *    backend (sk_origin: the VIP's service and the backend it picked), or
 *    its peer is a service VIP:port (services map; the backend is then
 *    read from conntrack once the datapath has balanced the SYN) or a
 *    backend address:port (telem_endpoints: a client dialling a backend);
 *  - inbound: at accept, its own address:port is a backend's.
 *
 * Attribution follows the VIP the client used: one backend address:port
 * may serve several services, and telem_endpoints names only one of them
 * (the lowest backend id). Inbound, the VIP comes from a client on this
 * node (telem_peers, noted at its connect()) or from this node's
 * conntrack. telem_endpoints is the last resort, for connections whose
 * VIP this node never saw.
 */
#ifndef SLUICE_BPF_TELEMETRY_H
#define SLUICE_BPF_TELEMETRY_H

#include "common.h"
#include "counters.h"
#include "maps.h"
#include "sockaddr.h"
#include "telemetry_maps.h"

/* Callbacks a tracked socket needs: close/failure, RTT samples (also the
 * clock of periodic records), retransmitted segments and timeouts. */
#define TELEM_CB_FLAGS                                                                          \
	(BPF_SOCK_OPS_STATE_CB_FLAG | BPF_SOCK_OPS_RTT_CB_FLAG | BPF_SOCK_OPS_RETRANS_CB_FLAG | \
	 BPF_SOCK_OPS_RTO_CB_FLAG)

enum telem_sk_state {
	TELEM_SK_DONE = 0,       /* reported, or not ours any more */
	TELEM_SK_CONNECTING = 1, /* SYN sent */
	TELEM_SK_OPEN = 2,       /* established, OPEN reported */
};

/* Load-time knobs: records for open connections at most this often
 * (0 = only OPEN and CLOSE), SLUICE_TELEM_CFG_* flags. */
const volatile __u64 telem_interval_ns = 0;
const volatile __u32 telem_cfg = 0;
/* Wake the reader only once this many bytes wait in the ring (0: every
 * record). A wakeup per record costs the reader more CPU than the record
 * itself; the reader also drains the ring on a short timer
 * (TELEMETRY_DRAIN_MS), so a lone record waits at most that long. */
const volatile __u64 telem_wakeup_bytes = 0;

struct telem_tuple {
	__u32 laddr[4];
	__u32 raddr[4];
	__u16 lport; /* host byte order */
	__u16 rport; /* host byte order */
	__u8 family; /* SLUICE_AF_* */
};

static __always_inline void telem_count(enum sluice_telem_counter c)
{
	counter_add(&telem_counters, c, 1);
}

/* The socket's ends; a dual-stack socket talking IPv4 reads as IPv4, so
 * it matches the IPv4 services and backends. */
static __always_inline bool telem_tuple_read(struct bpf_sock_ops *ops, struct telem_tuple *t)
{
	__u32 family;

	__builtin_memset(t, 0, sizeof(*t));
	family = sockaddr_of_sockops(ops, t->laddr, t->raddr);
	if (family == AF_INET) {
		t->family = SLUICE_AF_INET;
	} else if (family == AF_INET6) {
		t->family = SLUICE_AF_INET6;
		if (sockaddr_is_v4mapped(t->raddr)) {
			sockaddr_unmap_v4(t->laddr);
			sockaddr_unmap_v4(t->raddr);
			t->family = SLUICE_AF_INET;
		}
	} else {
		return false;
	}
	t->lport = ops->local_port;
	t->rport = sockaddr_remote_port(ops->remote_port);
	return true;
}

static __always_inline bool telem_endpoint(const __u32 addr[4], __u16 port, __u8 family,
					   struct sluice_telem_ep *out)
{
	struct sluice_telem_ep_key key = {};
	struct sluice_telem_ep *ep;

	__builtin_memcpy(key.addr, addr, sizeof(key.addr));
	key.port = bpf_htons(port);
	key.family = family;
	ep = bpf_map_lookup_elem(&telem_endpoints, &key);
	if (!ep)
		return false;
	*out = *ep;
	return true;
}

/*
 * The socket LB's record of what this socket's connect() asked for, as
 * long as the socket still talks to the backend it was sent to (a socket
 * may connect() again elsewhere after a failure; a connect() straight to
 * that same backend afterwards still counts for the VIP).
 */
static __always_inline bool telem_origin(struct bpf_sock_ops *ops, const struct telem_tuple *t,
					 struct sluice_telem_ep *ep)
{
	struct bpf_sock *sk = ops->sk;
	struct sluice_sk_origin *o;

	if (!sk)
		return false;
	o = bpf_sk_storage_get(&sk_origin, sk, NULL, 0);
	if (!o || o->family != t->family || o->port != bpf_htons(t->rport) ||
	    !sockaddr_eq(o->addr, t->raddr))
		return false;
	ep->svc_id = o->svc_id;
	ep->backend_id = o->backend_id;
	return true;
}

/* The accepting side's key of this outbound socket's connection. */
static __always_inline void telem_peer_key(const struct telem_tuple *t,
					   struct sluice_telem_peer_key *key)
{
	__builtin_memset(key, 0, sizeof(*key));
	__builtin_memcpy(key->laddr, t->raddr, sizeof(key->laddr));
	__builtin_memcpy(key->raddr, t->laddr, sizeof(key->raddr));
	key->lport = bpf_htons(t->rport);
	key->rport = bpf_htons(t->lport);
	key->family = t->family;
}

/* Outbound through the socket LB: tell a backend on this node, which
 * sees only the backend address, which VIP the client used. */
static __always_inline void telem_peer_note(const struct telem_tuple *t,
					    const struct sluice_telem_ep *ep)
{
	struct sluice_telem_peer_key key;

	telem_peer_key(t, &key);
	/* LRU: never fails for lack of room, evicts the oldest instead */
	bpf_map_update_elem(&telem_peers, &key, ep, BPF_ANY);
}

/* Inbound: what a client on this node noted for this connection. */
static __always_inline bool telem_peer_take(const struct telem_tuple *t, struct sluice_telem_ep *ep)
{
	struct sluice_telem_peer_key key = {};
	struct sluice_telem_ep *noted;

	__builtin_memcpy(key.laddr, t->laddr, sizeof(key.laddr));
	__builtin_memcpy(key.raddr, t->raddr, sizeof(key.raddr));
	key.lport = bpf_htons(t->lport);
	key.rport = bpf_htons(t->rport);
	key.family = t->family;
	noted = bpf_map_lookup_elem(&telem_peers, &key);
	if (!noted)
		return false;
	*ep = *noted;
	bpf_map_delete_elem(&telem_peers, &key);
	return true;
}

/* Outbound: peer is a VIP:port (via_vip set, backend from conntrack
 * later) or a backend address:port. */
static __always_inline bool telem_classify_outbound(const struct telem_tuple *t,
						    struct sluice_telem_ep *ep, __u8 *via_vip)
{
	struct sluice_svc_key key = {};
	struct sluice_svc *svc;

	__builtin_memcpy(key.addr, t->raddr, sizeof(key.addr));
	key.port = bpf_htons(t->rport);
	key.proto = IPPROTO_TCP;
	key.family = t->family;
	svc = bpf_map_lookup_elem(&services, &key);
	if (svc && !(svc->flags & SLUICE_SVC_F_VIP_MARKER)) {
		ep->svc_id = svc->svc_id;
		ep->backend_id = 0;
		*via_vip = 1;
		return true;
	}
	*via_vip = 0;
	return telem_endpoint(t->raddr, t->rport, t->family, ep);
}

/* A flow is in ct_new until the client's last handshake ACK crossed the
 * datapath, which may be after the socket saw the handshake complete. */
static __always_inline struct sluice_ct_entry *telem_ct_lookup(const struct sluice_ct_key *key)
{
	struct sluice_ct_entry *ct = bpf_map_lookup_elem(&conntrack, key);

	return ct ? ct : bpf_map_lookup_elem(&ct_new, key);
}

/* The backend the datapath chose for a connection to a VIP, from its
 * forward conntrack entry; 0 when this node did not balance it. */
static __always_inline __u32 telem_ct_backend(const struct telem_tuple *t)
{
	struct sluice_ct_key key = {};
	struct sluice_ct_entry *ct;

	__builtin_memcpy(key.saddr, t->laddr, sizeof(key.saddr));
	__builtin_memcpy(key.daddr, t->raddr, sizeof(key.daddr));
	key.sport = bpf_htons(t->lport);
	key.dport = bpf_htons(t->rport);
	key.proto = IPPROTO_TCP;
	key.family = t->family;
	key.dir = SLUICE_CT_FWD;
	ct = telem_ct_lookup(&key);
	return ct ? ct->backend_id : 0;
}

/*
 * Inbound at a backend: when this node's datapath balanced the
 * connection, its conntrack REPLY entry (backend -> client, exactly this
 * socket's ends) holds the service whose VIP the client used. Otherwise
 * @ep keeps what the backend's address alone says.
 */
static __always_inline void telem_ct_inbound(const struct telem_tuple *t,
					     struct sluice_telem_ep *ep)
{
	struct sluice_ct_key key = {};
	struct sluice_ct_entry *ct;

	__builtin_memcpy(key.saddr, t->laddr, sizeof(key.saddr));
	__builtin_memcpy(key.daddr, t->raddr, sizeof(key.daddr));
	key.sport = bpf_htons(t->lport);
	key.dport = bpf_htons(t->rport);
	key.proto = IPPROTO_TCP;
	key.family = t->family;
	key.dir = SLUICE_CT_REPLY;
	ct = telem_ct_lookup(&key);
	if (!ct || !ct->svc_id)
		return;
	ep->svc_id = ct->svc_id;
	ep->backend_id = ct->backend_id;
}

static __always_inline struct tcp_sock *telem_tcp_sock(struct bpf_sock_ops *ops)
{
	struct bpf_sock *sk = ops->sk;

	return sk ? bpf_skc_to_tcp_sock(sk) : NULL;
}

static __always_inline int telem_sk_err(struct bpf_sock_ops *ops)
{
	struct tcp_sock *tp = telem_tcp_sock(ops);

	/* the kernel sets sk_err before tcp_done() moves the socket to CLOSE */
	return tp ? tp->inet_conn.icsk_inet.sk.sk_err : 0;
}

/*
 * Payload bytes. The socket's bytes_acked and bytes_received count
 * sequence space, so SYN and FIN add one each. Sent: what was acked past
 * the handshake (acked_base), but never more than the unique payload sent
 * (bytes_sent - bytes_retrans), which drops our FIN. Received: minus the
 * peer's FIN once it arrived (SOCK_DONE, set by tcp_fin() only).
 */
static __always_inline void telem_payload(struct bpf_sock_ops *ops, const struct telem_sk *st,
					  __u64 *sent, __u64 *received)
{
	struct tcp_sock *tp = telem_tcp_sock(ops);
	__u64 acked = ops->bytes_acked - st->acked_base, rcvd = ops->bytes_received, unique;

	if (tp) {
		unique = tp->bytes_sent - tp->bytes_retrans;
		if (acked > unique)
			acked = unique;
		if (rcvd && (tp->inet_conn.icsk_inet.sk.__sk_common.skc_flags & (1UL << SOCK_DONE)))
			rcvd--;
	}
	*sent = acked;
	*received = rcvd;
}

static __always_inline __u8 telem_fail_reason(int err)
{
	switch (err) {
	case 0:
		return SLUICE_TELEM_REASON_ABORTED;
	case ECONNREFUSED:
		return SLUICE_TELEM_REASON_REFUSED;
	case ETIMEDOUT:
		return SLUICE_TELEM_REASON_TIMEOUT;
	case EHOSTUNREACH:
	case ENETUNREACH:
		return SLUICE_TELEM_REASON_UNREACHABLE;
	default:
		return SLUICE_TELEM_REASON_ERROR;
	}
}

static __always_inline __u8 telem_close_reason(int err)
{
	if (err == ECONNRESET || err == EPIPE)
		return SLUICE_TELEM_REASON_RESET;
	return err ? SLUICE_TELEM_REASON_ERROR : SLUICE_TELEM_REASON_NONE;
}

static __always_inline void telem_fill(struct sluice_telem_rec *rec, struct bpf_sock_ops *ops,
				       const struct telem_tuple *t, const struct telem_sk *st,
				       __u64 now)
{
	__u64 acked, received;

	telem_payload(ops, st, &acked, &received);
	rec->cookie = bpf_get_socket_cookie(ops);
	rec->start_ns = st->start_ns;
	rec->ts_ns = now;
	rec->bytes_acked = acked;
	rec->bytes_received = received;
	rec->d_bytes_acked = acked - st->rep_acked;
	rec->d_bytes_received = received - st->rep_received;
	__builtin_memcpy(rec->laddr, t->laddr, sizeof(rec->laddr));
	__builtin_memcpy(rec->raddr, t->raddr, sizeof(rec->raddr));
	rec->lport = t->lport;
	rec->rport = t->rport;
	rec->svc_id = st->svc_id;
	rec->backend_id = st->backend_id;
	rec->segs_in = ops->segs_in;
	rec->segs_out = ops->segs_out;
	rec->retrans = st->retrans;
	rec->d_retrans = st->retrans - st->rep_retrans;
	rec->rtos = st->rtos;
	rec->d_rtos = st->rtos - st->rep_rtos;
	rec->srtt_us = ops->srtt_us >> 3; /* the kernel keeps srtt << 3 */
	rec->srtt_min_us = st->srtt_min_us;
	rec->dir = st->dir;
	rec->family = t->family;
}

/*
 * Writes one record. The state's "reported" totals only advance when the
 * record reached the ring, so a lost UPDATE's deltas ride on the next
 * record; the loss itself is counted per CPU.
 */
static __always_inline void telem_emit(struct bpf_sock_ops *ops, struct telem_sk *st, __u8 type,
				       __u8 reason)
{
	struct sluice_telem_rec *rec;
	struct telem_tuple t;
	__u64 now = bpf_ktime_get_ns();

	if (!telem_tuple_read(ops, &t))
		return;
	rec = bpf_ringbuf_reserve(&telem_events, sizeof(*rec), 0);
	if (!rec) {
		telem_count(SLUICE_TELEM_CNT_LOST);
		return;
	}
	telem_fill(rec, ops, &t, st, now);
	rec->type = type;
	rec->reason = reason;
	st->rep_acked = rec->bytes_acked;
	st->rep_received = rec->bytes_received;
	st->rep_retrans = rec->retrans;
	st->rep_rtos = rec->rtos;
	st->last_ns = now;
	if (telem_wakeup_bytes &&
	    bpf_ringbuf_query(&telem_events, BPF_RB_AVAIL_DATA) < telem_wakeup_bytes)
		bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	else
		bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP);
	telem_count(SLUICE_TELEM_CNT_RECORDS);
}

static __always_inline void telem_track_srtt(struct telem_sk *st, __u32 srtt_us)
{
	if (srtt_us && (!st->srtt_min_us || srtt_us < st->srtt_min_us))
		st->srtt_min_us = srtt_us;
}

/* Start tracking: fresh state (a socket may connect() again after a
 * failure), callbacks on. */
static __always_inline struct telem_sk *telem_start(struct bpf_sock_ops *ops,
						    const struct sluice_telem_ep *ep, __u8 dir,
						    __u8 via_vip, __u8 state)
{
	struct bpf_sock *sk = ops->sk;
	struct telem_sk *st;

	if (!sk)
		return NULL;
	st = bpf_sk_storage_get(&telem_sk, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		telem_count(SLUICE_TELEM_CNT_NO_STORAGE);
		return NULL;
	}
	__builtin_memset(st, 0, sizeof(*st));
	st->start_ns = bpf_ktime_get_ns();
	st->last_ns = st->start_ns;
	st->svc_id = ep->svc_id;
	st->backend_id = ep->backend_id;
	st->dir = dir;
	st->via_vip = via_vip;
	st->state = state;
	telem_track_srtt(st, ops->srtt_us >> 3);
	/* other sockops programs (redirect) may have set flags of their own */
	bpf_sock_ops_cb_flags_set(ops, ops->bpf_sock_ops_cb_flags | TELEM_CB_FLAGS);
	telem_count(SLUICE_TELEM_CNT_TRACKED);
	return st;
}

static __always_inline struct telem_sk *telem_state(struct bpf_sock_ops *ops)
{
	struct bpf_sock *sk = ops->sk;

	if (!sk)
		return NULL;
	return bpf_sk_storage_get(&telem_sk, sk, NULL, 0);
}

/* A connection to a VIP learns its backend once the datapath balanced it. */
static __always_inline void telem_resolve_backend(struct bpf_sock_ops *ops, struct telem_sk *st)
{
	struct telem_tuple t;

	if (!st->via_vip || st->backend_id || !telem_tuple_read(ops, &t))
		return;
	st->backend_id = telem_ct_backend(&t);
}

#endif /* SLUICE_BPF_TELEMETRY_H */
