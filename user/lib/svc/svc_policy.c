// SPDX-License-Identifier: MIT
/*
 * svc_policy.c - the userspace side of a service's access policy (#15):
 * its rules compiled (policy.c) into entries of the policy LPM trie keyed
 * by its service id (bpf/lib/policy.h reads them), and the same entries in
 * the exact-match hash policy_hash when they use at most
 * SLUICE_POLICY_LENS prefix lengths (the service entry then carries
 * SLUICE_SVC_F_POLICY_HASH and the lengths, and the kernel looks it up
 * there). The trie always holds every entry: the fallback, and what an
 * older datapath reads.
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

/* svc_id's entries of map m in the snapshot. */
static int pol__plan_map(struct svc_txn *t, struct svc_snap *snap, int m)
{
	const struct svc_pol_set *set = &snap->pols[m];
	__u32 lo = 0, hi;
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
	if (t->npol_new) {
		t->pol[m].undo = calloc(t->npol_new, sizeof(*t->pol[m].undo));
		if (!t->pol[m].undo) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

int svc__policy_plan(struct svc_txn *t, struct svc_snap *snap)
{
	const struct sluice_service_spec *sp = t->spec;
	__u32 n = sp->nallow + sp->ndeny;
	int err;

	if (!n && !(t->existed && (t->old_svc.flags & SLUICE_SVC_F_POLICY)))
		return 0; /* no policy before or after: the maps are not read */
	err = sluice_policy__compile(sp->vip.family, sp->allow, sp->nallow, sp->deny, sp->ndeny,
				     &t->pol_new, &t->npol_new);
	if (err)
		return err;
	t->pol_lens = sluice_policy__lens(t->pol_new, t->npol_new);
	for (int m = 0; m < SVC_POL__MAPS && !err; m++)
		err = pol__plan_map(t, snap, m);
	return err;
}

static const struct svc_pol_elem *pol__find(const struct svc_pol_elem *v, __u32 n,
					    const struct sluice_policy_key *k)
{
	for (__u32 i = 0; i < n; i++)
		if (!memcmp(&v[i].k, k, sizeof(*k)))
			return &v[i];
	return NULL;
}

/* How many of the new entries map m holds: all of them in the trie, in
 * the hash only when the service is looked up there. */
static __u32 pol__nwant(const struct svc_txn *t, int m)
{
	return m == SVC_POL_TRIE || t->pol_lens ? t->npol_new : 0;
}

static int pol__write_map(struct svc_txn *t, int m)
{
	int fd = pol__fd(t->s, m);
	char what[SLUICE_CIDR_STRLEN + 32], cidr[SLUICE_CIDR_STRLEN];
	const struct svc_pol_elem *old;
	struct svc_pol_undo *u;
	int err;

	for (__u32 i = 0; i < pol__nwant(t, m); i++) {
		u = &t->pol[m].undo[t->pol[m].nundo];
		pol__key(&u->k, t->svc_id, &t->pol_new[i].cidr);
		old = pol__find(t->pol[m].old, t->pol[m].nold, &u->k);
		if (old && !memcmp(&old->v, &t->pol_new[i].val, sizeof(old->v)))
			continue; /* unchanged */
		u->existed = old != NULL;
		if (old)
			u->v = old->v;
		err = bpf_map_update_elem(fd, &u->k, &t->pol_new[i].val,
					  old ? BPF_EXIST : BPF_NOEXIST);
		if (err) {
			snprintf(what, sizeof(what), "of policy prefix %s",
				 sluice_cidr__str(&t->pol_new[i].cidr, cidr, sizeof(cidr)));
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

void svc__policy_delete_stale(struct svc_txn *t)
{
	struct sluice_policy_key k;
	bool keep;
	int fd;

	for (int m = 0; m < SVC_POL__MAPS; m++) {
		fd = pol__fd(t->s, m);
		for (__u32 j = 0; j < t->pol[m].nold; j++) {
			keep = false;
			for (__u32 i = 0; i < pol__nwant(t, m) && !keep; i++) {
				pol__key(&k, t->svc_id, &t->pol_new[i].cidr);
				keep = !memcmp(&k, &t->pol[m].old[j].k, sizeof(k));
			}
			if (!keep)
				bpf_map_delete_elem(fd, &t->pol[m].old[j].k);
		}
		t->pol[m].nundo = 0; /* live now: nothing to undo */
	}
}

void svc__policy_free(struct svc_txn *t)
{
	free(t->pol_new);
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
