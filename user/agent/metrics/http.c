// SPDX-License-Identifier: MIT
/*
 * http.c - the metrics HTTP server: libmicrohttpd in external-epoll mode
 * on a listening socket made here (so bind errors name the address), with
 * gzip via zlib.
 *
 * Contract: see http.h. Responses are built whole in memory (a scrape is
 * a few hundred KiB at most) and handed to libmicrohttpd, which frees them.
 * Every connection is tracked here too (libmicrohttpd has only an idle
 * timeout, which a peer trickling bytes resets): past a deadline, or
 * evicted, a connection is shut down, and libmicrohttpd closes it on its
 * next run (shutdown() leaves the descriptor to its owner).
 */
#define _GNU_SOURCE /* asprintf */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http.h"
#include "internal.h"

/* Connections libmicrohttpd takes beyond max_conns: an eviction takes
 * effect at the next run, and a burst of connections may come first. */
#define HTTP_CONN_MARGIN 64

struct http_conn {
	struct http_conn *prev, *next; /* oldest first */
	int fd;
	bool busy;       /* a request is being answered */
	bool shut;       /* by us: libmicrohttpd closes it on its next run */
	long long since; /* busy: answering since; else waiting for a request since */
};

struct http {
	struct MHD_Daemon *d;
	int lfd;
	unsigned int port;
	const struct http_route *routes;
	size_t nroutes;
	char not_found[160]; /* "404 not found: try /a, /b\n" */
	bool nosniff, no_gzip;
	const char *what;
	unsigned int max_conns;
	long long request_ms, answer_ms;
	struct http_conn *head, *tail;
	struct http_stats st;
};

static long long http__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void http__shut(struct http_conn *c, __u64 *counter)
{
	if (c->shut)
		return;
	c->shut = true;
	(*counter)++;
	shutdown(c->fd, SHUT_RDWR);
}

/* Full: the connection waiting longest for a request makes room (one
 * being answered finishes on its own, within answer_ms). */
static void http__evict(struct http *h)
{
	for (struct http_conn *c = h->head; c; c = c->next) {
		if (!c->busy && !c->shut) {
			http__shut(c, &h->st.evicted);
			return;
		}
	}
}

static void http__conn_started(struct http *h, struct MHD_Connection *conn, void **socket_ctx)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct http_conn *c = calloc(1, sizeof(*c));

	*socket_ctx = c;
	if (!c || !info) {
		free(c);
		*socket_ctx = NULL;
		return; /* untracked: libmicrohttpd's idle timeout still applies */
	}
	c->fd = info->connect_fd;
	c->since = http__now_ms();
	c->prev = h->tail;
	if (h->tail)
		h->tail->next = c;
	else
		h->head = c;
	h->tail = c;
	h->st.accepted++;
	if (++h->st.open > h->max_conns)
		http__evict(h);
}

static void http__notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
			 enum MHD_ConnectionNotificationCode toe)
{
	struct http *h = cls;
	struct http_conn *c = *socket_ctx;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		http__conn_started(h, conn, socket_ctx);
		return;
	}
	if (toe != MHD_CONNECTION_NOTIFY_CLOSED || !c)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		h->tail = c->prev;
	h->st.open--;
	free(c);
	*socket_ctx = NULL;
}

static struct http_conn *http__conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

/* A request is answered (or failed): the next one has its own deadline. */
static void http__completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			    enum MHD_RequestTerminationCode toe)
{
	struct http_conn *c = http__conn_of(conn);

	(void)cls;
	(void)con_cls;
	(void)toe;
	if (!c)
		return;
	c->busy = false;
	c->since = http__now_ms();
}

/* Past a deadline: shut down; libmicrohttpd closes it on its next run. */
static void http__expire(struct http *h)
{
	long long now = http__now_ms();

	for (struct http_conn *c = h->head; c; c = c->next) {
		if (c->shut)
			continue;
		if (c->busy && now - c->since >= h->answer_ms)
			http__shut(c, &h->st.answer_deadline);
		else if (!c->busy && now - c->since >= h->request_ms)
			http__shut(c, &h->st.request_deadline);
	}
}

