// SPDX-License-Identifier: MIT
/*
 * test_affinity.c - client-IP session affinity on the packet path (XDP
 * and tc): one client's new flows from any source port go to one backend,
 * different clients spread, an entry idle past the timeout re-balances,
 * and a backend removed, drained or ejected breaks the affinity (the entry
 * is rewritten to the fresh pick). Exact global and health counters; the
 * affinity and backend_health maps are read and written directly.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK
#define AFF_TIMEOUT 100 /* s */

static const char *const be4[] = { "10.1.0.81", "10.1.0.82", "10.1.0.83" };
static const char *const be6[] = { "fd00:1::81", "fd00:1::82", "fd00:1::83" };
#define VIP4_AFF "10.96.0.80"
#define VIP6_AFF "fd00:96::80"

/* Global counters expected over a whole test, and the health counters. */
static __u64 exp_cnt[SLUICE_CNT__MAX];
static struct dp_counts cnt_before;

/* w: weight of be4/be6[i], -1: not in the set; NULL: all three, weight 1. */
static int aff_service(struct dp *d, __u8 af, __u32 timeout_s, const int *w)
{
	const char *const *bes = af == 4 ? be4 : be6;
	struct sluice_backend_spec specs[3];
	struct sluice_service_spec spec = {
		.vip = dp__addr(af == 4 ? VIP4_AFF : VIP6_AFF),
		.port = 80,
		.proto = IPPROTO_TCP,
		.backends = specs,
		.affinity_timeout_s = timeout_s,
	};
	int err;

	for (int i = 0; i < 3; i++)
		if (!w || w[i] >= 0)
			specs[spec.nbackends++] =
				(struct sluice_backend_spec){ .addr = dp__addr(bes[i]),
							      .port = BE_PORT_TCP,
							      .weight = (__u16)(w ? w[i] : 1) };
	err = sluice__service_set(d->s, &spec);
	if (err)
		dp__fail(d, "service_set(affinity %u s): %d (%s)", timeout_s, err,
			 sluice__errmsg());
	return err;
}

static __u64 hcnt(struct dp *d, enum sluice_health_counter c)
{
	int fd = sluice__map_fd(d->s, "health_counters"), ncpu = libbpf_num_possible_cpus();
	__u64 v[512] = { 0 }, sum = 0;
	__u32 k = c;

	if (fd < 0 || ncpu > 512 || bpf_map_lookup_elem(fd, &k, v)) {
		dp__fail(d, "reading health_counters[%u]", c);
		return ~0ULL;
	}
	for (int i = 0; i < ncpu; i++)
		sum += v[i];
	return sum;
}

static bool expect_hcnt(struct dp *d, __u64 hit, __u64 broken)
{
	bool ok = ASSERT_EQ(hcnt(d, SLUICE_HCNT_AFFINITY_HIT), hit, "affinity_hit counter");

	return ASSERT_EQ(hcnt(d, SLUICE_HCNT_AFFINITY_BROKEN), broken, "affinity_broken counter") &&
	       ok;
}

static struct dp_pkt syn(__u8 af, const char *client, __u16 sport)
{
	return (struct dp_pkt){ .af = af,
				.proto = IPPROTO_TCP,
				.saddr = client,
				.daddr = af == 4 ? VIP4_AFF : VIP6_AFF,
				.sport = sport,
				.dport = 80,
				.flags = SYN,
				.seq = 1 };
}

/* One new flow; the index of the backend it was DNATed to, or -1. */
static int send_new(struct dp *d, const struct dp_pkt *s, __u8 af)
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
	b = dp__which(&got, s, af == 4 ? be4 : be6, 3, BE_PORT_TCP);
	if (b < 0)
		dp__fail(d, "output is no DNAT to a backend of the service");
	return b;
}

static int send_syn(struct dp *d, __u8 af, const char *client, __u16 sport)
{
	struct dp_pkt s = syn(af, client, sport);

	return send_new(d, &s, af);
}

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

static struct sluice_affinity_key aff_key(struct dp *d, __u8 af, const char *client)
{
	struct sluice_addr a = dp__addr(client);
	struct sluice_service_info info;
	struct sluice_addr vip = dp__addr(af == 4 ? VIP4_AFF : VIP6_AFF);
	struct sluice_affinity_key k = { .family = a.family, .kind = SLUICE_AFF_ADDR };

	memcpy(k.addr, a.addr, sizeof(k.addr));
	if (!sluice__service_get(d->s, &vip, 80, IPPROTO_TCP, &info))
		k.svc_id = info.svc.svc_id;
	return k;
}

/* The client's entry; false when there is none. */
static bool aff_get(struct dp *d, __u8 af, const char *client, struct sluice_affinity *v)
{
	struct sluice_affinity_key k = aff_key(d, af, client);

	return !bpf_map_lookup_elem(sluice__map_fd(d->s, "affinity"), &k, v);
}

