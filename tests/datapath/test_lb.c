// SPDX-License-Identifier: MIT
/*
 * test_lb.c - load balancing proper: DNAT of new flows, established flows
 * through conntrack, reverse NAT of replies, checksum corner cases and
 * per-flow consistency over several backends. IPv4 and IPv6, TCP and UDP.
 */
#include <stdlib.h>
#include <string.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK
#define FIN PKT_TH_FIN
#define RST PKT_TH_RST
#define PSH PKT_TH_PSH

/* SYN with MSS 1460, SACK permitted, timestamps, NOP, window scale 7. */
static const __u8 tcp_syn_options[20] = {
	0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x01,
	0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};

static void syn_options(struct pkt *p, const char *daddr, __u16 dport)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, daddr, IPPROTO_TCP, .ttl = 57, .id = 0x1234, .frag = PKT_IP_DF);
	pkt__tcp(p, 40100, dport, 77777, 0, PKT_TH_SYN, .window = 64240, .options = tcp_syn_options,
		 .options_len = sizeof(tcp_syn_options));
}

static void syn_options_in(struct pkt *p)
{
	syn_options(p, VIP4, SVC_PORT_TCP);
}

static void syn_options_out(struct pkt *p)
{
	syn_options(p, BE4, BE_PORT_TCP);
}

/* Router alert (4 bytes) and a longer NOP/timestamp-ish option block
 * (12 bytes): the L4 header sits at ihl*4, not at 20. */
static const __u8 ip_opt_ra[4] = { 0x94, 0x04, 0x00, 0x00 };
static const __u8 ip_opt_12[12] = { 0x01, 0x01, 0x44, 0x08, 0x05, 0x00,
				    0x00, 0x00, 0x00, 0x00, 0x01, 0x00 };

static void ipopt(struct pkt *p, const char *daddr, __u16 dport, const __u8 *opt, __u8 optlen,
		  __u8 proto, __u16 sport)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, daddr, proto, .ttl = 57, .id = 0x4321, .options = opt,
		  .options_len = optlen);
	if (proto == IPPROTO_TCP)
		pkt__tcp(p, sport, dport, 1, 0, PKT_TH_SYN, .window = 502);
	else
		pkt__udp(p, sport, dport);
	pkt__payload(p, "opt", 3);
}

static void ipopt_ra_in(struct pkt *p)
{
	ipopt(p, VIP4, SVC_PORT_TCP, ip_opt_ra, 4, IPPROTO_TCP, 40200);
}

static void ipopt_ra_out(struct pkt *p)
{
	ipopt(p, BE4, BE_PORT_TCP, ip_opt_ra, 4, IPPROTO_TCP, 40200);
}

static void ipopt_12_in(struct pkt *p)
{
	ipopt(p, VIP4, SVC_PORT_UDP, ip_opt_12, 12, IPPROTO_UDP, 40201);
}

static void ipopt_12_out(struct pkt *p)
{
	ipopt(p, BE4, BE_PORT_UDP, ip_opt_12, 12, IPPROTO_UDP, 40201);
}

/* Minimum-size Ethernet frames: 6 bytes of padding after tot_len. */
static void padded(struct pkt *p, const char *daddr, __u16 dport, __u8 proto)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, daddr, proto, .ttl = 57, .id = 0x1234, .frag = PKT_IP_DF);
	if (proto == IPPROTO_TCP)
		pkt__tcp(p, 40300, dport, 5, 0, PKT_TH_SYN, .window = 502);
	else
		pkt__udp(p, 40301, dport);
	pkt__finish(p);
	pkt__pad(p, 60 - p->len);
}

static void padded_tcp_in(struct pkt *p)
{
	padded(p, VIP4, SVC_PORT_TCP, IPPROTO_TCP);
}

static void padded_tcp_out(struct pkt *p)
{
	padded(p, BE4, BE_PORT_TCP, IPPROTO_TCP);
}

static void padded_udp_in(struct pkt *p)
{
	padded(p, VIP4, SVC_PORT_UDP, IPPROTO_UDP);
}

