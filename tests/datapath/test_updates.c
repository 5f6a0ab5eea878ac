// SPDX-License-Identifier: MIT
/*
 * test_updates.c - backend-set changes as packets see them: conntrack
 * keeps flows on their backend across set changes, draining (weight 0)
 * takes no new flows, a service gaining or losing all backends, an atomic
 * A->B swap under concurrent traffic, and a 90/10 weighted split.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK

/* Expected counter totals of a test function: each helper below adds what
 * its packet must count, dp__expect_counts() compares at the end. */
static __u64 exp_cnt[SLUICE_CNT__MAX];
static struct dp_counts cnt_before;

static bool counts_begin(struct dp *d)
{
	memset(exp_cnt, 0, sizeof(exp_cnt));
	return dp__counts(d, &cnt_before);
}

static void counts_end(struct dp *d)
{
	static const __u64 no_drops[SLUICE_DROP__MAX];
	struct dp_counts after;

	if (!test__failed && dp__counts(d, &after))
		dp__expect_counts(d, "counters over the whole test", &cnt_before, &after, exp_cnt,
				  no_drops);
}

/* Runs one packet and returns the index of the backend it was DNATed to
 * (exact bytes), or -1 after reporting. */
static int send_new(struct dp *d, const struct dp_pkt *s, const char *const *bes, int n)
{
	static struct pkt in, got;
	int verdict, b;

	dp__build(&in, s);
	exp_cnt[SLUICE_CNT_LB_NEW]++;
	exp_cnt[SLUICE_CNT_FIB_PASS]++;
	if (!dp__send(d, &in, &got, &verdict))
		return -1;
	if (verdict != dp__verdict_for(d, XDP_PASS)) {
		dp__fail(d, "verdict %s, expected PASS", dp__verdict_name(d, verdict));
		return -1;
	}
	b = dp__which(&got, s, bes, n, BE_PORT_TCP);
	if (b < 0) {
		static struct pkt exp;
		struct dp_pkt e = *s;

		e.daddr = bes[0];
		e.dport = BE_PORT_TCP;
		dp__build(&exp, &e);
		dp__fail(d, "output is no DNAT to any allowed backend; diff against %s:", bes[0]);
		dp__hexdiff(&exp, got.buf, got.len);
	}
	return b;
}

/* Sends in and expects exactly out (PASS) and counter c (+ FIB_PASS). */
static bool send_expect(struct dp *d, const struct dp_pkt *ins, const struct dp_pkt *outs, int want,
			enum sluice_counter c)
{
	static struct pkt in, got, exp;
	int verdict;

	exp_cnt[c]++;
	if (c == SLUICE_CNT_LB_NEW || c == SLUICE_CNT_LB_EST || c == SLUICE_CNT_REVNAT)
		exp_cnt[SLUICE_CNT_FIB_PASS]++;
	dp__build(&in, ins);
	dp__build(&exp, outs);
	if (!dp__send(d, &in, &got, &verdict))
		return false;
	if (verdict != dp__verdict_for(d, want)) {
		dp__fail(d, "verdict %s, expected %s", dp__verdict_name(d, verdict),
			 dp__verdict_name(d, dp__verdict_for(d, want)));
		return false;
	}
	return want == XDP_DROP || dp__expect_bytes(d, "output", &got, &exp);
}

static struct dp_pkt tcp_pkt(__u8 af, const char *saddr, const char *daddr, __u16 sport,
			     __u16 dport, __u8 flags)
{
	return (struct dp_pkt){ .af = af,
				.proto = IPPROTO_TCP,
				.saddr = saddr,
				.daddr = daddr,
				.sport = sport,
				.dport = dport,
				.flags = flags,
				.seq = 1,
				.ack = flags & ACK ? 1 : 0 };
}

/* ---- conntrack survives a backend-set change ---- */

