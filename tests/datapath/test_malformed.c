// SPDX-License-Identifier: MIT
/*
 * test_malformed.c - malformed and unbalanceable single packets: IP
 * lengths below the header or one byte beyond the frame, IPv6 extension
 * chains at and beyond the parse bound, fragments to VIPs and elsewhere,
 * TCP flag combinations no connection uses. Each drop is counted under
 * exactly one reason and nothing else moves. Truncations: test_trunc.c.
 */
#include <string.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define FIN PKT_TH_FIN
#define ACK PKT_TH_ACK
#define PSH PKT_TH_PSH

static void base_tcp4(struct pkt *p)
{
	dp__build(p, TCP4(CLIENT4, VIP4, 40000, 80, SYN, .seq = 1));
}

static void base_tcp6(struct pkt *p)
{
	dp__build(p, TCP6(CLIENT6, VIP6, 40000, 80, SYN, .seq = 1));
}

static void tot_len_small(struct pkt *p, __u16 tot_len)
{
	base_tcp4(p);
	pkt__put16(p, p->l3_off + PKT_IP4_TOT_LEN, tot_len);
	pkt__ipv4_csum_fix(p);
}

static void tot_len_19(struct pkt *p)
{
	tot_len_small(p, 19);
}

static void tot_len_0(struct pkt *p)
{
	tot_len_small(p, 0);
}

static void tot_len_below_options(struct pkt *p)
{
	static const __u8 ra[4] = { 0x94, 0x04, 0, 0 };

	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, VIP4, IPPROTO_UDP, .options = ra, .options_len = 4, .tot_len = 20);
	pkt__udp(p, 40000, 53);
}

static void tot_len_plus_one(struct pkt *p)
{
	tot_len_small(p, 41);
}

static void plen_plus_one(struct pkt *p)
{
	base_tcp6(p);
	pkt__put16(p, p->l3_off + PKT_IP6_PLEN, 21);
}

/* 6 extension headers (the bound) of every walked type, then TCP. */
static void ext_chain(struct pkt *p, const char *daddr, __u16 dport, int n, __u8 l4)
{
	static const struct {
		__u8 type;
		__u8 len;
	} chain[] = {
		{ IPPROTO_HOPOPTS, 8 },  { IPPROTO_DSTOPTS, 16 }, { IPPROTO_ROUTING, 8 },
		{ IPPROTO_FRAGMENT, 8 }, { IPPROTO_AH, 16 },      { IPPROTO_DSTOPTS, 24 },
		{ IPPROTO_DSTOPTS, 8 },
	};

	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x86dd);
	pkt__ipv6(p, CLIENT6, daddr, l4, .hop_limit = 57);
	for (int i = 0; i < n; i++) {
		if (chain[i].type == IPPROTO_FRAGMENT)
			pkt__ipv6_frag(p, 0, false, 0xabcd); /* atomic: parsed through */
		else
			pkt__ipv6_ext(p, chain[i].type, chain[i].len);
	}
	if (l4 == IPPROTO_TCP)
		pkt__tcp(p, 40000, dport, 1, 0, PKT_TH_SYN, .window = 502);
	else
		pkt__udp(p, 40000, dport);
	pkt__payload(p, "ext", 3);
}

_Static_assert(SLUICE_IPV6_EXTHDR_MAX == 6, "ext_chain cases are written for a bound of 6");

static void ext6_in(struct pkt *p)
{
	ext_chain(p, VIP6, 80, 6, IPPROTO_TCP);
}

static void ext6_out(struct pkt *p)
{
	ext_chain(p, BE6, 8080, 6, IPPROTO_TCP);
}

static void ext5_udp_in(struct pkt *p)
{
	ext_chain(p, VIP6, 53, 5, IPPROTO_UDP);
}

static void ext5_udp_out(struct pkt *p)
{
	ext_chain(p, BE6, 5353, 5, IPPROTO_UDP);
}

static void ext7_vip(struct pkt *p)
{
	ext_chain(p, VIP6, 80, 7, IPPROTO_TCP);
}

static void ext7_other(struct pkt *p)
{
	ext_chain(p, OTHER6, 80, 7, IPPROTO_UDP);
}

/* Hop-by-hop claims 88 bytes; the packet ends after 8 + TCP. */
static void ext_len_beyond(struct pkt *p)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x86dd);
	pkt__ipv6(p, CLIENT6, VIP6, IPPROTO_TCP);
	pkt__ipv6_ext(p, IPPROTO_HOPOPTS, 8);
	pkt__tcp(p, 40000, 80, 1, 0, PKT_TH_SYN);
	pkt__finish(p);
	pkt__put8(p, p->l3_off + 40 + 1, 10);
}

/* IPv4 fragments. */
static void frag4(struct pkt *p, const char *daddr, __u8 proto, __u16 frag, bool l4)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x0800);
	pkt__ipv4(p, CLIENT4, daddr, proto, .ttl = 57, .id = 0x7777, .frag = frag);
	if (l4 && proto == IPPROTO_TCP)
		pkt__tcp(p, 40000, 80, 1, 0, PKT_TH_SYN, .window = 502);
	else if (l4)
		pkt__udp(p, 40000, 53);
	pkt__payload(p, "fragment-data-24-bytes!!", 24);
}

