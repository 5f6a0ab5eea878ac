/* SPDX-License-Identifier: MIT */
/*
 * policy_cut.h - what policy_cut.c (conntrack, this network namespace's
 * sockets), policy_cut_netns.c (the sockets of other network namespaces)
 * and policy_cut_async.c (the worker that runs a cut off the caller's
 * thread) share: the walk context, the one socket pass and the gate a
 * worker's deletions pass through.
 */
#ifndef SLUICE_POLICY_CUT_H
#define SLUICE_POLICY_CUT_H

#include <pthread.h>
#include <stddef.h>

#include "internal.h"

/* Where the sockets of other network namespaces are looked for: a copy
 * of the handle's, taken by a cut at its start. */
struct cut_scope {
	char *cgroup; /* NULL: none */
	bool all;     /* every process of /proc instead of the cgroup's */
	unsigned int max_netns, budget_ms, max_pids;
	unsigned int max_socks; /* denied sockets kept per dump (0: default) */
};

/* The worker (policy_cut_async.c). mu guards everything here and the
 * handle's totals and scope while a worker exists, and is only ever held
 * briefly (never across a syscall to the kernel's maps or sock_diag), so
 * the caller's reads of the totals never wait for the worker; gate_mu is
 * held by the worker for one batch of deletions, and taken by a write
 * only to wait for the batch in flight. */
struct cut_async {
	pthread_mutex_t mu, gate_mu;
	pthread_cond_t cv;
	pthread_t th;
	bool started, stop, want, writing, running;
	/* bumped when a write that can change a verdict begins: a run that
	 * began under another generation deletes nothing more */
	__u64 gen;
	__u64 requests, runs, restarts;
	__u64 run_start_ns, last_run_us, last_flows, last_socks;
	__u32 run_netns; /* namespaces the run in progress entered so far */
	int last_run_err;
};

struct cut_ctx {
	struct sluice *s;
	/* [SLUICE_MAX_SERVICES] the service entries by id; flags 0: none */
	const struct sluice_svc *svcs;
	struct sluice_ct_key *keys;
	size_t n, cap, seen;
	const struct cut_scope *scope; /* NULL: this namespace only */
	struct cut_async *as;          /* NULL: a cut in the caller's thread */
	__u64 gen;                     /* as->gen when the run began */
};

/* Deletions go in batches through the gate: with a worker, it takes
 * as->gate_mu and lets the batch through only while no write has begun
 * since the run did (true: held, cut__ungate() after); a write waits for
 * one batch at most. Without a worker, always true. */
bool cut__gate(struct cut_ctx *c);
void cut__ungate(struct cut_ctx *c);
/* A cheap look without the lock: a newer write or a stop (a worker only). */
bool cut__stale(const struct cut_ctx *c);
/* Totals of s->cut are changed under the worker's lock (if any). */
void cut__lock(struct sluice *s);
void cut__unlock(struct sluice *s);

/* Destroys the TCP and connected UDP sockets (both families) of the calling thread's network
 * namespace whose peer is a backend in @bes (daddr:dport, svc id in
 * saddr[0]) of a service that now denies the socket's own address:port;
 * *socks grows by the number destroyed. -EOPNOTSUPP without
 * CONFIG_INET_DIAG_DESTROY, -ECANCELED when the gate closed, -errno of
 * sock_diag otherwise. */
int cut__socks(struct cut_ctx *bes, __u64 *socks);

/* The same pass in every other network namespace of the processes of
 * bes->scope (policy_cut_netns.c); counts go to s->cut. -ECANCELED when a
 * worker's run went stale, 0 otherwise (failures are counted). */
int cut__socks_netns(struct cut_ctx *bes, __u64 *socks);

/* One whole cut (policy_cut.c): with @as, a worker's run of generation
 * @gen; -ECANCELED when it went stale. */
int cut__run(struct sluice *s, struct cut_async *as, __u64 gen, const struct cut_scope *scope,
	     __u64 *flows, __u64 *socks, int *sock_err);

#endif /* SLUICE_POLICY_CUT_H */
