/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ct.h - conntrack: a flow is two LRU entries, FWD (as the client sent it,
 * holding the backend) and REPLY (as the backend answers, holding the VIP).
 * The entries survive agent restarts because the maps are pinned.
 *
 * Two maps: a flow starts in `ct_new` (unconfirmed: short timeouts, a LRU
 * of its own) and moves to `conntrack` once confirmed: TCP when the
 * client ACKs the backend's SYN|ACK, UDP when the backend answers. So a
 * flood of SYNs or datagrams from random sources only ever evicts other
 * unconfirmed flows, never an established one. Lookups try `conntrack`
 * first; a reply tuple held there is never taken over by a new flow.
 *
 * Entries expire by idleness, checked when they are hit: an expired entry
 * counts as a miss, so a reused client port is balanced afresh and a stale
 * REPLY entry never rewrites traffic that has nothing to do with a service.
 * The LRU evicts what nobody hits; meshd sweeps expired `ct_new` entries.
 */
#ifndef SLUICE_BPF_CT_H
#define SLUICE_BPF_CT_H

#include "common.h"
#include "maps.h"
#include "snat.h"

/* Refresh timestamps at most this often: a write per packet would bounce
 * the entry's cache line between CPUs. */
#define CT_REFRESH_NS NSEC_PER_SEC

/* The clock of conntrack timestamps: the coarse one (kernel 5.11), one
 * tick behind at most, nothing against the 1 s refresh and timeouts of
 * 10 s and more; the precise clock cost an established packet ~17 ns of
 * ~155 (#17). Times another CPU stored may be ahead of it: every
 * comparison allows that. Health (ejection ends) keeps the precise clock. */
#define CT_NOW() bpf_ktime_get_coarse_ns()

/* Idle timeouts of confirmed flows, each #ifndef-overridable. TCP:
 * kube-proxy's conntrack setting for established flows; once FIN or RST
 * was seen, a minute of silence ends it (data still flowing keeps a
 * half-closed flow alive). UDP: as Linux's conntrack for a UDP stream.
 * Unconfirmed flows: SLUICE_CT_NEW_TIMEOUT_* (shared with meshd). */
#ifndef CT_TIMEOUT_TCP_NS
#define CT_TIMEOUT_TCP_NS SLUICE_CT_TIMEOUT_TCP_NS
#endif
#ifndef CT_TIMEOUT_TCP_CLOSE_NS
#define CT_TIMEOUT_TCP_CLOSE_NS SLUICE_CT_TIMEOUT_TCP_CLOSE_NS
#endif
#ifndef CT_TIMEOUT_UDP_NS
#define CT_TIMEOUT_UDP_NS SLUICE_CT_TIMEOUT_UDP_NS
#endif

/* @fresh: the entry is in ct_new. */
static __always_inline bool ct_is_expired(const struct sluice_ct_entry *e, __u8 proto, __u64 now,
					  bool fresh)
{
	__u64 timeout = CT_TIMEOUT_UDP_NS;

	/* another CPU may have stored a later time than our now */
	if (now <= e->last_seen_ns)
		return false;
	if (fresh)
		timeout = proto == IPPROTO_TCP ? SLUICE_CT_NEW_TIMEOUT_TCP_NS :
						 SLUICE_CT_NEW_TIMEOUT_UDP_NS;
	else if (proto == IPPROTO_TCP)
		timeout = e->tcp_flags & (TCP_FIN | TCP_RST) ? CT_TIMEOUT_TCP_CLOSE_NS :
							       CT_TIMEOUT_TCP_NS;
	return now - e->last_seen_ns > timeout;
}

/* Returns true when the timestamp was refreshed (at most once a second). */
static __always_inline bool ct_touch(struct sluice_ct_entry *e, __u8 tcp_flags, __u64 now)
{
	if ((e->tcp_flags | tcp_flags) != e->tcp_flags)
		e->tcp_flags |= tcp_flags;
	if (now > e->last_seen_ns && now - e->last_seen_ns > CT_REFRESH_NS) {
		e->last_seen_ns = now;
		return true;
	}
	return false;
}

static __always_inline struct sluice_ct_entry *ct_get(const struct sluice_ct_key *key, bool fresh)
{
	if (fresh)
		return bpf_map_lookup_elem(&ct_new, key);
	return bpf_map_lookup_elem(&conntrack, key);
}

