// SPDX-License-Identifier: MIT
/*
 * test_metrics.c - the Prometheus renderer on fixed input: the exact text
 * of a small snapshot (datapath only, then with telemetry and socket
 * counters; outlier detection's families), label escaping, deterministic output, and the HTTP helpers
 * (gzip round trip, Accept-Encoding parsing). No BPF, no root.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <zlib.h>

#include "http.h"
#include "metrics.h"
#include "test.h"

#include "test_metrics_expected.h"

static struct metrics_service svcs[1];
static struct metrics_backend bes[2];

/* 10.96.0.10:80/tcp with backends 10.0.1.2:8080 (weight 90) and
 * 10.0.1.3:8080 (weight 10); a few packets and drops. */
static void snapshot__base(struct metrics_snapshot *m)
{
	memset(m, 0, sizeof(*m));
	memset(svcs, 0, sizeof(svcs));
	memset(bes, 0, sizeof(bes));
	m->version = "0.1.0";
	m->layout_version = 1;
	m->start_time = 1700000000.25;
	for (int i = 0; i < SLUICE_CNT__MAX; i++)
		m->counters[i] = 10 * (i + 1);
	m->drops[SLUICE_DROP_TRUNC_TCP] = 3;
	m->drops[SLUICE_DROP_FRAGMENT] = 1;

	snprintf(svcs[0].name, sizeof(svcs[0].name), "10.96.0.10:80/tcp");
	svcs[0].svc_id = 1;
	svcs[0].backend_count = 2;
	svcs[0].stats = (struct sluice_svc_stats){
		.packets = 100, .bytes = 6400, .flows = 5, .refused = 0
	};
	bes[0] = (struct metrics_backend){ .service = 0,
					   .addr = "10.0.1.2:8080",
					   .backend_id = 1,
					   .weight = 90,
					   .stats = { .packets = 60, .bytes = 3840, .flows = 3 } };
	bes[1] = (struct metrics_backend){ .service = 0,
					   .addr = "10.0.1.3:8080",
					   .backend_id = 2,
					   .weight = 10,
					   .stats = { .packets = 40, .bytes = 2560, .flows = 2 } };
	/* #14: the first backend ejected after 3 failures (RST), twice
	 * before for RST and once for an unanswered SYN; the second healthy */
	for (int i = 0; i < SLUICE_HCNT__MAX; i++)
		m->health[i] = i + 1;
	svcs[0].healthy = 1;
	bes[0].health = SLUICE_BEH_EJECTED;
	bes[0].fails = 3;
	bes[0].ejections[SLUICE_HEALTH_R_RST] = 2;
	bes[0].ejections[SLUICE_HEALTH_R_SYN_TIMEOUT] = 1;
	m->services = svcs;
	m->nservices = 1;
	m->backends = bes;
	m->nbackends = 2;
	m->nmaps = 2;
	m->maps[0] = (struct metrics_map){ "services", 2, 32768 };
	m->maps[1] = (struct metrics_map){ "conntrack", 10, 262144 };
}

/* Three outbound connections, two closed (RTT 40 us and 300 us, lasting
 * 2 ms and 1.5 s, 100 B and 5000 B), one refused attempt; the backends
 * saw them 2 + 1 + the failure. */
