// SPDX-License-Identifier: MIT
/*
 * test_refuse.c - a service without backends refuses at once: TCP gets a
 * RST written in place, UDP an ICMP / ICMPv6 port unreachable quoting the
 * datagram, both sent back out (XDP_TX / TC_ACT_REDIRECT) and counted
 * REFUSED. The expected answers are built here from the documented format
 * (MACs and addresses swapped, TTL 64, IPv4 id 0, ...), not from the input.
 */
#include <string.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define FIN PKT_TH_FIN
#define ACK PKT_TH_ACK
#define RST PKT_TH_RST
#define PSH PKT_TH_PSH

#define RST4(sp, dp_, fl, s, a)                                                      \
	TCP4(VIP4_EMPTY, CLIENT4, sp, dp_, fl, .seq = s, .ack = a, .l2 = L2_REFUSAL, \
	     .refusal = true)
#define RST6(sp, dp_, fl, s, a)                                                      \
	TCP6(VIP6_EMPTY, CLIENT6, sp, dp_, fl, .seq = s, .ack = a, .l2 = L2_REFUSAL, \
	     .refusal = true)

/* SYN carrying MSS/SACK/TS options and 4 bytes of TFO data, with a
 * sequence number that makes seq + len + SYN wrap. */
static const __u8 syn_opts[12] = { 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02,
				   0x01, 0x01, 0x01, 0x03, 0x03, 0x07 };

static void syn_options_tfo(struct pkt *p)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, VIP4_EMPTY, IPPROTO_TCP, .ttl = 57, .id = 0x1234, .frag = PKT_IP_DF,
		  .tos = 0);
	pkt__tcp(p, 40010, 80, 0xfffffffd, 0, PKT_TH_SYN, .window = 64240, .options = syn_opts,
		 .options_len = sizeof(syn_opts));
	pkt__payload(p, "tfo!", 4);
}

/* The documented ICMP answers: from the VIP to the client, quoting the
 * first 28 (IPv4) / 48 (IPv6) bytes of the datagram as received. */
static void icmp4_unreach(struct pkt *p, const struct dp_pkt *orig_spec)
{
	struct pkt orig;

	dp__build(&orig, orig_spec);
	pkt__eth(p, MAC_NODE, MAC_CLIENT, 0x0800);
	pkt__ipv4(p, orig_spec->daddr, orig_spec->saddr, IPPROTO_ICMP, .ttl = 64, .id = 0,
		  .frag = 0);
	pkt__icmp4(p, 3, 3, 0);
	pkt__payload(p, orig.buf + orig.l3_off, 28);
}

static void icmp6_unreach(struct pkt *p, const struct dp_pkt *orig_spec)
{
	struct pkt orig;

	dp__build(&orig, orig_spec);
	pkt__eth(p, MAC_NODE, MAC_CLIENT, 0x86dd);
	pkt__ipv6(p, orig_spec->daddr, orig_spec->saddr, IPPROTO_ICMPV6, .hop_limit = 64);
	pkt__icmp6(p, 1, 4, 0);
	pkt__payload(p, orig.buf + orig.l3_off, 48);
}

#define U4_LONG UDP4(CLIENT4, VIP4_EMPTY, 40020, 53, .data = "is anybody out there?")
#define U4_BARE UDP4(CLIENT4, VIP4_EMPTY, 40021, 53)
#define U4_CSUM0 UDP4(CLIENT4, VIP4_EMPTY, 40022, 53, .data = "no checksum", .csum0 = true)
#define U6_LONG UDP6(CLIENT6, VIP6_EMPTY, 40020, 53, .data = "is anybody out there, v6?")
#define U6_BARE UDP6(CLIENT6, VIP6_EMPTY, 40021, 53)

static void u4_long_icmp(struct pkt *p)
{
	icmp4_unreach(p, U4_LONG);
}

static void u4_bare_icmp(struct pkt *p)
{
	icmp4_unreach(p, U4_BARE);
}

static void u4_csum0_icmp(struct pkt *p)
{
	icmp4_unreach(p, U4_CSUM0);
}

static void u6_long_icmp(struct pkt *p)
{
	icmp6_unreach(p, U6_LONG);
}

static void u6_bare_icmp(struct pkt *p)
{
	icmp6_unreach(p, U6_BARE);
}

static void udp4_options_empty(struct pkt *p)
{
	static const __u8 ra[4] = { 0x94, 0x04, 0, 0 };

	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, VIP4_EMPTY, IPPROTO_UDP, .ttl = 57, .options = ra,
		  .options_len = sizeof(ra));
	pkt__udp(p, 40030, 53);
	pkt__payload(p, "opts", 4);
}

