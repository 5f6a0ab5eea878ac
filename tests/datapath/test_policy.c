// SPDX-License-Identifier: MIT
/*
 * test_policy.c - access policy (#15): allowFrom / denyFrom per service
 * and the node-wide deny list, checked on new flows only. Prefix-length
 * edges (v4 /31 /32, v6 /127 /128, /0), deny beating allow (also an
 * allow nested in a deny), client port ranges, the refusal bytes (TCP
 * RST, ICMP / ICMPv6 unreachable) of a service that refuses, an
 * established flow that outlives a policy change, and the per-service
 * counters.
 */
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "dp.h"

#define SYN PKT_TH_SYN
#define ACK PKT_TH_ACK
#define RST PKT_TH_RST

/* clang-format off */
#define DENIES(in_, reason, svc_)                                              \
	{ .in = in_, .verdict = XDP_DROP, .drop = { D(reason) }, .svc = svc_,  \
	  .acct = ACCT_SEEN }
/* clang-format on */

#define MAX_RULES DP_POL_RULES

static bool parse_rules(struct dp *d, const char *const *text, struct sluice_policy_rule *r,
			__u32 *n)
{
	for (*n = 0; *n < MAX_RULES && text[*n]; (*n)++) {
		if (sluice_policy_rule__parse(&r[*n], text[*n]) != 0) {
			dp__fail(d, "rule %s: %s", text[*n], sluice__errmsg());
			return false;
		}
	}
	return true;
}

bool dp__with_policy(struct dp *d, const char *vip, __u16 port, __u8 proto, const char *be,
		     __u16 be_port, const struct dp_pol *p)
{
	struct sluice_backend_spec b = { .addr = dp__addr(be), .port = be_port, .weight = 1 };
	struct sluice_policy_rule allow[MAX_RULES], deny[MAX_RULES];
	struct sluice_service_spec spec = {
		.vip = dp__addr(vip),
		.port = port,
		.proto = proto,
		.nbackends = 1,
		.backends = &b,
		.allow = allow,
		.deny = deny,
		.policy_refuse = p->refuse,
	};
	int err;

	if (!parse_rules(d, p->allow, allow, &spec.nallow) ||
	    !parse_rules(d, p->deny, deny, &spec.ndeny))
		return false;
	err = sluice__service_set(d->s, &spec);
	if (err)
		dp__fail(d, "service_set with policy: %d (%s)", err, sluice__errmsg());
	return !err;
}

#define T4(p) dp__with_policy(d, VIP4, SVC_PORT_TCP, IPPROTO_TCP, BE4, BE_PORT_TCP, p)
#define U4(p) dp__with_policy(d, VIP4, SVC_PORT_UDP, IPPROTO_UDP, BE4, BE_PORT_UDP, p)
#define T6(p) dp__with_policy(d, VIP6, SVC_PORT_TCP, IPPROTO_TCP, BE6, BE_PORT_TCP, p)
#define U6(p) dp__with_policy(d, VIP6, SVC_PORT_UDP, IPPROTO_UDP, BE6, BE_PORT_UDP, p)

static bool s_allow_31(struct dp *d)
{
	static const struct dp_pol p = { .allow = { "10.0.0.0/31" } };

	return T4(&p);
}

static bool s_allow_32(struct dp *d)
{
	static const struct dp_pol p = { .allow = { "10.0.0.2/32" } };

	return T4(&p);
}

static bool s_deny_beats_allow(struct dp *d)
{
	static const struct dp_pol p = { .allow = { "10.0.0.0/8" }, .deny = { "10.0.0.2/32" } };

	return T4(&p);
}

static bool s_allow_inside_deny(struct dp *d)
{
	/* the nested allow is dead: deny wins wherever both match */
	static const struct dp_pol p = { .allow = { "10.0.0.1/32" }, .deny = { "10.0.0.0/24" } };

	return T4(&p);
}

static bool s_deny_all(struct dp *d)
{
	static const struct dp_pol p = { .deny = { "0.0.0.0/0" } };

	return T4(&p);
}

static bool s_ports(struct dp *d)
{
	static const struct dp_pol p = { .deny = { "10.0.0.0/24:40000-40009",
						   "10.0.0.2/32:50000" } };

	return T4(&p);
}

