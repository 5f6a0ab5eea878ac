// SPDX-License-Identifier: MIT
/*
 * test_lb_flows.c - load balancing beyond single packets: checksum corner
 * values reached through incremental updates (searched for, both NAT
 * directions) and per-flow consistency over several backends.
 */
#include <string.h>

#include "dp.h"

/*
 * Checksum corner cases. The UDP checksum field can never carry a computed
 * 0 (that means "no checksum"): an update that lands on 0 must write
 * 0xffff. TCP has no such rule, and from-scratch sums of non-zero data
 * never yield 0xffff, so the exact field is predictable both ways. The
 * payload's last two bytes are searched so the case really hits the edge.
 */
struct csum_edge {
	__u8 af;
	__u8 proto;
	bool reply;   /* reverse NAT instead of DNAT */
	bool edge_in; /* the edge value is in the input, not the output */
};

static void edge_pkt(struct pkt *p, const struct csum_edge *ce, enum dp_l2 l2, const char *saddr,
		     const char *daddr, __u16 sport, __u16 dport, __u16 v)
{
	const __u8 data[6] = { 'e', 'd', 'g', 'e', (__u8)(v >> 8), (__u8)v };
	const __u8 *smac = l2 == L2_BACKEND ? MAC_BACKEND : MAC_CLIENT;

	pkt__init(p);
	if (ce->af == 4) {
		pkt__eth(p, smac, MAC_NODE, 0x0800);
		pkt__ipv4(p, saddr, daddr, ce->proto, .ttl = 57, .id = 0x1234, .frag = PKT_IP_DF);
	} else {
		pkt__eth(p, smac, MAC_NODE, 0x86dd);
		pkt__ipv6(p, saddr, daddr, ce->proto, .hop_limit = 57);
	}
	if (ce->proto == IPPROTO_TCP)
		pkt__tcp(p, sport, dport, 1, 1, PKT_TH_ACK, .window = 502);
	else
		pkt__udp(p, sport, dport);
	pkt__payload(p, data, sizeof(data));
	pkt__finish(p);
}

static void csum_edge_pkts(const struct csum_edge *ce, __u16 v, struct pkt *in, struct pkt *out)
{
	const char *client = ce->af == 4 ? CLIENT4 : CLIENT6;
	const char *vip = ce->af == 4 ? VIP4 : VIP6;
	const char *be = ce->af == 4 ? BE4 : BE6;
	__u16 sport = ce->proto == IPPROTO_TCP ? SVC_PORT_TCP : SVC_PORT_UDP;
	__u16 bport = ce->proto == IPPROTO_TCP ? BE_PORT_TCP : BE_PORT_UDP;

	if (ce->reply) {
		/* from the backend (in) to the client as if from the VIP (out) */
		edge_pkt(in, ce, L2_BACKEND, be, client, bport, 43000, v);
		edge_pkt(out, ce, L2_BACKEND, vip, client, sport, 43000, v);
	} else {
		edge_pkt(in, ce, L2_CLIENT, client, vip, 43000, sport, v);
		edge_pkt(out, ce, L2_CLIENT, client, be, 43000, bport, v);
	}
}

static __u16 csum_field(const struct pkt *p)
{
	return pkt__get16(p,
			  p->l4_off + (p->l4_proto == IPPROTO_TCP ? PKT_TCP_CSUM : PKT_UDP_CSUM));
}

