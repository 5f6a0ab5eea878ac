// SPDX-License-Identifier: MIT
/*
 * pingpong - TCP samples for B5 (socket LB, same-node redirection) and B6
 * (telemetry on/off): request/response latency and rate, bulk throughput,
 * and connect+request+close rate.
 *
 * Contract: one invocation measures one sample and prints it as one JSON
 * line. Both ends live in this process: a server thread and the client
 * (main thread), each pinned to its CPU (--cpu-client, --cpu-server), so
 * the caller chooses the placement. --cgroup DIR moves the process into
 * that cgroup v2 directory before any socket exists, so programs attached
 * there see both ends (same-node redirection needs both sockets in its
 * cgroup). Run it in a network namespace of the caller (nsenter).
 *   rr      one connection, TCP_NODELAY; --size bytes each way per round
 *           trip; median/mean/p99 of the round trips, round trips/s
 *   stream  one connection; the client writes --size-byte chunks, the
 *           server reads; rate = bytes the SERVER read in the window
 *   crr     connect + --size request + --size response + close (client
 *           first, as netperf TCP_CRR), one connection at a time, to the
 *           --connect targets in turn; connections/s, and how many
 *           distinct local addresses the server accepted on (backends)
 * The server listens on --listen ADDR:PORT (default 127.0.0.1, any port)
 * and rr/stream/crr connect there unless --connect names targets; --bind
 * ADDR fixes the client's source address (port still chosen at connect).
 * Each sample runs --warmup-ms unmeasured on the same sockets/loop, then
 * --duration-ms measured. With --pin DIR the per-CPU counter maps pinned
 * there (redir_counters, sock_counters, telem_counters, whichever exist)
 * are read around the measured window and their deltas printed, so the
 * caller can check that the sample took the path it names. Every
 * blocking step is bounded (5 s). On failure it prints {"error": "..."}
 * and exits 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sluice_sock_abi.h"
#include "sluice_telemetry_abi.h"

#define STEP_TIMEOUT_S 5
#define MAX_TARGETS 64
#define MAX_BACKENDS 64
#define STREAM_BUF (256 * 1024)

enum pp_mode {
	PP_RR,
	PP_STREAM,
	PP_CRR
};

struct pp {
	enum pp_mode mode;
	const char *cgroup;
	const char *pin_dir;
	int cpu_client, cpu_server;
	size_t size;
	double warmup_ms, duration_ms;
	struct sockaddr_in listen;
	struct sockaddr_in targets[MAX_TARGETS];
	int ntargets;
	struct in_addr bind_addr;
	bool bind;

	int lfd;
	pthread_t server;
	char server_err[128];
	atomic_ullong rx_bytes;            /* stream: bytes the server read */
	struct in_addr seen[MAX_BACKENDS]; /* crr: local addresses accepted on */
	int nseen;
	atomic_bool stop;
};

/* Counter maps a sample may cross, by pinned name. */
struct pp_counters {
	const char *map;
	const char *key; /* JSON object name */
	unsigned int n;
	const char *const *names;
	bool have;
	__u64 before[8], after[8];
};

static const char *const redir_names[] = {
#define X(name, str, help) str,
	SLUICE_REDIR_COUNTERS(X)
#undef X
};
static const char *const sock_names[] = {
#define X(name, str, help) str,
	SLUICE_SOCK_COUNTERS(X)
#undef X
};
static const char *const telem_names[] = {
#define X(name, key, metric, help) key,
	SLUICE_TELEM_COUNTERS(X)
#undef X
};

static struct pp_counters counters[] = {
	{ .map = "redir_counters",
	  .key = "redir",
	  .n = SLUICE_REDIR_CNT__MAX,
	  .names = redir_names },
	{ .map = "sock_counters", .key = "sock", .n = SLUICE_SOCK_CNT__MAX, .names = sock_names },
	{ .map = "telem_counters",
	  .key = "telem",
	  .n = SLUICE_TELEM_CNT__MAX,
	  .names = telem_names },
};
_Static_assert(SLUICE_REDIR_CNT__MAX <= 8 && SLUICE_SOCK_CNT__MAX <= 8 &&
		       SLUICE_TELEM_CNT__MAX <= 8,
	       "pp_counters holds 8 counters per map");

