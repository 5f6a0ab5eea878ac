// SPDX-License-Identifier: MIT
/*
 * sock_selftest.c - sluice_sock__redir_selftest(): prove that same-node
 * redirection works on this kernel before an agent relies on it.
 *
 * Contract: a forked child moves itself into a transient cgroup under the
 * redirect's cgroup (so sockops runs for its sockets), makes a loopback
 * TCP pair, reports the ports and waits; the parent checks that both
 * sockets are in the redirect map; the child then pushes SELFTEST_BYTES
 * each way through the pair (checked byte for byte), half-closes, and
 * exits. The parent requires the redirected-bytes counter to have grown by
 * at least the bytes moved and both sockets to have left the map. Bounded
 * by SELFTEST_TIMEOUT_MS; the child and the transient cgroup are removed
 * on every path.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "internal.h"
#include "sock_internal.h"

#define SELFTEST_BYTES (1u << 20)
#define SELFTEST_TIMEOUT_MS 10000
/* Sockets leave the map when they close; give the kernel this long. */
#define SELFTEST_UNMAP_MS 2000

struct selftest {
	struct sluice_sock *ss;
	char cgroup[4096]; /* transient cgroup dir, "" when none */
	pid_t child;
	int to_child;   /* "go" byte */
	int from_child; /* report lines */
	char *reason;
	size_t reason_len;
	__u16 port[2]; /* client, server (host order) */
};

static int selftest__fail(struct selftest *t, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int selftest__fail(struct selftest *t, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->reason, t->reason_len, fmt, ap);
	va_end(ap);
	sluice__set_err("redirect self-test failed: %s", t->reason);
	return err;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* ---- child side: after fork() of a possibly threaded agent, no malloc,
 * no stdio streams: syscalls and formatting into stack buffers only ---- */

static void child__say(int fd, const char *line)
{
	ssize_t n = write(fd, line, strlen(line));

	(void)n;
}

/* The loopback pair: returns 0 with cfd/sfd connected and accepted. */
static int child__pair(int *cfd, int *sfd)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int lfd;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen))
		return -1;
	*cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*cfd < 0 || connect(*cfd, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	*sfd = accept(lfd, NULL, NULL);
	close(lfd);
	return *sfd < 0 ? -1 : 0;
}

static unsigned char pattern(size_t i, int dir)
{
	return (unsigned char)((i * 7 + (i >> 9) + dir * 101) & 0xff);
}

/* Both directions at once over non-blocking sockets: neither side can
 * block the other whatever the redirect's queueing does. */
static const char *child__exchange(int cfd, int sfd, unsigned char *buf)
{
	size_t sent[2] = { 0, 0 }, got[2] = { 0, 0 };
	int fds[2] = { cfd, sfd };
	bool eof[2] = { false, false }, shut[2] = { false, false };

	fcntl(cfd, F_SETFL, O_NONBLOCK);
	fcntl(sfd, F_SETFL, O_NONBLOCK);
	while (!eof[0] || !eof[1]) {
		struct pollfd pfd[2];

		for (int s = 0; s < 2; s++) {
			pfd[s].fd = fds[s];
			pfd[s].events = (eof[s] ? 0 : POLLIN) | (shut[s] ? 0 : POLLOUT);
		}
		if (poll(pfd, 2, SELFTEST_TIMEOUT_MS) <= 0)
			return "fail the pair stalled (no progress for 10 s)\n";
		for (int s = 0; s < 2; s++) {
			/* socket s writes direction s, reads direction !s */
			if (!shut[s] && (pfd[s].revents & POLLOUT)) {
				size_t n = SELFTEST_BYTES - sent[s];
				ssize_t w;

				if (n > 65536)
					n = 65536;
				for (size_t i = 0; i < n; i++)
					buf[i] = pattern(sent[s] + i, s);
				w = send(fds[s], buf, n, MSG_NOSIGNAL);
				if (w < 0 && errno != EAGAIN)
					return "fail send() on the pair failed\n";
				if (w > 0)
					sent[s] += w;
				if (sent[s] == SELFTEST_BYTES) {
					shutdown(fds[s], SHUT_WR);
					shut[s] = true;
				}
			}
			if (!eof[s] && (pfd[s].revents & (POLLIN | POLLHUP | POLLERR))) {
				ssize_t r = recv(fds[s], buf, 65536, 0);

				if (r < 0 && errno != EAGAIN)
					return "fail recv() on the pair failed\n";
				if (r == 0) {
					eof[s] = true;
					if (got[s] != SELFTEST_BYTES)
						return "fail end of stream before all bytes arrived\n";
				}
				for (ssize_t i = 0; i < r; i++)
					if (buf[i] != pattern(got[s] + i, !s))
						return "fail received bytes differ from the bytes sent\n";
				if (r > 0)
					got[s] += r;
			}
		}
	}
	return "ok\n";
}

