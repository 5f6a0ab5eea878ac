// SPDX-License-Identifier: MIT
/*
 * svc_policy.c - the userspace side of a service's access policy (#15):
 * its rules compiled (policy.c) into entries of the policy LPM trie keyed
 * by its service id (bpf/lib/policy.h reads them).
 *
 * Contract: the same order as source ranges (svc_src_range.c). Within
 * sluice__service_set_many() a service's new and changed entries are
 * written before its service entry (which carries SLUICE_SVC_F_POLICY and
 * the allow-list / refuse flags), and entries it no longer has are
 * deleted only after the whole group is live. A failed update puts back
 * exactly what it changed (old values, or deletes what it inserted) after
 * the old service entry is back, so the trie and the service are as they
 * were. The trie is read once per call, and only when a service of the
 * call has or had a policy. Deleting a service forgets its entries.
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

static int pol__collect(const void *key, const void *value, void *ctx)
{
	struct svc_snap *snap = ctx;
	struct svc_pol_elem *grown;

	if (snap->npols == snap->pols_cap) {
		snap->pols_cap = snap->pols_cap ? 2 * snap->pols_cap : 64;
		grown = realloc(snap->pols, snap->pols_cap * sizeof(*snap->pols));
		if (!grown) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
		snap->pols = grown;
	}
	memcpy(&snap->pols[snap->npols].k, key, sizeof(snap->pols[0].k));
	memcpy(&snap->pols[snap->npols].v, value, sizeof(snap->pols[0].v));
	snap->npols++;
	return 0;
}

static int pol__cmp_id(const void *a, const void *b)
{
	__u32 x = ((const struct svc_pol_elem *)a)->k.id;
	__u32 y = ((const struct svc_pol_elem *)b)->k.id;

	return x < y ? -1 : x > y;
}

static int pol__snap_load(struct svc_snap *snap)
{
	int err;

	if (snap->pols_loaded)
		return 0;
	err = maps__for_each(snap->s->fds[SLUICE_MAP_POLICY], "policy",
			     sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_val),
			     pol__collect, snap);
	if (err)
		return err;
	if (snap->npols)
		qsort(snap->pols, snap->npols, sizeof(*snap->pols), pol__cmp_id);
	snap->pols_loaded = true;
	return 0;
}

int svc__policy_plan(struct svc_txn *t, struct svc_snap *snap)
{
	const struct sluice_service_spec *sp = t->spec;
	__u32 lo = 0, hi, n = sp->nallow + sp->ndeny;
	int err;

	if (!n && !(t->existed && (t->old_svc.flags & SLUICE_SVC_F_POLICY)))
		return 0; /* no policy before or after: the trie is not read */
	err = sluice_policy__compile(sp->vip.family, sp->allow, sp->nallow, sp->deny, sp->ndeny,
				     &t->pol_new, &t->npol_new);
	if (!err)
		err = pol__snap_load(snap);
	if (err)
		return err;
	hi = snap->npols;
	while (lo < hi) { /* first entry of svc_id */
		__u32 mid = lo + (hi - lo) / 2;

		if (snap->pols[mid].k.id < t->svc_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	t->pol_old = &snap->pols[lo];
	while (lo + t->npol_old < snap->npols && snap->pols[lo + t->npol_old].k.id == t->svc_id)
		t->npol_old++;
	if (t->npol_new) {
		t->pol_undo = calloc(t->npol_new, sizeof(*t->pol_undo));
		if (!t->pol_undo) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

static const struct svc_pol_elem *pol__find(const struct svc_pol_elem *v, __u32 n,
					    const struct sluice_policy_key *k)
{
	for (__u32 i = 0; i < n; i++)
		if (!memcmp(&v[i].k, k, sizeof(*k)))
			return &v[i];
	return NULL;
}

int svc__policy_write(struct svc_txn *t)
{
	int fd = t->s->fds[SLUICE_MAP_POLICY];
	char what[SLUICE_CIDR_STRLEN + 32], cidr[SLUICE_CIDR_STRLEN];
	const struct svc_pol_elem *old;
	struct svc_pol_undo *u;
	int err;

	for (__u32 i = 0; i < t->npol_new; i++) {
		u = &t->pol_undo[t->npol_undo];
		pol__key(&u->k, t->svc_id, &t->pol_new[i].cidr);
		old = pol__find(t->pol_old, t->npol_old, &u->k);
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
			return maps__err(err, "policy", old ? "update" : "insert", what);
		}
		t->npol_undo++;
	}
	return 0;
}

void svc__policy_undo(struct svc_txn *t)
{
	int fd = t->s->fds[SLUICE_MAP_POLICY];
	struct svc_pol_undo *u;

	while (t->npol_undo) {
		u = &t->pol_undo[--t->npol_undo];
		if (u->existed)
			bpf_map_update_elem(fd, &u->k, &u->v, BPF_ANY);
		else
			bpf_map_delete_elem(fd, &u->k);
	}
}

void svc__policy_delete_stale(struct svc_txn *t)
{
	int fd = t->s->fds[SLUICE_MAP_POLICY];
	struct sluice_policy_key k;
	bool keep;

	for (__u32 j = 0; j < t->npol_old; j++) {
		keep = false;
		for (__u32 i = 0; i < t->npol_new && !keep; i++) {
			pol__key(&k, t->svc_id, &t->pol_new[i].cidr);
			keep = !memcmp(&k, &t->pol_old[j].k, sizeof(k));
		}
		if (!keep)
			bpf_map_delete_elem(fd, &t->pol_old[j].k);
	}
	t->npol_undo = 0; /* live now: nothing to undo */
}

void svc__policy_free(struct svc_txn *t)
{
	free(t->pol_new);
	free(t->pol_undo);
}

struct pol_forget_ctx {
	const bool *gone;
	struct svc_snap snap; /* only pols used */
};

static int pol__collect_gone(const void *key, const void *value, void *ctx)
{
	const struct sluice_policy_key *k = key;
	struct pol_forget_ctx *c = ctx;

	if (k->id >= SLUICE_MAX_SERVICES || !c->gone[k->id])
		return 0;
	return pol__collect(key, value, &c->snap);
}

void svc__policy_forget(struct sluice *s, const bool *gone)
{
	int fd = s->fds[SLUICE_MAP_POLICY];
	struct pol_forget_ctx c = { .gone = gone };

	/* collected first: deleting while walking a trie skips entries */
	maps__for_each(fd, "policy", sizeof(struct sluice_policy_key),
		       sizeof(struct sluice_policy_val), pol__collect_gone, &c);
	for (__u32 i = 0; i < c.snap.npols; i++)
		bpf_map_delete_elem(fd, &c.snap.pols[i].k);
	free(c.snap.pols);
}
