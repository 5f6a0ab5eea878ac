// SPDX-License-Identifier: MIT
/*
 * svc_plan.c - planning a set of services before any map is written:
 * a snapshot of the backends map (read once per handle, then kept in step
 * with the writes), service ids and backend ids assigned (see svc_txn.h).
 *
 * Contract: nothing here writes a map. Ids are the lowest free ones, and a
 * backend already in a service's set keeps its id, because conntrack
 * entries and stats refer to it. Ids handed out are marked taken in the
 * snapshot, so the services of one call never share an id.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>

#include "svc_txn.h"

static int svc__mark_used_id(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc *svc = value;
	bool *used = ctx;

	(void)key;
	if (!(svc->flags & SLUICE_SVC_F_VIP_MARKER) && svc->svc_id < SLUICE_MAX_SERVICES)
		used[svc->svc_id] = true;
	return 0;
}

/* Lowest service id no service uses; ids index svc_stats and maglev. */
static int svc__alloc_id(struct svc_snap *snap, __u32 *id)
{
	struct sluice *s = snap->s;
	int err;

	if (!snap->svc_used) {
		snap->svc_used = calloc(SLUICE_MAX_SERVICES, sizeof(*snap->svc_used));
		if (!snap->svc_used) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
		err = maps__for_each(s->fds[SLUICE_MAP_SERVICES], "services",
				     sizeof(struct sluice_svc_key), sizeof(struct sluice_svc),
				     svc__mark_used_id, snap->svc_used);
		if (err)
			return err;
	}
	while (snap->next_svc < SLUICE_MAX_SERVICES && snap->svc_used[snap->next_svc])
		snap->next_svc++;
	if (snap->next_svc == SLUICE_MAX_SERVICES) {
		sluice__set_err("services map: no free service id (limit %u services)",
				SLUICE_MAX_SERVICES - 1);
		return -ENOSPC;
	}
	snap->svc_used[snap->next_svc] = true;
	*id = snap->next_svc;
	return 0;
}

static int svc__collect_backend(const void *key, const void *value, void *ctx)
{
	struct svc_snap *snap = ctx;
	const struct sluice_backend *val = value;
	__u32 id = *(const __u32 *)key;
	struct svc_be_list *l;
	struct svc_old_be *grown;

	if (id < SLUICE_MAX_BACKENDS)
		snap->be_used[id] = true;
	if (svc__deferred(snap->s, id))
		return 0; /* left its set: deleted at the next flush */
	l = val->svc_id < SLUICE_MAX_SERVICES ? &snap->by_svc[val->svc_id] : &snap->junk;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 4;
		grown = realloc(l->v, l->cap * sizeof(*l->v));
		if (!grown) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
		l->v = grown;
	}
	l->v[l->n++] = (struct svc_old_be){ .id = id, .val = *val };
	return 0;
}

static void svc__snap_free(struct svc_snap *snap)
{
	if (snap->by_svc)
		for (__u32 i = 0; i < SLUICE_MAX_SERVICES; i++)
			free(snap->by_svc[i].v);
	free(snap->by_svc);
	free(snap->junk.v);
	free(snap->svc_used);
	free(snap->be_used);
	free(snap->srcs);
	for (int i = 0; i < SVC_POL__MAPS; i++)
		free(snap->pols[i].v);
	free(snap);
}

void svc__snap_drop(struct sluice *s)
{
	if (s->snap)
		svc__snap_free(s->snap);
	s->snap = NULL;
}

struct be_each {
	maps__elem_fn fn;
	void *ctx;
	__u64 n;
};

static int svc__be_each_one(const void *key, const void *value, void *ctx)
{
	struct be_each *e = ctx;

	e->n++;
	return e->fn(key, value, e->ctx);
}

int svc__snap_each(const struct svc_snap *snap, maps__elem_fn fn, void *ctx)
{
	int err = 0;

	for (__u32 i = 0; i <= SLUICE_MAX_SERVICES && !err; i++) {
		const struct svc_be_list *l = i < SLUICE_MAX_SERVICES ? &snap->by_svc[i] :
									&snap->junk;

		for (__u32 j = 0; j < l->n && !err; j++)
			err = fn(&l->v[j].id, &l->v[j].val, ctx);
	}
	return err;
}

