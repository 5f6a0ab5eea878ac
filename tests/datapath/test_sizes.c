// SPDX-License-Identifier: MIT
/*
 * test_sizes.c - Maglev tables sized by need (#16) as packets see them: a
 * service growing past its table (10 -> 11 backends: 1021 -> 2039 slots)
 * and shrinking back, swapped whole under concurrent new flows; every
 * packet goes to a backend of the set, none is dropped; and at each size
 * the program's pick is the one `explain` computes with the table's own M.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <bpf/bpf.h>

#include "dp.h"
#include "explain.h"

#define SZ_VIP "10.96.0.44"
#define SZ_FLIPS 30
#define SZ_FLOWS 200

static const char *const sz_addrs[] = { "10.1.4.1", "10.1.4.2",  "10.1.4.3", "10.1.4.4",
					"10.1.4.5", "10.1.4.6",  "10.1.4.7", "10.1.4.8",
					"10.1.4.9", "10.1.4.10", "10.1.4.11" };

struct sz_ctx {
	struct dp *d;
	atomic_bool stop;
	atomic_bool flipping;
	long packets, during_flips, to_11th, bad;
	long started, done; /* packets begun / finished by the worker (atomic) */
};

static bool sz_set(struct dp *d, int n)
{
	struct dp_be be[11];

	for (int i = 0; i < n; i++)
		be[i] = (struct dp_be){ sz_addrs[i], BE_PORT_TCP, 1 };
	return !dp__service(d, SZ_VIP, 80, IPPROTO_TCP, be, n);
}

static struct dp_pkt sz_flow(unsigned long i, char *saddr, size_t len)
{
	snprintf(saddr, len, "10.%lu.%lu.%lu", 2 + (i >> 24) % 200, (i >> 16) & 0xff,
		 (i >> 8) & 0xff);
	return (struct dp_pkt){ .af = 4,
				.proto = IPPROTO_TCP,
				.saddr = saddr,
				.daddr = SZ_VIP,
				.sport = (__u16)(1024 + (i & 0xff)),
				.dport = 80,
				.flags = PKT_TH_SYN,
				.seq = 1 };
}

