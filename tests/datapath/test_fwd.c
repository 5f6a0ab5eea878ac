// SPDX-License-Identifier: MIT
/*
 * test_fwd.c - forwarding after NAT (bpf/lib/fwd.h): a successful FIB
 * lookup decrements TTL / hop limit (IPv4 checksum kept exact), writes the
 * egress device's and the neighbour's MACs and redirects (FIB_REDIRECT).
 * XDP by default redirects only to an egress listed in fwd_devs and hands
 * any other egress's frames to the kernel (XDP_PASS, FWD_NOT_CAPABLE);
 * SLUICE_CFG_FIB_FORWARD redirects to any egress, SLUICE_CFG_FWD_OFF to
 * none. tc redirects to any egress, and with bpf_redirect_neigh where the
 * neighbour is not known yet. No route or an expiring TTL leave the
 * rewritten frame to the kernel (XDP_PASS / TC_ACT_OK, FIB_PASS).
 *
 * bpf_fib_lookup() in a test run uses the tables of the caller's network
 * namespace, so these cases run in a forked child inside a namespace of
 * its own: one veth device with the client and backend subnets on-link,
 * permanent neighbours with known MACs, forwarding enabled.
 */
#define _GNU_SOURCE
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK

static const __u8 MAC_DEV[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0xfe };
static const __u8 MAC_NB_BE[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0xb1 };
static const __u8 MAC_NB_CLIENT[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0xc1 };

#define VIP4_NONEIGH "10.96.0.90" /* -> 10.1.0.99:8080, on-link, no neighbour */
#define BE4_NONEIGH "10.1.0.99"
#define VIP4_NOROUTE "10.96.0.91" /* -> 10.55.0.1:8080, no route at all */
#define BE4_NOROUTE "10.55.0.1"
#define VIP4_SLOW "10.96.0.92" /* -> 10.2.0.9:8080, via a device not in fwd_devs */
#define BE4_SLOW "10.2.0.9"

static const __u8 MAC_DEV_SLOW[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0xfd };
static const __u8 MAC_NB_SLOW[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0xb2 };

static bool sh(struct dp *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool sh(struct dp *d, const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc)
		dp__fail(d, "'%s' failed (%d)", cmd, rc);
	return !rc;
}

static bool fwd_netns(struct dp *d)
{
	char dev[IFNAMSIZ];

	if (unshare(CLONE_NEWNET)) {
		dp__fail(d, "unshare(CLONE_NEWNET) failed");
		return false;
	}
	snprintf(dev, sizeof(dev), "slfw%d", (int)getpid() % 100000);
	return sh(d, "ip link set lo up") &&
	       sh(d, "ip link add %s address 02:00:00:00:00:fe type veth peer name %sp", dev,
		  dev) &&
	       sh(d, "ip link set %sp up", dev) && sh(d, "ip link set %s up", dev) &&
	       sh(d, "ip addr add 10.1.0.254/24 dev %s", dev) &&
	       sh(d, "ip addr add 10.0.0.254/24 dev %s", dev) &&
	       sh(d, "ip -6 addr add fd00:1::fe/64 dev %s nodad", dev) &&
	       sh(d, "ip -6 addr add fd00::fe/64 dev %s nodad", dev) &&
	       sh(d, "ip neigh replace %s lladdr 02:00:00:00:00:b1 dev %s nud permanent", BE4,
		  dev) &&
	       sh(d, "ip neigh replace %s lladdr 02:00:00:00:00:c1 dev %s nud permanent", CLIENT4,
		  dev) &&
	       sh(d, "ip -6 neigh replace %s lladdr 02:00:00:00:00:b1 dev %s nud permanent", BE6,
		  dev) &&
	       sh(d, "ip -6 neigh replace %s lladdr 02:00:00:00:00:c1 dev %s nud permanent",
		  CLIENT6, dev) &&
	       sh(d, "echo 1 > /proc/sys/net/ipv4/ip_forward") &&
	       sh(d, "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding");
}

/* fwd_netns plus a second egress, slfx<pid> (MAC ..:fd), towards
 * 10.2.0.0/24 with BE4_SLOW's neighbour ..:b2; only slfw<pid> goes
 * into fwd_devs (fwd_auto_setup). */
