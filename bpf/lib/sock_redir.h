/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sock_redir.h - same-node socket redirection: socket keys, the "is the
 * peer on this node" test and the peer's receive backlog (maps in
 * redir_maps.h).
 *
 * sockops runs only for sockets of processes in the cgroup it is attached
 * to, so "both ends local and in the managed cgroup" becomes: each end
 * puts itself into redir_socks when established and its remote address is
 * local; the sk_msg program finds the peer by the swapped key, and a miss
 * (peer outside the cgroup, not yet in the map, map full) takes the normal
 * TCP/IP path.
 *
 * Local means: loopback (127.0.0.0/8, ::1, and IPv4-mapped loopback), the
 * socket's own address (a connection to one of this node's addresses from
 * that same address), or an address userspace listed in redir_addrs.
 */
#ifndef SLUICE_BPF_SOCK_REDIR_H
#define SLUICE_BPF_SOCK_REDIR_H

#include "common.h"
#include "counters.h"
#include "sockaddr.h"
#include "redir_maps.h"

#include <bpf/bpf_core_read.h>

/* Bytes a receiver may have waiting in its redirect queue before its
 * senders go back to the TCP path (SLUICE_REDIR_QUEUE_DEFAULT when 0).
 * The kernel charges redirected data to global TCP memory only, not to
 * the receiver's buffer, so without this a slow reader lets a fast writer
 * queue without bound. */
const volatile __u32 redir_queue_max = 0;

/* Low bits of sk_user_data are flags (SK_USER_DATA_NOCOPY/BPF/PSOCK). */
#define SK_USER_DATA_FLAG_BITS 7UL

static __always_inline void redir_count(enum sluice_redir_counter c, __u64 n)
{
	counter_add(&redir_counters, c, n);
}

/* Dual-stack sockets keyed like IPv4 ones, so a v4 client meets a server
 * listening on [::]. Returns false for families we do not redirect. */
static __always_inline bool redir_key_finish(struct sluice_redir_key *k, __u32 family)
{
	if (family == AF_INET) {
		k->family = SLUICE_AF_INET;
		return true;
	}
	if (family != AF_INET6)
		return false;
	k->family = SLUICE_AF_INET6;
	if (sockaddr_is_v4mapped(k->local) && sockaddr_is_v4mapped(k->remote)) {
		sockaddr_unmap_v4(k->local);
		sockaddr_unmap_v4(k->remote);
		k->family = SLUICE_AF_INET;
	}
	return true;
}

static __always_inline bool redir_key_sockops(struct bpf_sock_ops *ops, struct sluice_redir_key *k)
{
	__u32 family;

	__builtin_memset(k, 0, sizeof(*k));
	k->netns = bpf_get_netns_cookie(ops);
	family = sockaddr_of_sockops(ops, k->local, k->remote);
	k->local_port = ops->local_port;
	k->remote_port = sockaddr_remote_port(ops->remote_port);
	return redir_key_finish(k, family);
}

/* The peer's key: this socket's view with the two ends swapped. */
static __always_inline bool redir_peer_key_msg(struct sk_msg_md *msg, struct sluice_redir_key *k)
{
	__u32 family;

	__builtin_memset(k, 0, sizeof(*k));
	k->netns = bpf_get_netns_cookie(msg);
	family = sockaddr_of_msg(msg, k->remote, k->local);
	k->local_port = sockaddr_remote_port(msg->remote_port);
	k->remote_port = msg->local_port;
	return redir_key_finish(k, family);
}

/* Linux 6.2+. Weak, so that libbpf loads this object on older kernels
 * (Debian 12's 6.1) with the kfunc's address 0 instead of refusing it
 * whole, and the verifier drops the call as dead code there. */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

/* The psock (sockmap state, holding the redirect queue) of a socket. */
static __always_inline __u64 redir_psock_of(struct sock *sk)
{
	void *ud = BPF_CORE_READ(sk, sk_user_data);

	return (unsigned long)ud & ~SK_USER_DATA_FLAG_BITS;
}

/* After a successful bpf_msg_redirect_hash(): the peer's psock, from the
 * kernel's sk_msg the helper filled in. 0 when unknown, which includes a
 * kernel without bpf_cast_to_kern_ctx (then the backlog has no bound). */
static __always_inline __u64 redir_target_psock(struct sk_msg_md *msg)
{
	struct sk_msg *kmsg;
	struct sock *peer;

	if (!bpf_cast_to_kern_ctx)
		return 0;
	kmsg = bpf_cast_to_kern_ctx(msg);
	peer = BPF_CORE_READ(kmsg, sk_redir);
	return peer ? redir_psock_of(peer) : 0;
}

/*
 * Bytes waiting in a psock's redirect queue, read with a probe read: the
 * peer may have closed and its psock been freed since we noted it (then
 * the redirect fails anyway). 0 when unknown: a kernel without
 * psock->msg_tot_len gets no bound.
 */
static __always_inline __u32 redir_psock_backlog(__u64 psock_addr)
{
	struct sk_psock *psock = (void *)psock_addr;

	if (!psock || !bpf_core_field_exists(struct sk_psock, msg_tot_len))
		return 0;
	return BPF_CORE_READ(psock, msg_tot_len);
}

static __always_inline bool redir_peer_is_behind(__u64 peer_psock)
{
	__u32 max = redir_queue_max ? redir_queue_max : SLUICE_REDIR_QUEUE_DEFAULT;

	return redir_psock_backlog(peer_psock) > max;
}

static __always_inline bool redir_is_loopback(const struct sluice_redir_key *k)
{
	if (k->family == SLUICE_AF_INET)
		return (bpf_ntohl(k->remote[0]) >> 24) == 127;
	return !k->remote[0] && !k->remote[1] && !k->remote[2] && k->remote[3] == bpf_htonl(1);
}

static __always_inline bool redir_remote_is_local(const struct sluice_redir_key *k)
{
	struct sluice_redir_addr a = { .family = k->family };

	if (redir_is_loopback(k))
		return true;
	if (sockaddr_eq(k->local, k->remote))
		return true;
	__builtin_memcpy(a.addr, k->remote, sizeof(a.addr));
	return bpf_map_lookup_elem(&redir_addrs, &a) != NULL;
}

#endif /* SLUICE_BPF_SOCK_REDIR_H */
