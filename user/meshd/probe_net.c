// SPDX-License-Identifier: MIT
/*
 * probe_net.c - the probes of probe.h on the wire and their schedule: a
 * non-blocking connect (tcp), then a GET with its status line read into a
 * bounded buffer (http); a min-heap of idle targets by due time, a list of
 * probes in flight (at most PROBE_MAX_INFLIGHT) with their deadlines, and
 * one timerfd, all behind one epoll fd.
 *
 * Contract: nothing here blocks; every probe ends (result, timeout or
 * cancel) with its socket closed by RST (SO_LINGER 0: 10k probes a second
 * must not leave 600k sockets in TIME_WAIT). A probe's next run is one
 * interval after its start, less up to a tenth of the interval at random,
 * so probes of many backends do not fall into step.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "probe.h"
#include "state.h"

#define PROBE_TIMER_TAG UINT32_MAX
/* Events handled per run: the loop comes back for more (level-triggered). */
#define PROBE_EVENTS 64
/* Probes due this soon start with the ones due now: one wake-up of the
 * loop per batch, not per probe (10k backends at 1 s would otherwise wake
 * meshd 10k times a second). They stay batched: the next run of a probe
 * counts from its start. */
#define PROBE_BATCH_MS 20

static __u64 probe__mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000 + (__u64)ts.tv_nsec / 1000;
}

/* --- the heap of idle targets, by next_ms --- */

static bool heap__less(const struct probe *p, __u32 a, __u32 b)
{
	return p->t[p->heap[a]].next_ms < p->t[p->heap[b]].next_ms;
}

static void heap__swap(struct probe *p, __u32 a, __u32 b)
{
	__u32 x = p->heap[a];

	p->heap[a] = p->heap[b];
	p->heap[b] = x;
}

static void heap__push(struct probe *p, __u32 i)
{
	__u32 k = p->nheap++;

	p->heap[k] = i;
	while (k && heap__less(p, k, (k - 1) / 2)) {
		heap__swap(p, k, (k - 1) / 2);
		k = (k - 1) / 2;
	}
}

static __u32 heap__pop(struct probe *p)
{
	__u32 top = p->heap[0], k = 0;

	p->heap[0] = p->heap[--p->nheap];
	for (;;) {
		__u32 l = 2 * k + 1, r = l + 1, m = k;

		if (l < p->nheap && heap__less(p, l, m))
			m = l;
		if (r < p->nheap && heap__less(p, r, m))
			m = r;
		if (m == k)
			return top;
		heap__swap(p, k, m);
		k = m;
	}
}

/* --- one probe --- */

