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
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

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

/* The service 10.96.0.9:80/tcp -> 127.0.0.1:PORT, denying @deny (NULL:
 * no rules). */
static int svc_rules(struct sluice *s, const char *deny)
{
	struct sluice_backend_spec b = { .port = PORT, .weight = 1 };
	struct sluice_service_spec spec = {
		.port = 80, .proto = IPPROTO_TCP, .nbackends = 1, .backends = &b
	};
	struct sluice_policy_rule rule;

	sluice_addr__parse(&spec.vip, "10.96.0.9");
	sluice_addr__parse(&b.addr, "127.0.0.1");
	if (deny) {
		sluice_policy_rule__parse(&rule, deny);
		spec.deny = &rule;
		spec.ndeny = 1;
	}
	return sluice__service_set(s, &spec);
}

static int svc_deny5(struct sluice *s, bool deny)
{
	return svc_rules(s, deny ? "127.0.0.5/32" : NULL);
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

/* --- the worker (policy_cut_async.c) --- */

static __u64 now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000ull + (__u64)ts.tv_nsec / 1000;
}

/* A change the way desired__apply() makes it with a worker: the write
 * bracketed, the cut asked for. Returns how long the caller was held. */
static __u64 change(struct sluice *s, const char *deny)
{
	__u64 t0 = now_us();

	sluice__policy_cut_writing(s, true);
	ASSERT_OK(svc_rules(s, deny), deny ? deny : "no rules");
	sluice__policy_cut_request(s);
	sluice__policy_cut_writing(s, false);
	return now_us() - t0;
}

/* Polls the totals until the worker is in @state (60 s at most). */
static bool wait_state(struct sluice *s, enum sluice_cut_state state,
		       struct sluice_policy_cut_totals *t)
{
	for (int i = 0; i < 600000; i++) {
		sluice__policy_cut_totals(s, t);
		if (t->state == state)
			return true;
		usleep(100);
	}
	return false;
}

static __u32 svc_id(struct sluice *s)
{
	struct sluice_service_info *info = calloc(1, sizeof(*info));
	struct sluice_addr vip;
	__u32 id = ~0u;

	sluice_addr__parse(&vip, "10.96.0.9");
	if (info && !sluice__service_get(s, &vip, 80, IPPROTO_TCP, info))
		id = info->svc.svc_id;
	free(info);
	return id;
}

/* @n conntrack flows of the service from 10.@net.x.x, as the XDP/tc path
 * leaves them (FWD entries). */
static bool ct_fill(struct sluice *s, __u8 net, int n)
{
	struct sluice_ct_key k = { .proto = IPPROTO_TCP,
				   .family = SLUICE_AF_INET,
				   .dir = SLUICE_CT_FWD };
	struct sluice_ct_entry e = { .port = htons(PORT), .svc_id = svc_id(s) };
	int fd = sluice__map_fd(s, "conntrack");

	k.daddr[0] = htonl(0x0a600009); /* 10.96.0.9:80 */
	k.dport = htons(80);
	e.addr[0] = htonl(0x7f000001);
	for (int i = 0; i < n; i++) {
		k.saddr[0] = htonl(0x0a000000u | (__u32)net << 16 | (i & 0xffff));
		k.sport = htons(1024 + (i >> 16));
		if (fd < 0 || bpf_map_update_elem(fd, &k, &e, BPF_ANY))
			return false;
	}
	return true;
}

static __u64 ct_count(struct sluice *s)
{
	__u64 n = 0;

	sluice__ct_count(s, &n);
	return n;
}

/* A change is answered at once (the worker not started yet: the request
 * waits, as meshd's start-up needs); the cut then runs in the worker while
 * this thread keeps reading its progress, and cuts every namespace. */
