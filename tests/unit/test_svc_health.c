// SPDX-License-Identifier: MIT
/*
 * test_svc_health.c - the library's side of passive outlier detection
 * (#14) against the real datapath maps (run as root): svc_health written
 * with every service write (defaults, settings, disabled, node-wide off),
 * `ejected` recounted from backend_health, backend_health zeroed when an
 * id goes to a new backend, svc_health zeroed on delete, and a rejected
 * update leaving both maps byte-identical. The kernel's part is simulated
 * by writing backend_health directly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "lb_load.h"
#include "sluice.h"
#include "test.h"

static struct sluice *lib__open(void)
{
	struct sluice_opts opts = {};
	struct sluice *s = NULL;

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	return s;
}

static struct sluice_addr v4(__u32 host)
{
	struct sluice_addr a = { .family = SLUICE_AF_INET };

	a.addr[0] = htonl(host);
	return a;
}

#define VIP4 0x0a600001           /* 10.96.0.1 */
#define BE4(i) (0x0a000100 + (i)) /* 10.0.1.i */

static void spec__init(struct sluice_service_spec *spec, struct sluice_backend_spec *b, __u32 n)
{
	memset(spec, 0, sizeof(*spec));
	spec->vip = v4(VIP4);
	spec->port = 80;
	spec->proto = IPPROTO_TCP;
	spec->nbackends = n;
	spec->backends = b;
	for (__u32 i = 0; i < n; i++)
		b[i] = (struct sluice_backend_spec){ .addr = v4(BE4(i + 1)),
						     .port = 8080,
						     .weight = 1 };
}

static __u32 svc_id_of(struct sluice *s, const struct sluice_service_spec *spec)
{
	struct sluice_service_info info;

	if (!ASSERT_OK(sluice__service_get(s, &spec->vip, spec->port, spec->proto, &info),
		       "service_get"))
		return 0;
	return info.svc.svc_id;
}

/* The id of backend i of spec (matched by address). */
static __u32 be_id_of(struct sluice *s, const struct sluice_service_spec *spec, __u32 i)
{
	struct sluice_service_info info;
	struct sluice_backend be;

	if (sluice__service_get(s, &spec->vip, spec->port, spec->proto, &info))
		return 0;
	for (__u32 j = 0; j < info.nbackends; j++)
		if (!sluice__backend_get(s, info.backend_ids[j], &be, NULL) &&
		    be.addr[0] == spec->backends[i].addr.addr[0])
			return info.backend_ids[j];
	return 0;
}

static struct sluice_svc_health sh_read(struct sluice *s, __u32 svc_id)
{
	struct sluice_svc_health h = {};

	bpf_map_lookup_elem(sluice__map_fd(s, "svc_health"), &svc_id, &h);
	return h;
}

static struct sluice_backend_health bh_read(struct sluice *s, __u32 id)
{
	struct sluice_backend_health h = {};

	bpf_map_lookup_elem(sluice__map_fd(s, "backend_health"), &id, &h);
	return h;
}

static __u64 now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (__u64)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* What the kernel does on an ejection, written by hand. */
static void bh_eject(struct sluice *s, __u32 id, __u64 until_ns)
{
	struct sluice_backend_health h = {
		.ejected_until_ns = until_ns,
		.last_fail_ns = now_ns(),
		.fails = 3,
		.ejections = 1,
		.reason = SLUICE_HEALTH_R_RST,
		.flags = SLUICE_BH_F_EJECTED,
	};

	ASSERT_OK(bpf_map_update_elem(sluice__map_fd(s, "backend_health"), &id, &h, BPF_ANY),
		  "write backend_health");
}

