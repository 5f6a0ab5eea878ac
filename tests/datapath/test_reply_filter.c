// SPDX-License-Identifier: MIT
/*
 * test_reply_filter.c - the reply filter (#17): a packet that is not to a
 * service looks conntrack up as a reply only when its source is a backend
 * address (backend_addrs, kept by the library). A reply entry keyed by a
 * non-backend source is never used; the library keeps the filter in step
 * with backend adds, removals and service deletes, and keeps a removed
 * backend's address while conntrack still names it. Also the timestamp
 * interval of established flows: an entry is written at most once per
 * CT_REFRESH_NS (1 s), not per packet. And the service filter in front
 * of the services lookup (service_addr_bits): it is read, and a stale bit
 * is harmless.
 */
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>

#include "dp.h"
#include "explain.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK
#define NSEC 1000000000ULL

/* Sends in, expects verdict PASS, output out (NULL: unchanged) and the
 * counters cnt exactly. */
static bool rf_send(struct dp *d, const struct dp_pkt *ins, const struct dp_pkt *outs,
		    const __u64 *cnt)
{
	static const __u64 no_drops[SLUICE_DROP__MAX];
	static struct pkt in, got, exp;
	struct dp_counts before, after;
	int verdict;

	dp__build(&in, ins);
	dp__build(&exp, outs ? outs : ins);
	if (!dp__counts(d, &before) || !dp__send(d, &in, &got, &verdict))
		return false;
	if (verdict != dp__verdict_for(d, XDP_PASS)) {
		dp__fail(d, "verdict %s, expected PASS", dp__verdict_name(d, verdict));
		return false;
	}
	if (!dp__expect_bytes(d, "output", &got, &exp))
		return false;
	return dp__counts(d, &after) &&
	       dp__expect_counts(d, "counters", &before, &after, cnt, no_drops);
}

static const __u64 cnt_pass[SLUICE_CNT__MAX] = { [SLUICE_CNT_PASS] = 1 };
static const __u64
	cnt_revnat[SLUICE_CNT__MAX] = { [SLUICE_CNT_REVNAT] = 1, [SLUICE_CNT_FIB_PASS] = 1 };
static const __u64 cnt_new[SLUICE_CNT__MAX] = { [SLUICE_CNT_LB_NEW] = 1, [SLUICE_CNT_FIB_PASS] = 1 };
static const __u64 cnt_est[SLUICE_CNT__MAX] = { [SLUICE_CNT_LB_EST] = 1, [SLUICE_CNT_FIB_PASS] = 1 };
static const __u64 cnt_confirm[SLUICE_CNT__MAX] = { [SLUICE_CNT_LB_EST] = 1,
						    [SLUICE_CNT_FIB_PASS] = 1,
						    [SLUICE_CNT_CT_CONFIRMED] = 1 };

static struct dp_pkt rf_tcp(__u8 af, const char *s, const char *dst, __u16 sp, __u16 dport,
			    __u8 flags, enum dp_l2 l2)
{
	return (struct dp_pkt){ .af = af,
				.proto = IPPROTO_TCP,
				.l2 = l2,
				.saddr = s,
				.daddr = dst,
				.sport = sp,
				.dport = dport,
				.flags = flags,
				.seq = 1,
				.ack = flags & ACK ? 1 : 0 };
}

/* A confirmed REPLY entry src:8080 -> client:cport rewriting to VIP:80,
 * written straight into conntrack (as any flow of the past left it). */
static bool rf_put_reply(struct dp *d, __u8 af, const char *src, const char *client, __u16 cport,
			 const char *vip)
{
	struct sluice_addr s = dp__addr(src), c = dp__addr(client), v = dp__addr(vip);
	struct sluice_ct_key k = { .sport = htons(BE_PORT_TCP),
				   .dport = htons(cport),
				   .proto = IPPROTO_TCP,
				   .family = af == 4 ? SLUICE_AF_INET : SLUICE_AF_INET6,
				   .dir = SLUICE_CT_REPLY };
	struct sluice_ct_entry e = { .port = htons(SVC_PORT_TCP), .svc_id = 1 };
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	e.created_ns = e.last_seen_ns = (__u64)now.tv_sec * NSEC + (__u64)now.tv_nsec;
	memcpy(k.saddr, s.addr, sizeof(k.saddr));
	memcpy(k.daddr, c.addr, sizeof(k.daddr));
	memcpy(e.addr, v.addr, sizeof(e.addr));
	return ASSERT_OK(bpf_map_update_elem(sluice__map_fd(d->s, "conntrack"), &k, &e, BPF_ANY),
			 "conntrack entry written");
}

/* The same reply entry is used from a backend address, ignored from any
 * other: the filter, not the entry, decides. */
