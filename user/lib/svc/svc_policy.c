// SPDX-License-Identifier: MIT
/*
 * svc_policy.c - the userspace side of a service's access policy (#15):
 * its rules compiled (policy.c) into entries of the policy LPM trie keyed
 * by its service id (bpf/lib/policy.h reads them), and in the exact-match
 * hash policy_hash the same entries when they use at most
 * SLUICE_POLICY_LENS prefix lengths, or their expansion to that many
 * (sluice_policy__expand(): at most SLUICE_POLICY_EXPAND_FACTOR times as
 * many entries, and while policy_hash has room); the service entry then
 * carries SLUICE_SVC_F_POLICY_HASH and the lengths, and the kernel looks
 * it up there. The trie always holds every entry unexpanded: the
 * fallback, and what an older datapath reads.
 *
 * Contract: the same order as source ranges (svc_src_range.c). Within
 * sluice__service_set_many() a service's new and changed entries are
 * written before its service entry (which carries SLUICE_SVC_F_POLICY and
 * the allow-list / refuse flags), and entries it no longer has are
 * deleted only after the whole group is live. A failed update puts back
 * exactly what it changed (old values, or deletes what it inserted) after
 * the old service entry is back, so the trie and the service are as they
 * were. Each map is diffed on its own (old entries of svc_id in it against
 * the entries it should hold now), so a service moving between the hash
 * and the trie alone, or one an older agent left without hash entries,
 * gets them written before its service entry flips and loses them after.
 * Both maps are read once per call, and only when a service of the call
 * has or had a policy. Deleting a service forgets its entries.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "svc_txn.h"

static void pol__key(struct sluice_policy_key *k, __u32 id, const struct sluice_cidr *c)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = 32 + c->prefixlen;
	k->id = id;
	svc__addr_copy(k->addr, &c->addr);
}

static const char *const pol__names[SVC_POL__MAPS] = { "policy", "policy_hash" };

static int pol__fd(const struct sluice *s, int m)
{
	return s->fds[m == SVC_POL_HASH ? SLUICE_MAP_POLICY_HASH : SLUICE_MAP_POLICY];
}

static int pol__collect(const void *key, const void *value, void *ctx)
{
	struct svc_pol_set *set = ctx;
	struct svc_pol_elem *grown;

	if (set->n == set->cap) {
		set->cap = set->cap ? 2 * set->cap : 64;
		grown = realloc(set->v, set->cap * sizeof(*set->v));
		if (!grown) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
		set->v = grown;
	}
	memcpy(&set->v[set->n].k, key, sizeof(set->v[0].k));
	memcpy(&set->v[set->n].v, value, sizeof(set->v[0].v));
	set->n++;
	return 0;
}

/* Any total order of keys, for the lookups of one service's old entries. */
static int pol__cmp_key(const void *a, const void *b)
{
	return memcmp(&((const struct svc_pol_elem *)a)->k, &((const struct svc_pol_elem *)b)->k,
		      sizeof(struct sluice_policy_key));
}

static int pol__cmp_id(const void *a, const void *b)
{
	__u32 x = ((const struct svc_pol_elem *)a)->k.id;
	__u32 y = ((const struct svc_pol_elem *)b)->k.id;

	return x < y ? -1 : x > y;
}

static int pol__snap_load(struct svc_snap *snap, int m)
{
	struct svc_pol_set *set = &snap->pols[m];
	int err;

	if (set->loaded)
		return 0;
	err = maps__for_each(pol__fd(snap->s, m), pol__names[m], sizeof(struct sluice_policy_key),
			     sizeof(struct sluice_policy_val), pol__collect, set);
	if (err)
		return err;
	if (set->n)
		qsort(set->v, set->n, sizeof(*set->v), pol__cmp_id);
	set->loaded = true;
	return 0;
}

/* The new entries of map m: in the trie all compiled ones, in the hash
 * those of the lookups by length (none when the trie alone decides). */
static const struct sluice_policy_entry *pol__want(const struct svc_txn *t, int m, __u32 *n)
{
	*n = m == SVC_POL_TRIE ? t->npol_new : t->npol_hash;
	return m == SVC_POL_TRIE ? t->pol_new : t->pol_hash;
}

