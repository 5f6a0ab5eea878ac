/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluice_telemetry_abi.h - layouts shared by the connection telemetry
 * program (bpf/telemetry.bpf.c) and user/lib/telemetry/telemetry.c.
 *
 * Contract: the ring buffer carries struct sluice_telem_rec, one per event
 * of a tracked TCP connection (OPEN, periodic UPDATE, CLOSE, FAIL). Every
 * record holds the connection's totals so far and, in the d_* fields, what
 * changed since the previous record of that connection that reached the
 * ring: a record the kernel could not reserve is counted in the per-CPU
 * telem_counters map (LOST) and its deltas travel with the next record,
 * so only a lost CLOSE/FAIL loses anything. Addresses are network byte
 * order (IPv4 in addr[0], zeros after; IPv4-mapped IPv6 is stored as
 * IPv4); ports in records are host byte order, ports in telem_endpoints
 * keys network byte order like every other Sluice map key. Changing a
 * layout bumps SLUICE_TELEM_LAYOUT_VERSION.
 */
#ifndef SLUICE_TELEMETRY_ABI_H
#define SLUICE_TELEMETRY_ABI_H

#ifdef __BPF__
/* BPF side: types come from vmlinux.h */
#else
#include <linux/types.h>
#endif

#define SLUICE_TELEM_LAYOUT_VERSION 1

/* Default ring buffer size: ~29k records (144 bytes with the ring's
 * header) absorb a burst of closes while the agent sleeps in epoll. */
#ifndef SLUICE_TELEM_RING_BYTES
#define SLUICE_TELEM_RING_BYTES (4u << 20)
#endif

/* Backend addresses the program recognises (one per backend at most). */
#ifndef SLUICE_TELEM_ENDPOINTS_MAX
#define SLUICE_TELEM_ENDPOINTS_MAX 65536
#endif

enum sluice_telem_type {
	SLUICE_TELEM_OPEN = 1,   /* connection established */
	SLUICE_TELEM_UPDATE = 2, /* still open; at most every interval */
	SLUICE_TELEM_CLOSE = 3,  /* established connection closed */
	SLUICE_TELEM_FAIL = 4,   /* connect() never established (SYN_SENT -> CLOSE) */
};

/* Which end of the connection this socket is. */
enum sluice_telem_dir {
	SLUICE_TELEM_OUTBOUND = 0, /* it connected to a service (VIP or backend) */
	SLUICE_TELEM_INBOUND = 1,  /* a backend on this node accepted it */
	SLUICE_TELEM_DIR__MAX
};

/* Why a connection failed or ended; also the "reason" metric label. */
#define SLUICE_TELEM_REASONS(X)                                                \
	X(NONE, "none", "closed normally")                                     \
	X(REFUSED, "refused", "RST in answer to the SYN")                      \
	X(TIMEOUT, "timeout", "SYN never answered")                            \
	X(UNREACHABLE, "unreachable", "ICMP unreachable in answer to the SYN") \
	X(ABORTED, "aborted", "closed by the application before established")  \
	X(RESET, "reset", "established connection reset by the peer")          \
	X(ERROR, "error", "other socket error")

enum sluice_telem_reason {
#define X(name, str, help) SLUICE_TELEM_REASON_##name,
	SLUICE_TELEM_REASONS(X)
#undef X
	SLUICE_TELEM_REASON__MAX
};

