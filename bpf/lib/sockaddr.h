/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sockaddr.h - socket addresses as the socket-level programs read them:
 * the two ends of a socket from a sockops or sk_msg context, the remote
 * port in host order, and IPv4-mapped IPv6 (::ffff:a.b.c.d) folded to the
 * ABI's IPv4 form (addr[0], zeros after) so that a dual-stack socket
 * matches IPv4 services, backends and peers.
 */
#ifndef SLUICE_BPF_SOCKADDR_H
#define SLUICE_BPF_SOCKADDR_H

#include "common.h"

static __always_inline bool sockaddr_is_v4mapped(const __u32 a[4])
{
	return !a[0] && !a[1] && a[2] == bpf_htonl(0xffff);
}

/* @a must be IPv4-mapped (sockaddr_is_v4mapped()). */
static __always_inline void sockaddr_unmap_v4(__u32 a[4])
{
	a[0] = a[3];
	a[1] = a[2] = a[3] = 0;
}

static __always_inline bool sockaddr_eq(const __u32 a[4], const __u32 b[4])
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* sock_ops and sk_msg_md carry remote_port as the network-order port in
 * the upper 16 bits (little endian); accept the lower half too, should a
 * kernel ever move it there. Port 0 never reaches an established socket. */
static __always_inline __u16 sockaddr_remote_port(__u32 raw)
{
	return raw >> 16 ? (__u16)bpf_ntohl(raw) : bpf_ntohs((__u16)raw);
}

/*
 * The ctx types differ but name their fields alike, and the verifier
 * wants every ctx field read directly: one reader per type. Each fills the
 * addresses of the AF_INET / AF_INET6 ends into zeroed @local and @remote
 * and returns the socket's family (AF_*), leaving the arrays alone for
 * other families.
 */
static __always_inline __u32 sockaddr_of_sockops(struct bpf_sock_ops *ops, __u32 local[4],
						 __u32 remote[4])
{
	__u32 family = ops->family;

	if (family == AF_INET) {
		local[0] = ops->local_ip4;
		remote[0] = ops->remote_ip4;
	} else if (family == AF_INET6) {
		local[0] = ops->local_ip6[0];
		local[1] = ops->local_ip6[1];
		local[2] = ops->local_ip6[2];
		local[3] = ops->local_ip6[3];
		remote[0] = ops->remote_ip6[0];
		remote[1] = ops->remote_ip6[1];
		remote[2] = ops->remote_ip6[2];
		remote[3] = ops->remote_ip6[3];
	}
	return family;
}

static __always_inline __u32 sockaddr_of_msg(struct sk_msg_md *msg, __u32 local[4], __u32 remote[4])
{
	__u32 family = msg->family;

	if (family == AF_INET) {
		local[0] = msg->local_ip4;
		remote[0] = msg->remote_ip4;
	} else if (family == AF_INET6) {
		local[0] = msg->local_ip6[0];
		local[1] = msg->local_ip6[1];
		local[2] = msg->local_ip6[2];
		local[3] = msg->local_ip6[3];
		remote[0] = msg->remote_ip6[0];
		remote[1] = msg->remote_ip6[1];
		remote[2] = msg->remote_ip6[2];
		remote[3] = msg->remote_ip6[3];
	}
	return family;
}

#endif /* SLUICE_BPF_SOCKADDR_H */
