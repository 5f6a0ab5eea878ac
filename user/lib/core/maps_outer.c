// SPDX-License-Identifier: MIT
/*
 * maps_outer.c - writing many elements of a map-in-map (the maglev outer
 * map) without paying one RCU grace period after another.
 *
 * Every write of an outer-map element waits for programs that may still
 * hold the old inner map (maybe_wait_bpf_programs(): synchronize_rcu()).
 * Older kernels, Debian 12's 6.1 among them, wait after each element of a
 * batch update too (generic_map_update_batch() calls the per-element
 * update), 8-18 ms each. Newer kernels wait once per batch. Grace periods that
 * several threads wait for at the same time end together, so a large
 * write is split into chunks, one thread each: on the older kernels the
 * waits overlap, on the newer ones each chunk waits once and those waits
 * overlap too. Nothing is decided from the kernel version.
 * test_outer_update prints both ways for 256 elements: 6.1 under qemu
 * (make test-kernels) 4701 ms in one batch, 177 ms split; 6.18 10.0 ms
 * and 9.0 ms.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <bpf/bpf.h>

#include "internal.h"

/* Fewer elements than this are written by the caller's thread alone. */
#define OUTER_CHUNK_MIN 8
/* Threads at most: 30k services on 6.1 are then ~470 grace periods deep
 * instead of 30k; starting them costs ~1-2 ms. */
#define OUTER_THREADS_MAX 64

struct outer_chunk {
	int fd;
	const __u32 *keys;
	const int *vals;
	__u32 n;
	__u32 done; /* elements written from the first, in order */
	int err;    /* the error of element `done`, or 0 */
};

/* One chunk: a batch update, element by element where the kernel has no
 * batch for this map type. Stops at the first failed element. */
static void outer__write(struct outer_chunk *c)
{
	c->err = maps__update_many(c->fd, c->keys, sizeof(*c->keys), c->vals, sizeof(*c->vals),
				   c->n, &c->done);
}

static void *outer__thread(void *arg)
{
	outer__write(arg);
	return NULL;
}

int maps__outer_update(int fd, const __u32 *keys, const int *vals, __u32 n, bool *written,
		       __u32 *failed)
{
	struct outer_chunk one, *c = &one;
	pthread_t tid[OUTER_THREADS_MAX];
	bool started[OUTER_THREADS_MAX] = {};
	__u32 nt = n / OUTER_CHUNK_MIN, per, i;
	int err = 0;

	if (nt > OUTER_THREADS_MAX)
		nt = OUTER_THREADS_MAX;
	if (nt < 2)
		nt = 1;
	else if (!(c = calloc(nt, sizeof(*c))))
		c = &one, nt = 1; /* no memory for chunks: one write does it */
	per = nt ? (n + nt - 1) / nt : 0;
	for (i = 0; i < nt; i++) {
		__u32 from = i * per < n ? i * per : n;

		c[i] = (struct outer_chunk){ .fd = fd, .keys = keys + from, .vals = vals + from };
		c[i].n = n - from < per ? n - from : per;
	}
	/* chunk 0 on this thread; a thread that cannot start runs here too */
	for (i = 1; i < nt; i++)
		started[i] = !pthread_create(&tid[i], NULL, outer__thread, &c[i]);
	for (i = 0; i < nt; i++)
		if (!started[i] && c[i].n)
			outer__write(&c[i]);
	for (i = 1; i < nt; i++)
		if (started[i])
			pthread_join(tid[i], NULL);

	for (i = 0; i < nt; i++) {
		__u32 from = (__u32)(c[i].keys - keys);

		for (__u32 k = 0; k < c[i].n; k++)
			written[from + k] = k < c[i].done;
		if (c[i].err && !err) {
			err = c[i].err;
			*failed = from + c[i].done;
		}
	}
	if (c != &one)
		free(c);
	return err;
}
