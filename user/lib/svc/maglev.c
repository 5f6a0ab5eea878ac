// SPDX-License-Identifier: MIT
/*
 * maglev.c - Maglev lookup table (Eisenbud et al., NSDI 2016) with weights.
 *
 * Contract: table[m] gets indexes into the caller's backends[]; the result
 * depends only on the set of (family, addr, port, weight), never on the
 * order of the array, so two processes building from the same service
 * spec produce the same table. A backend keeps most of its slots when
 * others join or leave, which keeps conntrack-less flows (and the flows of
 * a restarted node) on the same backend.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAGLEV_EMPTY UINT32_MAX
/* Two fixed seeds give the two independent hashes of the paper. Changing
 * them reshuffles every table, i.e. every flow without conntrack moves. */
#define MAGLEV_SEED_OFFSET 0x9e3779b97f4a7c15ULL
#define MAGLEV_SEED_SKIP 0xc2b2ae3d27d4eb4fULL

struct maglev_be {
	__u32 key[6]; /* family, addr[4] in host order, port: hash + sort key */
	__u32 idx;    /* index into the caller's array */
	__u32 weight;
	__u64 pos; /* next position of this backend's permutation */
	__u64 skip;
	__u64 credit; /* weight accumulated but not yet spent on slots */
};

/* murmur3's 64-bit finalizer: full avalanche, so nearby addresses (a /24
 * of pods) still get unrelated permutations. */
static __u64 maglev__mix(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static __u64 maglev__hash(const __u32 key[6], __u64 seed)
{
	__u64 h = seed;

	for (int i = 0; i < 6; i++)
		h = maglev__mix(h ^ key[i]);
	return h;
}

static bool maglev__is_prime(__u32 m)
{
	if (m < 2)
		return false;
	for (__u64 d = 2; d * d <= m; d++)
		if (m % d == 0)
			return false;
	return true;
}

static int maglev__cmp(const void *pa, const void *pb)
{
	const struct maglev_be *a = pa, *b = pb;

	for (int i = 0; i < 6; i++)
		if (a->key[i] != b->key[i])
			return a->key[i] < b->key[i] ? -1 : 1;
	/* Duplicates of one addr:port are rejected by the library; order
	 * them by weight so at least the weights stay order-independent. */
	if (a->weight != b->weight)
		return a->weight < b->weight ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static void maglev__init_be(struct maglev_be *be, const struct sluice_backend_spec *spec, __u32 idx,
			    __u32 m)
{
	int naddr = spec->addr.family == SLUICE_AF_INET ? 1 : 4;

	memset(be, 0, sizeof(*be));
	be->key[0] = spec->addr.family;
	for (int i = 0; i < naddr; i++)
		be->key[1 + i] = ntohl(spec->addr.addr[i]);
	be->key[5] = spec->port;
	be->idx = idx;
	be->weight = spec->weight;
	be->pos = maglev__hash(be->key, MAGLEV_SEED_OFFSET) % m;
	be->skip = maglev__hash(be->key, MAGLEV_SEED_SKIP) % (m - 1) + 1;
}

/* Places one slot for be: its next permutation entry that is still empty.
 * m is prime and 1 <= skip < m, so the permutation visits every slot and
 * an empty one is always found while the table is not full. */
static void maglev__place(struct maglev_be *be, __u32 m, __u32 *table)
{
	while (table[be->pos] != MAGLEV_EMPTY) {
		be->pos += be->skip;
		if (be->pos >= m)
			be->pos -= m;
	}
	table[be->pos] = be->idx;
	be->pos += be->skip;
	if (be->pos >= m)
		be->pos -= m;
}

/*
 * Weighted rounds: every round each backend earns its weight in credit and
 * places one slot per max_weight of credit, so slot counts stay within one
 * slot of weight/sum(weights) * m. Equal weights reduce to the paper's
 * round robin. Credit starts at max_weight - weight so every backend places
 * its first slot in round one: a tiny weight still gets at least one slot.
 */
static void maglev__fill(struct maglev_be *bes, __u32 nact, __u32 max_weight, __u32 m, __u32 *table)
{
	__u32 filled = 0;

	for (__u32 i = 0; i < m; i++)
		table[i] = MAGLEV_EMPTY;
	for (__u32 i = 0; i < nact; i++)
		bes[i].credit = max_weight - bes[i].weight;
	for (;;) {
		for (__u32 i = 0; i < nact; i++) {
			struct maglev_be *be = &bes[i];

			be->credit += be->weight;
			while (be->credit >= max_weight) {
				be->credit -= max_weight;
				maglev__place(be, m, table);
				if (++filled == m)
					return;
			}
		}
	}
}

int maglev__build(const struct sluice_backend_spec *backends, __u32 n, __u32 m, __u32 *table)
{
	struct maglev_be *bes = NULL;
	__u32 nact = 0, max_weight = 0;
	int err = 0;

	sluice__clear_err();
	if (!maglev__is_prime(m)) {
		sluice__set_err("maglev: table size %u is not a prime", m);
		return -EINVAL;
	}
	if (!n || !backends || !table) {
		sluice__set_err("maglev: no backends");
		return -EINVAL;
	}
	bes = calloc(n, sizeof(*bes));
	if (!bes) {
		sluice__set_err("maglev: out of memory for %u backends", n);
		return -ENOMEM;
	}
	for (__u32 i = 0; i < n; i++) {
		if (!backends[i].weight)
			continue;
		maglev__init_be(&bes[nact++], &backends[i], i, m);
		if (backends[i].weight > max_weight)
			max_weight = backends[i].weight;
	}
	if (!nact) {
		sluice__set_err("maglev: all %u backends have weight 0", n);
		err = -EINVAL;
		goto cleanup;
	}
	/* Canonical order: the fill order decides who wins contested slots. */
	qsort(bes, nact, sizeof(*bes), maglev__cmp);
	maglev__fill(bes, nact, max_weight, m, table);
cleanup:
	free(bes);
	return err;
}

/* The largest prime <= x (x >= 2). */
static __u32 maglev__prime_below(__u32 x)
{
	while (!maglev__is_prime(x))
		x--;
	return x;
}

__u32 maglev__size(__u32 n)
{
	static __u32 sizes[SLUICE_MAGLEV_PAGES_MAX]; /* largest prime per page count */
	__u64 need = (__u64)SLUICE_MAGLEV_FACTOR * n;

	for (__u32 p = 0; p < SLUICE_MAGLEV_PAGES_MAX; p++) {
		/* p + 1 pages hold that many pairs: M + 1 slots */
		if (!sizes[p])
			sizes[p] = maglev__prime_below((p + 1) * SLUICE_MAGLEV_PAGE_SLOTS - 1);
		if (sizes[p] >= need)
			return sizes[p];
	}
	return sizes[SLUICE_MAGLEV_PAGES_MAX - 1];
}