static void child__run(const char *cgroup, int in, int out, unsigned char *buf)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	char line[96], path[4200], go;
	int fd, cfd = -1, sfd = -1;
	__u16 cport, sport;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1) {
		child__say(out, "fail cannot move the test process into the cgroup\n");
		_exit(1);
	}
	close(fd);
	if (child__pair(&cfd, &sfd)) {
		child__say(out, "fail cannot make a loopback TCP pair\n");
		_exit(1);
	}
	getsockname(cfd, (struct sockaddr *)&a, &alen);
	cport = ntohs(a.sin_port);
	alen = sizeof(a);
	getsockname(sfd, (struct sockaddr *)&a, &alen);
	sport = ntohs(a.sin_port);
	snprintf(line, sizeof(line), "ports %u %u\n", cport, sport);
	child__say(out, line);
	if (read(in, &go, 1) != 1)
		_exit(1);
	child__say(out, child__exchange(cfd, sfd, buf));
	close(cfd);
	close(sfd);
	_exit(0);
}

/* ---- parent side ---- */

/* One line from the child within the deadline ("" on timeout/EOF). */
static void selftest__read_line(struct selftest *t, char *line, size_t len, long long deadline)
{
	size_t n = 0;

	line[0] = '\0';
	while (n + 1 < len) {
		struct pollfd pfd = { .fd = t->from_child, .events = POLLIN };
		long long left = deadline - now_ms();
		char c;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0 || read(t->from_child, &c, 1) != 1)
			break;
		if (c == '\n')
			break;
		line[n++] = c;
	}
	line[n] = '\0';
}

/* How many of the pair's two sockets are in the redirect map. */
static int selftest__in_map(struct selftest *t, int map_fd)
{
	struct sluice_redir_key key, next;
	void *prev = NULL;
	int n = 0;

	while (!bpf_map_get_next_key(map_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (key.family != SLUICE_AF_INET || key.local[0] != htonl(INADDR_LOOPBACK))
			continue;
		if ((key.local_port == t->port[0] && key.remote_port == t->port[1]) ||
		    (key.local_port == t->port[1] && key.remote_port == t->port[0]))
			n++;
	}
	return n;
}

static int selftest__start(struct selftest *t, unsigned char *buf)
{
	const char *cg = t->ss->parts[SOCK_PART_REDIR].cgroup;
	int to[2] = { -1, -1 }, from[2] = { -1, -1 };
	int err;

	if (!cg)
		return selftest__fail(
			t, -ENOTCONN,
			"the redirect is not attached by this process (sluice_sock__attach_redir first)");
	snprintf(t->cgroup, sizeof(t->cgroup), "%s/sluice-selftest.%d", cg, (int)getpid());
	if (mkdir(t->cgroup, 0700) && errno != EEXIST) {
		err = -errno;
		t->cgroup[0] = '\0';
		return selftest__fail(t, err, "cannot create a test cgroup under %s: %s", cg,
				      strerror(-err));
	}
	if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC))
		goto fail;
	t->child = fork();
	if (t->child < 0)
		goto fail;
	if (t->child == 0) {
		close(to[1]);
		close(from[0]);
		child__run(t->cgroup, to[0], from[1], buf);
	}
	close(to[0]);
	close(from[1]);
	t->to_child = to[1];
	t->from_child = from[0];
	return 0;
fail:
	err = -errno;
	for (int i = 0; i < 2; i++) {
		if (to[i] >= 0)
			close(to[i]);
		if (from[i] >= 0)
			close(from[i]);
	}
	return selftest__fail(t, err, "cannot start the test process: %s", strerror(-err));
}

