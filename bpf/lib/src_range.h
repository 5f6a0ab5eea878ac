/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * src_range.h - source ranges (loadBalancerSourceRanges): a new flow to a
 * service with SLUICE_SVC_F_SOURCE_RANGES is dropped, counted as
 * SLUICE_DROP_SOURCE_RANGE, unless its client address lies inside one of
 * the service's ranges in the src_ranges LPM trie (sluice_abi.h).
 *
 * Only new flows are checked: a packet of a flow conntrack knows never
 * gets here, so narrowing the ranges leaves established flows alone until
 * they end. The socket LB (local clients, sock_lb.h) does not check
 * ranges: they describe external clients, as in Kubernetes.
 */
#ifndef SLUICE_BPF_SRC_RANGE_H
#define SLUICE_BPF_SRC_RANGE_H

#include "common.h"
#include "maps.h"

/*
 * src_range_allows() - whether the client of @t may open a flow to the
 * service @svc_id (which has SLUICE_SVC_F_SOURCE_RANGES). One LPM lookup
 * with the service id and the whole client address.
 *
 * Out of line: its 24-byte key gets a frame of its own instead of adding
 * to the entry's, which is at the verifier's stack limit.
 */
static __noinline bool src_range_allows(const struct sluice_ct_key *t, __u32 svc_id)
{
	struct sluice_src_range_key k = {};

	k.prefixlen = t->family == SLUICE_AF_INET ? 32 + 32 : 32 + 128;
	k.svc_id = svc_id;
	__builtin_memcpy(k.addr, t->saddr, sizeof(k.addr));
	return bpf_map_lookup_elem(&src_ranges, &k) != NULL;
}

#endif /* SLUICE_BPF_SRC_RANGE_H */
