/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * redir_maps.h - maps of the same-node redirection (redir.bpf.c): the
 * SOCKHASH of local sockets, the extra node addresses, counters and the
 * per-socket send mode. Layouts shared with userspace come from
 * sluice_sock_abi.h; userspace finds these maps by name (prefix redir_).
 */
#ifndef SLUICE_BPF_REDIR_MAPS_H
#define SLUICE_BPF_REDIR_MAPS_H

#include "sluice_sock_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SLUICE_REDIR_MAX);
	__type(key, struct sluice_redir_key);
	__type(value, __u64); /* socket cookie when read from userspace */
} redir_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_REDIR_ADDRS_MAX);
	__type(key, struct sluice_redir_addr);
	__type(value, __u8);
} redir_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_REDIR_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} redir_counters SEC(".maps");

/* Per-socket send mode, decided by the socket's first message; a
 * redirecting socket may still go to TCP (slow reader), never back. */
enum redir_mode {
	REDIR_UNDECIDED = 0,
	REDIR_ON = 1,    /* first message was redirected: keep redirecting */
	REDIR_PLAIN = 2, /* on the TCP path for good */
};

struct redir_state {
	__u64 peer_psock; /* where the last message went, for its backlog */
	__u8 mode;        /* enum redir_mode */
};

/* The receiver reads redirected data (its psock queue) before data that
 * came through TCP; a sender switching from TCP to redirect would get its
 * stream reordered. That happens when a client writes before the server's
 * accepted socket is in the map, so the mode is sticky per socket. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct redir_state);
} redir_state SEC(".maps");

#endif /* SLUICE_BPF_REDIR_MAPS_H */
