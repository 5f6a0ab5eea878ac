// SPDX-License-Identifier: MIT
/*
 * service.c - services and their backend sets in the datapath maps.
 *
 * Contract: the maps are the only state (short-lived tools call this, so
 * nothing is cached between calls). sluice__service_set() validates the
 * whole spec first, then writes in the one order in which a packet can
 * never meet a missing backend: backends, Maglev table swap, service entry
 * (and VIP marker), and only then deletes backends that left the set. A
 * failed write undoes the earlier ones, newest first. Concurrent writers
 * are not coordinated: one process (meshd) is expected to own the maps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"

#define MAGLEV_INNER_NAME "sluice_maglev"

enum svc_undo_kind {
	UNDO_BACKEND, /* restore backends[ids[i]] as it was, or delete it */
	UNDO_MAGLEV,  /* put the old inner table back, or empty the slot */
	UNDO_SERVICE, /* restore the service entry, or delete it */
	UNDO_MARKER,  /* delete the VIP marker we created */
};

struct svc_undo {
	enum svc_undo_kind kind;
	__u32 idx;
};

struct svc_old_be {
	__u32 id;
	struct sluice_backend val;
	bool kept;
};

struct svc_txn {
	struct sluice *s;
	const struct sluice_service_spec *spec;
	struct sluice_svc_key key;
	struct sluice_svc_key marker_key;
	bool existed;
	struct sluice_svc old_svc;
	__u32 svc_id;
	struct svc_old_be *old; /* backends carrying svc_id before the update */
	__u32 nold, old_cap;
	bool *used;   /* backend ids in use, [SLUICE_MAX_BACKENDS] */
	__u32 *ids;   /* new backend ids, parallel to spec->backends */
	int *old_idx; /* index into old[] or -1 for a new backend */
	__u32 nactive;
	int old_inner_fd; /* maglev[svc_id] before the swap, -1 if none */
	struct svc_undo *undo;
	__u32 nundo;
};

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
static int svc__alloc_id(struct sluice *s, __u32 *id)
{
	bool *used;
	int err;

	used = calloc(SLUICE_MAX_SERVICES, sizeof(*used));
	if (!used) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	err = maps__for_each(s->fds[SLUICE_MAP_SERVICES], "services", sizeof(struct sluice_svc_key),
			     sizeof(struct sluice_svc), svc__mark_used_id, used);
	if (err)
		goto cleanup;
	err = -ENOSPC;
	for (__u32 i = 1; i < SLUICE_MAX_SERVICES; i++) {
		if (!used[i]) {
			*id = i;
			err = 0;
			break;
		}
	}
	if (err)
		sluice__set_err("services map: no free service id (limit %u services)",
				SLUICE_MAX_SERVICES - 1);
cleanup:
	free(used);
	return err;
}

static int svc__collect_backend(const void *key, const void *value, void *ctx)
{
	const struct sluice_backend *be = value;
	struct svc_txn *t = ctx;
	__u32 id = *(const __u32 *)key;
	struct svc_old_be *grown;

	if (id < SLUICE_MAX_BACKENDS)
		t->used[id] = true;
	if (be->svc_id != t->svc_id)
		return 0;
	if (t->nold == t->old_cap) {
		t->old_cap = t->old_cap ? 2 * t->old_cap : 64;
		grown = realloc(t->old, t->old_cap * sizeof(*t->old));
		if (!grown) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
		t->old = grown;
	}
	t->old[t->nold++] = (struct svc_old_be){ .id = id, .val = *be };
	return 0;
}

/* Backends already in the set keep their id (conntrack entries and stats
 * refer to it); new ones get the lowest free id. */
static int svc__assign_ids(struct svc_txn *t)
{
	const struct sluice_service_spec *spec = t->spec;
	__u32 next = 1;

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
		while (next < SLUICE_MAX_BACKENDS && t->used[next])
			next++;
		if (next == SLUICE_MAX_BACKENDS) {
			sluice__set_err("backends map: no free backend id (limit %u backends)",
					SLUICE_MAX_BACKENDS - 1);
			return -ENOSPC;
		}
		t->used[next] = true;
		t->ids[i] = next;
	}
	return 0;
}