static void csum_edge_run(struct dp *d, const struct csum_edge *ce)
{
	static struct pkt in, out, exp, got;
	__u16 want = ce->proto == IPPROTO_UDP ? 0xffff : 0x0000;
	int verdict;
	__u32 v;

	for (v = 0; v < 0x10000; v++) {
		csum_edge_pkts(ce, (__u16)v, &in, &out);
		if (csum_field(ce->edge_in ? &in : &out) == want &&
		    csum_field(ce->edge_in ? &out : &in) != want)
			break;
	}
	if (!ASSERT_TRUE(v < 0x10000, "found a payload hitting the checksum edge"))
		return;
	if (ce->reply) {
		/* the reply needs the flow: open it with a SYN/datagram first */
		struct dp_pkt open = {
			.af = ce->af,
			.proto = ce->proto,
			.saddr = ce->af == 4 ? CLIENT4 : CLIENT6,
			.daddr = ce->af == 4 ? VIP4 : VIP6,
			.sport = 43000,
			.dport = ce->proto == IPPROTO_TCP ? SVC_PORT_TCP : SVC_PORT_UDP,
			.flags = PKT_TH_SYN,
		};

		dp__build(&exp, &open);
		if (!dp__send(d, &exp, &got, &verdict))
			return;
	}
	if (!dp__send(d, &in, &got, &verdict))
		return;
	if (verdict != dp__verdict_for(d, XDP_PASS))
		dp__fail(d, "verdict %s, expected PASS", dp__verdict_name(d, verdict));
	dp__expect_bytes(d, "output", &got, &out);
}

static const struct csum_edge csum_edges[] = {
	{ 4, IPPROTO_UDP, false, false }, { 4, IPPROTO_UDP, false, true },
	{ 4, IPPROTO_UDP, true, false },  { 6, IPPROTO_UDP, false, false },
	{ 6, IPPROTO_UDP, true, true },   { 4, IPPROTO_TCP, false, false },
	{ 4, IPPROTO_TCP, true, false },  { 6, IPPROTO_TCP, false, false },
	{ 6, IPPROTO_TCP, false, true },
};

static void csum_edges_prog(struct dp *d)
{
	for (size_t i = 0; i < ARRAY_SIZE(csum_edges); i++) {
		const struct csum_edge *ce = &csum_edges[i];
		struct dp fresh;

		/* fresh datapath per variant: they share the 5-tuple */
		if (!dp__open(&fresh, d->prog, true)) {
			dp__close(&fresh);
			return;
		}
		dp__at("IPv%u %s %s, edge in %s", ce->af, ce->proto == IPPROTO_TCP ? "TCP" : "UDP",
		       ce->reply ? "revnat" : "dnat", ce->edge_in ? "input" : "output");
		csum_edge_run(&fresh, ce);
		dp__close(&fresh);
	}
	dp__at("%s", "");
}

/* lb_checksum_edges: UDP 0 -> 0xffff and TCP 0x0000 after incremental updates */
static void lb_checksum_edges(void)
{
	dp__each_prog(0, csum_edges_prog);
}

/*
 * Per-flow consistency over three backends: every packet of a flow (SYN,
 * ACK, data, FIN) lands on the backend its SYN picked, the reply from that
 * backend comes back from the VIP, and the flows use every backend.
 */
#define CONSIST_FLOWS 60

static int pick_backend(const struct dp *d, const struct pkt *got, const struct dp_pkt *spec,
			const char *const *bes, int nbe)
{
	static struct pkt exp;
	struct dp_pkt s = *spec;
	int b = dp__which(got, spec, bes, nbe, BE_PORT_TCP);

	if (b >= 0)
		return b;
	s.daddr = bes[0];
	s.dport = BE_PORT_TCP;
	dp__build(&exp, &s);
	dp__fail(d, "output matches no backend; diff against the first one:");
	dp__hexdiff(&exp, got->buf, got->len);
	return -1;
}

