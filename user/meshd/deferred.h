/* SPDX-License-Identifier: MIT */
/*
 * deferred.h - when meshd flushes the library's deferred backend deletes
 * (#16): a change leaves the backends that left a set in the backends map
 * until sluice__flush_deferred(), which waits for one RCU grace period
 * (~10-20 ms, blocking). meshd calls it once changes have stopped for
 * DEFERRED_IDLE_MS, and at least every DEFERRED_MAX_MS under a steady
 * stream of changes, so removed entries never linger; exit flushes through
 * sluice__close().
 */
#ifndef MESHD_DEFERRED_H
#define MESHD_DEFERRED_H

#include <linux/types.h>

#define DEFERRED_IDLE_MS 20
#define DEFERRED_MAX_MS 1000

struct sluice;

struct deferred {
	__u32 seen;     /* pending deletes at the last look */
	__u64 first_ms; /* CLOCK_MONOTONIC ms the oldest was seen */
	__u64 last_ms;  /* ms the count last grew */
};

/* How long the loop may sleep before deferred__run() is due; -1: nothing
 * pending. */
int deferred__timeout_ms(const struct deferred *d);
/* Notes new pending deletes; flushes when due. */
void deferred__run(struct deferred *d, struct sluice *sl);

#endif /* MESHD_DEFERRED_H */
