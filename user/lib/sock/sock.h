/* SPDX-License-Identifier: MIT */
/*
 * sock.h - socket-level load balancing and same-node redirection
 * (bpf/sock.bpf.c, bpf/redir.bpf.c) on top of a loaded struct sluice.
 *
 * Contract: sluice_sock__open() only records its arguments; each part's
 * BPF object is loaded on first use, with the datapath's maps (services,
 * maglev, backends, svc_stats, ...) reused from the struct sluice, so the
 * socket LB serves exactly the datapath's services. Its own maps (sock_*,
 * redir_*) are pinned under pin_dir when one is given, and so are its
 * links (pin_dir/link_<program>): the attachment then outlives the process,
 * and a later attach to the same cgroup swaps the programs in place
 * (bpf_link_update, no gap); to another cgroup it moves them. Without a
 * pin dir the attachment ends with sluice_sock__close(). Functions return
 * 0 or a negative errno and explain failures in sluice__errmsg().
 *
 * Typical agent use:
 *	sluice_sock__open(&ss, s, &(struct sluice_sock_opts){ .pin_dir = dir });
 *	socket LB on:  sluice_sock__attach_lb(ss, cgroup)   off: sluice_sock__detach_lb(ss)
 *	redirect on:   sluice_sock__attach_redir(ss, cgroup) &&
 *	               sluice_sock__redir_selftest(ss, why, sizeof(why)),
 *	               on failure sluice_sock__detach_redir(ss) and report why
 *	status:        sluice_sock__info(ss, &info)
 *	uninstall:     sluice_sock__unpin(dir) before sluice__unpin(dir)
 */
#ifndef SLUICE_SOCK_H
#define SLUICE_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "sluice.h"
#include "sluice_sock_abi.h"

struct sluice_sock;

struct sluice_sock_opts {
	const char *pin_dir; /* normally the sluice pin dir; NULL: nothing pinned */
	__u32 cfg;           /* SLUICE_SOCK_CFG_* (socket LB knobs), 0 = all on */
	/* Bytes a receiver may leave unread in its redirect queue before its
	 * peer's connection goes back to TCP (flow control); 0 = default
	 * SLUICE_REDIR_QUEUE_DEFAULT (4 MiB). */
	__u32 redir_queue_max;
};

struct sluice_sock_info {
	bool lb_attached;    /* socket-LB programs attached (by us or pinned) */
	bool redir_attached; /* sockops + sk_msg attached (by us or pinned) */
	__u64 lb_cgroup_id;  /* cgroup of the attachment, 0 when detached */
	__u64 redir_cgroup_id;
	__u64 lb[SLUICE_SOCK_CNT__MAX];     /* summed over CPUs */
	__u64 redir[SLUICE_REDIR_CNT__MAX]; /* summed over CPUs */
	__u32 redir_sockets;                /* sockets in the redirect map now (2 per connection) */
	/* Why redir.bpf.o could not be loaded (a kernel without sk_msg or
	 * sockhash, a verifier refusal): "" when it loaded. The socket LB's
	 * fields stay valid then; the redirect counters read 0. */
	char redir_unavailable[256];
};

/* s must outlive the handle. */
int sluice_sock__open(struct sluice_sock **out, struct sluice *s,
		      const struct sluice_sock_opts *opts);
/* Closes fds; pinned links stay attached, unpinned ones detach. */
void sluice_sock__close(struct sluice_sock *ss);
/* The SLUICE_SOCK_CFG_* knobs the socket LB is loaded with (opts.cfg). */
__u32 sluice_sock__cfg(const struct sluice_sock *ss);

/* Attach to a cgroup v2 directory (e.g. "/sys/fs/cgroup/unified/x"). All
 * programs of the part are attached, or none is (an error detaches the
 * part). Attaching again replaces the programs atomically. */
int sluice_sock__attach_lb(struct sluice_sock *ss, const char *cgroup);
int sluice_sock__attach_redir(struct sluice_sock *ss, const char *cgroup);
/* Detach the part, also when a previous process attached it (pinned
 * links). Sockets already redirected keep their peer until they close. */
int sluice_sock__detach_lb(struct sluice_sock *ss);
/* Whether the socket LB is attached (by ss, or pinned by an earlier
 * agent); unlike sluice_sock__info() it loads no program (#16: a start
 * with the socket LB off spent a verifier run on it). */
bool sluice_sock__lb_attached(struct sluice_sock *ss);
int sluice_sock__detach_redir(struct sluice_sock *ss);

/*
 * Runs a local TCP pair through the redirect in a child process placed in
 * a transient child cgroup of the redirect's cgroup: both sockets must
 * enter the map, 1 MiB each way must arrive intact and be counted as
 * redirected, and both sockets must leave the map after close. Needs the
 * redirect attached by this handle. Returns 0 on success; otherwise a
 * negative errno, with the reason in reason[] and sluice__errmsg().
 */
int sluice_sock__redir_selftest(struct sluice_sock *ss, char *reason, size_t len);

/* Attachment state, counters and the size of the redirect map. */
int sluice_sock__info(struct sluice_sock *ss, struct sluice_sock_info *info);
/* The same figures without loading a program (a metrics scrape): a part
 * this handle has not loaded is read from its maps pinned under pin_dir,
 * and reads 0 when there are none (it never ran); redir_unavailable stays
 * "" (only a load can tell). sluice_sock__info() loads both parts on its
 * first call, through the verifier (~0.2 s here). */
int sluice_sock__counters(struct sluice_sock *ss, struct sluice_sock_info *info);

/* Node addresses besides loopback whose connections may be redirected. */
int sluice_sock__redir_addr_add(struct sluice_sock *ss, const struct sluice_addr *a);
int sluice_sock__redir_addr_del(struct sluice_sock *ss, const struct sluice_addr *a);

/* Detach what is pinned under pin_dir and remove sluice_sock's pins
 * (links, sock_* and redir_* maps), leaving the datapath's pins for
 * sluice__unpin(). Missing pins are not an error. Redirected connections
 * still open lose data queued for them when the redirect map goes. */
int sluice_sock__unpin(const char *pin_dir);

/* Names and help for metrics and CLI output; never NULL. */
const char *sluice_sock__counter_name(enum sluice_sock_counter c);
const char *sluice_sock__counter_help(enum sluice_sock_counter c);
const char *sluice_sock__redir_counter_name(enum sluice_redir_counter c);
const char *sluice_sock__redir_counter_help(enum sluice_redir_counter c);

#endif /* SLUICE_SOCK_H */
