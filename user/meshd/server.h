/* SPDX-License-Identifier: MIT */
/*
 * server.h - the API socket: a root-only Unix stream socket, one JSON
 * request and one response per connection (user/lib/state/api.h).
 *
 * Contract: the socket file is mode 0600 in a 0755 directory, and every
 * connection is checked with SO_PEERCRED too, so a loosened file mode
 * still admits only uid 0. A socket path another live meshd answers on is
 * never taken over.
 *
 * No client can hold the agent: every connection is a non-blocking state
 * machine in meshd's event loop (server__fd() is an epoll fd of its own,
 * added to the main one). A request is read into a buffer that grows with
 * it up to max_request bytes (a larger one is answered with an error
 * naming both sizes); it must arrive whole within request_ms of the
 * connection, and the answer must be taken within answer_ms, or the
 * connection is closed. Only the op itself runs inline (a large apply
 * takes seconds). At most max_conns connections are open: a new root peer
 * evicts the one idle longest; a refused (non-root) peer never evicts.
 * A stream op (connections.follow) hands its connection to follow.c.
 * Changes read in one turn are made durable together (group commit):
 * their answers are held until the end of that turn (server_hold_fn).
 */
#ifndef MESHD_SERVER_H
#define MESHD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/un.h>
#include <json-c/json.h>
#include <linux/types.h>

/* A full-capacity desired state is ~17 MB of JSON (IPv4), ~26 MB (IPv6). */
#define SERVER_MAX_REQUEST_DEFAULT (32u << 20)
#define SERVER_MAX_CONNS_DEFAULT 256
#define SERVER_REQUEST_MS_DEFAULT 5000
#define SERVER_ANSWER_MS_DEFAULT 30000

/* The answer to req (a JSON object or not), or NULL when a stream op
 * answered on fd itself: *taken says whether it kept fd open. */
typedef struct json_object *(*server_handler_fn)(void *ctx, struct json_object *req, int fd,
						 int pid, bool *taken);

enum server_close_reason {
	SERVER_CLOSE_ANSWERED,
	SERVER_CLOSE_DEADLINE,        /* no whole request within request_ms */
	SERVER_CLOSE_ANSWER_DEADLINE, /* the answer not taken within answer_ms */
	SERVER_CLOSE_EVICTED,         /* idle longest when a new peer came */
	SERVER_CLOSE_FULL,            /* a non-root peer while full */
	SERVER_CLOSE_PEER,            /* closed or reset by the peer */
	SERVER_CLOSE_STREAM,          /* handed over to a stream */
	SERVER_CLOSE_STOP,            /* meshd is stopping */
	SERVER_CLOSE__MAX,
};

/* Group commit (state.h): after the handler, hold(ctx) says whether its
 * answer waits for a batch of changes to be made durable (the batch's
 * number; 0: answer now); after each turn of server__run() sync(ctx) ends
 * the open batch, and its owner calls server__release() with the outcome.
 * NULL: every answer goes out at once. */
typedef __u64 (*server_hold_fn)(void *ctx);
typedef void (*server_sync_fn)(void *ctx);

struct server_opts {
	size_t max_request; /* 0: SERVER_MAX_REQUEST_DEFAULT */
	size_t max_conns;   /* 0: SERVER_MAX_CONNS_DEFAULT */
	int request_ms;     /* 0: SERVER_REQUEST_MS_DEFAULT */
	int answer_ms;      /* 0: SERVER_ANSWER_MS_DEFAULT */
	server_handler_fn handle;
	server_hold_fn hold;
	server_sync_fn sync;
	void *ctx;
};

struct server_conn;

struct server_stats {
	__u64 accepted;
	__u64 closed[SERVER_CLOSE__MAX];
	__u64 too_large;     /* requests over max_request */
	__u64 accept_errors; /* e.g. out of file descriptors */
	__u64 held;          /* answers that waited for their batch's fdatasync */
	size_t open;
};

struct server {
	int fd;   /* listening, non-blocking */
	int epfd; /* the listening socket and every connection */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct server_opts o;
	struct server_conn *conns; /* o.max_conns slots, fd -1: free */
	long long accept_paused_until;
	long long accept_logged;
	bool bound; /* the socket file is ours to remove */
	struct server_stats st;
};

int server__open(struct server *srv, const char *path, const struct server_opts *opts);
/* The epoll fd to watch (EPOLLIN) in the agent's loop. */
int server__fd(const struct server *srv);
/* Milliseconds until server__run() must run anyway; -1: no deadline. */
int server__timeout_ms(const struct server *srv);
/* Accept, read, answer, write what is ready; then close the connections
 * past their deadline (after reading what they sent). Never blocks but
 * for the ops. */
void server__run(struct server *srv);
/* The batch seq ended: its held answers go out, each replaced by an
 * error naming text when the batch failed (text non-NULL). */
void server__release(struct server *srv, __u64 seq, const char *text);
/* At exit: deliver the answers still queued, for at most ms. */
void server__flush(struct server *srv, int ms);
/* Close every connection and the socket, remove the socket file. */
void server__close(struct server *srv);

const char *server__close_reason_name(enum server_close_reason r);
/* status "api" object */
struct json_object *server__status_json(const struct server *srv);
/* The sluice_api_* series of /metrics. */
void server__metrics(const struct server *srv, FILE *out);

#endif /* MESHD_SERVER_H */
