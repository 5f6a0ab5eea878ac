// SPDX-License-Identifier: MIT
/*
 * svc_health.c - the service side of passive outlier detection (#14):
 * writing a service's svc_health entry whenever the service is written,
 * zeroing a backend id's health when the id goes to a new backend, and
 * the same entry for many services at once (meshd's start).
 *
 * Contract: `backends` counts the active ids of the service's set (weight
 * > 0, not unhealthy by probe: the ones the Maglev table holds) and
 * `ejected` is recounted from the backend_health entries of those same
 * ids, so it matches the flags the kernel will decrement (a count lower
 * than the flags would wrap on a restore). An id that is not active
 * (drained, unhealthy) loses its ejection, as a removed one does: no pick
 * can choose it, so no success would ever restore it, and its flag would
 * hold a slot of the max-ejected budget for as long as it stays. Every
 * entry written by an update is saved first, so a rejected update puts
 * both maps back byte for byte. The kernel may change `ejected` between
 * our read and write; the next write of the service recounts it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "internal.h"

static int health__save(struct svc_health_undo *undo, bool svc, __u32 key, const void *val)
{
	struct svc_health_saved *grown, *e;

	if (undo->n == undo->cap) {
		undo->cap = undo->cap ? 2 * undo->cap : 16;
		grown = realloc(undo->v, undo->cap * sizeof(*undo->v));
		if (!grown) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
		undo->v = grown;
	}
	e = &undo->v[undo->n++];
	memset(e, 0, sizeof(*e));
	e->svc = svc;
	e->key = key;
	if (svc)
		e->sh = *(const struct sluice_svc_health *)val;
	else
		e->bh = *(const struct sluice_backend_health *)val;
	return 0;
}

/* Write bh (saving the old entry) unless it already holds exactly that. */
static int health__write_backend(struct sluice *s, __u32 id,
				 const struct sluice_backend_health *old,
				 const struct sluice_backend_health *bh,
				 struct svc_health_undo *undo)
{
	int err;

	if (!memcmp(old, bh, sizeof(*bh)))
		return 0;
	if (undo && (err = health__save(undo, false, id, old)))
		return err;
	err = bpf_map_update_elem(s->fds[SLUICE_MAP_BACKEND_HEALTH], &id, bh, BPF_ANY);
	if (err) {
		if (undo)
			undo->n--; /* nothing to undo */
		return maps__err(err, "backend_health", "update", "of a backend");
	}
	return 0;
}

/* Ids at most this far apart (and this many) are read with one batched
 * range read; others one lookup each. */
#define HEALTH_RANGE_MAX 4096

/* The entries of ids (n >= 1) into olds: one batched read of the range
 * they span where it is small and dense (a new set's ids are handed out
 * lowest free first, so they mostly are), else one lookup each. */
static int health__read_ids(struct sluice *s, const __u32 *ids, __u32 n,
			    struct sluice_backend_health *olds)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int fd = s->fds[SLUICE_MAP_BACKEND_HEALTH];
	struct sluice_backend_health *vals = NULL;
	__u32 lo = ids[0], hi = ids[0], span, count, in, out, *keys = NULL;
	bool batched = false;
	int err;

	for (__u32 i = 1; i < n; i++) {
		lo = ids[i] < lo ? ids[i] : lo;
		hi = ids[i] > hi ? ids[i] : hi;
	}
	span = hi - lo + 1;
	if (n > 1 && span <= HEALTH_RANGE_MAX && span <= 4 * n) {
		keys = calloc(span, sizeof(*keys));
		vals = calloc(span, sizeof(*vals));
		count = span;
		in = lo - 1;
		err = keys && vals ? bpf_map_lookup_batch(fd, lo ? &in : NULL, &out, keys, vals,
							  &count, &opts) :
				     -ENOMEM;
		/* every key of the range read, in order (else: one by one) */
		batched = (!err || err == -ENOENT) && count == span && keys[0] == lo;
		for (__u32 i = 0; batched && i < n; i++)
			olds[i] = vals[ids[i] - lo];
		free(keys);
		free(vals);
	}
	for (__u32 i = 0; !batched && i < n; i++) {
		err = bpf_map_lookup_elem(fd, &ids[i], &olds[i]);
		if (err)
			return maps__err(err, "backend_health", "lookup", "of a new backend's id");
	}
	return 0;
}