static void consistency_af(struct dp *d, __u8 af)
{
	const char *const bes4[] = { BE4_M1, BE4_M2, BE4_M3 };
	const char *const bes6[] = { BE6_M1, BE6_M2, BE6_M3 };
	const char *const *bes = af == 4 ? bes4 : bes6;
	static struct pkt in, got, exp;
	int used[3] = { 0 };

	for (int f = 0; f < CONSIST_FLOWS; f++) {
		static const __u8 flags[] = { PKT_TH_SYN, PKT_TH_ACK, PKT_TH_ACK | PKT_TH_PSH,
					      PKT_TH_FIN | PKT_TH_ACK };
		struct dp_pkt s = {
			.af = af,
			.proto = IPPROTO_TCP,
			.saddr = f % 2 ? (af == 4 ? CLIENT4B : CLIENT6B) :
					 (af == 4 ? CLIENT4 : CLIENT6),
			.daddr = af == 4 ? VIP4_MULTI : VIP6_MULTI,
			.sport = (__u16)(20000 + f * 37),
			.dport = SVC_PORT_TCP,
			.seq = (__u32)f * 1000003u,
		};
		int first = -1, verdict;

		for (size_t k = 0; k < ARRAY_SIZE(flags); k++) {
			int b;

			dp__at("IPv%u flow %d packet %zu", af, f, k);
			s.flags = flags[k];
			s.data = k == 2 ? "payload of the flow" : NULL;
			dp__build(&in, &s);
			if (!dp__send(d, &in, &got, &verdict))
				return;
			if (verdict != dp__verdict_for(d, XDP_PASS)) {
				dp__fail(d, "verdict %s", dp__verdict_name(d, verdict));
				return;
			}
			b = pick_backend(d, &got, &s, bes, 3);
			if (b < 0)
				return;
			if (first < 0) {
				first = b;
				used[b]++;
			} else if (b != first) {
				dp__fail(d, "went to backend %s, the flow's SYN went to %s", bes[b],
					 bes[first]);
				return;
			}
		}
		/* the chosen backend answers; the client must see the VIP */
		{
			struct dp_pkt r = {
				.af = af,
				.proto = IPPROTO_TCP,
				.l2 = L2_BACKEND,
				.saddr = bes[first],
				.daddr = s.saddr,
				.sport = BE_PORT_TCP,
				.dport = s.sport,
				.flags = PKT_TH_ACK,
				.seq = 5,
				.ack = 6,
				.data = "reply",
			};
			struct dp_pkt rv = r;

			rv.saddr = s.daddr;
			rv.sport = SVC_PORT_TCP;
			dp__at("IPv%u flow %d reply", af, f);
			dp__build(&in, &r);
			dp__build(&exp, &rv);
			if (!dp__send(d, &in, &got, &verdict))
				return;
			if (verdict != dp__verdict_for(d, XDP_PASS))
				dp__fail(d, "reply verdict %s", dp__verdict_name(d, verdict));
			if (!dp__expect_bytes(d, "reply", &got, &exp))
				return;
		}
	}
	dp__at("IPv%u", af);
	for (int b = 0; b < 3; b++)
		if (!used[b])
			dp__fail(d, "no flow of %d went to backend %s (used %d/%d/%d)",
				 CONSIST_FLOWS, bes[b], used[0], used[1], used[2]);
	dp__at("%s", "");
}

static void consistency_prog(struct dp *d)
{
	struct dp_counts before, after;
	__u64 cnt[SLUICE_CNT__MAX] = { 0 }, drop[SLUICE_DROP__MAX] = { 0 };

	if (!dp__counts(d, &before))
		return;
	consistency_af(d, 4);
	consistency_af(d, 6);
	if (!dp__counts(d, &after))
		return;
	/* per family: 60 SYNs new, 180 packets established, 60 replies */
	cnt[SLUICE_CNT_LB_NEW] = 2 * CONSIST_FLOWS;
	cnt[SLUICE_CNT_LB_EST] = 2 * 3 * CONSIST_FLOWS;
	cnt[SLUICE_CNT_REVNAT] = 2 * CONSIST_FLOWS;
	/* no SYN|ACK is sent: each backend's answer confirms its flow */
	cnt[SLUICE_CNT_CT_CONFIRMED] = 2 * CONSIST_FLOWS;
	cnt[SLUICE_CNT_FIB_PASS] = 2 * 5 * CONSIST_FLOWS;
	if (!test__failed)
		dp__expect_counts(d, "counters over all flows", &before, &after, cnt, drop);
}

/* lb_multi_backend_consistency: every packet of a flow sticks to one backend */
static void lb_multi_backend_consistency(void)
{
	dp__each_prog(0, consistency_prog);
}

static const struct test lb_flow_tests[] = {
	TEST(lb_checksum_edges),
	TEST(lb_multi_backend_consistency),
};

const struct dp_suite dp_suite_lb_flows = {
	.name = "lb_flows",
	.tests = lb_flow_tests,
	.ntests = ARRAY_SIZE(lb_flow_tests),
};
