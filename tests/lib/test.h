/* SPDX-License-Identifier: MIT */
/*
 * test.h - the tiny test harness shared by unit, datapath and tool tests.
 *
 * A suite is a binary with a table of `struct test` and a main() that calls
 * test__run_all(). Each test prints one line, "PASS: suite/name" or
 * "FAIL: suite/name", which tests/run.sh counts; the binary exits non-zero
 * when any test failed. A test that needs root (TEST_ROOT) prints
 * "SKIP: suite/name (needs root)" instead when run without it, so the
 * suites that need no kernel privileges run anywhere; as root nothing is
 * ever skipped. ASSERT_* return bool so tests read
 * `if (!ASSERT_OK(err, "load")) goto out;` and print what was expected.
 */
#ifndef SLUICE_TEST_H
#define SLUICE_TEST_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct test {
	const char *name;
	void (*fn)(void);
	bool needs_root; /* loads BPF, attaches programs, creates namespaces */
};

/* Set by ASSERT_* on failure; reset per test by the runner. */
extern int test__failed;
/* Name of the running test, for messages. */
extern const char *test__current;

int test__run_all(const char *suite, const struct test *tests, int n, int argc, char **argv);
/* The running test could not check what it is for on this machine (say
 * why, e.g. what the kernel lacks): the runner prints "SKIP: suite/name
 * (why)" instead of PASS, unless an assertion failed too. Never for a
 * check that merely failed. */
extern char test__skip_why[256];
void test__skip(const char *why);
/* For a suite whose every test needs root: without root, prints one
 * "SKIP: suite (needs root: why)" line and returns false (main returns 0). */
bool test__have_root(const char *suite, const char *why);
/* How many times longer a test may wait for what takes wall-clock time
 * (bulk copies, flushes): $SLUICE_TEST_TIME_SCALE, 1-100, default 1.
 * make test-kernels' guests set it (an emulated CPU at nice 19 on a busy
 * host runs tens of times slower); bounds that test a timeout itself keep
 * their value. */
int test__time_scale(void);
void test__hexdump(const char *what, const void *buf, size_t len);
/* rel (e.g. "tests/fuzz/corpus") in the source tree: $SLUICE_SRC_DIR, else
 * the tree the binary was built from, so fixtures are found from any cwd
 * and any output directory (build/, build/san). False if it does not fit. */
bool test__repo_path(char *buf, size_t len, const char *rel);

#define TEST_FAIL(fmt, ...)                                                               \
	do {                                                                              \
		test__failed = 1;                                                         \
		fprintf(stderr, "  %s:%d: " fmt "\n", __FILE__, __LINE__, ##__VA_ARGS__); \
	} while (0)

#define ASSERT_TRUE(cond, what)                                            \
	({                                                                 \
		bool ___ok = (cond);                                       \
		if (!___ok)                                                \
			TEST_FAIL("%s: expected true: %s", (what), #cond); \
		___ok;                                                     \
	})

#define ASSERT_FALSE(cond, what) ASSERT_TRUE(!(cond), what)

#define ASSERT_EQ(actual, expected, what)                                             \
	({                                                                            \
		long long ___a = (long long)(actual);                                 \
		long long ___e = (long long)(expected);                               \
		bool ___ok = ___a == ___e;                                            \
		if (!___ok)                                                           \
			TEST_FAIL("%s: got %lld, expected %lld", (what), ___a, ___e); \
		___ok;                                                                \
	})

#define ASSERT_NEQ(actual, unexpected, what)                                             \
	({                                                                               \
		long long ___a = (long long)(actual);                                    \
		long long ___e = (long long)(unexpected);                                \
		bool ___ok = ___a != ___e;                                               \
		if (!___ok)                                                              \
			TEST_FAIL("%s: got %lld, expected anything else", (what), ___a); \
		___ok;                                                                   \
	})

#define ASSERT_LE(actual, bound, what)                                               \
	({                                                                           \
		double ___a = (double)(actual);                                      \
		double ___b = (double)(bound);                                       \
		bool ___ok = ___a <= ___b;                                           \
		if (!___ok)                                                          \
			TEST_FAIL("%s: got %g, expected <= %g", (what), ___a, ___b); \
		___ok;                                                               \
	})

#define ASSERT_GE(actual, bound, what)                                               \
	({                                                                           \
		double ___a = (double)(actual);                                      \
		double ___b = (double)(bound);                                       \
		bool ___ok = ___a >= ___b;                                           \
		if (!___ok)                                                          \
			TEST_FAIL("%s: got %g, expected >= %g", (what), ___a, ___b); \
		___ok;                                                               \
	})

#define ASSERT_OK(err, what)                                                    \
	({                                                                      \
		long long ___e = (long long)(err);                              \
		bool ___ok = ___e == 0;                                         \
		if (!___ok)                                                     \
			TEST_FAIL("%s: failed with %lld (%s)", (what), ___e,    \
				  strerror(___e < 0 ? (int)-___e : (int)___e)); \
		___ok;                                                          \
	})

#define ASSERT_MEM_EQ(actual, expected, len, what)                     \
	({                                                             \
		bool ___ok = memcmp((actual), (expected), (len)) == 0; \
		if (!___ok) {                                          \
			TEST_FAIL("%s: bytes differ", (what));         \
			test__hexdump("got", (actual), (len));         \
			test__hexdump("expected", (expected), (len));  \
		}                                                      \
		___ok;                                                 \
	})

#define TEST(f)                     \
	{                           \
		.name = #f, .fn = f \
	}
#define TEST_ROOT(f)                                    \
	{                                               \
		.name = #f, .fn = f, .needs_root = true \
	}
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* cppcheck (make analyze) does not follow statement expressions and then
 * reports leaks on every early return after an ASSERT: it reads these
 * plain forms, which keep the conditions. */
#ifdef __CPPCHECK__
#undef ASSERT_TRUE
#undef ASSERT_EQ
#undef ASSERT_NEQ
#undef ASSERT_LE
#undef ASSERT_GE
#undef ASSERT_OK
#undef ASSERT_MEM_EQ
#define ASSERT_TRUE(cond, what) (!!(cond))
#define ASSERT_EQ(actual, expected, what) ((long long)(actual) == (long long)(expected))
#define ASSERT_NEQ(actual, unexpected, what) ((long long)(actual) != (long long)(unexpected))
#define ASSERT_LE(actual, bound, what) ((double)(actual) <= (double)(bound))
#define ASSERT_GE(actual, bound, what) ((double)(actual) >= (double)(bound))
#define ASSERT_OK(err, what) ((err) == 0)
bool test__mem_eq(const void *a, const void *b, size_t len);
#define ASSERT_MEM_EQ(actual, expected, len, what) test__mem_eq((actual), (expected), (len))
#endif

#endif /* SLUICE_TEST_H */
