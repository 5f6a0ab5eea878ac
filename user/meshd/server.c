// SPDX-License-Identifier: MIT
/*
 * server.c - the API socket: listening, accepting, deadlines and the
 * connection table (see server.h; one connection: server_conn.c).
 */
#define _GNU_SOURCE /* struct ucred, accept4 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.h"

#include "log.h"
#include "server.h"
#include "server_conn.h"

/* Accepting stops this long when we are out of file descriptors: the
 * listening socket stays readable, and retrying at once would spin. */
#define SERVER_ACCEPT_PAUSE_MS 100
#define SERVER_ACCEPT_BATCH 64
#define SERVER_BACKLOG 256
/* epoll data of the listening socket; connection i is i + 1 */
#define SERVER_EV_LISTEN 0

static const char *const server_close_names[SERVER_CLOSE__MAX] = {
	[SERVER_CLOSE_ANSWERED] = "answered",
	[SERVER_CLOSE_DEADLINE] = "deadline",
	[SERVER_CLOSE_ANSWER_DEADLINE] = "answer_deadline",
	[SERVER_CLOSE_EVICTED] = "evicted",
	[SERVER_CLOSE_FULL] = "full",
	[SERVER_CLOSE_PEER] = "peer",
	[SERVER_CLOSE_STREAM] = "stream",
	[SERVER_CLOSE_STOP] = "stop",
};

const char *server__close_reason_name(enum server_close_reason r)
{
	return r < SERVER_CLOSE__MAX ? server_close_names[r] : "?";
}

