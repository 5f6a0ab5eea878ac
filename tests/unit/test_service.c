// SPDX-License-Identifier: MIT
/*
 * test_service.c - service management against the real datapath object
 * (run as root): what service_set/del write into the maps, read back raw
 * rather than through the library; id reuse across backend-set changes;
 * validation errors and rollback leaving every map byte-identical; stats
 * never inherited by a new service reusing an id.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb_load.h"
#include "sluice.h"
#include "kfeatures.h"
#include "test.h"

/* Buffers hold the largest table; tables are sized by need (#16): rd_m
 * is the size of the table maglev__read() read last. */
#define M SLUICE_MAGLEV_M_MAX
static __u32 rd_m;

static struct sluice *lib__open(void)
{
	struct sluice_opts opts = {};
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
	s = lib__open();
	test__lb_load = saved;
	return s;
}

static struct sluice_addr v4(__u32 host)
{
	struct sluice_addr a = { .family = SLUICE_AF_INET };

	a.addr[0] = htonl(host);
	return a;
}

static struct sluice_addr v6(__u32 last)
{
	struct sluice_addr a = { .family = SLUICE_AF_INET6 };

	a.addr[0] = htonl(0xfd000000);
	a.addr[3] = htonl(last);
	return a;
}

#define VIP4 0x0a600001           /* 10.96.0.1 */
#define BE4(i) (0x0a000100 + (i)) /* 10.0.1.i */

static void spec__init(struct sluice_service_spec *spec, struct sluice_backend_spec *b, __u32 n,
		       const __u16 *weights)
{
	memset(spec, 0, sizeof(*spec));
	spec->vip = v4(VIP4);
	spec->port = 80;
	spec->proto = IPPROTO_TCP;
	spec->nbackends = n;
	spec->backends = b;
	for (__u32 i = 0; i < n; i++) {
		b[i] = (struct sluice_backend_spec){ .addr = v4(BE4(i + 1)),
						     .port = 8080,
						     .weight = weights ? weights[i] : 1 };
	}
}

static struct sluice_svc_key svc_key(const struct sluice_addr *vip, __u16 port, __u8 proto)
{
	struct sluice_svc_key k = { .port = htons(port), .proto = proto, .family = vip->family };

	memcpy(k.addr, vip->addr, sizeof(k.addr));
	return k;
}

/* Reads the inner table of svc_id; returns the inner map id (0 = none). */
static __u32 maglev__read(struct sluice *s, __u32 svc_id, __u32 *table)
{
	__u32 inner_id = 0;
	int fd;

	if (bpf_map_lookup_elem(sluice__map_fd(s, "maglev"), &svc_id, &inner_id))
		return 0;
	fd = bpf_map_get_fd_by_id(inner_id);
	if (!ASSERT_GE(fd, 0, "inner map fd"))
		return 0;
	/* a batch lookup, not the library's mmap: an independent read */
	{
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		static __u32 keys[SLUICE_MAGLEV_ELEMS_MAX];
		static struct sluice_maglev_pair pairs[SLUICE_MAGLEV_ELEMS_MAX];
		struct bpf_map_info info = {};
		__u32 len = sizeof(info), count, out = 0;
		int err;

		memset(pairs, 0, sizeof(pairs));
		if (!ASSERT_OK(bpf_obj_get_info_by_fd(fd, &info, &len), "table info") ||
		    !ASSERT_LE(info.max_entries, SLUICE_MAGLEV_ELEMS_MAX, "table elements"))
			info.max_entries = 0;
		rd_m = info.max_entries ? 2 * info.max_entries - 1 : 0;
		count = info.max_entries;
		err = count ? bpf_map_lookup_batch(fd, NULL, &out, keys, pairs, &count, &opts) : 0;
		if (!ASSERT_TRUE(!err || err == -ENOENT, "batch read of the table") ||
		    !ASSERT_EQ(count, info.max_entries, "table elements read"))
			memset(pairs, 0, sizeof(pairs));
		for (__u32 i = 0; i < M; i++)
			table[i] = i < rd_m ? pairs[i / 2].id[i % 2] : 0;
	}
	close(fd);
	return inner_id;
}

/* A whole-map image: sorted key+value records of the hash maps and the
 * inner map id of every maglev slot, compared with memcmp. */
struct snap {
	char *svc, *be;
	size_t nsvc, nbe;
	__u32 inner[SLUICE_MAX_SERVICES];
};

static size_t rec_size;

static int rec_cmp(const void *a, const void *b)
{
	return memcmp(a, b, rec_size);
}

static char *hash__dump(int fd, size_t ksz, size_t vsz, size_t *n)
{
	size_t cap = 1024;
	char *buf = malloc(cap * (ksz + vsz)), key[64], next[64];
	void *prev = NULL;

	*n = 0;
	if (!buf)
		return NULL;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		if (*n == cap) {
			char *grown = realloc(buf, (cap *= 2) * (ksz + vsz));

			if (!grown) {
				free(buf);
				return NULL;
			}
			buf = grown;
		}
		memcpy(key, next, ksz);
		prev = key;
		memcpy(buf + *n * (ksz + vsz), key, ksz);
		if (!bpf_map_lookup_elem(fd, key, buf + *n * (ksz + vsz) + ksz))
			(*n)++;
	}
	rec_size = ksz + vsz;
	qsort(buf, *n, rec_size, rec_cmp);
	return buf;
}

/* Whether a services entry of the dump names service id @id. */
static bool snap__names(const struct snap *sn, __u32 id)
{
	size_t rec = sizeof(struct sluice_svc_key) + sizeof(struct sluice_svc);

	for (size_t i = 0; i < sn->nsvc; i++) {
		const struct sluice_svc *v =
			(const void *)(sn->svc + i * rec + sizeof(struct sluice_svc_key));

		if (v->svc_id == id)
			return true;
	}
	return false;
}

/* Every Maglev slot where reading one is cheap; on kernels where each read
 * waits for an RCU grace period (before 6.7: 32768 reads were ~9 minutes
 * per snapshot under emulation) only the slots of ids a services entry
 * names, and of ids 1-64 (the ones these cases allocate). */
static void snap__take(struct sluice *s, struct snap *sn)
{
	int mfd = sluice__map_fd(s, "maglev");
	struct sluice_features f;

	sluice__features(&f);
	sn->svc = hash__dump(sluice__map_fd(s, "services"), sizeof(struct sluice_svc_key),
			     sizeof(struct sluice_svc), &sn->nsvc);
	sn->be = hash__dump(sluice__map_fd(s, "backends"), sizeof(__u32),
			    sizeof(struct sluice_backend), &sn->nbe);
	for (__u32 i = 0; i < SLUICE_MAX_SERVICES; i++) {
		sn->inner[i] = 0;
		if (!f.has[SLUICE_FEAT_OUTER_READ_FAST] && i > 64 && !snap__names(sn, i))
			continue;
		if (bpf_map_lookup_elem(mfd, &i, &sn->inner[i]))
			sn->inner[i] = 0;
	}
}

