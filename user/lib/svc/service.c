// SPDX-License-Identifier: MIT
/*
 * service.c - services and their backend sets in the datapath maps.
 *
 * Contract: the maps are the state; a handle keeps what it needs to plan
 * a change without reading them (svc_plan.c's snapshot, read by its first
 * set call, svc_table.c's index of Maglev tables), in step with its own
 * writes: one writer process (meshd) is assumed.
 * sluice__service_set() validates the whole spec first, then writes in the
 * one order in which a packet can never meet a missing backend: backends,
 * Maglev table swap, service entry (and VIP marker), and only then deletes
 * backends that left the set. A failed write undoes the earlier ones,
 * newest first. sluice__service_set_many() does the same for groups of
 * services, each step for the whole group, so the RCU grace period of a
 * table swap is paid once per group, while the next group is written. Concurrent writers are not
 * coordinated: one process (meshd) is expected to own the maps. What to
 * write is planned first, without writing, in svc_plan.c.
 */
#define _GNU_SOURCE /* qsort_r */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "svc_txn.h"

static void svc__push_undo(struct svc_txn *t, enum svc_undo_kind kind, __u32 idx)
{
	t->undo[t->nundo++] = (struct svc_undo){ .kind = kind, .idx = idx };
}

static __u8 svc__be_state(const struct sluice_backend_spec *b)
{
	if (!b->weight)
		return SLUICE_BE_DRAINING; /* the operator's word wins */
	return b->unhealthy ? SLUICE_BE_UNHEALTHY : SLUICE_BE_ACTIVE;
}

/* The entries to write (new and changed, spec order: idx into the spec,
 * with their keys and values side by side for the batch) and the new ids. */
struct svc_be_writes {
	__u32 *idx, *keys, *new_ids, n, nnew;
	struct sluice_backend *vals;
	bool *zeroed; /* parallel to the spec: a new id (its health zeroed) */
};

static void svc__be_writes_free(struct svc_be_writes *w)
{
	free(w->idx);
	free(w->keys);
	free(w->new_ids);
	free(w->vals);
	free(w->zeroed);
}

/* New ids start from zero stats and health, and their addresses enter
 * the reply filter (before any flow to them); then new backends and
 * changed weights land in the backends map in one batched write, before
 * any table can name them. A failure leaves what it wrote in t's undo
 * list, refs of unwritten entries dropped. */
static int svc__write_backends(struct svc_txn *t)
{
	const struct sluice_service_spec *spec = t->spec;
	struct svc_be_writes w = {};
	struct sluice *s = t->s;
	__u32 nb = spec->nbackends, done = 0, more, refd = 0;
	int bfd = s->fds[SLUICE_MAP_BACKENDS];
	char what[32];
	int err = 0;

	if (!t->existed) {
		err = maps__percpu_zero(s, s->fds[SLUICE_MAP_SVC_STATS], "svc_stats", t->svc_id,
					sizeof(struct sluice_svc_stats));
		if (err)
			return err;
	}
	w.idx = calloc(nb + 1, sizeof(*w.idx));
	w.keys = calloc(nb + 1, sizeof(*w.keys));
	w.new_ids = calloc(nb + 1, sizeof(*w.new_ids));
	w.vals = calloc(nb + 1, sizeof(*w.vals));
	w.zeroed = calloc(nb + 1, sizeof(*w.zeroed));
	if (!w.idx || !w.keys || !w.new_ids || !w.vals || !w.zeroed) {
		sluice__set_err("out of memory");
		err = -ENOMEM;
		goto out;
	}
	for (__u32 i = 0; i < nb; i++) {
		const struct sluice_backend_spec *b = &spec->backends[i];
		struct sluice_backend be = {
			.port = htons(b->port),
			.family = b->addr.family,
			.state = svc__be_state(b),
			.svc_id = t->svc_id,
			.weight = b->weight,
		};

		svc__addr_copy(be.addr, &b->addr);
		t->vals[i] = be;
		if (t->old_idx[i] >= 0 && !memcmp(&t->old[t->old_idx[i]].val, &be, sizeof(be)))
			continue; /* unchanged */
		w.idx[w.n] = i;
		w.keys[w.n] = t->ids[i];
		w.vals[w.n++] = be;
		w.zeroed[i] = t->old_idx[i] < 0; /* health zeroed below */
		if (w.zeroed[i])
			w.new_ids[w.nnew++] = t->ids[i];
	}
	/* a new backend starts healthy, whatever the id's last owner did */
	err = maps__percpu_zero_many(s, s->fds[SLUICE_MAP_BACKEND_STATS], "backend_stats",
				     w.new_ids, w.nnew, sizeof(struct sluice_backend_stats));
	if (!err)
		err = svc__health_zero_backends(s, w.new_ids, w.nnew, &t->hundo);
	for (__u32 k = 0; k < w.n && !err; k++) {
		if (!w.zeroed[w.idx[k]])
			continue;
		err = svc__addr_ref(s, &w.vals[k]);
		refd = k + (err ? 0 : 1);
	}
	if (!err) {
		err = maps__update_many(bfd, w.keys, sizeof(*w.keys), w.vals, sizeof(*w.vals), w.n,
					&done);
		if (err == -E2BIG && svc__flush(s) > 0) { /* deferred deletes held room */
			err = maps__update_many(bfd, w.keys + done, sizeof(*w.keys), w.vals + done,
						sizeof(*w.vals), w.n - done, &more);
			done += more;
		}
		refd = w.n;
		for (__u32 k = 0; k < done; k++)
			svc__push_undo(t, UNDO_BACKEND, w.idx[k]);
		if (err) {
			snprintf(what, sizeof(what), "of backend id %u", w.keys[done]);
			maps__err(err, "backends", "update", what);
		}
	}
	if (err) { /* the refs of entries not written go, newest first */
		for (__u32 k = refd; k > done; k--)
			if (w.zeroed[w.idx[k - 1]])
				svc__addr_unref(s, &w.vals[k - 1]);
		goto out;
	}
	for (__u32 j = 0; j < t->nold; j++) {
		if (t->old[j].kept)
			continue;
		err = svc__health_forget_backend(s, t->old[j].id, &t->hundo);
		if (err)
			goto out;
	}
	/* before any table names the new set: its config and counts */
	err = svc__health_write(s, t->svc_id, &spec->outlier, t->ids, t->active, w.zeroed, nb,
				&t->hundo);
out:
	svc__be_writes_free(&w);
	return err;
}

