// SPDX-License-Identifier: MIT
/*
 * pkt.c - packet builder for datapath tests; see pkt.h for the contract.
 * The checksum code here is deliberately naive (sum every 16-bit word from
 * scratch): it must not share a bug with the datapath's incremental updates.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "pkt.h"

#define ETH_HLEN_ 14
#define IP6_HLEN 40

static void pkt__die(const char *what)
{
	fprintf(stderr, "pkt: builder misuse: %s\n", what);
	abort();
}

static __u8 *pkt__push(struct pkt *p, size_t n)
{
	__u8 *h;

	if (p->finished)
		pkt__die("push after pkt__finish");
	if (p->len + n > PKT_MAX)
		pkt__die("packet larger than PKT_MAX");
	h = p->buf + p->len;
	memset(h, 0, n);
	p->len += n;
	return h;
}

static void wr16(__u8 *b, __u16 v)
{
	b[0] = v >> 8;
	b[1] = v;
}

static void wr32(__u8 *b, __u32 v)
{
	b[0] = v >> 24;
	b[1] = v >> 16;
	b[2] = v >> 8;
	b[3] = v;
}

static __u16 rd16(const __u8 *b)
{
	return (__u16)(b[0] << 8 | b[1]);
}

__u32 pkt__csum_add(__u32 sum, const void *data, size_t len)
{
	const __u8 *b = data;
	size_t i;

	/* end-around carry after every word keeps sum within 17 bits */
	for (i = 0; i + 1 < len; i += 2) {
		sum += (__u32)(b[i] << 8 | b[i + 1]);
		sum = (sum & 0xffff) + (sum >> 16);
	}
	if (len & 1) {
		sum += (__u32)b[len - 1] << 8;
		sum = (sum & 0xffff) + (sum >> 16);
	}
	return sum;
}

__u16 pkt__csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

void pkt__init(struct pkt *p)
{
	memset(p, 0, sizeof(*p));
	p->l3_off = -1;
	p->l4_off = -1;
	p->nexthdr_off = -1;
}

void pkt__eth(struct pkt *p, const __u8 *smac, const __u8 *dmac, __u16 ethertype)
{
	__u8 *h = pkt__push(p, ETH_HLEN_);

	memcpy(h, dmac, 6);
	memcpy(h + 6, smac, 6);
	wr16(h + 12, ethertype);
}

void pkt__vlan(struct pkt *p, __u16 tci, __u16 ethertype)
{
	__u8 *h = pkt__push(p, 4);

	wr16(h, tci);
	wr16(h + 2, ethertype);
}

void pkt__bytes(struct pkt *p, const void *data, size_t len)
{
	memcpy(pkt__push(p, len), data, len);
}

static void pkt__addr(int af, const char *text, void *out)
{
	if (inet_pton(af, text, out) != 1)
		pkt__die(text);
}

void pkt__ipv4_o(struct pkt *p, const char *saddr, const char *daddr, __u8 proto,
		 const struct pkt_ipv4_opts *o)
{
	size_t hlen = 20 + o->options_len;
	__u8 *h;

	if (o->options_len % 4 || o->options_len > 40)
		pkt__die("IPv4 options length");
	p->l3_off = (int)p->len;
	p->af = 4;
	h = pkt__push(p, hlen);
	h[0] = 0x40 | (o->ihl ? o->ihl & 0xf : (__u8)(hlen / 4));
	h[1] = o->tos;
	wr16(h + PKT_IP4_TOT_LEN, o->tot_len);
	wr16(h + PKT_IP4_ID, o->id);
	wr16(h + PKT_IP4_FRAG, o->frag);
	h[PKT_IP4_TTL] = o->ttl ? o->ttl : 64;
	h[9] = proto;
	pkt__addr(AF_INET, saddr, h + PKT_IP4_SADDR);
	pkt__addr(AF_INET, daddr, h + PKT_IP4_DADDR);
	if (o->options_len)
		memcpy(h + 20, o->options, o->options_len);
	p->keep_ip_len = o->tot_len != 0;
	p->keep_ihl = o->ihl != 0;
}

