// SPDX-License-Identifier: MIT
/*
 * server.c - the API socket and op dispatch (see server.h).
 */
#define _GNU_SOURCE /* struct ucred, accept4 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "sluice.h"

#include "log.h"
#include "meshd.h"
#include "ops.h"
#include "server.h"

/* A client has this long to send its request, and to take the answer:
 * requests are served inline, so a stuck client must not stall meshd. */
#define SERVER_IO_TIMEOUT_MS 5000
/* What a refused (non-root) peer may make us read before its answer. */
#define SERVER_DRAIN_MS 1000
#define SERVER_DRAIN_MAX (64u << 10)

/* Each op with the arguments it takes: anything else is refused, so a
 * typo ("weigth") is an error rather than a silently ignored default. */
#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
static const struct {
	const char *op;
	ops__fn fn;
	const char *const *args;
	ops__stream_fn stream; /* instead of fn: the connection stays open */
} server_ops[] = {
	{ "status", ops__status, ARGS(NULL), NULL },
	{ "service.list", ops__service_list, ARGS(NULL), NULL },
	{ "service.get", ops__service_get, ARGS("service"), NULL },
	{ "service.add", ops__service_add, ARGS("service", "name", "backends"), NULL },
	{ "service.del", ops__service_del, ARGS("service"), NULL },
	{ "backend.add", ops__backend_add, ARGS("service", "backend", "weight"), NULL },
	{ "backend.del", ops__backend_del, ARGS("service", "backend"), NULL },
	{ "backend.weight", ops__backend_weight, ARGS("service", "backend", "weight"), NULL },
	{ "backend.drain", ops__backend_drain, ARGS("service", "backend"), NULL },
	{ "apply", ops__apply, ARGS("desired", "dry_run"), NULL },
	{ "conntrack.list", ops__conntrack_list, ARGS("service"), NULL },
	{ "conntrack.flush", ops__conntrack_flush, ARGS("service"), NULL },
	{ "uninstall", ops__uninstall, ARGS(NULL), NULL },
	{ "connections.list", ops__connections_list, ARGS("limit", "service", "events"), NULL },
	{ "connections.follow", NULL, ARGS("service"), ops__connections_follow },
	{ "top", ops__top, ARGS(NULL), NULL },
};

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

int server__open(struct server *srv, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	mode_t old_umask;
	int err;

	srv->fd = -1;
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
	if (err)
		return err;
	srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv->fd < 0) {
		err = -errno;
		pr_err("API socket: %s", strerror(errno));
		return err;
	}
	/* Created 0600 from the start: no window in which anyone may connect. */
	old_umask = umask(0177);
	err = bind(srv->fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_umask);
	if (!err)
		err = chmod(path, 0600);
	if (!err)
		err = listen(srv->fd, 64);
	if (err) {
		err = -errno;
		pr_err("API socket %s: %s", path, strerror(errno));
		close(srv->fd);
		srv->fd = -1;
		return err;
	}
	return 0;
}

/* Read and discard a refused peer's request (bounded in time and size):
 * answering before it is sent would make its send fail with EPIPE and
 * hide our "permission denied" from it. */
static void server__drain(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct timespec now, end;
	size_t total = 0;
	char buf[4096];
	long left_ms;
	ssize_t n;

	/* one deadline for the whole drain: a peer trickling bytes must not
	 * hold the single-threaded agent longer than SERVER_DRAIN_MS */
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += SERVER_DRAIN_MS / 1000;
	end.tv_nsec += (SERVER_DRAIN_MS % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	while (total < SERVER_DRAIN_MAX) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left_ms = (end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
		if (left_ms <= 0 || poll(&p, 1, (int)left_ms) <= 0)
			return;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0 || memchr(buf, '\n', n))
			return;
		total += n;
	}
}

static int server__check_args(struct json_object *req, const char *op, const char *const *args,
			      struct json_object **err)
{
	json_object_object_foreach(req, key, val)
	{
		char known[256] = "";
		size_t off = 0;
		bool ok = !strcmp(key, "op");

		(void)val;
		for (int i = 0; args[i] && !ok; i++)
			ok = !strcmp(key, args[i]);
		if (ok)
			continue;
		for (int i = 0; args[i]; i++)
			off += snprintf(known + off, off < sizeof(known) ? sizeof(known) - off : 0,
					"%s%s", i ? ", " : "", args[i]);
		*err = args[0] ? api__error("%s: unknown argument \"%s\" (it takes: %s)", op, key,
					    known) :
				 api__error("%s: unknown argument \"%s\" (it takes none)", op, key);
		return -EINVAL;
	}
	return 0;
}