static void test_async_cut(void)
{
	struct sluice_policy_cut_totals t;
	struct sluice_opts opts = {};
	struct sluice *s = NULL;
	int n = env_kids(), polls = 0, running = 0;
	__u64 held, t0, slowest = 0;

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		return;
	if (!ASSERT_OK(svc_deny5(s, false), "service, no rules") ||
	    !ASSERT_TRUE(kids_start(n), "children connected in their own netns") ||
	    !ASSERT_OK(sluice__policy_cut_async(s), "worker"))
		goto out;
	held = change(s, "127.0.0.5/32");
	usleep(100000); /* time for a worker that did not wait to run */
	sluice__policy_cut_totals(s, &t);
	ASSERT_EQ(t.state, SLUICE_CUT_PENDING, "before the start: pending");
	ASSERT_EQ(t.socks + t.runs, 0, "nothing cut before the worker starts");
	/* the scope set after the request, before the start: it is the one used */
	ASSERT_OK(sluice__policy_cut_scope(s, cgroup, 0, 60000), "scope");
	ASSERT_OK(sluice__policy_cut_start(s), "start");
	t0 = now_us();
	do {
		__u64 c0 = now_us();

		sluice__policy_cut_totals(s, &t);
		slowest = now_us() - c0 > slowest ? now_us() - c0 : slowest;
		polls++;
		running += t.state == SLUICE_CUT_RUNNING && t.run_netns < (__u32)n;
		usleep(200);
	} while (t.state != SLUICE_CUT_IDLE && now_us() - t0 < 60000000);
	ASSERT_EQ(t.state, SLUICE_CUT_IDLE, "the cut ended");
	ASSERT_GE(running, 1, "seen running, before the last namespace, from this thread");
	ASSERT_EQ(t.runs, 1, "one run");
	ASSERT_EQ(t.requests, 1, "one request");
	ASSERT_EQ(t.socks, n, "n sockets destroyed");
	ASSERT_EQ(t.last_socks, n, "... by the last run");
	ASSERT_EQ(t.netns, n, "n netns entered");
	ASSERT_EQ(t.netns_failed + t.netns_skipped, 0, "none failed or skipped");
	printf("    change answered in %llu us; the cut of %d namespaces ran %llu us in the "
	       "worker; %d reads of its progress meanwhile, %d while running, slowest %llu us\n",
	       (unsigned long long)held, n, (unsigned long long)t.last_run_us, polls, running,
	       (unsigned long long)slowest);
	ASSERT_EQ(kids_cut(), n, "every child saw ECONNABORTED");
out:
	kids_stop();
	sluice__close(s);
}

/* A second change while a cut runs: the run stops, the next one is the
 * final policy's. The first change denies nobody who is connected, the
 * second the children; 100k conntrack flows of another client make each
 * run long, and they stay (neither policy denies them). */
static void test_async_change_during_cut(void)
{
	struct sluice_policy_cut_totals t;
	struct sluice_opts opts = {};
	struct sluice *s = NULL;
	int n = env_kids();
	__u64 ct0;

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		return;
	if (!ASSERT_OK(svc_deny5(s, false), "service, no rules") ||
	    !ASSERT_TRUE(ct_fill(s, 1, 100000), "100k conntrack flows") ||
	    !ASSERT_TRUE(kids_start(n), "children connected in their own netns") ||
	    !ASSERT_OK(sluice__policy_cut_async(s), "worker") ||
	    !ASSERT_OK(sluice__policy_cut_scope(s, cgroup, 0, 60000), "scope") ||
	    !ASSERT_OK(sluice__policy_cut_start(s), "start"))
		goto out;
	ct0 = ct_count(s);
	change(s, "127.0.0.6/32");
	if (!ASSERT_TRUE(wait_state(s, SLUICE_CUT_RUNNING, &t), "first cut running"))
		goto out;
	change(s, "127.0.0.5/32");
	if (!ASSERT_TRUE(wait_state(s, SLUICE_CUT_IDLE, &t), "cuts done"))
		goto out;
	ASSERT_EQ(t.requests, 2, "two requests");
	ASSERT_EQ(t.restarts, 1, "the first run stopped by the second change");
	ASSERT_EQ(t.runs, 1, "one run completed: the final policy's");
	ASSERT_EQ(t.socks, n, "every child's socket destroyed");
	ASSERT_EQ(ct_count(s), ct0, "no conntrack flow of the other client removed");
	ASSERT_EQ(kids_cut(), n, "every child saw ECONNABORTED");
out:
	kids_stop();
	sluice__close(s);
}

/* Order: a run that took its verdicts under a policy must not delete by
 * them once a newer one is written. 100k flows of 10.2/16 are denied and
 * a cut begins; the deny is lifted while the run walks conntrack: what
 * was not removed when the lift began stays. */
