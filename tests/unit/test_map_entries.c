// SPDX-License-Identifier: MIT
/*
 * test_map_entries.c - sluice__map_entries() (#16: what `meshctl status`
 * shows without walking the maps) equals a walk of `services` (services
 * and VIP markers apart) and of `backends` after every kind of write the
 * handle makes: adds (new VIPs and more ports on one VIP), updates, a
 * delete that keeps its VIP's marker and one that takes it, a batch
 * delete, a refused set rolled back (services map full), the sweep of a
 * foreign marker, and a second handle's view counted once from the map.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "lb_load.h"
#include "sluice.h"
#include "test.h"

#define NBE 3

static struct sluice_addr v4(__u32 host)
{
	struct sluice_addr a = { .family = SLUICE_AF_INET };

	a.addr[0] = htonl(host);
	return a;
}

/* VIP 10.96.0.<vip>, port, TCP, NBE backends from base (weight w). */
static struct sluice_service_spec spec_of(__u32 vip, __u16 port, __u32 base, __u16 w,
					  struct sluice_backend_spec *b)
{
	struct sluice_service_spec spec = { .vip = v4(0x0a600000 + vip),
					    .port = port,
					    .proto = IPPROTO_TCP,
					    .backends = b,
					    .nbackends = NBE };

	for (__u32 j = 0; j < NBE; j++)
		b[j] = (struct sluice_backend_spec){ .addr = v4(0x0a010000 + base + j),
						     .port = 8080,
						     .weight = w };
	return spec;
}

struct walk {
	__u64 services, markers, backends;
};

static int walk_svc(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc *svc = value;
	struct walk *w = ctx;

	(void)key;
	if (svc->flags & SLUICE_SVC_F_VIP_MARKER)
		w->markers++;
	else
		w->services++;
	return 0;
}

static int walk_be(const void *key, const void *value, void *ctx)
{
	(void)key;
	(void)value;
	((struct walk *)ctx)->backends++;
	return 0;
}

/* The handle's counts against a walk of both maps. */
static bool same_as_walk(struct sluice *s, const char *what)
{
	struct walk w = { 0 };
	__u64 svcs = 0, marks = 0, bes = 0;
	bool ok;

	if (!ASSERT_OK(sluice__map_entries(s, &svcs, &marks, &bes), what))
		return false;
	sluice__map_walk(sluice__map_fd(s, "services"), "services", sizeof(struct sluice_svc_key),
			 sizeof(struct sluice_svc), walk_svc, &w);
	sluice__map_walk(sluice__map_fd(s, "backends"), "backends", sizeof(__u32),
			 sizeof(struct sluice_backend), walk_be, &w);
	ok = ASSERT_EQ(svcs, w.services, what);
	ok = ASSERT_EQ(marks, w.markers, what) && ok;
	ok = ASSERT_EQ(bes, w.backends, what) && ok;
	if (!ok)
		fprintf(stderr, "    %s: counts %llu/%llu/%llu, walk %llu/%llu/%llu\n", what,
			(unsigned long long)svcs, (unsigned long long)marks,
			(unsigned long long)bes, (unsigned long long)w.services,
			(unsigned long long)w.markers, (unsigned long long)w.backends);
	return ok;
}

