// SPDX-License-Identifier: MIT
/*
 * svc_addrs.c - the backend_addrs map (#17): the datapath's reply filter.
 *
 * Contract: backend_addrs[{addr, family}] counts the `backends` entries
 * with that address. Every write of `backends` that adds or removes an
 * entry goes through svc__addr_ref() / svc__backend_delete() here, so the
 * counts follow the map; svc__addrs_sync() recounts from `backends` once
 * per handle (its first planned change) and at open when the filter is
 * empty while `backends` is not (a pin dir of a library without it), which
 * repairs what a crash between two writes or an older library left.
 * An address whose count falls to 0 stays in the map ("lingering"): a
 * flow balanced to the removed backend may still be live in conntrack, and
 * its replies must still be reverse-NATed. sluice__backend_addrs_sweep()
 * deletes lingering addresses that no conntrack or ct_new entry names.
 * A missing address breaks live flows (their replies pass unrewritten); an
 * extra one only costs its packets the conntrack lookup they paid before
 * the filter existed, so every doubt keeps the entry. One writer process.
 * The datapath reads backend_addr_bits, the keys' bits (mmapped here): a
 * bit is set (atomic OR) before the backends entry is written; bits are
 * only cleared by a rebuild from the keys after the sweep or a recount
 * deleted or changed some.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <bpf/bpf.h>

#include "internal.h"
#include "svc_txn.h"

static struct sluice_backend_addr_key svc__addr_key(const __u32 addr[4], __u8 family)
{
	struct sluice_backend_addr_key k = { .family = family };

	memcpy(k.addr, addr, sizeof(k.addr));
	return k;
}

#define ADDR_BITS_BYTES (SLUICE_ADDR_BITS_WORDS * sizeof(__u64))

int svc__addr_bits_map(struct sluice *s)
{
	void *mem = mmap(NULL, ADDR_BITS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
			 s->fds[SLUICE_MAP_BACKEND_ADDR_BITS], 0);

	if (mem == MAP_FAILED)
		return maps__err(-errno, "backend_addr_bits", "mmap", "of the reply filter");
	s->addr_bits = mem;
	return 0;
}

void svc__addr_bits_unmap(struct sluice *s)
{
	if (s->addr_bits)
		munmap(s->addr_bits, ADDR_BITS_BYTES);
	s->addr_bits = NULL;
}

static void svc__addr_bit_set(struct sluice *s, const struct sluice_backend_addr_key *k)
{
	__u32 bit = sluice_addr_bit(k->addr, k->family);

	if (s->addr_bits)
		__atomic_fetch_or(&s->addr_bits[bit / 64], 1ULL << (bit % 64), __ATOMIC_SEQ_CST);
}

int svc__addr_ref(struct sluice *s, const struct sluice_backend *be)
{
	struct sluice_backend_addr_key k = svc__addr_key(be->addr, be->family);
	int fd = s->fds[SLUICE_MAP_BACKEND_ADDRS];
	__u32 refs = 0;
	int err;

	err = bpf_map_lookup_elem(fd, &k, &refs);
	if (err && err != -ENOENT)
		return maps__err(err, "backend_addrs", "lookup", "of a backend's address");
	refs = err ? 1 : refs + 1;
	err = bpf_map_update_elem(fd, &k, &refs, BPF_ANY);
	if (err)
		return maps__err(err, "backend_addrs", "update", "of a backend's address");
	svc__addr_bit_set(s, &k);
	return 0;
}

void svc__addr_unref(struct sluice *s, const struct sluice_backend *be)
{
	struct sluice_backend_addr_key k = svc__addr_key(be->addr, be->family);
	int fd = s->fds[SLUICE_MAP_BACKEND_ADDRS];
	__u32 refs;

	if (bpf_map_lookup_elem(fd, &k, &refs) || !refs)
		return;
	refs--; /* at 0 it lingers (see the top of the file) */
	bpf_map_update_elem(fd, &k, &refs, BPF_EXIST);
}

int svc__backend_delete(struct sluice *s, __u32 id)
{
	int fd = s->fds[SLUICE_MAP_BACKENDS];
	struct sluice_backend be;
	int err;

	err = bpf_map_lookup_elem(fd, &id, &be);
	if (err)
		return err;
	err = bpf_map_delete_elem(fd, &id);
	if (!err)
		svc__addr_unref(s, &be);
	return err;
}

/* --- recount --- */

struct addr_count {
	struct sluice_backend_addr_key k;
	__u32 refs;
};

struct addr_counts {
	struct addr_count *v;
	__u32 n, cap;
	bool nomem;
};

static int svc__addr_cmp(const void *x, const void *y)
{
	return memcmp(x, y, sizeof(struct sluice_backend_addr_key));
}