static __always_inline long ct_put(const struct sluice_ct_key *key, const struct sluice_ct_entry *e,
				   bool fresh)
{
	if (fresh)
		return bpf_map_update_elem(&ct_new, key, e, BPF_ANY);
	return bpf_map_update_elem(&conntrack, key, e, BPF_ANY);
}

static __always_inline void ct_del(const struct sluice_ct_key *key, bool fresh)
{
	if (fresh)
		bpf_map_delete_elem(&ct_new, key);
	else
		bpf_map_delete_elem(&conntrack, key);
}

/* The REPLY key of the flow @fwd balanced to backend @addr:@port. */
static __always_inline void ct_reply_key(const struct sluice_ct_key *fwd, const __u32 *addr,
					 __u16 port, struct sluice_ct_key *rev)
{
	__builtin_memcpy(rev->saddr, addr, sizeof(rev->saddr));
	__builtin_memcpy(rev->daddr, fwd->saddr, sizeof(rev->daddr));
	rev->sport = port;
	rev->dport = fwd->sport;
	rev->proto = fwd->proto;
	rev->family = fwd->family;
	rev->dir = SLUICE_CT_REPLY;
	rev->pad = 0;
}

/* The REPLY entry @r rewrites to the VIP the client of @fwd addressed:
 * the two entries belong to one flow. */
static __always_inline bool ct_reply_is_of(const struct sluice_ct_entry *r,
					   const struct sluice_ct_key *fwd)
{
	return r->port == fwd->dport && r->addr[0] == fwd->daddr[0] &&
	       r->addr[1] == fwd->daddr[1] && r->addr[2] == fwd->daddr[2] &&
	       r->addr[3] == fwd->daddr[3];
}

/* A SYN without ACK: only such a packet can reopen a flow. Tested inline
 * before the out-of-line ct_is_reopen(), so an established flow's packets
 * skip the call (#17: every established packet paid it). */