int svc__backends_each(struct sluice *s, maps__elem_fn fn, void *ctx, __u64 *entries)
{
	const struct svc_snap *snap = s->snap;
	struct be_each e = { fn, ctx, 0 };
	int err = 0;

	if (!snap) {
		err = maps__for_each(s->fds[SLUICE_MAP_BACKENDS], "backends", sizeof(__u32),
				     sizeof(struct sluice_backend), svc__be_each_one, &e);
	} else {
		e.n = s->npend; /* deleted from the index, still in the map */
		err = svc__snap_each(snap, svc__be_each_one, &e);
	}
	if (entries)
		*entries = e.n;
	return err;
}

void svc__snap_free_be(struct sluice *s, __u32 id)
{
	struct svc_snap *snap = s->snap;

	if (!snap || id >= SLUICE_MAX_BACKENDS)
		return;
	snap->be_used[id] = false;
	if (id < snap->next_be)
		snap->next_be = id;
}

static int svc__snap_load(struct svc_snap *snap, struct sluice *s)
{
	int err;

	snap->s = s;
	snap->next_svc = snap->next_be = 1;
	snap->be_used = calloc(SLUICE_MAX_BACKENDS, sizeof(*snap->be_used));
	snap->by_svc = calloc(SLUICE_MAX_SERVICES, sizeof(*snap->by_svc));
	if (!snap->be_used || !snap->by_svc) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	err = maps__for_each(s->fds[SLUICE_MAP_BACKENDS], "backends", sizeof(__u32),
			     sizeof(struct sluice_backend), svc__collect_backend, snap);
	if (err)
		return err;
	for (__u32 i = 0; i < s->npend; i++) /* taken until flushed */
		snap->be_used[s->pend_ids[i]] = true;
	/* once per handle: what a crash or an older library left */
	return s->addrs_synced ? 0 : svc__addrs_sync_snap(s, snap);
}

int svc__index_load(struct sluice *s)
{
	struct svc_snap *snap;

	return svc__snap_get(s, &snap);
}

int svc__index_of(const struct sluice *s, __u32 svc_id, maps__elem_fn fn, void *ctx)
{
	const struct svc_be_list *l;
	int err = 0;

	if (!s->snap || svc_id >= SLUICE_MAX_SERVICES)
		return 0;
	l = &s->snap->by_svc[svc_id];
	for (__u32 i = 0; i < l->n && !err; i++)
		err = fn(&l->v[i].id, &l->v[i].val, ctx);
	return err;
}

int svc__snap_get(struct sluice *s, struct svc_snap **out)
{
	struct svc_snap *snap = s->snap;
	int err;

	*out = NULL;
	if (!snap) {
		snap = calloc(1, sizeof(*snap));
		if (!snap) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
		err = svc__snap_load(snap, s);
		if (err) {
			svc__snap_free(snap);
			return err;
		}
		s->snap = snap;
	}
	/* src_ranges are read per call, when a spec needs them */
	free(snap->srcs);
	snap->srcs = NULL;
	snap->nsrcs = snap->srcs_cap = 0;
	snap->srcs_loaded = false;
	for (int i = 0; i < SVC_POL__MAPS; i++) {
		free(snap->pols[i].v);
		snap->pols[i] = (struct svc_pol_set){ 0 };
	}
	*out = snap;
	return 0;
}

int svc__snap_commit(struct svc_snap *snap, const struct svc_txn *t)
{
	struct svc_be_list *l;
	__u32 n = t->spec->nbackends;
	struct svc_old_be *v;

	if (t->svc_id >= SLUICE_MAX_SERVICES)
		return 0;
	l = &snap->by_svc[t->svc_id];
	if (n > l->cap) {
		v = realloc(l->v, n * sizeof(*v));
		if (!v) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
		l->v = v;
		l->cap = n;
	}
	for (__u32 i = 0; i < n; i++)
		l->v[i] = (struct svc_old_be){ .id = t->ids[i], .val = t->vals[i] };
	l->n = n;
	return 0;
}

/* The backends carrying svc_id, copied (each plan marks its own "kept"). */
static int svc__snap_backends(const struct svc_snap *snap, struct svc_txn *t)
{
	const struct svc_be_list *l;

	if (t->svc_id >= SLUICE_MAX_SERVICES || !snap->by_svc[t->svc_id].n)
		return 0;
	l = &snap->by_svc[t->svc_id];
	t->old = malloc(l->n * sizeof(*t->old));
	if (!t->old) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	memcpy(t->old, l->v, l->n * sizeof(*t->old));
	t->nold = l->n;
	return 0;
}

