// SPDX-License-Identifier: MIT
/*
 * test_snat.c - source NAT and drop-when-empty on the packet path (XDP
 * and tc). A new flow of a SNAT service leaves as VIP:port -> backend with
 * a port from SLUICE_SNAT_PORT_MIN..MAX (read back from snat_fwd, then
 * checked byte for byte, checksums built independently by pkt.c), later
 * packets keep that port, the backend's answer to it is mapped back to
 * the client and reverse-NATed, a RST deletes both entries and so does
 * conntrack forgetting an ended flow that a new SYN reopens, a flow whose
 * candidate ports are all taken is dropped SNAT_PORTS_EXHAUSTED, a client
 * balanced to itself is SNATed without the flag (hairpin). Exact
 * counters. Drop-when-empty: test_drop_empty.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK
#define RST PKT_TH_RST
#define PSH PKT_TH_PSH
#define FIN PKT_TH_FIN

#define CNT(...) ((const __u64[SLUICE_CNT__MAX]){ __VA_ARGS__ })
#define DRP(...) ((const __u64[SLUICE_DROP__MAX]){ __VA_ARGS__ })

static const __u64 no_cnt[SLUICE_CNT__MAX];
static const __u64 no_drops[SLUICE_DROP__MAX];
#define NO_DROPS no_drops

static void fwd_key(struct sluice_snat_fwd_key *k, __u8 proto, const char *client, __u16 cport,
		    const char *be, __u16 bport)
{
	struct sluice_addr c = dp__addr(client), b = dp__addr(be);

	memset(k, 0, sizeof(*k));
	memcpy(k->caddr, c.addr, sizeof(k->caddr));
	memcpy(k->baddr, b.addr, sizeof(k->baddr));
	k->cport = htons(cport);
	k->bport = htons(bport);
	k->proto = proto;
	k->family = c.family;
}

static void rev_key(struct sluice_snat_rev_key *k, __u8 proto, const char *be, __u16 bport,
		    const char *vip, __u16 nport)
{
	struct sluice_addr b = dp__addr(be), n = dp__addr(vip);

	memset(k, 0, sizeof(*k));
	memcpy(k->baddr, b.addr, sizeof(k->baddr));
	memcpy(k->naddr, n.addr, sizeof(k->naddr));
	k->bport = htons(bport);
	k->nport = htons(nport);
	k->proto = proto;
	k->family = b.family;
}

/* The flow's SNAT port (host order) from snat_fwd, checked against the
 * range, the VIP and the snat_rev entry that must lead back; 0: failed. */
static __u16 snat_port(struct dp *d, __u8 proto, const char *client, __u16 cport, const char *vip,
		       const char *be, __u16 bport)
{
	int ffd = sluice__map_fd(d->s, "snat_fwd"), rfd = sluice__map_fd(d->s, "snat_rev");
	struct sluice_addr c = dp__addr(client), v = dp__addr(vip);
	struct sluice_snat_fwd_key fk;
	struct sluice_snat_rev_key rk;
	struct sluice_snat_entry n, back;
	__u16 port;

	fwd_key(&fk, proto, client, cport, be, bport);
	if (bpf_map_lookup_elem(ffd, &fk, &n)) {
		dp__fail(d, "no snat_fwd entry for %s:%u -> %s:%u", client, cport, be, bport);
		return 0;
	}
	port = ntohs(n.port);
	/* SLUICE_SNAT_PORT_MAX is 65535: only the lower bound can fail */
	if (port < SLUICE_SNAT_PORT_MIN || memcmp(n.addr, v.addr, sizeof(n.addr))) {
		dp__fail(d, "snat_fwd entry: port %u out of range or address not the VIP", port);
		return 0;
	}
	rev_key(&rk, proto, be, bport, vip, port);
	if (bpf_map_lookup_elem(rfd, &rk, &back) || back.port != htons(cport) ||
	    memcmp(back.addr, c.addr, sizeof(back.addr))) {
		dp__fail(d, "snat_rev entry of port %u missing or not the client's", port);
		return 0;
	}
	return port;
}