static int svc__txn_init(struct svc_txn *t, struct sluice *s,
			 const struct sluice_service_spec *spec)
{
	__u32 n = spec->nbackends;

	memset(t, 0, sizeof(*t));
	t->s = s;
	t->spec = spec;
	t->old_inner_fd = -1;
	t->used = calloc(SLUICE_MAX_BACKENDS, sizeof(*t->used));
	t->ids = calloc(n + 1, sizeof(*t->ids));
	t->old_idx = calloc(n + 1, sizeof(*t->old_idx));
	t->undo = calloc(n + 4, sizeof(*t->undo));
	if (!t->used || !t->ids || !t->old_idx || !t->undo) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (__u32 i = 0; i < n; i++)
		if (spec->backends[i].weight)
			t->nactive++;
	return 0;
}

static void svc__txn_free(struct svc_txn *t)
{
	if (t->old_inner_fd >= 0)
		close(t->old_inner_fd);
	free(t->used);
	free(t->ids);
	free(t->old_idx);
	free(t->undo);
	free(t->old);
}

/* Everything the writes need, read from the maps; no map is written. */
static int svc__plan(struct svc_txn *t)
{
	struct sluice *s = t->s;
	int err;

	err = bpf_map_lookup_elem(s->fds[SLUICE_MAP_SERVICES], &t->key, &t->old_svc);
	if (err && err != -ENOENT)
		return maps__err(err, "services", "lookup", "of the service");
	t->existed = !err;
	if (t->existed)
		t->svc_id = t->old_svc.svc_id;
	else if ((err = svc__alloc_id(s, &t->svc_id)))
		return err;
	t->marker_key = t->key;
	t->marker_key.port = 0;
	err = maps__for_each(s->fds[SLUICE_MAP_BACKENDS], "backends", sizeof(__u32),
			     sizeof(struct sluice_backend), svc__collect_backend, t);
	if (err)
		return err;
	return svc__assign_ids(t);
}

static int svc__fill_inner(int fd, const __u32 *table)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys, count = SLUICE_MAGLEV_M;
	int err;

	keys = malloc(SLUICE_MAGLEV_M * sizeof(*keys));
	if (!keys) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (__u32 i = 0; i < SLUICE_MAGLEV_M; i++)
		keys[i] = i;
	err = bpf_map_update_batch(fd, keys, table, &count, &opts);
	if (err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP) {
		/* kernels without batch ops on arrays (< 5.6) */
		err = 0;
		for (__u32 i = 0; i < SLUICE_MAGLEV_M && !err; i++)
			err = bpf_map_update_elem(fd, &keys[i], &table[i], BPF_ANY);
	}
	if (err)
		maps__err(err, "maglev", "fill", "of a new inner table");
	free(keys);
	return err;
}

/* Whether the current inner table already holds exactly `table`: then
 * the swap (and the RCU grace period the kernel waits for on every
 * map-in-map update, ~10 ms) is skipped, which keeps an agent's restart
 * reconcile of thousands of unchanged services fast. */
static bool svc__inner_equals(int fd, const __u32 *table)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys = NULL, *vals = NULL, in = 0, out = 0, total = 0, count;
	bool same = false;
	int err = 0;

	keys = malloc(SLUICE_MAGLEV_M * sizeof(*keys));
	vals = malloc(SLUICE_MAGLEV_M * sizeof(*vals));
	if (!keys || !vals)
		goto cleanup;
	while (total < SLUICE_MAGLEV_M && !err) {
		count = SLUICE_MAGLEV_M - total;
		err = bpf_map_lookup_batch(fd, total ? &in : NULL, &out, keys + total, vals + total,
					   &count, &opts);
		total += count;
		in = out;
	}
	if (total != SLUICE_MAGLEV_M || (err && err != -ENOENT))
		goto cleanup; /* no batch support or short read: just swap */
	same = !memcmp(vals, table, SLUICE_MAGLEV_M * sizeof(*vals));
cleanup:
	free(keys);
	free(vals);
	return same;
}

/* A complete new Maglev table of backend ids in a fresh inner map; *fd_out
 * stays -1 when the current table is identical. */
static int svc__build_inner(struct svc_txn *t, int *fd_out)
{
	__u32 *table;
	int fd = -1, err;

	table = malloc(SLUICE_MAGLEV_M * sizeof(*table));
	if (!table) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	err = maglev__build(t->spec->backends, t->spec->nbackends, SLUICE_MAGLEV_M, table);
	if (err)
		goto cleanup;
	for (__u32 i = 0; i < SLUICE_MAGLEV_M; i++)
		table[i] = t->ids[table[i]];
	if (t->old_inner_fd >= 0 && svc__inner_equals(t->old_inner_fd, table))
		goto cleanup;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, MAGLEV_INNER_NAME, sizeof(__u32), sizeof(__u32),
			    SLUICE_MAGLEV_M, NULL);
	if (fd < 0) {
		err = maps__err(fd, "maglev", "create", "of a new inner table");
		goto cleanup;
	}
	err = svc__fill_inner(fd, table);
	if (err)
		goto cleanup;
	*fd_out = fd;
	fd = -1;
