// SPDX-License-Identifier: MIT
/*
 * test_policy_hash.c - the access policy's exact-match path (#15): a
 * service whose rules use at most SLUICE_POLICY_LENS prefix lengths is
 * looked up in policy_hash, one lookup per length, longest first; one
 * with more is too when a bounded prefix expansion folds them into 4
 * (sluice_policy__expand()), else it falls back to the trie. Packet cases
 * at the prefix boundaries of every length (v4 /8 /16 /24 /31, v6 /32 /64
 * /125 /128), deny over allow at another length; the same rules plus a
 * fifth length, expanded, with the same verdicts and the expanded
 * prefix's edges; and plus a length no bounded expansion takes, on the
 * trie with the same verdicts. Each setup checks which path the service
 * is on. Then random flows (fixed seed, printed on failure) whose program
 * verdict must equal the compiled rules' verdict (sluice_policy__verdict())
 * and the live-map verdict explain and the policy cut use
 * (sluice__policy_verdict()), on all three paths; and an expanded entry
 * naming its rule's prefix.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "dp.h"

#define SYN PKT_TH_SYN

/* clang-format off */
#define DENIES(in_, reason, svc_)                                              \
	{ .in = in_, .verdict = XDP_DROP, .drop = { D(reason) }, .svc = svc_,  \
	  .acct = ACCT_SEEN }
/* clang-format on */

#define T4_NEW(c, sp) \
	NEW_FLOW(TCP4(c, VIP4, sp, 80, SYN, .seq = 1), TCP4(c, BE4, sp, 8080, SYN, .seq = 1), S_T4)
#define T6_NEW(c, sp) \
	NEW_FLOW(TCP6(c, VIP6, sp, 80, SYN, .seq = 1), TCP6(c, BE6, sp, 8080, SYN, .seq = 1), S_T6)
#define T4_SYN(c, sp) TCP4(c, VIP4, sp, 80, SYN, .seq = 1)
#define T6_SYN(c, sp) TCP6(c, VIP6, sp, 80, SYN, .seq = 1)

/* Lengths /31 /24 /16 /8: the hash. */
static const struct dp_pol pol4 = {
	.allow = { "10.0.0.0/8", "192.168.0.0/16" },
	.deny = { "10.0.0.2/31", "10.200.0.0/24" },
};
/* The same and a /14: five lengths, the /14 expanded into 4 /16s. */
static const struct dp_pol pol4_exp = {
	.allow = { "10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/14" },
	.deny = { "10.0.0.2/31", "10.200.0.0/24" },
};
/* The same and a /2 (no client below is in it): every expansion to 4
 * lengths takes 64 entries or more, beyond 8 x 5; the trie. */
static const struct dp_pol pol4_trie = {
	.allow = { "10.0.0.0/8", "192.168.0.0/16" },
	.deny = { "10.0.0.2/31", "10.200.0.0/24", "64.0.0.0/2" },
};
/* Lengths /128 /125 /64 /32: the hash. */
static const struct dp_pol pol6 = {
	.allow = { "fd00::/32", "2001:db8::1/128" },
	.deny = { "fd00:0:0:1::/64", "fd00::8/125" },
};
/* The same and a /48: five lengths, the /125 expanded into 8 /128s. */
static const struct dp_pol pol6_exp = {
	.allow = { "fd00::/32", "2001:db8::1/128", "2001:db9::/48" },
	.deny = { "fd00:0:0:1::/64", "fd00::8/125" },
};
/* The same and a /80: six lengths, two to fold, the cheaper /48 or /80
 * into the next one at 65536 entries: the trie. */
static const struct dp_pol pol6_trie = {
	.allow = { "fd00::/32", "2001:db8::1/128", "2001:db9::/48" },
	.deny = { "fd00:0:0:1::/64", "fd00::8/125", "2001:db8:0:0:1::/80" },
};

