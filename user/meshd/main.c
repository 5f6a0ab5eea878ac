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
 * op) detaches and unpins. The API, netlink, the ring buffer, /metrics and
 * the connection streams share one epoll loop; only the policy cut runs in
 * a thread of its own (#15, policy_cut_async.c), so no client waits for it.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sluice.h"
#include "telemetry.h"

#include "attach.h"
#include "config.h"
#include "conns.h"
#include "ct.h"
#include "dispatch.h"
#include "exporter.h"
#include "follow.h"
#include "k8sint.h"
#include "kfeat.h"
#include "log.h"
#include "meshd.h"
#include "netlink.h"
#include "notify.h"
#include "pin.h"
#include "server.h"
#include "sockint.h"
#include "state.h"
#include "telem.h"

/* Attachments re-checked this often: link events miss tc filters, downs. */
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
	EV_HEALTH, /* the kernel's ejections (#14) */
	EV_PROBE,  /* active health checks: probes and their timer */
};

static int main__epoll_add(int epfd, int fd, enum main_event ev)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u32 = ev };
	int err = epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) ? -errno : 0;

	if (err)
		pr_err("epoll: %s", strerror(-err));
	return err;
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

/* Answers queued at exit get this long to reach their clients. */
#define MAIN_API_FLUSH_MS 1000

static int main__min_ms(int a, int b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* How long the loop may sleep: the next deadline of the HTTP server, the
 * API connections, Kubernetes and the deferred deletes (deferred.h), at
 * most TELEMETRY_DRAIN_MS while telemetry records may be waiting. */
static int main__wait_ms(struct meshd *m)
{
	int ms = main__min_ms(exporter__timeout_ms(&m->exporter), server__timeout_ms(&m->api));
	int k8s = k8sint__timeout_ms(&m->kube), defer = deferred__timeout_ms(&m->defer);

	ms = main__min_ms(ms, main__min_ms(k8s, defer));
	if (telem__ring_fd(&m->telem) < 0)
		return ms;
	return ms < 0 || ms > TELEMETRY_DRAIN_MS ? TELEMETRY_DRAIN_MS : ms;
}

/* Every fd of the loop; the optional parts only when they run. */
static int main__epoll_setup(struct meshd *m, int epfd, int sfd, int tfd, struct netlink *nl,
			     struct server *srv)
{
	int err;

	err = main__epoll_add(epfd, sfd, EV_SIGNAL);
	if (!err)
		err = main__epoll_add(epfd, netlink__fd(nl), EV_NETLINK);
	if (!err)
		err = main__epoll_add(epfd, server__fd(srv), EV_API);
	if (!err)
		err = main__epoll_add(epfd, tfd, EV_TIMER);
	if (!err && telem__ring_fd(&m->telem) >= 0)
		err = main__epoll_add(epfd, telem__ring_fd(&m->telem), EV_RING);
	if (!err && exporter__fd(&m->exporter) >= 0)
		err = main__epoll_add(epfd, exporter__fd(&m->exporter), EV_HTTP);
	if (!err)
		err = main__epoll_add(epfd, follow__fd(&m->follow), EV_FOLLOW);
	if (!err && k8sint__fd(&m->kube) >= 0)
		err = main__epoll_add(epfd, k8sint__fd(&m->kube), EV_KUBE);
	if (!err && outlier__fd(&m->outlier) >= 0)
		err = main__epoll_add(epfd, outlier__fd(&m->outlier), EV_HEALTH);
	if (!err && probe__fd(&m->probe) >= 0)
		err = main__epoll_add(epfd, probe__fd(&m->probe), EV_PROBE);
	return err;
}

/* Unconfirmed flows nobody answered stay in ct_new until hit or evicted;
 * sweeping them on the check tick empties the table within 20 s after a
 * flood, so it shows the real load again. */
static void main__ct_sweep(struct meshd *m)
{
	struct timespec t0, t1;
	__u64 removed, left;
	__u32 addrs;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ct__sweep(m->sl, &removed, &left, &addrs)) {
		pr_warn("conntrack sweep: %s", sluice__errmsg());
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (removed || addrs)
		pr_info("conntrack sweep: %llu expired unconfirmed entries removed, %llu left, "
			"%u removed backend address(es) without flows (%ld ms)",
			(unsigned long long)removed, (unsigned long long)left, addrs,
			(long)((t1.tv_sec - t0.tv_sec) * 1000 +
			       (t1.tv_nsec - t0.tv_nsec) / 1000000));
}

static void main__on_event(struct meshd *m, enum main_event ev, int sfd, int tfd,
			   struct netlink *nl)
{
	__u64 ticks;

	switch (ev) {
	case EV_SIGNAL:
		main__on_signal(m, sfd);
		break;
	case EV_NETLINK:
		netlink__read(nl);
		break;
	case EV_API:
		break; /* served by the loop, after every wait */
	case EV_TIMER:
		if (read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks)) {
			attach__check_all(&m->att);
			main__ct_sweep(m);
			k8sint__tick(&m->kube);
		}
		break;
	case EV_RING:
		break; /* drained by the loop, after every wait */
	case EV_KUBE:
		break; /* served by the loop, after every wait */
	case EV_FOLLOW:
		follow__run(&m->follow);
		break;
	case EV_HTTP:
		break; /* served by the loop, after every wait */
	case EV_HEALTH:
		outlier__read(&m->outlier);
		break;
	case EV_PROBE:
		probe__run(&m->probe);
		break;
	}
}

