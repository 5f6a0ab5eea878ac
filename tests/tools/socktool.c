// SPDX-License-Identifier: MIT
/*
 * socktool - the socket-level programs from the command line, for the
 * e2e tests: attach/detach/inspect through user/lib/sock/sock.h, plus echo
 * servers and checking clients for the socket LB.
 *
 * Contract: control commands open the datapath pinned under --pin DIR
 * (created by `lbtool load`) and the socket programs with the same DIR, so
 * attachments are pinned links that outlive this process. --cgroup DIR
 * moves this process into that cgroup v2 directory before the command
 * runs (clients that the cgroup programs must see). Clients bound every
 * wait (5 s per step), print one summary line, and exit 0 only when every
 * check passed. Errors print "Error: ..." and exit 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "sluice.h"
#include "sock.h"

#define DEFAULT_PIN_DIR "/sys/fs/bpf/sluice"
#define STEP_TIMEOUT_S 5
#define MAX_NAMES 16

static const char *pin_dir = DEFAULT_PIN_DIR;
static __u32 redir_queue_max;
static bool verbose;

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static int usage(void);

static void __attribute__((format(printf, 1, 2))) err_msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "Error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

static int lib_err(int err, const char *what)
{
	const char *msg = sluice__errmsg();

	err_msg("%s: %s", what, msg && *msg ? msg : strerror(err < 0 ? -err : err));
	return 1;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_WARN && !verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int dispatch(const struct cmd *cmds, const char *what, int argc, char **argv)
{
	const struct cmd *hit = NULL;
	size_t len;

	if (argc < 1) {
		err_msg("missing %s command", what);
		return usage();
	}
	len = strlen(argv[0]);
	for (const struct cmd *c = cmds; c->name; c++) {
		if (strncmp(c->name, argv[0], len))
			continue;
		if (strlen(c->name) == len) {
			hit = c;
			break;
		}
		if (hit) {
			err_msg("ambiguous %s command '%s'", what, argv[0]);
			return 1;
		}
		hit = c;
	}
	if (!hit) {
		err_msg("unknown %s command '%s'", what, argv[0]);
		return usage();
	}
	return hit->fn(argc - 1, argv + 1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- control */

struct handles {
	struct sluice *s;
	struct sluice_sock *ss;
};

static int handles__open(struct handles *h)
{
	struct sluice_opts o = { .pin_dir = pin_dir };
	struct sluice_sock_opts so = { .pin_dir = pin_dir, .redir_queue_max = redir_queue_max };
	int err;

	err = sluice__open(&h->s, &o);
	if (err)
		return lib_err(err, "opening the datapath");
	err = sluice_sock__open(&h->ss, h->s, &so);
	if (err) {
		sluice__close(h->s);
		return lib_err(err, "opening the socket programs");
	}
	return 0;
}

static void handles__close(struct handles *h)
{
	sluice_sock__close(h->ss);
	sluice__close(h->s);
}

static int part_of(const char *text, bool *redir)
{
	if (!strcmp(text, "lb")) {
		*redir = false;
		return 0;
	}
	if (!strcmp(text, "redir")) {
		*redir = true;
		return 0;
	}
	err_msg("expected \"lb\" or \"redir\", not \"%s\"", text);
	return -EINVAL;
}

static int do_attach(int argc, char **argv)
{
	struct handles h;
	bool redir;
	int err;

	if (argc != 2 || part_of(argv[0], &redir))
		return usage();
	if (handles__open(&h))
		return 1;
	err = redir ? sluice_sock__attach_redir(h.ss, argv[1]) :
		      sluice_sock__attach_lb(h.ss, argv[1]);
	if (err)
		lib_err(err, "attach");
	handles__close(&h);
	return err ? 1 : 0;
}

static int do_detach(int argc, char **argv)
{
	struct handles h;
	bool redir;
	int err;

	if (argc != 1 || part_of(argv[0], &redir))
		return usage();
	if (handles__open(&h))
		return 1;
	err = redir ? sluice_sock__detach_redir(h.ss) : sluice_sock__detach_lb(h.ss);
	if (err)
		lib_err(err, "detach");
	handles__close(&h);
	return err ? 1 : 0;
}