static bool fwd2_netns(struct dp *d)
{
	char dev[IFNAMSIZ];

	snprintf(dev, sizeof(dev), "slfx%d", (int)getpid() % 100000);
	return fwd_netns(d) &&
	       sh(d, "ip link add %s address 02:00:00:00:00:fd type veth peer name %sp", dev,
		  dev) &&
	       sh(d, "ip link set %sp up", dev) && sh(d, "ip link set %s up", dev) &&
	       sh(d, "ip addr add 10.2.0.254/24 dev %s", dev) &&
	       sh(d, "ip neigh replace %s lladdr 02:00:00:00:00:b2 dev %s nud permanent", BE4_SLOW,
		  dev);
}

static bool fwd_services(struct dp *d)
{
	struct dp_be noneigh = { BE4_NONEIGH, BE_PORT_TCP, 1 };
	struct dp_be noroute = { BE4_NOROUTE, BE_PORT_TCP, 1 };

	return !dp__service(d, VIP4_NONEIGH, 80, IPPROTO_TCP, &noneigh, 1) &&
	       !dp__service(d, VIP4_NOROUTE, 80, IPPROTO_TCP, &noroute, 1);
}

static bool fwd_auto_setup(struct dp *d)
{
	struct dp_be slow = { BE4_SLOW, BE_PORT_TCP, 1 };
	char dev[IFNAMSIZ];
	int err;

	if (!fwd_services(d) || dp__service(d, VIP4_SLOW, 80, IPPROTO_TCP, &slow, 1))
		return false;
	snprintf(dev, sizeof(dev), "slfw%d", (int)getpid() % 100000);
	err = sluice__fwd_dev_set(d->s, (int)if_nametoindex(dev), true);
	if (err)
		dp__fail(d, "fwd_devs: adding %s: %s", dev, sluice__errmsg());
	return !err && sluice__fwd_dev_has(d->s, (int)if_nametoindex(dev)) == 1;
}

#define TO_BE .smac = MAC_DEV, .dmac = MAC_NB_BE, .ttl = 56
#define TO_CLIENT .smac = MAC_DEV, .dmac = MAC_NB_CLIENT, .ttl = 56

#define FWD_NEW(in_, out_, svc_)                                                     \
	{                                                                            \
		.in = in_, .out = out_, .verdict = XDP_REDIRECT,                     \
		.cnt = { C(LB_NEW), C(FIB_REDIRECT) }, .svc = svc_, .acct = ACCT_NEW \
	}
#define FWD_EST_CONFIRMS(in_, out_, svc_)                                            \
	{                                                                            \
		.in = in_, .out = out_, .verdict = XDP_REDIRECT,                     \
		.cnt = { C(LB_EST), C(FIB_REDIRECT), C(CT_CONFIRMED) }, .svc = svc_, \
		.acct = ACCT_PKT                                                     \
	}
#define FWD_REV(in_, out_, svc_)                                                     \
	{                                                                            \
		.in = in_, .out = out_, .verdict = XDP_REDIRECT,                     \
		.cnt = { C(REVNAT), C(FIB_REDIRECT) }, .svc = svc_, .acct = ACCT_PKT \
	}
/* handed to the kernel, NATed but not forwarded: TTL and MACs as they came */
#define NOT_CAPABLE(in_, out_, svc_)                                                    \
	{                                                                               \
		.in = in_, .out = out_, .verdict = XDP_PASS,                            \
		.cnt = { C(LB_NEW), C(FWD_NOT_CAPABLE) }, .svc = svc_, .acct = ACCT_NEW \
	}
#define FWD_AUTO .cfg = 0, .netns = fwd2_netns, .setup = fwd_auto_setup
#define FWD_CASE \
	.progs = DP_XDP, .cfg = SLUICE_CFG_FIB_FORWARD, .netns = fwd_netns, .setup = fwd_services