static void survive_af(struct dp *d, __u8 af)
{
	const char *const old4[] = { BE4_M1, BE4_M2, BE4_M3 };
	const char *const old6[] = { BE6_M1, BE6_M2, BE6_M3 };
	const char *const new4[] = { "10.1.0.21", "10.1.0.22" };
	const char *const new6[] = { "fd00:1::21", "fd00:1::22" };
	const char *const *old = af == 4 ? old4 : old6, *const *nw = af == 4 ? new4 : new6;
	const char *client = af == 4 ? CLIENT4 : CLIENT6;
	const char *vip = af == 4 ? VIP4_MULTI : VIP6_MULTI;
	struct dp_be be[2] = { { nw[0], BE_PORT_TCP, 1 }, { nw[1], BE_PORT_TCP, 1 } };
	struct dp_pkt s = tcp_pkt(af, client, vip, 45000, 80, SYN);
	struct dp_pkt e, r, rv;
	int b;

	dp__at("IPv%u SYN", af);
	b = send_new(d, &s, old, 3);
	if (b < 0)
		return;
	if (dp__service(d, vip, 80, IPPROTO_TCP, be, 2))
		return;
	/* the flow keeps its backend even though the set no longer has it */
	dp__at("IPv%u ACK after the set changed", af);
	s = tcp_pkt(af, client, vip, 45000, 80, ACK);
	e = s;
	e.daddr = old[b];
	e.dport = BE_PORT_TCP;
	send_expect(d, &s, &e, XDP_PASS, SLUICE_CNT_LB_EST);
	dp__at("IPv%u reply from the removed backend", af);
	r = tcp_pkt(af, old[b], client, BE_PORT_TCP, 45000, ACK);
	r.l2 = L2_BACKEND;
	rv = r;
	rv.saddr = vip;
	rv.sport = 80;
	send_expect(d, &r, &rv, XDP_PASS, SLUICE_CNT_REVNAT);
	/* no SYN|ACK was seen: the backend's answer confirms the flow */
	exp_cnt[SLUICE_CNT_CT_CONFIRMED]++;
	/* new flows only see the new set */
	for (__u16 port = 46000; port < 46050; port++) {
		dp__at("IPv%u new flow from port %u", af, port);
		s = tcp_pkt(af, client, vip, port, 80, SYN);
		if (send_new(d, &s, nw, 2) < 0)
			return;
	}
	dp__at("%s", "");
}

static void survive_prog(struct dp *d)
{
	if (!counts_begin(d))
		return;
	survive_af(d, 4);
	survive_af(d, 6);
	counts_end(d);
}

/* updates_conntrack_survives_set_change: existing flows keep a removed backend */
static void updates_conntrack_survives_set_change(void)
{
	dp__each_prog(0, survive_prog);
}

/* ---- draining ---- */

static void drain_af(struct dp *d, __u8 af)
{
	const char *const b4[] = { "10.1.0.71", "10.1.0.72", "10.1.0.73" };
	const char *const b6[] = { "fd00:1::71", "fd00:1::72", "fd00:1::73" };
	const char *const *bes = af == 4 ? b4 : b6;
	const char *const live4[] = { b4[0], b4[2] }, *const live6[] = { b6[0], b6[2] };
	const char *client = af == 4 ? CLIENT4 : CLIENT6;
	const char *vip = af == 4 ? "10.96.0.70" : "fd00:96::70";
	struct dp_be be[3] = { { bes[0], BE_PORT_TCP, 1 },
			       { bes[1], BE_PORT_TCP, 1 },
			       { bes[2], BE_PORT_TCP, 1 } };
	static struct sluice_service_info info;
	struct sluice_addr va = dp__addr(vip);
	struct dp_pkt s, e;
	int port, b = -1;

	if (dp__service(d, vip, 80, IPPROTO_TCP, be, 3))
		return;
	/* find a flow that landed on the backend about to drain */
	for (port = 47000; port < 47300 && b != 1; port++) {
		dp__at("IPv%u looking for a flow on %s, port %d", af, bes[1], port);
		s = tcp_pkt(af, client, vip, (__u16)port, 80, SYN);
		b = send_new(d, &s, bes, 3);
		if (b < 0)
			return;
	}
	if (!ASSERT_EQ(b, 1, "a flow landed on the middle backend"))
		return;
	port--;
	be[1].weight = 0;
	if (dp__service(d, vip, 80, IPPROTO_TCP, be, 3))
		return;
	if (ASSERT_OK(sluice__service_get(d->s, &va, 80, IPPROTO_TCP, &info), "service_get"))
		ASSERT_EQ(info.svc.backend_count, 2, "backend_count with one backend draining");
	dp__at("IPv%u established flow on the draining backend", af);
	s = tcp_pkt(af, client, vip, (__u16)port, 80, ACK);
	e = s;
	e.daddr = bes[1];
	e.dport = BE_PORT_TCP;
	send_expect(d, &s, &e, XDP_PASS, SLUICE_CNT_LB_EST);
	for (int p = 48000; p < 48300; p++) {
		dp__at("IPv%u new flow from port %d while draining", af, p);
		s = tcp_pkt(af, client, vip, (__u16)p, 80, SYN);
		if (send_new(d, &s, af == 4 ? live4 : live6, 2) < 0)
			return;
	}
	dp__at("%s", "");
}