cleanup:
	if (fd >= 0)
		close(fd);
	free(table);
	return err;
}

static void svc__push_undo(struct svc_txn *t, enum svc_undo_kind kind, __u32 idx)
{
	t->undo[t->nundo++] = (struct svc_undo){ .kind = kind, .idx = idx };
}

/* New ids start from zero stats, new backends and changed weights land
 * in the backends map before any table can name them. */
static int svc__write_backends(struct svc_txn *t)
{
	const struct sluice_service_spec *spec = t->spec;
	struct sluice *s = t->s;
	char what[32];
	int err;

	if (!t->existed) {
		err = maps__percpu_zero(s, s->fds[SLUICE_MAP_SVC_STATS], "svc_stats", t->svc_id,
					sizeof(struct sluice_svc_stats));
		if (err)
			return err;
	}
	for (__u32 i = 0; i < spec->nbackends; i++) {
		const struct sluice_backend_spec *b = &spec->backends[i];
		struct sluice_backend be = {
			.port = htons(b->port),
			.family = b->addr.family,
			.state = b->weight ? SLUICE_BE_ACTIVE : SLUICE_BE_DRAINING,
			.svc_id = t->svc_id,
			.weight = b->weight,
		};

		svc__addr_copy(be.addr, &b->addr);
		if (t->old_idx[i] >= 0 && !memcmp(&t->old[t->old_idx[i]].val, &be, sizeof(be)))
			continue; /* unchanged */
		if (t->old_idx[i] < 0) {
			err = maps__percpu_zero(s, s->fds[SLUICE_MAP_BACKEND_STATS],
						"backend_stats", t->ids[i],
						sizeof(struct sluice_backend_stats));
			if (err)
				return err;
		}
		err = bpf_map_update_elem(s->fds[SLUICE_MAP_BACKENDS], &t->ids[i], &be, BPF_ANY);
		if (err) {
			snprintf(what, sizeof(what), "of backend id %u", t->ids[i]);
			return maps__err(err, "backends", "update", what);
		}
		svc__push_undo(t, UNDO_BACKEND, i);
	}
	return 0;
}

/* Remember the current inner table (by id -> fd) so a failure can put it
 * back; -1 when the slot is empty. */
static int svc__save_inner(struct svc_txn *t)
{
	int fd = t->s->fds[SLUICE_MAP_MAGLEV];
	__u32 inner_id;
	int err;

	err = bpf_map_lookup_elem(fd, &t->svc_id, &inner_id);
	if (err == -ENOENT)
		return 0;
	if (err)
		return maps__err(err, "maglev", "lookup", "of the current table");
	t->old_inner_fd = bpf_map_get_fd_by_id(inner_id);
	if (t->old_inner_fd < 0)
		t->old_inner_fd = -1; /* freed meanwhile: nothing to restore */
	return 0;
}

/* The atomic part: one update makes the whole new table visible. */
static int svc__set_inner(struct svc_txn *t, int inner_fd)
{
	int fd = t->s->fds[SLUICE_MAP_MAGLEV];
	int err;

	if (inner_fd >= 0) {
		err = bpf_map_update_elem(fd, &t->svc_id, &inner_fd, BPF_ANY);
		if (err)
			return maps__err(err, "maglev", "swap", "of the service's table");
	} else if (t->old_inner_fd >= 0) {
		err = bpf_map_delete_elem(fd, &t->svc_id);
		if (err && err != -ENOENT)
			return maps__err(err, "maglev", "delete", "of the service's table");
	} else {
		return 0;
	}
	svc__push_undo(t, UNDO_MAGLEV, 0);
	return 0;
}

static int svc__write_service(struct svc_txn *t)
{
	struct sluice *s = t->s;
	struct sluice_svc marker = { .flags = SLUICE_SVC_F_VIP_MARKER }, svc = {};
	int fd = s->fds[SLUICE_MAP_SERVICES];
	int err;

	err = bpf_map_update_elem(fd, &t->marker_key, &marker, BPF_NOEXIST);
	if (!err)
		svc__push_undo(t, UNDO_MARKER, 0);
	else if (err != -EEXIST)
		return maps__err(err, "services", "insert", "of the VIP marker");
	svc.svc_id = t->svc_id;
	svc.backend_count = (__u16)t->nactive;
	svc.flags = t->existed ? t->old_svc.flags & ~SLUICE_SVC_F_VIP_MARKER : 0;
	if (t->existed)
		memcpy(svc.reserved, t->old_svc.reserved, sizeof(svc.reserved));
	if (t->existed && !memcmp(&svc, &t->old_svc, sizeof(svc)))
		return 0;
	err = bpf_map_update_elem(fd, &t->key, &svc, BPF_ANY);
	if (err)
		return maps__err(err, "services", "update", "of the service");
	svc__push_undo(t, UNDO_SERVICE, 0);
	return 0;
}