static bool aff_put(struct dp *d, __u8 af, const char *client, const struct sluice_affinity *v)
{
	struct sluice_affinity_key k = aff_key(d, af, client);

	return ASSERT_EQ(bpf_map_update_elem(sluice__map_fd(d->s, "affinity"), &k, v, BPF_ANY), 0,
			 "writing the affinity entry");
}

static __u64 mono_ns(void)
{
	struct timespec ts;

	/* bpf_ktime_get_coarse_ns()'s clock, which affinity.h reads: up to a
	 * tick behind CLOCK_MONOTONIC */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

static __u64 aff_entries(struct dp *d)
{
	__u64 n = ~0ULL;

	if (sluice__affinity_count(d->s, &n))
		dp__fail(d, "sluice__affinity_count: %s", sluice__errmsg());
	return n;
}

static const char *client_n(__u8 af, int i, char *buf, size_t len)
{
	if (af == 4)
		snprintf(buf, len, "10.0.%d.%d", 1 + i / 200, 1 + i % 200);
	else
		snprintf(buf, len, "fd00::1:%x", i + 1);
	return buf;
}

/* ---- one client, many source ports: one backend ---- */

static void same_client_af(struct dp *d, __u8 af, bool on)
{
	const char *client = af == 4 ? CLIENT4 : CLIENT6;
	int seen[3] = { 0 }, first = -1, b;

	if (aff_service(d, af, on ? AFF_TIMEOUT : 0, NULL))
		return;
	for (int i = 0; i < 60; i++) {
		struct dp_pkt s = syn(af, client, (__u16)((on ? 20000 : 25000) + 7 * i));

		dp__at("IPv%u affinity %s, flow %d", af, on ? "on" : "off", i);
		b = send_new(d, &s, af);
		if (b < 0)
			return;
		seen[b]++;
		if (first < 0)
			first = b;
	}
	dp__at("IPv%u affinity %s", af, on ? "on" : "off");
	if (on)
		ASSERT_EQ(seen[first], 60, "flows on the client's first backend");
	else /* the control: without affinity the ports spread */
		ASSERT_GE((seen[0] > 0) + (seen[1] > 0) + (seen[2] > 0), 2,
			  "backends used without affinity");
}

static void same_client_prog(struct dp *d)
{
	if (!counts_begin(d))
		return;
	same_client_af(d, 4, false);
	same_client_af(d, 6, false);
	if (!ASSERT_EQ(aff_entries(d), 0, "affinity entries without affinity") ||
	    !expect_hcnt(d, 0, 0))
		return;
	same_client_af(d, 4, true);
	same_client_af(d, 6, true);
	ASSERT_EQ(aff_entries(d), 2, "affinity entries: one per client and family");
	expect_hcnt(d, 2 * 59, 0);
	counts_end(d);
}

/* affinity_same_client: 60 flows of one client from different ports land on one backend */
static void affinity_same_client(void)
{
	dp__each_prog(0, same_client_prog);
}

/* ---- many clients spread, each stays ---- */

static void spread_af(struct dp *d, __u8 af)
{
	int seen[3] = { 0 }, b, b2;
	char c[64];

	if (aff_service(d, af, AFF_TIMEOUT, NULL))
		return;
	for (int i = 0; i < 100; i++) {
		struct dp_pkt s = syn(af, client_n(af, i, c, sizeof(c)), 30000);
		struct dp_pkt s2 = syn(af, c, 31000 + (__u16)i);

		dp__at("IPv%u client %s", af, c);
		b = send_new(d, &s, af);
		b2 = b < 0 ? -1 : send_new(d, &s2, af);
		if (b2 < 0 || !ASSERT_EQ(b2, b, "the client's second flow, other port"))
			return;
		seen[b]++;
	}
	dp__at("IPv%u", af);
	fprintf(stderr, "  [%s] IPv%u 100 clients: %d / %d / %d\n", d->tag, af, seen[0], seen[1],
		seen[2]);
	for (int i = 0; i < 3; i++)
		ASSERT_GE(seen[i], 15, "clients per backend (of 100 over 3)");
}

static void spread_prog(struct dp *d)
{
	if (!counts_begin(d))
		return;
	spread_af(d, 4);
	spread_af(d, 6);
	ASSERT_EQ(aff_entries(d), 200, "affinity entries: one per client");
	expect_hcnt(d, 200, 0);
	counts_end(d);
}

/* affinity_clients_spread: 100 clients spread over 3 backends, each keeps its own */
static void affinity_clients_spread(void)
{
	dp__each_prog(0, spread_prog);
}

/* ---- expiry ---- */

static void expiry_af(struct dp *d, __u8 af)
{
	const char *client = af == 4 ? CLIENT4 : CLIENT6;
	struct sluice_affinity v;
	int seen[3] = { 0 }, b, pinned;

	if (aff_service(d, af, AFF_TIMEOUT, NULL))
		return;
	dp__at("IPv%u first flow", af);
	pinned = send_syn(d, af, client, 40000);
	if (pinned < 0 || !ASSERT_TRUE(aff_get(d, af, client, &v), "entry after the first flow"))
		return;
	/* each round: the entry idle 1 s past the timeout, then a new flow */
	for (int i = 0; i < 30; i++) {
		__u64 now = mono_ns();

		v.last_seen_ns = now - (AFF_TIMEOUT + 1) * 1000000000ULL;
		dp__at("IPv%u round %d", af, i);
		if (!aff_put(d, af, client, &v))
			return;
		b = send_syn(d, af, client, (__u16)(40001 + i));
		if (b < 0 || !ASSERT_TRUE(aff_get(d, af, client, &v), "entry after the flow"))
			return;
		seen[b]++;
		/* rewritten: the fresh pick, time now */
		if (!ASSERT_GE(v.last_seen_ns, now, "entry's time after an expired one"))
			return;
	}
	dp__at("IPv%u", af);
	ASSERT_GE((seen[0] > 0) + (seen[1] > 0) + (seen[2] > 0), 2,
		  "backends used after expiry (re-balanced)");
	/* a live entry (within the timeout) is kept: 10 flows on it */
	v.last_seen_ns = mono_ns() - (AFF_TIMEOUT - 5) * 1000000000ULL;
	if (!aff_put(d, af, client, &v))
		return;
	pinned = -1;
	for (int i = 0; i < 10; i++) {
		b = send_syn(d, af, client, (__u16)(41000 + i));
		if (b < 0 || (pinned >= 0 && !ASSERT_EQ(b, pinned, "flow within the timeout")))
			return;
		pinned = b;
	}
	/* refreshed once (it was 95 s old), not per flow */
	if (ASSERT_TRUE(aff_get(d, af, client, &v), "entry after live flows"))
		ASSERT_GE(v.last_seen_ns, mono_ns() - 5000000000ULL, "refreshed time");
}

static void expiry_prog(struct dp *d)
{
	if (!counts_begin(d))
		return;
	expiry_af(d, 4);
	expiry_af(d, 6);
	expect_hcnt(d, 2 * 10, 0); /* expiry is not a broken affinity */
	counts_end(d);
}

/* affinity_expiry: an entry idle past the timeout re-balances; a live one is kept */
static void affinity_expiry(void)
{
	dp__each_prog(0, expiry_prog);
}

/* ---- removed, drained, ejected ---- */

/* New flows from fresh ports until one leaves backend @from: each counts
 * BROKEN while the entry names the unusable @from. Then the entry names
 * the new backend and 5 more flows stay there. */
static int rebind(struct dp *d, __u8 af, int from, __u16 *port, __u64 *broken, __u64 *hits)
{
	const char *client = af == 4 ? CLIENT4 : CLIENT6;
	int b = from;

	for (int tries = 0; b == from && tries < 50; tries++) {
		b = send_syn(d, af, client, (*port)++);
		if (b < 0)
			return -1;
		(*broken)++;
	}
	if (!ASSERT_NEQ(b, from, "a flow left the unusable backend"))
		return -1;
	for (int i = 0; i < 5; i++) {
		int again = send_syn(d, af, client, (*port)++);

		if (!ASSERT_EQ(again, b, "flows after the entry was rewritten"))
			return -1;
		(*hits)++;
	}
	return b;
}

static void broken_af(struct dp *d, __u8 af, __u64 *broken, __u64 *hits)
{
	const char *client = af == 4 ? CLIENT4 : CLIENT6;
	int w[3] = { 1, 1, 1 };
	__u16 port = 50000;
	struct sluice_backend_health h = {};
	struct sluice_affinity v;
	int b, fd = sluice__map_fd(d->s, "backend_health");

	if (aff_service(d, af, AFF_TIMEOUT, w))
		return;
	dp__at("IPv%u first flow", af);
	b = send_syn(d, af, client, port++);
	if (b < 0)
		return;
	/* drained (weight 0) */
	dp__at("IPv%u backend %s drained", af, (af == 4 ? be4 : be6)[b]);
	w[b] = 0;
	if (aff_service(d, af, AFF_TIMEOUT, w))
		return;
	b = rebind(d, af, b, &port, broken, hits);
	if (b < 0)
		return;
	w[0] = w[1] = w[2] = 1;
	if (aff_service(d, af, AFF_TIMEOUT, w))
		return;
	/* ejected by passive outlier detection (written as the kernel does) */
	dp__at("IPv%u backend %s ejected", af, (af == 4 ? be4 : be6)[b]);
	if (!ASSERT_TRUE(aff_get(d, af, client, &v), "entry"))
		return;
	h.flags = SLUICE_BH_F_EJECTED;
	h.ejected_until_ns = mono_ns() + 60000000000ULL;
	if (!ASSERT_EQ(bpf_map_update_elem(fd, &v.backend_id, &h, BPF_ANY), 0, "ejecting"))
		return;
	b = rebind(d, af, b, &port, broken, hits);
	if (b < 0)
		return;
	/* ejection over (probation): usable again, the entry holds */
	if (!ASSERT_TRUE(aff_get(d, af, client, &v), "entry"))
		return;
	h.ejected_until_ns = mono_ns() - 1;
	if (!ASSERT_EQ(bpf_map_update_elem(fd, &v.backend_id, &h, BPF_ANY), 0, "probation"))
		return;
	dp__at("IPv%u backend %s on probation", af, (af == 4 ? be4 : be6)[b]);
	if (!ASSERT_EQ(send_syn(d, af, client, port++), b,
		       "flow to a backend whose ejection is over"))
		return;
	(*hits)++;
	/* removed from the service */
	dp__at("IPv%u backend %s removed", af, (af == 4 ? be4 : be6)[b]);
	w[b] = -1;
	if (aff_service(d, af, AFF_TIMEOUT, w))
		return;
	rebind(d, af, b, &port, broken, hits);
}

static void broken_prog(struct dp *d)
{
	__u64 broken = 0, hits = 0;

	if (!counts_begin(d))
		return;
	broken_af(d, 4, &broken, &hits);
	broken_af(d, 6, &broken, &hits);
	if (!test__failed)
		expect_hcnt(d, hits, broken);
	counts_end(d);
}

/* affinity_broken: removed, drained or ejected backend breaks affinity; entry rewritten */
static void affinity_broken(void)
{
	dp__each_prog(0, broken_prog);
}

/* ---- junk ACKs write nothing; affinity off forgets ---- */

static void misc_prog(struct dp *d)
{
	static struct pkt in, got;
	struct dp_pkt a = syn(4, CLIENT4B, 60000);
	int verdict;

	if (aff_service(d, 4, AFF_TIMEOUT, NULL))
		return;
	/* an ACK of no known flow is picked up but leaves no entry */
	a.flags = ACK;
	a.ack = 1;
	dp__build(&in, &a);
	if (!dp__send(d, &in, &got, &verdict) ||
	    !ASSERT_EQ(verdict, dp__verdict_for(d, XDP_PASS), "ACK verdict"))
		return;
	ASSERT_EQ(aff_entries(d), 0, "entries after an ACK of no flow");
	send_syn(d, 4, CLIENT4B, 60001);
	ASSERT_EQ(aff_entries(d), 1, "entries after a SYN");
	/* affinity turned off: the service's entries are forgotten */
	if (aff_service(d, 4, 0, NULL))
		return;
	ASSERT_EQ(aff_entries(d), 0, "entries after affinity was turned off");
	if (aff_service(d, 4, AFF_TIMEOUT, NULL))
		return;
	send_syn(d, 4, CLIENT4B, 60002);
	ASSERT_EQ(aff_entries(d), 1, "entries after a SYN");
	struct sluice_addr vip = dp__addr(VIP4_AFF);

	if (ASSERT_EQ(sluice__service_del(d->s, &vip, 80, IPPROTO_TCP), 0, "service_del"))
		ASSERT_EQ(aff_entries(d), 0, "entries after the service was deleted");
}

/* affinity_junk_and_forget: no entry from junk ACKs; off or delete forgets entries */
static void affinity_junk_and_forget(void)
{
	dp__each_prog(0, misc_prog);
}

/* affinity_timeout_range: the library refuses a timeout over one day */
static void affinity_timeout_range(void)
{
	struct dp d;

	if (dp__open(&d, DP_XDP, false)) {
		struct sluice_service_spec spec = { .vip = dp__addr(VIP4_AFF),
						    .port = 80,
						    .proto = IPPROTO_TCP,
						    .affinity_timeout_s = 86401 };

		ASSERT_EQ(sluice__service_set(d.s, &spec), -EINVAL, "timeout 86401 s");
		ASSERT_TRUE(strstr(sluice__errmsg(), "affinity_timeout_s 86401") != NULL,
			    "error names the field and value");
	}
	dp__close(&d);
}

static const struct test affinity_tests[] = {
	TEST(affinity_same_client), TEST(affinity_clients_spread),  TEST(affinity_expiry),
	TEST(affinity_broken),      TEST(affinity_junk_and_forget), TEST(affinity_timeout_range),
};

const struct dp_suite dp_suite_affinity = {
	.name = "affinity",
	.tests = affinity_tests,
	.ntests = ARRAY_SIZE(affinity_tests),
};
