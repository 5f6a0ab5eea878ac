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
 * a draining backend (weight 0) may carry "drainedWeight" (1-65535), the
 * weight `backend undrain` gives back; files without it load as before;
 * outlierDetection (optional, every field too) is desired_outlier.c's,
 * "sessionAffinity": {"type": "ClientIP"|"None", "timeoutSeconds": n}
 * desired_affinity.c's. A service may add "healthCheck": {"type": "tcp"|"http", "path", "port",
 * "intervalMs", "timeoutMs", "healthyThreshold", "unhealthyThreshold"}
 * (desired_health.c; defaults filled in when parsed) and "sourceRanges":
 * ["10.0.0.0/8", ...] (desired_src_range.c: at most 64 CIDRs of the VIP's
 * family, no host bits; absent or []: every client).
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
	/* The weight before a drain ("drainedWeight", only with weight 0; 0:
	 * none recorded): what `backend undrain` restores. Desired state only,
	 * the maps never see it, so it lives in the state file across restarts. */
	__u16 drained_weight;
	/* meshd's active health check took it out of the Maglev table (state
	 * SLUICE_BE_UNHEALTHY in the maps). A runtime verdict: never in the
	 * JSON or the state file, not a change desired__diff() reports, but
	 * one desired__apply() writes; desired__from_maps() reads it back. */
	bool unhealthy;
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

/* healthCheck defaults and bounds (desired_health.c). The timeout
 * defaults to 1000 ms, or half the interval when that is shorter. */
#define DESIRED_HC_INTERVAL_MS_DEFAULT 5000
#define DESIRED_HC_INTERVAL_MS_MIN 100
#define DESIRED_HC_INTERVAL_MS_MAX 3600000
#define DESIRED_HC_TIMEOUT_MS_DEFAULT 1000
#define DESIRED_HC_TIMEOUT_MS_MIN 10
#define DESIRED_HC_HEALTHY_DEFAULT 2
#define DESIRED_HC_UNHEALTHY_DEFAULT 3

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
	/* "sourceRanges" (#13, desired_src_range.c): 0 = every client; owned
	 * like backends (desired__free() frees it, copies duplicate it) */
	__u32 nsrc_ranges;
	struct sluice_cidr *src_ranges;
	bool snat;       /* "snat": source NAT to the VIP (traffic policy Cluster) */
	bool snat_node;  /* "snat": "node": to the node's SNAT address instead
			  * (load-balancer and external IPs); implies snat */
	bool drop_empty; /* "dropWhenEmpty": no backend drops instead of refusing */
	/* Access policy (#15, desired_policy.c): "allowFrom" (rules[0..nallow))
	 * and "denyFrom" (the ndeny after them); owned like backends */
	__u32 nallow, ndeny;
	struct sluice_policy_rule *rules;
	bool policy_refuse; /* "denyAction": "refuse" */
	/* desired__from_maps() only: the maps hold a policy for the service;
	 * its rules cannot be read back from the compiled trie, so this makes
	 * it differ from any desired service and the next apply rewrites it */
	bool policy_in_maps;
};

