// SPDX-License-Identifier: MIT
/*
 * test_health.c - passive outlier detection on the packet path (#14,
 * bpf/lib/health.h): failure signals (a backend RST before its SYN|ACK,
 * the client's SYN again >= 500 ms later, unanswered), counted once per
 * flow; a success (SYN|ACK) zeroing the count; ejection at the threshold
 * (flag, time, the service's ejected count, ring buffer event, counters);
 * probation, restoration and ejection again; the max-ejected bound; the
 * panic rule; threshold 0 = off; and the pick's fallback: a new flow whose
 * Maglev backend is ejected is DNATed to another one, the same one every
 * time, while existing flows keep the ejected backend. svc_health is
 * written by the test (the library's part is h14-ctl's); time is moved by
 * writing timestamps into the maps. Every case runs through XDP and tc.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK
#define RST PKT_TH_RST

#define H_N 3
#define H_BASE_MS 30000
#define H_MAX_MS 300000
#define H_MS 1000000ULL
#define H_MAX_EVENTS 16

static const char *const hbe4[H_N] = { "10.1.0.81", "10.1.0.82", "10.1.0.83" };
static const char *const hbe6[H_N] = { "fd00:1::81", "fd00:1::82", "fd00:1::83" };

/* One test's service (VIP:80/tcp -> 3 backends on 8080) and its maps. */
struct hw {
	struct dp *d;
	__u8 af;
	const char *client, *vip;
	const char *const *bes;
	__u32 svc_id;
	__u32 ids[H_N]; /* backend id of bes[i] */
	int bh_fd, sh_fd, hc_fd, ct_new_fd;
	struct ring_buffer *rb;
	struct sluice_health_event ev[H_MAX_EVENTS];
	int nev;
	__u64 hc[SLUICE_HCNT__MAX]; /* expected health counters */
};

static struct sluice_svc_health hcfg(__u8 threshold, __u8 max_pct, __u8 panic_pct)
{
	return (struct sluice_svc_health){ .backends = H_N,
					   .threshold = threshold,
					   .max_ejected_pct = max_pct,
					   .panic_pct = panic_pct,
					   .base_ms = H_BASE_MS,
					   .max_ms = H_MAX_MS };
}

static __u64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

static int hw__event(void *ctx, void *data, size_t len)
{
	struct hw *w = ctx;

	if (len == sizeof(struct sluice_health_event) && w->nev < H_MAX_EVENTS)
		memcpy(&w->ev[w->nev], data, len);
	w->nev++;
	return 0;
}

static bool hw__ids(struct hw *w)
{
	static struct sluice_service_info info;
	struct sluice_addr vip = dp__addr(w->vip);
	int be_fd = sluice__map_fd(w->d->s, "backends");

	if (!ASSERT_OK(sluice__service_get(w->d->s, &vip, 80, IPPROTO_TCP, &info), "service_get"))
		return false;
	w->svc_id = info.svc.svc_id;
	for (__u32 i = 0; i < info.nbackends; i++) {
		struct sluice_backend be;

		if (bpf_map_lookup_elem(be_fd, &info.backend_ids[i], &be))
			continue;
		for (int j = 0; j < H_N; j++)
			if (!memcmp(be.addr, dp__addr(w->bes[j]).addr, sizeof(be.addr)))
				w->ids[j] = info.backend_ids[i];
	}
	return ASSERT_TRUE(w->ids[0] && w->ids[1] && w->ids[2], "backend ids");
}

static bool hw__sum(struct hw *w, __u64 out[SLUICE_HCNT__MAX]);

static bool hw_cfg(struct hw *w, struct sluice_svc_health c)
{
	return ASSERT_OK(bpf_map_update_elem(w->sh_fd, &w->svc_id, &c, BPF_ANY), "svc_health");
}

static bool hw_open(struct hw *w, struct dp *d, __u8 af, struct sluice_svc_health c)
{
	struct dp_be be[H_N];

	memset(w, 0, sizeof(*w));
	w->d = d;
	w->af = af;
	w->client = af == 4 ? CLIENT4 : CLIENT6;
	w->vip = af == 4 ? "10.96.0.80" : "fd00:96::80";
	w->bes = af == 4 ? hbe4 : hbe6;
	for (int i = 0; i < H_N; i++)
		be[i] = (struct dp_be){ w->bes[i], BE_PORT_TCP, 1 };
	if (dp__service(d, w->vip, 80, IPPROTO_TCP, be, H_N) || !hw__ids(w))
		return false;
	w->bh_fd = sluice__map_fd(d->s, "backend_health");
	w->sh_fd = sluice__map_fd(d->s, "svc_health");
	w->hc_fd = sluice__map_fd(d->s, "health_counters");
	w->ct_new_fd = sluice__map_fd(d->s, "ct_new");
	w->rb = ring_buffer__new(sluice__map_fd(d->s, "health_events"), hw__event, w, NULL);
	if (!ASSERT_TRUE(w->rb != NULL, "ring buffer of health_events") || !hw__sum(w, w->hc))
		return false;
	return hw_cfg(w, c);
}