/* A service without active backends loses its table after its entry
 * says "refuse" (so no packet meets an empty slot). */
static int svc__drop_inner(struct svc_txn *t)
{
	int err;

	if (t->old_inner_fd < 0)
		return 0;
	err = bpf_map_delete_elem(t->s->fds[SLUICE_MAP_MAGLEV], &t->svc_id);
	if (err && err != -ENOENT)
		return maps__err(err, "maglev", "delete", "of the service's table");
	svc__push_undo(t, UNDO_MAGLEV, 0);
	return 0;
}

static int svc__write_service(struct svc_txn *t)
{
	struct sluice *s = t->s;
	struct sluice_svc marker = { .flags = SLUICE_SVC_F_VIP_MARKER }, svc = {};
	int fd = s->fds[SLUICE_MAP_SERVICES];
	int err;

	t->vip_bit_new = svc__vip_bit_set(s, &t->key); /* before any key of its address */
	err = bpf_map_update_elem(fd, &t->marker_key, &marker, BPF_NOEXIST);
	if (!err) {
		svc__count(s, true, 1);
		svc__push_undo(t, UNDO_MARKER, 0);
	} else if (err != -EEXIST) {
		if (t->vip_bit_new)
			svc__vip_bit_clear(s, &t->key);
		return maps__err(err, "services", "insert", "of the VIP marker");
	}
	svc.svc_id = t->svc_id;
	svc.backend_count = (__u16)t->nactive;
	svc.flags = t->existed ? t->old_svc.flags & ~SLUICE_SVC_F_VIP_MARKER : 0;
	svc.flags &= ~(SLUICE_SVC_F_AFFINITY | SLUICE_SVC_F_SNAT | SLUICE_SVC_F_SNAT_NODE |
		       SLUICE_SVC_F_DROP_EMPTY | SLUICE_SVC_F_SOURCE_RANGES | SLUICE_SVC_F_POLICY |
		       SLUICE_SVC_F_POLICY_ALLOWLIST | SLUICE_SVC_F_POLICY_REFUSE |
		       SLUICE_SVC_F_POLICY_HASH);
	if (t->spec->affinity_timeout_s)
		svc.flags |= SLUICE_SVC_F_AFFINITY;
	if (t->spec->snat)
		svc.flags |= SLUICE_SVC_F_SNAT;
	if (t->spec->snat && t->spec->snat_node)
		svc.flags |= SLUICE_SVC_F_SNAT_NODE;
	if (t->spec->drop_empty)
		svc.flags |= SLUICE_SVC_F_DROP_EMPTY;
	if (t->spec->nsrc_ranges) /* its entries are in (svc__src_write) */
		svc.flags |= SLUICE_SVC_F_SOURCE_RANGES;
	if (t->npol_new) /* its entries are in (svc__policy_write) */
		svc.flags |= SLUICE_SVC_F_POLICY;
	if (t->npol_new && t->pol_lens) { /* and in policy_hash */
		svc.flags |= SLUICE_SVC_F_POLICY_HASH;
		svc.policy_lens = t->pol_lens;
	}
	if (t->spec->nallow)
		svc.flags |= SLUICE_SVC_F_POLICY_ALLOWLIST;
	if (t->spec->policy_refuse)
		svc.flags |= SLUICE_SVC_F_POLICY_REFUSE;
	svc.affinity_timeout_s = t->spec->affinity_timeout_s;
	if (t->existed && !memcmp(&svc, &t->old_svc, sizeof(svc)))
		return 0;
	err = bpf_map_update_elem(fd, &t->key, &svc, BPF_ANY);
	if (err)
		return maps__err(err, "services", "update", "of the service");
	if (!t->existed)
		svc__count(s, false, 1);
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
			svc__backend_delete(s, t->ids[u->idx]);
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
		else if (!bpf_map_delete_elem(s->fds[SLUICE_MAP_SERVICES], &t->key))
			svc__count(s, false, -1);
		break;
	case UNDO_MARKER:
		if (!bpf_map_delete_elem(s->fds[SLUICE_MAP_SERVICES], &t->marker_key)) {
			svc__count(s, true, -1);
			if (t->vip_bit_new) /* its service entry went first */
				svc__vip_bit_clear(s, &t->key);
		}
		break;
	case UNDO_SLOTS:
		svc__table_undo(t);
		break;
	}
}