static void filter_af(struct dp *d, __u8 af)
{
	const char *be = af == 4 ? BE4 : BE6, *other = af == 4 ? OTHER4 : OTHER6;
	const char *client = af == 4 ? CLIENT4 : CLIENT6, *vip = af == 4 ? VIP4 : VIP6;
	struct dp_pkt in, out;

	if (!rf_put_reply(d, af, be, client, 43001, vip) ||
	    !rf_put_reply(d, af, other, client, 43001, vip))
		return;
	dp__at("IPv%u reply from the backend address", af);
	in = rf_tcp(af, be, client, BE_PORT_TCP, 43001, ACK, L2_BACKEND);
	out = in;
	out.saddr = vip;
	out.sport = SVC_PORT_TCP;
	rf_send(d, &in, &out, cnt_revnat);
	dp__at("IPv%u the same tuple from a non-backend address", af);
	in.saddr = other;
	rf_send(d, &in, NULL, cnt_pass);
	dp__at("%s", "");
}

static void filter_prog(struct dp *d)
{
	filter_af(d, 4);
	filter_af(d, 6);
}

/* reply_filter_source: reverse NAT only for replies from backend addresses */
static void reply_filter_source(void)
{
	dp__each_prog(0, filter_prog);
}

/* Deletes every conntrack / ct_new entry of a flow to or from addr. */
static void rf_forget_flows(struct dp *d, const struct sluice_addr *a)
{
	static const char *const maps[] = { "conntrack", "ct_new" };

	for (int m = 0; m < 2; m++) {
		int fd = sluice__map_fd(d->s, maps[m]);
		struct sluice_ct_key k, next, *prev = NULL;
		struct sluice_ct_entry e;

		while (!bpf_map_get_next_key(fd, prev, &next)) {
			k = next;
			prev = &k;
			if (bpf_map_lookup_elem(fd, &k, &e))
				continue;
			if (!memcmp(k.saddr, a->addr, sizeof(k.saddr)) ||
			    !memcmp(e.addr, a->addr, sizeof(e.addr))) {
				bpf_map_delete_elem(fd, &k);
				prev = NULL; /* restart: the walk lost its place */
			}
		}
	}
}

/* The library keeps the filter in step: a new backend's replies are
 * rewritten, a removed one's while its flow lives (the address lingers),
 * and once no flow names it the sweep drops it and its packets pass. */
static void library_af(struct dp *d, __u8 af)
{
	const char *b1 = af == 4 ? "10.1.0.81" : "fd00:1::81";
	const char *b2 = af == 4 ? "10.1.0.82" : "fd00:1::82";
	const char *vip = af == 4 ? "10.96.0.80" : "fd00:96::80";
	const char *client = af == 4 ? CLIENT4 : CLIENT6;
	struct dp_be one = { b1, BE_PORT_TCP, 1 }, two = { b2, BE_PORT_TCP, 1 };
	struct sluice_addr a1 = dp__addr(b1), a2 = dp__addr(b2), va = dp__addr(vip);
	struct dp_pkt in, out;
	bool present;
	__u32 removed;

	dp__at("IPv%u before any backend", af);
	in = rf_tcp(af, b1, client, BE_PORT_TCP, 44000, SYN | ACK, L2_BACKEND);
	rf_send(d, &in, NULL, cnt_pass);
	ASSERT_EQ(sluice__backend_addr_refs(d->s, &a1, &present), 0, "refs before");
	ASSERT_FALSE(present, "no entry before the backend");
	if (dp__service(d, vip, 80, IPPROTO_TCP, &one, 1))
		return;
	ASSERT_EQ(sluice__backend_addr_refs(d->s, &a1, &present), 1, "refs after the add");
	dp__at("IPv%u SYN to the service", af);
	in = rf_tcp(af, client, vip, 44000, 80, SYN, L2_CLIENT);
	out = in;
	out.daddr = b1;
	out.dport = BE_PORT_TCP;
	rf_send(d, &in, &out, cnt_new);
	dp__at("IPv%u SYN|ACK of the added backend", af);
	in = rf_tcp(af, b1, client, BE_PORT_TCP, 44000, SYN | ACK, L2_BACKEND);
	out = in;
	out.saddr = vip;
	out.sport = 80;
	rf_send(d, &in, &out, cnt_revnat);
	dp__at("IPv%u ACK confirms", af);
	in = rf_tcp(af, client, vip, 44000, 80, ACK, L2_CLIENT);
	out = in;
	out.daddr = b1;
	out.dport = BE_PORT_TCP;
	rf_send(d, &in, &out, cnt_confirm);

	/* the backend leaves the set; its delete waits for the flush */
	if (dp__service(d, vip, 80, IPPROTO_TCP, &two, 1))
		return;
	ASSERT_EQ(sluice__backend_addr_refs(d->s, &a1, &present), 1, "refs until the flush");
	ASSERT_TRUE(sluice__flush_deferred(d->s) >= 1, "deferred delete flushed");
	ASSERT_EQ(sluice__backend_addr_refs(d->s, &a1, &present), 0, "refs after the flush");
	ASSERT_TRUE(present, "the removed backend's address lingers");
	ASSERT_OK(sluice__backend_addrs_sweep(d->s, &removed), "sweep with the flow live");
	ASSERT_EQ(removed, 0, "nothing swept while conntrack names the address");
	dp__at("IPv%u reply of the live flow to the removed backend", af);
	in = rf_tcp(af, b1, client, BE_PORT_TCP, 44000, ACK, L2_BACKEND);
	out = in;
	out.saddr = vip;
	out.sport = 80;
	rf_send(d, &in, &out, cnt_revnat);

	rf_forget_flows(d, &a1);
	ASSERT_OK(sluice__backend_addrs_sweep(d->s, &removed), "sweep without flows");
	ASSERT_EQ(removed, 1, "the address of the removed backend swept");
	sluice__backend_addr_refs(d->s, &a1, &present);
	ASSERT_FALSE(present, "gone from the filter");
	dp__at("IPv%u packet from the former backend", af);
	rf_send(d, &in, NULL, cnt_pass);

	/* service delete: its backends' addresses linger, then go */
	ASSERT_OK(sluice__service_del(d->s, &va, 80, IPPROTO_TCP), "service delete");
	ASSERT_EQ(sluice__backend_addr_refs(d->s, &a2, &present), 0,
		  "refs after the service delete");
	ASSERT_OK(sluice__backend_addrs_sweep(d->s, &removed), "sweep after the delete");
	ASSERT_EQ(removed, 1, "the deleted service's backend address swept");
	dp__at("%s", "");
}