static void test_written_with_defaults(void)
{
	struct sluice_backend_spec b[3];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	struct sluice_svc_health h;
	__u32 id;

	if (!s)
		return;
	spec__init(&spec, b, 3);
	b[2].weight = 0; /* draining: not in `backends` */
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	id = svc_id_of(s, &spec);
	h = sh_read(s, id);
	ASSERT_EQ(h.threshold, SLUICE_OUTLIER_THRESHOLD_DEFAULT, "threshold default");
	ASSERT_EQ(h.max_ejected_pct, SLUICE_OUTLIER_MAX_EJECTED_PCT_DEFAULT, "max ejected");
	ASSERT_EQ(h.panic_pct, SLUICE_OUTLIER_PANIC_PCT_DEFAULT, "panic");
	ASSERT_EQ(h.base_ms, SLUICE_OUTLIER_BASE_MS_DEFAULT, "base");
	ASSERT_EQ(h.max_ms, SLUICE_OUTLIER_MAX_MS_DEFAULT, "max");
	ASSERT_EQ(h.backends, 2, "backends: active ones");
	ASSERT_EQ(h.ejected, 0, "ejected");

	spec.outlier = (struct sluice_outlier_spec){ .consecutive_failures = 5,
						     .max_ejected_pct = 20,
						     .panic_pct = SLUICE_OUTLIER_PANIC_NEVER,
						     .base_ejection_ms = 1500,
						     .max_ejection_ms = 60000 };
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set with settings"))
		goto out;
	h = sh_read(s, id);
	ASSERT_EQ(h.threshold, 5, "threshold");
	ASSERT_EQ(h.max_ejected_pct, 20, "max ejected");
	ASSERT_EQ(h.panic_pct, 0, "panic never: 0 in the kernel");
	ASSERT_EQ(h.base_ms, 1500, "base");
	ASSERT_EQ(h.max_ms, 60000, "max");

	spec.outlier = (struct sluice_outlier_spec){ .disabled = true };
	ASSERT_OK(sluice__service_set(s, &spec), "service_set disabled");
	ASSERT_EQ(sh_read(s, id).threshold, 0, "disabled: threshold 0");

	ASSERT_OK(sluice__service_del(s, &spec.vip, spec.port, spec.proto), "service_del");
	h = sh_read(s, id);
	ASSERT_TRUE(!memcmp(&h, &(struct sluice_svc_health){}, sizeof(h)), "deleted: entry zeroed");
out:
	sluice__close(s);
}

static void test_ejected_recount(void)
{
	struct sluice_backend_spec b[4];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	__u32 id, be0, be1, be3;

	if (!s)
		return;
	spec__init(&spec, b, 4);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	id = svc_id_of(s, &spec);
	be0 = be_id_of(s, &spec, 0);
	be1 = be_id_of(s, &spec, 1);
	be3 = be_id_of(s, &spec, 3);
	bh_eject(s, be0, now_ns() + 60000000000ull);
	bh_eject(s, be1, now_ns() + 60000000000ull);
	bh_eject(s, be3, now_ns() + 60000000000ull);
	/* a write of the service (one backend drained, one removed) recounts */
	b[1].weight = 0;
	spec.nbackends = 3;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	ASSERT_EQ(sh_read(s, id).ejected, 1, "ejected: flags of its active backends");
	ASSERT_EQ(sh_read(s, id).backends, 2, "backends: active ones");
	ASSERT_EQ(bh_read(s, be0).flags, SLUICE_BH_F_EJECTED, "kept backend keeps its ejection");
	/* no pick chooses a drained backend, so no success would ever
	 * restore it: its ejection ends with the drain */
	ASSERT_EQ(bh_read(s, be1).flags, 0, "drained backend's ejection flag cleared");
	ASSERT_EQ(bh_read(s, be1).ejected_until_ns, 0, "drained backend's ejection time cleared");
	ASSERT_EQ(bh_read(s, be1).fails, 3, "drained backend's failures kept");

	/* Off: the ejections of its backends go, the last failure stays. */
	spec.outlier.disabled = true;
	ASSERT_OK(sluice__service_set(s, &spec), "service_set disabled");
	ASSERT_EQ(sh_read(s, id).ejected, 0, "ejected after disable");
	ASSERT_EQ(bh_read(s, be0).flags, 0, "flag cleared");
	ASSERT_EQ(bh_read(s, be0).fails, 0, "fails cleared");
	ASSERT_EQ(bh_read(s, be0).ejections, 0, "ejections cleared");
	ASSERT_EQ(bh_read(s, be0).reason, SLUICE_HEALTH_R_RST, "last reason kept");
out:
	sluice__close(s);
}

