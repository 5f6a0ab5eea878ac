// SPDX-License-Identifier: MIT
/*
 * connrate - a steady rate of short TCP connections and the server they
 * talk to, for the failover tests (tests/e2e/test_outlier.sh) and bench B7
 * (scripts/bench/b7_failover.sh).
 *
 * Contract:
 *   connrate load --target ADDR:PORT --rate R [--duration-ms D]
 *                 [--stop-file F] [--timeout-ms T] [--log FILE]
 *       starts a connection every 1/R s (non-blocking, epoll; attempts
 *       overlap), each: connect, "whoami\n", read the answer line (the
 *       backend's name, tests/e2e/echo.py's protocol), close. An attempt
 *       ends ok; or its connect() failed: refused (ECONNREFUSED), timeout
 *       (not connected within T ms, default 3000), error (any other
 *       errno); or it connected and then: reset (ECONNRESET), eof
 *       (closed without an answer), hung (no answer within T ms).
 *       Launching stops after D ms or once F exists (whichever first; a hard cap of
 *       10 minutes), then every attempt in flight ends before it exits.
 *       FILE gets one line per attempt in launch order:
 *         START_NS END_NS OUTCOME BACKEND|- LOCAL_PORT
 *       with CLOCK_MONOTONIC times, the clock of bpf_ktime_get_ns(), so
 *       they compare directly with the kernel's health timestamps.
 *       stdout: one JSON summary: counts by outcome and backend, failed
 *       (every outcome but ok), connect_failed (refused + timeout +
 *       error), the start times of the first and third connect failure
 *       and of the last one.
 *   connrate serve --port P --name NAME [--bind ADDR] [--ready FILE]
 *       accepts, reads one line, answers "NAME\n", closes at the
 *       client's EOF (the client closes first); one thread, epoll. FILE is created once listening. Dies with its parent.
 * Exit status: 0 when the run happened (the caller judges the figures),
 * 1 on a setup error, 2 on usage errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_INFLIGHT 8192
#define MAX_NAMES 16
#define NAME_LEN 32
#define HARD_CAP_MS (10 * 60 * 1000)
#define WHOAMI "whoami\n"
#define SERVE_MAX_FD (MAX_INFLIGHT + 64) /* the RLIMIT_NOFILE we set */

/* refused, timeout and error: connect() never completed (what a dead or
 * unreachable backend causes, what outlier detection must keep to a few);
 * reset, eof and hung: connected, then cut or silent (a server killed
 * with the connection open) */
enum outcome {
	OC_NONE,
	OC_OK,
	OC_REFUSED,
	OC_TIMEOUT,
	OC_ERROR,
	OC_RESET,
	OC_EOF,
	OC_HUNG,
	OC__MAX
};
static const char *const oc_name[OC__MAX] = { "none",  "ok",    "refused", "timeout",
					      "error", "reset", "eof",     "hung" };

static bool connect_failed(enum outcome oc)
{
	return oc == OC_REFUSED || oc == OC_TIMEOUT || oc == OC_ERROR;
}

struct attempt {
	unsigned long long start_ns, end_ns;
	unsigned char outcome;
	signed char name;     /* index into names[], -1: none */
	unsigned short lport; /* local port: find the attempt in a capture */
};

struct slot {
	int fd;           /* -1: free */
	unsigned int idx; /* attempt number */
	bool sent;        /* whoami written: waiting for the answer */
	char buf[NAME_LEN];
	unsigned int len;
};

static struct attempt *att;
static unsigned int natt, catt;
static struct slot slots[MAX_INFLIGHT];
static unsigned int inflight;
static char names[MAX_NAMES][NAME_LEN];
static unsigned int nnames;

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int parse_target(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(s, ':');
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	size_t hl;
	int port;

	if (!colon || colon == s)
		return -1;
	port = atoi(colon + 1);
	hl = colon - s;
	if (port <= 0 || port > 65535 || hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = 0;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = 0;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof(*a6);
		return inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1 ? 0 : -1;
	}
	a4->sin_family = AF_INET;
	a4->sin_port = htons(port);
	*len = sizeof(*a4);
	return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : -1;
}

