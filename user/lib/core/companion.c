// SPDX-License-Identifier: MIT
/*
 * companion.c - the BPF objects loaded beside the datapath (socket LB,
 * redirect, telemetry) share its maps and pin their own (see internal.h).
 *
 * Contract: a companion names its own maps with one prefix (sock_,
 * redir_, telem_); every other map it declares must be a datapath map of
 * the same name and becomes that very map (bpf_map__reuse_fd), so a
 * service update is seen by every program at once.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"
#include "lb.skel.h"

static bool companion__own(const struct bpf_map *map, const char *own_prefix)
{
	return !strncmp(bpf_map__name(map), own_prefix, strlen(own_prefix));
}

static int companion__reuse(const struct sluice *s, struct bpf_map *map)
{
	const char *name = bpf_map__name(map);
	/* s is NULL only with an empty own_prefix, where every map is own */
	// cppcheck-suppress ctunullpointer
	struct bpf_map *lb_map = bpf_object__find_map_by_name(s->skel->obj, name);
	int err;

	if (!lb_map) {
		sluice__set_err("map \"%s\" is not in the datapath object", name);
		return -ENOENT;
	}
	err = bpf_map__reuse_fd(map, bpf_map__fd(lb_map));
	if (err)
		return sluice__bpf_err(err, "sharing the datapath map %s", name);
	return 0;
}

int sluice__share_maps(const struct sluice *s, struct bpf_object *obj, const char *own_prefix,
		       const char *pin_dir)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int err;

	bpf_object__for_each_map(map, obj) {
		if (bpf_map__is_internal(map)) /* .rodata: per load, never shared */
			continue;
		if (!companion__own(map, own_prefix)) {
			err = companion__reuse(s, map);
			if (err)
				return err;
			continue;
		}
		if (!pin_dir)
			continue;
		err = sluice__path_join(path, sizeof(path), pin_dir, bpf_map__name(map));
		if (err)
			return err;
		err = bpf_map__set_pin_path(map, path);
		if (err)
			return sluice__bpf_err(err, "pin path %s", path);
		/* The kernel adds BPF_F_RDONLY_PROG to a devmap's flags, which a
		 * creation must not ask for: libbpf, comparing flags, would
		 * refuse to reuse the pin of the one it created before. */
		if ((bpf_map__type(map) == BPF_MAP_TYPE_DEVMAP ||
		     bpf_map__type(map) == BPF_MAP_TYPE_DEVMAP_HASH) &&
		    !access(path, F_OK))
			bpf_map__set_map_flags(map, bpf_map__map_flags(map) | BPF_F_RDONLY_PROG);
	}
	return 0;
}

int sluice__unpin_maps(struct bpf_object *obj, const char *own_prefix, const char *pin_dir)
{
	char path[PATH_MAX];
	struct bpf_map *map;
	int err;

	bpf_object__for_each_map(map, obj) {
		if (bpf_map__is_internal(map) || !companion__own(map, own_prefix))
			continue;
		err = sluice__path_join(path, sizeof(path), pin_dir, bpf_map__name(map));
		if (!err)
			err = sluice__unpin_path(path);
		if (err)
			return err;
	}
	return 0;
}

int sluice__unpin_path(const char *path)
{
	int err;

	if (unlink(path) && errno != ENOENT) {
		err = -errno;
		sluice__set_err("unpin %s: %s", path, strerror(errno));
		return err;
	}
	return 0;
}

int sluice__unpin_link(const char *path)
{
	int fd = bpf_obj_get(path);

	if (fd >= 0) {
		bpf_link_detach(fd);
		close(fd);
	}
	return sluice__unpin_path(path);
}
