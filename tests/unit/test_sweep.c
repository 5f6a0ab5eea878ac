// SPDX-License-Identifier: MIT
/*
 * test_sweep.c - sluice__sweep() against the real maps (run as root): the
 * orphans a writer killed mid-update leaves (backends and a Maglev table
 * under a service id no service carries, a VIP marker without services)
 * are planted next to two live services; the sweep removes each kind,
 * counts it, and leaves every entry of the live services byte-identical
 * and the shared empty table of deleted slots alone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb_load.h"
#include "sluice.h"
#include "kfeatures.h"
#include "test.h"

#define DEAD_ID 500  /* a service id no service carries */
#define SHARED_A 600 /* deleted slots sharing one empty table */
#define SHARED_B 601
#define ORPHAN_BE 100000     /* backend ids of the dead service */
#define ORPHAN_BE_FAR 100002 /* a backend whose service id is out of range */

static struct sluice_addr v4(__u32 host)
{
	struct sluice_addr a = { .family = SLUICE_AF_INET };

	a.addr[0] = htonl(host);
	return a;
}

static struct sluice_svc_key key4(__u32 host, __u16 port, __u8 proto)
{
	struct sluice_svc_key k = { .port = htons(port), .proto = proto, .family = SLUICE_AF_INET };

	k.addr[0] = htonl(host);
	return k;
}

/* Two live services: 10.96.0.1:80/tcp (3 backends), 10.96.0.2:53/udp (2). */
static bool live_services(struct sluice *s)
{
	struct sluice_backend_spec a[3], b[2];
	struct sluice_service_spec specs[2] = {
		{ .vip = v4(0x0a600001),
		  .port = 80,
		  .proto = IPPROTO_TCP,
		  .backends = a,
		  .nbackends = 3 },
		{ .vip = v4(0x0a600002),
		  .port = 53,
		  .proto = IPPROTO_UDP,
		  .backends = b,
		  .nbackends = 2 },
	};

	for (__u32 i = 0; i < 3; i++)
		a[i] = (struct sluice_backend_spec){ .addr = v4(0x0a000100 + i + 1),
						     .port = 8080,
						     .weight = 1 };
	for (__u32 i = 0; i < 2; i++)
		b[i] = (struct sluice_backend_spec){ .addr = v4(0x0a000200 + i + 1),
						     .port = 53,
						     .weight = i + 1 };
	return ASSERT_OK(sluice__service_set_many(s, specs, 2, NULL, NULL), sluice__errmsg());
}

