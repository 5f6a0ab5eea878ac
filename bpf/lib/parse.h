/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parse.h - bounds-checked parsing of Ethernet / IPv4 / IPv6 / TCP / UDP
 * into a struct pkt. Each parse_* checks its own bounds and returns 0, a
 * PARSE_PASS verdict (not ours: pass unchanged) or a negative drop reason.
 * Lengths are checked against frame_len (the whole packet, which for tc may
 * be longer than the linear area) and header reads against data_end.
 */
#ifndef SLUICE_BPF_PARSE_H
#define SLUICE_BPF_PARSE_H

#include "common.h"

#define PARSE_PASS 1

/* Header offsets are masked so the verifier can bound packet pointers;
 * headers starting beyond PKT_OFF_MAX are treated as beyond the parse
 * bound (no legitimate TCP/UDP packet has 4 KiB of IPv6 extensions). */
#define PKT_OFF_MAX 0x1000
#define PKT_OFF_MASK (PKT_OFF_MAX - 1)

struct pkt {
	void *data;
	void *data_end;
	__u32 frame_len;
	__u16 l4_off;
	__u16 l4_len; /* L4 header + payload, from the IP length fields */
	__u8 tcp_flags;
	bool fragment;
	struct sluice_ct_key tuple; /* as seen on the wire, dir FWD */
};

static __always_inline bool pkt_is_v6(const struct pkt *p)
{
	return p->tuple.family == SLUICE_AF_INET6;
}

static __always_inline int parse_ipv4(struct pkt *p)
{
	struct iphdr *ip = p->data + ETH_HLEN;
	__u32 ihl_len, tot_len;

	if ((void *)(ip + 1) > p->data_end)
		return -SLUICE_DROP_TRUNC_IPV4;
	ihl_len = ip->ihl * 4;
	if (ihl_len < sizeof(*ip) || p->data + ETH_HLEN + ihl_len > p->data_end)
		return -SLUICE_DROP_BAD_IHL;
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < ihl_len || tot_len > p->frame_len - ETH_HLEN)
		return -SLUICE_DROP_BAD_IPV4_LEN;

	p->tuple.family = SLUICE_AF_INET;
	p->tuple.proto = ip->protocol;
	p->tuple.saddr[0] = ip->saddr;
	p->tuple.daddr[0] = ip->daddr;
	p->fragment = ip->frag_off & bpf_htons(IP_MF | IP_OFFSET);
	p->l4_off = ETH_HLEN + ihl_len;
	p->l4_len = tot_len - ihl_len;
	return 0;
}

static __always_inline bool ipv6_is_exthdr(__u8 nexthdr)
{
	return nexthdr == NEXTHDR_HOP || nexthdr == NEXTHDR_ROUTING ||
	       nexthdr == NEXTHDR_FRAGMENT || nexthdr == NEXTHDR_AUTH || nexthdr == NEXTHDR_DEST;
}

