// SPDX-License-Identifier: MIT
/*
 * client.c - request/response with meshd over its Unix socket.
 *
 * Contract: see client.h. The transport lives in user/lib/state/api.c; this file
 * only shapes the request, unwraps {"ok", "data", "error"} and words the
 * errors for a person at a terminal. Streams are read here: api.c reads
 * one message per connection and drops what follows it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "api.h"
#include "sluice.h"

#include "client.h"
#include "meshctl.h"
#include "output.h"

/* api.c already says "is meshd running?" and "needs root"; the one fix it
 * cannot name is meshctl's own option. */
static const char *hint(int err)
{
	return err == -ETIMEDOUT ? " (see --timeout)" : "";
}

int client__try(const char *op, struct json_object *args, struct json_object **data, char *err,
		size_t errlen)
{
	struct api_call how = { 0 };

	return client__try_ex(op, args, &how, data, err, errlen);
}

int client__try_ex(const char *op, struct json_object *args, const struct api_call *how,
		   struct json_object **data, char *err, size_t errlen)
{
	struct json_object *req, *resp = NULL, *v;
	struct json_object_iterator it, end;
	struct api_call call = *how;
	const char *msg;
	int ret;

	*data = NULL;
	req = out__xalloc(json_object_new_object());
	json_object_object_add(req, "op", json_object_new_string(op));
	if (args) {
		it = json_object_iter_begin(args);
		end = json_object_iter_end(args);
		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
			json_object_object_add(req, json_object_iter_peek_name(&it),
					       json_object_get(json_object_iter_peek_value(&it)));
		json_object_put(args);
	}

	call.req = req;
	ret = api__call_ex(g_opts.socket, &call, g_opts.timeout_ms, &resp);
	json_object_put(req);
	if (ret < 0) {
		msg = sluice__errmsg();
		if (msg && *msg)
			snprintf(err, errlen, "%s%s", msg, hint(ret));
		else
			snprintf(err, errlen, "cannot reach meshd at %s: %s%s", g_opts.socket,
				 strerror(-ret), hint(ret));
		return -1;
	}

	v = js__get(resp, "ok");
	if (!v || !json_object_is_type(v, json_type_boolean)) {
		snprintf(err, errlen, "malformed answer from meshd at %s: no \"ok\" field",
			 g_opts.socket);
		json_object_put(resp);
		return -1;
	}
	if (!json_object_get_boolean(v)) {
		snprintf(err, errlen, "%s", js__str(resp, "error", "meshd refused the request"));
		json_object_put(resp);
		return -1;
	}
	/* the answer's "data", placeholder included (it is an object) */
	v = js__get(resp, "data");
	if (v && !json_object_is_type(v, json_type_null))
		*data = json_object_get(v);
	json_object_put(resp);
	return 0;
}

int client__call(const char *op, struct json_object *args, struct json_object **data)
{
	char err[1024];

	if (client__try(op, args, data, err, sizeof(err)))
		return out__error("%s", err);
	return 0;
}

/* The request as api__call() would build it. */
static struct json_object *client__request(const char *op, struct json_object *args)
{
	struct json_object *req = out__xalloc(json_object_new_object());
	struct json_object_iterator it, end;

	json_object_object_add(req, "op", json_object_new_string(op));
	if (!args)
		return req;
	it = json_object_iter_begin(args);
	end = json_object_iter_end(args);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
		json_object_object_add(req, json_object_iter_peek_name(&it),
				       json_object_get(json_object_iter_peek_value(&it)));
	json_object_put(args);
	return req;
}

static int client__connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(g_opts.socket) >= sizeof(sa.sun_path))
		return out__error("socket path %s is too long", g_opts.socket);
	strcpy(sa.sun_path, g_opts.socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return out__error("cannot create a socket: %s", strerror(errno));
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return fd;
	err = errno;
	close(fd);
	if (err == EACCES || err == EPERM)
		return out__error("permission denied connecting to %s (meshctl needs root)",
				  g_opts.socket);
	return out__error("cannot connect to meshd at %s: %s%s", g_opts.socket, strerror(err),
			  err == ENOENT || err == ECONNREFUSED ? " (is meshd running?)" : "");
}

struct client_lines {
	int fd;
	char *buf;
	size_t len, cap;
};

/* The next line, parsed, in *msg. 0, -ENODATA at EOF, -ETIMEDOUT, or a
 * reported error (-1). timeout_ms < 0: wait forever. */
static int client__next(struct client_lines *l, int timeout_ms, struct json_object **msg)
{
	struct pollfd p = { .fd = l->fd, .events = POLLIN };
	char *nl;
	ssize_t n;

	*msg = NULL;
	while (!(nl = memchr(l->buf, '\n', l->len))) {
		if (l->cap - l->len < 4096) {
			l->cap = l->cap ? 2 * l->cap : 65536;
			if (l->cap > SLUICE_API_MAX_MSG)
				return out__error("a message from meshd is longer than %u bytes",
						  SLUICE_API_MAX_MSG);
			l->buf = out__xalloc(realloc(l->buf, l->cap));
		}
		n = poll(&p, 1, timeout_ms);
		if (n == 0)
			return -ETIMEDOUT;
		if (n < 0 && errno == EINTR)
			continue;
		n = n < 0 ? -1 : read(l->fd, l->buf + l->len, l->cap - l->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return out__error("reading from meshd at %s: %s", g_opts.socket,
					  strerror(errno));
		if (n == 0)
			return -ENODATA;
		l->len += (size_t)n;
	}
	*nl = '\0';
	*msg = json_tokener_parse(l->buf);
	l->len -= (size_t)(nl + 1 - l->buf);
	memmove(l->buf, nl + 1, l->len);
	if (!*msg)
		return out__error("malformed message from meshd at %s", g_opts.socket);
	return 0;
}

int client__stream(const char *op, struct json_object *args, client_msg_fn fn, void *ctx)
{
	struct json_object *req = client__request(op, args), *msg = NULL, *v;
	struct client_lines l = { .fd = -1 };
	int ret = -1, rc;

	l.fd = client__connect();
	if (l.fd < 0)
		goto cleanup;
	/* The write end stays open: closing it is how meshd learns we left. */
	if (api__write_msg(l.fd, req)) {
		out__error("cannot send the request to meshd at %s: %s", g_opts.socket,
			   sluice__errmsg());
		goto cleanup;
	}
	rc = client__next(&l, g_opts.timeout_ms, &msg);
	if (rc == -ETIMEDOUT)
		out__error("timed out after %d ms waiting for meshd at %s (see --timeout)",
			   g_opts.timeout_ms, g_opts.socket);
	else if (rc == -ENODATA)
		out__error("meshd at %s closed the connection without an answer", g_opts.socket);
	if (rc)
		goto cleanup;
	v = js__get(msg, "ok");
	if (!v || !json_object_get_boolean(v)) {
		out__error("%s", js__str(msg, "error", "meshd refused the request"));
		goto cleanup;
	}
	for (;;) {
		json_object_put(msg);
		rc = client__next(&l, -1, &msg);
		if (rc == -ENODATA) {
			out__error("meshd at %s ended the stream (it stopped or restarted, or this "
				   "client fell more than 1 MiB behind)",
				   g_opts.socket);
			break;
		}
		if (rc)
			break;
		if (fn(msg, ctx)) {
			ret = 0;
			break;
		}
	}
cleanup:
	json_object_put(msg);
	json_object_put(req);
	free(l.buf);
	if (l.fd >= 0)
		close(l.fd);
	return ret;
}
