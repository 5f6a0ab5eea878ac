// SPDX-License-Identifier: MIT
/*
 * dp_cache.c - one verified load of the datapath per config, reused by
 * every case that asks for that config.
 *
 * Contract: dp__open_cfg() takes its load from here. The first case of a
 * rodata config loads lb.bpf.o with both programs (verified once), pinned
 * in a private directory on bpffs (<bpffs>/sluice-dptest-<pid>-<n>), and
 * records the contents of every map the programs use or the directory
 * holds: the pristine state, before any service exists. Every case of
 * that config then gets the same programs and maps, put back to the
 * pristine state and read back equal to it, and opens them through the
 * library the way a restarted agent does (pin_dir + reuse_progs). So each
 * case still starts from exactly what a fresh load holds, minus the
 * verifier: ~2.7 s of every case on the host, ~20 s under emulation
 * (make test-kernels).
 *
 * Put back means: hashes, LRU hashes and tries hold the pristine entries
 * and nothing else; arrays hold the pristine values; ring buffers are
 * drained; the Maglev outer map's slots are emptied (every slot read back
 * where such reads are cheap, else the slots maglev_ids and services name,
 * since each read there waits for an RCU grace period). A map that cannot
 * be put back (another type, more than DP_CACHE_MAX_ENTRIES entries, a
 * mismatch when read back, a failed write) retires the load: its pins go,
 * a line on stderr names the map, and the case loads afresh. Cases that
 * fill conntrack (ct_flood) thus pay their own load, as before.
 *
 * A forked child (netns and TUN cases) may take a load the parent is not
 * using but never makes one; threads take a load under a lock, one holder
 * at a time. SLUICE_DP_FRESH=1 turns the cache off: every case loads
 * afresh. The directories are removed at exit and those of dead runs at
 * the first load.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dp.h"
#include "kfeatures.h"

#define DP_CACHE_LOADS 8
#define DP_CACHE_MAPS 64
/* A hash holding more than this is not emptied: the load is retired
 * instead. Above conntrack's production size, which flood cases fill. */
#define DP_CACHE_MAX_ENTRIES (1U << 19)
#define DP_CACHE_PREFIX "sluice-dptest-"

struct dp_map {
	int fd;
	__u32 id, type, key_size, vsize, max_entries;
	char name[BPF_OBJ_NAME_LEN];
	/* pristine contents: arrays all max_entries values, hashes n pairs */
	size_t n;
	void *keys, *vals;
};

struct dp_load {
	bool made, used, retired;
	__u32 cfg;
	char dir[PATH_MAX];
	struct dp_map maps[DP_CACHE_MAPS];
	int nmaps;
};

static struct dp_load dp_loads[DP_CACHE_LOADS];
static pthread_mutex_t dp_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t dp_cache_owner;
static char dp_bpffs[256];
static int dp_cache_state; /* 0: not set up, 1: on, -1: off */
static __thread bool dp_cache_bypass;

void dp__cache_bypass(bool on)
{
	dp_cache_bypass = on;
}

static bool dp__is_hash(__u32 type)
{
	return type == BPF_MAP_TYPE_HASH || type == BPF_MAP_TYPE_LRU_HASH ||
	       type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
	       type == BPF_MAP_TYPE_LPM_TRIE || type == BPF_MAP_TYPE_DEVMAP_HASH;
}

