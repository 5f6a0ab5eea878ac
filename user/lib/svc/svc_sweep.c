// SPDX-License-Identifier: MIT
/*
 * svc_sweep.c - removing map entries that no service explains.
 *
 * An update writes backends first, then tables, then service entries (see
 * service.c); a process killed in between leaves backends and tables
 * under service ids that no service entry carries, and VIP markers whose
 * services never arrived. Nothing reads them, nothing lists them and no
 * later update of another service collects them. sluice__sweep() walks
 * the services map once to learn which ids and VIPs are live, then
 * deletes every backend of a dead id (found in the handle's index when it
 * holds one, else by a walk of `backends`), empties every Maglev table of a
 * dead id that still holds backend ids, and deletes markers of VIPs
 * without a service.
 *
 * Kernels before 6.7 wait for an RCU grace period in every userspace read
 * of an array-of-maps slot (16-18 ms on 6.1): walking the 32768 Maglev
 * slots would stall meshd's start for about 9 minutes. There the tables
 * are not swept (out->tables_skipped): a dead id's table is freed when the
 * id is used again, as after a bulk delete.
 *
 * Contract: only entries no live service entry refers to are touched, so
 * no packet can notice; meant for a single writer (meshd at start, after
 * its reconcile). Best effort per entry; a failed walk stops the sweep and
 * returns the error with its text set.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kfeatures.h"
#include "internal.h"
#include "svc_txn.h"

struct sweep_ids {
	__u32 *v;
	__u32 n, cap;
};

static int sweep__push(struct sweep_ids *ids, __u32 id)
{
	__u32 *grown;

	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? 2 * ids->cap : 256;
		grown = realloc(ids->v, ids->cap * sizeof(*ids->v));
		if (!grown) {
			sluice__set_err("out of memory sweeping the maps");
			return -ENOMEM;
		}
		ids->v = grown;
	}
	ids->v[ids->n++] = id;
	return 0;
}

/* What the services map says is live: service ids, and the marker key
 * (port 0) of every service's VIP. */
struct sweep_live {
	bool *svc_used; /* [SLUICE_MAX_SERVICES] */
	struct sluice_svc_key *vips, *markers;
	__u32 nvips, nmarkers, cap_vips, cap_markers;
};

static int sweep__push_key(struct sluice_svc_key **v, __u32 *n, __u32 *cap,
			   const struct sluice_svc_key *key)
{
	struct sluice_svc_key *grown;

	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 256;
		grown = realloc(*v, *cap * sizeof(**v));
		if (!grown) {
			sluice__set_err("out of memory sweeping the maps");
			return -ENOMEM;
		}
		*v = grown;
	}
	(*v)[(*n)++] = *key;
	return 0;
}

static int sweep__note_service(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc *svc = value;
	struct sweep_live *live = ctx;
	struct sluice_svc_key vip = *(const struct sluice_svc_key *)key;

	if (svc->flags & SLUICE_SVC_F_VIP_MARKER)
		return sweep__push_key(&live->markers, &live->nmarkers, &live->cap_markers, &vip);
	if (svc->svc_id < SLUICE_MAX_SERVICES)
		live->svc_used[svc->svc_id] = true;
	vip.port = 0;
	return sweep__push_key(&live->vips, &live->nvips, &live->cap_vips, &vip);
}

static int sweep__cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct sluice_svc_key));
}

static void sweep__live_free(struct sweep_live *live)
{
	free(live->svc_used);
	free(live->vips);
	free(live->markers);
}

static int sweep__live_load(struct sluice *s, struct sweep_live *live)
{
	int err;

	memset(live, 0, sizeof(*live));
	live->svc_used = calloc(SLUICE_MAX_SERVICES, sizeof(*live->svc_used));
	if (!live->svc_used) {
		sluice__set_err("out of memory sweeping the maps");
		return -ENOMEM;
	}
	err = maps__for_each(s->fds[SLUICE_MAP_SERVICES], "services", sizeof(struct sluice_svc_key),
			     sizeof(struct sluice_svc), sweep__note_service, live);
	if (!err) { /* a whole walk: the counts of sluice__map_entries() again */
		s->svc_entries = live->nvips;
		s->svc_markers = live->nmarkers;
		s->svc_counted = true;
	}
	if (!err && live->nvips)
		qsort(live->vips, live->nvips, sizeof(*live->vips), sweep__cmp_key);
	return err;
}