static const struct dp_case fwd_cases[] = {
	{
		.name = "fwd_v4_tcp_fib_redirect",
		.desc = "DNAT, reverse NAT and established packets are redirected: TTL-1, FIB MACs",
		FWD_CASE,
		.steps = {
			FWD_NEW(TCP4(CLIENT4, VIP4, 40000, 80, SYN, .seq = 1),
				TCP4(CLIENT4, BE4, 40000, 8080, SYN, .seq = 1, TO_BE), S_T4),
			FWD_REV(TCP4(BE4, CLIENT4, 8080, 40000, SYN | ACK, .seq = 9, .ack = 2,
				     .l2 = L2_BACKEND),
				TCP4(VIP4, CLIENT4, 80, 40000, SYN | ACK, .seq = 9, .ack = 2,
				     TO_CLIENT), S_T4),
			FWD_EST_CONFIRMS(TCP4(CLIENT4, VIP4, 40000, 80, ACK, .seq = 2, .ack = 10),
					 TCP4(CLIENT4, BE4, 40000, 8080, ACK, .seq = 2, .ack = 10,
					      TO_BE),
					 S_T4),
		},
	},
	{
		.name = "fwd_v4_udp_csum0_fib_redirect",
		.desc = "a checksum-0 UDP datagram is forwarded with checksum 0",
		FWD_CASE,
		.steps = {
			FWD_NEW(UDP4(CLIENT4, VIP4, 40001, 53, .data = "q", .csum0 = true),
				UDP4(CLIENT4, BE4, 40001, 5353, .data = "q", .csum0 = true, TO_BE),
				S_U4),
		},
	},
	{
		.name = "fwd_v6_tcp_fib_redirect",
		.desc = "IPv6 DNAT and reverse NAT are redirected with hop limit - 1",
		FWD_CASE,
		.steps = {
			FWD_NEW(TCP6(CLIENT6, VIP6, 40000, 80, SYN, .seq = 1),
				TCP6(CLIENT6, BE6, 40000, 8080, SYN, .seq = 1, TO_BE), S_T6),
			FWD_REV(TCP6(BE6, CLIENT6, 8080, 40000, SYN | ACK, .seq = 9, .ack = 2,
				     .l2 = L2_BACKEND),
				TCP6(VIP6, CLIENT6, 80, 40000, SYN | ACK, .seq = 9, .ack = 2,
				     TO_CLIENT), S_T6),
		},
	},
	{
		.name = "fwd_ttl_expiring_passes",
		.desc = "TTL / hop limit 1 after NAT goes to the kernel (which sends time exceeded)",
		FWD_CASE,
		.steps = {
			NEW_FLOW(TCP4(CLIENT4, VIP4, 40002, 80, SYN, .ttl = 1),
				 TCP4(CLIENT4, BE4, 40002, 8080, SYN, .ttl = 1), S_T4),
			NEW_FLOW(UDP6(CLIENT6, VIP6, 40002, 53, .ttl = 1),
				 UDP6(CLIENT6, BE6, 40002, 5353, .ttl = 1), S_U6),
		},
	},
	{
		.name = "fwd_no_neighbour_or_route_passes",
		.desc = "a backend without neighbour entry or without route: XDP_PASS, FIB_PASS",
		FWD_CASE,
		.steps = {
			/* services outside the world: no stats are checked for them */
			NEW_FLOW(TCP4(CLIENT4, VIP4_NONEIGH, 40003, 80, SYN),
				 TCP4(CLIENT4, BE4_NONEIGH, 40003, 8080, SYN), S_NONE),
			NEW_FLOW(TCP4(CLIENT4, VIP4_NOROUTE, 40003, 80, SYN),
				 TCP4(CLIENT4, BE4_NOROUTE, 40003, 8080, SYN), S_NONE),
		},
	},
	{
		.name = "fwd_auto_capable_redirects",
		.desc = "default mode: an egress in fwd_devs gets the frame redirected (XDP and tc)",
		FWD_AUTO,
		.steps = {
			FWD_NEW(TCP4(CLIENT4, VIP4, 40010, 80, SYN, .seq = 1),
				TCP4(CLIENT4, BE4, 40010, 8080, SYN, .seq = 1, TO_BE), S_T4),
			FWD_REV(TCP4(BE4, CLIENT4, 8080, 40010, SYN | ACK, .seq = 9, .ack = 2,
				     .l2 = L2_BACKEND),
				TCP4(VIP4, CLIENT4, 80, 40010, SYN | ACK, .seq = 9, .ack = 2,
				     TO_CLIENT), S_T4),
			FWD_NEW(TCP6(CLIENT6, VIP6, 40010, 80, SYN, .seq = 1),
				TCP6(CLIENT6, BE6, 40010, 8080, SYN, .seq = 1, TO_BE), S_T6),
		},
	},
	{
		.name = "fwd_auto_not_capable_passes",
		.desc = "default mode, XDP: per egress; one not in fwd_devs goes to the kernel",
		.progs = DP_XDP,
		FWD_AUTO,
		.steps = {
			NOT_CAPABLE(TCP4(CLIENT4, VIP4_SLOW, 40011, 80, SYN),
				    TCP4(CLIENT4, BE4_SLOW, 40011, 8080, SYN), S_NONE),
			/* the same load, the capable egress: still redirected */
			FWD_NEW(TCP4(CLIENT4, VIP4, 40011, 80, SYN, .seq = 1),
				TCP4(CLIENT4, BE4, 40011, 8080, SYN, .seq = 1, TO_BE), S_T4),
			NOT_CAPABLE(TCP4(CLIENT4, VIP4_SLOW, 40111, 80, SYN),
				    TCP4(CLIENT4, BE4_SLOW, 40111, 8080, SYN), S_NONE),
		},
	},
	{
		.name = "fwd_tc_any_egress_redirects",
		.desc = "tc: an egress not in fwd_devs is redirected too (an skb needs no XDP)",
		.progs = DP_TC,
		FWD_AUTO,
		.steps = {
			FWD_NEW(TCP4(CLIENT4, VIP4_SLOW, 40012, 80, SYN),
				TCP4(CLIENT4, BE4_SLOW, 40012, 8080, SYN, .smac = MAC_DEV_SLOW,
				     .dmac = MAC_NB_SLOW, .ttl = 56),
				S_NONE),
		},
	},
	{
		.name = "fwd_tc_no_neighbour_redirect_neigh",
		.desc = "tc: an unresolved neighbour goes out by bpf_redirect_neigh (MACs left to "
			"the kernel); no route and TTL 1 go to the kernel",
		.progs = DP_TC,
		FWD_AUTO,
		.steps = {
			FWD_NEW(TCP4(CLIENT4, VIP4_NONEIGH, 40013, 80, SYN),
				TCP4(CLIENT4, BE4_NONEIGH, 40013, 8080, SYN, .ttl = 56), S_NONE),
			NEW_FLOW(TCP4(CLIENT4, VIP4_NOROUTE, 40013, 80, SYN),
				 TCP4(CLIENT4, BE4_NOROUTE, 40013, 8080, SYN), S_NONE),
			NEW_FLOW(TCP4(CLIENT4, VIP4, 40013, 80, SYN, .ttl = 1),
				 TCP4(CLIENT4, BE4, 40013, 8080, SYN, .ttl = 1), S_T4),
		},
	},
	{
		.name = "fwd_off_passes",
		.desc = "SLUICE_CFG_FWD_OFF: even a capable egress is left to the kernel (XDP, tc)",
		.cfg = SLUICE_CFG_FWD_OFF,
		.netns = fwd2_netns,
		.setup = fwd_auto_setup,
		.steps = {
			NEW_FLOW(TCP4(CLIENT4, VIP4, 40014, 80, SYN),
				 TCP4(CLIENT4, BE4, 40014, 8080, SYN), S_T4),
			NEW_FLOW(TCP6(CLIENT6, VIP6, 40014, 80, SYN),
				 TCP6(CLIENT6, BE6, 40014, 8080, SYN), S_T6),
		},
	},
	{
		/* A redirected frame leaves its skb: the receiver verifies the
		 * checksum, so a partial one is completed in XDP (csum_xdp.h). */
		.name = "fwd_partial_csum_completed",
		.desc = "seeded TCP/UDP (TX offload) is redirected with the complete checksum",
		FWD_CASE,
		.steps = {
			{ .in = TCP4(CLIENT4, VIP4, 40004, 80, SYN, .seq = 1, .data = "syn data",
				     .seed = true),
			  .out = TCP4(CLIENT4, BE4, 40004, 8080, SYN, .seq = 1, .data = "syn data",
				      TO_BE),
			  .verdict = XDP_REDIRECT,
			  .cnt = { C(LB_NEW), C(FIB_REDIRECT), C(CSUM_PARTIAL) },
			  .svc = S_T4, .acct = ACCT_NEW },
			{ .in = UDP6(CLIENT6, VIP6, 40004, 53, .data = "odd", .seed = true),
			  .out = UDP6(CLIENT6, BE6, 40004, 5353, .data = "odd", TO_BE),
			  .verdict = XDP_REDIRECT,
			  .cnt = { C(LB_NEW), C(FIB_REDIRECT), C(CSUM_PARTIAL) },
			  .svc = S_U6, .acct = ACCT_NEW },
		},
	},
};

