// SPDX-License-Identifier: MIT
/*
 * server_conn.c - one API connection's state machine (see server_conn.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "jsonscan.h"
#include "sluice.h"
#include "yamljson.h"

#include "log.h"
#include "server.h"
#include "server_conn.h"

/* Requests from this size on are read with jscan__parse_lazy(). */
#define SERVER_LAZY_MIN (64u << 10)

long long server__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void server__conn_watch(struct server *srv, struct server_conn *c, __u32 events)
{
	struct epoll_event ev = { .events = events, .data.u64 = (__u64)(c - srv->conns) + 1 };

	/* cannot fail for a registered fd; should it, the deadline ends it */
	if (epoll_ctl(srv->epfd, EPOLL_CTL_MOD, c->fd, &ev))
		pr_debug("api: epoll: %s", strerror(errno));
}

void server__conn_close(struct server *srv, struct server_conn *c, enum server_close_reason why)
{
	if (c->state == CONN_FREE)
		return;
	if (why != SERVER_CLOSE_ANSWERED && why != SERVER_CLOSE_STREAM)
		pr_debug("api: connection of pid %d closed: %s", c->pid,
			 server__close_reason_name(why));
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (why != SERVER_CLOSE_STREAM) /* the stream owns it now */
		close(c->fd);
	free(c->buf);
	json_object_put(c->resp);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->state = CONN_FREE;
	srv->st.closed[why]++;
	srv->st.open--;
}

void server__conn_write(struct server *srv, struct server_conn *c)
{
	const char *p;
	size_t n;
	ssize_t r;

	/* the text, then its newline */
	while (c->out_off <= c->out_len) {
		p = c->out_off < c->out_len ? c->out + c->out_off : "\n";
		n = c->out_off < c->out_len ? c->out_len - c->out_off : 1;
		r = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* EPOLLOUT brings us back */
		if (r < 0) {
			server__conn_close(srv, c, SERVER_CLOSE_PEER);
			return;
		}
		c->out_off += (size_t)r;
		c->last_io = server__now_ms();
	}
	server__conn_close(srv, c, SERVER_CLOSE_ANSWERED);
}

void server__conn_answer(struct server *srv, struct server_conn *c, struct json_object *resp)
{
	const char *text;
	size_t len;

	if (!resp)
		resp = api__error("out of memory");
	text = resp ? json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE) :
		      NULL;
	if (text && (len = strlen(text)) > SLUICE_API_MAX_MSG) {
		json_object_put(resp);
		resp = api__error("answer of %zu bytes exceeds the limit of %u bytes", len,
				  SLUICE_API_MAX_MSG);
		text = resp ? json_object_to_json_string(resp) : NULL;
	}
	if (!text) {
		json_object_put(resp);
		server__conn_close(srv, c, SERVER_CLOSE_PEER);
		return;
	}
	free(c->buf); /* the request is done with */
	c->buf = NULL;
	c->len = c->cap = 0;
	c->resp = resp;
	c->out = text;
	c->out_len = strlen(text);
	c->out_off = 0;
	c->state = CONN_WRITE;
	c->deadline = server__now_ms() + srv->o.answer_ms;
	server__conn_watch(srv, c, EPOLLOUT);
	server__conn_write(srv, c);
}

void server__conn_refuse(struct server *srv, struct server_conn *c, struct json_object *resp,
			 size_t budget)
{
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
	json_object_put(c->resp);
	c->resp = resp;
	c->discard_left = budget;
	c->state = CONN_DISCARD;
	server__conn_read(srv, c);
}

/* Room to read into: what is free first, then twice the buffer, up to
 * one byte past the limit (which tells "too large" from "just fits"). */
static int server__conn_room(struct server *srv, struct server_conn *c)
{
	size_t cap;
	char *grown;

	if (c->len < c->cap)
		return 0;
	if (c->cap > srv->o.max_request)
		return -EMSGSIZE;
	cap = c->cap ? 2 * c->cap : SERVER_BUF_MIN;
	if (cap > srv->o.max_request + 1)
		cap = srv->o.max_request + 1;
	grown = realloc(c->buf, cap + 1); /* + the terminating NUL */
	if (!grown)
		return -ENOMEM;
	c->buf = grown;
	c->cap = cap;
	return 0;
}

