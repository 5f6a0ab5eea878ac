/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * fwd.h - forward a rewritten frame from XDP: FIB lookup in the kernel's
 * tables, TTL decrement and MAC rewrite as the kernel's forwarding would,
 * then redirect. Whatever the FIB cannot resolve (no neighbour yet, local
 * delivery, TTL expiring) goes to the kernel with XDP_PASS, which handles
 * it and learns the neighbour for the next packet.
 */
#ifndef SLUICE_BPF_FWD_H
#define SLUICE_BPF_FWD_H

#include "common.h"
#include "csum_xdp.h"
#include "parse.h"
#include "stats.h"

static __always_inline int fwd_pass(void)
{
	stats_count(SLUICE_CNT_FIB_PASS);
	return XDP_PASS;
}

/* @partial: the frame's L4 checksum is a seed (csum_xdp.h), right for
 * the kernel, which keeps the skb partial, but completed before a redirect,
 * which sends the bytes alone. */
static __always_inline int fwd_fib_xdp(struct xdp_md *ctx, const struct pkt *p, bool partial)
{
	struct bpf_fib_lookup fib = {};
	struct ethhdr *eth = p->data;
	struct ipv6hdr *ip6;
	struct iphdr *ip;
	__u32 check;

	if (!cfg_has(SLUICE_CFG_FIB_FORWARD))
		return fwd_pass();

	fib.l4_protocol = p->tuple.proto;
	fib.ifindex = ctx->ingress_ifindex;
	if (pkt_is_v6(p)) {
		ip6 = p->data + ETH_HLEN;
		if ((void *)(ip6 + 1) > p->data_end)
			return fwd_pass();
		fib.family = AF_INET6;
		fib.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0FFFFFFF);
		fib.tot_len = bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(fib.ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, 16);
	} else {
		ip = p->data + ETH_HLEN;
		if ((void *)(ip + 1) > p->data_end)
			return fwd_pass();
		fib.family = AF_INET;
		fib.tos = ip->tos;
		fib.tot_len = bpf_ntohs(ip->tot_len);
		fib.ipv4_src = ip->saddr;
		fib.ipv4_dst = ip->daddr;
	}

	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return fwd_pass();
	if ((void *)(eth + 1) > p->data_end)
		return fwd_pass();

	if (pkt_is_v6(p)) {
		ip6 = p->data + ETH_HLEN;
		if ((void *)(ip6 + 1) > p->data_end || ip6->hop_limit <= 1)
			return fwd_pass();
		ip6->hop_limit--;
	} else {
		ip = p->data + ETH_HLEN;
		if ((void *)(ip + 1) > p->data_end || ip->ttl <= 1)
			return fwd_pass();
		/* RFC 1624 update for the TTL byte going down by one */
		check = ip->check + bpf_htons(0x0100);
		ip->check = check + (check >= 0xffff);
		ip->ttl--;
	}
	if (partial && csum_xdp_complete(ctx, p))
		return fwd_pass();
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	stats_count(SLUICE_CNT_FIB_REDIRECT);
	return bpf_redirect(fib.ifindex, 0);
}

#endif /* SLUICE_BPF_FWD_H */
