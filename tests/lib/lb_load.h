/* SPDX-License-Identifier: MIT */
/*
 * lb_load.h - test-sized loads of the datapath object (lb.bpf.o).
 *
 * Contract: a test binary linked with -Wl,--wrap=bpf_object__load_skeleton
 * (the datapath suite, the unit suites) passes every load that
 * sluice__open() does through test__lb_prepare() first. What it changes is
 * chosen per binary in test__lb_load, before the first load:
 * - TEST_LB_SMALL_MAPS: the maps indexed by service or backend id hold
 *   TEST_LB_MAX_SERVICES / TEST_LB_MAX_BACKENDS entries, snat_fwd / snat_rev
 *   TEST_LB_SNAT_MAX. Creating the production-sized per-CPU arrays
 *   (backend_stats: 327680 entries) is ~0.3 s of every load. The library
 *   allocates the lowest free ids, so a suite that creates a few services
 *   stays far below these sizes, and an id beyond them fails its map
 *   update loudly rather than passing. Not for a suite that fills a map to
 *   its production capacity or reuses pins of a production-sized load.
 *   services, backends, conntrack, ct_new and affinity keep their sizes.
 * - TEST_LB_NO_PROGS: xdp_lb and tc_lb are not loaded, so the verifier
 *   does not run over them (~0.6 s of every load, most of it under
 *   emulation). For a suite that uses the maps only: it never attaches,
 *   test-runs or asks for a program fd. The datapath suite, the e2e suites
 *   and `make test-kernels`' objects suite verify both programs.
 * Production objects and the library are untouched; 0 (the default)
 * changes nothing.
 */
#ifndef SLUICE_TEST_LB_LOAD_H
#define SLUICE_TEST_LB_LOAD_H

#include <bpf/libbpf.h>

/* Sizes of the id-indexed maps in a TEST_LB_SMALL_MAPS load: a suite must
 * create fewer services / backends than these at any one time. */
#define TEST_LB_MAX_SERVICES 1024
#define TEST_LB_MAX_BACKENDS 4096
/* snat_fwd and snat_rev: more than the 4536 ports of
 * SLUICE_SNAT_PORT_MIN..MAX, so filling them evicts nothing. */
#define TEST_LB_SNAT_MAX 8192

enum {
	TEST_LB_SMALL_MAPS = 1 << 0,
	TEST_LB_NO_PROGS = 1 << 1,
};

/* TEST_LB_* flags for this binary's loads of lb.bpf.o; 0: as production. */
extern unsigned int test__lb_load;

/* Shrink the id-indexed maps of lb.bpf.o's obj (TEST_LB_SMALL_MAPS). */
int test__lb_shrink(struct bpf_object *obj);
/* Apply test__lb_load to a skeleton about to load; other objects than
 * lb.bpf.o are left alone. 0 or a negative errno (named on stderr). */
int test__lb_prepare(struct bpf_object_skeleton *s);

#endif