static bool dp__is_array(__u32 type)
{
	return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

static bool dp__is_percpu(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

/* The bpffs mount, from /proc/mounts (not assumed to be /sys/fs/bpf). */
static bool dp__find_bpffs(void)
{
	char dev[256], dir[256], type[64];
	FILE *f = fopen("/proc/mounts", "r");
	bool found = false;

	if (!f)
		return false;
	while (!found && fscanf(f, "%255s %255s %63s %*[^\n]", dev, dir, type) == 3) {
		if (!strcmp(type, "bpf")) {
			snprintf(dp_bpffs, sizeof(dp_bpffs), "%s", dir);
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* Pins of runs that died without their exit handler (a timeout's kill). */
static void dp__sweep_dead(void)
{
	DIR *dir = opendir(dp_bpffs);
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir))) {
		char path[PATH_MAX];
		long pid;

		if (strncmp(e->d_name, DP_CACHE_PREFIX, strlen(DP_CACHE_PREFIX)))
			continue;
		pid = strtol(e->d_name + strlen(DP_CACHE_PREFIX), NULL, 10);
		if (pid <= 0 || !kill((pid_t)pid, 0) || errno != ESRCH)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dp_bpffs, e->d_name) >=
		    sizeof(path))
			continue;
		sluice__unpin(path);
		rmdir(path);
	}
	closedir(dir);
}

static void dp__map_free(struct dp_map *m)
{
	if (m->fd >= 0)
		close(m->fd);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

/* Called with the lock held, or at exit. */
static void dp__retire(struct dp_load *l, const char *why, const char *map)
{
	if (why)
		fprintf(stderr,
			"dp_cache: config %#x: load retired (%s%s%s); this case loads afresh\n",
			l->cfg, map ? map : "", map ? ": " : "", why);
	for (int i = 0; i < l->nmaps; i++)
		dp__map_free(&l->maps[i]);
	l->nmaps = 0;
	if (l->dir[0] && getpid() == dp_cache_owner) {
		sluice__unpin(l->dir);
		rmdir(l->dir);
	}
	l->retired = true;
}

static void dp__cache_exit(void)
{
	if (getpid() != dp_cache_owner)
		return;
	for (int i = 0; i < DP_CACHE_LOADS; i++)
		if (dp_loads[i].made && !dp_loads[i].retired)
			dp__retire(&dp_loads[i], NULL, NULL);
}

static bool dp__cache_on(void)
{
	const char *fresh = getenv("SLUICE_DP_FRESH");
	struct statfs st;

	if (dp_cache_state)
		return dp_cache_state > 0;
	dp_cache_state = -1;
	if (fresh && *fresh && strcmp(fresh, "0"))
		return false;
	if (!dp__find_bpffs() || statfs(dp_bpffs, &st) || st.f_type != BPF_FS_MAGIC) {
		fprintf(stderr, "dp_cache: no bpffs mounted: every case loads afresh\n");
		return false;
	}
	dp_cache_owner = getpid();
	dp__sweep_dead();
	atexit(dp__cache_exit);
	dp_cache_state = 1;
	return true;
}

/* All of an array's values (max_entries * vsize bytes), by batches where
 * the kernel has them. */
static int dp__read_array(const struct dp_map *m, void *vals)
{
	__u32 count = m->max_entries, out = 0;
	__u32 *keys = calloc(m->max_entries, sizeof(*keys));
	int err;

	if (!keys)
		return -ENOMEM;
	err = bpf_map_lookup_batch(m->fd, NULL, &out, keys, vals, &count, NULL);
	if (err && errno == ENOENT && count == m->max_entries)
		err = 0;
	if (!err && count == m->max_entries) {
		/* batches come in key order from 0; check it anyway */
		for (__u32 i = 0; i < count; i++)
			if (keys[i] != i)
				err = -EPROTO;
	} else {
		err = 0;
		for (__u32 i = 0; i < m->max_entries && !err; i++)
			if (bpf_map_lookup_elem(m->fd, &i, (char *)vals + (size_t)i * m->vsize))
				err = -errno;
	}
	free(keys);
	return err;
}

/* Room for *cap more entries past *k in *ks / *vs. */
static int dp__grow(const struct dp_map *m, char **ks, char **vs, size_t k, size_t *cap,
		    size_t more)
{
	size_t want = *cap;
	char *nk, *nv;

	while (want < k + more)
		want = want ? want * 2 : 64;
	if (want == *cap)
		return 0;
	if (want > DP_CACHE_MAX_ENTRIES + more)
		return -E2BIG;
	nk = realloc(*ks, want * m->key_size);
	if (!nk)
		return -ENOMEM;
	*ks = nk;
	nv = realloc(*vs, want * m->vsize);
	if (!nv)
		return -ENOMEM;
	*vs = nv;
	*cap = want;
	return 0;
}

/* Batches of a hash (not tries, not devmaps): 0, or -EOPNOTSUPP when the
 * kernel has none for this map. */
static int dp__read_batches(const struct dp_map *m, size_t *n, char **ks, char **vs, size_t *cap)
{
	const __u32 chunk = 4096;
	__u64 token = 0;
	void *in = NULL;
	size_t k = 0;
	int err = 0;

	if (m->type == BPF_MAP_TYPE_LPM_TRIE || m->type == BPF_MAP_TYPE_DEVMAP_HASH)
		return -EOPNOTSUPP;
	for (;;) {
		__u32 count = chunk;

		err = dp__grow(m, ks, vs, k, cap, chunk);
		if (err)
			return err;
		err = bpf_map_lookup_batch(m->fd, in, &token, *ks + k * m->key_size,
					   *vs + k * m->vsize, &count, NULL);
		err = err ? -errno : 0;
		if (err && err != -ENOENT)
			return k == 0 && (err == -EINVAL || err == -EOPNOTSUPP ||
					  err == -524 /* ENOTSUPP */) ?
				       -EOPNOTSUPP :
				       err;
		k += count;
		if (err == -ENOENT)
			break;
		in = &token;
	}
	if (k > DP_CACHE_MAX_ENTRIES)
		return -E2BIG;
	*n = k;
	return 0;
}

/* A hash's entries: *n pairs in freshly allocated arrays. -E2BIG past
 * DP_CACHE_MAX_ENTRIES. */
static int dp__read_hash(const struct dp_map *m, size_t *n, void **keys, void **vals)
{
	size_t cap = 0, k = 0;
	char *ks = NULL, *vs = NULL;
	char *prev = NULL;
	int err = dp__read_batches(m, &k, &ks, &vs, &cap);

	if (err == -EOPNOTSUPP) {
		err = 0;
		for (;;) {
			err = dp__grow(m, &ks, &vs, k, &cap, 1);
			if (err)
				break;
			if (bpf_map_get_next_key(m->fd, prev, ks + k * m->key_size)) {
				if (errno != ENOENT)
					err = -errno;
				break;
			}
			prev = ks + k * m->key_size;
			if (bpf_map_lookup_elem(m->fd, prev, vs + k * m->vsize)) {
				if (errno != ENOENT) {
					err = -errno;
					break;
				}
				/* gone meanwhile (LRU): keep the key, zero value */
				memset(vs + k * m->vsize, 0, m->vsize);
			}
			k++;
		}
	}
	if (err) {
		free(ks);
		free(vs);
		return err;
	}
	*n = k;
	*keys = ks;
	*vals = vs;
	return 0;
}

/* Deletes keys[0..n) of a hash: by batches where the kernel has them. */
static int dp__delete_keys(const struct dp_map *m, const char *keys, size_t n)
{
	size_t done = 0;

	if (m->type != BPF_MAP_TYPE_LPM_TRIE && m->type != BPF_MAP_TYPE_DEVMAP_HASH) {
		while (done < n) {
			__u32 count = (__u32)(n - done > 4096 ? 4096 : n - done);

			if (bpf_map_delete_batch(m->fd, keys + done * m->key_size, &count, NULL))
				break; /* one by one from here: ENOENT, or no batches */
			done += count;
		}
	}
	for (; done < n; done++)
		if (bpf_map_delete_elem(m->fd, keys + done * m->key_size) && errno != ENOENT)
			return -errno;
	return 0;
}

/* The pristine entry of key in a hash's snapshot, or NULL. */
static const char *dp__snap_find(const struct dp_map *m, const void *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (!memcmp((const char *)m->keys + i * m->key_size, key, m->key_size))
			return (const char *)m->vals + i * m->vsize;
	return NULL;
}

static int dp__map_add(struct dp_load *l, int fd)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	struct dp_map *m;
	int ncpu = libbpf_num_possible_cpus();

	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		close(fd);
		return -errno;
	}
	for (int i = 0; i < l->nmaps; i++) {
		if (l->maps[i].id == info.id) {
			close(fd);
			return 0;
		}
	}
	if (l->nmaps == DP_CACHE_MAPS || ncpu <= 0) {
		close(fd);
		return -E2BIG;
	}
	m = &l->maps[l->nmaps++];
	memset(m, 0, sizeof(*m));
	m->fd = fd;
	m->id = info.id;
	m->type = info.type;
	m->key_size = info.key_size;
	m->vsize = info.value_size;
	if (dp__is_percpu(info.type))
		m->vsize = ((info.value_size + 7) & ~7U) * (__u32)ncpu;
	m->max_entries = info.max_entries;
	snprintf(m->name, sizeof(m->name), "%s", info.name);
	return 0;
}