static void drain_prog(struct dp *d)
{
	if (!counts_begin(d))
		return;
	drain_af(d, 4);
	drain_af(d, 6);
	counts_end(d);
}

/* updates_draining: weight 0 takes no new flows but keeps its existing ones */
static void updates_draining(void)
{
	dp__each_prog(0, drain_prog);
}

/* ---- a service losing and regaining all backends ---- */

#define EMPTY_BE "10.1.0.31"

static const struct dp_case empty_refused[] = {
	{
		.name = "refused while empty",
		.steps = {
			REFUSES(TCP4(CLIENT4, VIP4_EMPTY, 40000, 80, SYN, .seq = 1),
				TCP4(VIP4_EMPTY, CLIENT4, 80, 40000, PKT_TH_RST | ACK, .ack = 2,
				     .l2 = L2_REFUSAL, .refusal = true), S_T4_EMPTY),
		},
	},
	{
		/* another port: 40000 is now a live flow, its SYN would be a retransmit */
		.name = "new flow refused again",
		.steps = {
			REFUSES(TCP4(CLIENT4, VIP4_EMPTY, 40001, 80, SYN, .seq = 1),
				TCP4(VIP4_EMPTY, CLIENT4, 80, 40001, PKT_TH_RST | ACK, .ack = 2,
				     .l2 = L2_REFUSAL, .refusal = true), S_T4_EMPTY),
		},
	},
};

static void empty_prog(struct dp *d)
{
	struct dp_be be = { EMPTY_BE, BE_PORT_TCP, 1 };
	struct dp_pkt s, e;

	if (!dp__run_steps(d, &empty_refused[0]))
		return;
	if (dp__service(d, VIP4_EMPTY, 80, IPPROTO_TCP, &be, 1))
		return;
	dp__at("balanced after gaining a backend");
	s = tcp_pkt(4, CLIENT4, VIP4_EMPTY, 40000, 80, SYN);
	e = s;
	e.daddr = EMPTY_BE;
	e.dport = BE_PORT_TCP;
	if (!send_expect(d, &s, &e, XDP_PASS, SLUICE_CNT_LB_NEW))
		return;
	if (dp__service(d, VIP4_EMPTY, 80, IPPROTO_TCP, NULL, 0))
		return;
	dp__at("established flow after losing every backend");
	s = tcp_pkt(4, CLIENT4, VIP4_EMPTY, 40000, 80, ACK);
	e = s;
	e.daddr = EMPTY_BE;
	e.dport = BE_PORT_TCP;
	send_expect(d, &s, &e, XDP_PASS, SLUICE_CNT_LB_EST);
	dp__run_steps(d, &empty_refused[1]);
}

/* updates_empty_service: refuse, balance, refuse new but keep established */
static void updates_empty_service(void)
{
	dp__each_prog(0, empty_prog);
}

/* ---- atomic swap under traffic ---- */

#define SWAP_FLIPS 200

static const char *const swap_a[] = { "10.1.0.41", "10.1.0.42" };
static const char *const swap_b[] = { "10.1.0.51", "10.1.0.52" };
static const char *const swap_all[] = { "10.1.0.41", "10.1.0.42", "10.1.0.51", "10.1.0.52" };
#define SWAP_VIP "10.96.0.40"