/* One event of one connection (136 bytes; 144 in the ring). */
struct sluice_telem_rec {
	__u64 cookie;         /* socket cookie: joins the records of a connection */
	__u64 start_ns;       /* bpf_ktime_get_ns() at connect() / accept */
	__u64 ts_ns;          /* bpf_ktime_get_ns() of this record */
	__u64 bytes_acked;    /* payload sent and acknowledged by the peer, total */
	__u64 bytes_received; /* payload received, total (SYN/FIN not counted) */
	__u64 d_bytes_acked;  /* since the previous delivered record */
	__u64 d_bytes_received;
	__u32 laddr[4]; /* this socket's address */
	__u32 raddr[4]; /* peer address as the socket sees it */
	__u16 lport;    /* host byte order */
	__u16 rport;    /* host byte order */
	__u32 svc_id;
	__u32 backend_id; /* 0: unknown (VIP not balanced on this node) */
	__u32 segs_in;
	__u32 segs_out;
	__u32 retrans; /* segments retransmitted, total */
	__u32 d_retrans;
	__u32 rtos; /* retransmission timeouts (SYN included), total */
	__u32 d_rtos;
	__u32 srtt_us;     /* smoothed RTT now; 0 = no sample */
	__u32 srtt_min_us; /* smallest smoothed RTT seen */
	__u8 type;         /* enum sluice_telem_type */
	__u8 dir;          /* enum sluice_telem_dir */
	__u8 family;       /* SLUICE_AF_INET / SLUICE_AF_INET6 */
	__u8 reason;       /* enum sluice_telem_reason (CLOSE, FAIL) */
};

/* telem_endpoints: backend address -> ids, kept by userspace from the
 * backends map (which is keyed by id) so sockops can classify a socket
 * by its peer (outbound) or its own address (inbound) in one lookup. */
struct sluice_telem_ep_key {
	__u32 addr[4];
	__u16 port; /* network byte order */
	__u8 family;
	__u8 pad;
};

struct sluice_telem_ep {
	__u32 svc_id;
	__u32 backend_id;
};

/* telem_peers: a connection the socket LB sent from a VIP to a backend,
 * keyed as the backend's accepting socket sees it (its own address
 * first), so a backend on the same node credits the client's VIP too.
 * Written at connect(), taken at accept: an entry matters for one
 * handshake, and entries for backends on other nodes age out of the
 * LRU. */
struct sluice_telem_peer_key {
	__u32 laddr[4]; /* the backend */
	__u32 raddr[4]; /* the client */
	__u16 lport;    /* network byte order */
	__u16 rport;    /* network byte order */
	__u8 family;
	__u8 pad[3];
};

/* Handshakes in flight that telem_peers remembers (LRU): a same-node
 * handshake takes microseconds, so even 10k connects/s to other nodes
 * leave an entry more than a second to be taken. */
#ifndef SLUICE_TELEM_PEERS_MAX
#define SLUICE_TELEM_PEERS_MAX 16384
#endif

/* Per-CPU counters (telem_counters map), each with its key in the agent's
 * telemetry status, its metric name (after "sluice_") and the metric's
 * HELP text: a counter added here is shown and exported with no other
 * change. */
#define SLUICE_TELEM_COUNTERS(X)                                               \
	X(RECORDS, "records_written", "telemetry_records_written_total",       \
	  "Connection records the kernel wrote to the ring buffer.")           \
	X(LOST, "records_lost", "telemetry_records_lost_total",                \
	  "Connection records the kernel could not write: ring buffer full.")  \
	X(TRACKED, "sockets_tracked", "telemetry_sockets_tracked_total",       \
	  "TCP sockets to or from services the kernel started tracking.")      \
	X(NO_STORAGE, "sockets_untracked", "telemetry_storage_failures_total", \
	  "TCP sockets to services left untracked: no socket storage.")

enum sluice_telem_counter {
#define X(name, key, metric, help) SLUICE_TELEM_CNT_##name,
	SLUICE_TELEM_COUNTERS(X)
#undef X
	SLUICE_TELEM_CNT__MAX
};

/* Load-time knobs (rodata `telem_cfg`), bit flags; 0 = everything on. */
#define SLUICE_TELEM_CFG_NO_INBOUND (1u << 0)  /* ignore accepting backends */
#define SLUICE_TELEM_CFG_NO_OUTBOUND (1u << 1) /* ignore connecting clients */

#endif /* SLUICE_TELEMETRY_ABI_H */
