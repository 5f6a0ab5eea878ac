// SPDX-License-Identifier: MIT
/*
 * svcload - program N services x B backends into the Sluice maps through
 * the library, timed: B4's "from empty" figure and the set-up of B3.
 *
 * Contract: opens the datapath (fresh maps: pinned under --pin DIR, which
 * must not hold maps yet, or unpinned and gone at exit), calls
 * sluice__service_set() once per service of the plan (plan.h) in one
 * process, then optionally makes --changes K single-backend changes (each
 * on its own service: backend 0 replaced by the spare address, one
 * service_set call) and prints one JSON object: the open time, the
 * programming time, the per-change latencies and the process's peak RSS.
 * With --change-svc S it opens the maps already pinned under --pin and
 * times just that one change (so changes can be interleaved with the
 * baselines' changes, one process each, the open not timed).
 * Nothing is attached; B3 attaches with lbtool over the pinned maps. The
 * cost is per service_set call by design of the library (each call walks
 * the services and backends maps and swaps a Maglev table, which waits
 * for an RCU grace period): this tool is what an agent programming its
 * services one by one would pay. --bulk is an experiment next to it: the
 * same map state written with batch operations (one RCU wait in all),
 * checked against what the library writes, to size what a batch API
 * would save; it is not the library's API.
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

#include "sluice.h"
#include "plan.h"

struct svcload {
	const char *pin_dir;
	__u32 nservices;
	__u32 nbackends;
	__u32 nchanges;
	int change_svc; /* >= 0: only change this service of the pinned maps */
	bool bulk;      /* experiment: batch map writes instead of service_set */
	int cpu;
	double open_ms;
	double program_ms;
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

/*
 * --bulk: an EXPERIMENT, not the library's API. It writes the state
 * sluice__service_set() would write for the same services (same Maglev
 * tables by backend address, same entries) with batch map operations, so
 * the maglev outer map gets ONE batch update and the kernel waits for one
 * RCU grace period instead of one per service. It tells what a batch API
 * in the library would save; svcload__bulk_check() compares the result
 * with what the library itself writes for a few services.
 */
struct bulk {
	__u32 n;
	__u32 *be_keys;
	struct sluice_backend *be_vals;
	__u32 nbe;
	__u32 *svc_ids;
	int *inner_fds;
	struct sluice_svc_key *svc_keys;
	struct sluice_svc *svc_vals;
};

static int bulk__batch(int fd, const char *map, void *keys, void *vals, __u32 count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 n = count;
	int err;

	err = bpf_map_update_batch(fd, keys, vals, &n, &opts);
	if (err || n != count) {
		svcload__err("%s map: batch update of %u entries: %s (%u done)", map, count,
			     strerror(err ? -err : EIO), n);
		return err ? err : -EIO;
	}
	return 0;
}

static int bulk__inner(const struct sluice_service_spec *spec, const __u32 *ids, __u32 *table,
		       __u32 *keys)
{
	int fd, err;

	err = maglev__build(spec->backends, spec->nbackends, SLUICE_MAGLEV_M, table);
	if (err) {
		svcload__err("maglev: %s", sluice__errmsg());
		return err;
	}
	for (__u32 k = 0; k < SLUICE_MAGLEV_M; k++)
		table[k] = ids[table[k]];
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sluice_maglev", sizeof(__u32), sizeof(__u32),
			    SLUICE_MAGLEV_M, NULL);
	if (fd < 0) {
		svcload__err("creating a Maglev table: %s", strerror(-fd));
		return fd;
	}
	err = bulk__batch(fd, "maglev inner", keys, table, SLUICE_MAGLEV_M);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