/*
 * 4 backends, at most 1 ejected (25 %): A ejected, then drained, then
 * undrained; B ejected, then unhealthy by probe. A backend out of the
 * table must give its slot of the budget back (else B, C and D could
 * never be ejected while A stays drained) and must not come back
 * ejected with no pick able to restore it.
 */
static void test_inactive_frees_budget(void)
{
	struct sluice_backend_spec b[4];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	struct sluice_svc_health h;
	__u32 id, a, bb;

	if (!s)
		return;
	spec__init(&spec, b, 4);
	spec.outlier.max_ejected_pct = 25;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	id = svc_id_of(s, &spec);
	a = be_id_of(s, &spec, 0);
	bb = be_id_of(s, &spec, 1);
	bh_eject(s, a, now_ns() + 60000000000ull);
	b[0].weight = 0;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "drain A"))
		goto out;
	h = sh_read(s, id);
	ASSERT_EQ(h.backends, 3, "backends: A drained");
	ASSERT_EQ(h.ejected, 0, "drained A holds no slot of the budget");
	ASSERT_EQ(bh_read(s, a).flags, 0, "drained A's ejection flag cleared");
	b[0].weight = 1;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "undrain A"))
		goto out;
	ASSERT_EQ(bh_read(s, a).flags, 0, "A back in the table, not ejected");
	ASSERT_EQ(sh_read(s, id).ejected, 0, "ejected after undrain");

	bh_eject(s, bb, now_ns() + 60000000000ull);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "rewrite"))
		goto out;
	ASSERT_EQ(sh_read(s, id).ejected, 1, "B ejected");
	b[1].unhealthy = true;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "B unhealthy by probe"))
		goto out;
	h = sh_read(s, id);
	ASSERT_EQ(h.backends, 3, "backends: B unhealthy");
	ASSERT_EQ(h.ejected, 0, "unhealthy B holds no slot of the budget");
	ASSERT_EQ(bh_read(s, bb).flags, 0, "unhealthy B's ejection flag cleared");
out:
	sluice__close(s);
}

/* An id freed by a removed backend and given to a new one starts clean. */
static void test_id_reuse_zeroes(void)
{
	struct sluice_backend_spec b[3];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	__u32 id, gone;

	if (!s)
		return;
	spec__init(&spec, b, 2);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	id = svc_id_of(s, &spec);
	gone = be_id_of(s, &spec, 1);
	bh_eject(s, gone, now_ns() + 60000000000ull);
	spec.nbackends = 1;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "remove backend 1"))
		goto out;
	ASSERT_EQ(sh_read(s, id).ejected, 0, "removed backend not counted");
	/* no late success of its flows can make the kernel count it down */
	ASSERT_EQ(bh_read(s, gone).flags, 0, "removed backend's ejection flag cleared");
	ASSERT_EQ(bh_read(s, gone).fails, 3, "its failures kept (the id is not reused yet)");
	/* its entry goes, and its id is free, after the deferred delete (#16) */
	ASSERT_EQ(sluice__flush_deferred(s), 1, "deferred delete flushed");
	b[1].addr = v4(BE4(9));
	spec.nbackends = 2;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "add a new backend"))
		goto out;
	ASSERT_EQ(be_id_of(s, &spec, 1), gone, "the new backend got the freed id");
	ASSERT_EQ(bh_read(s, gone).flags, 0, "its health zeroed");
	ASSERT_EQ(bh_read(s, gone).fails, 0, "its fails zeroed");
	ASSERT_EQ(bh_read(s, gone).last_fail_ns, 0, "its last failure zeroed");
	ASSERT_EQ(sh_read(s, id).ejected, 0, "ejected");
