// SPDX-License-Identifier: MIT
/*
 * test_doctor.c - the verdict rules of `meshctl doctor` (doctor.h): status
 * names, map fill thresholds (warn from 80%, fail from 95%, capacity 0 is
 * ok), clock skew (more than 2 s warns), and the drift between a desired
 * state and the maps read back: missing and extra services and backends,
 * weights, order independence, only the first few named but all counted.
 */
#include <errno.h>
#include <string.h>

#include "desired.h"
#include "doctor.h"
#include "internal.h"
#include "test.h"

static void test_status(void)
{
	ASSERT_TRUE(!strcmp(doctor__status_name(DOCTOR_OK), "ok"), "ok");
	ASSERT_TRUE(!strcmp(doctor__status_name(DOCTOR_WARN), "warn"), "warn");
	ASSERT_TRUE(!strcmp(doctor__status_name(DOCTOR_FAIL), "fail"), "fail");
	ASSERT_EQ(doctor__status_parse("warn"), DOCTOR_WARN, "parse warn");
	ASSERT_EQ(doctor__status_parse("FAIL"), -1, "case matters");
	ASSERT_EQ(doctor__status_parse(NULL), -1, "NULL");
	ASSERT_EQ(doctor__worst(DOCTOR_WARN, DOCTOR_OK), DOCTOR_WARN, "worst warn");
	ASSERT_EQ(doctor__worst(DOCTOR_WARN, DOCTOR_FAIL), DOCTOR_FAIL, "worst fail");
}

static void test_fill(void)
{
	ASSERT_EQ(doctor__fill(0, 0), DOCTOR_OK, "capacity unknown");
	ASSERT_EQ(doctor__fill(79, 100), DOCTOR_OK, "79%");
	ASSERT_EQ(doctor__fill(80, 100), DOCTOR_WARN, "80%");
	ASSERT_EQ(doctor__fill(94, 100), DOCTOR_WARN, "94%");
	ASSERT_EQ(doctor__fill(95, 100), DOCTOR_FAIL, "95%");
	ASSERT_EQ(doctor__fill(262144, 262144), DOCTOR_FAIL, "full conntrack");
	ASSERT_EQ(doctor__fill(209715, 262144), DOCTOR_OK, "just under 80% of conntrack");
	ASSERT_EQ(doctor__fill(209716, 262144), DOCTOR_WARN, "just over 80% of conntrack");
}

static void test_clock(void)
{
	ASSERT_EQ(doctor__clock(1000.0, 1002.0), DOCTOR_OK, "2 s apart");
	ASSERT_EQ(doctor__clock(1000.0, 1002.5), DOCTOR_WARN, "ahead");
	ASSERT_EQ(doctor__clock(1002.5, 1000.0), DOCTOR_WARN, "behind");
}

#define BE(a, w) "{\"address\": \"" a "\", \"port\": 8080, \"weight\": " #w "}"
#define SVC(vip, bes) \
	"{\"vip\": \"" vip "\", \"port\": 80, \"protocol\": \"tcp\", \"backends\": [" bes "]}"

static bool load(struct desired *d, const char *text)
{
	return ASSERT_OK(desired__from_string(d, text, strlen(text)), sluice__errmsg());
}

/* drift(want, have) with the text into buf; -1000 when parsing failed. */
static int drift(const char *want, const char *have, char *buf, size_t len)
{
	struct desired w, h;
	int n = -1000;

	if (!load(&w, want))
		return n;
	if (load(&h, have)) {
		n = doctor__drift(&w, &h, buf, len);
		desired__free(&h);
	}
	desired__free(&w);
	return n;
}

static void test_drift_none(void)
{
	const char *a = "{\"services\": [" SVC(
		"10.96.0.10", BE("10.0.1.2", 1) "," BE(
				      "10.0.1.3", 9)) "," SVC("10.96.0.11", BE("10.0.2.2", 1)) "]}";
	/* the same, services and backends in another order */
	const char *b = "{\"services\": [" SVC("10.96.0.11", BE("10.0.2.2", 1)) "," SVC(
		"10.96.0.10", BE("10.0.1.3", 9) "," BE("10.0.1.2", 1)) "]}";
	char buf[512] = "x";

	ASSERT_EQ(drift(a, b, buf, sizeof(buf)), 0, "same state, other order");
	ASSERT_TRUE(buf[0] == '\0', "no text");
	ASSERT_EQ(drift("{\"services\": []}", "{\"services\": []}", buf, sizeof(buf)), 0, "empty");
}