static const struct dp_case refuse_cases[] = {
	{
		.name = "refuse_v4_tcp_syn_rst",
		.desc = "SYN to a service without backends: RST|ACK, seq 0, ack = seq+1, 54-byte frame",
		.steps = {
			REFUSES(TCP4(CLIENT4, VIP4_EMPTY, 40000, 80, SYN, .seq = 1000),
				RST4(80, 40000, RST | ACK, 0, 1001), S_T4_EMPTY),
			/* nothing is remembered: the retry is refused the same way */
			REFUSES(TCP4(CLIENT4, VIP4_EMPTY, 40000, 80, SYN, .seq = 1000),
				RST4(80, 40000, RST | ACK, 0, 1001), S_T4_EMPTY),
		},
	},
	{
		.name = "refuse_v4_tcp_ack_rst",
		.desc = "a segment with ACK (and payload) gets RST with seq = its ack_seq, ack 0, no payload",
		.steps = {
			REFUSES(TCP4(CLIENT4, VIP4_EMPTY, 40001, 80, ACK | PSH, .seq = 5000,
				     .ack = 7000, .data = "GET / HTTP/1.1\r\n"),
				RST4(80, 40001, RST, 7000, 0), S_T4_EMPTY),
			REFUSES(TCP4(CLIENT4, VIP4_EMPTY, 40002, 80, SYN | ACK, .seq = 1,
				     .ack = 0xdeadbeef),
				RST4(80, 40002, RST, 0xdeadbeef, 0), S_T4_EMPTY),
		},
	},
	{
		.name = "refuse_v4_tcp_fin_payload_rst",
		.desc = "FIN without ACK carrying 3 bytes: RST|ACK with ack = seq + 3 + 1",
		.steps = {
			REFUSES(TCP4(CLIENT4, VIP4_EMPTY, 40003, 80, FIN, .seq = 100, .data = "bye"),
				RST4(80, 40003, RST | ACK, 0, 104), S_T4_EMPTY),
		},
	},
	{
		.name = "refuse_v4_tcp_syn_options_rst",
		.desc = "SYN with options and TFO data: RST is 54 bytes, doff 5, ack wraps past 2^32",
		.steps = {
			REFUSES(CUSTOM(syn_options_tfo), RST4(80, 40010, RST | ACK, 0, 2), S_T4_EMPTY),
		},
	},
	{
		.name = "refuse_v6_tcp_syn_rst",
		.desc = "IPv6 SYN (seq 0xffffffff) to a service without backends: RST|ACK ack 0, 74 bytes",
		.steps = {
			REFUSES(TCP6(CLIENT6, VIP6_EMPTY, 40000, 80, SYN, .seq = 0xffffffff),
				RST6(80, 40000, RST | ACK, 0, 0), S_T6_EMPTY),
		},
	},
	{
		.name = "refuse_v6_tcp_ack_rst",
		.desc = "IPv6 ACK segment with payload: RST with seq = its ack_seq",
		.steps = {
			REFUSES(TCP6(CLIENT6, VIP6_EMPTY, 40001, 80, ACK | PSH, .seq = 10, .ack = 20,
				     .data = "data data data"),
				RST6(80, 40001, RST, 20, 0), S_T6_EMPTY),
		},
	},
	{
		.name = "refuse_tcp_rst_not_answered",
		.desc = "a RST to a service without backends is dropped (counted REFUSED), never answered",
		.steps = {
			{ .in = TCP4(CLIENT4, VIP4_EMPTY, 40004, 80, RST, .seq = 9),
			  .verdict = XDP_DROP, .cnt = { C(REFUSED) }, .svc = S_T4_EMPTY,
			  .acct = ACCT_REFUSED },
			{ .in = TCP6(CLIENT6, VIP6_EMPTY, 40004, 80, RST | ACK, .seq = 9, .ack = 1),
			  .verdict = XDP_DROP, .cnt = { C(REFUSED) }, .svc = S_T6_EMPTY,
			  .acct = ACCT_REFUSED },
		},
	},
	{
		.name = "refuse_v4_udp_icmp_unreachable",
		.desc = "UDP to a service without backends: ICMP 3/3 from the VIP quoting 28 bytes, 70-byte frame",
		.steps = {
			REFUSES(U4_LONG, CUSTOM(u4_long_icmp), S_U4_EMPTY),
			REFUSES(U4_BARE, CUSTOM(u4_bare_icmp), S_U4_EMPTY),
			REFUSES(U4_CSUM0, CUSTOM(u4_csum0_icmp), S_U4_EMPTY),
		},
	},
	{
		.name = "refuse_v6_udp_icmp6_unreachable",
		.desc = "IPv6 UDP to a service without backends: ICMPv6 1/4 quoting 48 bytes, 110-byte frame",
		.steps = {
			REFUSES(U6_LONG, CUSTOM(u6_long_icmp), S_U6_EMPTY),
			REFUSES(U6_BARE, CUSTOM(u6_bare_icmp), S_U6_EMPTY),
		},
	},
	{
		.name = "refuse_v4_udp_ip_options_fails",
		.desc = "IPv4 UDP with options to a service without backends: dropped REFUSE_FAILED, not counted refused",
		.steps = {
			{ .in = CUSTOM(udp4_options_empty), .verdict = XDP_DROP,
			  .drop = { D(REFUSE_FAILED) }, .svc = S_U4_EMPTY, .acct = ACCT_SEEN },
		},
	},
};

const struct dp_suite dp_suite_refuse = {
	.name = "refuse",
	.cases = refuse_cases,
	.ncases = ARRAY_SIZE(refuse_cases),
};