struct swap_ctx {
	struct dp *d;
	atomic_bool stop;
	atomic_bool flipping;
	long started, done; /* packets begun / finished by the worker (atomic) */
	long packets, during_flips, in_a, in_b, bad, drops;
	int bad_verdict;
	struct pkt bad_out; /* first packet that went elsewhere */
	struct dp_pkt bad_spec;
	char bad_saddr[24];
};

static void *swap_worker(void *arg)
{
	struct swap_ctx *c = arg;
	char saddr[24];
	struct pkt in, got;

	for (unsigned long i = 0; !atomic_load(&c->stop); i++) {
		struct dp_pkt s;
		int verdict, b;

		/* a fresh 5-tuple each time: every packet is a new flow */
		snprintf(saddr, sizeof(saddr), "10.%lu.%lu.%lu", 2 + (i >> 24) % 200,
			 (i >> 16) & 0xff, (i >> 8) & 0xff);
		s = tcp_pkt(4, saddr, SWAP_VIP, (__u16)(1024 + (i & 0xff)), 80, SYN);
		dp__build(&in, &s);
		__atomic_add_fetch(&c->started, 1, __ATOMIC_SEQ_CST);
		if (dp__run(c->d, &in, &got, &verdict)) {
			c->bad++;
			__atomic_add_fetch(&c->done, 1, __ATOMIC_RELEASE);
			continue;
		}
		__atomic_add_fetch(&c->done, 1, __ATOMIC_RELEASE);
		c->packets++;
		if (atomic_load(&c->flipping))
			c->during_flips++;
		b = verdict == dp__verdict_for(c->d, XDP_PASS) ?
			    dp__which(&got, &s, swap_all, 4, BE_PORT_TCP) :
			    -1;
		if (b < 0) {
			if (verdict == dp__verdict_for(c->d, XDP_DROP))
				c->drops++;
			if (!c->bad++) {
				c->bad_verdict = verdict;
				c->bad_out = got;
				c->bad_spec = s;
				memcpy(c->bad_saddr, saddr, sizeof(saddr));
			}
			continue;
		}
		if (b < 2)
			c->in_a++;
		else
			c->in_b++;
	}
	return NULL;
}

static void swap_prog(struct dp *d)
{
	struct dp_be a[2] = { { swap_a[0], BE_PORT_TCP, 1 }, { swap_a[1], BE_PORT_TCP, 1 } };
	struct dp_be b[2] = { { swap_b[0], BE_PORT_TCP, 1 }, { swap_b[1], BE_PORT_TCP, 1 } };
	static struct swap_ctx c;
	struct dp_counts before, after;
	pthread_t th;

	memset(&c, 0, sizeof(c));
	c.d = d;
	if (dp__service(d, SWAP_VIP, 80, IPPROTO_TCP, a, 2) || !dp__counts(d, &before))
		return;
	if (pthread_create(&th, NULL, swap_worker, &c)) {
		dp__fail(d, "pthread_create failed");
		return;
	}
	atomic_store(&c.flipping, true);
	for (int i = 0; i < SWAP_FLIPS; i++) {
		long seen;

		if (dp__service(d, SWAP_VIP, 80, IPPROTO_TCP, i % 2 ? a : b, 2))
			break;
		/*
		 * Wait for one packet begun after this flip to finish, so every
		 * set is seen by traffic whatever the scheduler does: on a busy
		 * machine the flipper was preempted once and the worker ran a
		 * whole time slice on one set (CI saw 2560 packets, all in B).
		 * The worker keeps sending while the next flip is written.
		 */
		seen = __atomic_load_n(&c.started, __ATOMIC_SEQ_CST);
		if (!dp__wait_done(&c.done, seen + 1)) {
			dp__fail(d, "flip %d: the worker finished no packet in 10 s", i);
			break;
		}
	}
	atomic_store(&c.flipping, false);
	atomic_store(&c.stop, true);
	pthread_join(th, NULL);
	if (c.bad) {
		struct pkt exp;
		struct dp_pkt e = c.bad_spec;

		e.saddr = c.bad_saddr;
		e.daddr = swap_a[0];
		e.dport = BE_PORT_TCP;
		dp__build(&exp, &e);
		dp__fail(
			d,
			"%ld of %ld packets went to no backend of A or B (%ld dropped); first: verdict %s, diff against A[0]:",
			c.bad, c.packets, c.drops, dp__verdict_name(d, c.bad_verdict));
		dp__hexdiff(&exp, c.bad_out.buf, c.bad_out.len);
	}
	fprintf(stderr,
		"  [%s] swap: %d flips, %ld packets (%ld during flips): %ld to A, %ld to B\n",
		d->tag, SWAP_FLIPS, c.packets, c.during_flips, c.in_a, c.in_b);
	ASSERT_GE(c.during_flips, SWAP_FLIPS, "packets sent while flipping");
	/* each flip was seen by a packet begun after it and done before the next */
	ASSERT_GE(c.in_a, SWAP_FLIPS / 2, "packets that saw set A");
	ASSERT_GE(c.in_b, SWAP_FLIPS / 2, "packets that saw set B");
	/* exact: every packet a new flow, nothing dropped (NO_BACKEND!) */
	if (dp__counts(d, &after)) {
		static const __u64 no_drops[SLUICE_DROP__MAX];
		__u64 cnt[SLUICE_CNT__MAX] = { 0 };

		cnt[SLUICE_CNT_LB_NEW] = (__u64)c.packets;
		cnt[SLUICE_CNT_FIB_PASS] = (__u64)c.packets;
		dp__expect_counts(d, "counters over the swap", &before, &after, cnt, no_drops);
	}
}