static void test_drift_kinds(void)
{
	const char *want = "{\"services\": [" SVC(
		"10.96.0.10", BE("10.0.1.2", 1) "," BE(
				      "10.0.1.3", 9)) "," SVC("10.96.0.11", BE("10.0.2.2", 1)) "]}";
	char buf[512];

	ASSERT_EQ(drift(want,
			"{\"services\": [" SVC("10.96.0.10",
					       BE("10.0.1.2", 1) "," BE("10.0.1.3", 9)) "]}",
			buf, sizeof(buf)),
		  1, "service missing");
	ASSERT_TRUE(!strcmp(buf, "service 10.96.0.11:80/tcp missing from the maps"), buf);
	ASSERT_EQ(drift("{\"services\": [" SVC("10.96.0.11", BE("10.0.2.2", 1)) "]}", want, buf,
			sizeof(buf)),
		  1, "service extra");
	ASSERT_TRUE(!strcmp(buf, "service 10.96.0.10:80/tcp in the maps is not desired"), buf);
	ASSERT_EQ(drift(want,
			"{\"services\": [" SVC("10.96.0.10", BE("10.0.1.2", 1)) "," SVC(
				"10.96.0.11", BE("10.0.2.2", 1)) "]}",
			buf, sizeof(buf)),
		  1, "backend missing");
	ASSERT_TRUE(!strcmp(buf, "10.96.0.10:80/tcp: backend 10.0.1.3:8080 missing from the maps"),
		    buf);
	ASSERT_EQ(
		drift(want,
		      "{\"services\": [" SVC(
			      "10.96.0.10", BE("10.0.1.2", 1) "," BE("10.0.1.3", 9) "," BE(
						    "10.0.1.4", 1)) "," SVC("10.96.0.11",
									    BE("10.0.2.2", 1)) "]}",
		      buf, sizeof(buf)),
		1, "backend extra");
	ASSERT_TRUE(strstr(buf, "backend 10.0.1.4:8080 in the maps is not desired") != NULL, buf);
	ASSERT_EQ(drift(want,
			"{\"services\": [" SVC("10.96.0.10",
					       BE("10.0.1.2", 1) "," BE("10.0.1.3",
									1)) "," SVC("10.96.0.11",
										    BE("10.0.2.2",
										       1)) "]}",
			buf, sizeof(buf)),
		  1, "weight");
	ASSERT_TRUE(strstr(buf, "10.0.1.3:8080 has weight 1 in the maps, 9 desired") != NULL, buf);
}

static void test_drift_many(void)
{
	const char *want = "{\"services\": [" SVC("10.96.0.1", BE("10.0.1.2", 1)) "," SVC(
		"10.96.0.2",
		BE("10.0.1.2", 1)) "," SVC("10.96.0.3",
					   BE("10.0.1.2", 1)) "," SVC("10.96.0.4",
								      BE("10.0.1.2",
									 1)) "," SVC("10.96.0.5",
										     BE("10.0.1.2",
											1)) "]}";
	char buf[512], small[40];

	ASSERT_EQ(drift(want, "{\"services\": []}", buf, sizeof(buf)), 5, "all counted");
	ASSERT_TRUE(strstr(buf, "10.96.0.3:80/tcp") != NULL, "third named");
	ASSERT_TRUE(strstr(buf, "10.96.0.4:80/tcp") == NULL, "fourth not named");
	ASSERT_EQ(drift(want, "{\"services\": []}", small, sizeof(small)), 5, "small buffer");
	ASSERT_TRUE(strlen(small) < sizeof(small), "cut, terminated");
}

static const struct test tests[] = {
	TEST(test_status),     TEST(test_fill),        TEST(test_clock),
	TEST(test_drift_none), TEST(test_drift_kinds), TEST(test_drift_many),
};

int main(int argc, char **argv)
{
	return test__run_all("doctor", tests, ARRAY_SIZE(tests), argc, argv);
}
