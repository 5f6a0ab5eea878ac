// SPDX-License-Identifier: MIT
/*
 * test_lib.c - the library's loader against the real datapath object (run
 * as root): open without pins, map and program lookup, pin reuse across
 * handles (state written through one is seen by the other), unpin, and
 * XDP/tc attach/detach on the loopback of a private network namespace.
 * Service management is in test_service.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sluice.h"
#include "test.h"

#define M SLUICE_MAGLEV_M

static struct sluice *lib__open(void)
{
	struct sluice_opts opts = {};
	struct sluice *s = NULL;
	int err;

	err = sluice__open(&s, &opts);
	if (!ASSERT_OK(err, "sluice__open"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	return err ? NULL : s;
}

static void test_open(void)
{
	struct sluice *s = lib__open();
	__u64 cnt[SLUICE_CNT__MAX], drops[SLUICE_DROP__MAX], ct = 1;

	if (!s)
		return;
	ASSERT_GE(sluice__prog_fd(s, SLUICE_PROG_XDP), 0, "xdp prog fd");
	ASSERT_GE(sluice__prog_fd(s, SLUICE_PROG_TC), 0, "tc prog fd");
	ASSERT_GE(sluice__map_fd(s, "conntrack"), 0, "conntrack fd");
	ASSERT_EQ(sluice__map_fd(s, "nosuchmap"), -ENOENT, "unknown map");
	ASSERT_TRUE(strstr(sluice__errmsg(), "nosuchmap") != NULL, "message names the map");
	ASSERT_OK(sluice__counters(s, cnt), "counters");
	ASSERT_OK(sluice__drops(s, drops), "drops");
	for (int i = 0; i < SLUICE_CNT__MAX; i++)
		ASSERT_EQ(cnt[i], 0, sluice__counter_name(i));
	ASSERT_OK(sluice__ct_count(s, &ct), "ct_count");
	ASSERT_EQ(ct, 0, "conntrack entries");
	sluice__close(s);
}

/* Every slot names the id the library gave spec backend table[i]. */
static bool bpffs__ensure(void)
{
	struct statfs st;

	if (!statfs("/sys/fs/bpf", &st) && st.f_type == BPF_FS_MAGIC)
		return true;
	return ASSERT_OK(mount("bpf", "/sys/fs/bpf", "bpf", 0, NULL) ? -errno : 0, "mount bpffs");
}

static void test_pin_reuse(void)
{
	struct sluice_ct_key key = { .saddr = { htonl(0xc0a80001) },
				     .daddr = { htonl(0x0a600001) },
				     .sport = htons(40000),
				     .dport = htons(80),
				     .proto = IPPROTO_TCP,
				     .family = SLUICE_AF_INET };
	struct sluice_ct_entry ent = { .addr = { htonl(0x0a000101) },
				       .port = htons(8080),
				       .backend_id = 1,
				       .svc_id = 1 },
			       got = {};
	struct sluice *s1 = NULL, *s2 = NULL;
	char dir[64], path[128];
	struct sluice_opts opts = { .pin_dir = dir };
	struct stat st;
	__u64 n = 0;

	if (!bpffs__ensure())
		return;
	snprintf(dir, sizeof(dir), "/sys/fs/bpf/sluice-test-%d", (int)getpid());
	if (!ASSERT_OK(sluice__open(&s1, &opts), "open 1")) {
		fprintf(stderr, "    %s\n", sluice__errmsg());
		goto out;
	}
	snprintf(path, sizeof(path), "%s/conntrack", dir);
	ASSERT_OK(stat(path, &st), "conntrack pinned");
	ASSERT_OK(bpf_map_update_elem(sluice__map_fd(s1, "conntrack"), &key, &ent, BPF_NOEXIST),
		  "ct write via handle 1");
	if (!ASSERT_OK(sluice__open(&s2, &opts), "open 2 (reuse)")) {
		fprintf(stderr, "    %s\n", sluice__errmsg());
		goto out;
	}
	ASSERT_OK(bpf_map_lookup_elem(sluice__map_fd(s2, "conntrack"), &key, &got),
		  "ct read via handle 2");
	ASSERT_MEM_EQ(&got, &ent, sizeof(got), "ct entry");
	ASSERT_OK(sluice__ct_count(s2, &n), "ct_count");
	ASSERT_EQ(n, 1, "ct entries seen by handle 2");
out:
	sluice__close(s1);
	sluice__close(s2);
	ASSERT_OK(sluice__unpin(dir), "unpin");
	ASSERT_EQ(stat(dir, &st), -1, "pin dir removed");
	ASSERT_OK(sluice__unpin(dir), "unpin twice is fine");
}

static void test_pin_not_bpffs(void)
{
	struct sluice_opts opts = { .pin_dir = "/tmp" };
	struct sluice *s = NULL;

	ASSERT_EQ(sluice__open(&s, &opts), -EINVAL, "pin dir on tmpfs");
	ASSERT_TRUE(strstr(sluice__errmsg(), "not on a BPF filesystem") != NULL, "message");
}

/* Runs in a child inside a fresh netns: its lo is ours to attach to. */
static int attach__child(struct sluice *s)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = 1, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, topts, .handle = 1, .priority = 1);
	__u32 id = 0;

	if (!ASSERT_OK(unshare(CLONE_NEWNET) ? -errno : 0, "unshare netns"))
		return 1;
	ASSERT_OK(sluice__attach_xdp(s, 1, XDP_FLAGS_SKB_MODE), "attach xdp");
	ASSERT_OK(bpf_xdp_query_id(1, XDP_FLAGS_SKB_MODE, &id), "query xdp");
	ASSERT_NEQ(id, 0, "xdp attached");
	ASSERT_OK(sluice__attach_xdp(s, 1, XDP_FLAGS_SKB_MODE), "attach xdp again replaces");
	ASSERT_OK(sluice__detach_xdp(1, XDP_FLAGS_SKB_MODE), "detach xdp");
	ASSERT_OK(bpf_xdp_query_id(1, XDP_FLAGS_SKB_MODE, &id), "query xdp");
	ASSERT_EQ(id, 0, "xdp detached");
	ASSERT_OK(sluice__attach_tc(s, 1), "attach tc");
	ASSERT_OK(sluice__attach_tc(s, 1), "attach tc again replaces");
	ASSERT_OK(bpf_tc_query(&hook, &topts), "query tc");
	ASSERT_NEQ(topts.prog_id, 0, "tc attached");
	ASSERT_OK(sluice__detach_tc(1), "detach tc");
	ASSERT_EQ(sluice__detach_tc(1), -ENOENT, "detach tc twice");
	ASSERT_TRUE(strstr(sluice__errmsg(), "lo (ifindex 1)") != NULL, "message names the device");
	ASSERT_NEQ(sluice__attach_xdp(s, 9999, 0), 0, "attach to a missing device");
	return test__failed;
}

static void test_attach_private_netns(void)
{
	struct sluice *s = lib__open();
	int status = -1;
	pid_t pid;

	if (!s)
		return;
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(attach__child(s));
	if (ASSERT_GE(pid, 0, "fork"))
		waitpid(pid, &status, 0);
	ASSERT_EQ(status, 0, "child status");
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_open),
	TEST(test_pin_reuse),
	TEST(test_pin_not_bpffs),
	TEST(test_attach_private_netns),
};

int main(int argc, char **argv)
{
	if (!test__have_root("lib", "loads BPF"))
		return 0;
	return test__run_all("lib", tests, ARRAY_SIZE(tests), argc, argv);
}