static void library_prog(struct dp *d)
{
	library_af(d, 4);
	library_af(d, 6);
}

/* reply_filter_library: the library keeps the filter in step with backends */
static void reply_filter_library(void)
{
	dp__each_prog(0, library_prog);
}

/* The FWD entry of client:cport -> VIP4:80. */
static bool rf_fwd(struct dp *d, __u16 cport, struct sluice_ct_key *k, struct sluice_ct_entry *e)
{
	struct sluice_addr c = dp__addr(CLIENT4), v = dp__addr(VIP4);

	memset(k, 0, sizeof(*k));
	memcpy(k->saddr, c.addr, sizeof(k->saddr));
	memcpy(k->daddr, v.addr, sizeof(k->daddr));
	k->sport = htons(cport);
	k->dport = htons(SVC_PORT_TCP);
	k->proto = IPPROTO_TCP;
	k->family = SLUICE_AF_INET;
	k->dir = SLUICE_CT_FWD;
	return ASSERT_OK(bpf_map_lookup_elem(sluice__map_fd(d->s, "conntrack"), k, e),
			 "confirmed FWD entry");
}

/* An established flow's entry is written once per interval: a second
 * packet right after the first leaves last_seen_ns alone; one after the
 * interval (the entry aged by 2 s) refreshes it. */
static void interval_prog(struct dp *d)
{
	int fd = sluice__map_fd(d->s, "conntrack");
	struct sluice_ct_entry e, e2;
	struct sluice_ct_key k;
	struct dp_pkt in, out;
	__u64 aged;

	in = rf_tcp(4, CLIENT4, VIP4, 45000, 80, SYN, L2_CLIENT);
	out = in;
	out.daddr = BE4;
	out.dport = BE_PORT_TCP;
	rf_send(d, &in, &out, cnt_new);
	in = rf_tcp(4, BE4, CLIENT4, BE_PORT_TCP, 45000, SYN | ACK, L2_BACKEND);
	out = in;
	out.saddr = VIP4;
	out.sport = 80;
	rf_send(d, &in, &out, cnt_revnat);
	in = rf_tcp(4, CLIENT4, VIP4, 45000, 80, ACK, L2_CLIENT);
	out = in;
	out.daddr = BE4;
	out.dport = BE_PORT_TCP;
	rf_send(d, &in, &out, cnt_confirm);
	if (!rf_fwd(d, 45000, &k, &e))
		return;
	dp__at("%s", "second packet inside the interval");
	rf_send(d, &in, &out, cnt_est);
	if (!rf_fwd(d, 45000, &k, &e2))
		return;
	ASSERT_EQ(e2.last_seen_ns, e.last_seen_ns, "no timestamp write inside the interval");
	ASSERT_EQ(e2.tcp_flags, e.tcp_flags, "flags unchanged");

	aged = e.last_seen_ns - 2 * NSEC;
	e.last_seen_ns = aged;
	if (!ASSERT_OK(bpf_map_update_elem(fd, &k, &e, BPF_EXIST), "age the entry"))
		return;
	dp__at("%s", "packet after the interval");
	rf_send(d, &in, &out, cnt_est);
	if (!rf_fwd(d, 45000, &k, &e2))
		return;
	ASSERT_TRUE(e2.last_seen_ns > aged + NSEC, "timestamp refreshed after the interval");
	dp__at("%s", "");
}