static bool snat_gone(struct dp *d, __u8 proto, const char *client, __u16 cport, const char *vip,
		      const char *be, __u16 bport, __u16 port)
{
	struct sluice_snat_fwd_key fk;
	struct sluice_snat_rev_key rk;
	struct sluice_snat_entry n;
	bool ok = true;

	fwd_key(&fk, proto, client, cport, be, bport);
	rev_key(&rk, proto, be, bport, vip, port);
	if (!bpf_map_lookup_elem(sluice__map_fd(d->s, "snat_fwd"), &fk, &n)) {
		dp__fail(d, "snat_fwd entry still there after RST");
		ok = false;
	}
	if (!bpf_map_lookup_elem(sluice__map_fd(d->s, "snat_rev"), &rk, &n)) {
		dp__fail(d, "snat_rev entry still there after RST");
		ok = false;
	}
	return ok;
}

/* A whole TCP flow through a SNAT service of family @af: SYN, SYN|ACK
 * answer to the SNAT port, confirming ACK, data, client RST. */
static void snat_tcp_flow(struct dp *d, __u8 af)
{
	const char *cl = af == 4 ? CLIENT4 : CLIENT6, *vip = af == 4 ? VIP4 : VIP6;
	const char *be = af == 4 ? BE4 : BE6;
	struct dp_pkt in = { .af = af,
			     .proto = IPPROTO_TCP,
			     .saddr = cl,
			     .daddr = vip,
			     .sport = 40001,
			     .dport = SVC_PORT_TCP,
			     .flags = SYN,
			     .seq = 1 };
	struct dp_pkt out = in, ans, rev;
	__u16 port;

	if (!dp__svc_flags(d, vip, SVC_PORT_TCP, IPPROTO_TCP, SLUICE_SVC_F_SNAT))
		return;
	dp__at("SYN");
	if (!dp__step(d, &in, NULL, XDP_PASS, CNT(C(LB_NEW), C(FIB_PASS)), NO_DROPS))
		return;
	port = snat_port(d, IPPROTO_TCP, cl, 40001, vip, be, BE_PORT_TCP);
	if (!port)
		return;
	/* check the SYN's bytes with the port now known: send it again (a
	 * retransmission of an unconfirmed flow keeps its port) */
	out.saddr = vip;
	out.sport = port;
	out.daddr = be;
	out.dport = BE_PORT_TCP;
	dp__at("SYN again, port %u", port);
	if (!dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_EST), C(FIB_PASS)), NO_DROPS))
		return;

	ans = (struct dp_pkt){ .af = af,
			       .proto = IPPROTO_TCP,
			       .l2 = L2_BACKEND,
			       .saddr = be,
			       .daddr = vip,
			       .sport = BE_PORT_TCP,
			       .dport = port,
			       .flags = SYN | ACK,
			       .seq = 100,
			       .ack = 2 };
	rev = ans;
	rev.saddr = vip;
	rev.sport = SVC_PORT_TCP;
	rev.daddr = cl;
	rev.dport = 40001;
	dp__at("SYN|ACK to the SNAT port");
	if (!dp__step(d, &ans, &rev, XDP_PASS, CNT(C(REVNAT), C(FIB_PASS)), NO_DROPS))
		return;

	in.flags = ACK;
	in.seq = 2;
	in.ack = 101;
	out.flags = ACK;
	out.seq = 2;
	out.ack = 101;
	dp__at("ACK");
	if (!dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_EST), C(FIB_PASS), C(CT_CONFIRMED)),
		      NO_DROPS))
		return;
	in.flags = out.flags = ACK | PSH;
	in.data = out.data = "GET / HTTP/1.0\r\n\r\n";
	dp__at("data");
	if (!dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_EST), C(FIB_PASS)), NO_DROPS))
		return;
	ans.flags = rev.flags = ACK | PSH;
	ans.seq = rev.seq = 101;
	ans.ack = rev.ack = 20;
	ans.data = rev.data = "HTTP/1.0 200 OK\r\n\r\n";
	dp__at("data answer");
	if (!dp__step(d, &ans, &rev, XDP_PASS, CNT(C(REVNAT), C(FIB_PASS)), NO_DROPS))
		return;
	in.flags = out.flags = RST;
	in.data = out.data = NULL;
	in.seq = out.seq = 20;
	in.ack = out.ack = 0;
	dp__at("client RST");
	if (!dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_EST), C(FIB_PASS)), NO_DROPS))
		return;
	snat_gone(d, IPPROTO_TCP, cl, 40001, vip, be, BE_PORT_TCP, port);
}

