// SPDX-License-Identifier: MIT
/*
 * k8stool - runs the Kubernetes sync (user/lib/k8s.h) the way meshd does,
 * for the e2e tests: against the stand-in API server, into a state file
 * and, with --apply, into real maps.
 *
 * Contract: at start the state file (if any) is loaded and, with --apply,
 * applied to a fresh struct sluice opened without pins (root namespace, no
 * interface attached: the maps are private to this process). Every set
 * the sync hands over goes through k8s__merge() -> desired__validate() ->
 * desired__apply() -> desired__save(), exactly the agent's path, so a
 * kubernetes service is never removed before the first full sync. After
 * each change --maps gets what the maps hold (desired__from_maps) and
 * --stats the sync counters (also refreshed every 100 ms). SIGTERM/SIGINT
 * exit 0. Errors: "Error: ..." on stderr, exit 1.
 *
 * Usage: k8stool (--server URL | --kubeconfig FILE) [--token-file F]
 *   [--ca-file F] [--node NAME] [--proxy-name N] [--state FILE] [--apply]
 *   [--maps FILE] [--stats FILE] [--backoff-min-ms N] [--backoff-max-ms N]
 *   [--watch-timeout S] [--page-size N] [--debounce-ms N] [--once] [-v]
 *   --once: print the first synced set as JSON on stdout and exit.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "desired.h"
#include "k8s.h"
#include "sluice.h"

struct tool {
	struct k8s *k;
	struct sluice *s;
	struct desired cur;
	const char *state, *maps, *stats;
	bool once, done, verbose;
	unsigned long applies, apply_errors, conflicts;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void tool__err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void tool__err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "Error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

static void tool__log(enum k8s_log_level level, const char *msg, void *ctx)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	struct tool *t = ctx;

	if (level == K8S_LOG_DEBUG && !t->verbose)
		return;
	fprintf(stderr, "k8stool: %s: %s\n", names[level], msg);
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

/* Write a JSON value to path atomically (tests poll these files). */
static int write_json(const char *path, struct json_object *o)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s\n",
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	if (fclose(f))
		return -errno;
	return rename(tmp, path) ? -errno : 0;
}

static void tool__write_stats(struct tool *t)
{
	struct json_object *o;
	struct k8s_stats st;

	if (!t->stats)
		return;
	k8s__stats(t->k, &st);
	o = k8s__stats_to_json(&st);
	if (!o)
		return;
	json_object_object_add(o, "applies", json_object_new_int64(t->applies));
	json_object_object_add(o, "apply_errors", json_object_new_int64(t->apply_errors));
	json_object_object_add(o, "conflicts", json_object_new_int64(t->conflicts));
	write_json(t->stats, o);
	json_object_put(o);
}

static void tool__write_maps(struct tool *t)
{
	struct json_object *o;
	struct desired d;

	if (!t->s || !t->maps)
		return;
	desired__init(&d);
	if (desired__from_maps(t->s, &d)) {
		tool__err("reading the maps: %s", sluice__errmsg());
		return;
	}
	o = desired__to_json(&d);
	write_json(t->maps, o);
	json_object_put(o);
	desired__free(&d);
}

/* meshd's path for a new kubernetes set: merge, validate, apply, save. */
static void tool__on_state(const struct desired *kube, bool complete, void *ctx)
{
	struct tool *t = ctx;
	struct desired next;
	__u32 conflicts = 0;
	int err;

	err = k8s__merge(&t->cur, kube, complete, &next, &conflicts);
	if (!err)
		err = desired__validate(&next);
	if (!err && t->s)
		err = desired__apply(t->s, &t->cur, &next);
	if (!err && t->state) {
		err = desired__save(&next, t->state);
		if (err && t->s)
			desired__apply(t->s, &next, &t->cur); /* keep maps == state file */
	}
	if (err) {
		t->apply_errors++;
		tool__err("applying %u kubernetes services: %s", kube->nservices, sluice__errmsg());
		desired__free(&next);
		return;
	}
	desired__free(&t->cur);
	t->cur = next;
	t->applies++;
	t->conflicts += conflicts;
	fprintf(stderr, "k8stool: applied: %u services (%u from kubernetes)\n", t->cur.nservices,
		kube->nservices);
	tool__write_maps(t);
	if (t->once) {
		struct json_object *o = desired__to_json(kube);

		printf("%s\n",
		       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		t->done = true;
	}
}

static int tool__start_maps(struct tool *t)
{
	struct sluice_opts so = { 0 };
	struct desired empty;
	int err;

	libbpf_set_print(libbpf_quiet);
	err = sluice__open(&t->s, &so);
	if (err) {
		tool__err("opening the datapath: %s", sluice__errmsg());
		return err;
	}
	desired__init(&empty);
	/* what meshd does at start: the maps follow the state file */
	err = desired__apply(t->s, &empty, &t->cur);
	if (err)
		tool__err("applying the state file: %s", sluice__errmsg());
	return err;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: k8stool (--server URL | --kubeconfig FILE) [--token-file F] [--ca-file F]\n"
		"       [--node NAME] [--proxy-name N] [--state FILE] [--apply] [--maps FILE]\n"
		"       [--stats FILE] [--backoff-min-ms N] [--backoff-max-ms N]\n"
		"       [--watch-timeout S] [--page-size N] [--debounce-ms N] [--once] [-v]\n");
}

