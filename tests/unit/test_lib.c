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

/* The size of svc_id's Maglev table (through maglev_ids), 0: none. */
static __u32 table_m(struct sluice *s, __u32 svc_id)
{
	struct bpf_map_info info = {};
	__u32 id = 0, len = sizeof(info);
	int fd;

	if (bpf_map_lookup_elem(sluice__map_fd(s, "maglev_ids"), &svc_id, &id) || !id)
		return 0;
	fd = bpf_map_get_fd_by_id(id);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.max_entries = 0;
	close(fd);
	return info.max_entries ? 2 * info.max_entries - 1 : 0;
}

/* Pins of layout 3 (#16): a `maglev` whose template lacks BPF_F_INNER_MAP
 * takes only SLUICE_MAGLEV_M-slot tables without the flag. The library
 * finds that out at open and makes those (no upgrade breaks a flow); on
 * fresh pins the same service gets a table sized by need. */
static void test_pin_layout3_maglev(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, iopts, .map_flags = BPF_F_MMAPABLE);
	LIBBPF_OPTS(bpf_map_create_opts, oopts);
	struct sluice_backend_spec b[3] = {};
	struct sluice_service_spec spec = { .port = 80, .proto = IPPROTO_TCP };
	struct sluice_service_info *info = calloc(1, sizeof(*info));
	struct sluice *s = NULL;
	char dir[64] = "", path[128];
	struct sluice_opts opts = { .pin_dir = dir };
	int inner, outer = -1;

	if (!info || !bpffs__ensure())
		goto out;
	spec.vip.family = SLUICE_AF_INET;
	spec.vip.addr[0] = htonl(0x0a600001);
	spec.backends = b;
	spec.nbackends = 3;
	for (int i = 0; i < 3; i++) {
		b[i].addr.family = SLUICE_AF_INET;
		b[i].addr.addr[0] = htonl(0x0a000101 + i);
		b[i].port = 8080;
		b[i].weight = 1;
	}
	snprintf(dir, sizeof(dir), "/sys/fs/bpf/sluice-test-l3-%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/maglev", dir);
	if (!ASSERT_OK(mkdir(dir, 0700), "pin dir"))
		goto out;
	/* the outer map as layout 3 made it */
	inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "tmpl", sizeof(__u32),
			       sizeof(struct sluice_maglev_pair), SLUICE_MAGLEV_ELEMS, &iopts);
	oopts.inner_map_fd = inner;
	if (inner >= 0)
		outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "maglev", sizeof(__u32),
				       sizeof(__u32), SLUICE_MAX_SERVICES, &oopts);
	if (inner >= 0)
		close(inner);
	if (!ASSERT_GE(outer, 0, "layout-3 maglev") ||
	    !ASSERT_OK(bpf_obj_pin(outer, path), "pin it")) {
		if (outer >= 0)
			close(outer);
		goto out;
	}
	close(outer);
	if (!ASSERT_OK(sluice__open(&s, &opts), "open over layout-3 maglev")) {
		fprintf(stderr, "    %s\n", sluice__errmsg());
		goto out;
	}
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set 3 backends")) {
		fprintf(stderr, "    %s\n", sluice__errmsg());
		goto out;
	}
	ASSERT_OK(sluice__service_get(s, &spec.vip, 80, IPPROTO_TCP, info), "get");
	ASSERT_EQ(table_m(s, info->svc.svc_id), SLUICE_MAGLEV_M, "layout 3: 16381 slots");
	sluice__close(s);
	s = NULL;
	sluice__unpin(dir);
	/* fresh pins: sized by need */
	if (!ASSERT_OK(sluice__open(&s, &opts), "open fresh") ||
	    !ASSERT_OK(sluice__service_set(s, &spec), "set 3 backends on fresh pins"))
		goto out;
	ASSERT_OK(sluice__service_get(s, &spec.vip, 80, IPPROTO_TCP, info), "get");
	ASSERT_EQ(table_m(s, info->svc.svc_id), SLUICE_MAGLEV_M_MIN, "fresh: 1021 slots");
out:
	sluice__close(s);
	if (dir[0]) {
		sluice__unpin(dir);
		rmdir(dir);
	}
	free(info);
}

static const struct test tests[] = {
	TEST(test_open),
	TEST(test_pin_reuse),
	TEST(test_pin_layout3_maglev),
	TEST(test_pin_not_bpffs),
	TEST(test_attach_private_netns),
};

int main(int argc, char **argv)
{
	if (!test__have_root("lib", "loads BPF"))
		return 0;
	return test__run_all("lib", tests, ARRAY_SIZE(tests), argc, argv);
}
