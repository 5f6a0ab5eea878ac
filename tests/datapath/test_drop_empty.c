// SPDX-License-Identifier: MIT
/*
 * test_drop_empty.c - SLUICE_SVC_F_DROP_EMPTY on the packet path (XDP and
 * tc): a new flow (TCP SYN, TCP ACK of no flow, UDP) to a service without
 * backends is dropped and counted NO_LOCAL_BACKEND where the same service
 * without the flag refuses (RST / ICMP, counted REFUSED); a service with
 * backends ignores the flag. Exact counters.
 */
#include "dp.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK

#define CNT(...) ((const __u64[SLUICE_CNT__MAX]){ __VA_ARGS__ })
#define DRP(...) ((const __u64[SLUICE_DROP__MAX]){ __VA_ARGS__ })

static const __u64 no_cnt[SLUICE_CNT__MAX];
static const __u64 no_drops[SLUICE_DROP__MAX];
#define NO_DROPS no_drops

/* DROP_EMPTY: no backends -> dropped and counted, not refused. */
static void test_drop_empty(struct dp *d)
{
	static const char *const vips[] = { VIP4_EMPTY, VIP6_EMPTY };

	for (int i = 0; i < 2; i++) {
		__u8 af = i ? 6 : 4;
		struct dp_pkt syn = { .af = af,
				      .proto = IPPROTO_TCP,
				      .saddr = i ? CLIENT6 : CLIENT4,
				      .daddr = vips[i],
				      .sport = 40007,
				      .dport = SVC_PORT_TCP,
				      .flags = SYN,
				      .seq = 1 };
		struct dp_pkt udp = { .af = af,
				      .proto = IPPROTO_UDP,
				      .saddr = syn.saddr,
				      .daddr = vips[i],
				      .sport = 40007,
				      .dport = SVC_PORT_UDP,
				      .data = "q" };

		dp__at("v%u without the flag: refused", af);
		if (!dp__step(d, &syn, NULL, XDP_TX, CNT(C(REFUSED)), NO_DROPS))
			return;
		if (!dp__svc_flags(d, vips[i], SVC_PORT_TCP, IPPROTO_TCP,
				   SLUICE_SVC_F_DROP_EMPTY) ||
		    !dp__svc_flags(d, vips[i], SVC_PORT_UDP, IPPROTO_UDP, SLUICE_SVC_F_DROP_EMPTY))
			return;
		dp__at("v%u TCP SYN with the flag", af);
		if (!dp__step(d, &syn, NULL, XDP_DROP, no_cnt, DRP(D(NO_LOCAL_BACKEND))))
			return;
		syn.flags = ACK;
		dp__at("v%u TCP ACK with the flag", af);
		if (!dp__step(d, &syn, NULL, XDP_DROP, no_cnt, DRP(D(NO_LOCAL_BACKEND))))
			return;
		dp__at("v%u UDP with the flag", af);
		if (!dp__step(d, &udp, NULL, XDP_DROP, no_cnt, DRP(D(NO_LOCAL_BACKEND))))
			return;
	}
}

/* A service with backends ignores DROP_EMPTY. */
static void test_drop_empty_with_backends(struct dp *d)
{
	struct dp_pkt in = { .af = 4,
			     .proto = IPPROTO_TCP,
			     .saddr = CLIENT4,
			     .daddr = VIP4,
			     .sport = 40008,
			     .dport = SVC_PORT_TCP,
			     .flags = SYN,
			     .seq = 1 };
	struct dp_pkt out = in;

	out.daddr = BE4;
	out.dport = BE_PORT_TCP;
	if (dp__svc_flags(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, SLUICE_SVC_F_DROP_EMPTY))
		dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_NEW), C(FIB_PASS)), NO_DROPS);
}

#define EACH(name)                             \
	static void name(void)                 \
	{                                      \
		dp__each_prog(0, test_##name); \
	}
EACH(drop_empty)
EACH(drop_empty_with_backends)

static const struct test drop_empty_tests[] = {
	TEST(drop_empty),
	TEST(drop_empty_with_backends),
};

const struct dp_suite dp_suite_drop_empty = {
	.name = "drop_empty",
	.tests = drop_empty_tests,
	.ntests = ARRAY_SIZE(drop_empty_tests),
};