static bool snap__same(const struct snap *a, const struct snap *b, const char *what)
{
	bool ok = true;

	ok &= ASSERT_EQ(a->nsvc, b->nsvc, "services entries");
	ok &= ASSERT_EQ(a->nbe, b->nbe, "backends entries");
	if (ok) {
		ok &= ASSERT_TRUE(!memcmp(a->svc, b->svc,
					  a->nsvc * (sizeof(struct sluice_svc_key) +
						     sizeof(struct sluice_svc))),
				  "services bytes");
		ok &= ASSERT_TRUE(!memcmp(a->be, b->be,
					  a->nbe * (sizeof(__u32) + sizeof(struct sluice_backend))),
				  "backends bytes");
	}
	ok &= ASSERT_TRUE(!memcmp(a->inner, b->inner, sizeof(a->inner)), "maglev slots");
	if (!ok)
		fprintf(stderr, "    maps changed by: %s\n", what);
	return ok;
}

static void snap__free(struct snap *sn)
{
	free(sn->svc);
	free(sn->be);
}

static void check_table(struct sluice *s, const struct sluice_service_spec *spec, __u32 svc_id,
			const __u32 *ids)
{
	static __u32 got[M], want[M];
	__u32 bad = 0;

	__u32 m = maglev__size(spec->nbackends);

	if (!ASSERT_NEQ(maglev__read(s, svc_id, got), 0, "maglev slot of the service"))
		return;
	if (!ASSERT_EQ(rd_m, m, "table size by the sizing rule"))
		return;
	if (!ASSERT_OK(maglev__build(spec->backends, spec->nbackends, m, want), "reference"))
		return;
	for (__u32 i = 0; i < m; i++)
		if (got[i] != ids[want[i]])
			bad++;
	ASSERT_EQ(bad, 0, "slots differing from the reference Maglev table");
}

/* The backend id the maps hold for addr:port in the 10.96.0.1:80/tcp
 * service (0 if none), read through service_get + backend_get. */
static __u32 backend_id_of(struct sluice *s, const struct sluice_backend_spec *b,
			   struct sluice_backend *out)
{
	struct sluice_service_info *info = calloc(1, sizeof(*info));
	struct sluice_addr vip = v4(VIP4);
	struct sluice_backend be;
	__u32 id = 0;

	if (!info || sluice__service_get(s, &vip, 80, IPPROTO_TCP, info))
		goto out;
	for (__u32 i = 0; i < info->nbackends; i++) {
		if (sluice__backend_get(s, info->backend_ids[i], &be, NULL))
			continue;
		if (be.port == htons(b->port) && be.addr[0] == b->addr.addr[0]) {
			id = info->backend_ids[i];
			if (out)
				*out = be;
		}
	}
out:
	free(info);
	return id;
}

static void test_service_set_readback(void)
{
	static const __u16 weights[] = { 1, 1, 2, 0 };
	struct sluice_backend_spec b[4];
	struct sluice_service_spec spec;
	struct sluice_svc_key key, marker;
	struct sluice_svc svc;
	struct sluice_backend be;
	struct sluice *s = lib__open();
	__u32 ids[4];

	if (!s)
		return;
	spec__init(&spec, b, 4, weights);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	key = svc_key(&spec.vip, 80, IPPROTO_TCP);
	marker = svc_key(&spec.vip, 0, IPPROTO_TCP);
	if (!ASSERT_OK(bpf_map_lookup_elem(sluice__map_fd(s, "services"), &key, &svc), "service"))
		goto out;
	ASSERT_EQ(svc.svc_id, 1, "first service id");
	ASSERT_EQ(svc.backend_count, 3, "backend_count counts weight > 0");
	ASSERT_EQ(svc.flags, 0, "flags");
	if (ASSERT_OK(bpf_map_lookup_elem(sluice__map_fd(s, "services"), &marker, &svc),
		      "marker")) {
		ASSERT_EQ(svc.flags, SLUICE_SVC_F_VIP_MARKER, "marker flags");
		ASSERT_EQ(svc.svc_id, 0, "marker svc_id");
	}
	for (int i = 0; i < 4; i++) {
		ids[i] = backend_id_of(s, &b[i], &be);
		if (!ASSERT_NEQ(ids[i], 0, "backend present"))
			goto out;
		ASSERT_EQ(be.svc_id, 1, "backend svc_id");
		ASSERT_EQ(be.family, SLUICE_AF_INET, "backend family");
		ASSERT_EQ(be.weight, weights[i], "backend weight");
		ASSERT_EQ(be.state, weights[i] ? SLUICE_BE_ACTIVE : SLUICE_BE_DRAINING, "state");
		ASSERT_EQ(be.addr[1] | be.addr[2] | be.addr[3], 0, "IPv4 tail zero");
	}
	check_table(s, &spec, 1, ids);
out:
	sluice__close(s);
}

static void test_service_get(void)
{
	struct sluice_service_info *info = calloc(1, sizeof(*info));
	struct sluice_backend_spec b[3];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	struct sluice_backend_stats bst;
	struct sluice_backend be;

	if (!s || !info)
		goto out;
	spec__init(&spec, b, 3, NULL);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	if (!ASSERT_OK(sluice__service_get(s, &spec.vip, 80, IPPROTO_TCP, info), "service_get"))
		goto out;
	ASSERT_EQ(info->nbackends, 3, "nbackends");
	ASSERT_EQ(info->svc.backend_count, 3, "backend_count");
	ASSERT_EQ(info->stats.packets, 0, "packets");
	ASSERT_TRUE(info->backend_ids[0] < info->backend_ids[1] &&
			    info->backend_ids[1] < info->backend_ids[2],
		    "ids ascending");
	ASSERT_OK(sluice__backend_get(s, info->backend_ids[0], &be, &bst), "backend_get");
	ASSERT_EQ(bst.flows, 0, "backend flows");
	ASSERT_EQ(sluice__backend_get(s, 4242, &be, NULL), -ENOENT, "unknown backend");
	ASSERT_TRUE(strstr(sluice__errmsg(), "4242") != NULL, "message names the id");
	ASSERT_EQ(sluice__service_get(s, &spec.vip, 81, IPPROTO_TCP, info), -ENOENT, "other port");
	ASSERT_TRUE(strstr(sluice__errmsg(), "10.96.0.1:81/tcp") != NULL, "message names it");
out:
	free(info);
	sluice__close(s);
}

