// SPDX-License-Identifier: MIT
/*
 * svc_query.c - reading and deleting services. Deletion removes the
 * service entry first, so no new packet can reach its table or backends
 * while the rest goes; the VIP marker goes with the last service on its
 * address and protocol.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "internal.h"
#include "svc_txn.h"

struct svc_ids_ctx {
	const struct sluice *skip; /* its deferred deletes are left out */
	__u32 svc_id;
	__u32 *ids;
	__u32 n, cap;
};

static int svc__collect_id(const void *key, const void *value, void *ctx)
{
	const struct sluice_backend *be = value;
	struct svc_ids_ctx *c = ctx;

	if (c->skip && svc__deferred(c->skip, *(const __u32 *)key))
		return 0;
	if (be->svc_id == c->svc_id && c->n < c->cap)
		c->ids[c->n++] = *(const __u32 *)key;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* Ids of the backends carrying svc_id, ascending; at most cap of them.
 * With live, not the ones whose delete is deferred (they left the set). */
static int svc__backend_ids(struct sluice *s, __u32 svc_id, bool live, __u32 *ids, __u32 cap,
			    __u32 *n)
{
	struct svc_ids_ctx c = { .skip = live ? s : NULL, .svc_id = svc_id, .ids = ids, .cap = cap };
	int err;

	err = maps__for_each(s->fds[SLUICE_MAP_BACKENDS], "backends", sizeof(__u32),
			     sizeof(struct sluice_backend), svc__collect_id, &c);
	if (err)
		return err;
	qsort(ids, c.n, sizeof(*ids), cmp_u32);
	*n = c.n;
	return 0;
}

struct vip_users_ctx {
	const struct sluice_svc_key *marker;
	bool found;
};

static int svc__find_vip_user(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc_key *k = key;
	const struct sluice_svc *svc = value;
	struct vip_users_ctx *c = ctx;

	if (!(svc->flags & SLUICE_SVC_F_VIP_MARKER) && k->family == c->marker->family &&
	    k->proto == c->marker->proto && !memcmp(k->addr, c->marker->addr, sizeof(k->addr)))
		c->found = true;
	return 0;
}

/* The marker goes with the last service on its VIP and proto. */
static int svc__drop_marker(struct sluice *s, const struct sluice_svc_key *key)
{
	struct sluice_svc_key marker = *key;
	struct vip_users_ctx c = { .marker = &marker };
	int err;

	marker.port = 0;
	err = maps__for_each(s->fds[SLUICE_MAP_SERVICES], "services", sizeof(struct sluice_svc_key),
			     sizeof(struct sluice_svc), svc__find_vip_user, &c);
	if (err || c.found)
		return err;
	err = bpf_map_delete_elem(s->fds[SLUICE_MAP_SERVICES], &marker);
	if (!err)
		svc__count(s, true, -1);
	if (err && err != -ENOENT)
		return maps__err(err, "services", "delete", "of the VIP marker");
	/* the address may have no key left; best effort: a stale bit only
	 * costs its packets the services lookup */
	svc__vip_bits_sync(s);
	return 0;
}

static int svc__lookup(struct sluice *s, const struct sluice_svc_key *key, struct sluice_svc *svc)
{
	char name[SLUICE_ADDRPORT_STRLEN + 8];
	int err;

	err = bpf_map_lookup_elem(s->fds[SLUICE_MAP_SERVICES], key, svc);
	if (err == -ENOENT)
		sluice__set_err("service %s does not exist",
				sluice_svc_key__str(key, name, sizeof(name)));
	else if (err)
		maps__err(err, "services", "lookup", "of the service");
	return err;
}

int sluice__service_del(struct sluice *s, const struct sluice_addr *vip, __u16 port, __u8 proto)
{
	struct sluice_svc_key key;
	struct sluice_svc svc;
	__u32 *ids = NULL, n = 0;
	int err;

	sluice__clear_err();
	err = svc__make_key(&key, vip, port, proto);
	if (err)
		return err;
	err = svc__lookup(s, &key, &svc);
	if (err)
		return err;
	ids = calloc(SLUICE_MAX_BACKENDS, sizeof(*ids));
	if (!ids) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	/* Service first: after it no new packet reaches the table or the
	 * backends, so the rest can go in any order. */
	err = bpf_map_delete_elem(s->fds[SLUICE_MAP_SERVICES], &key);
	if (err) {
		maps__err(err, "services", "delete", "of the service");
		goto cleanup;
	}
	svc__count(s, false, -1);
	svc__health_forget(s, svc.svc_id);
	err = bpf_map_delete_elem(s->fds[SLUICE_MAP_MAGLEV], &svc.svc_id);
	if (err && err != -ENOENT) {
		maps__err(err, "maglev", "delete", "of the service's table");
		goto cleanup;
	}
	svc__table_forget(s, svc.svc_id);
	svc__snap_drop(s);
	err = svc__backend_ids(s, svc.svc_id, false, ids, SLUICE_MAX_BACKENDS, &n);
	if (err)
		goto cleanup;
	for (__u32 i = 0; i < n; i++) {
		err = svc__backend_delete(s, ids[i]);
		if (err && err != -ENOENT) {
			maps__err(err, "backends", "delete", "of a backend of the service");
			goto cleanup;
		}
	}
	err = svc__drop_marker(s, &key);
	if (!err &&
	    (svc.flags &
	     (SLUICE_SVC_F_AFFINITY | SLUICE_SVC_F_SOURCE_RANGES | SLUICE_SVC_F_POLICY)) &&
	    svc.svc_id < SLUICE_MAX_SERVICES) {
		bool *gone = calloc(SLUICE_MAX_SERVICES, sizeof(*gone));

		if (gone) { /* best effort: the LRU reclaims what stays */
			gone[svc.svc_id] = true;
			if (svc.flags & SLUICE_SVC_F_AFFINITY)
				svc__affinity_forget(s, gone);
			if (svc.flags & SLUICE_SVC_F_SOURCE_RANGES)
				svc__src_forget(s, gone);
			if (svc.flags & SLUICE_SVC_F_POLICY)
				svc__policy_forget(s, gone);
		}
		free(gone);
	}
cleanup:
	free(ids);
	return err;
}

/* --- many deletes at once --- */

struct svc_gone_ctx {
	const bool *gone; /* [SLUICE_MAX_SERVICES]: service ids being deleted */
	__u32 *ids;
	__u32 n, cap;
	bool nomem;
};

static int svc__collect_gone(const void *key, const void *value, void *ctx)
{
	const struct sluice_backend *be = value;
	struct svc_gone_ctx *c = ctx;
	__u32 *grown;

	if (be->svc_id >= SLUICE_MAX_SERVICES || !c->gone[be->svc_id])
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 1024;
		grown = realloc(c->ids, c->cap * sizeof(*c->ids));
		if (!grown) {
			c->nomem = true;
			return -ENOMEM;
		}
		c->ids = grown;
	}
	c->ids[c->n++] = *(const __u32 *)key;
	return 0;
}

