// SPDX-License-Identifier: MIT
/*
 * test_vip_bits.c - the service filter's bits (#17, service_addr_bits)
 * against the real datapath object (run as root): every address of a key
 * of `services` has its bit before packets can reach it, across ports,
 * protocols and families; an address keeps its bit while any service
 * uses it and loses it when its last service goes (one by one, many at
 * once, or by the sweep of a marker left behind); a failed update leaves
 * the bits as they were; bits cleared beside filled `services` (pins of
 * a library without the filter) are filled at open.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include <bpf/bpf.h>

#include "lb_load.h"
#include "sluice.h"
#include "test.h"

static struct sluice_addr v4(__u32 host)
{
	return (struct sluice_addr){ .family = SLUICE_AF_INET, .addr = { htonl(host) } };
}

static struct sluice_addr v6(__u32 last)
{
	return (struct sluice_addr){ .family = SLUICE_AF_INET6,
				     .addr = { htonl(0xfd009600), 0, 0, htonl(last) } };
}

#define VA v4(0x0a600001) /* 10.96.0.1 */
#define VB v4(0x0a600002)
#define VC v6(0x10)

static int set(struct sluice *s, struct sluice_addr vip, __u16 port, __u8 proto)
{
	struct sluice_backend_spec b = { .addr = vip.family == SLUICE_AF_INET ? v4(0x0a000101) :
										v6(0x101),
					 .port = 8080,
					 .weight = 1 };
	struct sluice_service_spec spec = {
		.vip = vip, .port = port, .proto = proto, .nbackends = 1, .backends = &b
	};
	int err = sluice__service_set(s, &spec);

	if (!ASSERT_OK(err, "service_set"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	return err;
}

/* Whether a's bit is set in service_addr_bits, what the datapath reads. */
static bool bit(struct sluice *s, struct sluice_addr a)
{
	__u32 b = sluice_addr_bit(a.addr, a.family), word = b / 64;
	__u64 w = 0;

	bpf_map_lookup_elem(sluice__map_fd(s, "service_addr_bits"), &word, &w);
	return w & (1ULL << (b % 64));
}

/* How many bits are set in the whole array. */
static __u32 nbits(struct sluice *s)
{
	int fd = sluice__map_fd(s, "service_addr_bits");
	__u32 n = 0;

	for (__u32 k = 0; k < SLUICE_ADDR_BITS_WORDS; k++) {
		__u64 w = 0;

		bpf_map_lookup_elem(fd, &k, &w);
		n += (__u32)__builtin_popcountll(w);
	}
	return n;
}

static struct sluice *lib__open(const char *pin_dir)
{
	struct sluice_opts opts = { .pin_dir = pin_dir };
	struct sluice *s = NULL;

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open")) {
		fprintf(stderr, "    %s\n", sluice__errmsg());
		return NULL;
	}
	return s;
}

static bool distinct_bits(void)
{
	struct sluice_addr a[3] = { VA, VB, VC };
	__u32 b[3];

	for (int i = 0; i < 3; i++)
		b[i] = sluice_addr_bit(a[i].addr, a[i].family);
	return ASSERT_TRUE(b[0] != b[1] && b[0] != b[2] && b[1] != b[2],
			   "the test's addresses hash to distinct bits");
}

/* An address keeps its bit while any service uses it. */
static void test_bits_follow_services(void)
{
	struct sluice_addr va = VA, vc = VC;
	struct sluice *s = lib__open(NULL);

	if (!s || !distinct_bits())
		goto out;
	ASSERT_EQ(nbits(s), 0, "no bit before any service");
	if (set(s, VA, 80, IPPROTO_TCP) || set(s, VA, 81, IPPROTO_TCP) ||
	    set(s, VA, 80, IPPROTO_UDP) || set(s, VB, 80, IPPROTO_TCP) ||
	    set(s, VC, 80, IPPROTO_TCP))
		goto out;
	ASSERT_TRUE(bit(s, VA) && bit(s, VB) && bit(s, VC), "bits of the three addresses");
	ASSERT_EQ(nbits(s), 3, "one bit per address (ports and protocols share it)");
	ASSERT_OK(sluice__service_del(s, &va, 80, IPPROTO_TCP), "del A:80/tcp");
	ASSERT_TRUE(bit(s, VA), "A keeps its bit: 81/tcp and 80/udp use it");
	ASSERT_OK(sluice__service_del(s, &va, 80, IPPROTO_UDP), "del A:80/udp");
	ASSERT_TRUE(bit(s, VA), "A keeps its bit: 81/tcp uses it");
	ASSERT_OK(sluice__service_del(s, &va, 81, IPPROTO_TCP), "del A:81/tcp");
	ASSERT_FALSE(bit(s, VA), "A's bit cleared with its last service");
	ASSERT_TRUE(bit(s, VB) && bit(s, VC), "the others keep theirs");
	ASSERT_OK(sluice__service_del(s, &vc, 80, IPPROTO_TCP), "del the IPv6 one");
	ASSERT_FALSE(bit(s, VC), "IPv6 bit cleared");
	ASSERT_EQ(nbits(s), 1, "only B's bit left");
out:
	sluice__close(s);
}

/* Many at once: one rebuild clears every bit of addresses left empty. */
static void test_bits_del_many(void)
{
	struct sluice_service_ref refs[3] = { { VA, 80, IPPROTO_TCP },
					      { VB, 80, IPPROTO_TCP },
					      { VC, 80, IPPROTO_TCP } };
	struct sluice *s = lib__open(NULL);
	__u32 done = 0;

	if (!s || !distinct_bits())
		goto out;
	if (set(s, VA, 80, IPPROTO_TCP) || set(s, VB, 80, IPPROTO_TCP) ||
	    set(s, VB, 443, IPPROTO_TCP) || set(s, VC, 80, IPPROTO_TCP))
		goto out;
	ASSERT_OK(sluice__service_del_many(s, refs, 3, &done), "del_many");
	ASSERT_EQ(done, 3, "three deleted");
	ASSERT_FALSE(bit(s, VA) || bit(s, VC), "A's and C's bits cleared");
	ASSERT_TRUE(bit(s, VB), "B keeps its bit for 443");
	ASSERT_EQ(nbits(s), 1, "only B's bit left");
out:
	sluice__close(s);
}

/* A refused update (a duplicate backend) writes no bit. */
static void test_bits_refused_update(void)
{
	struct sluice_backend_spec b[2] = { { .addr = v4(0x0a000101), .port = 8080, .weight = 1 },
					    { .addr = v4(0x0a000101), .port = 8080, .weight = 1 } };
	struct sluice_service_spec spec = {
		.vip = VA, .port = 80, .proto = IPPROTO_TCP, .nbackends = 2, .backends = b
	};
	struct sluice *s = lib__open(NULL);

	if (!s)
		goto out;
	ASSERT_TRUE(sluice__service_set(s, &spec) < 0, "a duplicate backend is refused");
	ASSERT_EQ(nbits(s), 0, "no bit written");
out:
	sluice__close(s);
}

/* Services filled to capacity with foreign VIP markers (written straight,
 * their bits not set): a new address's marker insert fails after its bit
 * was set; the rollback clears it again. A full map still takes a
 * replacement of an existing service. */
static void test_bits_failed_update(void)
{
	__u32 n = 2 * SLUICE_MAX_SERVICES - 2, before; /* A's service and marker exist */
	struct sluice_svc_key *keys = calloc(n, sizeof(*keys));
	struct sluice_svc *vals = calloc(n, sizeof(*vals));
	struct sluice *s = lib__open(NULL);

	if (!s || !ASSERT_TRUE(keys && vals, "alloc") || !distinct_bits() ||
	    set(s, VA, 80, IPPROTO_TCP))
		goto out;
	for (__u32 i = 0; i < n; i++) {
		keys[i].addr[0] = htonl(0x0b000000 + i);
		keys[i].proto = IPPROTO_UDP;
		keys[i].family = SLUICE_AF_INET;
		vals[i].flags = SLUICE_SVC_F_VIP_MARKER;
	}
	if (!ASSERT_OK(bpf_map_update_batch(sluice__map_fd(s, "services"), keys, vals, &n, NULL),
		       "fill services"))
		goto out;
	before = nbits(s);
	ASSERT_FALSE(bit(s, VB), "B's bit clear before");
	ASSERT_NEQ(sluice__service_set(s,
				       &(struct sluice_service_spec){
					       .vip = VB,
					       .port = 80,
					       .proto = IPPROTO_TCP,
					       .nbackends = 0,
				       }),
		   0, "a service on a new address into a full map fails");
	ASSERT_FALSE(bit(s, VB), "B's bit cleared by the rollback");
	ASSERT_EQ(nbits(s), before, "the bits as they were");
	set(s, VA, 80, IPPROTO_TCP); /* replacing needs no new entry: still works */
out:
	free(keys);
	free(vals);
	sluice__close(s);
}

static bool bpffs__ensure(void)
{
	struct statfs st;

	if (!statfs("/sys/fs/bpf", &st) && st.f_type == BPF_FS_MAGIC)
		return true;
	return ASSERT_OK(mount("bpf", "/sys/fs/bpf", "bpf", 0, NULL) ? -errno : 0, "mount bpffs");
}

/* Pinned maps: the bits survive a reopen; all cleared beside filled
 * services (pins of a library without the filter) are filled at open; a
 * bit of an address without services, left by a crash, goes at the sweep. */
static void test_bits_reopen(void)
{
	struct sluice_addr stale = v4(0x0a6000ff);
	struct sluice_sweep sw;
	struct sluice *s = NULL;
	__u32 word, sb = sluice_addr_bit(stale.addr, stale.family);
	__u64 zero = 0, w = 0;
	char dir[64];
	int fd;

	if (!bpffs__ensure() || !distinct_bits())
		return;
	snprintf(dir, sizeof(dir), "/sys/fs/bpf/sluice-vipbits-%d", (int)getpid());
	if (!(s = lib__open(dir)) || set(s, VA, 80, IPPROTO_TCP) || set(s, VC, 80, IPPROTO_TCP))
		goto out;
	sluice__close(s);
	if (!(s = lib__open(dir)))
		goto out;
	ASSERT_TRUE(bit(s, VA) && bit(s, VC), "bits after a reopen");
	fd = sluice__map_fd(s, "service_addr_bits");
	for (word = 0; word < SLUICE_ADDR_BITS_WORDS; word++)
		bpf_map_update_elem(fd, &word, &zero, BPF_ANY);
	ASSERT_EQ(nbits(s), 0, "every bit cleared (as pins of an older library)");
	sluice__close(s);
	if (!(s = lib__open(dir)))
		goto out;
	ASSERT_TRUE(bit(s, VA) && bit(s, VC), "filled at open");
	ASSERT_EQ(nbits(s), 2, "only the services' bits");
	/* a stale bit (a crash after the set, before the service was written) */
	ASSERT_TRUE(sb != sluice_addr_bit(VA.addr, VA.family) &&
			    sb != sluice_addr_bit(VC.addr, VC.family),
		    "the stale address hashes apart");
	fd = sluice__map_fd(s, "service_addr_bits");
	word = sb / 64;
	bpf_map_lookup_elem(fd, &word, &w);
	w |= 1ULL << (sb % 64);
	bpf_map_update_elem(fd, &word, &w, BPF_ANY);
	ASSERT_TRUE(bit(s, stale), "stale bit set");
	ASSERT_OK(sluice__sweep(s, &sw), "sweep");
	ASSERT_FALSE(bit(s, stale), "the sweep clears the stale bit");
	ASSERT_TRUE(bit(s, VA) && bit(s, VC), "and keeps the services' bits");
out:
	sluice__close(s);
	ASSERT_OK(sluice__unpin(dir), "unpin");
}

static const struct test tests[] = {
	TEST(test_bits_follow_services), TEST(test_bits_del_many), TEST(test_bits_refused_update),
	TEST(test_bits_failed_update),   TEST(test_bits_reopen),
};

int main(int argc, char **argv)
{
	if (!test__have_root("vip_bits", "loads BPF"))
		return 0;
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("vip_bits", tests, ARRAY_SIZE(tests), argc, argv);
}
