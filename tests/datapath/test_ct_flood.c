// SPDX-License-Identifier: MIT
/*
 * test_ct_flood.c - conntrack under floods: unconfirmed flows live in
 * ct_new and move to conntrack only once confirmed (the client ACKs the
 * backend's SYN|ACK, or the backend answers a UDP flow); an ACK or data
 * that matches no flow is picked up unconfirmed and confirmed by the
 * backend's answer, a RST or SYN|ACK leaves no state; a RST confirms
 * nothing; filling ct_new never evicts a confirmed flow; a new flow never
 * takes the reply tuple of a confirmed one. Each case runs its packets
 * (exact verdict, bytes, counters) and then counts both maps.
 */
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK
#define PSH PKT_TH_PSH
#define RST PKT_TH_RST
#define FIN PKT_TH_FIN

/* A second VIP whose only backend is also S_T4's (BE4:8080). */
#define VIP4_SHARED "10.96.0.40"

struct ct_case {
	struct dp_case c;
	__u32 conntrack; /* entries expected in each map after the steps */
	__u32 ct_new;
};

static long ct_count(struct dp *d, const char *map)
{
	struct sluice_ct_key key, next;
	long n = 0;
	int fd = sluice__map_fd(d->s, map);

	if (fd < 0)
		return fd;
	if (bpf_map_get_next_key(fd, NULL, &next))
		return 0;
	do {
		key = next;
		n++;
	} while (!bpf_map_get_next_key(fd, &key, &next));
	return n;
}

static bool ct_expect_counts(struct dp *d, __u32 conntrack, __u32 ct_new)
{
	long c = ct_count(d, "conntrack"), n = ct_count(d, "ct_new");

	if (c == conntrack && n == ct_new)
		return true;
	dp__fail(d, "entries: conntrack %ld ct_new %ld, expected %u and %u", c, n, conntrack,
		 ct_new);
	return false;
}

static bool shared_vip_setup(struct dp *d)
{
	const struct dp_be be = { BE4, BE_PORT_TCP, 1 };

	return ASSERT_OK(dp__service(d, VIP4_SHARED, SVC_PORT_TCP, IPPROTO_TCP, &be, 1),
			 "service " VIP4_SHARED ":80 -> " BE4 ":8080");
}

/* clang-format off */
#define BE_TCP(dport, fl, ...) TCP4(BE4, CLIENT4, BE_PORT_TCP, dport, fl, .l2 = L2_BACKEND, __VA_ARGS__)
#define VIP_TCP(dport, fl, ...) TCP4(VIP4, CLIENT4, SVC_PORT_TCP, dport, fl, .l2 = L2_BACKEND, __VA_ARGS__)