static void *sz_worker(void *arg)
{
	struct sz_ctx *c = arg;
	char saddr[24];
	struct pkt in, got;

	for (unsigned long i = 0; !atomic_load(&c->stop); i++) {
		struct dp_pkt s = sz_flow(i, saddr, sizeof(saddr));
		int verdict, b;

		dp__build(&in, &s);
		__atomic_add_fetch(&c->started, 1, __ATOMIC_SEQ_CST);
		if (dp__run(c->d, &in, &got, &verdict)) {
			c->bad++;
			__atomic_add_fetch(&c->done, 1, __ATOMIC_RELEASE);
			continue;
		}
		c->packets++;
		if (atomic_load(&c->flipping))
			c->during_flips++;
		b = verdict == dp__verdict_for(c->d, XDP_PASS) ?
			    dp__which(&got, &s, sz_addrs, 11, BE_PORT_TCP) :
			    -1;
		if (b < 0)
			c->bad++;
		else if (b == 10)
			c->to_11th++;
		__atomic_add_fetch(&c->done, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* The program's pick agrees with explain's for SZ_FLOWS new flows (from
 * base on: flows seen before are conntrack hits, no Maglev pick), and
 * explain read a table of m slots. */
static void sz_agree(struct dp *d, __u32 m, unsigned long base)
{
	static struct sluice_explain xo;
	__u32 bad = 0, size_bad = 0;
	char saddr[24];
	struct pkt in, got;

	for (unsigned long i = 0; i < SZ_FLOWS; i++) {
		unsigned long f = base + i * 7919;
		struct dp_pkt s = sz_flow(f, saddr, sizeof(saddr));
		struct sluice_explain_req r = { .path = SLUICE_EXPLAIN_PACKET,
						.client = dp__addr(saddr),
						.client_port = s.sport,
						.vip = dp__addr(SZ_VIP),
						.port = 80,
						.proto = IPPROTO_TCP };
		struct sluice_backend be;
		int verdict, b;

		if (sluice__explain(d->s, &r, &xo)) {
			dp__fail(d, "explain: %s", sluice__errmsg());
			return;
		}
		size_bad += !xo.maglev.table || xo.maglev.m != m;
		dp__build(&in, &s);
		if (dp__run(d, &in, &got, &verdict)) {
			bad++;
			continue;
		}
		b = dp__which(&got, &s, sz_addrs, 11, BE_PORT_TCP);
		if (b < 0 ||
		    bpf_map_lookup_elem(sluice__map_fd(d->s, "backends"), &xo.backend_id, &be) ||
		    be.addr[0] != dp__addr(sz_addrs[b]).addr[0])
			bad++;
	}
	fprintf(stderr, "  [%s] %u slots: %d flows, explain disagrees on %u, sizes off %u\n",
		d->tag, m, SZ_FLOWS, bad, size_bad);
	ASSERT_EQ(size_bad, 0, "explain read the table's own size");
	ASSERT_EQ(bad, 0, "flows where the program and explain pick differently");
}

static void grow_prog(struct dp *d)
{
	static struct sz_ctx c;
	struct dp_counts before, after;
	pthread_t th;
	int flips = 0;

	memset(&c, 0, sizeof(c));
	c.d = d;
	if (!sz_set(d, 10))
		return;
	sz_agree(d, SLUICE_MAGLEV_M_MIN, 0x5000000ul);
	if (!dp__counts(d, &before))
		return;
	if (pthread_create(&th, NULL, sz_worker, &c)) {
		dp__fail(d, "pthread_create failed");
		return;
	}
	atomic_store(&c.flipping, true);
	for (; flips < SZ_FLIPS; flips++) {
		if (!sz_set(d, flips % 2 ? 10 : 11))
			break;
		/* 20 packets begun after this swap see it (see dp__wait_done) */
		if (!dp__wait_done(&c.done, __atomic_load_n(&c.started, __ATOMIC_SEQ_CST) + 20)) {
			dp__fail(d, "swap %d: the worker finished no packet in 10 s", flips);
			break;
		}
	}
	atomic_store(&c.flipping, false);
	atomic_store(&c.stop, true);
	pthread_join(th, NULL);
	fprintf(stderr,
		"  [%s] grow/shrink: %d swaps, %ld packets (%ld during), %ld to the 11th, %ld elsewhere\n",
		d->tag, flips, c.packets, c.during_flips, c.to_11th, c.bad);
	ASSERT_EQ(flips, SZ_FLIPS, "swaps made");
	ASSERT_GE(c.during_flips, SZ_FLIPS, "packets sent while swapping");
	/* every grow is seen by >= 20 new flows (the wait above), 1 in 11 of them
	 * on the 11th: none there in 15 grows is a chance below 1e-12 */
	ASSERT_GE(c.to_11th, 1, "packets that saw the grown set");
	ASSERT_EQ(c.bad, 0, "packets to no backend of the set, or not DNATed");
	/* exact: every packet a new flow, nothing dropped (NO_BACKEND!) */
	if (dp__counts(d, &after)) {
		static const __u64 no_drops[SLUICE_DROP__MAX];
		__u64 cnt[SLUICE_CNT__MAX] = { 0 };

		cnt[SLUICE_CNT_LB_NEW] = (__u64)c.packets;
		cnt[SLUICE_CNT_FIB_PASS] = (__u64)c.packets;
		dp__expect_counts(d, "counters over the swaps", &before, &after, cnt, no_drops);
	}
	if (sz_set(d, 11))
		sz_agree(d, 2039, 0x6000000ul);
}

/* sizes_grow_swap: 10 <-> 11 backends swap 1021/2039-slot tables under traffic */
static void sizes_grow_swap(void)
{
	dp__each_prog(0, grow_prog);
}

static const struct test sizes_tests[] = {
	TEST(sizes_grow_swap),
};

const struct dp_suite dp_suite_sizes = {
	.name = "sizes",
	.tests = sizes_tests,
	.ntests = ARRAY_SIZE(sizes_tests),
};