/* Markers whose address and protocol no service uses any more. */
static __u32 sweep__markers(struct sluice *s, const struct sweep_live *live)
{
	__u32 n = 0;

	for (__u32 i = 0; i < live->nmarkers; i++) {
		if (live->nvips && bsearch(&live->markers[i], live->vips, live->nvips,
					   sizeof(*live->vips), sweep__cmp_key))
			continue;
		if (!bpf_map_delete_elem(s->fds[SLUICE_MAP_SERVICES], &live->markers[i])) {
			svc__count(s, true, -1);
			n++;
		}
	}
	return n;
}

struct sweep_bes {
	const bool *svc_used;
	struct sweep_ids dead;
};

static int sweep__note_backend(const void *key, const void *value, void *ctx)
{
	const struct sluice_backend *be = value;
	struct sweep_bes *c = ctx;

	if (be->svc_id < SLUICE_MAX_SERVICES && c->svc_used[be->svc_id])
		return 0;
	return sweep__push(&c->dead, *(const __u32 *)key);
}

/* Backends whose service id no service carries: from the handle's index
 * when it holds one (a restart's reconcile read it: no walk of its own;
 * what a walk finds but for entries a pending delete holds, which the
 * flush deletes), which then forgets them, else from a walk. */
static int sweep__backends(struct sluice *s, const struct sweep_live *live, __u32 *n)
{
	struct sweep_bes c = { .svc_used = live->svc_used };
	struct svc_snap *snap = s->snap;
	bool kept = true;
	int err;

	*n = 0;
	err = snap ? svc__snap_each(snap, sweep__note_backend, &c) :
		     maps__for_each(s->fds[SLUICE_MAP_BACKENDS], "backends", sizeof(__u32),
				    sizeof(struct sluice_backend), sweep__note_backend, &c);
	for (__u32 i = 0; !err && i < c.dead.n; i++) {
		int derr = svc__backend_delete(s, c.dead.v[i]);

		if (!derr)
			(*n)++;
		if (!derr || derr == -ENOENT)
			svc__snap_free_be(s, c.dead.v[i]);
		else
			kept = false; /* still there: the index must not say free */
	}
	if (snap && !err && kept) {
		for (__u32 i = 0; i < SLUICE_MAX_SERVICES; i++)
			if (!live->svc_used[i])
				snap->by_svc[i].n = 0;
		snap->junk.n = 0;
	} else if (snap) {
		svc__snap_drop(s); /* the next set reads the maps afresh */
	}
	free(c.dead.v);
	return err;
}

struct sweep_slot {
	__u32 svc_id, inner_id;
};

struct sweep_slots {
	struct sweep_slot *v;
	__u32 n, cap;
};

static int sweep__note_slot(const void *key, const void *value, void *ctx)
{
	struct sweep_slots *c = ctx;
	struct sweep_slot *grown;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 1024;
		grown = realloc(c->v, c->cap * sizeof(*c->v));
		if (!grown) {
			sluice__set_err("out of memory sweeping the maps");
			return -ENOMEM;
		}
		c->v = grown;
	}
	c->v[c->n++] = (struct sweep_slot){ .svc_id = *(const __u32 *)key,
					    .inner_id = *(const __u32 *)value };
	return 0;
}

static int sweep__cmp_inner(const void *x, const void *y)
{
	const struct sweep_slot *a = x, *b = y;

	return a->inner_id < b->inner_id ? -1 : a->inner_id > b->inner_id;
}

/* Whether the table with this id names any backend. Unreadable counts as
 * "holds something": replacing an empty table is harmless. */
static bool sweep__table_used(__u32 inner_id)
{
	const unsigned long *w;
	bool used = false;
	size_t bytes;
	void *mem;
	__u32 m;
	int fd;

	fd = bpf_map_get_fd_by_id(inner_id);
	if (fd < 0)
		return fd != -ENOENT;
	if (svc__table_info(fd, &m)) {
		close(fd);
		return true;
	}
	bytes = SLUICE_MAGLEV_ELEMS_OF(m) * sizeof(struct sluice_maglev_pair);
	mem = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (mem == MAP_FAILED)
		return true;
	w = mem;
	for (size_t i = 0; i < bytes / sizeof(*w) && !used; i++)
		used = w[i] != 0;
	munmap(mem, bytes);
	return used;
}

