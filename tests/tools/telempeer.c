// SPDX-License-Identifier: MIT
/*
 * telempeer - the two ends of the telemetry e2e test's TCP connections.
 *
 * Contract:
 *   telempeer serve ADDR:PORT [--ready FILE]
 *     echo server (IPv4 or [IPv6]): echoes what it reads, closes after the
 *     client's FIN; runs until SIGTERM/SIGINT. FILE is created once it
 *     listens.
 *   telempeer connect ADDR:PORT -n N [--bytes B] [--hold-ms MS]
 *                    [--expect ok|refused|timeout] [--syncnt K]
 *     N connections one after another. ok: each sends B bytes (default
 *     1000), reads them back intact (over MS milliseconds in 10 rounds
 *     when --hold-ms is given), half-closes, waits for the server's FIN
 *     and closes: exactly one established-and-closed connection each.
 *     refused/timeout: each connect() must fail with ECONNREFUSED /
 *     ETIMEDOUT (--syncnt sets TCP_SYNCNT to bound the wait). Exits 0 when
 *     all N went as expected, else 1 with the first failure on stderr.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int parse_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	const char *colon = strrchr(text, ':');
	char host[64];
	size_t n;

	if (!colon)
		return -1;
	n = colon - text;
	if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
		text++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return -1;
	memcpy(host, text, n);
	host[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(atoi(colon + 1));
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(atoi(colon + 1));
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int serve(const char *addr, const char *ready)
{
	struct epoll_event ev, evs[64];
	struct sockaddr_storage ss;
	socklen_t len;
	int lfd, ep, one = 1;
	char buf[65536];

	if (parse_addr(addr, &ss, &len)) {
		fprintf(stderr, "Error: bad address %s\n", addr);
		return 1;
	}
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 1024)) {
		fprintf(stderr, "Error: listen on %s: %s\n", addr, strerror(errno));
		return 1;
	}
	ep = epoll_create1(0);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.fd = lfd };
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	if (ready)
		close(open(ready, O_CREAT | O_WRONLY, 0600));
	while (!stop) {
		int n = epoll_wait(ep, evs, 64, 200);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			ssize_t r;

			if (fd == lfd) {
				int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);

				if (c >= 0) {
					ev = (struct epoll_event){ .events = EPOLLIN,
								   .data.fd = c };
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			r = read(fd, buf, sizeof(buf));
			if (r > 0) {
				/* small test payloads: a blocking-ish write loop is fine */
				for (ssize_t off = 0; off < r;) {
					ssize_t w = write(fd, buf + off, r - off);

					if (w > 0)
						off += w;
					else if (w < 0 && errno != EAGAIN)
						break;
				}
			} else if (r == 0 || errno != EAGAIN) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				close(fd);
			}
		}
	}
	return 0;
}

static int read_full(int fd, char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t r = read(fd, buf + off, len - off);

		if (r <= 0)
			return -1;
		off += r;
	}
	return 0;
}

static int one_conn(const struct sockaddr_storage *ss, socklen_t len, size_t bytes, int hold_ms,
		    int syncnt, int *err_out)
{
	int fd = socket(ss->ss_family, SOCK_STREAM, 0), rounds = hold_ms ? 10 : 1;
	char *out = malloc(bytes + 1), *in = malloc(bytes + 1), c;
	/* a tenth of the hold per round; tv_nsec must stay below 1 s (a hold
	 * of 10 s or more as one tv_nsec made nanosleep fail at once) */
	struct timespec pause = { hold_ms / 10 / 1000, (long)(hold_ms / 10 % 1000) * 1000000L };
	int rc = -1;

	*err_out = 0;
	if (fd < 0 || !out || !in)
		goto cleanup;
	if (syncnt)
		setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &syncnt, sizeof(syncnt));
	if (connect(fd, (const struct sockaddr *)ss, len)) {
		*err_out = errno;
		goto cleanup;
	}
	for (size_t i = 0; i < bytes; i++)
		out[i] = (char)('a' + i % 26);
	for (int r = 0; r < rounds; r++) {
		size_t chunk = bytes / rounds + (r == rounds - 1 ? bytes % rounds : 0);
		size_t off = (bytes / rounds) * r;

		if (write(fd, out + off, chunk) != (ssize_t)chunk || read_full(fd, in + off, chunk))
			goto io;
		if (hold_ms)
			nanosleep(&pause, NULL);
	}
	if (memcmp(in, out, bytes))
		goto io;
	shutdown(fd, SHUT_WR);
	if (read(fd, &c, 1) != 0) /* the server's FIN */
		goto io;
	rc = 0;
	goto cleanup;
io:
	*err_out = errno ? errno : EIO;
cleanup:
	if (fd >= 0)
		close(fd);
	free(out);
	free(in);
	return rc;
}

static int connect_many(int argc, char **argv)
{
	const char *expect = "ok";
	struct sockaddr_storage ss;
	int n = 1, hold_ms = 0, syncnt = 0, err;
	size_t bytes = 1000;
	socklen_t len;

	if (argc < 1 || parse_addr(argv[0], &ss, &len)) {
		fprintf(stderr, "Error: connect ADDR:PORT -n N ...\n");
		return 1;
	}
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "-n"))
			n = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--bytes"))
			bytes = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--hold-ms"))
			hold_ms = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--expect"))
			expect = argv[i + 1];
		else if (!strcmp(argv[i], "--syncnt"))
			syncnt = atoi(argv[i + 1]);
		else {
			fprintf(stderr, "Error: unknown option %s\n", argv[i]);
			return 1;
		}
	}
	for (int i = 0; i < n; i++) {
		int rc = one_conn(&ss, len, bytes, hold_ms, syncnt, &err);
		int want = !strcmp(expect, "refused") ? ECONNREFUSED :
			   !strcmp(expect, "timeout") ? ETIMEDOUT :
							0;

		if ((want == 0 && rc) || (want && err != want)) {
			fprintf(stderr, "Error: connection %d to %s: %s (expected %s)\n", i + 1,
				argv[0], err ? strerror(err) : "connected", expect);
			return 1;
		}
	}
	printf("%d connections to %s: %s\n", n, argv[0], expect);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 3 && !strcmp(argv[1], "serve"))
		return serve(argv[2], argc >= 5 && !strcmp(argv[3], "--ready") ? argv[4] : NULL);
	if (argc >= 3 && !strcmp(argv[1], "connect"))
		return connect_many(argc - 2, argv + 2);
	fprintf(stderr,
		"usage: telempeer serve ADDR:PORT [--ready FILE]\n"
		"       telempeer connect ADDR:PORT -n N [--bytes B] [--hold-ms MS] [--expect ok|refused|timeout] [--syncnt K]\n");
	return 2;
}
