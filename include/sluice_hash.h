/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluice_hash.h - the flow hash that places a new flow in a Maglev slot,
 * and the slots the ejection fallback tries. The one copy: the datapath
 * (bpf/lib/lb.h) and `meshctl explain` (user/lib/svc/explain.c) both call
 * these, so the slot explain reports is the slot the kernel reads.
 *
 * The hash is murmur3's mixing over the client address, the service
 * address (words 0 and 3: enough for v4 and for v6 VIPs, which differ in
 * their low word), both ports and the protocol, seeded per use.
 */
#ifndef SLUICE_HASH_H
#define SLUICE_HASH_H

#include "sluice_abi.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Seeds: the Maglev slot, the ejection fallback's second hash, the SNAT
 * port's first candidate. */
#define SLUICE_HASH_SEED_FLOW 0x5105ce
#define SLUICE_HASH_SEED_FALLBACK 0xe7ec7ed
#define SLUICE_HASH_SEED_SNAT 0x5a75a7

/* Extra Maglev slots a new flow whose pick is ejected tries, each from
 * the fallback hash plus i times the golden ratio. */
#define SLUICE_EJECT_TRIES 16
#define SLUICE_EJECT_STEP 0x9e3779b9

static __always_inline __u32 sluice_hash_mix(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = (k << 15) | (k >> 17);
	k *= 0x1b873593;
	h ^= k;
	h = (h << 13) | (h >> 19);
	return h * 5 + 0xe6546b64;
}

static __always_inline __u32 sluice_hash_fmix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* The hash of the flow @t (its FWD key; dir and pad are not hashed). */
static __always_inline __u32 sluice_flow_hash_seed(const struct sluice_ct_key *t, __u32 seed)
{
	__u32 h = seed ^ t->proto;

	h = sluice_hash_mix(h, t->saddr[0]);
	h = sluice_hash_mix(h, t->saddr[1]);
	h = sluice_hash_mix(h, t->saddr[2]);
	h = sluice_hash_mix(h, t->saddr[3]);
	h = sluice_hash_mix(h, t->daddr[0]);
	h = sluice_hash_mix(h, t->daddr[3]);
	h = sluice_hash_mix(h, ((__u32)t->sport << 16) | t->dport);
	return sluice_hash_fmix(h);
}

/* The M of a Maglev table of @elems elements (its max_entries): the
 * table carries its own size, so a reader that found a table also has
 * the M it was built for (sluice_abi.h). 0 for an empty map. */
static __always_inline __u32 sluice_maglev_m(__u32 elems)
{
	return elems ? 2 * elems - 1 : 0;
}

/* The Maglev slot of the flow @t in a table of @m slots (@m > 0): the
 * same flow always gets the same one. */
static __always_inline __u32 sluice_flow_slot(const struct sluice_ct_key *t, __u32 m)
{
	return sluice_flow_hash_seed(t, SLUICE_HASH_SEED_FLOW) % m;
}

/* The slot of the ejection fallback's try @i (1..SLUICE_EJECT_TRIES) for
 * the fallback hash @h2 (sluice_flow_hash_seed(t, SEED_FALLBACK)) in a
 * table of @m slots. */
static __always_inline __u32 sluice_fallback_slot(__u32 h2, __u32 i, __u32 m)
{
	return sluice_hash_fmix(h2 + i * SLUICE_EJECT_STEP) % m;
}

#endif /* SLUICE_HASH_H */
