// SPDX-License-Identifier: MIT
/*
 * test_desired_outlier.c - a service's "outlierDetection" in the desired
 * state (#14): JSON and YAML parse, every rule with the path and value in
 * its message, to_json (only the fields not at their default) round
 * trips, diff treating a settings change as an update, and, against real
 * maps, apply writing svc_health and from_maps reading it back so a
 * reconcile sees no change (root).
 */
#include <errno.h>
#include <stdlib.h>
#include <netinet/in.h>

#include <bpf/bpf.h>

#include "desired.h"
#include "lb_load.h"
#include "test.h"

static const char *const full_json =
	"{\"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80,\n"
	"  \"protocol\": \"tcp\", \"backends\": [{\"address\": \"10.0.1.2\", \"port\": 8080}],\n"
	"  \"outlierDetection\": {\"enabled\": true, \"consecutiveFailures\": 5,\n"
	"    \"baseEjectionMs\": 1000, \"maxEjectionMs\": 60000, \"maxEjectedPercent\": 30,\n"
	"    \"panicThresholdPercent\": 0}}]}\n";

static const char *const full_yaml = "services:\n"
				     "  - name: web\n"
				     "    vip: 10.96.0.10\n"
				     "    port: 80\n"
				     "    protocol: tcp\n"
				     "    backends: [{address: 10.0.1.2, port: 8080}]\n"
				     "    outlierDetection:\n"
				     "      enabled: true\n"
				     "      consecutiveFailures: 5\n"
				     "      baseEjectionMs: 1000\n"
				     "      maxEjectionMs: 60000\n"
				     "      maxEjectedPercent: 30\n"
				     "      panicThresholdPercent: 0\n";

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

static void check_full(const struct desired *d)
{
	const struct sluice_outlier_spec *o;

	if (!ASSERT_EQ(d->nservices, 1, "services"))
		return;
	o = &d->services[0].outlier;
	ASSERT_FALSE(o->disabled, "enabled");
	ASSERT_EQ(o->consecutive_failures, 5, "consecutiveFailures");
	ASSERT_EQ(o->base_ejection_ms, 1000, "baseEjectionMs");
	ASSERT_EQ(o->max_ejection_ms, 60000, "maxEjectionMs");
	ASSERT_EQ(o->max_ejected_pct, 30, "maxEjectedPercent");
	ASSERT_EQ(o->panic_pct, SLUICE_OUTLIER_PANIC_NEVER, "panicThresholdPercent 0: never");
}

static void test_parse(void)
{
	struct desired d;

	if (ASSERT_OK(parse(&d, full_json), sluice__errmsg()))
		check_full(&d);
	desired__free(&d);
	if (ASSERT_OK(parse(&d, full_yaml), sluice__errmsg()))
		check_full(&d);
	desired__free(&d);
	if (ASSERT_OK(parse(&d, "services:\n  - {vip: 10.0.0.1, port: 80, protocol: tcp}\n"),
		      sluice__errmsg()))
		ASSERT_TRUE(!memcmp(&d.services[0].outlier, &(struct sluice_outlier_spec){},
				    sizeof(struct sluice_outlier_spec)),
			    "absent: all defaults (0)");
	desired__free(&d);
	if (ASSERT_OK(parse(&d, "services:\n  - {vip: 10.0.0.1, port: 80, protocol: tcp, "
				"outlierDetection: {enabled: false}}\n"),
		      sluice__errmsg()))
		ASSERT_TRUE(d.services[0].outlier.disabled, "enabled: false");
	desired__free(&d);
}

#define OD(x)                                                                             \
	"{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"tcp\", " \
	"\"outlierDetection\": " x "}]}"