/* A large update or listing leaves hundreds of MB of freed heap (the
 * request's and the answer's JSON, the plan, the old state) that glibc
 * keeps: small allocations made meanwhile pin the heap's top, so it is
 * never trimmed by itself. Once the request is served and its buffers are
 * freed, hand the free pages back. Only after an API request or a change,
 * not every tick: a trim walks the heap's free chunks. */
static void main__trim(struct meshd *m)
{
	if (m->trim)
		malloc_trim(0);
	m->trim = false;
}

/* Serve the API; give the heap back once an answer is out (a read of 20k
 * services builds ~300 MB of JSON); fold the journal once changes stop. */
static void main__serve(struct meshd *m, struct server *srv)
{
	__u64 answered = srv->st.closed[SERVER_CLOSE_ANSWERED], held = srv->st.held;

	server__run(srv);
	/* Not for answers to staged one-service changes alone: their buffers
	 * are small, and a trim's madvise plus the page faults after it were
	 * a third of meshd's time in a burst of them (perf, #16). */
	m->trim |= srv->st.closed[SERVER_CLOSE_ANSWERED] - answered > srv->st.held - held;
	state__compact(&m->state, false);
}

static int main__loop(struct meshd *m, int sfd, struct netlink *nl, struct server *srv)
{
	struct itimerspec every = { .it_interval.tv_sec = MAIN_CHECK_INTERVAL_S,
				    .it_value.tv_sec = MAIN_CHECK_INTERVAL_S };
	const char *telemetry = m->cfg.telemetry ? "unavailable" : "off";
	struct epoll_event evs[8];
	int epfd, tfd, n, err;

	epfd = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (epfd < 0 || tfd < 0 || timerfd_settime(tfd, 0, &every, NULL)) {
		err = -errno;
		pr_err("epoll/timerfd: %s", strerror(errno));
		goto cleanup;
	}
	err = main__epoll_setup(m, epfd, sfd, tfd, nl, srv);
	if (err)
		goto cleanup;
	/* Records that waited in the ring while no meshd ran. */
	telem__read(&m->telem);
	m->trim = true; /* the start's reconcile may have been large */
	main__trim(m);
	if (m->telem.t)
		telemetry = "on";
	pr_info("meshd ready: %d interface(s) attached, %u service(s), API on %s, metrics %s, "
		"telemetry %s",
		attach__count(&m->att), m->state.desired.nservices, srv->path,
		m->cfg.metrics ? m->cfg.metrics : "off", telemetry);
	/* systemd (Type=notify): started only now, with the datapath in place */
	err = notify__send("READY=1\nSTATUS=datapath attached, API serving");
	if (err)
		pr_warn("cannot tell systemd meshd is ready ($NOTIFY_SOCKET): %s", strerror(-err));
	err = 0;
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
		for (int i = 0; i < n && !m->stop; i++)
			main__on_event(m, evs[i].data.u32, sfd, tfd, nl);
		/* every wait: connections past a deadline are closed even
		 * when nothing else happened */
		if (!m->stop) {
			telem__read(&m->telem);
			exporter__run(&m->exporter);
			k8sint__run(&m->kube);
			main__serve(m, srv);
			deferred__run(&m->defer, m->sl);
		}
		main__trim(m);
	}
