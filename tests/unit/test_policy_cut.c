// SPDX-License-Identifier: MIT
/*
 * test_policy_cut.c - a policy change cuts the TCP sockets of other network
 * namespaces (#15, user/lib/svc/policy_cut_netns.c).
 *
 * Contract: the test runs in a private network namespace and a child cgroup
 * of the cgroup2 mount it creates (sluice-test-pcut.<pid>, removed at exit).
 * Each of N children (SLUICE_TEST_NETNS, default 4, at most 512) joins the
 * cgroup, enters its own network namespace and holds a TCP connection from
 * 127.0.0.5 to a service's backend 127.0.0.1:PORT there, as a pod's socket
 * that the socket LB connected; it exits 0 when its socket was destroyed
 * (ECONNABORTED), 1 when it was not. Checks: no scope, nothing is cut (the
 * behaviour before the netns walk); a scope bounded to N-1 namespaces cuts
 * N-1 and counts one skipped; an unbounded one cuts the last; a scope that
 * does not exist cuts nothing and fails nothing. Prints the time of a cut
 * over N namespaces. Needs root.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lb_load.h"
#include "sluice.h"
#include "test.h"

#define PORT 40123
#define MAX_KIDS 512

static char cgroup[512];
static pid_t kids[MAX_KIDS];
static int nkids, go_w = -1;

static bool setup_cgroup(void)
{
	char line[1024], dev[256], mnt[512], type[64];
	FILE *f = fopen("/proc/mounts", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %511s %63s", dev, mnt, type) == 3 &&
		    !strcmp(type, "cgroup2")) {
			snprintf(cgroup, sizeof(cgroup), "%.400s/sluice-test-pcut.%d", mnt,
				 getpid());
			break;
		}
	}
	if (f)
		fclose(f);
	return cgroup[0] && !mkdir(cgroup, 0755);
}

static void kids_stop(void)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
	nkids = 0;
}

static void cleanup(void)
{
	kids_stop();
	if (cgroup[0])
		rmdir(cgroup);
}

static bool lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	bool ok = fd >= 0 && !ioctl(fd, SIOCGIFFLAGS, &ifr);

	ifr.ifr_flags |= IFF_UP;
	ok = ok && !ioctl(fd, SIOCSIFFLAGS, &ifr);
	if (fd >= 0)
		close(fd);
	return ok;
}

/* A pod: its own netns, a connection 127.0.0.5 -> 127.0.0.1:PORT. */
static int kid_main(int ready_w, int go_r)
{
	struct sockaddr_in be = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	struct sockaddr_in src = { .sin_family = AF_INET };
	char path[600], c;
	int fd, lfd, cfd, one = 1;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, "0", 1) != 1 || unshare(CLONE_NEWNET) || !lo_up())
		return 2;
	close(fd);
	inet_pton(AF_INET, "127.0.0.1", &be.sin_addr);
	inet_pton(AF_INET, "127.0.0.5", &src.sin_addr);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&be, sizeof(be)) || listen(lfd, 1) ||
	    bind(cfd, (struct sockaddr *)&src, sizeof(src)) ||
	    connect(cfd, (struct sockaddr *)&be, sizeof(be)) || accept(lfd, NULL, NULL) < 0)
		return 3;
	if (write(ready_w, "r", 1) != 1)
		return 4;
	if (read(go_r, &c, 1) < 0) /* EOF: the parent closed its end */
		return 5;
	return recv(cfd, &c, 1, MSG_DONTWAIT) < 0 && errno == ECONNABORTED ? 0 : 1;
}

static bool kids_start(int n)
{
	int ready[2], go[2];
	char c;

	if (pipe(ready) || pipe(go))
		return false;
	for (nkids = 0; nkids < n; nkids++) {
		fflush(NULL);
		kids[nkids] = fork();
		if (kids[nkids] == 0) {
			close(ready[0]);
			close(go[1]);
			_exit(kid_main(ready[1], go[0]));
		}
		if (kids[nkids] < 0)
			break;
	}
	close(ready[1]);
	close(go[0]);
	go_w = go[1];
	for (int i = 0; i < nkids; i++)
		if (read(ready[0], &c, 1) != 1)
			break;
		else if (i == nkids - 1) {
			close(ready[0]);
			return nkids == n;
		}
	close(ready[0]);
	return false;
}

