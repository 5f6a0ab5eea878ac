// SPDX-License-Identifier: MIT
/*
 * policy_cut_async.c - a policy cut (#15) off the caller's thread: meshd's
 * loop applies a policy change to the maps and answers at once, and this
 * worker cuts what the change denies (policy_cut.c, policy_cut_netns.c).
 *
 * Contract: one worker thread per handle, started by
 * sluice__policy_cut_start() and joined by sluice__close(). State is one
 * struct (no queue): `want` says a cut is owed, so any number of requests
 * while a run goes on cost one more run, and memory stays that of one run.
 * Ordering with the caller's writes: the caller brackets a write that can
 * change a verdict with sluice__policy_cut_writing(); its start bumps
 * `gen` under the lock. A run records gen when it begins (never while a
 * write lasts) and takes its verdicts without a lock, but every batch of
 * deletions passes cut__gate(), which holds gate_mu and lets the batch
 * through only while gen is unchanged. A write bumps gen (under mu) at its
 * start and again at its end, and between the first bump and its first
 * map write takes gate_mu once, to wait for the batch in flight: so a
 * deletion happens only while the policy its verdict was taken under is
 * the one in the maps, whole, and a write waits for one batch at most (the
 * worker's next gate sees the new gen and lets go, so the write does not
 * contend with a stream of batches). A run that went stale ends early
 * (`restarts`) and runs again once the write is over, with the final
 * policy. A stop (sluice__close()) ends a run the same way: between
 * batches, namespaces and conntrack chunks of 4096 entries; one sock_diag
 * dump (~2.5-4.5 ms) is the longest wait.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy_cut.h"

static __u64 async__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

void cut__lock(struct sluice *s)
{
	if (s->cut_async)
		pthread_mutex_lock(&s->cut_async->mu);
}

void cut__unlock(struct sluice *s)
{
	if (s->cut_async)
		pthread_mutex_unlock(&s->cut_async->mu);
}

bool cut__stale(const struct cut_ctx *c)
{
	if (!c->as)
		return false;
	return __atomic_load_n(&c->as->gen, __ATOMIC_ACQUIRE) != c->gen ||
	       __atomic_load_n(&c->as->stop, __ATOMIC_ACQUIRE);
}

bool cut__gate(struct cut_ctx *c)
{
	if (!c->as)
		return true;
	pthread_mutex_lock(&c->as->gate_mu);
	if (!cut__stale(c) && !__atomic_load_n(&c->as->writing, __ATOMIC_ACQUIRE))
		return true;
	pthread_mutex_unlock(&c->as->gate_mu);
	return false;
}

void cut__ungate(struct cut_ctx *c)
{
	if (c->as)
		pthread_mutex_unlock(&c->as->gate_mu);
}

/* The scope as it is now (under the lock); false: out of memory. */
static bool async__scope(struct sluice *s, struct cut_scope *sc)
{
	*sc = (struct cut_scope){ .cgroup = s->cut_cgroup ? strdup(s->cut_cgroup) : NULL,
				  .all = s->cut_all,
				  .max_netns = s->cut_max_netns,
				  .budget_ms = s->cut_budget_ms,
				  .max_pids = s->cut_max_pids,
				  .max_socks = s->cut_max_socks };
	return !s->cut_cgroup || sc->cgroup;
}

static void *async__main(void *arg)
{
	struct sluice *s = arg;
	struct cut_async *as = s->cut_async;

	pthread_mutex_lock(&as->mu);
	for (;;) {
		struct cut_scope sc;
		__u64 gen, flows = 0, socks = 0;
		int err, sock_err = 0;

		while (!as->stop && (!as->want || as->writing))
			pthread_cond_wait(&as->cv, &as->mu);
		if (as->stop)
			break;
		gen = as->gen;
		as->want = false;
		as->running = true;
		as->run_netns = 0;
		as->run_start_ns = async__now_ns();
		err = async__scope(s, &sc) ? 0 : -ENOMEM;
		pthread_mutex_unlock(&as->mu);
		if (!err)
			err = cut__run(s, as, gen, &sc, &flows, &socks, &sock_err);
		free(sc.cgroup);
		pthread_mutex_lock(&as->mu);
		as->running = false;
		if (err == -ECANCELED) {
			as->restarts++;
			as->want = !as->stop; /* owed still: run again after the write */
			continue;
		}
		as->runs++;
		as->last_run_us = (async__now_ns() - as->run_start_ns) / 1000;
		as->last_flows = flows;
		as->last_socks = socks;
		as->last_run_err = err ? err : sock_err;
		as->run_start_ns = 0;
	}
	as->running = false;
	pthread_mutex_unlock(&as->mu);
	return NULL;
}

