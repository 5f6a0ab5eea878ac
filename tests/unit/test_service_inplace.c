// SPDX-License-Identifier: MIT
/*
 * test_service_inplace.c - in-place Maglev updates (#16) against the real
 * datapath object (run as root): a change writes only the slots that
 * differ (~1/N of them) into the same table; a failed change puts them
 * back byte for byte; a removed backend stays in `backends` until
 * sluice__flush_deferred() and its id is not reused before; a restarted
 * process finds the tables through `maglev_ids` and changes them in place
 * correctly; and under traffic (BPF_PROG_TEST_RUN from another thread) no
 * packet ever goes to a removed backend and none is dropped as no_backend.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb_load.h"
#include "sluice.h"
#include "test.h"

/* Buffers hold the largest table; tables are sized by need (#16): tab_m
 * is the size of the table table__read() read last. */
#define M SLUICE_MAGLEV_M_MAX
#define TABLE_BYTES (SLUICE_MAGLEV_ELEMS_MAX * sizeof(struct sluice_maglev_pair))
static __u32 tab_m;
#define VIP4 0x0a600001           /* 10.96.0.1 */
#define BE4(i) (0x0a000100 + (i)) /* 10.0.1.i */

static struct sluice *lib__open(const char *pin_dir)
{
	struct sluice_opts opts = { .pin_dir = pin_dir };
	struct sluice *s = NULL;
	int err;

	err = sluice__open(&s, &opts);
	if (!ASSERT_OK(err, "sluice__open"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	return err ? NULL : s;
}

/* A load with xdp_lb and tc_lb (main() leaves them out): for the case
 * that runs a program. */
static struct sluice *lib__open_progs(void)
{
	unsigned int saved = test__lb_load;
	struct sluice *s;

	test__lb_load &= ~TEST_LB_NO_PROGS;
	s = lib__open(NULL);
	test__lb_load = saved;
	return s;
}

static struct sluice_addr v4(__u32 host)
{
	struct sluice_addr a = { .family = SLUICE_AF_INET };

	a.addr[0] = htonl(host);
	return a;
}

/* 10.96.0.1:80/tcp with backends 10.0.1.(first .. first + n - 1). */
static void spec__init(struct sluice_service_spec *spec, struct sluice_backend_spec *b, __u32 first,
		       __u32 n)
{
	memset(spec, 0, sizeof(*spec));
	spec->vip = v4(VIP4);
	spec->port = 80;
	spec->proto = IPPROTO_TCP;
	spec->nbackends = n;
	spec->backends = b;
	for (__u32 i = 0; i < n; i++)
		b[i] = (struct sluice_backend_spec){ .addr = v4(BE4(first + i)),
						     .port = 8080,
						     .weight = 1 };
}

/* The table in maglev[svc_id] copied into slots (M + 1); its map id, 0:
 * none. Read through the outer map on purpose: not the library's index. */
static __u32 table__read(struct sluice *s, __u32 svc_id, __u32 *slots)
{
	struct bpf_map_info info = {};
	__u32 inner = 0, len = sizeof(info);
	size_t bytes;
	void *mem;
	int fd;

	memset(slots, 0, TABLE_BYTES);
	if (bpf_map_lookup_elem(sluice__map_fd(s, "maglev"), &svc_id, &inner))
		return 0;
	fd = bpf_map_get_fd_by_id(inner);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || !info.max_entries ||
	    info.max_entries > SLUICE_MAGLEV_ELEMS_MAX) {
		close(fd);
		return 0;
	}
	tab_m = 2 * info.max_entries - 1;
	bytes = info.max_entries * sizeof(struct sluice_maglev_pair);
	mem = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (mem == MAP_FAILED)
		return 0;
	memcpy(slots, mem, bytes);
	munmap(mem, bytes);
	return inner;
}

/* The id backends[] holds for 10.0.1.i:8080 of svc_id, 0: none. */
static __u32 backend__id(struct sluice *s, __u32 svc_id, __u32 i)
{
	int fd = sluice__map_fd(s, "backends");
	struct sluice_backend be;
	__u32 key, next, *prev = NULL, found = 0;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (!bpf_map_lookup_elem(fd, &key, &be) && be.svc_id == svc_id &&
		    be.addr[0] == htonl(BE4(i)) && (!found || key > found))
			found = key; /* the newest of equal entries */
	}
	return found;
}

