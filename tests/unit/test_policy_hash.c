// SPDX-License-Identifier: MIT
/*
 * test_policy_hash.c - the writer of the access policy's exact-match
 * path (#15) against the real datapath object (root): the lengths a
 * service's compiled entries use (sluice_policy__lens()), the expansion
 * of more lengths into at most SLUICE_POLICY_LENS (sluice_policy__expand():
 * the fewest entries for the bench's worst shape, and for random rule
 * sets the hash's first hit equal to the trie's longest match, value for
 * value), a service's entries in policy_hash (a copy, or expanded, within
 * SLUICE_POLICY_EXPAND_FACTOR times as many; beyond that the trie alone)
 * with every hash entry carrying the trie's verdict, moves between the
 * hash and the trie alone, a service an older agent left without hash
 * entries gaining them at its next set, a full policy_hash putting the
 * service on the trie instead of failing, and a deleted service leaving
 * nothing in either map.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "internal.h"
#include "test.h"
#include "policy_snap.h"

#define MAXR 8

static __u32 rules(struct sluice_policy_rule *r, const char *const *text)
{
	__u32 n = 0;

	for (; n < MAXR && text[n]; n++)
		ASSERT_TRUE(sluice_policy_rule__parse(&r[n], text[n]) >= 0, text[n]);
	return n;
}

#define LEN1(a) ((a) + 1u)
#define LENS4(a, b, c, d) (LEN1(a) | LEN1(b) << 8 | LEN1(c) << 16 | LEN1(d) << 24)

static __u32 lens_of(__u8 family, const char *const *allow, const char *const *deny)
{
	struct sluice_policy_rule a[MAXR], d[MAXR];
	struct sluice_policy_entry *e = NULL;
	__u32 na = rules(a, allow), nd = rules(d, deny), n = 0, lens;

	if (!ASSERT_OK(sluice_policy__compile(family, a, na, d, nd, &e, &n), "compile"))
		return ~0u;
	lens = sluice_policy__lens(e, n);
	free(e);
	return lens;
}

static void test_lens(void)
{
	static const char *const none[] = { NULL };

	ASSERT_EQ(lens_of(SLUICE_AF_INET, none, none), 0, "no rules: 0");
	ASSERT_EQ(lens_of(SLUICE_AF_INET, (const char *const[]){ "0.0.0.0/0", NULL }, none),
		  LEN1(0), "/0 is length 0, byte 1");
	/* distinct lengths, longest first, duplicates once */
	ASSERT_EQ(
		lens_of(SLUICE_AF_INET,
			(const char *const[]){ "10.0.0.0/8", "11.0.0.0/8", "192.168.0.0/16", NULL },
			(const char *const[]){ "10.0.0.1/32", "10.1.0.0/24", NULL }),
		LENS4(32, 24, 16, 8), "four lengths");
	ASSERT_EQ(lens_of(SLUICE_AF_INET,
			  (const char *const[]){ "10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12",
						 NULL },
			  (const char *const[]){ "10.0.0.1/32", "10.1.0.0/24", NULL }),
		  0, "five lengths: the trie");
	ASSERT_EQ(
		lens_of(SLUICE_AF_INET6, (const char *const[]){ "::/0", NULL },
			(const char *const[]){ "fd00::8/125", "fd00::1/128", "fd00:1::/64", NULL }),
		LENS4(128, 125, 64, 0), "v6: /128 is byte 129, /0 byte 1");
	/* a port rule adds no length of its own */
	ASSERT_EQ(lens_of(SLUICE_AF_INET, (const char *const[]){ "10.0.0.0/8:1024-65535", NULL },
			  (const char *const[]){ "10.0.0.0/8:80", NULL }),
		  LEN1(8), "one prefix, two port rules");
}

/* --- sluice_policy__expand(): controlled prefix expansion --- */

/* Whether the prefix p holds the address a. */
static bool in_prefix(const struct sluice_cidr *p, const struct sluice_addr *a)
{
	struct sluice_cidr c = { .addr = *a, .prefixlen = p->prefixlen };

	sluice_cidr__mask(&c);
	return sluice_cidr__eq(&c, p);
}

/* The first hit of the lookups policy_hash gets, longest length first, in
 * the sorted entries h[0..n): NULL for none. */
