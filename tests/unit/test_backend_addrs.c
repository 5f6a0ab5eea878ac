// SPDX-License-Identifier: MIT
/*
 * test_backend_addrs.c - the reply filter's counts (#17, backend_addrs)
 * against the real datapath object (run as root): one count per backends
 * entry with the address, across services, ports and families; removed
 * backends counted until their deferred delete is flushed; addresses at 0
 * lingering while a conntrack or ct_new entry names them; the counts kept
 * across a reopen of pinned maps (a meshd restart), repaired by the
 * handle's recount, and filled at open when the map is empty.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include <bpf/bpf.h>

#include "lb_load.h"
#include "sluice.h"
#include "test.h"

#define VIP_A 0x0a600001 /* 10.96.0.1 */
#define VIP_B 0x0a600002
#define X 0x0a000101 /* 10.0.1.1 */
#define Y 0x0a000102
#define Z 0x0a000103
#define W 0x0a000104

static struct sluice_addr v4(__u32 host)
{
	return (struct sluice_addr){ .family = SLUICE_AF_INET, .addr = { htonl(host) } };
}

static struct sluice_addr v6(__u32 last)
{
	return (struct sluice_addr){ .family = SLUICE_AF_INET6,
				     .addr = { htonl(0xfd000000), 0, 0, htonl(last) } };
}

static struct sluice_backend_spec be(struct sluice_addr a, __u16 port)
{
	return (struct sluice_backend_spec){ .addr = a, .port = port, .weight = 1 };
}