static int do_selftest(int argc, char **argv)
{
	char why[256];
	struct handles h;
	int err;

	if (argc != 1)
		return usage();
	if (handles__open(&h))
		return 1;
	err = sluice_sock__attach_redir(h.ss, argv[0]);
	if (err) {
		lib_err(err, "attach");
	} else {
		err = sluice_sock__redir_selftest(h.ss, why, sizeof(why));
		if (err)
			printf("selftest: FAILED: %s\n", why);
		else
			printf("selftest: passed\n");
	}
	handles__close(&h);
	return err ? 1 : 0;
}

static int do_info(int argc, char **argv)
{
	struct sluice_sock_info info;
	struct handles h;
	int err;

	(void)argv;
	if (argc)
		return usage();
	if (handles__open(&h))
		return 1;
	err = sluice_sock__info(h.ss, &info);
	if (err) {
		lib_err(err, "info");
	} else {
		printf("lb_attached %d\nlb_cgroup_id %llu\nredir_attached %d\nredir_cgroup_id %llu\n",
		       info.lb_attached, (unsigned long long)info.lb_cgroup_id, info.redir_attached,
		       (unsigned long long)info.redir_cgroup_id);
		for (int i = 0; i < SLUICE_SOCK_CNT__MAX; i++)
			printf("%s %llu\n", sluice_sock__counter_name(i),
			       (unsigned long long)info.lb[i]);
		for (int i = 0; i < SLUICE_REDIR_CNT__MAX; i++)
			printf("%s %llu\n", sluice_sock__redir_counter_name(i),
			       (unsigned long long)info.redir[i]);
		printf("redir_sockets %u\n", info.redir_sockets);
	}
	handles__close(&h);
	return err ? 1 : 0;
}

static int do_addr(int argc, char **argv)
{
	struct sluice_addr a;
	struct handles h;
	int err;

	if (argc != 2 || (strcmp(argv[0], "add") && strcmp(argv[0], "del")))
		return usage();
	if (sluice_addr__parse(&a, argv[1]))
		return lib_err(-EINVAL, "address");
	if (handles__open(&h))
		return 1;
	err = !strcmp(argv[0], "add") ? sluice_sock__redir_addr_add(h.ss, &a) :
					sluice_sock__redir_addr_del(h.ss, &a);
	if (err)
		lib_err(err, "addr");
	handles__close(&h);
	return err ? 1 : 0;
}

static int do_unpin(int argc, char **argv)
{
	int err;

	(void)argv;
	if (argc)
		return usage();
	err = sluice_sock__unpin(pin_dir);
	return err ? lib_err(err, "unpin") : 0;
}

/* ---------------------------------------------------------------- traffic */

struct ep {
	struct sockaddr_storage ss;
	socklen_t len;
};

static int ep_parse(struct ep *e, const char *host, const char *port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&e->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&e->ss;
	char *end;
	long p = strtol(port, &end, 10);

	memset(e, 0, sizeof(*e));
	if (*end || p <= 0 || p > 65535) {
		err_msg("bad port \"%s\"", port);
		return -EINVAL;
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(p);
		e->len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(p);
		e->len = sizeof(*s6);
		return 0;
	}
	err_msg("bad address \"%s\"", host);
	return -EINVAL;
}

static bool ep_eq(const struct ep *a, const struct sockaddr_storage *b, socklen_t blen)
{
	return a->len == blen && !memcmp(&a->ss, b, blen);
}

static const char *ep_str(const struct sockaddr_storage *s, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (s->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)s;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
	} else {
		const struct sockaddr_in6 *s6 = (const void *)s;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
	}
	return buf;
}

/* The address a failed check saw, for the failure line. */
static char seen[INET6_ADDRSTRLEN + 16];

static bool peer_is(const struct ep *vip, const struct sockaddr_storage *s, socklen_t len)
{
	if (ep_eq(vip, s, len))
		return true;
	ep_str(s, seen, sizeof(seen));
	return false;
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = STEP_TIMEOUT_S };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = recv(fd, (char *)buf + got, len - got, 0);

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

		if (w <= 0)
			return -1;
		done += w;
	}
	return 0;
}

/* Server: "NAME\n" then echo, per TCP connection; UDP: "NAME " + payload. */
struct conn {
	int fd;
	const char *name;
};

static void *serve_conn(void *arg)
{
	struct conn *c = arg;
	char buf[65536];
	ssize_t r;

	set_timeouts(c->fd);
	if (!write_full(c->fd, c->name, strlen(c->name)) && !write_full(c->fd, "\n", 1))
		while ((r = recv(c->fd, buf, sizeof(buf), 0)) > 0)
			if (write_full(c->fd, buf, r))
				break;
	close(c->fd);
	free(c);
	return NULL;
}