/* mkdir -p with 0755 for what is missing; existing dirs keep their mode. */
static int server__mkdirs(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* A leftover socket file from a killed meshd is removed; a live one is not. */
static int server__clear_stale(const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, err;

	if (lstat(addr->sun_path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		pr_err("API socket %s exists and is not a socket", addr->sun_path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	err = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	close(fd);
	if (!err) {
		pr_err("another meshd is serving %s; stop it first", addr->sun_path);
		return -EADDRINUSE;
	}
	if (unlink(addr->sun_path) && errno != ENOENT)
		return -errno;
	return 0;
}

static void server__set_opts(struct server *srv, const struct server_opts *opts)
{
	srv->o = *opts;
	if (!srv->o.max_request)
		srv->o.max_request = SERVER_MAX_REQUEST_DEFAULT;
	if (!srv->o.max_conns)
		srv->o.max_conns = SERVER_MAX_CONNS_DEFAULT;
	if (!srv->o.request_ms)
		srv->o.request_ms = SERVER_REQUEST_MS_DEFAULT;
	if (!srv->o.answer_ms)
		srv->o.answer_ms = SERVER_ANSWER_MS_DEFAULT;
}

/* The connection table and the epoll fd that watches it. */
static int server__alloc(struct server *srv)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SERVER_EV_LISTEN };

	srv->conns = calloc(srv->o.max_conns, sizeof(*srv->conns));
	if (!srv->conns) {
		pr_err("API socket: out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < srv->o.max_conns; i++)
		srv->conns[i].fd = -1;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0 || epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->fd, &ev)) {
		int err = -errno;

		pr_err("API socket: epoll: %s", strerror(errno));
		return err;
	}
	return 0;
}

static int server__listen(struct server *srv, const struct sockaddr_un *addr)
{
	mode_t old_umask;
	int err;

	srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv->fd < 0) {
		err = -errno;
		pr_err("API socket: %s", strerror(errno));
		return err;
	}
	/* Created 0600 from the start: no window in which anyone may connect. */
	old_umask = umask(0177);
	err = bind(srv->fd, (const struct sockaddr *)addr, sizeof(*addr));
	umask(old_umask);
	if (err) {
		err = -errno;
		pr_err("API socket %s: %s", srv->path, strerror(errno));
		return err;
	}
	srv->bound = true;
	if (chmod(srv->path, 0600) || listen(srv->fd, SERVER_BACKLOG)) {
		err = -errno;
		pr_err("API socket %s: %s", srv->path, strerror(errno));
		return err;
	}
	return 0;
}

int server__open(struct server *srv, const char *path, const struct server_opts *opts)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int err;

	memset(srv, 0, sizeof(*srv));
	srv->fd = srv->epfd = -1;
	server__set_opts(srv, opts);
	if (strlen(path) >= sizeof(addr.sun_path)) {
		pr_err("API socket path %s is longer than %zu bytes", path,
		       sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	err = server__mkdirs(path);
	if (err) {
		pr_err("API socket directory for %s: %s", path, strerror(-err));
		return err;
	}
	err = server__clear_stale(&addr);
	if (!err)
		err = server__listen(srv, &addr);
	if (!err)
		err = server__alloc(srv);
	if (err)
		server__close(srv); /* and the socket file, if bound */
	return err;
}

int server__fd(const struct server *srv)
{
	return srv->epfd;
}

static struct server_conn *server__idle_longest(struct server *srv)
{
	struct server_conn *best = NULL;

	for (size_t i = 0; i < srv->o.max_conns; i++) {
		struct server_conn *c = &srv->conns[i];

		if (c->state != CONN_FREE && c->state != CONN_HELD &&
		    (!best || c->last_io < best->last_io))
			best = c;
	}
	return best;
}

static struct server_conn *server__free_slot(struct server *srv)
{
	for (size_t i = 0; i < srv->o.max_conns; i++)
		if (srv->conns[i].state == CONN_FREE)
			return &srv->conns[i];
	return NULL;
}

/* A slot for a checked peer: a free one, or the one idle longest (only a
 * root peer may take it: a refused peer must not push out a real one). */
static struct server_conn *server__slot(struct server *srv, bool root)
{
	struct server_conn *c = server__free_slot(srv);

	if (c || !root)
		return c;
	c = server__idle_longest(srv);
	if (c) /* none when every one waits for its batch */
		server__conn_close(srv, c, SERVER_CLOSE_EVICTED);
	return c;
}

static void server__add(struct server *srv, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct server_conn *c;
	long long now = server__now_ms();

	srv->st.accepted++;
	srv->st.open++;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		pr_warn("api: SO_PEERCRED failed: %s", strerror(errno));
		goto drop;
	}
	c = server__slot(srv, cred.uid == 0);
	if (!c) {
		srv->st.closed[SERVER_CLOSE_FULL]++;
		goto drop_quiet;
	}
	ev.data.u64 = (__u64)(c - srv->conns) + 1;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		pr_warn("api: epoll: %s", strerror(errno));
		goto drop;
	}
	c->fd = fd;
	c->pid = cred.pid;
	c->state = CONN_READ;
	c->last_io = now;
	c->deadline = now + (cred.uid ? SERVER_REFUSED_MS : srv->o.request_ms);
	if (cred.uid != 0) {
		pr_warn("api: refused pid %d uid %u: not root", cred.pid, cred.uid);
		server__conn_refuse(srv, c,
				    api__error("permission denied: uid %u is not root", cred.uid),
				    SERVER_DRAIN_MAX);
		return;
	}
	server__conn_read(srv, c); /* a short request is often there already */
	return;
drop:
	srv->st.closed[SERVER_CLOSE_PEER]++;
drop_quiet:
	srv->st.open--;
	close(fd);
}

static void server__pause_accept(struct server *srv, int e)
{
	long long now = server__now_ms();

	srv->st.accept_errors++;
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		pr_warn("api: accept: %s", strerror(e));
		return;
	}
	if (now - srv->accept_logged >= 10000 || !srv->accept_logged) {
		pr_warn("api: accept: %s: not accepting for %d ms", strerror(e),
			SERVER_ACCEPT_PAUSE_MS);
		srv->accept_logged = now;
	}
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->fd, NULL);
	srv->accept_paused_until = now + SERVER_ACCEPT_PAUSE_MS;
}

