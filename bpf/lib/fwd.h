/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * fwd.h - forward a rewritten frame ourselves: FIB lookup in the kernel's
 * tables, TTL decrement as the kernel's forwarding would, then redirect.
 *
 * XDP: a frame is redirected only to an egress device that can take XDP
 * frames, which is what the devmap `fwd_devs` lists (meshd fills it per
 * device, user/meshd/fwddev.c); any other egress gets the frame untouched
 * but for the NAT (XDP_PASS, counted fwd_not_capable): a redirect to a
 * device without ndo_xdp_xmit, or to a veth whose peer has neither XDP nor
 * GRO, would be dropped by the kernel. SLUICE_CFG_FIB_FORWARD forces the
 * redirect to any egress (bpf_redirect), SLUICE_CFG_FWD_OFF hands every
 * frame to the kernel without a lookup.
 * tc: any egress can take an skb; a resolved neighbour gets the MACs
 * written and bpf_redirect, an unresolved one bpf_redirect_neigh (5.10+,
 * the nexthop argument 5.11+), which resolves it like the kernel would.
 * Whatever the FIB cannot resolve (local delivery, no route, forwarding
 * off, TTL expiring, too big for the egress MTU) goes to the kernel.
 *
 * Both are out of line: the lookup's 64-byte parameter block gets a frame
 * of its own, off the entry's deepest call chain (the 6.1 stack limit).
 */
#ifndef SLUICE_BPF_FWD_H
#define SLUICE_BPF_FWD_H

#include "common.h"
#include "csum_xdp.h"
#include "maps.h"
#include "parse.h"
#include "stats.h"

/* Kernel UAPI values vmlinux.h does not carry as macros. */
#define FWD_TC_ACT_REDIRECT 7

static __always_inline int fwd_pass(void)
{
	stats_count(SLUICE_CNT_FIB_PASS);
	return XDP_PASS;
}

/* Fills fib from the IP header at data + ETH_HLEN; false when truncated. */
static __always_inline bool fwd_fib_params(struct bpf_fib_lookup *fib, void *data, void *data_end,
					   bool v6, __u8 proto, bool with_len)
{
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct iphdr *ip = data + ETH_HLEN;

	fib->l4_protocol = proto;
	if (v6) {
		if ((void *)(ip6 + 1) > data_end)
			return false;
		fib->family = AF_INET6;
		fib->flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0FFFFFFF);
		if (with_len)
			fib->tot_len = bpf_ntohs(ip6->payload_len);
		__builtin_memcpy(fib->ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(fib->ipv6_dst, &ip6->daddr, 16);
	} else {
		if ((void *)(ip + 1) > data_end)
			return false;
		fib->family = AF_INET;
		fib->tos = ip->tos;
		if (with_len)
			fib->tot_len = bpf_ntohs(ip->tot_len);
		fib->ipv4_src = ip->saddr;
		fib->ipv4_dst = ip->daddr;
	}
	return true;
}

/* TTL / hop limit above 1 after this hop; false: the kernel must answer. */
static __always_inline bool fwd_ttl_ok(void *data, void *data_end, bool v6)
{
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct iphdr *ip = data + ETH_HLEN;

	if (v6)
		return (void *)(ip6 + 1) <= data_end && ip6->hop_limit > 1;
	return (void *)(ip + 1) <= data_end && ip->ttl > 1;
}

/* TTL - 1 (fwd_ttl_ok() said there is one) and the FIB's MACs. */
static __always_inline void fwd_rewrite(void *data, void *data_end, bool v6,
					const struct bpf_fib_lookup *fib, bool macs)
{
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 check;

	if (v6) {
		if ((void *)(ip6 + 1) > data_end)
			return;
		ip6->hop_limit--;
	} else {
		if ((void *)(ip + 1) > data_end)
			return;
		/* RFC 1624 update for the TTL byte going down by one */
		check = ip->check + bpf_htons(0x0100);
		ip->check = check + (check >= 0xffff);
		ip->ttl--;
	}
	if (macs && (void *)(eth + 1) <= data_end) {
		__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	}
}

/* @partial: the frame's L4 checksum is a seed (csum_xdp.h), right for
 * the kernel, which keeps the skb partial, but completed before a redirect,
 * which sends the bytes alone. */
static __noinline int fwd_fib_xdp(struct xdp_md *ctx, const struct pkt *p, bool partial)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	bool v6 = pkt_is_v6(p);
	int verdict;

	if (cfg_has(SLUICE_CFG_FWD_OFF))
		return fwd_pass();
	fib.ifindex = ctx->ingress_ifindex;
	if (!fwd_fib_params(&fib, data, data_end, v6, p->tuple.proto, true))
		return fwd_pass();
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return fwd_pass();
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (!fwd_ttl_ok(data, data_end, v6))
		return fwd_pass();
	if (cfg_has(SLUICE_CFG_FIB_FORWARD)) {
		verdict = bpf_redirect(fib.ifindex, 0);
	} else {
		/* a miss returns the flags' action bits: XDP_PASS (5.3+) */
		verdict = bpf_redirect_map(&fwd_devs, fib.ifindex, XDP_PASS);
		if (verdict != XDP_REDIRECT) {
			stats_count(SLUICE_CNT_FWD_NOT_CAPABLE);
			return XDP_PASS;
		}
	}
	if (partial && csum_xdp_complete(ctx, p))
		return fwd_pass();
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	fwd_rewrite(data, data_end, v6, &fib, true);
	stats_count(SLUICE_CNT_FIB_REDIRECT);
	return verdict;
}

static __noinline int fwd_fib_tc(struct __sk_buff *skb, const struct pkt *p)
{
	struct bpf_redir_neigh nh = {};
	struct bpf_fib_lookup fib = {};
	bool v6 = pkt_is_v6(p);
	void *data, *data_end;
	int rc;

	if (cfg_has(SLUICE_CFG_FWD_OFF))
		goto pass;
	/* the NAT's skb helpers invalidated every packet pointer */
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	fib.ifindex = skb->ifindex;
	/* tot_len 0: the kernel checks the MTU against the skb (GSO aware) */
	if (!fwd_fib_params(&fib, data, data_end, v6, p->tuple.proto, false))
		goto pass;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		goto pass;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (!fwd_ttl_ok(data, data_end, v6))
		goto pass;
	fwd_rewrite(data, data_end, v6, &fib, rc == BPF_FIB_LKUP_RET_SUCCESS);
	stats_count(SLUICE_CNT_FIB_REDIRECT);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return bpf_redirect(fib.ifindex, 0);
	/* the lookup left the nexthop in the destination */
	nh.nh_family = fib.family;
	if (v6)
		__builtin_memcpy(nh.ipv6_nh, fib.ipv6_dst, 16);
	else
		nh.ipv4_nh = fib.ipv4_dst;
	return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
pass:
	stats_count(SLUICE_CNT_FIB_PASS);
	return TC_ACT_OK;
}

#endif /* SLUICE_BPF_FWD_H */
