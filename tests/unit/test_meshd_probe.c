// SPDX-License-Identifier: MIT
/*
 * test_meshd_probe.c - meshd's active health checks (user/meshd/probe*.c):
 * the threshold rule, the HTTP status line parser, and the engine probing
 * real sockets on loopback (a listener, a closed port, an HTTP answer of
 * 500) with the maps a stand-in that records what meshd writes: a backend
 * failing unhealthyThreshold probes is marked, one passing healthyThreshold
 * comes back, a drained backend is never probed nor revived, a service
 * whose backends all fail keeps them all (panic), an edit keeps the
 * verdicts of the backends that stay. No root needed.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "desired.h"
#include "log.h"
#include "probe.h"
#include "state.h"
#include "test.h"

static void test_thresholds(void)
{
	struct probe_verdict v = { 0 };

	/* unhealthy 3: two failures are not enough, a success resets them */
	ASSERT_FALSE(probe__verdict_feed(&v, false, 2, 3), "1st failure");
	ASSERT_FALSE(probe__verdict_feed(&v, false, 2, 3), "2nd failure");
	ASSERT_FALSE(probe__verdict_feed(&v, true, 2, 3), "success while up");
	ASSERT_EQ(v.fails, 0, "success zeroes the failures");
	ASSERT_FALSE(probe__verdict_feed(&v, false, 2, 3), "1");
	ASSERT_FALSE(probe__verdict_feed(&v, false, 2, 3), "2");
	ASSERT_TRUE(probe__verdict_feed(&v, false, 2, 3), "3rd failure in a row flips");
	ASSERT_TRUE(v.down, "down");
	ASSERT_FALSE(probe__verdict_feed(&v, false, 2, 3), "more failures: no flip");
	/* healthy 2: one success, then a failure, starts over */
	ASSERT_FALSE(probe__verdict_feed(&v, true, 2, 3), "1st success");
	ASSERT_FALSE(probe__verdict_feed(&v, false, 2, 3), "failure resets");
	ASSERT_FALSE(probe__verdict_feed(&v, true, 2, 3), "1st success again");
	ASSERT_TRUE(probe__verdict_feed(&v, true, 2, 3), "2nd success in a row flips");
	ASSERT_FALSE(v.down, "up");
	/* thresholds of 1 */
	ASSERT_TRUE(probe__verdict_feed(&v, false, 1, 1), "one failure");
	ASSERT_TRUE(probe__verdict_feed(&v, true, 1, 1), "one success");
}