static void test_counts_follow_writes(void)
{
	struct sluice_backend_spec b[NBE];
	struct sluice_service_spec spec;
	struct sluice_service_ref refs[3];
	struct sluice_opts opts = {};
	struct sluice *s = NULL, *other = NULL;
	__u64 svcs, marks;
	__u32 done = 0;

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		return;
	same_as_walk(s, "empty");
	/* 4 VIPs x 3 ports: 12 services, 4 markers */
	for (__u32 v = 1; v <= 4; v++)
		for (__u16 p = 80; p < 83; p++) {
			spec = spec_of(v, p, v * 64 + (p - 80) * 8, 1, b);
			ASSERT_OK(sluice__service_set(s, &spec), "add");
		}
	if (same_as_walk(s, "12 added")) {
		sluice__map_entries(s, &svcs, &marks, NULL);
		ASSERT_EQ(svcs, 12, "12 services");
		ASSERT_EQ(marks, 4, "4 markers");
	}
	spec = spec_of(1, 80, 200, 3, b); /* new backends and weights */
	ASSERT_OK(sluice__service_set(s, &spec), "update");
	same_as_walk(s, "updated");
	ASSERT_OK(sluice__service_del(s, &spec.vip, 80, IPPROTO_TCP), "delete, VIP kept");
	same_as_walk(s, "deleted one of three on a VIP");
	for (__u16 p = 81; p < 83; p++)
		ASSERT_OK(sluice__service_del(s, &spec.vip, p, IPPROTO_TCP), "delete");
	same_as_walk(s, "deleted a VIP's last service");
	for (__u16 p = 80; p < 83; p++)
		refs[p - 80] = (struct sluice_service_ref){ .vip = v4(0x0a600002),
							    .port = p,
							    .proto = IPPROTO_TCP };
	refs[2].port = 99; /* absent: skipped */
	ASSERT_OK(sluice__service_del_many(s, refs, 3, &done), "delete many");
	same_as_walk(s, "batch delete");
	sluice__flush_deferred(s);
	same_as_walk(s, "deferred deletes flushed");

	/* a second handle counts from the map, then follows its own writes */
	if (ASSERT_OK(sluice__open(&other, &opts), "second handle")) {
		spec = spec_of(9, 80, 900, 1, b);
		ASSERT_OK(sluice__service_set(other, &spec), "add through the second handle");
		same_as_walk(other, "second handle: counted from the map");
		ASSERT_OK(sluice__service_del(other, &spec.vip, 80, IPPROTO_TCP), "delete there");
		same_as_walk(other, "second handle after its delete");
		sluice__close(other);
	}
	/* a marker written past the handle: the sweep's walk recounts, and
	 * its delete of the unused marker is counted */
	{
		struct sluice_svc_key k = { .family = SLUICE_AF_INET, .proto = IPPROTO_UDP };
		struct sluice_svc v = { .flags = SLUICE_SVC_F_VIP_MARKER };
		struct sluice_sweep sw;

		k.addr[0] = htonl(0x0b0000aa);
		ASSERT_OK(bpf_map_update_elem(sluice__map_fd(s, "services"), &k, &v, BPF_NOEXIST),
			  "foreign marker");
		ASSERT_OK(sluice__sweep(s, &sw), "sweep");
		ASSERT_EQ(sw.markers, 1, "the foreign marker swept");
		same_as_walk(s, "after a sweep");
	}
	sluice__close(s);
}

/* n foreign VIP markers (UDP) straight into the services map. */
static bool fill_services(struct sluice *s, __u32 n)
{
	struct sluice_svc_key *keys = calloc(n, sizeof(*keys));
	struct sluice_svc *vals = calloc(n, sizeof(*vals));
	bool ok = false;

	if (!ASSERT_TRUE(keys && vals, "alloc"))
		goto out;
	for (__u32 i = 0; i < n; i++) {
		keys[i].family = SLUICE_AF_INET;
		keys[i].proto = IPPROTO_UDP;
		keys[i].addr[0] = htonl(0x0b000000 + i);
		vals[i].flags = SLUICE_SVC_F_VIP_MARKER;
	}
	ok = ASSERT_OK(bpf_map_update_batch(sluice__map_fd(s, "services"), keys, vals, &n, NULL),
		       "fill services");
out:
	free(keys);
	free(vals);
	return ok;
}

/* A set refused by a full services map rolls back what it inserted: the
 * counts go back too. */
static void test_counts_after_rollback(void)
{
	struct sluice_backend_spec b[NBE];
	struct sluice_service_spec spec;
	struct sluice_opts opts = {};
	struct sluice *s = NULL;

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		return;
	spec = spec_of(1, 80, 0, 1, b);
	ASSERT_OK(sluice__service_set(s, &spec), "add");
	/* room for one entry: a new VIP's marker goes in, its service not */
	if (!fill_services(s, 2 * SLUICE_MAX_SERVICES - 3))
		goto out;
	same_as_walk(s, "full but one"); /* the first count walks */
	spec = spec_of(2, 80, 64, 1, b);
	ASSERT_NEQ(sluice__service_set(s, &spec), 0, "refused: the map is full");
	same_as_walk(s, "rolled back");
	spec = spec_of(1, 80, 128, 2, b);
	ASSERT_OK(sluice__service_set(s, &spec), "an update still fits");
	same_as_walk(s, "updated in a full map");
out:
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_counts_follow_writes),
	TEST(test_counts_after_rollback),
};

int main(int argc, char **argv)
{
	if (!test__have_root("map_entries", "loads BPF"))
		return 0;
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("map_entries", tests, ARRAY_SIZE(tests), argc, argv);
}