static void test_snat_tcp_v4(struct dp *d)
{
	snat_tcp_flow(d, 4);
}

static void test_snat_tcp_v6(struct dp *d)
{
	snat_tcp_flow(d, 6);
}

/* UDP: a datagram (with or without checksum), the answer, a second one. */
static void snat_udp_flow(struct dp *d, __u8 af, bool csum0)
{
	const char *cl = af == 4 ? CLIENT4 : CLIENT6, *vip = af == 4 ? VIP4 : VIP6;
	const char *be = af == 4 ? BE4 : BE6;
	struct dp_pkt in = { .af = af,
			     .proto = IPPROTO_UDP,
			     .saddr = cl,
			     .daddr = vip,
			     .sport = 40002,
			     .dport = SVC_PORT_UDP,
			     .data = "query",
			     .csum0 = csum0 };
	struct dp_pkt out = in, ans, rev;
	__u16 port;

	if (!dp__svc_flags(d, vip, SVC_PORT_UDP, IPPROTO_UDP, SLUICE_SVC_F_SNAT))
		return;
	dp__at("first datagram");
	if (!dp__step(d, &in, NULL, XDP_PASS, CNT(C(LB_NEW), C(FIB_PASS)), NO_DROPS))
		return;
	port = snat_port(d, IPPROTO_UDP, cl, 40002, vip, be, BE_PORT_UDP);
	if (!port)
		return;
	out.saddr = vip;
	out.sport = port;
	out.daddr = be;
	out.dport = BE_PORT_UDP;
	ans = (struct dp_pkt){ .af = af,
			       .proto = IPPROTO_UDP,
			       .l2 = L2_BACKEND,
			       .saddr = be,
			       .daddr = vip,
			       .sport = BE_PORT_UDP,
			       .dport = port,
			       .data = "answer",
			       .csum0 = csum0 };
	rev = ans;
	rev.saddr = vip;
	rev.sport = SVC_PORT_UDP;
	rev.daddr = cl;
	rev.dport = 40002;
	dp__at("answer, port %u", port);
	if (!dp__step(d, &ans, &rev, XDP_PASS, CNT(C(REVNAT), C(FIB_PASS), C(CT_CONFIRMED)),
		      NO_DROPS))
		return;
	dp__at("second datagram");
	dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_EST), C(FIB_PASS)), NO_DROPS);
}

static void test_snat_udp_v4(struct dp *d)
{
	snat_udp_flow(d, 4, false);
}

static void test_snat_udp_v4_csum0(struct dp *d)
{
	snat_udp_flow(d, 4, true);
}

static void test_snat_udp_v6(struct dp *d)
{
	snat_udp_flow(d, 6, false);
}