/* The service entry of vip:80/tcp. */
static bool svc_of(struct dp *d, const char *vip, struct sluice_svc *out)
{
	struct sluice_addr a = dp__addr(vip);
	struct sluice_svc_key k = { .port = htons(SVC_PORT_TCP),
				    .proto = IPPROTO_TCP,
				    .family = a.family };

	memcpy(k.addr, a.addr, sizeof(k.addr));
	if (!bpf_map_lookup_elem(sluice__map_fd(d->s, "services"), &k, out))
		return true;
	dp__fail(d, "no service %s:80/tcp", vip);
	return false;
}

/* Sets the policy on vip:80/tcp and checks the path the service is on:
 * @lens its policy_lens (0: the trie, no flag, no entry in the hash). */
static bool set_on(struct dp *d, bool v6, const struct dp_pol *p, __u32 lens)
{
	struct sluice_policy_key k, next;
	bool hashed = false, want = lens != 0;
	struct sluice_svc svc;
	int fd = sluice__map_fd(d->s, "policy_hash");
	int err;

	if (!dp__with_policy(d, v6 ? VIP6 : VIP4, SVC_PORT_TCP, IPPROTO_TCP, v6 ? BE6 : BE4,
			     BE_PORT_TCP, p) ||
	    !svc_of(d, v6 ? VIP6 : VIP4, &svc))
		return false;
	for (err = bpf_map_get_next_key(fd, NULL, &k); !err;
	     err = bpf_map_get_next_key(fd, &k, &next), k = next)
		hashed |= k.id == svc.svc_id;
	if (!!(svc.flags & SLUICE_SVC_F_POLICY_HASH) == want && svc.policy_lens == lens &&
	    hashed == want)
		return true;
	dp__fail(d,
		 "service on the %s: flags %#x policy_lens %#x, entries in policy_hash %d "
		 "(want lens %#x)",
		 want ? "hash" : "trie", svc.flags, svc.policy_lens, hashed, lens);
	return false;
}

/* policy_lens bytes: 1 + length, longest first */
#define LENS(a, b, c, e) ((a + 1u) | (b + 1u) << 8 | (c + 1u) << 16 | (e + 1u) << 24)

static bool s_v4(struct dp *d)
{
	return set_on(d, false, &pol4, LENS(31, 24, 16, 8));
}

static bool s_v4_exp(struct dp *d)
{
	return set_on(d, false, &pol4_exp, LENS(31, 24, 16, 8));
}

static bool s_v4_trie(struct dp *d)
{
	return set_on(d, false, &pol4_trie, 0);
}

static bool s_v6_exp(struct dp *d)
{
	return set_on(d, true, &pol6_exp, LENS(128, 64, 48, 32));
}

static bool s_v6(struct dp *d)
{
	return set_on(d, true, &pol6, LENS(128, 125, 64, 32));
}

static bool s_v6_trie(struct dp *d)
{
	return set_on(d, true, &pol6_trie, 0);
}

/* The v4 verdicts, the same on both paths (ports differ per case). */
#define V4_STEPS(p)                                                                           \
	T4_NEW("10.0.0.1", p),                                    /* /8 after three misses */ \
		DENIES(T4_SYN("10.0.0.2", p), POLICY_DENY, S_T4), /* /31 */                   \
		DENIES(T4_SYN("10.0.0.3", p), POLICY_DENY, S_T4), T4_NEW("10.0.0.4", p),      \
		DENIES(T4_SYN("10.200.0.255", p), POLICY_DENY, S_T4),  /* /24 */              \
		T4_NEW("10.200.1.0", p), T4_NEW("192.168.255.255", p), /* /16 */              \
		DENIES(T4_SYN("192.169.0.0", p), POLICY_NOT_ALLOWED, S_T4)

#define V6_STEPS(p)                                                                     \
	T6_NEW("fd00::7", p),                                    /* /32 */              \
		DENIES(T6_SYN("fd00::8", p), POLICY_DENY, S_T6), /* /125 */             \
		DENIES(T6_SYN("fd00::f", p), POLICY_DENY, S_T6), T6_NEW("fd00::10", p), \
		DENIES(T6_SYN("fd00:0:0:1:ffff::1", p), POLICY_DENY, S_T6), /* /64 */   \
		T6_NEW("fd00:0:0:2::1", p), T6_NEW("2001:db8::1", p),       /* /128 */  \
		DENIES(T6_SYN("2001:db8::", p), POLICY_NOT_ALLOWED, S_T6)