static void test_http_status(void)
{
	static const struct {
		const char *line;
		int want;
	} cases[] = {
		{ "HTTP/1.1 200 OK\r\n", 200 },
		{ "HTTP/1.0 503 Busy", 503 },
		{ "HTTP/1.1 302\r\n", 302 },
		{ "HTTP/1.1 204", 204 },
		{ "HTTP/1.1 20", 0 },
		{ "HTT", 0 },
		{ "", 0 },
		{ "SSH-2.0-OpenSSH", -1 },
		{ "HTTP/2 200 OK", -1 },
		{ "HTTP/1.1 2x0 OK", -1 },
		{ "HTTP/1.1 2000 OK", -1 },
		{ "http/1.1 200 OK", -1 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		ASSERT_EQ(probe__http_status(cases[i].line, strlen(cases[i].line)), cases[i].want,
			  cases[i].line);
}

/* Maps that record the last state applied for the service. */
struct fake_maps {
	struct desired held;
	int applies;
};

static int fake_read(void *ctx, struct desired *out)
{
	return desired__copy(out, &((struct fake_maps *)ctx)->held);
}

static int fake_apply(void *ctx, const struct desired *old, const struct desired *next)
{
	struct fake_maps *f = ctx;

	(void)old;
	f->applies++;
	desired__free(&f->held);
	return desired__copy(&f->held, next);
}

static int listener(__u16 *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)&sin, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A port nothing listens on: bound, never listened to, then closed. */
static __u16 closed_port(void)
{
	__u16 port = 0;
	int fd = listener(&port);

	close(fd);
	return port;
}

struct rig {
	struct fake_maps maps;
	struct state st;
	struct probe p;
	int lfd;     /* the healthy backend's listener */
	int http500; /* answer HTTP 500 to what lfd accepts (when http) */
};

/* Runs the engine (and the listener) until cond holds or 5 s pass. */
static bool spin(struct rig *r, bool (*cond)(struct rig *r))
{
	for (int i = 0; i < 500; i++) {
		struct pollfd pf[2] = { { .fd = probe__fd(&r->p), .events = POLLIN },
					{ .fd = r->lfd, .events = POLLIN } };

		if (cond(r))
			return true;
		poll(pf, 2, 10);
		if (pf[1].revents & POLLIN) {
			int c = accept(r->lfd, NULL, NULL);
			static const char resp[] = "HTTP/1.1 500 Internal Server Error\r\n\r\n";

			if (c >= 0 && r->http500 && write(c, resp, sizeof(resp) - 1) < 0)
				TEST_FAIL("write: %s", strerror(errno));
			if (c >= 0)
				close(c);
		}
		probe__run(&r->p);
	}
	return cond(r);
}

static bool held_unhealthy(const struct rig *r, int j)
{
	return r->maps.held.nservices && r->maps.held.services[0].backends[j].unhealthy;
}

static bool b1_down(struct rig *r)
{
	return held_unhealthy(r, 1);
}
static bool b0_panics(struct rig *r)
{
	return r->p.stats.panics > 0;
}
static bool b1_up(struct rig *r)
{
	return r->maps.applies >= 2 && !held_unhealthy(r, 1);
}

/* One tcp service: b0 listening, b1 a closed port, b2 drained. */
static bool rig_up(struct rig *r, const char *check)
{
	char text[1024];
	__u16 port = 0;

	memset(r, 0, sizeof(*r));
	r->lfd = listener(&port);
	if (!ASSERT_TRUE(r->lfd >= 0, "listener"))
		return false;
	snprintf(text, sizeof(text),
		 "services:\n  - {vip: 10.0.0.1, port: 80, protocol: tcp, healthCheck: %s,\n"
		 "     backends: [{address: 127.0.0.1, port: %u}, {address: 127.0.0.1, port: %u},\n"
		 "                {address: 127.0.0.2, port: %u, weight: 0}]}\n",
		 check, port, closed_port(), port);
	if (!ASSERT_OK(desired__from_string(&r->st.desired, text, strlen(text)), sluice__errmsg()))
		return false;
	desired__copy(&r->maps.held, &r->st.desired);
	r->st.maps = (struct state_maps){ fake_read, fake_apply, &r->maps };
	return ASSERT_OK(probe__start(&r->p, &r->st), "probe__start");
}

static void rig_down(struct rig *r)
{
	probe__stop(&r->p);
	close(r->lfd);
	desired__free(&r->st.desired);
	desired__free(&r->maps.held);
}

static void test_tcp_engine(void)
{
	struct desired next;
	struct rig r;

	if (!rig_up(&r, "{type: tcp, intervalMs: 100, timeoutMs: 50, healthyThreshold: 1, "
			"unhealthyThreshold: 2}"))
		goto out;
	ASSERT_EQ(r.p.n, 2, "two targets: the drained backend is not probed");
	if (!ASSERT_TRUE(spin(&r, b1_down), "closed port marked unhealthy"))
		goto out;
	ASSERT_FALSE(held_unhealthy(&r, 0), "the listening backend stays");
	ASSERT_FALSE(held_unhealthy(&r, 2), "the drained backend is not marked");
	ASSERT_TRUE(r.st.desired.services[0].backends[1].unhealthy, "st->desired follows");
	ASSERT_EQ(r.st.desired.services[0].backends[1].weight, 1, "operator's weight kept");
	ASSERT_EQ(probe__find(&r.p, &r.st.desired.services[0],
			      &r.st.desired.services[0].backends[1])
			  ->last,
		  PROBE_R_REFUSED, "last result refused");
	/* an edit (b0's weight) keeps b1's verdict: the stamp marks it */
	desired__copy(&next, &r.st.desired);
	for (__u32 j = 0; j < next.services[0].nbackends; j++)
		next.services[0].backends[j].unhealthy = false;
	next.services[0].backends[0].weight = 5;
	probe__stamp(&r.p, &next);
	ASSERT_TRUE(next.services[0].backends[1].unhealthy, "edit keeps the verdict");
	/* the operator drains b1: never marked (nor probed) again */
	next.services[0].backends[1].weight = 0;
	probe__stamp(&r.p, &next);
	ASSERT_FALSE(next.services[0].backends[1].unhealthy, "drained: not marked");
	desired__free(&r.st.desired);
	r.st.desired = next;
	probe__sync(&r.p);
	ASSERT_EQ(r.p.n, 1, "one target left");
	ASSERT_TRUE(probe__find(&r.p, &r.st.desired.services[0],
				&r.st.desired.services[0].backends[1]) == NULL,
		    "drained b1 not probed");
out:
	rig_down(&r);
}

/* Every weighted backend fails: all are kept (panic), counted once. */
static void test_panic(void)
{
	struct rig r;

	if (!rig_up(&r, "{type: http, path: /healthz, intervalMs: 100, timeoutMs: 50, "
			"healthyThreshold: 1, unhealthyThreshold: 1}"))
		goto out;
	r.http500 = 1;
	if (!ASSERT_TRUE(spin(&r, b0_panics), "panic"))
		goto out;
	ASSERT_FALSE(held_unhealthy(&r, 0), "panic: b0 kept");
	ASSERT_FALSE(held_unhealthy(&r, 1), "panic: b1 kept");
	ASSERT_EQ(r.p.stats.panics, 1, "counted once");
	ASSERT_TRUE(r.p.stats.results[PROBE_R_STATUS] > 0, "500 counted as http_status");
out:
	rig_down(&r);
}

/* A backend that recovers comes back after healthyThreshold passes. */
static void test_recover(void)
{
	struct rig r;
	__u16 port = 0;
	int fd;

	if (!rig_up(&r, "{type: tcp, intervalMs: 100, timeoutMs: 50, healthyThreshold: 2, "
			"unhealthyThreshold: 1}"))
		goto out;
	if (!ASSERT_TRUE(spin(&r, b1_down), "b1 down"))
		goto out;
	/* listen on b1's port now */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	port = r.st.desired.services[0].backends[1].port;
	{
		struct sockaddr_in sin = { .sin_family = AF_INET,
					   .sin_port = htons(port),
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		if (!ASSERT_OK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 64),
			       "listen on b1's port")) {
			close(fd);
			goto out;
		}
	}
	ASSERT_TRUE(spin(&r, b1_up), "b1 back after 2 passes");
	close(fd);
out:
	rig_down(&r);
}

/* A restart keeps the verdicts the maps hold (state__reconcile), for
 * backends that keep weight > 0 in a service that keeps its check; a
 * verdict that would take out every backend is dropped (panic). */
static void test_restart_keeps(void)
{
	static const char *const text =
		"services:\n"
		"  - {vip: 10.0.0.1, port: 80, protocol: tcp, healthCheck: {type: tcp},\n"
		"     backends: [{address: 10.1.0.1, port: 80}, {address: 10.1.0.2, port: 80}]}\n"
		"  - {vip: 10.0.0.2, port: 80, protocol: tcp,\n"
		"     backends: [{address: 10.1.0.1, port: 80}, {address: 10.1.0.2, port: 80}]}\n"
		"  - {vip: 10.0.0.3, port: 80, protocol: tcp, healthCheck: {type: tcp},\n"
		"     backends: [{address: 10.1.0.1, port: 80}]}\n";
	struct fake_maps maps = {};
	struct state st = {};

	if (!ASSERT_OK(desired__from_string(&st.desired, text, strlen(text)), sluice__errmsg()))
		return;
	desired__copy(&maps.held, &st.desired);
	maps.held.services[0].backends[1].unhealthy = true; /* kept */
	maps.held.services[1].backends[1].unhealthy = true; /* check removed */
	maps.held.services[2].backends[0].unhealthy = true; /* would empty it */
	st.maps = (struct state_maps){ fake_read, fake_apply, &maps };
	st.path = "/nonexistent/state.json";
	if (ASSERT_OK(state__reconcile(&st), sluice__errmsg())) {
		ASSERT_TRUE(st.desired.services[0].backends[1].unhealthy, "verdict kept");
		ASSERT_FALSE(st.desired.services[1].backends[1].unhealthy, "no check: cleared");
		ASSERT_FALSE(st.desired.services[2].backends[0].unhealthy, "panic: cleared");
		ASSERT_TRUE(maps.held.services[0].backends[1].unhealthy, "maps keep it");
		ASSERT_FALSE(maps.held.services[1].backends[1].unhealthy, "maps cleared");
	}
	desired__free(&st.desired);
	desired__free(&maps.held);
}

static const struct test tests[] = {
	TEST(test_thresholds), TEST(test_http_status), TEST(test_tcp_engine),
	TEST(test_panic),      TEST(test_recover),     TEST(test_restart_keeps),
};

int main(int argc, char **argv)
{
	log__set_level(LOG_LEVEL_ERROR);
	return test__run_all("meshd_probe", tests, ARRAY_SIZE(tests), argc, argv);
}