static void test_service_replace(void)
{
	struct sluice_backend_spec a[3], bset[3];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	__u32 ida[3], idb[3], inner1, inner2;
	static __u32 table[M];

	if (!s)
		return;
	spec__init(&spec, a, 3, NULL); /* 10.0.1.1, .2, .3 */
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set A"))
		goto out;
	for (int i = 0; i < 3; i++)
		ida[i] = backend_id_of(s, &a[i], NULL);
	inner1 = maglev__read(s, 1, table);
	ASSERT_OK(sluice__service_set(s, &spec), "set A again");
	ASSERT_EQ(maglev__read(s, 1, table), inner1, "unchanged table is not swapped");
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(backend_id_of(s, &a[i], NULL), ida[i], "ids stable on a no-op set");
	/* B = { .2, .3 with weight 5, .4 }: .1 leaves, .4 joins */
	bset[0] = a[1];
	bset[1] = a[2];
	bset[1].weight = 5;
	bset[2] = (struct sluice_backend_spec){ .addr = v4(BE4(4)), .port = 8080, .weight = 1 };
	spec.backends = bset;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set B"))
		goto out;
	for (int i = 0; i < 3; i++)
		idb[i] = backend_id_of(s, &bset[i], NULL);
	ASSERT_EQ(idb[0], ida[1], "kept backend keeps its id");
	ASSERT_EQ(idb[1], ida[2], "kept backend with new weight keeps its id");
	ASSERT_NEQ(idb[2], 0, "new backend added");
	ASSERT_TRUE(idb[2] != ida[1] && idb[2] != ida[2], "new backend has its own id");
	ASSERT_EQ(backend_id_of(s, &a[0], NULL), 0, "removed backend gone");
	/* its entry goes after a grace period (#16: a packet may hold it) */
	ASSERT_OK(bpf_map_lookup_elem(sluice__map_fd(s, "backends"), &ida[0], table),
		  "removed backend entry kept until the flush");
	ASSERT_EQ(sluice__flush_deferred(s), 1, "one deferred delete flushed");
	ASSERT_EQ(bpf_map_lookup_elem(sluice__map_fd(s, "backends"), &ida[0], table), -ENOENT,
		  "removed backend entry deleted");
	inner2 = maglev__read(s, 1, table);
	ASSERT_EQ(inner2, inner1, "table changed in place, not swapped (#16)");
	check_table(s, &spec, 1, idb);
out:
	sluice__close(s);
}

struct bad_spec {
	const char *what;
	const char *msg; /* substring of the error message */
	void (*mutate)(struct sluice_service_spec *spec, struct sluice_backend_spec *b);
};

static void bad_family(struct sluice_service_spec *s, struct sluice_backend_spec *b)
{
	(void)b;
	s->vip.family = 5;
}

static void bad_vip_zero(struct sluice_service_spec *s, struct sluice_backend_spec *b)
{
	(void)b;
	s->vip.addr[0] = 0;
}

static void bad_port(struct sluice_service_spec *s, struct sluice_backend_spec *b)
{
	(void)b;
	s->port = 0;
}

static void bad_proto(struct sluice_service_spec *s, struct sluice_backend_spec *b)
{
	(void)b;
	s->proto = IPPROTO_ICMP;
}

static void bad_too_many(struct sluice_service_spec *s, struct sluice_backend_spec *b)
{
	(void)b;
	s->nbackends = SLUICE_MAX_SVC_BACKENDS + 1;
}

static void bad_null(struct sluice_service_spec *s, struct sluice_backend_spec *b)
{
	(void)b;
	s->backends = NULL;
}

static void bad_mixed(struct sluice_service_spec *s, struct sluice_backend_spec *b)
{
	(void)s;
	b[2].addr = v6(7);
}

static void bad_be_port(struct sluice_service_spec *s, struct sluice_backend_spec *b)
{
	(void)s;
	b[3].port = 0;
}

static void bad_dup(struct sluice_service_spec *s, struct sluice_backend_spec *b)
{
	(void)s;
	b[4] = b[1];
	b[4].weight = 7;
}

static void bad_self(struct sluice_service_spec *s, struct sluice_backend_spec *b)
{
	b[0].addr = s->vip;
	b[0].port = s->port;
}

static void bad_be_zero(struct sluice_service_spec *s, struct sluice_backend_spec *b)
{
	(void)s;
	b[1].addr.addr[0] = 0;
}

static const struct bad_spec bad_specs[] = {
	{ "vip family", "family 5", bad_family },
	{ "vip 0.0.0.0", "unspecified address 0.0.0.0", bad_vip_zero },
	{ "port 0", "port 0 out of range 1-65535", bad_port },
	{ "proto icmp", "proto 1", bad_proto },
	{ "too many backends", "nbackends 1025", bad_too_many },
	{ "backends NULL", "backends is NULL", bad_null },
	{ "mixed families", "backend 2: family IPv6", bad_mixed },
	{ "backend port 0", "backend 3 (10.0.1.4): port 0 out of range 1-65535", bad_be_port },
	{ "duplicate backend", "backend 4 (10.0.1.2:8080) duplicates backend 1", bad_dup },
	{ "backend is the vip", "service address itself", bad_self },
	{ "backend 0.0.0.0", "backend 1: unspecified address", bad_be_zero },
};

static void check_bad_specs(struct sluice *s, const struct snap *before, __u16 port)
{
	struct sluice_backend_spec b[5];
	struct sluice_service_spec spec;
	struct snap after;

	for (size_t i = 0; i < ARRAY_SIZE(bad_specs); i++) {
		spec__init(&spec, b, 5, NULL);
		spec.port = port;
		bad_specs[i].mutate(&spec, b);
		if (!ASSERT_EQ(sluice__service_set(s, &spec), -EINVAL, bad_specs[i].what))
			continue;
		if (!ASSERT_TRUE(strstr(sluice__errmsg(), bad_specs[i].msg) != NULL, "message"))
			fprintf(stderr, "    %s: \"%s\", expected \"%s\"\n", bad_specs[i].what,
				sluice__errmsg(), bad_specs[i].msg);
		memset(&after, 0, sizeof(after));
		snap__take(s, &after);
		snap__same(before, &after, bad_specs[i].what);
		snap__free(&after);
	}
}

static void test_validation_leaves_maps(void)
{
	struct sluice_backend_spec b[3];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	static struct snap before;

	if (!s)
		return;
	spec__init(&spec, b, 3, NULL);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	snap__take(s, &before);
	check_bad_specs(s, &before, 80);  /* replacing the existing service */
	check_bad_specs(s, &before, 443); /* creating a new one */
	snap__free(&before);
out:
	sluice__close(s);
}

/* Fill services to capacity with foreign markers: the new service's
 * marker insert fails after backends and table were written; rollback
 * must restore every map. */
/* n VIP markers (UDP, from 0.0.0.0 + base up) straight into the services
 * map, so only what is left of its capacity stays free. */
static bool fill_services(struct sluice *s, __u32 n, __u32 base)
{
	struct sluice_svc_key *keys = calloc(n, sizeof(*keys));
	struct sluice_svc *vals = calloc(n, sizeof(*vals));
	bool ok = false;

	if (!ASSERT_TRUE(keys && vals, "alloc"))
		goto out;
	for (__u32 i = 0; i < n; i++) {
		struct sluice_addr a = v4(base + i);

		keys[i] = svc_key(&a, 0, IPPROTO_UDP);
		vals[i].flags = SLUICE_SVC_F_VIP_MARKER;
	}
	ok = ASSERT_OK(bpf_map_update_batch(sluice__map_fd(s, "services"), keys, vals, &n, NULL),
		       "fill services");
out:
	free(keys);
	free(vals);
	return ok;
}

static void test_rollback_on_full_map(void)
{
	struct sluice_backend_spec b[3];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	static struct snap before, after;
	__u32 n = 2 * SLUICE_MAX_SERVICES - 2; /* two entries (svc + marker) exist */

	if (!s)
		return;
	spec__init(&spec, b, 3, NULL);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service_set"))
		goto out;
	if (!fill_services(s, n, 0x0b000000))
		goto out;
	snap__take(s, &before);
	spec.vip = v4(VIP4 + 1);
	b[2].addr = v4(BE4(9));
	ASSERT_NEQ(sluice__service_set(s, &spec), 0, "service_set into a full map");
	if (!ASSERT_TRUE(strstr(sluice__errmsg(), "services map") != NULL, "message names the map"))
		fprintf(stderr, "    got \"%s\"\n", sluice__errmsg());
	snap__take(s, &after);
	snap__same(&before, &after, "failed service_set");
	snap__free(&before);
	snap__free(&after);
	/* Replacing an existing service needs no new entry: still works. */
	spec.vip = v4(VIP4);
	ASSERT_OK(sluice__service_set(s, &spec), "replace in a full map");
out:
	sluice__close(s);
}

