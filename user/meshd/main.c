// SPDX-License-Identifier: MIT
/*
 * main.c - meshd, the Sluice node agent: start-up, --cleanup and the
 * event loop (settings come from config.c).
 *
 * Contract: start-up reuses whatever an earlier meshd left in the kernel
 * (pinned maps, attached programs, the telemetry attachment and its ring)
 * and replaces programs atomically; exit by signal leaves all of it in
 * place, so restarting meshd never breaks a connection and loses no
 * connection record the ring could hold. Only --cleanup (or the uninstall
 * op) detaches and unpins. One thread: the API, netlink, the ring buffer,
 * the /metrics server and the connection streams share one epoll loop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "desired.h"
#include "sluice.h"
#include "telemetry.h"

#include "attach.h"
#include "config.h"
#include "conns.h"
#include "exporter.h"
#include "follow.h"
#include "k8sint.h"
#include "log.h"
#include "meshd.h"
#include "netlink.h"
#include "pin.h"
#include "server.h"
#include "sockint.h"
#include "state.h"
#include "telem.h"

static int main__cleanup(const struct meshd_config *cfg)
{
	int lock, n, err = 0;
	struct stat st;

	lock = pin__lock_existing(cfg->bpffs);
	if (lock < 0) {
		if (lock == -EBUSY)
			pr_err("meshd is running on %s: use `meshctl uninstall`, or stop it first",
			       cfg->bpffs);
		return 1;
	}
	n = attach__cleanup();
	if (!stat(cfg->bpffs, &st))
		err = pin__remove(cfg->bpffs);
	else
		pr_info("nothing pinned: %s does not exist", cfg->bpffs);
	if (lock > 0)
		close(lock);
	if (n < 0 || err) {
		pr_err("cleanup incomplete (see above)");
		return 1;
	}
	pr_info("cleanup done: %d programs detached", n);
	return 0;
}

/* Link events do not cover everything (tc filters, down interfaces):
 * attachments are re-checked this often. */
#define MAIN_CHECK_INTERVAL_S 10

enum main_event {
	EV_SIGNAL,
	EV_NETLINK,
	EV_API,
	EV_TIMER,
	EV_RING,   /* telemetry records */
	EV_HTTP,   /* GET /metrics */
	EV_FOLLOW, /* connection streams */
	EV_KUBE,   /* a new set from the Kubernetes sync */
};

static int main__epoll_add(int epfd, int fd, enum main_event ev)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u32 = ev };

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e)) {
		int err = -errno;

		pr_err("epoll: %s", strerror(errno));
		return err;
	}
	return 0;
}

static void main__on_signal(struct meshd *m, int sfd)
{
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			pr_info("SIGHUP ignored (nothing to reload: the state changes through the API)");
			continue;
		}
		pr_info("%s received: exiting; programs stay attached and maps pinned",
			si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		m->stop = true;
	}
}

/* How long the loop may sleep: the HTTP server's next deadline, and at
 * most TELEMETRY_DRAIN_MS while telemetry records may be waiting. */
static int main__wait_ms(struct meshd *m)
{
	int ms = exporter__timeout_ms(&m->exporter);

	if (telem__ring_fd(m) < 0)
		return ms;
	return ms < 0 || ms > TELEMETRY_DRAIN_MS ? TELEMETRY_DRAIN_MS : ms;
}