static void snapshot__telemetry(struct metrics_snapshot *m)
{
	struct telemetry_svc_stats *t = &svcs[0].tel;
	struct telemetry_conn *c = &t->conn[SLUICE_TELEM_OUTBOUND];
	struct telemetry_hist *h = t->hist[SLUICE_TELEM_OUTBOUND];

	m->has_telemetry = true;
	m->telemetry.kernel[SLUICE_TELEM_CNT_RECORDS] = 6;
	m->telemetry.kernel[SLUICE_TELEM_CNT_LOST] = 0;
	m->telemetry.kernel[SLUICE_TELEM_CNT_TRACKED] = 4;
	m->telemetry.read = 6;
	svcs[0].has_telemetry = true;
	t->seen[SLUICE_TELEM_OUTBOUND] = true;
	*c = (struct telemetry_conn){ .opened = 3,
				      .closed = 2,
				      .bytes_sent = 2550,
				      .bytes_received = 2550,
				      .retrans = 1,
				      .rtos = 1 };
	c->failed[SLUICE_TELEM_REASON_REFUSED] = 1;
	h[TELEMETRY_HIST_RTT] = (struct telemetry_hist){ .count = 2, .sum = 340 };
	h[TELEMETRY_HIST_RTT].buckets[0] = 1; /* 40 us <= 50 us */
	h[TELEMETRY_HIST_RTT].buckets[3] = 1; /* 300 us <= 500 us */
	h[TELEMETRY_HIST_DURATION] = (struct telemetry_hist){ .count = 2, .sum = 1502000 };
	h[TELEMETRY_HIST_DURATION].buckets[1] = 1; /* 2 ms <= 5 ms */
	h[TELEMETRY_HIST_DURATION].buckets[7] = 1; /* 1.5 s <= 5 s */
	h[TELEMETRY_HIST_BYTES] = (struct telemetry_hist){ .count = 2, .sum = 5100 };
	h[TELEMETRY_HIST_BYTES].buckets[1] = 1; /* 100 <= 256 */
	h[TELEMETRY_HIST_BYTES].buckets[4] = 1; /* 5000 <= 16384 */
	bes[0].has_telemetry = true;
	bes[0].tel.seen[SLUICE_TELEM_OUTBOUND] = true;
	bes[0].tel.conn[SLUICE_TELEM_OUTBOUND] = (struct telemetry_conn){ .opened = 2,
									  .closed = 2,
									  .bytes_sent = 2550,
									  .bytes_received = 2550,
									  .retrans = 1,
									  .rtos = 1 };
	bes[1].has_telemetry = true;
	bes[1].tel.seen[SLUICE_TELEM_OUTBOUND] = true;
	bes[1].tel.conn[SLUICE_TELEM_OUTBOUND] = (struct telemetry_conn){ .opened = 1 };
	bes[1].tel.conn[SLUICE_TELEM_OUTBOUND].failed[SLUICE_TELEM_REASON_REFUSED] = 1;
	m->nmaps = 3;
	m->maps[2] = (struct metrics_map){ "telem_endpoints", 2, 65536 };
}

static char *render(const struct metrics_snapshot *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (metrics__write(m, f)) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	return buf;
}

/* On a mismatch, show the first differing line. */
static bool text_eq(const char *got, const char *want, const char *what)
{
	const char *g = got, *w = want;
	int line = 1;

	if (!strcmp(got, want))
		return true;
	while (*g && *g == *w) {
		if (*g == '\n') {
			line++;
			got = g + 1;
			want = w + 1;
		}
		g++;
		w++;
	}
	TEST_FAIL("%s: line %d differs:\n    got:  %.*s\n    want: %.*s", what, line,
		  (int)strcspn(got, "\n"), got, (int)strcspn(want, "\n"), want);
	return false;
}

static void test_render_datapath_only(void)
{
	struct metrics_snapshot m;
	char *text;

	snapshot__base(&m);
	text = render(&m);
	if (!ASSERT_TRUE(text != NULL, "render"))
		return;
	if (getenv("METRICS_DUMP"))
		fputs(text, stdout);
	text_eq(text, expected_datapath, "datapath text");
	free(text);
}

static void test_render_telemetry(void)
{
	struct metrics_snapshot m;
	char *text;

	snapshot__base(&m);
	snapshot__telemetry(&m);
	m.has_sock = true;
	m.sock.redir[SLUICE_REDIR_CNT_MSGS] = 7;
	m.sock.redir[SLUICE_REDIR_CNT_BYTES] = 700;
	m.sock.lb[SLUICE_SOCK_CNT_CONNECT] = 4;
	m.sock.redir_sockets = 2;
	text = render(&m);
	if (!ASSERT_TRUE(text != NULL, "render"))
		return;
	if (getenv("METRICS_DUMP"))
		fputs(text, stdout);
	/* everything of the datapath-only text, then the rest */
	text_eq(text, expected_telemetry, "telemetry text");
	free(text);
}

/* A deleted service is simply not in the snapshot: none of its series,
 * nor its backends', remain. */
/* Status and metrics take the telemetry counters from one list: every
 * counter has a key, a metric and help, and each value lands where named. */
static void test_telemetry_counters(void)
{
	struct telemetry_info info = { .read = 11, .unattributed = 12 };
	struct telemetry_counter c;

	for (int i = 0; i < SLUICE_TELEM_CNT__MAX; i++)
		info.kernel[i] = 100 + i;
	for (unsigned int i = 0; i < TELEMETRY_COUNTERS; i++) {
		c = telemetry__counter(&info, i);
		ASSERT_TRUE(*c.key && *c.metric && *c.help, "counter named");
		ASSERT_TRUE(strcmp(c.key, "unknown"), "counter in range");
	}
	c = telemetry__counter(&info, 1);
	ASSERT_TRUE(!strcmp(c.key, "records_lost") && c.value == 101, "records_lost");
	c = telemetry__counter(&info, 2);
	ASSERT_TRUE(!strcmp(c.key, "records_read") && c.value == 11, "records_read");
	c = telemetry__counter(&info, 3);
	ASSERT_TRUE(!strcmp(c.key, "records_unattributed") && c.value == 12, "unattributed");
	c = telemetry__counter(&info, TELEMETRY_COUNTERS - 1);
	ASSERT_TRUE(!strcmp(c.key, "sockets_untracked") && c.value == 103, "sockets_untracked");
	c = telemetry__counter(&info, TELEMETRY_COUNTERS);
	ASSERT_TRUE(!strcmp(c.key, "unknown"), "out of range");
}

