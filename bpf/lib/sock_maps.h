/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sock_maps.h - maps of the socket-level load balancer (sock.bpf.c) on top
 * of the datapath maps of maps.h, which userspace makes the very same maps
 * as the datapath's (bpf_map__reuse_fd before load). Layouts come from
 * sluice_sock_abi.h; userspace finds these by name.
 */
#ifndef SLUICE_BPF_SOCK_MAPS_H
#define SLUICE_BPF_SOCK_MAPS_H

#include "sluice_sock_abi.h"

/* Reverse translation for recvmsg/getpeername of socket-LB sockets. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_SOCK_NAT_MAX);
	__type(key, struct sluice_sock_nat_key);
	__type(value, struct sluice_sock_nat);
} sock_nat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_SOCK_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} sock_counters SEC(".maps");

#endif /* SLUICE_BPF_SOCK_MAPS_H */
