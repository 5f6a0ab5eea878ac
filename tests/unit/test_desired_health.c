// SPDX-License-Identifier: MIT
/*
 * test_desired_health.c - a service's healthCheck in the desired state:
 * defaults, every rule (the message names the path and the value), JSON
 * round trip, the short forms of meshctl flags and annotations, the diff
 * (a check change is an update that does not touch the maps) and the
 * backends' `unhealthy` verdict against real maps (needs root): out of the
 * table with its weight kept, read back by desired__from_maps().
 */
#include <errno.h>
#include <stdlib.h>
#include <netinet/in.h>

#include <bpf/bpf.h>

#include "desired.h"
#include "internal.h"
#include "lb_load.h"
#include "test.h"

static int parse(struct desired *d, const char *text)
{
	return desired__from_string(d, text, strlen(text));
}

static bool has(const char *what)
{
	if (strstr(sluice__errmsg(), what))
		return true;
	TEST_FAIL("message \"%s\" lacks \"%s\"", sluice__errmsg(), what);
	return false;
}

#define SVC "services:\n  - {vip: 10.0.0.1, port: 80, protocol: tcp, "
#define BES "backends: [{address: 10.1.0.1, port: 80}, {address: 10.1.0.2, port: 80}]"

static void test_defaults(void)
{
	struct desired d;
	struct desired_health_check *hc;

	if (!ASSERT_OK(parse(&d, SVC BES ", healthCheck: {type: http}}\n"), sluice__errmsg()))
		return;
	hc = &d.services[0].health;
	ASSERT_EQ(hc->type, DESIRED_HC_HTTP, "type");
	ASSERT_TRUE(!strcmp(hc->path, "/"), "path defaults to /");
	ASSERT_EQ(hc->port, 0, "port: the backend's");
	ASSERT_EQ(hc->interval_ms, 5000, "interval");
	ASSERT_EQ(hc->timeout_ms, 1000, "timeout");
	ASSERT_EQ(hc->healthy_threshold, 2, "healthy");
	ASSERT_EQ(hc->unhealthy_threshold, 3, "unhealthy");
	desired__free(&d);
	/* a short interval gets half of it as timeout, not a longer one */
	if (!ASSERT_OK(parse(&d, SVC BES ", healthCheck: {type: tcp, intervalMs: 500}}\n"),
		       sluice__errmsg()))
		return;
	ASSERT_EQ(d.services[0].health.timeout_ms, 250, "timeout half the interval");
	ASSERT_EQ(d.services[0].health.path[0], 0, "no path for tcp");
	desired__free(&d);
	if (!ASSERT_OK(parse(&d, SVC BES "}\n"), sluice__errmsg()))
		return;
	ASSERT_EQ(d.services[0].health.type, DESIRED_HC_NONE, "no healthCheck: none");
	desired__free(&d);
}

struct reject_case {
	const char *hc; /* the healthCheck value */
	const char *want;
};

static const struct reject_case rejects[] = {
	{ "{type: icmp}", "services[0].healthCheck.type: \"icmp\" is not \"tcp\" or \"http\"" },
	{ "{path: /x}", "services[0].healthCheck.type: missing" },
	{ "{type: tcp, path: /x}", "healthCheck.path: \"/x\": a path is for type http only" },
	{ "{type: http, path: healthz}", "healthCheck.path: \"healthz\" does not start with" },
	{ "{type: http, path: \"/a b\"}", "healthCheck.path: \"/a b\" has a space" },
	{ "{type: http, path: \"/a\\u0001\"}", "non-printable character at offset 2" },
	{ "{type: http, path: /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}",
	  "healthCheck.path: \"/aaaaaaaaaaaaaaaaaaaaaaa...\" is longer than 127 characters" },
	{ "{type: tcp, intervalMs: 50}", "healthCheck.intervalMs: 50 is out of range 100-3600000" },
	{ "{type: tcp, intervalMs: 1000, timeoutMs: 1000}",
	  "healthCheck.timeoutMs: 1000 is out of range: at least 10 and shorter than intervalMs "
	  "1000" },
	{ "{type: tcp, timeoutMs: 5}", "healthCheck.timeoutMs: 5 is out of range 10-3599999" },
	{ "{type: tcp, healthyThreshold: 0}", "healthCheck.healthyThreshold: 0 is out of range" },
	{ "{type: tcp, unhealthyThreshold: 256}",
	  "healthCheck.unhealthyThreshold: 256 is out of range 1-255" },
	{ "{type: tcp, port: 70000}", "healthCheck.port: 70000 is out of range 1-65535" },
	{ "{type: tcp, intervalMs: 1.5}", "healthCheck.intervalMs: 1.5 is not a plain decimal" },
	{ "{type: tcp, interval: 100}", "healthCheck.interval: unknown field (did you mean" },
	{ "tcp", "services[0].healthCheck: expected an object, got string" },
};

