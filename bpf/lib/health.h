/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * health.h - passive outlier detection: the kernel counts connection
 * failures per backend and ejects a backend by itself; the pick (lb.h
 * lb_pick) skips ejected backends. meshd only configures it (svc_health)
 * and reads the events.
 *
 * The rules (all of them here, userspace only reports them):
 *  - A failure (health_fail) bumps backend_health.fails; a success
 *    (health_success) zeroes it. Nothing happens for a service whose
 *    svc_health.threshold is 0 (off, also the state of a service an
 *    older agent wrote): nothing is counted and picks ignore health.
 *  - fails reaching the threshold ejects the backend: EJECTED flag,
 *    ejections + 1, ejected_until = now + min(base_ms x ejections, max_ms),
 *    svc_health.ejected + 1, an EJECTED event. Unless the service has
 *    max(1, backends x max_ejected_pct / 100) ejected already: then
 *    nothing but the health_max_ejected counter (and one MAX_EJECTED
 *    event, when fails reaches the threshold exactly, not per failure).
 *  - An ejected backend whose time is over is on probation: the pick
 *    may choose it again; its next success restores it (flag cleared,
 *    ejected - 1, RESTORED event), its next failure ejects it again at
 *    once (REEJECTED, ejections + 1). A success before the time is over
 *    restores nothing.
 *  - A success more than max_ms after the last failure zeroes ejections
 *    (the backoff multiplier).
 *
 * Concurrency: fails is bumped atomically; the EJECTED flag, reason and
 * ejections share one 32-bit word changed only by compare-and-swap, so
 * of two CPUs seeing the threshold only one ejects, and of two seeing a
 * probation success only one restores. svc_health.ejected is reserved
 * with an atomic fetch-and-add before the flag is claimed, so the
 * max-ejected bound holds across backends (two backends crossing the
 * threshold at the same instant may see a spurious MAX_EJECTED for one
 * of them, never one ejection too many). BPF atomics with fetch and
 * cmpxchg: kernel 5.12, clang -mcpu=v3.
 */
#ifndef SLUICE_BPF_HEALTH_H
#define SLUICE_BPF_HEALTH_H

#include "common.h"
#include "counters.h"
#include "maps.h"

/* base_ms / max_ms of 0 (an entry written with no times) mean the
 * defaults; threshold 0 means off and is tested by every caller. */
#define HEALTH_MS_NS 1000000ULL

/* Compare-and-swap attempts before a transition gives up; a CAS fails
 * only when another CPU changed the word meanwhile. */
#define HEALTH_CAS_TRIES 4

/* The last word of struct sluice_backend_health: ejections, reason and
 * flags, changed together by compare-and-swap. */
union health_word {
	__u32 w;
	struct {
		__u16 ejections;
		__u8 reason;
		__u8 flags;
	};
};

_Static_assert(__builtin_offsetof(struct sluice_backend_health, ejections) % 4 == 0 &&
		       __builtin_offsetof(struct sluice_backend_health, flags) ==
			       __builtin_offsetof(struct sluice_backend_health, ejections) + 3,
	       "ejections, reason and flags form one aligned 32-bit word");

static __always_inline __u32 *health_word_ptr(struct sluice_backend_health *bh)
{
	return (__u32 *)&bh->ejections;
}

static __always_inline void health_count(enum sluice_health_counter c)
{
	counter_add(&health_counters, c, 1);
}

/* Ejected, and the ejection time is not over (not on probation). */
static __always_inline bool health_is_ejected(const struct sluice_backend_health *bh, __u64 now)
{
	return (bh->flags & SLUICE_BH_F_EJECTED) && now < bh->ejected_until_ns;
}

/* Panic: fewer than panic_pct % of the service's backends are healthy,
 * so health is ignored and every backend takes its Maglev share. */
static __always_inline bool health_panic(const struct sluice_svc_health *sh)
{
	__u32 backends = sh->backends, ejected = sh->ejected;

	if (ejected > backends)
		ejected = backends;
	return (backends - ejected) * 100 < (__u32)sh->panic_pct * backends;
}

