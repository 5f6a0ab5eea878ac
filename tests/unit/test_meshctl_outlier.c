// SPDX-License-Identifier: MIT
/*
 * test_meshctl_outlier.c - meshctl's outlier detection flags and health
 * cells (#14) on fixed input: durations with units, the outlierDetection
 * object the flags ask for (and the contradictions refused), HEALTHY
 * "healthy/total", HEALTH "ejected until T", and the settings line of
 * `service get`. No agent, no root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "meshctl.h"
#include "outlier.h"
#include "test.h"

struct meshctl_opts g_opts = { .format = OUT_TABLE, .path = "meshctl service set" };

static void test_durations(void)
{
	static const struct {
		const char *text;
		int rc;
		unsigned long ms;
	} cases[] = {
		{ "500ms", 0, 500 },      { "30s", 0, 30000 }, { "5m", 0, 300000 },
		{ "1440m", 0, 86400000 }, { "30", -1, 0 },     { "1.5s", -1, 0 },
		{ "0s", -1, 0 },          { "1441m", -1, 0 },  { "2h", -1, 0 },
		{ "-1s", -1, 0 },         { "", -1, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		unsigned long ms = 0;

		if (ASSERT_EQ(outlier__duration_ms(cases[i].text, "x", &ms), cases[i].rc,
			      cases[i].text) &&
		    !cases[i].rc)
			ASSERT_EQ(ms, cases[i].ms, cases[i].text);
	}
}

static bool json_is(struct json_object *o, const char *want, const char *what)
{
	const char *got = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "NULL";

	if (!strcmp(got, want))
		return true;
	TEST_FAIL("%s: got %s, want %s", what, got, want);
	return false;
}

static void test_flags_json(void)
{
	struct outlier_flags f = { .failures = "5", .base = "10s", .off = true };
	struct json_object *o;

	ASSERT_OK(outlier__flags_json(&f, &o), "flags");
	json_is(o, "{\"enabled\":false,\"consecutiveFailures\":5,\"baseEjectionMs\":10000}",
		"failures, base, off");
	json_object_put(o);
	f = (struct outlier_flags){ .max = "2m", .max_pct = "20", .panic = "0" };
	ASSERT_OK(outlier__flags_json(&f, &o), "flags");
	json_is(o,
		"{\"maxEjectionMs\":120000,\"maxEjectedPercent\":20,\"panicThresholdPercent\":0}",
		"max, max percent, panic never");
	json_object_put(o);
	f = (struct outlier_flags){ .on = true };
	ASSERT_OK(outlier__flags_json(&f, &o), "on");
	json_is(o, "{\"enabled\":null}", "on: enabled back to its default");
	json_object_put(o);
	f = (struct outlier_flags){};
	ASSERT_OK(outlier__flags_json(&f, &o), "none");
	ASSERT_TRUE(o == NULL, "no flag: no object");
	f = (struct outlier_flags){ .defaults = true };
	ASSERT_OK(outlier__flags_json(&f, &o), "defaults");
	json_is(o, "{}", "defaults alone");
	json_object_put(o);
	f = (struct outlier_flags){ .defaults = true, .failures = "4" };
	ASSERT_EQ(outlier__flags_json(&f, &o), -1, "defaults with another flag");
	f = (struct outlier_flags){ .on = true, .off = true };
	ASSERT_EQ(outlier__flags_json(&f, &o), -1, "on and off");
	f = (struct outlier_flags){ .failures = "256" };
	ASSERT_EQ(outlier__flags_json(&f, &o), -1, "failures 256");
	f = (struct outlier_flags){ .max_pct = "0" };
	ASSERT_EQ(outlier__flags_json(&f, &o), -1, "max percent 0");
}

static struct json_object *parse(const char *text)
{
	return json_tokener_parse(text);
}

static void test_cells(void)
{
	static const struct {
		const char *json, *healthy;
	} svcs[] = {
		{ "{\"health\": {\"healthy\": 1, \"total\": 2, \"outlier_detection\": true}}",
		  "1/2" },
		{ "{\"health\": {\"healthy\": 2, \"total\": 2, \"outlier_detection\": false}}",
		  "2/2 (off)" },
		{ "{}", "-" },
	};
	/* 2026-12-05 11:40:32 UTC */
	static const struct {
		const char *json, *state;
	} bes[] = {
		{ "{\"health\": {\"state\": \"ejected\", \"ejected_until_ms\": 1796470832000}}",
		  "ejected until 11:40:32" },
		{ "{\"health\": {\"state\": \"probation\"}}", "probation" },
		{ "{\"health\": {\"state\": \"draining\"}}", "draining" },
		{ "{\"weight\": 1}", "active" },
		{ "{\"weight\": 0}", "draining" },
	};
	char buf[64];

	setenv("TZ", "UTC", 1);
	tzset();
	for (size_t i = 0; i < ARRAY_SIZE(svcs); i++) {
		struct json_object *o = parse(svcs[i].json);

		ASSERT_TRUE(!strcmp(outlier__healthy_cell(o, buf, sizeof(buf)), svcs[i].healthy),
			    svcs[i].healthy);
		json_object_put(o);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bes); i++) {
		struct json_object *o = parse(bes[i].json);
		const char *got = outlier__state_cell(o, buf, sizeof(buf));

		if (!ASSERT_TRUE(!strcmp(got, bes[i].state), bes[i].state))
			fprintf(stderr, "    got \"%s\"\n", got);
		json_object_put(o);
	}
}

