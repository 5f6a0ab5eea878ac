/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * maps.h - every map of the L4 datapath. Layouts come from sluice_abi.h;
 * userspace finds these by name, so renaming one is a layout change.
 */
#ifndef SLUICE_BPF_MAPS_H
#define SLUICE_BPF_MAPS_H

#include "sluice_abi.h"

/* Services plus one VIP marker (port 0) per VIP address and proto. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * SLUICE_MAX_SERVICES);
	__type(key, struct sluice_svc_key);
	__type(value, struct sluice_svc);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} services SEC(".maps");

/* One Maglev table per service, swapped whole so a packet sees the old
 * backend set or the new one, never a mix. Mmapable so userspace fills a
 * new table with one memcpy (element-wise batch writes cost ~3 ms).
 * BPF_F_INNER_MAP (5.10): the tables differ in size (sized by need, #16);
 * the verifier then calls the lookup helper instead of inlining it with
 * the template's bound, and each table tells its own M (lb_table_m()). */
struct maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAGLEV_ELEMS_OF(SLUICE_MAGLEV_M_MIN));
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	/* key slot / 2, value struct sluice_maglev_pair; both by size, no
	 * BTF: clang may emit only a forward declaration of the struct, which
	 * libbpf cannot size, and the kernel wants BTF for both or neither */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct sluice_maglev_pair));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, SLUICE_MAX_SERVICES);
	__type(key, __u32); /* svc_id */
	__array(values, struct maglev_inner);
} maglev SEC(".maps");

/* Not read by BPF: the map id of each service's table in `maglev`, as the
 * library last swapped it in, so a restarted agent finds the tables it may
 * change in place without reading `maglev` from userspace (each read waits
 * for an RCU grace period before Linux 6.7). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_SERVICES);
	__type(key, __u32);   /* svc_id */
	__type(value, __u32); /* inner map id, 0: unknown */
} maglev_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, __u32); /* backend id */
	__type(value, struct sluice_backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} backends SEC(".maps");

/* Backend addresses (sluice_abi.h): the reply filter of lb_reply(). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_BACKEND_ADDRS_MAX);
	__type(key, struct sluice_backend_addr_key);
	__type(value, __u32); /* backends entries with the address, 0: lingering */
	__uint(map_flags, BPF_F_NO_PREALLOC);
} backend_addrs SEC(".maps");

/* What lb_reply() reads of it (sluice_abi.h); mmapped by the library. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_ADDR_BITS_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
} backend_addr_bits SEC(".maps");

/* What lb_process() reads before `services` (sluice_abi.h); mmapped by
 * the library. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_ADDR_BITS_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE);
} service_addr_bits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_CT_MAX);
	__type(key, struct sluice_ct_key);
	__type(value, struct sluice_ct_entry);
} conntrack SEC(".maps");

/* Unconfirmed flows, same layout as conntrack (see sluice_abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_CT_NEW_MAX);
	__type(key, struct sluice_ct_key);
	__type(value, struct sluice_ct_entry);
} ct_new SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct sluice_svc_stats);
} svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct sluice_backend_stats);
} backend_stats SEC(".maps");

/* Egress devices XDP may redirect to (lib/fwd.h, filled by meshd). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, SLUICE_FWD_DEVS_MAX);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* the same ifindex */
} fwd_devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_DROP__MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Passive outlier detection (see sluice_abi.h, lib/health.h). Arrays:
 * a pick looks its backend up in backend_health (one array lookup on the
 * new-flow path); svc_health only when the pick is ejected. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_BACKENDS);
	__type(key, __u32); /* backend id */
	__type(value, struct sluice_backend_health);
} backend_health SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_MAX_SERVICES);
	__type(key, __u32); /* svc id */
	__type(value, struct sluice_svc_health);
} svc_health SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SLUICE_HEALTH_EVENTS_BYTES);
} health_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_HCNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} health_counters SEC(".maps");

/* Client-IP session affinity (services with SLUICE_SVC_F_AFFINITY). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_AFFINITY_MAX);
	__type(key, struct sluice_affinity_key);
	__type(value, struct sluice_affinity);
} affinity SEC(".maps");

/* Source ranges of services with SLUICE_SVC_F_SOURCE_RANGES (src_range.h).
 * LPM tries must not be preallocated (kernel 4.11+). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_SRC_RANGES_MAX);
	__type(key, struct sluice_src_range_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} src_ranges SEC(".maps");

/* Access policy (#15, policy.h): per-service rules, the node-wide deny
 * list and denials per service and reason. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_POLICY_MAX);
	__type(key, struct sluice_policy_key);
	__type(value, struct sluice_policy_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_POLICY_NODE_MAX);
	__type(key, struct sluice_policy_key);
	__type(value, struct sluice_policy_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} policy_node SEC(".maps");

/* The node list's host entries (/32, /128): one hash lookup instead of a
 * walk down a trie of 100k+ entries; policy_node keeps the shorter ones. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_POLICY_NODE_RULES);
	__type(key, struct sluice_policy_key);
	__type(value, struct sluice_policy_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} policy_nhost SEC(".maps");

/* The entries of services with SLUICE_SVC_F_POLICY_HASH, also in the
 * trie: one exact lookup per prefix length the service uses (policy.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_POLICY_MAX);
	__type(key, struct sluice_policy_key);
	__type(value, struct sluice_policy_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} policy_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct sluice_policy_stats);
} policy_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_policy_cfg);
} policy_cfg SEC(".maps");

/* The node list's shorter prefix lengths per family, when policy_nhost
 * holds those prefixes too (sluice_abi.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_policy_nlens);
} policy_nlens SEC(".maps");

/* The node's SNAT address per family (SLUICE_SVC_F_SNAT_NODE), written
 * by userspace; an ARRAY so a lookup never misses (zero: none set). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLUICE_SNAT_ADDR_MAX);
	__type(key, __u32);
	__type(value, struct sluice_snat_addr);
} snat_addr SEC(".maps");

/* Source NAT (see sluice_abi.h, lib/snat.h): LRU, so flows that ended
 * without a FIN/RST we saw age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_SNAT_MAX);
	__type(key, struct sluice_snat_fwd_key);
	__type(value, struct sluice_snat_entry);
} snat_fwd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_SNAT_MAX);
	__type(key, struct sluice_snat_rev_key);
	__type(value, struct sluice_snat_entry);
} snat_rev SEC(".maps");

/* Written by the socket LB (sock.bpf.c) at connect(), read by telemetry
 * (telemetry.bpf.c); declared here so the datapath object owns it and
 * both companions share the one pinned map. Lives and dies with the
 * socket. Socket storage: kernel 5.2; bpf_sk_storage_get() in cgroup
 * sock_addr programs (and their ctx->sk): 5.8. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sluice_sk_origin);
} sk_origin SEC(".maps");

#endif /* SLUICE_BPF_MAPS_H */