static int probe__sockaddr(const struct probe_target *t, struct sockaddr_storage *ss,
			   socklen_t *len)
{
	__u16 port = htons(t->hc.port ? t->hc.port : t->port);

	memset(ss, 0, sizeof(*ss));
	if (t->addr.family == SLUICE_AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = port;
		memcpy(&sin->sin_addr, t->addr.addr, 4);
		*len = sizeof(*sin);
		return AF_INET;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = port;
	memcpy(&sin6->sin6_addr, t->addr.addr, 16);
	*len = sizeof(*sin6);
	return AF_INET6;
}

void probe__net_close(struct probe *p, __u32 i)
{
	struct probe_target *t = &p->t[i];

	if (t->fd >= 0)
		close(t->fd); /* also leaves the epoll set */
	t->fd = -1;
	t->phase = PROBE_IDLE;
}

static int probe__watch(struct probe *p, __u32 i, int op, __u32 events)
{
	struct epoll_event ev = { .events = events, .data.u32 = i };

	return epoll_ctl(p->epfd, op, p->t[i].fd, &ev) ? -errno : 0;
}

/* Opens the socket and starts connect(); -errno when it failed at once. */
int probe__net_start(struct probe *p, __u32 i)
{
	struct probe_target *t = &p->t[i];
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct sockaddr_storage ss;
	socklen_t len;
	int family, err;

	family = probe__sockaddr(t, &ss, &len);
	t->fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0)
		return -errno;
	setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	t->phase = PROBE_CONNECTING;
	t->sent = t->got = 0;
	if (connect(t->fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		err = -errno;
		probe__net_close(p, i);
		return err;
	}
	/* connected at once (loopback) or not: EPOLLOUT says when */
	err = probe__watch(p, i, EPOLL_CTL_ADD, EPOLLOUT);
	if (err)
		probe__net_close(p, i);
	return err;
}

int probe__http_status(const char *line, size_t len)
{
	static const char prefix[] = "HTTP/1.";
	int status = 0;

	if (strncmp(line, prefix, len < 7 ? len : 7))
		return -1;
	if (len < 12)
		return 0;
	if (line[7] < '0' || line[7] > '9' || line[8] != ' ')
		return -1;
	for (int k = 9; k < 12; k++) {
		if (line[k] < '0' || line[k] > '9')
			return -1;
		status = status * 10 + line[k] - '0';
	}
	if (len > 12 && line[12] != ' ' && line[12] != '\r' && line[12] != '\n')
		return -1;
	return status;
}

/* The request: small enough for one send on a fresh socket; a short
 * write just waits for EPOLLOUT again. */
static int probe__send(struct probe *p, __u32 i, enum probe_result *r)
{
	struct probe_target *t = &p->t[i];
	char req[DESIRED_HC_PATH_MAX + 256], host[SLUICE_ADDRPORT_STRLEN];
	int len;
	ssize_t n;

	len = snprintf(req, sizeof(req),
		       "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluice-meshd/" SLUICE_VERSION
		       "\r\nAccept: */*\r\nConnection: close\r\n\r\n",
		       t->hc.path,
		       sluice_addr__str_port(&t->addr, t->hc.port ? t->hc.port : t->port, host,
					     sizeof(host)));
	n = send(t->fd, req + t->sent, len - t->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0) {
		*r = PROBE_R_ERROR;
		return 1;
	}
	t->sent += n;
	if (t->sent < len)
		return 0;
	t->phase = PROBE_READING;
	if (probe__watch(p, i, EPOLL_CTL_MOD, EPOLLIN)) {
		*r = PROBE_R_ERROR;
		return 1;
	}
	return 0;
}

/* Reads what fits of the status line; 1 with *r once it is judged. */
static int probe__read(struct probe *p, __u32 i, enum probe_result *r)
{
	struct probe_target *t = &p->t[i];
	int status;
	ssize_t n;

	n = recv(t->fd, t->line + t->got, sizeof(t->line) - 1 - t->got, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0) {
		*r = errno == ECONNREFUSED ? PROBE_R_REFUSED : PROBE_R_ERROR;
		return 1;
	}
	t->got += n;
	t->line[t->got] = '\0';
	status = probe__http_status(t->line, t->got);
	if (status > 0) {
		t->last_http = status;
		*r = status >= 200 && status < 400 ? PROBE_R_OK : PROBE_R_STATUS;
		return 1;
	}
	/* not HTTP, closed before a status line, or no status in the buffer */
	if (status < 0 || !n || t->got == sizeof(t->line) - 1) {
		*r = PROBE_R_ERROR;
		return 1;
	}
	return 0;
}

bool probe__net_io(struct probe *p, __u32 i, __u32 events, enum probe_result *r)
{
	struct probe_target *t = &p->t[i];
	socklen_t len = sizeof(int);
	int soerr = 0;

	if (t->phase == PROBE_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return false;
		/* a clean EPOLLOUT is a completed connect: one syscall less
		 * per probe (10k a second) than asking SO_ERROR every time */
		if (events & (EPOLLERR | EPOLLHUP)) {
			if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &len))
				soerr = errno;
			*r = soerr == ECONNREFUSED ? PROBE_R_REFUSED : PROBE_R_ERROR;
			return true;
		}
		if (t->hc.type == DESIRED_HC_TCP) {
			*r = PROBE_R_OK;
			return true;
		}
		t->phase = PROBE_SENDING;
	}
	if (t->phase == PROBE_SENDING)
		return probe__send(p, i, r) == 1;
	return probe__read(p, i, r) == 1;
}

/* --- the schedule --- */