static void hw_close(struct hw *w)
{
	ring_buffer__free(w->rb);
	w->rb = NULL;
	dp__at("%s", "");
}

static struct sluice_backend_health hw_bh(struct hw *w, int i)
{
	struct sluice_backend_health bh = { 0 };

	ASSERT_OK(bpf_map_lookup_elem(w->bh_fd, &w->ids[i], &bh), "backend_health lookup");
	return bh;
}

static void hw_bh_put(struct hw *w, int i, const struct sluice_backend_health *bh)
{
	ASSERT_OK(bpf_map_update_elem(w->bh_fd, &w->ids[i], bh, BPF_ANY), "backend_health update");
}

static __u32 hw_ejected(struct hw *w)
{
	struct sluice_svc_health sh = { 0 };

	ASSERT_OK(bpf_map_lookup_elem(w->sh_fd, &w->svc_id, &sh), "svc_health lookup");
	return sh.ejected;
}

/* The health counters summed over CPUs. */
static bool hw__sum(struct hw *w, __u64 out[SLUICE_HCNT__MAX])
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 vals[ncpus > 0 ? ncpus : 1];

	for (__u32 c = 0; c < SLUICE_HCNT__MAX; c++) {
		if (bpf_map_lookup_elem(w->hc_fd, &c, vals))
			return ASSERT_TRUE(false, "health_counters lookup");
		out[c] = 0;
		for (int i = 0; i < ncpus; i++)
			out[c] += vals[i];
	}
	return true;
}

/* Compares every health counter with w->hc: the values at hw_open()
 * plus what the test expects since. */
static bool hw_counters(struct hw *w, const char *what)
{
	__u64 got[SLUICE_HCNT__MAX];
	bool ok = true;

	if (!hw__sum(w, got))
		return false;
	for (__u32 c = 0; c < SLUICE_HCNT__MAX; c++) {
		if (got[c] != w->hc[c]) {
			dp__fail(w->d, "%s: health counter %u is %llu, expected %llu", what, c,
				 (unsigned long long)got[c], (unsigned long long)w->hc[c]);
			ok = false;
		}
	}
	return ok;
}

/* Events written since the last call (also checks the count). */
static bool hw_events(struct hw *w, int n, const char *what)
{
	w->nev = 0;
	ring_buffer__consume(w->rb);
	if (w->nev != n) {
		dp__fail(w->d, "%s: %d health events, expected %d", what, w->nev, n);
		return false;
	}
	return true;
}

static bool hw_event_is(struct hw *w, int k, __u8 kind, int be, __u32 fails, __u16 ejections,
			__u8 reason)
{
	const struct sluice_health_event *e = &w->ev[k];
	struct sluice_backend_health bh = hw_bh(w, be);
	bool ok = ASSERT_EQ(e->kind, kind, "event kind") &&
		  ASSERT_EQ(e->svc_id, w->svc_id, "event svc_id") &&
		  ASSERT_EQ(e->backend_id, w->ids[be], "event backend_id") &&
		  ASSERT_EQ(e->fails, fails, "event fails") &&
		  ASSERT_EQ(e->ejections, ejections, "event ejections") &&
		  ASSERT_EQ(e->reason, reason, "event reason");

	if (kind == SLUICE_HEALTH_EV_EJECTED || kind == SLUICE_HEALTH_EV_REEJECTED)
		ok = ok && ASSERT_EQ(e->ejected_until_ns, bh.ejected_until_ns, "event until") &&
		     ASSERT_EQ(e->ts_ns, bh.last_fail_ns, "event time = the failure's");
	return ok;
}

static struct dp_pkt hw_tcp(struct hw *w, __u16 port, __u8 flags)
{
	return (struct dp_pkt){ .af = w->af,
				.proto = IPPROTO_TCP,
				.saddr = w->client,
				.daddr = w->vip,
				.sport = port,
				.dport = 80,
				.flags = flags,
				.seq = 1,
				.ack = flags & ACK ? 1 : 0 };
}

/* Client packet on port: the index of the backend it was DNATed to (exact
 * bytes, PASS), or -1 after reporting. */
static int hw_client(struct hw *w, __u16 port, __u8 flags)
{
	static struct pkt in, got;
	struct dp_pkt s = hw_tcp(w, port, flags);
	int verdict, b;

	dp__build(&in, &s);
	if (!dp__send(w->d, &in, &got, &verdict))
		return -1;
	if (verdict != dp__verdict_for(w->d, XDP_PASS)) {
		dp__fail(w->d, "port %u: verdict %s, expected PASS", port,
			 dp__verdict_name(w->d, verdict));
		return -1;
	}
	b = dp__which(&got, &s, w->bes, H_N, BE_PORT_TCP);
	if (b < 0)
		dp__fail(w->d, "port %u: output is no DNAT to any backend of the service", port);
	return b;
}