/* Adds the maps the programs of s use to l (fds owned by l); with all,
 * both programs must be loaded. */
static int dp__prog_maps(struct dp_load *l, struct sluice *s, bool all)
{
	int err = 0;

	for (int p = SLUICE_PROG_XDP; p <= SLUICE_PROG_TC && !err; p++) {
		struct bpf_prog_info info = { 0 };
		__u32 ids[DP_CACHE_MAPS], len = sizeof(info);
		int fd = sluice__prog_fd(s, (enum sluice_prog)p);

		info.nr_map_ids = DP_CACHE_MAPS;
		info.map_ids = (__u64)(unsigned long)ids;
		if (fd < 0 && !all)
			continue; /* not loaded (dp__load_only()) */
		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
			return fd < 0 ? fd : -errno;
		if (info.nr_map_ids > DP_CACHE_MAPS)
			return -E2BIG;
		for (__u32 i = 0; i < info.nr_map_ids && !err; i++) {
			int mfd = bpf_map_get_fd_by_id(ids[i]);

			err = mfd < 0 ? -errno : dp__map_add(l, mfd);
		}
	}
	return err;
}

/* The maps of both pinned programs plus every map pinned in the dir. */
static int dp__collect(struct dp_load *l, struct sluice *s)
{
	DIR *dir;
	struct dirent *e;
	int err = dp__prog_maps(l, s, true);

	if (err)
		return err;
	dir = opendir(l->dir);
	if (!dir)
		return -errno;
	while (!err && (e = readdir(dir))) {
		char path[PATH_MAX];
		int fd;

		if (e->d_name[0] == '.' || !strncmp(e->d_name, "prog_", 5))
			continue; /* the programs and their (frozen) record */
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", l->dir, e->d_name) >=
		    sizeof(path))
			continue;
		fd = bpf_obj_get(path);
		err = fd < 0 ? -errno : dp__map_add(l, fd);
	}
	closedir(dir);
	return err;
}