static int svcload__bulk(struct sluice *s, const struct svcload *l)
{
	struct sluice_backend_spec be[PLAN_MAX_BACKENDS];
	struct sluice_service_spec spec;
	struct bulk b = { .n = l->nservices };
	__u32 *table = NULL, *keys = NULL, ids[PLAN_MAX_BACKENDS];
	int err = 0;

	if ((__u64)l->nservices * l->nbackends >= SLUICE_MAX_BACKENDS ||
	    l->nservices >= SLUICE_MAX_SERVICES) {
		svcload__err("--bulk: %u x %u does not fit the maps", l->nservices, l->nbackends);
		return -ENOSPC;
	}
	b.be_keys = calloc((size_t)b.n * l->nbackends, sizeof(*b.be_keys));
	b.be_vals = calloc((size_t)b.n * l->nbackends, sizeof(*b.be_vals));
	b.svc_ids = calloc(b.n, sizeof(*b.svc_ids));
	b.inner_fds = calloc(b.n, sizeof(*b.inner_fds));
	b.svc_keys = calloc(2 * (size_t)b.n, sizeof(*b.svc_keys));
	b.svc_vals = calloc(2 * (size_t)b.n, sizeof(*b.svc_vals));
	table = calloc(SLUICE_MAGLEV_M, sizeof(*table));
	keys = calloc(SLUICE_MAGLEV_M, sizeof(*keys));
	if (!b.be_keys || !b.be_vals || !b.svc_ids || !b.inner_fds || !b.svc_keys || !b.svc_vals ||
	    !table || !keys) {
		svcload__err("out of memory");
		err = -ENOMEM;
		goto cleanup;
	}
	for (__u32 k = 0; k < SLUICE_MAGLEV_M; k++)
		keys[k] = k;
	for (__u32 i = 0; i < b.n; i++)
		b.inner_fds[i] = -1;

	/* Ids as a fresh library would hand them out: service i gets id
	 * i + 1, its backends the next free ids in order. */
	for (__u32 i = 0; i < b.n && !err; i++) {
		struct sluice_svc_key *key = &b.svc_keys[2 * i], *marker = &b.svc_keys[2 * i + 1];

		svcload__spec(l, i, false, &spec, be);
		for (__u32 j = 0; j < l->nbackends; j++) {
			struct sluice_backend *v = &b.be_vals[b.nbe];

			ids[j] = b.nbe + 1;
			b.be_keys[b.nbe++] = ids[j];
			v->addr[0] = be[j].addr.addr[0];
			v->port = htons(be[j].port);
			v->family = SLUICE_AF_INET;
			v->state = SLUICE_BE_ACTIVE;
			v->svc_id = i + 1;
			v->weight = be[j].weight;
		}
		b.svc_ids[i] = i + 1;
		err = b.inner_fds[i] = bulk__inner(&spec, ids, table, keys);
		if (err > 0)
			err = 0;
		key->addr[0] = spec.vip.addr[0];
		key->port = htons(spec.port);
		key->proto = spec.proto;
		key->family = SLUICE_AF_INET;
		*marker = *key;
		marker->port = 0;
		b.svc_vals[2 * i] = (struct sluice_svc){ .svc_id = i + 1,
							 .backend_count = l->nbackends };
		b.svc_vals[2 * i + 1] = (struct sluice_svc){ .flags = SLUICE_SVC_F_VIP_MARKER };
	}
	/* The library's order: backends, tables, services. */
	if (!err)
		err = bulk__batch(sluice__map_fd(s, "backends"), "backends", b.be_keys, b.be_vals,
				  b.nbe);
	if (!err)
		err = bulk__batch(sluice__map_fd(s, "maglev"), "maglev", b.svc_ids, b.inner_fds, b.n);
	if (!err)
		err = bulk__batch(sluice__map_fd(s, "services"), "services", b.svc_keys, b.svc_vals,
				  2 * b.n);
cleanup:
	for (__u32 i = 0; b.inner_fds && i < b.n; i++)
		if (b.inner_fds[i] >= 0)
			close(b.inner_fds[i]);
	free(b.be_keys);
	free(b.be_vals);
	free(b.svc_ids);
	free(b.inner_fds);
	free(b.svc_keys);
	free(b.svc_vals);
	free(table);
	free(keys);
	return err;
}

/* Backend address of every Maglev slot of service svc in s. */
static int bulk__slots(struct sluice *s, const struct svcload *l, __u32 svc, __u32 *addr)
{
	struct sluice_backend_spec be[PLAN_MAX_BACKENDS];
	struct sluice_service_info info;
	struct sluice_service_spec spec;
	struct sluice_backend_stats st;
	struct sluice_backend b;
	__u32 inner_id, *ids = NULL;
	int fd = -1, err;

	svcload__spec(l, svc, false, &spec, be);
	err = sluice__service_get(s, &spec.vip, spec.port, spec.proto, &info);
	if (err) {
		svcload__err("--bulk check: service %u: %s", svc, sluice__errmsg());
		return err;
	}
	if (info.nbackends != l->nbackends || info.svc.backend_count != l->nbackends) {
		svcload__err("--bulk check: service %u has %u backends", svc, info.nbackends);
		return -EPROTO;
	}
	err = bpf_map_lookup_elem(sluice__map_fd(s, "maglev"), &info.svc.svc_id, &inner_id);
	fd = err ? -1 : bpf_map_get_fd_by_id(inner_id);
	ids = calloc(SLUICE_MAGLEV_M, sizeof(*ids));
	if (fd < 0 || !ids) {
		svcload__err("--bulk check: service %u: no Maglev table", svc);
		err = -ENOENT;
		goto cleanup;
	}
	for (__u32 k = 0; k < SLUICE_MAGLEV_M && !err; k++) {
		err = bpf_map_lookup_elem(fd, &k, &ids[k]);
		if (!err && (k == 0 || ids[k] != ids[k - 1]))
			err = sluice__backend_get(s, ids[k], &b, &st);
		addr[k] = b.addr[0];
	}
	if (err)
		svcload__err("--bulk check: service %u: reading its table: %s", svc, strerror(-err));
cleanup:
	if (fd >= 0)
		close(fd);
	free(ids);
	return err;
}