cleanup:
	if (tfd >= 0)
		close(tfd);
	if (epfd >= 0)
		close(epfd);
	return err;
}

/* Every telemetry record: to the connection streams, if there are any. */
static void main__on_record(const struct sluice_telem_rec *rec, void *ctx)
{
	struct meshd *m = ctx;

	if (follow__count(&m->follow))
		conns__broadcast(&m->conns, &m->follow, rec);
}

/* The services maps changed: ids held by conns and telemetry may move. */
static void main__on_change(void *ctx)
{
	struct meshd *m = ctx;

	conns__stale(&m->conns);
	telem__changed(&m->telem);
	m->trim |= !m->state.group.n; /* a whole commit, not a staged change */
}

/* Signals wait in the signalfd: a SIGTERM during start-up ends it later. */
static int main__signalfd(void)
{
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		pr_err("signalfd: %s", strerror(errno));
	return sfd;
}

static void main__log_start(const struct meshd_config *cfg)
{
	pr_info("meshd %s starting: interfaces \"%s\", xdp mode %s, fib forward %s, pins %s, "
		"state %s (if missing: %s), socket %s, cgroup %s, metrics %s, telemetry %s "
		"(interval %us)",
		SLUICE_VERSION, cfg->interfaces, attach__mode_name(cfg->xdp_mode),
		config__fwd_mode(cfg), cfg->bpffs, cfg->state,
		state__missing_name(cfg->state_missing), cfg->socket,
		cfg->cgroup ? cfg->cgroup : "(none found)", cfg->metrics ? cfg->metrics : "off",
		cfg->telemetry ? "on" : "off", cfg->telemetry_interval);
	if (!cfg->cgroup)
		pr_warn("no cgroup2 mount found: socket-level hooks (telemetry) will be unavailable");
	kfeat__log();
}

/* The state file; a missing one with services in the pinned maps is
 * refused here, before the programs are replaced (--state-missing). */
static int main__load_state(struct meshd *m)
{
	__u32 n = 0;
	int err;

	m->state.on_missing = m->cfg.state_missing;
	err = state__load(&m->state, m->cfg.state);
	if (!err && m->state.missing)
		err = pin__count_services(m->cfg.bpffs, &n);
	if (!err)
		err = state__check_missing(&m->state, n);
	return err;
}

/* Everything that can refuse start-up does so before the datapath is
 * touched: a bad state file must not replace working programs. *lock is
 * the pin dir's lock (-1 until taken). */
static int main__prepare(struct meshd *m, struct server *srv, int *lock)
{
	int err;

	err = pin__mount_bpffs(m->cfg.bpffs);
	if (err)
		return err;
	*lock = pin__lock(m->cfg.bpffs);
	if (*lock < 0) {
		if (*lock == -EBUSY)
			pr_err("pin dir %s is in use by another meshd: stop it first, or talk to it with meshctl",
			       m->cfg.bpffs);
		err = *lock;
		*lock = -1;
		return err;
	}
	err = pin__check_layout(m->cfg.bpffs);
	if (!err)
		err = main__load_state(m);
	if (!err)
		err = server__open(srv, m->cfg.socket,
				   &(struct server_opts){ .max_request = m->cfg.api_max_request,
							  .handle = dispatch__request,
							  .hold = dispatch__hold,
							  .sync = dispatch__sync,
							  .ctx = m });
	if (!err)
		err = exporter__start(&m->exporter, m->cfg.metrics);
	return err;
}