static struct dp_map *dp__map_named(struct dp_load *l, const char *name)
{
	for (int i = 0; i < l->nmaps; i++)
		if (!strcmp(l->maps[i].name, name))
			return &l->maps[i];
	return NULL;
}

/* Records every map's pristine contents. Names the map on failure. With
 * whole, the maps a reset needs (maglev, maglev_ids, services) must be
 * among them. */
static int dp__snapshot(struct dp_load *l, const char **bad, bool whole)
{
	for (int i = 0; i < l->nmaps; i++) {
		struct dp_map *m = &l->maps[i];
		int err = 0;

		*bad = m->name;
		if (dp__is_array(m->type)) {
			m->vals = calloc(m->max_entries, m->vsize);
			err = m->vals ? dp__read_array(m, m->vals) : -ENOMEM;
		} else if (dp__is_hash(m->type)) {
			err = dp__read_hash(m, &m->n, &m->keys, &m->vals);
		} else if (m->type == BPF_MAP_TYPE_ARRAY_OF_MAPS) {
			if (strcmp(m->name, "maglev"))
				err = -EOPNOTSUPP;
		} else if (m->type != BPF_MAP_TYPE_RINGBUF && m->type != BPF_MAP_TYPE_SK_STORAGE) {
			err = -EOPNOTSUPP;
		}
		if (err)
			return err;
	}
	*bad = NULL;
	if (whole && (!dp__map_named(l, "maglev") || !dp__map_named(l, "maglev_ids") ||
		      !dp__map_named(l, "services")))
		return -ENOENT;
	return 0;
}

static int dp__drain_one(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	return 0;
}

struct dp_del {
	int fd;
	__u32 key;
	int err;
};

static void *dp__del_one(void *arg)
{
	struct dp_del *x = arg;

	if (bpf_map_delete_elem(x->fd, &x->key) && errno != ENOENT)
		x->err = -errno;
	return NULL;
}

