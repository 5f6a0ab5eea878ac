// SPDX-License-Identifier: MIT
/*
 * test_src_range.c - source ranges (loadBalancerSourceRanges, #13): a new
 * flow to a service with ranges opens only from a client inside one of
 * them; others are dropped, counted SOURCE_RANGE, with no answer and no
 * state (a TCP ACK is not picked up either). IPv4 and IPv6, /0 and the
 * host-prefix edges, a service without ranges beside one with them, a
 * service without backends (outside: dropped, inside: refused), and an
 * established flow that outlives a narrowing of the ranges.
 */
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK

/* Re-sets a world service (one backend, or none) with these ranges. */
static bool with_ranges(struct dp *d, const char *vip, __u16 port, __u8 proto, const char *be,
			__u16 be_port, const char *const *ranges, __u32 n)
{
	struct sluice_backend_spec b = { .addr = dp__addr(be ? be : vip),
					 .port = be_port,
					 .weight = 1 };
	struct sluice_cidr c[8];
	struct sluice_service_spec spec = {
		.vip = dp__addr(vip),
		.port = port,
		.proto = proto,
		.nbackends = be ? 1 : 0,
		.backends = be ? &b : NULL,
		.nsrc_ranges = n,
		.src_ranges = c,
	};
	int err;

	for (__u32 i = 0; i < n && i < 8; i++) {
		if (sluice_cidr__parse(&c[i], ranges[i]) < 0) {
			dp__fail(d, "range %s: %s", ranges[i], sluice__errmsg());
			return false;
		}
	}
	err = sluice__service_set(d->s, &spec);
	if (err)
		dp__fail(d, "service_set with %u ranges: %d (%s)", n, err, sluice__errmsg());
	return !err;
}

static bool t4_client_only(struct dp *d)
{
	static const char *const r[] = { "10.0.0.1/32" };

	return with_ranges(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, BE4, BE_PORT_TCP, r, 1);
}

static bool t4_client_b_only(struct dp *d)
{
	static const char *const r[] = { "192.168.0.0/16", "10.0.0.2/32" };

	return with_ranges(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, BE4, BE_PORT_TCP, r, 2);
}

static bool t4_slash_31(struct dp *d)
{
	static const char *const r[] = { "10.0.0.0/31" }; /* .0 and .1 */

	return with_ranges(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, BE4, BE_PORT_TCP, r, 1);
}

static bool t4_everyone(struct dp *d)
{
	static const char *const r[] = { "0.0.0.0/0" };

	return with_ranges(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, BE4, BE_PORT_TCP, r, 1);
}

static bool t6_ranges(struct dp *d)
{
	static const char *const r[] = { "fd00::1/128", "fd00:0:0:1::/64" };

	return with_ranges(d, VIP6, SVC_PORT_TCP, IPPROTO_TCP, BE6, BE_PORT_TCP, r, 2) &&
	       with_ranges(d, VIP6, SVC_PORT_UDP, IPPROTO_UDP, BE6, BE_PORT_UDP, r, 2);
}

static bool t6_everyone(struct dp *d)
{
	static const char *const r[] = { "::/0" };

	return with_ranges(d, VIP6, SVC_PORT_TCP, IPPROTO_TCP, BE6, BE_PORT_TCP, r, 1);
}

static bool t4_empty_ranges(struct dp *d)
{
	static const char *const r[] = { "10.0.0.1/32" };

	return with_ranges(d, VIP4_EMPTY, SVC_PORT_TCP, IPPROTO_TCP, NULL, 0, r, 1);
}

#define RST4(sp, fl, s, a) \
	TCP4(VIP4_EMPTY, CLIENT4, 80, sp, fl, .seq = s, .ack = a, .l2 = L2_REFUSAL, .refusal = true)