static int main__loop(struct meshd *m, int sfd, struct netlink *nl, struct server *srv)
{
	struct itimerspec every = { .it_interval.tv_sec = MAIN_CHECK_INTERVAL_S,
				    .it_value.tv_sec = MAIN_CHECK_INTERVAL_S };
	const char *telemetry = m->cfg.telemetry ? "unavailable" : "off";
	struct epoll_event evs[8];
	int epfd, tfd, n, err;
	__u64 ticks;

	epfd = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (epfd < 0 || tfd < 0 || timerfd_settime(tfd, 0, &every, NULL)) {
		err = -errno;
		pr_err("epoll/timerfd: %s", strerror(errno));
		goto cleanup;
	}
	err = main__epoll_add(epfd, sfd, EV_SIGNAL);
	if (!err)
		err = main__epoll_add(epfd, netlink__fd(nl), EV_NETLINK);
	if (!err)
		err = main__epoll_add(epfd, srv->fd, EV_API);
	if (!err)
		err = main__epoll_add(epfd, tfd, EV_TIMER);
	if (!err && telem__ring_fd(m) >= 0)
		err = main__epoll_add(epfd, telem__ring_fd(m), EV_RING);
	if (!err && exporter__fd(&m->exporter) >= 0)
		err = main__epoll_add(epfd, exporter__fd(&m->exporter), EV_HTTP);
	if (!err)
		err = main__epoll_add(epfd, follow__fd(&m->follow), EV_FOLLOW);
	if (!err && k8sint__fd(m) >= 0)
		err = main__epoll_add(epfd, k8sint__fd(m), EV_KUBE);
	if (err)
		goto cleanup;
	/* Records that waited in the ring while no meshd ran. */
	telem__read(m);
	if (m->telem.t)
		telemetry = "on";
	pr_info("meshd ready: %d interface(s) attached, %u service(s), API on %s, metrics %s, "
		"telemetry %s",
		attach__count(&m->att), m->desired.nservices, srv->path,
		m->cfg.metrics ? m->cfg.metrics : "off", telemetry);
	while (!m->stop) {
		/* the HTTP server has its own deadlines (idle connections);
		 * telemetry is drained on a short tick, see telemetry.h */
		n = epoll_wait(epfd, evs, 8, main__wait_ms(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			pr_err("epoll_wait: %s", strerror(errno));
			break;
		}
		/* After uninstall not even one more link event: it would attach again. */
		for (int i = 0; i < n && !m->stop; i++) {
			switch (evs[i].data.u32) {
			case EV_SIGNAL:
				main__on_signal(m, sfd);
				break;
			case EV_NETLINK:
				netlink__read(nl);
				break;
			case EV_API:
				server__serve(srv, m);
				break;
			case EV_TIMER:
				if (read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
					attach__check_all(&m->att);
				break;
			case EV_RING:
				break; /* drained below, after every wait */
			case EV_KUBE:
				k8sint__poll(m);
				break;
			case EV_FOLLOW:
				follow__run(&m->follow);
				break;
			case EV_HTTP:
				break; /* served below, after every wait */
			}
		}
		if (!m->stop) {
			telem__read(m);
			exporter__run(&m->exporter);
		}
	}
cleanup:
	if (tfd >= 0)
		close(tfd);
	if (epfd >= 0)
		close(epfd);
	return err;
}

static int main__run(struct meshd *m)
{
	struct sluice_opts sopts = { .pin_dir = m->cfg.bpffs };
	struct server srv = { .fd = -1 };
	struct netlink_ops link_ops;
	struct netlink nl = { 0 };
	int lock = -1, sfd = -1, err;
	__u64 ct = 0;
	sigset_t mask;
	bool reused;

	/* First: follow__free() below is only safe after it. */
	if (follow__init(&m->follow))
		return 1;
	/* Signals wait in the signalfd until the loop runs: a SIGTERM during
	 * start-up still ends meshd cleanly, just a little later. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		pr_err("signalfd: %s", strerror(errno));
		follow__free(&m->follow);
		return 1;
	}
	m->started_at = time(NULL);
	pr_info("meshd %s starting: interfaces \"%s\", xdp mode %s, fib forward %s, pins %s, "
		"state %s, socket %s, cgroup %s, metrics %s, telemetry %s (interval %us)",
		SLUICE_VERSION, m->cfg.interfaces, attach__mode_name(m->cfg.xdp_mode),
		m->cfg.fib_forward ? "on" : "off", m->cfg.bpffs, m->cfg.state, m->cfg.socket,
		m->cfg.cgroup ? m->cfg.cgroup : "(none found)",
		m->cfg.metrics ? m->cfg.metrics : "off", m->cfg.telemetry ? "on" : "off",
		m->cfg.telemetry_interval);
	if (!m->cfg.cgroup)
		pr_warn("no cgroup2 mount found: socket-level hooks (telemetry) will be unavailable");

	err = pin__mount_bpffs(m->cfg.bpffs);
	if (err)
		goto cleanup;
	lock = pin__lock(m->cfg.bpffs);
	if (lock < 0) {
		if (lock == -EBUSY)
			pr_err("pin dir %s is in use by another meshd: stop it first, or talk to it with meshctl",
			       m->cfg.bpffs);
		err = lock;
		goto cleanup;
	}
	err = pin__check_layout(m->cfg.bpffs);
	if (err)
		goto cleanup;
	/* Everything that can refuse start-up does so before the datapath
	 * is touched: a bad state file must not replace working programs. */
	err = state__load(m->cfg.state, &m->desired);
	if (err)
		goto cleanup;
	err = server__open(&srv, m->cfg.socket);
	if (err)
		goto cleanup;
	err = exporter__start(m);
	if (err)
		goto cleanup;

	reused = pin__has_maps(m->cfg.bpffs);
	sopts.cfg = m->cfg.fib_forward ? SLUICE_CFG_FIB_FORWARD : 0;
	err = sluice__open(&m->sl, &sopts);
	if (err) {
		pr_err("%s", sluice__errmsg());
		goto cleanup;
	}
	err = pin__write_layout(m->cfg.bpffs);
	if (err)
		goto cleanup;
	if (reused) {
		sluice__ct_count(m->sl, &ct);
		pr_info("datapath loaded, reusing the maps pinned in %s: %llu conntrack entries kept",
			m->cfg.bpffs, (unsigned long long)ct);
	} else {
		pr_info("datapath loaded, maps pinned in %s", m->cfg.bpffs);
	}

	err = attach__init(&m->att, m->sl, m->cfg.xdp_mode, m->cfg.interfaces);
	if (err) {
		pr_err("out of memory");
		goto cleanup;
	}
	attach__link_ops(&m->att, &link_ops);
	err = netlink__open(&nl, &link_ops);
	if (err)
		goto cleanup;
	if (!m->att.npatterns)
		pr_warn("no --interfaces given: the datapath is attached nowhere");
	attach__log_waiting(&m->att);
	err = state__reconcile(m);
	if (err)
		goto cleanup;
	/* After the reconcile: its first sync sees the services as they stay. */
	telem__start(m);
	/* Like telemetry, never a condition for the datapath: failures are
	 * logged and shown by status. */
	sockint__start(m);
	/* After the reconcile: the state file's kubernetes services stay in
	 * the maps until the first full list replaces them. */
	err = k8sint__start(m);
	if (err)
		goto cleanup;
	err = main__loop(m, sfd, &nl, &srv);
cleanup:
	/* Nothing here detaches or unpins: the datapath outlives meshd, and
	 * so does a pinned telemetry attachment. */
	follow__free(&m->follow);
	exporter__stop(&m->exporter);
	telem__stop(m);
	sockint__stop(m);
	k8sint__stop(m);
	conns__free(&m->conns);
	server__close(&srv);
	netlink__close(&nl);
	attach__free(&m->att);
	desired__free(&m->desired);
	/* An empty pin dir of a start that failed early is ours to remove
	 * (rmdir never removes pins; the lock says no one else is using it). */
	if (!m->sl && lock >= 0)
		rmdir(m->cfg.bpffs);
	sluice__close(m->sl);
	if (lock >= 0)
		close(lock);
	close(sfd);
	if (err)
		pr_err("meshd exits with an error; the datapath keeps running as it is");
	else if (m->uninstalled)
		pr_info("meshd uninstalled: programs detached, pins removed");
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct meshd m;
	int rc;

	memset(&m, 0, sizeof(m));
	desired__init(&m.desired);
	rc = config__parse(argc, argv, &m.cfg);
	if (rc) {
		config__free(&m.cfg);
		return rc == 1 ? 0 : 2;
	}
	log__set_level(m.cfg.log_level);
	log__hook_libbpf();
	/* A client that hangs up early must not kill the agent. */
	signal(SIGPIPE, SIG_IGN);
	rc = m.cfg.cleanup ? main__cleanup(&m.cfg) : main__run(&m);
	config__free(&m.cfg);
	return rc;
}