/* Deletes slots[0..n) of the outer map fd, each in a thread of its own:
 * every delete waits for an RCU grace period, and these overlap. */
static int dp__del_slots(int fd, const __u32 *slots, size_t n)
{
	struct dp_del *x = calloc(n ? n : 1, sizeof(*x));
	pthread_t *t = calloc(n ? n : 1, sizeof(*t));
	bool *started = calloc(n ? n : 1, sizeof(*started));
	int err = 0;

	if (!x || !t || !started)
		err = -ENOMEM;
	for (size_t i = 0; i < n && !err; i++) {
		x[i] = (struct dp_del){ .fd = fd, .key = slots[i] };
		started[i] = !pthread_create(&t[i], NULL, dp__del_one, &x[i]);
		if (!started[i])
			dp__del_one(&x[i]);
	}
	for (size_t i = 0; i < n && x && t && started; i++) {
		if (started[i])
			pthread_join(t[i], NULL);
		if (!err)
			err = x[i].err;
	}
	free(x);
	free(t);
	free(started);
	return err;
}

/* Adds slot to the set (no duplicates); false when it is full. */
static bool dp__slot_add(__u32 *slots, size_t *n, size_t cap, __u32 slot)
{
	for (size_t i = 0; i < *n; i++)
		if (slots[i] == slot)
			return true;
	if (*n == cap)
		return false;
	slots[(*n)++] = slot;
	return true;
}

/* Empties the slots of `maglev` a case can have filled. */
static int dp__reset_maglev(struct dp_load *l, struct dp_map *m)
{
	struct dp_map *ids = dp__map_named(l, "maglev_ids");
	struct dp_map *svcs = dp__map_named(l, "services");
	struct sluice_features f;
	__u32 *slots = calloc(m->max_entries, sizeof(*slots));
	size_t n = 0;
	int err = slots ? 0 : -ENOMEM;

	sluice__features(&f);
	if (f.has[SLUICE_FEAT_OUTER_READ_FAST]) {
		for (__u32 i = 0; i < m->max_entries && !err; i++) {
			__u32 id;

			if (!bpf_map_lookup_elem(m->fd, &i, &id))
				slots[n++] = i;
			else if (errno != ENOENT)
				err = -errno;
		}
	} else if (!err) {
		/* each read of a slot waits for a grace period: the library's
		 * record of its tables (maglev_ids) and the services' ids name
		 * the slots */
		__u32 *now = calloc(ids->max_entries, ids->vsize);
		size_t ns = 0;
		void *keys = NULL, *vals = NULL;

		err = now ? dp__read_array(ids, now) : -ENOMEM;
		for (__u32 i = 0; i < ids->max_entries && !err; i++)
			if (now[i] && !dp__slot_add(slots, &n, m->max_entries, i))
				err = -E2BIG;
		free(now);
		if (!err)
			err = dp__read_hash(svcs, &ns, &keys, &vals);
		for (size_t i = 0; i < ns && !err; i++) {
			const struct sluice_svc *v = (const void *)((char *)vals + i * svcs->vsize);

			if (v->svc_id < m->max_entries &&
			    !dp__slot_add(slots, &n, m->max_entries, v->svc_id))
				err = -E2BIG;
		}
		free(keys);
		free(vals);
	}
	if (!err)
		err = dp__del_slots(m->fd, slots, n);
	free(slots);
	return err;
}

