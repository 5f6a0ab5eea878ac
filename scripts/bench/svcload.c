// SPDX-License-Identifier: MIT
/*
 * svcload - program N services x B backends into the Sluice maps through
 * the library, timed: B4's "from empty" figure and the set-up of B3.
 *
 * Contract: opens the datapath (fresh maps: pinned under --pin DIR, which
 * must not hold maps yet, or unpinned and gone at exit), programs the
 * services of the plan (plan.h) with one sluice__service_set_many() call
 * (what meshd does for an apply or a Kubernetes resync: the maps read
 * once, one RCU grace period per group of SLUICE_SET_GROUP tables), or
 * with --one-by-one one sluice__service_set() call each, then optionally
 * makes --changes K single-backend changes (each on its own service:
 * backend 0 replaced by the spare address, one service_set call) and
 * prints one JSON object: the open time, the programming time, the
 * per-change latencies and the process's peak RSS. With --change-svc S it
 * opens the maps already pinned under --pin and times just that one
 * change (so changes can be interleaved with the baselines' changes, one
 * process each, the open not timed), after a no-op set of the same
 * service (warm_us: it reads what a running agent keeps, #16). Nothing is attached; B3 attaches
 * with lbtool over the pinned maps.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include <linux/in.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "metrics.h"
#include "sluice.h"
#include "plan.h"

struct svcload {
	const char *pin_dir;
	__u32 nservices;
	__u32 nbackends;
	__u32 nchanges;
	int change_svc;  /* >= 0: only change this service of the pinned maps */
	bool one_by_one; /* one service_set call per service */
	__u32 nscrapes;  /* then render /metrics this many times */
	bool no_backend_series;
	double scrape_ms[2];     /* best, worst */
	double scrape_cpu_ms[2]; /* the process's CPU time (user + system) */
	size_t scrape_bytes;
	struct sluice_kmem kmem; /* after programming */
	double kmem_ms;          /* what reading it took */
	int cpu;
	double open_ms;
	double program_ms;
	double warm_us; /* --change-svc: the no-op set before the change */
	long rss_open_kb;
	double *change_us;
};

static void __attribute__((format(printf, 1, 2))) svcload__err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "Error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int svcload__libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_WARN)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long maxrss_kb(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return -1;
	return ru.ru_maxrss;
}

/* The spec of service svc as plan.h lays it out; spare replaces backend 0. */
static void svcload__spec(const struct svcload *l, __u32 svc, bool spare,
			  struct sluice_service_spec *spec, struct sluice_backend_spec *be)
{
	memset(spec, 0, sizeof(*spec));
	for (__u32 j = 0; j < l->nbackends; j++) {
		__u32 off = spare && j == 0 ? PLAN_BE_SPARE_IDX : j;

		memset(&be[j], 0, sizeof(be[j]));
		be[j].addr.family = SLUICE_AF_INET;
		be[j].addr.addr[0] = htonl(plan__backend(svc, off));
		be[j].port = PLAN_BE_PORT;
		be[j].weight = 1;
	}
	spec->vip.family = SLUICE_AF_INET;
	spec->vip.addr[0] = htonl(plan__vip(svc));
	spec->port = PLAN_SVC_PORT;
	spec->proto = IPPROTO_TCP;
	spec->nbackends = l->nbackends;
	spec->backends = be;
}

static int svcload__set(struct sluice *s, const struct svcload *l, __u32 svc, bool spare)
{
	struct sluice_backend_spec be[PLAN_MAX_BACKENDS];
	struct sluice_service_spec spec;
	int err;

	svcload__spec(l, svc, spare, &spec, be);
	err = sluice__service_set(s, &spec);
	if (err)
		svcload__err("service %u of %u: %s", svc + 1, l->nservices, sluice__errmsg());
	return err;
}

/* Every service of the plan in one call. */
static int svcload__set_all(struct sluice *s, const struct svcload *l)
{
	struct sluice_service_spec *specs;
	struct sluice_backend_spec *bes;
	__u32 failed = 0;
	int err;

	specs = calloc(l->nservices, sizeof(*specs));
	bes = calloc((size_t)l->nservices * l->nbackends, sizeof(*bes));
	if (!specs || !bes) {
		svcload__err("out of memory for %u specs", l->nservices);
		err = -ENOMEM;
		goto cleanup;
	}
	for (__u32 i = 0; i < l->nservices; i++)
		svcload__spec(l, i, false, &specs[i], &bes[(size_t)i * l->nbackends]);
	err = sluice__service_set_many(s, specs, l->nservices, NULL, &failed);
	if (err)
		svcload__err("service %u of %u: %s", failed + 1, l->nservices, sluice__errmsg());
cleanup:
	free(specs);
	free(bes);
	return err;
}

/* What one GET /metrics costs meshd for these maps: collect + write into
 * a memory stream, as the HTTP handler does (no telemetry, no gzip). */