/* Best effort: undo newest first so packets see the same safe sequence
 * backwards. The error text of the failed write is kept. */
static void svc__rollback(struct svc_txn *t)
{
	while (t->nundo)
		svc__undo_one(t, &t->undo[--t->nundo]);
	svc__health_undo_run(t->s, &t->hundo);
	svc__src_undo(t); /* after the old service entry is back */
	svc__policy_undo(t);
}

/* Last step: backends that left the set. New packets can no longer pick
 * them, but one that read an old slot may still be in a program: they are
 * deleted after a grace period, by sluice__flush_deferred(). Their
 * established flows keep going (conntrack holds the address). */
static void svc__delete_stale(struct svc_txn *t)
{
	/* their ids stay taken (in the snapshot) until the flush */
	for (__u32 j = 0; j < t->nold; j++) {
		struct sluice_backend gone = t->old[j].val;

		if (t->old[j].kept)
			continue;
		/* draining until deleted: a client's affinity entry no longer
		 * sends new flows to it (affinity.h checks the state) */
		gone.state = SLUICE_BE_DRAINING;
		gone.weight = 0;
		bpf_map_update_elem(t->s->fds[SLUICE_MAP_BACKENDS], &t->old[j].id, &gone,
				    BPF_EXIST);
		svc__defer_delete(t->s, t->old[j].id);
	}
}

/* The atomic part: one update per service makes its whole new table
 * visible. A group's updates go in together (maps__outer_update: batched,
 * large groups over threads), so the kernel's waits for RCU grace periods
 * (~8-12 ms each; one per element on older kernels) overlap instead of
 * adding up; and they run on a thread of their own while the next group
 * is written (sluice__service_set_many), so that wait overlaps the next
 * group's work too: 30k new services are 118 groups, 1.4 s of waiting
 * when each waited in turn (#16). */
struct svc_swap {
	struct svc_txn *tx;
	__u32 *keys, *who, count, bad;
	int *vals, fd, err;
	bool *written;
	pthread_t tid;
	bool started; /* on its thread: joined by svc__swap_wait */
};

static void *svc__swap_thread(void *arg)
{
	struct svc_swap *sw = arg;

	sw->err = maps__outer_update(sw->fd, sw->keys, sw->vals, sw->count, sw->written, &sw->bad);
	return NULL;
}

/* Starts the swaps of tx[0..n), on a thread when other work can overlap
 * their wait (threaded), else (or when no thread starts) here. Out of
 * memory is kept in sw->err for svc__swap_wait, which reports it. */
