/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * nat.h - rewrite one address + port of a parsed packet (destination for
 * DNAT, source for reverse NAT) with incremental checksum updates.
 *
 * nat_rewrite_direct() writes through packet pointers with software
 * checksums (XDP): complete ones, or a partial checksum's seed where the
 * frame's says it is one (csum_xdp.h). nat_rewrite_skb()
 * goes through the skb helpers, which also keep CHECKSUM_PARTIAL and
 * CHECKSUM_COMPLETE skbs right (tc: locally generated traffic).
 */
#ifndef SLUICE_BPF_NAT_H
#define SLUICE_BPF_NAT_H

#include "common.h"
#include "csum.h"
#include "csum_xdp.h"
#include "parse.h"

#define IPV4_SADDR_OFF 12
#define IPV4_DADDR_OFF 16
#define IPV4_CSUM_OFF 10
#define IPV6_SADDR_OFF 8
#define IPV6_DADDR_OFF 24
#define TCP_CSUM_OFF 16
#define UDP_CSUM_OFF 6

/* Which end of which packet a rewrite touches, in one scalar (global
 * functions take few arguments): the L4 header offset and these bits. */
#define NAT_W_DST (1u << 16) /* the destination (else the source) */
#define NAT_W_V6 (1u << 17)
#define NAT_W_UDP (1u << 18)     /* else TCP */
#define NAT_W_PARTIAL (1u << 19) /* XDP: the checksum field is a seed (csum_xdp.h) */

static __always_inline __u32 nat_where(const struct pkt *p, bool dst)
{
	return (p->l4_off & PKT_OFF_MASK) | (dst ? NAT_W_DST : 0) | (pkt_is_v6(p) ? NAT_W_V6 : 0) |
	       (p->tuple.proto == IPPROTO_UDP ? NAT_W_UDP : 0);
}

/* @partial: the L4 checksum field holds a partial checksum's seed
 * (csum_xdp_is_partial()): only the addresses move it. */
static __always_inline int nat_rewrite_direct(struct pkt *p, const __u32 *addr, __u16 port,
					      bool dst, bool partial)
{
	void *l4 = p->data + (p->l4_off & PKT_OFF_MASK);
	const __u32 *old_addr = dst ? p->tuple.daddr : p->tuple.saddr;
	__u16 old_port = dst ? p->tuple.dport : p->tuple.sport;
	bool v6 = pkt_is_v6(p);
	__u16 *ports, *check;
	__u64 diff;

	if (l4 + sizeof(struct udphdr) > p->data_end)
		return -1;
	ports = l4;
	if (p->tuple.proto == IPPROTO_TCP) {
		if (l4 + sizeof(struct tcphdr) > p->data_end)
			return -1;
		check = &((struct tcphdr *)l4)->check;
	} else {
		check = &((struct udphdr *)l4)->check;
	}

	diff = csum_diff_addr(old_addr, addr, v6);
	if (v6) {
		struct ipv6hdr *ip6 = p->data + ETH_HLEN;

		if ((void *)(ip6 + 1) > p->data_end)
			return -1;
		__builtin_memcpy(dst ? (void *)&ip6->daddr : (void *)&ip6->saddr, addr, 16);
	} else {
		struct iphdr *ip = p->data + ETH_HLEN;

		if ((void *)(ip + 1) > p->data_end)
			return -1;
		if (dst)
			ip->daddr = addr[0];
		else
			ip->saddr = addr[0];
		csum_apply(&ip->check, diff);
	}

	ports[dst ? 1 : 0] = port;
	if (partial) {
		csum_apply_seed(check, diff);
		return 0;
	}
	diff += csum_diff16(old_port, port);
	/* IPv4 UDP checksum 0 means "none": keep it so. */
	if (p->tuple.proto == IPPROTO_UDP && !*check)
		return 0;
	csum_apply(check, diff);
	if (p->tuple.proto == IPPROTO_UDP && !*check)
		*check = 0xffff;
	return 0;
}

/* The skb rewrite of one end, from @old_addr:@old_port (as in the
 * packet) to @addr:@port; @where as nat_where(). */
