// SPDX-License-Identifier: MIT
/*
 * svc_src_range.c - the userspace side of source ranges (#13): a
 * service's ranges as entries of the src_ranges LPM trie, keyed by its
 * service id (bpf/lib/src_range.h reads them).
 *
 * Contract: within sluice__service_set_many() (service.c) a service's new
 * entries are written before its service entry, and the entries it no
 * longer has are deleted only after the whole group is live, so the
 * kernel sees the flag only with the entries in place and never drops a
 * client that is allowed both before and after the update. A failed
 * update deletes exactly the entries it added (after the old service
 * entry is back), leaving the trie as it was. The trie is read once per
 * call, and only when a service of the call has or had ranges. Deleting
 * a service forgets its entries (best effort: an id's stale entries are
 * replaced the next time a service with that id gets ranges, and while
 * its flag is off the kernel never reads them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "svc_txn.h"

static void src__key(struct sluice_src_range_key *k, __u32 svc_id, const struct sluice_cidr *c)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = 32 + c->prefixlen;
	k->svc_id = svc_id;
	svc__addr_copy(k->addr, &c->addr);
}

static int src__collect(const void *key, const void *value, void *ctx)
{
	struct svc_snap *snap = ctx;
	struct sluice_src_range_key *grown;

	(void)value;
	if (snap->nsrcs == snap->srcs_cap) {
		snap->srcs_cap = snap->srcs_cap ? 2 * snap->srcs_cap : 64;
		grown = realloc(snap->srcs, snap->srcs_cap * sizeof(*snap->srcs));
		if (!grown) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
		snap->srcs = grown;
	}
	snap->srcs[snap->nsrcs++] = *(const struct sluice_src_range_key *)key;
	return 0;
}

static int src__cmp_id(const void *a, const void *b)
{
	__u32 x = ((const struct sluice_src_range_key *)a)->svc_id;
	__u32 y = ((const struct sluice_src_range_key *)b)->svc_id;

	return x < y ? -1 : x > y;
}

static int src__snap_load(struct svc_snap *snap)
{
	int err;

	if (snap->srcs_loaded)
		return 0;
	err = maps__for_each(snap->s->fds[SLUICE_MAP_SRC_RANGES], "src_ranges",
			     sizeof(struct sluice_src_range_key), sizeof(__u32), src__collect,
			     snap);
	if (err)
		return err;
	if (snap->nsrcs)
		qsort(snap->srcs, snap->nsrcs, sizeof(*snap->srcs), src__cmp_id);
	snap->srcs_loaded = true;
	return 0;
}

int svc__src_plan(struct svc_txn *t, struct svc_snap *snap)
{
	__u32 lo = 0, hi;
	int err;

	t->src_added = NULL;
	t->nsrc_added = 0;
	if (!t->spec->nsrc_ranges &&
	    !(t->existed && (t->old_svc.flags & SLUICE_SVC_F_SOURCE_RANGES)))
		return 0; /* no ranges before or after: the trie is not read */
	err = src__snap_load(snap);
	if (err)
		return err;
	hi = snap->nsrcs;
	while (lo < hi) { /* first entry of svc_id */
		__u32 mid = lo + (hi - lo) / 2;

		if (snap->srcs[mid].svc_id < t->svc_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	t->src_old = &snap->srcs[lo];
	while (lo + t->nsrc_old < snap->nsrcs && snap->srcs[lo + t->nsrc_old].svc_id == t->svc_id)
		t->nsrc_old++;
	if (t->spec->nsrc_ranges) {
		t->src_added = calloc(t->spec->nsrc_ranges, sizeof(*t->src_added));
		if (!t->src_added) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

static bool src__in(const struct sluice_src_range_key *v, __u32 n,
		    const struct sluice_src_range_key *k)
{
	for (__u32 i = 0; i < n; i++)
		if (!memcmp(&v[i], k, sizeof(*k)))
			return true;
	return false;
}

int svc__src_write(struct svc_txn *t)
{
	int fd = t->s->fds[SLUICE_MAP_SRC_RANGES];
	struct sluice_src_range_key k;
	char what[SLUICE_CIDR_STRLEN + 32], cidr[SLUICE_CIDR_STRLEN];
	__u32 one = 1;
	int err;

	for (__u32 i = 0; i < t->spec->nsrc_ranges; i++) {
		src__key(&k, t->svc_id, &t->spec->src_ranges[i]);
		if (src__in(t->src_old, t->nsrc_old, &k) ||
		    src__in(t->src_added, t->nsrc_added, &k))
			continue; /* already there, or given twice */
		err = bpf_map_update_elem(fd, &k, &one, BPF_NOEXIST);
		if (err == -EEXIST)
			continue; /* written meanwhile: not ours to undo */
		if (err) {
			snprintf(what, sizeof(what), "of source range %s",
				 sluice_cidr__str(&t->spec->src_ranges[i], cidr, sizeof(cidr)));
			return maps__err(err, "src_ranges", "insert", what);
		}
		t->src_added[t->nsrc_added++] = k;
	}
	return 0;
}

void svc__src_undo(struct svc_txn *t)
{
	int fd = t->s->fds[SLUICE_MAP_SRC_RANGES];

	while (t->nsrc_added)
		bpf_map_delete_elem(fd, &t->src_added[--t->nsrc_added]);
}

void svc__src_delete_stale(struct svc_txn *t)
{
	int fd = t->s->fds[SLUICE_MAP_SRC_RANGES];
	struct sluice_src_range_key k;
	bool keep;

	for (__u32 j = 0; j < t->nsrc_old; j++) {
		keep = false;
		for (__u32 i = 0; i < t->spec->nsrc_ranges && !keep; i++) {
			src__key(&k, t->svc_id, &t->spec->src_ranges[i]);
			keep = !memcmp(&k, &t->src_old[j], sizeof(k));
		}
		if (!keep)
			bpf_map_delete_elem(fd, &t->src_old[j]);
	}
	t->nsrc_added = 0; /* live now: nothing to undo */
}

struct src_forget_ctx {
	const bool *gone;
	struct svc_snap snap; /* only srcs used */
};

static int src__collect_gone(const void *key, const void *value, void *ctx)
{
	const struct sluice_src_range_key *k = key;
	struct src_forget_ctx *c = ctx;

	if (k->svc_id >= SLUICE_MAX_SERVICES || !c->gone[k->svc_id])
		return 0;
	return src__collect(key, value, &c->snap);
}

void svc__src_forget(struct sluice *s, const bool *gone)
{
	int fd = s->fds[SLUICE_MAP_SRC_RANGES];
	struct src_forget_ctx c = { .gone = gone };

	/* collected first: deleting while walking a trie skips entries */
	maps__for_each(fd, "src_ranges", sizeof(struct sluice_src_range_key), sizeof(__u32),
		       src__collect_gone, &c);
	for (__u32 i = 0; i < c.snap.nsrcs; i++)
		bpf_map_delete_elem(fd, &c.snap.srcs[i]);
	free(c.snap.srcs);
}

struct src_read_ctx {
	__u32 svc_id;
	__u8 family;
	struct sluice_cidr *out;
	__u32 max, n;
};

static int src__read_one(const void *key, const void *value, void *ctx)
{
	const struct sluice_src_range_key *k = key;
	struct src_read_ctx *c = ctx;
	struct sluice_cidr *r;

	(void)value;
	if (k->svc_id != c->svc_id || k->prefixlen < 32)
		return 0;
	if (c->n < c->max) {
		r = &c->out[c->n];
		memset(r, 0, sizeof(*r));
		r->addr.family = c->family;
		memcpy(r->addr.addr, k->addr, sizeof(k->addr));
		r->prefixlen = (__u8)(k->prefixlen - 32);
	}
	c->n++;
	return 0;
}

int sluice__service_src_ranges(struct sluice *s, __u32 svc_id, __u8 family, struct sluice_cidr *out,
			       __u32 max, __u32 *n)
{
	struct src_read_ctx c = { .svc_id = svc_id, .family = family, .out = out, .max = max };
	int err;

	err = maps__for_each(s->fds[SLUICE_MAP_SRC_RANGES], "src_ranges",
			     sizeof(struct sluice_src_range_key), sizeof(__u32), src__read_one, &c);
	if (err)
		return err;
	*n = c.n;
	return 0;
}
