/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - shared by the libFuzzer targets in tests/fuzz/fuzz_*.c.
 *
 * Contract: each target defines LLVMFuzzerTestOneInput() and nothing else
 * global; the replay build (test_fuzz_replay) renames it fuzz_NAME with
 * -D, so every target links into one binary. A target returns 0 and calls
 * fuzz__bug() (abort) when a property it checks does not hold, so libFuzzer
 * and the replay suite both see it.
 */
#ifndef SLUICE_FUZZ_H
#define SLUICE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data as a NUL-terminated string (the parsers take C text); NULL on OOM. */
static inline char *fuzz__text(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s) {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

#define fuzz__bug(what)                                                                          \
	do {                                                                                     \
		fprintf(stderr, "fuzz: %s:%d: property broken: %s\n", __FILE__, __LINE__, what); \
		abort();                                                                         \
	} while (0)

#endif /* SLUICE_FUZZ_H */
