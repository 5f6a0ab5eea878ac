// SPDX-License-Identifier: MIT
/*
 * test_trunc.c - every truncation length of the Ethernet, IPv4, IPv6,
 * extension, TCP and UDP headers, IP lengths beyond the frame, and every
 * bad ihl / doff value; each length or value is its own assertion with an
 * exact drop-reason delta and nothing else moving.
 *
 * Frames BPF_PROG_TEST_RUN refuses (shorter than 14 bytes for both
 * programs; for tc also IP frames cut inside the IP header) go through a
 * TUN device in a private network namespace instead (see dp.h).
 */
#include <string.h>

#include "dp.h"

#define SYN PKT_TH_SYN

/* ---- truncation loops ---- */

static void base_tcp4(struct pkt *p)
{
	dp__build(p, TCP4(CLIENT4, VIP4, 40000, 80, SYN, .seq = 1));
}

static void base_udp4(struct pkt *p)
{
	dp__build(p, UDP4(CLIENT4, VIP4, 40000, 53));
}

static void base_tcp6(struct pkt *p)
{
	dp__build(p, TCP6(CLIENT6, VIP6, 40000, 80, SYN, .seq = 1));
}

static void base_udp6(struct pkt *p)
{
	dp__build(p, UDP6(CLIENT6, VIP6, 40000, 53));
}

/* IPv6 + one extension header of ext_len bytes + TCP. */
static void base_ext6(struct pkt *p, __u8 type, size_t ext_len)
{
	pkt__eth(p, MAC_CLIENT, MAC_NODE, 0x86dd);
	pkt__ipv6(p, CLIENT6, VIP6, IPPROTO_TCP, .hop_limit = 57);
	if (type == IPPROTO_FRAGMENT)
		pkt__ipv6_frag(p, 0, false, 0x1234);
	else
		pkt__ipv6_ext(p, type, ext_len);
	pkt__tcp(p, 40000, 80, 1, 0, PKT_TH_SYN, .window = 502);
	pkt__finish(p);
}

static void base_hbh8(struct pkt *p)
{
	pkt__init(p);
	base_ext6(p, IPPROTO_HOPOPTS, 8);
}

static void base_dst16(struct pkt *p)
{
	pkt__init(p);
	base_ext6(p, IPPROTO_DSTOPTS, 16);
}

static void base_frag6(struct pkt *p)
{
	pkt__init(p);
	base_ext6(p, IPPROTO_FRAGMENT, 8);
}

enum trunc_fix {
	FIX_NONE,  /* lengths in the IP header still claim the full packet */
	FIX_IPLEN, /* IP lengths shrink with the frame: only L4/ext is short */
};

struct trunc {
	const char *what;
	void (*base)(struct pkt *p);
	size_t from, to;
	enum trunc_fix fix;
	enum sluice_drop_reason reason;
	struct dp_tun *tun; /* NULL: BPF_PROG_TEST_RUN */
};

static void trunc_build(const struct trunc *t, struct pkt *in, size_t len)
{
	t->base(in);
	pkt__truncate(in, len);
	if (t->fix == FIX_IPLEN && in->af == 4) {
		pkt__put16(in, in->l3_off + PKT_IP4_TOT_LEN, (__u16)(len - in->l3_off));
		pkt__ipv4_csum_fix(in);
	} else if (t->fix == FIX_IPLEN && in->af == 6) {
		pkt__put16(in, in->l3_off + PKT_IP6_PLEN, (__u16)(len - in->l3_off - 40));
	}
}

static int trunc_run(struct dp *d, void *arg)
{
	const struct trunc *t = arg;
	static struct pkt in, out;
	__u64 cnt[SLUICE_CNT__MAX] = { 0 }, drop[SLUICE_DROP__MAX] = { 0 };
	struct dp_counts before, after;
	int verdict;

	drop[t->reason] = 1;
	for (size_t len = t->from; len <= t->to; len++) {
		dp__at("%s len %zu%s", t->what, len, t->tun ? " via TUN" : "");
		trunc_build(t, &in, len);
		if (!dp__counts(d, &before))
			return 1;
		if (t->tun) {
			if (!dp__tun_send(d, t->tun, &in, &before, &after))
				continue;
		} else {
			if (!dp__send(d, &in, &out, &verdict))
				continue;
			if (verdict != dp__verdict_for(d, XDP_DROP))
				dp__fail(d, "verdict %s, expected drop %s",
					 dp__verdict_name(d, verdict),
					 sluice__drop_name(t->reason));
			if (!dp__counts(d, &after))
				continue;
		}
		dp__expect_counts(d, "counters", &before, &after, cnt, drop);
	}
	dp__at("%s", "");
	return 0;
}