static void __attribute__((noreturn, format(printf, 1, 2))) pp__fail(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "Error: %s\n", msg);
	for (char *p = msg; *p; p++)
		if (*p == '"' || *p == '\\')
			*p = '\'';
	printf("{\"error\": \"%s\"}\n", msg);
	exit(1);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void pp__pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* 0: the calling thread only */
	if (sched_setaffinity(0, sizeof(set), &set))
		pp__fail("CPU %d: %s", cpu, strerror(errno));
}

static void pp__join_cgroup(const char *cg)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		pp__fail("cannot join cgroup %s: %s", cg, strerror(errno));
	close(fd);
}

static int pp__parse_ep(struct sockaddr_in *sin, const char *text)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	char *end;
	long port;

	if (!colon || colon - text >= (long)sizeof(host))
		return -1;
	memcpy(host, text, colon - text);
	host[colon - text] = '\0';
	port = strtol(colon + 1, &end, 10);
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	return 0;
}

static void pp__timeouts(int fd)
{
	struct timeval tv = { .tv_sec = STEP_TIMEOUT_S };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void pp__nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/*
 * recv() that waits through the EAGAIN a socket in the redirect map can
 * return on a wake-up without data (tcp_bpf_recvmsg, see redir.bpf.c):
 * poll() and retry, up to the step timeout. The fast path is one plain
 * blocking recv(), the same call in every variant.
 */
static ssize_t pp__recv(int fd, void *buf, size_t len)
{
	double t0 = 0;

	for (;;) {
		ssize_t r = recv(fd, buf, len, 0);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (!t0)
			t0 = now_us();
		else if (now_us() - t0 > STEP_TIMEOUT_S * 1e6)
			return -1;
		poll(&pfd, 1, STEP_TIMEOUT_S * 1000);
	}
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = pp__recv(fd, (char *)buf + got, len - got);

		if (r <= 0)
			return -1;
		got += r;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t w = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		done += w;
	}
	return 0;
}

/* ------------------------------------------------------------- counters */

static bool pp__read_counters(const char *dir, struct pp_counters *c, __u64 *out)
{
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info);
	char path[4200];
	int fd, ncpu = libbpf_num_possible_cpus();
	__u64 *v;
	bool ok = true;

	snprintf(path, sizeof(path), "%s/%s", dir, c->map);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return false;
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen) || ncpu <= 0) {
		close(fd);
		return false;
	}
	if (info.type != BPF_MAP_TYPE_PERCPU_ARRAY)
		ncpu = 1;
	v = calloc(ncpu, sizeof(*v));
	for (__u32 k = 0; k < c->n; k++) {
		out[k] = 0;
		if (!v || bpf_map_lookup_elem(fd, &k, v)) {
			ok = false;
			continue;
		}
		for (int i = 0; i < ncpu; i++)
			out[k] += v[i];
	}
	free(v);
	close(fd);
	return ok;
}

static void pp__counters_snap(const struct pp *p, bool after)
{
	if (!p->pin_dir)
		return;
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		struct pp_counters *c = &counters[i];

		if (!after)
			c->have = pp__read_counters(p->pin_dir, c, c->before);
		else if (c->have)
			c->have = pp__read_counters(p->pin_dir, c, c->after);
	}
}

static void pp__counters_print(void)
{
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		const struct pp_counters *c = &counters[i];

		if (!c->have)
			continue;
		printf(", \"%s\": {", c->key);
		for (unsigned int k = 0; k < c->n; k++)
			printf("%s\"%s\": %llu", k ? ", " : "", c->names[k],
			       (unsigned long long)(c->after[k] - c->before[k]));
		printf("}");
	}
}

/* --------------------------------------------------------------- server */

static void pp__server_fail(struct pp *p, const char *what)
{
	if (!p->server_err[0])
		snprintf(p->server_err, sizeof(p->server_err), "server: %s: %s", what,
			 strerror(errno));
}

