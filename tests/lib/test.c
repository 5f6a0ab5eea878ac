// SPDX-License-Identifier: MIT
/* test.c - runner for test.h suites: runs every test (or those whose name
 * contains argv[1]), prints PASS/FAIL per test and a summary line. */
#include <stdio.h>
#include <string.h>

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

int test__run_all(const char *suite, const struct test *tests, int n, int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	int passed = 0, failed = 0;

	for (int i = 0; i < n; i++) {
		if (filter && !strstr(tests[i].name, filter))
			continue;
		test__failed = 0;
		test__current = tests[i].name;
		tests[i].fn();
		if (test__failed) {
			failed++;
			printf("FAIL: %s/%s\n", suite, tests[i].name);
		} else {
			passed++;
			printf("PASS: %s/%s\n", suite, tests[i].name);
		}
		fflush(stdout);
	}
	printf("# %s: %d passed, %d failed\n", suite, passed, failed);
	return failed ? 1 : 0;
}
