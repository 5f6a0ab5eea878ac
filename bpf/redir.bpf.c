// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * redir.bpf.c - same-node TCP redirection (sockops + sk_msg).
 *
 * redir_sockops (cgroup sockops): an established TCP socket whose remote
 * end is on this node goes into the redir_socks SOCKHASH; the kernel takes
 * it out when it closes. redir_msg (sk_msg verdict of redir_socks): a
 * message goes straight into the peer socket's receive queue when the peer
 * is in the map, and takes the normal TCP/IP path otherwise — never an
 * error to the application (fail open). See lib/sock_redir.h.
 *
 * Per sending socket the choice is one-way: a socket whose first message
 * took TCP stays on TCP, and a redirected one goes to TCP for good once
 * its reader has more than redir_queue_max bytes waiting (the kernel has
 * no flow control for redirected data). Both keep the byte stream in
 * order, because a reader drains its redirect queue before TCP data.
 *
 * Kernel behaviour the programs cannot change (Linux 6.18): a socket in the
 * map reads through tcp_bpf_recvmsg(), which returns EAGAIN when a
 * blocking recv() is woken without data — e.g. by the ACK of its own FIN
 * after shutdown(SHUT_WR), or by write space freed for a concurrent writer
 * of the same socket. Readers that poll() (event loops) are unaffected;
 * blocking readers of half-closed sockets may see EAGAIN. Removing the
 * socket from the map at that point would drop data queued for it, so
 * the programs do not.
 */
#include "lib/common.h"
#include "lib/sock_redir.h"

SEC("sockops")
int redir_sockops(struct bpf_sock_ops *ops)
{
	struct sluice_redir_key key;

	if (ops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    ops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	if (!redir_key_sockops(ops, &key) || !redir_remote_is_local(&key))
		return 1;
	if (bpf_sock_hash_update(ops, &redir_socks, &key, BPF_ANY))
		redir_count(SLUICE_REDIR_CNT_ADD_FAILED, 1);
	else
		redir_count(SLUICE_REDIR_CNT_ADDED, 1);
	return 1;
}

SEC("sk_msg")
int redir_msg(struct sk_msg_md *msg)
{
	struct sluice_redir_key peer;
	struct redir_state *st;
	__u32 len = msg->size;

	st = bpf_sk_storage_get(&redir_state, msg->sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st || st->mode == REDIR_PLAIN || !redir_peer_key_msg(msg, &peer))
		goto pass;
	/* The receiver fell behind: hand this connection to TCP, whose
	 * window blocks the writer. For good, since the reader takes the
	 * redirect queue before TCP data (ordering stays intact one way
	 * only), and a switch back could strand a reader in tcp_recvmsg. */
	if (redir_peer_is_behind(st->peer_psock)) {
		st->mode = REDIR_PLAIN;
		redir_count(SLUICE_REDIR_CNT_SLOW_PEER, 1);
		goto pass;
	}
	/* A failed redirect returns SK_DROP; as our verdict that would fail
	 * the sender's write with EPERM, so the message takes TCP instead. */
	if (bpf_msg_redirect_hash(msg, &redir_socks, &peer, BPF_F_INGRESS) == SK_PASS) {
		st->mode = REDIR_ON;
		st->peer_psock = redir_target_psock(msg);
		redir_count(SLUICE_REDIR_CNT_MSGS, 1);
		redir_count(SLUICE_REDIR_CNT_BYTES, len);
		return SK_PASS;
	}
	if (st->mode == REDIR_UNDECIDED)
		st->mode = REDIR_PLAIN;
pass:
	redir_count(SLUICE_REDIR_CNT_PASS, 1);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