/* Every slot names ids[] of the reference table of spec. */
static bool table__matches(const __u32 *slots, const struct sluice_service_spec *spec,
			   const __u32 *ids)
{
	static __u32 want[M];
	__u32 bad = 0, m = maglev__size(spec->nbackends);

	if (!ASSERT_EQ(tab_m, m, "table size by the sizing rule"))
		return false;
	if (!ASSERT_OK(maglev__build(spec->backends, spec->nbackends, m, want), "reference"))
		return false;
	for (__u32 i = 0; i < m; i++)
		bad += slots[i] != ids[want[i]];
	return ASSERT_EQ(bad, 0, "slots differing from the reference Maglev table");
}

/* Removing 1 of 10 backends rewrites its ~M/10 slots and few others, in
 * the same table; adding one back takes ~M/11. */
static void test_slot_diff_minimal(void)
{
	static __u32 before[M + 1], after[M + 1];
	struct sluice_backend_spec b[11];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open(NULL);
	__u32 id1, id2, ids[11], removed, owned = 0, changed = 0, stale = 0;

	if (!s)
		return;
	spec__init(&spec, b, 1, 10);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 10"))
		goto out;
	id1 = table__read(s, 1, before);
	removed = backend__id(s, 1, 10);
	spec.nbackends = 9;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 9"))
		goto out;
	id2 = table__read(s, 1, after);
	ASSERT_NEQ(id1, 0, "table before");
	ASSERT_EQ(id2, id1, "same table: changed in place");
	ASSERT_EQ(tab_m, SLUICE_MAGLEV_M_MIN, "10 and 9 backends: the smallest table");
	for (__u32 i = 0; i < tab_m; i++) {
		owned += before[i] == removed;
		changed += before[i] != after[i];
		stale += after[i] == removed;
	}
	ASSERT_EQ(stale, 0, "no slot names the removed backend");
	ASSERT_GE(changed, owned, "every slot of the removed backend rewritten");
	ASSERT_LE(changed, tab_m / 10 + tab_m / 20, "about 1/N of the slots written");
	fprintf(stderr, "    remove 1 of 10: %u slots changed of %u (removed owned %u)\n", changed,
		tab_m, owned);
	for (__u32 i = 0; i < 9; i++)
		ids[i] = backend__id(s, 1, i + 1);
	table__matches(after, &spec, ids);
	/* one joins: ~1/11 move to it */
	spec__init(&spec, b, 1, 11);
	b[9].addr = v4(BE4(20));
	b[10].addr = v4(BE4(21));
	spec.nbackends = 10;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 10 again"))
		goto out;
	ASSERT_EQ(table__read(s, 1, before), id1, "still the same table");
	changed = 0;
	for (__u32 i = 0; i < tab_m; i++)
		changed += before[i] != after[i];
	ASSERT_LE(changed, tab_m / 10 + tab_m / 20, "about 1/N of the slots written on an add");
	for (__u32 i = 0; i < 9; i++)
		ids[i] = backend__id(s, 1, i + 1);
	ids[9] = backend__id(s, 1, 20);
	table__matches(before, &spec, ids);
out:
	sluice__close(s);
}

static bool fill_services(struct sluice *s, __u32 n, __u32 base)
{
	struct sluice_svc_key *keys = calloc(n, sizeof(*keys));
	struct sluice_svc *vals = calloc(n, sizeof(*vals));
	bool ok = false;

	if (!ASSERT_TRUE(keys && vals, "alloc"))
		goto out;
	for (__u32 i = 0; i < n; i++) {
		keys[i] = (struct sluice_svc_key){ .proto = IPPROTO_UDP, .family = SLUICE_AF_INET };
		keys[i].addr[0] = htonl(base + i);
		vals[i].flags = SLUICE_SVC_F_VIP_MARKER;
	}
	ok = ASSERT_OK(bpf_map_update_batch(sluice__map_fd(s, "services"), keys, vals, &n, NULL),
		       "fill services");
out:
	free(keys);
	free(vals);
	return ok;
}