static int set_vip(struct sluice *s, struct sluice_addr vip, struct sluice_backend_spec *b, __u32 n)
{
	struct sluice_service_spec spec = {
		.vip = vip, .port = 80, .proto = IPPROTO_TCP, .nbackends = n, .backends = b
	};
	int err = sluice__service_set(s, &spec);

	if (!ASSERT_OK(err, "service_set"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	return err;
}

static int set(struct sluice *s, __u32 vip, struct sluice_backend_spec *b, __u32 n)
{
	return set_vip(s, v4(vip), b, n);
}

/* refs of a, -1 when it is not in the map at all */
static long refs(struct sluice *s, struct sluice_addr a)
{
	bool present;
	__u32 n = sluice__backend_addr_refs(s, &a, &present);

	return present ? (long)n : -1;
}

/* Whether a's bit is set in backend_addr_bits, what the datapath reads. */
static bool bit(struct sluice *s, struct sluice_addr a)
{
	__u32 b = sluice_addr_bit(a.addr, a.family), word = b / 64;
	__u64 w = 0;

	bpf_map_lookup_elem(sluice__map_fd(s, "backend_addr_bits"), &word, &w);
	return w & (1ULL << (b % 64));
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

/* One count per backends entry: two ports of X in A, one in B. */
static void test_refcount(void)
{
	struct sluice_backend_spec a[3] = { be(v4(X), 8080), be(v4(X), 8081), be(v4(Y), 8080) };
	struct sluice_backend_spec b = be(v4(X), 9090), c = be(v6(1), 9090);
	struct sluice_backend_spec a2[2] = { be(v4(Y), 8080), be(v4(Z), 8080) };
	struct sluice *s = lib__open(NULL);
	struct sluice_addr vb = v4(VIP_B), vc = v6(0x100);
	__u32 removed;

	if (!s)
		return;
	ASSERT_EQ(refs(s, v4(X)), -1, "X before");
	if (set(s, VIP_A, a, 3) || set(s, VIP_B, &b, 1) || set_vip(s, vc, &c, 1))
		goto out;
	ASSERT_EQ(refs(s, v4(X)), 3, "X: two ports in A, one in B");
	ASSERT_EQ(refs(s, v4(Y)), 1, "Y");
	ASSERT_EQ(refs(s, v6(1)), 1, "IPv6 backend");
	ASSERT_EQ(refs(s, v4(VIP_A)), -1, "a VIP is no backend");
	ASSERT_TRUE(bit(s, v4(X)) && bit(s, v4(Y)) && bit(s, v6(1)), "bits set");
	ASSERT_FALSE(bit(s, v4(VIP_A)), "no bit for the VIP");
	/* an unchanged set changes no count */
	if (set(s, VIP_A, a, 3))
		goto out;
	ASSERT_EQ(refs(s, v4(X)), 3, "X after a no-op set");
	/* X leaves A: counted until the deferred delete is flushed */
	if (set(s, VIP_A, a2, 2))
		goto out;
	ASSERT_EQ(refs(s, v4(X)), 3, "X until the flush");
	ASSERT_EQ(refs(s, v4(Z)), 1, "Z added");
	ASSERT_EQ(sluice__flush_deferred(s), 2, "two deletes flushed");
	ASSERT_EQ(refs(s, v4(X)), 1, "X after the flush: B's");
	ASSERT_EQ(refs(s, v4(Y)), 1, "Y kept");
	/* service delete: its addresses linger at 0, then the sweep */
	if (!ASSERT_OK(sluice__service_del(s, &vb, 80, IPPROTO_TCP), "delete B") ||
	    !ASSERT_OK(sluice__service_del(s, &vc, 80, IPPROTO_TCP), "delete C"))
		goto out;
	ASSERT_EQ(refs(s, v4(X)), 0, "X lingers at 0");
	ASSERT_EQ(refs(s, v6(1)), 0, "IPv6 lingers at 0");
	ASSERT_OK(sluice__backend_addrs_sweep(s, &removed), "sweep");
	ASSERT_EQ(removed, 2, "both swept (no flows)");
	ASSERT_EQ(refs(s, v4(X)), -1, "X gone");
	ASSERT_EQ(refs(s, v4(Y)), 1, "Y untouched by the sweep");
	ASSERT_FALSE(bit(s, v4(X)) || bit(s, v6(1)), "swept addresses' bits cleared");
	ASSERT_TRUE(bit(s, v4(Y)) && bit(s, v4(Z)), "the others' bits kept");
	/* back again: counted from 0 */
	if (set(s, VIP_A, a, 3))
		goto out;
	ASSERT_EQ(refs(s, v4(X)), 2, "X back in A");
	ASSERT_EQ(refs(s, v4(Z)), 1, "Z until the flush");
out:
	sluice__close(s);
}

static bool ct_put(struct sluice *s, const char *map, enum sluice_ct_dir dir, __u32 key_src,
		   __u32 val_addr, struct sluice_ct_key *k)
{
	struct sluice_ct_entry e = { .addr = { htonl(val_addr) }, .port = htons(8080) };

	*k = (struct sluice_ct_key){ .saddr = { htonl(key_src) },
				     .daddr = { htonl(0xc0a80001) },
				     .sport = htons(40000),
				     .dport = htons(80),
				     .proto = IPPROTO_TCP,
				     .family = SLUICE_AF_INET,
				     .dir = dir };
	return ASSERT_OK(bpf_map_update_elem(sluice__map_fd(s, map), k, &e, BPF_ANY), map);
}

/* A lingering address stays while any conntrack entry names it: a FWD
 * entry by its value (the backend), a REPLY entry by its key's source. */
static void test_linger(void)
{
	struct sluice_backend_spec w = be(v4(W), 8080), y = be(v4(Y), 8080);
	struct sluice *s = lib__open(NULL);
	struct sluice_ct_key k;
	__u32 removed;

	if (!s)
		return;
	if (set(s, VIP_A, &w, 1) || set(s, VIP_A, &y, 1))
		goto out;
	sluice__flush_deferred(s);
	ASSERT_EQ(refs(s, v4(W)), 0, "W lingers");
	if (!ct_put(s, "conntrack", SLUICE_CT_FWD, 0x0a0a0a0a, W, &k))
		goto out;
	ASSERT_OK(sluice__backend_addrs_sweep(s, &removed), "sweep, FWD entry");
	ASSERT_EQ(removed, 0, "kept: a confirmed flow goes to W");
	bpf_map_delete_elem(sluice__map_fd(s, "conntrack"), &k);
	if (!ct_put(s, "ct_new", SLUICE_CT_REPLY, W, 0x0a600001, &k))
		goto out;
	ASSERT_OK(sluice__backend_addrs_sweep(s, &removed), "sweep, REPLY entry");
	ASSERT_EQ(removed, 0, "kept: an unconfirmed flow's reply comes from W");
	bpf_map_delete_elem(sluice__map_fd(s, "ct_new"), &k);
	ASSERT_OK(sluice__backend_addrs_sweep(s, &removed), "sweep, no flow");
	ASSERT_EQ(removed, 1, "W swept");
	ASSERT_EQ(refs(s, v4(W)), -1, "W gone");
	ASSERT_EQ(refs(s, v4(Y)), 1, "Y kept");
out:
	sluice__close(s);
}

static bool bpffs__ensure(void)
{
	struct statfs st;

	if (!statfs("/sys/fs/bpf", &st) && st.f_type == BPF_FS_MAGIC)
		return true;
	return ASSERT_OK(mount("bpf", "/sys/fs/bpf", "bpf", 0, NULL) ? -errno : 0, "mount bpffs");
}

/* Pinned maps (a meshd restart): the counts survive a reopen; wrong ones
 * are repaired by the next handle's first change; an empty filter beside
 * a filled backends map (pins of an older library) is filled at open. */
static void test_restart(void)
{
	struct sluice_backend_spec a[2] = { be(v4(X), 8080), be(v4(Y), 8080) };
	struct sluice_backend_addr_key kx = { .addr = { htonl(X) }, .family = SLUICE_AF_INET };
	struct sluice_backend_addr_key ky = { .addr = { htonl(Y) }, .family = SLUICE_AF_INET };
	struct sluice_backend_addr_key kstale = { .addr = { htonl(W) }, .family = SLUICE_AF_INET };
	struct sluice *s = NULL;
	char dir[64];
	__u32 five = 5;
	int fd;

	if (!bpffs__ensure())
		return;
	snprintf(dir, sizeof(dir), "/sys/fs/bpf/sluice-addrs-%d", (int)getpid());
	if (!(s = lib__open(dir)) || set(s, VIP_A, a, 2))
		goto out;
	sluice__close(s);
	if (!(s = lib__open(dir)))
		goto out;
	ASSERT_EQ(refs(s, v4(X)), 1, "X after a reopen");
	ASSERT_EQ(refs(s, v4(Y)), 1, "Y after a reopen");
	/* drift, as a crash between two writes could leave it */
	fd = sluice__map_fd(s, "backend_addrs");
	bpf_map_update_elem(fd, &kx, &five, BPF_ANY);
	bpf_map_delete_elem(fd, &ky);
	bpf_map_update_elem(fd, &kstale, &five, BPF_ANY);
	sluice__close(s);
	if (!(s = lib__open(dir)) || set(s, VIP_A, a, 2))
		goto out;
	ASSERT_EQ(refs(s, v4(X)), 1, "X recounted");
	ASSERT_EQ(refs(s, v4(Y)), 1, "Y recounted");
	ASSERT_EQ(refs(s, v4(W)), 0, "an address without backends lingers at 0");
	/* the recount's bits are the map's keys: the lingering one's too */
	ASSERT_TRUE(bit(s, v4(X)) && bit(s, v4(Y)), "bits after the recount");
	ASSERT_TRUE(bit(s, v4(W)), "a lingering address keeps its bit");
	/* an empty filter beside filled backends: filled at open */
	fd = sluice__map_fd(s, "backend_addrs");
	bpf_map_delete_elem(fd, &kx);
	bpf_map_delete_elem(fd, &ky);
	bpf_map_delete_elem(fd, &kstale);
	sluice__close(s);
	if (!(s = lib__open(dir)))
		goto out;
	ASSERT_EQ(refs(s, v4(X)), 1, "X filled at open");
	ASSERT_EQ(refs(s, v4(Y)), 1, "Y filled at open");
	ASSERT_TRUE(bit(s, v4(X)) && bit(s, v4(Y)), "bits after a reopen");
	ASSERT_FALSE(bit(s, v4(W)), "the stale address's bit cleared by the recount");
out:
	sluice__close(s);
	ASSERT_OK(sluice__unpin(dir), "unpin");
}

static const struct test tests[] = {
	TEST(test_refcount),
	TEST(test_linger),
	TEST(test_restart),
};

int main(int argc, char **argv)
{
	if (!test__have_root("backend_addrs", "loads BPF"))
		return 0;
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("backend_addrs", tests, ARRAY_SIZE(tests), argc, argv);
}