static void selftest__stop(struct selftest *t)
{
	if (t->to_child >= 0)
		close(t->to_child);
	if (t->from_child >= 0)
		close(t->from_child);
	if (t->child > 0) {
		kill(t->child, SIGKILL);
		waitpid(t->child, NULL, 0);
	}
	/* The child is gone, so the cgroup is empty and can go too. */
	if (t->cgroup[0])
		rmdir(t->cgroup);
}

static int selftest__check(struct selftest *t, int map_fd)
{
	long long deadline = now_ms() + SELFTEST_TIMEOUT_MS;
	struct sluice_sock_info before, after;
	char line[128];
	unsigned cport, sport;
	int err, n;

	err = sluice_sock__counters(t->ss, &before);
	if (err)
		return selftest__fail(t, err, "cannot read the redirect counters: %s",
				      sluice__errmsg());
	selftest__read_line(t, line, sizeof(line), deadline);
	if (!strncmp(line, "fail ", 5))
		return selftest__fail(t, -EIO, "%s", line + 5);
	if (sscanf(line, "ports %u %u", &cport, &sport) != 2)
		return selftest__fail(t, -ETIMEDOUT, "the test process did not start in time");
	t->port[0] = cport;
	t->port[1] = sport;
	n = selftest__in_map(t, map_fd);
	if (n != 2)
		return selftest__fail(
			t, -ENOENT,
			"%d of the pair's 2 sockets entered the redirect map (sockops not running for the cgroup?)",
			n);
	if (write(t->to_child, "g", 1) != 1)
		return selftest__fail(t, -EIO, "the test process went away");
	selftest__read_line(t, line, sizeof(line), deadline);
	if (!strncmp(line, "fail ", 5))
		return selftest__fail(t, -EIO, "%s", line + 5);
	if (strcmp(line, "ok"))
		return selftest__fail(t, -ETIMEDOUT, "no result within %d s",
				      SELFTEST_TIMEOUT_MS / 1000);
	waitpid(t->child, NULL, 0);
	t->child = 0;
	err = sluice_sock__counters(t->ss, &after);
	if (err)
		return selftest__fail(t, err, "cannot read the redirect counters: %s",
				      sluice__errmsg());
	if (after.redir[SLUICE_REDIR_CNT_BYTES] - before.redir[SLUICE_REDIR_CNT_BYTES] <
	    2ull * SELFTEST_BYTES)
		return selftest__fail(
			t, -EIO,
			"data arrived but only %llu of %u bytes were redirected (sk_msg verdict not attached?)",
			(unsigned long long)(after.redir[SLUICE_REDIR_CNT_BYTES] -
					     before.redir[SLUICE_REDIR_CNT_BYTES]),
			2 * SELFTEST_BYTES);
	for (deadline = now_ms() + SELFTEST_UNMAP_MS; (n = selftest__in_map(t, map_fd));) {
		if (now_ms() > deadline)
			return selftest__fail(
				t, -EBUSY,
				"%d closed socket(s) still in the redirect map after %d ms", n,
				SELFTEST_UNMAP_MS);
		usleep(10000);
	}
	return 0;
}

int sluice_sock__redir_selftest(struct sluice_sock *ss, char *reason, size_t len)
{
	char dummy[8];
	struct selftest t = {
		.ss = ss,
		.to_child = -1,
		.from_child = -1,
		.reason = reason && len ? reason : dummy,
		.reason_len = reason && len ? len : sizeof(dummy),
	};
	unsigned char *buf;
	int map_fd, err;

	sluice__clear_err();
	t.reason[0] = '\0';
	map_fd = sock__redir_map_fd(ss);
	if (map_fd < 0)
		return selftest__fail(&t, map_fd, "%s", sluice__errmsg());
	/* Allocated before fork: the child of a threaded agent must not malloc. */
	buf = malloc(65536);
	if (!buf)
		return selftest__fail(&t, -ENOMEM, "out of memory");
	err = selftest__start(&t, buf);
	if (!err)
		err = selftest__check(&t, map_fd);
	selftest__stop(&t);
	free(buf);
	return err;
}
