// SPDX-License-Identifier: MIT
/*
 * connections.c - `meshctl connections [SVC] [--follow] [--limit N]
 * [--events]`: the TCP connections meshd's telemetry recorded, recent
 * ones or live.
 *
 * Contract: the list is one connections.list call printed as a table
 * (one row per connection, its latest state) or, with -o json, the
 * agent's answer as it is. --follow is a connections.follow stream: one
 * row per event as it happens, or with -o json one RECORD per line
 * (flushed at once, for pipes); it runs until interrupted or until meshd
 * ends the stream (an error: nothing more will come).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "meshctl.h"
#include "output.h"

#define CONN_LIMIT_DEFAULT 100
#define CONN_LIMIT_MAX 4096 /* what meshd keeps */

enum conn_col {
	COL_TIME,
	COL_SERVICE,
	COL_BACKEND,
	COL_CLIENT,
	COL_DIR,
	COL_STATE,
	COL_DURATION,
	COL_IN,
	COL_OUT,
	COL_SRTT,
	COL_RETRANS,
	COL_REASON,
	COL__MAX
};

/* Headers; '>' right-aligns (output.h). STATE is EVENT in --follow. */
static const char *const conn_cols[COL__MAX + 1] = {
	"TIME",      "SERVICE",    "BACKEND", "CLIENT",   "DIR",    "STATE", ">DURATION",
	">BYTES IN", ">BYTES OUT", ">SRTT",   ">RETRANS", "REASON", NULL,
};

/* Column widths of --follow, where rows come before their widths are known. */
static const int follow_widths[COL__MAX] = { 12, 20, 20, 21, 3, 6, 9, 10, 10, 8, 7, 0 };

typedef char conn_cells[COL__MAX][64];

static const char *short_dir(const char *dir)
{
	if (!strcmp(dir, "outbound"))
		return "out";
	if (!strcmp(dir, "inbound"))
		return "in";
	return dir;
}

/* "15:04:05.123" in local time */
static void clock_str(double t, char *buf, size_t len)
{
	time_t secs = (time_t)t;
	struct tm tm;
	char hms[16];

	if (t <= 0 || !localtime_r(&secs, &tm)) {
		snprintf(buf, len, "-");
		return;
	}
	strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03d", hms, (int)((t - (double)secs) * 1000));
}

static double js__double(struct json_object *o, const char *key)
{
	struct json_object *v = js__get(o, key);

	return v ? json_object_get_double(v) : 0;
}

static void rec_cells(struct json_object *r, bool event, conn_cells c)
{
	const char *reason = js__str(r, "reason", "none");
	uint64_t srtt = js__u64(r, "srtt_us");

	clock_str(js__double(r, "time"), c[COL_TIME], sizeof(c[0]));
	if (js__str(r, "service", NULL))
		snprintf(c[COL_SERVICE], sizeof(c[0]), "%s", js__str(r, "service", "?"));
	else
		snprintf(c[COL_SERVICE], sizeof(c[0]), "(gone, id %llu)",
			 (unsigned long long)js__u64(r, "service_id"));
	snprintf(c[COL_BACKEND], sizeof(c[0]), "%s", js__str(r, "backend", "-"));
	snprintf(c[COL_CLIENT], sizeof(c[0]), "%s", js__str(r, "client", "?"));
	snprintf(c[COL_DIR], sizeof(c[0]), "%s", short_dir(js__str(r, "direction", "?")));
	snprintf(c[COL_STATE], sizeof(c[0]), "%s", js__str(r, event ? "event" : "state", "?"));
	out__seconds(js__double(r, "duration_seconds"), c[COL_DURATION], sizeof(c[0]));
	out__bytes(js__u64(r, "bytes_received"), c[COL_IN], sizeof(c[0]));
	out__bytes(js__u64(r, "bytes_sent"), c[COL_OUT], sizeof(c[0]));
	if (srtt)
		out__seconds(srtt / 1e6, c[COL_SRTT], sizeof(c[0]));
	else
		snprintf(c[COL_SRTT], sizeof(c[0]), "-");
	snprintf(c[COL_RETRANS], sizeof(c[0]), "%llu",
		 (unsigned long long)js__u64(r, "retransmits"));
	snprintf(c[COL_REASON], sizeof(c[0]), "%s", strcmp(reason, "none") ? reason : "-");
}

static void print_records(struct json_object *recs)
{
	struct table *t = table__new(conn_cols);
	conn_cells c;

	for (size_t i = 0; i < js__len(recs); i++) {
		rec_cells(js__idx(recs, i), false, c);
		for (int k = 0; k < COL__MAX; k++)
			table__cell(t, "%s", c[k]);
	}
	table__print(t);
	table__free(t);
}

