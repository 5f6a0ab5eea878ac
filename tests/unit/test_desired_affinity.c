// SPDX-License-Identifier: MIT
/*
 * test_desired_affinity.c - "sessionAffinity" in the desired state (#14):
 * JSON and YAML forms, defaults, every refusal naming path and value, the
 * rule for models built in code, to_json round trip, diff (a change of
 * affinity alone is an update) and apply/from_maps against real maps
 * (needs root): the service entry carries flag and timeout and reads back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <bpf/bpf.h>

#include "desired.h"
#include "internal.h"
#include "lb_load.h"
#include "test.h"

#define SVC(extra)                                                                        \
	"{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"tcp\", " \
	"\"backends\": [{\"address\": \"10.0.1.2\", \"port\": 8080}]" extra "}]}"

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

static __u32 timeout_of(const char *text)
{
	struct desired d;
	__u32 t;

	if (!ASSERT_OK(parse(&d, text), sluice__errmsg()))
		return ~0u;
	t = d.services[0].affinity_timeout_s;
	desired__free(&d);
	return t;
}

static void test_parse(void)
{
	ASSERT_EQ(timeout_of(SVC("")), 0, "no sessionAffinity: none");
	ASSERT_EQ(timeout_of(SVC(", \"sessionAffinity\": {\"type\": \"None\"}")), 0, "None");
	ASSERT_EQ(timeout_of(SVC(", \"sessionAffinity\": {\"type\": \"ClientIP\"}")), 10800,
		  "ClientIP: default 10800 s");
	ASSERT_EQ(timeout_of(SVC(", \"sessionAffinity\": {\"type\": \"ClientIP\", "
				 "\"timeoutSeconds\": 60}")),
		  60, "timeoutSeconds 60");
	ASSERT_EQ(timeout_of(SVC(", \"sessionAffinity\": {\"type\": \"ClientIP\", "
				 "\"timeoutSeconds\": 86400}")),
		  86400, "the maximum");
	ASSERT_EQ(timeout_of("services:\n"
			     "  - vip: 10.96.0.10\n    port: 80\n    protocol: tcp\n"
			     "    sessionAffinity:\n      type: ClientIP\n"
			     "      timeoutSeconds: 300\n"),
		  300, "YAML");
}

static void rejects(const char *extra_json, const char *msg1, const char *msg2)
{
	char text[512];
	struct desired d;

	snprintf(text, sizeof(text), SVC("%s"), extra_json);
	if (!ASSERT_EQ(parse(&d, text), -EINVAL, extra_json)) {
		desired__free(&d);
		return;
	}
	has(msg1);
	if (msg2)
		has(msg2);
}

static void test_rejects(void)
{
	rejects(", \"sessionAffinity\": {\"type\": \"ClientIP\", \"timeoutSeconds\": 0}",
		"services[0].sessionAffinity.timeoutSeconds", "0");
	rejects(", \"sessionAffinity\": {\"type\": \"ClientIP\", \"timeoutSeconds\": 86401}",
		"services[0].sessionAffinity.timeoutSeconds", "86401");
	rejects(", \"sessionAffinity\": {\"type\": \"ClientIP\", \"timeoutSeconds\": \"3h\"}",
		"services[0].sessionAffinity.timeoutSeconds", "3h");
	rejects(", \"sessionAffinity\": {\"type\": \"clientip\"}",
		"services[0].sessionAffinity.type", "\"ClientIP\"");
	rejects(", \"sessionAffinity\": {\"type\": \"Sticky\"}", "services[0].sessionAffinity.type",
		"Sticky");
	rejects(", \"sessionAffinity\": {\"timeoutSeconds\": 10}",
		"services[0].sessionAffinity.type", "missing");
	rejects(", \"sessionAffinity\": {\"type\": \"None\", \"timeoutSeconds\": 10}",
		"services[0].sessionAffinity.timeoutSeconds", "ClientIP");
	rejects(", \"sessionAffinity\": {\"type\": \"ClientIP\", \"timeout\": 10}",
		"services[0].sessionAffinity", "timeoutSeconds");
	rejects(", \"sessionAffinity\": \"ClientIP\"", "services[0].sessionAffinity", NULL);
	rejects(", \"sessionAfinity\": {\"type\": \"ClientIP\"}", "sessionAfinity",
		"sessionAffinity");
}

static void test_model_and_json(void)
{
	struct desired d, back;
	struct json_object *j;
	const char *text;

	if (!ASSERT_OK(parse(&d, SVC(", \"sessionAffinity\": {\"type\": \"ClientIP\", "
				     "\"timeoutSeconds\": 120}")),
		       sluice__errmsg()))
		return;
	j = desired__to_json(&d);
	text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	ASSERT_TRUE(strstr(text, "\"sessionAffinity\":{\"type\":\"ClientIP\","
				 "\"timeoutSeconds\":120}") != NULL,
		    text);
	if (ASSERT_OK(parse(&back, text), sluice__errmsg())) {
		ASSERT_EQ(back.services[0].affinity_timeout_s, 120, "round trip");
		desired__free(&back);
	}
	json_object_put(j);
	d.services[0].affinity_timeout_s = 0;
	j = desired__to_json(&d);
	ASSERT_TRUE(!strstr(json_object_to_json_string(j), "sessionAffinity"),
		    "none is not written");
	json_object_put(j);
	d.services[0].affinity_timeout_s = 100000;
	ASSERT_EQ(desired__validate(&d), -EINVAL, "model with 100000 s");
	has("services[0].sessionAffinity.timeoutSeconds: 100000");
	desired__free(&d);
}

static void count_change(enum desired_change change, const struct desired_service *o,
			 const struct desired_service *n, void *ctx)
{
	(void)o;
	(void)n;
	if (change == DESIRED_UPDATE)
		(*(int *)ctx)++;
}

static void test_diff(void)
{
	struct desired a, b;
	int updates = 0;

	if (!ASSERT_OK(parse(&a, SVC("")), "a") ||
	    !ASSERT_OK(parse(&b, SVC(", \"sessionAffinity\": {\"type\": \"ClientIP\"}")), "b"))
		return;
	desired__diff(&a, &b, count_change, &updates);
	ASSERT_EQ(updates, 1, "affinity on is an update");
	updates = 0;
	desired__diff(&b, &b, count_change, &updates);
	ASSERT_EQ(updates, 0, "same affinity: no change");
	desired__free(&a);
	desired__free(&b);
}

static bool svc_entry(struct sluice *s, struct sluice_svc *out)
{
	struct sluice_service_info info;
	struct sluice_addr vip;

	sluice_addr__parse(&vip, "10.96.0.10");
	if (!ASSERT_OK(sluice__service_get(s, &vip, 80, IPPROTO_TCP, &info), sluice__errmsg()))
		return false;
	*out = info.svc;
	return true;
}

static void test_apply(void)
{
	struct sluice_opts opts = {};
	struct desired empty = {}, a, b, cur;
	struct sluice_svc svc;
	struct sluice *s;

	if (!ASSERT_OK(sluice__open(&s, &opts), sluice__errmsg()))
		return;
	if (!ASSERT_OK(parse(&a, SVC(", \"sessionAffinity\": {\"type\": \"ClientIP\", "
				     "\"timeoutSeconds\": 90}")),
		       "a") ||
	    !ASSERT_OK(parse(&b, SVC("")), "b"))
		goto out;
	if (ASSERT_OK(desired__apply(s, &empty, &a), sluice__errmsg()) && svc_entry(s, &svc)) {
		ASSERT_TRUE(svc.flags & SLUICE_SVC_F_AFFINITY, "affinity flag");
		ASSERT_EQ(svc.affinity_timeout_s, 90, "timeout in the entry");
	}
	if (ASSERT_OK(desired__from_maps(s, &cur), sluice__errmsg())) {
		ASSERT_EQ(cur.services[0].affinity_timeout_s, 90, "read back");
		desired__free(&cur);
	}
	if (ASSERT_OK(desired__apply(s, &a, &b), sluice__errmsg()) && svc_entry(s, &svc)) {
		ASSERT_FALSE(svc.flags & SLUICE_SVC_F_AFFINITY, "flag off");
		ASSERT_EQ(svc.affinity_timeout_s, 0, "timeout 0");
	}
	if (ASSERT_OK(desired__from_maps(s, &cur), sluice__errmsg())) {
		ASSERT_EQ(cur.services[0].affinity_timeout_s, 0, "read back off");
		desired__free(&cur);
	}
	desired__free(&a);
	desired__free(&b);
out:
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_parse), TEST(test_rejects),    TEST(test_model_and_json),
	TEST(test_diff),  TEST_ROOT(test_apply),
};

int main(int argc, char **argv)
{
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("desired_affinity", tests, ARRAY_SIZE(tests), argc, argv);
}
