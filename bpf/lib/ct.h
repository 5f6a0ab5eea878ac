/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ct.h - conntrack: a flow is two LRU entries, FWD (as the client sent it,
 * holding the backend) and REPLY (as the backend answers, holding the VIP).
 * The entries survive agent restarts because the map is pinned.
 */
#ifndef SLUICE_BPF_CT_H
#define SLUICE_BPF_CT_H

#include "common.h"
#include "maps.h"

/* Refresh timestamps at most this often: a write per packet would bounce
 * the entry's cache line between CPUs. */
#define CT_REFRESH_NS NSEC_PER_SEC

static __always_inline void ct_touch(struct sluice_ct_entry *e, __u8 tcp_flags)
{
	__u64 now;

	if ((e->tcp_flags | tcp_flags) != e->tcp_flags)
		e->tcp_flags |= tcp_flags;
	now = bpf_ktime_get_ns();
	if (now - e->last_seen_ns > CT_REFRESH_NS)
		e->last_seen_ns = now;
}

static __always_inline struct sluice_ct_entry *ct_lookup(struct sluice_ct_key *key,
							 enum sluice_ct_dir dir)
{
	key->dir = dir;
	key->pad = 0;
	return bpf_map_lookup_elem(&conntrack, key);
}

/* A SYN reusing the tuple of a connection that already ended is a new
 * connection: it may be balanced afresh. */
static __always_inline bool ct_is_reopen(const struct sluice_ct_entry *e, __u8 tcp_flags)
{
	return (tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN &&
	       (e->tcp_flags & (TCP_FIN | TCP_RST));
}

/**
 * ct_create() - record a new flow from @fwd (client -> VIP) to backend @be.
 *
 * Return: 0, or a negative errno when the map refused an entry.
 */
static __always_inline int ct_create(const struct sluice_ct_key *fwd, __u32 svc_id,
				     __u32 backend_id, const struct sluice_backend *be,
				     __u8 tcp_flags)
{
	struct sluice_ct_entry e = {};
	struct sluice_ct_key rev = {};
	int ret;

	e.created_ns = bpf_ktime_get_ns();
	e.last_seen_ns = e.created_ns;
	e.svc_id = svc_id;
	e.backend_id = backend_id;

	__builtin_memcpy(e.addr, be->addr, sizeof(e.addr));
	e.port = be->port;
	e.tcp_flags = tcp_flags;
	ret = bpf_map_update_elem(&conntrack, fwd, &e, BPF_ANY);
	if (ret)
		return ret;

	__builtin_memcpy(rev.saddr, be->addr, sizeof(rev.saddr));
	__builtin_memcpy(rev.daddr, fwd->saddr, sizeof(rev.daddr));
	rev.sport = be->port;
	rev.dport = fwd->sport;
	rev.proto = fwd->proto;
	rev.family = fwd->family;
	rev.dir = SLUICE_CT_REPLY;
	__builtin_memcpy(e.addr, fwd->daddr, sizeof(e.addr));
	e.port = fwd->dport;
	e.tcp_flags = 0;
	return bpf_map_update_elem(&conntrack, &rev, &e, BPF_ANY);
}

#endif /* SLUICE_BPF_CT_H */
