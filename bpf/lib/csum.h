/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * csum.h - Internet checksum arithmetic (RFC 1071/1624) in software, so the
 * same code serves XDP (no skb) and the packet builders of refusals. All
 * values are summed as stored in the packet: one's-complement sums do not
 * depend on byte order as long as the result is stored the same way.
 */
#ifndef SLUICE_BPF_CSUM_H
#define SLUICE_BPF_CSUM_H

#include "common.h"

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Sum of the difference "old value replaced by new value" of a 32-bit field. */
static __always_inline __u64 csum_diff32(__u32 from, __u32 to)
{
	return (__u64)(~from) + to;
}

static __always_inline __u64 csum_diff16(__u16 from, __u16 to)
{
	return (__u64)(__u16)(~from) + to;
}

static __always_inline __u64 csum_diff_addr(const __u32 *from, const __u32 *to, bool v6)
{
	__u64 d = csum_diff32(from[0], to[0]);

	if (v6) {
		d += csum_diff32(from[1], to[1]);
		d += csum_diff32(from[2], to[2]);
		d += csum_diff32(from[3], to[3]);
	}
	return d;
}

/* Apply a difference to a stored (complemented) checksum field. */
static __always_inline void csum_apply(__u16 *check, __u64 diff)
{
	*check = ~csum_fold((__u64)(__u16) ~*check + diff);
}

/* Sum of len bytes (len even, compile-time constant) of memory the program
 * may read without bounds checks: stack or a map value, not the packet. */
static __always_inline __u64 csum_buf(const void *buf, int len)
{
	const __u16 *w = buf;
	__u64 sum = 0;

#pragma unroll
	for (int i = 0; i < len / 2; i++)
		sum += w[i];
	return sum;
}

#endif /* SLUICE_BPF_CSUM_H */