static int svc__addrs_push(struct addr_counts *c, const struct sluice_backend_addr_key *k,
			   __u32 refs)
{
	struct addr_count *grown;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 256;
		grown = realloc(c->v, c->cap * sizeof(*grown));
		if (!grown) {
			c->nomem = true;
			return -ENOMEM;
		}
		c->v = grown;
	}
	c->v[c->n++] = (struct addr_count){ .k = *k, .refs = refs };
	return 0;
}

static int svc__addrs_note_backend(const void *key, const void *value, void *ctx)
{
	const struct sluice_backend *be = value;
	struct sluice_backend_addr_key k = svc__addr_key(be->addr, be->family);

	(void)key;
	return svc__addrs_push(ctx, &k, 1);
}

/* Sort and merge equal keys, summing their counts. */
static void svc__addrs_merge(struct addr_counts *c)
{
	__u32 out = 0;

	if (!c->n)
		return;
	qsort(c->v, c->n, sizeof(*c->v), svc__addr_cmp);
	for (__u32 i = 1; i < c->n; i++) {
		if (!svc__addr_cmp(&c->v[out].k, &c->v[i].k))
			c->v[out].refs += c->v[i].refs;
		else
			c->v[++out] = c->v[i];
	}
	c->n = out + 1;
}

static int svc__addrs_note_entry(const void *key, const void *value, void *ctx)
{
	return svc__addrs_push(ctx, key, *(const __u32 *)value);
}

/* The map's entries, sorted (keys are unique there). */
static int svc__addrs_read(struct sluice *s, struct addr_counts *c)
{
	int err = maps__for_each(s->fds[SLUICE_MAP_BACKEND_ADDRS], "backend_addrs",
				 sizeof(struct sluice_backend_addr_key), sizeof(__u32),
				 svc__addrs_note_entry, c);

	if (c->nomem)
		sluice__set_err("out of memory reading backend_addrs");
	if (!err && c->n)
		qsort(c->v, c->n, sizeof(*c->v), svc__addr_cmp);
	return err;
}

/* The bits of the keys of @c and @also (sorted or not; @also may be
 * NULL) replace the mapped ones; words that do not change are not
 * written, so a packet never sees a bit of a key in either cleared. */
static int svc__addr_bits_rebuild(struct sluice *s, const struct addr_counts *c,
				  const struct addr_counts *also)
{
	__u64 *want = calloc(SLUICE_ADDR_BITS_WORDS, sizeof(*want));

	if (!want) {
		sluice__set_err("out of memory rebuilding backend_addr_bits");
		return -ENOMEM;
	}
	for (const struct addr_counts *l = c; l; l = l == c ? also : NULL) {
		for (__u32 i = 0; i < l->n; i++) {
			__u32 bit = sluice_addr_bit(l->v[i].k.addr, l->v[i].k.family);

			want[bit / 64] |= 1ULL << (bit % 64);
		}
	}
	for (__u32 w = 0; s->addr_bits && w < SLUICE_ADDR_BITS_WORDS; w++)
		if (__atomic_load_n(&s->addr_bits[w], __ATOMIC_RELAXED) != want[w])
			__atomic_store_n(&s->addr_bits[w], want[w], __ATOMIC_SEQ_CST);
	free(want);
	return 0;
}

/* Rebuild the bits from the map's keys as they are now. */
static int svc__addr_bits_sync(struct sluice *s)
{
	struct addr_counts have = {};
	int err = svc__addrs_read(s, &have);

	if (!err)
		err = svc__addr_bits_rebuild(s, &have, NULL);
	free(have.v);
	return err;
}

/* Every entry of `backends`, counted into want: from snap's index when
 * it holds them all (no delete pending, whose entries it leaves out),
 * else from a walk of the map. */
static int svc__addrs_count(struct sluice *s, const struct svc_snap *snap, struct addr_counts *want)
{
	if (!snap || s->npend)
		return maps__for_each(s->fds[SLUICE_MAP_BACKENDS], "backends", sizeof(__u32),
				      sizeof(struct sluice_backend), svc__addrs_note_backend, want);
	return svc__snap_each(snap, svc__addrs_note_backend, want);
}

int svc__addrs_sync(struct sluice *s)
{
	return svc__addrs_sync_snap(s, NULL);
}

