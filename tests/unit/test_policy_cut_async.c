// SPDX-License-Identifier: MIT
/*
 * test_policy_cut_async.c - the policy cut off the caller's thread (#15,
 * user/lib/svc/policy_cut_async.c): the worker meshd runs so that its loop
 * never waits for a cut.
 *
 * Contract: like test_policy_cut (tests/lib/policy_cut_kids.h; cgroup
 * sluice-test-pcuta.<pid>, SLUICE_TEST_NETNS children, 200 for a cut of
 * ~0.8 s). Changes are made as desired__apply() makes them with a worker
 * (the write bracketed by sluice__policy_cut_writing(), then a request).
 * Checks: a request before the worker starts waits (and the scope set
 * meanwhile is the one used); the cut's progress is read from this thread
 * while it runs; a change during a run restarts it and the final policy is
 * the one enforced; a deny lifted during a run removes nothing more; the
 * process, time and socket bounds stop the walk and are counted; the /proc
 * scope finds the children without a cgroup. Needs root.
 */
#define _GNU_SOURCE
#include <netinet/tcp.h>
#include <time.h>

#include <bpf/bpf.h>

#include "policy_cut_kids.h"

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
	__u64 at_lift, ct0, t0, waited;

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
	t0 = now_us();
	sluice__policy_cut_writing(s, true); /* the lift begins */
	waited = now_us() - t0;
	at_lift = ct_count(s);
	ASSERT_OK(svc_rules(s, NULL), "deny lifted");
	sluice__policy_cut_request(s);
	sluice__policy_cut_writing(s, false);
	if (!ASSERT_TRUE(wait_state(s, SLUICE_CUT_IDLE, &t), "cuts done"))
		goto out;
	printf("    conntrack %llu, %llu when the lift began, %llu after; the write waited "
	       "%llu us for the worker\n",
	       (unsigned long long)ct0, (unsigned long long)at_lift,
	       (unsigned long long)ct_count(s), (unsigned long long)waited);
	ASSERT_GE(at_lift, 1, "the lift came before the run removed everything");
	ASSERT_EQ(ct_count(s), at_lift, "nothing removed after the lift began");
	ASSERT_EQ(t.restarts, 1, "the stale run stopped");
	ASSERT_EQ(t.last_flows, 0, "the final run removed nothing");
out:
	sluice__close(s);
}

/* The same while the run deletes (its gate): the lift waits for one batch
 * at most (printed), and no batch passes after it. */
static void test_async_order_deleting(void)
{
	struct sluice_policy_cut_totals t;
	struct sluice_opts opts = {};
	struct sluice *s = NULL;
	__u64 at_lift = 0, t0, waited = 0;

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		return;
	if (!ASSERT_OK(svc_rules(s, NULL), "service, no rules") ||
	    !ASSERT_TRUE(ct_fill(s, 3, 200000), "200k conntrack flows") ||
	    !ASSERT_OK(sluice__policy_cut_async(s), "worker") ||
	    !ASSERT_OK(sluice__policy_cut_start(s), "start"))
		goto out;
	change(s, "10.3.0.0/16");
	for (int i = 0; i < 600000 && ct_count(s) == 200000; i++)
		usleep(50);
	if (!ASSERT_LE(ct_count(s), 199999, "the run began deleting"))
		goto out;
	t0 = now_us();
	sluice__policy_cut_writing(s, true); /* the lift begins */
	waited = now_us() - t0;
	at_lift = ct_count(s);
	ASSERT_OK(svc_rules(s, NULL), "deny lifted");
	sluice__policy_cut_request(s);
	sluice__policy_cut_writing(s, false);
	if (!ASSERT_TRUE(wait_state(s, SLUICE_CUT_IDLE, &t), "cuts done"))
		goto out;
	printf("    conntrack 200000, %llu when the lift began (the write waited %llu us for the "
	       "worker's batch), %llu after\n",
	       (unsigned long long)at_lift, (unsigned long long)waited,
	       (unsigned long long)ct_count(s));
	ASSERT_GE(at_lift, 1, "the lift came before the run removed everything");
	ASSERT_EQ(ct_count(s), at_lift, "no batch removed after the lift began");
out:
	sluice__close(s);
}

/* Connections in this namespace, 127.0.0.5 -> 127.0.0.1:PORT, and which
 * of them a cut destroyed (TCP_CLOSE stays, unlike the error it reports
 * once). */
static int own_fds[8], own_n, own_lfd = -1;

static void own_close(void)
{
	for (int i = 0; i < own_n; i++)
		close(own_fds[i]);
	own_n = 0;
	if (own_lfd >= 0)
		close(own_lfd);
	own_lfd = -1;
}

static bool own_conns(int n)
{
	struct sockaddr_in be = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	struct sockaddr_in src = { .sin_family = AF_INET };
	int one = 1;

	inet_pton(AF_INET, "127.0.0.1", &be.sin_addr);
	inet_pton(AF_INET, "127.0.0.5", &src.sin_addr);
	own_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(own_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(own_lfd, (struct sockaddr *)&be, sizeof(be)) || listen(own_lfd, 8))
		return false;
	for (own_n = 0; own_n < n && own_n < 8; own_n++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		own_fds[own_n] = fd;
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
		    connect(fd, (struct sockaddr *)&be, sizeof(be)))
			return false;
	}
	return true;
}

static int own_cut(void)
{
	int cut = 0;

	for (int i = 0; i < own_n; i++) {
		struct tcp_info ti = {};
		socklen_t len = sizeof(ti);

		if (!getsockopt(own_fds[i], IPPROTO_TCP, TCP_INFO, &ti, &len) &&
		    ti.tcpi_state == TCP_CLOSE)
			cut++;
	}
	return cut;
}

/* Hostile: more processes than the bound (300 sleepers, 100 read), more
 * namespaces than the time allows (a 1 ms budget), more denied sockets in
 * a namespace than a cut keeps (3, 2 kept): each stops at its bound and
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

	/* a namespace with more denied sockets than a cut keeps (here: this
	 * one, 3 of them, 2 kept): the rest wait for the next cut */
	ASSERT_OK(sluice__policy_cut_scope(s, NULL, 0, 60000), "this namespace only");
	if (ASSERT_TRUE(own_conns(3), "3 denied connections in this namespace")) {
		sluice__policy_cut_max_socks(s, 2);
		change(s, "127.0.0.5/32");
		ASSERT_TRUE(wait_state(s, SLUICE_CUT_IDLE, &t), "bounded by sockets");
		ASSERT_EQ(t.socks_truncated, 1, "the dump over the bound counted");
		ASSERT_EQ(own_cut(), 2, "2 of the 3 destroyed");
		sluice__policy_cut_max_socks(s, 0);
		change(s, "127.0.0.5/32");
		ASSERT_TRUE(wait_state(s, SLUICE_CUT_IDLE, &t), "the next cut");
		ASSERT_EQ(own_cut(), 3, "the third destroyed by the next cut");
		ASSERT_EQ(t.socks_truncated, 1, "not over the bound again");
	}
	own_close();

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
	TEST(test_async_cut),    TEST(test_async_change_during_cut),
	TEST(test_async_order),  TEST(test_async_order_deleting),
	TEST(test_async_bounds),
};

int main(int argc, char **argv)
{
	return pcut__main("policy_cut_async", "sluice-test-pcuta", tests, ARRAY_SIZE(tests), argc,
			  argv);
}