static void server__resume_accept(struct server *srv)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SERVER_EV_LISTEN };

	if (!srv->accept_paused_until || server__now_ms() < srv->accept_paused_until)
		return;
	srv->accept_paused_until = 0;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->fd, &ev))
		pr_warn("api: epoll: %s", strerror(errno));
}

static void server__accept(struct server *srv)
{
	int fd;

	/* a bounded batch per wakeup, so a flood of connections cannot starve
	 * the rest of the loop (netlink, timers, metrics, signals) */
	for (int i = 0; i < SERVER_ACCEPT_BATCH && !srv->accept_paused_until; i++) {
		fd = accept4(srv->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			server__add(srv, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			server__pause_accept(srv, errno);
		return;
	}
}

static void server__conn_io(struct server *srv, struct server_conn *c)
{
	if (c->state == CONN_WRITE)
		server__conn_write(srv, c);
	else if (c->state != CONN_FREE && c->state != CONN_HELD)
		server__conn_read(srv, c);
}

/* Past its deadline: first what it sent or took meanwhile (an op that ran
 * long may have kept us from seeing a request in time), then the verdict. */
static void server__expire(struct server *srv, struct server_conn *c)
{
	struct json_object *resp;

	if (c->state == CONN_FREE || c->deadline > server__now_ms())
		return;
	server__conn_io(srv, c);
	if (c->state == CONN_FREE || c->deadline > server__now_ms())
		return;
	switch (c->state) {
	case CONN_READ:
		server__conn_close(srv, c, SERVER_CLOSE_DEADLINE);
		break;
	case CONN_DISCARD: /* refused anyway: answer with what we have */
		resp = c->resp;
		c->resp = NULL;
		server__conn_answer(srv, c, resp);
		break;
	case CONN_WRITE:
		server__conn_close(srv, c, SERVER_CLOSE_ANSWER_DEADLINE);
		break;
	case CONN_FREE:
	case CONN_HELD: /* released at the end of the turn it was read in */
		break;
	}
}

void server__run(struct server *srv)
{
	struct epoll_event evs[64];
	int n;

	server__resume_accept(srv);
	n = epoll_wait(srv->epfd, evs, 64, 0);
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == SERVER_EV_LISTEN)
			server__accept(srv);
		else
			server__conn_io(srv, &srv->conns[evs[i].data.u64 - 1]);
	}
	/* The changes of this turn made durable together; their answers go
	 * out (server__release()) before any deadline is looked at. */
	if (srv->o.sync)
		srv->o.sync(srv->o.ctx);
	for (size_t i = 0; i < srv->o.max_conns; i++)
		server__expire(srv, &srv->conns[i]);
}

void server__release(struct server *srv, __u64 seq, const char *text)
{
	for (size_t i = 0; srv->conns && i < srv->o.max_conns; i++) {
		struct server_conn *c = &srv->conns[i];
		struct json_object *resp;

		if (c->state != CONN_HELD || c->held_seq != seq)
			continue;
		resp = c->resp;
		c->resp = NULL;
		if (text) {
			json_object_put(resp);
			resp = api__error("not saved: %s", text);
		}
		server__conn_answer(srv, c, resp);
	}
}

int server__timeout_ms(const struct server *srv)
{
	long long now = server__now_ms(), next = -1;

	if (srv->accept_paused_until)
		next = srv->accept_paused_until;
	for (size_t i = 0; srv->conns && i < srv->o.max_conns; i++)
		if (srv->conns[i].state != CONN_FREE && (next < 0 || srv->conns[i].deadline < next))
			next = srv->conns[i].deadline;
	if (next < 0)
		return -1;
	return next <= now ? 0 : next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

static size_t server__writers(struct server *srv)
{
	size_t n = 0;

	for (size_t i = 0; i < srv->o.max_conns; i++) {
		struct server_conn *c = &srv->conns[i];

		if (c->state == CONN_WRITE)
			n++;
		else if (c->state != CONN_FREE)
			server__conn_close(srv, c, SERVER_CLOSE_STOP);
	}
	return n;
}

void server__flush(struct server *srv, int ms)
{
	long long end = server__now_ms() + ms, left;
	struct epoll_event evs[64];
	int n;

	if (srv->epfd < 0 || !srv->conns)
		return;
	/* no new connections, no more requests: only answers go out */
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->fd, NULL);
	while (server__writers(srv) && (left = end - server__now_ms()) > 0) {
		n = epoll_wait(srv->epfd, evs, 64, (int)left);
		for (int i = 0; i < n; i++)
			if (evs[i].data.u64 != SERVER_EV_LISTEN)
				server__conn_io(srv, &srv->conns[evs[i].data.u64 - 1]);
	}
}