static int name_index(const char *n)
{
	unsigned int i;

	for (i = 0; i < nnames; i++)
		if (!strcmp(names[i], n))
			return i;
	if (nnames == MAX_NAMES)
		return -1;
	snprintf(names[nnames], NAME_LEN, "%s", n);
	return nnames++;
}

static void slot_end(int ep, struct slot *s, enum outcome oc)
{
	struct attempt *a = &att[s->idx];

	a->end_ns = now_ns();
	a->outcome = oc;
	if (oc == OC_OK)
		a->name = name_index(s->buf);
	epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	s->fd = -1;
	inflight--;
}

static enum outcome errno_outcome(int err, bool connected)
{
	if (connected)
		return err == ECONNRESET || err == EPIPE ? OC_RESET : OC_HUNG;
	switch (err) {
	case ECONNREFUSED:
		return OC_REFUSED;
	case ETIMEDOUT:
		return OC_TIMEOUT;
	default:
		return OC_ERROR;
	}
}

static unsigned short local_port(int fd)
{
	struct sockaddr_storage me;
	socklen_t len = sizeof(me);

	if (getsockname(fd, (struct sockaddr *)&me, &len))
		return 0;
	return ntohs(me.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&me)->sin6_port :
						((struct sockaddr_in *)&me)->sin_port);
}

static int launch(int ep, const struct sockaddr_storage *ss, socklen_t len)
{
	struct epoll_event ev = { .events = EPOLLOUT };
	struct slot *s = NULL;
	unsigned int i;
	int fd;

	for (i = 0; i < MAX_INFLIGHT && !s; i++)
		if (slots[i].fd < 0)
			s = &slots[i];
	if (!s) {
		fprintf(stderr, "connrate: more than %d attempts in flight\n", MAX_INFLIGHT);
		return -1;
	}
	if (natt == catt) {
		unsigned int n = catt ? 2 * catt : 4096;
		struct attempt *grown = realloc(att, n * sizeof(*att));

		if (!grown) {
			fprintf(stderr, "connrate: out of memory for %u attempts\n", n);
			return -1;
		}
		att = grown;
		catt = n;
	}
	memset(&att[natt], 0, sizeof(att[natt]));
	att[natt].start_ns = now_ns();
	att[natt].name = -1;
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("connrate: socket");
		return -1;
	}
	*s = (struct slot){ .fd = fd, .idx = natt++ };
	inflight++;
	ev.data.u32 = s - slots;
	if (connect(fd, (const struct sockaddr *)ss, len) && errno != EINPROGRESS) {
		int err = errno;

		close(fd);
		s->fd = -1;
		inflight--;
		att[s->idx].end_ns = now_ns();
		att[s->idx].outcome = errno_outcome(err, false);
		return 0;
	}
	att[s->idx].lport = local_port(fd);
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* One readiness event of a slot: connect done -> send; answer -> end. */
static void slot_io(int ep, struct slot *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = s - slots };
	int err = 0;
	socklen_t el = sizeof(err);
	ssize_t n;

	if (!s->sent) {
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err)
			return slot_end(ep, s, errno_outcome(err, false));
		if (send(s->fd, WHOAMI, strlen(WHOAMI), MSG_NOSIGNAL) < 0)
			return slot_end(ep, s, errno_outcome(errno, true));
		s->sent = true;
		epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
		return;
	}
	n = recv(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len, 0);
	if (n < 0) {
		if (errno != EAGAIN)
			slot_end(ep, s, errno_outcome(errno, true));
		return;
	}
	if (n == 0)
		return slot_end(ep, s, OC_EOF);
	s->len += n;
	s->buf[s->len] = 0;
	if (strchr(s->buf, '\n') || s->len == sizeof(s->buf) - 1) {
		s->buf[strcspn(s->buf, "\n")] = 0;
		slot_end(ep, s, OC_OK);
	}
}

static void expire(int ep, unsigned long long now, unsigned long long timeout_ns)
{
	unsigned int i;

	for (i = 0; i < MAX_INFLIGHT; i++)
		if (slots[i].fd >= 0 && now - att[slots[i].idx].start_ns >= timeout_ns)
			slot_end(ep, &slots[i], slots[i].sent ? OC_HUNG : OC_TIMEOUT);
}

