// SPDX-License-Identifier: MIT
/*
 * dp_main.c - entry of build/tests/datapath/datapath_test: flattens every
 * suite's table cases and hand-written tests into one harness run.
 * Usage: datapath_test [name-substring]; needs root (BPF_PROG_TEST_RUN).
 */
#include <stdlib.h>
#include <string.h>

#include "dp.h"

static const struct dp_suite *const dp_suites[] = {
	&dp_suite_lb,           &dp_suite_lb_flows,  &dp_suite_pass,       &dp_suite_trunc,
	&dp_suite_malformed,    &dp_suite_refuse,    &dp_suite_updates,    &dp_suite_fwd,
	&dp_suite_ct_flood,     &dp_suite_health,    &dp_suite_affinity,   &dp_suite_src_range,
	&dp_suite_policy,       &dp_suite_snat,      &dp_suite_drop_empty, &dp_suite_explain,
	&dp_suite_reply_filter, &dp_suite_snat_node, &dp_suite_sizes,      &dp_suite_csum,
	&dp_suite_policy_hash,  &dp_suite_cache,
};

static const struct dp_case **dp_table;
static size_t dp_ntable;

/* The harness calls tests without arguments; a table case finds its row
 * by the name the harness is running. */
static void dp__table_case(void)
{
	for (size_t i = 0; i < dp_ntable; i++) {
		if (!strcmp(dp_table[i]->name, test__current)) {
			dp__run_case(dp_table[i]);
			return;
		}
	}
	TEST_FAIL("no table case named %s", test__current);
}

int main(int argc, char **argv)
{
	size_t n = 0, ncases = 0, k = 0, c = 0;
	struct test *tests;
	int rc;

	for (size_t i = 0; i < ARRAY_SIZE(dp_suites); i++) {
		n += dp_suites[i]->ncases + dp_suites[i]->ntests;
		ncases += dp_suites[i]->ncases;
	}
	tests = calloc(n, sizeof(*tests));
	dp_table = calloc(ncases ? ncases : 1, sizeof(*dp_table));
	if (!tests || !dp_table)
		return 2;
	for (size_t i = 0; i < ARRAY_SIZE(dp_suites); i++) {
		const struct dp_suite *s = dp_suites[i];

		for (size_t j = 0; j < s->ncases; j++) {
			dp_table[c++] = &s->cases[j];
			tests[k++] =
				(struct test){ .name = s->cases[j].name, .fn = dp__table_case };
		}
		for (size_t j = 0; j < s->ntests; j++)
			tests[k++] = s->tests[j];
	}
	dp_ntable = c;
	rc = test__run_all("datapath", tests, (int)k, argc, argv);
	free(tests);
	free(dp_table);
	return rc;
}
