// SPDX-License-Identifier: MIT
/*
 * lb_load.c - test-sized loads of lb.bpf.o (contract in lb_load.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lb_load.h"

unsigned int test__lb_load;

/* clang-format off */
static const struct {
	const char *name;
	__u32 max_entries;
} lb_small_maps[] = {
	{ "svc_stats", TEST_LB_MAX_SERVICES },
	{ "svc_health", TEST_LB_MAX_SERVICES },
	{ "maglev", TEST_LB_MAX_SERVICES },
	{ "backend_stats", TEST_LB_MAX_BACKENDS },
	{ "backend_health", TEST_LB_MAX_BACKENDS },
	{ "src_ranges", 256 },
	{ "policy_stats", TEST_LB_MAX_SERVICES },
	{ "snat_fwd", TEST_LB_SNAT_MAX },
	{ "snat_rev", TEST_LB_SNAT_MAX },
};
/* clang-format on */

int test__lb_shrink(struct bpf_object *obj)
{
	for (size_t i = 0; i < sizeof(lb_small_maps) / sizeof(lb_small_maps[0]); i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(obj, lb_small_maps[i].name);
		int err;

		if (!map) {
			fprintf(stderr, "lb_load: lb.bpf.o has no map \"%s\"\n",
				lb_small_maps[i].name);
			return -ENOENT;
		}
		err = bpf_map__set_max_entries(map, lb_small_maps[i].max_entries);
		if (err) {
			fprintf(stderr, "lb_load: %s: set_max_entries(%u): %d\n",
				lb_small_maps[i].name, lb_small_maps[i].max_entries, err);
			return err;
		}
	}
	return 0;
}

static int lb__no_autoload(struct bpf_object *obj, const char *name)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, name);

	if (!prog) {
		fprintf(stderr, "lb_load: lb.bpf.o has no program \"%s\"\n", name);
		return -ENOENT;
	}
	return bpf_program__set_autoload(prog, false);
}

int test__lb_prepare(struct bpf_object_skeleton *s)
{
	int err = 0;

	if (strcmp(s->name, "lb_bpf"))
		return 0;
	if (test__lb_load & TEST_LB_SMALL_MAPS)
		err = test__lb_shrink(*s->obj);
	if (!err && (test__lb_load & TEST_LB_NO_PROGS))
		err = lb__no_autoload(*s->obj, "xdp_lb");
	if (!err && (test__lb_load & TEST_LB_NO_PROGS))
		err = lb__no_autoload(*s->obj, "tc_lb");
	return err;
}