/* "HOST:PORT" / "[V6]:PORT" / ":PORT" into a sockaddr. */
static int http__parse_bind(const char *bind, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(bind, ':');
	unsigned long port;
	char *end;
	size_t hlen;

	if (!colon || !colon[1])
		goto bad;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port > 65535 || !isdigit((unsigned char)colon[1]))
		goto bad;
	hlen = colon - bind;
	if (hlen >= 2 && bind[0] == '[' && bind[hlen - 1] == ']') {
		bind++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		goto bad;
	memcpy(host, bind, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (!hlen || inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6; /* empty host: in6addr_any, dual-stack */
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return 0;
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return 0;
	}
bad:
	sluice__set_err(
		"metrics bind address \"%s\": expected HOST:PORT with a numeric host, [V6]:PORT or :PORT",
		bind);
	return -EINVAL;
}

static int http__listen(struct http *h, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, zero = 0, err;

	err = http__parse_bind(addr, &ss, &len);
	if (err)
		return err;
	h->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (h->lfd < 0)
		goto fail;
	if (setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		goto fail;
	/* ":PORT" serves IPv4 too, whatever net.ipv6.bindv6only says */
	if (ss.ss_family == AF_INET6 &&
	    setsockopt(h->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)))
		goto fail;
	if (bind(h->lfd, (struct sockaddr *)&ss, len) || listen(h->lfd, 64))
		goto fail;
	len = sizeof(ss);
	if (getsockname(h->lfd, (struct sockaddr *)&ss, &len))
		goto fail;
	h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
						   ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
fail:
	err = -errno;
	sluice__set_err("%s on %s: %s", h->what, addr, strerror(errno));
	return err;
}

/* The 404 body names the paths there are. */
static void http__not_found_text(struct http *h)
{
	size_t off = 0, len = sizeof(h->not_found);
	int n;

	n = snprintf(h->not_found, len, "404 not found: try");
	for (size_t i = 0; i < h->nroutes && n > 0 && (size_t)n < len - off; i++) {
		off += (size_t)n;
		n = snprintf(h->not_found + off, len - off, "%s %s", i ? "," : "",
			     h->routes[i].path ? h->routes[i].path : "/");
	}
	off = strnlen(h->not_found, len - 2);
	h->not_found[off] = '\n';
	h->not_found[off + 1] = '\0';
}

static enum MHD_Result http__reply(struct MHD_Connection *conn, unsigned int status, void *body,
				   size_t len, bool must_free, const char *type,
				   const char *encoding, const struct http *h)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(
		len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		if (must_free)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (encoding)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, encoding);
	if (h && h->nosniff)
		MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (status != MHD_HTTP_METHOD_NOT_ALLOWED && status != MHD_HTTP_NOT_FOUND &&
	    !(h && h->no_gzip))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result http__text(struct MHD_Connection *conn, unsigned int status,
				  const char *text)
{
	return http__reply(conn, status, (void *)text, strlen(text), false,
			   "text/plain; charset=utf-8", NULL, NULL);
}

static enum MHD_Result http__serve(const struct http *h, struct MHD_Connection *conn,
				   const struct http_route *r)
{
	const char *ae =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	char *body = NULL, *msg;
	unsigned int status;
	void *gz;
	size_t len = 0, gz_len;
	FILE *f;
	int err;

	f = open_memstream(&body, &len);
	if (!f)
		return http__text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	sluice__clear_err();
	err = r->fn(r->ctx, f);
	if (fclose(f) && !err)
		err = -ENOMEM;
	if (err < 0) {
		free(body);
		if (asprintf(&msg, "%s\n", *sluice__errmsg() ? sluice__errmsg() : strerror(-err)) <
		    0)
			return http__text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "error\n");
		return http__reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, msg, strlen(msg), true,
				   "text/plain; charset=utf-8", NULL, NULL);
	}
	status = err > 0 ? (unsigned int)err : MHD_HTTP_OK;
	if (!h->no_gzip && http__accepts_gzip(ae) && !http__gzip(body, len, &gz, &gz_len)) {
		free(body);
		return http__reply(conn, status, gz, gz_len, true, r->content_type, "gzip", h);
	}
	return http__reply(conn, status, body, len, true, r->content_type, NULL, h);
}

