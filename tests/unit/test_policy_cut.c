// SPDX-License-Identifier: MIT
/*
 * test_policy_cut.c - a policy change cuts the TCP sockets of other network
 * namespaces (#15, user/lib/svc/policy_cut_netns.c).
 *
 * Contract: the test runs in a private network namespace and a child cgroup
 * of the cgroup2 mount it creates (sluice-test-pcut.<pid>, removed at exit)
 * with N children (SLUICE_TEST_NETNS, default 4, at most 512) in network
 * namespaces of their own (tests/lib/policy_cut_kids.h). Checks: no scope, nothing is cut (the
 * behaviour before the netns walk); a scope bounded to N-1 namespaces cuts
 * N-1 and counts one skipped; an unbounded one cuts the last; a scope that
 * does not exist cuts nothing and fails nothing. Prints the time of a cut
 * over N namespaces. Needs root.
 */
#define _GNU_SOURCE
#include "policy_cut_kids.h"

static void test_netns_cut(void)
{
	struct sluice_policy_cut_totals t;
	struct sluice_opts opts = {};
	struct sluice *s = NULL;
	__u64 flows, socks;
	int sock_err, n = env_kids();

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		return;
	if (!ASSERT_OK(svc_deny5(s, false), "service, no rules") ||
	    !ASSERT_TRUE(kids_start(n), "children connected in their own netns"))
		goto out;
	ASSERT_OK(svc_deny5(s, true), "deny 127.0.0.5/32");

	/* before the walk: sock_diag of this netns only */
	ASSERT_OK(sluice__policy_cut(s, &flows, &socks, &sock_err), "cut without a scope");
	ASSERT_EQ(socks, 0, "no scope: nothing of other netns destroyed");

	ASSERT_OK(sluice__policy_cut_scope(s, "/nonexistent/cgroup", 0, 0), "missing scope");
	ASSERT_OK(sluice__policy_cut(s, &flows, &socks, &sock_err), "cut, missing scope");
	sluice__policy_cut_totals(s, &t);
	ASSERT_EQ(socks, 0, "missing scope: nothing destroyed");
	ASSERT_EQ(t.netns + t.netns_failed + t.netns_skipped, 0, "missing scope: no netns");

	ASSERT_OK(sluice__policy_cut_scope(s, cgroup, n - 1, 60000), "scope, n - 1 netns");
	ASSERT_OK(sluice__policy_cut(s, &flows, &socks, &sock_err), "cut, bounded");
	sluice__policy_cut_totals(s, &t);
	ASSERT_EQ(socks, n - 1, "bounded: n - 1 sockets destroyed");
	ASSERT_EQ(t.netns, n - 1, "bounded: n - 1 netns entered");
	ASSERT_EQ(t.netns_skipped, 1, "bounded: one netns skipped");
	ASSERT_EQ(t.netns_failed, 0, "no netns failed");
	ASSERT_EQ(t.last_netns, n - 1, "last cut entered n - 1");

	/* a generous budget: the time of n namespaces is measured, not cut short */
	ASSERT_OK(sluice__policy_cut_scope(s, cgroup, 0, 60000), "scope, default count bound");
	ASSERT_OK(sluice__policy_cut(s, &flows, &socks, &sock_err), "cut, unbounded");
	sluice__policy_cut_totals(s, &t);
	ASSERT_EQ(socks, 1, "the skipped netns' socket destroyed now");
	ASSERT_EQ(t.netns, 2 * n - 1, "n more netns entered");
	ASSERT_EQ(t.socks, n, "totals: n sockets");
	ASSERT_EQ(t.netns_failed, 0, "still no netns failed");
	printf("    a cut over %d network namespaces took %llu us\n", n,
	       (unsigned long long)t.last_netns_us);
	ASSERT_EQ(kids_cut(), n, "every child saw ECONNABORTED");
out:
	kids_stop();
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_netns_cut),
};

int main(int argc, char **argv)
{
	return pcut__main("policy_cut", "sluice-test-pcut", tests, ARRAY_SIZE(tests), argc, argv);
}
