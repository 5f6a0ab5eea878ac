// SPDX-License-Identifier: MIT
/*
 * sockpair - loopback TCP pairs that exercise same-node redirection, for
 * tests/e2e/test_sock.sh. Run it inside the managed cgroup (--cgroup) so
 * sockops sees its sockets.
 *
 * Contract: every command makes its pairs on 127.0.0.1 (or ::1 with -6)
 * inside this one process (threads), bounds every wait (TIMEOUT_S without
 * progress is a stall), prints one summary line, and exits 0 only when
 * every check passed. Readers block in recv() unless --nonblock (poll()
 * + MSG_DONTWAIT, like event-driven servers). With --pin DIR it also reads the pinned redirect
 * map and counters (DIR/redir_socks, DIR/redir_counters) and requires the
 * data to have been redirected and the map to drain after close.
 *   bulk [--bytes N] [--min-redirected B]
 *                              N bytes one way, CRC32 of both ends compared
 *   slow [--bytes N] [--rate B/s] [--max-queue B]
 *                              a receiver reading at B/s: the sender must
 *                              block (sent - received <= max-queue), nothing
 *                              is lost, and the transfer ends in time
 *   halfclose [--delay-ms MS]  shutdown(SHUT_WR) from either side, the
 *                              answer MS after EOF; close from either side
 *   pairs [-n N]               N pairs open at once, a message each way,
 *                              all of them in the map, map back to the
 *                              start count after close
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
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sluice_abi.h"
#include "sluice_sock_abi.h"

#define TIMEOUT_S 10
#define CHUNK (256 * 1024)
#define UNMAP_WAIT_S 3

static const char *pin_dir;
static int family = AF_INET;
/* Readers poll() and read with MSG_DONTWAIT, as event-driven servers do;
 * for them a wake-up without data (EAGAIN) is just "not yet". */
static bool nonblock;
/* bulk: bytes that must have gone through the redirect (default 1). */
static __u64 min_redirected = 1;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAILED: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	return 1;
}

/* ------------------------------------------------------- pinned state */

static int redir_pinned(const char *name)
{
	char path[4200];

	if (!pin_dir)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	return bpf_obj_get(path);
}

/* Redirect counters summed over CPUs; false without --pin. */
static bool redir_counters(__u64 out[SLUICE_REDIR_CNT__MAX])
{
	int fd = redir_pinned("redir_counters"), ncpu = libbpf_num_possible_cpus();
	__u64 *v;

	memset(out, 0, sizeof(__u64) * SLUICE_REDIR_CNT__MAX);
	if (fd < 0 || ncpu <= 0)
		return false;
	v = calloc(ncpu, sizeof(*v));
	for (__u32 k = 0; v && k < SLUICE_REDIR_CNT__MAX; k++)
		if (!bpf_map_lookup_elem(fd, &k, v))
			for (int c = 0; c < ncpu; c++)
				out[k] += v[c];
	free(v);
	close(fd);
	return true;
}

/* Sockets in the redirect map; -1 without --pin. */
static long redir_sockets(void)
{
	struct sluice_redir_key key, next;
	int fd = redir_pinned("redir_socks");
	void *prev = NULL;
	long n = 0;

	if (fd < 0)
		return -1;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		n++;
	}
	close(fd);
	return n;
}

/* ------------------------------------------------------------- pairs */

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = TIMEOUT_S };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int listener(struct sockaddr_storage *ss, socklen_t *len, int backlog)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	int fd;

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*s4);
	} else {
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		*len = sizeof(*s6);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)ss, *len) || listen(fd, backlog) ||
	    getsockname(fd, (struct sockaddr *)ss, len))
		return -1;
	return fd;
}

/* A connected pair; the client writes only after accept(), so both ends
 * are established (and in the redirect map) before any data moves. */
static int make_pair(int lfd, const struct sockaddr_storage *ss, socklen_t len, int *cfd, int *sfd)
{
	*cfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*cfd < 0 || connect(*cfd, (const struct sockaddr *)ss, len))
		return -1;
	*sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (*sfd < 0)
		return -1;
	set_timeouts(*cfd);
	set_timeouts(*sfd);
	return 0;
}

static int one_pair(int *cfd, int *sfd)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int lfd = listener(&ss, &len, 1), err;

	if (lfd < 0)
		return -1;
	err = make_pair(lfd, &ss, len, cfd, sfd);
	close(lfd);
	return err;
}