static __always_inline bool ct_is_syn(__u8 tcp_flags)
{
	return (tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
}

/* A SYN reusing the tuple of a connection that ended (FIN or RST seen in
 * either direction) is a new connection: it may be balanced afresh.
 * Out of line (like the other REPLY-side helpers): their keys would push
 * the inlined caller past the 512-byte BPF stack. */
static __noinline bool ct_is_reopen(const struct sluice_ct_key *fwd,
				    const struct sluice_ct_entry *e, __u8 tcp_flags, bool fresh)
{
	struct sluice_ct_key rev = {};
	struct sluice_ct_entry *r;

	if (!ct_is_syn(tcp_flags))
		return false;
	if (e->tcp_flags & (TCP_FIN | TCP_RST))
		return true;
	ct_reply_key(fwd, e->addr, e->port, &rev);
	r = ct_get(&rev, fresh);
	return r && (r->tcp_flags & (TCP_FIN | TCP_RST));
}

/* Store at @rev (the REPLY key of @fwd) the REPLY entry of the flow @fwd
 * whose FWD entry is @fe. Inlined into callers that already hold @rev:
 * ct_confirm() sits at the bottom of the deepest call chain, and a call to
 * ct_create_reply() there (one more frame with its own key and entry) took
 * the chain past 512 bytes on kernels that round frames to 32 bytes (6.1). */
static __always_inline long ct_put_reply(const struct sluice_ct_key *rev,
					 const struct sluice_ct_key *fwd,
					 const struct sluice_ct_entry *fe, bool fresh)
{
	struct sluice_ct_entry e = {};

	__builtin_memcpy(e.addr, fwd->daddr, sizeof(e.addr));
	e.port = fwd->dport;
	e.svc_id = fe->svc_id;
	e.backend_id = fe->backend_id;
	e.created_ns = fe->created_ns;
	e.last_seen_ns = fe->last_seen_ns;
	return ct_put(rev, &e, fresh);
}

/* The REPLY entry of the flow @fwd whose FWD entry is @fe. */
static __noinline int ct_create_reply(const struct sluice_ct_key *fwd,
				      const struct sluice_ct_entry *fe, bool fresh)
{
	struct sluice_ct_key rev = {};

	ct_reply_key(fwd, fe->addr, fe->port, &rev);
	return ct_put_reply(&rev, fwd, fe, fresh);
}

/*
 * ct_keep_reply() - called about once a second per active flow (when the
 * FWD entry's timestamp is refreshed): the two entries live independently
 * in the LRU, so recreate the REPLY entry if it was evicted, and keep it
 * as fresh as the flow so a flow whose backend is silent does not lose it.
 */
static __noinline void ct_keep_reply(const struct sluice_ct_key *fwd,
				     const struct sluice_ct_entry *e, __u64 now, bool fresh)
{
	struct sluice_ct_key rev = {};
	struct sluice_ct_entry *r;

	ct_reply_key(fwd, e->addr, e->port, &rev);
	r = ct_get(&rev, fresh);
	if (r) {
		if (now > r->last_seen_ns)
			r->last_seen_ns = now;
		return;
	}
	ct_create_reply(fwd, e, fresh);
}

/*
 * ct_reply_is_dead() - is the confirmed REPLY entry @r at @rev of a flow
 * that ended? Its own flags show only what the backend sent; the flow's
 * FWD entry (rebuilt from the VIP @r holds) shows the client's FIN or
 * RST, or is gone or expired.
 */
static __noinline bool ct_reply_is_dead(const struct sluice_ct_key *rev,
					const struct sluice_ct_entry *r, __u64 now)
{
	struct sluice_ct_key fwd = {};
	struct sluice_ct_entry *fe;

	if ((r->tcp_flags & (TCP_FIN | TCP_RST)) || ct_is_expired(r, rev->proto, now, false))
		return true;
	__builtin_memcpy(fwd.saddr, rev->daddr, sizeof(fwd.saddr));
	__builtin_memcpy(fwd.daddr, r->addr, sizeof(fwd.daddr));
	fwd.sport = rev->dport;
	fwd.dport = r->port;
	fwd.proto = rev->proto;
	fwd.family = rev->family;
	fwd.dir = SLUICE_CT_FWD;
	fe = bpf_map_lookup_elem(&conntrack, &fwd);
	return !fe || (fe->tcp_flags & (TCP_FIN | TCP_RST)) ||
	       ct_is_expired(fe, rev->proto, now, false) || fe->port != rev->sport ||
	       fe->addr[0] != rev->saddr[0] || fe->addr[1] != rev->saddr[1] ||
	       fe->addr[2] != rev->saddr[2] || fe->addr[3] != rev->saddr[3];
}

/*
 * ct_drop_dead_reply() - a new connection is about to use the reply tuple
 * @rev (backend -> client): a confirmed REPLY entry left there by a flow
 * that ended would take its answers (rewrite them to another VIP, or
 * rewrite a direct connection's), so it goes. A live one stays.
 */
static __noinline void ct_drop_dead_reply(const struct sluice_ct_key *rev, __u64 now)
{
	struct sluice_ct_entry *r = bpf_map_lookup_elem(&conntrack, rev);

	if (r && ct_reply_is_dead(rev, r, now))
		bpf_map_delete_elem(&conntrack, rev);
}

/*
 * ct_forget() - drop the confirmed flow @fwd (FWD entry @e) that ended or
 * expired, so its new incarnation starts over in ct_new: left in place,
 * its REPLY entry would take the new flow's answers and it would never
 * be confirmed. A REPLY entry of another flow is left alone. The flow's
 * source NAT entries (if any) go with it.
 */
static __noinline void ct_forget(const struct sluice_ct_key *fwd, const struct sluice_ct_entry *e)
{
	struct sluice_ct_key rev = {};
	struct sluice_ct_entry *r;

	ct_reply_key(fwd, e->addr, e->port, &rev);
	r = bpf_map_lookup_elem(&conntrack, &rev);
	if (r && ct_reply_is_of(r, fwd))
		bpf_map_delete_elem(&conntrack, &rev);
	bpf_map_delete_elem(&conntrack, fwd);
	snat_forget(fwd, e->addr, e->port);
}

/*
 * ct_confirm() - move the flow @fwd (FWD entry @fe in ct_new) to conntrack.
 *
 * A reply tuple is the backend's view of a connection: a live confirmed
 * flow holding it keeps it (a second client connection mapping onto the
 * same backend 4-tuple cannot work anyway), so the newcomer stays
 * unconfirmed and expires.
 *
 * Return: true when the flow was moved.
 */
static __noinline bool ct_confirm(const struct sluice_ct_key *fwd, struct sluice_ct_entry *fe,
				  __u64 now)
{
	struct sluice_ct_key rev = {};
	struct sluice_ct_entry *r, *old;

	ct_reply_key(fwd, fe->addr, fe->port, &rev);
	old = bpf_map_lookup_elem(&conntrack, &rev);
	if (old && !ct_reply_is_of(old, fwd) && !(old->tcp_flags & (TCP_FIN | TCP_RST)) &&
	    !ct_is_expired(old, fwd->proto, now, false))
		return false;
	if (bpf_map_update_elem(&conntrack, fwd, fe, BPF_ANY))
		return false;
	r = bpf_map_lookup_elem(&ct_new, &rev);
	if (r && ct_reply_is_of(r, fwd))
		bpf_map_update_elem(&conntrack, &rev, r, BPF_ANY);
	else
		ct_put_reply(&rev, fwd, fe, false);
	bpf_map_delete_elem(&ct_new, &rev);
	bpf_map_delete_elem(&ct_new, fwd);
	return true;
}

/*
 * ct_confirm_tcp() - the client's packet @tcp_flags on the unconfirmed
 * flow @fwd: an ACK (no SYN, no RST) after the backend's SYN|ACK completes
 * the handshake. A RST on either side confirms nothing.
 */
static __noinline bool ct_confirm_tcp(const struct sluice_ct_key *fwd, struct sluice_ct_entry *fe,
				      __u8 tcp_flags, __u64 now)
{
	struct sluice_ct_key rev = {};
	struct sluice_ct_entry *r;

	if ((tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_ACK || (fe->tcp_flags & TCP_RST))
		return false;
	ct_reply_key(fwd, fe->addr, fe->port, &rev);
	r = bpf_map_lookup_elem(&ct_new, &rev);
	if (!r || !ct_reply_is_of(r, fwd) || (r->tcp_flags & TCP_RST) ||
	    (r->tcp_flags & (TCP_SYN | TCP_ACK)) != (TCP_SYN | TCP_ACK))
		return false;
	return ct_confirm(fwd, fe, now);
}

/*
 * ct_new_fwd_of() - the unconfirmed FWD entry (key in @fwd) of the flow
 * whose REPLY key is @rev and entry @re; NULL when that half was evicted
 * or belongs to another backend.
 */
static __always_inline struct sluice_ct_entry *ct_new_fwd_of(const struct sluice_ct_key *rev,
							     const struct sluice_ct_entry *re,
							     struct sluice_ct_key *fwd)
{
	struct sluice_ct_entry *fe;

	__builtin_memcpy(fwd->saddr, rev->daddr, sizeof(fwd->saddr));
	__builtin_memcpy(fwd->daddr, re->addr, sizeof(fwd->daddr));
	fwd->sport = rev->dport;
	fwd->dport = re->port;
	fwd->proto = rev->proto;
	fwd->family = rev->family;
	fwd->dir = SLUICE_CT_FWD;
	fwd->pad = 0;
	fe = bpf_map_lookup_elem(&ct_new, fwd);
	if (!fe || fe->port != rev->sport || fe->addr[0] != rev->saddr[0] ||
	    fe->addr[1] != rev->saddr[1] || fe->addr[2] != rev->saddr[2] ||
	    fe->addr[3] != rev->saddr[3])
		return NULL;
	return fe;
}

/*
 * ct_confirm_reply() - the backend answered the unconfirmed flow whose
 * REPLY key is @rev and entry @re: a UDP flow, or a TCP flow picked up
 * without its SYN.
 */
static __noinline bool ct_confirm_reply(const struct sluice_ct_key *rev,
					const struct sluice_ct_entry *re, __u64 now)
{
	struct sluice_ct_key fwd = {};
	struct sluice_ct_entry *fe;

	fe = ct_new_fwd_of(rev, re, &fwd);
	if (!fe)
		return false;
	return ct_confirm(&fwd, fe, now);
}

/**
 * ct_create() - record a new, unconfirmed flow from @fwd (client -> VIP)
 * to backend @be in ct_new.
 *
 * Return: 0, or a negative errno when the map refused an entry.
 */
static __always_inline int ct_create(const struct sluice_ct_key *fwd, __u32 svc_id,
				     __u32 backend_id, const struct sluice_backend *be,
				     __u8 tcp_flags, __u64 now)
{
	struct sluice_ct_entry e = {};
	struct sluice_ct_key rev = {};
	int ret;

	e.created_ns = now;
	e.last_seen_ns = now;
	e.svc_id = svc_id;
	e.backend_id = backend_id;
	__builtin_memcpy(e.addr, be->addr, sizeof(e.addr));
	e.port = be->port;
	e.tcp_flags = tcp_flags;
	ret = bpf_map_update_elem(&ct_new, fwd, &e, BPF_ANY);
	if (ret)
		return ret;
	ct_reply_key(fwd, be->addr, be->port, &rev);
	ct_drop_dead_reply(&rev, now);
	return ct_create_reply(fwd, &e, true);
}

#endif /* SLUICE_BPF_CT_H */