static void server__conn_handle(struct server *srv, struct server_conn *c)
{
	struct json_object *req = NULL, *resp;
	bool taken = false;
	int err;

	if (!c->len) {
		server__conn_answer(srv, c, api__error("bad request: empty"));
		return;
	}
	c->buf[c->len] = '\0';
	/* A large request's "desired" stays text, read one service at a time
	 * by the op (an apply of 30k services as a tree: ~360 MB). */
	err = c->len >= SERVER_LAZY_MIN ?
		      jscan__parse_lazy(c->buf, c->len, "desired", "request", &req, &taken) :
		      -EAGAIN;
	if (err == -EAGAIN)
		err = yaml__parse_json(c->buf, c->len, "request", &req);
	else if (err)
		sluice__set_err("out of memory");
	if (!taken)
		free(c->buf); /* before the op: a large apply needs the memory */
	taken = false;
	c->buf = NULL;
	c->len = c->cap = 0;
	if (err) {
		server__conn_answer(srv, c, api__error("bad request: %s", sluice__errmsg()));
		return;
	}
	resp = srv->o.handle(srv->o.ctx, req, c->fd, c->pid, &taken);
	json_object_put(req);
	if (resp && srv->o.hold && (c->held_seq = srv->o.hold(srv->o.ctx))) {
		c->resp = resp; /* answered when its batch is durable */
		c->state = CONN_HELD;
		srv->st.held++;
		server__conn_watch(srv, c, 0);
	} else if (resp)
		server__conn_answer(srv, c, resp);
	else
		server__conn_close(srv, c, taken ? SERVER_CLOSE_STREAM : SERVER_CLOSE_PEER);
}

static void server__conn_too_large(struct server *srv, struct server_conn *c)
{
	srv->st.too_large++;
	pr_warn("api: request of pid %d refused: more than %zu bytes", c->pid, srv->o.max_request);
	server__conn_refuse(srv, c,
			    api__error("request of more than %zu bytes exceeds meshd's limit of "
				       "%zu bytes (meshd --api-max-request)",
				       srv->o.max_request, srv->o.max_request),
			    SIZE_MAX);
}

/* The rest of a refused request, dropped as it comes; then the answer. */
static void server__conn_discard(struct server *srv, struct server_conn *c)
{
	struct json_object *resp;
	char scratch[16384];
	size_t batch = 0;
	ssize_t n;

	/* a bounded batch per turn: a peer writing without end must not keep
	 * the loop here (its deadline ends the discarding) */
	while (batch < SERVER_DISCARD_BATCH) {
		n = recv(c->fd, scratch,
			 c->discard_left < sizeof(scratch) ? c->discard_left : sizeof(scratch),
			 MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			server__conn_close(srv, c, SERVER_CLOSE_PEER);
			return;
		}
		c->last_io = server__now_ms();
		c->discard_left -= (size_t)n;
		if (!n || !c->discard_left || memchr(scratch, '\n', (size_t)n))
			break;
		batch += (size_t)n;
	}
	if (batch >= SERVER_DISCARD_BATCH)
		return; /* more next turn: the socket is still readable */
	resp = c->resp;
	c->resp = NULL;
	server__conn_answer(srv, c, resp);
}

void server__conn_read(struct server *srv, struct server_conn *c)
{
	char *nl;
	ssize_t n;
	int err;

	if (c->state == CONN_DISCARD) {
		server__conn_discard(srv, c);
		return;
	}
	for (;;) {
		err = server__conn_room(srv, c);
		if (err == -EMSGSIZE) {
			server__conn_too_large(srv, c);
			return;
		}
		if (err) {
			server__conn_refuse(srv, c, api__error("out of memory reading the request"),
					    SIZE_MAX);
			return;
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 || (!n && !c->len)) {
			server__conn_close(srv, c, SERVER_CLOSE_PEER);
			return;
		}
		if (!n)
			break; /* EOF ends the request too */
		c->last_io = server__now_ms();
		nl = memchr(c->buf + c->len, '\n', (size_t)n);
		c->len += (size_t)n;
		if (nl) {
			c->len = (size_t)(nl - c->buf);
			break;
		}
	}
	server__conn_handle(srv, c);
}
