// SPDX-License-Identifier: MIT
/*
 * test_metrics_collect.c - metrics__collect() against the real datapath
 * maps (run as root): per-service and per-backend stats and health read
 * in batches over the ids in use (#16) equal what one lookup per id
 * reads, across batch boundaries (more than 1024 ids); --metrics-backends
 * off and auto leave out every sluice_backend_* series while the
 * services' healthy counts stay; auto keeps them up to 10000 backends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb_load.h"
#include "metrics.h"
#include "sluice.h"
#include "test.h"
#include "test_metrics_expected.h"

#define NBE 10

static struct sluice *lib__open(void)
{
	struct sluice_opts opts = {};
	struct sluice *s = NULL;

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	return s;
}

/* n services of NBE backends each: 10.96.x.y:80 -> 10.1.x.y0+j:8080;
 * edit: the first service without its last backend, the second's first
 * backend at weight 3. */
static int program_edit(struct sluice *s, __u32 n, bool edit)
{
	struct sluice_service_spec *specs = calloc(n, sizeof(*specs));
	struct sluice_backend_spec *bes = calloc((size_t)n * NBE, sizeof(*bes));
	__u32 failed = 0;
	int err = -ENOMEM;

	if (specs && bes) {
		for (__u32 i = 0; i < n; i++) {
			struct sluice_backend_spec *b = &bes[(size_t)i * NBE];

			specs[i].vip.family = SLUICE_AF_INET;
			specs[i].vip.addr[0] = htonl(0x0a600000 + i + 1);
			specs[i].port = 80;
			specs[i].proto = IPPROTO_TCP;
			specs[i].nbackends = NBE;
			specs[i].backends = b;
			for (__u32 j = 0; j < NBE; j++) {
				b[j].addr.family = SLUICE_AF_INET;
				b[j].addr.addr[0] = htonl(0x0a010000 + i * 16 + j + 1);
				b[j].port = 8080;
				b[j].weight = 1;
			}
		}
		if (edit) {
			specs[0].nbackends = NBE - 1;
			bes[NBE].weight = 3;
		}
		err = sluice__service_set_many(s, specs, n, NULL, &failed);
		if (err)
			fprintf(stderr, "    service %u: %s\n", failed, sluice__errmsg());
	}
	free(specs);
	free(bes);
	return err;
}

static int program(struct sluice *s, __u32 n)
{
	return program_edit(s, n, false);
}

/* Every CPU's copy of a per-CPU slot set to (id + 1) * (cpu + 1) * (f + 1). */
static int write_percpu(int fd, __u32 id, __u32 nfields)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *v = calloc((size_t)ncpus * nfields, sizeof(*v));
	int err;

	if (!v)
		return -ENOMEM;
	for (int c = 0; c < ncpus; c++)
		for (__u32 f = 0; f < nfields; f++)
			v[(size_t)c * nfields + f] = (__u64)(id + 1) * (c + 1) * (f + 1);
	err = bpf_map_update_elem(fd, &id, v, BPF_ANY);
	free(v);
	return err;
}

static __u64 want_sum(__u32 id, __u32 f)
{
	int ncpus = libbpf_num_possible_cpus();

	return (__u64)(id + 1) * (f + 1) * ((__u64)ncpus * (ncpus + 1) / 2);
}

/* 120 services x 10: backend ids past one batch of 1024; every
 * backend's and service's stats distinct; one backend ejected. */