void pkt__ipv6_o(struct pkt *p, const char *saddr, const char *daddr, __u8 proto,
		 const struct pkt_ipv6_opts *o)
{
	__u8 *h;

	p->l3_off = (int)p->len;
	p->af = 6;
	h = pkt__push(p, IP6_HLEN);
	wr32(h, 6u << 28 | (__u32)o->tclass << 20 | (o->flow & 0xfffff));
	wr16(h + PKT_IP6_PLEN, o->payload_len);
	h[PKT_IP6_NEXTHDR] = proto;
	h[7] = o->hop_limit ? o->hop_limit : 64;
	pkt__addr(AF_INET6, saddr, h + PKT_IP6_SADDR);
	pkt__addr(AF_INET6, daddr, h + PKT_IP6_DADDR);
	p->nexthdr_off = p->l3_off + PKT_IP6_NEXTHDR;
	p->next_proto = proto;
	p->keep_ip_len = o->payload_len != 0;
}

/* Link a new extension header at the end of the IPv6 chain. */
static __u8 *pkt__ipv6_link(struct pkt *p, __u8 type, size_t len)
{
	__u8 *h;

	if (p->af != 6 || p->nexthdr_off < 0)
		pkt__die("IPv6 extension header without IPv6 header");
	h = pkt__push(p, len);
	p->buf[p->nexthdr_off] = type;
	h[0] = p->next_proto;
	p->nexthdr_off = (int)(h - p->buf);
	return h;
}

void pkt__ipv6_ext(struct pkt *p, __u8 type, size_t len)
{
	size_t pad_at;
	__u8 *h;

	switch (type) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_DSTOPTS:
	case IPPROTO_ROUTING:
		if (len < 8 || len % 8 || len > 2048)
			pkt__die("IPv6 extension header length");
		h = pkt__ipv6_link(p, type, len);
		h[1] = (__u8)(len / 8 - 1);
		break;
	case IPPROTO_AH:
		if (len < 12 || len % 4 || len > 1024)
			pkt__die("AH length");
		h = pkt__ipv6_link(p, type, len);
		h[1] = (__u8)(len / 4 - 2);
		wr32(h + 4, 0x100); /* SPI */
		wr32(h + 8, 1);     /* sequence */
		return;
	default:
		pkt__die("IPv6 extension header type");
		return;
	}
	if (type == IPPROTO_ROUTING) {
		h[2] = 253; /* experimental type; segments left 0: ignorable */
		h[3] = 0;
		pad_at = 8;
	} else {
		pad_at = 2;
	}
	/* one PadN option covering the rest keeps the TLV chain valid */
	if (len - pad_at >= 2) {
		h[pad_at] = 1;
		h[pad_at + 1] = (__u8)(len - pad_at - 2);
	} else if (len - pad_at == 1) {
		h[pad_at] = 0; /* Pad1 */
	}
}

void pkt__ipv6_frag(struct pkt *p, __u16 offset, bool more, __u32 id)
{
	__u8 *h = pkt__ipv6_link(p, IPPROTO_FRAGMENT, 8);

	wr16(h + 2, (__u16)(offset << 3 | (more ? 1 : 0)));
	wr32(h + 4, id);
}

static void pkt__l4_start(struct pkt *p, __u8 proto)
{
	if (p->l3_off < 0)
		pkt__die("L4 header without IP header");
	p->l4_off = (int)p->len;
	p->l4_proto = proto;
}