/* An inner table like the library's; slot 0 names two backends if used. */
static int inner_table(bool used)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	struct sluice_maglev_pair pair = { { ORPHAN_BE, ORPHAN_BE + 1 } };
	__u32 zero = 0;
	int fd;

	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sluice_maglev", sizeof(__u32), sizeof(pair),
			    SLUICE_MAGLEV_ELEMS_OF(SLUICE_MAGLEV_M_MIN), &opts);
	if (fd >= 0 && used && bpf_map_update_elem(fd, &zero, &pair, BPF_ANY)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The orphans of an interrupted update, and the shared empty table
 * sluice__service_del_many() leaves in the slots of deleted services. */
static bool plant_orphans(struct sluice *s)
{
	struct sluice_svc marker = { .flags = SLUICE_SVC_F_VIP_MARKER };
	struct sluice_svc_key mkey = key4(0x0a600009, 0, IPPROTO_TCP);
	struct sluice_backend be = { .port = htons(80), .family = SLUICE_AF_INET, .weight = 1 };
	int bfd = sluice__map_fd(s, "backends"), mfd = sluice__map_fd(s, "maglev");
	__u32 id, slot;
	int used, empty;
	bool ok = true;

	be.addr[0] = htonl(0x0a000909);
	be.svc_id = DEAD_ID;
	for (id = ORPHAN_BE; id < ORPHAN_BE + 2; id++)
		ok &= ASSERT_OK(bpf_map_update_elem(bfd, &id, &be, BPF_ANY), "orphan backend");
	be.svc_id = SLUICE_MAX_SERVICES + 5;
	id = ORPHAN_BE_FAR;
	ok &= ASSERT_OK(bpf_map_update_elem(bfd, &id, &be, BPF_ANY), "out-of-range backend");
	used = inner_table(true);
	empty = inner_table(false);
	if (!ASSERT_GE(used, 0, "used table") || !ASSERT_GE(empty, 0, "empty table"))
		return false;
	slot = DEAD_ID;
	ok &= ASSERT_OK(bpf_map_update_elem(mfd, &slot, &used, BPF_ANY), "orphan table");
	slot = SHARED_A;
	ok &= ASSERT_OK(bpf_map_update_elem(mfd, &slot, &empty, BPF_ANY), "shared empty table");
	slot = SHARED_B;
	ok &= ASSERT_OK(bpf_map_update_elem(mfd, &slot, &empty, BPF_ANY), "shared empty table");
	close(used);
	close(empty);
	ok &= ASSERT_OK(bpf_map_update_elem(sluice__map_fd(s, "services"), &mkey, &marker,
					    BPF_NOEXIST),
			"orphan marker");
	return ok;
}

/* Every entry of a map, sorted: key/value records back to back. */
struct dump {
	char *buf;
	__u32 n;
	size_t rec;
};

static int rec_cmp_size;
static int rec_cmp(const void *a, const void *b)
{
	return memcmp(a, b, rec_cmp_size);
}

static void dump__take(struct dump *d, int fd, size_t ksz, size_t vsz)
{
	char key[64], next[64];
	void *prev = NULL;

	d->rec = ksz + vsz;
	d->n = 0;
	d->buf = calloc(SLUICE_MAX_SERVICES * 4, d->rec);
	while (d->buf && !bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, ksz);
		prev = key;
		memcpy(d->buf + d->n * d->rec, key, ksz);
		if (bpf_map_lookup_elem(fd, key, d->buf + d->n * d->rec + ksz))
			continue;
		d->n++;
	}
	rec_cmp_size = d->rec;
	if (d->buf)
		qsort(d->buf, d->n, d->rec, rec_cmp);
}

/* The live services' view: services map, backends map, maglev slots. */
struct view {
	struct dump svc, be;
	__u32 slot[SLUICE_MAX_SERVICES];
};

static void view__take(struct sluice *s, struct view *v)
{
	int mfd = sluice__map_fd(s, "maglev");

	dump__take(&v->svc, sluice__map_fd(s, "services"), sizeof(struct sluice_svc_key),
		   sizeof(struct sluice_svc));
	dump__take(&v->be, sluice__map_fd(s, "backends"), sizeof(__u32),
		   sizeof(struct sluice_backend));
	for (__u32 i = 0; i < SLUICE_MAX_SERVICES; i++)
		if (bpf_map_lookup_elem(mfd, &i, &v->slot[i]))
			v->slot[i] = 0;
}

static void view__free(struct view *v)
{
	free(v->svc.buf);
	free(v->be.buf);
}

static bool has_backend(const struct view *v, __u32 id)
{
	for (__u32 i = 0; i < v->be.n; i++)
		if (!memcmp(v->be.buf + i * v->be.rec, &id, sizeof(id)))
			return true;
	return false;
}

/* Whether the table in svc_id's slot names any backend (no table: no). */
static bool slot_names_backends(struct sluice *s, __u32 svc_id)
{
	struct sluice_maglev_pair pair;
	__u32 inner_id, k;
	bool used = false;
	int fd;

	if (bpf_map_lookup_elem(sluice__map_fd(s, "maglev"), &svc_id, &inner_id))
		return false;
	fd = bpf_map_get_fd_by_id(inner_id);
	if (fd < 0)
		return false;
	for (k = 0; k < SLUICE_MAGLEV_ELEMS_MAX && !used; k++) {
		if (bpf_map_lookup_elem(fd, &k, &pair))
			break; /* past the table's size */
		used = pair.id[0] || pair.id[1];
	}
	close(fd);
	return used;
}

