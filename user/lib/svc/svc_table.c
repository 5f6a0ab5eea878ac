// SPDX-License-Identifier: MIT
/*
 * svc_table.c - each service's Maglev table: found without reading the
 * outer map, changed in place, swapped whole only when it must be; and the
 * deferred deletes of backends that left a set (#16, #19).
 *
 * Contract: a table this library made is named mg<maglev map id>_<svc id>
 * and its map id is kept in the struct sluice (cache) and in the pinned
 * array `maglev_ids` (not read by BPF), written after every swap, so a
 * restarted process finds it with one array read instead of an outer-map
 * lookup (which waits for an RCU grace period, 10-20 ms, on kernels before
 * 6.7). A table found this way is checked (type, size, flags, name) before
 * use; a stale id (the map is gone) falls back to the outer lookup.
 * Tables are sized by need (#16, sluice_abi.h): a change whose backend
 * count keeps the table's M writes slots in place, one that changes M
 * builds a new table of the new size and swaps it in whole. A
 * change writes only the slots that differ, each one aligned 4-byte store
 * into the mmapped table, so a packet reads the old or the new backend id
 * of its slot, never a torn one. Backends that left a set are deleted from
 * `backends` only in sluice__flush_deferred(), after an RCU grace period
 * (a program that read the old slot may still be running); until then
 * their ids are not handed out again. One writer process is assumed (as
 * for every map write of the library).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/membarrier.h>

#include <bpf/bpf.h>

#include "sluice_hash.h"
#include "svc_txn.h"
#include "kfeatures.h"

/* The shared empty table of deleted services (svc_query.c) keeps this
 * name: it is nobody's own table. */
#define MAGLEV_INNER_NAME "sluice_maglev"

/* The bytes of a table of m slots (its mmapped length). */
static size_t svc__table_bytes(__u32 m)
{
	return SLUICE_MAGLEV_ELEMS_OF(m) * sizeof(struct sluice_maglev_pair);
}

__u32 svc__table_m(const struct sluice *s, __u32 nbackends)
{
	return s->maglev_fixed ? SLUICE_MAGLEV_M : maglev__size(nbackends);
}

static int svc__create_named(struct sluice *s, const char *name, const __u32 *table, __u32 m)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE);
	size_t bytes = svc__table_bytes(m);
	void *mem;
	int fd, err;

	/* the flags of every table in `maglev` equal its template's */
	if (!s->maglev_fixed)
		opts.map_flags |= BPF_F_INNER_MAP;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name, sizeof(__u32),
			    sizeof(struct sluice_maglev_pair), SLUICE_MAGLEV_ELEMS_OF(m), &opts);
	if (fd < 0)
		return maps__err(fd, "maglev", "create", "of a new inner table");
	if (!table)
		return fd; /* arrays start zeroed */
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		err = -errno;
		close(fd);
		return maps__err(err, "maglev", "mmap", "of a new inner table");
	}
	memcpy(mem, table, bytes);
	munmap(mem, bytes);
	return fd;
}

int svc__create_inner(struct sluice *s, const __u32 *table)
{
	/* the shared empty table: the smallest size (fixed: the only one) */
	return svc__create_named(s, MAGLEV_INNER_NAME, table, svc__table_m(s, 0));
}

int svc__table_info(int fd, __u32 *m)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int err;

	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err)
		return err;
	if (info.type != BPF_MAP_TYPE_ARRAY || !info.max_entries ||
	    info.max_entries > SLUICE_MAGLEV_ELEMS_MAX ||
	    info.value_size != sizeof(struct sluice_maglev_pair))
		return -EPROTO;
	*m = sluice_maglev_m(info.max_entries);
	return 0;
}

/* "mg<outer id>_<svc id>", cut to the kernel's 15 characters the same way
 * when made and when checked. */
static void svc__table_name(struct sluice *s, __u32 svc_id, char name[BPF_OBJ_NAME_LEN])
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (!s->outer_id && !bpf_obj_get_info_by_fd(s->fds[SLUICE_MAP_MAGLEV], &info, &len))
		s->outer_id = info.id;
	snprintf(name, BPF_OBJ_NAME_LEN, "mg%u_%u", s->outer_id, svc_id);
}

/* Whether fd is a table this library made for svc_id; *id its map id,
 * *m its size (the table's own: sluice_maglev_m(max_entries)). */