int svc__addrs_sync_snap(struct sluice *s, const struct svc_snap *snap)
{
	struct addr_counts want = {}, have = {};
	int fd = s->fds[SLUICE_MAP_BACKEND_ADDRS];
	__u32 i = 0, j = 0;
	int err;

	err = svc__addrs_count(s, snap, &want);
	if (want.nomem)
		sluice__set_err("out of memory counting backend addresses");
	if (!err)
		err = svc__addrs_read(s, &have);
	if (err)
		goto cleanup;
	svc__addrs_merge(&want);
	/* both sorted: write what differs; an address no backend has any
	 * more lingers at 0 */
	while (!err && (i < want.n || j < have.n)) {
		int d = i == want.n ? 1 : j == have.n ? -1 : svc__addr_cmp(&want.v[i], &have.v[j]);
		__u32 zero = 0;

		if (d < 0 || (!d && want.v[i].refs != have.v[j].refs))
			err = bpf_map_update_elem(fd, &want.v[i].k, &want.v[i].refs, BPF_ANY);
		else if (d > 0 && have.v[j].refs)
			err = bpf_map_update_elem(fd, &have.v[j].k, &zero, BPF_EXIST);
		if (err)
			maps__err(err, "backend_addrs", "update", "recounting backend addresses");
		i += d <= 0;
		j += d >= 0;
	}
	/* the map's keys now: want's, and have's lingering at 0 (no second
	 * read of the map) */
	if (!err)
		err = svc__addr_bits_rebuild(s, &want, &have);
cleanup:
	free(want.v);
	free(have.v);
	if (!err)
		s->addrs_synced = true;
	return err;
}

int svc__addrs_sync_if_empty(struct sluice *s)
{
	struct sluice_backend_addr_key k;
	__u32 id;

	if (bpf_map_get_next_key(s->fds[SLUICE_MAP_BACKEND_ADDRS], NULL, &k))
		return bpf_map_get_next_key(s->fds[SLUICE_MAP_BACKENDS], NULL, &id) ?
			       0 :
			       svc__addrs_sync(s);
	/* keys but no bit at all: bits of a crashed first fill */
	for (__u32 w = 0; w < SLUICE_ADDR_BITS_WORDS; w++)
		if (s->addr_bits[w])
			return 0;
	return svc__addr_bits_sync(s);
}

/* --- lingering addresses --- */

struct addr_linger {
	struct addr_counts zero; /* sorted lingering keys; refs: 1 once seen */
};

static void svc__linger_mark(struct addr_linger *l, const __u32 addr[4], __u8 family)
{
	struct sluice_backend_addr_key k = svc__addr_key(addr, family);
	struct addr_count *hit;

	hit = l->zero.n ? bsearch(&k, l->zero.v, l->zero.n, sizeof(*l->zero.v), svc__addr_cmp) :
			  NULL;
	if (hit)
		hit->refs = 1;
}

/* A FWD entry names its backend in the value, a REPLY entry in its key. */
static int svc__linger_note_ct(const void *key, const void *value, void *ctx)
{
	const struct sluice_ct_key *k = key;
	const struct sluice_ct_entry *e = value;

	if (k->dir == SLUICE_CT_REPLY)
		svc__linger_mark(ctx, k->saddr, k->family);
	else
		svc__linger_mark(ctx, e->addr, k->family);
	return 0;
}

int sluice__backend_addrs_sweep(struct sluice *s, __u32 *removed)
{
	static const enum sluice_map_id ct_maps[] = { SLUICE_MAP_CONNTRACK, SLUICE_MAP_CT_NEW };
	struct addr_counts all = {};
	struct addr_linger l = {};
	int err;

	sluice__clear_err();
	*removed = 0;
	err = svc__addrs_read(s, &all);
	for (__u32 i = 0; !err && i < all.n; i++)
		if (!all.v[i].refs && svc__addrs_push(&l.zero, &all.v[i].k, 0)) {
			sluice__set_err("out of memory sweeping backend_addrs");
			err = -ENOMEM;
		}
	for (__u32 m = 0; !err && l.zero.n && m < 2; m++)
		err = maps__for_each(s->fds[ct_maps[m]], m ? "ct_new" : "conntrack",
				     sizeof(struct sluice_ct_key), sizeof(struct sluice_ct_entry),
				     svc__linger_note_ct, &l);
	/* Only this process adds backends: an address still at 0 now has no
	 * backend that could start a flow to it after the walk. */
	for (__u32 i = 0; !err && i < l.zero.n; i++) {
		__u32 refs;

		if (l.zero.v[i].refs ||
		    bpf_map_lookup_elem(s->fds[SLUICE_MAP_BACKEND_ADDRS], &l.zero.v[i].k, &refs) ||
		    refs)
			continue;
		if (!bpf_map_delete_elem(s->fds[SLUICE_MAP_BACKEND_ADDRS], &l.zero.v[i].k))
			(*removed)++;
	}
	if (!err && *removed)
		err = svc__addr_bits_sync(s);
	free(all.v);
	free(l.zero.v);
	return err;
}

__u32 sluice__backend_addr_refs(struct sluice *s, const struct sluice_addr *a, bool *present)
{
	struct sluice_backend_addr_key k = svc__addr_key(a->addr, a->family);
	__u32 refs = 0;

	*present = !bpf_map_lookup_elem(s->fds[SLUICE_MAP_BACKEND_ADDRS], &k, &refs);
	return refs;
}