static void svc__swap_start(struct svc_swap *sw, struct svc_txn *tx, __u32 n, bool threaded)
{
	*sw = (struct svc_swap){ .tx = tx, .fd = tx[0].s->fds[SLUICE_MAP_MAGLEV] };
	sw->keys = calloc(n, sizeof(*sw->keys));
	sw->vals = calloc(n, sizeof(*sw->vals));
	sw->who = calloc(n, sizeof(*sw->who));
	sw->written = calloc(n, sizeof(*sw->written));
	if (!sw->keys || !sw->vals || !sw->who || !sw->written) {
		free(sw->keys);
		free(sw->vals);
		free(sw->who);
		free(sw->written);
		*sw = (struct svc_swap){ .err = -ENOMEM }; /* svc__swap_wait says it */
		return;
	}
	for (__u32 i = 0; i < n; i++) {
		if (!tx[i].nactive || tx[i].new_inner_fd < 0)
			continue;
		sw->keys[sw->count] = tx[i].svc_id;
		sw->vals[sw->count] = tx[i].new_inner_fd;
		sw->who[sw->count++] = i;
	}
	if (!sw->count)
		return;
	sw->started = threaded && !pthread_create(&sw->tid, NULL, svc__swap_thread, sw);
	if (!sw->started)
		svc__swap_thread(sw);
}

/* The swaps' end: each written table is undone with its service; on error
 * *failed is the index of the service whose swap failed. */
static int svc__swap_wait(struct svc_swap *sw, __u32 *failed)
{
	int err;

	if (sw->started)
		pthread_join(sw->tid, NULL);
	err = sw->err;
	for (__u32 k = 0; k < sw->count; k++)
		if (sw->written[k])
			svc__push_undo(&sw->tx[sw->who[k]], UNDO_MAGLEV, 0);
	if (err && !sw->who) { /* svc__swap_start's allocations */
		*failed = 0;
		sluice__set_err("out of memory");
	} else if (err) {
		*failed = sw->who[sw->bad < sw->count ? sw->bad : sw->count - 1];
		maps__err(err, "maglev", "swap", "of the service's table");
	}
	free(sw->keys);
	free(sw->vals);
	free(sw->who);
	free(sw->written);
	*sw = (struct svc_swap){ 0 };
	return err;
}

static void svc__group_undo(struct svc_txn *tx, __u32 n)
{
	while (n)
		svc__rollback(&tx[--n]);
}

/* A group's first half: every table planned, then backends, source
 * ranges and policy entries, then the changed slots of tables changed in
 * place (the new backends are in already). Nothing names a new backend
 * yet but those slots. A failure undoes the group and sets *failed to the
 * index of the service the error is about. */
static int svc__group_write(struct svc_txn *tx, __u32 n, __u32 *failed)
{
	__u32 i = 0;
	int err = 0;

	for (i = 0; i < n && !err; i++) {
		err = svc__table_find(&tx[i]);
		if (!err && tx[i].nactive)
			err = svc__table_build(&tx[i]);
	}
	for (i = err ? i : 0; i < n && !err; i++) {
		err = svc__write_backends(&tx[i]);
		if (!err) /* before the service entry can carry the flag */
			err = svc__src_write(&tx[i]);
		if (!err)
			err = svc__policy_write(&tx[i]);
	}
	if (err) {
		*failed = i - 1;
		goto rollback;
	}
	for (i = 0; i < n && !err; i++)
		if (tx[i].nactive && tx[i].mem && !(err = svc__table_write(&tx[i])))
			svc__push_undo(&tx[i], UNDO_SLOTS, 0);
	if (err) {
		*failed = i - 1;
		goto rollback;
	}
	return 0;
rollback:
	svc__group_undo(tx, n);
	return err;
}

/* A group's second half, once its swaps (sw, started after
 * svc__group_write) are done: with backends the table went first so the
 * service never points at an empty slot; without, the service says
 * "refuse" before the table goes away, for the same reason. Then the
 * stale backends. A failure undoes the group, as above. */
static int svc__group_land(struct svc_txn *tx, __u32 n, struct svc_swap *sw, __u32 *failed)
{
	__u32 i = 0;
	int err;

	err = svc__swap_wait(sw, failed);
	if (err)
		goto rollback;
	for (i = 0; i < n && !err; i++)
		if (tx[i].nactive)
			err = svc__write_service(&tx[i]);
	for (i = err ? i : 0; i < n && !err; i++)
		if (!tx[i].nactive && !(err = svc__write_service(&tx[i])))
			err = svc__drop_inner(&tx[i]);
	if (err) {
		*failed = i - 1;
		goto rollback;
	}
	/* The new sets are live at this point: a backend entry that could not
	 * be deleted is referenced by no table and is collected the next time
	 * its service is set, so failing here would report a change as
	 * rejected that is in fact applied. */
	for (i = 0; i < n; i++) {
		svc__table_commit(&tx[i]);
		svc__delete_stale(&tx[i]);
		svc__src_delete_stale(&tx[i]);
		svc__policy_delete_stale(&tx[i]);
	}
	return 0;
rollback:
	svc__group_undo(tx, n);
	return err;
}