static int svc__cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct sluice_svc_key));
}

struct svc_markers_ctx {
	struct sluice_svc_key *v; /* candidate markers, sorted, unique */
	bool *used;
	__u32 n;
};

static int svc__mark_vip_users(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc *svc = value;
	struct svc_markers_ctx *c = ctx;
	struct sluice_svc_key marker = *(const struct sluice_svc_key *)key;
	struct sluice_svc_key *hit;

	if (svc->flags & SLUICE_SVC_F_VIP_MARKER)
		return 0;
	marker.port = 0;
	hit = bsearch(&marker, c->v, c->n, sizeof(*c->v), svc__cmp_key);
	if (hit)
		c->used[hit - c->v] = true;
	return 0;
}

/* Best effort, after the service entries are gone (no packet can reach
 * what is left, and what is left is overwritten or collected when its
 * service id is used again): tables, backends, unused VIP markers. */
static void svc__del_rest(struct sluice *s, const struct sluice_svc_key *keys, const __u32 *svc_ids,
			  __u32 n, const bool *gone)
{
	struct svc_gone_ctx g = { .gone = gone };
	struct svc_markers_ctx mk = {};
	__u32 *ids, bad;
	bool *written;
	int *fds, empty;

	/* The kernel has no batch delete for map-in-map and waits for an RCU
	 * grace period (~8 ms) after every single delete: 10k services would
	 * take 80 s. So the tables are replaced by one shared empty table
	 * (maps__outer_update: batched, the waits overlapping), which frees
	 * them; the slot keeps the empty table until its service id is used
	 * again. */
	ids = malloc(n * sizeof(*ids));
	fds = malloc(n * sizeof(*fds));
	written = calloc(n, sizeof(*written));
	empty = svc__create_inner(s, NULL);
	if (ids && fds && written && empty >= 0) {
		for (__u32 i = 0; i < n; i++) {
			ids[i] = svc_ids[i];
			fds[i] = empty;
		}
		maps__outer_update(s->fds[SLUICE_MAP_MAGLEV], ids, fds, n, written, &bad);
		for (__u32 i = 0; i < n; i++)
			if (!written[i])
				bpf_map_delete_elem(s->fds[SLUICE_MAP_MAGLEV], &ids[i]);
	} else {
		for (__u32 i = 0; i < n; i++)
			bpf_map_delete_elem(s->fds[SLUICE_MAP_MAGLEV], &svc_ids[i]);
	}
	if (empty >= 0)
		close(empty);
	free(ids);
	free(fds);
	free(written);
	for (__u32 i = 0; i < n; i++) {
		svc__health_forget(s, svc_ids[i]);
		svc__table_forget(s, svc_ids[i]);
	}
	if (!maps__for_each(s->fds[SLUICE_MAP_BACKENDS], "backends", sizeof(__u32),
			    sizeof(struct sluice_backend), svc__collect_gone, &g))
		for (__u32 i = 0; i < g.n; i++)
			svc__backend_delete(s, g.ids[i]);
	free(g.ids);
	mk.v = malloc(n * sizeof(*mk.v));
	mk.used = calloc(n, sizeof(*mk.used));
	if (mk.v && mk.used) {
		bool dropped = false;

		for (__u32 i = 0; i < n; i++) {
			mk.v[i] = keys[i];
			mk.v[i].port = 0;
		}
		qsort(mk.v, n, sizeof(*mk.v), svc__cmp_key);
		for (__u32 i = 0; i < n; i++)
			if (!mk.n || svc__cmp_key(&mk.v[mk.n - 1], &mk.v[i]))
				mk.v[mk.n++] = mk.v[i];
		if (!maps__for_each(s->fds[SLUICE_MAP_SERVICES], "services",
				    sizeof(struct sluice_svc_key), sizeof(struct sluice_svc),
				    svc__mark_vip_users, &mk))
			for (__u32 i = 0; i < mk.n; i++) {
				if (mk.used[i] ||
				    bpf_map_delete_elem(s->fds[SLUICE_MAP_SERVICES], &mk.v[i]))
					continue;
				svc__count(s, true, -1);
				dropped = true;
			}
		if (dropped)
			svc__vip_bits_sync(s); /* best effort: stale bits cost lookups */
	}
	free(mk.v);
	free(mk.used);
	svc__affinity_forget(s, gone);
	svc__src_forget(s, gone);
	svc__policy_forget(s, gone);
}