/* Puts one map back to its pristine contents. */
static int dp__reset_map(struct dp_load *l, struct dp_map *m)
{
	int err = 0;

	if (m->type == BPF_MAP_TYPE_RINGBUF) {
		struct ring_buffer *rb = ring_buffer__new(m->fd, dp__drain_one, NULL, NULL);

		if (!rb)
			return -errno;
		err = ring_buffer__consume(rb);
		ring_buffer__free(rb);
		return err < 0 ? err : 0;
	}
	if (m->type == BPF_MAP_TYPE_ARRAY_OF_MAPS)
		return dp__reset_maglev(l, m);
	if (dp__is_array(m->type)) {
		char *now = calloc(m->max_entries, m->vsize);

		err = now ? dp__read_array(m, now) : -ENOMEM;
		for (__u32 i = 0; i < m->max_entries && !err; i++) {
			const char *want = (const char *)m->vals + (size_t)i * m->vsize;

			if (memcmp(now + (size_t)i * m->vsize, want, m->vsize) &&
			    bpf_map_update_elem(m->fd, &i, want, BPF_ANY))
				err = -errno;
		}
		free(now);
		return err;
	}
	if (dp__is_hash(m->type)) {
		size_t n = 0;
		void *keys = NULL, *vals = NULL;

		size_t ngone = 0;

		err = dp__read_hash(m, &n, &keys, &vals);
		/* the keys not in the snapshot, packed to the front */
		for (size_t i = 0; i < n && !err; i++) {
			const char *k = (const char *)keys + i * m->key_size;

			if (!dp__snap_find(m, k))
				memmove((char *)keys + ngone++ * m->key_size, k, m->key_size);
		}
		if (!err)
			err = dp__delete_keys(m, keys, ngone);
		for (size_t i = 0; i < m->n && !err; i++)
			if (bpf_map_update_elem(m->fd, (const char *)m->keys + i * m->key_size,
						(const char *)m->vals + i * m->vsize, BPF_ANY))
				err = -errno;
		free(keys);
		free(vals);
	}
	return err;
}

/* Reads one map back: 0 when it equals its pristine contents. */
static int dp__check_map(struct dp_map *m)
{
	int err = 0;

	if (dp__is_array(m->type)) {
		char *now = calloc(m->max_entries, m->vsize);

		err = now ? dp__read_array(m, now) : -ENOMEM;
		if (!err && memcmp(now, m->vals, (size_t)m->max_entries * m->vsize))
			err = -EBADMSG;
		free(now);
	} else if (dp__is_hash(m->type)) {
		size_t n = 0;
		void *keys = NULL, *vals = NULL;

		err = dp__read_hash(m, &n, &keys, &vals);
		if (!err && n != m->n)
			err = -EBADMSG;
		for (size_t i = 0; i < n && !err; i++) {
			const char *want = dp__snap_find(m, (char *)keys + i * m->key_size);

			if (!want || memcmp(want, (char *)vals + i * m->vsize, m->vsize))
				err = -EBADMSG;
		}
		free(keys);
		free(vals);
	}
	return err;
}

/* Pristine again, or the map that could not be made so. */
static int dp__reset(struct dp_load *l, const char **bad)
{
	int err = 0;

	/* the outer map first: it is read through services and maglev_ids */
	for (int pass = 0; pass < 2 && !err; pass++) {
		for (int i = 0; i < l->nmaps && !err; i++) {
			struct dp_map *m = &l->maps[i];

			if ((m->type == BPF_MAP_TYPE_ARRAY_OF_MAPS) != (pass == 0))
				continue;
			*bad = m->name;
			err = dp__reset_map(l, m);
		}
	}
	for (int i = 0; i < l->nmaps && !err; i++) {
		*bad = l->maps[i].name;
		err = dp__check_map(&l->maps[i]);
	}
	if (!err)
		*bad = NULL;
	return err;
}

/* Loads config cfg into a new directory and records its pristine state.
 * With the lock held; on failure the slot is retired. */
static bool dp__make(struct dp_load *l, __u32 cfg)
{
	static int seq;
	struct sluice_opts opts = { .cfg = cfg };
	struct sluice *s = NULL;
	const char *bad = NULL;
	int err;

	memset(l, 0, sizeof(*l));
	l->made = true;
	l->cfg = cfg;
	snprintf(l->dir, sizeof(l->dir), "%s/" DP_CACHE_PREFIX "%d-%d", dp_bpffs, (int)getpid(),
		 seq++);
	opts.pin_dir = l->dir;
	dp__load_only(0);
	err = sluice__open(&s, &opts);
	if (!err)
		err = sluice__progs_save(s);
	if (!err)
		err = dp__collect(l, s);
	if (!err)
		err = dp__snapshot(l, &bad, true);
	if (s)
		sluice__close(s);
	if (err) {
		char why[160];

		snprintf(why, sizeof(why), "making the load: %s (%s); every case from here too",
			 strerror(-err), sluice__errmsg());
		dp__retire(l, why, bad);
		return false;
	}
	return true;
}