out:
	sluice__close(s);
}

/* Several ids reused at once: their old entries are read in one batched
 * range read (svc_health.c), which spans a kept backend's id between
 * them. Each reused id is zeroed by its own old value: the kept id in
 * between holds zeros, so reading the wrong slot of the range would skip
 * the write of a reused one. */
static void test_id_reuse_zeroes_many(void)
{
	struct sluice_backend_spec b[4];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	__u32 id1, id2, id3;

	if (!s)
		return;
	spec__init(&spec, b, 4);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	id1 = be_id_of(s, &spec, 1);
	id2 = be_id_of(s, &spec, 2);
	id3 = be_id_of(s, &spec, 3);
	if (!ASSERT_TRUE(id1 < id2 && id2 < id3, "ids in order"))
		goto out;
	/* backends 1 and 3 leave (0 and 2 stay); then failures on their ids */
	b[1] = b[2];
	spec.nbackends = 2;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "remove backends 1 and 3"))
		goto out;
	ASSERT_EQ(be_id_of(s, &spec, 1), id2, "backend 2 kept its id");
	ASSERT_EQ(sluice__flush_deferred(s), 2, "deferred deletes flushed");
	bh_eject(s, id1, now_ns() + 60000000000ull);
	bh_eject(s, id3, now_ns() + 60000000000ull);
	ASSERT_EQ(bh_read(s, id2).fails, 0, "the kept id holds zeros");
	/* two new backends at once get the two freed ids */
	b[2] = (struct sluice_backend_spec){ .addr = v4(BE4(8)), .port = 8080, .weight = 1 };
	b[3] = (struct sluice_backend_spec){ .addr = v4(BE4(9)), .port = 8080, .weight = 1 };
	spec.nbackends = 4;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "add two new backends"))
		goto out;
	ASSERT_EQ(be_id_of(s, &spec, 2), id1, "the first new backend got the first freed id");
	ASSERT_EQ(be_id_of(s, &spec, 3), id3, "the second got the second");
	ASSERT_EQ(bh_read(s, id1).fails, 0, "first reused id: fails zeroed");
	ASSERT_EQ(bh_read(s, id1).flags, 0, "first reused id: health zeroed");
	ASSERT_EQ(bh_read(s, id3).fails, 0, "second reused id: fails zeroed");
	ASSERT_EQ(bh_read(s, id3).flags, 0, "second reused id: health zeroed");
	ASSERT_EQ(sh_read(s, svc_id_of(s, &spec)).ejected, 0, "ejected");
out:
	sluice__close(s);
}

/* The same with the reused ids far apart (a span over 4x their number):
 * each id's old entry is then looked up alone, every one of them. */