static const struct {
	const char *text, *want;
} rejects[] = {
	{ OD("{\"maxEjectedPercent\": 0}"),
	  "services[0].outlierDetection.maxEjectedPercent: 0 is out of range 1-100" },
	{ OD("{\"maxEjectedPercent\": 101}"),
	  "services[0].outlierDetection.maxEjectedPercent: 101 is out of range 1-100" },
	{ OD("{\"consecutiveFailures\": 0}"),
	  "services[0].outlierDetection.consecutiveFailures: 0 is out of range 1-255" },
	{ OD("{\"consecutiveFailures\": 256}"),
	  "services[0].outlierDetection.consecutiveFailures: 256 is out of range 1-255" },
	{ OD("{\"panicThresholdPercent\": -1}"),
	  "services[0].outlierDetection.panicThresholdPercent: -1 is out of range 0-100" },
	{ OD("{\"baseEjectionMs\": 0}"),
	  "services[0].outlierDetection.baseEjectionMs: 0 is out of range 1-86400000" },
	{ OD("{\"baseEjectionMs\": \"30s\"}"),
	  "services[0].outlierDetection.baseEjectionMs: expected an integer 1-86400000, got "
	  "string \"30s\"" },
	{ OD("{\"maxEjectionMs\": 100000000}"),
	  "services[0].outlierDetection.maxEjectionMs: 100000000 is out of range 1-86400000" },
	{ OD("{\"baseEjectionMs\": 5000, \"maxEjectionMs\": 1000}"),
	  "services[0].outlierDetection.maxEjectionMs: 1000 is less than baseEjectionMs 5000" },
	{ OD("{\"baseEjectionMs\": 600000}"),
	  "services[0].outlierDetection.maxEjectionMs: 300000 is less than baseEjectionMs "
	  "600000 (maxEjectionMs default)" },
	{ OD("{\"enabled\": \"no\"}"),
	  "services[0].outlierDetection.enabled: expected true or false, got string \"no\"" },
	{ OD("{\"consecutiveFailure\": 3}"),
	  "services[0].outlierDetection.consecutiveFailure: unknown field (did you mean "
	  "'consecutiveFailures'?)" },
	{ OD("5"), "services[0].outlierDetection: expected an object, got integer 5" },
	{ "services:\n  - {vip: 10.0.0.1, port: 80, protocol: tcp, outlierDetection: "
	  "{maxEjectedPercent: 0}}\n",
	  "services[0].outlierDetection.maxEjectedPercent: 0 is out of range 1-100" },
	{ "services:\n  - {vip: 10.0.0.1, port: 80, protocol: tcp, outlierDetecton: {}}\n",
	  "services[0].outlierDetecton: unknown field (did you mean 'outlierDetection'?)" },
};

static void test_rejects(void)
{
	struct desired d;

	for (size_t i = 0; i < ARRAY_SIZE(rejects); i++) {
		ASSERT_EQ(parse(&d, rejects[i].text), -EINVAL, rejects[i].want);
		has(rejects[i].want);
		ASSERT_EQ(d.nservices, 0, "left empty");
	}
}

/* A model built in code (the API's edits) obeys the same rules. */
static void test_validate_model(void)
{
	struct desired d;

	if (!ASSERT_OK(parse(&d, full_json), sluice__errmsg()))
		return;
	d.services[0].outlier.max_ejected_pct = 101;
	ASSERT_EQ(desired__validate(&d), -EINVAL, "max ejected 101");
	has("services[0].outlierDetection.maxEjectedPercent: 101 is out of range 1-100");
	d.services[0].outlier.max_ejected_pct = 0;
	d.services[0].outlier.panic_pct = 120;
	ASSERT_EQ(desired__validate(&d), -EINVAL, "panic 120");
	has("services[0].outlierDetection.panicThresholdPercent: 120 is out of range 0-100");
	d.services[0].outlier.panic_pct = 0;
	ASSERT_OK(desired__validate(&d), "defaults are valid");
	desired__free(&d);
}

static void test_to_json(void)
{
	struct json_object *j, *svc, *od = NULL, *v;
	struct desired d, back;

	if (!ASSERT_OK(parse(&d, full_json), sluice__errmsg()))
		return;
	j = desired__to_json(&d);
	svc = json_object_array_get_idx(json_object_object_get(j, "services"), 0);
	ASSERT_TRUE(json_object_object_get_ex(svc, "outlierDetection", &od), "written");
	ASSERT_FALSE(json_object_object_get_ex(od, "enabled", &v), "enabled (default) left out");
	ASSERT_TRUE(json_object_object_get_ex(od, "panicThresholdPercent", &v) &&
			    json_object_get_int(v) == 0,
		    "never panic written as 0");
	if (ASSERT_OK(desired__from_json(&back, j), sluice__errmsg())) {
		check_full(&back);
		ASSERT_TRUE(!memcmp(&back.services[0].outlier, &d.services[0].outlier,
				    sizeof(struct sluice_outlier_spec)),
			    "round trip");
		desired__free(&back);
	}
	json_object_put(j);
	memset(&d.services[0].outlier, 0, sizeof(d.services[0].outlier));
	j = desired__service_to_json(&d.services[0]);
	ASSERT_FALSE(json_object_object_get_ex(j, "outlierDetection", &od), "all defaults: none");
	json_object_put(j);
	d.services[0].outlier.disabled = true;
	j = desired__service_to_json(&d.services[0]);
	ASSERT_TRUE(json_object_object_get_ex(j, "outlierDetection", &od) &&
			    !strcmp(json_object_to_json_string_ext(od, JSON_C_TO_STRING_PLAIN),
				    "{\"enabled\":false}"),
		    "disabled: {\"enabled\": false}");
	json_object_put(j);
	desired__free(&d);
}

static void count_cb(enum desired_change change, const struct desired_service *o,
		     const struct desired_service *n, void *ctx)
{
	(void)o;
	(void)n;
	*(int *)ctx += change == DESIRED_UPDATE ? 1 : 100;
}