static const struct dp_case policy_hash_cases[] = {
	{
		.name = "policy_hash_v4_lengths",
		.desc = "4 lengths (/31 /24 /16 /8) in policy_hash: each prefix's edges, deny "
			"/31 and /24 inside allow /8, outside every prefix not_allowed",
		.setup = s_v4,
		.steps = { V4_STEPS(41000) },
	},
	{
		.name = "policy_hash_v4_expanded",
		.desc = "the same rules and an allow /14: 5 lengths, the /14 expanded into 4 "
			"/16s in policy_hash; the same verdicts, the /14's edges",
		.setup = s_v4_exp,
		.steps = { V4_STEPS(41004) },
	},
	{
		.name = "policy_hash_v4_expanded_edges",
		.desc = "the expanded allow /14 (4 /16s): its first and last address in, the "
			"addresses either side of it not_allowed",
		.setup = s_v4_exp,
		.steps = { T4_NEW("172.16.0.0", 41006), T4_NEW("172.19.255.255", 41006),
			   DENIES(T4_SYN("172.20.0.0", 41006), POLICY_NOT_ALLOWED, S_T4),
			   DENIES(T4_SYN("172.15.255.255", 41006), POLICY_NOT_ALLOWED, S_T4) },
	},
	{
		.name = "policy_hash_v4_trie_fallback",
		.desc = "the same rules and a deny /2: 5 lengths no expansion within bounds "
			"takes, the trie; the same verdicts",
		.setup = s_v4_trie,
		.steps = { V4_STEPS(41001) },
	},
	{
		.name = "policy_hash_v4_trie_deny",
		.desc = "on the trie: the deny /2 denies",
		.setup = s_v4_trie,
		.steps = { DENIES(T4_SYN("64.0.0.1", 41007), POLICY_DENY, S_T4),
			   DENIES(T4_SYN("127.255.255.255", 41007), POLICY_DENY, S_T4),
			   DENIES(T4_SYN("128.0.0.0", 41007), POLICY_NOT_ALLOWED, S_T4) },
	},
	{
		.name = "policy_hash_v6_lengths",
		.desc = "4 lengths (/128 /125 /64 /32) in policy_hash: word-boundary and "
			"mid-word masks, deny /125 and /64 inside allow /32",
		.setup = s_v6,
		.steps = { V6_STEPS(41002) },
	},
	{
		.name = "policy_hash_v6_expanded",
		.desc = "the same rules and an allow /48: 5 lengths, the deny /125 expanded into "
			"8 /128s in policy_hash; the same verdicts, the /48's edges",
		.setup = s_v6_exp,
		.steps = { V6_STEPS(41005) },
	},
	{
		.name = "policy_hash_v6_expanded_edges",
		.desc = "the expanded deny /125 (8 /128s): its first and last address denied, "
			"the next one allowed by the /32; the /48 and past it",
		.setup = s_v6_exp,
		.steps = { DENIES(T6_SYN("fd00::8", 41008), POLICY_DENY, S_T6),
			   DENIES(T6_SYN("fd00::f", 41008), POLICY_DENY, S_T6),
			   T6_NEW("fd00::10", 41008), T6_NEW("2001:db9:0:ffff::1", 41008),
			   DENIES(T6_SYN("2001:db9:1::", 41008), POLICY_NOT_ALLOWED, S_T6) },
	},
	{
		.name = "policy_hash_v6_trie_fallback",
		.desc = "the same and a deny /80: 6 lengths, the trie; the same verdicts",
		.setup = s_v6_trie,
		.steps = { V6_STEPS(41003) },
	},
	{
		.name = "policy_hash_v6_trie_deny",
		.desc = "on the trie: the deny /80 denies, the /128 next to it still allowed",
		.setup = s_v6_trie,
		.steps = { DENIES(T6_SYN("2001:db8::1:0:0:1", 41009), POLICY_DENY, S_T6),
			   T6_NEW("2001:db8::1", 41009) },
	},
};