static bool svc__table_is_ours(struct sluice *s, int fd, __u32 svc_id, __u32 *id, __u32 *m)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char name[BPF_OBJ_NAME_LEN];

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return false;
	svc__table_name(s, svc_id, name);
	*id = info.id;
	*m = sluice_maglev_m(info.max_entries);
	return info.type == BPF_MAP_TYPE_ARRAY && info.max_entries &&
	       info.max_entries <= SLUICE_MAGLEV_ELEMS_MAX &&
	       info.value_size == sizeof(struct sluice_maglev_pair) &&
	       (info.map_flags & BPF_F_MMAPABLE) && !strcmp(info.name, name);
}

/* Remember svc_id's table id (0: none) and size, in the cache and (the
 * id) the pinned array. Best effort: a stale entry only costs one outer
 * lookup later. */
static void svc__table_note(struct sluice *s, __u32 svc_id, __u32 id, __u32 m)
{
	if (svc_id >= SLUICE_MAX_SERVICES)
		return;
	if (s->mg_ids)
		s->mg_ids[svc_id] = id;
	svc__table_note_m(s, svc_id, id ? m : 0);
	bpf_map_update_elem(s->fds[SLUICE_MAP_MAGLEV_IDS], &svc_id, &id, BPF_ANY);
}

void svc__table_note_m(struct sluice *s, __u32 svc_id, __u32 m)
{
	if (svc_id >= SLUICE_MAX_SERVICES)
		return;
	if (!s->mg_m && m)
		s->mg_m = calloc(SLUICE_MAX_SERVICES, sizeof(*s->mg_m));
	if (s->mg_m)
		s->mg_m[svc_id] = m;
}

void svc__table_forget(struct sluice *s, __u32 svc_id)
{
	svc__table_note(s, svc_id, 0, 0);
}

/* The table id the cache or the pinned array knows for svc_id, 0: none. */
static __u32 svc__table_known(struct sluice *s, __u32 svc_id)
{
	__u32 id = 0;

	if (svc_id >= SLUICE_MAX_SERVICES)
		return 0;
	if (!s->mg_ids)
		s->mg_ids = calloc(SLUICE_MAX_SERVICES, sizeof(*s->mg_ids));
	if (s->mg_ids && s->mg_ids[svc_id])
		return s->mg_ids[svc_id];
	if (bpf_map_lookup_elem(s->fds[SLUICE_MAP_MAGLEV_IDS], &svc_id, &id))
		return 0;
	if (s->mg_ids)
		s->mg_ids[svc_id] = id;
	return id;
}

/* The outer-map lookup the index avoids (svc__table_find's fallback). */
static int svc__table_lookup(struct svc_txn *t)
{
	__u32 inner_id;
	int err, fd;

	err = bpf_map_lookup_elem(t->s->fds[SLUICE_MAP_MAGLEV], &t->svc_id, &inner_id);
	if (err == -ENOENT)
		return 0;
	if (err)
		return maps__err(err, "maglev", "lookup", "of the current table");
	fd = bpf_map_get_fd_by_id(inner_id);
	if (fd == -ENOENT)
		return 0; /* freed meanwhile: nothing to restore */
	if (fd < 0)       /* EMFILE, EPERM: a rollback could not restore it */
		return maps__err(fd, "maglev", "open", "of the current table");
	t->old_inner_fd = fd;
	return 0;
}

static bool svc__outer_read_fast(void)
{
	struct sluice_features f;

	return !sluice__features(&f) && f.has[SLUICE_FEAT_OUTER_READ_FAST];
}

int svc__table_find(struct svc_txn *t)
{
	struct sluice *s = t->s;
	__u32 id = svc__table_known(s, t->svc_id), got;
	int fd, err;

	t->owned = false;
	if (id) {
		fd = bpf_map_get_fd_by_id(id);
		if (fd >= 0 && svc__table_is_ours(s, fd, t->svc_id, &got, &t->old_m)) {
			t->old_inner_fd = fd;
			t->owned = true;
			svc__table_note_m(s, t->svc_id, t->old_m);
			return 0;
		}
		if (fd >= 0)
			close(fd);
		svc__table_forget(s, t->svc_id); /* stale */
	}
	/* Not known: no table, or one an older library made. A new service's
	 * slot holds no live table (at most the shared empty one of deleted
	 * services), so it is read only where reading is cheap, to put back
	 * exactly what was there if the change fails. */
	if (!t->existed && !svc__outer_read_fast())
		return 0;
	err = svc__table_lookup(t);
	if (err || t->old_inner_fd < 0)
		return err;
	if (svc__table_is_ours(s, t->old_inner_fd, t->svc_id, &got, &t->old_m)) {
		t->owned = true;
		svc__table_note(s, t->svc_id, got, t->old_m);
	} else if (svc__table_info(t->old_inner_fd, &t->old_m)) {
		t->old_m = 0; /* not a table of ours: replaced, never read */
	}
	return 0;
}