/* One row of --follow, padded to follow_widths (wider cells push on). */
static void print_follow_row(const char *const *cells)
{
	for (int k = 0; k < COL__MAX; k++) {
		const char *h = conn_cols[k];
		bool right = h[0] == '>';
		int w = follow_widths[k];

		if (k + 1 == COL__MAX)
			printf("%s\n", cells[k]);
		else if (right)
			printf("%*s  ", w, cells[k]);
		else
			printf("%-*s  ", w, cells[k]);
	}
	fflush(stdout);
}

static int on_record(struct json_object *rec, void *ctx)
{
	const char *cells[COL__MAX];
	conn_cells c;

	(void)ctx;
	if (out__json_mode()) {
		printf("%s\n",
		       json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
		fflush(stdout);
		return 0;
	}
	rec_cells(rec, true, c);
	for (int k = 0; k < COL__MAX; k++)
		cells[k] = c[k];
	print_follow_row(cells);
	return 0;
}

static int do_follow(struct json_object *args)
{
	const char *header[COL__MAX];

	if (!out__json_mode()) {
		for (int k = 0; k < COL__MAX; k++)
			header[k] = conn_cols[k] + (conn_cols[k][0] == '>');
		header[COL_STATE] = "EVENT";
		print_follow_row(header);
	}
	return client__stream("connections.follow", args, on_record, NULL);
}

static int do_connections(int argc, char **argv)
{
	const char *limit_text = NULL;
	bool follow = false, events = false;
	const struct opt opts[] = {
		{ "follow", 'f', NULL, &follow },
		{ "limit", 'n', &limit_text, NULL },
		{ "events", 0, NULL, &events },
		{ NULL },
	};
	struct json_object *args, *data = NULL;
	unsigned long limit = CONN_LIMIT_DEFAULT;
	char svc[ARGS_SVC_LEN];
	char *pos[1];
	int npos;

	if (opts__parse(argc, argv, opts, pos, 1, &npos))
		return -1;
	if (limit_text && opts__uint(limit_text, 1, CONN_LIMIT_MAX, "--limit", &limit))
		return -1;
	if (follow && (limit_text || events))
		return cmd__usage_error("--follow shows every event as it comes: "
					"--limit and --events are for the list");
	args = out__xalloc(json_object_new_object());
	if (npos) {
		if (args__svc(pos[0], NULL, svc, sizeof(svc))) {
			json_object_put(args);
			return -1;
		}
		json_object_object_add(args, "service", json_object_new_string(svc));
	}
	if (follow)
		return do_follow(args);
	json_object_object_add(args, "limit", json_object_new_int64((int64_t)limit));
	if (events)
		json_object_object_add(args, "events", json_object_new_boolean(1));
	if (client__call("connections.list", args, &data))
		return -1;
	if (out__json_mode())
		out__json(data);
	else
		print_records(js__get(data, "records"));
	json_object_put(data);
	return 0;
}

static const struct help_item connections_args[] = {
	{ "SVC", "only the connections of this service (VIP:PORT/PROTO); default: all" },
	{ NULL, NULL },
};

static const struct help_item connections_opts[] = {
	{ "-f, --follow", "stream events as they happen (open, update, close, fail) until ^C" },
	{ "-n, --limit N", "the newest N connections (default 100, at most 4096)" },
	{ "--events", "every recorded event, not one row per connection" },
	{ NULL, NULL },
};

const struct cmd connections_cmd = {
	.name = "connections",
	.fn = do_connections,
	.grammar = "[SVC] [--follow] [--limit N] [--events]",
	.summary = "recent and live TCP connections of services (telemetry)",
	.args = connections_args,
	.opts = connections_opts,
	.notes = "meshd's telemetry (meshd --telemetry on) records the TCP connections that\n"
		 "processes in its cgroup make to a service (DIR out) or accept as one of its\n"
		 "backends (DIR in). STATE: open, closed or failed; REASON: why it failed or\n"
		 "ended (refused, timeout, reset, ...). BYTES IN/OUT: payload received and\n"
		 "sent (acknowledged) by this end. SRTT: smoothed round-trip time. An open\n"
		 "connection's numbers are as of its last report (meshd --telemetry-interval).\n"
		 "With -o json, --follow prints one JSON record per line. Abbreviated, this\n"
		 "command is 'conne...': 'con' and 'conn' mean conntrack.",
	.example = "meshctl connections 10.96.0.10:80/tcp --limit 20\n"
		   "meshctl connections --follow -o json | jq 'select(.state == \"failed\")'",
	.reads = true,
	.min_prefix = 5, /* "conne": "con" and "conn" stay conntrack's */
};