int main(int argc, char **argv)
{
	enum {
		O_SERVER = 256,
		O_KUBECONFIG,
		O_TOKEN,
		O_CA,
		O_NODE,
		O_PROXY,
		O_STATE,
		O_APPLY,
		O_MAPS,
		O_STATS,
		O_BMIN,
		O_BMAX,
		O_WT,
		O_PAGE,
		O_DEB,
		O_ONCE
	};
	static const struct option lopts[] = {
		{ "server", required_argument, NULL, O_SERVER },
		{ "kubeconfig", required_argument, NULL, O_KUBECONFIG },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "ca-file", required_argument, NULL, O_CA },
		{ "node", required_argument, NULL, O_NODE },
		{ "proxy-name", required_argument, NULL, O_PROXY },
		{ "state", required_argument, NULL, O_STATE },
		{ "apply", no_argument, NULL, O_APPLY },
		{ "maps", required_argument, NULL, O_MAPS },
		{ "stats", required_argument, NULL, O_STATS },
		{ "backoff-min-ms", required_argument, NULL, O_BMIN },
		{ "backoff-max-ms", required_argument, NULL, O_BMAX },
		{ "watch-timeout", required_argument, NULL, O_WT },
		{ "page-size", required_argument, NULL, O_PAGE },
		{ "debounce-ms", required_argument, NULL, O_DEB },
		{ "once", no_argument, NULL, O_ONCE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct tool t = { 0 };
	struct k8s_opts ko = { 0 };
	bool apply = false;
	int c, err, ret = 1;

	desired__init(&t.cur);
	while ((c = getopt_long(argc, argv, "vh", lopts, NULL)) != -1) {
		switch (c) {
		case O_SERVER:
			ko.server = optarg;
			break;
		case O_KUBECONFIG:
			ko.kubeconfig = optarg;
			break;
		case O_TOKEN:
			ko.token_file = optarg;
			break;
		case O_CA:
			ko.ca_file = optarg;
			break;
		case O_NODE:
			ko.node_name = optarg;
			break;
		case O_PROXY:
			ko.proxy_name = optarg;
			break;
		case O_STATE:
			t.state = optarg;
			break;
		case O_APPLY:
			apply = true;
			break;
		case O_MAPS:
			t.maps = optarg;
			break;
		case O_STATS:
			t.stats = optarg;
			break;
		case O_BMIN:
			ko.backoff_min_ms = strtoul(optarg, NULL, 10);
			break;
		case O_BMAX:
			ko.backoff_max_ms = strtoul(optarg, NULL, 10);
			break;
		case O_WT:
			ko.watch_timeout_s = strtoul(optarg, NULL, 10);
			break;
		case O_PAGE:
			ko.page_size = strtoul(optarg, NULL, 10);
			break;
		case O_DEB:
			ko.debounce_ms = strtoul(optarg, NULL, 10);
			break;
		case O_ONCE:
			t.once = true;
			break;
		case 'v':
			t.verbose = true;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 1;
		}
	}
	if (optind != argc || (!ko.server && !ko.kubeconfig)) {
		usage();
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	if (t.state) {
		err = desired__load(&t.cur, t.state);
		if (err) {
			tool__err("%s", sluice__errmsg());
			return 1;
		}
	}
	if (apply && tool__start_maps(&t))
		goto out;
	tool__write_maps(&t);
	ko.on_state = tool__on_state;
	ko.log = tool__log;
	ko.ctx = &t;
	err = k8s__open(&ko, &t.k);
	if (err) {
		tool__err("%s", sluice__errmsg());
		goto out;
	}
	while (!stop && !t.done) {
		struct pollfd p = { .fd = k8s__fd(t.k), .events = POLLIN };

		if (poll(&p, 1, 100) > 0)
			k8s__poll(t.k);
		tool__write_stats(&t);
	}
	ret = 0;
out:
	k8s__close(t.k);
	sluice__close(t.s);
	desired__free(&t.cur);
	return ret;
}
