// SPDX-License-Identifier: MIT
/* test.c - runner for test.h suites: runs every test (or those whose name
 * contains argv[1]), prints PASS/FAIL/SKIP per test and a summary line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

int test__failed;
const char *test__current;

void test__hexdump(const char *what, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	fprintf(stderr, "    %s (%zu bytes):", what, len);
	for (size_t i = 0; i < len; i++)
		fprintf(stderr, "%s%02x", i % 16 ? " " : "\n      ", p[i]);
	fprintf(stderr, "\n");
}

#ifndef SLUICE_SRC_DIR
#define SLUICE_SRC_DIR "."
#endif

bool test__repo_path(char *buf, size_t len, const char *rel)
{
	const char *root = getenv("SLUICE_SRC_DIR");
	int n;

	if (!root || !*root)
		root = SLUICE_SRC_DIR;
	n = snprintf(buf, len, "%s/%s", root, rel);
	return n >= 0 && (size_t)n < len;
}

char test__skip_why[256];

void test__skip(const char *why)
{
	snprintf(test__skip_why, sizeof(test__skip_why), "%s", why);
}

int test__run_all(const char *suite, const struct test *tests, int n, int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	bool root = geteuid() == 0;
	int passed = 0, failed = 0, skipped = 0;

	for (int i = 0; i < n; i++) {
		if (filter && !strstr(tests[i].name, filter))
			continue;
		if (tests[i].needs_root && !root) {
			skipped++;
			printf("SKIP: %s/%s (needs root)\n", suite, tests[i].name);
			continue;
		}
		test__failed = 0;
		test__current = tests[i].name;
		test__skip_why[0] = '\0';
		tests[i].fn();
		if (test__failed) {
			failed++;
			printf("FAIL: %s/%s\n", suite, tests[i].name);
		} else if (test__skip_why[0]) {
			skipped++;
			printf("SKIP: %s/%s (%s)\n", suite, tests[i].name, test__skip_why);
		} else {
			passed++;
			printf("PASS: %s/%s\n", suite, tests[i].name);
		}
		fflush(stdout);
	}
	printf("# %s: %d passed, %d failed, %d skipped\n", suite, passed, failed, skipped);
	return failed ? 1 : 0;
}

int test__time_scale(void)
{
	const char *v = getenv("SLUICE_TEST_TIME_SCALE");
	int n = v ? atoi(v) : 1;

	return n < 1 ? 1 : n > 100 ? 100 : n;
}

bool test__have_root(const char *suite, const char *why)
{
	if (geteuid() == 0)
		return true;
	printf("SKIP: %s (needs root: %s)\n", suite, why);
	return false;
}