static void test_batched_reads_match(void)
{
	struct sluice *s = lib__open();
	struct metrics_src src = { .backends = METRICS_BACKENDS_ON };
	struct metrics_snapshot *m = NULL;
	__u32 ejected_id = 0;
	int bst, sst, bh;

	if (!s)
		return;
	src.s = s;
	if (!ASSERT_OK(program(s, 120), "program 120 x 10"))
		goto out;
	bst = sluice__map_fd(s, "backend_stats");
	sst = sluice__map_fd(s, "svc_stats");
	bh = sluice__map_fd(s, "backend_health");
	if (!ASSERT_OK(metrics__collect(&src, &m), "collect"))
		goto out;
	ASSERT_EQ(m->nservices, 120, "services");
	ASSERT_EQ(m->nbackends, 120 * NBE, "backends");
	ASSERT_FALSE(m->no_backend_series, "series on");
	for (size_t i = 0; i < m->nbackends; i++)
		ASSERT_OK(write_percpu(bst, m->backends[i].backend_id, 3), "write backend_stats");
	for (size_t i = 0; i < m->nservices; i++)
		ASSERT_OK(write_percpu(sst, m->services[i].svc_id, 4), "write svc_stats");
	{
		/* one backend of the first service ejected for a minute */
		struct sluice_svc_health sh;
		struct sluice_backend_health h = { .fails = 7, .flags = SLUICE_BH_F_EJECTED };
		struct timespec t;

		ejected_id = m->backends[0].backend_id;
		clock_gettime(CLOCK_MONOTONIC, &t);
		h.ejected_until_ns = (t.tv_sec + 60) * 1000000000ull;
		ASSERT_OK(bpf_map_update_elem(bh, &ejected_id, &h, BPF_ANY), "eject");
		ASSERT_OK(sluice__svc_health(s, m->services[m->backends[0].service].svc_id, &sh),
			  "svc_health");
		ASSERT_TRUE(sh.threshold > 0, "detection on by default");
	}
	metrics__snapshot_free(m);
	m = NULL;
	if (!ASSERT_OK(metrics__collect(&src, &m), "collect again"))
		goto out;
	for (size_t i = 0; i < m->nbackends; i++) {
		const struct metrics_backend *b = &m->backends[i];

		ASSERT_EQ(b->stats.packets, want_sum(b->backend_id, 0), "backend packets");
		ASSERT_EQ(b->stats.bytes, want_sum(b->backend_id, 1), "backend bytes");
		ASSERT_EQ(b->stats.flows, want_sum(b->backend_id, 2), "backend flows");
		if (b->backend_id == ejected_id) {
			ASSERT_EQ(b->health, SLUICE_BEH_EJECTED, "ejected backend");
			ASSERT_EQ(b->fails, 7, "its failures");
		} else {
			ASSERT_EQ(b->health, SLUICE_BEH_HEALTHY, "healthy backend");
		}
		ASSERT_TRUE(b->addr[0] != '\0', "backend label");
	}
	for (size_t i = 0; i < m->nservices; i++) {
		const struct metrics_service *v = &m->services[i];
		bool has_ejected = false;

		for (size_t j = 0; j < m->nbackends; j++)
			if (m->backends[j].backend_id == ejected_id && m->backends[j].service == i)
				has_ejected = true;
		ASSERT_EQ(v->stats.packets, want_sum(v->svc_id, 0), "service packets");
		ASSERT_EQ(v->stats.refused, want_sum(v->svc_id, 3), "service refused");
		ASSERT_EQ(v->healthy, has_ejected ? NBE - 1 : NBE, "healthy backends");
		ASSERT_TRUE(v->health.threshold > 0, "service health read");
	}
out:
	metrics__snapshot_free(m);
	sluice__close(s);
}

static char *render(const struct metrics_src *src)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	if (metrics__render(src, f)) {
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	return text;
}

/* off: no sluice_backend_* series at all, the services' stay. */
static void test_backends_off(void)
{
	struct sluice *s = lib__open();
	struct metrics_src src = { .backends = METRICS_BACKENDS_OFF };
	char *on = NULL, *off = NULL;

	if (!s)
		return;
	src.s = s;
	if (!ASSERT_OK(program(s, 3), "program 3 x 10"))
		goto out;
	off = render(&src);
	src.backends = METRICS_BACKENDS_ON;
	on = render(&src);
	if (!ASSERT_TRUE(on && off, "render"))
		goto out;
	ASSERT_TRUE(strstr(on, "\nsluice_backend_packets_total{") != NULL, "on: backend series");
	ASSERT_TRUE(strstr(on, "\nsluice_metrics_backend_series 1\n") != NULL, "on: gauge 1");
	ASSERT_TRUE(strstr(off, "\nsluice_backend_") == NULL, "off: no backend sample");
	ASSERT_TRUE(strstr(off, "# TYPE sluice_backend_") == NULL, "off: no backend family");
	ASSERT_TRUE(strstr(off, "\nsluice_metrics_backend_series 0\n") != NULL, "off: gauge 0");
	ASSERT_TRUE(strstr(off,
			   "sluice_service_healthy_backends{service=\"10.96.0.1:80/tcp\"} 10\n") !=
			    NULL,
		    "off: healthy count of the service");
	ASSERT_TRUE(strstr(on,
			   "sluice_service_healthy_backends{service=\"10.96.0.1:80/tcp\"} 10\n") !=
			    NULL,
		    "on: healthy count of the service");
out:
	free(on);
	free(off);
	sluice__close(s);
}