static void test_backend_ids_exhausted(void)
{
	struct sluice_backend_spec b[3];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	static struct snap before, after;
	struct sluice_backend *vals = NULL;
	__u32 *keys = NULL, n = SLUICE_MAX_BACKENDS - 3;

	if (!s)
		return;
	keys = calloc(n, sizeof(*keys));
	vals = calloc(n, sizeof(*vals));
	if (!keys || !vals)
		goto out;
	/* ids 1..65533 taken by another service: 65534 and 65535 left */
	for (__u32 i = 0; i < n; i++) {
		keys[i] = i + 1;
		vals[i].svc_id = 9999;
	}
	if (!ASSERT_OK(bpf_map_update_batch(sluice__map_fd(s, "backends"), keys, vals, &n, NULL),
		       "fill backends"))
		goto out;
	snap__take(s, &before);
	spec__init(&spec, b, 3, NULL);
	ASSERT_EQ(sluice__service_set(s, &spec), -ENOSPC, "third backend has no id");
	ASSERT_TRUE(strstr(sluice__errmsg(), "no free backend id") != NULL, "message");
	snap__take(s, &after);
	snap__same(&before, &after, "service_set without ids");
	snap__free(&before);
	snap__free(&after);
	spec.nbackends = 2;
	ASSERT_OK(sluice__service_set(s, &spec), "two backends fit");
out:
	free(keys);
	free(vals);
	sluice__close(s);
}

static void test_service_del(void)
{
	struct sluice_backend_spec b[3];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	struct sluice_svc_key marker;
	struct sluice_svc svc;
	static struct snap after;
	int sfd;

	if (!s)
		return;
	sfd = sluice__map_fd(s, "services");
	spec__init(&spec, b, 3, NULL);
	ASSERT_OK(sluice__service_set(s, &spec), "set :80");
	spec.port = 443;
	ASSERT_OK(sluice__service_set(s, &spec), "set :443 (same backends, own ids)");
	marker = svc_key(&spec.vip, 0, IPPROTO_TCP);
	ASSERT_OK(sluice__service_del(s, &spec.vip, 80, IPPROTO_TCP), "del :80");
	ASSERT_OK(bpf_map_lookup_elem(sfd, &marker, &svc), "marker stays for :443");
	ASSERT_EQ(sluice__service_del(s, &spec.vip, 80, IPPROTO_TCP), -ENOENT, "del :80 again");
	ASSERT_TRUE(strstr(sluice__errmsg(), "10.96.0.1:80/tcp does not exist") != NULL, "message");
	ASSERT_OK(sluice__service_del(s, &spec.vip, 443, IPPROTO_TCP), "del :443");
	snap__take(s, &after);
	ASSERT_EQ(after.nsvc, 0, "services left");
	ASSERT_EQ(after.nbe, 0, "backends left");
	for (__u32 i = 0; i < SLUICE_MAX_SERVICES; i++)
		if (!ASSERT_EQ(after.inner[i], 0, "maglev slot left"))
			break;
	snap__free(&after);
	sluice__close(s);
}

static void test_zero_and_draining(void)
{
	static const __u16 drain[] = { 0, 0 };
	struct sluice_backend_spec b[2];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	struct sluice_svc_key key, marker;
	struct sluice_svc svc;
	static __u32 table[M];
	int sfd;

	if (!s)
		return;
	sfd = sluice__map_fd(s, "services");
	spec__init(&spec, b, 0, NULL);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service without backends"))
		goto out;
	key = svc_key(&spec.vip, 80, IPPROTO_TCP);
	marker = svc_key(&spec.vip, 0, IPPROTO_TCP);
	ASSERT_OK(bpf_map_lookup_elem(sfd, &key, &svc), "service");
	ASSERT_EQ(svc.backend_count, 0, "backend_count");
	ASSERT_OK(bpf_map_lookup_elem(sfd, &marker, &svc), "marker");
	ASSERT_EQ(maglev__read(s, 1, table), 0, "no table");
	spec__init(&spec, b, 2, NULL);
	ASSERT_OK(sluice__service_set(s, &spec), "two backends");
	ASSERT_NEQ(maglev__read(s, 1, table), 0, "table");
	spec__init(&spec, b, 2, drain);
	ASSERT_OK(sluice__service_set(s, &spec), "all draining");
	ASSERT_OK(bpf_map_lookup_elem(sfd, &key, &svc), "service");
	ASSERT_EQ(svc.backend_count, 0, "backend_count when all drain");
	ASSERT_EQ(maglev__read(s, 1, table), 0, "table removed");
	ASSERT_NEQ(backend_id_of(s, &b[0], NULL), 0, "draining backend stays");
out:
	sluice__close(s);
}

static void test_ipv6(void)
{
	struct sluice_backend_spec b[4];
	struct sluice_service_spec spec = {
		.vip = v6(1), .port = 53, .proto = IPPROTO_UDP, .nbackends = 4, .backends = b
	};
	struct sluice_service_info *info = calloc(1, sizeof(*info));
	struct sluice *s = lib__open();
	struct sluice_backend be;

	if (!s || !info)
		goto out;
	for (int i = 0; i < 4; i++)
		b[i] = (struct sluice_backend_spec){ .addr = v6(0x100 + i),
						     .port = 5353,
						     .weight = 1 };
	if (!ASSERT_OK(sluice__service_set(s, &spec), "v6 service_set"))
		goto out;
	if (!ASSERT_OK(sluice__service_get(s, &spec.vip, 53, IPPROTO_UDP, info), "get"))
		goto out;
	ASSERT_EQ(info->key.family, SLUICE_AF_INET6, "key family");
	ASSERT_EQ(info->nbackends, 4, "nbackends");
	ASSERT_OK(sluice__backend_get(s, info->backend_ids[0], &be, NULL), "backend");
	ASSERT_EQ(be.family, SLUICE_AF_INET6, "backend family");
	ASSERT_EQ(be.port, htons(5353), "backend port");
	check_table(s, &spec, info->svc.svc_id, info->backend_ids);
out:
	free(info);
	sluice__close(s);
}

static void percpu__poke(int fd, __u32 key, size_t vsz)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *v = calloc(ncpus, vsz);

	for (size_t i = 0; v && i < ncpus * vsz / sizeof(__u64); i++)
		v[i] = 1000 + i;
	ASSERT_OK(bpf_map_update_elem(fd, &key, v, BPF_ANY), "poke stats");
	free(v);
}

