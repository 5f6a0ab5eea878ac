/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluice_abi.h - the one copy of every layout shared by bpf/ and user/.
 *
 * Contract: map keys and values, flags, counters and drop reasons live here
 * and nowhere else. Changing any layout below bumps SLUICE_LAYOUT_VERSION,
 * which is stamped into the pinned maps so an agent never reuses maps of a
 * different layout. All addresses and ports in map keys/values are in
 * network byte order; IPv4 addresses occupy addr[0] with addr[1..3] zero.
 */
#ifndef SLUICE_ABI_H
#define SLUICE_ABI_H

#ifdef __BPF__
/* BPF side: types come from vmlinux.h */
#else
#include <linux/types.h>
#endif

/* 2: Maglev inner tables are BPF_F_MMAPABLE arrays of slot pairs
 *    (written with one memcpy), 32768 services and 327680 backends (was
 *    16384 / 65536). */
/* 3: conntrack split in two LRU maps: `conntrack` holds confirmed flows,
 *    `ct_new` unconfirmed ones; counters ct_confirmed, lb_no_state and
 *    lb_pickup. */
#define SLUICE_LAYOUT_VERSION 3

/* Maglev lookup table size per service. Must be prime and larger than
 * 100x the largest backend set for the disruption bound of the Maglev paper
 * to hold; 16381 keeps one table at 64 KiB. */
#ifndef SLUICE_MAGLEV_M
#define SLUICE_MAGLEV_M 16381
#endif

/* A Maglev table (one inner map per service) holds slot s in element
 * s / 2, id[s % 2]. The kernel rounds array values up to 8 bytes, so with
 * pairs the mmapable map's memory is exactly __u32 slots[M + 1] (the last
 * one unused, 0) and userspace fills a whole table with one memcpy. */
struct sluice_maglev_pair {
	__u32 id[2]; /* backend ids, never 0 in a used slot */
};
#define SLUICE_MAGLEV_ELEMS ((SLUICE_MAGLEV_M + 1) / 2)

/* Capacity of the service table; also bounds service ids [1, MAX). A
 * service costs its 64 KiB Maglev table only while it exists; svc_stats
 * preallocates 32 B per id per CPU (1 MiB per CPU). */
#ifndef SLUICE_MAX_SERVICES
#define SLUICE_MAX_SERVICES 32768
#endif

/* Capacity of the backend table; also bounds backend ids [1, MAX): ten
 * per service at full capacity. backend_stats preallocates 24 B per id
 * per CPU (7.5 MiB per CPU). */
#ifndef SLUICE_MAX_BACKENDS
#define SLUICE_MAX_BACKENDS 327680
#endif

/* Largest backend set of one service: keeps M/n >= 16 so weights still
 * resolve to whole slots. */
#ifndef SLUICE_MAX_SVC_BACKENDS
#define SLUICE_MAX_SVC_BACKENDS 1024
#endif

/* Conntrack LRU size; each flow takes two entries (forward + reply). */
#ifndef SLUICE_CT_MAX
#define SLUICE_CT_MAX 262144
#endif

/* Unconfirmed flows (a SYN or a first datagram nobody answered yet) live
 * in a LRU of their own: a flood of them can only push out other
 * unconfirmed flows, never an established one. */
#ifndef SLUICE_CT_NEW_MAX
#define SLUICE_CT_NEW_MAX 65536
#endif

/* Idle timeouts of unconfirmed entries, shared with meshd's sweep: a
 * handshake that did not finish in 10 s is retried with a new SYN (that
 * balances afresh); a request without answer for 30 s is as good as lost. */
#define SLUICE_CT_NEW_TIMEOUT_TCP_NS (10ULL * 1000000000ULL)
#define SLUICE_CT_NEW_TIMEOUT_UDP_NS (30ULL * 1000000000ULL)

/* Upper bound of IPv6 extension headers walked before giving up. */
#ifndef SLUICE_IPV6_EXTHDR_MAX
#define SLUICE_IPV6_EXTHDR_MAX 6
#endif

#define SLUICE_AF_INET 4
#define SLUICE_AF_INET6 6

/* services: {VIP, port, proto, family} -> struct sluice_svc */
struct sluice_svc_key {
	__u32 addr[4];
	__u16 port;
	__u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family; /* SLUICE_AF_INET or SLUICE_AF_INET6 */
};

/* A key with port 0 marks "this address is a VIP for proto": fragments to a
 * VIP are dropped (their ports are unknown) instead of passed on. */
#define SLUICE_SVC_F_VIP_MARKER (1u << 0)

struct sluice_svc {
	__u32 svc_id;        /* index into maglev outer map and svc_stats */
	__u16 backend_count; /* backends with weight > 0; 0 -> refuse */
	__u16 flags;         /* SLUICE_SVC_F_* */
	__u32 reserved[2];
};

/* backends: backend_id -> struct sluice_backend */
enum sluice_backend_state {
	SLUICE_BE_ACTIVE = 0,
	SLUICE_BE_DRAINING = 1, /* weight 0: no new flows, existing keep going */
};

struct sluice_backend {
	__u32 addr[4];
	__u16 port;
	__u8 family;
	__u8 state; /* enum sluice_backend_state */
	__u32 svc_id;
	__u16 weight;
	__u16 reserved;
};