int svc__health_zero_backends(struct sluice *s, const __u32 *ids, __u32 n,
			      struct svc_health_undo *undo)
{
	struct sluice_backend_health *olds, zero = {};
	int err;

	if (!n)
		return 0;
	olds = calloc(n, sizeof(*olds));
	if (!olds) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	err = health__read_ids(s, ids, n, olds);
	for (__u32 i = 0; !err && i < n; i++)
		err = health__write_backend(s, ids[i], &olds[i], &zero, undo);
	free(olds);
	return err;
}

/* Outlier detection off: no ejection survives (and none is counted), so
 * turning it on again starts every backend afresh. The last failure's
 * time and reason stay, for the listing. */
static int health__clear_backend(struct sluice *s, __u32 id,
				 const struct sluice_backend_health *old,
				 struct svc_health_undo *undo)
{
	struct sluice_backend_health bh = *old;

	bh.flags &= ~SLUICE_BH_F_EJECTED;
	bh.ejected_until_ns = 0;
	bh.ejections = 0;
	bh.fails = 0;
	return health__write_backend(s, id, old, &bh, undo);
}

/* An id out of the Maglev table (drained, unhealthy by probe): its
 * ejection ends, as for a removed backend (svc__health_forget_backend). */
static int health__unflag_backend(struct sluice *s, __u32 id,
				  const struct sluice_backend_health *old,
				  struct svc_health_undo *undo)
{
	struct sluice_backend_health bh = *old;

	bh.flags &= ~SLUICE_BH_F_EJECTED;
	bh.ejected_until_ns = 0;
	return health__write_backend(s, id, old, &bh, undo);
}

int svc__health_write(struct sluice *s, __u32 svc_id, const struct sluice_outlier_spec *o,
		      const __u32 *ids, const bool *active, const bool *zeroed, __u32 nids,
		      struct svc_health_undo *undo)
{
	int bfd = s->fds[SLUICE_MAP_BACKEND_HEALTH], sfd = s->fds[SLUICE_MAP_SVC_HEALTH];
	struct sluice_backend_health bh;
	struct sluice_svc_health old, sh;
	__u32 nactive = 0;
	int err;

	sluice_outlier__to_kernel(o, s->outlier_off, &sh);
	for (__u32 i = 0; i < nids; i++) {
		err = 0;
		if (zeroed && zeroed[i])
			memset(&bh, 0, sizeof(bh)); /* written so just before */
		else
			err = bpf_map_lookup_elem(bfd, &ids[i], &bh);
		if (err)
			return maps__err(err, "backend_health", "lookup", "of a backend");
		nactive += active[i];
		if (!sh.threshold)
			err = health__clear_backend(s, ids[i], &bh, undo);
		else if (!active[i])
			err = health__unflag_backend(s, ids[i], &bh, undo);
		else if (bh.flags & SLUICE_BH_F_EJECTED)
			sh.ejected++;
		if (err)
			return err;
	}
	sh.backends = nactive > 0xffff ? 0xffff : (__u16)nactive;
	err = bpf_map_lookup_elem(sfd, &svc_id, &old);
	if (err)
		return maps__err(err, "svc_health", "lookup", "of the service");
	if (!memcmp(&old, &sh, sizeof(sh)))
		return 0;
	if (undo && (err = health__save(undo, true, svc_id, &old)))
		return err;
	err = bpf_map_update_elem(sfd, &svc_id, &sh, BPF_ANY);
	if (err) {
		if (undo)
			undo->n--;
		return maps__err(err, "svc_health", "update", "of the service");
	}
	return 0;
}

int svc__health_forget_backend(struct sluice *s, __u32 id, struct svc_health_undo *undo)
{
	struct sluice_backend_health old;
	int err;

	err = bpf_map_lookup_elem(s->fds[SLUICE_MAP_BACKEND_HEALTH], &id, &old);
	if (err)
		return maps__err(err, "backend_health", "lookup", "of a removed backend");
	return health__unflag_backend(s, id, &old, undo);
}

