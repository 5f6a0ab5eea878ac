// SPDX-License-Identifier: MIT
/*
 * test_desired_drain.c - "drainedWeight" in the desired state (#18): the
 * weight `backend undrain` gives back is parsed, written back by to_json
 * and through a saved state file, refused on a backend that is not
 * draining or out of range (path and value named), and a state file
 * without the field still loads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "desired.h"
#include "test.h"

#define SVC(be)                                                                           \
	"{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"tcp\", " \
	"\"backends\": [{\"address\": \"10.0.1.2\", \"port\": 8080}, " be "]}]}"

static int parse(struct desired *d, const char *text)
{
	return desired__from_string(d, text, strlen(text));
}

static void test_parse_and_round_trip(void)
{
	char path[] = "/tmp/sluice-drain-XXXXXX";
	struct desired d, back;
	int fd;

	if (!ASSERT_OK(parse(&d, SVC("{\"address\": \"10.0.1.3\", \"port\": 8080, \"weight\": 0, "
				     "\"drainedWeight\": 40}")),
		       sluice__errmsg()))
		return;
	ASSERT_EQ(d.services[0].backends[1].weight, 0, "weight");
	ASSERT_EQ(d.services[0].backends[1].drained_weight, 40, "drainedWeight");
	ASSERT_EQ(d.services[0].backends[0].drained_weight, 0, "none on an active backend");
	fd = mkstemp(path);
	if (!ASSERT_TRUE(fd >= 0, "mkstemp"))
		goto out;
	close(fd);
	if (ASSERT_OK(desired__save(&d, path), sluice__errmsg()) &&
	    ASSERT_OK(desired__load(&back, path), sluice__errmsg())) {
		ASSERT_EQ(back.services[0].backends[1].drained_weight, 40, "kept by the file");
		desired__free(&back);
	}
	unlink(path);
out:
	desired__free(&d);
}

static void test_old_file_loads(void)
{
	struct desired d;

	if (!ASSERT_OK(parse(&d, SVC("{\"address\": \"10.0.1.3\", \"port\": 8080, \"weight\": 0}")),
		       sluice__errmsg()))
		return;
	ASSERT_EQ(d.services[0].backends[1].drained_weight, 0, "none recorded");
	desired__free(&d);
}

static void rejects(const char *be, const char *what)
{
	char text[512];
	struct desired d;

	snprintf(text, sizeof(text), SVC("%s"), be);
	if (!ASSERT_EQ(parse(&d, text), -EINVAL, be)) {
		desired__free(&d);
		return;
	}
	if (!strstr(sluice__errmsg(), "services[0].backends[1].drainedWeight") ||
	    !strstr(sluice__errmsg(), what))
		TEST_FAIL("message \"%s\" lacks the path or \"%s\"", sluice__errmsg(), what);
}

static void test_rejects(void)
{
	rejects("{\"address\": \"10.0.1.3\", \"port\": 8080, \"weight\": 5, \"drainedWeight\": 9}",
		"only a draining backend");
	rejects("{\"address\": \"10.0.1.3\", \"port\": 8080, \"weight\": 0, \"drainedWeight\": 0}",
		"0");
	rejects("{\"address\": \"10.0.1.3\", \"port\": 8080, \"weight\": 0, "
		"\"drainedWeight\": 65536}",
		"65536");
}

static const struct test tests[] = {
	TEST(test_parse_and_round_trip),
	TEST(test_old_file_loads),
	TEST(test_rejects),
};

int main(int argc, char **argv)
{
	return test__run_all("desired_drain", tests, ARRAY_SIZE(tests), argc, argv);
}