static int trunc_run_tun(struct dp *d, void *arg)
{
	struct trunc t = *(const struct trunc *)arg;
	struct dp_tun tun;
	struct dp_counts before, after;
	static struct pkt full;

	if (!dp__tun_open(d, &tun))
		return 1;
	t.tun = &tun;
	trunc_run(d, &t);
	/* control: the untruncated frame through the same path is not
	 * dropped, so the drops above come from the cut and not the path */
	t.base(&full);
	dp__at("%s control frame of %zu bytes via TUN", t.what, full.len);
	if (dp__counts(d, &before) && dp__tun_send(d, &tun, &full, &before, &after)) {
		for (int i = 0; i < SLUICE_DROP__MAX; i++)
			if (after.drop[i] != before.drop[i])
				dp__fail(d, "control frame dropped as %s", sluice__drop_name(i));
		if (!memcmp(&before, &after, sizeof(after)))
			dp__fail(d, "control frame moved no counter: TUN path not working");
	}
	dp__tun_close(&tun);
	return test__failed;
}

/* Sends base truncated to each length in [from, to] and expects a drop
 * for reason, exactly. Each length is its own assertion. Loops holding a
 * frame the test-run interface refuses go through TUN as a whole. */
static void trunc_loop(struct dp *d, const char *what, void (*base)(struct pkt *), size_t from,
		       size_t to, enum trunc_fix fix, enum sluice_drop_reason reason)
{
	struct trunc t = { what, base, from, to, fix, reason, NULL };
	static struct pkt in;

	trunc_build(&t, &in, from);
	if (dp__needs_tun(d, &in))
		dp__in_child(d, trunc_run_tun, &t);
	else
		trunc_run(d, &t);
}

static void trunc_ipv4_prog(struct dp *d)
{
	trunc_loop(d, "tcp", base_tcp4, 14, 33, FIX_NONE, SLUICE_DROP_TRUNC_IPV4);
	trunc_loop(d, "udp", base_udp4, 14, 33, FIX_NONE, SLUICE_DROP_TRUNC_IPV4);
}

/* malformed_trunc_ipv4: frames of 14..33 bytes (IPv4 header cut) */
static void malformed_trunc_ipv4(void)
{
	dp__each_prog(0, trunc_ipv4_prog);
}

static void trunc_ipv6_prog(struct dp *d)
{
	trunc_loop(d, "tcp", base_tcp6, 14, 53, FIX_NONE, SLUICE_DROP_TRUNC_IPV6);
	trunc_loop(d, "udp", base_udp6, 14, 53, FIX_NONE, SLUICE_DROP_TRUNC_IPV6);
}

/* malformed_trunc_ipv6: frames of 14..53 bytes (IPv6 header cut) */
static void malformed_trunc_ipv6(void)
{
	dp__each_prog(0, trunc_ipv6_prog);
}

static void trunc_tcp_prog(struct dp *d)
{
	trunc_loop(d, "ipv4", base_tcp4, 34, 53, FIX_IPLEN, SLUICE_DROP_TRUNC_TCP);
	trunc_loop(d, "ipv6", base_tcp6, 54, 73, FIX_IPLEN, SLUICE_DROP_TRUNC_TCP);
}

/* malformed_trunc_tcp: consistent IP lengths, TCP header 0..19 bytes */
static void malformed_trunc_tcp(void)
{
	dp__each_prog(0, trunc_tcp_prog);
}

static void trunc_udp_prog(struct dp *d)
{
	trunc_loop(d, "ipv4", base_udp4, 34, 41, FIX_IPLEN, SLUICE_DROP_TRUNC_UDP);
	trunc_loop(d, "ipv6", base_udp6, 54, 61, FIX_IPLEN, SLUICE_DROP_TRUNC_UDP);
}

/* malformed_trunc_udp: consistent IP lengths, UDP header 0..7 bytes */
static void malformed_trunc_udp(void)
{
	dp__each_prog(0, trunc_udp_prog);
}

static void ip_len_beyond_prog(struct dp *d)
{
	/* header complete, but tot_len / payload_len claim the cut bytes */
	trunc_loop(d, "ipv4 tcp", base_tcp4, 34, 53, FIX_NONE, SLUICE_DROP_BAD_IPV4_LEN);
	trunc_loop(d, "ipv4 udp", base_udp4, 34, 41, FIX_NONE, SLUICE_DROP_BAD_IPV4_LEN);
	trunc_loop(d, "ipv6 tcp", base_tcp6, 54, 73, FIX_NONE, SLUICE_DROP_BAD_IPV6_LEN);
	trunc_loop(d, "ipv6 udp", base_udp6, 54, 61, FIX_NONE, SLUICE_DROP_BAD_IPV6_LEN);
}

/* malformed_ip_len_beyond_frame: tot_len / payload_len beyond the frame */
static void malformed_ip_len_beyond_frame(void)
{
	dp__each_prog(0, ip_len_beyond_prog);
}

static void trunc_exthdr_prog(struct dp *d)
{
	trunc_loop(d, "hop-by-hop", base_hbh8, 54, 61, FIX_IPLEN, SLUICE_DROP_IPV6_EXTHDR);
	trunc_loop(d, "dest-opts", base_dst16, 54, 69, FIX_IPLEN, SLUICE_DROP_IPV6_EXTHDR);
	trunc_loop(d, "fragment", base_frag6, 54, 61, FIX_IPLEN, SLUICE_DROP_IPV6_EXTHDR);
	/* the whole extension header, then a cut TCP header */
	trunc_loop(d, "hbh+tcp", base_hbh8, 62, 81, FIX_IPLEN, SLUICE_DROP_TRUNC_TCP);
}