static int svc__cmp_key(const void *x, const void *y, void *ctx)
{
	const struct sluice_svc_key *keys = ctx;

	return memcmp(&keys[*(const __u32 *)x], &keys[*(const __u32 *)y], sizeof(*keys));
}

/* Every spec valid, and no service named twice (the plan of the second
 * would not see the first's writes). */
static int svc__validate_all(const struct sluice_service_spec *specs, __u32 n,
			     struct sluice_svc_key *keys, __u32 *failed)
{
	char name[64];
	__u32 *order;
	int err;

	for (__u32 i = 0; i < n; i++) {
		err = svc__validate(&specs[i], &keys[i]);
		if (err) {
			*failed = i;
			return err;
		}
	}
	if (n < 2)
		return 0;
	order = malloc(n * sizeof(*order));
	if (!order) {
		sluice__set_err("out of memory");
		*failed = 0;
		return -ENOMEM;
	}
	for (__u32 i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), svc__cmp_key, keys);
	for (__u32 i = 1; i < n && !err; i++) {
		if (memcmp(&keys[order[i - 1]], &keys[order[i]], sizeof(*keys)))
			continue;
		*failed = order[i] > order[i - 1] ? order[i] : order[i - 1];
		sluice__set_err("service %s is given twice (specs %u and %u)",
				sluice_svc_key__str(&keys[*failed], name, sizeof(name)),
				order[i] < order[i - 1] ? order[i] : order[i - 1], *failed);
		err = -EINVAL;
	}
	free(order);
	return err;
}

/* A service that had affinity and has it no more: its entries go after
 * the call (*off: [SLUICE_MAX_SERVICES], allocated on first need). */
static void svc__note_affinity_off(const struct svc_txn *t, bool **off)
{
	if (!t->existed || !(t->old_svc.flags & SLUICE_SVC_F_AFFINITY) ||
	    t->spec->affinity_timeout_s || t->svc_id >= SLUICE_MAX_SERVICES)
		return;
	if (!*off)
		*off = calloc(SLUICE_MAX_SERVICES, sizeof(**off));
	if (*off) /* without memory they stay: the LRU reclaims them */
		(*off)[t->svc_id] = true;
}

/* A group of services in sluice__service_set_many(): specs [base, base+n). */
struct svc_group {
	struct svc_txn *tx;
	__u32 base, n;
	struct svc_swap sw;
};

/* Plans g's services and writes its first half; on error (the group
 * undone, or nothing written) *bad is the spec the error is about. */
static int svc__group_begin(struct svc_group *g, struct sluice *s,
			    const struct sluice_service_spec *specs,
			    const struct sluice_svc_key *keys, struct svc_snap *snap, __u32 *bad)
{
	int err = 0;

	for (__u32 i = 0; i < g->n; i++)
		g->tx[i].old_inner_fd = g->tx[i].new_inner_fd = -1;
	for (__u32 i = 0; i < g->n && !err; i++) {
		err = svc__txn_init(&g->tx[i], s, &specs[g->base + i], &keys[g->base + i]);
		if (!err)
			err = svc__plan(&g->tx[i], snap);
		if (!err)
			err = svc__src_plan(&g->tx[i], snap);
		if (!err)
			err = svc__policy_plan(&g->tx[i], snap);
		*bad = g->base + i;
	}
	if (!err) {
		err = svc__group_write(g->tx, g->n, bad);
		*bad += g->base;
	}
	return err;
}

/* Lands g (its swaps started): on success its services are live and noted
 * in snap; either way its transactions are freed. */
static int svc__group_end(struct svc_group *g, struct svc_snap *snap, bool **aff_off, bool *stale,
			  __u32 *bad)
{
	int err;

	err = svc__group_land(g->tx, g->n, &g->sw, bad);
	*bad += g->base;
	for (__u32 i = 0; i < g->n; i++) {
		if (!err)
			svc__note_affinity_off(&g->tx[i], aff_off);
		if (!err && svc__snap_commit(snap, &g->tx[i]))
			*stale = true;
		svc__txn_free(&g->tx[i]);
	}
	return err;
}