static void probe__arm(struct probe *p, __u64 at_ms)
{
	struct itimerspec its = { 0 };

	if (at_ms == p->armed_ms)
		return;
	p->armed_ms = at_ms;
	if (at_ms) {
		its.it_value.tv_sec = at_ms / 1000;
		its.it_value.tv_nsec = (at_ms % 1000) * 1000000;
	}
	timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* The next moment something is due: a deadline, or a probe to start. */
static void probe__rearm(struct probe *p)
{
	__u64 at = 0;

	for (__u32 k = 0; k < p->inflight; k++)
		if (!at || p->t[p->fl[k]].deadline_ms < at)
			at = p->t[p->fl[k]].deadline_ms;
	if (p->nheap && p->inflight < PROBE_MAX_INFLIGHT && (!at || p->t[p->heap[0]].next_ms < at))
		at = p->t[p->heap[0]].next_ms;
	/* 0 disarms; a time already past fires at once */
	probe__arm(p, at);
}

static void probe__log_flip(const struct probe_target *t, enum probe_result r)
{
	char ref[DESIRED_SVC_REF_LEN], be[SLUICE_ADDRPORT_STRLEN];

	sluice_svc__str(&t->vip, t->vport, t->proto, ref, sizeof(ref));
	sluice_addr__str_port(&t->addr, t->port, be, sizeof(be));
	if (t->v.down)
		pr_warn("backend %s of %s is unhealthy: %u health checks failed in a row (last: %s%s%.0u): "
			"no new connections until %u pass",
			be, ref, t->hc.unhealthy_threshold, probe__result_name(r),
			t->last_http ? " " : "", t->last_http, t->hc.healthy_threshold);
	else
		pr_info("backend %s of %s is healthy again: %u health checks passed in a row", be,
			ref, t->hc.healthy_threshold);
}

/* Ends the probe in flight at fl[k]: result, verdict, next run. */
static void probe__finish(struct probe *p, __u32 k, enum probe_result r, __u64 now_us)
{
	__u32 i = p->fl[k];
	struct probe_target *t = &p->t[i];
	__u64 us = now_us - t->start_us, jitter = (__u64)rand() % (t->hc.interval_ms / 10 + 1);

	probe__net_close(p, i);
	p->fl[k] = p->fl[--p->inflight];
	p->t[p->fl[k]].slot = k; /* the one moved into slot k (or i itself) */
	if (r != PROBE_R_STATUS)
		t->last_http = 0;
	t->last = r;
	t->last_us = (__u32)(us > UINT32_MAX ? UINT32_MAX : us);
	t->last_at_ms = now_us / 1000;
	t->probes++;
	probe__observe(&p->stats, r, us);
	if (probe__verdict_feed(&t->v, r == PROBE_R_OK, t->hc.healthy_threshold,
				t->hc.unhealthy_threshold)) {
		t->flipped = true;
		p->dirty = true;
		p->stats.transitions++;
		probe__log_flip(t, r);
	}
	t->next_ms = t->start_us / 1000 + t->hc.interval_ms - jitter;
	if (t->next_ms <= now_us / 1000)
		t->next_ms = now_us / 1000 + 1;
	heap__push(p, i);
}

static __u32 probe__slot(const struct probe *p, __u32 i)
{
	__u32 k = p->t[i].slot;

	return k < p->inflight && p->fl[k] == i ? k : UINT32_MAX;
}

/* Due probes into free slots; one that fails at once ends at once. */
static void probe__start_due(struct probe *p, __u64 now_us)
{
	while (p->nheap && p->t[p->heap[0]].next_ms <= now_us / 1000 + PROBE_BATCH_MS) {
		__u32 i, k;
		int err;

		if (p->inflight == PROBE_MAX_INFLIGHT) {
			p->stats.waited++;
			return;
		}
		i = heap__pop(p);
		k = p->inflight++;
		p->fl[k] = i;
		p->t[i].slot = k;
		p->t[i].start_us = now_us;
		p->t[i].deadline_ms = now_us / 1000 + p->t[i].hc.timeout_ms;
		err = probe__net_start(p, i);
		if (err)
			probe__finish(p, k, err == -ECONNREFUSED ? PROBE_R_REFUSED : PROBE_R_ERROR,
				      now_us);
	}
}

static void probe__on_events(struct probe *p, const struct epoll_event *evs, int n)
{
	enum probe_result r;
	__u64 ticks;

	for (int e = 0; e < n; e++) {
		__u32 i = evs[e].data.u32, k;

		if (i == PROBE_TIMER_TAG) {
			if (read(p->tfd, &ticks, sizeof(ticks)) < 0)
				continue; /* EAGAIN: nothing */
			p->armed_ms = 0;
			continue;
		}
		if (i >= p->n || p->t[i].phase == PROBE_IDLE)
			continue; /* ended earlier in this batch */
		if (!probe__net_io(p, i, evs[e].events, &r))
			continue;
		k = probe__slot(p, i);
		if (k != UINT32_MAX)
			probe__finish(p, k, r, p->now_us());
	}
}

void probe__run(struct probe *p)
{
	struct epoll_event evs[PROBE_EVENTS];
	__u64 now_us;
	int n;

	if (p->epfd < 0)
		return;
	n = epoll_wait(p->epfd, evs, PROBE_EVENTS, 0);
	if (n > 0)
		probe__on_events(p, evs, n);
	now_us = p->now_us();
	for (__u32 k = 0; k < p->inflight;) {
		if (p->t[p->fl[k]].deadline_ms <= now_us / 1000)
			probe__finish(p, k, PROBE_R_TIMEOUT, now_us); /* fl[k] is another now */
		else
			k++;
	}
	probe__start_due(p, now_us);
	probe__apply(p);
	probe__rearm(p);
}

int probe__resched(struct probe *p)
{
	__u32 *heap = calloc(p->n + 1, sizeof(*heap));

	if (!heap) {
		pr_warn("health checks: out of memory scheduling probes");
		return -ENOMEM;
	}
	free(p->heap);
	p->heap = heap;
	p->nheap = 0;
	p->inflight = 0;
	for (__u32 i = 0; i < p->n; i++) {
		if (p->t[i].phase == PROBE_IDLE) {
			heap__push(p, i);
			continue;
		}
		/* a probe carried over: its events now name its new index */
		p->t[i].slot = p->inflight;
		p->fl[p->inflight++] = i;
		probe__watch(p, i, EPOLL_CTL_MOD,
			     p->t[i].phase == PROBE_READING ? EPOLLIN : EPOLLOUT);
	}
	if (p->epfd >= 0)
		probe__rearm(p);
	return 0;
}

static void probe__stamp_hook(void *ctx, struct desired *next)
{
	probe__stamp(ctx, next);
}

static void probe__adopted_hook(void *ctx)
{
	struct probe *p = ctx;

	probe__sync(p);
	probe__apply(p);
}

int probe__start(struct probe *p, struct state *st)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = PROBE_TIMER_TAG };
	int err;

	memset(p, 0, sizeof(*p));
	p->st = st;
	p->now_us = probe__mono_us;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (p->epfd < 0 || p->tfd < 0 || epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->tfd, &ev)) {
		err = -errno;
		pr_err("health checks off: epoll/timerfd: %s", strerror(errno));
		probe__stop(p);
		p->epfd = p->tfd = -1;
		return err;
	}
	srand((unsigned int)(probe__mono_us() ^ (__u64)getpid()));
	st->stamp = probe__stamp_hook;
	st->adopted = probe__adopted_hook;
	st->verdict_ctx = p;
	err = probe__sync(p);
	if (!err)
		probe__apply(p);
	if (p->n)
		pr_info("health checks: probing %u backends", p->n);
	return err;
}

void probe__stop(struct probe *p)
{
	if (!p->st)
		return; /* never started */
	for (__u32 i = 0; i < p->n; i++)
		if (p->t[i].phase != PROBE_IDLE)
			probe__net_close(p, i);
	if (p->st->verdict_ctx == p) {
		p->st->stamp = NULL;
		p->st->adopted = NULL;
		p->st->verdict_ctx = NULL;
	}
	if (p->tfd >= 0)
		close(p->tfd);
	if (p->epfd >= 0)
		close(p->epfd);
	free(p->t);
	free(p->heap);
	memset(p, 0, sizeof(*p));
	p->epfd = p->tfd = -1;
}

int probe__fd(const struct probe *p)
{
	return p->epfd;
}
