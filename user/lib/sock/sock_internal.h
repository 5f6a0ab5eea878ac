/* SPDX-License-Identifier: MIT */
/*
 * sock_internal.h - the sluice_sock handle, shared by sock.c (loading),
 * sock_attach.c (attaching) and sock_selftest.c; not part of the API.
 */
#ifndef SLUICE_SOCK_INTERNAL_H
#define SLUICE_SOCK_INTERNAL_H

#include "sock.h"

/* The two independently switched parts. */
enum sock_part {
	SOCK_PART_LB,    /* sock.bpf.c: cgroup sock_addr hooks */
	SOCK_PART_REDIR, /* redir.bpf.c: sockops + sk_msg */
	SOCK_PART__MAX,
};

/* Most attachments of one part (the socket LB: 8 sock_addr hooks and
 * its health sockops). */
#define SOCK_MAX_LINKS 9

/* links[i] when the sk_msg program is attached to the map the old way
 * (kernels before sockmap links, 6.10): there is no link fd to hold. */
#define SOCK_LINK_PROG_ATTACHED (-2)

struct sock_part_state {
	struct bpf_object *obj; /* owned by the skeleton below */
	int links[SOCK_MAX_LINKS];
	char *cgroup;    /* attached by this handle to ... */
	__u64 cgroup_id; /* ... this cgroup; 0: not attached by us */
};

struct sock_bpf;
struct redir_bpf;

struct sluice_sock {
	struct sluice *s;
	char *pin_dir;
	__u32 cfg;
	__u32 redir_queue_max;
	struct sock_bpf *lb_skel;
	struct redir_bpf *redir_skel;
	struct sock_part_state parts[SOCK_PART__MAX];
};

/* sock.c */
/* Loads the part's object if it is not loaded yet. */
int sock__load(struct sluice_sock *ss, enum sock_part p);
/* Loads the redirect object if needed; returns the redir_socks map fd. */
int sock__redir_map_fd(struct sluice_sock *ss);

/* sock_attach.c */
/* Closes the part's link fds (unpinned links detach); forgets its cgroup. */
void sock__forget_links(struct sock_part_state *ps);
/* Detaches the part: our links and links pinned under ss->pin_dir. */
int sock__detach_part(struct sluice_sock *ss, enum sock_part p);
/* Attached by this handle, or pinned by an earlier one; sets *cgroup_id. */
bool sock__part_attached(struct sluice_sock *ss, enum sock_part p, __u64 *cgroup_id);

#endif /* SLUICE_SOCK_INTERNAL_H */
