// SPDX-License-Identifier: MIT
/*
 * kfeatures.c - what the running kernel offers, probed, never guessed from
 * its version string.
 *
 * Contract: sluice__features() answers once per process (the probes are
 * cached): each feature of SLUICE_FEATURES (kfeatures.h) is true when the
 * kernel accepted the probe: program and map types and helpers by loading
 * a minimal program or creating a minimal map (libbpf_probe_*), kfuncs
 * and link types by name in the kernel's BTF, and whether a userspace
 * read of an array-of-maps slot is cheap by timing one: before 6.7 every
 * such read waits for an RCU grace period (16-18 ms on 6.1, ~25 us here).
 * A probe that cannot run (no BTF, EPERM) reports the feature missing.
 * SLUICE_SWEEP_TABLES=0|1 still forces the last one (tests take the old
 * kernels' path on a new one).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "kfeatures.h"
#include "internal.h"

/* A slot read slower than this waited for a grace period (one is >= 1
 * jiffy plus the callbacks: milliseconds; a plain lookup: microseconds). */
#define FEAT_OUTER_SLOW_NS 2000000ULL

static const struct {
	const char *name, *what, *without;
} feat_info[] = {
#define X(id, name, what, without) { name, what, without },
	SLUICE_FEATURES(X)
#undef X
};

const char *sluice_feature__name(enum sluice_feature f)
{
	return f < SLUICE_FEAT__MAX ? feat_info[f].name : "?";
}

const char *sluice_feature__what(enum sluice_feature f)
{
	return f < SLUICE_FEAT__MAX ? feat_info[f].what : "?";
}

const char *sluice_feature__without(enum sluice_feature f)
{
	return f < SLUICE_FEAT__MAX ? feat_info[f].without : "?";
}

static __u64 feat__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/* Reads of an empty slot of a fresh 1-slot array-of-maps, timed. */
static bool feat__outer_read_fast(__u64 *ns)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);
	__u32 key = 0, val;
	int inner, outer;
	__u64 t0;

	*ns = 0;
	inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sluice_probe_in", 4, 4, 1, NULL);
	if (inner < 0)
		return false;
	o.inner_map_fd = inner;
	outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "sluice_probe_out", 4, 4, 1, &o);
	close(inner);
	if (outer < 0)
		return false;
	/* A grace-period wait is in every read; a preempted one only in some
	 * (6.12 under a busy emulator read 9.5 ms once): the fastest of up to
	 * three reads decides, and a fast first read ends it. */
	for (int i = 0; i < 3 && (!i || *ns >= FEAT_OUTER_SLOW_NS); i++) {
		__u64 took;

		t0 = feat__now_ns();
		bpf_map_lookup_elem(outer, &key, &val); /* empty: ENOENT, timed all the same */
		took = feat__now_ns() - t0;
		if (!i || took < *ns)
			*ns = took;
	}
	close(outer);
	return *ns < FEAT_OUTER_SLOW_NS;
}

/* Whether the enum @type of vmlinux BTF has a value named @value. */
static bool feat__btf_enum_has(const struct btf *btf, const char *type, const char *value)
{
	__s32 id = btf ? btf__find_by_name_kind(btf, type, BTF_KIND_ENUM) : -1;
	const struct btf_type *t;
	const struct btf_enum *e;

	if (id < 0)
		return false;
	t = btf__type_by_id(btf, id);
	e = btf_enum(t);
	for (__u16 i = 0; i < btf_vlen(t); i++, e++)
		if (!strcmp(btf__name_by_offset(btf, e->name_off), value))
			return true;
	return false;
}

static bool feat__prog(enum bpf_prog_type t)
{
	return libbpf_probe_bpf_prog_type(t, NULL) == 1;
}

static bool feat__map(enum bpf_map_type t)
{
	return libbpf_probe_bpf_map_type(t, NULL) == 1;
}

static bool feat__helper(enum bpf_prog_type t, enum bpf_func_id h)
{
	return libbpf_probe_bpf_helper(t, h, NULL) == 1;
}

static void feat__probe(struct sluice_features *f)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool *has = f->has;

	if (libbpf_get_error(btf))
		btf = NULL;
	has[SLUICE_FEAT_BTF] = btf != NULL;
	has[SLUICE_FEAT_PROG_XDP] = feat__prog(BPF_PROG_TYPE_XDP);
	has[SLUICE_FEAT_PROG_TC] = feat__prog(BPF_PROG_TYPE_SCHED_CLS);
	has[SLUICE_FEAT_PROG_SOCK_ADDR] = feat__prog(BPF_PROG_TYPE_CGROUP_SOCK_ADDR);
	has[SLUICE_FEAT_PROG_SOCKOPS] = feat__prog(BPF_PROG_TYPE_SOCK_OPS);
	has[SLUICE_FEAT_PROG_SK_MSG] = feat__prog(BPF_PROG_TYPE_SK_MSG);
	has[SLUICE_FEAT_MAP_LRU] = feat__map(BPF_MAP_TYPE_LRU_HASH);
	has[SLUICE_FEAT_MAP_OUTER] = feat__map(BPF_MAP_TYPE_ARRAY_OF_MAPS);
	has[SLUICE_FEAT_MAP_LPM] = feat__map(BPF_MAP_TYPE_LPM_TRIE);
	has[SLUICE_FEAT_MAP_SOCKHASH] = feat__map(BPF_MAP_TYPE_SOCKHASH);
	has[SLUICE_FEAT_MAP_RINGBUF] = feat__map(BPF_MAP_TYPE_RINGBUF);
	has[SLUICE_FEAT_MAP_SK_STORAGE] = feat__map(BPF_MAP_TYPE_SK_STORAGE);
	has[SLUICE_FEAT_COARSE_CLOCK] =
		feat__helper(BPF_PROG_TYPE_XDP, BPF_FUNC_ktime_get_coarse_ns);
	has[SLUICE_FEAT_FIB_LOOKUP] = feat__helper(BPF_PROG_TYPE_XDP, BPF_FUNC_fib_lookup);
	has[SLUICE_FEAT_NETNS_COOKIE] =
		feat__helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_get_netns_cookie);
	has[SLUICE_FEAT_KERN_CTX] =
		btf && btf__find_by_name_kind(btf, "bpf_cast_to_kern_ctx", BTF_KIND_FUNC) > 0;
	has[SLUICE_FEAT_SOCKMAP_LINK] =
		feat__btf_enum_has(btf, "bpf_link_type", "BPF_LINK_TYPE_SOCKMAP");
	has[SLUICE_FEAT_OUTER_READ_FAST] = feat__outer_read_fast(&f->outer_read_ns);
	btf__free(btf);
}

int sluice__features(struct sluice_features *out)
{
	const char *force = getenv("SLUICE_SWEEP_TABLES");
	static struct sluice_features cache;
	static bool probed;

	if (!probed) {
		feat__probe(&cache);
		probed = true;
	}
	*out = cache;
	/* read at every call: a test switches it within one process */
	if (force && (!strcmp(force, "0") || !strcmp(force, "1")))
		out->has[SLUICE_FEAT_OUTER_READ_FAST] = *force == '1';
	return 0;
}