static const struct ct_case ct_cases[] = {
	{
		.c = {
			.name = "ct_syn_is_unconfirmed",
			.desc = "a SYN (v4 and v6) creates its two entries in ct_new only",
			.steps = {
				NEW_FLOW(TCP4(CLIENT4, VIP4, 46000, 80, SYN, .seq = 1),
					 TCP4(CLIENT4, BE4, 46000, 8080, SYN, .seq = 1), S_T4),
				NEW_FLOW(TCP6(CLIENT6, VIP6, 46000, 80, SYN, .seq = 1),
					 TCP6(CLIENT6, BE6, 46000, 8080, SYN, .seq = 1), S_T6),
			},
		},
		.conntrack = 0, .ct_new = 4,
	},
	{
		.c = {
			.name = "ct_handshake_confirms",
			.desc = "SYN, backend SYN|ACK, client ACK: the ACK moves both entries to conntrack",
			.steps = {
				NEW_FLOW(TCP4(CLIENT4, VIP4, 46001, 80, SYN, .seq = 1),
					 TCP4(CLIENT4, BE4, 46001, 8080, SYN, .seq = 1), S_T4),
				REV_NAT(BE_TCP(46001, SYN | ACK, .seq = 70, .ack = 2),
					VIP_TCP(46001, SYN | ACK, .seq = 70, .ack = 2), S_T4),
				EST_CONFIRMS(TCP4(CLIENT4, VIP4, 46001, 80, ACK, .seq = 2, .ack = 71),
					     TCP4(CLIENT4, BE4, 46001, 8080, ACK, .seq = 2, .ack = 71), S_T4),
				/* from conntrack now: nothing more to confirm */
				REV_NAT(BE_TCP(46001, ACK | PSH, .seq = 71, .ack = 2, .data = "hello"),
					VIP_TCP(46001, ACK | PSH, .seq = 71, .ack = 2, .data = "hello"), S_T4),
				EST_FLOW(TCP4(CLIENT4, VIP4, 46001, 80, ACK, .seq = 2, .ack = 76),
					 TCP4(CLIENT4, BE4, 46001, 8080, ACK, .seq = 2, .ack = 76), S_T4),
			},
		},
		.conntrack = 2, .ct_new = 0,
	},
	{
		.c = {
			.name = "ct_v6_handshake_confirms",
			.desc = "IPv6: the client's ACK after the backend's SYN|ACK confirms the flow",
			.steps = {
				NEW_FLOW(TCP6(CLIENT6, VIP6, 46002, 80, SYN, .seq = 1),
					 TCP6(CLIENT6, BE6, 46002, 8080, SYN, .seq = 1), S_T6),
				REV_NAT(TCP6(BE6, CLIENT6, 8080, 46002, SYN | ACK, .seq = 9, .ack = 2, .l2 = L2_BACKEND),
					TCP6(VIP6, CLIENT6, 80, 46002, SYN | ACK, .seq = 9, .ack = 2, .l2 = L2_BACKEND), S_T6),
				EST_CONFIRMS(TCP6(CLIENT6, VIP6, 46002, 80, ACK, .seq = 2, .ack = 10),
					     TCP6(CLIENT6, BE6, 46002, 8080, ACK, .seq = 2, .ack = 10), S_T6),
			},
		},
		.conntrack = 2, .ct_new = 0,
	},
	{
		.c = {
			.name = "ct_ack_miss_unconfirmed",
			.desc = "ACK to a VIP without a flow: Maglev pick, tracked in ct_new, not confirmed by the backend's RST; RST and SYN|ACK misses: no entry",
			.steps = {
				PICKS_UP(TCP4(CLIENT4, VIP4, 46003, 80, ACK, .seq = 5, .ack = 6),
					 TCP4(CLIENT4, BE4, 46003, 8080, ACK, .seq = 5, .ack = 6), S_T4),
				EST_FLOW(TCP4(CLIENT4, VIP4, 46003, 80, ACK | PSH, .seq = 5, .ack = 6, .data = "x"),
					 TCP4(CLIENT4, BE4, 46003, 8080, ACK | PSH, .seq = 5, .ack = 6, .data = "x"), S_T4),
				NO_STATE(TCP6(CLIENT6, VIP6, 46003, 80, RST, .seq = 5),
					 TCP6(CLIENT6, BE6, 46003, 8080, RST, .seq = 5), S_T6),
				NO_STATE(TCP4(CLIENT4, VIP4, 46004, 80, SYN | ACK, .seq = 5, .ack = 6),
					 TCP4(CLIENT4, BE4, 46004, 8080, SYN | ACK, .seq = 5, .ack = 6), S_T4),
				/* what a backend answers junk with: rewritten, confirms nothing */
				REV_NAT(BE_TCP(46003, RST, .seq = 6),
					VIP_TCP(46003, RST, .seq = 6), S_T4),
			},
		},
		.conntrack = 0, .ct_new = 2,
	},
	{
		.c = {
			.name = "ct_pickup_confirms_on_answer",
			.desc = "data of a flow whose entries were lost: Maglev pick, and the backend's answer (it knows the connection) confirms it",
			.steps = {
				PICKS_UP(TCP4(CLIENT4, VIP4, 46007, 80, ACK | PSH, .seq = 5, .ack = 6, .data = "x"),
					 TCP4(CLIENT4, BE4, 46007, 8080, ACK | PSH, .seq = 5, .ack = 6, .data = "x"), S_T4),
				REV_CONFIRMS(BE_TCP(46007, ACK | PSH, .seq = 6, .ack = 6, .data = "y"),
					     VIP_TCP(46007, ACK | PSH, .seq = 6, .ack = 6, .data = "y"), S_T4),
				EST_FLOW(TCP4(CLIENT4, VIP4, 46007, 80, ACK, .seq = 6, .ack = 7),
					 TCP4(CLIENT4, BE4, 46007, 8080, ACK, .seq = 6, .ack = 7), S_T4),
			},
		},
		.conntrack = 2, .ct_new = 0,
	},
	{
		.c = {
			.name = "ct_backend_rst_confirms_nothing",
			.desc = "SYN answered by the backend's RST|ACK, then a client ACK: the flow stays unconfirmed",
			.steps = {
				NEW_FLOW(TCP4(CLIENT4, VIP4, 46005, 80, SYN, .seq = 1),
					 TCP4(CLIENT4, BE4, 46005, 8080, SYN, .seq = 1), S_T4),
				REV_NAT(BE_TCP(46005, RST | ACK, .seq = 0, .ack = 2),
					VIP_TCP(46005, RST | ACK, .seq = 0, .ack = 2), S_T4),
				EST_FLOW(TCP4(CLIENT4, VIP4, 46005, 80, ACK, .seq = 2, .ack = 1),
					 TCP4(CLIENT4, BE4, 46005, 8080, ACK, .seq = 2, .ack = 1), S_T4),
			},
		},
		.conntrack = 0, .ct_new = 2,
	},
	{
		.c = {
			.name = "ct_client_rst_confirms_nothing",
			.desc = "SYN, backend SYN|ACK, then the client's RST|ACK: nothing is confirmed, nor by a later ACK",
			.steps = {
				NEW_FLOW(TCP4(CLIENT4, VIP4, 46006, 80, SYN, .seq = 1),
					 TCP4(CLIENT4, BE4, 46006, 8080, SYN, .seq = 1), S_T4),
				REV_NAT(BE_TCP(46006, SYN | ACK, .seq = 70, .ack = 2),
					VIP_TCP(46006, SYN | ACK, .seq = 70, .ack = 2), S_T4),
				EST_FLOW(TCP4(CLIENT4, VIP4, 46006, 80, RST | ACK, .seq = 2, .ack = 71),
					 TCP4(CLIENT4, BE4, 46006, 8080, RST | ACK, .seq = 2, .ack = 71), S_T4),
				EST_FLOW(TCP4(CLIENT4, VIP4, 46006, 80, ACK, .seq = 2, .ack = 71),
					 TCP4(CLIENT4, BE4, 46006, 8080, ACK, .seq = 2, .ack = 71), S_T4),
			},
		},
		.conntrack = 0, .ct_new = 2,
	},
	{
		.c = {
			.name = "ct_udp_answer_confirms",
			.desc = "a UDP flow (v4 and v6) is unconfirmed until the backend answers; the answer moves it",
			.steps = {
				NEW_FLOW(UDP4(CLIENT4, VIP4, 46007, 53, .data = "q"),
					 UDP4(CLIENT4, BE4, 46007, 5353, .data = "q"), S_U4),
				EST_FLOW(UDP4(CLIENT4, VIP4, 46007, 53, .data = "q again"),
					 UDP4(CLIENT4, BE4, 46007, 5353, .data = "q again"), S_U4),
				REV_CONFIRMS(UDP4(BE4, CLIENT4, 5353, 46007, .data = "a", .l2 = L2_BACKEND),
					     UDP4(VIP4, CLIENT4, 53, 46007, .data = "a", .l2 = L2_BACKEND), S_U4),
				REV_NAT(UDP4(BE4, CLIENT4, 5353, 46007, .data = "a2", .l2 = L2_BACKEND),
					UDP4(VIP4, CLIENT4, 53, 46007, .data = "a2", .l2 = L2_BACKEND), S_U4),
				NEW_FLOW(UDP6(CLIENT6, VIP6, 46007, 53, .data = "q6"),
					 UDP6(CLIENT6, BE6, 46007, 5353, .data = "q6"), S_U6),
			},
		},
		.conntrack = 2, .ct_new = 2,
	},
	{
		.c = {
			.name = "ct_reopen_starts_unconfirmed",
			.desc = "a SYN on a confirmed flow that saw FIN starts a new, unconfirmed flow, confirmed by its own handshake",
			.steps = {
				NEW_FLOW(TCP4(CLIENT4, VIP4, 46008, 80, SYN, .seq = 1),
					 TCP4(CLIENT4, BE4, 46008, 8080, SYN, .seq = 1), S_T4),
				REV_NAT(BE_TCP(46008, SYN | ACK, .seq = 70, .ack = 2),
					VIP_TCP(46008, SYN | ACK, .seq = 70, .ack = 2), S_T4),
				EST_CONFIRMS(TCP4(CLIENT4, VIP4, 46008, 80, FIN | ACK, .seq = 2, .ack = 71),
					     TCP4(CLIENT4, BE4, 46008, 8080, FIN | ACK, .seq = 2, .ack = 71), S_T4),
				NEW_FLOW(TCP4(CLIENT4, VIP4, 46008, 80, SYN, .seq = 9000),
					 TCP4(CLIENT4, BE4, 46008, 8080, SYN, .seq = 9000), S_T4),
				REV_NAT(BE_TCP(46008, SYN | ACK, .seq = 500, .ack = 9001),
					VIP_TCP(46008, SYN | ACK, .seq = 500, .ack = 9001), S_T4),
				EST_CONFIRMS(TCP4(CLIENT4, VIP4, 46008, 80, ACK, .seq = 9001, .ack = 501),
					     TCP4(CLIENT4, BE4, 46008, 8080, ACK, .seq = 9001, .ack = 501), S_T4),
			},
		},
		.conntrack = 2, .ct_new = 0,
	},
	{
		.c = {
			.name = "ct_reply_tuple_stays_with_its_flow",
			.desc = "a SYN from the same client port to another VIP with the same backend does not take the confirmed flow's replies",
			.setup = shared_vip_setup,
			.steps = {
				NEW_FLOW(TCP4(CLIENT4, VIP4, 46009, 80, SYN, .seq = 1),
					 TCP4(CLIENT4, BE4, 46009, 8080, SYN, .seq = 1), S_T4),
				REV_NAT(BE_TCP(46009, SYN | ACK, .seq = 70, .ack = 2),
					VIP_TCP(46009, SYN | ACK, .seq = 70, .ack = 2), S_T4),
				EST_CONFIRMS(TCP4(CLIENT4, VIP4, 46009, 80, ACK, .seq = 2, .ack = 71),
					     TCP4(CLIENT4, BE4, 46009, 8080, ACK, .seq = 2, .ack = 71), S_T4),
				{ .in = TCP4(CLIENT4, VIP4_SHARED, 46009, 80, SYN, .seq = 5),
				  .out = TCP4(CLIENT4, BE4, 46009, 8080, SYN, .seq = 5),
				  .verdict = XDP_PASS, .cnt = { C(LB_NEW), C(FIB_PASS) } },
				/* the backend's next message still comes from VIP4 */
				REV_NAT(BE_TCP(46009, ACK | PSH, .seq = 71, .ack = 2, .data = "push"),
					VIP_TCP(46009, ACK | PSH, .seq = 71, .ack = 2, .data = "push"), S_T4),
			},
		},
		.conntrack = 2, .ct_new = 2,
	},
	{
		.c = {
			.name = "ct_closed_reply_other_vip",
			.desc = "after the client reset a confirmed flow, its port to another VIP with the same backend: the SYN|ACK comes from the new VIP",
			.setup = shared_vip_setup,
			.steps = {
				NEW_FLOW(TCP4(CLIENT4, VIP4, 46010, 80, SYN, .seq = 1),
					 TCP4(CLIENT4, BE4, 46010, 8080, SYN, .seq = 1), S_T4),
				REV_NAT(BE_TCP(46010, SYN | ACK, .seq = 70, .ack = 2),
					VIP_TCP(46010, SYN | ACK, .seq = 70, .ack = 2), S_T4),
				EST_CONFIRMS(TCP4(CLIENT4, VIP4, 46010, 80, ACK, .seq = 2, .ack = 71),
					     TCP4(CLIENT4, BE4, 46010, 8080, ACK, .seq = 2, .ack = 71), S_T4),
				EST_FLOW(TCP4(CLIENT4, VIP4, 46010, 80, RST | ACK, .seq = 2, .ack = 71),
					 TCP4(CLIENT4, BE4, 46010, 8080, RST | ACK, .seq = 2, .ack = 71), S_T4),
				{ .in = TCP4(CLIENT4, VIP4_SHARED, 46010, 80, SYN, .seq = 500),
				  .out = TCP4(CLIENT4, BE4, 46010, 8080, SYN, .seq = 500),
				  .verdict = XDP_PASS, .cnt = { C(LB_NEW), C(FIB_PASS) } },
				{ .in = BE_TCP(46010, SYN | ACK, .seq = 900, .ack = 501),
				  .out = TCP4(VIP4_SHARED, CLIENT4, 80, 46010, SYN | ACK, .seq = 900, .ack = 501, .l2 = L2_BACKEND),
				  .verdict = XDP_PASS, .cnt = { C(REVNAT), C(FIB_PASS) } },
			},
		},
		/* the old FWD entry (reset) until it expires; the new flow's two */
		.conntrack = 1, .ct_new = 2,
	},
	{
		.c = {
			.name = "ct_closed_reply_direct_syn",
			.desc = "after a balanced flow closed, its client port straight to the backend: the backend's SYN|ACK is not rewritten",
			.steps = {
				NEW_FLOW(TCP4(CLIENT4, VIP4, 46011, 80, SYN, .seq = 1),
					 TCP4(CLIENT4, BE4, 46011, 8080, SYN, .seq = 1), S_T4),
				REV_NAT(BE_TCP(46011, SYN | ACK, .seq = 70, .ack = 2),
					VIP_TCP(46011, SYN | ACK, .seq = 70, .ack = 2), S_T4),
				EST_CONFIRMS(TCP4(CLIENT4, VIP4, 46011, 80, ACK, .seq = 2, .ack = 71),
					     TCP4(CLIENT4, BE4, 46011, 8080, ACK, .seq = 2, .ack = 71), S_T4),
				EST_FLOW(TCP4(CLIENT4, VIP4, 46011, 80, FIN | ACK, .seq = 2, .ack = 71),
					 TCP4(CLIENT4, BE4, 46011, 8080, FIN | ACK, .seq = 2, .ack = 71), S_T4),
				REV_NAT(BE_TCP(46011, FIN | ACK, .seq = 71, .ack = 3),
					VIP_TCP(46011, FIN | ACK, .seq = 71, .ack = 3), S_T4),
				EST_FLOW(TCP4(CLIENT4, VIP4, 46011, 80, ACK, .seq = 3, .ack = 72),
					 TCP4(CLIENT4, BE4, 46011, 8080, ACK, .seq = 3, .ack = 72), S_T4),
				PASSES(TCP4(CLIENT4, BE4, 46011, 8080, SYN, .seq = 500)),
				PASSES(BE_TCP(46011, SYN | ACK, .seq = 900, .ack = 501)),
			},
		},
		/* the closed flow's FWD entry, until it expires */
		.conntrack = 1, .ct_new = 0,
	},
};
/* clang-format on */