/* svc_id's entries of map m in the snapshot. */
static int pol__plan_map(struct svc_txn *t, struct svc_snap *snap, int m)
{
	struct svc_pol_set *set = &snap->pols[m];
	__u32 lo = 0, hi, nwant;
	int err;

	err = pol__snap_load(snap, m);
	if (err)
		return err;
	hi = set->n;
	while (lo < hi) { /* first entry of svc_id */
		__u32 mid = lo + (hi - lo) / 2;

		if (set->v[mid].k.id < t->svc_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	t->pol[m].old = &set->v[lo];
	while (lo + t->pol[m].nold < set->n && set->v[lo + t->pol[m].nold].k.id == t->svc_id)
		t->pol[m].nold++;
	/* one id: sorting its run by key keeps the set sorted by id, and
	 * pol__find() a binary search (thousands of entries when expanded) */
	if (t->pol[m].nold > 1) /* set->v is NULL when the map is empty */
		qsort(&set->v[lo], t->pol[m].nold, sizeof(*set->v), pol__cmp_key);
	pol__want(t, m, &nwant); /* policy_hash's before its room is known: at most that */
	if (nwant) {
		t->pol[m].undo = calloc(nwant, sizeof(*t->pol[m].undo));
		if (!t->pol[m].undo) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

static const struct svc_pol_elem *pol__find(const struct svc_pol_elem *v, __u32 n,
					    const struct sluice_policy_key *k);

/* How many of the new policy_hash entries are keys it does not hold yet
 * (a key it holds is replaced in place, which takes no room). */
static __u32 pol__hash_inserts(const struct svc_txn *t)
{
	struct sluice_policy_key k;
	__u32 n = 0;

	for (__u32 i = 0; i < t->npol_hash; i++) {
		pol__key(&k, t->svc_id, &t->pol_hash[i].cidr);
		n += !pol__find(t->pol[SVC_POL_HASH].old, t->pol[SVC_POL_HASH].nold, &k);
	}
	return n;
}

/* policy_hash's room for @inserts new keys: the map's size less what it
 * holds and what the call's earlier plans insert. Stale entries are
 * deleted only once their whole group is live, so nothing is counted as
 * freed before that. Without room the service goes to the trie alone (its
 * old hash entries, if any, are deleted once the service entry no longer
 * names them), as it would with too many lengths: an update is not
 * refused for want of the hash (unless another writer fills it
 * meanwhile), and setting the same rules again needs no room. */
static bool pol__hash_room(struct svc_snap *snap, __u32 inserts)
{
	struct svc_pol_set *set = &snap->pols[SVC_POL_HASH];

	return (long long)set->n + set->delta + inserts <= SLUICE_POLICY_MAX;
}

int svc__policy_plan(struct svc_txn *t, struct svc_snap *snap)
{
	const struct sluice_service_spec *sp = t->spec;
	__u32 n = sp->nallow + sp->ndeny, max, inserts;
	int err;

	if (!n && !(t->existed && (t->old_svc.flags & SLUICE_SVC_F_POLICY)))
		return 0; /* no policy before or after: the maps are not read */
	err = sluice_policy__compile(sp->vip.family, sp->allow, sp->nallow, sp->deny, sp->ndeny,
				     &t->pol_new, &t->npol_new);
	if (err)
		return err;
	max = SLUICE_POLICY_EXPAND_FACTOR * t->npol_new;
	if (max > SLUICE_POLICY_EXPAND_MAX)
		max = SLUICE_POLICY_EXPAND_MAX;
	err = sluice_policy__expand(t->pol_new, t->npol_new, max, &t->pol_hash, &t->npol_hash,
				    &t->pol_lens);
	for (int m = 0; m < SVC_POL__MAPS && !err; m++)
		err = pol__plan_map(t, snap, m);
	if (err)
		return err;
	inserts = pol__hash_inserts(t);
	if (t->pol_lens && !pol__hash_room(snap, inserts)) {
		free(t->pol_hash);
		t->pol_hash = NULL;
		t->npol_hash = 0;
		t->pol_lens = 0;
		inserts = 0;
	}
	snap->pols[SVC_POL_HASH].delta += inserts;
	return 0;
}

/* The entry of key k among v[0..n), sorted by pol__cmp_key(). */
static const struct svc_pol_elem *pol__find(const struct svc_pol_elem *v, __u32 n,
					    const struct sluice_policy_key *k)
{
	struct svc_pol_elem want = { .k = *k };

	return n ? bsearch(&want, v, n, sizeof(*v), pol__cmp_key) : NULL;
}

static int pol__write_map(struct svc_txn *t, int m)
{
	int fd = pol__fd(t->s, m);
	char what[SLUICE_CIDR_STRLEN + 32], cidr[SLUICE_CIDR_STRLEN];
	const struct svc_pol_elem *old;
	const struct sluice_policy_entry *want;
	struct svc_pol_undo *u;
	__u32 nwant;
	int err;

	want = pol__want(t, m, &nwant);
	for (__u32 i = 0; i < nwant; i++) {
		u = &t->pol[m].undo[t->pol[m].nundo];
		pol__key(&u->k, t->svc_id, &want[i].cidr);
		old = pol__find(t->pol[m].old, t->pol[m].nold, &u->k);
		if (old && !memcmp(&old->v, &want[i].val, sizeof(old->v)))
			continue; /* unchanged */
		u->existed = old != NULL;
		if (old)
			u->v = old->v;
		err = bpf_map_update_elem(fd, &u->k, &want[i].val, old ? BPF_EXIST : BPF_NOEXIST);
		if (err) {
			snprintf(what, sizeof(what), "of policy prefix %s",
				 sluice_cidr__str(&want[i].cidr, cidr, sizeof(cidr)));
			return maps__err(err, pol__names[m], old ? "update" : "insert", what);
		}
		t->pol[m].nundo++;
	}
	return 0;
}

int svc__policy_write(struct svc_txn *t)
{
	int err = 0;

	for (int m = 0; m < SVC_POL__MAPS && !err; m++)
		err = pol__write_map(t, m);
	return err;
}

void svc__policy_undo(struct svc_txn *t)
{
	struct svc_pol_undo *u;
	int fd;

	for (int m = 0; m < SVC_POL__MAPS; m++) {
		fd = pol__fd(t->s, m);
		while (t->pol[m].nundo) {
			u = &t->pol[m].undo[--t->pol[m].nundo];
			if (u->existed)
				bpf_map_update_elem(fd, &u->k, &u->v, BPF_ANY);
			else
				bpf_map_delete_elem(fd, &u->k);
		}
	}
}

/* Deletes the old entries of map m the update no longer wants. */
static void pol__delete_stale_map(struct svc_txn *t, int m)
{
	const struct svc_pol_elem *old = t->pol[m].old, *f;
	__u32 nold = t->pol[m].nold, nwant;
	const struct sluice_policy_entry *want = pol__want(t, m, &nwant);
	int fd = pol__fd(t->s, m);
	struct sluice_policy_key k;
	bool *keep, wanted;

	if (!nold)
		return;
	keep = calloc(nold, sizeof(*keep));
	if (!keep) { /* no memory for the marks: one old entry at a time */
		for (__u32 j = 0; j < nold; j++) {
			wanted = false;
			for (__u32 i = 0; i < nwant && !wanted; i++) {
				pol__key(&k, t->svc_id, &want[i].cidr);
				wanted = !memcmp(&k, &old[j].k, sizeof(k));
			}
			if (!wanted)
				bpf_map_delete_elem(fd, &old[j].k);
		}
		return;
	}
	for (__u32 i = 0; i < nwant; i++) {
		pol__key(&k, t->svc_id, &want[i].cidr);
		f = pol__find(old, nold, &k);
		if (f)
			keep[f - old] = true;
	}
	for (__u32 j = 0; j < nold; j++)
		if (!keep[j])
			bpf_map_delete_elem(fd, &old[j].k);
	free(keep);
}

void svc__policy_delete_stale(struct svc_txn *t)
{
	for (int m = 0; m < SVC_POL__MAPS; m++) {
		pol__delete_stale_map(t, m);
		t->pol[m].nundo = 0; /* live now: nothing to undo */
	}
}

void svc__policy_free(struct svc_txn *t)
{
	free(t->pol_new);
	free(t->pol_hash);
	for (int m = 0; m < SVC_POL__MAPS; m++)
		free(t->pol[m].undo);
}

struct pol_forget_ctx {
	const bool *gone;
	struct svc_pol_set set;
};

static int pol__collect_gone(const void *key, const void *value, void *ctx)
{
	const struct sluice_policy_key *k = key;
	struct pol_forget_ctx *c = ctx;

	if (k->id >= SLUICE_MAX_SERVICES || !c->gone[k->id])
		return 0;
	return pol__collect(key, value, &c->set);
}

void svc__policy_forget(struct sluice *s, const bool *gone)
{
	for (int m = 0; m < SVC_POL__MAPS; m++) {
		int fd = pol__fd(s, m);
		struct pol_forget_ctx c = { .gone = gone };

		/* collected first: deleting while walking a map skips entries */
		maps__for_each(fd, pol__names[m], sizeof(struct sluice_policy_key),
			       sizeof(struct sluice_policy_val), pol__collect_gone, &c);
		for (__u32 i = 0; i < c.set.n; i++)
			bpf_map_delete_elem(fd, &c.set.v[i].k);
		free(c.set.v);
	}
}
