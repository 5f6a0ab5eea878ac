/* SPDX-License-Identifier: MIT */
/*
 * client.h - meshctl's one way to talk to meshd: an api__call() on the
 * socket chosen by -s/--socket, $SLUICE_SOCKET or the default.
 *
 * Contract: a call sends {"op": OP, ...args} and returns the response's
 * "data" (NULL when the agent sent none; the caller puts it). Transport
 * failures (worded by api.c: "is meshd running?", "needs root") and
 * {"ok": false} answers become one error text.
 */
#ifndef MESHCTL_CLIENT_H
#define MESHCTL_CLIENT_H

#include <stddef.h>
#include <json-c/json.h>

/* args may be NULL; it is consumed either way. Errors are reported with
 * out__error() and return -1. */
int client__call(const char *op, struct json_object *args, struct json_object **data);
/* Same, but the error text lands in err and nothing is printed. */
int client__try(const char *op, struct json_object *args, struct json_object **data, char *err,
		size_t errlen);

/* client__try() with api__call_ex()'s options (api.h): how->write sends
 * the request itself (op and args are then not sent: how->req unused),
 * how->lazy keeps that member of "data" as text in a large answer. */
struct api_call;
int client__try_ex(const char *op, struct json_object *args, const struct api_call *how,
		   struct json_object **data, char *err, size_t errlen);

/*
 * A stream op (connections.follow): sends {"op": OP, ...args}, takes the
 * answer like client__call() (a refusal is reported and returns -1), then
 * hands every following line, parsed, to fn until fn returns non-zero
 * (returns 0) or meshd ends the stream (reported, returns -1). Only the
 * answer is bounded by --timeout: a quiet stream is no failure.
 */
typedef int (*client_msg_fn)(struct json_object *msg, void *ctx);
int client__stream(const char *op, struct json_object *args, client_msg_fn fn, void *ctx);

#endif /* MESHCTL_CLIENT_H */
