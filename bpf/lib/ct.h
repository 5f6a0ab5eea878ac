/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ct.h - conntrack: a flow is two LRU entries, FWD (as the client sent it,
 * holding the backend) and REPLY (as the backend answers, holding the VIP).
 * The entries survive agent restarts because the map is pinned.
 *
 * Entries expire by idleness, checked when they are hit: an expired entry
 * counts as a miss, so a reused client port is balanced afresh and a stale
 * REPLY entry never rewrites traffic that has nothing to do with a service.
 * The LRU evicts what nobody hits.
 */
#ifndef SLUICE_BPF_CT_H
#define SLUICE_BPF_CT_H

#include "common.h"
#include "maps.h"

/* Refresh timestamps at most this often: a write per packet would bounce
 * the entry's cache line between CPUs. */
#define CT_REFRESH_NS NSEC_PER_SEC

/* Idle timeouts, each #ifndef-overridable. TCP: kube-proxy's conntrack
 * setting for established flows; once FIN or RST was seen, a minute of
 * silence ends it (data still flowing keeps a half-closed flow alive).
 * UDP: as Linux's conntrack for a UDP stream. */
#ifndef CT_TIMEOUT_TCP_NS
#define CT_TIMEOUT_TCP_NS (24ULL * 3600 * NSEC_PER_SEC)
#endif
#ifndef CT_TIMEOUT_TCP_CLOSE_NS
#define CT_TIMEOUT_TCP_CLOSE_NS (60ULL * NSEC_PER_SEC)
#endif
#ifndef CT_TIMEOUT_UDP_NS
#define CT_TIMEOUT_UDP_NS (120ULL * NSEC_PER_SEC)
#endif

static __always_inline bool ct_is_expired(const struct sluice_ct_entry *e, __u8 proto, __u64 now)
{
	__u64 timeout = CT_TIMEOUT_UDP_NS;

	/* another CPU may have stored a later time than our now */
	if (now <= e->last_seen_ns)
		return false;
	if (proto == IPPROTO_TCP)
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

static __always_inline struct sluice_ct_entry *ct_lookup(struct sluice_ct_key *key,
							 enum sluice_ct_dir dir)
{
	key->dir = dir;
	key->pad = 0;
	return bpf_map_lookup_elem(&conntrack, key);
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

/* A SYN reusing the tuple of a connection that ended (FIN or RST seen in
 * either direction) is a new connection: it may be balanced afresh.
 * Out of line (like the other REPLY-side helpers): their keys would push
 * the inlined caller past the 512-byte BPF stack. */
static __noinline bool ct_is_reopen(const struct sluice_ct_key *fwd,
				    const struct sluice_ct_entry *e, __u8 tcp_flags)
{
	struct sluice_ct_key rev = {};
	struct sluice_ct_entry *r;

	if ((tcp_flags & (TCP_SYN | TCP_ACK)) != TCP_SYN)
		return false;
	if (e->tcp_flags & (TCP_FIN | TCP_RST))
		return true;
	ct_reply_key(fwd, e->addr, e->port, &rev);
	r = bpf_map_lookup_elem(&conntrack, &rev);
	return r && (r->tcp_flags & (TCP_FIN | TCP_RST));
}

/* The REPLY entry of the flow @fwd whose FWD entry is @fe. */
static __noinline int ct_create_reply(const struct sluice_ct_key *fwd,
				      const struct sluice_ct_entry *fe)
{
	struct sluice_ct_entry e = {};
	struct sluice_ct_key rev = {};

	ct_reply_key(fwd, fe->addr, fe->port, &rev);
	__builtin_memcpy(e.addr, fwd->daddr, sizeof(e.addr));
	e.port = fwd->dport;
	e.svc_id = fe->svc_id;
	e.backend_id = fe->backend_id;
	e.created_ns = fe->last_seen_ns;
	e.last_seen_ns = fe->last_seen_ns;
	return bpf_map_update_elem(&conntrack, &rev, &e, BPF_ANY);
}

/*
 * ct_keep_reply() - called about once a second per active flow (when the
 * FWD entry's timestamp is refreshed): the two entries live independently
 * in the LRU, so recreate the REPLY entry if it was evicted, and keep it
 * as fresh as the flow so a flow whose backend is silent does not lose it.
 */
static __noinline void ct_keep_reply(const struct sluice_ct_key *fwd,
				     const struct sluice_ct_entry *e, __u64 now)
{
	struct sluice_ct_key rev = {};
	struct sluice_ct_entry *r;

	ct_reply_key(fwd, e->addr, e->port, &rev);
	r = bpf_map_lookup_elem(&conntrack, &rev);
	if (r) {
		if (now > r->last_seen_ns)
			r->last_seen_ns = now;
		return;
	}
	ct_create_reply(fwd, e);
}

/**
 * ct_create() - record a new flow from @fwd (client -> VIP) to backend @be.
 *
 * Return: 0, or a negative errno when the map refused an entry.
 */
static __always_inline int ct_create(const struct sluice_ct_key *fwd, __u32 svc_id,
				     __u32 backend_id, const struct sluice_backend *be,
				     __u8 tcp_flags, __u64 now)
{
	struct sluice_ct_entry e = {};
	int ret;

	e.created_ns = now;
	e.last_seen_ns = now;
	e.svc_id = svc_id;
	e.backend_id = backend_id;
	__builtin_memcpy(e.addr, be->addr, sizeof(e.addr));
	e.port = be->port;
	e.tcp_flags = tcp_flags;
	ret = bpf_map_update_elem(&conntrack, fwd, &e, BPF_ANY);
	if (ret)
		return ret;
	return ct_create_reply(fwd, &e);
}

#endif /* SLUICE_BPF_CT_H */