static const struct sluice_policy_entry *hash_hit(const struct sluice_policy_entry *h, __u32 n,
						  __u32 lens, const struct sluice_addr *a)
{
	for (__u32 i = 0; i < SLUICE_POLICY_LENS; i++) {
		__u32 len = (lens >> (8 * i)) & 0xff;

		if (!len--)
			break;
		for (__u32 j = 0; j < n; j++)
			if (h[j].cidr.prefixlen == len && in_prefix(&h[j].cidr, a))
				return &h[j];
	}
	return NULL;
}

/* The trie's answer: the longest compiled entry holding @a. */
static const struct sluice_policy_entry *trie_hit(const struct sluice_policy_entry *e, __u32 n,
						  const struct sluice_addr *a)
{
	const struct sluice_policy_entry *best = NULL;

	for (__u32 j = 0; j < n; j++)
		if (in_prefix(&e[j].cidr, a) &&
		    (!best || e[j].cidr.prefixlen > best->cidr.prefixlen))
			best = &e[j];
	return best;
}

/* Whether the hash's first hit for @a carries the trie's value (from_len
 * aside) and names the trie entry's length; @what on failure. */
static bool same_answer(const struct sluice_policy_entry *e, __u32 n,
			const struct sluice_policy_entry *h, __u32 nh, __u32 lens,
			const struct sluice_addr *a, const char *what)
{
	const struct sluice_policy_entry *want = trie_hit(e, n, a), *got = hash_hit(h, nh, lens, a);
	struct sluice_policy_val gv;
	char buf[64];

	if (!want || !got) {
		if (!ASSERT_TRUE(!want && !got, what))
			fprintf(stderr, "    %s: trie %s, hash %s\n",
				sluice_addr__str(a, buf, sizeof(buf)), want ? "hit" : "miss",
				got ? "hit" : "miss");
		return !want && !got;
	}
	gv = got->val;
	if (!ASSERT_EQ(gv.from_len ? gv.from_len - 1u : got->cidr.prefixlen, want->cidr.prefixlen,
		       what))
		return false;
	gv.from_len = 0;
	return ASSERT_MEM_EQ(&gv, &want->val, sizeof(gv), what);
}

static __u32 expand_of(const struct sluice_policy_entry *e, __u32 n, __u32 max,
		       struct sluice_policy_entry **h, __u32 *nh)
{
	__u32 lens = ~0u;

	ASSERT_OK(sluice_policy__expand(e, n, max, h, nh, &lens), "expand");
	return lens;
}

/* The bench's worst service shape (scripts/bench/policybench.c "trie"):
 * 1000 /17-/24, 125 of each length, one per /16: the fewest entries in 4
 * lengths pair them (/17 -> /18, ... /23 -> /24), 1500; every other
 * choice needs more. A copy for 4 lengths; a bound too low gives the
 * trie (0, nothing). */
static void test_expand_shapes(void)
{
	struct sluice_policy_entry *e = calloc(1000, sizeof(*e)), *h = NULL;
	__u32 nh = 0, lens, n4;

	if (!ASSERT_TRUE(e != NULL, "alloc"))
		return;
	for (__u32 i = 0; i < 1000; i++) {
		e[i].cidr.addr.family = SLUICE_AF_INET;
		e[i].cidr.addr.addr[0] = htonl(0x0b000000 + (i << 16));
		e[i].cidr.prefixlen = (__u8)(17 + i % 8);
		e[i].val.verdict = SLUICE_POL_ALLOW;
	}
	lens = expand_of(e, 1000, 4000, &h, &nh);
	ASSERT_EQ(lens, LENS4(24, 22, 20, 18), "8 lengths: pairs");
	ASSERT_EQ(nh, 1500, "125 x (2 + 1) x 4");
	for (__u32 i = 0; i + 1 < nh; i++)
		if (!ASSERT_TRUE(
			    memcmp(h[i].cidr.addr.addr, h[i + 1].cidr.addr.addr, 16) < 0 ||
				    (!memcmp(h[i].cidr.addr.addr, h[i + 1].cidr.addr.addr, 16) &&
				     h[i].cidr.prefixlen < h[i + 1].cidr.prefixlen),
			    "sorted, no duplicate"))
			break;
	n4 = 0; /* expanded: from the odd length below, from_len = that + 1 */
	for (__u32 i = 0; i < nh; i++) {
		n4 += h[i].val.from_len != 0;
		if (!ASSERT_TRUE(!h[i].val.from_len || h[i].val.from_len == h[i].cidr.prefixlen,
				 "from_len"))
			break;
	}
	ASSERT_EQ(n4, 1000, "500 odd-length prefixes, 2 entries each");
	free(h);
	h = NULL;
	lens = expand_of(e, 1000, 1499, &h, &nh);
	ASSERT_TRUE(!lens && !h && !nh, "1499 allowed: the trie");
	/* 4 lengths: the entries as they are */
	n4 = 0;
	for (__u32 i = 0; i < 1000; i++)
		if (e[i].cidr.prefixlen <= 20)
			e[n4++] = e[i];
	lens = expand_of(e, n4, n4, &h, &nh);
	ASSERT_EQ(lens, LENS4(20, 19, 18, 17), "4 lengths");
	ASSERT_EQ(nh, n4, "a copy");
	for (__u32 i = 0; i < nh; i++)
		ASSERT_EQ(h[i].val.from_len, 0, "not expanded");
	free(h);
	ASSERT_EQ(expand_of(e, 0, 10, &h, &nh), 0, "no entries");
	free(e);
}