static const struct dp_case src_range_cases[] = {
	{
		.name = "src_range_v4_inside_outside",
		.desc = "10.0.0.1/32: CLIENT4 balanced; CLIENT4B's SYN and ACK dropped, no state",
		.setup = t4_client_only,
		.steps = {
			NEW_FLOW(TCP4(CLIENT4, VIP4, 40000, 80, SYN, .seq = 1000),
				 TCP4(CLIENT4, BE4, 40000, 8080, SYN, .seq = 1000), S_T4),
			DROPS(TCP4(CLIENT4B, VIP4, 40000, 80, SYN, .seq = 1000), SOURCE_RANGE),
			/* not picked up mid-flow either */
			DROPS(TCP4(CLIENT4B, VIP4, 40001, 80, ACK, .seq = 5, .ack = 9), SOURCE_RANGE),
			/* the retry finds nothing remembered */
			DROPS(TCP4(CLIENT4B, VIP4, 40000, 80, SYN, .seq = 1000), SOURCE_RANGE),
			/* the allowed flow goes on */
			EST_FLOW(TCP4(CLIENT4, VIP4, 40000, 80, ACK, .seq = 1001, .ack = 7),
				 TCP4(CLIENT4, BE4, 40000, 8080, ACK, .seq = 1001, .ack = 7), S_T4),
		},
	},
	{
		.name = "src_range_v4_other_service_unaffected",
		.desc = "ranges on tcp/80 only: udp/53 on the same VIP takes CLIENT4B",
		.setup = t4_client_only,
		.steps = {
			NEW_FLOW(UDP4(CLIENT4B, VIP4, 40002, 53, .data = "q"),
				 UDP4(CLIENT4B, BE4, 40002, 5353, .data = "q"), S_U4),
			DROPS(TCP4(CLIENT4B, VIP4, 40002, 80, SYN, .seq = 1), SOURCE_RANGE),
		},
	},
	{
		.name = "src_range_v4_host_edges",
		.desc = "10.0.0.2/32 plus an unrelated /16: .2 in, .1 (one bit off) out",
		.setup = t4_client_b_only,
		.steps = {
			DROPS(TCP4(CLIENT4, VIP4, 40003, 80, SYN, .seq = 1), SOURCE_RANGE),
			NEW_FLOW(TCP4(CLIENT4B, VIP4, 40003, 80, SYN, .seq = 1),
				 TCP4(CLIENT4B, BE4, 40003, 8080, SYN, .seq = 1), S_T4),
		},
	},
	{
		.name = "src_range_v4_slash31",
		.desc = "10.0.0.0/31 holds .1 but not .2",
		.setup = t4_slash_31,
		.steps = {
			NEW_FLOW(TCP4(CLIENT4, VIP4, 40004, 80, SYN, .seq = 1),
				 TCP4(CLIENT4, BE4, 40004, 8080, SYN, .seq = 1), S_T4),
			DROPS(TCP4(CLIENT4B, VIP4, 40004, 80, SYN, .seq = 1), SOURCE_RANGE),
		},
	},
	{
		.name = "src_range_v4_slash0",
		.desc = "0.0.0.0/0 lets every client in",
		.setup = t4_everyone,
		.steps = {
			NEW_FLOW(TCP4(CLIENT4B, VIP4, 40005, 80, SYN, .seq = 1),
				 TCP4(CLIENT4B, BE4, 40005, 8080, SYN, .seq = 1), S_T4),
			NEW_FLOW(TCP4(OTHER4, VIP4, 40005, 80, SYN, .seq = 1),
				 TCP4(OTHER4, BE4, 40005, 8080, SYN, .seq = 1), S_T4),
		},
	},
	{
		.name = "src_range_v6",
		.desc = "fd00::1/128 and fd00:0:0:1::/64: fd00::1 in, fd00::2 out (tcp and udp)",
		.setup = t6_ranges,
		.steps = {
			NEW_FLOW(TCP6(CLIENT6, VIP6, 40006, 80, SYN, .seq = 1),
				 TCP6(CLIENT6, BE6, 40006, 8080, SYN, .seq = 1), S_T6),
			DROPS(TCP6(CLIENT6B, VIP6, 40006, 80, SYN, .seq = 1), SOURCE_RANGE),
			NEW_FLOW(TCP6("fd00:0:0:1:ffff::9", VIP6, 40006, 80, SYN, .seq = 1),
				 TCP6("fd00:0:0:1:ffff::9", BE6, 40006, 8080, SYN, .seq = 1), S_T6),
			DROPS(TCP6("fd00:0:0:2::9", VIP6, 40006, 80, SYN, .seq = 1), SOURCE_RANGE),
			DROPS(UDP6(CLIENT6B, VIP6, 40006, 53, .data = "q"), SOURCE_RANGE),
			NEW_FLOW(UDP6(CLIENT6, VIP6, 40006, 53, .data = "q"),
				 UDP6(CLIENT6, BE6, 40006, 5353, .data = "q"), S_U6),
		},
	},
	{
		.name = "src_range_v6_slash0",
		.desc = "::/0 lets every IPv6 client in",
		.setup = t6_everyone,
		.steps = {
			NEW_FLOW(TCP6(OTHER6, VIP6, 40007, 80, SYN, .seq = 1),
				 TCP6(OTHER6, BE6, 40007, 8080, SYN, .seq = 1), S_T6),
		},
	},
	{
		.name = "src_range_no_backends",
		.desc = "no backends: a client outside is dropped unanswered, one inside refused",
		.setup = t4_empty_ranges,
		.steps = {
			DROPS(TCP4(CLIENT4B, VIP4_EMPTY, 40008, 80, SYN, .seq = 1000), SOURCE_RANGE),
			REFUSES(TCP4(CLIENT4, VIP4_EMPTY, 40008, 80, SYN, .seq = 1000),
				RST4(40008, PKT_TH_RST | ACK, 0, 1001), S_T4_EMPTY),
		},
	},
};