/* A client packet that must go to backend i. */
static bool hw_client_to(struct hw *w, __u16 port, __u8 flags, int i)
{
	int b = hw_client(w, port, flags);

	if (b >= 0 && b != i)
		dp__fail(w->d, "port %u: DNATed to %s, expected %s", port, w->bes[b], w->bes[i]);
	return b == i;
}

/* Backend i answers the flow of port: must be rewritten to the VIP. */
static bool hw_reply(struct hw *w, int i, __u16 port, __u8 flags)
{
	static struct pkt in, got, exp;
	struct dp_pkt r = { .af = w->af,
			    .proto = IPPROTO_TCP,
			    .l2 = L2_BACKEND,
			    .saddr = w->bes[i],
			    .daddr = w->client,
			    .sport = BE_PORT_TCP,
			    .dport = port,
			    .flags = flags,
			    .seq = 7,
			    .ack = 2 };
	struct dp_pkt e = r;
	int verdict;

	e.saddr = w->vip;
	e.sport = 80;
	dp__build(&in, &r);
	dp__build(&exp, &e);
	if (!dp__send(w->d, &in, &got, &verdict))
		return false;
	if (verdict != dp__verdict_for(w->d, XDP_PASS)) {
		dp__fail(w->d, "reply on port %u: verdict %s", port,
			 dp__verdict_name(w->d, verdict));
		return false;
	}
	return dp__expect_bytes(w->d, "reply rewritten to the VIP", &got, &exp);
}

/* n client ports from *next on whose new flows Maglev sends to backend
 * i; each probe flow is ended by the client's RST, so the next SYN on
 * the port is a new flow, balanced afresh. */
static bool hw_ports_to(struct hw *w, int i, __u16 *ports, int n, __u16 *next)
{
	int got = 0;

	while (got < n && *next < 60000) {
		__u16 p = (*next)++;
		int b = hw_client(w, p, SYN);

		if (b < 0 || hw_client(w, p, RST | ACK) != b)
			return false;
		if (b == i)
			ports[got++] = p;
	}
	return ASSERT_EQ(got, n, "probe ports for a backend");
}

/* A failed connection attempt: SYN to backend i, which answers RST. */
static bool hw_rst_fail(struct hw *w, int i, __u16 port)
{
	w->hc[SLUICE_HCNT_FAIL]++;
	return hw_client_to(w, port, SYN, i) && hw_reply(w, i, port, RST | ACK);
}

/* Ejects backend i by `fails` RST failures on ports (mapping to it). */
static bool hw_eject(struct hw *w, int i, const __u16 *ports, int fails)
{
	for (int k = 0; k < fails; k++)
		if (!hw_rst_fail(w, i, ports[k]))
			return false;
	w->hc[SLUICE_HCNT_EJECT]++;
	return ASSERT_TRUE(hw_bh(w, i).flags & SLUICE_BH_F_EJECTED, "ejected");
}

/* Moves backend i's ejection end into the past: on probation. */
static void hw_time_over(struct hw *w, int i)
{
	struct sluice_backend_health bh = hw_bh(w, i);

	bh.ejected_until_ns = mono_ns() - 1;
	hw_bh_put(w, i, &bh);
}

/* The FWD entry of the unconfirmed flow from port. */
static struct sluice_ct_key hw_fwd_key(struct hw *w, __u16 port)
{
	struct sluice_ct_key k = { .proto = IPPROTO_TCP, .dir = SLUICE_CT_FWD };
	struct sluice_addr c = dp__addr(w->client), v = dp__addr(w->vip);

	memcpy(k.saddr, c.addr, sizeof(k.saddr));
	memcpy(k.daddr, v.addr, sizeof(k.daddr));
	k.sport = htons(port);
	k.dport = htons(80);
	k.family = c.family;
	return k;
}

/* ---- failure signals ---- */