static void frag4_first_vip(struct pkt *p)
{
	frag4(p, VIP4, IPPROTO_TCP, PKT_IP_MF, true);
}

static void frag4_middle_vip(struct pkt *p)
{
	frag4(p, VIP4, IPPROTO_UDP, PKT_IP_MF | 185, false);
}

static void frag4_last_vip(struct pkt *p)
{
	frag4(p, VIP4, IPPROTO_TCP, 370, false);
}

static void frag4_first_other(struct pkt *p)
{
	frag4(p, OTHER4, IPPROTO_TCP, PKT_IP_MF, true);
}

static void frag4_last_other(struct pkt *p)
{
	frag4(p, OTHER4, IPPROTO_UDP, 185, false);
}

/* VIP4_MULTI has only a TCP service: the UDP marker does not exist. */
static void frag4_udp_tcp_only_vip(struct pkt *p)
{
	frag4(p, VIP4_MULTI, IPPROTO_UDP, PKT_IP_MF, true);
}

/* a fragment to the VIP without backends is still a VIP fragment */
static void frag4_empty_vip(struct pkt *p)
{
	frag4(p, VIP4_EMPTY, IPPROTO_TCP, 185, false);
}

/* IPv6 fragments. */
static void frag6(struct pkt *p, const char *daddr, __u8 proto, __u16 off, bool more, bool l4,
		  bool hbh)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x86dd);
	pkt__ipv6(p, CLIENT6, daddr, proto, .hop_limit = 57);
	if (hbh)
		pkt__ipv6_ext(p, IPPROTO_HOPOPTS, 8);
	pkt__ipv6_frag(p, off, more, 0xfeed);
	if (l4 && proto == IPPROTO_TCP)
		pkt__tcp(p, 40000, 80, 1, 0, PKT_TH_SYN, .window = 502);
	else if (l4)
		pkt__udp(p, 40000, 53);
	pkt__payload(p, "fragment-data-24-bytes!!", 24);
}

static void frag6_first_vip(struct pkt *p)
{
	frag6(p, VIP6, IPPROTO_UDP, 0, true, true, false);
}

static void frag6_last_vip(struct pkt *p)
{
	frag6(p, VIP6, IPPROTO_TCP, 100, false, false, false);
}

static void frag6_middle_vip_hbh(struct pkt *p)
{
	frag6(p, VIP6, IPPROTO_TCP, 100, true, false, true);
}

static void frag6_first_other(struct pkt *p)
{
	frag6(p, OTHER6, IPPROTO_TCP, 0, true, true, false);
}

static void frag6_last_other(struct pkt *p)
{
	frag6(p, OTHER6, IPPROTO_UDP, 100, false, false, false);
}

/* a later fragment whose first fragment began with a destination-options
 * header: what follows the fragment header is payload, not a header */
static void frag6_middle_other_exthdr(struct pkt *p)
{
	frag6(p, OTHER6, IPPROTO_DSTOPTS, 100, true, false, false);
}

static void frag6_atomic_vip(struct pkt *p)
{
	frag6(p, VIP6, IPPROTO_TCP, 0, false, true, false);
}

static void frag6_atomic_out(struct pkt *p)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x86dd);
	pkt__ipv6(p, CLIENT6, BE6, IPPROTO_TCP, .hop_limit = 57);
	pkt__ipv6_frag(p, 0, false, 0xfeed);
	pkt__tcp(p, 40000, 8080, 1, 0, PKT_TH_SYN, .window = 502);
	pkt__payload(p, "fragment-data-24-bytes!!", 24);
}