/* Load the datapath, reusing the maps an earlier meshd pinned, and hand
 * it to the parts that read it. */
static int main__load(struct meshd *m)
{
	struct sluice_opts sopts = { .pin_dir = m->cfg.bpffs };
	bool reused = pin__has_maps(m->cfg.bpffs);
	__u64 ct = 0;
	int err;

	sopts.cfg = config__datapath_cfg(&m->cfg);
	sopts.reuse_progs = !m->cfg.reload_programs;
	sopts.build_id = PIN_BUILD_ID;
	err = sluice__open(&m->sl, &sopts);
	if (err) {
		pr_err("%s", sluice__errmsg());
		return err;
	}
	/* before the reconcile writes any service; its policy cut waits for
	 * the worker sockint__start() starts with the scope set (#15) */
	sluice__set_outlier_detection(m->sl, m->cfg.outlier_detection);
	err = sluice__policy_cut_async(m->sl) ?: pin__write_layout(m->cfg.bpffs);
	if (err)
		return err;
	pin__log_progs(m->sl);
	if (reused) {
		sluice__ct_count(m->sl, &ct);
		pr_info("datapath loaded, reusing the maps pinned in %s: %llu conntrack entries kept",
			m->cfg.bpffs, (unsigned long long)ct);
	} else {
		pr_info("datapath loaded, maps pinned in %s", m->cfg.bpffs);
	}
	m->state.maps = state__sluice_maps(m->sl);
	m->state.changed = main__on_change;
	m->state.changed_ctx = m;
	m->state.group.done = dispatch__done; /* held answers go out */
	m->state.group.done_ctx = m;
	conns__init(&m->conns, m->sl, &m->state.desired);
	exporter__set_view(&m->exporter,
			   &(struct exporter_view){ .sl = m->sl,
						    .telem = &m->telem,
						    .sock = &m->sock,
						    .kube = &m->kube,
						    .outlier = &m->outlier,
						    .probe = &m->probe,
						    .api = &m->api,
						    .att = &m->att,
						    .desired = &m->state.desired,
						    .started_at = m->started_at,
						    .backends = m->cfg.metrics_backends });
	return 0;
}

/* After the reconcile: entries an interrupted update left (a kill -9
 * between an update's backends, tables and service entries) that no
 * service refers to. Cheap (one walk of each map); never fatal. */
static void main__sweep(struct meshd *m)
{
	struct sluice_sweep sw;

	if (sluice__sweep(m->sl, &sw)) {
		pr_warn("sweeping map entries no service explains: %s", sluice__errmsg());
		return;
	}
	if (sw.tables_skipped)
		pr_info("Maglev tables not swept: on kernels before 6.7 every read of a slot "
			"waits for an RCU grace period (minutes for all); a leftover table is "
			"freed when its service id is used again");
	if (sw.backends || sw.tables || sw.markers)
		pr_warn("removed map entries no service explains (left by an interrupted update): "
			"%u backend(s), %u Maglev table(s), %u VIP marker(s)",
			sw.backends, sw.tables, sw.markers);
	else
		pr_info("swept the maps: every entry belongs to a service");
}