int svc__table_read_fd(struct sluice *s, __u32 svc_id)
{
	__u32 id = svc__table_known(s, svc_id), got, inner;
	int fd, err;

	if (id) {
		fd = bpf_map_get_fd_by_id(id);
		if (fd >= 0 && svc__table_is_ours(s, fd, svc_id, &got, &inner))
			return fd;
		if (fd >= 0)
			close(fd);
	}
	if (!svc__outer_read_fast())
		return -ENOENT;
	err = bpf_map_lookup_elem(s->fds[SLUICE_MAP_MAGLEV], &svc_id, &inner);
	if (err)
		return err;
	return bpf_map_get_fd_by_id(inner);
}

__u32 sluice__table_size(struct sluice *s, __u32 svc_id)
{
	__u32 id, m = 0;
	int fd;

	if (!s || svc_id >= SLUICE_MAX_SERVICES)
		return 0;
	id = svc__table_known(s, svc_id);
	if (id && s->mg_m && s->mg_m[svc_id])
		return s->mg_m[svc_id];
	fd = svc__table_read_fd(s, svc_id);
	if (fd < 0)
		return 0;
	if (svc__table_info(fd, &m))
		m = 0;
	close(fd);
	if (id && s->mg_ids && s->mg_ids[svc_id] == id)
		svc__table_note_m(s, svc_id, m);
	return m;
}

/* The Maglev table of t's new set, as backend ids, into t->table. */
static int svc__table_compute(struct svc_txn *t)
{
	const struct sluice_service_spec *spec = t->spec;
	struct sluice_backend_spec *bes;
	int err;

	t->m = svc__table_m(t->s, spec->nbackends);
	t->table = calloc(1, svc__table_bytes(t->m)); /* the spare last slot stays 0 */
	bes = calloc(spec->nbackends, sizeof(*bes));
	if (!t->table || !bes) {
		free(bes);
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	/* Unhealthy backends own no slots, as drained ones; they still take
	 * part in the permutation, so the others keep their slots. */
	for (__u32 i = 0; i < spec->nbackends; i++) {
		bes[i] = spec->backends[i];
		if (bes[i].unhealthy)
			bes[i].weight = 0;
	}
	err = maglev__build(bes, spec->nbackends, t->m, t->table);
	free(bes);
	if (err)
		return err;
	for (__u32 i = 0; i < t->m; i++)
		t->table[i] = t->ids[t->table[i]];
	return 0;
}

/* The slots where the mapped table mem differs from t->table, with both
 * values, into t->slots (the diff is what an in-place change writes and
 * what its undo puts back). */
static int svc__table_diff(struct svc_txn *t, const __u32 *mem)
{
	__u32 n = 0;

	for (__u32 i = 0; i < t->m; i++)
		n += mem[i] != t->table[i];
	t->slots = calloc(n ? n : 1, sizeof(*t->slots));
	if (!t->slots) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (__u32 i = 0; i < t->m; i++)
		if (mem[i] != t->table[i])
			t->slots[t->nslots++] =
				(struct svc_slot){ .slot = i, .old = mem[i], .new = t->table[i] };
	return 0;
}

/* Plans t's table: nothing to do when the current one already holds it
 * (a restart's reconcile of unchanged services stays cheap), in place when
 * the current one is ours and of the new set's size (t->mem mapped, the
 * changed slots in t->slots), else a new named table in t->new_inner_fd
 * to swap in: a service whose backend count moves it to another size
 * (grown past its table, or shrunk to a smaller one) gets a new table as
 * a whole, with its M, in the one `maglev` update that replaces the old
 * table and its M together. No slot of a live table is written here; the
 * computed table is freed at the end (a group of 256 services holds
 * diffs, not whole tables). */
int svc__table_build(struct svc_txn *t)
{
	char name[BPF_OBJ_NAME_LEN];
	size_t bytes = 0;
	void *mem = MAP_FAILED;
	int fd, err;

	err = svc__table_compute(t);
	if (err)
		goto out;
	bytes = svc__table_bytes(t->m);
	if (t->old_inner_fd >= 0 && t->old_m == t->m)
		mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, t->old_inner_fd, 0);
	if (mem != MAP_FAILED && !memcmp(mem, t->table, bytes))
		goto out; /* unchanged */
	if (mem != MAP_FAILED && t->owned) {
		err = svc__table_diff(t, mem);
		if (!err) {
			t->mem = mem;
			mem = MAP_FAILED;
		}
		goto out;
	}
	svc__table_name(t->s, t->svc_id, name);
	fd = svc__create_named(t->s, name, t->table, t->m);
	if (fd < 0)
		err = fd;
	else
		t->new_inner_fd = fd;
out:
	if (mem != MAP_FAILED)
		munmap(mem, bytes);
	free(t->table);
	t->table = NULL;
	return err;
}