static void padded_udp_out(struct pkt *p)
{
	padded(p, BE4, BE_PORT_UDP, IPPROTO_UDP);
}

/* IPv6 with a non-zero traffic class and flow label, which DNAT keeps. */
static void v6_flowlabel(struct pkt *p, const char *daddr, __u16 dport)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x86dd);
	pkt__ipv6(p, CLIENT6, daddr, IPPROTO_TCP, .tclass = 0x28, .flow = 0xabcde, .hop_limit = 57);
	pkt__tcp(p, 40400, dport, 123, 0, PKT_TH_SYN, .window = 502);
}

static void v6_flowlabel_in(struct pkt *p)
{
	v6_flowlabel(p, VIP6, SVC_PORT_TCP);
}

static void v6_flowlabel_out(struct pkt *p)
{
	v6_flowlabel(p, BE6, BE_PORT_TCP);
}

/* 1400-byte payloads: beyond tc's linear pull (256 bytes) and large
 * enough that a checksum update over the wrong range would show. */
static void big(struct pkt *p, __u8 af, __u8 proto, enum dp_l2 l2, const char *saddr,
		const char *daddr, __u16 sport, __u16 dport)
{
	static __u8 data[1400];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (__u8)(i * 7 + 3);
	pkt__eth(p, l2 == L2_BACKEND ? MAC_BACKEND : MAC_CLIENT, MAC_NODE,
		 af == 4 ? 0x0800 : 0x86dd);
	if (af == 4)
		pkt__ipv4(p, saddr, daddr, proto, .ttl = 57, .id = 0x2222, .frag = PKT_IP_DF);
	else
		pkt__ipv6(p, saddr, daddr, proto, .hop_limit = 57);
	if (proto == IPPROTO_TCP)
		pkt__tcp(p, sport, dport, 1, 1, PKT_TH_ACK | PKT_TH_PSH, .window = 502);
	else
		pkt__udp(p, sport, dport);
	pkt__payload(p, data, sizeof(data));
}

static void big4_syn_in(struct pkt *p)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, VIP4, IPPROTO_TCP, .ttl = 57, .id = 0x2222, .frag = PKT_IP_DF);
	pkt__tcp(p, 44000, 80, 0, 0, PKT_TH_SYN, .window = 502);
}

static void big4_syn_out(struct pkt *p)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, BE4, IPPROTO_TCP, .ttl = 57, .id = 0x2222, .frag = PKT_IP_DF);
	pkt__tcp(p, 44000, 8080, 0, 0, PKT_TH_SYN, .window = 502);
}

static void big4_in(struct pkt *p)
{
	big(p, 4, IPPROTO_TCP, L2_CLIENT, CLIENT4, VIP4, 44000, 80);
}

static void big4_out(struct pkt *p)
{
	big(p, 4, IPPROTO_TCP, L2_CLIENT, CLIENT4, BE4, 44000, 8080);
}

static void big4_reply_in(struct pkt *p)
{
	big(p, 4, IPPROTO_TCP, L2_BACKEND, BE4, CLIENT4, 8080, 44000);
}

static void big4_reply_out(struct pkt *p)
{
	big(p, 4, IPPROTO_TCP, L2_BACKEND, VIP4, CLIENT4, 80, 44000);
}

static void big6_in(struct pkt *p)
{
	big(p, 6, IPPROTO_UDP, L2_CLIENT, CLIENT6, VIP6, 44001, 53);
}

static void big6_out(struct pkt *p)
{
	big(p, 6, IPPROTO_UDP, L2_CLIENT, CLIENT6, BE6, 44001, 5353);
}

static void big6_reply_in(struct pkt *p)
{
	big(p, 6, IPPROTO_UDP, L2_BACKEND, BE6, CLIENT6, 5353, 44001);
}

static void big6_reply_out(struct pkt *p)
{
	big(p, 6, IPPROTO_UDP, L2_BACKEND, VIP6, CLIENT6, 53, 44001);
}