static void rst_prog(struct dp *d)
{
	struct sluice_backend_health bh;
	__u16 port = 41000;
	struct hw w;
	int b;

	if (!hw_open(&w, d, 4, hcfg(3, 50, 50)))
		goto out;
	dp__at("RST before SYN|ACK");
	b = hw_client(&w, port, SYN);
	if (b < 0 || !hw_reply(&w, b, port, RST | ACK))
		goto out;
	w.hc[SLUICE_HCNT_FAIL]++;
	bh = hw_bh(&w, b);
	ASSERT_EQ(bh.fails, 1, "fails after a RST");
	ASSERT_EQ(bh.reason, SLUICE_HEALTH_R_RST, "reason");
	ASSERT_TRUE(bh.last_fail_ns > 0 && bh.last_fail_ns <= mono_ns(), "last_fail_ns");
	dp__at("the RST again");
	hw_reply(&w, b, port, RST | ACK);
	ASSERT_EQ(hw_bh(&w, b).fails, 1, "a flow's failure counts once");
	dp__at("new flow on the port, SYN|ACK");
	if (!hw_client_to(&w, port, SYN, b) || !hw_reply(&w, b, port, SYN | ACK))
		goto out;
	w.hc[SLUICE_HCNT_SUCCESS]++;
	ASSERT_EQ(hw_bh(&w, b).fails, 0, "a SYN|ACK zeroes fails");
	hw_reply(&w, b, port, SYN | ACK);
	dp__at("picked-up flow, RST");
	b = hw_client(&w, port + 1, ACK);
	if (b >= 0 && hw_reply(&w, b, port + 1, RST))
		ASSERT_EQ(hw_bh(&w, b).fails, 0, "RST to a flow picked up mid-way: no failure");
	hw_counters(&w, "after RST, SYN|ACK, pickup");
	hw_events(&w, 0, "no ejection");
out:
	hw_close(&w);
}

/* health_rst_counts: a RST before SYN|ACK fails once per flow; SYN|ACK succeeds */
static void health_rst_counts(void)
{
	dp__each_prog(0, rst_prog);
}

static void syn_again_prog(struct dp *d)
{
	struct sluice_ct_entry e;
	struct sluice_ct_key k;
	__u16 port = 41100;
	struct hw w;
	int b;

	if (!hw_open(&w, d, 4, hcfg(3, 50, 50)))
		goto out;
	dp__at("SYN again at once");
	b = hw_client(&w, port, SYN);
	if (b < 0 || !hw_client_to(&w, port, SYN, b))
		goto out;
	ASSERT_EQ(hw_bh(&w, b).fails, 0, "a SYN again within 500 ms is no failure");
	dp__at("SYN again 600 ms later");
	k = hw_fwd_key(&w, port);
	if (!ASSERT_OK(bpf_map_lookup_elem(w.ct_new_fd, &k, &e), "FWD entry in ct_new"))
		goto out;
	e.created_ns -= 600 * H_MS;
	bpf_map_update_elem(w.ct_new_fd, &k, &e, BPF_EXIST);
	if (!hw_client_to(&w, port, SYN, b))
		goto out;
	w.hc[SLUICE_HCNT_FAIL]++;
	ASSERT_EQ(hw_bh(&w, b).fails, 1, "fails after an unanswered SYN again");
	ASSERT_EQ(hw_bh(&w, b).reason, SLUICE_HEALTH_R_SYN_TIMEOUT, "reason");
	bpf_map_lookup_elem(w.ct_new_fd, &k, &e);
	ASSERT_EQ(e.ct_flags, SLUICE_CT_F_FAIL_COUNTED, "flow marked as counted");
	hw_client_to(&w, port, SYN, b);
	hw_reply(&w, b, port, RST | ACK);
	ASSERT_EQ(hw_bh(&w, b).fails, 1, "third SYN and the RST: counted once per flow");
	dp__at("SYN again after the backend answered");
	port++;
	b = hw_client(&w, port, SYN);
	if (b < 0 || !hw_reply(&w, b, port, SYN | ACK))
		goto out;
	w.hc[SLUICE_HCNT_SUCCESS]++;
	k = hw_fwd_key(&w, port);
	bpf_map_lookup_elem(w.ct_new_fd, &k, &e);
	e.created_ns -= 600 * H_MS;
	bpf_map_update_elem(w.ct_new_fd, &k, &e, BPF_EXIST);
	hw_client_to(&w, port, SYN, b);
	hw_counters(&w, "SYN again after a SYN|ACK: no failure");
out:
	hw_close(&w);
}

/* health_syn_timeout: the client's SYN again >= 500 ms later, unanswered, fails once */
static void health_syn_timeout(void)
{
	dp__each_prog(0, syn_again_prog);
}

/* A SYN again whose failure ejects its backend (threshold 1): the flow,
 * never established, is balanced afresh to a healthy backend. */
