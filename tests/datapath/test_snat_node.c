// SPDX-License-Identifier: MIT
/*
 * test_snat_node.c - source NAT to the node's address (SLUICE_SVC_F_SNAT
 * with SLUICE_SVC_F_SNAT_NODE: load-balancer and external IPs of
 * externalTrafficPolicy Cluster), XDP and tc. A new flow leaves as
 * NODE:port -> backend (exact bytes, checksums built independently by
 * pkt.c), the snat_fwd/snat_rev entries hold the node address, the
 * backend's answer to NODE:port comes back as VIP:80 -> client, a RST
 * deletes both entries. With no node address of the family set, the flow
 * keeps the client's address and is counted snat_no_address; a service
 * with SLUICE_SVC_F_SNAT alone (a NodePort) still SNATs to its VIP while
 * a node address is set.
 */
#include <arpa/inet.h>
#include <string.h>

#include <bpf/bpf.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK
#define RST PKT_TH_RST

#define CNT(...) ((const __u64[SLUICE_CNT__MAX]){ __VA_ARGS__ })

static const __u64 no_drops[SLUICE_DROP__MAX];

#define NODE4 "192.0.2.7"
#define NODE6 "2001:db8:7::7"

static bool set_node(struct dp *d, const char *addr)
{
	struct sluice_addr a = dp__addr(addr);

	if (sluice__snat_addr_set(d->s, a.family, &a)) {
		dp__fail(d, "snat_addr: %s", sluice__errmsg());
		return false;
	}
	return true;
}

/* The flow's SNAT entry: snat_fwd's address must be @naddr, its port in
 * range, and snat_rev (backend, naddr:port) must lead back to the client.
 * Return: the port (host order), 0 on failure. */
static __u16 node_port(struct dp *d, const char *client, __u16 cport, const char *naddr,
		       const char *be, __u16 bport)
{
	struct sluice_addr c = dp__addr(client), b = dp__addr(be), n = dp__addr(naddr);
	struct sluice_snat_fwd_key fk = { .cport = htons(cport),
					  .bport = htons(bport),
					  .proto = IPPROTO_TCP,
					  .family = c.family };
	struct sluice_snat_rev_key rk = { .bport = htons(bport),
					  .proto = IPPROTO_TCP,
					  .family = c.family };
	struct sluice_snat_entry e, back;

	memcpy(fk.caddr, c.addr, sizeof(fk.caddr));
	memcpy(fk.baddr, b.addr, sizeof(fk.baddr));
	if (bpf_map_lookup_elem(sluice__map_fd(d->s, "snat_fwd"), &fk, &e)) {
		dp__fail(d, "no snat_fwd entry for %s:%u -> %s:%u", client, cport, be, bport);
		return 0;
	}
	if (ntohs(e.port) < SLUICE_SNAT_PORT_MIN || memcmp(e.addr, n.addr, sizeof(e.addr))) {
		dp__fail(d, "snat_fwd entry: port %u out of range or address not %s", ntohs(e.port),
			 naddr);
		return 0;
	}
	memcpy(rk.baddr, b.addr, sizeof(rk.baddr));
	memcpy(rk.naddr, n.addr, sizeof(rk.naddr));
	rk.nport = e.port;
	if (bpf_map_lookup_elem(sluice__map_fd(d->s, "snat_rev"), &rk, &back) ||
	    back.port != htons(cport) || memcmp(back.addr, c.addr, sizeof(back.addr))) {
		dp__fail(d, "snat_rev entry of %s:%u missing or not the client's", naddr,
			 ntohs(e.port));
		return 0;
	}
	return ntohs(e.port);
}

static bool snat_empty(struct dp *d)
{
	struct sluice_snat_fwd_key k;

	if (!bpf_map_get_next_key(sluice__map_fd(d->s, "snat_fwd"), NULL, &k)) {
		dp__fail(d, "a snat_fwd entry is left");
		return false;
	}
	if (!bpf_map_get_next_key(sluice__map_fd(d->s, "snat_rev"), NULL, &k)) {
		dp__fail(d, "a snat_rev entry is left");
		return false;
	}
	return true;
}

/* SYN, SYN|ACK to NODE:port, ACK, client RST through an LB IP (the VIP)
 * that source-NATs to the node address of family @af. */