static const struct dp_case lb_cases[] = {
	{
		.name = "lb_v4_tcp_syn_dnat",
		.desc = "IPv4 TCP SYN to a one-backend VIP: daddr/dport become the backend's, checksums updated",
		.steps = {
			NEW_FLOW(TCP4(CLIENT4, VIP4, 40000, 80, SYN, .seq = 1000),
				 TCP4(CLIENT4, BE4, 40000, 8080, SYN, .seq = 1000), S_T4),
		},
	},
	{
		.name = "lb_v4_udp_dnat",
		.desc = "IPv4 UDP datagram to a VIP is DNATed with a correct UDP checksum",
		.steps = {
			NEW_FLOW(UDP4(CLIENT4, VIP4, 40001, 53, .data = "query?"),
				 UDP4(CLIENT4, BE4, 40001, 5353, .data = "query?"), S_U4),
		},
	},
	{
		.name = "lb_v4_udp_csum0_dnat",
		.desc = "IPv4 UDP with checksum 0 (none) keeps checksum 0 after DNAT",
		.steps = {
			NEW_FLOW(UDP4(CLIENT4, VIP4, 40002, 53, .data = "nocsum", .csum0 = true),
				 UDP4(CLIENT4, BE4, 40002, 5353, .data = "nocsum", .csum0 = true),
				 S_U4),
		},
	},
	{
		.name = "lb_v6_tcp_syn_dnat",
		.desc = "IPv6 TCP SYN to a one-backend VIP is DNATed; pseudo-header checksum updated",
		.steps = {
			NEW_FLOW(TCP6(CLIENT6, VIP6, 40000, 80, SYN, .seq = 0xfffffff0),
				 TCP6(CLIENT6, BE6, 40000, 8080, SYN, .seq = 0xfffffff0), S_T6),
		},
	},
	{
		.name = "lb_v6_udp_dnat",
		.desc = "IPv6 UDP datagram to a VIP is DNATed",
		.steps = {
			NEW_FLOW(UDP6(CLIENT6, VIP6, 40001, 53, .data = "query6"),
				 UDP6(CLIENT6, BE6, 40001, 5353, .data = "query6"), S_U6),
		},
	},
	{
		.name = "lb_v6_tcp_flowlabel_kept",
		.desc = "IPv6 traffic class and flow label survive DNAT untouched",
		.steps = {
			NEW_FLOW(CUSTOM(v6_flowlabel_in), CUSTOM(v6_flowlabel_out), S_T6),
		},
	},
	{
		.name = "lb_v4_tcp_established",
		.desc = "SYN creates the flow; ACK, data and FIN|ACK hit conntrack (LB_EST), same backend",
		.steps = {
			NEW_FLOW(TCP4(CLIENT4, VIP4, 41000, 80, SYN, .seq = 10),
				 TCP4(CLIENT4, BE4, 41000, 8080, SYN, .seq = 10), S_T4),
			EST_FLOW(TCP4(CLIENT4, VIP4, 41000, 80, ACK, .seq = 11, .ack = 501),
				 TCP4(CLIENT4, BE4, 41000, 8080, ACK, .seq = 11, .ack = 501), S_T4),
			EST_FLOW(TCP4(CLIENT4, VIP4, 41000, 80, ACK | PSH, .seq = 11, .ack = 501,
				      .data = "GET / HTTP/1.0\r\n\r\n"),
				 TCP4(CLIENT4, BE4, 41000, 8080, ACK | PSH, .seq = 11, .ack = 501,
				      .data = "GET / HTTP/1.0\r\n\r\n"), S_T4),
			EST_FLOW(TCP4(CLIENT4, VIP4, 41000, 80, FIN | ACK, .seq = 29, .ack = 501),
				 TCP4(CLIENT4, BE4, 41000, 8080, FIN | ACK, .seq = 29, .ack = 501),
				 S_T4),
		},
	},
	{
		.name = "lb_v6_tcp_established",
		.desc = "IPv6: SYN then ACK and data of the same flow go to the same backend via conntrack",
		.steps = {
			NEW_FLOW(TCP6(CLIENT6, VIP6, 41000, 80, SYN, .seq = 10),
				 TCP6(CLIENT6, BE6, 41000, 8080, SYN, .seq = 10), S_T6),
			EST_FLOW(TCP6(CLIENT6, VIP6, 41000, 80, ACK, .seq = 11, .ack = 9),
				 TCP6(CLIENT6, BE6, 41000, 8080, ACK, .seq = 11, .ack = 9), S_T6),
			EST_FLOW(TCP6(CLIENT6, VIP6, 41000, 80, ACK | PSH, .seq = 11, .ack = 9,
				      .data = "hello, world"),
				 TCP6(CLIENT6, BE6, 41000, 8080, ACK | PSH, .seq = 11, .ack = 9,
				      .data = "hello, world"), S_T6),
		},
	},
	{
		.name = "lb_v4_udp_established",
		.desc = "second datagram of a UDP flow is established; a checksum-0 datagram of it stays 0",
		.steps = {
			NEW_FLOW(UDP4(CLIENT4, VIP4, 41001, 53, .data = "one"),
				 UDP4(CLIENT4, BE4, 41001, 5353, .data = "one"), S_U4),
			EST_FLOW(UDP4(CLIENT4, VIP4, 41001, 53, .data = "two!"),
				 UDP4(CLIENT4, BE4, 41001, 5353, .data = "two!"), S_U4),
			EST_FLOW(UDP4(CLIENT4, VIP4, 41001, 53, .data = "three", .csum0 = true),
				 UDP4(CLIENT4, BE4, 41001, 5353, .data = "three", .csum0 = true),
				 S_U4),
		},
	},
	{
		.name = "lb_v4_tcp_syn_retransmit_established",
		.desc = "a retransmitted SYN of a live flow (no FIN/RST seen) is established, not re-balanced",
		.steps = {
			NEW_FLOW(TCP4(CLIENT4, VIP4, 41002, 80, SYN, .seq = 7),
				 TCP4(CLIENT4, BE4, 41002, 8080, SYN, .seq = 7), S_T4),
			EST_FLOW(TCP4(CLIENT4, VIP4, 41002, 80, SYN, .seq = 7),
				 TCP4(CLIENT4, BE4, 41002, 8080, SYN, .seq = 7), S_T4),
		},
	},
	{
		.name = "lb_v4_tcp_syn_after_fin_rebalanced",
		.desc = "a SYN (no ACK) on a flow that saw FIN is balanced as a new flow (LB_NEW, flows++)",
		.steps = {
			NEW_FLOW(TCP4(CLIENT4, VIP4, 41003, 80, SYN, .seq = 100),
				 TCP4(CLIENT4, BE4, 41003, 8080, SYN, .seq = 100), S_T4),
			EST_FLOW(TCP4(CLIENT4, VIP4, 41003, 80, FIN | ACK, .seq = 101, .ack = 1),
				 TCP4(CLIENT4, BE4, 41003, 8080, FIN | ACK, .seq = 101, .ack = 1),
				 S_T4),
			NEW_FLOW(TCP4(CLIENT4, VIP4, 41003, 80, SYN, .seq = 90000),
				 TCP4(CLIENT4, BE4, 41003, 8080, SYN, .seq = 90000), S_T4),
		},
	},
	{
		.name = "lb_v6_tcp_syn_after_rst_rebalanced",
		.desc = "IPv6: a SYN on a flow that saw RST is balanced as a new flow",
		.steps = {
			NEW_FLOW(TCP6(CLIENT6, VIP6, 41004, 80, SYN, .seq = 100),
				 TCP6(CLIENT6, BE6, 41004, 8080, SYN, .seq = 100), S_T6),
			EST_FLOW(TCP6(CLIENT6, VIP6, 41004, 80, RST, .seq = 101),
				 TCP6(CLIENT6, BE6, 41004, 8080, RST, .seq = 101), S_T6),
			NEW_FLOW(TCP6(CLIENT6, VIP6, 41004, 80, SYN, .seq = 5000),
				 TCP6(CLIENT6, BE6, 41004, 8080, SYN, .seq = 5000), S_T6),
		},
	},
	{
		.name = "lb_v4_tcp_syn_after_backend_rst_rebalanced",
		.desc = "a SYN on a flow whose backend answered with RST (reply direction) is balanced as a new flow",
		.steps = {
			NEW_FLOW(TCP4(CLIENT4, VIP4, 41005, 80, SYN, .seq = 100),
				 TCP4(CLIENT4, BE4, 41005, 8080, SYN, .seq = 100), S_T4),
			REV_NAT(TCP4(BE4, CLIENT4, 8080, 41005, RST | ACK, .seq = 0, .ack = 101,
				     .l2 = L2_BACKEND),
				TCP4(VIP4, CLIENT4, 80, 41005, RST | ACK, .seq = 0, .ack = 101,
				     .l2 = L2_BACKEND), S_T4),
			NEW_FLOW(TCP4(CLIENT4, VIP4, 41005, 80, SYN, .seq = 7000),
				 TCP4(CLIENT4, BE4, 41005, 8080, SYN, .seq = 7000), S_T4),
		},
	},
	{
		.name = "lb_v4_tcp_revnat",
		.desc = "the backend's SYN|ACK is rewritten to come from VIP:80 (exact bytes); client ACK established and confirms the flow",
		.steps = {
			NEW_FLOW(TCP4(CLIENT4, VIP4, 42000, 80, SYN, .seq = 1),
				 TCP4(CLIENT4, BE4, 42000, 8080, SYN, .seq = 1), S_T4),
			REV_NAT(TCP4(BE4, CLIENT4, 8080, 42000, SYN | ACK, .seq = 9000, .ack = 2,
				     .l2 = L2_BACKEND),
				TCP4(VIP4, CLIENT4, 80, 42000, SYN | ACK, .seq = 9000, .ack = 2,
				     .l2 = L2_BACKEND), S_T4),
			EST_CONFIRMS(TCP4(CLIENT4, VIP4, 42000, 80, ACK, .seq = 2, .ack = 9001),
				     TCP4(CLIENT4, BE4, 42000, 8080, ACK, .seq = 2, .ack = 9001),
				     S_T4),
			REV_NAT(TCP4(BE4, CLIENT4, 8080, 42000, ACK | PSH, .seq = 9001, .ack = 2,
				     .l2 = L2_BACKEND, .data = "HTTP/1.0 200 OK\r\n"),
				TCP4(VIP4, CLIENT4, 80, 42000, ACK | PSH, .seq = 9001, .ack = 2,
				     .l2 = L2_BACKEND, .data = "HTTP/1.0 200 OK\r\n"), S_T4),
		},
	},
	{
		.name = "lb_v6_tcp_revnat",
		.desc = "IPv6: the backend's reply is rewritten to come from [VIP]:80 (exact bytes)",
		.steps = {
			NEW_FLOW(TCP6(CLIENT6, VIP6, 42000, 80, SYN, .seq = 1),
				 TCP6(CLIENT6, BE6, 42000, 8080, SYN, .seq = 1), S_T6),
			REV_NAT(TCP6(BE6, CLIENT6, 8080, 42000, SYN | ACK, .seq = 7, .ack = 2,
				     .l2 = L2_BACKEND),
				TCP6(VIP6, CLIENT6, 80, 42000, SYN | ACK, .seq = 7, .ack = 2,
				     .l2 = L2_BACKEND), S_T6),
		},
	},
	{
		.name = "lb_v4_udp_revnat",
		.desc = "UDP replies are reverse-NATed; a checksum-0 reply keeps checksum 0",
		.steps = {
			NEW_FLOW(UDP4(CLIENT4, VIP4, 42001, 53, .data = "ask"),
				 UDP4(CLIENT4, BE4, 42001, 5353, .data = "ask"), S_U4),
			REV_CONFIRMS(UDP4(BE4, CLIENT4, 5353, 42001, .data = "answer", .l2 = L2_BACKEND),
				UDP4(VIP4, CLIENT4, 53, 42001, .data = "answer", .l2 = L2_BACKEND),
				S_U4),
			REV_NAT(UDP4(BE4, CLIENT4, 5353, 42001, .data = "again", .csum0 = true,
				     .l2 = L2_BACKEND),
				UDP4(VIP4, CLIENT4, 53, 42001, .data = "again", .csum0 = true,
				     .l2 = L2_BACKEND), S_U4),
		},
	},
	{
		.name = "lb_v6_udp_revnat",
		.desc = "IPv6 UDP replies are reverse-NATed to [VIP]:53",
		.steps = {
			NEW_FLOW(UDP6(CLIENT6, VIP6, 42001, 53, .data = "ask"),
				 UDP6(CLIENT6, BE6, 42001, 5353, .data = "ask"), S_U6),
			REV_CONFIRMS(UDP6(BE6, CLIENT6, 5353, 42001, .data = "answer6", .l2 = L2_BACKEND),
				UDP6(VIP6, CLIENT6, 53, 42001, .data = "answer6", .l2 = L2_BACKEND),
				S_U6),
		},
	},
	{
		.name = "lb_reply_without_flow_passes",
		.desc = "a backend's packet to a client it has no flow with passes unchanged (no REVNAT)",
		.steps = {
			PASSES(TCP4(BE4, CLIENT4, 8080, 42002, SYN | ACK, .l2 = L2_BACKEND)),
			PASSES(UDP6(BE6, CLIENT6, 5353, 42002, .data = "x", .l2 = L2_BACKEND)),
			/* right backend, wrong client port: still no flow */
			NEW_FLOW(UDP4(CLIENT4, VIP4, 42003, 53, .data = "q"),
				 UDP4(CLIENT4, BE4, 42003, 5353, .data = "q"), S_U4),
			PASSES(UDP4(BE4, CLIENT4, 5353, 42004, .data = "a", .l2 = L2_BACKEND)),
		},
	},
	{
		.name = "lb_v4_tcp_options_dnat",
		.desc = "TCP options (doff 10) are kept and the L4 checksum covers them",
		.steps = {
			NEW_FLOW(CUSTOM(syn_options_in), CUSTOM(syn_options_out), S_T4),
		},
	},
	{
		.name = "lb_v4_ip_options_dnat",
		.desc = "IPv4 with options (ihl 6 and 8): L4 found at ihl*4 and balanced correctly",
		.steps = {
			NEW_FLOW(CUSTOM(ipopt_ra_in), CUSTOM(ipopt_ra_out), S_T4),
			NEW_FLOW(CUSTOM(ipopt_12_in), CUSTOM(ipopt_12_out), S_U4),
		},
	},
	{
		.name = "lb_large_payload_nat",
		.desc = "1400-byte TCP (v4) and UDP (v6) payloads: DNAT and reverse NAT keep checksums exact",
		.steps = {
			NEW_FLOW(CUSTOM(big4_syn_in), CUSTOM(big4_syn_out), S_T4),
			EST_FLOW(CUSTOM(big4_in), CUSTOM(big4_out), S_T4),
			/* the backend's data confirms (no SYN|ACK was sent) */
			REV_CONFIRMS(CUSTOM(big4_reply_in), CUSTOM(big4_reply_out), S_T4),
			NEW_FLOW(CUSTOM(big6_in), CUSTOM(big6_out), S_U6),
			REV_CONFIRMS(CUSTOM(big6_reply_in), CUSTOM(big6_reply_out), S_U6),
		},
	},
	{
		.name = "lb_v4_ethernet_padding_dnat",
		.desc = "60-byte frames with padding after tot_len are balanced; padding kept, not summed",
		.steps = {
			NEW_FLOW(CUSTOM(padded_tcp_in), CUSTOM(padded_tcp_out), S_T4),
			NEW_FLOW(CUSTOM(padded_udp_in), CUSTOM(padded_udp_out), S_U4),
		},
	},
};

const struct dp_suite dp_suite_lb = {
	.name = "lb",
	.cases = lb_cases,
	.ncases = ARRAY_SIZE(lb_cases),
};