/* The answer to req. NULL with *done: a stream op answered on fd itself,
 * and set *kept if it took fd over. */
static struct json_object *server__dispatch(struct meshd *m, struct json_object *req,
					    const char **opname, int fd, int pid, bool *done,
					    bool *kept)
{
	struct json_object *v, *err, *resp;
	const char *op;

	if (!json_object_is_type(req, json_type_object))
		return api__error("request is not a JSON object");
	if (!json_object_object_get_ex(req, "op", &v) || !json_object_is_type(v, json_type_string))
		return api__error("request has no \"op\" string");
	op = json_object_get_string(v);
	*opname = op;
	for (size_t i = 0; i < sizeof(server_ops) / sizeof(server_ops[0]); i++) {
		if (strcmp(op, server_ops[i].op))
			continue;
		if (server__check_args(req, op, server_ops[i].args, &err))
			return err;
		if (!server_ops[i].stream)
			return server_ops[i].fn(m, req);
		resp = server_ops[i].stream(m, req, fd, pid, kept);
		*done = !resp;
		return resp;
	}
	return api__error("unknown op \"%s\"", op);
}

/* Returns true when fd was kept (a stream); the caller closes it otherwise. */
static bool server__handle(struct meshd *m, int fd)
{
	struct timeval tv = { .tv_sec = SERVER_IO_TIMEOUT_MS / 1000 };
	struct json_object *req = NULL, *resp, *v;
	const char *op = "?";
	struct ucred cred;
	socklen_t len = sizeof(cred);
	bool ok, done = false, kept = false;

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		pr_warn("api: SO_PEERCRED failed: %s", strerror(errno));
		return false;
	}
	if (cred.uid != 0) {
		pr_warn("api: refused pid %d uid %u: not root", cred.pid, cred.uid);
		resp = api__error("permission denied: uid %u is not root", cred.uid);
		server__drain(fd);
		api__write_msg(fd, resp);
		json_object_put(resp);
		return false;
	}
	if (api__read_msg(fd, SERVER_IO_TIMEOUT_MS, &req)) {
		resp = api__error("bad request: %s", sluice__errmsg());
	} else {
		resp = server__dispatch(m, req, &op, fd, cred.pid, &done, &kept);
		if (done) {
			pr_debug("api: %s from pid %d: %s", op, cred.pid,
				 kept ? "streaming" : "client gone");
			json_object_put(req);
			return kept;
		}
	}
	ok = resp && json_object_object_get_ex(resp, "ok", &v) && json_object_get_boolean(v);
	if (ok)
		pr_debug("api: %s from pid %d: ok", op, cred.pid);
	else
		pr_debug("api: %s from pid %d: %s", op, cred.pid,
			 resp && json_object_object_get_ex(resp, "error", &v) ?
				 json_object_get_string(v) :
				 "?");
	if (!resp)
		resp = api__error("out of memory");
	if (api__write_msg(fd, resp))
		pr_debug("api: %s: answer not delivered: %s", op, sluice__errmsg());
	json_object_put(resp);
	json_object_put(req);
	return false;
}

#define SERVER_ACCEPT_BATCH 16

void server__serve(struct server *srv, struct meshd *m)
{
	int fd;

	/* a bounded batch per wakeup, so a flood of connections cannot starve
	 * the rest of the loop (netlink, timers, metrics, signals) */
	for (int i = 0; i < SERVER_ACCEPT_BATCH && !m->stop; i++) {
		fd = accept4(srv->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			int e = errno;

			if (e == EINTR || e == ECONNABORTED)
				continue;
			if (e != EAGAIN && e != EWOULDBLOCK)
				pr_warn("api: accept: %s", strerror(e));
			return;
		}
		if (!server__handle(m, fd))
			close(fd);
	}
}

void server__close(struct server *srv)
{
	if (srv->fd < 0)
		return;
	close(srv->fd);
	srv->fd = -1;
	unlink(srv->path);
}