int sluice__service_del_many(struct sluice *s, const struct sluice_service_ref *refs, __u32 n,
			     __u32 *done)
{
	struct sluice_svc_key *keys = NULL;
	__u32 *svc_ids = NULL, ngone = 0, i = 0;
	bool *gone = NULL;
	struct sluice_svc svc;
	int err = 0;

	sluice__clear_err();
	if (!n)
		goto out;
	keys = calloc(n, sizeof(*keys));
	svc_ids = calloc(n, sizeof(*svc_ids));
	gone = calloc(SLUICE_MAX_SERVICES, sizeof(*gone));
	if (!keys || !svc_ids || !gone) {
		sluice__set_err("out of memory");
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		err = svc__make_key(&keys[i], &refs[i].vip, refs[i].port, refs[i].proto);
		if (err) {
			i = 0; /* nothing deleted */
			goto out;
		}
	}
	/* Service entries first: after them no new packet reaches a table or
	 * a backend of these services. */
	for (i = 0; i < n; i++) {
		err = bpf_map_lookup_elem(s->fds[SLUICE_MAP_SERVICES], &keys[i], &svc);
		if (err == -ENOENT) {
			err = 0; /* already gone */
			continue;
		}
		if (err) {
			maps__err(err, "services", "lookup", "of the service");
			break;
		}
		err = bpf_map_delete_elem(s->fds[SLUICE_MAP_SERVICES], &keys[i]);
		if (!err)
			svc__count(s, false, -1);
		if (err && err != -ENOENT) {
			maps__err(err, "services", "delete", "of the service");
			break;
		}
		err = 0;
		if (svc.svc_id < SLUICE_MAX_SERVICES)
			gone[svc.svc_id] = true;
		keys[ngone] = keys[i];
		svc_ids[ngone++] = svc.svc_id;
	}
	if (ngone) {
		svc__snap_drop(s);
		svc__del_rest(s, keys, svc_ids, ngone, gone);
	}
	if (!err)
		sluice__clear_err(); /* texts of best-effort steps that failed */
out:
	if (done)
		*done = i;
	free(keys);
	free(svc_ids);
	free(gone);
	return err;
}

