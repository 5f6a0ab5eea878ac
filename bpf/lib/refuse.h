/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * refuse.h - the answer for a service without backends: a TCP RST, or an
 * ICMP / ICMPv6 port unreachable for UDP, from the VIP back to the client,
 * so the client fails at once instead of timing out.
 *
 * refuse_build() composes the whole reply frame from the parsed request in
 * a per-CPU scratch buffer (refuse_buf_get()); the entry file resizes its
 * packet and stores the frame. The frame starts 2 bytes into an 8-aligned
 * array so that the IP header after the 14-byte Ethernet header is
 * 4-aligned for the 32-bit stores and checksum reads of the builders.
 */
#ifndef SLUICE_BPF_REFUSE_H
#define SLUICE_BPF_REFUSE_H

#include "common.h"
#include "csum.h"
#include "parse.h"

#define REFUSE_TTL 64
#define REFUSE_ICMP4_QUOTE 28 /* IPv4 header + 8 bytes (RFC 792) */
#define REFUSE_ICMP6_QUOTE 48 /* IPv6 header + 8 bytes */
#define REFUSE_MAX_LEN (ETH_HLEN + 40 + 8 + REFUSE_ICMP6_QUOTE)
#define REFUSE_SILENT 0 /* nothing to send (the request was a RST) */

struct refuse_buf {
	__u8 raw[REFUSE_MAX_LEN + 2] __attribute__((aligned(8)));
};

/* The frame is composed in a per-CPU scratch slot, not on the stack: the
 * 512-byte BPF stack is shared by the whole call chain. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct refuse_buf);
} refuse_scratch SEC(".maps");

static __always_inline struct refuse_buf *refuse_buf_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&refuse_scratch, &zero);
}

static __always_inline __u8 *refuse_frame(struct refuse_buf *b)
{
	return b->raw + 2;
}

static __always_inline int refuse_eth(const struct pkt *p, __u8 *out)
{
	struct ethhdr *eth = p->data;
	struct ethhdr *o = (void *)out;

	if ((void *)(eth + 1) > p->data_end)
		return -1;
	__builtin_memcpy(o->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(o->h_source, eth->h_dest, ETH_ALEN);
	o->h_proto = eth->h_proto;
	return 0;
}

/* Writes the IP header of the reply (VIP -> client); returns the
 * pseudo-header sum for the L4 checksum. */
static __always_inline __u64 refuse_ip(const struct pkt *p, __u8 *l3, __u8 proto, __u16 l4_len)
{
	__u64 pseudo = csum_buf(p->tuple.saddr, 16) + csum_buf(p->tuple.daddr, 16);

	if (pkt_is_v6(p)) {
		struct ipv6hdr *ip6 = (void *)l3;

		*(__u32 *)ip6 = bpf_htonl(0x60000000);
		ip6->payload_len = bpf_htons(l4_len);
		ip6->nexthdr = proto;
		ip6->hop_limit = REFUSE_TTL;
		__builtin_memcpy(&ip6->saddr, p->tuple.daddr, 16);
		__builtin_memcpy(&ip6->daddr, p->tuple.saddr, 16);
		return pseudo + bpf_htonl(l4_len) + bpf_htonl(proto);
	}

	struct iphdr *ip = (void *)l3;

	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0;
	ip->tot_len = bpf_htons(sizeof(*ip) + l4_len);
	ip->id = 0;
	ip->frag_off = proto == IPPROTO_TCP ? bpf_htons(IP_DF) : 0;
	ip->ttl = REFUSE_TTL;
	ip->protocol = proto;
	ip->check = 0;
	ip->saddr = p->tuple.daddr[0];
	ip->daddr = p->tuple.saddr[0];
	ip->check = ~csum_fold(csum_buf(ip, sizeof(*ip)));
	/* ICMP (v4) has no pseudo header; the caller ignores it then */
	return pseudo + bpf_htons(proto) + bpf_htons(l4_len);
}

