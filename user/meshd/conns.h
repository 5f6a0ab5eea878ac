/* SPDX-License-Identifier: MIT */
/*
 * conns.h - connection telemetry records as the API's RECORD objects
 * (user/lib/state/api.h): ids resolved to service and backend names, kernel
 * timestamps to wall-clock time.
 *
 * Contract: a record carries service and backend ids; they are named by
 * what the maps hold when the record is shown (an id whose service is
 * gone shows as null, with its id). Service names come from a table of
 * the services map rebuilt on first use after conns__stale(), so a burst
 * of records costs one map walk, not one per record.
 */
#ifndef MESHD_CONNS_H
#define MESHD_CONNS_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "desired.h"
#include "sluice_telemetry_abi.h"

struct follow;
struct sluice;

struct conns_name {
	__u32 svc_id;
	char ref[DESIRED_SVC_REF_LEN]; /* "10.96.0.10:80/tcp" */
	char name[DESIRED_NAME_MAX];   /* from the desired state; "" when none */
};

struct conns {
	struct sluice *sl;             /* ids to services and backends */
	const struct desired *desired; /* their names */
	struct conns_name *names;      /* sorted by svc_id */
	size_t n;
	bool fresh; /* names match the maps */
};

void conns__init(struct conns *c, struct sluice *sl, const struct desired *desired);
/* The maps changed: rebuild the names on next use. */
void conns__stale(struct conns *c);
void conns__free(struct conns *c);
/* The service a record's id names now; NULL when none. */
const struct conns_name *conns__service(struct conns *c, __u32 svc_id);
/* One record as a RECORD object (NULL: out of memory). */
struct json_object *conns__rec_json(struct conns *c, const struct sluice_telem_rec *rec);
/* Send one record to the followers that want its service. */
void conns__broadcast(struct conns *c, struct follow *f, const struct sluice_telem_rec *rec);

#endif /* MESHD_CONNS_H */