static void pp__serve_one(struct pp *p, int fd, char *buf)
{
	switch (p->mode) {
	case PP_RR:
		pp__nodelay(fd);
		while (!read_full(fd, buf, p->size))
			if (write_full(fd, buf, p->size)) {
				pp__server_fail(p, "send");
				break;
			}
		break;
	case PP_STREAM:
		for (;;) {
			ssize_t r = pp__recv(fd, buf, STREAM_BUF);

			if (r < 0)
				pp__server_fail(p, "recv");
			if (r <= 0)
				break;
			atomic_fetch_add_explicit(&p->rx_bytes, r, memory_order_relaxed);
		}
		break;
	case PP_CRR:
		if (read_full(fd, buf, p->size) || write_full(fd, buf, p->size)) {
			pp__server_fail(p, "request/response");
			break;
		}
		/* the client closes first: wait for its FIN */
		while (pp__recv(fd, buf, p->size) > 0)
			;
		break;
	}
}

static void pp__tally(struct pp *p, int fd)
{
	struct sockaddr_in me;
	socklen_t len = sizeof(me);

	if (getsockname(fd, (struct sockaddr *)&me, &len))
		return;
	for (int i = 0; i < p->nseen; i++)
		if (p->seen[i].s_addr == me.sin_addr.s_addr)
			return;
	if (p->nseen < MAX_BACKENDS)
		p->seen[p->nseen++] = me.sin_addr;
}

static void *pp__server(void *arg)
{
	struct pp *p = arg;
	char *buf = malloc(p->size > STREAM_BUF ? p->size : STREAM_BUF);

	pp__pin_cpu(p->cpu_server);
	if (!buf) {
		pp__server_fail(p, "malloc");
		return NULL;
	}
	for (;;) {
		int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			/* shutdown() of the listener ends the loop */
			if (!atomic_load(&p->stop))
				pp__server_fail(p, "accept");
			break;
		}
		pp__timeouts(fd);
		if (p->mode == PP_CRR)
			pp__tally(p, fd);
		pp__serve_one(p, fd, buf);
		close(fd);
		if (p->mode != PP_CRR)
			break;
	}
	free(buf);
	return NULL;
}

/* --------------------------------------------------------------- client */

static int pp__connect(const struct pp *p, const struct sockaddr_in *to)
{
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	pp__timeouts(fd);
	if (p->bind) {
		struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr = p->bind_addr };

		/* the port is chosen at connect(), per destination, as for an
		 * unbound socket: no bind-time port exhaustion */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src))) {
			close(fd);
			return -1;
		}
	}
	if (connect(fd, (const struct sockaddr *)to, sizeof(*to))) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

static void pp__rr(struct pp *p)
{
	size_t n = 0, cap = 1 << 16;
	float *lat = malloc(cap * sizeof(*lat));
	char *buf = calloc(1, p->size);
	double t0, t1, t, end, sum = 0;
	int fd;

	if (!lat || !buf)
		pp__fail("malloc");
	fd = pp__connect(p, &p->targets[0]);
	if (fd < 0)
		pp__fail("connect: %s", strerror(errno));
	pp__nodelay(fd);
	end = now_us() + p->warmup_ms * 1e3;
	while (now_us() < end)
		if (write_full(fd, buf, p->size) || read_full(fd, buf, p->size))
			pp__fail("warm-up round trip: %s", strerror(errno));
	pp__counters_snap(p, false);
	t0 = now_us();
	end = t0 + p->duration_ms * 1e3;
	for (t = t0; t < end;) {
		double t2;

		if (write_full(fd, buf, p->size) || read_full(fd, buf, p->size))
			pp__fail("round trip %zu: %s", n, strerror(errno));
		t2 = now_us();
		if (n == cap) {
			float *more = realloc(lat, 2 * cap * sizeof(*lat));

			if (!more)
				pp__fail("malloc");
			lat = more;
			cap *= 2;
		}
		lat[n++] = t2 - t;
		sum += t2 - t;
		t = t2;
	}
	t1 = t;
	pp__counters_snap(p, true);
	close(fd);
	pthread_join(p->server, NULL);
	if (p->server_err[0])
		pp__fail("%s", p->server_err);
	qsort(lat, n, sizeof(*lat), cmp_float);
	printf("{\"mode\": \"rr\", \"size\": %zu, \"trips\": %zu, \"seconds\": %.6f, "
	       "\"rate\": %.1f, \"mean_us\": %.3f, \"median_us\": %.3f, \"p99_us\": %.3f, "
	       "\"bytes\": %zu",
	       p->size, n, (t1 - t0) / 1e6, n / ((t1 - t0) / 1e6), sum / n, lat[n / 2],
	       lat[(size_t)(n * 0.99)], 2 * n * p->size);
	free(lat);
	free(buf);
}