int sluice__policy_cut_async(struct sluice *s)
{
	struct cut_async *as;

	sluice__clear_err();
	if (s->cut_async)
		return 0;
	as = calloc(1, sizeof(*as));
	if (!as) {
		sluice__set_err("policy cut worker: out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&as->mu, NULL);
	pthread_mutex_init(&as->gate_mu, NULL);
	pthread_cond_init(&as->cv, NULL);
	s->cut_async = as;
	return 0;
}

int sluice__policy_cut_start(struct sluice *s)
{
	struct cut_async *as = s->cut_async;
	int err;

	sluice__clear_err();
	if (!as) {
		sluice__set_err("policy cut worker: sluice__policy_cut_async() first");
		return -EINVAL;
	}
	if (as->started)
		return 0;
	err = pthread_create(&as->th, NULL, async__main, s);
	if (err) {
		sluice__set_err("policy cut worker: %s", strerror(err));
		return -err;
	}
	as->started = true;
	return 0;
}

bool sluice__policy_cut_deferred(const struct sluice *s)
{
	return s->cut_async != NULL;
}

void sluice__policy_cut_request(struct sluice *s)
{
	struct cut_async *as = s->cut_async;

	if (!as)
		return;
	pthread_mutex_lock(&as->mu);
	as->want = true;
	as->requests++;
	pthread_cond_signal(&as->cv);
	pthread_mutex_unlock(&as->mu);
}

void sluice__policy_cut_writing(struct sluice *s, bool on)
{
	struct cut_async *as = s->cut_async;

	if (!as)
		return;
	pthread_mutex_lock(&as->mu);
	/* at both ends: a run that began, or took a verdict, during the write
	 * is stale either way */
	__atomic_store_n(&as->gen, as->gen + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&as->writing, on, __ATOMIC_RELEASE);
	if (!on)
		pthread_cond_signal(&as->cv);
	pthread_mutex_unlock(&as->mu);
	if (on) { /* the batch in flight ends; the next one sees gen and stops */
		pthread_mutex_lock(&as->gate_mu);
		pthread_mutex_unlock(&as->gate_mu);
	}
}

void sluice__policy_cut_totals(const struct sluice *s, struct sluice_policy_cut_totals *out)
{
	struct cut_async *as = s->cut_async;

	if (!as) {
		*out = s->cut;
		return;
	}
	pthread_mutex_lock(&as->mu);
	*out = s->cut;
	out->state = as->running ? SLUICE_CUT_RUNNING :
		     as->want    ? SLUICE_CUT_PENDING :
				   SLUICE_CUT_IDLE;
	out->requests = as->requests;
	out->runs = as->runs;
	out->restarts = as->restarts;
	out->run_us = as->running ? (async__now_ns() - as->run_start_ns) / 1000 : 0;
	out->run_netns = as->running ? __atomic_load_n(&as->run_netns, __ATOMIC_RELAXED) : 0;
	out->last_run_us = as->last_run_us;
	out->last_flows = as->last_flows;
	out->last_socks = as->last_socks;
	out->last_run_err = as->last_run_err;
	pthread_mutex_unlock(&as->mu);
}

void cut__async_free(struct sluice *s)
{
	struct cut_async *as = s->cut_async;

	if (!as)
		return;
	pthread_mutex_lock(&as->mu);
	__atomic_store_n(&as->stop, true, __ATOMIC_RELEASE);
	pthread_cond_signal(&as->cv);
	pthread_mutex_unlock(&as->mu);
	if (as->started)
		pthread_join(as->th, NULL);
	s->cut_async = NULL;
	pthread_mutex_destroy(&as->mu);
	pthread_mutex_destroy(&as->gate_mu);
	pthread_cond_destroy(&as->cv);
	free(as);
}