/* The service entry and its summed counters, without the backends. */
static int svc__get_head(struct sluice *s, const struct sluice_addr *vip, __u16 port, __u8 proto,
			 struct sluice_service_info *info)
{
	int err;

	memset(info, 0, sizeof(*info));
	err = svc__make_key(&info->key, vip, port, proto);
	if (err)
		return err;
	err = svc__lookup(s, &info->key, &info->svc);
	if (err)
		return err;
	return maps__percpu_sum(s, s->fds[SLUICE_MAP_SVC_STATS], "svc_stats", info->svc.svc_id,
				(__u64 *)&info->stats, sizeof(info->stats) / sizeof(__u64));
}

int sluice__service_get(struct sluice *s, const struct sluice_addr *vip, __u16 port, __u8 proto,
			struct sluice_service_info *info)
{
	int err;

	sluice__clear_err();
	err = svc__get_head(s, vip, port, proto, info);
	if (err)
		return err;
	/* The handle's snapshot, kept in step with its writes, when it has
	 * one: a change's answer walks no map (#16). */
	if (s->snap && info->svc.svc_id < SLUICE_MAX_SERVICES) {
		const struct svc_be_list *l = &s->snap->by_svc[info->svc.svc_id];

		for (__u32 i = 0; i < l->n && info->nbackends < SLUICE_MAX_SVC_BACKENDS; i++)
			info->backend_ids[info->nbackends++] = l->v[i].id;
		qsort(info->backend_ids, info->nbackends, sizeof(__u32), cmp_u32);
		return 0;
	}
	return svc__backend_ids(s, info->svc.svc_id, true, info->backend_ids,
				SLUICE_MAX_SVC_BACKENDS, &info->nbackends);
}

struct sluice_be_index {
	const struct sluice *s; /* its deferred deletes are left out */
	__u64 *v;               /* svc_id << 32 | backend id, ascending */
	__u32 n, cap;
};

static int svc__index_one(const void *key, const void *value, void *ctx)
{
	const struct sluice_backend *be = value;
	struct sluice_be_index *ix = ctx;
	__u64 *grown;

	if (svc__deferred(ix->s, *(const __u32 *)key))
		return 0;
	if (ix->n == ix->cap) {
		ix->cap = ix->cap ? 2 * ix->cap : 1024;
		grown = realloc(ix->v, ix->cap * sizeof(*ix->v));
		if (!grown) {
			sluice__set_err("out of memory indexing the backends map");
			return -ENOMEM;
		}
		ix->v = grown;
	}
	ix->v[ix->n++] = (__u64)be->svc_id << 32 | *(const __u32 *)key;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

int sluice__be_index(struct sluice *s, struct sluice_be_index **out)
{
	struct sluice_be_index *ix;
	int err;

	sluice__clear_err();
	*out = NULL;
	ix = calloc(1, sizeof(*ix));
	if (!ix) {
		sluice__set_err("out of memory indexing the backends map");
		return -ENOMEM;
	}
	ix->s = s;
	err = maps__for_each(s->fds[SLUICE_MAP_BACKENDS], "backends", sizeof(__u32),
			     sizeof(struct sluice_backend), svc__index_one, ix);
	if (err) {
		sluice__be_index_free(ix);
		return err;
	}
	/* qsort(NULL, 0, ...) is undefined (empty map: v NULL) */
	if (ix->n)
		qsort(ix->v, ix->n, sizeof(*ix->v), cmp_u64);
	*out = ix;
	return 0;
}

void sluice__be_index_free(struct sluice_be_index *ix)
{
	if (!ix)
		return;
	free(ix->v);
	free(ix);
}

int sluice__service_get_ix(struct sluice *s, const struct sluice_be_index *ix,
			   const struct sluice_addr *vip, __u16 port, __u8 proto,
			   struct sluice_service_info *info)
{
	__u32 lo = 0, hi, svc_id;
	int err;

	sluice__clear_err();
	err = svc__get_head(s, vip, port, proto, info);
	if (err)
		return err;
	svc_id = info->svc.svc_id;
	hi = ix->n;
	while (lo < hi) {
		__u32 mid = lo + (hi - lo) / 2;

		if (ix->v[mid] >> 32 < svc_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < ix->n && ix->v[lo] >> 32 == svc_id && info->nbackends < SLUICE_MAX_SVC_BACKENDS;
	     lo++)
		info->backend_ids[info->nbackends++] = (__u32)ix->v[lo];
	return 0;
}