static void repick_prog(struct dp *d)
{
	__u16 port, next = 41200;
	struct sluice_ct_entry e;
	struct sluice_ct_key k;
	struct hw w;
	int b;

	if (!hw_open(&w, d, 4, hcfg(1, 50, 50)) || !hw_ports_to(&w, 0, &port, 1, &next))
		goto out;
	dp__at("SYN to backend 0, unanswered for 600 ms");
	if (!hw_client_to(&w, port, SYN, 0))
		goto out;
	k = hw_fwd_key(&w, port);
	if (!ASSERT_OK(bpf_map_lookup_elem(w.ct_new_fd, &k, &e), "FWD entry in ct_new"))
		goto out;
	e.created_ns -= 600 * H_MS;
	bpf_map_update_elem(w.ct_new_fd, &k, &e, BPF_EXIST);
	dp__at("the SYN again ejects backend 0 and goes elsewhere");
	b = hw_client(&w, port, SYN);
	w.hc[SLUICE_HCNT_FAIL]++;
	w.hc[SLUICE_HCNT_EJECT]++;
	w.hc[SLUICE_HCNT_FALLBACK]++;
	ASSERT_TRUE(hw_bh(&w, 0).flags & SLUICE_BH_F_EJECTED, "backend 0 ejected");
	if (!ASSERT_TRUE(b > 0, "the SYN again is DNATed to a healthy backend"))
		goto out;
	ASSERT_OK(bpf_map_lookup_elem(w.ct_new_fd, &k, &e), "FWD entry rewritten");
	ASSERT_EQ(e.backend_id, w.ids[b], "the flow now names the new backend");
	dp__at("the new backend answers, the client completes the handshake");
	if (hw_reply(&w, b, port, SYN | ACK) && hw_client_to(&w, port, ACK, b))
		w.hc[SLUICE_HCNT_SUCCESS]++;
	hw_events(&w, 1, "one ejection");
	hw_counters(&w, "after the re-pick");
out:
	hw_close(&w);
}

/* health_syn_again_repick: a SYN again to an ejected backend is balanced afresh */
static void health_syn_again_repick(void)
{
	dp__each_prog(0, repick_prog);
}

/* The client connects straight to a backend from the port of a balanced
 * flow that backend refused (left unconfirmed in ct_new): the backend's
 * SYN|ACK must reach the client unchanged, not as the VIP's. */
static void direct_prog(struct dp *d)
{
	static struct pkt in, got;
	__u16 port, next = 41300;
	struct dp_pkt syn, ans;
	struct hw w;
	int verdict;

	if (!hw_open(&w, d, 4, hcfg(3, 50, 50)) || !hw_ports_to(&w, 1, &port, 1, &next))
		goto out;
	dp__at("balanced SYN refused by backend 1");
	if (!hw_rst_fail(&w, 1, port))
		goto out;
	syn = (struct dp_pkt){ .af = 4,
			       .proto = IPPROTO_TCP,
			       .saddr = w.client,
			       .daddr = w.bes[1],
			       .sport = port,
			       .dport = BE_PORT_TCP,
			       .flags = SYN,
			       .seq = 100 };
	ans = (struct dp_pkt){ .af = 4,
			       .proto = IPPROTO_TCP,
			       .l2 = L2_BACKEND,
			       .saddr = w.bes[1],
			       .daddr = w.client,
			       .sport = BE_PORT_TCP,
			       .dport = port,
			       .flags = SYN | ACK,
			       .seq = 7,
			       .ack = 101 };
	dp__at("direct SYN from the same port to backend 1");
	dp__build(&in, &syn);
	if (!dp__send(d, &in, &got, &verdict) ||
	    !ASSERT_EQ(verdict, dp__verdict_for(d, XDP_PASS), "direct SYN passes"))
		goto out;
	dp__expect_bytes(d, "direct SYN unchanged", &got, &in);
	dp__at("the backend's SYN|ACK to it");
	dp__build(&in, &ans);
	if (!dp__send(d, &in, &got, &verdict) ||
	    !ASSERT_EQ(verdict, dp__verdict_for(d, XDP_PASS), "SYN|ACK passes"))
		goto out;
	dp__expect_bytes(d, "SYN|ACK unchanged, not rewritten to the VIP", &got, &in);
	hw_counters(&w, "direct connection");
out:
	hw_close(&w);
}

/* health_direct_after_refused: an unconfirmed refused flow does not take a direct connection's answer */
static void health_direct_after_refused(void)
{
	dp__each_prog(0, direct_prog);
}

/* ---- ejection and the pick's fallback ---- */

static int fallback_seen[2][2]; /* [af == 6][prog == tc]: backend + 1 */