struct sluice *dp__cache_open(__u32 cfg, void **token)
{
	struct dp_load *l = NULL;
	struct sluice_opts opts = { .cfg = cfg, .reuse_progs = true };
	struct sluice *s = NULL;
	const char *bad = NULL, *why = NULL;
	char whybuf[256];
	int err;

	*token = NULL;
	if (dp_cache_bypass)
		return NULL;
	pthread_mutex_lock(&dp_cache_lock);
	if (!dp__cache_on())
		goto out;
	for (int i = 0; i < DP_CACHE_LOADS && !l; i++)
		if (dp_loads[i].made && !dp_loads[i].retired && !dp_loads[i].used &&
		    dp_loads[i].cfg == cfg)
			l = &dp_loads[i];
	/* a retired slot is made again: a flood case retires its load */
	if (!l && getpid() == dp_cache_owner) {
		int slot = -1;

		for (int i = 0; i < DP_CACHE_LOADS && slot < 0; i++)
			if (!dp_loads[i].made || dp_loads[i].retired)
				slot = i;
		if (slot >= 0 && !dp__make(&dp_loads[slot], cfg)) {
			dp_cache_state = -1; /* the same would fail again */
			goto out;
		}
		if (slot >= 0)
			l = &dp_loads[slot];
	}
	if (!l)
		goto out;
	l->used = true;
	err = dp__reset(l, &bad);
	if (err) {
		why = strerror(-err);
		goto retire;
	}
	opts.pin_dir = l->dir;
	err = sluice__open(&s, &opts);
	if (err) {
		why = sluice__errmsg();
		goto retire;
	}
	if (!sluice__progs_reused(s, &why)) {
		snprintf(whybuf, sizeof(whybuf), "the programs were loaded again: %s", why);
		why = whybuf;
		sluice__close(s);
		s = NULL;
		goto retire;
	}
	*token = l;
	goto out;
retire:
	l->used = false;
	dp__retire(l, why, bad);
out:
	pthread_mutex_unlock(&dp_cache_lock);
	return s;
}

void dp__cache_release(void *token)
{
	struct dp_load *l = token;

	if (!l)
		return;
	pthread_mutex_lock(&dp_cache_lock);
	l->used = false;
	pthread_mutex_unlock(&dp_cache_lock);
}

int dp__cache_diff(struct sluice *a, struct sluice *b, char *what, size_t len)
{
	struct dp_load *la = calloc(1, sizeof(*la)), *lb = calloc(1, sizeof(*lb));
	const char *bad = NULL;
	int err = la && lb ? 0 : -ENOMEM;

	snprintf(what, len, "listing the maps");
	if (!err)
		err = dp__prog_maps(la, a, false) ?: dp__prog_maps(lb, b, false);
	if (!err && !lb->nmaps) {
		snprintf(what, len, "no maps");
		err = -ENOENT;
	}
	/* the snapshot of b is what a must read back equal to */
	if (!err)
		err = dp__snapshot(lb, &bad, false);
	if (err && bad)
		snprintf(what, len, "reading map %s", bad);
	for (int i = 0; i < lb->nmaps && !err; i++) {
		struct dp_map *mb = &lb->maps[i], *ma = dp__map_named(la, mb->name);

		snprintf(what, len, "map %s", mb->name);
		if (!ma || mb->type != ma->type || mb->vsize != ma->vsize ||
		    mb->key_size != ma->key_size || mb->max_entries != ma->max_entries) {
			err = -EBADMSG;
			break;
		}
		/* a's contents against b's snapshot */
		ma->n = mb->n;
		ma->keys = mb->keys;
		ma->vals = mb->vals;
		err = dp__check_map(ma);
		ma->keys = ma->vals = NULL;
	}
	if (!err)
		snprintf(what, len, "equal");
	for (int i = 0; la && i < la->nmaps; i++)
		dp__map_free(&la->maps[i]);
	for (int i = 0; lb && i < lb->nmaps; i++)
		dp__map_free(&lb->maps[i]);
	free(la);
	free(lb);
	return err;
}
