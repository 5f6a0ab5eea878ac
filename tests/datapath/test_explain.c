// SPDX-License-Identifier: MIT
/*
 * test_explain.c - `meshctl explain` (sluice__explain(), #15) against the
 * programs themselves: for random flows of services the library filled,
 * the backend explain names before a SYN is the one xdp_lb / tc_lb DNAT
 * that SYN to, and after it explain finds the flow in conntrack on the
 * same backend. Also the source-range verdict and its rule against the
 * program's drop, an affinity entry deciding, an ejected pick and its
 * fallback, empty services, and a reopened (FIN-seen) flow. The random
 * flows come from a fixed seed, printed on failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#include "dp.h"
#include "explain.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK
#define FIN PKT_TH_FIN
#define NBE 5
#define FLOWS 200

static const char *const be4[NBE] = { "10.1.0.91", "10.1.0.92", "10.1.0.93", "10.1.0.94",
				      "10.1.0.95" };
static const char *const be6[NBE] = { "fd00:1::91", "fd00:1::92", "fd00:1::93", "fd00:1::94",
				      "fd00:1::95" };
#define VIP4_X "10.96.0.90"
#define VIP6_X "fd00:96::90"

static __u64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/* The service on VIP4_X/VIP6_X port 80/tcp, weights 1 2 1 3 1. */
static bool x_service(struct dp *d, __u8 af, const struct sluice_service_spec *extra)
{
	struct sluice_backend_spec specs[NBE];
	struct sluice_service_spec spec = extra ? *extra : (struct sluice_service_spec){ 0 };
	static const __u16 w[NBE] = { 1, 2, 1, 3, 1 };
	int err;

	spec.vip = dp__addr(af == 4 ? VIP4_X : VIP6_X);
	spec.port = 80;
	spec.proto = IPPROTO_TCP;
	spec.backends = specs;
	spec.nbackends = NBE;
	for (int i = 0; i < NBE; i++)
		specs[i] = (struct sluice_backend_spec){ .addr = dp__addr((af == 4 ? be4 : be6)[i]),
							 .port = BE_PORT_TCP,
							 .weight = w[i] };
	err = sluice__service_set(d->s, &spec);
	if (err)
		dp__fail(d, "service_set: %d (%s)", err, sluice__errmsg());
	return !err;
}

static struct sluice_explain xo;

static bool explain(struct dp *d, __u8 af, const char *client, __u16 sport)
{
	struct sluice_explain_req r = { .path = SLUICE_EXPLAIN_PACKET,
					.client = dp__addr(client),
					.client_port = sport,
					.vip = dp__addr(af == 4 ? VIP4_X : VIP6_X),
					.port = 80,
					.proto = IPPROTO_TCP };
	int err = sluice__explain(d->s, &r, &xo);

	if (err)
		dp__fail(d, "explain %s:%u: %d (%s)", client, sport, err, sluice__errmsg());
	return !err;
}

/* The index in be4/be6 of the backend explain chose, -1: none. */
static int xo_index(__u8 af)
{
	char buf[SLUICE_ADDR_STRLEN];
	struct sluice_addr a = { .family = xo.be.family };

	if (!xo.be_found)
		return -1;
	memcpy(a.addr, xo.be.addr, sizeof(a.addr));
	sluice_addr__str(&a, buf, sizeof(buf));
	for (int i = 0; i < NBE; i++)
		if (!strcmp(buf, (af == 4 ? be4 : be6)[i]))
			return i;
	return -1;
}

static void dump(void)
{
	for (__u32 i = 0; i < xo.nsteps; i++)
		fprintf(stderr, "      %-10s %s\n", xo.steps[i].step, xo.steps[i].text);
}

/* One packet; the backend index it was DNATed to, -1 none (*verdict). */
static int send_pkt(struct dp *d, const struct dp_pkt *s, __u8 af, int *verdict)
{
	static struct pkt in, got;

	dp__build(&in, s);
	if (!dp__send(d, &in, &got, verdict))
		return -2;
	return dp__which(&got, s, af == 4 ? be4 : be6, NBE, BE_PORT_TCP);
}

static struct dp_pkt tcp(__u8 af, const char *client, __u16 sport, __u8 flags)
{
	return (struct dp_pkt){ .af = af,
				.proto = IPPROTO_TCP,
				.saddr = client,
				.daddr = af == 4 ? VIP4_X : VIP6_X,
				.sport = sport,
				.dport = 80,
				.flags = flags,
				.seq = 1 };
}

