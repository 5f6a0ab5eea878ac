/* SPDX-License-Identifier: MIT */
/*
 * server_conn.h - one API connection of server.c: its state machine.
 *
 * Contract: READ accumulates the request (or, for a refused or oversized
 * one, discards the rest of it so the peer can read our error), then the
 * handler runs and WRITE sends the answer as the peer takes it. Each step
 * does what the socket allows now and never waits. An answer to a change
 * that is not durable yet waits in HELD until its batch ends (group
 * commit, within the same turn of the loop: server__release()).
 */
#ifndef MESHD_SERVER_CONN_H
#define MESHD_SERVER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "server.h"

/* A new connection's buffer; it doubles when full, up to the limit. */
#define SERVER_BUF_MIN 4096
/* What a refused (non-root) peer may make us read before its answer. */
#define SERVER_DRAIN_MAX (64u << 10)
#define SERVER_REFUSED_MS 1000
/* What one turn of the loop discards of a refused request at most. */
#define SERVER_DISCARD_BATCH (1u << 20)

enum server_conn_state {
	CONN_FREE,
	CONN_READ,    /* accumulating a request */
	CONN_DISCARD, /* reading the rest of a request we refuse, then answer */
	CONN_WRITE,   /* sending the answer */
	CONN_HELD,    /* answered, the answer waits for its batch to be durable */
};

struct server_conn {
	int fd;
	int pid;
	enum server_conn_state state;
	char *buf; /* the request so far */
	size_t len, cap;
	size_t discard_left;      /* CONN_DISCARD: what we still read */
	struct json_object *resp; /* the answer being sent (owns out) */
	const char *out;          /* its text, then a newline */
	size_t out_len, out_off;
	long long deadline; /* of the current state, CLOCK_MONOTONIC ms */
	long long last_io;  /* for eviction: idle longest goes first */
	__u64 held_seq;     /* CONN_HELD: the batch the answer waits for */
};

long long server__now_ms(void);
/* Read what is there; on a whole request, handle it and start writing. */
void server__conn_read(struct server *srv, struct server_conn *c);
/* Send what the peer takes now; closes the connection when done. */
void server__conn_write(struct server *srv, struct server_conn *c);
/* Queue resp (taken over) as the answer and try sending it. */
void server__conn_answer(struct server *srv, struct server_conn *c, struct json_object *resp);
/* Discard the rest of the request, then answer resp (taken over). */
void server__conn_refuse(struct server *srv, struct server_conn *c, struct json_object *resp,
			 size_t budget);
void server__conn_close(struct server *srv, struct server_conn *c, enum server_close_reason why);

#endif /* MESHD_SERVER_CONN_H */