static __always_inline __u32 health_max_ejected(const struct sluice_svc_health *sh)
{
	__u32 n = (__u32)sh->backends * sh->max_ejected_pct / 100;

	return n ? n : 1;
}

static __always_inline __u64 health_eject_ns(const struct sluice_svc_health *sh, __u16 ejections)
{
	__u64 base = sh->base_ms ? sh->base_ms : SLUICE_OUTLIER_BASE_MS_DEFAULT;
	__u64 max = sh->max_ms ? sh->max_ms : SLUICE_OUTLIER_MAX_MS_DEFAULT;
	__u64 ms = base * ejections;

	return (ms < max ? ms : max) * HEALTH_MS_NS;
}

static __always_inline void health_event(__u8 kind, __u32 svc_id, __u32 backend_id,
					 const struct sluice_backend_health *bh, __u32 fails,
					 const union health_word *w, __u64 now)
{
	struct sluice_health_event *e;

	/* ring buffer: kernel 5.8 */
	e = bpf_ringbuf_reserve(&health_events, sizeof(*e), 0);
	if (!e) {
		health_count(SLUICE_HCNT_EVENT_LOST);
		return;
	}
	e->ts_ns = now;
	e->ejected_until_ns = kind == SLUICE_HEALTH_EV_EJECTED ||
					      kind == SLUICE_HEALTH_EV_REEJECTED ?
				      bh->ejected_until_ns :
				      0;
	e->svc_id = svc_id;
	e->backend_id = backend_id;
	e->fails = fails;
	e->ejections = w->ejections;
	e->kind = kind;
	e->reason = w->reason;
	bpf_ringbuf_submit(e, 0);
}

/* Take one slot of the service's ejection budget; false when it is
 * used up (and nothing was taken). */
static __always_inline bool health_reserve(struct sluice_svc_health *sh)
{
	__u32 before = __sync_fetch_and_add(&sh->ejected, 1);

	if (before < health_max_ejected(sh))
		return true;
	__sync_fetch_and_add(&sh->ejected, -1);
	return false;
}

static __always_inline void health_release(struct sluice_svc_health *sh)
{
	__u32 old;

	/* userspace recounts `ejected` when it writes the service: never
	 * wrap below 0 if a recount raced with this. A compare-and-swap, so
	 * no other CPU ever reads a wrapped value in between (the verifier
	 * needs a bounded loop; a CAS fails only when another CPU changed the
	 * count meanwhile, and giving up leaves it one too high until the
	 * next write of the service recounts it: never too low). */
	for (int i = 0; i < HEALTH_CAS_TRIES; i++) {
		old = *(volatile __u32 *)&sh->ejected;
		if (!old || __sync_val_compare_and_swap(&sh->ejected, old, old - 1) == old)
			return;
	}
}

/*
 * One attempt at the transition a failure causes; returns the event
 * kind (0: none), or -1 when the word changed under us (try again).
 */
static __always_inline int health_fail_once(struct sluice_backend_health *bh,
					    struct sluice_svc_health *sh, __u32 fails, __u8 reason,
					    __u64 now, union health_word *n)
{
	union health_word o;
	__u32 *word = health_word_ptr(bh);
	bool eject = false, reserved = false;

	o.w = *(volatile __u32 *)word;
	n->w = o.w;
	n->reason = reason;
	if (o.flags & SLUICE_BH_F_EJECTED) {
		/* ejected: counted only; on probation: ejected again */
		eject = now >= bh->ejected_until_ns;
	} else if (fails >= sh->threshold) {
		if (!health_reserve(sh)) {
			if (__sync_val_compare_and_swap(word, o.w, n->w) != o.w)
				return -1;
			health_count(SLUICE_HCNT_MAX_EJECTED);
			return fails == sh->threshold ? SLUICE_HEALTH_EV_MAX_EJECTED : 0;
		}
		reserved = eject = true;
	}
	if (eject) {
		if (n->ejections < 0xffff)
			n->ejections++;
		n->flags |= SLUICE_BH_F_EJECTED;
		/* before the flag: a pick that sees the flag sees the time */
		bh->ejected_until_ns = now + health_eject_ns(sh, n->ejections);
	}
	if (__sync_val_compare_and_swap(word, o.w, n->w) != o.w) {
		if (reserved)
			health_release(sh);
		return -1;
	}
	if (!eject)
		return 0;
	health_count(SLUICE_HCNT_EJECT);
	return reserved ? SLUICE_HEALTH_EV_EJECTED : SLUICE_HEALTH_EV_REEJECTED;
}

