// SPDX-License-Identifier: MIT
/*
 * pin_grow.c - an upgrade keeps the counters pinned by an older agent.
 *
 * Contract: the per-CPU counter arrays indexed by an ABI enum (counters,
 * drops, health_counters) grow when a release adds a reason. A pin left by
 * an older agent then has fewer entries than the new object, and libbpf
 * would refuse to reuse it, failing the load. sluice__grow_pins() runs
 * between open and load: for each such map whose pin is smaller, it creates
 * a map of the new size, copies every old entry's per-CPU values, and puts
 * the new map at the pin path (the old program keeps writing to the old map
 * until the new one is attached: counts of that moment are lost, nothing
 * else). A pin of another type or value size is left for libbpf to refuse
 * with its own message; a larger pin is left too (a downgrade refuses).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"

static const char *const grow_names[] = { "counters", "drops", "health_counters" };

static int grow_copy(int old_fd, int new_fd, __u32 old_n, __u32 value_size)
{
	int ncpus = libbpf_num_possible_cpus();
	size_t stride = (value_size + 7) & ~7u;
	void *vals;
	int err = 0;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	vals = calloc((size_t)ncpus, stride);
	if (!vals)
		return -ENOMEM;
	for (__u32 k = 0; k < old_n && !err; k++) {
		if (bpf_map_lookup_elem(old_fd, &k, vals))
			err = -errno;
		else if (bpf_map_update_elem(new_fd, &k, vals, BPF_ANY))
			err = -errno;
	}
	free(vals);
	return err;
}

static int grow_one(struct bpf_map *map, const char *path)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char tmp[PATH_MAX];
	int old_fd, new_fd, err;

	old_fd = bpf_obj_get(path);
	if (old_fd < 0)
		return errno == ENOENT ? 0 : sluice__bpf_err(-errno, "opening pin %s", path);
	err = bpf_obj_get_info_by_fd(old_fd, &info, &len);
	if (err) {
		err = sluice__bpf_err(-errno, "reading pin %s", path);
		goto out_old;
	}
	if (info.type != bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
	    info.value_size != bpf_map__value_size(map) ||
	    info.max_entries >= bpf_map__max_entries(map))
		goto out_old; /* nothing to grow; libbpf judges the rest */
	new_fd = bpf_map_create(info.type, bpf_map__name(map), info.key_size, info.value_size,
				bpf_map__max_entries(map), NULL);
	if (new_fd < 0) {
		err = sluice__bpf_err(-errno, "creating a larger %s map", bpf_map__name(map));
		goto out_old;
	}
	err = grow_copy(old_fd, new_fd, info.max_entries, info.value_size);
	if (err) {
		err = sluice__bpf_err(err, "copying %s into its larger map", path);
		goto out_new;
	}
	if (snprintf(tmp, sizeof(tmp), "%s_grow", path) >= (int)sizeof(tmp)) {
		err = -ENAMETOOLONG;
		sluice__set_err("pin path %s_grow too long", path);
		goto out_new;
	}
	unlink(tmp);
	if (bpf_obj_pin(new_fd, tmp)) {
		err = sluice__bpf_err(-errno, "pinning %s", tmp);
		goto out_new;
	}
	if (rename(tmp, path)) {
		err = -errno;
		sluice__set_err("replacing pin %s: %s", path, strerror(errno));
		unlink(tmp);
	}
out_new:
	close(new_fd);
out_old:
	close(old_fd);
	return err;
}

int sluice__grow_pins(struct bpf_object *obj, const char *pin_dir)
{
	char path[PATH_MAX];
	int err;

	for (size_t i = 0; i < sizeof(grow_names) / sizeof(grow_names[0]); i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(obj, grow_names[i]);

		if (!map)
			continue;
		err = sluice__path_join(path, sizeof(path), pin_dir, grow_names[i]);
		if (err)
			return err;
		err = grow_one(map, path);
		if (err)
			return err;
	}
	return 0;
}
