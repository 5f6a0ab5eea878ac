// SPDX-License-Identifier: MIT
/*
 * top.c - `meshctl top [--interval S] [--count N]`: a live per-service
 * table of rates (packets, bytes, new flows, connections opened, closed
 * and failed per second), active connections and RTT percentiles.
 *
 * Contract: every refresh is one "top" call; rates are the difference of
 * two snapshots over their own clock (the agent's monotonic time_ms), RTT
 * p50/p99 come from the difference of the two RTT histograms, so they
 * describe the connections closed during the interval ("-" when none).
 * On a terminal the table is redrawn in place (ANSI home + clear) and q
 * quits; otherwise (pipes, tests) tables follow one another. ^C ends it
 * either way with status 0; --count N ends it after N tables. -o json
 * prints one JSON document per refresh, one per line.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "meshctl.h"
#include "output.h"

#define TOP_INTERVAL_DEFAULT 2

static volatile sig_atomic_t top_stop;
static struct termios top_saved;
static bool top_raw;

static void top__on_signal(int sig)
{
	(void)sig;
	top_stop = 1;
}

static void top__restore_tty(void)
{
	if (top_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &top_saved);
	top_raw = false;
}

/* Keys without Enter and without echo; ^C still signals. */
static void top__raw_tty(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &top_saved))
		return;
	t = top_saved;
	t.c_lflag &= ~(ICANON | ECHO);
	t.c_cc[VMIN] = 0;
	t.c_cc[VTIME] = 0;
	if (!tcsetattr(STDIN_FILENO, TCSANOW, &t)) {
		top_raw = true;
		atexit(top__restore_tty);
	}
}

/* Sleep ms, or less when q is pressed or a signal came: true to quit. */
static bool top__wait(int ms)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	struct timespec start, now;
	char c;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int left, n;

		if (top_stop)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ms - (int)((now.tv_sec - start.tv_sec) * 1000 +
				  (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0)
			return false;
		n = poll(top_raw ? &p : NULL, top_raw ? 1 : 0, left);
		if (n > 0 && read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q'))
			return true;
	}
}

/* --- numbers from two snapshots --- */

static struct json_object *find_service(struct json_object *snap, struct json_object *svc)
{
	struct json_object *list = js__get(snap, "services");
	const char *ref = js__str(svc, "service", "");

	for (size_t i = 0; i < js__len(list); i++) {
		struct json_object *s = js__idx(list, i);

		if (!strcmp(js__str(s, "service", "?"), ref) &&
		    js__u64(s, "id") == js__u64(svc, "id"))
			return s;
	}
	return NULL;
}

/* Counter growth; a counter that went down was reset (meshd restarted,
 * the service recreated): all of it is new, as Prometheus counts it. */
static uint64_t delta(struct json_object *cur, struct json_object *prev, const char *key)
{
	uint64_t c = js__u64(cur, key), p = js__u64(prev, key);

	return c >= p ? c - p : c;
}

/* Quantile q of the interval's histogram (cur - prev), linear within a
 * bucket like Prometheus' histogram_quantile(); < 0 when it is empty. */
static double hist_quantile(struct json_object *cur, struct json_object *prev, double q)
{
	struct json_object *le = js__get(cur, "le"), *cc = js__get(cur, "counts");
	struct json_object *pc = js__get(prev, "counts");
	size_t nb = js__len(le), i;
	uint64_t d[64], total = 0, cum = 0;
	double rank;

	if (!nb || js__len(cc) != nb + 1 || nb + 1 > 64)
		return -1;
	for (i = 0; i <= nb; i++) {
		uint64_t c = json_object_get_uint64(js__idx(cc, i));
		uint64_t p = js__len(pc) == nb + 1 ? json_object_get_uint64(js__idx(pc, i)) : 0;

		d[i] = c >= p ? c - p : c;
		total += d[i];
	}
	if (!total)
		return -1;
	rank = q * (double)total;
	for (i = 0; i <= nb; i++) {
		double lower, upper;

		if ((double)(cum + d[i]) < rank || !d[i]) {
			cum += d[i];
			continue;
		}
		upper = json_object_get_double(js__idx(le, i < nb ? i : nb - 1));
		if (i == nb)
			return upper; /* above the last bound: that bound is all we know */
		lower = i ? json_object_get_double(js__idx(le, i - 1)) : 0;
		return lower + (upper - lower) * (rank - (double)cum) / (double)d[i];
	}
	return json_object_get_double(js__idx(le, nb - 1));
}

struct top_conn {
	const char *dir;
	double opened, closed, failed; /* per second */
	uint64_t active;
	double p50, p99; /* seconds; < 0: no connection closed in the interval */
};

static void conn_rates(struct json_object *cur, struct json_object *prev, double dt,
		       struct top_conn *tc)
{
	struct json_object *rc = js__get(cur, "rtt_us"), *rp = js__get(prev, "rtt_us");

