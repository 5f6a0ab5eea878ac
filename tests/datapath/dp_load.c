// SPDX-License-Identifier: MIT
/*
 * dp_load.c - test-sized loads of the datapath object.
 *
 * Contract: the datapath test binary is linked with
 * -Wl,--wrap=bpf_object__load_skeleton, so every load of lb.bpf.o that
 * sluice__open() does passes through here first. Before the real load the
 * maps indexed by service or backend id are shrunk to DP_TEST_MAX_SERVICES
 * and DP_TEST_MAX_BACKENDS entries (test__lb_shrink(), tests/lib/lb_load.h,
 * which the unit suites share), and, when dp__load_only() named one,
 * only the program under test is loaded (and verified). Creating the
 * production-sized id arrays and verifying both programs was ~0.8 s of
 * every fresh load; the suite loads 200+ times. The library allocates the
 * lowest free ids, so the few services and backends a case creates stay
 * far below these sizes, and an id beyond them fails its map update
 * loudly rather than passing. The source NAT LRUs (preallocated, so their
 * production size is paid by every one of those loads) hold DP_TEST_SNAT_MAX,
 * room for every SNAT port of one backend (the exhaustion case fills
 * them). conntrack, ct_new and affinity keep their production sizes: the
 * flood cases count and fill them. The production
 * object and library are untouched; only this binary sees the change.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "dp.h"
#include "lb_load.h"

int __real_bpf_object__load_skeleton(struct bpf_object_skeleton *s);
int __wrap_bpf_object__load_skeleton(struct bpf_object_skeleton *s);

/* Per thread: a case may open its datapath in a thread or forked child. */
static __thread unsigned int dp_load_only;

void dp__load_only(unsigned int progs)
{
	dp_load_only = progs;
}

static int dp__autoload(struct bpf_object *obj, const char *name, bool load)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, name);

	if (!prog) {
		fprintf(stderr, "dp_load: lb.bpf.o has no program \"%s\"\n", name);
		return -ENOENT;
	}
	return bpf_program__set_autoload(prog, load);
}

int __wrap_bpf_object__load_skeleton(struct bpf_object_skeleton *s)
{
	struct bpf_object *obj = *s->obj;
	int err;

	if (strcmp(s->name, "lb_bpf"))
		return __real_bpf_object__load_skeleton(s);
	err = test__lb_shrink(obj);
	if (!err && dp_load_only)
		err = dp__autoload(obj, "xdp_lb", dp_load_only & DP_XDP);
	if (!err && dp_load_only)
		err = dp__autoload(obj, "tc_lb", dp_load_only & DP_TC);
	if (err)
		return err;
	return __real_bpf_object__load_skeleton(s);
}