void server__close(struct server *srv)
{
	for (size_t i = 0; srv->conns && i < srv->o.max_conns; i++)
		server__conn_close(srv, &srv->conns[i], SERVER_CLOSE_STOP);
	free(srv->conns);
	srv->conns = NULL;
	if (srv->epfd >= 0)
		close(srv->epfd);
	srv->epfd = -1;
	if (srv->fd >= 0)
		close(srv->fd);
	srv->fd = -1;
	if (srv->bound)
		unlink(srv->path);
	srv->bound = false;
}

struct json_object *server__status_json(const struct server *srv)
{
	struct json_object *o = json_object_new_object(), *closed = json_object_new_object();

	json_object_object_add(o, "connections", json_object_new_uint64(srv->st.open));
	json_object_object_add(o, "max_connections", json_object_new_uint64(srv->o.max_conns));
	json_object_object_add(o, "max_request_bytes", json_object_new_uint64(srv->o.max_request));
	json_object_object_add(o, "request_timeout_ms", json_object_new_int(srv->o.request_ms));
	json_object_object_add(o, "answer_timeout_ms", json_object_new_int(srv->o.answer_ms));
	json_object_object_add(o, "accepted", json_object_new_uint64(srv->st.accepted));
	json_object_object_add(o, "too_large", json_object_new_uint64(srv->st.too_large));
	json_object_object_add(o, "accept_errors", json_object_new_uint64(srv->st.accept_errors));
	json_object_object_add(o, "held", json_object_new_uint64(srv->st.held));
	for (int i = 0; i < SERVER_CLOSE__MAX; i++)
		json_object_object_add(closed, server_close_names[i],
				       json_object_new_uint64(srv->st.closed[i]));
	json_object_object_add(o, "closed", closed);
	return o;
}

void server__metrics(const struct server *srv, FILE *out)
{
	fprintf(out,
		"# HELP sluice_api_connections API connections open now.\n"
		"# TYPE sluice_api_connections gauge\n"
		"sluice_api_connections %zu\n",
		srv->st.open);
	fprintf(out,
		"# HELP sluice_api_connections_accepted_total API connections accepted.\n"
		"# TYPE sluice_api_connections_accepted_total counter\n"
		"sluice_api_connections_accepted_total %llu\n",
		(unsigned long long)srv->st.accepted);
	fprintf(out, "# HELP sluice_api_connections_closed_total API connections closed, by why.\n"
		     "# TYPE sluice_api_connections_closed_total counter\n");
	for (int i = 0; i < SERVER_CLOSE__MAX; i++)
		fprintf(out, "sluice_api_connections_closed_total{reason=\"%s\"} %llu\n",
			server_close_names[i], (unsigned long long)srv->st.closed[i]);
	fprintf(out,
		"# HELP sluice_api_requests_too_large_total API requests refused for their size.\n"
		"# TYPE sluice_api_requests_too_large_total counter\n"
		"sluice_api_requests_too_large_total %llu\n"
		"# HELP sluice_api_accept_errors_total Failed accepts on the API socket.\n"
		"# TYPE sluice_api_accept_errors_total counter\n"
		"sluice_api_accept_errors_total %llu\n",
		(unsigned long long)srv->st.too_large, (unsigned long long)srv->st.accept_errors);
}