static void test_deleted_service_disappears(void)
{
	struct metrics_snapshot m;
	char *text;

	snapshot__base(&m);
	snapshot__telemetry(&m);
	m.nservices = 0;
	m.nbackends = 0;
	text = render(&m);
	if (!ASSERT_TRUE(text != NULL, "render"))
		return;
	ASSERT_TRUE(strstr(text, "10.96.0.10") == NULL, "no series of the deleted service");
	ASSERT_TRUE(strstr(text, "10.0.1.2") == NULL, "no series of its backends");
	ASSERT_TRUE(strstr(text, "# TYPE sluice_connections_opened_total counter") != NULL,
		    "families stay");
	free(text);
}

static void test_label_escaping(void)
{
	struct metrics_snapshot m;
	char *text;

	snapshot__base(&m);
	snprintf(svcs[0].name, sizeof(svcs[0].name), "a\"b\\c\nd");
	m.nbackends = 0;
	text = render(&m);
	if (!ASSERT_TRUE(text != NULL, "render"))
		return;
	ASSERT_TRUE(strstr(text,
			   "sluice_service_packets_total{service=\"a\\\"b\\\\c\\nd\"} 100\n") !=
			    NULL,
		    "quote, backslash and newline escaped");
	free(text);
}

static void test_render_is_deterministic(void)
{
	struct metrics_snapshot m;
	char *a, *b;

	snapshot__base(&m);
	snapshot__telemetry(&m);
	a = render(&m);
	b = render(&m);
	if (ASSERT_TRUE(a && b, "render"))
		ASSERT_TRUE(!strcmp(a, b), "two renders are identical");
	free(a);
	free(b);
}

static void test_gzip_round_trip(void)
{
	static const char text[] = "# TYPE sluice_x counter\nsluice_x 1\n";
	char back[256];
	uLongf back_len = sizeof(back);
	z_stream zs = {};
	void *gz = NULL;
	size_t gz_len = 0;

	if (!ASSERT_OK(http__gzip(text, sizeof(text) - 1, &gz, &gz_len), "gzip"))
		return;
	ASSERT_TRUE(gz_len > 10 && ((unsigned char *)gz)[0] == 0x1f &&
			    ((unsigned char *)gz)[1] == 0x8b,
		    "gzip magic");
	/* 15 + 32: accept the gzip wrapper */
	if (ASSERT_EQ(inflateInit2(&zs, 15 + 32), Z_OK, "inflateInit2")) {
		zs.next_in = gz;
		zs.avail_in = gz_len;
		zs.next_out = (Bytef *)back;
		zs.avail_out = back_len;
		ASSERT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END, "inflate");
		ASSERT_EQ(zs.total_out, sizeof(text) - 1, "inflated length");
		ASSERT_MEM_EQ(back, text, sizeof(text) - 1, "inflated text");
		inflateEnd(&zs);
	}
	free(gz);
}

static void test_accept_encoding(void)
{
	static const struct {
		const char *ae;
		int gzip;
	} cases[] = {
		{ NULL, 0 },       { "", 0 },
		{ "gzip", 1 },     { "GZIP", 1 },
		{ "identity", 0 }, { "deflate, gzip;q=0.5", 1 },
		{ "gzip;q=0", 0 }, { "gzip; q=0.0, identity", 0 },
		{ "x-gzip", 0 },   { "*", 1 },
		{ "br,gzip", 1 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (!ASSERT_EQ(http__accepts_gzip(cases[i].ae), cases[i].gzip,
			       cases[i].ae ? cases[i].ae : "(none)"))
			return;
}

static const struct test tests[] = {
	TEST(test_render_datapath_only), TEST(test_render_telemetry),
	TEST(test_telemetry_counters),   TEST(test_deleted_service_disappears),
	TEST(test_label_escaping),       TEST(test_render_is_deterministic),
	TEST(test_gzip_round_trip),      TEST(test_accept_encoding),
};

int main(int argc, char **argv)
{
	return test__run_all("metrics", tests, ARRAY_SIZE(tests), argc, argv);
}