/* The backend's RST to the SNAT port ends the flow too. */
static void test_snat_backend_rst(struct dp *d)
{
	struct dp_pkt in = { .af = 4,
			     .proto = IPPROTO_TCP,
			     .saddr = CLIENT4,
			     .daddr = VIP4,
			     .sport = 40003,
			     .dport = SVC_PORT_TCP,
			     .flags = SYN,
			     .seq = 1 };
	struct dp_pkt ans, rev;
	__u16 port;

	if (!dp__svc_flags(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, SLUICE_SVC_F_SNAT) ||
	    !dp__step(d, &in, NULL, XDP_PASS, CNT(C(LB_NEW), C(FIB_PASS)), NO_DROPS))
		return;
	port = snat_port(d, IPPROTO_TCP, CLIENT4, 40003, VIP4, BE4, BE_PORT_TCP);
	if (!port)
		return;
	ans = (struct dp_pkt){ .af = 4,
			       .proto = IPPROTO_TCP,
			       .l2 = L2_BACKEND,
			       .saddr = BE4,
			       .daddr = VIP4,
			       .sport = BE_PORT_TCP,
			       .dport = port,
			       .flags = RST | ACK,
			       .ack = 2 };
	rev = ans;
	rev.saddr = VIP4;
	rev.sport = SVC_PORT_TCP;
	rev.daddr = CLIENT4;
	rev.dport = 40003;
	dp__at("backend RST, port %u", port);
	if (!dp__step(d, &ans, &rev, XDP_PASS, CNT(C(REVNAT), C(FIB_PASS)), NO_DROPS))
		return;
	if (!snat_gone(d, IPPROTO_TCP, CLIENT4, 40003, VIP4, BE4, BE_PORT_TCP, port))
		return;
	/* a late answer to the freed port is nobody's: passed unchanged */
	ans.flags = ACK;
	dp__at("answer to the freed port");
	dp__step(d, &ans, NULL, XDP_PASS, CNT(C(PASS)), NO_DROPS);
}

/* A confirmed flow that ended with FIN and is reopened by a new SYN on
 * the same tuple is forgotten by conntrack, and its SNAT entries with it.
 * To see that, the entries are moved to another port before the SYN:
 * kept, they would give the new flow that port; forgotten, the new flow
 * gets the port its hash picks, the first one's. */
static void test_snat_reopen(struct dp *d)
{
	struct dp_pkt in = { .af = 4,
			     .proto = IPPROTO_TCP,
			     .saddr = CLIENT4,
			     .daddr = VIP4,
			     .sport = 40009,
			     .dport = SVC_PORT_TCP,
			     .flags = SYN,
			     .seq = 1 };
	int ffd = sluice__map_fd(d->s, "snat_fwd"), rfd = sluice__map_fd(d->s, "snat_rev");
	struct sluice_snat_entry n = {}, c = {};
	struct sluice_snat_fwd_key fk;
	struct sluice_snat_rev_key rk;
	struct dp_pkt ans, out;
	__u16 port, moved;

	if (!dp__svc_flags(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, SLUICE_SVC_F_SNAT) ||
	    !dp__step(d, &in, NULL, XDP_PASS, CNT(C(LB_NEW), C(FIB_PASS)), NO_DROPS))
		return;
	port = snat_port(d, IPPROTO_TCP, CLIENT4, 40009, VIP4, BE4, BE_PORT_TCP);
	if (!port)
		return;
	ans = (struct dp_pkt){ .af = 4,
			       .proto = IPPROTO_TCP,
			       .l2 = L2_BACKEND,
			       .saddr = BE4,
			       .daddr = VIP4,
			       .sport = BE_PORT_TCP,
			       .dport = port,
			       .flags = SYN | ACK,
			       .seq = 100,
			       .ack = 2 };
	dp__at("SYN|ACK");
	if (!dp__step(d, &ans, NULL, XDP_PASS, CNT(C(REVNAT), C(FIB_PASS)), NO_DROPS))
		return;
	in.flags = ACK;
	in.seq = 2;
	in.ack = 101;
	dp__at("ACK");
	if (!dp__step(d, &in, NULL, XDP_PASS, CNT(C(LB_EST), C(FIB_PASS), C(CT_CONFIRMED)),
		      NO_DROPS))
		return;
	in.flags = FIN | ACK;
	dp__at("FIN");
	if (!dp__step(d, &in, NULL, XDP_PASS, CNT(C(LB_EST), C(FIB_PASS)), NO_DROPS))
		return;

	moved = port == SLUICE_SNAT_PORT_MIN ? port + 1 : port - 1;
	fwd_key(&fk, IPPROTO_TCP, CLIENT4, 40009, BE4, BE_PORT_TCP);
	n.addr[0] = dp__addr(VIP4).addr[0];
	n.port = htons(moved);
	c.addr[0] = dp__addr(CLIENT4).addr[0];
	c.port = htons(40009);
	rev_key(&rk, IPPROTO_TCP, BE4, BE_PORT_TCP, VIP4, port);
	if (bpf_map_delete_elem(rfd, &rk) || bpf_map_update_elem(ffd, &fk, &n, BPF_EXIST)) {
		dp__fail(d, "moving the SNAT entries: %s", strerror(errno));
		return;
	}
	rev_key(&rk, IPPROTO_TCP, BE4, BE_PORT_TCP, VIP4, moved);
	if (bpf_map_update_elem(rfd, &rk, &c, BPF_NOEXIST)) {
		dp__fail(d, "moving the SNAT entries: %s", strerror(errno));
		return;
	}
	in.flags = SYN;
	in.seq = 1000;
	in.ack = 0;
	out = in;
	out.saddr = VIP4;
	out.sport = port;
	out.daddr = BE4;
	out.dport = BE_PORT_TCP;
	dp__at("SYN reopening the tuple");
	if (!dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_NEW), C(FIB_PASS)), NO_DROPS))
		return;
	if (!bpf_map_lookup_elem(rfd, &rk, &c))
		dp__fail(d, "the old flow's snat_rev entry (port %u) survived the reopen", moved);
}