void svc__health_undo_run(struct sluice *s, struct svc_health_undo *undo)
{
	while (undo->n) {
		const struct svc_health_saved *e = &undo->v[--undo->n];

		if (e->svc)
			bpf_map_update_elem(s->fds[SLUICE_MAP_SVC_HEALTH], &e->key, &e->sh,
					    BPF_ANY);
		else
			bpf_map_update_elem(s->fds[SLUICE_MAP_BACKEND_HEALTH], &e->key, &e->bh,
					    BPF_ANY);
	}
}

void svc__health_undo_free(struct svc_health_undo *undo)
{
	free(undo->v);
	memset(undo, 0, sizeof(*undo));
}

void svc__health_forget(struct sluice *s, __u32 svc_id)
{
	struct sluice_svc_health zero = {};

	if (svc_id < SLUICE_MAX_SERVICES)
		bpf_map_update_elem(s->fds[SLUICE_MAP_SVC_HEALTH], &svc_id, &zero, BPF_ANY);
}

/* --- every service at once (meshd's start) --- */

/* Three map walks in batches instead of ~12 syscalls per service (30k
 * services x 10: 0.6 -> 2 s of lookups at a restart): the backends map
 * says whose each id is, the backend_health walk applies each id's rule
 * and counts per service, the svc_health walk writes what differs. */
struct health_sync {
	struct sluice *s;
	__u32 *svc_of;                  /* [SLUICE_MAX_BACKENDS]: svc id + 1; 0: none */
	bool *active;                   /* [SLUICE_MAX_BACKENDS]: in the Maglev table */
	struct sluice_svc_health *want; /* [SLUICE_MAX_SERVICES], for `set` ones */
	__u32 *nactive;                 /* [SLUICE_MAX_SERVICES] */
	__u32 *ejected;                 /* [SLUICE_MAX_SERVICES] */
	bool *set;                      /* [SLUICE_MAX_SERVICES]: a ref names it */
	__u32 max_id, max_sid;          /* the highest ids in use: the walks stop there */
	__u32 done;
};

/* A callback's "past the last id in use": ends a walk early, not an error
 * (the arrays are 327680 and 32768 entries; ids are handed out low first). */
#define HEALTH_WALK_END (-ECANCELED)

static int health__collect(const void *key, const void *value, void *ctx)
{
	const struct sluice_backend *be = value;
	struct health_sync *c = ctx;
	__u32 id = *(const __u32 *)key;

	if (be->svc_id >= SLUICE_MAX_SERVICES || id >= SLUICE_MAX_BACKENDS)
		return 0;
	c->svc_of[id] = be->svc_id + 1;
	if (id > c->max_id)
		c->max_id = id;
	/* as service.c counts backend_count: a probe-unhealthy backend
	 * keeps its weight but is out of the table */
	c->active[id] = be->weight && be->state == SLUICE_BE_ACTIVE;
	return 0;
}

/* svc__health_write()'s rule for one id, on the value the walk read. */
static int health__sync_backend(const void *key, const void *value, void *ctx)
{
	const struct sluice_backend_health *old = value;
	struct sluice_backend_health bh = *old;
	struct health_sync *c = ctx;
	__u32 id = *(const __u32 *)key, sid;
	int err;

	if (id > c->max_id)
		return HEALTH_WALK_END;
	if (!c->svc_of[id] || !c->set[c->svc_of[id] - 1])
		return 0;
	sid = c->svc_of[id] - 1;
	c->nactive[sid] += c->active[id];
	if (!c->want[sid].threshold) { /* as health__clear_backend() */
		bh.flags &= ~SLUICE_BH_F_EJECTED;
		bh.ejected_until_ns = 0;
		bh.ejections = 0;
		bh.fails = 0;
	} else if (!c->active[id]) { /* as health__unflag_backend() */
		bh.flags &= ~SLUICE_BH_F_EJECTED;
		bh.ejected_until_ns = 0;
	} else if (bh.flags & SLUICE_BH_F_EJECTED) {
		c->ejected[sid]++;
	}
	if (!memcmp(old, &bh, sizeof(bh)))
		return 0;
	err = bpf_map_update_elem(c->s->fds[SLUICE_MAP_BACKEND_HEALTH], &id, &bh, BPF_ANY);
	return err ? maps__err(err, "backend_health", "update", "of a backend") : 0;
}