/* A group [existing service changed in place, new service] that fails at
 * the new service's entry (services map full) after the in-place slot
 * writes: the table is put back byte for byte, the backends too, and no
 * delete is left pending. */
static void test_rollback_inplace(void)
{
	static __u32 before[M + 1], after[M + 1];
	struct sluice_backend_spec b[2][6];
	struct sluice_service_spec specs[2];
	struct sluice *s = lib__open(NULL);
	__u32 id1, applied = 9, failed = 9, be_before, be_after;
	__u32 n = 2 * SLUICE_MAX_SERVICES - 3; /* A's entry + marker, room for 1 */

	if (!s)
		return;
	spec__init(&specs[0], b[0], 1, 6);
	if (!ASSERT_OK(sluice__service_set(s, &specs[0]), "set A"))
		goto out;
	id1 = table__read(s, 1, before);
	be_before = backend__id(s, 1, 6);
	if (!fill_services(s, n, 0x0b000000))
		goto out;
	specs[0].nbackends = 5;            /* 10.0.1.6 leaves A */
	spec__init(&specs[1], b[1], 7, 3); /* B: new, its entry does not fit */
	specs[1].vip = v4(VIP4 + 1);
	ASSERT_NEQ(sluice__service_set_many(s, specs, 2, &applied, &failed), 0,
		   "group fails on the new service's entry");
	ASSERT_EQ(applied, 0, "nothing applied");
	ASSERT_EQ(failed, 1, "failed names the new service");
	ASSERT_EQ(table__read(s, 1, after), id1, "A keeps its table");
	ASSERT_TRUE(!memcmp(before, after, sizeof(before)), "A's slots byte-identical");
	be_after = backend__id(s, 1, 6);
	ASSERT_EQ(be_after, be_before, "A's leaving backend still there");
	ASSERT_EQ(sluice__deferred_count(s), 0, "no delete pending after a rollback");
	ASSERT_EQ(backend__id(s, 2, 7), 0, "B's backends gone");
out:
	sluice__close(s);
}

/* Tables sized by need (#16): 10 -> 11 backends outgrows the one-page
 * table (1021 slots) and swaps in a 2039-slot one, 11 -> 10 swaps back
 * to 1021; within a size the table is changed in place. */
static void test_grow_swap(void)
{
	static __u32 slots[M + 1];
	struct sluice_backend_spec b[12];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open(NULL);
	__u32 id10, id11, id12, id10b, ids[12];

	if (!s)
		return;
	spec__init(&spec, b, 1, 10);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 10"))
		goto out;
	id10 = table__read(s, 1, slots);
	ASSERT_EQ(tab_m, SLUICE_MAGLEV_M_MIN, "10 backends: 1021 slots");
	spec__init(&spec, b, 1, 11);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 11"))
		goto out;
	id11 = table__read(s, 1, slots);
	ASSERT_NEQ(id11, id10, "11 backends: a new table swapped in");
	ASSERT_EQ(tab_m, 2039, "11 backends: 2039 slots");
	for (__u32 i = 0; i < 11; i++)
		ids[i] = backend__id(s, 1, i + 1);
	table__matches(slots, &spec, ids);
	spec__init(&spec, b, 1, 12);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 12"))
		goto out;
	id12 = table__read(s, 1, slots);
	ASSERT_EQ(id12, id11, "12 backends: same size, changed in place");
	spec__init(&spec, b, 1, 10);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "back to 10"))
		goto out;
	id10b = table__read(s, 1, slots);
	ASSERT_NEQ(id10b, id11, "10 again: swapped to a smaller table");
	ASSERT_EQ(tab_m, SLUICE_MAGLEV_M_MIN, "10 again: 1021 slots");
	for (__u32 i = 0; i < 10; i++)
		ids[i] = backend__id(s, 1, i + 1);
	table__matches(slots, &spec, ids);
out:
	sluice__close(s);
}

/* A group [existing service growing past its table, new service] that
 * fails at the new service's entry: the grown table was never swapped
 * in or is swapped back; the old table, its size and bytes stay. */
