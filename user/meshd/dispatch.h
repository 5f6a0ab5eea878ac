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

/* ctx: struct meshd. NULL only when a stream op answered on fd itself
 * (*taken: it kept fd). */
struct json_object *dispatch__request(void *ctx, struct json_object *req, int fd, int pid,
				      bool *taken);

#endif /* MESHD_DISPATCH_H */
