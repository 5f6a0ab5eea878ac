// SPDX-License-Identifier: MIT
/*
 * test_fuzz_replay.c - every file of tests/fuzz/corpus/TARGET/ through
 * that fuzz target (tests/fuzz/fuzz_TARGET.c, linked in without libFuzzer),
 * so seeds and every crash `make fuzz` once found are replayed by `make
 * test`, under sanitizers with `make unit-san`.
 *
 * Contract: one PASS/FAIL per target; a target without a corpus directory
 * or with an empty one fails (a renamed directory must not silently stop
 * the replay). A crash or a broken property aborts the suite, and
 * tests/run.sh names it. The corpus is found through test__repo_path().
 */
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "test.h"

#ifndef FUZZ_TARGETS
#error "the Makefile defines FUZZ_TARGETS as X(name) for every tests/fuzz/fuzz_NAME.c"
#endif

#define X(n) int fuzz_##n(const uint8_t *data, size_t size);
FUZZ_TARGETS
#undef X

static const struct {
	const char *name;
	int (*fn)(const uint8_t *data, size_t size);
} targets[] = {
#define X(n) { #n, fuzz_##n },
	FUZZ_TARGETS
#undef X
};

static bool read_all(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	long n;

	*data = NULL;
	if (!f)
		return false;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return false;
	}
	/* one more byte so an empty file is not a NULL buffer */
	*data = malloc((size_t)n + 1);
	if (*data && fread(*data, 1, (size_t)n, f) == (size_t)n) {
		*len = (size_t)n;
		fclose(f);
		return true;
	}
	free(*data);
	*data = NULL;
	fclose(f);
	return false;
}

/* Replays one target's corpus; the number of files, or -1. */
static int replay(const char *name, int (*fn)(const uint8_t *, size_t))
{
	char dir[PATH_MAX], path[PATH_MAX + 256], rel[128];
	struct dirent *e;
	int files = 0;
	DIR *d;

	snprintf(rel, sizeof(rel), "tests/fuzz/corpus/%s", name);
	if (!test__repo_path(dir, sizeof(dir), rel) || !(d = opendir(dir))) {
		TEST_FAIL("no corpus directory %s", rel);
		return -1;
	}
	while ((e = readdir(d))) {
		uint8_t *data;
		size_t len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!read_all(path, &data, &len)) {
			TEST_FAIL("cannot read %s", path);
			continue;
		}
		/* says which file was running if it crashes */
		fprintf(stderr, "# %s: %s\n", name, e->d_name);
		fn(data, len);
		free(data);
		files++;
	}
	closedir(d);
	if (!files)
		TEST_FAIL("%s is empty", rel);
	return files;
}

int main(void)
{
	int failed = 0;

	for (size_t i = 0; i < ARRAY_SIZE(targets); i++) {
		int n;

		test__failed = 0;
		n = replay(targets[i].name, targets[i].fn);
		if (n > 0 && !test__failed) {
			printf("PASS: fuzz_replay/%s (%d files)\n", targets[i].name, n);
		} else {
			printf("FAIL: fuzz_replay/%s\n", targets[i].name);
			failed++;
		}
		fflush(stdout);
	}
	printf("# fuzz_replay: %zu targets, %d failed\n", ARRAY_SIZE(targets), failed);
	return failed ? 1 : 0;
}
