// SPDX-License-Identifier: MIT
/*
 * test_outer_update.c - maps__outer_update() (user/lib/core/maps_outer.c),
 * the library's writer of many map-in-map elements (the maglev outer map:
 * a group's table swaps, deletes, the sweep), against the kernel (root):
 * what it writes is what was asked, over threads or alone; a failed
 * element is reported with the lowest index, and `written` says exactly
 * which slots hold their new table. It also prints one batch against the
 * split write for 256 elements: on 6.1 (make test-kernels) the waits for
 * grace periods show there; on newer kernels both are about one wait.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "internal.h"
#include "test.h"

#define OUTER_SLOTS 1024
#define NINNER 7

struct fixture {
	int outer;
	int inner[NINNER];
	__u32 inner_id[NINNER];
};

static int map_id(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : (int)info.id;
}

static bool fixture_make(struct fixture *f)
{
	LIBBPF_OPTS(bpf_map_create_opts, o);
	int tmpl = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ou_tmpl", 4, 4, 8, NULL);
	bool ok = ASSERT_TRUE(tmpl >= 0, "inner template");

	f->outer = -1;
	for (int i = 0; i < NINNER; i++)
		f->inner[i] = -1;
	if (!ok)
		return false;
	o.inner_map_fd = tmpl;
	f->outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "ou_outer", 4, 4, OUTER_SLOTS, &o);
	ok = ASSERT_TRUE(f->outer >= 0, "outer array of maps");
	for (int i = 0; ok && i < NINNER; i++) {
		f->inner[i] = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ou_inner", 4, 4, 8, NULL);
		f->inner_id[i] = (__u32)map_id(f->inner[i]);
		ok = ASSERT_TRUE(f->inner[i] >= 0 && f->inner_id[i], "inner map");
	}
	close(tmpl);
	return ok;
}

static void fixture_free(struct fixture *f)
{
	for (int i = 0; i < NINNER; i++)
		if (f->inner[i] >= 0)
			close(f->inner[i]);
	if (f->outer >= 0)
		close(f->outer);
}

/* The inner map id in slot key, 0 for an empty slot. */
static __u32 slot(const struct fixture *f, __u32 key)
{
	__u32 id = 0;

	return bpf_map_lookup_elem(f->outer, &key, &id) ? 0 : id;
}

/* n keys spread over the outer map (not in order), values cycling through
 * the inner maps. */
static void plan(const struct fixture *f, __u32 n, __u32 *keys, int *vals, __u32 *ids)
{
	for (__u32 i = 0; i < n; i++) {
		keys[i] = (i * 37 + 5) % OUTER_SLOTS;
		vals[i] = f->inner[i % NINNER];
		ids[i] = f->inner_id[i % NINNER];
	}
}

/* Every size from one element to many threads: each slot holds the inner
 * map asked for, every element reported written, no error. */
static void test_writes_what_was_asked(void)
{
	static const __u32 sizes[] = { 1, 15, 16, 33, 160, 700 };
	__u32 keys[700], ids[700], bad = 12345;
	int vals[700], err;
	bool written[700];
	struct fixture f;

	if (!fixture_make(&f))
		goto out;
	for (size_t z = 0; z < ARRAY_SIZE(sizes); z++) {
		__u32 n = sizes[z], wrong = 0, unwritten = 0;

		plan(&f, n, keys, vals, ids);
		for (__u32 i = 0; i < n; i++) /* a different table each round */
			vals[i] = f.inner[(i + z) % NINNER], ids[i] = f.inner_id[(i + z) % NINNER];
		err = maps__outer_update(f.outer, keys, vals, n, written, &bad);
		ASSERT_OK(err, "outer update");
		ASSERT_EQ(bad, 12345, "no failed index");
		for (__u32 i = 0; i < n; i++) {
			unwritten += !written[i];
			wrong += slot(&f, keys[i]) != ids[i];
		}
		if (!ASSERT_EQ(unwritten, 0, "every element written") ||
		    !ASSERT_EQ(wrong, 0, "every slot holds its table"))
			fprintf(stderr, "    at %u elements\n", n);
	}
out:
	fixture_free(&f);
}

/* Two bad elements in different chunks (a key past the map's end, a
 * value that is no map): the lower one is the error and the index, and
 * `written` is true exactly for the slots that now hold their table. */
static void test_failure_named(void)
{
	__u32 n = 320, keys[320], ids[320], bad = 0, mismatch = 0, nwritten = 0;
	int vals[320], err;
	bool written[320];
	struct fixture f;

	if (!fixture_make(&f))
		goto out;
	plan(&f, n, keys, vals, ids);
	keys[100] = OUTER_SLOTS + 3; /* -E2BIG */
	vals[250] = 0;               /* stdin: not a map, -EBADF or -EINVAL */
	err = maps__outer_update(f.outer, keys, vals, n, written, &bad);
	ASSERT_EQ(err, -E2BIG, "the lower element's error");
	ASSERT_EQ(bad, 100, "its index");
	ASSERT_FALSE(written[100] || written[250], "neither bad element written");
	for (__u32 i = 0; i < n; i++) {
		if (i == 100)
			continue;
		nwritten += written[i];
		mismatch += written[i] != (slot(&f, keys[i]) == ids[i]);
	}
	ASSERT_EQ(mismatch, 0, "written says which slots hold their table");
	ASSERT_TRUE(written[0] && written[n - 1], "chunks before and after the failures written");
	fprintf(stderr, "    %u of %u written around the two failures\n", nwritten, n);
	ASSERT_TRUE(nwritten > n / 2 && nwritten < n - 2, "a chunk stops at its failure");
out:
	fixture_free(&f);
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Not a timing check (tests never judge time): the figure that shows
 * whether this kernel waits per element, and that the split write does
 * the same work. */
static void test_one_batch_vs_split(void)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 n = 256, keys[256], ids[256], count = n, bad, wrong = 0;
	int vals[256], err;
	bool written[256];
	double t0, t1, t2;
	struct fixture f;

	if (!fixture_make(&f))
		goto out;
	plan(&f, n, keys, vals, ids);
	t0 = now_ms();
	err = bpf_map_update_batch(f.outer, keys, vals, &count, &opts);
	t1 = now_ms();
	if (err)
		fprintf(stderr, "    one batch: %d (no batch for map-in-map here)\n", err);
	for (__u32 i = 0; i < n; i++)
		vals[i] = f.inner[(i + 1) % NINNER], ids[i] = f.inner_id[(i + 1) % NINNER];
	err = maps__outer_update(f.outer, keys, vals, n, written, &bad);
	t2 = now_ms();
	ASSERT_OK(err, "split write");
	for (__u32 i = 0; i < n; i++)
		wrong += !written[i] || slot(&f, keys[i]) != ids[i];
	ASSERT_EQ(wrong, 0, "every slot holds the split write's table");
	printf("# %u outer elements: one batch %.1f ms, split over threads %.1f ms\n", n, t1 - t0,
	       t2 - t1);
out:
	fixture_free(&f);
}

static const struct test tests[] = {
	TEST(test_writes_what_was_asked),
	TEST(test_failure_named),
	TEST(test_one_batch_vs_split),
};

int main(int argc, char **argv)
{
	if (!test__have_root("outer_update", "creates BPF maps"))
		return 0;
	return test__run_all("outer_update", tests, ARRAY_SIZE(tests), argc, argv);
}