/* A random prefix of @family inside a small space, so rules nest. */
static void rnd_cidr(struct sluice_cidr *c, __u8 family)
{
	__u32 len;

	memset(c, 0, sizeof(*c));
	c->addr.family = family;
	if (family == SLUICE_AF_INET) {
		len = 8 + (__u32)rand() % 25;
		c->addr.addr[0] = htonl(0x0a000000 | ((__u32)rand() & 0x00ff00ff));
	} else {
		len = 16 + (__u32)rand() % 113;
		c->addr.addr[0] = htonl(0xfd000000);
		c->addr.addr[1] = (__u32)rand() & htonl(0x0000000f);
		c->addr.addr[3] = (__u32)rand() & htonl(0x000000ff);
	}
	c->prefixlen = (__u8)len;
	sluice_cidr__mask(c);
}

/* Random rule sets (v4 and v6, nested across the lists, some with port
 * ranges) compiled and expanded: for addresses inside every entry and at
 * random, the hash's first hit, longest length first, is the trie's
 * longest match, value for value, and names its length. */
static void test_expand_random(void)
{
	unsigned int seed = 1515;
	__u32 sets = 0, expanded = 0;
	bool ok = true;

	srand(seed);

	for (int round = 0; round < 3000 && ok; round++) {
		__u8 family = round % 2 ? SLUICE_AF_INET6 : SLUICE_AF_INET;
		struct sluice_policy_rule a[12], d[12];
		struct sluice_policy_entry *e = NULL, *h = NULL;
		__u32 na = 1 + (__u32)rand() % 12, nd = (__u32)rand() % 12, n = 0, nh = 0, lens;
		char what[64];

		for (__u32 i = 0; i < na + nd; i++) {
			struct sluice_policy_rule *r = i < na ? &a[i] : &d[i - na];

			memset(r, 0, sizeof(*r));
			rnd_cidr(&r->cidr, family);
			r->port_hi = 65535;
			if (rand() % 4 == 0) {
				r->port_lo = (__u16)(1000 + rand() % 1000);
				r->port_hi = (__u16)(r->port_lo + rand() % 100);
			}
		}
		if (sluice_policy__compile(family, a, na, d, nd, &e, &n))
			continue; /* nested in one list, or too many ports: not a rule set */
		sets++;
		lens = expand_of(e, n, SLUICE_POLICY_EXPAND_MAX, &h, &nh);
		snprintf(what, sizeof(what), "round %d (seed %u)", round, seed);
		ok = ASSERT_TRUE(lens || sluice_policy__lens(e, n) == 0, what);
		expanded += nh > n;
		for (__u32 j = 0; j < n + 200 && lens; j++) {
			struct sluice_addr c;

			if (j < n) { /* inside entry j, random below its length */
				struct sluice_cidr top = { .prefixlen = e[j].cidr.prefixlen };

				for (__u32 w = 0; w < 4; w++)
					top.addr.addr[w] = (__u32)rand();
				top.addr.family = family;
				c = top.addr;
				sluice_cidr__mask(&top); /* c's bits below the length */
				for (__u32 w = 0; w < 4; w++)
					c.addr[w] = (c.addr[w] & ~top.addr.addr[w]) |
						    e[j].cidr.addr.addr[w];
			} else {
				struct sluice_cidr r;

				rnd_cidr(&r, family);
				c = r.addr;
				c.addr[3] |= (__u32)rand() & htonl(0xff);
			}
			ok = same_answer(e, n, h, nh, lens, &c, what);
			if (!ok)
				break;
		}
		free(e);
		free(h);
	}
	ASSERT_GE(sets, 200, "enough valid rule sets");
	ASSERT_GE(expanded, 50, "enough of them expanded");
	fprintf(stderr, "    %u rule sets, %u expanded\n", sets, expanded);
}