static int svcload__scrape(struct sluice *s, struct svcload *l)
{
	struct metrics_src src = {
		.s = s,
		.backends = l->no_backend_series ? METRICS_BACKENDS_OFF : METRICS_BACKENDS_ON,
	};

	for (__u32 i = 0; i < l->nscrapes; i++) {
		char *body = NULL;
		size_t len = 0;
		double t0 = now_ms(), c0 = cpu_ms(), ms, cms;
		FILE *f = open_memstream(&body, &len);
		int err;

		if (!f)
			return -errno;
		err = metrics__render(&src, f);
		fclose(f);
		free(body);
		if (err) {
			svcload__err("rendering /metrics: %s", sluice__errmsg());
			return err;
		}
		ms = now_ms() - t0;
		cms = cpu_ms() - c0;
		if (!i || ms < l->scrape_ms[0])
			l->scrape_ms[0] = ms;
		if (ms > l->scrape_ms[1])
			l->scrape_ms[1] = ms;
		if (!i || cms < l->scrape_cpu_ms[0])
			l->scrape_cpu_ms[0] = cms;
		if (cms > l->scrape_cpu_ms[1])
			l->scrape_cpu_ms[1] = cms;
		l->scrape_bytes = len;
	}
	return 0;
}

static int svcload__run(struct svcload *l)
{
	struct sluice_opts opts = { .pin_dir = l->pin_dir };
	struct sluice *s = NULL;
	double t0;
	int err;

	t0 = now_ms();
	err = sluice__open(&s, &opts);
	if (err) {
		svcload__err("loading the datapath: %s", sluice__errmsg());
		return err;
	}
	l->open_ms = now_ms() - t0;
	l->rss_open_kb = maxrss_kb();

	if (l->change_svc >= 0) {
		/* first a no-op set of the service as it is: the handle reads
		 * what it keeps (the backends snapshot) as a running agent has
		 * it already; that first call is reported as warm_us */
		t0 = now_ms();
		err = svcload__set(s, l, (__u32)l->change_svc, false);
		l->warm_us = (now_ms() - t0) * 1e3;
		if (err)
			goto cleanup;
		t0 = now_ms();
		err = svcload__set(s, l, (__u32)l->change_svc, true);
		l->change_us[0] = (now_ms() - t0) * 1e3;
		goto cleanup;
	}

	t0 = now_ms();
	if (l->one_by_one) {
		for (__u32 i = 0; i < l->nservices && !err; i++)
			err = svcload__set(s, l, i, false);
	} else {
		err = svcload__set_all(s, l);
	}
	l->program_ms = now_ms() - t0;
	if (err)
		goto cleanup;
	t0 = now_ms();
	err = sluice__kernel_memory(s, &l->kmem);
	l->kmem_ms = now_ms() - t0;
	if (err) {
		svcload__err("kernel memory: %s", sluice__errmsg());
		goto cleanup;
	}
	err = svcload__scrape(s, l);
	if (err)
		goto cleanup;

	/* Spread the changed services over the table; each is changed once,
	 * so every change really moves a backend. */
	for (__u32 k = 0; k < l->nchanges && !err; k++) {
		__u32 svc = (__u32)(((__u64)k * l->nservices) / l->nchanges);

		t0 = now_ms();
		err = svcload__set(s, l, svc, true);
		l->change_us[k] = (now_ms() - t0) * 1e3;
	}
cleanup:
	sluice__close(s);
	return err;
}

static void svcload__json(const struct svcload *l)
{
	if (l->change_svc >= 0) {
		printf("{\"svc\": %d, \"backends\": %u, \"cpu\": %d, \"open_ms\": %.3f, "
		       "\"warm_us\": %.1f, \"change_us\": %.1f}\n",
		       l->change_svc, l->nbackends, l->cpu, l->open_ms, l->warm_us,
		       l->change_us[0]);
		return;
	}
	printf("{\"services\": %u, \"backends\": %u, \"one_by_one\": %s, \"cpu\": %d, "
	       "\"open_ms\": %.3f, "
	       "\"program_ms\": %.3f, \"per_service_us\": %.3f, \"rss_after_open_kb\": %ld, "
	       "\"maxrss_kb\": %ld, \"change_us\": [",
	       l->nservices, l->nbackends, l->one_by_one ? "true" : "false", l->cpu, l->open_ms,
	       l->program_ms, l->nservices ? l->program_ms * 1e3 / l->nservices : 0.0,
	       l->rss_open_kb, maxrss_kb());
	for (__u32 k = 0; k < l->nchanges; k++)
		printf("%s%.1f", k ? ", " : "", l->change_us[k]);
	printf("], \"kernel_memory_bytes\": %llu, \"maps\": %u, \"maglev_bytes\": %llu, "
	       "\"maglev_tables\": %u, \"kernel_memory_ms\": %.1f",
	       (unsigned long long)l->kmem.bytes, l->kmem.maps,
	       (unsigned long long)l->kmem.maglev_bytes, l->kmem.maglev_tables, l->kmem_ms);
	if (l->nscrapes)
		printf(", \"backend_series\": %s, \"scrapes\": %u, \"scrape_ms_min\": %.3f, "
		       "\"scrape_ms_max\": %.3f, \"scrape_cpu_ms_min\": %.3f, "
		       "\"scrape_cpu_ms_max\": %.3f, \"scrape_bytes\": %zu",
		       l->no_backend_series ? "false" : "true", l->nscrapes, l->scrape_ms[0],
		       l->scrape_ms[1], l->scrape_cpu_ms[0], l->scrape_cpu_ms[1], l->scrape_bytes);
	printf("}\n");
}