/* The bulk state must be what the library writes: for a few services,
 * program the same spec into a fresh unpinned instance through
 * sluice__service_set() and compare the slots by backend address. */
static int svcload__bulk_check(struct sluice *s, const struct svcload *l)
{
	struct sluice_opts opts = {};
	struct sluice *ref = NULL;
	__u32 *a = NULL, *b = NULL, probe[3] = { 0, l->nservices / 2, l->nservices - 1 };
	int err;

	a = calloc(SLUICE_MAGLEV_M, sizeof(*a));
	b = calloc(SLUICE_MAGLEV_M, sizeof(*b));
	if (!a || !b) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = sluice__open(&ref, &opts);
	if (err) {
		svcload__err("--bulk check: loading a reference datapath: %s", sluice__errmsg());
		goto cleanup;
	}
	for (int p = 0; p < 3 && !err; p++) {
		err = svcload__set(ref, l, probe[p], false);
		if (!err)
			err = bulk__slots(ref, l, probe[p], a);
		if (!err)
			err = bulk__slots(s, l, probe[p], b);
		if (!err && memcmp(a, b, SLUICE_MAGLEV_M * sizeof(*a))) {
			svcload__err("--bulk check: service %u: the Maglev table differs from the "
				     "library's", probe[p]);
			err = -EPROTO;
		}
	}
cleanup:
	sluice__close(ref);
	free(a);
	free(b);
	return err;
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
		t0 = now_ms();
		err = svcload__set(s, l, (__u32)l->change_svc, true);
		l->change_us[0] = (now_ms() - t0) * 1e3;
		goto cleanup;
	}

	t0 = now_ms();
	if (l->bulk) {
		err = svcload__bulk(s, l);
	} else {
		for (__u32 i = 0; i < l->nservices && !err; i++)
			err = svcload__set(s, l, i, false);
	}
	l->program_ms = now_ms() - t0;
	if (!err && l->bulk)
		err = svcload__bulk_check(s, l);
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
		       "\"change_us\": %.1f}\n",
		       l->change_svc, l->nbackends, l->cpu, l->open_ms, l->change_us[0]);
		return;
	}
	printf("{\"services\": %u, \"backends\": %u, \"bulk\": %s, \"cpu\": %d, "
	       "\"open_ms\": %.3f, "
	       "\"program_ms\": %.3f, \"per_service_us\": %.3f, \"rss_after_open_kb\": %ld, "
	       "\"maxrss_kb\": %ld, \"change_us\": [",
	       l->nservices, l->nbackends, l->bulk ? "true" : "false", l->cpu, l->open_ms,
	       l->program_ms,
	       l->nservices ? l->program_ms * 1e3 / l->nservices : 0.0, l->rss_open_kb,
	       maxrss_kb());
	for (__u32 k = 0; k < l->nchanges; k++)
		printf("%s%.1f", k ? ", " : "", l->change_us[k]);
	printf("]}\n");
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
		     "               [--cpu C]\n"
		     "       svcload --pin DIR --change-svc S [--backends B] [--cpu C]\n"
		     "  --services N  services to program from empty (plan.h addresses)\n"
		     "  --backends B  backends per service (default 10)\n"
		     "  --changes K   then K single-backend changes, each timed\n"
		     "  --pin DIR     pin the (new) maps under DIR so they outlive the process\n"
		     "  --change-svc S  instead: open the maps pinned under DIR and time one\n"
		     "                change of service S (backend 0 -> the spare address)\n"
		     "  --cpu C       pin the process to CPU C\n"
		     "  --bulk        EXPERIMENT: batch map writes (one RCU wait) instead of\n"
		     "                one service_set per service; checked against the library\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "services", required_argument, NULL, 's' },
		{ "backends", required_argument, NULL, 'b' },
		{ "changes", required_argument, NULL, 'k' },
		{ "change-svc", required_argument, NULL, 'S' },
		{ "bulk", no_argument, NULL, 'B' },
		{ "pin", required_argument, NULL, 'p' },
		{ "cpu", required_argument, NULL, 'c' },
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
			l.bulk = true;
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
