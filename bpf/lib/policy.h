/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * policy.h - L4 access policy (#15): may this client open a new flow to
 * this service? The node-wide deny list (policy_nhost, then one exact
 * lookup per length in it or the trie policy_node) is checked for every
 * service, the service's own rules (trie policy) when it has
 * SLUICE_SVC_F_POLICY: one longest-prefix lookup with the whole client
 * address, or, for a service with SLUICE_SVC_F_POLICY_HASH, one exact
 * lookup per prefix length it uses (policy_svc_lookup()); the entry found
 * carries the compiled verdict for every
 * client port (sluice_abi.h), so deny-wins and allow-list defaults are
 * settled in userspace, not here.
 *
 * Only new flows are checked (lb_service() calls this after a conntrack
 * miss): a packet of an established flow never pays for it. A denial is
 * counted per service and reason in policy_stats.
 */
#ifndef SLUICE_BPF_POLICY_H
#define SLUICE_BPF_POLICY_H

#include "common.h"
#include "maps.h"

/* The verdict @v gives the client port @port (host order). */
static __always_inline __u8 policy_port_verdict(const struct sluice_policy_val *v, __u16 port)
{
	for (__u32 i = 0; i < SLUICE_POLICY_PORTS; i++) {
		if (i >= v->nports)
			break;
		if (port >= v->port[i].lo && port <= v->port[i].hi)
			return v->port[i].verdict;
	}
	return v->verdict;
}

/* The verdict of the longest entry of @map matching @k (prefixlen set to
 * the whole address); SLUICE_POL_NONE when none matches. *ports: the
 * entry's verdict depends on the client port. */
static __always_inline __u8 policy_lookup(void *map, struct sluice_policy_key *k, __u16 port,
					  bool *ports)
{
	struct sluice_policy_val *v = bpf_map_lookup_elem(map, k);

	if (v && v->nports)
		*ports = true;
	return v ? policy_port_verdict(v, port) : SLUICE_POL_NONE;
}

/* The mask of the word of an address that holds bits [32 * w, 32 * w + 32)
 * of a prefix of length @len (network order). */
static __always_inline __u32 policy_word_mask(__u32 len, __u32 w)
{
	if (len >= 32 * w + 32)
		return 0xffffffff;
	if (len <= 32 * w)
		return 0;
	return bpf_htonl(0xffffffffu << (32 * w + 32 - len));
}

/* One exact lookup in @map per length of @lens (byte i: 1 + the i-th
 * longest, 0 after the last), the client address @addr masked to it, @k
 * keeping its id: the first hit is the longest match, as the trie of the
 * same entries would give. At most SLUICE_POLICY_LENS lookups. */
static __always_inline __u8 policy_hash_lookup(void *map, struct sluice_policy_key *k,
					       const __u32 *addr, __u32 lens, __u16 port,
					       bool *ports)
{
	struct sluice_policy_val *v;
	__u32 len;

	for (__u32 i = 0; i < SLUICE_POLICY_LENS; i++) {
		len = (lens >> (8 * i)) & 0xff;
		if (!len)
			break;
		len--;
		k->prefixlen = 32 + len;
		for (__u32 w = 0; w < 4; w++)
			k->addr[w] = addr[w] & policy_word_mask(len, w);
		v = bpf_map_lookup_elem(map, k);
		if (v) {
			if (v->nports)
				*ports = true;
			return policy_port_verdict(v, port);
		}
	}
	return SLUICE_POL_NONE;
}

/* The node list: a host entry (policy_nhost, exact match on the key
 * whose prefixlen is already the whole address) first; then, where
 * policy_nlens says policy_nhost holds the family's shorter prefixes too,
 * one exact lookup per length they use, else the trie of the shorter
 * prefixes. Node prefixes never nest, and every one denies: the first
 * hit decides alone. @k comes back as it went in (whole address). */
static __always_inline __u8 policy_node_lookup(struct sluice_policy_key *k, const __u32 *addr,
					       __u16 port, bool *ports)
{
	struct sluice_policy_val *v = bpf_map_lookup_elem(&policy_nhost, k);
	struct sluice_policy_nlens *nl;
	__u32 zero = 0, f, full, lens;
	__u8 verdict;

	if (v) {
		if (v->nports)
			*ports = true;
		return policy_port_verdict(v, port);
	}
	f = k->id == SLUICE_AF_INET6;
	nl = bpf_map_lookup_elem(&policy_nlens, &zero);
	/* one read of one aligned word: it decides, whatever a writer does */
	lens = nl ? *(volatile __u32 *)&nl->lens[f & 1] : 0;
	if (!lens)
		return policy_lookup(&policy_node, k, port, ports);
	full = k->prefixlen;
	verdict = policy_hash_lookup(&policy_nhost, k, addr, lens, port, ports);
	k->prefixlen = full;
	__builtin_memcpy(k->addr, addr, sizeof(k->addr));
	return verdict;
}

/* The service's rules (@flags, @lens of its struct sluice_svc): with
 * SLUICE_SVC_F_POLICY_HASH one exact lookup in policy_hash per prefix
 * length it uses, longest first, the client address @addr masked to it:
 * the first hit is the trie's longest match (the same entries). At most
 * SLUICE_POLICY_LENS lookups; without the flag the trie. */
static __always_inline __u8 policy_svc_lookup(struct sluice_policy_key *k, const __u32 *addr,
					      __u32 flags, __u32 lens, __u16 port, bool *ports)
{
	if (!(flags & SLUICE_SVC_F_POLICY_HASH))
		return policy_lookup(&policy, k, port, ports);
	return policy_hash_lookup(&policy_hash, k, addr, lens, port, ports);
}

/* policy_denies() and policy_sock_denies(); @port_known false: the
 * client port is not chosen yet, and a verdict that depends on it is
 * undecided (-1). */
static __always_inline int __policy_denies(const struct sluice_ct_key *t, __u32 svc_id, __u32 flags,
					   __u32 lens, bool port_known)
{
	struct sluice_policy_key k = {};
	__u16 port = bpf_ntohs(t->sport);
	struct sluice_policy_stats *st;
	bool ports = false;
	__u32 reason;
	__u8 verdict;

	k.prefixlen = t->family == SLUICE_AF_INET ? 32 + 32 : 32 + 128;
	k.id = t->family;
	__builtin_memcpy(k.addr, t->saddr, sizeof(k.addr));
	verdict = policy_node_lookup(&k, t->saddr, port, &ports);
	if (!port_known && ports)
		return -1;
	if (verdict == SLUICE_POL_DENY) {
		reason = SLUICE_POLICY_R_NODE_DENY;
		goto denied;
	}
	if (!(flags & SLUICE_SVC_F_POLICY))
		return SLUICE_DROP_NONE;
	k.id = svc_id;
	verdict = policy_svc_lookup(&k, t->saddr, flags, lens, port, &ports);
	if (!port_known && ports)
		return -1;
	if (verdict == SLUICE_POL_ALLOW)
		return SLUICE_DROP_NONE;
	if (verdict == SLUICE_POL_DENY)
		reason = SLUICE_POLICY_R_DENY_LIST;
	else if (flags & SLUICE_SVC_F_POLICY_ALLOWLIST)
		reason = SLUICE_POLICY_R_NOT_ALLOWED;
	else
		return SLUICE_DROP_NONE;
denied:
	st = bpf_map_lookup_elem(&policy_stats, &svc_id);
	if (st && reason < SLUICE_POLICY_R__MAX)
		st->denied[reason]++;
	if (reason == SLUICE_POLICY_R_NODE_DENY)
		return SLUICE_DROP_POLICY_NODE_DENY;
	return reason == SLUICE_POLICY_R_DENY_LIST ? SLUICE_DROP_POLICY_DENY :
						     SLUICE_DROP_POLICY_NOT_ALLOWED;
}

/*
 * policy_denies() - why the client of the new flow @t may not open it to
 * the service @svc_id with flags @flags: an enum sluice_drop_reason
 * (SLUICE_DROP_POLICY_*), or SLUICE_DROP_NONE when it may.
 *
 * Out of line like src_range_allows(): its 24-byte key gets a frame of
 * its own instead of adding to xdp_lb's, which is near the 512-byte
 * limit of the call chain.
 */
static __noinline int policy_denies(const struct sluice_ct_key *t, __u32 svc_id, __u32 flags,
				    __u32 lens)
{
	return __policy_denies(t, svc_id, flags, lens, true);
}

/* The socket LB's check: t->sport 0 is a port not bound yet; -1 when the
 * verdict depends on it (the packet path decides then). */
static __noinline int policy_sock_denies(const struct sluice_ct_key *t, __u32 svc_id, __u32 flags,
					 __u32 lens)
{
	return __policy_denies(t, svc_id, flags, lens, t->sport != 0);
}

/* Whether the node-wide list has prefixes of @family (policy_cfg). */
static __always_inline bool policy_node_any(__u8 family)
{
	__u32 zero = 0;
	struct sluice_policy_cfg *c = bpf_map_lookup_elem(&policy_cfg, &zero);

	return c && c->node_prefixes[family == SLUICE_AF_INET6];
}

#endif /* SLUICE_BPF_POLICY_H */
