// SPDX-License-Identifier: MIT
/*
 * deferred.c - flushing the deferred backend deletes off the request path
 * (see deferred.h).
 */
#include <time.h>

#include "sluice.h"

#include "deferred.h"
#include "log.h"

static __u64 deferred__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000;
}

static __u64 deferred__due_ms(const struct deferred *d)
{
	__u64 idle = d->last_ms + DEFERRED_IDLE_MS, max = d->first_ms + DEFERRED_MAX_MS;

	return idle < max ? idle : max;
}

int deferred__timeout_ms(const struct deferred *d)
{
	__u64 now, due;

	if (!d->seen)
		return -1;
	now = deferred__now_ms();
	due = deferred__due_ms(d);
	return due > now ? (int)(due - now) : 0;
}

void deferred__run(struct deferred *d, struct sluice *sl)
{
	__u32 n = sl ? sluice__deferred_count(sl) : 0;
	__u64 now;

	if (!n) {
		d->seen = 0;
		return;
	}
	now = deferred__now_ms();
	if (n != d->seen) {
		if (!d->seen)
			d->first_ms = now;
		d->last_ms = now;
		d->seen = n;
	}
	if (now < deferred__due_ms(d))
		return;
	sluice__flush_deferred(sl); /* a failed delete keeps its id taken */
	if (*sluice__errmsg())
		pr_warn("deferred backend deletes: %s", sluice__errmsg());
	d->seen = 0;
}