/* Every port of VIP4 towards BE4:8080 is taken: a new flow is dropped,
 * counted, and leaves no conntrack entry; another backend's ports are
 * free, and a flow without the flag needs none. */
static void test_snat_exhausted(struct dp *d)
{
	struct dp_pkt syn = { .af = 4,
			      .proto = IPPROTO_TCP,
			      .saddr = CLIENT4,
			      .daddr = VIP4,
			      .sport = 40004,
			      .dport = SVC_PORT_TCP,
			      .flags = SYN,
			      .seq = 1 };
	int rfd = sluice__map_fd(d->s, "snat_rev");
	struct sluice_snat_entry other = { .port = htons(1) };
	struct sluice_snat_rev_key rk;
	struct sluice_ct_key ck, next;

	other.addr[0] = htonl(0x0a0000fe); /* some other client */
	for (unsigned int p = SLUICE_SNAT_PORT_MIN; p <= (unsigned int)SLUICE_SNAT_PORT_MAX; p++) {
		rev_key(&rk, IPPROTO_TCP, BE4, BE_PORT_TCP, VIP4, (__u16)p);
		if (bpf_map_update_elem(rfd, &rk, &other, BPF_NOEXIST)) {
			dp__fail(d, "filling snat_rev port %u: %s", p, strerror(errno));
			return;
		}
	}
	if (!dp__svc_flags(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, SLUICE_SVC_F_SNAT))
		return;
	dp__at("SYN, all ports taken");
	if (!dp__step(d, &syn, NULL, XDP_DROP, no_cnt, DRP(D(SNAT_PORTS_EXHAUSTED))))
		return;
	if (!bpf_map_get_next_key(sluice__map_fd(d->s, "ct_new"), NULL, &ck) ||
	    !bpf_map_get_next_key(sluice__map_fd(d->s, "conntrack"), NULL, &next)) {
		dp__fail(d, "the dropped flow left conntrack entries");
		return;
	}
	dp__at("SYN to the UDP service (other ports)");
	syn.proto = IPPROTO_UDP;
	syn.dport = SVC_PORT_UDP;
	if (!dp__svc_flags(d, VIP4, SVC_PORT_UDP, IPPROTO_UDP, SLUICE_SVC_F_SNAT))
		return;
	dp__step(d, &syn, NULL, XDP_PASS, CNT(C(LB_NEW), C(FIB_PASS)), NO_DROPS);
}

/* Hairpin: the backend itself connects to the VIP (no SNAT flag) and is
 * balanced to itself: it must see VIP:port -> itself, and its answer to
 * that port must come back as VIP:80 -> its own client port. */