/* updates_atomic_swap: A<->B flipped 200 times under traffic, never elsewhere */
static void updates_atomic_swap(void)
{
	dp__each_prog(0, swap_prog);
}

/* ---- weighted split ---- */

#define SPLIT_FLOWS 10000

static void split_af(struct dp *d, __u8 af)
{
	const char *const b4[] = { "10.1.0.61", "10.1.0.62" };
	const char *const b6[] = { "fd00:1::61", "fd00:1::62" };
	const char *const *bes = af == 4 ? b4 : b6;
	const char *vip = af == 4 ? "10.96.0.60" : "fd00:96::60";
	struct dp_be be[2] = { { bes[0], BE_PORT_TCP, 90 }, { bes[1], BE_PORT_TCP, 10 } };
	const char *clients4[] = { CLIENT4, CLIENT4B };
	const char *clients6[] = { CLIENT6, CLIENT6B };
	long n[2] = { 0 };
	double pct;

	if (dp__service(d, vip, 80, IPPROTO_TCP, be, 2))
		return;
	for (int i = 0; i < SPLIT_FLOWS; i++) {
		struct dp_pkt s = tcp_pkt(af, af == 4 ? clients4[i & 1] : clients6[i & 1], vip,
					  (__u16)(10000 + i / 2), 80, SYN);
		int b;

		dp__at("IPv%u flow %d", af, i);
		b = send_new(d, &s, bes, 2);
		if (b < 0)
			return;
		n[b]++;
	}
	dp__at("IPv%u", af);
	pct = 100.0 * (double)n[0] / SPLIT_FLOWS;
	fprintf(stderr, "  [%s] IPv%u 90/10 split over %d flows: %.2f%% / %.2f%%\n", d->tag, af,
		SPLIT_FLOWS, pct, 100.0 - pct);
	if (pct < 88.0 || pct > 92.0)
		dp__fail(d, "weight-90 backend got %.2f%% of new flows, expected 90 +- 2", pct);
	dp__at("%s", "");
}

static void split_prog(struct dp *d)
{
	if (!counts_begin(d))
		return;
	split_af(d, 4);
	split_af(d, 6);
	counts_end(d);
}

/* updates_weighted_split: 90/10 weights give 90/10 of 10k new flows +- 2 points */
static void updates_weighted_split(void)
{
	dp__each_prog(0, split_prog);
}

static const struct test updates_tests[] = {
	TEST(updates_conntrack_survives_set_change),
	TEST(updates_draining),
	TEST(updates_empty_service),
	TEST(updates_atomic_swap),
	TEST(updates_weighted_split),
};

const struct dp_suite dp_suite_updates = {
	.name = "updates",
	.tests = updates_tests,
	.ntests = ARRAY_SIZE(updates_tests),
};