static bool s_v6(struct dp *d)
{
	static const struct dp_pol p = { .allow = { "fd00::/127", "fd00:0:0:1::/64" },
					 .deny = { "fd00:0:0:1::9/128" } };

	return T6(&p) && U6(&p);
}

static bool s_v6_deny_all(struct dp *d)
{
	static const struct dp_pol p = { .deny = { "::/0" } };

	return T6(&p);
}

static bool s_refuse(struct dp *d)
{
	static const struct dp_pol p = { .deny = { "10.0.0.1/32" }, .refuse = true };
	static const struct dp_pol p6 = { .deny = { "fd00::1/128" }, .refuse = true };

	return T4(&p) && U4(&p) && T6(&p6) && U6(&p6);
}

static bool s_node(struct dp *d)
{
	struct sluice_cidr c[2];
	int err;

	if (sluice_cidr__parse(&c[0], "10.0.0.2/32") || sluice_cidr__parse(&c[1], "fd00::2/128"))
		return false;
	err = sluice__policy_node_set(d->s, c, 2);
	if (err)
		dp__fail(d, "policy_node_set: %d (%s)", err, sluice__errmsg());
	return !err;
}

static bool s_node_and_allow(struct dp *d)
{
	static const struct dp_pol p = { .allow = { "10.0.0.0/24" } };

	return s_node(d) && T4(&p);
}

/* Where the node entry @cidr is: NODE_HASH policy_nhost only, NODE_TRIE
 * policy_node only, NODE_BOTH both (a shorter prefix with its copy). */
enum {
	NODE_HASH = 1,
	NODE_TRIE = 2,
	NODE_BOTH = 3
};

static bool node_entry_in(struct dp *d, const char *cidr, int want)
{
	static const char *const where[] = { "nowhere", "in policy_nhost only",
					     "in policy_node only", "in both" };
	struct sluice_policy_key k = {};
	struct sluice_policy_val v;
	struct sluice_cidr c;
	int h = sluice__map_fd(d->s, "policy_nhost"), t = sluice__map_fd(d->s, "policy_node");
	int got;

	if (sluice_cidr__parse(&c, cidr))
		return false;
	k.prefixlen = 32 + c.prefixlen;
	k.id = c.addr.family;
	memcpy(k.addr, c.addr.addr, sizeof(k.addr));
	got = (!bpf_map_lookup_elem(h, &k, &v) ? NODE_HASH : 0) |
	      (!bpf_map_lookup_elem(t, &k, &v) ? NODE_TRIE : 0);
	if (got == want)
		return true;
	dp__fail(d, "node entry %s is %s, want %s", cidr, where[got], where[want]);
	return false;
}

static bool node_set(struct dp *d, const char *const *text, int n)
{
	struct sluice_cidr c[8];
	int err;

	for (int i = 0; i < n; i++)
		if (sluice_cidr__parse(&c[i], text[i])) {
			dp__fail(d, "bad CIDR %s", text[i]);
			return false;
		}
	err = sluice__policy_node_set(d->s, c, (__u32)n);
	if (err)
		dp__fail(d, "policy_node_set: %d (%s)", err, sluice__errmsg());
	return !err;
}

/* Host entries in the hash, shorter prefixes in the trie with a copy in
 * the hash (one length per family), a service allow prefix containing
 * them. */
static bool s_node_split(struct dp *d)
{
	static const char *const text[] = { "10.0.0.2/32", "10.200.0.0/16", "fd00::2/128",
					    "fd00:200::/32" };
	static const struct dp_pol p = { .allow = { "10.0.0.0/8" } };

	return node_set(d, text, 4) && node_entry_in(d, text[0], NODE_HASH) &&
	       node_entry_in(d, text[1], NODE_BOTH) && node_entry_in(d, text[2], NODE_HASH) &&
	       node_entry_in(d, text[3], NODE_BOTH) && T4(&p);
}

/* policy_nlens as the datapath reads it: family @f's lengths in the hash,
 * or 0 (the trie). */