	tc->opened = delta(cur, prev, "opened") / dt;
	tc->closed = delta(cur, prev, "closed") / dt;
	tc->failed = delta(cur, prev, "failed") / dt;
	tc->active = js__u64(cur, "active");
	tc->p50 = hist_quantile(rc, rp, 0.5);
	tc->p99 = hist_quantile(rc, rp, 0.99);
	if (tc->p50 >= 0)
		tc->p50 /= 1e6;
	if (tc->p99 >= 0)
		tc->p99 /= 1e6;
}

/* --- output --- */

static struct json_object *jnum(double v)
{
	return json_object_new_double((double)(long long)(v * 1000 + 0.5) / 1000);
}

static struct json_object *jsecs(double v)
{
	return v < 0 ? NULL : json_object_new_double(v);
}

static void print_json(struct json_object *cur, struct json_object *prev, double dt)
{
	struct json_object *out = out__xalloc(json_object_new_object()), *arr;
	struct json_object *list = js__get(cur, "services");

	json_object_object_add(out, "time", json_object_new_int64(time(NULL)));
	json_object_object_add(out, "interval_seconds", jnum(dt));
	json_object_object_add(out, "uptime_seconds",
			       json_object_new_uint64(js__u64(cur, "uptime_seconds")));
	json_object_object_add(out, "telemetry",
			       json_object_new_boolean(js__u64(cur, "telemetry") != 0));
	arr = json_object_new_array();
	for (size_t i = 0; i < js__len(list); i++) {
		struct json_object *s = js__idx(list, i), *o = json_object_new_object();
		struct json_object *p = find_service(prev, s), *conns = json_object_new_object();
		struct json_object_iterator it, end;

		json_object_object_add(o, "service",
				       json_object_new_string(js__str(s, "service", "?")));
		json_object_object_add(o, "name", json_object_new_string(js__str(s, "name", "")));
		json_object_object_add(o, "packets_per_second", jnum(delta(s, p, "packets") / dt));
		json_object_object_add(o, "bytes_per_second", jnum(delta(s, p, "bytes") / dt));
		json_object_object_add(o, "flows_per_second", jnum(delta(s, p, "flows") / dt));
		it = json_object_iter_begin(js__get(s, "connections"));
		end = json_object_iter_end(js__get(s, "connections"));
		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
			const char *dir = json_object_iter_peek_name(&it);
			struct json_object *c = json_object_new_object();
			struct top_conn tc;

			conn_rates(json_object_iter_peek_value(&it),
				   js__get(js__get(p, "connections"), dir), dt, &tc);
			json_object_object_add(c, "opened_per_second", jnum(tc.opened));
			json_object_object_add(c, "closed_per_second", jnum(tc.closed));
			json_object_object_add(c, "failed_per_second", jnum(tc.failed));
			json_object_object_add(c, "active", json_object_new_uint64(tc.active));
			json_object_object_add(c, "rtt_p50_seconds", jsecs(tc.p50));
			json_object_object_add(c, "rtt_p99_seconds", jsecs(tc.p99));
			json_object_object_add(conns, dir, c);
		}
		json_object_object_add(o, "connections", conns);
		json_object_array_add(arr, o);
	}
	json_object_object_add(out, "services", arr);
	printf("%s\n", json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(out);
}

static const char *secs_or_dash(double s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "-");
	else
		out__seconds(s, buf, len);
	return buf;
}

/* One row per service and direction with connections; the datapath
 * columns (per service) only on its first row. */
static void table_service(struct table *t, struct json_object *s, struct json_object *p, double dt)
{
	struct json_object *conns = js__get(s, "connections");
	struct json_object_iterator it = json_object_iter_begin(conns);
	struct json_object_iterator end = json_object_iter_end(conns);
	char a[OUT_NUM_LEN], b[OUT_NUM_LEN];
	bool first = true;

	do {
		bool any = !json_object_iter_equal(&it, &end);
		struct top_conn tc = { .dir = "-" };

		if (any) {
			tc.dir = json_object_iter_peek_name(&it);
			conn_rates(json_object_iter_peek_value(&it),
				   js__get(js__get(p, "connections"), tc.dir), dt, &tc);
		}
		if (first) {
			table__cell(t, "%s", js__str(s, "service", "?"));
			table__cell(t, "%s",
				    *js__str(s, "name", "") ? js__str(s, "name", "") : "-");
			table__cell(t, "%s", out__rate(delta(s, p, "packets") / dt, a, sizeof(a)));
			out__bytes((uint64_t)(delta(s, p, "bytes") / dt + 0.5), a, sizeof(a));
			table__cell(t, "%s/s", a);
			table__cell(t, "%s", out__rate(delta(s, p, "flows") / dt, a, sizeof(a)));
		} else {
			for (int k = 0; k < 5; k++)
				table__cell(t, "%s", "");
		}
		first = false;
		table__cell(t, "%s",
			    !strcmp(tc.dir, "outbound") ? "out" :
			    !strcmp(tc.dir, "inbound")  ? "in" :
							  tc.dir);
		if (!any) {
			for (int k = 0; k < 6; k++)
				table__cell(t, "%s", "-");
			break;
		}
		table__cell(t, "%s", out__rate(tc.opened, a, sizeof(a)));
		table__cell(t, "%s", out__rate(tc.closed, a, sizeof(a)));
		table__cell(t, "%s", out__rate(tc.failed, a, sizeof(a)));
		table__cell(t, "%llu", (unsigned long long)tc.active);
		table__cell(t, "%s", secs_or_dash(tc.p50, a, sizeof(a)));
		table__cell(t, "%s", secs_or_dash(tc.p99, b, sizeof(b)));
		json_object_iter_next(&it);
	} while (!json_object_iter_equal(&it, &end));
}