static void test_rejects(void)
{
	char text[512];
	struct desired d;

	for (size_t i = 0; i < ARRAY_SIZE(rejects); i++) {
		snprintf(text, sizeof(text), SVC BES ", healthCheck: %s}\n", rejects[i].hc);
		if (!ASSERT_EQ(parse(&d, text), -EINVAL, rejects[i].hc)) {
			desired__free(&d);
			continue;
		}
		has(rejects[i].want);
	}
	/* udp: probes are TCP, so the port to probe must be given */
	ASSERT_EQ(parse(&d, "services:\n  - {vip: 10.0.0.1, port: 53, protocol: udp, "
			    "healthCheck: {type: tcp}}\n"),
		  -EINVAL, "udp without port");
	has("services[0].healthCheck.port: missing: a udp service's backends are probed over TCP");
	if (ASSERT_OK(parse(&d, "services:\n  - {vip: 10.0.0.1, port: 53, protocol: udp, "
				"healthCheck: {type: tcp, port: 53}}\n"),
		      sluice__errmsg()))
		desired__free(&d);
}

/* A model built in code (the API's edits) obeys the same rules. */
static void test_validate_model(void)
{
	struct desired d;

	if (!ASSERT_OK(parse(&d, SVC BES ", healthCheck: {type: http, path: /ok}}\n"),
		       sluice__errmsg()))
		return;
	d.services[0].health.timeout_ms = 6000;
	ASSERT_EQ(desired__validate(&d), -EINVAL, "timeout beyond interval");
	has("services[0].healthCheck.timeoutMs: 6000");
	d.services[0].health.timeout_ms = 1000;
	d.services[0].health.path[0] = 'x';
	ASSERT_EQ(desired__validate(&d), -EINVAL, "path");
	has("services[0].healthCheck.path: \"xok\" does not start with \"/\"");
	desired__free(&d);
}

static void test_round_trip(void)
{
	struct desired a, b;
	struct json_object *j;

	if (!ASSERT_OK(parse(&a, SVC BES ", healthCheck: {type: http, path: /healthz, "
					 "port: 8081, intervalMs: 2000, timeoutMs: 300, "
					 "healthyThreshold: 1, unhealthyThreshold: 4}}\n"),
		       sluice__errmsg()))
		return;
	j = desired__to_json(&a);
	if (ASSERT_OK(desired__from_json(&b, j), sluice__errmsg())) {
		ASSERT_TRUE(desired__health_eq(&a.services[0].health, &b.services[0].health),
			    "same check after the round trip");
		ASSERT_EQ(b.services[0].health.port, 8081, "port");
		ASSERT_EQ(b.services[0].health.unhealthy_threshold, 4, "unhealthy");
		ASSERT_TRUE(!strcmp(b.services[0].health.path, "/healthz"), "path");
		desired__free(&b);
	}
	json_object_put(j);
	desired__free(&a);
}

