/* SPDX-License-Identifier: MIT */
/*
 * kfeatures.h - what the running kernel offers (kfeatures.c): probed once,
 * never guessed from the version string. Each entry: id, metric/JSON name,
 * what it is (and the kernel that brought it, for the reader), and what
 * Sluice does without it.
 */
#ifndef SLUICE_KFEATURES_H
#define SLUICE_KFEATURES_H

#include <stdbool.h>
#include <linux/types.h>

/* clang-format off */
#define SLUICE_FEATURES(X)                                                                   \
	X(BTF, "btf", "kernel BTF (/sys/kernel/btf/vmlinux)",                                \
	  "no CO-RE: telemetry and the socket programs do not load")                         \
	X(PROG_XDP, "prog_xdp", "XDP programs", "no XDP: interfaces are served with tc")     \
	X(PROG_TC, "prog_sched_cls", "tc (clsact) programs", "no tc path")                   \
	X(PROG_SOCK_ADDR, "prog_cgroup_sock_addr", "cgroup connect/sendmsg hooks",           \
	  "no socket LB: local clients are balanced per packet")                             \
	X(PROG_SOCKOPS, "prog_sock_ops", "sockops programs",                                 \
	  "no socket-path failure signals, redirect or telemetry")                           \
	X(PROG_SK_MSG, "prog_sk_msg", "sk_msg programs", "no same-node redirection")         \
	X(MAP_LRU, "map_lru_hash", "LRU hash maps", "no datapath (conntrack needs it)")      \
	X(MAP_OUTER, "map_array_of_maps", "array-of-maps", "no datapath (Maglev tables)")    \
	X(MAP_LPM, "map_lpm_trie", "LPM tries", "the datapath object does not load")         \
	X(MAP_SOCKHASH, "map_sockhash", "sockhash maps", "no same-node redirection")         \
	X(MAP_RINGBUF, "map_ringbuf", "BPF ring buffers (5.8)",                              \
	  "no telemetry and no ejection events")                                             \
	X(MAP_SK_STORAGE, "map_sk_storage", "socket local storage",                          \
	  "no socket-path health signals or telemetry")                                      \
	X(COARSE_CLOCK, "helper_ktime_get_coarse_ns", "bpf_ktime_get_coarse_ns in XDP (5.11)", \
	  "the datapath object does not load")                                               \
	X(FIB_LOOKUP, "helper_fib_lookup", "bpf_fib_lookup in XDP",                          \
	  "XDP hands every packet to the kernel to forward")                                 \
	X(NETNS_COOKIE, "helper_get_netns_cookie", "bpf_get_netns_cookie in connect hooks (5.7)", \
	  "the socket LB does not load")                                                     \
	X(KERN_CTX, "kfunc_cast_to_kern_ctx", "kfunc bpf_cast_to_kern_ctx (6.2)",            \
	  "a redirected reader's backlog has no bound")                                      \
	X(SOCKMAP_LINK, "link_sockmap", "BPF links for sk_msg (6.10)",                       \
	  "sk_msg is attached to the map without a link (pinned maps keep it)")              \
	X(OUTER_READ_FAST, "outer_read_fast",                                                \
	  "userspace reads of array-of-maps slots without a grace-period wait (6.7)",        \
	  "each read of a Maglev slot waits ~10-20 ms: the start-up sweep skips the tables")
/* clang-format on */

enum sluice_feature {
#define X(id, name, what, without) SLUICE_FEAT_##id,
	SLUICE_FEATURES(X)
#undef X
	SLUICE_FEAT__MAX
};

struct sluice_features {
	bool has[SLUICE_FEAT__MAX];
	__u64 outer_read_ns; /* the timed slot read (0 when forced or not run) */
};

/* Probes on the first call (from one thread), then answers from the cache.
 * Returns 0; a probe that cannot run reports its feature missing. */
int sluice__features(struct sluice_features *out);
const char *sluice_feature__name(enum sluice_feature f);
const char *sluice_feature__what(enum sluice_feature f);
const char *sluice_feature__without(enum sluice_feature f);

#endif /* SLUICE_KFEATURES_H */