/* ---------------------------------------------------------- streams */

struct stream {
	int fd;
	size_t bytes;        /* to send, or expected */
	_Atomic size_t done; /* sent / received so far */
	uLong crc;
	int err;      /* errno of a failure, 0 */
	bool shut;    /* sender: shutdown(SHUT_WR) at the end, else close */
	int delay_ms; /* sender: wait this long before the first byte */
	double rate;  /* receiver: bytes/s, 0 = as fast as possible */
};

static void fill(unsigned char *buf, size_t len, __u64 *state)
{
	__u64 x = *state;

	for (size_t i = 0; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
	*state = x;
}

static void *stream_send(void *arg)
{
	struct stream *s = arg;
	__u64 state = 0x9e3779b97f4a7c15ull;
	unsigned char *buf = malloc(CHUNK);

	s->crc = crc32(0, NULL, 0);
	if (s->delay_ms)
		usleep(s->delay_ms * 1000);
	while (buf && s->done < s->bytes) {
		size_t n = s->bytes - s->done < CHUNK ? s->bytes - s->done : CHUNK, off = 0;

		fill(buf, CHUNK, &state);
		s->crc = crc32(s->crc, buf, n);
		while (off < n) {
			ssize_t w = send(s->fd, buf + off, n - off, MSG_NOSIGNAL);

			if (w <= 0) {
				s->err = w < 0 ? errno : EPIPE;
				goto out;
			}
			off += w;
			s->done += w;
		}
	}
	if (s->shut)
		shutdown(s->fd, SHUT_WR);
	else
		close(s->fd);
out:
	free(buf);
	return NULL;
}

/* Reads to EOF; a slow reader sleeps to keep to its rate. */
static void stream_recv(struct stream *s, size_t chunk)
{
	unsigned char *buf = malloc(chunk);
	double t0 = now_s();

	s->crc = crc32(0, NULL, 0);
	while (buf) {
		ssize_t r = recv(s->fd, buf, chunk, nonblock ? MSG_DONTWAIT : 0);

		if (r < 0 && nonblock && errno == EAGAIN) {
			struct pollfd p = { .fd = s->fd, .events = POLLIN };

			if (poll(&p, 1, TIMEOUT_S * 1000) == 0) {
				s->err = ETIMEDOUT;
				break;
			}
			continue;
		}
		if (r < 0) {
			s->err = errno;
			break;
		}
		if (r == 0)
			break;
		s->crc = crc32(s->crc, buf, r);
		s->done += r;
		if (s->rate > 0) {
			double ahead = s->done / s->rate - (now_s() - t0);

			if (ahead > 0)
				usleep(ahead * 1e6);
		}
	}
	free(buf);
}

static bool stream_ok(const char *what, struct stream *tx, struct stream *rx)
{
	if (tx->err || rx->err) {
		fail("%s: sender %s, receiver %s after %zu of %zu bytes", what,
		     tx->err ? strerror(tx->err) : "ok", rx->err ? strerror(rx->err) : "ok",
		     (size_t)rx->done, tx->bytes);
		return false;
	}
	if (rx->done != tx->bytes || rx->crc != tx->crc) {
		fail("%s: received %zu bytes crc32 %08lx, sent %zu crc32 %08lx", what,
		     (size_t)rx->done, rx->crc, tx->bytes, tx->crc);
		return false;
	}
	return true;
}

/* Counter deltas over a test: with --pin the bytes must be redirected. */
struct redir_snap {
	__u64 c[SLUICE_REDIR_CNT__MAX];
	bool have;
};

static void snap(struct redir_snap *s)
{
	s->have = redir_counters(s->c);
}

/* With --pin: at least min_bytes were redirected and, when slow_peer,
 * the connection was handed back to TCP because its reader fell behind. */
static bool redirected_at_least(const struct redir_snap *before, __u64 min_bytes, bool slow_peer)
{
	struct redir_snap after;
	__u64 d[SLUICE_REDIR_CNT__MAX];

	snap(&after);
	if (!before->have || !after.have)
		return true;
	for (int i = 0; i < SLUICE_REDIR_CNT__MAX; i++)
		d[i] = after.c[i] - before->c[i];
	printf("  redirected %llu msgs, %llu bytes; %llu msgs on the TCP path; %llu connection(s) back to TCP for a slow reader\n",
	       (unsigned long long)d[SLUICE_REDIR_CNT_MSGS],
	       (unsigned long long)d[SLUICE_REDIR_CNT_BYTES],
	       (unsigned long long)d[SLUICE_REDIR_CNT_PASS],
	       (unsigned long long)d[SLUICE_REDIR_CNT_SLOW_PEER]);
	if (d[SLUICE_REDIR_CNT_BYTES] < min_bytes) {
		fail("only %llu bytes were redirected, expected at least %llu",
		     (unsigned long long)d[SLUICE_REDIR_CNT_BYTES], (unsigned long long)min_bytes);
		return false;
	}
	if (slow_peer && !d[SLUICE_REDIR_CNT_SLOW_PEER]) {
		fail("the slow reader's connection never went back to TCP");
		return false;
	}
	return true;
}

/* Waits for the redirect map to return to `want` sockets. */
static bool map_drains_to(long want)
{
	double end = now_s() + UNMAP_WAIT_S;
	long n;

	while ((n = redir_sockets()) > want && now_s() < end)
		usleep(10000);
	if (n > want) {
		fail("redirect map still holds %ld sockets %d s after close (expected %ld)", n,
		     UNMAP_WAIT_S, want);
		return false;
	}
	if (n >= 0)
		printf("  redirect map back to %ld sockets\n", n);
	return true;
}

/* ------------------------------------------------------------ commands */

static int do_bulk(size_t bytes)
{
	struct stream tx = { .bytes = bytes, .shut = true }, rx = {};
	struct redir_snap before;
	long base = redir_sockets();
	pthread_t t;
	double t0;

	if (one_pair(&tx.fd, &rx.fd))
		return fail("cannot make a pair: %s", strerror(errno));
	snap(&before);
	t0 = now_s();
	pthread_create(&t, NULL, stream_send, &tx);
	stream_recv(&rx, CHUNK);
	pthread_join(t, NULL);
	t0 = now_s() - t0;
	close(tx.fd);
	close(rx.fd);
	if (!stream_ok("bulk", &tx, &rx))
		return 1;
	printf("bulk: %zu bytes intact (crc32 %08lx) in %.2f s, %.0f MB/s\n", bytes, rx.crc, t0,
	       bytes / t0 / 1e6);
	return redirected_at_least(&before, min_redirected, false) && map_drains_to(base) ? 0 : 1;
}

/* TCP memory of the whole stack, in bytes (sockstat "TCP: ... mem N"). */
static long tcp_mem_bytes(void)
{
	char line[256];
	long pages = -1;
	FILE *f = fopen("/proc/net/sockstat", "r");

	while (f && fgets(line, sizeof(line), f)) {
		char *m = strstr(line, " mem ");

		if (!strncmp(line, "TCP:", 4) && m)
			pages = atol(m + 5);
	}
	if (f)
		fclose(f);
	return pages < 0 ? -1 : pages * sysconf(_SC_PAGESIZE);
}

struct slow_watch {
	struct stream *tx, *rx;
	_Atomic bool stop;
	size_t max_queue;
	long mem0, max_mem;
};

static void *slow_watch(void *arg)
{
	struct slow_watch *w = arg;

	while (!w->stop) {
		/* received first: what was sent by the later read is at least
		 * that (read the other way round, a receive between the two
		 * reads made the difference negative, 2^64 - n as a size_t) */
		size_t r = w->rx->done, s = w->tx->done;
		size_t q = s >= r ? s - r : 0;
		long m = tcp_mem_bytes() - w->mem0;

		if (q > w->max_queue)
			w->max_queue = q;
		if (m > w->max_mem)
			w->max_mem = m;
		usleep(2000);
	}
	return NULL;
}

static int do_slow(size_t bytes, double rate, size_t max_queue)
{
	struct stream tx = { .bytes = bytes, .shut = true }, rx = { .rate = rate };
	struct slow_watch w = { .tx = &tx, .rx = &rx };
	double t0, want = bytes / rate;
	struct redir_snap before;
	long base = redir_sockets();
	pthread_t t, tw;

	if (one_pair(&tx.fd, &rx.fd))
		return fail("cannot make a pair: %s", strerror(errno));
	snap(&before);
	w.mem0 = tcp_mem_bytes();
	t0 = now_s();
	pthread_create(&tw, NULL, slow_watch, &w);
	pthread_create(&t, NULL, stream_send, &tx);
	stream_recv(&rx, 16384);
	pthread_join(t, NULL);
	w.stop = true;
	pthread_join(tw, NULL);
	t0 = now_s() - t0;
	close(tx.fd);
	close(rx.fd);
	if (!stream_ok("slow receiver", &tx, &rx))
		return 1;
	printf("slow receiver: %zu bytes intact at %.1f MB/s in %.2f s (ideal %.2f s); max queued %zu KiB, TCP memory +%ld KiB\n",
	       bytes, rate / 1e6, t0, want, w.max_queue / 1024, w.max_mem / 1024);
	if (w.max_queue > max_queue)
		return fail("the sender ran %zu KiB ahead of the receiver (bound %zu KiB)",
			    w.max_queue / 1024, max_queue / 1024);
	if (t0 > want * 1.5 + 1)
		return fail("took %.2f s, more than 1.5x the receiver's pace (%.2f s): stalled?",
			    t0, want);
	return redirected_at_least(&before, 1, true) && map_drains_to(base) ? 0 : 1;
}

/* One direction of a half-close test: `from` sends `bytes` (after
 * delay_ms) then does SHUT_WR, or close() when !shut; `to` reads to EOF. */
static bool exchange(const char *what, int from, int to, size_t bytes, bool shut, int delay_ms)
{
	struct stream tx = { .fd = from, .bytes = bytes, .shut = shut, .delay_ms = delay_ms };
	struct stream rx = { .fd = to };
	pthread_t t;

	pthread_create(&t, NULL, stream_send, &tx);
	stream_recv(&rx, CHUNK);
	pthread_join(t, NULL);
	return stream_ok(what, &tx, &rx);
}

/* After the peer closed, writing must fail soon (EPIPE/ECONNRESET),
 * never block or succeed forever. */
static bool write_fails(const char *what, int fd)
{
	char b[4096] = { 0 };
	double end = now_s() + TIMEOUT_S;

	while (now_s() < end) {
		if (send(fd, b, sizeof(b), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
			return true;
		usleep(1000);
	}
	fail("%s: writing to a closed peer kept succeeding for %d s", what, TIMEOUT_S);
	return false;
}

/*
 * Half-close and close from either side, blocking sockets. The answer
 * after EOF comes delay_ms later: past the peer's delayed ACK of the FIN
 * (40 ms) this meets the kernel's tcp_bpf_recvmsg() returning EAGAIN on a
 * wake-up without data (see redir.bpf.c).
 */
static int do_halfclose(int delay_ms)
{
	const size_t n = 1 << 20;
	struct redir_snap before;
	long base = redir_sockets();
	int c, s;
	bool ok;

	snap(&before);
	/* client half-closes, server answers after EOF and closes */
	ok = !one_pair(&c, &s) && exchange("client SHUT_WR", c, s, n, true, 0) &&
	     exchange("server answer after EOF, then close", s, c, n, false, delay_ms);
	close(c);
	if (!ok)
		return fail("half-close from the client");
	/* server half-closes first, client answers and closes */
	ok = !one_pair(&c, &s) && exchange("server SHUT_WR", s, c, n, true, 0) &&
	     exchange("client answer after EOF, then close", c, s, n, false, delay_ms);
	close(s);
	if (!ok)
		return fail("half-close from the server");
	/* client closes: server reads everything, EOF, then writes fail */
	ok = !one_pair(&c, &s) && exchange("client close", c, s, n, false, 0) &&
	     write_fails("server write after client close", s);
	close(s);
	if (!ok)
		return 1;
	/* server closes: the mirror image */
	ok = !one_pair(&c, &s) && exchange("server close", s, c, n, false, 0) &&
	     write_fails("client write after server close", c);
	close(c);
	if (!ok)
		return 1;
	printf("halfclose (%s readers): SHUT_WR then an answer %d ms after EOF, from either side; close from either side: data intact, EOF seen, writes to the closed end fail\n",
	       nonblock ? "polling" : "blocking", delay_ms);
	return redirected_at_least(&before, 6 * n, false) && map_drains_to(base) ? 0 : 1;
}

static int do_pairs(int n)
{
	struct rlimit rl = { .rlim_cur = 2 * n + 64, .rlim_max = 2 * n + 64 };
	struct redir_snap before;
	struct sockaddr_storage ss;
	long base = redir_sockets(), in_map;
	int *c = calloc(n, sizeof(int)), *s = calloc(n, sizeof(int)), lfd, made = 0;
	socklen_t len;
	double t0 = now_s();
	bool ok = true;

	if (!c || !s) {
		free(c);
		free(s);
		return fail("out of memory");
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)(2 * n + 64)) {
		rl.rlim_cur = rl.rlim_max = 2 * n + 64;
		if (setrlimit(RLIMIT_NOFILE, &rl)) {
			free(c);
			free(s);
			return fail("cannot raise the fd limit to %d: %s", 2 * n + 64,
				    strerror(errno));
		}
	}
	snap(&before);
	lfd = listener(&ss, &len, n);
	for (; lfd >= 0 && made < n; made++)
		if (make_pair(lfd, &ss, len, &c[made], &s[made]))
			break;
	if (lfd < 0 || made < n) {
		ok = false;
		fail("made %d of %d pairs: %s", made, n, strerror(errno));
	}
	if (lfd >= 0)
		close(lfd);
	/* every pair talks both ways while all are open */
	for (int i = 0; ok && i < n; i++) {
		char out[32], in[32] = { 0 };
		int l = snprintf(out, sizeof(out), "ping %08d", i);

		if (send(c[i], out, l, MSG_NOSIGNAL) != l || recv(s[i], in, l, MSG_WAITALL) != l ||
		    memcmp(in, out, l) || send(s[i], "p", 1, MSG_NOSIGNAL) != 1 ||
		    recv(c[i], in, 1, 0) != 1 || in[0] != 'p') {
			ok = false;
			fail("pair %d: message lost or garbled (%s)", i, strerror(errno));
		}
	}
	in_map = redir_sockets();
	if (ok && in_map >= 0 && in_map - base != 2L * n) {
		ok = false;
		fail("%ld sockets in the redirect map with %d pairs open, expected %d",
		     in_map - base, n, 2 * n);
	}
	/* close from both sides: even pairs client first, odd server first */
	for (int i = 0; i < made; i++) {
		close(i % 2 ? s[i] : c[i]);
		close(i % 2 ? c[i] : s[i]);
	}
	free(c);
	free(s);
	if (!ok)
		return 1;
	printf("pairs: %d concurrent pairs exchanged data in %.2f s; %ld sockets in the map while open\n",
	       n, now_s() - t0, in_map - base);
	return redirected_at_least(&before, (size_t)n * 13, false) && map_drains_to(base) ? 0 : 1;
}

static int usage(void)
{
	fprintf(stderr, "Usage: sockpair [--pin DIR] [--cgroup CGDIR] [-6] [--nonblock] COMMAND\n"
			"  bulk [--bytes N] [--min-redirected BYTES]\n"
			"  slow [--bytes N] [--rate BYTES_PER_S] [--max-queue BYTES]\n"
			"  halfclose [--delay-ms MS]\n"
			"  pairs [-n N]\n");
	return 2;
}

static int join_cgroup(const char *cg)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1) {
		fprintf(stderr, "Error: cannot join cgroup %s: %s\n", cg, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin", required_argument, NULL, 'p' },
		{ "cgroup", required_argument, NULL, 'g' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "rate", required_argument, NULL, 'r' },
		{ "max-queue", required_argument, NULL, 'q' },
		{ "count", required_argument, NULL, 'n' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "nonblock", no_argument, NULL, 'N' },
		{ "min-redirected", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	size_t bytes = 0, max_queue = 16 << 20;
	double rate = 16e6;
	int c, n = 1000, delay_ms = 0;

	while ((c = getopt_long(argc, argv, "p:g:b:r:q:n:d:m:6N", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pin_dir = optarg;
			break;
		case 'g':
			if (join_cgroup(optarg))
				return 1;
			break;
		case 'b':
			bytes = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			rate = strtod(optarg, NULL);
			break;
		case 'q':
			max_queue = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			n = atoi(optarg);
			break;
		case '6':
			family = AF_INET6;
			break;
		case 'd':
			delay_ms = atoi(optarg);
			break;
		case 'N':
			nonblock = true;
			break;
		case 'm':
			min_redirected = strtoull(optarg, NULL, 0);
			break;
		default:
			return usage();
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (optind != argc - 1)
		return usage();
	if (!strcmp(argv[optind], "bulk"))
		return do_bulk(bytes ? bytes : 1ull << 30);
	if (!strcmp(argv[optind], "slow"))
		return do_slow(bytes ? bytes : 32 << 20, rate, max_queue);
	if (!strcmp(argv[optind], "halfclose"))
		return do_halfclose(delay_ms);
	if (!strcmp(argv[optind], "pairs"))
		return do_pairs(n);
	return usage();
}