/* Conntrack. Every flow has two entries in one LRU map (`ct_new` until
 * the backend answered and, for TCP, the client completed the handshake;
 * `conntrack` from then on): the forward entry (client -> VIP, as the
 * client sent it) holds the backend; the reply entry (backend -> client,
 * as the backend sends it) holds the VIP the reply must be rewritten to.
 * Both maps share key and value layouts. */
enum sluice_ct_dir {
	SLUICE_CT_FWD = 0,
	SLUICE_CT_REPLY = 1,
};

struct sluice_ct_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u8 dir; /* enum sluice_ct_dir */
	__u8 pad;
};

struct sluice_ct_entry {
	__u32 addr[4];  /* FWD: backend address; REPLY: VIP */
	__u16 port;     /* FWD: backend port; REPLY: service port */
	__u8 tcp_flags; /* union of TCP flags seen in this direction */
	__u8 pad;
	__u32 backend_id;
	__u32 svc_id;
	__u64 created_ns;   /* bpf_ktime_get_ns() at flow creation */
	__u64 last_seen_ns; /* refreshed at most once a second */
};

/* Per-CPU statistics. svc_stats is indexed by svc_id, backend_stats by
 * backend_id; userspace sums over CPUs. */
struct sluice_svc_stats {
	__u64 packets;
	__u64 bytes;
	__u64 flows;   /* new flows balanced */
	__u64 refused; /* packets answered with RST / ICMP unreachable */
};

struct sluice_backend_stats {
	__u64 packets;
	__u64 bytes;
	__u64 flows;
};

/* sk_origin (socket storage): what a TCP connect() through the socket LB
 * asked for and where it was sent. One backend address:port can serve
 * several services (two Kubernetes Services over the same pods); this is
 * how telemetry credits the one whose VIP the client used. */
struct sluice_sk_origin {
	__u32 vip[4];  /* what the client connected to */
	__u32 addr[4]; /* the backend it was sent to */
	__u16 vip_port;
	__u16 port;
	__u32 svc_id;
	__u32 backend_id;
	__u8 family;
	__u8 pad[3];
};

/* Global per-CPU counters, indexed by enum sluice_counter. */
#define SLUICE_COUNTERS(X)                                                                      \
	X(PASS, "pass", "not service traffic, passed unchanged")                                \
	X(LB_NEW, "lb_new", "new flow balanced to a backend")                                   \
	X(LB_EST, "lb_established", "packet of an existing flow DNATed")                        \
	X(REVNAT, "revnat", "reply rewritten to come from the VIP")                             \
	X(REFUSED, "refused", "service without backends: RST/ICMP sent")                        \
	X(FIB_REDIRECT, "fib_redirect", "forwarded by FIB lookup + redirect")                   \
	X(FIB_PASS, "fib_pass", "handed to the kernel to forward")                              \
	X(CT_CONFIRMED, "ct_confirmed",                                                         \
	  "flow confirmed (handshake completed or UDP answered): moved to conntrack")           \
	X(LB_NO_STATE, "lb_no_state",                                                           \
	  "TCP RST or SYN|ACK without conntrack entry: DNAT to the Maglev pick, no state kept") \
	X(LB_PICKUP, "lb_pickup",                                                               \
	  "TCP ACK or data of an unknown flow: DNAT to the Maglev pick, tracked unconfirmed")

enum sluice_counter {
#define X(name, str, help) SLUICE_CNT_##name,
	SLUICE_COUNTERS(X)
#undef X
	SLUICE_CNT__MAX
};

/* Drop reasons, indexed into the per-CPU drops map. Each is also the
 * "reason" label of the drop metric. */
#define SLUICE_DROP_REASONS(X)                                                                  \
	X(NONE, "none", "not a drop")                                                           \
	X(TRUNC_ETH, "truncated_ethernet", "frame shorter than an Ethernet header")             \
	X(TRUNC_IPV4, "truncated_ipv4", "frame shorter than the IPv4 header")                   \
	X(BAD_IHL, "bad_ipv4_ihl", "IPv4 ihl below 5 or beyond the frame")                      \
	X(BAD_IPV4_LEN, "bad_ipv4_length", "IPv4 tot_len beyond the frame or below the header") \
	X(TRUNC_IPV6, "truncated_ipv6", "frame shorter than the IPv6 header")                   \
	X(BAD_IPV6_LEN, "bad_ipv6_length", "IPv6 payload_len beyond the frame")                 \
	X(IPV6_EXTHDR, "ipv6_exthdr",                                                           \
	  "IPv6 extension headers truncated or beyond the parse bound")                         \
	X(TRUNC_TCP, "truncated_tcp", "TCP header truncated or doff < 5")                       \
	X(TRUNC_UDP, "truncated_udp", "UDP header truncated")                                   \
	X(FRAGMENT, "fragment", "IP fragment addressed to a VIP")                               \
	X(BAD_TCP_FLAGS, "bad_tcp_flags", "TCP to a service with no flags or SYN+FIN")          \
	X(NO_BACKEND, "no_backend", "Maglev slot names a backend that is gone")                 \
	X(REFUSE_FAILED, "refuse_failed", "could not build the RST/ICMP refusal")

enum sluice_drop_reason {
#define X(name, str, help) SLUICE_DROP_##name,
	SLUICE_DROP_REASONS(X)
#undef X
	SLUICE_DROP__MAX
};

/* Load-time knobs (rodata `sluice_cfg`), bit flags. */
#define SLUICE_CFG_FIB_FORWARD (1u << 0) /* XDP: FIB lookup + redirect after NAT */

#endif /* SLUICE_ABI_H */