static int parse_u32(const char *opt, const char *text, __u32 min, __u32 max, __u32 *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(text, &end, 0);
	if (errno || *end || !*text || *text == '-' || v < min || v > max) {
		svcload__err("%s: \"%s\" is not a number in [%u, %u]", opt, text, min, max);
		return -EINVAL;
	}
	*out = (__u32)v;
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: svcload --services N [--backends B] [--changes K] [--pin DIR]\n"
		     "               [--cpu C] [--one-by-one] [--scrape N [--no-backend-series]]\n"
		     "       svcload --pin DIR --change-svc S [--backends B] [--cpu C]\n"
		     "  --services N  services to program from empty (plan.h addresses)\n"
		     "  --backends B  backends per service (default 10)\n"
		     "  --changes K   then K single-backend changes, each timed\n"
		     "  --pin DIR     pin the (new) maps under DIR so they outlive the process\n"
		     "  --change-svc S  instead: open the maps pinned under DIR and time one\n"
		     "                change of service S (backend 0 -> the spare address)\n"
		     "  --cpu C       pin the process to CPU C\n"
		     "  --one-by-one  one sluice__service_set() call per service instead of\n"
		     "                one sluice__service_set_many() call for all\n"
		     "  --scrape N    then render /metrics N times (collect + write to memory,\n"
		     "                as meshd's handler; no telemetry): min/max ms and bytes\n"
		     "  --no-backend-series  ... as meshd --metrics-backends off\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "services", required_argument, NULL, 's' },
		{ "backends", required_argument, NULL, 'b' },
		{ "changes", required_argument, NULL, 'k' },
		{ "change-svc", required_argument, NULL, 'S' },
		{ "one-by-one", no_argument, NULL, 'B' },
		{ "pin", required_argument, NULL, 'p' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "scrape", required_argument, NULL, 'm' },
		{ "no-backend-series", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct svcload l = { .nbackends = 10, .change_svc = -1, .cpu = -1 };
	__u32 cpu;
	int opt, err = 0;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			err = parse_u32("--services", optarg, 1, PLAN_MAX_SERVICES, &l.nservices);
			break;
		case 'b':
			err = parse_u32("--backends", optarg, 1, PLAN_MAX_BACKENDS, &l.nbackends);
			break;
		case 'k':
			err = parse_u32("--changes", optarg, 0, 1000000, &l.nchanges);
			break;
		case 'S':
			err = parse_u32("--change-svc", optarg, 0, PLAN_MAX_SERVICES - 1, &cpu);
			l.change_svc = (int)cpu;
			break;
		case 'p':
			l.pin_dir = optarg;
			break;
		case 'B':
			l.one_by_one = true;
			break;
		case 'm':
			err = parse_u32("--scrape", optarg, 1, 1000, &l.nscrapes);
			break;
		case 'n':
			l.no_backend_series = true;
			break;
		case 'c':
			err = parse_u32("--cpu", optarg, 0, CPU_SETSIZE - 1, &cpu);
			l.cpu = (int)cpu;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (err)
			return 2;
	}
	if (optind != argc || (!l.nservices && l.change_svc < 0) ||
	    (l.change_svc >= 0 && !l.pin_dir)) {
		usage(stderr);
		return 2;
	}
	if (l.nchanges > l.nservices) {
		svcload__err("--changes %u: at most one change per service (%u)", l.nchanges,
			     l.nservices);
		return 2;
	}
	if (l.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(l.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			svcload__err("pinning to CPU %d: %s", l.cpu, strerror(errno));
			return 1;
		}
	}
	l.change_us = calloc(l.nchanges + 1, sizeof(*l.change_us));
	if (!l.change_us) {
		svcload__err("out of memory");
		return 1;
	}
	libbpf_set_print(svcload__libbpf_print);
	err = svcload__run(&l);
	if (!err)
		svcload__json(&l);
	free(l.change_us);
	return err ? 1 : 0;
}