static const struct dp_case open_case = {
	.steps = {
		NEW_FLOW(TCP4(CLIENT4, VIP4, 40100, 80, SYN, .seq = 1),
			 TCP4(CLIENT4, BE4, 40100, 8080, SYN, .seq = 1), S_T4),
	},
};

static const struct dp_case narrowed_case = {
	.steps = {
		EST_FLOW(TCP4(CLIENT4, VIP4, 40100, 80, ACK, .seq = 2, .ack = 2),
			 TCP4(CLIENT4, BE4, 40100, 8080, ACK, .seq = 2, .ack = 2), S_T4),
		DROPS(TCP4(CLIENT4, VIP4, 40101, 80, SYN, .seq = 1), SOURCE_RANGE),
	},
};

static const struct dp_case widened_case = {
	.steps = {
		NEW_FLOW(TCP4(CLIENT4, VIP4, 40102, 80, SYN, .seq = 1),
			 TCP4(CLIENT4, BE4, 40102, 8080, SYN, .seq = 1), S_T4),
	},
};

/* Narrowing the ranges leaves a flow conntrack knows alone: only new
 * flows are checked. Widening them again lets the client back in. */
static void established_kept(struct dp *d)
{
	static const char *const none_of_them[] = { "192.168.0.0/16" };
	static const char *const client4[] = { "10.0.0.1/32" };

	if (!dp__run_steps(d, &open_case))
		return;
	if (!with_ranges(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, BE4, BE_PORT_TCP, none_of_them, 1) ||
	    !dp__run_steps(d, &narrowed_case))
		return;
	if (!with_ranges(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, BE4, BE_PORT_TCP, client4, 1))
		return;
	dp__run_steps(d, &widened_case);
}

static void test_src_range_established_kept(void)
{
	dp__each_prog(0, established_kept);
}

static const struct dp_case denied_case = {
	.steps = { DROPS(TCP4(CLIENT4B, VIP4, 40200, 80, SYN, .seq = 1), SOURCE_RANGE) },
};

static const struct dp_case allowed_case = {
	.steps = {
		NEW_FLOW(TCP4(CLIENT4B, VIP4, 40201, 80, SYN, .seq = 1),
			 TCP4(CLIENT4B, BE4, 40201, 8080, SYN, .seq = 1), S_T4),
	},
};

/* Removing the ranges (0 given) clears the flag: everyone is back in,
 * and the trie holds nothing of the service. */
static void ranges_removed(struct dp *d)
{
	struct sluice_src_range_key next;
	int fd = sluice__map_fd(d->s, "src_ranges");

	if (!t4_client_only(d) || !dp__run_steps(d, &denied_case))
		return;
	if (!with_ranges(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, BE4, BE_PORT_TCP, NULL, 0) ||
	    !dp__run_steps(d, &allowed_case))
		return;
	if (bpf_map_get_next_key(fd, NULL, &next) != -ENOENT)
		dp__fail(d, "src_ranges not empty after the ranges were removed");
}

static void test_src_range_removed(void)
{
	dp__each_prog(0, ranges_removed);
}

static const struct test src_range_tests[] = {
	TEST(test_src_range_established_kept),
	TEST(test_src_range_removed),
};

const struct dp_suite dp_suite_src_range = {
	.name = "src_range",
	.cases = src_range_cases,
	.ncases = ARRAY_SIZE(src_range_cases),
	.tests = src_range_tests,
	.ntests = ARRAY_SIZE(src_range_tests),
};
