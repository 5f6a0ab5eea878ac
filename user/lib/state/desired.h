/* SPDX-License-Identifier: MIT */
/*
 * desired.h - the desired state: the services an operator (or Kubernetes)
 * wants, independent of the maps. One model, one JSON shape, used by the
 * state file, `meshctl apply -f` (YAML or JSON) and the agent API.
 *
 * Contract: desired__from_json() and desired__from_file() validate
 * everything before returning (unknown fields, malformed addresses, ports,
 * protocols, mixed families, duplicates, too many backends, all weights 0)
 * and name the offending field by path and value in sluice__errmsg(), e.g.
 * "services[2].backends[0].port: 70000 is out of range 1-65535".
 * desired__apply() writes only the difference into the maps and is
 * all-or-nothing: on a map error it restores what it already changed.
 *
 * JSON shape (YAML alike):
 *   {"services": [{"name": "web", "vip": "10.96.0.10", "port": 80,
 *     "protocol": "tcp", "source": "manual",
 *     "backends": [{"address": "10.0.1.2", "port": 8080, "weight": 90}],
 *     "outlierDetection": {"consecutiveFailures": 5}}]}
 * name is optional (a label), source defaults to "manual", weight to 1;
 * outlierDetection (optional, every field too) is desired_outlier.c's.
 */
#ifndef SLUICE_DESIRED_H
#define SLUICE_DESIRED_H

#include <stdbool.h>
#include <json-c/json.h>

#include "sluice.h"

#define DESIRED_NAME_MAX 64
#define DESIRED_SOURCE_MAX 16

struct desired_backend {
	struct sluice_addr addr;
	__u16 port;   /* host order */
	__u16 weight; /* 0 = draining */
};

/* Active health check of a service's backends, probed by meshd (#14). */
enum desired_hc_type {
	DESIRED_HC_NONE = 0,
	DESIRED_HC_TCP = 1,  /* a connect() that completes is healthy */
	DESIRED_HC_HTTP = 2, /* GET path answered 2xx/3xx is healthy */
};
#define DESIRED_HC_PATH_MAX 128

struct desired_health_check {
	__u8 type;                /* enum desired_hc_type */
	__u8 healthy_threshold;   /* successes in a row to return */
	__u8 unhealthy_threshold; /* failures in a row to leave */
	__u16 port;               /* 0: the backend's own port */
	__u32 interval_ms;
	__u32 timeout_ms;
	char path[DESIRED_HC_PATH_MAX]; /* HTTP only */
};

struct desired_service {
	char name[DESIRED_NAME_MAX];
	char source[DESIRED_SOURCE_MAX]; /* "manual" or "kubernetes" */
	struct sluice_addr vip;
	__u16 port; /* host order */
	__u8 proto; /* IPPROTO_TCP / IPPROTO_UDP */
	__u32 nbackends;
	struct desired_backend *backends;
	struct sluice_outlier_spec outlier; /* "outlierDetection" */
	__u32 affinity_timeout_s;           /* "sessionAffinity"; 0 = none */
	struct desired_health_check health; /* "healthCheck" */
};

struct desired {
	__u32 nservices;
	struct desired_service *services;
};

void desired__init(struct desired *d);
void desired__free(struct desired *d);
int desired__copy(struct desired *dst, const struct desired *src);

/* Parse + validate. On error *d is left empty and the message names the path. */
int desired__from_json(struct desired *d, struct json_object *root);
/* A YAML or JSON file (YAML is read with libyaml; JSON is YAML). */
int desired__from_file(struct desired *d, const char *path);
int desired__from_string(struct desired *d, const char *text, size_t len);
struct json_object *desired__to_json(const struct desired *d);
struct json_object *desired__service_to_json(const struct desired_service *svc);
/* Validate a model built in code (the API's incremental edits). */
int desired__validate(const struct desired *d);

/* "10.96.0.10:80/tcp", "[fd00::10]:80/udp" */
int desired__parse_svc_ref(const char *text, struct sluice_addr *vip, __u16 *port, __u8 *proto);
char *desired__svc_ref(const struct desired_service *svc, char *buf, size_t len);
struct desired_service *desired__find(const struct desired *d, const struct sluice_addr *vip,
				      __u16 port, __u8 proto);

/* Persist atomically: temp file in the same directory, fsync, rename,
 * fsync of the directory. A missing file loads as the empty state. */
int desired__save(const struct desired *d, const char *path);
int desired__load(struct desired *d, const char *path);
/* Like desired__load() but a missing file is -ENOENT (the caller decides
 * what it means, from the one open: no stat() race). */
int desired__load_existing(struct desired *d, const char *path);

enum desired_change {
	DESIRED_ADD,
	DESIRED_UPDATE,
	DESIRED_DELETE
};
typedef void (*desired__diff_fn)(enum desired_change change, const struct desired_service *old_svc,
				 const struct desired_service *new_svc, void *ctx);
/* Calls fn for each service that differs between old and new. */
void desired__diff(const struct desired *old, const struct desired *new, desired__diff_fn fn,
		   void *ctx);

/* Make the maps hold `new`, given they hold `old` (a service present in
 * the maps but in neither is left alone). All-or-nothing. */
int desired__apply(struct sluice *s, const struct desired *old, const struct desired *new);

/* --- service references, ordering, and the maps read back (svclist.c) --- */

/* Room for desired__svc_ref(): "[v6 address]:65535/proto". */
#define DESIRED_SVC_REF_LEN (SLUICE_ADDRPORT_STRLEN + 8)
/* Orders services by key (family, VIP, port, protocol), for sorted output. */
int desired__cmp_key(const struct desired_service *a, const struct desired_service *b);
/* The services in the maps (VIP markers skipped); *keys is malloc'ed. */
int sluice__service_list(struct sluice *s, struct sluice_svc_key **keys, __u32 *n);
/* The maps' services as a desired state (name empty, source "manual",
 * backends in id order): what meshd passes as `old` to desired__apply()
 * when it reconciles at start. */
int desired__from_maps(struct sluice *s, struct desired *d);

#endif /* SLUICE_DESIRED_H */