/* The library's internal: forget the handle's index (the next reader walks the maps). */
void svc__snap_drop(struct sluice *s);

/* Backends read from the handle's index (#16: no walk of the backends
 * hash per scrape) give the very text a walk of the map gives, per-backend
 * series included, after edits; a removed backend whose delete waits for
 * the flush is no series either way once flushed, and is counted in the
 * map's entries while it waits. */
static void test_index_matches_walk(void)
{
	struct sluice *s = lib__open();
	struct metrics_src src = { .backends = METRICS_BACKENDS_ON };
	struct metrics_snapshot *m = NULL;
	char *ix = NULL, *walk = NULL;

	if (!s)
		return;
	src.s = s;
	if (!ASSERT_OK(program(s, 120), "program 120 x 10") ||
	    !ASSERT_OK(program_edit(s, 120, true), "edit two services"))
		goto out;
	ASSERT_EQ(sluice__deferred_count(s), 1, "the removed backend waits for the flush");
	if (ASSERT_OK(metrics__collect(&src, &m), "collect from the index")) {
		ASSERT_EQ(m->nbackends, 120 * NBE - 1, "the removed backend is no series");
		for (__u32 k = 0; k < m->nmaps; k++)
			if (!strcmp(m->maps[k].name, "backends"))
				ASSERT_EQ(m->maps[k].entries, 120 * NBE,
					  "still in the map: counted");
	}
	ASSERT_EQ(sluice__flush_deferred(s), 1, "flush deletes it");
	ix = render(&src);
	svc__snap_drop(s);
	walk = render(&src);
	if (ASSERT_TRUE(ix && walk, "render"))
		ASSERT_TRUE(!strcmp(ix, walk), "index and walk give the same text");
	ASSERT_TRUE(ix && strstr(ix, "sluice_backend_weight{") != NULL, "backend series there");
out:
	metrics__snapshot_free(m);
	free(ix);
	free(walk);
	sluice__close(s);
}

/* auto: series up to METRICS_BACKENDS_AUTO_MAX backends, none past it. */
static void test_backends_auto(void)
{
	struct sluice *s = lib__open();
	struct metrics_src src = { .backends = METRICS_BACKENDS_AUTO };
	struct metrics_snapshot *m = NULL;

	if (!s)
		return;
	src.s = s;
	if (!ASSERT_OK(program(s, METRICS_BACKENDS_AUTO_MAX / NBE), "program 1000 x 10"))
		goto out;
	if (ASSERT_OK(metrics__collect(&src, &m), "collect at the limit")) {
		ASSERT_EQ(m->nbackends, METRICS_BACKENDS_AUTO_MAX, "backends at the limit");
		ASSERT_FALSE(m->no_backend_series, "series at the limit");
	}
	metrics__snapshot_free(m);
	m = NULL;
	if (!ASSERT_OK(program(s, METRICS_BACKENDS_AUTO_MAX / NBE + 1), "one service more"))
		goto out;
	if (ASSERT_OK(metrics__collect(&src, &m), "collect past the limit")) {
		ASSERT_EQ(m->nbackends, METRICS_BACKENDS_AUTO_MAX + NBE, "backends past the limit");
		ASSERT_TRUE(m->no_backend_series, "no series past the limit");
		ASSERT_EQ(m->services[m->nservices - 1].healthy, NBE, "healthy still counted");
	}
out:
	metrics__snapshot_free(m);
	sluice__close(s);
}

