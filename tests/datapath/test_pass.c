// SPDX-License-Identifier: MIT
/*
 * test_pass.c - everything that is not service traffic passes
 * byte-identical and is counted PASS: non-IP ethertypes, VLAN-tagged
 * frames, other addresses/ports/protocols, ICMP to a VIP.
 */
#include "dp.h"

#define SYN PKT_TH_SYN
#define FIN PKT_TH_FIN

static void arp_request(struct pkt *p)
{
	static const __u8 bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	/* who-has 10.96.0.10 tell 10.0.0.1 */
	/* clang-format off */
	static const __u8 arp[28] = {
		0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 96, 0, 10,
	};
	/* clang-format on */

	pkt__eth(p, MAC_CLIENT, bcast, 0x0806);
	pkt__bytes(p, arp, sizeof(arp));
	pkt__finish(p);
	pkt__pad(p, 18);
}

static void arp_reply_short(struct pkt *p)
{
	/* clang-format off */
	static const __u8 arp[28] = {
		0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 10, 96, 0, 10,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1,
	};
	/* clang-format on */

	pkt__eth(p, MAC_NODE, MAC_CLIENT, 0x0806);
	pkt__bytes(p, arp, sizeof(arp));
}

/* A service-looking TCP SYN to VIP4:80 behind a tag: not parsed, passed. */
static void vlan_tagged(struct pkt *p, __u16 tpid)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, tpid);
	pkt__vlan(p, 100, 0x0800);
	pkt__ipv4(p, CLIENT4, VIP4, IPPROTO_TCP, .ttl = 57);
	pkt__tcp(p, 40000, 80, 1, 0, PKT_TH_SYN, .window = 502);
}

static void vlan_8021q(struct pkt *p)
{
	vlan_tagged(p, 0x8100);
}

static void vlan_8021ad(struct pkt *p)
{
	vlan_tagged(p, 0x88a8);
}

static void vlan_v6(struct pkt *p)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x8100);
	pkt__vlan(p, 7, 0x86dd);
	pkt__ipv6(p, CLIENT6, VIP6, IPPROTO_UDP);
	pkt__udp(p, 40000, 53);
	pkt__payload(p, "tagged", 6);
}

static void lldp(struct pkt *p)
{
	static const __u8 dst[6] = { 0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e };
	static const __u8 tlv[16] = { 0x02, 0x07, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00,
				      0x01, 0x04, 0x03, 0x05, 0x65, 0x74, 0x68, 0x00 };

	pkt__eth(p, MAC_CLIENT, dst, 0x88cc);
	pkt__bytes(p, tlv, sizeof(tlv));
}

/* 802.3 frame: the "ethertype" is a length (< 0x600), LLC follows. */
static void llc_8023(struct pkt *p)
{
	static const __u8 llc[20] = { 0x42, 0x42, 0x03, 0x00, 0x00, 0x00, 0x00 };

	pkt__eth(p, MAC_CLIENT, MAC_NODE, sizeof(llc));
	pkt__bytes(p, llc, sizeof(llc));
}

/* MPLS unicast carrying service traffic: not IP at L2, so passed. */
static void mpls(struct pkt *p)
{
	static const __u8 label[4] = { 0x00, 0x01, 0x01, 0x40 };

	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x8847);
	pkt__bytes(p, label, sizeof(label));
	pkt__ipv4(p, CLIENT4, VIP4, IPPROTO_UDP, .ttl = 57);
	pkt__udp(p, 40000, 53);
}

static void icmp_echo(struct pkt *p, const char *daddr)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, daddr, IPPROTO_ICMP, .ttl = 57, .id = 99);
	pkt__icmp4(p, 8, 0, 0x12340001);
	pkt__payload(p, "ping ping ping ping", 19);
}

static void icmp_echo_vip(struct pkt *p)
{
	icmp_echo(p, VIP4);
}

static void icmp_echo_vip_empty(struct pkt *p)
{
	icmp_echo(p, VIP4_EMPTY);
}

/* An ICMP error about a flow to the VIP: still passed (not rewritten). */
static void icmp_frag_needed_vip(struct pkt *p)
{
	static const __u8 quote[28] = { 0x45, 0,  0, 40, 0,  0, 0x40, 0, 64, 6,  0,    0,
					10,   96, 0, 10, 10, 0, 0,    1, 0,  80, 0x9c, 0x40 };

	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, VIP4, IPPROTO_ICMP, .ttl = 57);
	pkt__icmp4(p, 3, 4, 1400);
	pkt__payload(p, quote, sizeof(quote));
}