static void print_table(struct json_object *cur, struct json_object *prev, double dt, int interval,
			bool tty)
{
	static const char *const cols[] = {
		"SERVICE",   "NAME",      ">PKTS/S", ">BYTES/S", ">FLOWS/S", "DIR", ">OPENED/S",
		">CLOSED/S", ">FAILED/S", ">ACTIVE", ">RTT P50", ">RTT P99", NULL,
	};
	struct json_object *list = js__get(cur, "services");
	char up[OUT_NUM_LEN], now[32];
	time_t t = time(NULL);
	struct table *tb;
	struct tm tm;

	strftime(now, sizeof(now), "%H:%M:%S", localtime_r(&t, &tm));
	if (tty)
		printf("\033[H\033[2J"); /* home, clear: redraw in place */
	printf("meshctl top - %s, meshd up %s, %zu service%s, every %ds, telemetry %s%s\n\n", now,
	       out__duration(js__u64(cur, "uptime_seconds"), up, sizeof(up)), js__len(list),
	       js__len(list) == 1 ? "" : "s", interval, js__u64(cur, "telemetry") ? "on" : "off",
	       tty ? " (q quits)" : "");
	tb = table__new(cols);
	for (size_t i = 0; i < js__len(list); i++)
		table_service(tb, js__idx(list, i), find_service(prev, js__idx(list, i)), dt);
	table__print(tb);
	table__free(tb);
	if (js__u64(cur, "records_lost"))
		printf("\ntelemetry records lost since meshd started: %llu (the ring buffer was "
		       "full)\n",
		       (unsigned long long)js__u64(cur, "records_lost"));
	fflush(stdout);
}

static int do_top(int argc, char **argv)
{
	const char *interval_text = NULL, *count_text = NULL;
	const struct opt opts[] = {
		{ "interval", 'i', &interval_text, NULL },
		{ "count", 'n', &count_text, NULL },
		{ NULL },
	};
	unsigned long interval = TOP_INTERVAL_DEFAULT, count = 0;
	struct json_object *prev = NULL, *cur = NULL;
	struct sigaction sa = { .sa_handler = top__on_signal };
	bool tty = !out__json_mode() && isatty(STDOUT_FILENO);
	char *pos[1];
	int npos, ret = 0;

	if (opts__parse(argc, argv, opts, pos, 0, &npos))
		return -1;
	if (interval_text && opts__uint(interval_text, 1, 3600, "--interval", &interval))
		return -1;
	if (count_text && opts__uint(count_text, 1, 1000000, "--count", &count))
		return -1;
	/* no SA_RESTART: ^C must cut the wait short */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (client__call("top", NULL, &prev))
		return -1;
	if (tty)
		top__raw_tty();
	for (unsigned long n = 0; !count || n < count; n++) {
		double dt;

		if (top__wait((int)interval * 1000))
			break;
		if (client__call("top", NULL, &cur)) {
			ret = -1;
			break;
		}
		dt = (double)(js__u64(cur, "time_ms") - js__u64(prev, "time_ms")) / 1000;
		if (dt <= 0)
			dt = (double)interval;
		if (out__json_mode()) {
			print_json(cur, prev, dt);
			fflush(stdout);
		} else {
			if (!tty && n)
				printf("\n");
			print_table(cur, prev, dt, (int)interval, tty);
		}
		json_object_put(prev);
		prev = cur;
		cur = NULL;
	}
	top__restore_tty();
	json_object_put(prev);
	return ret;
}

static const struct help_item top_opts[] = {
	{ "-i, --interval S", "seconds between refreshes (default 2)" },
	{ "-n, --count N", "stop after N tables (default: until q or ^C)" },
	{ NULL, NULL },
};

const struct cmd top_cmd = {
	.name = "top",
	.fn = do_top,
	.grammar = "[--interval S] [--count N]",
	.summary = "live per-service rates: packets, bytes, connections, RTT",
	.opts = top_opts,
	.notes = "Each refresh shows what happened during the last interval, per second:\n"
		 "packets, bytes and new flows through the datapath (PKTS/S, BYTES/S, FLOWS/S),\n"
		 "and from meshd's telemetry TCP connections opened, closed and failed, per\n"
		 "direction (DIR out: clients on this node; in: backends on this node), the\n"
		 "connections open now (ACTIVE, since meshd started) and the median and 99th\n"
		 "percentile RTT of the connections that closed in the interval. On a terminal\n"
		 "the table is redrawn in place: press q (or ^C) to quit.",
	.example = "meshctl top\n"
		   "meshctl top --interval 5 --count 3 > top.log",
	.reads = true,
};