/* Backends already in the set keep their id (conntrack entries and stats
 * refer to it); new ones get the lowest free id. */
static int svc__assign_ids(struct svc_txn *t, struct svc_snap *snap)
{
	const struct sluice_service_spec *spec = t->spec;

	for (__u32 i = 0; i < spec->nbackends; i++) {
		const struct sluice_backend_spec *b = &spec->backends[i];
		struct sluice_addr a = { .family = 0 };

		t->old_idx[i] = -1;
		for (__u32 j = 0; j < t->nold; j++) {
			a.family = t->old[j].val.family;
			memcpy(a.addr, t->old[j].val.addr, sizeof(a.addr));
			if (!t->old[j].kept && t->old[j].val.port == htons(b->port) &&
			    sluice_addr__eq(&a, &b->addr)) {
				t->old[j].kept = true;
				t->old_idx[i] = (int)j;
				t->ids[i] = t->old[j].id;
				break;
			}
		}
		if (t->old_idx[i] >= 0)
			continue;
		while (snap->next_be < SLUICE_MAX_BACKENDS && snap->be_used[snap->next_be])
			snap->next_be++;
		/* ids of deferred deletes free up with a flush (a grace period) */
		if (snap->next_be == SLUICE_MAX_BACKENDS && svc__flush(t->s) > 0)
			while (snap->next_be < SLUICE_MAX_BACKENDS && snap->be_used[snap->next_be])
				snap->next_be++;
		if (snap->next_be == SLUICE_MAX_BACKENDS) {
			sluice__set_err("backends map: no free backend id (limit %u backends)",
					SLUICE_MAX_BACKENDS - 1);
			return -ENOSPC;
		}
		snap->be_used[snap->next_be] = true;
		t->ids[i] = snap->next_be;
	}
	return 0;
}

int svc__txn_init(struct svc_txn *t, struct sluice *s, const struct sluice_service_spec *spec,
		  const struct sluice_svc_key *key)
{
	__u32 n = spec->nbackends;

	memset(t, 0, sizeof(*t));
	t->s = s;
	t->spec = spec;
	t->key = *key;
	t->old_inner_fd = -1;
	t->new_inner_fd = -1;
	t->ids = calloc(n + 1, sizeof(*t->ids));
	t->old_idx = calloc(n + 1, sizeof(*t->old_idx));
	t->vals = calloc(n + 1, sizeof(*t->vals));
	t->undo = calloc(n + 5, sizeof(*t->undo));
	t->active = calloc(n + 1, sizeof(*t->active));
	if (!t->ids || !t->old_idx || !t->vals || !t->undo || !t->active) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (__u32 i = 0; i < n; i++) {
		t->active[i] = spec->backends[i].weight && !spec->backends[i].unhealthy;
		t->nactive += t->active[i];
	}
	return 0;
}

void svc__txn_free(struct svc_txn *t)
{
	if (t->old_inner_fd >= 0)
		close(t->old_inner_fd);
	if (t->new_inner_fd >= 0)
		close(t->new_inner_fd);
	free(t->ids);
	free(t->old_idx);
	free(t->vals);
	free(t->active);
	free(t->undo);
	free(t->old);
	free(t->src_added);
	svc__policy_free(t);
	svc__table_free(t);
	svc__health_undo_free(&t->hundo);
	memset(t, 0, sizeof(*t));
	t->old_inner_fd = t->new_inner_fd = -1;
}

int svc__plan(struct svc_txn *t, struct svc_snap *snap)
{
	struct sluice *s = t->s;
	int err;

	err = bpf_map_lookup_elem(s->fds[SLUICE_MAP_SERVICES], &t->key, &t->old_svc);
	if (err && err != -ENOENT)
		return maps__err(err, "services", "lookup", "of the service");
	t->existed = !err;
	if (t->existed)
		t->svc_id = t->old_svc.svc_id;
	else if ((err = svc__alloc_id(snap, &t->svc_id)))
		return err;
	t->marker_key = t->key;
	t->marker_key.port = 0;
	if ((err = svc__snap_backends(snap, t)))
		return err;
	return svc__assign_ids(t, snap);
}