static void test_stats_not_inherited(void)
{
	struct sluice_service_info *info = calloc(1, sizeof(*info));
	struct sluice_backend_spec b[2];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open();
	struct sluice_backend_stats bst;

	if (!s || !info)
		goto out;
	spec__init(&spec, b, 2, NULL);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set"))
		goto out;
	ASSERT_OK(sluice__service_get(s, &spec.vip, 80, IPPROTO_TCP, info), "get");
	percpu__poke(sluice__map_fd(s, "svc_stats"), info->svc.svc_id,
		     sizeof(struct sluice_svc_stats));
	percpu__poke(sluice__map_fd(s, "backend_stats"), info->backend_ids[0],
		     sizeof(struct sluice_backend_stats));
	ASSERT_OK(sluice__service_get(s, &spec.vip, 80, IPPROTO_TCP, info), "get");
	ASSERT_NEQ(info->stats.packets, 0, "poked stats visible");
	ASSERT_OK(sluice__service_del(s, &spec.vip, 80, IPPROTO_TCP), "del");
	/* A different service now gets the same (lowest free) ids. */
	spec.vip = v4(VIP4 + 7);
	b[0].addr = v4(BE4(77));
	ASSERT_OK(sluice__service_set(s, &spec), "set another");
	ASSERT_OK(sluice__service_get(s, &spec.vip, 80, IPPROTO_TCP, info), "get");
	ASSERT_EQ(info->svc.svc_id, 1, "svc id reused");
	ASSERT_EQ(info->stats.packets + info->stats.bytes + info->stats.flows, 0,
		  "fresh svc stats");
	ASSERT_OK(sluice__backend_get(s, info->backend_ids[0], NULL, &bst), "backend stats");
	ASSERT_EQ(info->backend_ids[0], 1, "backend id reused");
	ASSERT_EQ(bst.packets + bst.bytes + bst.flows, 0, "fresh backend stats");
out:
	free(info);
	sluice__close(s);
}

/* A TCP packet 192.168.0.1:40000 -> 10.96.0.1:80 with the given flags. */
static void pkt__syn(__u8 *buf, __u32 client, __u8 flags)
{
	static const __u8 eth[14] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00 };
	__u32 saddr = htonl(client), daddr = htonl(VIP4);
	__u16 sport = htons(40000), dport = htons(80);

	memset(buf, 0, 54);
	memcpy(buf, eth, sizeof(eth));
	buf[14] = 0x45;
	buf[17] = 40; /* tot_len */
	buf[22] = 64; /* ttl */
	buf[23] = IPPROTO_TCP;
	memcpy(buf + 26, &saddr, 4);
	memcpy(buf + 30, &daddr, 4);
	memcpy(buf + 34, &sport, 2);
	memcpy(buf + 36, &dport, 2);
	buf[46] = 5 << 4; /* doff */
	buf[47] = flags;
	buf[48] = 0xff;
}

static int xdp__run(struct sluice *s, __u8 *in, __u8 *out, __u32 *out_len)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = 54, .data_out = out,
		    .data_size_out = 128);
	int err;

	err = bpf_prog_test_run_opts(sluice__prog_fd(s, SLUICE_PROG_XDP), &opts);
	*out_len = opts.data_size_out;
	return err ? err : (int)opts.retval;
}

/* Library readers against real datapath updates: counters, service and
 * backend stats, conntrack count; a flow keeps its backend after the
 * backend leaves the set; a service without backends refuses. */
static void test_datapath_roundtrip(void)
{
	struct sluice_service_info *info = calloc(1, sizeof(*info));
	struct sluice_backend_spec b[3];
	struct sluice_service_spec spec;
	struct sluice *s = lib__open_progs();
	struct sluice_backend_stats bst;
	__u64 cnt[SLUICE_CNT__MAX], ct = 0;
	__u8 in[54], out[128];
	__u32 len, chosen = 0, daddr;

	if (!s || !info)
		goto out;
	spec__init(&spec, b, 3, NULL);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set"))
		goto out;
	pkt__syn(in, 0xc0a80001, 0x02);
	if (!ASSERT_EQ(xdp__run(s, in, out, &len), XDP_PASS, "SYN verdict"))
		goto out;
	memcpy(&daddr, out + 30, 4);
	for (int i = 0; i < 3; i++)
		if (daddr == b[i].addr.addr[0])
			chosen = (__u32)i + 1;
	if (!ASSERT_NEQ(chosen, 0, "DNAT to one of the backends"))
		goto out;
	ASSERT_OK(sluice__counters(s, cnt), "counters");
	ASSERT_EQ(cnt[SLUICE_CNT_LB_NEW], 1, "lb_new");
	/* a SYN is unconfirmed: both entries in ct_new, none in conntrack */
	ASSERT_OK(sluice__ct_count(s, &ct), "ct_count");
	ASSERT_EQ(ct, 0, "conntrack entries of an unconfirmed flow");
	ASSERT_OK(sluice__ct_new_count(s, &ct), "ct_new_count");
	ASSERT_EQ(ct, 2, "ct_new entries (forward + reply)");
	ASSERT_OK(sluice__service_get(s, &spec.vip, 80, IPPROTO_TCP, info), "get");
	ASSERT_EQ(info->stats.flows, 1, "service flows");
	ASSERT_EQ(info->stats.packets, 1, "service packets");
	ASSERT_EQ(info->stats.bytes, 54, "service bytes");
	ASSERT_OK(sluice__backend_get(s, backend_id_of(s, &b[chosen - 1], NULL), NULL, &bst),
		  "backend stats");
	ASSERT_EQ(bst.flows, 1, "backend flows");

	/* the chosen backend leaves: the established flow stays on it */
	b[chosen - 1] = b[2];
	spec.nbackends = 2;
	ASSERT_OK(sluice__service_set(s, &spec), "set without the chosen backend");
	pkt__syn(in, 0xc0a80001, 0x10);
	ASSERT_EQ(xdp__run(s, in, out, &len), XDP_PASS, "ACK verdict");
	ASSERT_TRUE(!memcmp(out + 30, &daddr, 4), "established flow keeps its backend");
	ASSERT_OK(sluice__counters(s, cnt), "counters");
	ASSERT_EQ(cnt[SLUICE_CNT_LB_EST], 1, "lb_established");

	/* no backends: a new client is refused with a RST */
	spec.nbackends = 0;
	ASSERT_OK(sluice__service_set(s, &spec), "set without backends");
	pkt__syn(in, 0xc0a80002, 0x02);
	ASSERT_EQ(xdp__run(s, in, out, &len), XDP_TX, "SYN to an empty service");
	ASSERT_OK(sluice__service_get(s, &spec.vip, 80, IPPROTO_TCP, info), "get");
	ASSERT_EQ(info->stats.refused, 1, "service refused");
out:
	free(info);
	sluice__close(s);
}

/* Service i of a many-service plan: VIP 10.97.x.y (odd i: IPv6), i % 13
 * backends (none for i % 13 == 0), every fifth one draining. `gen`
 * shifts the backend addresses of every third service, so a second plan
 * replaces some backends and keeps others. */
