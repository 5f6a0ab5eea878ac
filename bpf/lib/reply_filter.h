/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * reply_filter.h - which packets not to a service may be replies of a
 * balanced flow (#17). Every conntrack REPLY entry is keyed by its
 * backend's address as the source (SNATed and hairpin flows too), so a
 * packet from any other address cannot hit one: it is passed after one
 * bit test in backend_addr_bits (kept by the library from backend_addrs,
 * see sluice_abi.h) instead of two misses in the large conntrack LRUs.
 */
#ifndef SLUICE_BPF_REPLY_FILTER_H
#define SLUICE_BPF_REPLY_FILTER_H

#include "common.h"
#include "maps.h"

/* May @addr be a backend's address (or a removed one's, while its flows
 * may live)? Its bit in backend_addr_bits: false positives possible. */
static __always_inline bool reply_filter_is_backend(const __u32 *addr, __u8 family)
{
	__u32 bit = sluice_addr_bit(addr, family), word = bit / 64;
	__u64 *w = bpf_map_lookup_elem(&backend_addr_bits, &word);

	return w && (*w & (1ULL << (bit & 63)));
}

/* Can the packet @t be the reply of a balanced flow? */
static __always_inline bool reply_filter_may_reply(const struct sluice_ct_key *t)
{
	return reply_filter_is_backend(t->saddr, t->family);
}

/* May the packet @t be to a service (its destination a service's address)?
 * Its bit in service_addr_bits: false positives cost the services lookup. */
static __always_inline bool vip_filter_may_be_service(const struct sluice_ct_key *t)
{
	__u32 bit = sluice_addr_bit(t->daddr, t->family), word = bit / 64;
	__u64 *w = bpf_map_lookup_elem(&service_addr_bits, &word);

	return w && (*w & (1ULL << (bit & 63)));
}

/* A SYN (no ACK) to a backend address: its answer's tuple may be held by
 * an old reply entry (lb_direct_syn()); to any other address it cannot. */
static __always_inline bool reply_filter_syn_to_backend(const struct sluice_ct_key *t,
							__u8 tcp_flags)
{
	return t->proto == IPPROTO_TCP && (tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN &&
	       reply_filter_is_backend(t->daddr, t->family);
}

#endif /* SLUICE_BPF_REPLY_FILTER_H */
