/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * telemetry_maps.h - maps of the connection telemetry (telemetry.bpf.c),
 * next to the datapath maps of maps.h, which userspace makes the very
 * same maps as the datapath's (bpf_map__reuse_fd before load). Shared
 * layouts come from sluice_telemetry_abi.h; userspace finds these maps by
 * name (prefix telem_).
 */
#ifndef SLUICE_BPF_TELEMETRY_MAPS_H
#define SLUICE_BPF_TELEMETRY_MAPS_H

#include "sluice_telemetry_abi.h"

/* Per-socket state of a tracked connection. Kernel-only, but pinned: a
 * restarted agent keeps reporting connections opened before it. */
struct telem_sk {
	__u64 start_ns;
	__u64 last_ns;   /* ts of the last record that reached the ring */
	__u64 rep_acked; /* totals as of that record: the next deltas */
	__u64 rep_received;
	__u64 acked_base; /* bytes_acked at establishment: our SYN, if counted */
	__u32 svc_id;
	__u32 backend_id;
	__u32 retrans;
	__u32 rtos;
	__u32 rep_retrans;
	__u32 rep_rtos;
	__u32 srtt_min_us;
	__u8 dir;     /* enum sluice_telem_dir */
	__u8 state;   /* enum telem_sk_state */
	__u8 via_vip; /* peer is a VIP: the backend comes from conntrack */
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct telem_sk);
} telem_sk SEC(".maps");

/* Userspace may resize it (bpf_map__set_max_entries) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SLUICE_TELEM_RING_BYTES);
} telem_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_TELEM_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} telem_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_TELEM_ENDPOINTS_MAX);
	__type(key, struct sluice_telem_ep_key);
	__type(value, struct sluice_telem_ep);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} telem_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_TELEM_PEERS_MAX);
	__type(key, struct sluice_telem_peer_key);
	__type(value, struct sluice_telem_ep);
} telem_peers SEC(".maps");

#endif /* SLUICE_BPF_TELEMETRY_MAPS_H */