static void test_id_reuse_zeroes_sparse(void)
{
	struct sluice_backend_spec b[12];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	__u32 lo, hi;

	if (!s)
		return;
	spec__init(&spec, b, 12);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	lo = be_id_of(s, &spec, 0);
	hi = be_id_of(s, &spec, 11);
	if (!ASSERT_TRUE(hi > lo + 8, "ids far apart"))
		goto out;
	/* backends 0 and 11 leave (1-10 stay); then failures on their ids */
	for (__u32 i = 0; i < 10; i++)
		b[i] = (struct sluice_backend_spec){ .addr = v4(BE4(i + 2)),
						     .port = 8080,
						     .weight = 1 };
	spec.nbackends = 10;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "remove the first and last backend"))
		goto out;
	ASSERT_EQ(sluice__flush_deferred(s), 2, "deferred deletes flushed");
	bh_eject(s, lo, now_ns() + 60000000000ull);
	bh_eject(s, hi, now_ns() + 60000000000ull);
	b[10] = (struct sluice_backend_spec){ .addr = v4(BE4(20)), .port = 8080, .weight = 1 };
	b[11] = (struct sluice_backend_spec){ .addr = v4(BE4(21)), .port = 8080, .weight = 1 };
	spec.nbackends = 12;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "add two new backends"))
		goto out;
	ASSERT_EQ(be_id_of(s, &spec, 10), lo, "the first new backend got the lowest freed id");
	ASSERT_EQ(be_id_of(s, &spec, 11), hi, "the second got the highest");
	ASSERT_EQ(bh_read(s, lo).flags, 0, "lowest reused id: health zeroed");
	ASSERT_EQ(bh_read(s, hi).flags, 0, "highest reused id: health zeroed");
	ASSERT_EQ(bh_read(s, hi).fails, 0, "highest reused id: fails zeroed");
	ASSERT_EQ(sh_read(s, svc_id_of(s, &spec)).ejected, 0, "ejected");
out:
	sluice__close(s);
}

/* Array images compared byte for byte. */
static void *array__dump(int fd, size_t vsz, __u32 n)
{
	__u32 *keys = calloc(n, sizeof(*keys)), count = n;
	char *vals = calloc(n, vsz);
	__u64 out = 0;
	int err;

	if (!keys || !vals) {
		free(keys);
		free(vals);
		return NULL;
	}
	err = bpf_map_lookup_batch(fd, NULL, &out, keys, vals, &count, NULL);
	if ((err && err != -ENOENT) || count != n) {
		free(vals);
		vals = NULL;
	}
	free(keys);
	return vals;
}

struct hsnap {
	void *sh, *bh;
};

static void hsnap__take(struct sluice *s, struct hsnap *h)
{
	h->sh = array__dump(sluice__map_fd(s, "svc_health"), sizeof(struct sluice_svc_health),
			    SLUICE_MAX_SERVICES);
	h->bh = array__dump(sluice__map_fd(s, "backend_health"),
			    sizeof(struct sluice_backend_health), SLUICE_MAX_BACKENDS);
	ASSERT_TRUE(h->sh && h->bh, "dump the health arrays");
}

static void hsnap__same(const struct hsnap *a, const struct hsnap *b)
{
	if (!a->sh || !b->sh || !a->bh || !b->bh)
		return;
	ASSERT_TRUE(!memcmp(a->sh, b->sh, SLUICE_MAX_SERVICES * sizeof(struct sluice_svc_health)),
		    "svc_health unchanged by the rejected update");
	ASSERT_TRUE(!memcmp(a->bh, b->bh,
			    (size_t)SLUICE_MAX_BACKENDS * sizeof(struct sluice_backend_health)),
		    "backend_health unchanged by the rejected update");
}

static void hsnap__free(struct hsnap *h)
{
	free(h->sh);
	free(h->bh);
}

/* n VIP markers straight into the services map, so it is full. */
static bool fill_services(struct sluice *s, __u32 n, __u32 base)
{
	struct sluice_svc_key *keys = calloc(n, sizeof(*keys));
	struct sluice_svc *vals = calloc(n, sizeof(*vals));
	bool ok = false;

	if (!ASSERT_TRUE(keys && vals, "alloc"))
		goto out;
	for (__u32 i = 0; i < n; i++) {
		keys[i].addr[0] = htonl(base + i);
		keys[i].proto = IPPROTO_UDP;
		keys[i].family = SLUICE_AF_INET;
		vals[i].flags = SLUICE_SVC_F_VIP_MARKER;
	}
	ok = ASSERT_OK(bpf_map_update_batch(sluice__map_fd(s, "services"), keys, vals, &n, NULL),
		       "fill services");
out:
	free(keys);
	free(vals);
	return ok;
}