static void test_rollback_grow(void)
{
	static __u32 before[M + 1], after[M + 1];
	struct sluice_backend_spec b[2][12];
	struct sluice_service_spec specs[2];
	struct sluice *s = lib__open(NULL);
	__u32 id1, applied = 9, failed = 9, m_before;
	__u32 n = 2 * SLUICE_MAX_SERVICES - 3; /* A's entry + marker, room for 1 */

	if (!s)
		return;
	spec__init(&specs[0], b[0], 1, 6);
	if (!ASSERT_OK(sluice__service_set(s, &specs[0]), "set A"))
		goto out;
	id1 = table__read(s, 1, before);
	m_before = tab_m;
	if (!fill_services(s, n, 0x0b000000))
		goto out;
	spec__init(&specs[0], b[0], 1, 12); /* A grows past 1021 slots */
	spec__init(&specs[1], b[1], 20, 3); /* B: new, its entry does not fit */
	specs[1].vip = v4(VIP4 + 1);
	ASSERT_NEQ(sluice__service_set_many(s, specs, 2, &applied, &failed), 0,
		   "group fails on the new service's entry");
	ASSERT_EQ(applied, 0, "nothing applied");
	ASSERT_EQ(table__read(s, 1, after), id1, "A keeps its table");
	ASSERT_EQ(tab_m, m_before, "A keeps its table's size");
	ASSERT_TRUE(!memcmp(before, after, sizeof(before)), "A's slots byte-identical");
	ASSERT_EQ(backend__id(s, 1, 12), 0, "A's new backends gone");
	ASSERT_EQ(backend__id(s, 2, 20), 0, "B's backends gone");
out:
	sluice__close(s);
}

/* A removed backend: kept in `backends` (a packet may hold its id) but
 * not listed, not reused by a new backend, deleted by the flush. */
static void test_deferred_delete(void)
{
	struct sluice_service_info *info = calloc(1, sizeof(*info));
	struct sluice_backend_spec b[4];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open(NULL);
	struct sluice_backend be;
	__u32 gone, again, bfd;

	if (!s || !info)
		goto out;
	bfd = sluice__map_fd(s, "backends");
	spec__init(&spec, b, 1, 4);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 4"))
		goto out;
	gone = backend__id(s, 1, 4);
	spec.nbackends = 3;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 3"))
		goto out;
	ASSERT_OK(bpf_map_lookup_elem(bfd, &gone, &be), "removed entry still in backends");
	ASSERT_EQ(sluice__deferred_count(s), 1, "one delete deferred");
	ASSERT_OK(sluice__service_get(s, &spec.vip, 80, IPPROTO_TCP, info), "get");
	ASSERT_EQ(info->nbackends, 3, "service_get lists the live set only");
	/* the same address back, and another: fresh ids, not the pending one */
	spec__init(&spec, b, 1, 4);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 4 again"))
		goto out;
	again = backend__id(s, 1, 4);
	ASSERT_NEQ(again, 0, "re-added backend present");
	ASSERT_NEQ(again, gone, "pending id not reused before the flush");
	ASSERT_EQ(sluice__flush_deferred(s), 1, "flush deletes it");
	ASSERT_EQ(bpf_map_lookup_elem(bfd, &gone, &be), -ENOENT, "removed entry deleted");
	ASSERT_OK(bpf_map_lookup_elem(bfd, &again, &be), "re-added entry kept");
	ASSERT_EQ(sluice__deferred_count(s), 0, "nothing pending");
	/* after the flush the id is free again */
	b[0].addr = v4(BE4(30));
	if (!ASSERT_OK(sluice__service_set(s, &spec), "replace .1 by .30"))
		goto out;
	ASSERT_EQ(backend__id(s, 1, 30), gone, "lowest free id reused after the flush");
	ASSERT_OK(sluice__service_get(s, &spec.vip, 80, IPPROTO_TCP, info), "get");
	ASSERT_EQ(info->nbackends, 4, "four live backends");
out:
	free(info);
	sluice__close(s);
}

/* A restarted process (new handle on the pins) finds the table through
 * maglev_ids and changes it in place, correctly; close flushes. */