/* explain before the SYN == the program's DNAT == explain after it. */
static bool agree(struct dp *d, __u8 af, const char *client, __u16 sport, int *fallbacks)
{
	struct dp_pkt s = tcp(af, client, sport, SYN);
	int want, got, verdict;

	dp__at("IPv%u %s:%u", af, client, sport);
	if (!explain(d, af, client, sport))
		return false;
	want = xo_index(af);
	if (xo.maglev.fallback && fallbacks)
		(*fallbacks)++;
	if (!ASSERT_EQ(xo.verdict, SLUICE_XV_BALANCED, "explain: a new flow, balanced") ||
	    !ASSERT_GE(want, 0, "explain names a backend of the service")) {
		dump();
		return false;
	}
	got = send_pkt(d, &s, af, &verdict);
	if (!ASSERT_EQ(got, want, "the program's backend is explain's")) {
		dump();
		return false;
	}
	if (!explain(d, af, client, sport))
		return false;
	return ASSERT_EQ(xo.verdict, SLUICE_XV_ESTABLISHED, "after the SYN: established") &&
	       ASSERT_TRUE(xo.ct.found && !xo.ct.confirmed, "in ct_new") &&
	       ASSERT_EQ(xo_index(af), want, "conntrack keeps explain's backend");
}

static void random_client(__u8 af, unsigned int *seed, char *buf, size_t len, __u16 *port)
{
	if (af == 4)
		snprintf(buf, len, "10.%u.%u.%u", rand_r(seed) % 200 + 2, rand_r(seed) % 256,
			 rand_r(seed) % 254 + 1);
	else
		snprintf(buf, len, "fd00:%x::%x:%x", rand_r(seed) % 0xffff + 1,
			 rand_r(seed) % 0xffff, rand_r(seed) % 0xffff + 1);
	*port = (__u16)(rand_r(seed) % 64511 + 1024);
}

/* explain_maglev: 200 random flows per family agree with the program */
static void maglev_prog(struct dp *d)
{
	unsigned int seed = 1515;
	char client[64];
	__u16 port;

	for (__u8 af = 4; af <= 6; af += 2) {
		if (!x_service(d, af, NULL))
			return;
		for (int i = 0; i < FLOWS; i++) {
			random_client(af, &seed, client, sizeof(client), &port);
			if (!agree(d, af, client, port, NULL)) {
				fprintf(stderr, "    flow %d of seed 1515\n", i);
				return;
			}
		}
	}
}

static void explain_maglev(void)
{
	dp__each_prog(DP_XDP | DP_TC, maglev_prog);
}

/* explain_src_range: the rule that decided, and the program's drop */
static void src_range_prog(struct dp *d)
{
	struct sluice_cidr c[2];
	struct sluice_service_spec spec = { .nsrc_ranges = 2, .src_ranges = c };
	char buf[SLUICE_CIDR_STRLEN];
	struct dp_pkt s = tcp(4, "192.168.0.7", 4000, SYN);
	int verdict;

	sluice_cidr__parse(&c[0], "10.0.0.0/8");
	sluice_cidr__parse(&c[1], "10.5.0.0/16");
	if (!x_service(d, 4, &spec) || !agree(d, 4, "10.5.1.1", 3000, NULL))
		return;
	if (!explain(d, 4, "10.5.1.2", 3000))
		return;
	ASSERT_EQ(xo.policy.verdict, SLUICE_XA_ALLOW, "inside: allowed");
	ASSERT_TRUE(xo.policy.has_rule &&
			    !strcmp(sluice_cidr__str(&xo.policy.rule, buf, sizeof(buf)),
				    "10.5.0.0/16"),
		    "the longest range decided");
	ASSERT_EQ(xo.policy.nrules, 2, "two ranges");
	if (!explain(d, 4, "192.168.0.7", 4000))
		return;
	ASSERT_EQ(xo.verdict, SLUICE_XV_DROP, "outside: dropped");
	ASSERT_EQ(xo.drop, SLUICE_DROP_SOURCE_RANGE, "reason source_range");
	ASSERT_EQ(xo.policy.verdict, SLUICE_XA_DENY, "denied");
	ASSERT_FALSE(xo.policy.has_rule, "no rule holds it");
	send_pkt(d, &s, 4, &verdict);
	ASSERT_EQ(verdict, dp__verdict_for(d, XDP_DROP), "the program drops it too");
}

