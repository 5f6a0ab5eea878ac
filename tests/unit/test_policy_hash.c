// SPDX-License-Identifier: MIT
/*
 * test_policy_hash.c - the writer of the access policy's exact-match
 * path (#15) against the real datapath object (root): the lengths a
 * service's compiled entries use (sluice_policy__lens()), its entries in
 * policy_hash exactly when it uses at most SLUICE_POLICY_LENS lengths
 * (the same keys and values as its trie entries, which are always
 * there), moves between the hash and the trie alone, a service an older
 * agent left without hash entries gaining them at its next set, a full
 * policy_hash rolling the whole update back (every map byte-identical),
 * and a deleted service leaving nothing in either map.
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

/* Every hash entry of svc_id is in the trie with the same value. */
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
		/* a trie lookup is longest-prefix: the same key finds itself */
		if (bpf_map_lookup_elem(h, &k, &hv) || bpf_map_lookup_elem(t, &k, &tv) ||
		    memcmp(&hv, &tv, sizeof(hv)))
			return false;
	}
	return true;
}

/* The service's path: its flag, lens, and where its entries are. */
static void expect_path(struct sluice *s, __u32 lens, __u32 entries, const char *what)
{
	struct sluice_svc svc;

	if (!ASSERT_TRUE(svc_get(s, &svc), what))
		return;
	ASSERT_EQ(!!(svc.flags & SLUICE_SVC_F_POLICY_HASH), lens != 0, what);
	ASSERT_EQ(svc.policy_lens, lens, what);
	ASSERT_EQ(count_of(s, "policy", svc.svc_id), entries, what);
	ASSERT_EQ(count_of(s, "policy_hash", svc.svc_id), lens ? entries : 0, what);
	ASSERT_TRUE(hash_in_trie(s, svc.svc_id), what);
}

static const char *const a4[] = { "10.0.0.0/8", "192.168.0.0/16", NULL };
static const char *const d4[] = { "10.0.0.2/31", "10.200.0.0/24", NULL };
static const char *const a5[] = { "10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", NULL };

/* hash -> trie (a fifth length) -> hash -> deny only -> none -> deleted */
static void test_modes(void)
{
	struct sluice *s = lib__open();
	struct sluice_svc svc;

	if (!s)
		return;
	spec_init(a4, d4);
	if (!ASSERT_OK(sluice__service_set(s, &spec), "4 lengths"))
		goto out;
	expect_path(s, LENS4(31, 24, 16, 8), 4, "4 lengths: hash");
	spec.nallow = rules(allow, a5);
	ASSERT_OK(sluice__service_set(s, &spec), "5 lengths");
	expect_path(s, 0, 5, "5 lengths: the trie alone");
	spec.nallow = rules(allow, a4);
	ASSERT_OK(sluice__service_set(s, &spec), "4 again");
	expect_path(s, LENS4(31, 24, 16, 8), 4, "back in the hash");
	spec.nallow = 0;
	ASSERT_OK(sluice__service_set(s, &spec), "deny only");
	expect_path(s, LEN1(31) | LEN1(24) << 8, 2, "deny only: two lengths");
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
	expect_path(s, 0, 4, "old pins: the trie");
	inet_pton(AF_INET, "10.0.0.3", &t.saddr[0]);
	t.sport = htons(40000);
	ASSERT_EQ(sluice__policy_verdict(s, &svc, &t, NULL), SLUICE_DROP_POLICY_DENY,
		  "trie: 10.0.0.3 denied");
	ASSERT_OK(sluice__service_set(s, &spec), "the same rules again");
	expect_path(s, LENS4(31, 24, 16, 8), 4, "moved to the hash");
	ASSERT_TRUE(svc_get(s, &svc), "svc");
	ASSERT_EQ(sluice__policy_verdict(s, &svc, &t, NULL), SLUICE_DROP_POLICY_DENY,
		  "hash: 10.0.0.3 denied");
out:
	sluice__close(s);
	sluice__unpin(dir);
}

/* policy_hash full but for one slot: the trie takes the update's entries,
 * the hash does not; everything is put back. */
static void test_hash_full_rollback(void)
{
	struct sluice_policy_val val = { .verdict = SLUICE_POL_DENY };
	struct sluice_policy_key k = { .prefixlen = 64, .id = 30000 };
	struct sluice *s = lib__open();
	struct snap before, after;
	__u32 filler = 0;
	int fd, err;

	if (!s)
		return;
	spec_init((const char *const[]){ "10.0.0.0/8", NULL }, (const char *const[]){ NULL });
	if (!ASSERT_OK(sluice__service_set(s, &spec), "first"))
		goto out;
	fd = sluice__map_fd(s, "policy_hash");
	for (__u32 i = 0; i < SLUICE_POLICY_MAX - 2; i++) {
		k.addr[0] = htonl(0x64000000 + i);
		if (bpf_map_update_elem(fd, &k, &val, BPF_NOEXIST))
			break;
		filler++;
	}
	ASSERT_EQ(filler, SLUICE_POLICY_MAX - 2, "filled");
	snap_take(s, &before);
	spec.nallow = rules(allow, a4);
	spec.ndeny = rules(deny, d4);
	err = sluice__service_set(s, &spec);
	ASSERT_TRUE(err == -ENOSPC || err == -E2BIG, "does not fit");
	ASSERT_TRUE(strstr(sluice__errmsg(), "policy_hash map: insert of policy prefix") != NULL,
		    sluice__errmsg());
	snap_take(s, &after);
	snap_same(&before, &after, "a full policy_hash");
	snap_free(&after);
	snap_free(&before);
out:
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_lens),
	TEST(test_modes),
	TEST(test_old_pins),
	TEST(test_hash_full_rollback),
};

int main(int argc, char **argv)
{
	return test__run_all("policy_hash", tests, ARRAY_SIZE(tests), argc, argv);
}