static void test_restart_index(void)
{
	static __u32 slots[M + 1];
	struct sluice_backend_spec b[6];
	struct sluice_service_spec spec;
	struct sluice *s;
	char pin[64];
	__u32 id1, ix = 0, key = 1, gone, ids[5];

	snprintf(pin, sizeof(pin), "/sys/fs/bpf/test_inplace_%d", (int)getpid());
	sluice__unpin(pin);
	s = lib__open(pin);
	if (!s)
		return;
	spec__init(&spec, b, 1, 6);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 6"))
		goto out;
	id1 = table__read(s, 1, slots);
	ASSERT_OK(bpf_map_lookup_elem(sluice__map_fd(s, "maglev_ids"), &key, &ix), "maglev_ids");
	ASSERT_EQ(ix, id1, "maglev_ids names the live table");
	gone = backend__id(s, 1, 6);
	sluice__close(s);
	s = lib__open(pin); /* restart */
	if (!s)
		goto unpin;
	spec.nbackends = 5;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 5 after the restart"))
		goto out;
	ASSERT_EQ(table__read(s, 1, slots), id1, "changed in place after the restart");
	for (__u32 i = 0; i < 5; i++)
		ids[i] = backend__id(s, 1, i + 1);
	table__matches(slots, &spec, ids);
	for (__u32 i = 0; i < M; i++)
		if (slots[i] == gone && !ASSERT_NEQ(slots[i], gone, "no slot names the removed"))
			break;
	/* a stale index entry falls back to the outer lookup, still in place */
	ix = 0;
	ASSERT_OK(bpf_map_update_elem(sluice__map_fd(s, "maglev_ids"), &key, &ix, BPF_ANY),
		  "forget the index entry");
	sluice__close(s);
	s = lib__open(pin);
	if (!s)
		goto unpin;
	spec.nbackends = 4;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 4 without an index entry"))
		goto out;
	ASSERT_EQ(table__read(s, 1, slots), id1, "found by the outer lookup, in place");
	table__matches(slots, &spec, ids);
	ASSERT_OK(bpf_map_lookup_elem(sluice__map_fd(s, "maglev_ids"), &key, &ix), "maglev_ids");
	ASSERT_EQ(ix, id1, "index entry written again");
	ASSERT_EQ(sluice__deferred_count(s), 1, "the removed backend pending");
	sluice__close(s); /* flushes */
	s = lib__open(pin);
	if (!s)
		goto unpin;
	ASSERT_EQ(backend__id(s, 1, 5), 0, "close flushed the deferred delete");
out:
	sluice__close(s);
unpin:
	ASSERT_OK(sluice__unpin(pin), "unpin");
}

/* The handle plans from what it keeps (#16), not from the maps: after
 * every one of many random changes (sets with random subsets, weights and
 * drains, deletes and re-creates, flushes) each service's live backends
 * and table are exactly what its last spec says, and no two live
 * backends share an id. */
#define RAND_SVCS 4
#define RAND_ADDRS 12
#define RAND_OPS 150

static bool rand__check(struct sluice *s, const struct sluice_service_spec *spec, bool present)
{
	struct sluice_service_info *info = calloc(1, sizeof(*info));
	static __u32 slots[M + 1];
	__u32 ids[RAND_ADDRS], bad = 0;
	struct sluice_backend be;
	bool ok = false;

	if (!info)
		return false;
	if (!present) {
		ok = ASSERT_EQ(sluice__service_get(s, &spec->vip, 80, IPPROTO_TCP, info), -ENOENT,
			       "deleted service absent");
		goto out;
	}
	if (!ASSERT_OK(sluice__service_get(s, &spec->vip, 80, IPPROTO_TCP, info), "get"))
		goto out;
	if (!ASSERT_EQ(info->nbackends, spec->nbackends, "live backends = the spec's"))
		goto out;
	for (__u32 i = 0; i < spec->nbackends; i++) {
		ids[i] = 0;
		for (__u32 j = 0; j < info->nbackends; j++)
			if (!sluice__backend_get(s, info->backend_ids[j], &be, NULL) &&
			    be.addr[0] == spec->backends[i].addr.addr[0] &&
			    be.weight == spec->backends[i].weight)
				ids[i] = info->backend_ids[j];
		bad += !ids[i];
	}
	if (!ASSERT_EQ(bad, 0, "every spec backend live with its weight"))
		goto out;
	if (spec->nbackends && table__read(s, info->svc.svc_id, slots))
		ok = table__matches(slots, spec, ids);
	else
		ok = true;
out:
	free(info);
	return ok;
}