/* Walks extension headers; leaves the upper-layer protocol in tuple.proto. */
static __always_inline int parse_ipv6_exthdrs(struct pkt *p, __u8 nexthdr, __u32 off)
{
	struct ipv6_opt_hdr *opt;
	struct frag_hdr *frag;
	int i;

#pragma unroll
	for (i = 0; i < SLUICE_IPV6_EXTHDR_MAX; i++) {
		if (!ipv6_is_exthdr(nexthdr))
			break;
		if (off >= PKT_OFF_MAX)
			return -SLUICE_DROP_IPV6_EXTHDR;
		opt = p->data + (off & PKT_OFF_MASK);
		if ((void *)(opt + 1) > p->data_end)
			return -SLUICE_DROP_IPV6_EXTHDR;
		if (nexthdr == NEXTHDR_FRAGMENT) {
			frag = (void *)opt;
			if ((void *)(frag + 1) > p->data_end)
				return -SLUICE_DROP_IPV6_EXTHDR;
			off += sizeof(*frag);
			/* offset or M set: a real fragment; else atomic */
			if (frag->frag_off & bpf_htons(0xFFF9))
				p->fragment = true;
			/* a non-first fragment (offset set) carries payload
			 * from mid-packet, not headers: stop at the protocol
			 * its fragment header names */
			if (frag->frag_off & bpf_htons(0xFFF8)) {
				p->tuple.proto = frag->nexthdr;
				p->l4_off = off;
				return 0;
			}
		} else if (nexthdr == NEXTHDR_AUTH) {
			off += (opt->hdrlen + 2) * 4;
		} else {
			off += (opt->hdrlen + 1) * 8;
		}
		nexthdr = opt->nexthdr;
	}
	if (ipv6_is_exthdr(nexthdr))
		return -SLUICE_DROP_IPV6_EXTHDR;
	if (off > p->frame_len || off >= PKT_OFF_MAX)
		return -SLUICE_DROP_IPV6_EXTHDR;
	p->tuple.proto = nexthdr;
	p->l4_off = off;
	return 0;
}

static __always_inline int parse_ipv6(struct pkt *p)
{
	struct ipv6hdr *ip6 = p->data + ETH_HLEN;
	__u32 payload_len;
	int ret;

	if ((void *)(ip6 + 1) > p->data_end)
		return -SLUICE_DROP_TRUNC_IPV6;
	payload_len = bpf_ntohs(ip6->payload_len);
	if (payload_len + sizeof(*ip6) > p->frame_len - ETH_HLEN)
		return -SLUICE_DROP_BAD_IPV6_LEN;

	p->tuple.family = SLUICE_AF_INET6;
	__builtin_memcpy(p->tuple.saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->tuple.daddr, &ip6->daddr, 16);
	ret = parse_ipv6_exthdrs(p, ip6->nexthdr, ETH_HLEN + sizeof(*ip6));
	if (ret)
		return ret;
	if (p->l4_off > ETH_HLEN + sizeof(*ip6) + payload_len)
		return -SLUICE_DROP_IPV6_EXTHDR;
	p->l4_len = ETH_HLEN + sizeof(*ip6) + payload_len - p->l4_off;
	return 0;
}

static __always_inline int parse_l4(struct pkt *p)
{
	void *l4 = p->data + (p->l4_off & PKT_OFF_MASK);

	if (p->tuple.proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > p->data_end || th->doff < 5 ||
		    l4 + th->doff * 4 > p->data_end || th->doff * 4 > p->l4_len)
			return -SLUICE_DROP_TRUNC_TCP;
		p->tuple.sport = th->source;
		p->tuple.dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		return 0;
	}
	if (p->tuple.proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > p->data_end || p->l4_len < sizeof(*uh))
			return -SLUICE_DROP_TRUNC_UDP;
		p->tuple.sport = uh->source;
		p->tuple.dport = uh->dest;
		return 0;
	}
	return PARSE_PASS;
}

/**
 * parse_packet() - fill @p from an Ethernet frame.
 *
 * Return: 0 for TCP/UDP ready for the LB, PARSE_PASS for traffic that is
 * not ours to touch, a negative SLUICE_DROP_* for malformed input.
 * Fragments return 0 with p->fragment set and no ports.
 */
static __always_inline int parse_packet(struct pkt *p)
{
	struct ethhdr *eth = p->data;
	int ret;

	if ((void *)(eth + 1) > p->data_end)
		return -SLUICE_DROP_TRUNC_ETH;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		ret = parse_ipv4(p);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		ret = parse_ipv6(p);
	else
		return PARSE_PASS;
	if (ret)
		return ret;
	if (p->tuple.proto != IPPROTO_TCP && p->tuple.proto != IPPROTO_UDP)
		return PARSE_PASS;
	if (p->fragment)
		return 0;
	return parse_l4(p);
}

#endif /* SLUICE_BPF_PARSE_H */