static void ct_table_case(void)
{
	static const enum dp_prog progs[] = { DP_XDP, DP_TC };
	const struct ct_case *tc = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(ct_cases); i++)
		if (!strcmp(ct_cases[i].c.name, test__current))
			tc = &ct_cases[i];
	if (!tc) {
		TEST_FAIL("no case named %s", test__current);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		struct dp d;

		if (dp__open(&d, progs[i], true) && (!tc->c.setup || tc->c.setup(&d)) &&
		    dp__run_steps(&d, &tc->c))
			ct_expect_counts(&d, tc->conntrack, tc->ct_new);
		dp__close(&d);
	}
	if (test__failed)
		fprintf(stderr, "  case: %s\n", tc->c.desc);
}

/*
 * A random-source flood turning ct_new over four times, then the confirmed
 * flow that was idle all along: its backend pushes a message, which must
 * come from the VIP, and the client's answer must reach the same backend.
 * conntrack must hold that flow's two entries and nothing else (before the
 * split the same flood left 262018 entries there: a longer one evicts
 * everything, as the e2e flood test shows with real sockets).
 */
#define FLOOD_SYNS (2 * SLUICE_CT_NEW_MAX)

static bool ct_flood(struct dp *d, __u8 flags)
{
	static struct pkt in, out;
	char src[INET_ADDRSTRLEN];
	int verdict;

	for (__u32 i = 0; i < FLOOD_SYNS; i++) {
		snprintf(src, sizeof(src), "10.%u.%u.%u", 64 + (i >> 16), (i >> 8) & 0xff,
			 i & 0xff);
		dp__build(&in, TCP4(src, VIP4, (__u16)(1024 + i % 60000), 80, flags, .seq = i));
		if (dp__run(d, &in, &out, &verdict)) {
			dp__fail(d, "flood packet %u: run failed", i);
			return false;
		}
	}
	return true;
}