static void pp__stream(struct pp *p)
{
	char *buf = calloc(1, p->size);
	unsigned long long rx0, rx1;
	double t0, t1, end;
	int fd;

	if (!buf)
		pp__fail("malloc");
	fd = pp__connect(p, &p->targets[0]);
	if (fd < 0)
		pp__fail("connect: %s", strerror(errno));
	end = now_us() + p->warmup_ms * 1e3;
	while (now_us() < end)
		if (write_full(fd, buf, p->size))
			pp__fail("warm-up write: %s", strerror(errno));
	pp__counters_snap(p, false);
	rx0 = atomic_load(&p->rx_bytes);
	t0 = now_us();
	end = t0 + p->duration_ms * 1e3;
	while ((t1 = now_us()) < end)
		if (write_full(fd, buf, p->size))
			pp__fail("write: %s", strerror(errno));
	rx1 = atomic_load(&p->rx_bytes);
	pp__counters_snap(p, true);
	shutdown(fd, SHUT_WR);
	pthread_join(p->server, NULL);
	close(fd);
	if (p->server_err[0])
		pp__fail("%s", p->server_err);
	printf("{\"mode\": \"stream\", \"size\": %zu, \"seconds\": %.6f, \"bytes\": %llu, "
	       "\"gbps\": %.4f",
	       p->size, (t1 - t0) / 1e6, rx1 - rx0, (rx1 - rx0) * 8 / ((t1 - t0) * 1e3));
	free(buf);
}

static void pp__crr(struct pp *p)
{
	char *buf = calloc(1, p->size);
	double t0, t1, end;
	size_t n = 0, i = 0;
	bool warm = true;

	if (!buf)
		pp__fail("malloc");
	end = now_us() + p->warmup_ms * 1e3;
	t0 = t1 = 0;
	for (;;) {
		double t = now_us();
		int fd;

		if (t >= end) {
			if (!warm)
				break;
			warm = false;
			pp__counters_snap(p, false);
			t0 = now_us();
			end = t0 + p->duration_ms * 1e3;
		}
		fd = pp__connect(p, &p->targets[i++ % p->ntargets]);
		if (fd < 0)
			pp__fail("connection %zu: connect: %s", n, strerror(errno));
		if (write_full(fd, buf, p->size) || read_full(fd, buf, p->size))
			pp__fail("connection %zu: request/response: %s", n, strerror(errno));
		close(fd);
		if (!warm) {
			n++;
			t1 = now_us();
		}
	}
	pp__counters_snap(p, true);
	if (!n)
		pp__fail("no connection completed in the window");
	atomic_store(&p->stop, true);
	shutdown(p->lfd, SHUT_RDWR);
	pthread_join(p->server, NULL);
	if (p->server_err[0])
		pp__fail("%s", p->server_err);
	printf("{\"mode\": \"crr\", \"size\": %zu, \"conns\": %zu, \"seconds\": %.6f, "
	       "\"rate\": %.1f, \"us_per_conn\": %.3f, \"targets\": %d, \"backends\": %d",
	       p->size, n, (t1 - t0) / 1e6, n / ((t1 - t0) / 1e6), (t1 - t0) / n, p->ntargets,
	       p->nseen);
	free(buf);
}

/* ----------------------------------------------------------------- main */