static struct sluice_service_spec spec;
static struct sluice_backend_spec be = { .port = 8080, .weight = 1 };
static struct sluice_policy_rule allow[MAXR], deny[MAXR];

static void spec_init(const char *const *a, const char *const *d)
{
	spec = (struct sluice_service_spec){ .port = 80,
					     .proto = IPPROTO_TCP,
					     .nbackends = 1,
					     .backends = &be,
					     .allow = allow,
					     .deny = deny };
	sluice_addr__parse(&spec.vip, "10.96.0.10");
	sluice_addr__parse(&be.addr, "10.1.0.1");
	spec.nallow = rules(allow, a);
	spec.ndeny = rules(deny, d);
}

static bool svc_get(struct sluice *s, struct sluice_svc *out)
{
	struct sluice_svc_key k = { .port = htons(spec.port),
				    .proto = spec.proto,
				    .family = spec.vip.family };

	memcpy(k.addr, spec.vip.addr, sizeof(k.addr));
	return !bpf_map_lookup_elem(sluice__map_fd(s, "services"), &k, out);
}

/* Entries of svc_id in map name. */
static __u32 count_of(struct sluice *s, const char *name, __u32 svc_id)
{
	int fd = sluice__map_fd(s, name);
	struct sluice_policy_key k, next;
	__u32 n = 0;
	int err;

	for (err = bpf_map_get_next_key(fd, NULL, &k); !err;
	     err = bpf_map_get_next_key(fd, &k, &next), k = next)
		n += k.id == svc_id;
	return n;
}

/* Every hash entry of svc_id has the value of the trie's longest match
 * for its prefix (the same entry, or the one it was expanded from). */
static bool hash_in_trie(struct sluice *s, __u32 svc_id)
{
	int h = sluice__map_fd(s, "policy_hash"), t = sluice__map_fd(s, "policy");
	struct sluice_policy_key k, next;
	struct sluice_policy_val hv, tv;
	int err;

	for (err = bpf_map_get_next_key(h, NULL, &k); !err;
	     err = bpf_map_get_next_key(h, &k, &next), k = next) {
		if (k.id != svc_id)
			continue;
		/* a trie lookup is longest-prefix: the same key finds itself,
		 * an expanded one the prefix it came from */
		if (bpf_map_lookup_elem(h, &k, &hv) || bpf_map_lookup_elem(t, &k, &tv))
			return false;
		hv.from_len = 0;
		if (memcmp(&hv, &tv, sizeof(hv)))
			return false;
	}
	return true;
}

/* The service's path: its flag, lens, its entries in the trie and in the
 * hash (hashed: when lens is not 0). */
static void expect_path(struct sluice *s, __u32 lens, __u32 entries, __u32 hashed, const char *what)
{
	struct sluice_svc svc;

	if (!ASSERT_TRUE(svc_get(s, &svc), what))
		return;
	ASSERT_EQ(!!(svc.flags & SLUICE_SVC_F_POLICY_HASH), lens != 0, what);
	ASSERT_EQ(svc.policy_lens, lens, what);
	ASSERT_EQ(count_of(s, "policy", svc.svc_id), entries, what);
	ASSERT_EQ(count_of(s, "policy_hash", svc.svc_id), lens ? hashed : 0, what);
	ASSERT_TRUE(hash_in_trie(s, svc.svc_id), what);
}

static const char *const a4[] = { "10.0.0.0/8", "192.168.0.0/16", NULL };
static const char *const d4[] = { "10.0.0.2/31", "10.200.0.0/24", NULL };
/* a fifth length: the /14 expands to 4 /16s (8 entries, within 8 x 5) */
static const char *const a5[] = { "10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/14", NULL };
/* a /2 instead: every expansion to 4 lengths takes 64 entries or more */
static const char *const d5[] = { "10.0.0.2/31", "10.200.0.0/24", "64.0.0.0/2", NULL };

/* The verdict of @client:40000 from the live maps. */
static int live_verdict(struct sluice *s, const char *client)
{
	struct sluice_ct_key t = { .family = SLUICE_AF_INET, .proto = IPPROTO_TCP };
	struct sluice_svc svc;

	if (!svc_get(s, &svc))
		return -1;
	inet_pton(AF_INET, client, &t.saddr[0]);
	t.sport = htons(40000);
	return sluice__policy_verdict(s, &svc, &t, NULL);
}