static void report(const char *target, unsigned int rate, const char *logpath)
{
	unsigned long long fails[3] = { 0 }, last = 0;
	unsigned int count[OC__MAX] = { 0 }, per[MAX_NAMES] = { 0 }, nf = 0, i;
	unsigned int nconn = 0;
	FILE *lf = NULL;

	if (logpath && !(lf = fopen(logpath, "w")))
		perror("connrate: log");
	for (i = 0; i < natt; i++) {
		struct attempt *a = &att[i];

		count[a->outcome]++;
		if (a->outcome == OC_OK && a->name >= 0)
			per[(int)a->name]++;
		if (connect_failed(a->outcome)) {
			if (nf < 3)
				fails[nf] = a->start_ns;
			nf++;
			last = a->start_ns;
		}
		if (lf)
			fprintf(lf, "%llu %llu %s %s %u\n", a->start_ns, a->end_ns,
				oc_name[a->outcome], a->name >= 0 ? names[(int)a->name] : "-",
				a->lport);
	}
	if (lf)
		fclose(lf);
	for (i = OC_OK; i < OC__MAX; i++)
		if (connect_failed(i))
			nconn += count[i];
	printf("{\"target\": \"%s\", \"rate\": %u, \"attempts\": %u, \"failed\": %u", target, rate,
	       natt, natt - count[OC_OK]);
	printf(", \"connect_failed\": %u", nconn);
	for (i = OC_OK; i < OC__MAX; i++)
		printf(", \"%s\": %u", oc_name[i], count[i]);
	printf(", \"start_ns\": %llu, \"end_ns\": %llu", natt ? att[0].start_ns : 0,
	       natt ? att[natt - 1].end_ns : 0);
	printf(", \"first_fail_ns\": %llu, \"third_fail_ns\": %llu, \"last_fail_ns\": %llu",
	       fails[0], fails[2], last);
	printf(", \"backends\": {");
	for (i = 0; i < nnames; i++)
		printf("%s\"%s\": %u", i ? ", " : "", names[i], per[i]);
	printf("}}\n");
}

static void raise_nofile(void)
{
	struct rlimit rl = { MAX_INFLIGHT + 64, MAX_INFLIGHT + 64 };

	setrlimit(RLIMIT_NOFILE, &rl);
}

static int load(const char *target, unsigned int rate, unsigned int dur_ms, const char *stop,
		unsigned int timeout_ms, const char *logpath)
{
	struct sockaddr_storage ss;
	struct epoll_event evs[256];
	unsigned long long t0, next, period, now, timeout_ns = timeout_ms * 1000000ull;
	socklen_t len;
	bool launching = true;
	int ep, n, i;

	if (parse_target(target, &ss, &len)) {
		fprintf(stderr, "connrate: --target %s is not ADDR:PORT or [ADDR6]:PORT\n", target);
		return 2;
	}
	raise_nofile();
	for (i = 0; i < MAX_INFLIGHT; i++)
		slots[i].fd = -1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return 1;
	period = 1000000000ull / rate;
	t0 = next = now_ns();
	while (launching || inflight) {
		now = now_ns();
		if (launching &&
		    (now - t0 >= dur_ms * 1000000ull || now - t0 >= HARD_CAP_MS * 1000000ull ||
		     (stop && !access(stop, F_OK))))
			launching = false;
		/* catch up after a stall, but never in a burst of more than 8 */
		for (i = 0; launching && now >= next && i < 8; i++, next += period)
			if (launch(ep, &ss, len))
				return 1;
		if (launching && now >= next + 8 * period)
			next = now;
		n = epoll_wait(ep, evs, 256, 1);
		for (i = 0; i < n; i++)
			if (slots[evs[i].data.u32].fd >= 0)
				slot_io(ep, &slots[evs[i].data.u32]);
		expire(ep, now_ns(), timeout_ns);
	}
	report(target, rate, logpath);
	return 0;
}

/* ------------------------------------------------------------ serve */

