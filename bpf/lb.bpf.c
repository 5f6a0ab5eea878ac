// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * lb.bpf.c - L4 load balancer entry points.
 *
 * xdp_lb: on a node's ingress interfaces; balances new flows to backends,
 * DNATs (and SNATs where the service or a hairpin asks, lib/snat.h),
 * reverse-NATs replies, forwards with a FIB lookup + redirect where the
 * egress can take XDP frames (lib/fwd.h) and refuses connections to
 * services without backends.
 * tc_lb: the same decision at tc ingress, for interfaces or traffic XDP
 * cannot serve; forwards with a FIB lookup + redirect(_neigh).
 * Both share bpf/lib; only packet writing differs (direct vs skb helpers).
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/lb.h"
#include "lib/nat.h"
#include "lib/refuse.h"
#include "lib/fwd.h"

/* Bytes the tc entry wants linear: Ethernet + IPv6 + extension headers +
 * TCP with options, or the whole packet when shorter. */
#define TC_PULL_LEN 256

/* Out of line (tc_refuse too): the refusal path's locals get a frame of
 * their own instead of adding to the entry's, which already holds the
 * conntrack keys (512 bytes of stack for the whole call chain). */
static __noinline int xdp_refuse(struct xdp_md *ctx, struct pkt *p, const struct lb_result *r)
{
	struct refuse_buf *b = refuse_buf_get();
	int len, delta;

	if (!b)
		goto fail;
	len = refuse_build(p, b);
	if (len == REFUSE_SILENT) {
		lb_refused(r);
		return XDP_DROP;
	}
	if (len < 0 || len > REFUSE_MAX_LEN)
		goto fail;
	delta = len - (int)p->frame_len;
	if (delta > 0 && bpf_xdp_adjust_head(ctx, -delta))
		goto fail;
	if (delta < 0 && bpf_xdp_adjust_tail(ctx, delta))
		goto fail;
	if (bpf_xdp_store_bytes(ctx, 0, refuse_frame(b), len))
		goto fail;
	lb_refused(r);
	return XDP_TX;
fail:
	lb_drop(SLUICE_DROP_REFUSE_FAILED);
	return XDP_DROP;
}

SEC("xdp")
int xdp_lb(struct xdp_md *ctx)
{
	struct lb_result r = {};
	struct pkt p = {
		.data = (void *)(long)ctx->data,
		.data_end = (void *)(long)ctx->data_end,
	};
	bool partial;

	p.frame_len = p.data_end - p.data;
	lb_process(&p, &r);
	switch (r.action) {
	case LB_PASS:
		return XDP_PASS;
	case LB_DNAT:
	case LB_REVNAT:
		/* A local sender's TX checksum offload (veth): lib/csum_xdp.h */
		partial = csum_xdp_is_partial(ctx, &p);
		if (partial)
			stats_count(SLUICE_CNT_CSUM_PARTIAL);
		if (nat_rewrite_direct(&p, r.addr, r.port, r.action == LB_DNAT, partial))
			return XDP_PASS;
		if (lb_has_snat(&r) && nat_rewrite_xdp_to(ctx, &r.nat,
							  nat_where(&p, r.action != LB_DNAT) |
								  (partial ? NAT_W_PARTIAL : 0)))
			return XDP_PASS;
		return fwd_fib_xdp(ctx, &p, partial);
	case LB_REFUSE:
		return xdp_refuse(ctx, &p, &r);
	default:
		lb_drop(r.drop);
		return XDP_DROP;
	}
}

static __noinline int tc_refuse(struct __sk_buff *skb, struct pkt *p, const struct lb_result *r)
{
	struct refuse_buf *b = refuse_buf_get();
	int len;

	if (!b)
		goto fail;
	len = refuse_build(p, b);
	if (len == REFUSE_SILENT) {
		lb_refused(r);
		return TC_ACT_SHOT;
	}
	if (len < 0 || len > REFUSE_MAX_LEN)
		goto fail;
	if (bpf_skb_change_tail(skb, len, 0))
		goto fail;
	if (bpf_skb_store_bytes(skb, 0, refuse_frame(b), len, 0))
		goto fail;
	lb_refused(r);
	return bpf_redirect(skb->ifindex, 0);
fail:
	lb_drop(SLUICE_DROP_REFUSE_FAILED);
	return TC_ACT_SHOT;
}

SEC("tc")
int tc_lb(struct __sk_buff *skb)
{
	struct lb_result r = {};
	struct pkt p = {};

	bpf_skb_pull_data(skb, skb->len < TC_PULL_LEN ? skb->len : TC_PULL_LEN);
	p.data = (void *)(long)skb->data;
	p.data_end = (void *)(long)skb->data_end;
	p.frame_len = skb->len;
	lb_process(&p, &r);
	switch (r.action) {
	case LB_PASS:
		return TC_ACT_OK;
	case LB_DNAT:
	case LB_REVNAT:
		if (nat_rewrite_skb(skb, &p, r.addr, r.port, r.action == LB_DNAT))
			return TC_ACT_OK;
		if (lb_has_snat(&r) &&
		    nat_rewrite_skb_to(skb, &r.nat, nat_where(&p, r.action != LB_DNAT)))
			return TC_ACT_OK;
		return fwd_fib_tc(skb, &p);
	case LB_REFUSE:
		return tc_refuse(skb, &p, &r);
	default:
		lb_drop(r.drop);
		return TC_ACT_SHOT;
	}
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
