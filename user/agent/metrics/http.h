/* SPDX-License-Identifier: MIT */
/*
 * http.h - a small HTTP server for GET /metrics (libmicrohttpd), run from
 * the agent's own epoll loop: no thread, no locking around the maps.
 *
 * Contract: http__start() binds and listens, then serves the given routes.
 * A route's handler writes the body into a FILE*; the server answers 200
 * with the route's Content-Type, gzip-compressed (zlib) with
 * Content-Encoding: gzip when the request's Accept-Encoding accepts gzip
 * (q > 0), 500 when the handler fails, 404 for other paths, 405 with
 * "Allow: GET, HEAD" for other methods. HEAD gets the headers of GET.
 * The bind address is "HOST:PORT" with a numeric host ("127.0.0.1:9465",
 * "[::1]:9465"), or ":PORT" for every address of both families. Port 0
 * picks a free port (http__port() says which).
 *
 * Agent loop: add http__fd() to epoll (EPOLLIN); call http__run() when it
 * is readable and when http__timeout_ms() (use it as the epoll timeout
 * bound) has passed.
 *
 * Abuse: at most max_conns connections (the one waiting longest for a
 * request gives way to a new one); a request must be whole within
 * request_ms and its answer taken within answer_ms, however the peer
 * trickles bytes, or the connection is closed.
 */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

/* The metrics port of Sluice: next to the exporters' 9100-9999 range,
 * not taken by a well-known exporter. */
#define HTTP_DEFAULT_BIND ":9465"

struct http;

/* Writes the body to out; returns 0 (-> 200), an HTTP status >= 200 to
 * answer with that body instead (e.g. 503 for "not ready"), or a negative
 * errno (-> 500, with sluice__errmsg() as the body). */
typedef int (*http_handler_fn)(void *ctx, FILE *out);

struct http_route {
	const char *path; /* exact match, e.g. "/metrics"; NULL: every path */
	const char *content_type;
	http_handler_fn fn;
	void *ctx;
};

struct http_opts {
	const char *bind; /* NULL: HTTP_DEFAULT_BIND */
	const struct http_route *routes;
	size_t nroutes;
	unsigned int max_conns; /* 0: HTTP_MAX_CONNS_DEFAULT */
	unsigned int timeout_s; /* idle connection timeout; 0: HTTP_IDLE_S_DEFAULT */
	int request_ms;         /* 0: HTTP_REQUEST_MS_DEFAULT */
	int answer_ms;          /* 0: HTTP_ANSWER_MS_DEFAULT */
	bool nosniff;           /* add X-Content-Type-Options: nosniff to answers */
	bool no_gzip;           /* never compress (answers as kube-proxy's, byte for byte) */
	const char *what;       /* names the server in errors; NULL: "metrics server" */
	unsigned int margin;    /* accepted beyond max_conns until evictions land; 0: 64 */
};

/* Connections served at once; past it a new one makes the one waiting
 * longest for a request give way (one being answered never does). With
 * the API's 256 this stays well within a 1024-descriptor limit. */
#define HTTP_MAX_CONNS_DEFAULT 512
#define HTTP_IDLE_S_DEFAULT 10
/* A whole request (headers) within this of the connection or of the
 * previous answer: trickling bytes does not extend it. */
#define HTTP_REQUEST_MS_DEFAULT 10000
/* The peer must have taken the answer within this. */
#define HTTP_ANSWER_MS_DEFAULT 30000

struct http_stats {
	__u64 accepted;
	__u64 evicted;
	__u64 request_deadline;
	__u64 answer_deadline;
	__u64 open;
};

/* Routes are referenced, not copied: they must outlive the server. */
int http__start(struct http **out, const struct http_opts *opts);
void http__stop(struct http *h);
int http__fd(const struct http *h);
/* Serves whatever is ready; never blocks. */
int http__run(struct http *h);
/* Milliseconds until http__run() must run anyway; -1: no deadline. */
int http__timeout_ms(const struct http *h);
/* The bound port (host order). */
unsigned int http__port(const struct http *h);
/* Connections and the ones closed by a deadline or evicted. */
void http__stats(const struct http *h, struct http_stats *st);

/* Helpers, exposed for tests. gzip-compress src into a malloc'ed *dst. */
int http__gzip(const void *src, size_t len, void **dst, size_t *dst_len);
/* Does an Accept-Encoding header value accept gzip? (NULL: no) */
int http__accepts_gzip(const char *accept_encoding);

#endif /* SLUICE_HTTP_H */