static void explain_src_range(void)
{
	dp__each_prog(DP_XDP | DP_TC, src_range_prog);
}

/* explain_src_range6: prefix boundaries pick the longest rule, v6 */
static void src_range6_prog(struct dp *d)
{
	static const char *const ranges[] = { "fd00::/16", "fd00:0:0:1::/64", "fd00::1:2/128",
					      "fd00::1:0/127" };
	static const struct {
		const char *client, *rule; /* NULL: denied */
	} cases[] = {
		{ "fd00::1:2", "fd00::1:2/128" },
		{ "fd00::1:3", "fd00::/16" },
		{ "fd00::1:1", "fd00::1:0/127" },
		{ "fd00::1:4", "fd00::/16" },
		{ "fd00:0:0:1::5", "fd00:0:0:1::/64" },
		{ "fd00:0:0:2::5", "fd00::/16" },
		{ "fd00:ffff::1", "fd00::/16" },
		{ "fd01::1", NULL },
		{ "fe80::1", NULL },
	};
	struct sluice_cidr c[4];
	struct sluice_service_spec spec = { .nsrc_ranges = 4, .src_ranges = c };
	char buf[SLUICE_CIDR_STRLEN];
	int verdict, be;

	for (int i = 0; i < 4; i++)
		sluice_cidr__parse(&c[i], ranges[i]);
	if (!x_service(d, 6, &spec))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct dp_pkt s = tcp(6, cases[i].client, 6000, SYN);

		dp__at("client %s", cases[i].client);
		if (!explain(d, 6, cases[i].client, 6000))
			return;
		if (cases[i].rule) {
			ASSERT_EQ(xo.policy.verdict, SLUICE_XA_ALLOW, "allowed");
			ASSERT_TRUE(
				xo.policy.has_rule &&
					!strcmp(sluice_cidr__str(&xo.policy.rule, buf, sizeof(buf)),
						cases[i].rule),
				cases[i].rule);
			be = xo_index(6);
			ASSERT_EQ(send_pkt(d, &s, 6, &verdict), be, "the program agrees");
		} else {
			ASSERT_EQ(xo.verdict, SLUICE_XV_DROP, "denied");
			send_pkt(d, &s, 6, &verdict);
			ASSERT_EQ(verdict, dp__verdict_for(d, XDP_DROP), "the program drops it");
		}
	}
}

static void explain_src_range6(void)
{
	dp__each_prog(DP_XDP, src_range6_prog);
}

/* explain_affinity: a client's entry decides, as it does in the program */
static void affinity_prog(struct dp *d)
{
	struct sluice_service_spec spec = { .affinity_timeout_s = 100 };
	int first, verdict;

	if (!x_service(d, 4, &spec) || !explain(d, 4, "10.9.9.9", 1000))
		return;
	ASSERT_TRUE(xo.aff.checked && !xo.aff.found, "no entry yet");
	if (!agree(d, 4, "10.9.9.9", 1000, NULL))
		return;
	first = xo_index(4);
	for (__u16 port = 2000; port < 2040; port++) {
		if (!agree(d, 4, "10.9.9.9", port, NULL))
			return;
		if (!explain(d, 4, "10.9.9.9", (__u16)(port + 1000)) ||
		    !ASSERT_TRUE(xo.aff.used, "the entry decides") ||
		    !ASSERT_EQ(xo_index(4), first, "the client's first backend"))
			return;
	}
	/* drained: the entry breaks, explain says so and the program agrees */
	{
		struct dp_pkt s = tcp(4, "10.9.9.9", 5000, SYN);
		int fd = sluice__map_fd(d->s, "backends");
		struct sluice_backend be;
		__u32 id = xo.backend_id;

		if (!ASSERT_OK(bpf_map_lookup_elem(fd, &id, &be), "backend"))
			return;
		be.state = SLUICE_BE_DRAINING;
		be.weight = 0;
		if (!ASSERT_OK(bpf_map_update_elem(fd, &id, &be, BPF_EXIST), "drain in place") ||
		    !explain(d, 4, "10.9.9.9", 5000))
			return;
		ASSERT_TRUE(xo.aff.broken && !xo.aff.used, "broken entry");
		/* the slot may still name it (only its state changed here) */
		if (xo_index(4) != first)
			ASSERT_EQ(send_pkt(d, &s, 4, &verdict), xo_index(4), "program agrees");
	}
}

static void explain_affinity(void)
{
	dp__each_prog(DP_XDP | DP_TC, affinity_prog);
}