static enum MHD_Result http__handle(void *cls, struct MHD_Connection *conn, const char *url,
				    const char *method, const char *version,
				    const char *upload_data, size_t *upload_data_size,
				    void **con_cls)
{
	struct http *h = cls;
	const struct http_route *r = NULL;
	struct http_conn *c = http__conn_of(conn);

	/* the headers are in: from now on the answer deadline counts */
	if (c && !c->busy) {
		c->busy = true;
		c->since = http__now_ms();
	}
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	for (size_t i = 0; i < h->nroutes; i++)
		if (!h->routes[i].path || !strcmp(url, h->routes[i].path))
			r = &h->routes[i];
	if (!r)
		return http__text(conn, MHD_HTTP_NOT_FOUND, h->not_found);
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return http__text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "405 method not allowed: use GET\n");
	return http__serve(h, conn, r);
}

int http__start(struct http **out, const struct http_opts *opts)
{
	const union MHD_DaemonInfo *info;
	struct http *h;
	int err;

	sluice__clear_err();
	h = calloc(1, sizeof(*h));
	if (!h) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	h->lfd = -1;
	h->routes = opts->routes;
	h->nroutes = opts->nroutes;
	h->nosniff = opts->nosniff;
	h->no_gzip = opts->no_gzip;
	h->what = opts->what ? opts->what : "metrics server";
	http__not_found_text(h);
	h->max_conns = opts->max_conns ? opts->max_conns : HTTP_MAX_CONNS_DEFAULT;
	h->request_ms = opts->request_ms ? opts->request_ms : HTTP_REQUEST_MS_DEFAULT;
	h->answer_ms = opts->answer_ms ? opts->answer_ms : HTTP_ANSWER_MS_DEFAULT;
	err = http__listen(h, opts->bind ? opts->bind : HTTP_DEFAULT_BIND);
	if (err)
		goto cleanup;
	h->d = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, http__handle, h,
				MHD_OPTION_LISTEN_SOCKET, h->lfd, MHD_OPTION_CONNECTION_LIMIT,
				h->max_conns + (opts->margin ? opts->margin : HTTP_CONN_MARGIN),
				MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned int)(opts->timeout_s ? opts->timeout_s :
								 HTTP_IDLE_S_DEFAULT),
				MHD_OPTION_NOTIFY_CONNECTION, http__notify, h,
				MHD_OPTION_NOTIFY_COMPLETED, http__completed, h, MHD_OPTION_END);
	if (!h->d) {
		sluice__set_err("%s: libmicrohttpd did not start", h->what);
		err = -EIO;
		goto cleanup;
	}
	h->lfd = -1; /* the daemon owns it now */
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info) {
		sluice__set_err("%s: no epoll fd from libmicrohttpd", h->what);
		err = -EIO;
		goto cleanup;
	}
	*out = h;
	return 0;
cleanup:
	http__stop(h);
	return err;
}

void http__stop(struct http *h)
{
	if (!h)
		return;
	if (h->d)
		MHD_stop_daemon(h->d); /* closes the listening socket too */
	if (h->lfd >= 0)
		close(h->lfd);
	free(h);
}

int http__fd(const struct http *h)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);

	return info ? info->epoll_fd : -1;
}

int http__run(struct http *h)
{
	/* what is ready first: a request that came in time is not expired */
	int err = MHD_run(h->d) == MHD_YES ? 0 : -EIO;

	http__expire(h);
	return err;
}

/* The next deadline of a tracked connection, in ms from now; -1: none. */
static long long http__next_deadline(const struct http *h)
{
	long long now = http__now_ms(), next = -1, at;

	for (const struct http_conn *c = h->head; c; c = c->next) {
		if (c->shut)
			continue; /* its shutdown wakes libmicrohttpd */
		at = c->since + (c->busy ? h->answer_ms : h->request_ms) - now;
		if (next < 0 || at < next)
			next = at < 0 ? 0 : at;
	}
	return next;
}

int http__timeout_ms(const struct http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	long long next = http__next_deadline(h);

	if (MHD_get_timeout(h->d, &ms) != MHD_YES)
		ms = 60000;
	if (next >= 0 && (MHD_UNSIGNED_LONG_LONG)next < ms)
		ms = (MHD_UNSIGNED_LONG_LONG)next;
	return ms > 60000 ? 60000 : (int)ms;
}

void http__stats(const struct http *h, struct http_stats *st)
{
	*st = h->st;
}

unsigned int http__port(const struct http *h)
{
	return h->port;
}