/* The dead service ids whose table still holds backend ids. A table
 * shared by several slots is the empty one sluice__service_del_many()
 * leaves behind (the only writer that shares tables): not read. */
static int sweep__dead_tables(struct sweep_slots *slots, const bool *svc_used,
			      struct sweep_ids *dead)
{
	int err = 0;

	if (slots->n)
		qsort(slots->v, slots->n, sizeof(*slots->v), sweep__cmp_inner);
	for (__u32 i = 0; i < slots->n && !err;) {
		__u32 j = i;

		while (j < slots->n && slots->v[j].inner_id == slots->v[i].inner_id)
			j++;
		if (j - i == 1 && slots->v[i].svc_id < SLUICE_MAX_SERVICES &&
		    !svc_used[slots->v[i].svc_id] && sweep__table_used(slots->v[i].inner_id))
			err = sweep__push(dead, slots->v[i].svc_id);
		i = j;
	}
	return err;
}

/* One empty table in every dead slot (maps__outer_update: batched, the
 * kernel's waits overlapping, as in sluice__service_del_many()), which
 * frees the old ones. */
static __u32 sweep__empty_slots(struct sluice *s, const struct sweep_ids *dead)
{
	int mfd = s->fds[SLUICE_MAP_MAGLEV];
	__u32 n = 0, bad;
	bool *written;
	int *fds, empty;

	empty = svc__create_inner(s, NULL);
	fds = malloc(dead->n * sizeof(*fds));
	written = calloc(dead->n, sizeof(*written));
	if (empty >= 0 && fds && written) {
		for (__u32 i = 0; i < dead->n; i++)
			fds[i] = empty;
		maps__outer_update(mfd, dead->v, fds, dead->n, written, &bad);
	}
	/* what was not written (no batch, no empty table): slot by slot */
	for (__u32 i = 0; i < dead->n; i++)
		if ((written && written[i]) || !bpf_map_delete_elem(mfd, &dead->v[i]))
			n++;
	if (empty >= 0)
		close(empty);
	free(fds);
	free(written);
	return n;
}

static int sweep__tables(struct sluice *s, const struct sweep_live *live, __u32 *n)
{
	struct sweep_slots slots = {};
	struct sweep_ids dead = {};
	int err;

	*n = 0;
	err = maps__for_each(s->fds[SLUICE_MAP_MAGLEV], "maglev", sizeof(__u32), sizeof(__u32),
			     sweep__note_slot, &slots);
	if (!err)
		err = sweep__dead_tables(&slots, live->svc_used, &dead);
	if (!err && dead.n)
		*n = sweep__empty_slots(s, &dead);
	free(slots.v);
	free(dead.v);
	return err;
}

/* Whether reading a Maglev slot from userspace is cheap: probed
 * (kfeatures.c; SLUICE_SWEEP_TABLES=0|1 overrides). */
static bool sweep__slot_reads_cheap(void)
{
	struct sluice_features f;

	sluice__features(&f);
	return f.has[SLUICE_FEAT_OUTER_READ_FAST];
}

int sluice__sweep(struct sluice *s, struct sluice_sweep *out)
{
	struct sweep_live live;
	int err;

	sluice__clear_err();
	memset(out, 0, sizeof(*out));
	err = sweep__live_load(s, &live);
	if (!err)
		err = sweep__backends(s, &live, &out->backends);
	if (!err && sweep__slot_reads_cheap())
		err = sweep__tables(s, &live, &out->tables);
	else if (!err)
		out->tables_skipped = true;
	if (!err)
		out->markers = sweep__markers(s, &live);
	/* bits of addresses whose services went while no handle watched:
	 * the addresses of the services walked (the markers left are theirs) */
	if (!err)
		err = svc__vip_bits_sync_keys(s, live.vips, live.nvips);
	sweep__live_free(&live);
	return err;
}