void pkt__tcp_o(struct pkt *p, __u16 sport, __u16 dport, __u32 seq, __u32 ack, __u8 flags,
		const struct pkt_tcp_opts *o)
{
	size_t hlen = 20 + o->options_len;
	__u8 *h;

	if (o->options_len % 4 || o->options_len > 40)
		pkt__die("TCP options length");
	pkt__l4_start(p, IPPROTO_TCP);
	h = pkt__push(p, hlen);
	wr16(h, sport);
	wr16(h + 2, dport);
	wr32(h + 4, seq);
	wr32(h + 8, ack);
	h[12] = (__u8)((o->doff ? o->doff : hlen / 4) << 4);
	h[PKT_TCP_FLAGS] = flags;
	wr16(h + 14, o->window);
	wr16(h + PKT_TCP_CSUM, o->csum);
	wr16(h + 18, o->urg_ptr);
	if (o->options_len)
		memcpy(h + 20, o->options, o->options_len);
	p->keep_l4_csum = o->keep_csum;
	p->keep_doff = o->doff != 0;
}

void pkt__udp_o(struct pkt *p, __u16 sport, __u16 dport, const struct pkt_udp_opts *o)
{
	__u8 *h;

	pkt__l4_start(p, IPPROTO_UDP);
	h = pkt__push(p, 8);
	wr16(h, sport);
	wr16(h + 2, dport);
	wr16(h + PKT_UDP_LEN, o->len);
	p->udp_csum_zero = o->csum_zero;
	p->keep_udp_len = o->len != 0;
}

void pkt__icmp4(struct pkt *p, __u8 type, __u8 code, __u32 rest)
{
	__u8 *h;

	pkt__l4_start(p, IPPROTO_ICMP);
	h = pkt__push(p, 8);
	h[0] = type;
	h[1] = code;
	wr32(h + 4, rest);
}

void pkt__icmp6(struct pkt *p, __u8 type, __u8 code, __u32 rest)
{
	__u8 *h;

	pkt__l4_start(p, IPPROTO_ICMPV6);
	h = pkt__push(p, 8);
	h[0] = type;
	h[1] = code;
	wr32(h + 4, rest);
}

void pkt__payload(struct pkt *p, const void *data, size_t len)
{
	if (len)
		memcpy(pkt__push(p, len), data, len);
}

void pkt__ipv4_csum_fix(struct pkt *p)
{
	size_t hlen;
	__u8 *h;

	if (p->l3_off < 0 || p->af != 4)
		pkt__die("IPv4 checksum without IPv4 header");
	h = p->buf + p->l3_off;
	hlen = (size_t)(h[0] & 0xf) * 4;
	/* a bogus ihl still gets a checksum over what the frame holds */
	if (hlen < 20)
		hlen = 20;
	if (p->l3_off + hlen > p->len)
		hlen = p->len - p->l3_off;
	wr16(h + PKT_IP4_CSUM, 0);
	wr16(h + PKT_IP4_CSUM, pkt__csum_fold(pkt__csum_add(0, h, hlen)));
}

/* Pseudo-header sum for the upper-layer checksum of l4len bytes. */
static __u32 pkt__pseudo(const struct pkt *p, size_t l4len)
{
	const __u8 *ip = p->buf + p->l3_off;
	__u8 tail[8] = { 0 };
	__u32 sum;

	if (p->af == 4) {
		sum = pkt__csum_add(0, ip + PKT_IP4_SADDR, 8);
		tail[1] = p->l4_proto;
		wr16(tail + 2, (__u16)l4len);
		return pkt__csum_add(sum, tail, 4);
	}
	sum = pkt__csum_add(0, ip + PKT_IP6_SADDR, 32);
	wr32(tail, (__u32)l4len);
	tail[7] = p->l4_proto;
	return pkt__csum_add(sum, tail, 8);
}