static char pin_dir[64];

/* The orphans are planted by one handle, which then goes (the writer
 * that was killed); the sweep runs in a second handle on the same pins.
 * indexed: like meshd's start, a reconcile (a set of the same live
 * services) reads the handle's index before the sweep, which then finds
 * the orphans there; else the sweep walks `backends` itself. */
static void sweep_orphans(bool indexed)
{
	static struct view before, planted, after;
	struct sluice_sweep sw = { 0 };
	struct sluice_opts opts = { .pin_dir = pin_dir };
	__u64 nsvc, nmark, nbe;
	struct sluice_features f;
	struct sluice *s = NULL;

	sluice__features(&f);
	if (!f.has[SLUICE_FEAT_OUTER_READ_FAST]) {
		/* 6.1 under qemu: still running after 30 min */
		test__skip("each read of a maglev slot waits for an RCU grace period on this "
			   "kernel, and this case reads all 32768 five times; the sweep skips "
			   "tables here, which test_sweep_old_kernel checks");
		return;
	}
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/test-sweep-%d", (int)getpid());
	setenv("SLUICE_SWEEP_TABLES", "1", 1); /* the 6.7+ path on every kernel */
	if (!ASSERT_OK(sluice__open(&s, &opts), sluice__errmsg()))
		goto out;
	if (!live_services(s))
		goto out;
	view__take(s, &before);
	if (!plant_orphans(s))
		goto out;
	view__take(s, &planted);
	ASSERT_EQ(planted.be.n, before.be.n + 3, "three orphan backends planted");
	ASSERT_TRUE(slot_names_backends(s, DEAD_ID), "the orphan table names backends");
	sluice__close(s);
	s = NULL;
	if (!ASSERT_OK(sluice__open(&s, &opts), sluice__errmsg()))
		goto out;
	if (indexed && !live_services(s))
		goto out;
	if (!ASSERT_OK(sluice__sweep(s, &sw), sluice__errmsg()))
		goto out;
	ASSERT_EQ(sw.backends, 3, "backends of dead and out-of-range service ids");
	ASSERT_EQ(sw.tables, 1, "the dead id's table");
	ASSERT_EQ(sw.markers, 1, "the marker of a VIP without services");
	view__take(s, &after);
	ASSERT_FALSE(has_backend(&after, ORPHAN_BE) || has_backend(&after, ORPHAN_BE + 1) ||
			     has_backend(&after, ORPHAN_BE_FAR),
		     "orphan backends gone");
	ASSERT_FALSE(slot_names_backends(s, DEAD_ID), "the dead id's table names no backend");
	/* the live services exactly as they were: entries, backends, tables */
	if (ASSERT_EQ(after.svc.n, before.svc.n, "services entries"))
		ASSERT_MEM_EQ(after.svc.buf, before.svc.buf, before.svc.n * before.svc.rec,
			      "services map as before the orphans");
	if (ASSERT_EQ(after.be.n, before.be.n, "backends entries"))
		ASSERT_MEM_EQ(after.be.buf, before.be.buf, before.be.n * before.be.rec,
			      "backends map as before the orphans");
	for (__u32 i = 0; i < SLUICE_MAX_SERVICES; i++)
		if (i != DEAD_ID && after.slot[i] != planted.slot[i])
			TEST_FAIL("maglev slot %u: table %u became %u", i, planted.slot[i],
				  after.slot[i]);
	/* what the handle counts (from its index when it holds one) is what
	 * the map holds: the swept entries are forgotten */
	if (ASSERT_OK(sluice__map_entries(s, &nsvc, &nmark, &nbe), sluice__errmsg()))
		ASSERT_EQ(nbe, (__u64)before.be.n, "backends the handle counts after the sweep");
	/* nothing left: a second sweep finds nothing */
	if (ASSERT_OK(sluice__sweep(s, &sw), "second sweep"))
		ASSERT_EQ(sw.backends + sw.tables + sw.markers, 0, "nothing left to sweep");
	/* the index forgot what was swept: the freed ids are handed out
	 * again and the set's backends are what the map holds */
	if (indexed && live_services(s)) {
		view__free(&after);
		view__take(s, &after);
		if (ASSERT_EQ(after.be.n, before.be.n, "backends entries after a set"))
			ASSERT_MEM_EQ(after.be.buf, before.be.buf, before.be.n * before.be.rec,
				      "backends map unchanged by a set after the sweep");
	}
out:
	unsetenv("SLUICE_SWEEP_TABLES");
	view__free(&before);
	view__free(&planted);
	view__free(&after);
	sluice__close(s);
	if (pin_dir[0])
		ASSERT_OK(sluice__unpin(pin_dir), "removing the pin dir");
	pin_dir[0] = 0;
}