/*
 * IPv4 header checksum corners of the TTL decrement, which adds 0x0100 to
 * the checksum: an IP id where that carries out of the top byte, and one
 * where the result is 0. Expected frames are summed from scratch.
 */
static void ttl_pkt(struct pkt *p, const char *daddr, __u16 sport, __u16 dport, __u8 ttl, __u16 id,
		    const __u8 *smac, const __u8 *dmac)
{
	pkt__init(p);
	pkt__eth(p, smac, dmac, 0x0800);
	pkt__ipv4(p, CLIENT4, daddr, IPPROTO_TCP, .ttl = ttl, .id = id, .frag = PKT_IP_DF);
	pkt__tcp(p, sport, dport, 1, 0, PKT_TH_SYN, .window = 502);
	pkt__finish(p);
}

static int ttl_csum_child(struct dp *parent, void *arg)
{
	static struct pkt in, pre, exp, got;
	int found = 0, verdict;
	struct dp d;

	(void)arg;
	if (!fwd_netns(parent) || !dp__open_cfg(&d, DP_XDP, true, SLUICE_CFG_FIB_FORWARD))
		return 1;
	for (int want_zero = 0; want_zero < 2; want_zero++) {
		__u16 sport = (__u16)(41000 + want_zero);

		for (__u32 id = 0; id < 0x10000; id++) {
			__u16 c, f;

			ttl_pkt(&pre, BE4, sport, 8080, 57, (__u16)id, MAC_CLIENT, MAC_NODE);
			ttl_pkt(&exp, BE4, sport, 8080, 56, (__u16)id, MAC_DEV, MAC_NB_BE);
			c = pkt__get16(&pre, pre.l3_off + PKT_IP4_CSUM);
			f = pkt__get16(&exp, exp.l3_off + PKT_IP4_CSUM);
			if (want_zero ? f != 0 : c < 0xff00)
				continue;
			found++;
			dp__at("IP id %#06x: checksum %#06x before TTL-1, %#06x after", id, c, f);
			ttl_pkt(&in, VIP4, sport, 80, 57, (__u16)id, MAC_CLIENT, MAC_NODE);
			if (!dp__send(&d, &in, &got, &verdict))
				break;
			if (verdict != XDP_REDIRECT)
				dp__fail(&d, "verdict %s, expected XDP_REDIRECT",
					 dp__verdict_name(&d, verdict));
			dp__expect_bytes(&d, "output", &got, &exp);
			break;
		}
	}
	dp__at("%s", "");
	ASSERT_EQ(found, 2, "checksum corners found");
	dp__close(&d);
	return test__failed;
}

/* fwd_ttl_checksum_corners: TTL-1 checksum carry and zero stay exact */
static void fwd_ttl_checksum_corners(void)
{
	struct dp d = { .prog = DP_XDP, .tag = "xdp" };

	dp__in_child(&d, ttl_csum_child, NULL);
}

static const struct test fwd_tests[] = {
	TEST(fwd_ttl_checksum_corners),
};

const struct dp_suite dp_suite_fwd = {
	.name = "fwd",
	.cases = fwd_cases,
	.ncases = ARRAY_SIZE(fwd_cases),
	.tests = fwd_tests,
	.ntests = ARRAY_SIZE(fwd_tests),
};