/* --- random flows: program = compiled rules = live-map verdict --- */

#define FLOWS 300

static const __u16 edge_ports[] = { 80, 1023, 1024, 19999, 20000, 20099, 20100, 65535 };

/* Random rules on a small address space so every entry gets hits:
 * lengths 32 25 24 16 (hash); with a /15 and a /17 too (expanded: /15
 * into /16s, /24 into /25s); with a /2 and a /9 instead (trie). */
static const struct dp_pol rnd4 = {
	.allow = { "10.0.0.0/16", "10.1.0.0/16:1024-65535" },
	.deny = { "10.0.0.0/24:20000-20099", "10.0.1.128/25", "10.1.2.3/32" },
};
static const struct dp_pol rnd4_exp = {
	.allow = { "10.0.0.0/16", "10.1.0.0/16:1024-65535", "10.2.0.0/15" },
	.deny = { "10.0.0.0/24:20000-20099", "10.0.1.128/25", "10.1.2.3/32", "10.3.0.0/17" },
};
static const struct dp_pol rnd4_trie = {
	.allow = { "10.0.0.0/16", "10.1.0.0/16:1024-65535" },
	.deny = { "10.0.0.0/24:20000-20099", "10.0.1.128/25", "10.1.2.3/32", "64.0.0.0/2",
		  "128.0.0.0/9" },
};

static void rnd_client4(char *buf, size_t len)
{
	snprintf(buf, len, "10.%u.%u.%u", (unsigned)rand() % 4, (unsigned)rand() % 3,
		 (unsigned)rand() % 256);
}

static void rnd_client6(char *buf, size_t len)
{
	static const char *const base[] = { "fd00::", "fd00:0:0:1::", "fd00:1::", "2001:db8::" };

	snprintf(buf, len, "%s%x", base[(unsigned)rand() % 4], (unsigned)rand() % 20);
}

/* Empties both conntrack maps: a flow let in would make the next of its
 * tuple an established one, which the policy never sees. */
static void ct_empty(struct dp *d)
{
	static const char *const maps[] = { "ct_new", "conntrack" };
	struct sluice_ct_key k;

	for (int m = 0; m < 2; m++) {
		int fd = sluice__map_fd(d->s, maps[m]);

		while (!bpf_map_get_next_key(fd, NULL, &k))
			if (bpf_map_delete_elem(fd, &k))
				break;
	}
}

/* Compiles p like the writer does: the entries and the allow-list flag. */
static bool compile(struct dp *d, const struct dp_pol *p, __u8 family,
		    struct sluice_policy_entry **e, __u32 *n, bool *allowlist)
{
	struct sluice_policy_rule a[DP_POL_RULES], r[DP_POL_RULES];
	__u32 na = 0, nd = 0;

	for (; na < DP_POL_RULES && p->allow[na]; na++)
		sluice_policy_rule__parse(&a[na], p->allow[na]);
	for (; nd < DP_POL_RULES && p->deny[nd]; nd++)
		sluice_policy_rule__parse(&r[nd], p->deny[nd]);
	*allowlist = na > 0;
	if (!sluice_policy__compile(family, a, na, r, nd, e, n))
		return true;
	dp__fail(d, "compile: %s", sluice__errmsg());
	return false;
}