static void eject_af(struct dp *d, __u8 af)
{
	__u16 ports[7], next = 42000, *fail = ports, *nw = ports + 3, est, unc;
	struct sluice_backend_health bh;
	struct sluice_ct_key k;
	struct hw w;
	int x = 0, y, y2;

	if (!hw_open(&w, d, af, hcfg(3, 50, 50)) || !hw_ports_to(&w, x, ports, 7, &next))
		goto out;
	est = ports[5];
	unc = ports[6];
	dp__at("IPv%u flows to the backend before its ejection", af);
	if (!hw_client_to(&w, est, SYN, x) || !hw_reply(&w, x, est, SYN | ACK) ||
	    !hw_client_to(&w, est, ACK, x) || !hw_client_to(&w, unc, SYN, x))
		goto out;
	w.hc[SLUICE_HCNT_SUCCESS]++;
	dp__at("IPv%u two failures", af);
	if (!hw_rst_fail(&w, x, fail[0]) || !hw_rst_fail(&w, x, fail[1]))
		goto out;
	ASSERT_EQ(hw_bh(&w, x).flags, 0, "not ejected below the threshold");
	dp__at("IPv%u third failure", af);
	if (!hw_eject(&w, x, fail + 2, 1))
		goto out;
	bh = hw_bh(&w, x);
	ASSERT_EQ(bh.fails, 3, "fails");
	ASSERT_EQ(bh.ejections, 1, "ejections");
	ASSERT_EQ(bh.ejected_until_ns - bh.last_fail_ns, H_BASE_MS * H_MS, "ejected for base_ms");
	ASSERT_EQ(hw_ejected(&w), 1, "svc_health.ejected");
	if (hw_events(&w, 1, "ejection"))
		hw_event_is(&w, 0, SLUICE_HEALTH_EV_EJECTED, x, 3, 1, SLUICE_HEALTH_R_RST);

	dp__at("IPv%u new flow whose pick is ejected", af);
	y = hw_client(&w, nw[0], SYN);
	w.hc[SLUICE_HCNT_FALLBACK]++;
	ASSERT_TRUE(y >= 0 && y != x, "DNATed to another backend");
	dp__at("IPv%u the same SYN again after the flow ended", af);
	hw_client(&w, nw[0], RST | ACK);
	y2 = hw_client(&w, nw[0], SYN);
	w.hc[SLUICE_HCNT_FALLBACK]++;
	ASSERT_EQ(y2, y, "deterministic: the same backend again");
	if (y >= 0 && fallback_seen[af == 6][0] && d->prog == DP_TC)
		ASSERT_EQ(y + 1, fallback_seen[af == 6][0], "tc picks as XDP did");
	fallback_seen[af == 6][d->prog == DP_TC] = y + 1;
	dp__at("IPv%u existing flows keep the ejected backend", af);
	hw_client_to(&w, est, ACK | PKT_TH_PSH, x);
	hw_client_to(&w, unc, ACK, x);
	dp__at("IPv%u a connection whose state was lost keeps it too", af);
	k = hw_fwd_key(&w, nw[1]);
	ASSERT_OK(bpf_map_delete_elem(w.ct_new_fd, &k), "forget the flow");
	hw_client_to(&w, nw[1], ACK, x);
	hw_counters(&w, "after ejection and fallback");
out:
	hw_close(&w);
}

static void eject_prog(struct dp *d)
{
	eject_af(d, 4);
	eject_af(d, 6);
}

/* health_eject_fallback: 3 failures eject; new flows fall back, deterministically; existing stay */
static void health_eject_fallback(void)
{
	memset(fallback_seen, 0, sizeof(fallback_seen));
	dp__each_prog(0, eject_prog);
}

static void zero_prog(struct dp *d)
{
	__u16 ports[4], next = 43000;
	struct hw w;

	if (!hw_open(&w, d, 4, hcfg(3, 50, 50)) || !hw_ports_to(&w, 1, ports, 4, &next))
		goto out;
	dp__at("fail, fail, succeed, fail");
	if (!hw_rst_fail(&w, 1, ports[0]) || !hw_rst_fail(&w, 1, ports[1]))
		goto out;
	ASSERT_EQ(hw_bh(&w, 1).fails, 2, "fails");
	if (!hw_client_to(&w, ports[2], SYN, 1) || !hw_reply(&w, 1, ports[2], SYN | ACK))
		goto out;
	w.hc[SLUICE_HCNT_SUCCESS]++;
	ASSERT_EQ(hw_bh(&w, 1).fails, 0, "zeroed");
	hw_rst_fail(&w, 1, ports[3]);
	ASSERT_EQ(hw_bh(&w, 1).fails, 1, "fails");
	ASSERT_EQ(hw_bh(&w, 1).flags, 0, "not ejected: the failures were not consecutive");
	ASSERT_EQ(hw_ejected(&w), 0, "svc_health.ejected");
	hw_counters(&w, "counters");
out:
	hw_close(&w);
}

/* health_success_zeroes: failures must be consecutive to eject */
static void health_success_zeroes(void)
{
	dp__each_prog(0, zero_prog);
}