static __always_inline int __nat_rewrite_skb(struct __sk_buff *skb, __u32 where,
					     const __u32 *old_addr, __u16 old_port,
					     const __u32 *addr, __u16 port)
{
	bool dst = where & NAT_W_DST, udp = where & NAT_W_UDP;
	__u32 l4_off = where & PKT_OFF_MASK;
	__u32 csum_off = l4_off + (udp ? UDP_CSUM_OFF : TCP_CSUM_OFF);
	__u64 l4flags = udp ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 addr_off, port_off = l4_off + (dst ? 2 : 0);
	__u32 new_addr[4];
	int ret;

	__builtin_memcpy(new_addr, addr, sizeof(new_addr));
	if (where & NAT_W_V6) {
		__u32 old[4];
		__s64 diff;

		__builtin_memcpy(old, old_addr, sizeof(old));
		addr_off = ETH_HLEN + (dst ? IPV6_DADDR_OFF : IPV6_SADDR_OFF);
		diff = bpf_csum_diff(old, 16, new_addr, 16, 0);
		/* BPF_F_IPV6: the address change and the checksum change cancel
		 * out in skb->csum (CHECKSUM_COMPLETE) for IPv6 */
		ret = bpf_l4_csum_replace(skb, csum_off, 0, diff,
					  l4flags | BPF_F_PSEUDO_HDR | BPF_F_IPV6);
		ret = ret ?: bpf_skb_store_bytes(skb, addr_off, new_addr, 16, 0);
	} else {
		addr_off = ETH_HLEN + (dst ? IPV4_DADDR_OFF : IPV4_SADDR_OFF);
		ret = bpf_l4_csum_replace(skb, csum_off, old_addr[0], new_addr[0],
					  l4flags | BPF_F_PSEUDO_HDR | 4);
		ret = ret   ?:
			      bpf_l3_csum_replace(skb, ETH_HLEN + IPV4_CSUM_OFF, old_addr[0],
						  new_addr[0], 4);
		ret = ret ?: bpf_skb_store_bytes(skb, addr_off, new_addr, 4, 0);
	}
	ret = ret ?: bpf_l4_csum_replace(skb, csum_off, old_port, port, l4flags | 2);
	ret = ret ?: bpf_skb_store_bytes(skb, port_off, &port, 2, 0);
	return ret;
}

static __always_inline int nat_rewrite_skb(struct __sk_buff *skb, const struct pkt *p,
					   const __u32 *addr, __u16 port, bool dst)
{
	const __u32 *old_addr = dst ? p->tuple.daddr : p->tuple.saddr;
	__u16 old_port = dst ? p->tuple.dport : p->tuple.sport;

	return __nat_rewrite_skb(skb, nat_where(p, dst), old_addr, old_port, addr, port);
}

/*
 * nat_rewrite_skb_to() - the second rewrite of a source-NATed packet:
 * @where's end (nat_where()) to @to's address:port, the old values read
 * from the packet (the first rewrite left this end alone). Global
 * functions, verified once on their own (and nat_rewrite_xdp_to() too):
 * inlined behind the entry's "is it SNATed" test, the rewrite and the
 * forwarding after it were walked twice by the verifier.
 */
__noinline int nat_rewrite_skb_to(struct __sk_buff *skb, const struct sluice_snat_entry *to,
				  __u32 where)
{
	bool dst = where & NAT_W_DST, v6 = where & NAT_W_V6;
	__u32 l4_off = where & PKT_OFF_MASK, old[4] = {};
	__u16 old_port;

	if (!skb || !to)
		return -1;
	if (v6) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN + (dst ? IPV6_DADDR_OFF : IPV6_SADDR_OFF), old,
				       16))
			return -1;
	} else if (bpf_skb_load_bytes(skb, ETH_HLEN + (dst ? IPV4_DADDR_OFF : IPV4_SADDR_OFF), old,
				      4)) {
		return -1;
	}
	if (bpf_skb_load_bytes(skb, l4_off + (dst ? 2 : 0), &old_port, 2))
		return -1;
	return __nat_rewrite_skb(skb, where, old, old_port, to->addr, to->port);
}

/* The XDP twin of nat_rewrite_skb_to(), software checksums as in
 * nat_rewrite_direct(). */
__noinline int nat_rewrite_xdp_to(struct xdp_md *ctx, const struct sluice_snat_entry *to,
				  __u32 where)
{
	void *data, *data_end, *l4;
	bool dst = where & NAT_W_DST, udp = where & NAT_W_UDP;
	__u16 *ports, *check, old_port;
	__u32 old[4] = {};
	__u64 diff;

	if (!ctx || !to)
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	l4 = data + (where & PKT_OFF_MASK);
	if (l4 + sizeof(struct udphdr) > data_end)
		return -1;
	ports = l4;
	if (!udp) {
		if (l4 + sizeof(struct tcphdr) > data_end)
			return -1;
		check = &((struct tcphdr *)l4)->check;
	} else {
		check = &((struct udphdr *)l4)->check;
	}
	if (where & NAT_W_V6) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		__u32 *a;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		a = dst ? (__u32 *)&ip6->daddr : (__u32 *)&ip6->saddr;
		__builtin_memcpy(old, a, 16);
		__builtin_memcpy(a, to->addr, 16);
		diff = csum_diff_addr(old, to->addr, true);
	} else {
		struct iphdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > data_end)
			return -1;
		old[0] = dst ? ip->daddr : ip->saddr;
		if (dst)
			ip->daddr = to->addr[0];
		else
			ip->saddr = to->addr[0];
		diff = csum_diff32(old[0], to->addr[0]);
		csum_apply(&ip->check, diff);
	}
	old_port = ports[dst ? 1 : 0];
	ports[dst ? 1 : 0] = to->port;
	if (where & NAT_W_PARTIAL) {
		csum_apply_seed(check, diff);
		return 0;
	}
	diff += csum_diff16(old_port, to->port);
	/* IPv4 UDP checksum 0 means "none": keep it so. */
	if (udp && !*check)
		return 0;
	csum_apply(check, diff);
	if (udp && !*check)
		*check = 0xffff;
	return 0;
}

#endif /* SLUICE_BPF_NAT_H */