static bool nlens_is(struct dp *d, int f, __u32 lens)
{
	struct sluice_policy_nlens nl;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(sluice__map_fd(d->s, "policy_nlens"), &zero, &nl)) {
		dp__fail(d, "policy_nlens: %s", strerror(errno));
		return false;
	}
	if (nl.lens[f] == lens)
		return true;
	dp__fail(d, "policy_nlens[%d]: lens %#x, want %#x", f, nl.lens[f], lens);
	return false;
}

#define LENS4(a, b, c, e) ((a + 1) | (b + 1) << 8 | (c + 1) << 16 | (__u32)(e + 1) << 24)

/* IPv4 node prefixes of 4 lengths (31, 24, 16, 15; the /31 holds
 * CLIENT4B, the /16 OTHER4): all copied into the hash; IPv6 two lengths. */
static const char *const node4_text[] = { "10.0.0.2/31",   "192.0.2.0/24", "10.200.0.0/16",
					  "198.18.0.0/15", "fd00::2/127",  "fd00:200::/32",
					  "203.0.113.0/25" };

static bool s_node_lens4(struct dp *d)
{
	if (!node_set(d, node4_text, 6) || !nlens_is(d, 0, LENS4(31, 24, 16, 15)) ||
	    !nlens_is(d, 1, (127 + 1) | (32 + 1) << 8))
		return false;
	for (int i = 0; i < 6; i++)
		if (!node_entry_in(d, node4_text[i], NODE_BOTH))
			return false;
	return true;
}

/* A fifth IPv4 length (/25): IPv4 goes back to the trie alone, its copies
 * leave the hash; IPv6 keeps its. */
static bool s_node_lens5(struct dp *d)
{
	if (!s_node_lens4(d) || !node_set(d, node4_text, 7) || !nlens_is(d, 0, 0) ||
	    !nlens_is(d, 1, (127 + 1) | (32 + 1) << 8))
		return false;
	for (int i = 0; i < 7; i++)
		if (!node_entry_in(d, node4_text[i], i == 4 || i == 5 ? NODE_BOTH : NODE_TRIE))
			return false;
	return true;
}

/* Write @cidr's node entry into @map alone, or delete it from there. */
static bool node_poke(struct dp *d, const char *map, const char *cidr, bool add)
{
	const struct sluice_policy_val deny = { .verdict = SLUICE_POL_DENY };
	struct sluice_policy_key k = {};
	struct sluice_cidr c;
	int fd = sluice__map_fd(d->s, map);

	if (sluice_cidr__parse(&c, cidr))
		return false;
	k.prefixlen = 32 + c.prefixlen;
	k.id = c.addr.family;
	memcpy(k.addr, c.addr.addr, sizeof(k.addr));
	if (!(add ? bpf_map_update_elem(fd, &k, &deny, BPF_ANY) : bpf_map_delete_elem(fd, &k)))
		return true;
	dp__fail(d, "%s %s %s: %s", add ? "add to" : "delete from", map, cidr, strerror(errno));
	return false;
}

/* Which map decides: with 4 lengths the hash (the /31 and fd00::2/127
 * taken out of the trie still deny); with 5 the trie (the /31 taken out
 * of the trie and planted in the hash alone lets CLIENT4B in). */
static bool s_node_hash_decides(struct dp *d)
{
	return s_node_lens4(d) && node_poke(d, "policy_node", "10.0.0.2/31", false) &&
	       node_poke(d, "policy_node", "fd00::2/127", false);
}

static bool s_node_trie_decides(struct dp *d)
{
	return s_node_lens5(d) && node_poke(d, "policy_node", "10.0.0.2/31", false) &&
	       node_poke(d, "policy_nhost", "10.0.0.2/31", true);
}

/* The refusals: from the VIP to the client. */
#define RSTV4(sp, s, a)                                                              \
	TCP4(VIP4, CLIENT4, 80, sp, RST | ACK, .seq = s, .ack = a, .l2 = L2_REFUSAL, \
	     .refusal = true)
#define RSTV6(sp, s, a)                                                              \
	TCP6(VIP6, CLIENT6, 80, sp, RST | ACK, .seq = s, .ack = a, .l2 = L2_REFUSAL, \
	     .refusal = true)
#define UDP4_DENIED UDP4(CLIENT4, VIP4, 40020, 53, .data = "let me in")
#define UDP6_DENIED UDP6(CLIENT6, VIP6, 40020, 53, .data = "let me in, v6")