/* Interfaces first, then the maps' services, then what builds on them. */
static int main__start_parts(struct meshd *m, struct netlink *nl)
{
	const struct meshd_config *cfg = &m->cfg;
	struct netlink_ops link_ops;
	int err;

	err = attach__init(&m->att, m->sl, cfg->xdp_mode, cfg->interfaces);
	if (err) {
		pr_err("out of memory");
		return err;
	}
	m->att.fwd_auto = !cfg->fib_forward && !cfg->fwd_off;
	attach__link_ops(&m->att, &link_ops);
	err = netlink__open(nl, &link_ops);
	if (err)
		return err;
	if (!m->att.npatterns)
		pr_warn("no --interfaces given: the datapath is attached nowhere");
	attach__log_waiting(&m->att);
	err = state__reconcile(&m->state);
	if (err)
		return err;
	main__sweep(m);
	outlier__start(&m->outlier, m->sl, &m->state.desired, cfg->outlier_detection);
	probe__start(&m->probe, &m->state); /* never fatal; the maps' verdicts are in */
	/* After the reconcile: its first sync sees the services as they stay. */
	telem__start(&m->telem,
		     &(struct telem_cfg){ .enabled = cfg->telemetry,
					  .pin_dir = cfg->bpffs,
					  .cgroup = cfg->cgroup,
					  .interval_s = cfg->telemetry_interval,
					  .on_record = main__on_record,
					  .ctx = m },
		     m->sl);
	/* Like telemetry, never a condition for the datapath: failures are
	 * logged and shown by status. */
	sockint__start(&m->sock,
		       &(struct sockint_cfg){ .socket_lb = cfg->socket_lb,
					      .redirect = cfg->redirect,
					      .cgroup = cfg->cgroup,
					      .pin_dir = cfg->bpffs,
					      .policy_cut_all = cfg->policy_cut_all },
		       m->sl);
	/* After the reconcile: the state file's kubernetes services stay in
	 * the maps until the first full list replaces them. */
	return k8sint__start(&m->kube,
			     &(struct k8sint_cfg){ .enabled = cfg->kubernetes,
						   .kubeconfig = cfg->kubeconfig,
						   .nodeport_addresses = cfg->nodeport_addresses,
						   .snat = &m->cfg.snat,
						   .sl = m->sl,
						   .state = &m->state });
}

/* Nothing here detaches or unpins: the datapath outlives meshd, and so
 * does a pinned telemetry attachment. */
static void main__teardown(struct meshd *m, struct server *srv, struct netlink *nl, int lock)
{
	/* answers queued by the last ops (uninstall's among them) go out first */
	server__flush(srv, MAIN_API_FLUSH_MS);
	follow__free(&m->follow);
	exporter__stop(&m->exporter);
	telem__stop(&m->telem);
	sockint__stop(&m->sock);
	k8sint__stop(&m->kube);
	outlier__stop(&m->outlier);
	probe__stop(&m->probe);
	conns__free(&m->conns);
	server__close(srv);
	netlink__close(nl);
	attach__free(&m->att);
	state__free(&m->state);
	/* An empty pin dir of a start that failed early is ours to remove
	 * (rmdir never removes pins; the lock says no one else is using it). */
	if (!m->sl && lock >= 0)
		rmdir(m->cfg.bpffs);
	sluice__close(m->sl);
	if (lock >= 0)
		close(lock);
}

static int main__run(struct meshd *m)
{
	struct server *srv = &m->api;
	struct netlink nl = { 0 };
	int lock = -1, sfd, err;

	*srv = (struct server){ .fd = -1, .epfd = -1 };

	/* First: follow__free() below is only safe after it. */
	if (follow__init(&m->follow))
		return 1;
	sfd = main__signalfd();
	if (sfd < 0) {
		follow__free(&m->follow);
		return 1;
	}
	m->started_at = time(NULL);
	main__log_start(&m->cfg);
	err = main__prepare(m, srv, &lock);
	if (!err)
		err = main__load(m);
	if (!err)
		err = main__start_parts(m, &nl);
	if (!err) /* after the first attach (#16) */
		pin__save_progs(m->sl, m->cfg.bpffs);
	if (!err)
		err = main__loop(m, sfd, &nl, srv);
	main__teardown(m, srv, &nl, lock);
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
	rc = config__parse(argc, argv, &m.cfg);
	if (rc) {
		config__free(&m.cfg);
		return rc == 1 ? 0 : 2;
	}
	log__set_level(m.cfg.log_level);
	log__hook_libbpf();
	/* A client that hangs up early must not kill the agent. */
	signal(SIGPIPE, SIG_IGN);
	rc = m.cfg.cleanup ? pin__cleanup(m.cfg.bpffs) : main__run(&m);
	config__free(&m.cfg);
	return rc;
}
