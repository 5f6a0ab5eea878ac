// SPDX-License-Identifier: MIT
/*
 * progs.c - reuse of the programs an earlier open pinned (#16): a restart
 * whose programs would be the ones already in the kernel skips
 * BPF_PROG_LOAD (the verifier: seconds for xdp_lb and tc_lb).
 *
 * Contract: reuse needs all of these, else the programs are loaded as
 * before and `why` says which failed first:
 * - the record pinned in the pin dir has this magic and version, and its
 *   object, config and environment digests equal the ones computed now
 *   (progs__record_match);
 * - the programs it names are pinned there, with the ids, types and names
 *   it records (progs__find);
 * - after the maps are opened from the pins, every map those programs use
 *   is one of them, or their .rodata holding this load's bytes
 *   (progs__bound): a map made again since (a lost pin, a grown map) is
 *   caught here, by the kernel's own account of the programs.
 * The record is written only by sluice__progs_save(), after a load the
 * agent has attached; the old record goes first, so a crash in between
 * leaves no record and the next start loads.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"

static const char *const prog_pins[2] = { PROGS_PIN_XDP, PROGS_PIN_TC };
static const char *const prog_names[2] = { "xdp_lb", "tc_lb" };
static const enum bpf_prog_type prog_types[2] = { BPF_PROG_TYPE_XDP, BPF_PROG_TYPE_SCHED_CLS };

/* First line of path into buf ("?" if unreadable). */
static void progs__read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	if (!f || !fgets(buf, (int)len, f))
		snprintf(buf, len, "?");
	if (f)
		fclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

void progs__env(char *buf, size_t len, const char *build_id)
{
	char boot[64];
	struct utsname u;

	if (uname(&u))
		memset(&u, 0, sizeof(u));
	progs__read_line("/proc/sys/kernel/random/boot_id", boot, sizeof(boot));
	snprintf(buf, len, "build %s\nlibrary %s\nlayout %d\nlibbpf %s\nkernel %s %s %s\nboot %s\n",
		 build_id ? build_id : "", SLUICE_VERSION, SLUICE_LAYOUT_VERSION,
		 libbpf_version_string(), u.release, u.version, u.machine, boot);
}

static void progs__digest(const struct progs_record *r, __u8 out[SHA256_LEN])
{
	struct sha256 c;

	sha256__init(&c);
	sha256__update(&c, &r->magic, sizeof(r->magic));
	sha256__update(&c, &r->version, sizeof(r->version));
	sha256__update(&c, &r->cfg, sizeof(r->cfg));
	sha256__update(&c, r->object, sizeof(r->object));
	sha256__update(&c, r->env, sizeof(r->env));
	sha256__final(&c, out);
}

void progs__record_make(struct progs_record *r, const void *obj, size_t obj_len, __u32 cfg,
			const char *env)
{
	struct sha256 c;

	memset(r, 0, sizeof(*r));
	r->magic = PROGS_RECORD_MAGIC;
	r->version = PROGS_RECORD_VERSION;
	r->cfg = cfg;
	sha256__init(&c);
	sha256__update(&c, obj, obj_len);
	sha256__final(&c, r->object);
	sha256__init(&c);
	sha256__update(&c, env, strlen(env));
	sha256__final(&c, r->env);
	progs__digest(r, r->digest);
}

bool progs__record_match(const struct progs_record *old, const struct progs_record *now, char *why,
			 size_t len)
{
	__u8 d[SHA256_LEN];

	if (old->magic != PROGS_RECORD_MAGIC || old->version != PROGS_RECORD_VERSION)
		snprintf(why, len, "the program record has another format (magic %#x version %u)",
			 old->magic, old->version);
	else if (memcmp(old->object, now->object, SHA256_LEN))
		snprintf(why, len, "the BPF object differs (another build)");
	else if (old->cfg != now->cfg)
		snprintf(why, len, "the datapath config differs (%#x, now %#x)", old->cfg,
			 now->cfg);
	else if (memcmp(old->env, now->env, SHA256_LEN))
		snprintf(why, len,
			 "the environment differs (meshd/library/libbpf version, kernel or boot)");
	else if (progs__digest(old, d),
		 memcmp(d, old->digest, SHA256_LEN) || memcmp(old->digest, now->digest, SHA256_LEN))
		snprintf(why, len, "the program record's digest does not match");
	else
		return true;
	return false;
}