static void icmp4_unreach(struct pkt *p)
{
	struct pkt orig;

	dp__build(&orig, UDP4_DENIED);
	pkt__eth(p, MAC_NODE, MAC_CLIENT, 0x0800);
	pkt__ipv4(p, VIP4, CLIENT4, IPPROTO_ICMP, .ttl = 64, .id = 0, .frag = 0);
	pkt__icmp4(p, 3, 3, 0);
	pkt__payload(p, orig.buf + orig.l3_off, 28);
}

static void icmp6_unreach(struct pkt *p)
{
	struct pkt orig;

	dp__build(&orig, UDP6_DENIED);
	pkt__eth(p, MAC_NODE, MAC_CLIENT, 0x86dd);
	pkt__ipv6(p, VIP6, CLIENT6, IPPROTO_ICMPV6, .hop_limit = 64);
	pkt__icmp6(p, 1, 4, 0);
	pkt__payload(p, orig.buf + orig.l3_off, 48);
}

#define T4_NEW(c, sp) \
	NEW_FLOW(TCP4(c, VIP4, sp, 80, SYN, .seq = 1), TCP4(c, BE4, sp, 8080, SYN, .seq = 1), S_T4)
#define T6_NEW(c, sp) \
	NEW_FLOW(TCP6(c, VIP6, sp, 80, SYN, .seq = 1), TCP6(c, BE6, sp, 8080, SYN, .seq = 1), S_T6)
#define T4_SYN(c, sp) TCP4(c, VIP4, sp, 80, SYN, .seq = 1)
#define T6_SYN(c, sp) TCP6(c, VIP6, sp, 80, SYN, .seq = 1)