struct desired {
	__u32 nservices;
	struct desired_service *services;
	/* "nodeDenyFrom" (#15): the node-wide deny list */
	__u32 nnode_deny;
	struct sluice_cidr *node_deny;
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
/* desired__validate() of d with services[i] replaced by svc, d valid: the
 * rules of svc alone and the totals, plus (when svc's key is not
 * services[i]'s) its uniqueness; the same texts, in O(services) without a
 * copy, a sort or a path string per service. */
int desired__validate_one(const struct desired *d, __u32 i, const struct desired_service *svc);

/* "10.96.0.10:80/tcp", "[fd00::10]:80/udp" */
int desired__parse_svc_ref(const char *text, struct sluice_addr *vip, __u16 *port, __u8 *proto);
char *desired__svc_ref(const struct desired_service *svc, char *buf, size_t len);
struct desired_service *desired__find(const struct desired *d, const struct sluice_addr *vip,
				      __u16 port, __u8 proto);

/* A hash of d's services by key, for passes that look up every service of
 * one state in another (a restart's reconcile at 30k services: linear
 * finds made it quadratic). Valid while d's services array is unchanged.
 * Without memory, desired__index_find() falls back to desired__find(). */
struct desired_index {
	const struct desired *d;
	__u32 *slot; /* service index + 1; 0: empty */
	__u32 mask;
};

void desired__index_init(struct desired_index *ix, const struct desired *d);
struct desired_service *desired__index_find(const struct desired_index *ix,
					    const struct sluice_addr *vip, __u16 port, __u8 proto);
void desired__index_free(struct desired_index *ix);
/* desired__find() through the caller's index @ix of d, kept across calls
 * while d changes under it: a hit is checked against d's services (the
 * slot must hold the key); on a miss a scan of d decides, and only a key
 * d has (added or moved since) builds the index again, so adds, deletes
 * and moves need not update it. A hit costs a hash probe, a key d lacks
 * the scan desired__find() costs. Free it with desired__index_free(). */
struct desired_service *desired__find_cached(struct desired_index *ix, const struct desired *d,
					     const struct sluice_addr *vip, __u16 port, __u8 proto);

/* Persist atomically: temp file in the same directory, fsync, rename,
 * fsync of the directory. A missing file loads as the empty state. */
int desired__save(const struct desired *d, const char *path);
/* The state file's text of d (what desired__to_json() prints, pretty),
 * written to fd one service at a time (desired_stream.c). */
int desired__write(const struct desired *d, int fd);
/* The same on one line, as the API sends it (json-c's PLAIN text, no
 * newline at the end): `meshctl apply` streams its request with it.
 * -EMSGSIZE when it would pass max bytes (what was written until then
 * stays written). *written (may be NULL): the bytes written. */
int desired__write_plain(const struct desired *d, int fd, size_t max, size_t *written);
/* desired__from_json() of JSON text without its whole tree: one service's
 * at a time. -EAGAIN (no message): read the text with yaml__parse_json()
 * and desired__from_json(), which say what is wrong with it. */
int desired__from_text(struct desired *d, const char *text, size_t len, const char *name);
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
/* Calls fn for each service that differs between old and new (backends'
 * `unhealthy` verdicts aside; any healthCheck change is an update). */
void desired__diff(const struct desired *old, const struct desired *new, desired__diff_fn fn,
		   void *ctx);

/* Make the maps hold `new`, given they hold `old` (a service present in
 * the maps but in neither is left alone). All-or-nothing. */
int desired__apply(struct sluice *s, const struct desired *old, const struct desired *new);

/* --- source ranges (desired_src_range.c) --- */

/* Same set of ranges (order aside). */
bool desired__src_ranges_eq(const struct desired_service *a, const struct desired_service *b);
/* dst->src_ranges becomes a copy of src's (dst's old pointer is not
 * freed: dst is a shallow copy of src or fresh). */
int desired__src_ranges_dup(struct desired_service *dst, const struct desired_service *src);

/* --- access policy (desired_policy.c) --- */

bool desired__policy_eq(const struct desired_service *a, const struct desired_service *b);
int desired__policy_dup(struct desired_service *dst, const struct desired_service *src);
bool desired__node_deny_eq(const struct desired *a, const struct desired *b);
int desired__node_deny_dup(struct desired *dst, const struct desired *src);
/* After an apply that changed a policy: sluice__policy_cut(), problems
 * on stderr (the change stands; the kernel checks new flows anyway). */
void desired__policy_cut(struct sluice *s);
/* ["198.51.100.0/24", ...]; NULL for none. */
struct json_object *desired__node_deny_to_json(const struct desired *d);

/* --- active health checks (desired_health.c) --- */

/* Same check (two without a type are equal whatever else they hold). */
bool desired__health_eq(const struct desired_health_check *a, const struct desired_health_check *b);
/* Fields left 0 get their defaults (path "/" for http); type must be set. */
void desired__health_defaults(struct desired_health_check *hc);
/* The short forms meshctl flags and Kubernetes annotations share, each
 * -EINVAL with the text named: "tcp", "http", "http:/healthz" (type and
 * path); "2s", "500ms", "1m" or a number of ms; "2/3" (healthy/unhealthy
 * thresholds). Only the fields named are set. */
int desired__health_parse_spec(struct desired_health_check *hc, const char *text);
int desired__parse_ms(const char *text, const char *what, __u32 *ms);
int desired__health_parse_thresholds(struct desired_health_check *hc, const char *text);
/* The rules of desired__check_health() on a check alone, errors prefixed
 * by `what` ("--health", an annotation's name); proto and the VIP's port
 * decide whether a port must be given (udp services). */
int desired__health_validate(const struct desired_health_check *hc, __u8 proto, const char *what);
/* "http:/healthz every 5000ms, timeout 1000ms, 2 up/3 down, port 8081" */
char *desired__health_str(const struct desired_health_check *hc, char *buf, size_t len);
struct json_object *desired__health_to_json(const struct desired_health_check *hc);

/* --- service references, ordering, and the maps read back (svclist.c) --- */

/* Room for desired__svc_ref(): "[v6 address]:65535/proto". */
#define DESIRED_SVC_REF_LEN (SLUICE_ADDRPORT_STRLEN + 8)
/* Orders services by key (family, VIP, port, protocol), for sorted output. */
int desired__cmp_key(const struct desired_service *a, const struct desired_service *b);
/* The services in the maps (VIP markers skipped); *keys is malloc'ed. */
int sluice__service_list(struct sluice *s, struct sluice_svc_key **keys, __u32 *n);
/* The maps' services as a desired state (name empty, source "manual",
 * backends in id order): what meshd passes as `old` to desired__apply()
 * when it reconciles at start. The backends come from the handle's index
 * (read from the map once, then kept in step with this handle's writes;
 * a restart's later steps share it). */
int desired__from_maps(struct sluice *s, struct desired *d);
/* The same, the backends read from the map itself: what another writer
 * did shows too (meshctl doctor's drift check). */
int desired__from_maps_walk(struct sluice *s, struct desired *d);

#endif /* SLUICE_DESIRED_H */
