// SPDX-License-Identifier: MIT
/*
 * api.c - the meshd API wire format (see api.h): one JSON message per line
 * on a Unix stream socket, with the client call on top.
 *
 * Contract: reads are bounded in size (SLUICE_API_MAX_MSG) and time (one
 * deadline for the whole message, not per read), so a stuck or hostile
 * peer can hold neither the agent nor the CLI. timeout_ms <= 0 waits
 * forever. Writes never raise SIGPIPE. Errors set sluice__errmsg() with
 * what failed and the socket path, phrased for the person at the CLI.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "api.h"
#include "internal.h"
#include "jsonscan.h"
#include "yamljson.h"

#define API_CHUNK 65536

struct json_object *api__ok(struct json_object *data)
{
	struct json_object *resp = json_object_new_object();

	if (!resp) {
		json_object_put(data);
		return NULL;
	}
	json_object_object_add(resp, "ok", json_object_new_boolean(1));
	json_object_object_add(resp, "data", data);
	return resp;
}

struct json_object *api__error(const char *fmt, ...)
{
	struct json_object *resp = json_object_new_object();
	char msg[SLUICE_ERRMSG_LEN];
	va_list ap;

	if (!resp)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(resp, "ok", json_object_new_boolean(0));
	json_object_object_add(resp, "error", json_object_new_string(msg));
	return resp;
}

static long long api__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline for poll(); -1 = no deadline. */
static int api__left(long long deadline)
{
	long long left;

	if (deadline < 0)
		return -1;
	left = deadline - api__now_ms();
	return left < 0 ? 0 : left > 1000000000 ? 1000000000 : (int)left;
}

static long long api__deadline(int timeout_ms)
{
	return timeout_ms > 0 ? api__now_ms() + timeout_ms : -1;
}

/* 0 when fd is ready for events, -ETIMEDOUT or -errno otherwise. */
static int api__wait(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	for (;;) {
		n = poll(&p, 1, api__left(deadline));
		if (n > 0)
			return 0;
		if (!n)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Responses from this size on may keep their lazy member as text. */
#define API_LAZY_MIN (64u << 10)

static int api__read_until(int fd, long long deadline, const char *lazy, struct json_object **msg)
{
	bool taken = false;
	size_t cap = 0, len = 0;
	char *buf = NULL, *grown, *nl = NULL;
	ssize_t n;
	int err;

	for (;;) {
		err = api__wait(fd, POLLIN, deadline);
		if (err) {
			if (err == -ETIMEDOUT)
				sluice__set_err("timed out waiting for a message");
			else
				sluice__set_err("cannot wait for a message: %s", strerror(-err));
			goto cleanup;
		}
		if (cap - len < API_CHUNK) {
			cap = cap ? 2 * cap : 2 * API_CHUNK;
			grown = realloc(buf, cap + 1);
			if (!grown) {
				sluice__set_err("out of memory reading a message");
				err = -ENOMEM;
				goto cleanup;
			}
			buf = grown;
		}
		n = read(fd, buf + len, API_CHUNK);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			err = -errno;
			sluice__set_err("cannot read a message: %s", strerror(errno));
			goto cleanup;
		}
		if (!n)
			break;
		nl = memchr(buf + len, '\n', (size_t)n);
		len += (size_t)n;
		if (nl) {
			len = (size_t)(nl - buf);
			break;
		}
		if (len > SLUICE_API_MAX_MSG) {
			sluice__set_err("message larger than the limit of %u bytes",
					SLUICE_API_MAX_MSG);
			err = -EMSGSIZE;
			goto cleanup;
		}
	}
	if (len > SLUICE_API_MAX_MSG) {
		sluice__set_err("message larger than the limit of %u bytes", SLUICE_API_MAX_MSG);
		err = -EMSGSIZE;
		goto cleanup;
	}
	if (!len) {
		sluice__set_err("connection closed without a message");
		err = -ENODATA;
		goto cleanup;
	}
	buf[len] = '\0';
	err = lazy && len >= API_LAZY_MIN ?
		      jscan__parse_lazy(buf, len, lazy, "message", msg, &taken) :
		      -EAGAIN;
	if (err == -EAGAIN)
		err = yaml__parse_json(buf, len, "message", msg);
	else if (err)
		sluice__set_err("out of memory reading a message");
	if (!err && !json_object_is_type(*msg, json_type_object)) {
		json_object_put(*msg);
		*msg = NULL;
		sluice__set_err("message is not a JSON object");
		err = -EBADMSG;
	} else if (err == -EINVAL) {
		err = -EBADMSG;
	}
cleanup:
	if (!taken)
		free(buf);
	return err;
}

int api__read_msg(int fd, int timeout_ms, struct json_object **msg)
{
	sluice__clear_err();
	*msg = NULL;
	return api__read_until(fd, api__deadline(timeout_ms), NULL, msg);
}

int api__write_msg(int fd, struct json_object *msg)
{
	const char *text;
	size_t len;
	int err;

	sluice__clear_err();
	text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text) {
		sluice__set_err("out of memory serializing a message");
		return -ENOMEM;
	}
	len = strlen(text);
	if (len > SLUICE_API_MAX_MSG) {
		sluice__set_err("message of %zu bytes exceeds the limit of %u bytes", len,
				SLUICE_API_MAX_MSG);
		return -EMSGSIZE;
	}
	err = sluice__write_all(fd, text, len);
	if (!err)
		err = sluice__write_all(fd, "\n", 1);
	if (err)
		sluice__set_err("cannot send a message: %s", strerror(-err));
	return err;
}