static const struct dp_case policy_cases[] = {
	{
		.name = "policy_v4_allow_slash31",
		.desc = "allowFrom 10.0.0.0/31: .1 in; .2 (just outside) and others not_allowed, ACKs too",
		.setup = s_allow_31,
		.steps = {
			T4_NEW(CLIENT4, 40000),
			DENIES(T4_SYN(CLIENT4B, 40000), POLICY_NOT_ALLOWED, S_T4),
			DENIES(TCP4(CLIENT4B, VIP4, 40001, 80, ACK, .seq = 5, .ack = 9),
			       POLICY_NOT_ALLOWED, S_T4),
			DENIES(T4_SYN(OTHER4, 40000), POLICY_NOT_ALLOWED, S_T4),
			/* another service of the VIP has no policy */
			NEW_FLOW(UDP4(CLIENT4B, VIP4, 40002, 53, .data = "q"),
				 UDP4(CLIENT4B, BE4, 40002, 5353, .data = "q"), S_U4),
		},
	},
	{
		.name = "policy_v4_allow_slash32",
		.desc = "allowFrom 10.0.0.2/32: .2 in, .1 (one bit off) not_allowed",
		.setup = s_allow_32,
		.steps = {
			DENIES(T4_SYN(CLIENT4, 40003), POLICY_NOT_ALLOWED, S_T4),
			T4_NEW(CLIENT4B, 40003),
		},
	},
	{
		.name = "policy_v4_deny_beats_allow",
		.desc = "allow 10.0.0.0/8, deny 10.0.0.2/32: .1 and 10.200.0.1 in, .2 denied",
		.setup = s_deny_beats_allow,
		.steps = {
			T4_NEW(CLIENT4, 40004),
			DENIES(T4_SYN(CLIENT4B, 40004), POLICY_DENY, S_T4),
			T4_NEW(OTHER4, 40004),
		},
	},
	{
		.name = "policy_v4_allow_nested_in_deny",
		.desc = "deny 10.0.0.0/24 holds allow 10.0.0.1/32: deny wins for .1; 10.200.0.1 not_allowed",
		.setup = s_allow_inside_deny,
		.steps = {
			DENIES(T4_SYN(CLIENT4, 40005), POLICY_DENY, S_T4),
			DENIES(T4_SYN(CLIENT4B, 40005), POLICY_DENY, S_T4),
			DENIES(T4_SYN(OTHER4, 40005), POLICY_NOT_ALLOWED, S_T4),
		},
	},
	{
		.name = "policy_v4_deny_slash0",
		.desc = "deny 0.0.0.0/0: every client denied",
		.setup = s_deny_all,
		.steps = {
			DENIES(T4_SYN(CLIENT4, 40006), POLICY_DENY, S_T4),
			DENIES(T4_SYN(OTHER4, 40006), POLICY_DENY, S_T4),
		},
	},
	{
		.name = "policy_v4_client_ports",
		.desc = "deny 10.0.0.0/24:40000-40009 and 10.0.0.2/32:50000: port edges decide",
		.setup = s_ports,
		.steps = {
			DENIES(T4_SYN(CLIENT4, 40000), POLICY_DENY, S_T4),
			DENIES(T4_SYN(CLIENT4, 40009), POLICY_DENY, S_T4),
			T4_NEW(CLIENT4, 40010),
			T4_NEW(CLIENT4, 39999),
			/* .2's own /32 entry still carries the /24's ports */
			DENIES(T4_SYN(CLIENT4B, 40009), POLICY_DENY, S_T4),
			DENIES(T4_SYN(CLIENT4B, 50000), POLICY_DENY, S_T4),
			T4_NEW(CLIENT4B, 50001),
		},
	},
	{
		.name = "policy_v6_edges",
		.desc = "allow fd00::/127 + fd00:0:0:1::/64, deny fd00:0:0:1::9/128 (tcp and udp)",
		.setup = s_v6,
		.steps = {
			T6_NEW(CLIENT6, 40007),
			DENIES(T6_SYN("fd00::2", 40007), POLICY_NOT_ALLOWED, S_T6),
			T6_NEW("fd00:0:0:1::8", 40007),
			DENIES(T6_SYN("fd00:0:0:1::9", 40007), POLICY_DENY, S_T6),
			DENIES(T6_SYN("fd00:0:0:2::", 40007), POLICY_NOT_ALLOWED, S_T6),
			DENIES(UDP6("fd00::2", VIP6, 40007, 53, .data = "q"), POLICY_NOT_ALLOWED,
			       S_U6),
			NEW_FLOW(UDP6(CLIENT6, VIP6, 40007, 53, .data = "q"),
				 UDP6(CLIENT6, BE6, 40007, 5353, .data = "q"), S_U6),
		},
	},
	{
		.name = "policy_v6_deny_slash0",
		.desc = "deny ::/0: every IPv6 client denied",
		.setup = s_v6_deny_all,
		.steps = {
			DENIES(T6_SYN(CLIENT6, 40008), POLICY_DENY, S_T6),
			DENIES(T6_SYN(OTHER6, 40008), POLICY_DENY, S_T6),
		},
	},
	{
		.name = "policy_refuse_bytes",
		.desc = "refusing service: RST (SYN, ACK), ICMP 3/3 and ICMPv6 1/4 from the VIP; others in",
		.setup = s_refuse,
		.steps = {
			REFUSES(T4_SYN(CLIENT4, 40010), RSTV4(40010, 0, 2), S_T4),
			REFUSES(TCP4(CLIENT4, VIP4, 40011, 80, ACK, .seq = 5, .ack = 9),
				TCP4(VIP4, CLIENT4, 80, 40011, RST, .seq = 9, .l2 = L2_REFUSAL,
				     .refusal = true),
				S_T4),
			REFUSES(UDP4_DENIED, CUSTOM(icmp4_unreach), S_U4),
			REFUSES(T6_SYN(CLIENT6, 40010), RSTV6(40010, 0, 2), S_T6),
			REFUSES(UDP6_DENIED, CUSTOM(icmp6_unreach), S_U6),
			T4_NEW(CLIENT4B, 40010),
		},
	},
	{
		.name = "policy_node_deny",
		.desc = "node-wide deny 10.0.0.2/32 + fd00::2/128 hits a service without a policy",
		.setup = s_node,
		.steps = {
			DENIES(T4_SYN(CLIENT4B, 40012), POLICY_NODE_DENY, S_T4),
			DENIES(UDP4(CLIENT4B, VIP4, 40012, 53, .data = "q"), POLICY_NODE_DENY,
			       S_U4),
			T4_NEW(CLIENT4, 40012),
			DENIES(T6_SYN(CLIENT6B, 40012), POLICY_NODE_DENY, S_T6),
			T6_NEW(CLIENT6, 40012),
		},
	},
	{
		.name = "policy_node_deny_beats_allow",
		.desc = "node deny 10.0.0.2/32 wins over the service's allow 10.0.0.0/24",
		.setup = s_node_and_allow,
		.steps = {
			DENIES(T4_SYN(CLIENT4B, 40013), POLICY_NODE_DENY, S_T4),
			T4_NEW(CLIENT4, 40013),
			DENIES(T4_SYN(OTHER4, 40013), POLICY_NOT_ALLOWED, S_T4),
		},
	},
	{
		.name = "policy_node_host_hash",
		.desc = "node /32 and /128 in the hash, /16 and /32 (v6) in the trie and copied to "
			"the hash: both deny, also inside the service's allow 10.0.0.0/8; others in",
		.setup = s_node_split,
		.steps = {
			DENIES(T4_SYN(CLIENT4B, 40014), POLICY_NODE_DENY, S_T4),
			DENIES(T4_SYN(OTHER4, 40014), POLICY_NODE_DENY, S_T4),
			T4_NEW(CLIENT4, 40014),
			DENIES(T6_SYN(CLIENT6B, 40014), POLICY_NODE_DENY, S_T6),
			DENIES(T6_SYN(OTHER6, 40014), POLICY_NODE_DENY, S_T6),
			T6_NEW(CLIENT6, 40014),
		},
	},
	{
		.name = "policy_node_lens4_hash",
		.desc = "node prefixes of 4 IPv4 lengths (/31 /24 /16 /15) and 2 IPv6: copied to the "
			"hash, lengths in policy_nlens; the /31 and /16 deny, CLIENT4 in",
		.setup = s_node_lens4,
		.steps = {
			DENIES(T4_SYN(CLIENT4B, 40015), POLICY_NODE_DENY, S_T4),
			DENIES(T4_SYN(OTHER4, 40015), POLICY_NODE_DENY, S_T4),
			T4_NEW(CLIENT4, 40015),
			DENIES(T6_SYN(CLIENT6B, 40015), POLICY_NODE_DENY, S_T6),
			DENIES(T6_SYN(OTHER6, 40015), POLICY_NODE_DENY, S_T6),
			T6_NEW(CLIENT6, 40015),
		},
	},
	{
		.name = "policy_node_lens5_trie",
		.desc = "a fifth IPv4 length: IPv4 back to the trie (copies gone), same verdicts",
		.setup = s_node_lens5,
		.steps = {
			DENIES(T4_SYN(CLIENT4B, 40016), POLICY_NODE_DENY, S_T4),
			DENIES(T4_SYN(OTHER4, 40016), POLICY_NODE_DENY, S_T4),
			T4_NEW(CLIENT4, 40016),
			DENIES(T6_SYN(CLIENT6B, 40016), POLICY_NODE_DENY, S_T6),
			T6_NEW(CLIENT6, 40016),
		},
	},
	{
		.name = "policy_node_hash_decides",
		.desc = "4 lengths: the /31 and fd00::2/127 deleted from the trie still deny (the hash "
			"copies decide)",
		.setup = s_node_hash_decides,
		.steps = {
			DENIES(T4_SYN(CLIENT4B, 40017), POLICY_NODE_DENY, S_T4),
			DENIES(T6_SYN(CLIENT6B, 40017), POLICY_NODE_DENY, S_T6),
			T4_NEW(CLIENT4, 40017),
		},
	},
	{
		.name = "policy_node_trie_decides",
		.desc = "5 lengths: the /31 moved from the trie to the hash alone no longer denies "
			"(the trie decides)",
		.setup = s_node_trie_decides,
		.steps = {
			T4_NEW(CLIENT4B, 40018),
			DENIES(T4_SYN(OTHER4, 40018), POLICY_NODE_DENY, S_T4),
			DENIES(T6_SYN(CLIENT6B, 40018), POLICY_NODE_DENY, S_T6),
		},
	},
};

