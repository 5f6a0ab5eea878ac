// SPDX-License-Identifier: MIT
/*
 * test_csum.c - XDP input whose L4 checksum is partial, as a local sender
 * with TX checksum offload hands it to a veth (CHECKSUM_PARTIAL: the field
 * holds the folded pseudo-header sum, bpf/lib/csum_xdp.h). The NAT must
 * leave a seed of the new addresses (the kernel, which keeps the skb
 * partial, completes it), counted as csum_partial; a complete checksum
 * that happens to equal the seed is still updated as complete. The
 * redirect case (the seed completed in XDP) is in test_fwd.c. XDP only:
 * a test run's skb is never CHECKSUM_PARTIAL, and tc's skb helpers follow
 * the skb's own state.
 */
#include <stdlib.h>
#include <string.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK

/* clang-format off */
#define P_NEW(in_, out_, svc_)                                                 \
	{ .in = in_, .out = out_, .verdict = XDP_PASS,                         \
	  .cnt = { C(LB_NEW), C(FIB_PASS), C(CSUM_PARTIAL) }, .svc = svc_,     \
	  .acct = ACCT_NEW }
#define P_REV_CONFIRMS(in_, out_, svc_)                                        \
	{ .in = in_, .out = out_, .verdict = XDP_PASS,                         \
	  .cnt = { C(REVNAT), C(FIB_PASS), C(CT_CONFIRMED), C(CSUM_PARTIAL) }, \
	  .svc = svc_, .acct = ACCT_PKT }
#define P_REV(in_, out_, svc_)                                                 \
	{ .in = in_, .out = out_, .verdict = XDP_PASS,                         \
	  .cnt = { C(REVNAT), C(FIB_PASS), C(CSUM_PARTIAL) }, .svc = svc_,     \
	  .acct = ACCT_PKT }
#define P_EST_CONFIRMS(in_, out_, svc_)                                        \
	{ .in = in_, .out = out_, .verdict = XDP_PASS,                         \
	  .cnt = { C(LB_EST), C(FIB_PASS), C(CT_CONFIRMED), C(CSUM_PARTIAL) }, \
	  .svc = svc_, .acct = ACCT_PKT }
/* clang-format on */

/*
 * A complete TCP checksum equal to the seed of its own packet: a 2-byte
 * payload word picked so. Changing a word by d lowers the checksum by d
 * (one's complement), so d = checksum - seed of the packet with word 0.
 */
static void collision_tcp(struct pkt *p, const char *daddr, __u16 dport, __u16 word)
{
	__u8 payload[2] = { (__u8)(word >> 8), (__u8)word };

	pkt__init(p);
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, daddr, IPPROTO_TCP, .ttl = 57, .id = 0x1234, .frag = PKT_IP_DF);
	pkt__tcp(p, 40700, dport, 5, 0, SYN, .window = 502);
	pkt__payload(p, payload, sizeof(payload));
	pkt__finish(p);
}

static __u16 collision_word(void)
{
	struct pkt p, seeded;
	__u16 csum, seed;
	__u32 d;

	collision_tcp(&p, VIP4, SVC_PORT_TCP, 0);
	seeded = p;
	pkt__l4_seed(&seeded);
	csum = pkt__get16(&p, p.l4_off + PKT_TCP_CSUM);
	seed = pkt__get16(&seeded, seeded.l4_off + PKT_TCP_CSUM);
	d = (__u32)csum + (__u16)~seed;
	d = (d & 0xffff) + (d >> 16);
	collision_tcp(&p, VIP4, SVC_PORT_TCP, (__u16)d);
	seeded = p;
	pkt__l4_seed(&seeded);
	if (memcmp(p.buf, seeded.buf, p.len))
		abort(); /* test bug: the word does not make checksum == seed */
	return (__u16)d;
}

static void collision_in(struct pkt *p)
{
	collision_tcp(p, VIP4, SVC_PORT_TCP, collision_word());
}

static void collision_out(struct pkt *p)
{
	collision_tcp(p, BE4, BE_PORT_TCP, collision_word());
}