/* One random flow; false (reported) on a disagreement. */
static bool rnd_flow(struct dp *d, bool v6, int i, const struct sluice_policy_entry *e, __u32 n,
		     bool allowlist, const struct sluice_svc *svc)
{
	__u16 port = edge_ports[(unsigned)rand() % ARRAY_SIZE(edge_ports)];
	struct sluice_ct_key t = { .proto = IPPROTO_TCP };
	struct sluice_addr addr;
	char client[64];
	struct pkt in, out;
	int verdict, live;
	bool prog_denied, want_denied;
	__u8 v;

	if (v6)
		rnd_client6(client, sizeof(client));
	else
		rnd_client4(client, sizeof(client));
	dp__build(&in, v6 ? TCP6(client, VIP6, port, 80, SYN, .seq = (__u32)i) :
			    TCP4(client, VIP4, port, 80, SYN, .seq = (__u32)i));
	addr = dp__addr(client);
	t.family = addr.family;
	memcpy(t.saddr, addr.addr, sizeof(t.saddr));
	t.sport = htons(port);
	v = sluice_policy__verdict(e, n, &addr, port);
	want_denied = v == SLUICE_POL_DENY || (v == SLUICE_POL_NONE && allowlist);
	live = sluice__policy_verdict(d->s, svc, &t, NULL);
	dp__at("flow %d: %s:%u", i, client, port);
	if (!dp__send(d, &in, &out, &verdict))
		return false;
	prog_denied = verdict == dp__verdict_for(d, XDP_DROP);
	ct_empty(d);
	if (prog_denied == want_denied && !!live == want_denied)
		return true;
	dp__fail(d, "program %s, compiled rules %s, live maps %s (drop %d)",
		 prog_denied ? "denied" : "allowed", want_denied ? "deny" : "allow",
		 live ? "deny" : "allow", live);
	return false;
}

static void rnd_run(struct dp *d, bool v6, const struct dp_pol *p, __u32 lens)
{
	struct sluice_policy_entry *e = NULL;
	unsigned int seed = 15015;
	struct sluice_svc svc;
	bool allowlist;
	__u32 n = 0;

	if (!set_on(d, v6, p, lens) || !svc_of(d, v6 ? VIP6 : VIP4, &svc) ||
	    !compile(d, p, v6 ? SLUICE_AF_INET6 : SLUICE_AF_INET, &e, &n, &allowlist))
		goto out;
	srand(seed);
	for (int i = 0; i < FLOWS; i++)
		if (!rnd_flow(d, v6, i, e, n, allowlist, &svc)) {
			fprintf(stderr, "    seed %u\n", seed);
			break;
		}
	dp__at("%s", "");
out:
	free(e);
}

static void rnd_both(struct dp *d)
{
	rnd_run(d, false, &rnd4, LENS(32, 25, 24, 16));
	rnd_run(d, false, &rnd4_exp, LENS(32, 25, 17, 16));
	rnd_run(d, false, &rnd4_trie, 0);
	rnd_run(d, true, &pol6, LENS(128, 125, 64, 32));
	rnd_run(d, true, &pol6_exp, LENS(128, 64, 48, 32));
	rnd_run(d, true, &pol6_trie, 0);
}

static void test_policy_hash_random(void)
{
	dp__each_prog(0, rnd_both);
}

static const struct dp_case planted_case = {
	.steps = { DENIES(T4_SYN("10.0.0.1", 41100), POLICY_DENY, S_T4),
		   T4_NEW("192.168.0.1", 41100) },
};

/* The program reads policy_hash, not the trie, for a service on the hash:
 * a deny planted in the hash entry of 10.0.0.0/8 alone (the trie still
 * allows it) denies 10.0.0.1 while the /16 still lets 192.168.0.1 in, and
 * the live-map verdict of explain and the cut says so and names the
 * entry, found by the fourth lookup (/31, /24, /16 miss). */