static void probation_prog(struct dp *d)
{
	__u16 p[10], next = 44000;
	struct sluice_backend_health bh;
	struct sluice_svc_health sh;
	struct hw w;

	if (!hw_open(&w, d, 4, hcfg(3, 50, 50)) || !hw_ports_to(&w, 2, p, 10, &next))
		goto out;
	if (!hw_client_to(&w, p[3], SYN, 2) || !hw_eject(&w, 2, p, 3))
		goto out;
	dp__at("SYN|ACK while ejected");
	hw_reply(&w, 2, p[3], SYN | ACK);
	w.hc[SLUICE_HCNT_SUCCESS]++;
	bh = hw_bh(&w, 2);
	ASSERT_EQ(bh.fails, 0, "the success zeroes fails");
	ASSERT_TRUE(bh.flags & SLUICE_BH_F_EJECTED, "but does not restore before the time is over");
	dp__at("on probation: picked, restored by a success");
	hw_time_over(&w, 2);
	if (!hw_client_to(&w, p[4], SYN, 2) || !hw_reply(&w, 2, p[4], SYN | ACK))
		goto out;
	w.hc[SLUICE_HCNT_SUCCESS]++;
	w.hc[SLUICE_HCNT_RESTORE]++;
	bh = hw_bh(&w, 2);
	ASSERT_EQ(bh.flags, 0, "restored");
	ASSERT_EQ(bh.ejections, 1, "ejections kept (last failure recent)");
	ASSERT_EQ(hw_ejected(&w), 0, "svc_health.ejected");
	if (hw_events(&w, 2, "ejected, restored"))
		hw_event_is(&w, 1, SLUICE_HEALTH_EV_RESTORED, 2, 0, 1, SLUICE_HEALTH_R_RST);
	dp__at("ejected again: twice as long");
	if (!hw_eject(&w, 2, p + 5, 3))
		goto out;
	bh = hw_bh(&w, 2);
	ASSERT_EQ(bh.ejections, 2, "ejections");
	ASSERT_EQ(bh.ejected_until_ns - bh.last_fail_ns, 2 * H_BASE_MS * H_MS, "2 x base");
	dp__at("one failure on probation ejects again");
	hw_time_over(&w, 2);
	if (!hw_rst_fail(&w, 2, p[8]))
		goto out;
	w.hc[SLUICE_HCNT_EJECT]++;
	bh = hw_bh(&w, 2);
	ASSERT_TRUE(bh.flags & SLUICE_BH_F_EJECTED, "ejected again");
	ASSERT_EQ(bh.ejections, 3, "ejections");
	ASSERT_EQ(bh.ejected_until_ns - bh.last_fail_ns, 3 * H_BASE_MS * H_MS, "3 x base");
	ASSERT_EQ(hw_ejected(&w), 1, "svc_health.ejected counted once");
	if (hw_events(&w, 2, "ejected, ejected again"))
		hw_event_is(&w, 1, SLUICE_HEALTH_EV_REEJECTED, 2, 4, 3, SLUICE_HEALTH_R_RST);
	dp__at("a success long after the last failure forgets the ejections");
	/* "long after" is past the service's max ejection time, cut to 1 s
	 * here: a kernel booted less than H_MAX_MS ago (a test guest) has no
	 * monotonic time that far back, and mono_ns() - H_MAX_MS would wrap */
	if (ASSERT_OK(bpf_map_lookup_elem(w.sh_fd, &w.svc_id, &sh), "svc_health lookup")) {
		sh.max_ms = 1000;
		ASSERT_OK(bpf_map_update_elem(w.sh_fd, &w.svc_id, &sh, BPF_ANY),
			  "svc_health update");
	}
	bh = hw_bh(&w, 2);
	bh.ejected_until_ns = mono_ns() - 1;
	bh.last_fail_ns = mono_ns() - 2000 * H_MS;
	hw_bh_put(&w, 2, &bh);
	if (!hw_client_to(&w, p[9], SYN, 2) || !hw_reply(&w, 2, p[9], SYN | ACK))
		goto out;
	w.hc[SLUICE_HCNT_SUCCESS]++;
	w.hc[SLUICE_HCNT_RESTORE]++;
	bh = hw_bh(&w, 2);
	ASSERT_EQ(bh.flags, 0, "restored");
	ASSERT_EQ(bh.ejections, 0, "ejections zeroed");
	hw_counters(&w, "counters");
out:
	hw_close(&w);
}

/* health_probation: restore on probation, re-eject with backoff, ejections reset */
static void health_probation(void)
{
	dp__each_prog(0, probation_prog);
}

static void max_prog(struct dp *d)
{
	__u16 px[3], pz[5], next = 45000;
	struct hw w;

	if (!hw_open(&w, d, 4, hcfg(3, 50, 50)) || !hw_ports_to(&w, 0, px, 3, &next) ||
	    !hw_ports_to(&w, 1, pz, 5, &next))
		goto out;
	if (!hw_eject(&w, 0, px, 3))
		goto out;
	dp__at("second backend at the threshold: 1 of 3 may be ejected");
	for (int k = 0; k < 4; k++)
		if (!hw_rst_fail(&w, 1, pz[k]))
			goto out;
	w.hc[SLUICE_HCNT_MAX_EJECTED] += 2;
	ASSERT_EQ(hw_bh(&w, 1).flags, 0, "refused: not ejected");
	ASSERT_EQ(hw_bh(&w, 1).fails, 4, "fails");
	ASSERT_EQ(hw_ejected(&w), 1, "svc_health.ejected");
	if (hw_events(&w, 2, "ejected, then one max-ejected event"))
		hw_event_is(&w, 1, SLUICE_HEALTH_EV_MAX_EJECTED, 1, 3, 0, SLUICE_HEALTH_R_RST);
	dp__at("room again (max 100%%): the next failure ejects");
	hw_cfg(&w, (struct sluice_svc_health){ .ejected = 1,
					       .backends = H_N,
					       .threshold = 3,
					       .max_ejected_pct = 100,
					       .panic_pct = 0,
					       .base_ms = H_BASE_MS,
					       .max_ms = H_MAX_MS });
	if (!hw_eject(&w, 1, pz + 4, 1))
		goto out;
	ASSERT_EQ(hw_ejected(&w), 2, "svc_health.ejected");
	hw_counters(&w, "counters");
out:
	hw_close(&w);
}