/* The sluice_map_* lines of @text about the policy maps, in order. */
static char *policy_series(const char *text)
{
	char *out = calloc(1, strlen(text) + 1), *o = out;
	const char *l = text, *nl, *m;

	while (out && *l) {
		nl = strchr(l, '\n');
		nl = nl ? nl + 1 : l + strlen(l);
		m = strstr(l, "{map=\"policy");
		if (!strncmp(l, "sluice_map_", 11) && m && m < nl) {
			memcpy(o, l, (size_t)(nl - l));
			o += nl - l;
		}
		l = nl;
	}
	return out;
}

/* The access policy's maps (#15) in sluice_map_entries/_capacity: one
 * service with two deny prefixes (both in the trie "policy" and, of two
 * lengths, in the exact-match "policy_hash"), a node list of a host
 * (policy_nhost) and a /16 (the trie policy_node, and its copy in
 * policy_nhost: one length). Golden text:
 * expected_policy_maps (METRICS_DUMP=1 prints what is rendered). */
static void test_policy_maps(void)
{
	struct sluice_backend_spec b = { .port = 8080, .weight = 1 };
	struct sluice_service_spec spec = {
		.port = 80, .proto = IPPROTO_TCP, .nbackends = 1, .backends = &b
	};
	struct metrics_src src = { .backends = METRICS_BACKENDS_ON };
	struct sluice_policy_rule deny[2];
	struct sluice_cidr node[2];
	struct sluice *s = lib__open();
	char *text = NULL, *got = NULL;

	if (!s)
		return;
	src.s = s;
	sluice_addr__parse(&spec.vip, "10.96.0.1");
	sluice_addr__parse(&b.addr, "10.1.0.1");
	ASSERT_OK(sluice_policy_rule__parse(&deny[0], "10.2.0.5/32"), "rule /32");
	ASSERT_OK(sluice_policy_rule__parse(&deny[1], "10.3.0.0/16"), "rule /16");
	spec.deny = deny;
	spec.ndeny = 2;
	ASSERT_OK(sluice_cidr__parse(&node[0], "10.9.0.1/32"), "node /32");
	ASSERT_OK(sluice_cidr__parse(&node[1], "10.8.0.0/16"), "node /16");
	if (!ASSERT_OK(sluice__service_set(s, &spec), "service with deny rules") ||
	    !ASSERT_OK(sluice__policy_node_set(s, node, 2), "node list"))
		goto out;
	text = render(&src);
	got = text ? policy_series(text) : NULL;
	if (!ASSERT_TRUE(got, "render"))
		goto out;
	if (getenv("METRICS_DUMP"))
		fputs(got, stdout);
	if (!ASSERT_TRUE(!strcmp(got, expected_policy_maps), "the policy maps' series"))
		fprintf(stderr, "    got:\n%s", got);
out:
	free(got);
	free(text);
	sluice__close(s);
}

static void test_parse_backends(void)
{
	enum metrics_backends b = METRICS_BACKENDS_ON;

	ASSERT_OK(metrics__parse_backends("auto", &b), "auto");
	ASSERT_EQ(b, METRICS_BACKENDS_AUTO, "auto value");
	ASSERT_OK(metrics__parse_backends("off", &b), "off");
	ASSERT_EQ(b, METRICS_BACKENDS_OFF, "off value");
	ASSERT_OK(metrics__parse_backends("on", &b), "on");
	ASSERT_EQ(b, METRICS_BACKENDS_ON, "on value");
	ASSERT_EQ(metrics__parse_backends("yes", &b), -EINVAL, "yes refused");
	ASSERT_EQ(metrics__parse_backends("", &b), -EINVAL, "empty refused");
}

static const struct test tests[] = {
	TEST(test_parse_backends), TEST(test_batched_reads_match), TEST(test_index_matches_walk),
	TEST(test_backends_off),   TEST(test_backends_auto),       TEST(test_policy_maps),
};

int main(int argc, char **argv)
{
	if (!test__have_root("metrics_collect", "loads BPF"))
		return 0;
	/* no program attached or run but where a test says so (lb_load.h) */
	test__lb_load = TEST_LB_NO_PROGS;
	return test__run_all("metrics_collect", tests, ARRAY_SIZE(tests), argc, argv);
}
