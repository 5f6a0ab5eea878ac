/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluice_sock_abi.h - layouts shared by the socket-level programs
 * (bpf/sock.bpf.c, bpf/redir.bpf.c) and user/lib/sock/sock.c.
 *
 * Contract: like sluice_abi.h, every key/value/counter of the socket maps
 * lives here only; addresses and ports in keys are network byte order
 * unless a field says otherwise, IPv4 in addr[0] with addr[1..3] zero. An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is always stored as IPv4, so
 * a dual-stack socket and an IPv4 socket key the same way. Changing a
 * layout bumps SLUICE_SOCK_LAYOUT_VERSION.
 */
#ifndef SLUICE_SOCK_ABI_H
#define SLUICE_SOCK_ABI_H

#ifdef __BPF__
/* BPF side: types come from vmlinux.h */
#else
#include <linux/types.h>
#endif

#define SLUICE_SOCK_LAYOUT_VERSION 1

/* Reverse translations of socket-LB connections. One entry per socket and
 * backend; LRU because nothing tells the cgroup hooks that a socket
 * closed, and a stale entry is harmless (its cookie is never reused). */
#ifndef SLUICE_SOCK_NAT_MAX
#define SLUICE_SOCK_NAT_MAX 131072
#endif

/* Sockets of same-node connections in the redirect SOCKHASH (two per
 * connection). A full map only means new pairs take the normal path. */
#ifndef SLUICE_REDIR_MAX
#define SLUICE_REDIR_MAX 65536
#endif

/* Default bound of a receiver's redirect queue (bytes), see redir.bpf.c. */
#ifndef SLUICE_REDIR_QUEUE_DEFAULT
#define SLUICE_REDIR_QUEUE_DEFAULT (4u << 20)
#endif

/* Addresses, besides loopback, that count as "this node" for redirect. */
#ifndef SLUICE_REDIR_ADDRS_MAX
#define SLUICE_REDIR_ADDRS_MAX 256
#endif

/* sock_nat: {socket cookie, backend address, port} -> {VIP, port} */
struct sluice_sock_nat_key {
	__u64 cookie;  /* bpf_get_socket_cookie() */
	__u32 addr[4]; /* backend address as the socket sees it */
	__u16 port;    /* backend port */
	__u8 family;   /* SLUICE_AF_INET or SLUICE_AF_INET6 */
	__u8 pad;
	__u32 pad2;
};

struct sluice_sock_nat {
	__u32 addr[4]; /* VIP */
	__u16 port;    /* service port */
	__u16 pad;
	__u32 svc_id;
};

/* redir_socks (SOCKHASH): a socket keyed by its own view of the
 * connection; the sk_msg program finds the peer by swapping the ends. */
struct sluice_redir_key {
	__u64 netns; /* bpf_get_netns_cookie(): loopback tuples repeat per netns */
	__u32 local[4];
	__u32 remote[4];
	__u16 local_port;  /* host byte order */
	__u16 remote_port; /* host byte order */
	__u8 family;       /* SLUICE_AF_INET or SLUICE_AF_INET6 */
	__u8 pad[3];
};

/* redir_addrs: extra local addresses -> 1 */
struct sluice_redir_addr {
	__u32 addr[4];
	__u8 family;
	__u8 pad[3];
};

/* Per-CPU counters of the socket LB (sock_counters map). */
#define SLUICE_SOCK_COUNTERS(X)                                                            \
	X(CONNECT, "connect", "connect() to a VIP sent to a backend")                      \
	X(SENDMSG, "sendmsg", "datagram sent to a VIP went to a backend")                  \
	X(RECVMSG, "recvmsg_revnat", "datagram source rewritten to the VIP")               \
	X(PEERNAME, "getpeername_revnat", "getpeername() answered with the VIP")           \
	X(REFUSED, "refused", "connect()/sendmsg() to a service without backends refused") \
	X(NO_BACKEND, "no_backend",                                                        \
	  "Maglev slot named a backend that is gone: left to the packet path")             \
	X(POLICY_DENIED, "policy_denied",                                                  \
	  "connect()/sendmsg() from a bound source the access policy denies: EPERM")       \
	X(POLICY_DEFER, "policy_deferred",                                                 \
	  "access policy applies but the source (or its port) is not known yet: not "      \
	  "balanced at the socket, left to the packet path")

enum sluice_sock_counter {
#define X(name, str, help) SLUICE_SOCK_CNT_##name,
	SLUICE_SOCK_COUNTERS(X)
#undef X
	SLUICE_SOCK_CNT__MAX
};

/* Per-CPU counters of same-node redirection (redir_counters map). */
#define SLUICE_REDIR_COUNTERS(X)                                                                   \
	X(MSGS, "redirected_msgs", "sendmsg() calls handed straight to the peer socket")           \
	X(BYTES, "redirected_bytes", "bytes handed straight to the peer socket")                   \
	X(PASS, "passed_msgs",                                                                     \
	  "messages that took the TCP/IP path (no peer in the map, or on TCP for good)")           \
	X(SLOW_PEER, "slow_peer", "connections sent back to TCP because the receiver fell behind") \
	X(ADDED, "sockets_added", "sockets put into the redirect map")                             \
	X(ADD_FAILED, "sockets_add_failed", "sockets the redirect map refused (full?)")

enum sluice_redir_counter {
#define X(name, str, help) SLUICE_REDIR_CNT_##name,
	SLUICE_REDIR_COUNTERS(X)
#undef X
	SLUICE_REDIR_CNT__MAX
};

/* Load-time knobs of sock.bpf.c (rodata `sock_cfg`); 0 = everything on. */
#define SLUICE_SOCK_CFG_NO_UDP (1u << 0)    /* UDP left to the packet path */
#define SLUICE_SOCK_CFG_NO_REFUSE (1u << 1) /* no backends: let the packet path answer */

#endif /* SLUICE_SOCK_ABI_H */