/* health_max_ejected: at most max(1, 50% of 3) ejected; one event, counted per refusal */
static void health_max_ejected(void)
{
	dp__each_prog(0, max_prog);
}

/* Marks backend i ejected for a minute, as an ejection would. */
static void hw_mark_ejected(struct hw *w, int i)
{
	struct sluice_backend_health bh = { .ejected_until_ns = mono_ns() + 60000 * H_MS,
					    .last_fail_ns = mono_ns(),
					    .ejections = 1,
					    .flags = SLUICE_BH_F_EJECTED };

	hw_bh_put(w, i, &bh);
}

static void panic_prog(struct dp *d)
{
	struct sluice_svc_health c = hcfg(3, 100, 50);
	__u16 p, next = 46000;
	struct hw w;

	if (!hw_open(&w, d, 4, c) || !hw_ports_to(&w, 0, &p, 1, &next))
		goto out;
	dp__at("1 of 3 ejected: fallback");
	hw_mark_ejected(&w, 0);
	c.ejected = 1;
	hw_cfg(&w, c);
	ASSERT_NEQ(hw_client(&w, p, SYN), 0, "moved off the ejected backend");
	w.hc[SLUICE_HCNT_FALLBACK]++;
	hw_client(&w, p, RST | ACK);
	dp__at("2 of 3 ejected, panic below 50%% healthy");
	hw_mark_ejected(&w, 1);
	c.ejected = 2;
	hw_cfg(&w, c);
	hw_client_to(&w, p, SYN, 0);
	w.hc[SLUICE_HCNT_PANIC]++;
	hw_client(&w, p, RST | ACK);
	dp__at("the same with panic off");
	c.panic_pct = 0;
	hw_cfg(&w, c);
	hw_client_to(&w, p, SYN, 2);
	w.hc[SLUICE_HCNT_FALLBACK]++;
	hw_client(&w, p, RST | ACK);
	dp__at("all ejected, panic off: the Maglev pick");
	hw_mark_ejected(&w, 2);
	c.ejected = 3;
	hw_cfg(&w, c);
	hw_client_to(&w, p, SYN, 0);
	hw_counters(&w, "counters");
out:
	hw_close(&w);
}

/* health_panic: too few healthy -> health ignored; panic 0 never; none healthy -> Maglev pick */
static void health_panic(void)
{
	dp__each_prog(0, panic_prog);
}

static void off_prog(struct dp *d)
{
	__u16 p[5], next = 47000;
	struct hw w;

	if (!hw_open(&w, d, 4, hcfg(0, 50, 50)) || !hw_ports_to(&w, 1, p, 5, &next))
		goto out;
	dp__at("threshold 0: failures not counted");
	for (int k = 0; k < 4; k++) {
		if (!hw_client_to(&w, p[k], SYN, 1) || !hw_reply(&w, 1, p[k], RST | ACK))
			goto out;
	}
	ASSERT_EQ(hw_bh(&w, 1).fails, 0, "fails");
	ASSERT_EQ(hw_bh(&w, 1).flags, 0, "not ejected");
	dp__at("threshold 0: picks ignore an ejected flag");
	hw_mark_ejected(&w, 1);
	hw_client_to(&w, p[4], SYN, 1);
	hw_counters(&w, "nothing counted");
	hw_events(&w, 0, "no events");
out:
	hw_close(&w);
}

/* health_off: threshold 0 counts nothing and picks ignore health */
static void health_off(void)
{
	dp__each_prog(0, off_prog);
}

static const struct test health_tests[] = {
	TEST(health_rst_counts),
	TEST(health_syn_timeout),
	TEST(health_eject_fallback),
	TEST(health_success_zeroes),
	TEST(health_probation),
	TEST(health_max_ejected),
	TEST(health_panic),
	TEST(health_off),
	TEST(health_syn_again_repick),
	TEST(health_direct_after_refused),
};

const struct dp_suite dp_suite_health = {
	.name = "health",
	.tests = health_tests,
	.ntests = ARRAY_SIZE(health_tests),
};