/* Lets the children check their sockets: how many were destroyed. */
static int kids_cut(void)
{
	int status, cut = 0;

	close(go_w);
	go_w = -1;
	for (int i = 0; i < nkids; i++) {
		if (waitpid(kids[i], &status, 0) == kids[i] && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			cut++;
		kids[i] = 0;
	}
	nkids = 0;
	return cut;
}

static int svc_deny5(struct sluice *s, bool deny)
{
	struct sluice_backend_spec b = { .port = PORT, .weight = 1 };
	struct sluice_service_spec spec = {
		.port = 80, .proto = IPPROTO_TCP, .nbackends = 1, .backends = &b
	};
	struct sluice_policy_rule rule;

	sluice_addr__parse(&spec.vip, "10.96.0.9");
	sluice_addr__parse(&b.addr, "127.0.0.1");
	if (deny) {
		sluice_policy_rule__parse(&rule, "127.0.0.5/32");
		spec.deny = &rule;
		spec.ndeny = 1;
	}
	return sluice__service_set(s, &spec);
}

static int env_kids(void)
{
	const char *e = getenv("SLUICE_TEST_NETNS");
	int n = e ? atoi(e) : 4;

	return n < 2 ? 2 : n > MAX_KIDS ? MAX_KIDS : n;
}

static void test_netns_cut(void)
{
	struct sluice_policy_cut_totals t;
	struct sluice_opts opts = {};
	struct sluice *s = NULL;
	__u64 flows, socks;
	int sock_err, n = env_kids();

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		return;
	if (!ASSERT_OK(svc_deny5(s, false), "service, no rules") ||
	    !ASSERT_TRUE(kids_start(n), "children connected in their own netns"))
		goto out;
	ASSERT_OK(svc_deny5(s, true), "deny 127.0.0.5/32");

	/* before the walk: sock_diag of this netns only */
	ASSERT_OK(sluice__policy_cut(s, &flows, &socks, &sock_err), "cut without a scope");
	ASSERT_EQ(socks, 0, "no scope: nothing of other netns destroyed");

	ASSERT_OK(sluice__policy_cut_scope(s, "/nonexistent/cgroup", 0, 0), "missing scope");
	ASSERT_OK(sluice__policy_cut(s, &flows, &socks, &sock_err), "cut, missing scope");
	sluice__policy_cut_totals(s, &t);
	ASSERT_EQ(socks, 0, "missing scope: nothing destroyed");
	ASSERT_EQ(t.netns + t.netns_failed + t.netns_skipped, 0, "missing scope: no netns");

	ASSERT_OK(sluice__policy_cut_scope(s, cgroup, n - 1, 60000), "scope, n - 1 netns");
	ASSERT_OK(sluice__policy_cut(s, &flows, &socks, &sock_err), "cut, bounded");
	sluice__policy_cut_totals(s, &t);
	ASSERT_EQ(socks, n - 1, "bounded: n - 1 sockets destroyed");
	ASSERT_EQ(t.netns, n - 1, "bounded: n - 1 netns entered");
	ASSERT_EQ(t.netns_skipped, 1, "bounded: one netns skipped");
	ASSERT_EQ(t.netns_failed, 0, "no netns failed");
	ASSERT_EQ(t.last_netns, n - 1, "last cut entered n - 1");

	/* a generous budget: the time of n namespaces is measured, not cut short */
	ASSERT_OK(sluice__policy_cut_scope(s, cgroup, 0, 60000), "scope, default count bound");
	ASSERT_OK(sluice__policy_cut(s, &flows, &socks, &sock_err), "cut, unbounded");
	sluice__policy_cut_totals(s, &t);
	ASSERT_EQ(socks, 1, "the skipped netns' socket destroyed now");
	ASSERT_EQ(t.netns, 2 * n - 1, "n more netns entered");
	ASSERT_EQ(t.socks, n, "totals: n sockets");
	ASSERT_EQ(t.netns_failed, 0, "still no netns failed");
	printf("    a cut over %d network namespaces took %llu us\n", n,
	       (unsigned long long)t.last_netns_us);
	ASSERT_EQ(kids_cut(), n, "every child saw ECONNABORTED");
out:
	kids_stop();
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_netns_cut),
};

int main(int argc, char **argv)
{
	if (!test__have_root("policy_cut", "enters network namespaces"))
		return 0;
	if (unshare(CLONE_NEWNET) || !lo_up()) {
		printf("FAIL: policy_cut/setup (private network namespace: %s)\n", strerror(errno));
		return 1;
	}
	if (!setup_cgroup()) {
		printf("FAIL: policy_cut/setup (no cgroup2 mount or cannot create %s)\n", cgroup);
		return 1;
	}
	atexit(cleanup);
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("policy_cut", tests, ARRAY_SIZE(tests), argc, argv);
}