/**
 * health_fail() - a connection attempt to @backend_id of @svc_id failed.
 * @reason: enum sluice_health_reason.
 *
 * A global function (kernel 5.6): the verifier checks it once on its own
 * instead of at every call site, which keeps the packet programs' state
 * count near where it was; hence scalar arguments only and an int
 * return value (always 0) instead of void.
 */
__noinline int health_fail(__u32 svc_id, __u32 backend_id, __u8 reason, __u64 now)
{
	struct sluice_backend_health *bh;
	struct sluice_svc_health *sh;
	union health_word n = {};
	int kind = -1;
	__u32 fails;

	sh = bpf_map_lookup_elem(&svc_health, &svc_id);
	if (!sh || !sh->threshold)
		return 0;
	bh = bpf_map_lookup_elem(&backend_health, &backend_id);
	if (!bh)
		return 0;
	health_count(SLUICE_HCNT_FAIL);
	fails = __sync_add_and_fetch(&bh->fails, 1);
	bh->last_fail_ns = now;
	for (int i = 0; i < HEALTH_CAS_TRIES && kind < 0; i++)
		kind = health_fail_once(bh, sh, fails, reason, now, &n);
	if (kind > 0)
		health_event(kind, svc_id, backend_id, bh, fails, &n, now);
	return 0;
}

/**
 * health_success() - a connection to @backend_id of @svc_id was
 * established. Writes the backend's entry only when there is something
 * to change, so a healthy backend's cache line is not bounced between
 * CPUs by every connection. Global, as health_fail().
 */
__noinline int health_success(__u32 svc_id, __u32 backend_id, __u64 now)
{
	struct sluice_backend_health *bh;
	struct sluice_svc_health *sh;
	union health_word o, n;
	__u64 max_ns;
	__u32 *word;

	sh = bpf_map_lookup_elem(&svc_health, &svc_id);
	if (!sh || !sh->threshold)
		return 0;
	bh = bpf_map_lookup_elem(&backend_health, &backend_id);
	if (!bh)
		return 0;
	health_count(SLUICE_HCNT_SUCCESS);
	if (bh->fails)
		bh->fails = 0;
	word = health_word_ptr(bh);
	o.w = *(volatile __u32 *)word;
	if (!(o.flags & SLUICE_BH_F_EJECTED) && !o.ejections)
		return 0;
	if (health_is_ejected(bh, now))
		return 0; /* its time is not over: a success does not restore */
	n.w = o.w;
	n.flags &= ~SLUICE_BH_F_EJECTED;
	max_ns = (sh->max_ms ? sh->max_ms : SLUICE_OUTLIER_MAX_MS_DEFAULT) * HEALTH_MS_NS;
	if (now > bh->last_fail_ns && now - bh->last_fail_ns > max_ns)
		n.ejections = 0;
	if (n.w == o.w || __sync_val_compare_and_swap(word, o.w, n.w) != o.w)
		return 0; /* nothing to do, or another CPU's change stands */
	if (!(o.flags & SLUICE_BH_F_EJECTED))
		return 0;
	health_release(sh);
	health_count(SLUICE_HCNT_RESTORE);
	health_event(SLUICE_HEALTH_EV_RESTORED, svc_id, backend_id, bh, 0, &n, now);
	return 0;
}

#endif /* SLUICE_BPF_HEALTH_H */