static void icmp6_echo(struct pkt *p, const char *daddr)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x86dd);
	pkt__ipv6(p, CLIENT6, daddr, IPPROTO_ICMPV6, .hop_limit = 57);
	pkt__icmp6(p, 128, 0, 0x56780001);
	pkt__payload(p, "ping6", 5);
}

static void icmp6_echo_vip(struct pkt *p)
{
	icmp6_echo(p, VIP6);
}

static void icmp6_echo_vip_empty(struct pkt *p)
{
	icmp6_echo(p, VIP6_EMPTY);
}

static void icmp6_exthdr_vip(struct pkt *p)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x86dd);
	pkt__ipv6(p, CLIENT6, VIP6, IPPROTO_ICMPV6, .hop_limit = 57);
	pkt__ipv6_ext(p, IPPROTO_HOPOPTS, 8);
	pkt__ipv6_ext(p, IPPROTO_DSTOPTS, 16);
	pkt__icmp6(p, 128, 0, 0x56780002);
}

/* Neighbour solicitation for the VIP: must reach the kernel untouched. */
static void icmp6_ns_vip(struct pkt *p)
{
	static const __u8 mcast[6] = { 0x33, 0x33, 0xff, 0x00, 0x00, 0x10 };
	__u8 target[16] = { 0xfd, 0x00, 0x00, 0x96, [15] = 0x10 };

	pkt__eth(p, MAC_CLIENT, mcast, 0x86dd);
	pkt__ipv6(p, CLIENT6, "ff02::1:ff00:10", IPPROTO_ICMPV6, .hop_limit = 255);
	pkt__icmp6(p, 135, 0, 0);
	pkt__payload(p, target, sizeof(target));
}

static void proto_to_vip(struct pkt *p, __u8 proto)
{
	static const __u8 body[12] = { 0x00, 0x00, 0x08, 0x00, 1, 2, 3, 4, 5, 6, 7, 8 };

	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, VIP4, proto, .ttl = 57);
	pkt__payload(p, body, sizeof(body));
}

static void gre_to_vip(struct pkt *p)
{
	proto_to_vip(p, 47);
}

static void sctp_to_vip(struct pkt *p)
{
	proto_to_vip(p, 132);
}

static void esp6_to_vip(struct pkt *p)
{
	static const __u8 esp[16] = { 0, 0, 1, 0, 0, 0, 0, 1, 0xde, 0xad };

	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x86dd);
	pkt__ipv6(p, CLIENT6, VIP6, 50);
	pkt__payload(p, esp, sizeof(esp));
}