static const struct dp_case open_case = {
	.steps = { T4_NEW(CLIENT4, 40100) },
};

static const struct dp_case denied_est_case = {
	.steps = {
		EST_FLOW(TCP4(CLIENT4, VIP4, 40100, 80, ACK, .seq = 2, .ack = 2),
			 TCP4(CLIENT4, BE4, 40100, 8080, ACK, .seq = 2, .ack = 2), S_T4),
		DENIES(T4_SYN(CLIENT4, 40101), POLICY_DENY, S_T4),
		EST_FLOW(TCP4(CLIENT4, VIP4, 40100, 80, ACK, .seq = 3, .ack = 2),
			 TCP4(CLIENT4, BE4, 40100, 8080, ACK, .seq = 3, .ack = 2), S_T4),
	},
};

static const struct dp_case reopened_case = {
	.steps = { T4_NEW(CLIENT4, 40102) },
};

/* A policy that denies a client leaves its established flow alone (no
 * lookup on a conntrack hit); removing the policy lets it in again and
 * leaves nothing of the service in the trie. */
static void established_kept(struct dp *d)
{
	static const struct dp_pol deny = { .deny = { "10.0.0.1/32" } };
	static const struct dp_pol none = { 0 };
	struct sluice_policy_key next;
	int fd = sluice__map_fd(d->s, "policy");

	if (!dp__run_steps(d, &open_case))
		return;
	if (!T4(&deny) || !dp__run_steps(d, &denied_est_case))
		return;
	if (!T4(&none) || !dp__run_steps(d, &reopened_case))
		return;
	if (bpf_map_get_next_key(fd, NULL, &next) != -ENOENT)
		dp__fail(d, "policy trie not empty after the policy was removed");
}

