/* SPDX-License-Identifier: MIT */
/*
 * server.h - the API socket: a root-only Unix stream socket, one JSON
 * request and one response per connection (user/lib/state/api.h).
 *
 * Contract: the socket file is mode 0600 in a 0755 directory, and every
 * connection is checked with SO_PEERCRED too, so a loosened file mode
 * still admits only uid 0. A socket path another live meshd answers on is
 * never taken over. Requests are served one at a time from the event loop;
 * a stream op (connections.follow) hands its connection to follow.c,
 * which keeps it in the loop after the answer.
 */
#ifndef MESHD_SERVER_H
#define MESHD_SERVER_H

#include <limits.h>
#include <sys/un.h>

struct meshd;

struct server {
	int fd; /* listening, non-blocking */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

int server__open(struct server *srv, const char *path);
/* Accept and answer every pending connection. */
void server__serve(struct server *srv, struct meshd *m);
/* Close and remove the socket file. */
void server__close(struct server *srv);

#endif /* MESHD_SERVER_H */