static void test_async_order(void)
{
	struct sluice_policy_cut_totals t;
	struct sluice_opts opts = {};
	struct sluice *s = NULL;
	__u64 at_lift, ct0;

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		return;
	if (!ASSERT_OK(svc_rules(s, NULL), "service, no rules") ||
	    !ASSERT_TRUE(ct_fill(s, 2, 100000), "100k conntrack flows") ||
	    !ASSERT_OK(sluice__policy_cut_async(s), "worker") ||
	    !ASSERT_OK(sluice__policy_cut_start(s), "start"))
		goto out;
	ct0 = ct_count(s);
	change(s, "10.2.0.0/16");
	if (!ASSERT_TRUE(wait_state(s, SLUICE_CUT_RUNNING, &t), "cut running"))
		goto out;
	sluice__policy_cut_writing(s, true); /* the lift begins */
	at_lift = ct_count(s);
	ASSERT_OK(svc_rules(s, NULL), "deny lifted");
	sluice__policy_cut_request(s);
	sluice__policy_cut_writing(s, false);
	if (!ASSERT_TRUE(wait_state(s, SLUICE_CUT_IDLE, &t), "cuts done"))
		goto out;
	printf("    conntrack %llu, %llu when the lift began, %llu after\n",
	       (unsigned long long)ct0, (unsigned long long)at_lift,
	       (unsigned long long)ct_count(s));
	ASSERT_GE(at_lift, 1, "the lift came before the run removed everything");
	ASSERT_EQ(ct_count(s), at_lift, "nothing removed after the lift began");
	ASSERT_EQ(t.restarts, 1, "the stale run stopped");
	ASSERT_EQ(t.last_flows, 0, "the final run removed nothing");
out:
	sluice__close(s);
}

/* Hostile: more processes than the bound (300 sleepers, 100 read), more
 * namespaces than the time allows (a 1 ms budget): the walk stops and
 * says so in the counters. The /proc scope finds the children without a
 * cgroup. */
static void test_async_bounds(void)
{
	struct sluice_policy_cut_totals t;
	struct sluice_opts opts = {};
	struct sluice *s = NULL;
	pid_t sleepers[300] = {};
	char path[600];
	int n = env_kids();
	__u64 netns, truncated;

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		return;
	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	for (int i = 0; i < 300; i++) {
		sleepers[i] = fork();
		if (sleepers[i] == 0) {
			int fd = open(path, O_WRONLY);

			_exit(fd < 0 || write(fd, "0", 1) != 1 || pause());
		}
	}
	if (!ASSERT_OK(svc_deny5(s, false), "service, no rules") ||
	    !ASSERT_TRUE(kids_start(n), "children connected in their own netns") ||
	    !ASSERT_OK(sluice__policy_cut_async(s), "worker") ||
	    !ASSERT_OK(sluice__policy_cut_start(s), "start"))
		goto out;
	usleep(100000); /* the sleepers joined the cgroup */

	ASSERT_OK(sluice__policy_cut_scope(s, cgroup, 0, 60000), "scope");
	sluice__policy_cut_procs(s, false, 100);
	change(s, "127.0.0.6/32");
	ASSERT_TRUE(wait_state(s, SLUICE_CUT_IDLE, &t), "bounded by processes");
	ASSERT_EQ(t.scans_truncated, 1, "the process bound counted");
	ASSERT_LE(t.pids_scanned, 101, "at most the bound read");

	sluice__policy_cut_procs(s, false, 0);
	ASSERT_OK(sluice__policy_cut_scope(s, cgroup, 0, 1), "scope, 1 ms");
	truncated = t.scans_truncated;
	change(s, "127.0.0.7/32");
	ASSERT_TRUE(wait_state(s, SLUICE_CUT_IDLE, &t), "bounded by time");
	printf("    1 ms budget: %u of %d namespaces entered, %llu skipped, walk %s\n",
	       t.last_netns, n, (unsigned long long)t.netns_skipped,
	       t.scans_truncated > truncated ? "truncated" : "complete");
	ASSERT_LE(t.last_netns, n - 1, "not every namespace entered");
	/* the budget ends the walk of the processes, or the visits after it */
	ASSERT_GE(t.netns_skipped + t.scans_truncated - truncated, 1, "the time bound counted");
	netns = t.netns;

	/* every process: the children without a cgroup scope */
	ASSERT_OK(sluice__policy_cut_scope(s, NULL, 0, 60000), "no cgroup");
	sluice__policy_cut_procs(s, true, 0);
	change(s, "127.0.0.5/32");
	ASSERT_TRUE(wait_state(s, SLUICE_CUT_IDLE, &t), "every process");
	ASSERT_EQ(t.last_socks, n, "every child's socket destroyed through /proc");
	ASSERT_GE(t.netns - netns, n, "at least the children's namespaces entered");
	ASSERT_EQ(kids_cut(), n, "every child saw ECONNABORTED");
out:
	for (int i = 0; i < 300; i++)
		if (sleepers[i] > 0) {
			kill(sleepers[i], SIGKILL);
			waitpid(sleepers[i], NULL, 0);
		}
	kids_stop();
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_netns_cut),   TEST(test_async_cut),    TEST(test_async_change_during_cut),
	TEST(test_async_order), TEST(test_async_bounds),
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
	return test__run_all("policy_cut", tests, ARRAY_SIZE(tests), argc, argv);
}