static int serve_listen(const char *bind_addr, unsigned int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char spec[80];
	int fd, one = 1;

	snprintf(spec, sizeof(spec), strchr(bind_addr, ':') ? "[%s]:%u" : "%s:%u", bind_addr, port);
	if (parse_target(spec, &ss, &len)) {
		fprintf(stderr, "connrate: bad --bind %s\n", bind_addr);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 4096)) {
		fprintf(stderr, "connrate: listen on %s: %s\n", spec, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Answer the request line, then close only at the client's EOF: the client
 * closes first and its side keeps the TIME_WAIT. A server closing first
 * would keep TIME_WAITs that a later connection through another VIP, NATed
 * to the same 4-tuple, runs into (its SYN answered by a bare ACK, retried
 * after 1 s): failures that have nothing to do with the backend's health.
 */
static void serve_conn(int ep, int fd, const char *name)
{
	static bool answered[SERVE_MAX_FD];
	char buf[256], answer[NAME_LEN + 1];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);

	if (n < 0 && errno == EAGAIN)
		return;
	if (n > 0) {
		if (!answered[fd] && memchr(buf, '\n', n)) {
			snprintf(answer, sizeof(answer), "%s\n", name);
			send(fd, answer, strlen(answer), MSG_NOSIGNAL);
			answered[fd] = true;
		}
		return;
	}
	answered[fd] = false;
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

static int serve(const char *bind_addr, unsigned int port, const char *name, const char *ready)
{
	struct epoll_event ev = { .events = EPOLLIN }, evs[256];
	int lfd, ep, n, i, c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	raise_nofile();
	lfd = serve_listen(bind_addr, port);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || ep < 0)
		return 1;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (f)
			fclose(f);
	}
	for (;;) {
		n = epoll_wait(ep, evs, 256, -1);
		for (i = 0; i < n; i++) {
			if (evs[i].data.fd != lfd) {
				serve_conn(ep, evs[i].data.fd, name);
				continue;
			}
			while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
				if (c >= SERVE_MAX_FD) {
					close(c);
					continue;
				}
				ev.data.fd = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
			}
		}
	}
}

static int usage(void)
{
	fprintf(stderr,
		"Usage: connrate load --target ADDR:PORT --rate R [--duration-ms D]\n"
		"                     [--stop-file F] [--timeout-ms T] [--log FILE]\n"
		"       connrate serve --port P --name NAME [--bind ADDR] [--ready FILE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "target", required_argument, 0, 't' },
					      { "rate", required_argument, 0, 'r' },
					      { "duration-ms", required_argument, 0, 'd' },
					      { "stop-file", required_argument, 0, 's' },
					      { "timeout-ms", required_argument, 0, 'T' },
					      { "log", required_argument, 0, 'l' },
					      { "port", required_argument, 0, 'p' },
					      { "name", required_argument, 0, 'n' },
					      { "bind", required_argument, 0, 'b' },
					      { "ready", required_argument, 0, 'R' },
					      { 0 } };
	const char *target = NULL, *stop = NULL, *logpath = NULL, *name = NULL, *ready = NULL;
	const char *bind_addr = "0.0.0.0";
	unsigned int rate = 0, dur = HARD_CAP_MS, timeout = 3000, port = 0;
	int c;

	if (argc < 2)
		return usage();
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			target = optarg;
			break;
		case 'r':
			rate = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			dur = strtoul(optarg, NULL, 10);
			break;
		case 's':
			stop = optarg;
			break;
		case 'T':
			timeout = strtoul(optarg, NULL, 10);
			break;
		case 'l':
			logpath = optarg;
			break;
		case 'p':
			port = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			name = optarg;
			break;
		case 'b':
			bind_addr = optarg;
			break;
		case 'R':
			ready = optarg;
			break;
		default:
			return usage();
		}
	}
	if (!strcmp(argv[1], "load")) {
		if (!target || !rate || rate > 100000 || !timeout) {
			fprintf(stderr, "connrate load: needs --target and --rate 1-100000\n");
			return 2;
		}
		return load(target, rate, dur, stop, timeout, logpath);
	}
	if (!strcmp(argv[1], "serve")) {
		if (!port || port > 65535 || !name || strlen(name) >= NAME_LEN - 1) {
			fprintf(stderr,
				"connrate serve: needs --port 1-65535 and --name (< %d chars)\n",
				NAME_LEN - 1);
			return 2;
		}
		return serve(bind_addr, port, name, ready);
	}
	return usage();
}