/* explain_ejected: flows whose pick is ejected fall back where explain
 * says they do */
static void ejected_prog(struct dp *d)
{
	struct sluice_backend_health h = { .flags = SLUICE_BH_F_EJECTED };
	unsigned int seed = 77;
	int fallbacks = 0, fd = sluice__map_fd(d->s, "backend_health");
	char client[64];
	__u32 id;
	__u16 port;

	if (!x_service(d, 4, NULL) || !explain(d, 4, "10.7.7.7", 7000))
		return;
	id = xo.backend_id;
	h.ejected_until_ns = mono_ns() + 60000000000ULL;
	if (!ASSERT_OK(bpf_map_update_elem(fd, &id, &h, BPF_ANY), "ejecting"))
		return;
	for (int i = 0; i < FLOWS; i++) {
		random_client(4, &seed, client, sizeof(client), &port);
		if (!agree(d, 4, client, port, &fallbacks))
			return;
		ASSERT_NEQ(xo.backend_id, id, "never the ejected backend");
	}
	ASSERT_GE(fallbacks, 10, "some flows fell back");
}

static void explain_ejected(void)
{
	dp__each_prog(DP_XDP | DP_TC, ejected_prog);
}

/* explain_reopen: a SYN on the tuple of a finished flow is a new flow */
static void reopen_prog(struct dp *d)
{
	struct dp_pkt fin = tcp(4, "10.3.3.3", 3333, FIN | ACK);
	int verdict;

	if (!x_service(d, 4, NULL) || !agree(d, 4, "10.3.3.3", 3333, NULL))
		return;
	send_pkt(d, &fin, 4, &verdict);
	if (!explain(d, 4, "10.3.3.3", 3333))
		return;
	ASSERT_TRUE(xo.ct.found && !xo.ct.used, "entry found, not used");
	ASSERT_EQ(xo.verdict, SLUICE_XV_BALANCED, "balanced afresh");
}

static void explain_reopen(void)
{
	dp__each_prog(DP_XDP | DP_TC, reopen_prog);
}

/* explain_empty: refusal, drop-when-empty, no service, bad input */
static void empty_prog(struct dp *d)
{
	struct sluice_service_spec spec = { .vip = dp__addr(VIP4_X),
					    .port = 80,
					    .proto = IPPROTO_TCP };
	struct dp_pkt s = tcp(4, "10.4.4.4", 4444, SYN);
	struct sluice_explain_req r = { .client = dp__addr("fd00::1"),
					.vip = dp__addr(VIP4_X),
					.port = 80,
					.proto = IPPROTO_TCP };
	int verdict;

	if (!explain(d, 4, "10.4.4.4", 4444))
		return;
	ASSERT_EQ(xo.verdict, SLUICE_XV_PASS, "no service: pass");
	if (!ASSERT_OK(sluice__service_set(d->s, &spec), "empty service") ||
	    !explain(d, 4, "10.4.4.4", 4444))
		return;
	ASSERT_EQ(xo.verdict, SLUICE_XV_REFUSE, "refused");
	send_pkt(d, &s, 4, &verdict);
	ASSERT_EQ(verdict, dp__verdict_for(d, XDP_TX), "the program refuses (RST)");
	if (!dp__svc_flags(d, VIP4_X, 80, IPPROTO_TCP, SLUICE_SVC_F_DROP_EMPTY) ||
	    !explain(d, 4, "10.4.4.4", 4445))
		return;
	ASSERT_EQ(xo.verdict, SLUICE_XV_DROP, "drop-when-empty");
	ASSERT_EQ(xo.drop, SLUICE_DROP_NO_LOCAL_BACKEND, "no_local_backend");
	ASSERT_EQ(sluice__explain(d->s, &r, &xo), -EINVAL, "client of another family");
	ASSERT_TRUE(strstr(sluice__errmsg(), "fd00::1") != NULL, "names the client");
}

static void explain_empty(void)
{
	dp__each_prog(DP_XDP, empty_prog);
}

static const struct test explain_tests[] = {
	TEST(explain_maglev),   TEST(explain_src_range), TEST(explain_src_range6),
	TEST(explain_affinity), TEST(explain_ejected),   TEST(explain_reopen),
	TEST(explain_empty),
};

const struct dp_suite dp_suite_explain = {
	.name = "explain",
	.tests = explain_tests,
	.ntests = ARRAY_SIZE(explain_tests),
};