static void test_policy_established_kept(void)
{
	dp__each_prog(0, established_kept);
}

static const struct dp_case counted_case = {
	.steps = {
		DENIES(T4_SYN(CLIENT4B, 40200), POLICY_DENY, S_T4),
		DENIES(T4_SYN(CLIENT4B, 40201), POLICY_DENY, S_T4),
		DENIES(T4_SYN(OTHER4, 40200), POLICY_NOT_ALLOWED, S_T4),
		DENIES(T4_SYN("10.0.0.3", 40200), POLICY_NODE_DENY, S_T4),
		T4_NEW(CLIENT4, 40200),
	},
};

/* policy_stats counts per service and reason; never per client. */
static void counters(struct dp *d)
{
	static const struct dp_pol p = { .allow = { "10.0.0.0/24" }, .deny = { "10.0.0.2/32" } };
	struct sluice_policy_stats st;
	struct sluice_cidr c;
	struct sluice_svc_key key = {};
	struct sluice_svc svc;

	if (sluice_cidr__parse(&c, "10.0.0.3/32") || sluice__policy_node_set(d->s, &c, 1) ||
	    !T4(&p) || !dp__run_steps(d, &counted_case))
		return;
	key.addr[0] = dp__addr(VIP4).addr[0];
	key.port = htons(SVC_PORT_TCP);
	key.proto = IPPROTO_TCP;
	key.family = SLUICE_AF_INET;
	if (bpf_map_lookup_elem(sluice__map_fd(d->s, "services"), &key, &svc)) {
		dp__fail(d, "service lookup");
		return;
	}
	if (sluice__policy_stats(d->s, svc.svc_id, &st)) {
		dp__fail(d, "policy_stats: %s", sluice__errmsg());
		return;
	}
	if (st.denied[SLUICE_POLICY_R_DENY_LIST] != 2 ||
	    st.denied[SLUICE_POLICY_R_NOT_ALLOWED] != 1 ||
	    st.denied[SLUICE_POLICY_R_NODE_DENY] != 1)
		dp__fail(d,
			 "policy_stats deny_list %llu not_allowed %llu node_deny %llu, want 2 1 1",
			 (unsigned long long)st.denied[0], (unsigned long long)st.denied[1],
			 (unsigned long long)st.denied[2]);
}

static void test_policy_counters(void)
{
	dp__each_prog(0, counters);
}

static const struct test policy_tests[] = {
	TEST(test_policy_established_kept),
	TEST(test_policy_counters),
};

const struct dp_suite dp_suite_policy = {
	.name = "policy",
	.cases = policy_cases,
	.ncases = ARRAY_SIZE(policy_cases),
	.tests = policy_tests,
	.ntests = ARRAY_SIZE(policy_tests),
};