static void pkt__l4_csum(struct pkt *p)
{
	__u8 *l4 = p->buf + p->l4_off;
	size_t l4len = p->len - p->l4_off;
	size_t csum_off;
	__u32 sum = 0;
	__u16 csum;

	switch (p->l4_proto) {
	case IPPROTO_TCP:
		if (p->keep_l4_csum)
			return;
		csum_off = PKT_TCP_CSUM;
		break;
	case IPPROTO_UDP:
		csum_off = PKT_UDP_CSUM;
		if (p->udp_csum_zero) {
			wr16(l4 + csum_off, 0);
			return;
		}
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		csum_off = 2;
		break;
	default:
		return;
	}
	wr16(l4 + csum_off, 0);
	if (p->l4_proto != IPPROTO_ICMP)
		sum = pkt__pseudo(p, l4len);
	csum = pkt__csum_fold(pkt__csum_add(sum, l4, l4len));
	/* RFC 768: a computed 0 is sent as all ones, 0 means "none" */
	if (p->l4_proto == IPPROTO_UDP && csum == 0)
		csum = 0xffff;
	wr16(l4 + csum_off, csum);
}

/* As a sender with TX checksum offload leaves a TCP/UDP checksum
 * (CHECKSUM_PARTIAL): the folded pseudo-header sum, not complemented,
 * the segment itself not summed. */
void pkt__l4_seed(struct pkt *p)
{
	size_t off = p->l4_proto == IPPROTO_TCP ? PKT_TCP_CSUM : PKT_UDP_CSUM;
	__u16 seed;

	if (p->l4_off < 0 || (p->l4_proto != IPPROTO_TCP && p->l4_proto != IPPROTO_UDP))
		abort();
	seed = (__u16)~pkt__csum_fold(pkt__pseudo(p, p->len - p->l4_off));
	wr16(p->buf + p->l4_off + off, seed);
}

void pkt__finish(struct pkt *p)
{
	__u8 *ip;

	if (p->finished)
		return;
	if (p->l4_off >= 0 && p->l4_proto == IPPROTO_UDP && !p->keep_udp_len)
		wr16(p->buf + p->l4_off + PKT_UDP_LEN, (__u16)(p->len - p->l4_off));
	if (p->l3_off >= 0) {
		ip = p->buf + p->l3_off;
		if (p->af == 4 && !p->keep_ip_len)
			wr16(ip + PKT_IP4_TOT_LEN, (__u16)(p->len - p->l3_off));
		if (p->af == 6 && !p->keep_ip_len)
			wr16(ip + PKT_IP6_PLEN, (__u16)(p->len - p->l3_off - IP6_HLEN));
	}
	if (p->l4_off >= 0)
		pkt__l4_csum(p);
	if (p->l3_off >= 0 && p->af == 4)
		pkt__ipv4_csum_fix(p);
	p->finished = true;
}

void pkt__truncate(struct pkt *p, size_t len)
{
	if (len > p->len)
		pkt__die("truncate beyond the end");
	p->len = len;
}

void pkt__pad(struct pkt *p, size_t n)
{
	if (p->len + n > PKT_MAX)
		pkt__die("padding beyond PKT_MAX");
	memset(p->buf + p->len, 0, n);
	p->len += n;
}

void pkt__put8(struct pkt *p, size_t off, __u8 v)
{
	if (off + 1 > p->len)
		pkt__die("put8 beyond the end");
	p->buf[off] = v;
}

void pkt__put16(struct pkt *p, size_t off, __u16 v)
{
	if (off + 2 > p->len)
		pkt__die("put16 beyond the end");
	wr16(p->buf + off, v);
}

void pkt__put32(struct pkt *p, size_t off, __u32 v)
{
	if (off + 4 > p->len)
		pkt__die("put32 beyond the end");
	wr32(p->buf + off, v);
}

__u16 pkt__get16(const struct pkt *p, size_t off)
{
	return rd16(p->buf + off);
}

__u32 pkt__get32(const struct pkt *p, size_t off)
{
	return (__u32)rd16(p->buf + off) << 16 | rd16(p->buf + off + 2);
}

struct pkt_field {
	unsigned int from, to; /* [from, to) relative to the header */
	const char *name;
};