static void hairpin(struct dp *d, __u8 af)
{
	const char *vip = af == 4 ? VIP4 : VIP6, *be = af == 4 ? BE4 : BE6;
	struct dp_pkt in = { .af = af,
			     .proto = IPPROTO_TCP,
			     .saddr = be,
			     .daddr = vip,
			     .sport = 40005,
			     .dport = SVC_PORT_TCP,
			     .flags = SYN,
			     .seq = 1 };
	struct dp_pkt out = in, ans, rev;
	__u16 port;

	dp__at("hairpin SYN");
	if (!dp__step(d, &in, NULL, XDP_PASS, CNT(C(LB_NEW), C(FIB_PASS)), NO_DROPS))
		return;
	port = snat_port(d, IPPROTO_TCP, be, 40005, vip, be, BE_PORT_TCP);
	if (!port)
		return;
	out.saddr = vip;
	out.sport = port;
	out.daddr = be;
	out.dport = BE_PORT_TCP;
	dp__at("hairpin SYN again, port %u", port);
	if (!dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_EST), C(FIB_PASS)), NO_DROPS))
		return;
	ans = (struct dp_pkt){ .af = af,
			       .proto = IPPROTO_TCP,
			       .saddr = be,
			       .daddr = vip,
			       .sport = BE_PORT_TCP,
			       .dport = port,
			       .flags = SYN | ACK,
			       .seq = 100,
			       .ack = 2 };
	rev = ans;
	rev.saddr = vip;
	rev.sport = SVC_PORT_TCP;
	rev.daddr = be;
	rev.dport = 40005;
	dp__at("hairpin SYN|ACK");
	dp__step(d, &ans, &rev, XDP_PASS, CNT(C(REVNAT), C(FIB_PASS)), NO_DROPS);
}

static void test_snat_hairpin_v4(struct dp *d)
{
	hairpin(d, 4);
}

static void test_snat_hairpin_v6(struct dp *d)
{
	hairpin(d, 6);
}

/* A service without the flag keeps the client's address and no state. */
static void test_snat_off(struct dp *d)
{
	struct dp_pkt in = { .af = 4,
			     .proto = IPPROTO_TCP,
			     .saddr = CLIENT4,
			     .daddr = VIP4,
			     .sport = 40006,
			     .dport = SVC_PORT_TCP,
			     .flags = SYN,
			     .seq = 1 };
	struct dp_pkt out = in;
	struct sluice_snat_fwd_key k;

	out.daddr = BE4;
	out.dport = BE_PORT_TCP;
	if (!dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_NEW), C(FIB_PASS)), NO_DROPS))
		return;
	if (!bpf_map_get_next_key(sluice__map_fd(d->s, "snat_fwd"), NULL, &k))
		dp__fail(d, "a flow without SNAT created a snat_fwd entry");
}

#define EACH(name)                             \
	static void name(void)                 \
	{                                      \
		dp__each_prog(0, test_##name); \
	}
EACH(snat_tcp_v4)
EACH(snat_tcp_v6)
EACH(snat_udp_v4)
EACH(snat_udp_v4_csum0)
EACH(snat_udp_v6)
EACH(snat_backend_rst)
EACH(snat_exhausted)
EACH(snat_reopen)
EACH(snat_hairpin_v4)
EACH(snat_hairpin_v6)
EACH(snat_off)

static const struct test snat_tests[] = {
	TEST(snat_tcp_v4),       TEST(snat_tcp_v6), TEST(snat_udp_v4),
	TEST(snat_udp_v4_csum0), TEST(snat_udp_v6), TEST(snat_backend_rst),
	TEST(snat_exhausted),    TEST(snat_reopen), TEST(snat_hairpin_v4),
	TEST(snat_hairpin_v6),   TEST(snat_off),
};

const struct dp_suite dp_suite_snat = {
	.name = "snat",
	.tests = snat_tests,
	.ntests = ARRAY_SIZE(snat_tests),
};