static int do_serve(int argc, char **argv)
{
	const char *name, *ready = argc == 5 && !strcmp(argv[3], "--ready") ? argv[4] : NULL;
	int one = 1, lfd, ufd;
	struct ep e;

	if (argc != 3 && !ready)
		return usage();
	name = argv[0];
	if (ep_parse(&e, argv[1], argv[2]))
		return 1;
	lfd = socket(e.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ufd = socket(e.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || ufd < 0 || bind(lfd, (struct sockaddr *)&e.ss, e.len) || listen(lfd, 1024) ||
	    bind(ufd, (struct sockaddr *)&e.ss, e.len)) {
		err_msg("serve %s:%s: %s", argv[1], argv[2], strerror(errno));
		return 1;
	}
	if (ready) {
		FILE *f = fopen(ready, "w");

		if (f)
			fclose(f);
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN },
				       { .fd = ufd, .events = POLLIN } };

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents & POLLIN) {
			struct conn *c = malloc(sizeof(*c));
			pthread_t t;

			if (!c)
				return 1;
			c->name = name;
			c->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (c->fd < 0 || pthread_create(&t, NULL, serve_conn, c)) {
				if (c->fd >= 0)
					close(c->fd);
				free(c);
			} else {
				pthread_detach(t);
			}
		}
		if (p[1].revents & POLLIN) {
			char in[2048], out[2200];
			struct sockaddr_storage from;
			socklen_t flen = sizeof(from);
			ssize_t r = recvfrom(ufd, in, sizeof(in) - 1, 0, (struct sockaddr *)&from,
					     &flen);
			int n;

			if (r < 0)
				continue;
			n = snprintf(out, sizeof(out), "%s %.*s", name, (int)r, in);
			sendto(ufd, out, n, 0, (struct sockaddr *)&from, flen);
		}
	}
}

/* Client options shared by tcp and udp. */
struct client_opts {
	int n;
	size_t bytes;
	const char *expect; /* "be1,be2": each must answer at least once */
	bool refused;       /* every attempt must fail with ECONNREFUSED < 1 s */
	bool fail;          /* every attempt must fail (programs not attached) */
	bool connected;     /* udp: connect() + send() instead of sendto() */
};

struct tally {
	char names[MAX_NAMES][64];
	int count[MAX_NAMES];
	int nnames;
};

static void tally_add(struct tally *t, const char *name)
{
	for (int i = 0; i < t->nnames; i++)
		if (!strcmp(t->names[i], name)) {
			t->count[i]++;
			return;
		}
	if (t->nnames == MAX_NAMES)
		return;
	snprintf(t->names[t->nnames], sizeof(t->names[0]), "%s", name);
	t->count[t->nnames++] = 1;
}

/* Prints the tally; false when an expected name never answered. */
static bool tally_check(const struct tally *t, const char *expect)
{
	char buf[256], *tok, *save;
	bool ok = true;

	printf(" backends");
	for (int i = 0; i < t->nnames; i++)
		printf(" %s=%d", t->names[i], t->count[i]);
	printf("\n");
	if (!expect)
		return true;
	snprintf(buf, sizeof(buf), "%s", expect);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool seen = false;

		for (int i = 0; i < t->nnames; i++)
			seen |= !strcmp(t->names[i], tok);
		if (!seen) {
			printf("  expected backend %s never answered\n", tok);
			ok = false;
		}
	}
	return ok;
}

