/* SPDX-License-Identifier: MIT */
/*
 * follow.h - the streams of "connections.follow": API connections kept
 * open after their answer, each getting one JSON record per line.
 *
 * Contract: meshd is one thread and the followers are part of its event
 * loop (follow__fd() is an epoll fd of its own, added to the main one):
 * writes never block. A follower's unsent lines are buffered up to
 * FOLLOW_BUF_MAX; one that falls further behind is dropped (its stream
 * ends) rather than slowing the agent or growing without bound. A
 * follower that closes its end or errors is dropped; what it sends after
 * its request is ignored.
 */
#ifndef MESHD_FOLLOW_H
#define MESHD_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>

#include "desired.h"

#define FOLLOW_MAX 16
#define FOLLOW_BUF_MAX (1u << 20)

struct follower {
	int fd; /* -1: free slot */
	int pid;
	char service[DESIRED_SVC_REF_LEN]; /* only this service; "": all */
	char *buf;                         /* unsent bytes */
	size_t len, cap;
};

struct follow {
	int epfd;
	size_t n; /* followers in use */
	struct follower slots[FOLLOW_MAX];
};

int follow__init(struct follow *f);
/* Ends every stream. */
void follow__free(struct follow *f);
int follow__fd(const struct follow *f);
size_t follow__count(const struct follow *f);
/* Take over fd (connected, answered); service: a filter or NULL.
 * -EMFILE when FOLLOW_MAX streams are open (fd is then still the caller's). */
int follow__add(struct follow *f, int fd, int pid, const char *service);
/* Does any follower want records of this service (NULL: unknown)? */
bool follow__wants(const struct follow *f, const char *service);
/* One line (without its newline) to the followers that want service. */
void follow__send(struct follow *f, const char *service, const char *line);
/* follow__fd() is readable: flush, notice followers that went away. */
void follow__run(struct follow *f);

#endif /* MESHD_FOLLOW_H */