static const struct dp_case malformed_cases[] = {
	{
		.name = "malformed_v4_tot_len_below_header",
		.desc = "tot_len 19, 0, and 20 with ihl 6 (below ihl*4) are BAD_IPV4_LEN",
		.steps = {
			DROPS(CUSTOM(tot_len_19), BAD_IPV4_LEN),
			DROPS(CUSTOM(tot_len_0), BAD_IPV4_LEN),
			DROPS(CUSTOM(tot_len_below_options), BAD_IPV4_LEN),
		},
	},
	{
		.name = "malformed_ip_len_one_beyond",
		.desc = "tot_len / payload_len one byte more than the frame holds are dropped",
		.steps = {
			DROPS(CUSTOM(tot_len_plus_one), BAD_IPV4_LEN),
			DROPS(CUSTOM(plen_plus_one), BAD_IPV6_LEN),
		},
	},
	{
		.name = "malformed_v6_exthdr_at_bound",
		.desc = "6 extension headers (hbh, dst, routing, atomic frag, AH, dst) are walked and balanced",
		.steps = {
			NEW_FLOW(CUSTOM(ext6_in), CUSTOM(ext6_out), S_T6),
			NEW_FLOW(CUSTOM(ext5_udp_in), CUSTOM(ext5_udp_out), S_U6),
		},
	},
	{
		.name = "malformed_v6_exthdr_beyond_bound",
		.desc = "7 extension headers exceed SLUICE_IPV6_EXTHDR_MAX: dropped IPV6_EXTHDR (VIP or not)",
		.steps = {
			DROPS(CUSTOM(ext7_vip), IPV6_EXTHDR),
			DROPS(CUSTOM(ext7_other), IPV6_EXTHDR),
		},
	},
	{
		.name = "malformed_v6_exthdr_len_beyond_frame",
		.desc = "a hop-by-hop header claiming 88 bytes in a shorter packet is IPV6_EXTHDR",
		.steps = { DROPS(CUSTOM(ext_len_beyond), IPV6_EXTHDR) },
	},
	{
		.name = "malformed_v4_fragments_to_vip",
		.desc = "IPv4 first, middle and last fragments to a VIP are dropped FRAGMENT",
		.steps = {
			DROPS(CUSTOM(frag4_first_vip), FRAGMENT),
			DROPS(CUSTOM(frag4_middle_vip), FRAGMENT),
			DROPS(CUSTOM(frag4_last_vip), FRAGMENT),
			DROPS(CUSTOM(frag4_empty_vip), FRAGMENT),
		},
	},
	{
		.name = "malformed_v4_fragments_to_non_vip",
		.desc = "IPv4 fragments to other addresses, or of a protocol the VIP lacks, pass unchanged",
		.steps = {
			PASSES(CUSTOM(frag4_first_other)),
			PASSES(CUSTOM(frag4_last_other)),
			PASSES(CUSTOM(frag4_udp_tcp_only_vip)),
		},
	},
	{
		.name = "malformed_v6_fragments_to_vip",
		.desc = "IPv6 first, last and middle (behind hop-by-hop) fragments to a VIP are dropped",
		.steps = {
			DROPS(CUSTOM(frag6_first_vip), FRAGMENT),
			DROPS(CUSTOM(frag6_last_vip), FRAGMENT),
			DROPS(CUSTOM(frag6_middle_vip_hbh), FRAGMENT),
		},
	},
	{
		.name = "malformed_v6_fragments_to_non_vip",
		.desc = "IPv6 fragments to other addresses pass unchanged",
		.steps = {
			PASSES(CUSTOM(frag6_first_other)),
			PASSES(CUSTOM(frag6_last_other)),
			PASSES(CUSTOM(frag6_middle_other_exthdr)),
		},
	},
	{
		.name = "malformed_v6_atomic_fragment_balanced",
		.desc = "an atomic fragment (offset 0, M 0) to a VIP is parsed through and balanced",
		.steps = { NEW_FLOW(CUSTOM(frag6_atomic_vip), CUSTOM(frag6_atomic_out), S_T6) },
	},
	{
		.name = "malformed_v4_tcp_bad_flags",
		.desc = "TCP to a service with no flags, SYN+FIN or SYN+FIN+ACK+PSH: BAD_TCP_FLAGS",
		.steps = {
			DROPS(TCP4(CLIENT4, VIP4, 40000, 80, 0), BAD_TCP_FLAGS),
			DROPS(TCP4(CLIENT4, VIP4, 40000, 80, SYN | FIN), BAD_TCP_FLAGS),
			DROPS(TCP4(CLIENT4, VIP4, 40000, 80, SYN | FIN | ACK | PSH), BAD_TCP_FLAGS),
			/* also on a service without backends: checked before refusing */
			DROPS(TCP4(CLIENT4, VIP4_EMPTY, 40000, 80, SYN | FIN), BAD_TCP_FLAGS),
		},
	},
	{
		.name = "malformed_v6_tcp_bad_flags",
		.desc = "IPv6 TCP to a service with no flags or SYN+FIN: BAD_TCP_FLAGS",
		.steps = {
			DROPS(TCP6(CLIENT6, VIP6, 40000, 80, 0), BAD_TCP_FLAGS),
			DROPS(TCP6(CLIENT6, VIP6, 40000, 80, SYN | FIN), BAD_TCP_FLAGS),
			DROPS(TCP6(CLIENT6, VIP6_EMPTY, 40000, 80, 0), BAD_TCP_FLAGS),
		},
	},
	{
		.name = "malformed_tcp_bad_flags_on_established_flow",
		.desc = "a flagless segment of an established flow is still dropped, the flow lives on",
		.steps = {
			NEW_FLOW(TCP4(CLIENT4, VIP4, 40001, 80, SYN, .seq = 1),
				 TCP4(CLIENT4, BE4, 40001, 8080, SYN, .seq = 1), S_T4),
			DROPS(TCP4(CLIENT4, VIP4, 40001, 80, 0, .seq = 2), BAD_TCP_FLAGS),
			EST_FLOW(TCP4(CLIENT4, VIP4, 40001, 80, ACK, .seq = 2, .ack = 3),
				 TCP4(CLIENT4, BE4, 40001, 8080, ACK, .seq = 2, .ack = 3), S_T4),
		},
	},
};

const struct dp_suite dp_suite_malformed = {
	.name = "malformed",
	.cases = malformed_cases,
	.ncases = ARRAY_SIZE(malformed_cases),
};
