/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * snat.h - source NAT of balanced flows (externalTrafficPolicy: Cluster,
 * and hairpin: a client balanced to itself).
 *
 * Contract: a SNATed flow leaves this node as SNAT address:port ->
 * backend, where the SNAT address is the address the client addressed
 * (the VIP; for a NodePort the node's own address) and the port comes
 * from SLUICE_SNAT_PORT_MIN..MAX. Conntrack never sees the SNAT tuple: it
 * stays keyed by the client's tuple, and this layer sits outside it.
 * Services flagged SLUICE_SVC_F_SNAT_NODE (load-balancer and external IPs,
 * which are not this node's) use the node's SNAT address of the family
 * (snat_addr) instead of the VIP. Forward packets get their SNAT port
 * from snat_fwd; the backend's answers to SNAT address:port are mapped
 * back to the client through snat_rev before the conntrack reply lookup.
 * A port belongs to whoever inserted its snat_rev entry (BPF_NOEXIST), so
 * no two flows to one backend share a SNAT tuple. Entries go when the flow ends with a RST,
 * when conntrack forgets the flow (ct_forget()), or by LRU eviction.
 * Helpers: map lookup/update/delete only (any kernel with LRU maps).
 */
#ifndef SLUICE_BPF_SNAT_H
#define SLUICE_BPF_SNAT_H

#include "common.h"
#include "maps.h"

/* Candidate ports a new flow tries, from a hash of the flow on: bounds
 * the work of one packet; a node whose candidates are all taken for one
 * backend drops the flow (SNAT_PORTS_EXHAUSTED) rather than search on. */
#ifndef SNAT_TRIES
#define SNAT_TRIES 16
#endif

#define SNAT_PORTS (SLUICE_SNAT_PORT_MAX - SLUICE_SNAT_PORT_MIN + 1)

/* snat_alloc() builds both keys in one buffer */
_Static_assert(sizeof(struct sluice_snat_fwd_key) == sizeof(struct sluice_snat_rev_key),
	       "snat keys share a buffer");

static __always_inline bool snat_addr_eq(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* Is @port (network order) one a SNAT flow may use? */
static __always_inline bool snat_port_in_range(__u16 port)
{
	__u16 p = bpf_ntohs(port);

	return p >= SLUICE_SNAT_PORT_MIN && p <= SLUICE_SNAT_PORT_MAX;
}

/* The snat_fwd key of the flow @t (client -> VIP) to @baddr:@bport. */
static __always_inline void snat_fwd_key(struct sluice_snat_fwd_key *k,
					 const struct sluice_ct_key *t, const __u32 *baddr,
					 __u16 bport)
{
	__builtin_memcpy(k->caddr, t->saddr, sizeof(k->caddr));
	__builtin_memcpy(k->baddr, baddr, sizeof(k->baddr));
	k->cport = t->sport;
	k->bport = bport;
	k->proto = t->proto;
	k->family = t->family;
}

static __always_inline void snat_rev_key(struct sluice_snat_rev_key *k, const __u32 *baddr,
					 __u16 bport, const struct sluice_snat_entry *n,
					 const struct sluice_ct_key *t)
{
	__builtin_memcpy(k->baddr, baddr, sizeof(k->baddr));
	__builtin_memcpy(k->naddr, n->addr, sizeof(k->naddr));
	k->bport = bport;
	k->nport = n->port;
	k->proto = t->proto;
	k->family = t->family;
}

/* The node's SNAT address of @family (snat_addr), NULL when none is set. */
static __always_inline const __u32 *snat_node_addr(__u8 family)
{
	__u32 k = family == SLUICE_AF_INET ? SLUICE_SNAT_ADDR_V4 : SLUICE_SNAT_ADDR_V6;
	struct sluice_snat_addr *a = bpf_map_lookup_elem(&snat_addr, &k);

	if (!a || !(a->addr[0] | a->addr[1] | a->addr[2] | a->addr[3]))
		return NULL;
	return a->addr;
}

/*
 * snat_lookup() - the SNAT address:port (into @out) of the flow @t
 * (client tuple) to backend @baddr:@bport. With @check_rev (a new flow
 * reusing a client tuple), the port counts only while its snat_rev entry
 * still leads back to this client: LRU may have evicted it, and another
 * flow may own the port since.
 *
 * Return: true when found.
 */
static __noinline bool snat_lookup(const struct sluice_ct_key *t, const __u32 *baddr, __u16 bport,
				   struct sluice_snat_entry *out, bool check_rev)
{
	struct sluice_snat_fwd_key fk = {};
	struct sluice_snat_rev_key rk = {};
	struct sluice_snat_entry *n, *c;

	snat_fwd_key(&fk, t, baddr, bport);
	n = bpf_map_lookup_elem(&snat_fwd, &fk);
	if (!n)
		return false;
	__builtin_memcpy(out, n, sizeof(*out));
	if (!check_rev)
		return true;
	snat_rev_key(&rk, baddr, bport, out, t);
	c = bpf_map_lookup_elem(&snat_rev, &rk);
	return c && c->port == t->sport && snat_addr_eq(c->addr, t->saddr);
}

/*
 * snat_alloc() - give the new flow @t (client -> VIP) to backend
 * @baddr:@bport a SNAT port: the SNAT address in @out->addr on entry (the
 * VIP or the node's SNAT address) with the first free of SNAT_TRIES
 * consecutive ports from @hash on, claimed in snat_rev with BPF_NOEXIST.
 * The result goes to @out and snat_fwd.
 *
 * Return: 0, or -1 when every candidate is taken (or a map refused).
 *
 * The two keys share one buffer (same layout and size; pad never
 * written, so zero for both): this frame is the deepest of xdp_lb ->
 * lb_snat_port() -> here, which 6.1 caps at 512 bytes (32 per frame).
 */
static __noinline int snat_alloc(const struct sluice_ct_key *t, const __u32 *baddr, __u16 bport,
				 __u32 hash, struct sluice_snat_entry *out)
{
	union {
		struct sluice_snat_fwd_key fk;
		struct sluice_snat_rev_key rk;
	} k = {};
	struct sluice_snat_entry c = {};

	__builtin_memcpy(c.addr, t->saddr, sizeof(c.addr));
	c.port = t->sport;
	out->pad = 0;
	for (__u32 i = 0; i < SNAT_TRIES; i++) {
		out->port = bpf_htons(SLUICE_SNAT_PORT_MIN + (hash + i) % SNAT_PORTS);
		snat_rev_key(&k.rk, baddr, bport, out, t);
		if (bpf_map_update_elem(&snat_rev, &k.rk, &c, BPF_NOEXIST))
			continue;
		snat_fwd_key(&k.fk, t, baddr, bport);
		if (!bpf_map_update_elem(&snat_fwd, &k.fk, out, BPF_ANY))
			return 0;
		snat_rev_key(&k.rk, baddr, bport, out, t);
		bpf_map_delete_elem(&snat_rev, &k.rk);
		return -1;
	}
	return -1;
}

/*
 * snat_forget() - the flow @t (client tuple) to @baddr:@bport ended:
 * delete its snat_fwd entry and the snat_rev entry of its port, unless
 * that port belongs to another client by now.
 */
static __noinline void snat_forget(const struct sluice_ct_key *t, const __u32 *baddr, __u16 bport)
{
	struct sluice_snat_fwd_key fk = {};
	struct sluice_snat_rev_key rk = {};
	struct sluice_snat_entry *n, *c;

	snat_fwd_key(&fk, t, baddr, bport);
	n = bpf_map_lookup_elem(&snat_fwd, &fk);
	if (!n)
		return;
	snat_rev_key(&rk, baddr, bport, n, t);
	c = bpf_map_lookup_elem(&snat_rev, &rk);
	if (c && c->port == t->sport && snat_addr_eq(c->addr, t->saddr))
		bpf_map_delete_elem(&snat_rev, &rk);
	bpf_map_delete_elem(&snat_fwd, &fk);
}

/*
 * snat_reverse() - is @t (a packet's tuple, not to a service) a backend's
 * answer to a SNAT address:port? Then @t's destination becomes the
 * client's (so the conntrack reply lookup finds the flow) and @client
 * holds it for the rewrite. An answer with RST ends the flow: both
 * entries go now (the client's address is copied out already).
 *
 * Return: true when @t was a SNAT answer.
 */
static __noinline bool snat_reverse(struct sluice_ct_key *t, struct sluice_snat_entry *client,
				    __u8 tcp_flags)
{
	struct sluice_snat_fwd_key fk = {};
	struct sluice_snat_rev_key rk = {};
	struct sluice_snat_entry *c;

	__builtin_memcpy(rk.baddr, t->saddr, sizeof(rk.baddr));
	__builtin_memcpy(rk.naddr, t->daddr, sizeof(rk.naddr));
	rk.bport = t->sport;
	rk.nport = t->dport;
	rk.proto = t->proto;
	rk.family = t->family;
	c = bpf_map_lookup_elem(&snat_rev, &rk);
	if (!c)
		return false;
	__builtin_memcpy(client, c, sizeof(*client));
	__builtin_memcpy(t->daddr, client->addr, sizeof(t->daddr));
	t->dport = client->port;
	if (t->proto == IPPROTO_TCP && (tcp_flags & TCP_RST)) {
		bpf_map_delete_elem(&snat_rev, &rk);
		__builtin_memcpy(fk.caddr, client->addr, sizeof(fk.caddr));
		__builtin_memcpy(fk.baddr, rk.baddr, sizeof(fk.baddr));
		fk.cport = client->port;
		fk.bport = rk.bport;
		fk.proto = rk.proto;
		fk.family = rk.family;
		bpf_map_delete_elem(&snat_fwd, &fk);
	}
	return true;
}

#endif /* SLUICE_BPF_SNAT_H */