/* What outlier__print_settings() writes for svc. */
static char *settings_text(const char *svc_json)
{
	static char out[1024];
	struct json_object *svc = parse(svc_json);
	FILE *tmp = tmpfile();
	int saved = dup(STDOUT_FILENO);
	size_t n;

	fflush(stdout);
	dup2(fileno(tmp), STDOUT_FILENO);
	outlier__print_settings(svc);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, sizeof(out) - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	json_object_put(svc);
	return out;
}

static void test_settings_line(void)
{
	const char *on = "{\"health\": {\"outlier_detection\": true}}";
	char *got;

	got = settings_text(on);
	ASSERT_TRUE(!strcmp(got,
			    "Outlier:   3 failures in a row eject a backend for 30s x ejections "
			    "in a row (at most 5m00s);\n"
			    "           at most 50% of backends ejected; below 50% healthy, "
			    "health is ignored\n"),
		    "defaults");
	got = settings_text("{\"health\": {\"outlier_detection\": true}, \"outlierDetection\": "
			    "{\"consecutiveFailures\": 5, \"baseEjectionMs\": 1500, "
			    "\"panicThresholdPercent\": 0}}");
	ASSERT_TRUE(strstr(got, "5 failures in a row eject a backend for 1500ms") != NULL,
		    "settings");
	ASSERT_TRUE(strstr(got, "health is never ignored (no panic)") != NULL, "panic never");
	got = settings_text("{\"health\": {\"outlier_detection\": false}, \"outlierDetection\": "
			    "{\"enabled\": false}}");
	ASSERT_TRUE(!strcmp(got, "Outlier:   off for this service\n"), "off for the service");
	got = settings_text("{\"health\": {\"outlier_detection\": false}}");
	ASSERT_TRUE(!strcmp(got, "Outlier:   off (node-wide: meshd --outlier-detection off)\n"),
		    "off node-wide");
	got = settings_text("{}");
	ASSERT_TRUE(!strcmp(got, ""), "an older meshd: nothing");
}

static const struct test tests[] = {
	TEST(test_durations),
	TEST(test_flags_json),
	TEST(test_cells),
	TEST(test_settings_line),
};

int main(int argc, char **argv)
{
	return test__run_all("meshctl_outlier", tests, ARRAY_SIZE(tests), argc, argv);
}
