/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * nat.h - rewrite one address + port of a parsed packet (destination for
 * DNAT, source for reverse NAT) with incremental checksum updates.
 *
 * nat_rewrite_direct() writes through packet pointers with software
 * checksums (XDP: the frame carries complete checksums). nat_rewrite_skb()
 * goes through the skb helpers, which also keep CHECKSUM_PARTIAL and
 * CHECKSUM_COMPLETE skbs right (tc: locally generated traffic).
 */
#ifndef SLUICE_BPF_NAT_H
#define SLUICE_BPF_NAT_H

#include "common.h"
#include "csum.h"
#include "parse.h"

#define IPV4_SADDR_OFF 12
#define IPV4_DADDR_OFF 16
#define IPV4_CSUM_OFF 10
#define IPV6_SADDR_OFF 8
#define IPV6_DADDR_OFF 24
#define TCP_CSUM_OFF 16
#define UDP_CSUM_OFF 6

static __always_inline __u32 nat_l4_csum_off(const struct pkt *p)
{
	return p->l4_off + (p->tuple.proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF);
}

static __always_inline int nat_rewrite_direct(struct pkt *p, const __u32 *addr, __u16 port,
					      bool dst)
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
	diff += csum_diff16(old_port, port);
	/* IPv4 UDP checksum 0 means "none": keep it so. */
	if (p->tuple.proto == IPPROTO_UDP && !*check)
		return 0;
	csum_apply(check, diff);
	if (p->tuple.proto == IPPROTO_UDP && !*check)
		*check = 0xffff;
	return 0;
}

static __always_inline int nat_rewrite_skb(struct __sk_buff *skb, const struct pkt *p,
					   const __u32 *addr, __u16 port, bool dst)
{
	const __u32 *old_addr = dst ? p->tuple.daddr : p->tuple.saddr;
	__u16 old_port = dst ? p->tuple.dport : p->tuple.sport;
	__u32 csum_off = nat_l4_csum_off(p);
	__u64 l4flags = p->tuple.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 addr_off, port_off = p->l4_off + (dst ? 2 : 0);
	__u32 new_addr[4];
	int ret;

	__builtin_memcpy(new_addr, addr, sizeof(new_addr));
	if (pkt_is_v6(p)) {
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

#endif /* SLUICE_BPF_NAT_H */
