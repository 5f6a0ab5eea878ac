/* SPDX-License-Identifier: MIT */
/*
 * dispatch.h - API requests to the op handlers of ops.h.
 *
 * Contract: a request names its op and only the arguments that op takes:
 * anything else is refused with an error naming it, so a typo ("weigth")
 * is an error rather than a silently ignored default. This is the
 * server_handler_fn of server.h with the agent as its context.
 */
#ifndef MESHD_DISPATCH_H
#define MESHD_DISPATCH_H

#include <stdbool.h>
#include <json-c/json.h>
#include <linux/types.h>

/* ctx: struct meshd. NULL only when a stream op answered on fd itself
 * (*taken: it kept fd). */
struct json_object *dispatch__request(void *ctx, struct json_object *req, int fd, int pid,
				      bool *taken);
/* Group commit glue (server.h, state.h): the batch the last request's
 * answer waits for (0: none), the end of a turn's batch, and its outcome
 * handed to the held answers (state's done hook). ctx: struct meshd. */
__u64 dispatch__hold(void *ctx);
void dispatch__sync(void *ctx);
void dispatch__done(void *ctx, __u64 seq, int err, const char *text);

#endif /* MESHD_DISPATCH_H */
