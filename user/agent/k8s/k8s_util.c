// SPDX-License-Identifier: MIT
/*
 * k8s_util.c - what the sync thread's parts (k8s.c, k8s_watch.c) share:
 * the clock, log lines, the counters and last error the owner reads, and
 * marking the objects changed (see k8s_sync.h).
 *
 * Contract: everything here runs in the sync thread; the stats fields are
 * written under k->lock because k8s__stats() reads them from the owner's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s_sync.h"

__u64 k8s__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void k8s__log(struct k8s *k, enum k8s_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (k->opts.log)
		k->opts.log(level, buf, k->opts.ctx);
	else
		fprintf(stderr, "k8s: %s: %s\n", names[level], buf);
}

void k8s__sync_error(struct k8s *k, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&k->lock);
	k->st.sync_errors++;
	snprintf(k->st.last_error, sizeof(k->st.last_error), "%.*s",
		 (int)sizeof(k->st.last_error) - 1, buf);
	pthread_mutex_unlock(&k->lock);
	k8s__log(k, K8S_LOG_ERROR, "%s", buf);
}

void k8s__touch(struct k8s *k, bool ok)
{
	pthread_mutex_lock(&k->lock);
	k->st.last_sync = time(NULL);
	if (ok)
		k->st.last_error[0] = '\0';
	pthread_mutex_unlock(&k->lock);
}

void k8s__count(struct k8s *k, __u64 *counter)
{
	pthread_mutex_lock(&k->lock);
	(*counter)++;
	pthread_mutex_unlock(&k->lock);
}

int k8s__set_str(char **dst, const char *src)
{
	char *n = src ? strdup(src) : NULL;

	if (src && !n)
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

void k8s__mark_dirty(struct k8s *k)
{
	k->dirty = true;
	if (!k->dirty_at_ms)
		k->dirty_at_ms = k8s__now_ms();
}