/* hash -> expanded (a fifth length) -> trie (one a hash would need too
 * many entries for) -> hash -> deny only -> none -> deleted */
static void test_modes(void)
{
	struct sluice *s = lib__open();
	struct sluice_svc svc;

	if (!s)
		return;
	spec_init(a4, d4);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "4 lengths"))
		goto out;
	expect_path(s, LENS4(31, 24, 16, 8), 4, 4, "4 lengths: hash");
	spec.nallow = rules(allow, a5);
	ASSERT_OK(sluice__service_set(s, &spec), "5 lengths");
	expect_path(s, LENS4(31, 24, 16, 8), 5, 8, "5 lengths: the /14 expanded in the hash");
	ASSERT_EQ(live_verdict(s, "172.19.255.255"), 0, "in the /14: allowed");
	ASSERT_EQ(live_verdict(s, "172.20.0.0"), SLUICE_DROP_POLICY_NOT_ALLOWED, "after it");
	spec.ndeny = rules(deny, d5);
	ASSERT_OK(sluice__service_set(s, &spec), "a /2 too");
	expect_path(s, 0, 6, 0, "6 lengths, the /2: the trie alone");
	ASSERT_EQ(live_verdict(s, "172.19.255.255"), 0, "trie: in the /14");
	ASSERT_EQ(live_verdict(s, "64.0.0.1"), SLUICE_DROP_POLICY_DENY, "trie: in the /2");
	spec.nallow = rules(allow, a4);
	spec.ndeny = rules(deny, d4);
	ASSERT_OK(sluice__service_set(s, &spec), "4 again");
	expect_path(s, LENS4(31, 24, 16, 8), 4, 4, "back in the hash");
	spec.nallow = 0;
	ASSERT_OK(sluice__service_set(s, &spec), "deny only");
	expect_path(s, LEN1(31) | LEN1(24) << 8, 2, 2, "deny only: two lengths");
	spec.ndeny = 0;
	ASSERT_OK(sluice__service_set(s, &spec), "none");
	ASSERT_TRUE(svc_get(s, &svc) &&
			    !(svc.flags & (SLUICE_SVC_F_POLICY | SLUICE_SVC_F_POLICY_HASH)) &&
			    !svc.policy_lens,
		    "no policy: flags and lens clear");
	ASSERT_EQ(count_of(s, "policy", svc.svc_id) + count_of(s, "policy_hash", svc.svc_id), 0,
		  "none left");
	spec_init(a4, d4);
	ASSERT_OK(sluice__service_set(s, &spec), "again");
	ASSERT_OK(sluice__service_del(s, &spec.vip, spec.port, spec.proto), "del");
	ASSERT_EQ(count_of(s, "policy", svc.svc_id) + count_of(s, "policy_hash", svc.svc_id), 0,
		  "gone with the service");
out:
	sluice__close(s);
}

static struct sluice *open_pinned(const char *dir)
{
	struct sluice_opts opts = { .pin_dir = dir };
	struct sluice *s = NULL;

