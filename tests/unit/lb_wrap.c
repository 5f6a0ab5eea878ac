// SPDX-License-Identifier: MIT
/*
 * lb_wrap.c - the unit suites' loads of lb.bpf.o pass through
 * test__lb_prepare() (tests/lib/lb_load.h): linked, with
 * -Wl,--wrap=bpf_object__load_skeleton, into every unit binary built by
 * the generic rule and into tests/tools/lbtool. A binary that sets no
 * test__lb_load flag loads as production does.
 */
#include <bpf/libbpf.h>

#include "lb_load.h"

int __real_bpf_object__load_skeleton(struct bpf_object_skeleton *s);
int __wrap_bpf_object__load_skeleton(struct bpf_object_skeleton *s);

int __wrap_bpf_object__load_skeleton(struct bpf_object_skeleton *s)
{
	int err = test__lb_prepare(s);

	return err ? err : __real_bpf_object__load_skeleton(s);
}