/* clang-format off */
static const struct pkt_field eth_fields[] = {
	{ 0, 6, "Ethernet dst MAC" }, { 6, 12, "Ethernet src MAC" },
	{ 12, 14, "ethertype" },
};
static const struct pkt_field ip4_fields[] = {
	{ 0, 1, "IPv4 version/ihl" }, { 1, 2, "IPv4 tos" }, { 2, 4, "IPv4 tot_len" },
	{ 4, 6, "IPv4 id" }, { 6, 8, "IPv4 frag_off" }, { 8, 9, "IPv4 ttl" },
	{ 9, 10, "IPv4 protocol" }, { 10, 12, "IPv4 header csum" },
	{ 12, 16, "IPv4 saddr" }, { 16, 20, "IPv4 daddr" }, { 20, 60, "IPv4 options" },
};
static const struct pkt_field ip6_fields[] = {
	{ 0, 4, "IPv6 version/tclass/flow" }, { 4, 6, "IPv6 payload_len" },
	{ 6, 7, "IPv6 nexthdr" }, { 7, 8, "IPv6 hop_limit" },
	{ 8, 24, "IPv6 saddr" }, { 24, 40, "IPv6 daddr" },
};
static const struct pkt_field tcp_fields[] = {
	{ 0, 2, "TCP sport" }, { 2, 4, "TCP dport" }, { 4, 8, "TCP seq" },
	{ 8, 12, "TCP ack_seq" }, { 12, 13, "TCP doff" }, { 13, 14, "TCP flags" },
	{ 14, 16, "TCP window" }, { 16, 18, "TCP csum" }, { 18, 20, "TCP urg_ptr" },
	{ 20, 60, "TCP options/payload" },
};
static const struct pkt_field udp_fields[] = {
	{ 0, 2, "UDP sport" }, { 2, 4, "UDP dport" }, { 4, 6, "UDP len" },
	{ 6, 8, "UDP csum" },
};
static const struct pkt_field icmp_fields[] = {
	{ 0, 1, "ICMP type" }, { 1, 2, "ICMP code" }, { 2, 4, "ICMP csum" },
	{ 4, 8, "ICMP rest of header" },
};
/* clang-format on */

static const char *pkt__lookup(const struct pkt_field *f, size_t n, size_t rel, const char *dflt)
{
	for (size_t i = 0; i < n; i++)
		if (rel >= f[i].from && rel < f[i].to)
			return f[i].name;
	return dflt;
}

#define PKT_LOOKUP(tbl, rel, dflt) pkt__lookup(tbl, sizeof(tbl) / sizeof(tbl[0]), rel, dflt)

const char *pkt__field_name(const struct pkt *p, size_t off)
{
	size_t ihl;

	if (off >= p->len)
		return "beyond the expected end";
	if (p->l3_off < 0 || off < (size_t)p->l3_off)
		return off < 14 ? PKT_LOOKUP(eth_fields, off, "L2") : "VLAN tag";
	if (p->l4_off < 0 || off < (size_t)p->l4_off) {
		if (p->af == 4) {
			ihl = (size_t)(p->buf[p->l3_off] & 0xf) * 4;
			if (off - p->l3_off < (ihl > 20 ? ihl : 20))
				return PKT_LOOKUP(ip4_fields, off - p->l3_off, "IPv4 header");
			return "IP payload";
		}
		if (off - p->l3_off < IP6_HLEN)
			return PKT_LOOKUP(ip6_fields, off - p->l3_off, "IPv6 header");
		return p->l4_off < 0 ? "IPv6 ext header or payload" : "IPv6 ext header";
	}
	switch (p->l4_proto) {
	case IPPROTO_TCP:
		return PKT_LOOKUP(tcp_fields, off - p->l4_off, "TCP payload");
	case IPPROTO_UDP:
		return PKT_LOOKUP(udp_fields, off - p->l4_off, "UDP payload");
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return PKT_LOOKUP(icmp_fields, off - p->l4_off, "ICMP quoted packet");
	}
	return "L4";
}