static void planted(struct dp *d)
{
	struct sluice_policy_val v = { .verdict = SLUICE_POL_DENY };
	struct sluice_policy_key k = { .prefixlen = 32 + 8 };
	struct sluice_ct_key t = { .family = SLUICE_AF_INET, .proto = IPPROTO_TCP };
	struct sluice_policy_hit hit;
	char buf[SLUICE_CIDR_STRLEN] = "-";
	struct sluice_svc svc;

	if (!set_on(d, false, &pol4, LENS(31, 24, 16, 8)) || !svc_of(d, VIP4, &svc))
		return;
	k.id = svc.svc_id;
	k.addr[0] = htonl(0x0a000000);
	if (bpf_map_update_elem(sluice__map_fd(d->s, "policy_hash"), &k, &v, BPF_EXIST)) {
		dp__fail(d, "plant: %s", strerror(errno));
		return;
	}
	memcpy(t.saddr, dp__addr("10.0.0.1").addr, sizeof(t.saddr));
	t.sport = htons(41100);
	if (sluice__policy_verdict(d->s, &svc, &t, &hit) != SLUICE_DROP_POLICY_DENY ||
	    !hit.has_prefix || !hit.map || strcmp(hit.map, "policy_hash") || hit.lookups != 4 ||
	    strcmp(sluice_cidr__str(&hit.prefix, buf, sizeof(buf)), "10.0.0.0/8"))
		dp__fail(d,
			 "live verdict does not follow the planted hash entry (%s %s, %u lookups)",
			 hit.map ? hit.map : "-", buf, hit.lookups);
	dp__run_steps(d, &planted_case);
}

static void test_policy_hash_is_read(void)
{
	dp__each_prog(0, planted);
}

/* The live-map verdict of @client:41200 and the hit that decided: map,
 * rule prefix, lookups. */
static void expect_hit(struct dp *d, const struct sluice_svc *svc, const char *client, int drop,
		       const char *prefix, __u8 lookups)
{
	struct sluice_ct_key t = { .proto = IPPROTO_TCP };
	struct sluice_addr a = dp__addr(client);
	char buf[SLUICE_CIDR_STRLEN] = "-";
	struct sluice_policy_hit hit = {};
	int got;

	t.family = a.family;
	memcpy(t.saddr, a.addr, sizeof(t.saddr));
	t.sport = htons(41200);
	got = sluice__policy_verdict(d->s, svc, &t, &hit);
	if (hit.has_prefix)
		sluice_cidr__str(&hit.prefix, buf, sizeof(buf));
	if (got != drop || !hit.map || strcmp(hit.map, "policy_hash") || strcmp(buf, prefix) ||
	    hit.lookups != lookups)
		dp__fail(
			d,
			"%s: drop %d in %s %s after %u lookups, want %d in policy_hash %s after %u",
			client, got, hit.map ? hit.map : "-", buf, hit.lookups, drop, prefix,
			lookups);
}

/* An expanded entry names the rule it came from, as `meshctl explain`
 * prints it: 172.18.0.1 hits the /16 172.18.0.0 of the allow /14 on the
 * third lookup (/31, /24 miss); fd00::9 a /128 of the deny /125 on the
 * first. A prefix kept as it is names itself. */
static void expanded_hits(struct dp *d)
{
	struct sluice_svc svc;

	if (set_on(d, false, &pol4_exp, LENS(31, 24, 16, 8)) && svc_of(d, VIP4, &svc)) {
		expect_hit(d, &svc, "172.18.0.1", 0, "172.16.0.0/14", 3);
		expect_hit(d, &svc, "10.200.0.7", SLUICE_DROP_POLICY_DENY, "10.200.0.0/24", 2);
	}
	if (set_on(d, true, &pol6_exp, LENS(128, 64, 48, 32)) && svc_of(d, VIP6, &svc)) {
		expect_hit(d, &svc, "fd00::9", SLUICE_DROP_POLICY_DENY, "fd00::8/125", 1);
		expect_hit(d, &svc, "2001:db9::5", 0, "2001:db9::/48", 3);
	}
}

static void test_policy_hash_expanded_names_rule(void)
{
	dp__each_prog(0, expanded_hits);
}

static const struct test policy_hash_tests[] = {
	TEST(test_policy_hash_random),
	TEST(test_policy_hash_is_read),
	TEST(test_policy_hash_expanded_names_rule),
};

const struct dp_suite dp_suite_policy_hash = {
	.name = "policy_hash",
	.cases = policy_hash_cases,
	.ncases = ARRAY_SIZE(policy_hash_cases),
	.tests = policy_hash_tests,
	.ntests = ARRAY_SIZE(policy_hash_tests),
};