/* malformed_trunc_ipv6_exthdr: every cut inside an extension header */
static void malformed_trunc_ipv6_exthdr(void)
{
	dp__each_prog(0, trunc_exthdr_prog);
}

/* ---- bad ihl and doff, looped over every bad value ---- */

enum poke_at {
	AT_L3,
	AT_L4,
};

/* Writes each value in [from, to] into the bits mask of the byte at
 * off from the IP (AT_L3) or L4 (AT_L4) header and expects a drop. */
static void poke_loop(struct dp *d, const char *what, void (*base)(struct pkt *), enum poke_at at,
		      size_t off, __u8 mask, unsigned int shift, unsigned int from, unsigned int to,
		      enum sluice_drop_reason reason)
{
	static struct pkt in, out;
	__u64 cnt[SLUICE_CNT__MAX] = { 0 }, drop[SLUICE_DROP__MAX] = { 0 };
	struct dp_counts before, after;
	int verdict;

	drop[reason] = 1;
	for (unsigned int v = from; v <= to; v++) {
		size_t pos;

		dp__at("%s %u", what, v);
		base(&in);
		pos = (size_t)(at == AT_L3 ? in.l3_off : in.l4_off) + off;
		pkt__put8(&in, pos, (__u8)((in.buf[pos] & ~mask) | (v << shift)));
		if (in.af == 4)
			pkt__ipv4_csum_fix(&in);
		if (!dp__counts(d, &before))
			return;
		if (!dp__send(d, &in, &out, &verdict))
			continue;
		if (verdict != dp__verdict_for(d, XDP_DROP))
			dp__fail(d, "verdict %s, expected drop %s", dp__verdict_name(d, verdict),
				 sluice__drop_name(reason));
		if (dp__counts(d, &after))
			dp__expect_counts(d, "counters", &before, &after, cnt, drop);
	}
	dp__at("%s", "");
}

static void ihl_prog(struct dp *d)
{
	/* 28 bytes after Ethernet: ihl 8..15 (32..60 bytes) cannot fit */
	poke_loop(d, "ihl", base_udp4, AT_L3, 0, 0x0f, 0, 0, 4, SLUICE_DROP_BAD_IHL);
	poke_loop(d, "ihl", base_udp4, AT_L3, 0, 0x0f, 0, 8, 15, SLUICE_DROP_BAD_IHL);
	poke_loop(d, "ihl (tcp)", base_tcp4, AT_L3, 0, 0x0f, 0, 0, 4, SLUICE_DROP_BAD_IHL);
	poke_loop(d, "ihl (tcp)", base_tcp4, AT_L3, 0, 0x0f, 0, 11, 15, SLUICE_DROP_BAD_IHL);
}

/* malformed_ipv4_ihl: ihl 0..4 and ihl*4 beyond the frame */
static void malformed_ipv4_ihl(void)
{
	dp__each_prog(0, ihl_prog);
}

static void doff_prog(struct dp *d)
{
	/* a bare 20-byte header: doff 6..15 points past the frame */
	poke_loop(d, "tcp doff v4", base_tcp4, AT_L4, 12, 0xf0, 4, 0, 4, SLUICE_DROP_TRUNC_TCP);
	poke_loop(d, "tcp doff v4", base_tcp4, AT_L4, 12, 0xf0, 4, 6, 15, SLUICE_DROP_TRUNC_TCP);
	poke_loop(d, "tcp doff v6", base_tcp6, AT_L4, 12, 0xf0, 4, 0, 4, SLUICE_DROP_TRUNC_TCP);
	poke_loop(d, "tcp doff v6", base_tcp6, AT_L4, 12, 0xf0, 4, 6, 15, SLUICE_DROP_TRUNC_TCP);
}

/* malformed_tcp_doff: doff 0..4 and doff*4 beyond the frame */
static void malformed_tcp_doff(void)
{
	dp__each_prog(0, doff_prog);
}

/* ---- frames shorter than Ethernet ---- */

static void trunc_eth_prog(struct dp *d)
{
	trunc_loop(d, "ethernet", base_tcp4, 0, 13, FIX_NONE, SLUICE_DROP_TRUNC_ETH);
}

/* malformed_trunc_eth: frames of 0..13 bytes are dropped TRUNC_ETH */
static void malformed_trunc_eth(void)
{
	dp__each_prog(0, trunc_eth_prog);
}

static const struct test trunc_tests[] = {
	TEST(malformed_trunc_eth),
	TEST(malformed_trunc_ipv4),
	TEST(malformed_trunc_ipv6),
	TEST(malformed_trunc_tcp),
	TEST(malformed_trunc_udp),
	TEST(malformed_trunc_ipv6_exthdr),
	TEST(malformed_ip_len_beyond_frame),
	TEST(malformed_ipv4_ihl),
	TEST(malformed_tcp_doff),
};

const struct dp_suite dp_suite_trunc = {
	.name = "trunc",
	.tests = trunc_tests,
	.ntests = ARRAY_SIZE(trunc_tests),
};