/*
 * One group: an existing service turned off (which clears its backends'
 * ejections and rewrites its entry) and a new service (whose new ids'
 * health is zeroed and whose entry is written) that fails at its VIP
 * marker because the services map is full. Both maps must come back.
 */
static void rollback__run(bool drain)
{
	struct sluice_backend_spec b[2], nb[2];
	struct sluice_service_spec specs[2];
	struct sluice *s = lib__open();
	struct hsnap before = {}, after = {};
	__u32 applied = 9, failed = 9, ejected_id, next_id;

	if (!s)
		return;
	spec__init(&specs[0], b, 2);
	if (!ASSERT_OK(sluice__service_set(s, &specs[0]), "service_set"))
		goto out;
	ejected_id = be_id_of(s, &specs[0], 0);
	bh_eject(s, ejected_id, now_ns() + 60000000000ull);
	/* the ids the new service's backends will get, dirty */
	next_id = be_id_of(s, &specs[0], 1) + 1;
	bh_eject(s, next_id, now_ns() + 60000000000ull);
	bh_eject(s, next_id + 1, 1);
	if (!fill_services(s, 2 * SLUICE_MAX_SERVICES - 2, 0x0b000000))
		goto out;
	if (drain)
		b[0].weight = 0; /* unflags the ejected backend */
	else
		specs[0].outlier.disabled = true;
	spec__init(&specs[1], nb, 2);
	specs[1].vip = v4(VIP4 + 1);
	nb[0].addr = v4(BE4(20));
	nb[1].addr = v4(BE4(21));
	hsnap__take(s, &before);
	ASSERT_NEQ(sluice__service_set_many(s, specs, 2, &applied, &failed), 0,
		   "set_many into a full services map");
	ASSERT_EQ(applied, 0, "nothing applied");
	hsnap__take(s, &after);
	hsnap__same(&before, &after);
	ASSERT_EQ(bh_read(s, ejected_id).flags, SLUICE_BH_F_EJECTED, "ejection restored");
out:
	hsnap__free(&before);
	hsnap__free(&after);
	sluice__close(s);
}

static void test_rollback_restores_health(void)
{
	rollback__run(false);
}

/* The same with the ejected backend drained instead (its flag cleared). */
static void test_rollback_restores_drained(void)
{
	rollback__run(true);
}