static const struct dp_case csum_cases[] = {
	{
		.name = "csum_partial_v4_tcp",
		.desc = "seeded TCP: DNAT, reverse NAT and the confirming ACK leave seeds of the new addresses",
		.progs = DP_XDP,
		.steps = {
			P_NEW(TCP4(CLIENT4, VIP4, 40100, 80, SYN, .seq = 1, .seed = true),
			      TCP4(CLIENT4, BE4, 40100, 8080, SYN, .seq = 1, .seed = true), S_T4),
			P_REV(TCP4(BE4, CLIENT4, 8080, 40100, SYN | ACK, .seq = 9, .ack = 2,
				   .l2 = L2_BACKEND, .seed = true),
			      TCP4(VIP4, CLIENT4, 80, 40100, SYN | ACK, .seq = 9, .ack = 2,
				   .l2 = L2_BACKEND, .seed = true), S_T4),
			P_EST_CONFIRMS(TCP4(CLIENT4, VIP4, 40100, 80, ACK, .seq = 2, .ack = 10,
					    .data = "GET / HTTP/1.0\r\n\r\n", .seed = true),
				       TCP4(CLIENT4, BE4, 40100, 8080, ACK, .seq = 2, .ack = 10,
					    .data = "GET / HTTP/1.0\r\n\r\n", .seed = true), S_T4),
		},
	},
	{
		.name = "csum_partial_v6_tcp",
		.desc = "seeded IPv6 TCP: the seed moves with all 128 bits of each address",
		.progs = DP_XDP,
		.steps = {
			P_NEW(TCP6(CLIENT6, VIP6, 40101, 80, SYN, .seq = 1, .seed = true),
			      TCP6(CLIENT6, BE6, 40101, 8080, SYN, .seq = 1, .seed = true), S_T6),
			P_REV(TCP6(BE6, CLIENT6, 8080, 40101, SYN | ACK, .seq = 9, .ack = 2,
				   .l2 = L2_BACKEND, .data = "x", .seed = true),
			      TCP6(VIP6, CLIENT6, 80, 40101, SYN | ACK, .seq = 9, .ack = 2,
				   .l2 = L2_BACKEND, .data = "x", .seed = true), S_T6),
		},
	},
	{
		.name = "csum_partial_v4_udp",
		.desc = "seeded UDP: the query's and the answer's seeds follow the rewrite",
		.progs = DP_XDP,
		.steps = {
			P_NEW(UDP4(CLIENT4, VIP4, 40102, 53, .data = "query", .seed = true),
			      UDP4(CLIENT4, BE4, 40102, 5353, .data = "query", .seed = true), S_U4),
			P_REV_CONFIRMS(UDP4(BE4, CLIENT4, 5353, 40102, .l2 = L2_BACKEND,
					    .data = "answer!", .seed = true),
				       UDP4(VIP4, CLIENT4, 53, 40102, .l2 = L2_BACKEND,
					    .data = "answer!", .seed = true), S_U4),
		},
	},
	{
		.name = "csum_partial_v6_udp",
		.desc = "seeded IPv6 UDP, odd payload length",
		.progs = DP_XDP,
		.steps = {
			P_NEW(UDP6(CLIENT6, VIP6, 40103, 53, .data = "odd", .seed = true),
			      UDP6(CLIENT6, BE6, 40103, 5353, .data = "odd", .seed = true), S_U6),
			P_REV_CONFIRMS(UDP6(BE6, CLIENT6, 5353, 40103, .l2 = L2_BACKEND,
					    .data = "even", .seed = true),
				       UDP6(VIP6, CLIENT6, 53, 40103, .l2 = L2_BACKEND,
					    .data = "even", .seed = true), S_U6),
		},
	},
	{
		.name = "csum_complete_equal_to_seed",
		.desc = "a complete checksum that equals the seed verifies as complete: updated as one",
		.progs = DP_XDP,
		.steps = {
			NEW_FLOW(CUSTOM(collision_in), CUSTOM(collision_out), S_T4),
		},
	},
	{
		.name = "csum_partial_pass",
		.desc = "a seeded packet to no service passes byte-identical, not counted as partial",
		.progs = DP_XDP,
		.steps = {
			PASSES(TCP4(CLIENT4, OTHER4, 40104, 80, SYN, .seed = true)),
		},
	},
};

const struct dp_suite dp_suite_csum = {
	.name = "csum",
	.cases = csum_cases,
	.ncases = ARRAY_SIZE(csum_cases),
};