static void svc__group_drop(struct svc_group *g, bool undo)
{
	if (undo)
		svc__group_undo(g->tx, g->n);
	for (__u32 i = 0; i < g->n; i++)
		svc__txn_free(&g->tx[i]);
}

/* Groups go through a pipeline of two: while one group's table swaps wait
 * for their grace period, the next group is planned and written up to
 * its swaps; then the first one lands (service entries, stale backends).
 * A group never lands before the one ahead of it, so *applied stays a
 * prefix of specs; when a group fails, the one behind it is undone too. */
int sluice__service_set_many(struct sluice *s, const struct sluice_service_spec *specs, __u32 n,
			     __u32 *applied, __u32 *failed)
{
	struct sluice_svc_key *keys = NULL;
	struct svc_group g[2] = {}, *cur, *ahead, *prev = NULL;
	struct svc_snap *snap = NULL;
	__u32 done = 0, next = 0, bad = 0, pbad = 0, gmax;
	bool *aff_off = NULL, stale = false;
	char msg[SLUICE_ERRMSG_LEN];
	int err = 0, perr;

	sluice__clear_err();
	if (!n)
		goto out;
	if (!specs) {
		sluice__set_err("specs is NULL");
		err = -EINVAL;
		goto out;
	}
	gmax = n < SLUICE_SET_GROUP ? n : SLUICE_SET_GROUP;
	keys = calloc(n, sizeof(*keys));
	g[0].tx = calloc(gmax, sizeof(*g[0].tx));
	g[1].tx = n > gmax ? calloc(gmax, sizeof(*g[1].tx)) : NULL;
	if (!keys || !g[0].tx || (n > gmax && !g[1].tx)) {
		sluice__set_err("out of memory");
		err = -ENOMEM;
		goto out;
	}
	err = svc__validate_all(specs, n, keys, &bad);
	if (err)
		goto out;
	err = svc__snap_get(s, &snap);
	if (err) {
		bad = n; /* about no spec in particular */
		goto out;
	}
	for (__u32 k = 0; next < n && !err; k++) {
		cur = &g[k & 1];
		cur->base = next;
		cur->n = n - next < gmax ? n - next : gmax;
		err = svc__group_begin(cur, s, specs, keys, snap, &bad);
		if (prev) {
			ahead = prev;
			prev = NULL;
			if (err) /* landing the group ahead may say things of its own */
				snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
			perr = svc__group_end(ahead, snap, &aff_off, &stale, &pbad);
			if (perr) { /* the error ahead wins; cur is undone */
				svc__group_drop(cur, !err);
				err = perr;
				bad = pbad;
				break;
			}
			done += ahead->n;
			if (err == -ENOSPC || err == -E2BIG) {
				/* Out of backend ids or room: the group ahead's old
				 * backends free both once it has landed (deferred
				 * deletes, flushed on need), as when groups went one
				 * after another. This group begins again, planned on a
				 * fresh snapshot: its first plan took ids it never
				 * wrote. */
				svc__group_drop(cur, false);
				svc__snap_drop(s);
				err = svc__snap_get(s, &snap);
				if (err)
					bad = n; /* about no spec in particular */
				else
					err = svc__group_begin(cur, s, specs, keys, snap, &bad);
			} else if (err) {
				sluice__set_err("%s", msg);
			}
		}
		if (err) {
			svc__group_drop(cur, false); /* undone by svc__group_begin */
			break;
		}
		next += cur->n;
		svc__swap_start(&cur->sw, cur->tx, cur->n, next < n); /* threaded if one follows */
		prev = cur;
	}
	if (prev) {
		err = svc__group_end(prev, snap, &aff_off, &stale, &bad);
		if (!err)
			done += prev->n;
	}
	if (aff_off)
		svc__affinity_forget(s, aff_off);
out:
	if (!err)
		sluice__clear_err(); /* texts of best-effort steps that failed */
	if (applied)
		*applied = done;
	if (failed)
		*failed = err ? bad : n;
	if (err || stale) /* ids planned but not written, or a set not noted */
		svc__snap_drop(s);
	free(aff_off);
	free(g[0].tx);
	free(g[1].tx);
	free(keys);
	return err;
}

int sluice__service_set(struct sluice *s, const struct sluice_service_spec *spec)
{
	return sluice__service_set_many(s, spec, 1, NULL, NULL);
}
