/* SPDX-License-Identifier: MIT */
/*
 * ops.h - the handlers of the API ops of user/lib/state/api.h.
 *
 * Contract: a handler gets the parsed request and returns the whole
 * response (api__ok() or api__error()), never NULL. Read ops look at the
 * maps and m->state.desired; every change goes through state__commit(), so a
 * rejected request leaves maps and state file exactly as they were.
 */
#ifndef MESHD_OPS_H
#define MESHD_OPS_H

#include <stdbool.h>
#include <stdio.h>
#include <json-c/json.h>

#include "sluice.h"

struct meshd;

/* A service argument, parsed: "VIP:PORT/PROTO". */
struct svc_ref {
	struct sluice_addr vip;
	__u16 port;
	__u8 proto;
	char text[SLUICE_ADDRPORT_STRLEN + 8]; /* canonical spelling */
};

typedef struct json_object *(*ops__fn)(struct meshd *m, struct json_object *req);

struct json_object *ops__status(struct meshd *m, struct json_object *req);
struct json_object *ops__service_list(struct meshd *m, struct json_object *req);
struct json_object *ops__service_get(struct meshd *m, struct json_object *req);
struct json_object *ops__service_add(struct meshd *m, struct json_object *req);
struct json_object *ops__service_del(struct meshd *m, struct json_object *req);
struct json_object *ops__service_set(struct meshd *m, struct json_object *req);
struct json_object *ops__backend_add(struct meshd *m, struct json_object *req);
struct json_object *ops__backend_del(struct meshd *m, struct json_object *req);
struct json_object *ops__backend_weight(struct meshd *m, struct json_object *req);
struct json_object *ops__backend_drain(struct meshd *m, struct json_object *req);
struct json_object *ops__backend_undrain(struct meshd *m, struct json_object *req);
/* {"changes": [{"op": "add"|"del"|"weight"|"drain"|"undrain", "service",
 * "backend", "weight"}, ...]} (at most STATE_GROUP_MAX): each change with
 * its own verdict in data.results, in order ({"ok": true} or the error the
 * single op would give), all of them made durable by one fdatasync before
 * the answer; data.applied and data.refused count them. */
struct json_object *ops__backend_batch(struct meshd *m, struct json_object *req);
struct json_object *ops__apply(struct meshd *m, struct json_object *req);
struct json_object *ops__conntrack_list(struct meshd *m, struct json_object *req);
struct json_object *ops__conntrack_flush(struct meshd *m, struct json_object *req);
struct json_object *ops__uninstall(struct meshd *m, struct json_object *req);
struct json_object *ops__connections_list(struct meshd *m, struct json_object *req);
struct json_object *ops__top(struct meshd *m, struct json_object *req);
struct json_object *ops__doctor(struct meshd *m, struct json_object *req);
struct json_object *ops__explain(struct meshd *m, struct json_object *req); /* ops_explain.c */
struct json_object *ops__policy_list(struct meshd *m, struct json_object *req);
/* GET /metrics: the policy cuts' counters and the worker's state (#15). */
void ops__policy_metrics(struct sluice *sl, FILE *out);
struct json_object *ops__policy_get(struct meshd *m, struct json_object *req);
struct json_object *ops__policy_node_set(struct meshd *m, struct json_object *req);

/* A stream op answers on fd itself and, when it keeps fd for the stream,
 * sets *kept (the server then neither answers nor closes it); otherwise
 * it returns the answer like any op (NULL: nothing to answer). */
typedef struct json_object *(*ops__stream_fn)(struct meshd *m, struct json_object *req, int fd,
					      int pid, bool *kept);
struct json_object *ops__connections_follow(struct meshd *m, struct json_object *req, int fd,
					    int pid, bool *kept);

/* Helpers of ops.c shared with ops_node.c. */
const char *ops__str(struct json_object *req, const char *key); /* NULL: absent/not a string */
bool ops__has(struct json_object *req, const char *key);
/* req's "service" into ref; NULL on success, else the error response. */
struct json_object *ops__svc_arg(struct json_object *req, struct svc_ref *ref);

/* ops_node.c, shared with ops_doctor.c: {"name","entries","capacity"} of
 * one map, counted by walking it (NULL when unreadable). */
struct json_object *ops__map_fill(struct sluice *sl, const char *name);

/* Helpers of ops.c shared with ops_health.c. */
struct desired;
struct k8sint;
struct state;
/* The index of ref's service in d, or the error response (no such
 * service; kubernetes-owned when editing). */
struct json_object *ops__existing_svc(const struct desired *d, const struct k8sint *ki,
				      const struct svc_ref *ref, bool edit, int *idx);
/* The desired state as JSON to edit; *services is its array. */
struct json_object *ops__state_json(const struct desired *d, struct json_object **services);
/* Stage next as services[idx] into the open batch (state__stage_service():
 * the answer waits for its fdatasync; next consumed either way), errors
 * naming the service by ref: the reply, with the service as the maps now
 * hold it (sl NULL: without it, {"ok": true, "data": null}). */
struct json_object *ops__commit_service(struct state *st, struct sluice *sl, __u32 idx,
					struct desired_service *next, const struct svc_ref *ref);
/* Parse the edited JSON back and commit (see ops.c). */
struct json_object *ops__commit_json(struct state *st, struct sluice *sl, struct json_object *root,
				     int idx, const struct svc_ref *ref,
				     struct json_object *deleted);

/* ops_health.c (#14): a backend's "health" (NULL when unreadable; *healthy:
 * it takes new flows as far as health goes) and a service's summary. */
struct json_object *ops__backend_health_json(struct sluice *sl, __u32 id,
					     const struct sluice_backend *be,
					     const struct sluice_svc_health *sh, bool *healthy);
struct json_object *ops__service_health_json(const struct sluice_svc_health *sh, __u32 healthy,
					     __u32 total, bool node_on);

#endif /* MESHD_OPS_H */