static void many__spec(struct sluice_service_spec *spec, struct sluice_backend_spec *b, __u32 i,
		       __u32 gen)
{
	__u32 n = i % 13;

	memset(spec, 0, sizeof(*spec));
	spec->vip = i % 2 ? v6(0x10000 + i) : v4(0x0a610000 + i);
	spec->port = 80 + i % 3;
	spec->proto = i % 4 == 2 ? IPPROTO_UDP : IPPROTO_TCP;
	spec->nbackends = n;
	spec->backends = b;
	for (__u32 k = 0; k < n; k++) {
		__u32 host = i * 16 + k + (gen && i % 3 == 0 && k % 2 ? 100 : 0);

		b[k] = (struct sluice_backend_spec){
			.addr = i % 2 ? v6(0x20000000 + host) : v4(0x0b000000 + host),
			.port = 8080,
			.weight = (k + i) % 5 == 4 ? 0 : 1 + k % 3,
		};
	}
}

/* The Maglev table of spec as indexes into spec->backends (-1: a slot
 * naming no backend of the spec), read back through the maps. */
static bool many__table(struct sluice *s, const struct sluice_service_spec *spec, int *out)
{
	static struct sluice_service_info info;
	static __u32 table[M];
	__u32 ids[13] = { 0 };
	struct sluice_backend be;

	if (!ASSERT_OK(sluice__service_get(s, &spec->vip, spec->port, spec->proto, &info),
		       sluice__errmsg()))
		return false;
	for (__u32 i = 0; i < info.nbackends; i++) {
		if (!ASSERT_OK(sluice__backend_get(s, info.backend_ids[i], &be, NULL), "backend"))
			return false;
		for (__u32 k = 0; k < spec->nbackends; k++)
			if (be.port == htons(spec->backends[k].port) &&
			    !memcmp(be.addr, spec->backends[k].addr.addr,
				    spec->vip.family == SLUICE_AF_INET ? 4 : 16))
				ids[k] = info.backend_ids[i];
	}
	for (__u32 k = 0; k < spec->nbackends; k++)
		if (!ASSERT_NEQ(ids[k], 0, "every backend of the spec is in the maps"))
			return false;
	memset(table, 0, sizeof(table));
	maglev__read(s, info.svc.svc_id, table); /* no table: all slots 0 */
	for (__u32 i = 0; i < M; i++) {
		out[i] = -1;
		for (__u32 k = 0; k < spec->nbackends; k++)
			if (table[i] == ids[k])
				out[i] = (int)k;
	}
	return true;
}

/* Same services and Maglev tables naming the same backends; with
 * same_ids also the same backend ids (byte-identical maps). */
static void many__same_maps(struct sluice *a, struct sluice *b,
			    const struct sluice_service_spec *specs, __u32 n, bool same_ids,
			    const char *what)
{
	static struct snap sa, sb;
	static int ta[M], tb[M];
	__u32 bad = 0;

	snap__take(a, &sa);
	snap__take(b, &sb);
	if (ASSERT_EQ(sa.nsvc, sb.nsvc, "services entries") &&
	    ASSERT_EQ(sa.nbe, sb.nbe, "backends entries")) {
		ASSERT_TRUE(!memcmp(sa.svc, sb.svc,
				    sa.nsvc * (sizeof(struct sluice_svc_key) +
					       sizeof(struct sluice_svc))),
			    "services bytes");
		if (same_ids)
			ASSERT_TRUE(
				!memcmp(sa.be, sb.be,
					sa.nbe * (sizeof(__u32) + sizeof(struct sluice_backend))),
				"backends bytes");
	}
	for (__u32 i = 0; i < n; i++) {
		if (!many__table(a, &specs[i], ta) || !many__table(b, &specs[i], tb))
			break;
		bad += !!memcmp(ta, tb, sizeof(ta));
	}
	ASSERT_EQ(bad, 0, "services whose Maglev tables differ");
	if (bad)
		fprintf(stderr, "    after: %s\n", what);
	snap__free(&sa);
	snap__free(&sb);
}

#define MANY_N (SLUICE_SET_GROUP + 44)      /* two groups */
#define MANY3_N (2 * SLUICE_SET_GROUP + 44) /* three */

/* service_set_many writes what service_set one by one writes: the same
 * bytes from empty; over a first plan, the same services and tables
 * (backend ids may differ, see below). */
static void test_set_many_equals_one_by_one(void)
{
	static struct sluice_service_spec specs[MANY_N];
	static struct sluice_backend_spec bes[MANY_N][13];
	struct sluice *a = lib__open(), *b = lib__open();
	__u32 applied = 0, failed = 0, tables = 0;
	static struct snap s1, s2;

	if (!a || !b)
		goto out;
	for (__u32 gen = 0; gen < 2; gen++) {
		for (__u32 i = 0; i < MANY_N; i++)
			many__spec(&specs[i], bes[i], i, gen);
		if (!ASSERT_OK(sluice__service_set_many(a, specs, MANY_N, &applied, &failed),
			       sluice__errmsg()))
			goto out;
		ASSERT_EQ(applied, MANY_N, "applied");
		ASSERT_EQ(failed, MANY_N, "failed (none: n)");
		for (__u32 i = 0; i < MANY_N; i++)
			if (!ASSERT_OK(sluice__service_set(b, &specs[i]), sluice__errmsg()))
				goto out;
		/* one by one, a service's stale backend ids are free for the
		 * next service; in one call they are not: ids may differ */
		many__same_maps(a, b, specs, MANY_N, gen == 0, gen ? "second plan" : "first plan");
	}
	/* unchanged services are not rewritten: no table swapped */
	snap__take(a, &s1);
	ASSERT_OK(sluice__service_set_many(a, specs, MANY_N, NULL, NULL), "same plan again");
	snap__take(a, &s2);
	for (__u32 id = 0; id < SLUICE_MAX_SERVICES; id++)
		tables += !!s1.inner[id];
	ASSERT_TRUE(tables > MANY_N / 2, "most services have a table");
	ASSERT_TRUE(!memcmp(s1.inner, s2.inner, sizeof(s1.inner)),
		    "every table kept (same map ids)");
	snap__free(&s1);
	snap__free(&s2);
out:
	if (a)
		sluice__close(a);
	if (b)
		sluice__close(b);
}

/* service_del_many leaves the maps as service_del one by one does: the
 * same services, backends, tables and VIP markers (one kept: another
 * service still uses its VIP); a service that does not exist is skipped,
 * an invalid ref changes nothing. */