static __always_inline int refuse_tcp(const struct pkt *p, __u8 *out, __u32 l3_len)
{
	struct tcphdr *th = p->data + (p->l4_off & PKT_OFF_MASK);
	struct tcphdr *o = (void *)(out + ETH_HLEN + l3_len);
	__u32 payload, seq;
	__u64 pseudo;

	if ((void *)(th + 1) > p->data_end)
		return -1;
	if (th->rst)
		return REFUSE_SILENT;
	payload = p->l4_len - th->doff * 4;

	__builtin_memset(o, 0, sizeof(*o));
	o->source = th->dest;
	o->dest = th->source;
	o->doff = 5;
	o->rst = 1;
	if (th->ack) {
		o->seq = th->ack_seq;
	} else {
		seq = bpf_ntohl(th->seq) + payload + th->syn + th->fin;
		o->ack_seq = bpf_htonl(seq);
		o->ack = 1;
	}
	pseudo = refuse_ip(p, out + ETH_HLEN, IPPROTO_TCP, sizeof(*o));
	o->check = ~csum_fold(pseudo + csum_buf(o, sizeof(*o)));
	return ETH_HLEN + l3_len + sizeof(*o);
}

static __always_inline int refuse_udp(const struct pkt *p, __u8 *out, __u32 l3_len)
{
	__u32 quote = pkt_is_v6(p) ? REFUSE_ICMP6_QUOTE : REFUSE_ICMP4_QUOTE;
	__u8 *icmp = out + ETH_HLEN + l3_len;
	void *l3 = p->data + ETH_HLEN;
	__u64 pseudo;

	/* An IPv4 quote must hold the whole header; options would not fit. */
	if (!pkt_is_v6(p) && p->l4_off != ETH_HLEN + sizeof(struct iphdr))
		return -1;
	if (l3 + REFUSE_ICMP6_QUOTE > p->data_end && pkt_is_v6(p))
		return -1;
	if (l3 + REFUSE_ICMP4_QUOTE > p->data_end)
		return -1;

	*(__u32 *)icmp = 0;
	*(__u32 *)(icmp + 4) = 0;
	if (pkt_is_v6(p)) {
		icmp[0] = ICMPV6_DEST_UNREACH;
		icmp[1] = ICMPV6_PORT_UNREACH;
		__builtin_memcpy(icmp + 8, l3, REFUSE_ICMP6_QUOTE);
		pseudo = refuse_ip(p, out + ETH_HLEN, NEXTHDR_ICMPV6, 8 + REFUSE_ICMP6_QUOTE);
		*(__u16 *)(icmp + 2) = ~csum_fold(pseudo + csum_buf(icmp, 8 + REFUSE_ICMP6_QUOTE));
	} else {
		icmp[0] = ICMP_DEST_UNREACH;
		icmp[1] = ICMP_PORT_UNREACH;
		__builtin_memcpy(icmp + 8, l3, REFUSE_ICMP4_QUOTE);
		refuse_ip(p, out + ETH_HLEN, IPPROTO_ICMP, 8 + REFUSE_ICMP4_QUOTE);
		*(__u16 *)(icmp + 2) = ~csum_fold(csum_buf(icmp, 8 + REFUSE_ICMP4_QUOTE));
	}
	return ETH_HLEN + l3_len + 8 + quote;
}

/**
 * refuse_build() - compose the refusal for the request @p into @b.
 *
 * Return: the frame length, REFUSE_SILENT when nothing must be sent, or
 * -1 when no refusal can be built (counted as REFUSE_FAILED).
 */
static __always_inline int refuse_build(const struct pkt *p, struct refuse_buf *b)
{
	__u32 l3_len = pkt_is_v6(p) ? sizeof(struct ipv6hdr) : sizeof(struct iphdr);
	__u8 *out = refuse_frame(b);

	if (refuse_eth(p, out))
		return -1;
	if (p->tuple.proto == IPPROTO_TCP)
		return refuse_tcp(p, out, l3_len);
	return refuse_udp(p, out, l3_len);
}

#endif /* SLUICE_BPF_REFUSE_H */