static int api__connect_err(int err, const char *path)
{
	if (err == -EACCES || err == -EPERM)
		sluice__set_err("permission denied connecting to %s (meshctl needs root)", path);
	else if (err == -ENOENT || err == -ECONNREFUSED)
		sluice__set_err("cannot connect to meshd at %s: %s (is meshd running?)", path,
				strerror(-err));
	else if (err == -ETIMEDOUT)
		sluice__set_err("timed out connecting to meshd at %s", path);
	else
		sluice__set_err("cannot connect to meshd at %s: %s", path, strerror(-err));
	return err;
}

/* A Unix socket connect does not go through a handshake: it succeeds or
 * fails at once, except with EAGAIN while the listener's backlog is full,
 * which we retry until the deadline. */
static int api__connect(const char *path, long long deadline, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		sluice__set_err("socket path %s is longer than %zu bytes", path,
				sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		err = -errno;
		sluice__set_err("cannot create a socket: %s", strerror(errno));
		return err;
	}
	for (;;) {
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			*out = fd;
			return 0;
		}
		err = -errno;
		if (err == -EINTR)
			continue;
		if (err == -EINPROGRESS) {
			err = api__wait(fd, POLLOUT, deadline);
			if (!err) {
				socklen_t len = sizeof(err);

				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
				err = -err;
			}
			if (!err) {
				*out = fd;
				return 0;
			}
			break;
		}
		if (err != -EAGAIN)
			break;
		if (deadline >= 0 && api__now_ms() >= deadline) {
			err = -ETIMEDOUT;
			break;
		}
		usleep(10000);
	}
	close(fd);
	return api__connect_err(err, path);
}

static int api__check_resp(struct json_object *resp, const char *path)
{
	struct json_object *ok, *v;

	if (!json_object_object_get_ex(resp, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		sluice__set_err("malformed response from meshd at %s: no boolean \"ok\"", path);
		return -EBADMSG;
	}
	if (!json_object_get_boolean(ok) && (!json_object_object_get_ex(resp, "error", &v) ||
					     !json_object_is_type(v, json_type_string))) {
		sluice__set_err(
			"malformed response from meshd at %s: failure without an \"error\" text",
			path);
		return -EBADMSG;
	}
	return 0;
}

int api__call(const char *sock_path, struct json_object *req, int timeout_ms,
	      struct json_object **resp)
{
	struct api_call call = { .req = req };

	return api__call_ex(sock_path, &call, timeout_ms, resp);
}

/* call's request: its own writer, then the newline, or req whole. */
static int api__send(int fd, const struct api_call *call)
{
	int err;

	if (!call->write)
		return api__write_msg(fd, call->req);
	sluice__clear_err();
	err = call->write(fd, call->ctx);
	if (!err)
		err = sluice__write_all(fd, "\n", 1);
	if (err && err != -EMSGSIZE)
		sluice__set_err("cannot send a message: %s", strerror(-err));
	return err;
}

int api__call_ex(const char *sock_path, const struct api_call *call, int timeout_ms,
		 struct json_object **resp)
{
	long long deadline = api__deadline(timeout_ms);
	char msg[SLUICE_ERRMSG_LEN];
	int fd = -1, err;

	sluice__clear_err();
	*resp = NULL;
	if (!sock_path)
		sock_path = SLUICE_API_SOCKET_DEFAULT;
	err = api__connect(sock_path, deadline, &fd);
	if (err)
		return err;
	/* The request is small next to the socket buffer in practice; block
	 * for it, the deadline guards the whole answer below. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if (timeout_ms > 0) {
		struct timeval tv = { .tv_sec = timeout_ms / 1000,
				      .tv_usec = (timeout_ms % 1000) * 1000 };

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	err = api__send(fd, call);
	if (err == -EAGAIN || err == -EWOULDBLOCK) {
		err = -ETIMEDOUT;
		sluice__set_err("timed out after %d ms sending the request to meshd at %s",
				timeout_ms, sock_path);
		goto cleanup;
	}
	if (err == -EPIPE || err == -ECONNRESET) {
		sluice__set_err("meshd at %s closed the connection without an answer", sock_path);
		goto cleanup;
	}
	if (err) {
		snprintf(msg, sizeof(msg), "%s",
			 err == -EMSGSIZE ? sluice__errmsg() : strerror(-err));
		sluice__set_err("cannot send the request to meshd at %s: %s", sock_path, msg);
		goto cleanup;
	}
	shutdown(fd, SHUT_WR); /* the request is complete */
	err = api__read_until(fd, deadline, call->lazy, resp);
	if (err) {
		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
		if (err == -ETIMEDOUT)
			sluice__set_err("timed out after %d ms waiting for meshd at %s", timeout_ms,
					sock_path);
		else if (err == -ENODATA || err == -ECONNRESET || err == -EPIPE)
			sluice__set_err("meshd at %s closed the connection without an answer",
					sock_path);
		else
			sluice__set_err("bad response from meshd at %s: %s", sock_path, msg);
		goto cleanup;
	}
	err = api__check_resp(*resp, sock_path);
	if (err) {
		json_object_put(*resp);
		*resp = NULL;
	}
cleanup:
	close(fd);
	return err;
}