/* The in-place change: each changed slot one aligned __u32 store, so a
 * packet reads its slot's old or new backend id. */
int svc__table_write(struct svc_txn *t)
{
	__u32 *mem = t->mem;

	for (__u32 i = 0; mem && i < t->nslots; i++)
		__atomic_store_n(&mem[t->slots[i].slot], t->slots[i].new, __ATOMIC_RELAXED);
	return 0;
}

void svc__table_undo(struct svc_txn *t)
{
	__u32 *mem = t->mem;

	for (__u32 i = t->nslots; mem && i > 0; i--)
		__atomic_store_n(&mem[t->slots[i - 1].slot], t->slots[i - 1].old, __ATOMIC_RELAXED);
}

/* After the group is live: the index follows a swap or a dropped table. */
void svc__table_commit(struct svc_txn *t)
{
	__u32 id, m;

	if (t->nactive && t->new_inner_fd >= 0 &&
	    svc__table_is_ours(t->s, t->new_inner_fd, t->svc_id, &id, &m))
		svc__table_note(t->s, t->svc_id, id, m);
	else if (!t->nactive && t->old_inner_fd >= 0)
		svc__table_forget(t->s, t->svc_id);
}

void svc__table_free(struct svc_txn *t)
{
	if (t->mem)
		munmap(t->mem, SLUICE_MAGLEV_ELEMS_OF(t->m) * sizeof(struct sluice_maglev_pair));
	free(t->table);
	free(t->slots);
	t->mem = NULL;
	t->table = NULL;
	t->slots = NULL;
	t->nslots = 0;
}

/* --- deferred deletes --- */

void svc__defer_delete(struct sluice *s, __u32 id)
{
	__u32 *grown;

	if (id >= SLUICE_MAX_BACKENDS)
		return;
	if (!s->pend)
		s->pend = calloc(SLUICE_MAX_BACKENDS, sizeof(*s->pend));
	if (s->npend == s->pend_cap) {
		s->pend_cap = s->pend_cap ? 2 * s->pend_cap : 64;
		grown = realloc(s->pend_ids, s->pend_cap * sizeof(*grown));
		if (grown)
			s->pend_ids = grown;
	}
	if (!s->pend || s->npend == s->pend_cap) {
		/* no memory to defer: delete now, as before #16, and free
		 * its id (else the handle's snapshot keeps it taken) */
		if (!svc__backend_delete(s, id))
			svc__snap_free_be(s, id);
		return;
	}
	if (s->pend[id])
		return;
	s->pend[id] = true;
	s->pend_ids[s->npend++] = id;
}

bool svc__deferred(const struct sluice *s, __u32 id)
{
	return s->pend && id < SLUICE_MAX_BACKENDS && s->pend[id];
}

/* Waits for an RCU grace period: XDP, tc and cgroup programs run in RCU
 * read-side sections, so one that read a slot before the wait has finished
 * after it. membarrier(GLOBAL) is synchronize_rcu() (Linux 4.3, named
 * SHARED until 4.16); refused with nohz_full: then a sleep far longer than
 * any program run. */
static void svc__grace_period(void)
{
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0))
		usleep(50 * 1000);
	else if (sysconf(_SC_NPROCESSORS_ONLN) == 1)
		usleep(20 * 1000); /* the kernel skips the wait on one CPU */
}

int svc__flush(struct sluice *s)
{
	__u32 n;
	int err;

	if (!s->npend)
		return 0;
	svc__grace_period();
	n = s->npend;
	for (__u32 i = 0; i < n; i++) {
		err = svc__backend_delete(s, s->pend_ids[i]);
		if (err && err != -ENOENT)
			maps__err(err, "backends", "delete",
				  "of a deferred backend"); /* its id stays taken */
		s->pend[s->pend_ids[i]] = false;
		if (!err || err == -ENOENT)
			svc__snap_free_be(s, s->pend_ids[i]);
	}
	s->npend = 0;
	return (int)n;
}

int sluice__flush_deferred(struct sluice *s)
{
	sluice__clear_err();
	return s ? svc__flush(s) : 0;
}

__u32 sluice__deferred_count(const struct sluice *s)
{
	return s ? s->npend : 0;
}

void svc__tables_close(struct sluice *s)
{
	svc__flush(s); /* keeps the error text of a failed open */
	svc__snap_drop(s);
	free(s->pend);
	free(s->pend_ids);
	free(s->mg_ids);
	free(s->mg_m);
}