static const struct dp_case pass_cases[] = {
	{
		.name = "pass_arp",
		.desc = "ARP request (padded to 60) and a bare 42-byte ARP reply pass unchanged",
		.steps = { PASSES(CUSTOM(arp_request)), PASSES(CUSTOM(arp_reply_short)) },
	},
	{
		.name = "pass_vlan_tagged",
		.desc = "802.1Q / 802.1ad tagged frames carrying service traffic are not parsed: passed as-is",
		.steps = {
			PASSES(CUSTOM(vlan_8021q)),
			PASSES(CUSTOM(vlan_8021ad)),
			PASSES(CUSTOM(vlan_v6)),
		},
	},
	{
		.name = "pass_other_ethertypes",
		.desc = "LLDP, 802.3 length-typed LLC and MPLS frames pass unchanged",
		.steps = { PASSES(CUSTOM(lldp)), PASSES(CUSTOM(llc_8023)), PASSES(CUSTOM(mpls)) },
	},
	{
		.name = "pass_v4_other_address",
		.desc = "IPv4 TCP/UDP to an address without services passes unchanged",
		.steps = {
			PASSES(TCP4(CLIENT4, OTHER4, 40000, 80, SYN)),
			PASSES(UDP4(CLIENT4, OTHER4, 40000, 53, .data = "dns")),
			/* the backend's own address is not a VIP either */
			PASSES(TCP4(CLIENT4, BE4, 40000, 8080, SYN)),
		},
	},
	{
		.name = "pass_v4_other_port",
		.desc = "IPv4 to a VIP on a port without a service passes unchanged",
		.steps = {
			PASSES(TCP4(CLIENT4, VIP4, 40000, 81, SYN)),
			PASSES(TCP4(CLIENT4, VIP4, 40000, 8080, SYN)),
			PASSES(UDP4(CLIENT4, VIP4, 40000, 54, .data = "x")),
			PASSES(TCP4(CLIENT4, VIP4_MULTI, 40000, 443, SYN)),
			/* port 0 is the VIP marker's key, never a service */
			PASSES(TCP4(CLIENT4, VIP4, 40000, 0, SYN)),
		},
	},
	{
		.name = "pass_v4_proto_mismatch",
		.desc = "UDP to a TCP-only VIP:port (and TCP to a UDP-only one) passes unchanged",
		.steps = {
			PASSES(UDP4(CLIENT4, VIP4_MULTI, 40000, 80, .data = "udp")),
			PASSES(TCP4(CLIENT4, VIP4, 40000, 53, SYN)),
		},
	},
	{
		.name = "pass_v4_icmp_to_vip",
		.desc = "ICMP echo to a VIP (with or without backends) and an ICMP error pass unchanged",
		.steps = {
			PASSES(CUSTOM(icmp_echo_vip)),
			PASSES(CUSTOM(icmp_echo_vip_empty)),
			PASSES(CUSTOM(icmp_frag_needed_vip)),
		},
	},
	{
		.name = "pass_v4_other_protocols_to_vip",
		.desc = "GRE and SCTP to a VIP are not TCP/UDP: passed unchanged",
		.steps = { PASSES(CUSTOM(gre_to_vip)), PASSES(CUSTOM(sctp_to_vip)) },
	},
	{
		.name = "pass_v4_bad_flags_non_vip",
		.desc = "TCP without flags or with SYN+FIN to a non-service passes (checked only on a hit)",
		.steps = {
			PASSES(TCP4(CLIENT4, OTHER4, 40000, 80, 0)),
			PASSES(TCP4(CLIENT4, VIP4, 40000, 81, SYN | FIN)),
		},
	},
	{
		.name = "pass_v6_other_address",
		.desc = "IPv6 TCP/UDP to an address without services passes unchanged",
		.steps = {
			PASSES(TCP6(CLIENT6, OTHER6, 40000, 80, SYN)),
			PASSES(UDP6(CLIENT6, OTHER6, 40000, 53, .data = "dns6")),
			/* same low 32 bits as VIP4 would have in addr[0] */
			PASSES(TCP6(CLIENT6, "::ffff:10.96.0.10", 40000, 80, SYN)),
		},
	},
	{
		.name = "pass_v6_other_port",
		.desc = "IPv6 to a VIP on a port without a service, or the wrong protocol, passes",
		.steps = {
			PASSES(TCP6(CLIENT6, VIP6, 40000, 81, SYN)),
			PASSES(UDP6(CLIENT6, VIP6, 40000, 80, .data = "x")),
			PASSES(TCP6(CLIENT6, VIP6_MULTI, 40000, 53, SYN)),
		},
	},
	{
		.name = "pass_v6_icmp6_to_vip",
		.desc = "ICMPv6 echo / neighbour solicitation to a VIP, also behind ext headers, passes",
		.steps = {
			PASSES(CUSTOM(icmp6_echo_vip)),
			PASSES(CUSTOM(icmp6_echo_vip_empty)),
			PASSES(CUSTOM(icmp6_exthdr_vip)),
			PASSES(CUSTOM(icmp6_ns_vip)),
		},
	},
	{
		.name = "pass_v6_esp_to_vip",
		.desc = "IPv6 ESP (not walked, not TCP/UDP) to a VIP passes unchanged",
		.steps = { PASSES(CUSTOM(esp6_to_vip)) },
	},
	{
		.name = "pass_direct_to_backend",
		.desc = "a neighbour of the VIP, and a client talking to a backend directly, pass unchanged",
		.steps = {
			PASSES(TCP4(CLIENT4, "10.96.0.11", 40000, 80, SYN)),
			PASSES(UDP4(CLIENT4, BE4, 40000, 5353, .data = "direct")),
			PASSES(UDP6(CLIENT6, BE6, 40000, 5353, .data = "direct")),
		},
	},
};

const struct dp_suite dp_suite_pass = {
	.name = "pass",
	.cases = pass_cases,
	.ncases = ARRAY_SIZE(pass_cases),
};
