/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * csum_xdp.h - partial (offloaded) L4 checksums as XDP sees them (#17).
 *
 * A local sender with TX checksum offload (veth's default) hands down
 * CHECKSUM_PARTIAL skbs: the TCP/UDP checksum field holds only the folded
 * pseudo-header sum (the "seed"), and whoever transmits the skb finishes it
 * over the segment from csum_start. XDP has no skb to ask. What veth does
 * with such an skb when an XDP program is attached (drivers/net/veth.c,
 * veth_xdp_rcv_skb(), the same in 6.1 and 6.18):
 *  - XDP_PASS: the skb goes on with ip_summed, csum_start and csum_offset
 *    as they were (also when veth_convert_skb_to_xdp_buff() copied it:
 *    skb_copy_header()). It is still partial: a local receiver trusts it
 *    without looking, a device without checksum offload completes it from
 *    the seed (skb_checksum_help()), so the seed must stay a seed, of the
 *    new addresses: seed += address difference; the ports are part of the
 *    summed segment, not of the seed.
 *  - XDP_TX / XDP_REDIRECT: the skb is consumed, only the bytes travel on
 *    (xdp_frame); the receiver builds a CHECKSUM_NONE skb and verifies. A
 *    seed there is a wrong checksum: it must be completed in XDP first.
 * Measured here on 6.18, main before this header, a sender with TX
 * offload on: XDP + kernel forwarding worked only because nothing verified
 * the wrong seed; with FIB redirect, or an egress device without checksum
 * offload, every TCP and UDP packet through the VIP was lost.
 *
 * So a frame is taken as partial when its L4 checksum field equals the
 * seed of its own addresses and length. A complete checksum equals that
 * value for 1 in 65536 packets; those are told apart by checking the
 * complete checksum over the segment, summed only for frames that look
 * partial (a NIC's frames almost never pay it). What stays ambiguous:
 * a partial frame whose seed is also its valid complete checksum (1 in
 * 65536 partial frames) is taken as complete; kept so, since a wrong guess
 * the other way would damage traffic of NICs, whose frames are all complete.
 */
#ifndef SLUICE_BPF_CSUM_XDP_H
#define SLUICE_BPF_CSUM_XDP_H

#include "common.h"
#include "csum.h"
#include "parse.h"

/* bpf_csum_diff() sums at most 512 bytes a call. */
#define CSUM_XDP_CHUNK 512
/* Longest L4 segment summed: a veth with XDP caps its peer's MTU to one
 * page less headroom (~3.5 KiB) and disables its GSO. Longer ones (a NIC's
 * jumbo frames) are not verified. */
#ifndef CSUM_XDP_MAX
#define CSUM_XDP_MAX 4096
#endif

/* The pseudo-header sum of @p as parsed (before any rewrite), unfolded. */
static __always_inline __u64 csum_pseudo(const struct pkt *p)
{
	const __u32 *s = p->tuple.saddr, *d = p->tuple.daddr;
	__u64 sum = (__u64)s[0] + d[0];

	if (pkt_is_v6(p))
		sum += (__u64)s[1] + s[2] + s[3] + d[1] + d[2] + d[3];
	return sum + bpf_htons((__u16)p->tuple.proto) + bpf_htons(p->l4_len);
}

/**
 * csum_xdp_sum() - one's-complement sum of @len packet bytes from @off.
 *
 * Global (verified once, own stack frame). Return: the sum (32 bits, to be
 * folded), or -1 when the bytes are not all in the frame or @len is over
 * CSUM_XDP_MAX.
 */
__noinline __s64 csum_xdp_sum(struct xdp_md *ctx, __u32 off, __u32 len)
{
	void *data, *data_end, *pos;
	__u64 sum = 0;

	if (!ctx || off >= PKT_OFF_MAX || len > CSUM_XDP_MAX)
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	pos = data + off;
	for (int i = 0; i < CSUM_XDP_MAX / CSUM_XDP_CHUNK; i++) {
		if (len < CSUM_XDP_CHUNK)
			break;
		if (pos + CSUM_XDP_CHUNK > data_end)
			return -1;
		sum += (__u32)bpf_csum_diff(NULL, 0, pos, CSUM_XDP_CHUNK, 0);
		pos += CSUM_XDP_CHUNK;
		len -= CSUM_XDP_CHUNK;
	}
#pragma unroll
	for (int b = CSUM_XDP_CHUNK / 2; b >= 4; b /= 2) {
		if (!(len & b))
			continue;
		if (pos + b > data_end)
			return -1;
		sum += (__u32)bpf_csum_diff(NULL, 0, pos, b, 0);
		pos += b;
	}
	if (len & 2) {
		if (pos + 2 > data_end)
			return -1;
		sum += *(__u16 *)pos;
		pos += 2;
	}
	if (len & 1) {
		if (pos + 1 > data_end)
			return -1;
		sum += *(__u8 *)pos; /* the odd byte as the high half of a word */
	}
	sum = (sum & 0xffffffff) + (sum >> 32);
	return (sum & 0xffffffff) + (sum >> 32);
}

static __always_inline __u16 *csum_xdp_field(const struct pkt *p)
{
	void *l4 = p->data + (p->l4_off & PKT_OFF_MASK);

	if (p->tuple.proto == IPPROTO_TCP) {
		if (l4 + sizeof(struct tcphdr) > p->data_end)
			return NULL;
		return &((struct tcphdr *)l4)->check;
	}
	if (l4 + sizeof(struct udphdr) > p->data_end)
		return NULL;
	return &((struct udphdr *)l4)->check;
}

/**
 * csum_xdp_is_partial() - does @p's L4 checksum field hold a seed (see the
 * top of this file)? Called before any rewrite of @p.
 */
static __always_inline bool csum_xdp_is_partial(struct xdp_md *ctx, const struct pkt *p)
{
	__u16 *check = csum_xdp_field(p);
	__u64 pseudo;
	__s64 sum;

	/* 0: an IPv4 UDP datagram without checksum; never a seed */
	if (!check || !*check)
		return false;
	pseudo = csum_pseudo(p);
	if (*check != csum_fold(pseudo))
		return false;
	sum = csum_xdp_sum(ctx, p->l4_off & PKT_OFF_MASK, p->l4_len);
	if (sum < 0)
		return true; /* cannot check the other reading: the likely one */
	return csum_fold(pseudo + sum) != 0xffff;
}

/* Move a seed to new addresses: the difference of the addresses only. */
static __always_inline void csum_apply_seed(__u16 *check, __u64 diff)
{
	*check = csum_fold(*check + diff);
}

/**
 * csum_xdp_complete() - turn the seed in @p's checksum field into the
 * complete checksum, for a frame leaving its skb (redirect). The field
 * holds the pseudo-header sum, so the sum over the segment is all it takes.
 * Return: 0, or -1 when the segment could not be summed (leave it to the
 * kernel, whose skb is still partial).
 */
static __always_inline int csum_xdp_complete(struct xdp_md *ctx, const struct pkt *p)
{
	__s64 sum = csum_xdp_sum(ctx, p->l4_off & PKT_OFF_MASK, p->l4_len);
	__u16 *check, c;

	if (sum < 0)
		return -1;
	check = csum_xdp_field(p);
	if (!check)
		return -1;
	c = ~csum_fold(sum);
	if (p->tuple.proto == IPPROTO_UDP && !c)
		c = 0xffff;
	*check = c;
	return 0;
}

#endif /* SLUICE_BPF_CSUM_XDP_H */