/* meshd's start: entries of an older agent (none) written for all. */
static void test_outlier_sync(void)
{
	struct sluice_backend_spec b[3];
	struct sluice_service_spec spec;
	struct sluice_service_ref ref;
	struct sluice_outlier_spec o = { .consecutive_failures = 7 };
	struct sluice_svc_health zero = {};
	struct sluice *s = lib__open();
	__u32 id, be0, written = 0;

	if (!s)
		return;
	spec__init(&spec, b, 3);
	b[2].unhealthy = true; /* weight 1, out of the table by probe */
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	id = svc_id_of(s, &spec);
	be0 = be_id_of(s, &spec, 0);
	bh_eject(s, be0, now_ns() + 60000000000ull);
	bh_eject(s, be_id_of(s, &spec, 2), now_ns() + 60000000000ull);
	bpf_map_update_elem(sluice__map_fd(s, "svc_health"), &id, &zero, BPF_ANY);
	ref = (struct sluice_service_ref){ .vip = spec.vip, .port = 80, .proto = IPPROTO_TCP };
	ASSERT_OK(sluice__outlier_sync(s, &ref, &o, 1, &written), "outlier_sync");
	ASSERT_EQ(written, 1, "written");
	ASSERT_EQ(sh_read(s, id).threshold, 7, "threshold");
	ASSERT_EQ(sh_read(s, id).backends, 2, "backends: the probe-unhealthy one not counted");
	ASSERT_EQ(sh_read(s, id).ejected, 1, "ejected recounted (active ones)");
	ASSERT_EQ(bh_read(s, be_id_of(s, &spec, 2)).flags, 0, "unhealthy one's ejection cleared");
	ASSERT_EQ(sh_read(s, id).base_ms, SLUICE_OUTLIER_BASE_MS_DEFAULT, "base default");

	/* two services in one sync (the walks count per service), one ref
	 * naming no service, the second service off */
	{
		struct sluice_backend_spec b2[5];
		struct sluice_service_spec spec2;
		struct sluice_service_ref refs[3];
		struct sluice_outlier_spec os[3] = { o, { .disabled = true }, o };
		__u32 id2, be2;

		spec__init(&spec2, b2, 5);
		spec2.port = 81;
		for (__u32 i = 0; i < 5; i++)
			b2[i].addr.addr[0] = htonl(ntohl(b2[i].addr.addr[0]) + 20);
		b2[4].weight = 0; /* drained: not counted */
		if (ASSERT_OK(sluice__service_set(s, &spec2), "second service")) {
			id2 = svc_id_of(s, &spec2);
			be2 = be_id_of(s, &spec2, 1);
			bh_eject(s, be2, now_ns() + 60000000000ull);
			bpf_map_update_elem(sluice__map_fd(s, "svc_health"), &id2, &zero, BPF_ANY);
			refs[0] = ref;
			refs[1] = (struct sluice_service_ref){ .vip = spec2.vip,
							       .port = 81,
							       .proto = IPPROTO_TCP };
			refs[2] = (struct sluice_service_ref){ .vip = spec2.vip,
							       .port = 82,
							       .proto = IPPROTO_TCP };
			ASSERT_OK(sluice__outlier_sync(s, refs, os, 3, &written), "sync of two");
			ASSERT_EQ(written, 2, "two services written, the third not in the maps");
			ASSERT_EQ(sh_read(s, id).backends, 2, "first: 2 active");
			ASSERT_EQ(sh_read(s, id).ejected, 1, "first: 1 ejected");
			ASSERT_EQ(sh_read(s, id2).backends, 4, "second: 4 active (one drained)");
			ASSERT_EQ(sh_read(s, id2).threshold, 0, "second: off");
			ASSERT_EQ(sh_read(s, id2).ejected, 0, "second: none ejected");
			ASSERT_EQ(bh_read(s, be2).flags, 0, "second, off: ejection cleared");
			ASSERT_EQ(bh_read(s, be0).flags & SLUICE_BH_F_EJECTED, SLUICE_BH_F_EJECTED,
				  "first: its ejection kept");
		}
	}

	/* node-wide off */
	sluice__set_outlier_detection(s, false);
	ASSERT_OK(sluice__outlier_sync(s, &ref, &o, 1, &written), "outlier_sync node off");
	ASSERT_EQ(sh_read(s, id).threshold, 0, "node off: threshold 0");
	ASSERT_EQ(sh_read(s, id).ejected, 0, "node off: nothing ejected");
	ASSERT_EQ(bh_read(s, be0).flags, 0, "node off: ejection cleared");
	ASSERT_OK(sluice__service_set(s, &spec), "service_set node off");
	ASSERT_EQ(sh_read(s, id).threshold, 0, "node off holds for service_set");
out:
	sluice__close(s);
}