/* bpf_obj_get of dir/name: the fd, or a negative errno. */
static int progs__get(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int err = sluice__path_join(path, sizeof(path), dir, name);

	return err ? err : bpf_obj_get(path);
}

static int progs__check_prog(int fd, enum sluice_prog p, __u32 want_id, char *why, size_t len)
{
	struct bpf_prog_info info = { 0 };
	__u32 info_len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &info_len)) {
		snprintf(why, len, "the pinned program %s cannot be read: %s", prog_pins[p],
			 strerror(errno));
		return 0;
	}
	if (info.id != want_id || info.type != prog_types[p] ||
	    strncmp(info.name, prog_names[p], sizeof(info.name))) {
		snprintf(why, len,
			 "the pinned program %s is not the recorded one (id %u type %u \"%.16s\", "
			 "record: id %u)",
			 prog_pins[p], info.id, info.type, info.name, want_id);
		return 0;
	}
	return 1;
}

int progs__find(const char *dir, const struct progs_record *now, int fds[2], char *why, size_t len)
{
	struct progs_record old;
	__u32 key = 0;
	int fd, err, ok = 1;

	fds[0] = fds[1] = -1;
	fd = progs__get(dir, PROGS_RECORD_NAME);
	if (fd == -ENOENT) {
		snprintf(why, len, "no program record in the pin dir");
		return 0;
	}
	if (fd < 0) {
		snprintf(why, len, "the program record cannot be opened: %s", strerror(-fd));
		return 0;
	}
	memset(&old, 0, sizeof(old));
	err = bpf_map_lookup_elem(fd, &key, &old);
	close(fd);
	if (err) {
		snprintf(why, len, "the program record cannot be read: %s", strerror(errno));
		return 0;
	}
	if (!progs__record_match(&old, now, why, len))
		return 0;
	for (int p = 0; p < 2 && ok; p++) {
		fds[p] = progs__get(dir, prog_pins[p]);
		if (fds[p] < 0) {
			snprintf(why, len, "the pinned program %s cannot be opened: %s",
				 prog_pins[p], strerror(-fds[p]));
			ok = 0;
		} else {
			ok = progs__check_prog(fds[p], p, old.prog_ids[p], why, len);
		}
	}
	if (!ok) {
		for (int p = 0; p < 2; p++)
			if (fds[p] >= 0)
				close(fds[p]);
		fds[0] = fds[1] = -1;
	}
	return ok;
}

/* Whether the map id (not one of obj's) is a read-only section of obj's
 * (.rodata, .rodata.str1.1: matched by the name libbpf gives it, as the
 * kernel keeps it) holding obj's bytes: 1 yes, -1 such a map with other
 * bytes (another config), 0 no such map. Writable sections (.data, .bss)
 * are never taken: they hold the old programs' state. */
static int progs__same_rodata(struct bpf_object *obj, __u32 id)
{
	struct bpf_map_info info = { 0 };
	__u32 info_len = sizeof(info), key = 0;
	const void *bytes = NULL;
	struct bpf_map *map;
	size_t want = 0;
	int fd, same = 0;
	char val[256];

	fd = bpf_map_get_fd_by_id(id);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &info_len) || info.type != BPF_MAP_TYPE_ARRAY) {
		close(fd);
		return 0;
	}
	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);

		if (bpf_map__is_internal(map) && strstr(name, ".rodata") &&
		    !strncmp(info.name, name, sizeof(info.name) - 1))
			bytes = bpf_map__initial_value(map, &want);
	}
	if (bytes && info.value_size == want && want <= sizeof(val) &&
	    !bpf_map_lookup_elem(fd, &key, val))
		same = memcmp(val, bytes, want) ? -1 : 1;
	else if (bytes)
		same = -1;
	close(fd);
	return same;
}

/* The ids of obj's loaded maps, read once per progs__bound(): asking the
 * kernel per program map would be maps x maps info calls (~2000). */
static __u32 progs__obj_ids(struct bpf_object *obj, __u32 *ids, __u32 cap)
{
	struct bpf_map *map;
	__u32 n = 0;

	bpf_object__for_each_map(map, obj) {
		struct bpf_map_info info = { 0 };
		__u32 info_len = sizeof(info);
		int fd = bpf_map__fd(map);

		if (n < cap && fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &info_len))
			ids[n++] = info.id;
	}
	return n;
}