static const struct dp_case ct_idle_flow = {
	.steps = {
		NEW_FLOW(TCP4(CLIENT4, VIP4, 47000, 80, SYN, .seq = 1),
			 TCP4(CLIENT4, BE4, 47000, 8080, SYN, .seq = 1), S_T4),
		REV_NAT(BE_TCP(47000, SYN | ACK, .seq = 70, .ack = 2),
			VIP_TCP(47000, SYN | ACK, .seq = 70, .ack = 2), S_T4),
		EST_CONFIRMS(TCP4(CLIENT4, VIP4, 47000, 80, ACK, .seq = 2, .ack = 71),
			     TCP4(CLIENT4, BE4, 47000, 8080, ACK, .seq = 2, .ack = 71), S_T4),
	},
};

static const struct dp_case ct_push_after_flood = {
	.steps = {
		REV_NAT(BE_TCP(47000, ACK | PSH, .seq = 71, .ack = 2, .data = "server push"),
			VIP_TCP(47000, ACK | PSH, .seq = 71, .ack = 2, .data = "server push"), S_T4),
		EST_FLOW(TCP4(CLIENT4, VIP4, 47000, 80, ACK, .seq = 2, .ack = 82),
			 TCP4(CLIENT4, BE4, 47000, 8080, ACK, .seq = 2, .ack = 82), S_T4),
	},
};