static void node_flow(struct dp *d, __u8 af)
{
	const char *cl = af == 4 ? CLIENT4 : CLIENT6, *vip = af == 4 ? VIP4 : VIP6;
	const char *be = af == 4 ? BE4 : BE6, *node = af == 4 ? NODE4 : NODE6;
	struct dp_pkt in = { .af = af,
			     .proto = IPPROTO_TCP,
			     .saddr = cl,
			     .daddr = vip,
			     .sport = 40101,
			     .dport = SVC_PORT_TCP,
			     .flags = SYN,
			     .seq = 1 };
	struct dp_pkt out = in, ans, rev;
	__u16 port;

	if (!set_node(d, node) || !dp__svc_flags(d, vip, SVC_PORT_TCP, IPPROTO_TCP,
						 SLUICE_SVC_F_SNAT | SLUICE_SVC_F_SNAT_NODE))
		return;
	dp__at("SYN");
	if (!dp__step(d, &in, NULL, XDP_PASS, CNT(C(LB_NEW), C(FIB_PASS)), no_drops))
		return;
	port = node_port(d, cl, 40101, node, be, BE_PORT_TCP);
	if (!port)
		return;
	out.saddr = node;
	out.sport = port;
	out.daddr = be;
	out.dport = BE_PORT_TCP;
	dp__at("SYN again: from %s:%u", node, port);
	if (!dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_EST), C(FIB_PASS)), no_drops))
		return;
	ans = (struct dp_pkt){ .af = af,
			       .proto = IPPROTO_TCP,
			       .l2 = L2_BACKEND,
			       .saddr = be,
			       .daddr = node,
			       .sport = BE_PORT_TCP,
			       .dport = port,
			       .flags = SYN | ACK,
			       .seq = 100,
			       .ack = 2 };
	rev = ans;
	rev.saddr = vip;
	rev.sport = SVC_PORT_TCP;
	rev.daddr = cl;
	rev.dport = 40101;
	dp__at("SYN|ACK to the node's SNAT port, back as the VIP");
	if (!dp__step(d, &ans, &rev, XDP_PASS, CNT(C(REVNAT), C(FIB_PASS)), no_drops))
		return;
	in.flags = out.flags = ACK;
	in.seq = out.seq = 2;
	in.ack = out.ack = 101;
	dp__at("ACK");
	if (!dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_EST), C(FIB_PASS), C(CT_CONFIRMED)),
		      no_drops))
		return;
	in.flags = out.flags = RST;
	in.ack = out.ack = 0;
	dp__at("client RST");
	if (!dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_EST), C(FIB_PASS)), no_drops))
		return;
	snat_empty(d);
}

static void test_snat_node_v4(struct dp *d)
{
	node_flow(d, 4);
}

static void test_snat_node_v6(struct dp *d)
{
	node_flow(d, 6);
}

/* No node address of the family (an IPv6 one only): the client's
 * address stays, no SNAT state, counted snat_no_address. */
static void test_snat_node_unset(struct dp *d)
{
	struct dp_pkt in = { .af = 4,
			     .proto = IPPROTO_TCP,
			     .saddr = CLIENT4,
			     .daddr = VIP4,
			     .sport = 40102,
			     .dport = SVC_PORT_TCP,
			     .flags = SYN,
			     .seq = 1 };
	struct dp_pkt out = in;

	if (!set_node(d, NODE6) || !dp__svc_flags(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP,
						  SLUICE_SVC_F_SNAT | SLUICE_SVC_F_SNAT_NODE))
		return;
	out.daddr = BE4;
	out.dport = BE_PORT_TCP;
	dp__at("SYN, no IPv4 node address");
	if (!dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_NEW), C(FIB_PASS), C(SNAT_NO_ADDR)),
		      no_drops))
		return;
	snat_empty(d);
}

/* SLUICE_SVC_F_SNAT alone (a NodePort): the VIP stays the SNAT address
 * while a node address is set. */
static void test_snat_node_vip_kept(struct dp *d)
{
	struct dp_pkt in = { .af = 4,
			     .proto = IPPROTO_TCP,
			     .saddr = CLIENT4,
			     .daddr = VIP4,
			     .sport = 40103,
			     .dport = SVC_PORT_TCP,
			     .flags = SYN,
			     .seq = 1 };
	struct dp_pkt out = in;
	__u16 port;

	if (!set_node(d, NODE4) ||
	    !dp__svc_flags(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, SLUICE_SVC_F_SNAT))
		return;
	dp__at("SYN");
	if (!dp__step(d, &in, NULL, XDP_PASS, CNT(C(LB_NEW), C(FIB_PASS)), no_drops))
		return;
	port = node_port(d, CLIENT4, 40103, VIP4, BE4, BE_PORT_TCP);
	if (!port)
		return;
	out.saddr = VIP4;
	out.sport = port;
	out.daddr = BE4;
	out.dport = BE_PORT_TCP;
	dp__at("SYN again: from the VIP");
	dp__step(d, &in, &out, XDP_PASS, CNT(C(LB_EST), C(FIB_PASS)), no_drops);
}

#define EACH(name)                             \
	static void name(void)                 \
	{                                      \
		dp__each_prog(0, test_##name); \
	}
EACH(snat_node_v4)
EACH(snat_node_v6)
EACH(snat_node_unset)
EACH(snat_node_vip_kept)

static const struct test snat_node_tests[] = {
	TEST(snat_node_v4),
	TEST(snat_node_v6),
	TEST(snat_node_unset),
	TEST(snat_node_vip_kept),
};

const struct dp_suite dp_suite_snat_node = {
	.name = "snat_node",
	.tests = snat_node_tests,
	.ntests = ARRAY_SIZE(snat_node_tests),
};