static int health__sync_svc(const void *key, const void *value, void *ctx)
{
	struct health_sync *c = ctx;
	__u32 sid = *(const __u32 *)key;
	struct sluice_svc_health sh;
	int err;

	if (sid > c->max_sid)
		return HEALTH_WALK_END;
	if (!c->set[sid])
		return 0;
	sh = c->want[sid];
	sh.ejected = c->ejected[sid];
	sh.backends = c->nactive[sid] > 0xffff ? 0xffff : (__u16)c->nactive[sid];
	if (memcmp(value, &sh, sizeof(sh))) {
		err = bpf_map_update_elem(c->s->fds[SLUICE_MAP_SVC_HEALTH], &sid, &sh, BPF_ANY);
		if (err)
			return maps__err(err, "svc_health", "update", "of the service");
	}
	c->done++;
	return 0;
}

int sluice__outlier_sync(struct sluice *s, const struct sluice_service_ref *refs,
			 const struct sluice_outlier_spec *o, __u32 n, __u32 *written)
{
	struct health_sync c = { .s = s };
	struct sluice_svc_key key;
	struct sluice_svc svc;
	int err;

	sluice__clear_err();
	c.svc_of = calloc(SLUICE_MAX_BACKENDS, sizeof(*c.svc_of));
	c.active = calloc(SLUICE_MAX_BACKENDS, sizeof(*c.active));
	c.want = calloc(SLUICE_MAX_SERVICES, sizeof(*c.want));
	c.nactive = calloc(SLUICE_MAX_SERVICES, sizeof(*c.nactive));
	c.ejected = calloc(SLUICE_MAX_SERVICES, sizeof(*c.ejected));
	c.set = calloc(SLUICE_MAX_SERVICES, sizeof(*c.set));
	if (!c.svc_of || !c.active || !c.want || !c.nactive || !c.ejected || !c.set) {
		sluice__set_err("out of memory");
		err = -ENOMEM;
		goto cleanup;
	}
	for (__u32 i = 0; i < n; i++) {
		err = svc__make_key(&key, &refs[i].vip, refs[i].port, refs[i].proto);
		if (err)
			goto cleanup;
		if (bpf_map_lookup_elem(s->fds[SLUICE_MAP_SERVICES], &key, &svc) ||
		    svc.svc_id >= SLUICE_MAX_SERVICES)
			continue; /* not in the maps: nothing to configure */
		c.set[svc.svc_id] = true;
		if (svc.svc_id > c.max_sid)
			c.max_sid = svc.svc_id;
		sluice_outlier__to_kernel(&o[i], s->outlier_off, &c.want[svc.svc_id]);
	}
	/* the handle's index when it holds one (after a restart's reconcile:
	 * no walk of its own) */
	err = svc__backends_each(s, health__collect, &c, NULL);
	if (!err)
		err = maps__for_each(s->fds[SLUICE_MAP_BACKEND_HEALTH], "backend_health",
				     sizeof(__u32), sizeof(struct sluice_backend_health),
				     health__sync_backend, &c);
	if (err == HEALTH_WALK_END)
		err = 0;
	if (!err)
		err = maps__for_each(s->fds[SLUICE_MAP_SVC_HEALTH], "svc_health", sizeof(__u32),
				     sizeof(struct sluice_svc_health), health__sync_svc, &c);
	if (err == HEALTH_WALK_END)
		err = 0;
cleanup:
	if (written)
		*written = c.done;
	free(c.svc_of);
	free(c.active);
	free(c.want);
	free(c.nactive);
	free(c.ejected);
	free(c.set);
	return err;
}