static void test_diff(void)
{
	struct desired a, b;
	int n = 0;

	if (!ASSERT_OK(parse(&a, full_json), sluice__errmsg()))
		return;
	if (!ASSERT_OK(parse(&b, full_json), sluice__errmsg()))
		goto out;
	b.services[0].outlier.consecutive_failures = 6;
	desired__diff(&a, &b, count_cb, &n);
	ASSERT_EQ(n, 1, "a settings change is an update");
	n = 0;
	b.services[0].outlier =
		(struct sluice_outlier_spec){ .consecutive_failures = 3, .panic_pct = 50 };
	a.services[0].outlier = (struct sluice_outlier_spec){};
	desired__diff(&a, &b, count_cb, &n);
	ASSERT_EQ(n, 0, "defaults written out are the defaults");
	a.services[0].outlier.disabled = true;
	b.services[0].outlier =
		(struct sluice_outlier_spec){ .disabled = true, .consecutive_failures = 9 };
	desired__diff(&a, &b, count_cb, &n);
	ASSERT_EQ(n, 0, "disabled: the other settings do not matter");
	b.services[0].outlier.disabled = false;
	desired__diff(&a, &b, count_cb, &n);
	ASSERT_EQ(n, 1, "enabling is an update");
	desired__free(&b);
out:
	desired__free(&a);
}

/* apply writes svc_health; from_maps reads the settings back, so a
 * reconcile (diff of the maps against the state) finds nothing. */
static void test_apply_from_maps(void)
{
	static const char *const text =
		"services:\n"
		"  - {vip: 10.0.0.1, port: 80, protocol: tcp, backends: [{address: 10.1.0.1, "
		"port: 80}], outlierDetection: {consecutiveFailures: 5, maxEjectedPercent: 20, "
		"panicThresholdPercent: 0, baseEjectionMs: 2000}}\n"
		"  - {vip: 10.0.0.2, port: 80, protocol: tcp, backends: [{address: 10.1.0.1, "
		"port: 80}], outlierDetection: {enabled: false, consecutiveFailures: 4}}\n"
		"  - {vip: 10.0.0.3, port: 80, protocol: tcp, backends: [{address: 10.1.0.1, "
		"port: 80}], outlierDetection: {consecutiveFailures: 3, panicThresholdPercent: 50}}\n"
		"  - {vip: 10.0.0.4, port: 80, protocol: tcp}\n";
	struct sluice_opts opts = {};
	struct desired d, cur, empty = {};
	struct sluice *s = NULL;
	struct sluice_svc_health h;
	__u32 id = 1;
	int n = 0;

	if (!ASSERT_OK(sluice__open(&s, &opts), sluice__errmsg()))
		return;
	if (!ASSERT_OK(parse(&d, text), sluice__errmsg()))
		goto out;
	if (!ASSERT_OK(desired__apply(s, &empty, &d), sluice__errmsg()))
		goto free_d;
	ASSERT_OK(bpf_map_lookup_elem(sluice__map_fd(s, "svc_health"), &id, &h), "svc_health[1]");
	ASSERT_EQ(h.threshold, 5, "threshold from the state");
	ASSERT_EQ(h.panic_pct, 0, "never panic");
	if (ASSERT_OK(desired__from_maps(s, &cur), sluice__errmsg())) {
		ASSERT_EQ(cur.services[0].outlier.consecutive_failures, 5, "read back");
		ASSERT_EQ(cur.services[0].outlier.base_ejection_ms, 2000, "read back");
		ASSERT_TRUE(cur.services[1].outlier.disabled, "disabled read back");
		ASSERT_EQ(cur.services[2].outlier.consecutive_failures, 0, "default: 0");
		desired__diff(&cur, &d, count_cb, &n);
		ASSERT_EQ(n, 0, "reconcile sees no change");
		desired__free(&cur);
	}
	/* a settings change reaches the kernel through apply */
	if (ASSERT_OK(desired__from_maps(s, &cur), sluice__errmsg())) {
		d.services[0].outlier.consecutive_failures = 9;
		ASSERT_OK(desired__apply(s, &cur, &d), sluice__errmsg());
		bpf_map_lookup_elem(sluice__map_fd(s, "svc_health"), &id, &h);
		ASSERT_EQ(h.threshold, 9, "updated threshold");
		desired__free(&cur);
	}
free_d:
	desired__free(&d);
out:
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_parse),   TEST(test_rejects), TEST(test_validate_model),
	TEST(test_to_json), TEST(test_diff),    TEST_ROOT(test_apply_from_maps),
};

int main(int argc, char **argv)
{
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("desired_outlier", tests, ARRAY_SIZE(tests), argc, argv);
}