static void test_cached_plan_matches_maps(void)
{
	struct sluice_backend_spec b[RAND_SVCS][RAND_ADDRS];
	struct sluice_service_spec spec[RAND_SVCS];
	bool present[RAND_SVCS] = {};
	struct sluice *s = lib__open(NULL);
	unsigned int seed = 16;
	int op = 0;

	if (!s)
		return;
	for (int k = 0; k < RAND_SVCS; k++) {
		spec__init(&spec[k], b[k], 1 + 20 * k, 0);
		spec[k].vip = v4(VIP4 + k);
	}
	for (op = 0; op < RAND_OPS; op++) {
		int k = rand_r(&seed) % RAND_SVCS, r = rand_r(&seed) % 10;
		__u32 n = 0;

		if (r == 0 && present[k]) {
			if (!ASSERT_OK(sluice__service_del(s, &spec[k].vip, 80, IPPROTO_TCP),
				       "del"))
				break;
			present[k] = false;
		} else if (r == 1) {
			sluice__flush_deferred(s);
		} else {
			for (__u32 a = 0; a < RAND_ADDRS; a++) {
				if (rand_r(&seed) % 2)
					continue;
				b[k][n] = (struct sluice_backend_spec){
					.addr = v4(BE4(1 + 20 * k + a)),
					.port = 8080,
					.weight = (__u16)(rand_r(&seed) % 4), /* 0: drained */
				};
				n++;
			}
			spec[k].nbackends = n;
			if (!ASSERT_OK(sluice__service_set(s, &spec[k]), "random set"))
				break;
			present[k] = true;
		}
		for (int j = 0; j < RAND_SVCS; j++)
			if (!rand__check(s, &spec[j], present[j]))
				goto out;
	}
out:
	ASSERT_EQ(op, RAND_OPS, "every random change checked");
	sluice__close(s);
}

/* --- correctness under traffic --- */

#define TRAFFIC_SETS 6 /* backend sets {k+1 .. k+6}, k = 0..5, rotating */
#define TRAFFIC_CHANGES 300

struct traffic {
	struct sluice *s;
	volatile __u32 gen; /* odd while a change is being written */
	volatile bool stop;
	__u32 packets, wrong, bad_verdict;
};

/* The set of generation g: 10.0.1.(k+1 .. k+6), k = (g / 2) % TRAFFIC_SETS. */
static bool traffic__in_set(__u32 g, __u32 host)
{
	__u32 k = (g / 2) % TRAFFIC_SETS;

	return host >= BE4(k + 1) && host <= BE4(k + 6);
}

static void pkt__syn(__u8 *buf, __u32 client)
{
	static const __u8 eth[14] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00 };
	__u32 saddr = htonl(client), daddr = htonl(VIP4);
	__u16 sport = htons(40000 + (client & 0x3fff)), dport = htons(80);

	memset(buf, 0, 54);
	memcpy(buf, eth, sizeof(eth));
	buf[14] = 0x45;
	buf[17] = 40;
	buf[22] = 64;
	buf[23] = IPPROTO_TCP;
	memcpy(buf + 26, &saddr, 4);
	memcpy(buf + 30, &daddr, 4);
	memcpy(buf + 34, &sport, 2);
	memcpy(buf + 36, &dport, 2);
	buf[46] = 5 << 4;
	buf[47] = 0x02; /* SYN: a new flow, a Maglev pick */
	buf[48] = 0xff;
}

/* New flows until stopped; each DNAT target must belong to a set live at
 * some point between just before and just after the packet. */