/* ct_refresh_interval: established entries written once per interval */
static void ct_refresh_interval(void)
{
	dp__each_prog(0, interval_prog);
}

/* Sets (on) or clears (off) addr's bit in service_addr_bits. */
static bool rf_vip_bit(struct dp *d, const char *addr, bool on)
{
	struct sluice_addr a = dp__addr(addr);
	__u32 bit = sluice_addr_bit(a.addr, a.family), word = bit / 64;
	int fd = sluice__map_fd(d->s, "service_addr_bits");
	__u64 w = 0;

	if (!ASSERT_OK(bpf_map_lookup_elem(fd, &word, &w), "read the service filter"))
		return false;
	w = on ? w | 1ULL << (bit % 64) : w & ~(1ULL << (bit % 64));
	return ASSERT_OK(bpf_map_update_elem(fd, &word, &w, BPF_ANY), "write the service filter");
}

/* What `meshctl explain` says of a new flow client:port -> vip:80/tcp. */
static int rf_explain(struct dp *d, const char *client, __u16 port, const char *vip)
{
	static struct sluice_explain xo;
	struct sluice_explain_req r = { .path = SLUICE_EXPLAIN_PACKET,
					.client = dp__addr(client),
					.client_port = port,
					.vip = dp__addr(vip),
					.port = 80,
					.proto = IPPROTO_TCP };

	if (!ASSERT_OK(sluice__explain(d->s, &r, &xo), "explain"))
		return -1;
	return (int)xo.verdict;
}

/* The service filter decides whether the services lookup happens: with
 * the VIP's bit cleared a SYN to it passes untouched (as to no service),
 * with it set again it is balanced; a bit set for an address without a
 * service changes nothing. */
static void vip_af(struct dp *d, __u8 af)
{
	const char *be = af == 4 ? "10.1.0.91" : "fd00:1::91";
	const char *vip = af == 4 ? "10.96.0.90" : "fd00:96::90";
	const char *client = af == 4 ? CLIENT4 : CLIENT6, *other = af == 4 ? OTHER4 : OTHER6;
	struct dp_be one = { be, BE_PORT_TCP, 1 };
	struct dp_pkt in, out;

	if (dp__service(d, vip, 80, IPPROTO_TCP, &one, 1))
		return;
	in = rf_tcp(af, client, vip, 46000, 80, SYN, L2_CLIENT);
	out = in;
	out.daddr = be;
	out.dport = BE_PORT_TCP;
	dp__at("IPv%u SYN to the VIP", af);
	rf_send(d, &in, &out, cnt_new);
	if (!rf_vip_bit(d, vip, false))
		return;
	dp__at("IPv%u SYN to the VIP with its bit cleared", af);
	in.sport = 46001;
	ASSERT_EQ(rf_explain(d, client, 46001, vip), SLUICE_XV_PASS, "explain agrees: passed");
	rf_send(d, &in, NULL, cnt_pass);
	if (!rf_vip_bit(d, vip, true))
		return;
	dp__at("IPv%u SYN to the VIP with its bit set again", af);
	in.sport = 46002;
	out.sport = 46002;
	ASSERT_EQ(rf_explain(d, client, 46002, vip), SLUICE_XV_BALANCED, "explain: balanced");
	rf_send(d, &in, &out, cnt_new);
	if (!rf_vip_bit(d, other, true))
		return;
	dp__at("IPv%u SYN to a non-service address whose bit is set", af);
	in = rf_tcp(af, client, other, 46003, 80, SYN, L2_CLIENT);
	rf_send(d, &in, NULL, cnt_pass);
	dp__at("%s", "");
}

static void vip_prog(struct dp *d)
{
	vip_af(d, 4);
	vip_af(d, 6);
}

/* vip_filter_is_read: the services lookup only for addresses with a bit */
static void vip_filter_is_read(void)
{
	dp__each_prog(0, vip_prog);
}

static const struct test reply_filter_tests[] = {
	TEST(reply_filter_source),
	TEST(reply_filter_library),
	TEST(ct_refresh_interval),
	TEST(vip_filter_is_read),
};

const struct dp_suite dp_suite_reply_filter = {
	.name = "reply_filter",
	.tests = reply_filter_tests,
	.ntests = ARRAY_SIZE(reply_filter_tests),
};
