// SPDX-License-Identifier: MIT
/*
 * test_cache.c - the reused load of dp_cache.c is as good as a fresh one:
 * after a case has left flows, counters, stats, an extra service, a
 * service policy and a node deny list behind, the next case's load reads
 * back, map for map, exactly what a fresh load of the same config holds,
 * and its first SYN is a new flow again.
 */
#include <errno.h>
#include <string.h>

#include "dp.h"
#include "sluice_policy.h"

#define SYN PKT_TH_SYN

/* What one case leaves behind. */
static bool leave_state(struct dp *d)
{
	static const struct dp_be extra[2] = { { "10.1.0.21", 9000, 1 }, { "10.1.0.22", 9000, 2 } };
	static const struct dp_pol pol = { .deny = { "10.9.0.0/16" }, .refuse = true };
	struct sluice_cidr node = { .addr = dp__addr("10.8.0.0"), .prefixlen = 16 };
	static struct pkt in, out;
	int verdict;

	for (int i = 0; i < 20; i++) {
		dp__build(&in, TCP4(CLIENT4, VIP4, (__u16)(42000 + i), SVC_PORT_TCP, SYN));
		if (!dp__send(d, &in, &out, &verdict))
			return false;
		dp__build(&in, UDP6(CLIENT6, VIP6, (__u16)(42000 + i), SVC_PORT_UDP));
		if (!dp__send(d, &in, &out, &verdict))
			return false;
	}
	dp__build(&in, TCP4(OTHER4, VIP4_EMPTY, 1000, SVC_PORT_TCP, SYN));
	if (!dp__send(d, &in, &out, &verdict))
		return false;
	if (dp__service(d, "10.96.0.99", 9000, IPPROTO_TCP, extra, 2) ||
	    !dp__with_policy(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, BE4, BE_PORT_TCP, &pol))
		return false;
	if (sluice__policy_node_set(d->s, &node, 1)) {
		dp__fail(d, "sluice__policy_node_set: %s", sluice__errmsg());
		return false;
	}
	return true;
}

static void cache_leaves_nothing(struct dp *first)
{
	static const __u64 cnt[SLUICE_CNT__MAX] = { C(LB_NEW), C(FIB_PASS) };
	static const __u64 no_drops[SLUICE_DROP__MAX];
	struct dp again, fresh;
	char what[128];
	int err;

	if (!first->cached) {
		test__skip("datapath loads are not reused here (no bpffs, or SLUICE_DP_FRESH)");
		return;
	}
	if (!leave_state(first))
		return;
	dp__close(first);
	/* the fresh load of the same program and config, as the reference */
	dp__cache_bypass(true);
	if (!dp__open(&fresh, first->prog, true)) {
		dp__cache_bypass(false);
		return;
	}
	dp__cache_bypass(false);
	if (dp__open(&again, first->prog, true)) {
		if (!again.cached)
			dp__fail(&again, "the second load was not taken from the cache");
		err = dp__cache_diff(again.s, fresh.s, what, sizeof(what));
		if (err)
			dp__fail(&again, "the reused load differs from a fresh one: %s (%s)", what,
				 strerror(-err));
		/* the flow the first case opened is new again */
		dp__step(&again, TCP4(CLIENT4, VIP4, 42000, SVC_PORT_TCP, SYN),
			 TCP4(CLIENT4, BE4, 42000, BE_PORT_TCP, SYN), XDP_PASS, cnt, no_drops);
	}
	dp__close(&again);
	dp__close(&fresh);
}

static void test_cache_leaves_nothing(void)
{
	dp__each_prog(0, cache_leaves_nothing);
}

static const struct test cache_tests[] = {
	{ "cache_leaves_nothing", test_cache_leaves_nothing, true },
};

const struct dp_suite dp_suite_cache = {
	.name = "cache",
	.tests = cache_tests,
	.ntests = ARRAY_SIZE(cache_tests),
};