static void test_del_many_equals_one_by_one(void)
{
	static struct sluice_service_spec specs[MANY_N + 1];
	static struct sluice_backend_spec bes[MANY_N + 1][13];
	static struct sluice_service_spec keep[MANY_N + 1];
	static struct sluice_service_ref refs[MANY_N + 2];
	static bool gone[MANY_N + 1];
	static struct snap before, after, used_a, used_b;
	struct sluice *a = lib__open(), *b = lib__open();
	__u32 n = 0, done = 0, nkeep = 0;
	struct sluice_features f;

	if (!a || !b)
		goto out;
	sluice__features(&f);
	for (__u32 i = 0; i < MANY_N; i++)
		many__spec(&specs[i], bes[i], i, 0);
	/* a second service on the VIP of service 0: its marker must stay */
	many__spec(&specs[MANY_N], bes[MANY_N], 0, 0);
	specs[MANY_N].port = 9999;
	if (!ASSERT_OK(sluice__service_set_many(a, specs, MANY_N + 1, NULL, NULL), "set a") ||
	    !ASSERT_OK(sluice__service_set_many(b, specs, MANY_N + 1, NULL, NULL), "set b"))
		goto out;
	/* the ids in use before the deletes, for the tables check below */
	used_a.svc = hash__dump(sluice__map_fd(a, "services"), sizeof(struct sluice_svc_key),
				sizeof(struct sluice_svc), &used_a.nsvc);
	used_b.svc = hash__dump(sluice__map_fd(b, "services"), sizeof(struct sluice_svc_key),
				sizeof(struct sluice_svc), &used_b.nsvc);
	for (__u32 i = 0; i < MANY_N; i += 1 + i % 3) {
		gone[i] = true;
		refs[n++] = (struct sluice_service_ref){ .vip = specs[i].vip,
							 .port = specs[i].port,
							 .proto = specs[i].proto };
		if (!ASSERT_OK(sluice__service_del(b, &specs[i].vip, specs[i].port, specs[i].proto),
			       sluice__errmsg()))
			goto out;
	}
	refs[n] = refs[0];
	refs[n++].port = 7; /* never existed: skipped */
	/* an invalid ref first: nothing is deleted */
	snap__take(a, &before);
	refs[n] =
		(struct sluice_service_ref){ .vip = specs[1].vip, .port = 0, .proto = IPPROTO_TCP };
	ASSERT_EQ(sluice__service_del_many(a, refs, n + 1, &done), -EINVAL, "port 0 refused");
	ASSERT_EQ(done, 0, "nothing done");
	snap__take(a, &after);
	snap__same(&before, &after, "rejected service_del_many");
	snap__free(&before);
	snap__free(&after);
	ASSERT_OK(sluice__service_del_many(a, refs, n, &done), sluice__errmsg());
	ASSERT_EQ(done, n, "done");
	for (__u32 i = 0; i <= MANY_N; i++)
		if (!gone[i])
			keep[nkeep++] = specs[i];
	ASSERT_TRUE(nkeep > 0 && nkeep < MANY_N, "some kept, some deleted");
	many__same_maps(a, b, keep, nkeep, true, "deletes");
	/* and no table naming a backend is left behind for a deleted service
	 * (service_del_many leaves a shared empty one in the slot); where each
	 * slot read waits for a grace period (see snap__take), the slots of
	 * the ids in use before the deletes, of both handles */
	for (__u32 id = 1; id < SLUICE_MAX_SERVICES; id++) {
		static const __u32 zero[M];
		static __u32 ta[M], tb[M];
		bool ha, hb;

		if (!f.has[SLUICE_FEAT_OUTER_READ_FAST] && !snap__names(&used_a, id) &&
		    !snap__names(&used_b, id))
			continue;
		memset(ta, 0, sizeof(ta));
		memset(tb, 0, sizeof(tb));
		maglev__read(a, id, ta);
		maglev__read(b, id, tb);
		ha = memcmp(ta, zero, sizeof(ta)) != 0;
		hb = memcmp(tb, zero, sizeof(tb)) != 0;
		if (!ASSERT_EQ(ha, hb, "a table naming backends in both or neither")) {
			fprintf(stderr, "    service id %u\n", id);
			break;
		}
	}
out:
	snap__free(&used_a);
	snap__free(&used_b);
	if (a)
		sluice__close(a);
	if (b)
		sluice__close(b);
}

/* A bad spec or a service given twice: -EINVAL naming it, nothing written. */
static void test_set_many_rejects(void)
{
	static struct sluice_service_spec specs[40];
	static struct sluice_backend_spec bes[40][13];
	static struct snap before, after;
	struct sluice *s = lib__open();
	__u32 applied = 99, failed = 99;

	if (!s)
		return;
	for (__u32 i = 0; i < 40; i++)
		many__spec(&specs[i], bes[i], i, 0);
	ASSERT_OK(sluice__service_set_many(s, specs, 10, NULL, NULL), "first ten");
	snap__take(s, &before);
	specs[31] = specs[17];
	ASSERT_EQ(sluice__service_set_many(s, specs, 40, &applied, &failed), -EINVAL, "duplicate");
	ASSERT_EQ(applied, 0, "applied");
	ASSERT_EQ(failed, 31, "failed names the second copy");
	if (!ASSERT_TRUE(strstr(sluice__errmsg(), "given twice (specs 17 and 31)") != NULL,
			 "message"))
		fprintf(stderr, "    got \"%s\"\n", sluice__errmsg());
	many__spec(&specs[31], bes[31], 31, 0);
	bes[23][1].port = 0;
	ASSERT_EQ(sluice__service_set_many(s, specs, 40, &applied, &failed), -EINVAL, "bad port");
	ASSERT_EQ(failed, 23, "failed names the bad spec");
	snap__take(s, &after);
	snap__same(&before, &after, "rejected service_set_many");
	snap__free(&before);
	snap__free(&after);
	sluice__close(s);
}

/* A group that fails half-way is undone whole; the groups before it stay. */
/* n services of one backend each: VIPs from vip up, backend addresses
 * from be up. */
static void specs__one_each(struct sluice_service_spec *specs, struct sluice_backend_spec (*bes)[1],
			    __u32 n, __u32 vip, __u32 be)
{
	for (__u32 i = 0; i < n; i++) {
		specs[i] = (struct sluice_service_spec){ .vip = v4(vip + i),
							 .port = 80,
							 .proto = IPPROTO_TCP,
							 .backends = bes[i],
							 .nbackends = 1 };
		bes[i][0] = (struct sluice_backend_spec){ .addr = v4(be + i),
							  .port = 8080,
							  .weight = 1 };
	}
}

/* After a set_many call of specs that failed past its first group: the
 * services entries are those of the first group only, and so are the
 * backends of any service (after: the maps' snapshot). */
static void first_group_only(struct sluice *s, const struct sluice_service_spec *specs, __u32 n,
			     const struct snap *after)
{
	int fd = sluice__map_fd(s, "services");
	struct sluice_svc_key key;
	struct sluice_svc svc;
	__u32 be_left = 0;

	for (__u32 i = 0; i < n; i++) {
		key = svc_key(&specs[i].vip, 80, IPPROTO_TCP);
		if (!ASSERT_EQ(bpf_map_lookup_elem(fd, &key, &svc) == 0, i < SLUICE_SET_GROUP,
			       "service present iff in the first group")) {
			fprintf(stderr, "    service %u\n", i);
			break;
		}
	}
	for (__u32 i = 0; i < after->nbe; i++) {
		const struct sluice_backend *be =
			(const void *)(after->be + i * (sizeof(__u32) + sizeof(*be)) +
				       sizeof(__u32));

		be_left += be->svc_id >= 1 && be->svc_id <= SLUICE_SET_GROUP;
	}
	ASSERT_EQ(be_left, SLUICE_SET_GROUP, "backends: the first group's, none of the others");
}

/* nspecs services into a services map with room for the first group and
 * 5 more: the second group fails as it lands, after the first landed and,
 * with a third group, after that one was written (#16: the pipeline writes
 * group k+1 while group k's swaps wait). Only the first group may stay. */
