// SPDX-License-Identifier: MIT
/*
 * test_meshd_outlier.c - the log lines meshd writes for the kernel's
 * health events (#14), from resolved names and fixed clocks. No BPF, no
 * root (the ring buffer itself is read in the e2e tests).
 */
#include <string.h>

#include "outlier.h"
#include "test.h"

/* 2026-12-05 11:40:02 UTC */
#define NOW_MS 1796470802000ull

static bool line_is(const struct sluice_health_event *ev, const char *name, __u64 until_ms,
		    const char *want)
{
	char buf[512];

	outlier__describe(buf, sizeof(buf), ev, "10.0.1.2:8080", name, "10.96.0.10:80/tcp", NOW_MS,
			  until_ms);
	if (!strcmp(buf, want))
		return true;
	TEST_FAIL("got  \"%s\"\n    want \"%s\"", buf, want);
	return false;
}

static void test_describe(void)
{
	struct sluice_health_event ev = { .kind = SLUICE_HEALTH_EV_EJECTED,
					  .reason = SLUICE_HEALTH_R_RST,
					  .fails = 3,
					  .ejections = 1 };

	line_is(&ev, "web", NOW_MS + 30000,
		"backend 10.0.1.2:8080 of web (10.96.0.10:80/tcp) ejected: 3 consecutive failures "
		"(rst), until 11:40:32 UTC (30 s, ejection 1 in a row)");
	line_is(&ev, "", NOW_MS + 30000,
		"backend 10.0.1.2:8080 of 10.96.0.10:80/tcp ejected: 3 consecutive failures "
		"(rst), until 11:40:32 UTC (30 s, ejection 1 in a row)");
	ev.kind = SLUICE_HEALTH_EV_REEJECTED;
	ev.reason = SLUICE_HEALTH_R_SOCK_TIMEOUT;
	ev.ejections = 2;
	line_is(&ev, "web", NOW_MS + 60000,
		"backend 10.0.1.2:8080 of web (10.96.0.10:80/tcp) ejected again: failed on "
		"probation (sock_timeout), until 11:41:02 UTC (60 s, ejection 2 in a row)");
	ev.kind = SLUICE_HEALTH_EV_RESTORED;
	line_is(&ev, "web", 0,
		"backend 10.0.1.2:8080 of web (10.96.0.10:80/tcp) restored: answered on probation");
	ev.kind = SLUICE_HEALTH_EV_MAX_EJECTED;
	ev.reason = SLUICE_HEALTH_R_SYN_TIMEOUT;
	line_is(&ev, "web", 0,
		"backend 10.0.1.2:8080 of web (10.96.0.10:80/tcp) not ejected after 3 consecutive "
		"failures (syn_timeout): the service's maxEjectedPercent is used up");
	ev.kind = 99;
	line_is(&ev, "web", 0,
		"backend 10.0.1.2:8080 of web (10.96.0.10:80/tcp): unknown health event 99");
}

static const struct test tests[] = {
	TEST(test_describe),
};

int main(int argc, char **argv)
{
	return test__run_all("meshd_outlier", tests, ARRAY_SIZE(tests), argc, argv);
}
