// SPDX-License-Identifier: MIT
/*
 * maps.c - generic map access for the library: whole-map walks (batched),
 * per-CPU sums and resets, and error text that names the map.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"

/* Elements per batched lookup: large enough to amortise the syscall,
 * small enough that no hash bucket holds more (which would be -ENOSPC). */
#define MAPS_BATCH 1024

int maps__err(int err, const char *name, const char *op, const char *what)
{
	char buf[128];

	libbpf_strerror(err, buf, sizeof(buf));
	if (err == -E2BIG || err == -ENOSPC)
		sluice__set_err("%s map: %s %s failed: %s (map full?)", name, op, what, buf);
	else
		sluice__set_err("%s map: %s %s failed: %s", name, op, what, buf);
	return err;
}

/* 524 is the kernel's internal ENOTSUPP, which a missing batch op returns
 * to userspace as is. */
#define MAPS_ENOTSUPP_KERNEL 524

bool maps__batch_unsupported(int err)
{
	return err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP ||
	       err == -MAPS_ENOTSUPP_KERNEL;
}

static int maps__walk_slow(int fd, const char *name, size_t key_size, void *key, void *next,
			   void *value, maps__elem_fn fn, void *ctx)
{
	void *prev = NULL;
	int err;

	for (;;) {
		err = bpf_map_get_next_key(fd, prev, next);
		if (err == -ENOENT)
			return 0;
		if (err)
			return maps__err(err, name, "walk", "(get_next_key)");
		memcpy(key, next, key_size);
		prev = key;
		err = bpf_map_lookup_elem(fd, key, value);
		if (err == -ENOENT) /* deleted under us: skip it */
			continue;
		if (err)
			return maps__err(err, name, "lookup", "during walk");
		err = fn(key, value, ctx);
		if (err)
			return err;
	}
}

/* Returns 1 when the kernel cannot batch this map, so the caller falls
 * back to the element-wise walk before any callback has run. */
static int maps__walk_batch(int fd, const char *name, size_t key_size, size_t value_size,
			    char *keys, char *values, maps__elem_fn fn, void *ctx)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	/* The batch token is a bucket index for hash maps but a whole key
	 * for maps on the kernel's generic batch ops (arrays, LPM tries):
	 * room for either, or a 24-byte LPM key overruns the stack. */
	__u64 in_batch[8] = {}, out_batch[8] = {};
	bool first = true, done = false;
	__u32 count;
	int err;

	if (key_size > sizeof(in_batch))
		return 1;
	while (!done) {
		count = MAPS_BATCH;
		err = bpf_map_lookup_batch(fd, first ? NULL : in_batch, out_batch, keys, values,
					   &count, &opts);
		if (err == -ENOENT) {
			done = true;
		} else if (err) {
			/* Only the first call may fall back: later ones would
			 * hand elements to the callback twice. */
			if (first && (maps__batch_unsupported(err) || err == -ENOSPC))
				return 1;
			return maps__err(err, name, "walk", "(batch lookup)");
		}
		for (__u32 i = 0; i < count; i++) {
			err = fn(keys + i * key_size, values + i * value_size, ctx);
			if (err)
				return err;
		}
		memcpy(in_batch, out_batch, sizeof(in_batch));
		first = false;
	}
	return 0;
}

int maps__for_each(int fd, const char *name, size_t key_size, size_t value_size, maps__elem_fn fn,
		   void *ctx)
{
	char *keys, *values;
	int err;

	keys = calloc(MAPS_BATCH, key_size);
	values = calloc(MAPS_BATCH, value_size);
	if (!keys || !values) {
		sluice__set_err("%s map: out of memory for a walk", name);
		err = -ENOMEM;
		goto cleanup;
	}
	err = maps__walk_batch(fd, name, key_size, value_size, keys, values, fn, ctx);
	if (err == 1)
		err = maps__walk_slow(fd, name, key_size, keys, keys + key_size, values, fn, ctx);
cleanup:
	free(keys);
	free(values);
	return err;
}

size_t maps__percpu_size(const struct sluice *s, size_t value_size)
{
	return (size_t)s->ncpus * ((value_size + 7) & ~(size_t)7);
}

/* One key at a time: kernels without batched array lookups. */
static int maps__range_slow(int fd, const char *name, __u32 from, __u32 to, void *value,
			    maps__elem_fn fn, void *ctx)
{
	int err;

	for (__u32 k = from; k < to; k++) {
		err = bpf_map_lookup_elem(fd, &k, value);
		if (err)
			return maps__err(err, name, "lookup", "of an array slot");
		err = fn(&k, value, ctx);
		if (err)
			return err;
	}
	return 0;
}