static void set_many_full_services(__u32 nspecs)
{
	static struct sluice_service_spec specs[MANY3_N];
	static struct sluice_backend_spec bes[MANY3_N][1];
	struct sluice *s = lib__open();
	/* room for the first group and 5 more services (entry + VIP marker
	 * each), plus the marker of the 6th */
	__u32 room = 2 * (SLUICE_SET_GROUP + 5) + 1, n = 2 * SLUICE_MAX_SERVICES - room;
	__u32 applied = 0, failed = 0, tables = 0, last;
	struct sluice_features f;
	static struct snap after;
	static __u32 table[M];

	if (!s)
		return;
	if (!fill_services(s, n, 0x0c000000))
		goto out;
	specs__one_each(specs, bes, nspecs, 0x0a620000, 0x0b100000);
	ASSERT_EQ(sluice__service_set_many(s, specs, nspecs, &applied, &failed), -E2BIG,
		  "services map full in the second group");
	ASSERT_EQ(applied, SLUICE_SET_GROUP, "the first group is live");
	ASSERT_EQ(failed, SLUICE_SET_GROUP + 5, "failed names the service that did not fit");
	if (!ASSERT_TRUE(strstr(sluice__errmsg(), "services map") != NULL, "message names the map"))
		fprintf(stderr, "    got \"%s\"\n", sluice__errmsg());
	snap__take(s, &after);
	ASSERT_EQ(after.nbe, SLUICE_SET_GROUP, "backends: the first group's only");
	first_group_only(s, specs, nspecs, &after);
	/* every id's slot; where each slot read waits for a grace period
	 * (6.1: 16-18 ms, minutes for all 32767 under qemu), the ids the two
	 * groups can have had: the library hands out the lowest free ids, and
	 * fill_services() took none */
	sluice__features(&f);
	last = f.has[SLUICE_FEAT_OUTER_READ_FAST] ? SLUICE_MAX_SERVICES : nspecs + 1;
	for (__u32 id = 1; id < last; id++)
		tables += maglev__read(s, id, table) != 0;
	ASSERT_EQ(tables, SLUICE_SET_GROUP, "Maglev tables: the first group's only");
	snap__free(&after);
out:
	sluice__close(s);
}

static void test_set_many_group_rollback(void)
{
	set_many_full_services(MANY_N);
}

static void test_set_many_pipeline_undo(void)
{
	set_many_full_services(MANY3_N);
}

/* Every backend id above the first free_ids taken by an entry of no
 * service (an id out of range: the library's junk). */
static bool fill_backends_but(struct sluice *s, __u32 free_ids)
{
	__u32 n = SLUICE_MAX_BACKENDS - 1 - free_ids, *ids = calloc(n, sizeof(*ids));
	struct sluice_backend *vals = calloc(n, sizeof(*vals));
	bool ok = false;

	if (!ASSERT_TRUE(ids && vals, "alloc"))
		goto out;
	for (__u32 i = 0; i < n; i++) {
		ids[i] = free_ids + 1 + i;
		vals[i] = (struct sluice_backend){ .family = SLUICE_AF_INET,
						   .svc_id = SLUICE_MAX_SERVICES + 1 };
	}
	ok = ASSERT_OK(bpf_map_update_batch(sluice__map_fd(s, "backends"), ids, vals, &n, NULL),
		       "fill backends");
out:
	free(ids);
	free(vals);
	return ok;
}

/* The pipeline the other way round: the second group fails while it is
 * planned (no free backend id), with the first group's swaps in flight.
 * The first group still lands and counts as applied, and the error is the
 * second group's. */
static void test_set_many_pipeline_behind(void)
{
	static struct sluice_service_spec specs[MANY_N];
	static struct sluice_backend_spec bes[MANY_N][1];
	struct sluice *s = lib__open();
	__u32 free_ids = SLUICE_SET_GROUP + 5, applied = 0, failed = 0;
	static struct snap after;

	if (!s)
		return;
	if (!fill_backends_but(s, free_ids))
		goto out;
	specs__one_each(specs, bes, MANY_N, 0x0a630000, 0x0b110000);
	ASSERT_EQ(sluice__service_set_many(s, specs, MANY_N, &applied, &failed), -ENOSPC,
		  "no backend id left in the second group");
	ASSERT_EQ(applied, SLUICE_SET_GROUP, "the first group is live");
	ASSERT_EQ(failed, free_ids, "failed names the service with no id");
	if (!ASSERT_TRUE(strstr(sluice__errmsg(), "no free backend id") != NULL,
			 "the second group's message, after the first landed"))
		fprintf(stderr, "    got \"%s\"\n", sluice__errmsg());
	snap__take(s, &after);
	first_group_only(s, specs, MANY_N, &after);
	snap__free(&after);
out:
	sluice__close(s);
}

/* At the backend ids' limit, a group that moves its services' backends to
 * new addresses frees its old ids only once it has landed (they are
 * deferred deletes); the next group needs them. The pipeline plans that
 * group before the one ahead has landed: out of ids, it lands the one
 * ahead and begins again, and the whole call succeeds, as it did when
 * groups went one after another. */
static void test_set_many_pipeline_at_capacity(void)
{
	static struct sluice_service_spec specs[MANY_N];
	static struct sluice_backend_spec bes[MANY_N][1];
	struct sluice *s = lib__open();
	/* ids free: the first group twice over (old and new addresses at once),
	 * 10 more; the second group needs 44 */
	__u32 free_ids = 2 * SLUICE_SET_GROUP + 10, applied = 0, failed = 0;
	static struct snap after;

	if (!s)
		return;
	if (!fill_backends_but(s, free_ids))
		goto out;
	specs__one_each(specs, bes, SLUICE_SET_GROUP, 0x0a640000, 0x0b120000);
	if (!ASSERT_OK(sluice__service_set_many(s, specs, SLUICE_SET_GROUP, NULL, NULL),
		       sluice__errmsg()))
		goto out;
	/* the first group's backends move; the second group is new */
	specs__one_each(specs, bes, MANY_N, 0x0a640000, 0x0b130000);
	if (!ASSERT_OK(sluice__service_set_many(s, specs, MANY_N, &applied, &failed),
		       sluice__errmsg()))
		fprintf(stderr, "    applied %u, failed %u\n", applied, failed);
	ASSERT_EQ(applied, MANY_N, "every service applied");
	snap__take(s, &after);
	ASSERT_EQ(after.nsvc, 2 * MANY_N, "services entries (each with its VIP marker)");
	snap__free(&after);
out:
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_service_set_readback),
	TEST(test_service_get),
	TEST(test_service_replace),
	TEST(test_validation_leaves_maps),
	TEST(test_rollback_on_full_map),
	TEST(test_backend_ids_exhausted),
	TEST(test_service_del),
	TEST(test_zero_and_draining),
	TEST(test_ipv6),
	TEST(test_stats_not_inherited),
	TEST(test_datapath_roundtrip),
	TEST(test_set_many_equals_one_by_one),
	TEST(test_set_many_rejects),
	TEST(test_del_many_equals_one_by_one),
	TEST(test_set_many_group_rollback),
	TEST(test_set_many_pipeline_undo),
	TEST(test_set_many_pipeline_behind),
	TEST(test_set_many_pipeline_at_capacity),
};

int main(int argc, char **argv)
{
	if (!test__have_root("service", "loads BPF"))
		return 0;
	/* no program attached or run but where a test says so (lb_load.h) */
	test__lb_load = TEST_LB_NO_PROGS;
	return test__run_all("service", tests, ARRAY_SIZE(tests), argc, argv);
}
