// SPDX-License-Identifier: MIT
/*
 * telemtool - the agent side of the telemetry e2e test: what meshd will
 * do with user/lib/telemetry, metrics and http, in one small process.
 *
 * Contract:
 *   telemtool --pin DIR --cgroup PATH [--listen ADDR] [--port-file F]
 *             [--ring-bytes N] [--interval S] [--paused] [--telem-pin]
 *     opens the datapath maps pinned under DIR (made by lbtool load),
 *     loads the telemetry program and attaches it to the cgroup v2
 *     directory PATH (refused when PATH is a cgroup2 mount root), and
 *     serves GET /metrics on ADDR (default 127.0.0.1:0; the bound port is
 *     written to F). The ring buffer is read from the epoll loop, except
 *     while --paused: SIGUSR1 starts reading. Services are re-read every
 *     second (telemetry__sync). SIGUSR2 prints the recent records, one per
 *     line, to stdout. SIGTERM/SIGINT: exit; the attachment ends with the
 *     process unless --telem-pin pinned it under DIR.
 *   telemtool --pin DIR unpin
 *     removes what --telem-pin left (link and telem_* maps).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "http.h"
#include "metrics.h"
#include "sluice.h"
#include "telemetry.h"

static int die(const char *what)
{
	const char *msg = sluice__errmsg();

	fprintf(stderr, "Error: %s%s%s\n", what, *msg ? ": " : "", msg);
	return 1;
}

static int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

/* A cgroup2 mount root has another device than its parent directory. */
static bool is_mount_root(const char *path)
{
	char parent[4096];
	struct stat a, b;

	snprintf(parent, sizeof(parent), "%s/..", path);
	return stat(path, &a) || stat(parent, &b) || a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

static int render(void *ctx, FILE *out)
{
	return metrics__render(ctx, out);
}

static void print_rec(const struct sluice_telem_rec *r)
{
	struct sluice_addr l = { .family = r->family }, p = { .family = r->family };
	char lb[SLUICE_ADDRPORT_STRLEN], pb[SLUICE_ADDRPORT_STRLEN];

	memcpy(l.addr, r->laddr, sizeof(l.addr));
	memcpy(p.addr, r->raddr, sizeof(p.addr));
	printf("%s %s %s -> %s svc %u backend %u reason %s acked %llu received %llu srtt_us %u rtos %u\n",
	       telemetry__type_name(r->type), telemetry__dir_name(r->dir),
	       sluice_addr__str_port(&l, r->lport, lb, sizeof(lb)),
	       sluice_addr__str_port(&p, r->rport, pb, sizeof(pb)), r->svc_id, r->backend_id,
	       telemetry__reason_name(r->reason), (unsigned long long)r->bytes_acked,
	       (unsigned long long)r->bytes_received, r->srtt_us, r->rtos);
}

static void dump_recent(struct telemetry *t)
{
	static struct sluice_telem_rec recs[1024];
	size_t n = telemetry__recent(t, recs, 1024);

	for (size_t i = 0; i < n; i++)
		print_rec(&recs[i]);
	printf("-- %zu records\n", n);
	fflush(stdout);
}

static int write_port(const char *file, unsigned int port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f))
		return -1;
	return rename(tmp, file);
}

struct loop {
	struct telemetry *t;
	struct http *h;
	int ep, sfd, tfd;
	bool paused;
};

static int loop__add(int ep, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* Returns 1 to stop. */
static int loop__signal(struct loop *l)
{
	struct signalfd_siginfo si;

	if (read(l->sfd, &si, sizeof(si)) != sizeof(si))
		return 0;
	if (si.ssi_signo == SIGUSR1 && l->paused) {
		l->paused = false;
		loop__add(l->ep, telemetry__ring_fd(l->t));
		telemetry__consume(l->t);
	} else if (si.ssi_signo == SIGUSR2) {
		dump_recent(l->t);
	} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
		return 1;
	}
	return 0;
}

