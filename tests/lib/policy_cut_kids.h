/* SPDX-License-Identifier: MIT */
/*
 * policy_cut_kids.h - what the policy cut suites (test_policy_cut,
 * test_policy_cut_async) share: a child cgroup of the cgroup2 mount, and N
 * children ("pods") that each join it, enter a network namespace of their
 * own and hold a TCP connection 127.0.0.5 -> 127.0.0.1:PORT there, as a
 * socket the socket LB connected; a child exits 0 when its socket was
 * destroyed (ECONNABORTED), 1 when it was not. The service 10.96.0.9:80/tcp
 * has that backend. Header-only; pcut__main() runs a suite in a private
 * network namespace with the cgroup removed at exit. Needs root.
 */
#ifndef SLUICE_TEST_POLICY_CUT_KIDS_H
#define SLUICE_TEST_POLICY_CUT_KIDS_H

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

static inline bool setup_cgroup(const char *name)
{
	char line[1024], dev[256], mnt[512], type[64];
	FILE *f = fopen("/proc/mounts", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %511s %63s", dev, mnt, type) == 3 &&
		    !strcmp(type, "cgroup2")) {
			snprintf(cgroup, sizeof(cgroup), "%.400s/%.40s.%d", mnt, name, getpid());
			break;
		}
	}
	if (f)
		fclose(f);
	return cgroup[0] && !mkdir(cgroup, 0755);
}

static inline void kids_stop(void)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i] > 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
	nkids = 0;
}

static inline void cleanup(void)
{
	kids_stop();
	if (cgroup[0])
		rmdir(cgroup);
}

static inline bool lo_up(void)
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
static inline int kid_main(int ready_w, int go_r)
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

static inline bool kids_start(int n)
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
static inline int kids_cut(void)
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
static inline int svc_rules(struct sluice *s, const char *deny)
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

static inline int svc_deny5(struct sluice *s, bool deny)
{
	return svc_rules(s, deny ? "127.0.0.5/32" : NULL);
}

static inline int env_kids(void)
{
	const char *e = getenv("SLUICE_TEST_NETNS");
	int n = e ? atoi(e) : 4;

	return n < 2 ? 2 : n > MAX_KIDS ? MAX_KIDS : n;
}

/* main(): root, a private network namespace, the cgroup @name.<pid>. */
static inline int pcut__main(const char *suite, const char *name, const struct test *tests, int n,
			     int argc, char **argv)
{
	if (!test__have_root(suite, "enters network namespaces"))
		return 0;
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	if (unshare(CLONE_NEWNET) || !lo_up()) {
		printf("FAIL: %s/setup (private network namespace: %s)\n", suite, strerror(errno));
		return 1;
	}
	if (!setup_cgroup(name)) {
		printf("FAIL: %s/setup (no cgroup2 mount or cannot create %s)\n", suite, cgroup);
		return 1;
	}
	atexit(cleanup);
	return test__run_all(suite, tests, n, argc, argv);
}

#endif /* SLUICE_TEST_POLICY_CUT_KIDS_H */