static void test_sweep_orphans(void)
{
	sweep_orphans(true);
}

static void test_sweep_orphans_walk(void)
{
	sweep_orphans(false);
}

/* Before 6.7 the Maglev slots are not read (each read waits for an RCU
 * grace period): backends and markers are swept, the dead id's table is
 * left and the result says so. */
static void test_sweep_old_kernel(void)
{
	struct sluice_sweep sw = { 0 };
	struct sluice_opts opts = {};
	struct sluice *s = NULL;

	setenv("SLUICE_SWEEP_TABLES", "0", 1);
	if (!ASSERT_OK(sluice__open(&s, &opts), sluice__errmsg()))
		goto out;
	/* planted first: the set's index (read then) holds them */
	if (!plant_orphans(s) || !live_services(s))
		goto out;
	if (ASSERT_OK(sluice__sweep(s, &sw), sluice__errmsg())) {
		ASSERT_TRUE(sw.tables_skipped, "tables skipped");
		ASSERT_EQ(sw.tables, 0, "no table swept");
		ASSERT_EQ(sw.backends, 3, "orphan backends still swept");
		ASSERT_EQ(sw.markers, 1, "orphan marker still swept");
		ASSERT_TRUE(slot_names_backends(s, DEAD_ID), "the dead id's table is left");
	}
out:
	unsetenv("SLUICE_SWEEP_TABLES");
	sluice__close(s);
}

/* Without orphans the sweep removes nothing, also after deletes. */
static void test_sweep_clean(void)
{
	struct sluice_service_ref ref = { .vip = v4(0x0a600002), .port = 53, .proto = IPPROTO_UDP };
	struct sluice_sweep sw = { 1, 1, 1, false };
	struct sluice_opts opts = {};
	struct sluice *s = NULL;

	if (!ASSERT_OK(sluice__open(&s, &opts), sluice__errmsg()))
		return;
	if (live_services(s) &&
	    ASSERT_OK(sluice__service_del_many(s, &ref, 1, NULL), sluice__errmsg()) &&
	    ASSERT_OK(sluice__sweep(s, &sw), sluice__errmsg()))
		ASSERT_EQ(sw.backends + sw.tables + sw.markers, 0, "nothing to sweep");
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_sweep_orphans),
	TEST(test_sweep_orphans_walk),
	TEST(test_sweep_old_kernel),
	TEST(test_sweep_clean),
};

int main(int argc, char **argv)
{
	if (!test__have_root("sweep", "loads BPF"))
		return 0;
	/* no program attached or run but where a test says so (lb_load.h) */
	test__lb_load = TEST_LB_NO_PROGS;
	return test__run_all("sweep", tests, ARRAY_SIZE(tests), argc, argv);
}