static bool progs__id_in(const __u32 *ids, __u32 n, __u32 id)
{
	for (__u32 i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

int progs__bound(struct bpf_object *obj, const int fds[2], char *why, size_t len)
{
	__u32 own[128], nown = progs__obj_ids(obj, own, sizeof(own) / sizeof(own[0]));

	for (int p = 0; p < 2; p++) {
		struct bpf_prog_info info = { 0 };
		__u32 info_len = sizeof(info), ids[64];

		if (bpf_obj_get_info_by_fd(fds[p], &info, &info_len) ||
		    info.nr_map_ids > sizeof(ids) / sizeof(ids[0])) {
			snprintf(why, len, "the maps of the pinned program %s cannot be listed",
				 prog_pins[p]);
			return 0;
		}
		memset(&info, 0, sizeof(info));
		info.nr_map_ids = sizeof(ids) / sizeof(ids[0]);
		info.map_ids = (__u64)(unsigned long)ids;
		info_len = sizeof(info);
		if (bpf_obj_get_info_by_fd(fds[p], &info, &info_len)) {
			snprintf(why, len, "the maps of the pinned program %s cannot be listed",
				 prog_pins[p]);
			return 0;
		}
		for (__u32 i = 0; i < info.nr_map_ids; i++) {
			int ro = progs__id_in(own, nown, ids[i]) ? 1 :
								   progs__same_rodata(obj, ids[i]);

			if (ro > 0)
				continue;
			if (ro < 0)
				snprintf(
					why, len,
					"the pinned program %s holds a .rodata (config) other than "
					"this start's",
					prog_pins[p]);
			else
				snprintf(
					why, len,
					"the pinned program %s uses map id %u, which is not pinned in the "
					"pin dir any more (a map was made again)",
					prog_pins[p], ids[i]);
			return 0;
		}
	}
	return 1;
}

static int progs__unlink(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int err = sluice__path_join(path, sizeof(path), dir, name);

	if (err)
		return err;
	if (unlink(path) && errno != ENOENT) {
		err = -errno;
		sluice__set_err("unpin %s: %s", path, strerror(errno));
		return err;
	}
	return 0;
}

int progs__unpin(const char *dir)
{
	/* the record first: without it, the programs are never reused */
	return progs__unlink(dir, PROGS_RECORD_NAME)     ?:
		       progs__unlink(dir, PROGS_PIN_XDP) ?:
							   progs__unlink(dir, PROGS_PIN_TC);
}

static int progs__pin_one(const char *dir, const char *name, int fd)
{
	char path[PATH_MAX];
	int err = sluice__path_join(path, sizeof(path), dir, name);

	if (err)
		return err;
	err = bpf_obj_pin(fd, path);
	if (err)
		sluice__set_err("pin %s: %s", path, strerror(-err));
	return err;
}

int progs__pin(const char *dir, struct progs_record *r, const int fds[2])
{
	LIBBPF_OPTS(bpf_map_create_opts, mopts, .map_flags = BPF_F_RDONLY_PROG);
	__u32 key = 0;
	int fd, err;

	err = progs__unpin(dir);
	for (int p = 0; p < 2 && !err; p++) {
		struct bpf_prog_info info = { 0 };
		__u32 info_len = sizeof(info);

		err = bpf_obj_get_info_by_fd(fds[p], &info, &info_len) ? -errno : 0;
		if (err)
			sluice__set_err("program %s: %s", prog_names[p], strerror(-err));
		r->prog_ids[p] = info.id;
		if (!err)
			err = progs__pin_one(dir, prog_pins[p], fds[p]);
	}
	if (err)
		return err;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, PROGS_RECORD_NAME, sizeof(key), sizeof(*r), 1,
			    &mopts);
	if (fd < 0) {
		sluice__set_err("creating the program record: %s", strerror(-fd));
		return fd;
	}
	err = bpf_map_update_elem(fd, &key, r, BPF_ANY);
	if (err)
		sluice__set_err("writing the program record: %s", strerror(errno));
	/* read-only from now on (BPF_MAP_FREEZE, 5.2) */
	if (!err)
		err = bpf_map_freeze(fd);
	if (err && !*sluice__errmsg())
		sluice__set_err("freezing the program record: %s", strerror(errno));
	if (!err)
		err = progs__pin_one(dir, PROGS_RECORD_NAME, fd);
	close(fd);
	return err;
}