static void test_backend_view(void)
{
	struct sluice_backend_spec b[2];
	struct sluice_service_spec spec;
	struct sluice_backend_health_view v;
	struct sluice_svc_health sh;
	struct sluice_backend be;
	struct sluice *s = lib__open();
	__u32 be0;
	__u64 wall;

	if (!s)
		return;
	spec__init(&spec, b, 2);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	be0 = be_id_of(s, &spec, 0);
	ASSERT_OK(sluice__svc_health(s, svc_id_of(s, &spec), &sh), "svc_health");
	ASSERT_OK(sluice__backend_get(s, be0, &be, NULL), "backend_get");
	ASSERT_OK(sluice__backend_health(s, be0, &be, &sh, &v), "view");
	ASSERT_EQ(v.state, SLUICE_BEH_HEALTHY, "healthy");
	bh_eject(s, be0, now_ns() + 30000000000ull);
	ASSERT_OK(sluice__backend_health(s, be0, &be, &sh, &v), "view");
	ASSERT_EQ(v.state, SLUICE_BEH_EJECTED, "ejected");
	ASSERT_EQ(v.fails, 3, "fails");
	ASSERT_EQ(v.reason, SLUICE_HEALTH_R_RST, "reason");
	wall = (__u64)time(NULL) * 1000;
	ASSERT_GE(v.ejected_until_ms, wall + 28000, "until ~30 s from now (wall clock)");
	ASSERT_LE(v.ejected_until_ms, wall + 32000, "until ~30 s from now (wall clock)");
	bh_eject(s, be0, now_ns() - 1000000);
	ASSERT_OK(sluice__backend_health(s, be0, &be, &sh, &v), "view");
	ASSERT_EQ(v.state, SLUICE_BEH_PROBATION, "time over: probation");
	sh.threshold = 0;
	ASSERT_OK(sluice__backend_health(s, be0, &be, &sh, &v), "view");
	ASSERT_EQ(v.state, SLUICE_BEH_HEALTHY, "detection off: healthy");
	be.weight = 0;
	ASSERT_OK(sluice__backend_health(s, be0, &be, &sh, &v), "view");
	ASSERT_EQ(v.state, SLUICE_BEH_DRAINING, "weight 0: draining");
	ASSERT_TRUE(!strcmp(sluice_be_health__str(SLUICE_BEH_PROBATION), "probation"), "name");
out:
	sluice__close(s);
}

/* The spec <-> kernel translation round-trips in canonical form. */
static void test_spec_roundtrip(void)
{
	const struct sluice_outlier_spec cases[] = {
		{},
		{ .consecutive_failures = 1, .max_ejected_pct = 100, .panic_pct = 1 },
		{ .panic_pct = SLUICE_OUTLIER_PANIC_NEVER, .base_ejection_ms = 10 },
		{ .disabled = true },
	};
	struct sluice_outlier_spec back, dflt = { .consecutive_failures = 3, .panic_pct = 50 };
	struct sluice_svc_health h;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		sluice_outlier__to_kernel(&cases[i], false, &h);
		sluice_outlier__from_kernel(&h, &back);
		ASSERT_TRUE(!memcmp(&back, &cases[i], sizeof(back)), "round trip");
		ASSERT_TRUE(sluice_outlier__same(&back, &cases[i]), "same");
	}
	ASSERT_TRUE(sluice_outlier__same(&cases[0], &dflt), "explicit defaults are the defaults");
	ASSERT_FALSE(sluice_outlier__same(&cases[0], &cases[1]), "different settings differ");
	ASSERT_FALSE(sluice_outlier__same(&cases[0], &cases[3]), "disabled differs");
	h = (struct sluice_svc_health){};
	sluice_outlier__from_kernel(&h, &back);
	ASSERT_TRUE(back.disabled, "an entry never written reads as disabled");
}

static const struct test tests[] = {
	TEST(test_written_with_defaults),
	TEST(test_ejected_recount),
	TEST(test_inactive_frees_budget),
	TEST(test_id_reuse_zeroes),
	TEST(test_id_reuse_zeroes_many),
	TEST(test_id_reuse_zeroes_sparse),
	TEST(test_rollback_restores_health),
	TEST(test_rollback_restores_drained),
	TEST(test_outlier_sync),
	TEST(test_backend_view),
	TEST(test_spec_roundtrip),
};

int main(int argc, char **argv)
{
	if (!test__have_root("svc_health", "loads BPF"))
		return 0;
	/* no program attached or run but where a test says so (lb_load.h) */
	test__lb_load = TEST_LB_NO_PROGS;
	return test__run_all("svc_health", tests, ARRAY_SIZE(tests), argc, argv);
}