static void svc__undo_one(struct svc_txn *t, const struct svc_undo *u)
{
	struct sluice *s = t->s;
	int bfd = s->fds[SLUICE_MAP_BACKENDS];
	int old;

	switch (u->kind) {
	case UNDO_BACKEND:
		old = t->old_idx[u->idx];
		if (old >= 0)
			bpf_map_update_elem(bfd, &t->ids[u->idx], &t->old[old].val, BPF_ANY);
		else
			bpf_map_delete_elem(bfd, &t->ids[u->idx]);
		break;
	case UNDO_MAGLEV:
		if (t->old_inner_fd >= 0)
			bpf_map_update_elem(s->fds[SLUICE_MAP_MAGLEV], &t->svc_id, &t->old_inner_fd,
					    BPF_ANY);
		else
			bpf_map_delete_elem(s->fds[SLUICE_MAP_MAGLEV], &t->svc_id);
		break;
	case UNDO_SERVICE:
		if (t->existed)
			bpf_map_update_elem(s->fds[SLUICE_MAP_SERVICES], &t->key, &t->old_svc,
					    BPF_ANY);
		else
			bpf_map_delete_elem(s->fds[SLUICE_MAP_SERVICES], &t->key);
		break;
	case UNDO_MARKER:
		bpf_map_delete_elem(s->fds[SLUICE_MAP_SERVICES], &t->marker_key);
		break;
	}
}

/* Best effort: undo newest first so packets see the same safe sequence
 * backwards. The error text of the failed write is kept. */
static void svc__rollback(struct svc_txn *t)
{
	while (t->nundo)
		svc__undo_one(t, &t->undo[--t->nundo]);
}

/* Last step: backends that left the set. Packets can no longer pick
 * them; their established flows keep going (conntrack holds the address). */
static int svc__delete_stale(struct svc_txn *t)
{
	int fd = t->s->fds[SLUICE_MAP_BACKENDS];
	char what[32];
	int err, ret = 0;

	for (__u32 j = 0; j < t->nold; j++) {
		if (t->old[j].kept)
			continue;
		err = bpf_map_delete_elem(fd, &t->old[j].id);
		if (err && err != -ENOENT && !ret) {
			snprintf(what, sizeof(what), "of backend id %u", t->old[j].id);
			ret = maps__err(err, "backends", "delete", what);
		}
	}
	return ret;
}

static int svc__apply(struct svc_txn *t)
{
	int inner_fd = -1, err;

	err = svc__save_inner(t);
	if (!err && t->nactive)
		err = svc__build_inner(t, &inner_fd);
	if (!err)
		err = svc__write_backends(t);
	if (err)
		goto cleanup;
	/* With backends the table goes first so the service never points at
	 * an empty slot; without, the service says "refuse" before the table
	 * goes away, for the same reason. */
	if (t->nactive) {
		if (inner_fd >= 0)
			err = svc__set_inner(t, inner_fd);
		if (!err)
			err = svc__write_service(t);
	} else {
		err = svc__write_service(t);
		if (!err)
			err = svc__set_inner(t, -1);
	}
cleanup:
	if (err)
		svc__rollback(t);
	if (inner_fd >= 0)
		close(inner_fd); /* the outer map holds its own reference */
	return err;
}

int sluice__service_set(struct sluice *s, const struct sluice_service_spec *spec)
{
	struct sluice_svc_key key;
	struct svc_txn t;
	int err;

	sluice__clear_err();
	err = svc__validate(spec, &key);
	if (err)
		return err;
	err = svc__txn_init(&t, s, spec);
	if (err)
		goto cleanup;
	t.key = key;
	err = svc__plan(&t);
	if (err)
		goto cleanup;
	err = svc__apply(&t);
	if (err)
		goto cleanup;
	/* The new set is live at this point: a backend entry that could not
	 * be deleted is referenced by no table and is collected the next time
	 * this service is set, so failing here would report a change as
	 * rejected that is in fact applied. */
	svc__delete_stale(&t);
	err = 0;
cleanup:
	svc__txn_free(&t);
	return err;
}