static void test_short_forms(void)
{
	struct desired_health_check hc = {};
	char buf[256];
	__u32 ms = 0;

	ASSERT_OK(desired__health_parse_spec(&hc, "http:/healthz"), "http:/healthz");
	ASSERT_EQ(hc.type, DESIRED_HC_HTTP, "http");
	ASSERT_TRUE(!strcmp(hc.path, "/healthz"), "path");
	ASSERT_OK(desired__health_parse_spec(&hc, "tcp"), "tcp");
	ASSERT_EQ(hc.type, DESIRED_HC_TCP, "tcp");
	ASSERT_EQ(hc.path[0], 0, "tcp has no path");
	ASSERT_OK(desired__health_parse_spec(&hc, "http"), "http");
	ASSERT_TRUE(!strcmp(hc.path, "/"), "http alone probes /");
	ASSERT_EQ(desired__health_parse_spec(&hc, "tcp:/x"), -EINVAL, "tcp with a path");
	has("want tcp, http or http:/PATH");
	ASSERT_EQ(desired__health_parse_spec(&hc, "udp"), -EINVAL, "udp");
	ASSERT_OK(desired__parse_ms("2s", "--health-interval", &ms), "2s");
	ASSERT_EQ(ms, 2000, "2s");
	ASSERT_OK(desired__parse_ms("500ms", "--health-timeout", &ms), "500ms");
	ASSERT_EQ(ms, 500, "500ms");
	ASSERT_OK(desired__parse_ms("1m", "x", &ms), "1m");
	ASSERT_EQ(ms, 60000, "1m");
	ASSERT_OK(desired__parse_ms("250", "x", &ms), "plain ms");
	ASSERT_EQ(ms, 250, "250");
	ASSERT_EQ(desired__parse_ms("1h", "--health-interval", &ms), -EINVAL, "1h");
	has("--health-interval \"1h\": want a duration");
	ASSERT_EQ(desired__parse_ms("-1s", "x", &ms), -EINVAL, "negative");
	ASSERT_EQ(desired__parse_ms("99999999999s", "x", &ms), -EINVAL, "overflow");
	ASSERT_OK(desired__health_parse_thresholds(&hc, "1/5"), "1/5");
	ASSERT_EQ(hc.healthy_threshold, 1, "healthy");
	ASSERT_EQ(hc.unhealthy_threshold, 5, "unhealthy");
	ASSERT_EQ(desired__health_parse_thresholds(&hc, "0/3"), -EINVAL, "0/3");
	ASSERT_EQ(desired__health_parse_thresholds(&hc, "2/3x"), -EINVAL, "2/3x");
	has("want HEALTHY/UNHEALTHY");
	hc = (struct desired_health_check){ .type = DESIRED_HC_HTTP, .port = 8081 };
	desired__health_defaults(&hc);
	ASSERT_OK(desired__health_validate(&hc, IPPROTO_TCP, "--health"), sluice__errmsg());
	ASSERT_TRUE(!strcmp(desired__health_str(&hc, buf, sizeof(buf)),
			    "http:/ every 5000ms, timeout 1000ms, 2 up/3 down, port 8081"),
		    buf);
}

struct diff_rec {
	int n;
	enum desired_change last;
};

static void diff_cb(enum desired_change ch, const struct desired_service *o,
		    const struct desired_service *n, void *ctx)
{
	struct diff_rec *r = ctx;

	(void)o;
	(void)n;
	r->n++;
	r->last = ch;
}

/* A check change is an update; an unhealthy verdict alone is not one the
 * diff reports (it is not the operator's). */
static void test_diff(void)
{
	struct desired a, b;
	struct diff_rec r = {};

	if (!ASSERT_OK(parse(&a, SVC BES ", healthCheck: {type: tcp}}\n"), sluice__errmsg()))
		return;
	if (!ASSERT_OK(parse(&b, SVC BES ", healthCheck: {type: tcp, intervalMs: 1000}}\n"),
		       sluice__errmsg())) {
		desired__free(&a);
		return;
	}
	desired__diff(&a, &b, diff_cb, &r);
	ASSERT_EQ(r.n, 1, "interval change is a change");
	ASSERT_EQ(r.last, DESIRED_UPDATE, "an update");
	b.services[0].health = a.services[0].health;
	b.services[0].backends[1].unhealthy = true;
	r.n = 0;
	desired__diff(&a, &b, diff_cb, &r);
	ASSERT_EQ(r.n, 0, "a verdict is not a change of the desired state");
	desired__free(&a);
	desired__free(&b);
}