	if (!ASSERT_OK(sluice__open(&s, &opts), "open pinned"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	return s;
}

/* Pins an agent from before the hash left: no policy_hash pin, entries in
 * the trie only, the service without the flag and with policy_lens 0 (was
 * `reserved`). The kernel reads the trie then; an agent restarted on them
 * creates policy_hash, and its next set of the same rules adds the hash
 * entries and the flag; the verdict never changes. */
static void test_old_pins(void)
{
	struct sluice_ct_key t = { .family = SLUICE_AF_INET, .proto = IPPROTO_TCP };
	struct sluice_svc_key sk = { .port = htons(80),
				     .proto = IPPROTO_TCP,
				     .family = SLUICE_AF_INET };
	char dir[64], path[96];
	struct sluice_svc svc;
	struct sluice *s;

	snprintf(dir, sizeof(dir), "/sys/fs/bpf/sluice-test-pfast-%d", (int)getpid());
	s = open_pinned(dir);
	if (!s)
		goto out;
	spec_init(a4, d4);
	memcpy(sk.addr, spec.vip.addr, sizeof(sk.addr));
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set") ||
	    !ASSERT_TRUE(svc_get(s, &svc), "svc"))
		goto out;
	svc.flags &= (__u16)~SLUICE_SVC_F_POLICY_HASH;
	svc.policy_lens = 0;
	ASSERT_OK(bpf_map_update_elem(sluice__map_fd(s, "services"), &sk, &svc, BPF_EXIST),
		  "an older agent's service entry");
	sluice__close(s);
	snprintf(path, sizeof(path), "%s/policy_hash", dir);
	ASSERT_OK(unlink(path), "no policy_hash pin");
	s = open_pinned(dir); /* the restart */
	if (!s)
		goto out;
	expect_path(s, 0, 4, 0, "old pins: the trie");
	inet_pton(AF_INET, "10.0.0.3", &t.saddr[0]);
	t.sport = htons(40000);
	ASSERT_EQ(sluice__policy_verdict(s, &svc, &t, NULL), SLUICE_DROP_POLICY_DENY,
		  "trie: 10.0.0.3 denied");
	ASSERT_OK(sluice__service_set(s, &spec), "the same rules again");
	expect_path(s, LENS4(31, 24, 16, 8), 4, 4, "moved to the hash");
	ASSERT_TRUE(svc_get(s, &svc), "svc");
	ASSERT_EQ(sluice__policy_verdict(s, &svc, &t, NULL), SLUICE_DROP_POLICY_DENY,
		  "hash: 10.0.0.3 denied");
out:
	sluice__close(s);
	sluice__unpin(dir);
}

/* policy_hash full but for one slot: an update whose entries it cannot
 * take puts the service on the trie alone (no error: the trie decides),
 * its old hash entry deleted; once there is room again, the next set
 * moves it back; with the hash full, a set that only changes values (no
 * new key) keeps it there. */
static void test_hash_full_trie(void)
{
	struct sluice_policy_val val = { .verdict = SLUICE_POL_DENY };
	struct sluice_policy_key k = { .prefixlen = 64, .id = 30000 };
	struct sluice *s = lib__open();
	__u32 filler = 0;
	int fd;

	if (!s)
		return;
	spec_init((const char *const[]){ "10.0.0.0/8", NULL }, (const char *const[]){ NULL });
	if (!ASSERT_OK(sluice__service_set(s, &spec), "first"))
		goto out;
	expect_path(s, LEN1(8), 1, 1, "one entry in the hash");
	fd = sluice__map_fd(s, "policy_hash");
	for (__u32 i = 0; i < SLUICE_POLICY_MAX - 2; i++) {
		k.addr[0] = htonl(0x64000000 + i);
		if (bpf_map_update_elem(fd, &k, &val, BPF_NOEXIST))
			break;
		filler++;
	}
	ASSERT_EQ(filler, SLUICE_POLICY_MAX - 2, "filled");
	spec.nallow = rules(allow, a4);
	spec.ndeny = rules(deny, d4);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "4 entries, room for 2"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	expect_path(s, 0, 4, 0, "the trie alone");
	ASSERT_EQ(live_verdict(s, "10.0.0.3"), SLUICE_DROP_POLICY_DENY, "trie: /31 denies");
	ASSERT_EQ(live_verdict(s, "10.0.0.4"), 0, "trie: /8 allows");
	for (__u32 i = 0; i < 8; i++) {
		k.addr[0] = htonl(0x64000000 + i);
		bpf_map_delete_elem(fd, &k);
	}
	ASSERT_OK(sluice__service_set(s, &spec), "room again");
	expect_path(s, LENS4(31, 24, 16, 8), 4, 4, "back in the hash");
	for (__u32 i = 0; i < 8; i++) { /* full again: not one slot left */
		k.addr[0] = htonl(0x64000000 + i);
		bpf_map_update_elem(fd, &k, &val, BPF_NOEXIST);
	}
	k.addr[0] = htonl(0x65000000);
	ASSERT_NEQ(bpf_map_update_elem(fd, &k, &val, BPF_NOEXIST), 0, "policy_hash full");
	deny[0].port_lo = 1000; /* a value changes, no key: replaced in place */
	deny[0].port_hi = 2000;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "changed values, hash full"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	expect_path(s, LENS4(31, 24, 16, 8), 4, 4, "no new key: stays in the hash");
	ASSERT_EQ(live_verdict(s, "10.0.0.3"), 0, "the /31 now denies ports 1000-2000 only");
out:
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_lens),  TEST(test_expand_shapes), TEST(test_expand_random),
	TEST(test_modes), TEST(test_old_pins),      TEST(test_hash_full_trie),
};

int main(int argc, char **argv)
{
	return test__run_all("policy_hash", tests, ARRAY_SIZE(tests), argc, argv);
}