int maps__for_range(int fd, const char *name, __u32 from, __u32 to, size_t value_size,
		    maps__elem_fn fn, void *ctx)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys, next = from, in, out, count;
	char *values;
	int err = 0, rc;

	keys = calloc(MAPS_BATCH, sizeof(*keys));
	values = calloc(MAPS_BATCH, value_size);
	if (!keys || !values) {
		err = -ENOMEM;
		sluice__set_err("%s map: out of memory for a walk", name);
		goto cleanup;
	}
	while (next < to) {
		/* the batch starts after in_batch: the key before next */
		in = next - 1;
		count = to - next < MAPS_BATCH ? to - next : MAPS_BATCH;
		rc = bpf_map_lookup_batch(fd, next ? &in : NULL, &out, keys, values, &count, &opts);
		if (rc && rc != -ENOENT) {
			if (next == from && maps__batch_unsupported(rc)) {
				err = maps__range_slow(fd, name, from, to, values, fn, ctx);
				goto cleanup;
			}
			err = maps__err(rc, name, "walk", "(batch lookup)");
			goto cleanup;
		}
		for (__u32 i = 0; i < count && keys[i] < to; i++) {
			err = fn(&keys[i], values + i * value_size, ctx);
			if (err)
				goto cleanup;
		}
		if (!count || rc == -ENOENT) /* past the array's end */
			break;
		next = keys[count - 1] + 1;
	}
	err = 0;
cleanup:
	free(keys);
	free(values);
	return err;
}

int maps__percpu_sum(const struct sluice *s, int fd, const char *name, __u32 key, __u64 *out,
		     __u32 nfields)
{
	__u64 *vals;
	int err;

	memset(out, 0, nfields * sizeof(*out));
	vals = calloc((size_t)s->ncpus * nfields, sizeof(*vals));
	if (!vals) {
		sluice__set_err("%s map: out of memory", name);
		return -ENOMEM;
	}
	err = bpf_map_lookup_elem(fd, &key, vals);
	if (err) {
		maps__err(err, name, "lookup", "of a per-CPU slot");
		goto cleanup;
	}
	for (int cpu = 0; cpu < s->ncpus; cpu++)
		for (__u32 f = 0; f < nfields; f++)
			out[f] += vals[(size_t)cpu * nfields + f];
cleanup:
	free(vals);
	return err;
}

int maps__update_many(int fd, const void *keys, size_t key_size, const void *vals,
		      size_t value_size, __u32 n, __u32 *done)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = n;
	int err;

	*done = 0;
	if (!n)
		return 0;
	err = bpf_map_update_batch(fd, keys, vals, &count, &opts);
	if (err && count >= n)
		count = 0; /* refused before any element: count not written back */
	if (err && !count && maps__batch_unsupported(err)) {
		for (err = 0; count < n; count++) {
			err = bpf_map_update_elem(fd, (const char *)keys + count * key_size,
						  (const char *)vals + count * value_size, BPF_ANY);
			if (err)
				break;
		}
	}
	*done = err ? count : n;
	return err;
}

/* Zero values for this many keys at most per batched write: bounds the
 * buffer on machines with many CPUs. */
#define PERCPU_ZERO_CHUNK 64

int maps__percpu_zero_many(const struct sluice *s, int fd, const char *name, const __u32 *keys,
			   __u32 n, size_t value_size)
{
	size_t one = maps__percpu_size(s, value_size);
	__u32 chunk = n < PERCPU_ZERO_CHUNK ? n : PERCPU_ZERO_CHUNK, done;
	void *zeros;
	int err = 0;

	if (!n)
		return 0;
	zeros = calloc(chunk, one);
	if (!zeros) {
		sluice__set_err("%s map: out of memory", name);
		return -ENOMEM;
	}
	for (__u32 at = 0; at < n && !err; at += chunk) {
		__u32 k = n - at < chunk ? n - at : chunk;

		err = maps__update_many(fd, keys + at, sizeof(*keys), zeros, one, k, &done);
		if (err)
			maps__err(err, name, "reset", "of a per-CPU slot");
	}
	free(zeros);
	return err;
}

int maps__percpu_zero(const struct sluice *s, int fd, const char *name, __u32 key,
		      size_t value_size)
{
	return maps__percpu_zero_many(s, fd, name, &key, 1, value_size);
}

int sluice__map_walk(int fd, const char *name, size_t key_size, size_t value_size,
		     sluice_map_walk_fn fn, void *ctx)
{
	sluice__clear_err();
	return maps__for_each(fd, name, key_size, value_size, fn, ctx);
}

int sluice__map_err(int err, const char *name, const char *op, const char *what)
{
	return maps__err(err, name, op, what);
}