static void flood_prog(struct dp *d, __u8 flags, long want_new)
{
	long n;

	if (!dp__run_steps(d, &ct_idle_flow) || !ct_flood(d, flags))
		return;
	n = ct_count(d, "ct_new");
	if (n != want_new && !(want_new < 0 && n > 0 && n <= SLUICE_CT_NEW_MAX))
		dp__fail(d, "ct_new holds %ld entries after the flood", n);
	if (ct_count(d, "conntrack") != 2)
		dp__fail(d,
			 "conntrack holds %ld entries after the flood, expected the idle flow's 2",
			 ct_count(d, "conntrack"));
	dp__run_steps(d, &ct_push_after_flood);
}

static void syn_flood_prog(struct dp *d)
{
	flood_prog(d, PKT_TH_SYN, -1); /* full, LRU-bounded */
}

static void ack_flood_prog(struct dp *d)
{
	flood_prog(d, PKT_TH_ACK, -1); /* picked up, unconfirmed: the same */
}

/* ct_syn_flood_keeps_idle_flow: a SYN flood fills ct_new only */
static void ct_syn_flood_keeps_idle_flow(void)
{
	dp__each_prog(0, syn_flood_prog);
}

/* ct_ack_flood_keeps_idle_flow: an ACK flood fills ct_new only */
static void ct_ack_flood_keeps_idle_flow(void)
{
	dp__each_prog(0, ack_flood_prog);
}