static void *traffic__send(void *arg)
{
	struct traffic *tr = arg;
	int prog = sluice__prog_fd(tr->s, SLUICE_PROG_XDP);
	__u8 in[54], out[128] = {};
	__u32 client = 0xc0a80000, daddr, g0, g1;
	bool ok;

	while (!tr->stop) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = 54,
			    .data_out = out, .data_size_out = sizeof(out));

		pkt__syn(in, ++client);
		g0 = __atomic_load_n(&tr->gen, __ATOMIC_ACQUIRE);
		if (bpf_prog_test_run_opts(prog, &opts) || opts.retval != XDP_PASS) {
			tr->bad_verdict++;
			continue;
		}
		g1 = __atomic_load_n(&tr->gen, __ATOMIC_ACQUIRE);
		memcpy(&daddr, out + 30, 4);
		ok = false;
		for (__u32 g = g0 & ~1u; g <= g1 + 1 && !ok; g += 2)
			ok = traffic__in_set(g, ntohl(daddr));
		tr->wrong += !ok;
		tr->packets++;
	}
	return NULL;
}

static void test_inplace_under_traffic(void)
{
	struct sluice_backend_spec b[6];
	struct sluice_service_spec spec;
	struct traffic tr = {};
	__u64 drops[SLUICE_DROP__MAX], cnt[SLUICE_CNT__MAX];
	pthread_t th;
	__u32 flushed = 0;
	bool started = false;

	tr.s = lib__open_progs();
	if (!tr.s)
		return;
	spec__init(&spec, b, 1, 6);
	if (!ASSERT_OK(sluice__service_set(tr.s, &spec), "set 0"))
		goto out;
	if (!ASSERT_OK(pthread_create(&th, NULL, traffic__send, &tr), "sender"))
		goto out;
	started = true;
	for (__u32 c = 1; c <= TRAFFIC_CHANGES; c++) {
		spec__init(&spec, b, c % TRAFFIC_SETS + 1, 6);
		__atomic_store_n(&tr.gen, 2 * c - 1, __ATOMIC_RELEASE);
		if (!ASSERT_OK(sluice__service_set(tr.s, &spec), "change under traffic"))
			break;
		__atomic_store_n(&tr.gen, 2 * c, __ATOMIC_RELEASE);
		if (c % 10 == 0) /* as meshd: every few changes, a grace period later */
			flushed += (__u32)sluice__flush_deferred(tr.s);
	}
	usleep(20 * 1000);
	tr.stop = true;
out:
	if (started)
		pthread_join(th, NULL);
	if (started) {
		fprintf(stderr, "    %u packets, %d changes, %u deletes flushed\n", tr.packets,
			TRAFFIC_CHANGES, flushed);
		ASSERT_GE(tr.packets, 1000, "packets sent during the changes");
		ASSERT_GE(flushed, TRAFFIC_CHANGES / 2, "deferred deletes flushed under traffic");
		ASSERT_EQ(tr.bad_verdict, 0, "every new flow forwarded (XDP_PASS)");
		ASSERT_EQ(tr.wrong, 0, "no flow sent to a backend outside the live sets");
		ASSERT_OK(sluice__drops(tr.s, drops), "drops");
		ASSERT_EQ(drops[SLUICE_DROP_NO_BACKEND], 0, "no_backend drops");
		ASSERT_OK(sluice__counters(tr.s, cnt), "counters");
		ASSERT_EQ(cnt[SLUICE_CNT_LB_NEW], tr.packets, "every packet a new flow picked");
	}
	sluice__close(tr.s);
}

static const struct test tests[] = {
	TEST(test_slot_diff_minimal),
	TEST(test_rollback_inplace),
	TEST(test_grow_swap),
	TEST(test_rollback_grow),
	TEST(test_deferred_delete),
	TEST(test_restart_index),
	TEST(test_cached_plan_matches_maps),
	TEST(test_inplace_under_traffic),
};

int main(int argc, char **argv)
{
	if (!test__have_root("service_inplace", "loads BPF"))
		return 0;
	/* no program attached or run but where a test says so (lb_load.h) */
	test__lb_load = TEST_LB_NO_PROGS;
	return test__run_all("service_inplace", tests, ARRAY_SIZE(tests), argc, argv);
}