static int backend_state(struct sluice *s, __u16 port_last, struct sluice_backend *out)
{
	__u32 key, next, *prev = NULL;

	while (!bpf_map_get_next_key(s->fds[SLUICE_MAP_BACKENDS], prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(s->fds[SLUICE_MAP_BACKENDS], &key, out))
			continue;
		if (ntohl(out->addr[0]) == (0x0a010000u | port_last))
			return 0;
	}
	return -ENOENT;
}

/* The verdict against real maps: state UNHEALTHY, weight kept, out of the
 * table (backend_count), back in when cleared; a check-only change writes
 * nothing (the services map is made unusable to prove it). */
static void test_apply_verdicts(void)
{
	struct sluice_opts opts = {};
	struct sluice_service_info info;
	struct desired empty = {}, a, b, back;
	struct sluice_backend be;
	struct sluice *s = NULL;
	int real;

	if (!ASSERT_OK(sluice__open(&s, &opts), sluice__errmsg()))
		return;
	if (!ASSERT_OK(parse(&a, SVC BES ", healthCheck: {type: tcp}}\n"), sluice__errmsg()))
		goto out;
	desired__copy(&b, &a);
	b.services[0].backends[1].unhealthy = true;
	if (!ASSERT_OK(desired__apply(s, &empty, &a), sluice__errmsg()) ||
	    !ASSERT_OK(desired__apply(s, &a, &b), sluice__errmsg()))
		goto free;
	if (ASSERT_OK(sluice__service_get(s, &a.services[0].vip, 80, IPPROTO_TCP, &info),
		      sluice__errmsg()))
		ASSERT_EQ(info.svc.backend_count, 1, "unhealthy backend out of the count");
	if (ASSERT_OK(backend_state(s, 0x0002, &be), "backend 10.1.0.2")) {
		ASSERT_EQ(be.state, SLUICE_BE_UNHEALTHY, "state unhealthy");
		ASSERT_EQ(be.weight, 1, "operator's weight kept");
	}
	if (ASSERT_OK(desired__from_maps(s, &back), sluice__errmsg())) {
		ASSERT_TRUE(back.services[0].backends[1].unhealthy, "read back unhealthy");
		ASSERT_FALSE(back.services[0].backends[0].unhealthy, "the other healthy");
		desired__free(&back);
	}
	/* a healthCheck-only change: nothing to write */
	a.services[0].health.interval_ms = 2000;
	a.services[0].backends[1].unhealthy = true;
	real = s->fds[SLUICE_MAP_SERVICES];
	s->fds[SLUICE_MAP_SERVICES] = -1;
	ASSERT_OK(desired__apply(s, &b, &a), "check-only change touches no map");
	s->fds[SLUICE_MAP_SERVICES] = real;
	a.services[0].backends[1].unhealthy = false;
	if (ASSERT_OK(desired__apply(s, &b, &a), sluice__errmsg()) &&
	    ASSERT_OK(sluice__service_get(s, &a.services[0].vip, 80, IPPROTO_TCP, &info),
		      sluice__errmsg()))
		ASSERT_EQ(info.svc.backend_count, 2, "back in the table");
	if (ASSERT_OK(backend_state(s, 0x0002, &be), "backend 10.1.0.2"))
		ASSERT_EQ(be.state, SLUICE_BE_ACTIVE, "state active again");
	desired__apply(s, &a, &empty);
free:
	desired__free(&a);
	desired__free(&b);
out:
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_defaults),
	TEST(test_rejects),
	TEST(test_validate_model),
	TEST(test_round_trip),
	TEST(test_short_forms),
	TEST(test_diff),
	TEST_ROOT(test_apply_verdicts),
};

int main(int argc, char **argv)
{
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("desired_health", tests, ARRAY_SIZE(tests), argc, argv);
}