static const struct test ct_tests[] = {
	{ .name = "ct_syn_is_unconfirmed", .fn = ct_table_case },
	{ .name = "ct_handshake_confirms", .fn = ct_table_case },
	{ .name = "ct_v6_handshake_confirms", .fn = ct_table_case },
	{ .name = "ct_ack_miss_unconfirmed", .fn = ct_table_case },
	{ .name = "ct_pickup_confirms_on_answer", .fn = ct_table_case },
	{ .name = "ct_backend_rst_confirms_nothing", .fn = ct_table_case },
	{ .name = "ct_client_rst_confirms_nothing", .fn = ct_table_case },
	{ .name = "ct_udp_answer_confirms", .fn = ct_table_case },
	{ .name = "ct_reopen_starts_unconfirmed", .fn = ct_table_case },
	{ .name = "ct_reply_tuple_stays_with_its_flow", .fn = ct_table_case },
	{ .name = "ct_closed_reply_other_vip", .fn = ct_table_case },
	{ .name = "ct_closed_reply_direct_syn", .fn = ct_table_case },
	TEST(ct_syn_flood_keeps_idle_flow),
	TEST(ct_ack_flood_keeps_idle_flow),
};

const struct dp_suite dp_suite_ct_flood = {
	.name = "ct_flood",
	.tests = ct_tests,
	.ntests = ARRAY_SIZE(ct_tests),
};