static int parse_client_opts(int argc, char **argv, struct client_opts *o)
{
	static const struct option lo[] = {
		{ "count", required_argument, NULL, 'n' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "expect", required_argument, NULL, 'e' },
		{ "refused", no_argument, NULL, 'r' },
		{ "fail", no_argument, NULL, 'f' },
		{ "connected", no_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct client_opts){ .n = 1, .bytes = 1000 };
	/* argv[-1] is the command word: getopt skips element 0. */
	optind = 1;
	while ((c = getopt_long(argc + 1, argv - 1, "n:b:e:rfc", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			o->n = atoi(optarg);
			break;
		case 'b':
			o->bytes = strtoul(optarg, NULL, 0);
			break;
		case 'e':
			o->expect = optarg;
			break;
		case 'r':
			o->refused = true;
			break;
		case 'f':
			o->fail = true;
			break;
		case 'c':
			o->connected = true;
			break;
		default:
			return -EINVAL;
		}
	}
	return optind - 1;
}

/* One TCP exchange; returns NULL or what went wrong. */
static const char *tcp_once(const struct ep *vip, const struct client_opts *o, char *name,
			    size_t nlen, unsigned char *out, unsigned char *in)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	const char *why = NULL;
	double t0 = now_s();
	size_t n = 0;
	int fd, rc;

	fd = socket(vip->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return "socket() failed";
	set_timeouts(fd);
	rc = connect(fd, (struct sockaddr *)&vip->ss, vip->len);
	if (o->refused) {
		if (!rc || errno != ECONNREFUSED)
			why = rc ? "connect failed, but not with ECONNREFUSED" :
				   "connect succeeded";
		else if (now_s() - t0 > 1.0)
			why = "ECONNREFUSED took longer than 1 s";
		goto out;
	}
	if (o->fail) {
		why = rc ? NULL : "connect succeeded";
		goto out;
	}
	if (rc) {
		why = "connect failed";
		goto out;
	}
	if (getpeername(fd, (struct sockaddr *)&peer, &plen) || !peer_is(vip, &peer, plen)) {
		why = "getpeername() is not the VIP";
		goto out;
	}
	while (n + 1 < nlen && recv(fd, &name[n], 1, 0) == 1 && name[n] != '\n')
		n++;
	name[n] = '\0';
	if (!n) {
		why = "no backend name";
		goto out;
	}
	for (size_t i = 0; i < o->bytes; i++)
		out[i] = rand();
	if (write_full(fd, out, o->bytes) || read_full(fd, in, o->bytes) ||
	    memcmp(in, out, o->bytes))
		why = "echoed bytes differ";
out:
	close(fd);
	return why;
}

static int do_tcp(int argc, char **argv)
{
	unsigned char *out, *in;
	struct client_opts o;
	struct tally t = {};
	char name[64];
	int i, ok = 0, arg;
	struct ep vip;

	arg = parse_client_opts(argc, argv, &o);
	if (arg < 0 || argc - arg != 2 || ep_parse(&vip, argv[arg], argv[arg + 1]))
		return usage();
	out = malloc(o.bytes + 1);
	in = malloc(o.bytes + 1);
	if (!out || !in)
		return 1;
	for (i = 0; i < o.n; i++) {
		const char *why = tcp_once(&vip, &o, name, sizeof(name), out, in);

		if (why) {
			printf("tcp: connection %d of %d to %s:%s: %s (%s%s%s)\n", i + 1, o.n,
			       argv[arg], argv[arg + 1], why, strerror(errno),
			       *seen ? ", saw " : "", seen);
			break;
		}
		ok++;
		if (!o.refused && !o.fail)
			tally_add(&t, name);
	}
	printf("tcp %s:%s: %d/%d ok%s", argv[arg], argv[arg + 1], ok, o.n,
	       o.refused ? " (refused)" :
	       o.fail    ? " (failed as expected)" :
			   ", peer = VIP;");
	if (o.refused || o.fail)
		printf("\n");
	else if (!tally_check(&t, o.expect))
		ok = -1;
	free(out);
	free(in);
	return ok == o.n ? 0 : 1;
}

static const char *udp_once(const struct ep *vip, const struct client_opts *o, int i, char *name,
			    size_t nlen)
{
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	char msg[64], in[256], tok[32], *sp;
	const char *why = NULL;
	ssize_t r = -1;
	int fd, len;

	fd = socket(vip->ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return "socket() failed";
	set_timeouts(fd);
	snprintf(tok, sizeof(tok), "tok%d-%d", getpid(), i);
	len = snprintf(msg, sizeof(msg), "whoami %s", tok);
	if (o->connected) {
		if (connect(fd, (struct sockaddr *)&vip->ss, vip->len)) {
			why = o->refused && errno == ECONNREFUSED ? NULL : "connect failed";
			goto out;
		}
		r = send(fd, msg, len, 0);
	} else {
		r = sendto(fd, msg, len, 0, (struct sockaddr *)&vip->ss, vip->len);
	}
	if (o->refused || o->fail) {
		if (r >= 0)
			why = "the datagram was sent";
		else if (o->refused && errno != ECONNREFUSED)
			why = "sendto failed, but not with ECONNREFUSED";
		goto out;
	}
	if (r != len) {
		why = "send failed";
		goto out;
	}
	r = recvfrom(fd, in, sizeof(in) - 1, 0, (struct sockaddr *)&from, &flen);
	if (r <= 0) {
		why = "no reply";
		goto out;
	}
	in[r] = '\0';
	if (!peer_is(vip, &from, flen)) {
		why = "the reply's source (recvfrom) is not the VIP";
		goto out;
	}
	if (o->connected) {
		flen = sizeof(from);
		if (getpeername(fd, (struct sockaddr *)&from, &flen) ||
		    !peer_is(vip, &from, flen)) {
			why = "getpeername() is not the VIP";
			goto out;
		}
	}
	sp = strchr(in, ' ');
	if (!sp || strcmp(sp + 1, msg)) {
		why = "the reply does not echo the request";
		goto out;
	}
	*sp = '\0';
	snprintf(name, nlen, "%.63s", in);
out:
	close(fd);
	return why;
}

static int do_udp(int argc, char **argv)
{
	struct client_opts o;
	struct tally t = {};
	char name[64];
	int i, ok = 0, arg;
	struct ep vip;

	arg = parse_client_opts(argc, argv, &o);
	if (arg < 0 || argc - arg != 2 || ep_parse(&vip, argv[arg], argv[arg + 1]))
		return usage();
	for (i = 0; i < o.n; i++) {
		const char *why = udp_once(&vip, &o, i, name, sizeof(name));

		if (why) {
			printf("udp: datagram %d of %d to %s:%s: %s (%s%s%s)\n", i + 1, o.n,
			       argv[arg], argv[arg + 1], why, strerror(errno),
			       *seen ? ", saw " : "", seen);
			break;
		}
		ok++;
		if (!o.refused && !o.fail)
			tally_add(&t, name);
	}
	printf("udp%s %s:%s: %d/%d ok%s", o.connected ? " connected" : "", argv[arg], argv[arg + 1],
	       ok, o.n,
	       o.refused ? " (refused)\n" :
	       o.fail    ? " (failed as expected)\n" :
			   ", reply source = VIP;");
	if (!o.refused && !o.fail && !tally_check(&t, o.expect))
		ok = -1;
	return ok == o.n ? 0 : 1;
}

/* ------------------------------------------------------------------ main */

static const struct cmd cmds[] = {
	{ "attach", do_attach }, { "detach", do_detach }, { "selftest", do_selftest },
	{ "info", do_info },     { "addr", do_addr },     { "unpin", do_unpin },
	{ "serve", do_serve },   { "tcp", do_tcp },       { "udp", do_udp },
	{ NULL, NULL },
};

static int usage(void)
{
	fprintf(stderr,
		"Usage: socktool [--pin DIR] [--cgroup CGDIR] [--queue-max BYTES] [-v] COMMAND\n"
		"  attach lb|redir CGDIR        attach socket LB / redirect (pinned links)\n"
		"  detach lb|redir\n"
		"  selftest CGDIR               attach the redirect, run the self-test\n"
		"  info                         attachment, counters, redirect map size\n"
		"  addr add|del ADDR            extra local address for the redirect\n"
		"  unpin                        detach and remove the socket pins under DIR\n"
		"  serve NAME ADDR PORT [--ready FILE]   TCP+UDP echo server\n"
		"  tcp [-n N] [--bytes B] [--expect A,B] [--refused|--fail] ADDR PORT\n"
		"  udp [-n N] [--connected] [--expect A,B] [--refused|--fail] ADDR PORT\n"
		"--cgroup moves this process into CGDIR first. --queue-max: the redirect's\n"
		"receive-queue bound (attach/selftest of redir). DIR defaults to " DEFAULT_PIN_DIR
		".\n");
	return 2;
}

static int join_cgroup(const char *cg)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1) {
		err_msg("cannot join cgroup %s: %s", cg, strerror(errno));
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
		{ "queue-max", required_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "+p:g:q:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pin_dir = optarg;
			break;
		case 'q':
			redir_queue_max = strtoul(optarg, NULL, 0);
			break;
		case 'g':
			if (join_cgroup(optarg))
				return 1;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			return usage();
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	srand(getpid());
	libbpf_set_print(libbpf_print);
	return dispatch(cmds, "socktool", argc - optind, argv + optind);
}