static int usage(void)
{
	fprintf(stderr,
		"Usage: pingpong rr|stream|crr [--cgroup DIR] [--cpu-client N] [--cpu-server N]\n"
		"       [--listen ADDR:PORT] [--connect ADDR:PORT[,ADDR:PORT...]] [--bind ADDR]\n"
		"       [--size BYTES] [--warmup-ms MS] [--duration-ms MS] [--pin DIR]\n"
		"rr: --size each way per round trip (default 64); stream: write size (default\n"
		"131072); crr: request and response size (default 64). Prints one JSON line.\n");
	return 2;
}

static void pp__targets(struct pp *p, char *list)
{
	char *save, *tok;

	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (p->ntargets == MAX_TARGETS || pp__parse_ep(&p->targets[p->ntargets], tok))
			pp__fail("bad --connect target \"%s\"", tok);
		p->ntargets++;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cgroup", required_argument, NULL, 'g' },
		{ "cpu-client", required_argument, NULL, 'c' },
		{ "cpu-server", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "connect", required_argument, NULL, 't' },
		{ "bind", required_argument, NULL, 'b' },
		{ "size", required_argument, NULL, 'z' },
		{ "warmup-ms", required_argument, NULL, 'w' },
		{ "duration-ms", required_argument, NULL, 'd' },
		{ "pin", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct pp p = {
		.cpu_client = -1,
		.cpu_server = -1,
		.warmup_ms = 50,
		.duration_ms = 200,
		.lfd = -1,
	};
	struct sockaddr_in bound;
	socklen_t blen = sizeof(bound);
	char *connect_list = NULL;
	int c, one = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "rr"))
		p.mode = PP_RR;
	else if (!strcmp(argv[1], "stream"))
		p.mode = PP_STREAM;
	else if (!strcmp(argv[1], "crr"))
		p.mode = PP_CRR;
	else
		return usage();
	p.size = p.mode == PP_STREAM ? 131072 : 64;
	p.listen.sin_family = AF_INET;
	p.listen.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'g':
			p.cgroup = optarg;
			break;
		case 'c':
			p.cpu_client = atoi(optarg);
			break;
		case 's':
			p.cpu_server = atoi(optarg);
			break;
		case 'l':
			if (pp__parse_ep(&p.listen, optarg))
				pp__fail("bad --listen \"%s\"", optarg);
			break;
		case 't':
			connect_list = optarg;
			break;
		case 'b':
			if (inet_pton(AF_INET, optarg, &p.bind_addr) != 1)
				pp__fail("bad --bind \"%s\"", optarg);
			p.bind = true;
			break;
		case 'z':
			p.size = strtoul(optarg, NULL, 0);
			break;
		case 'w':
			p.warmup_ms = atof(optarg);
			break;
		case 'd':
			p.duration_ms = atof(optarg);
			break;
		case 'p':
			p.pin_dir = optarg;
			break;
		default:
			return usage();
		}
	}
	if (optind != argc || !p.size || p.duration_ms <= 0 || p.warmup_ms < 0)
		return usage();
	/* before any socket: cgroup programs see the sockets made inside */
	if (p.cgroup)
		pp__join_cgroup(p.cgroup);

	p.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(p.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (p.lfd < 0 || bind(p.lfd, (struct sockaddr *)&p.listen, sizeof(p.listen)) ||
	    listen(p.lfd, 128) || getsockname(p.lfd, (struct sockaddr *)&bound, &blen))
		pp__fail("listen: %s", strerror(errno));
	if (connect_list) {
		pp__targets(&p, connect_list);
	} else {
		p.targets[0] = bound;
		p.ntargets = 1;
	}
	if (p.mode != PP_CRR && p.ntargets != 1)
		pp__fail("rr and stream take one --connect target");
	if (pthread_create(&p.server, NULL, pp__server, &p))
		pp__fail("pthread_create: %s", strerror(errno));
	pp__pin_cpu(p.cpu_client);
	switch (p.mode) {
	case PP_RR:
		pp__rr(&p);
		break;
	case PP_STREAM:
		pp__stream(&p);
		break;
	case PP_CRR:
		pp__crr(&p);
		break;
	}
	pp__counters_print();
	printf(", \"cpu_client\": %d, \"cpu_server\": %d}\n", p.cpu_client, p.cpu_server);
	close(p.lfd);
	return 0;
}