static int loop__run(struct loop *l)
{
	struct epoll_event evs[8];
	__u64 ticks;

	for (;;) {
		int ms = http__timeout_ms(l->h);
		int n;

		/* the kernel wakes us per batch: drain on a short tick too */
		if (ms < 0 || ms > TELEMETRY_DRAIN_MS)
			ms = TELEMETRY_DRAIN_MS;
		n = epoll_wait(l->ep, evs, 8, ms);

		if (n < 0 && errno != EINTR)
			return die("epoll_wait");
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == l->sfd && loop__signal(l))
				return 0;
			if (fd == l->tfd && read(l->tfd, &ticks, sizeof(ticks)) > 0 &&
			    telemetry__sync(l->t))
				fprintf(stderr, "warning: sync: %s\n", sluice__errmsg());
		}
		if (!l->paused && telemetry__consume(l->t) < 0)
			fprintf(stderr, "warning: consume: %s\n", sluice__errmsg());
		http__run(l->h);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pin", required_argument, NULL, 'p' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "port-file", required_argument, NULL, 'f' },
		{ "ring-bytes", required_argument, NULL, 'r' },
		{ "interval", required_argument, NULL, 'i' },
		{ "paused", no_argument, NULL, 'P' },
		{ "telem-pin", no_argument, NULL, 'T' },
		{},
	};
	const char *pin = NULL, *cgroup = NULL, *listen = "127.0.0.1:0", *port_file = NULL;
	struct telemetry_opts topts = {};
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };
	struct loop l = { .ep = -1, .sfd = -1, .tfd = -1 };
	bool telem_pin = false;
	struct sluice *s = NULL;
	struct http_route route;
	struct metrics_src src;
	sigset_t mask;
	int opt, cgfd = -1, rc = 1;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			pin = optarg;
			break;
		case 'c':
			cgroup = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'f':
			port_file = optarg;
			break;
		case 'r':
			topts.ring_bytes = strtoul(optarg, NULL, 0);
			break;
		case 'i':
			topts.interval_s = strtoul(optarg, NULL, 0);
			break;
		case 'P':
			l.paused = true;
			break;
		case 'T':
			telem_pin = true;
			break;
		default:
			return 2;
		}
	}
	libbpf_set_print(quiet_libbpf);
	if (pin && optind < argc && !strcmp(argv[optind], "unpin"))
		return telemetry__unpin(pin) ? die("unpin") : 0;
	if (!pin || !cgroup) {
		fprintf(stderr,
			"usage: telemtool --pin DIR --cgroup PATH [--listen ADDR] [--port-file F] [--ring-bytes N] [--interval S] [--paused] [--telem-pin]\n"
			"       telemtool --pin DIR unpin\n");
		return 2;
	}
	if (is_mount_root(cgroup)) {
		fprintf(stderr,
			"Error: %s is a cgroup2 mount root (or missing): use a child cgroup\n",
			cgroup);
		return 1;
	}
	if (sluice__open(&s, &(struct sluice_opts){ .pin_dir = pin }))
		return die("opening the datapath maps");
	cgfd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		fprintf(stderr, "Error: cgroup %s: %s\n", cgroup, strerror(errno));
		goto cleanup;
	}
	topts.pin_dir = telem_pin ? pin : NULL;
	if (telemetry__open(&l.t, s, cgfd, &topts)) {
		die("telemetry");
		goto cleanup;
	}
	src = (struct metrics_src){ .s = s, .t = l.t, .start_time = (double)time(NULL) };
	route = (struct http_route){ "/metrics", METRICS_CONTENT_TYPE, render, &src };
	if (http__start(&l.h,
			&(struct http_opts){ .bind = listen, .routes = &route, .nroutes = 1 })) {
		die("metrics server");
		goto cleanup;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	l.sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	l.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	l.ep = epoll_create1(EPOLL_CLOEXEC);
	if (l.sfd < 0 || l.tfd < 0 || l.ep < 0 || timerfd_settime(l.tfd, 0, &its, NULL) ||
	    loop__add(l.ep, l.sfd) || loop__add(l.ep, l.tfd) || loop__add(l.ep, http__fd(l.h)) ||
	    (!l.paused && loop__add(l.ep, telemetry__ring_fd(l.t)))) {
		fprintf(stderr, "Error: event loop setup: %s\n", strerror(errno));
		goto cleanup;
	}
	if (port_file && write_port(port_file, http__port(l.h))) {
		fprintf(stderr, "Error: %s: %s\n", port_file, strerror(errno));
		goto cleanup;
	}
	fprintf(stderr, "telemtool: /metrics on port %u, telemetry on %s%s\n", http__port(l.h),
		cgroup, l.paused ? " (ring reader paused)" : "");
	rc = loop__run(&l);
cleanup:
	http__stop(l.h);
	telemetry__close(l.t);
	sluice__close(s);
	if (cgfd >= 0)
		close(cgfd);
	if (l.ep >= 0)
		close(l.ep);
	if (l.sfd >= 0)
		close(l.sfd);
	if (l.tfd >= 0)
		close(l.tfd);
	return rc;
}
