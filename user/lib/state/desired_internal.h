/* SPDX-License-Identifier: MIT */
/*
 * desired_internal.h - private to the desired-state files: the error text
 * every rule shares ("path: message") and the rules a parsed model must
 * pass (desired_check.c), which desired_parse.c runs as it goes so the
 * first error reported is the first one in the file.
 */
#ifndef SLUICE_DESIRED_INTERNAL_H
#define SLUICE_DESIRED_INTERNAL_H

#include "desired.h"

/* Room for a field path; "services[16383].backends[1023].address" is the
 * longest one a valid model can have. */
#define DESIRED_PATH_LEN 96

/* "path: message" into sluice__errmsg(); always -EINVAL, so callers can
 * `return desired__err(...)`. */
int desired__err(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Formats a path into buf (DESIRED_PATH_LEN bytes). */
/* desired__err() at base.field, the path formatted only then: checks of a
 * valid state format no path (at 10k services x 10, ~10 snprintf() per
 * backend and service were a fifth of a Kubernetes set's validation). */
int desired__err_at(const char *base, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void desired__pathf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "base.field" into buf (DESIRED_PATH_LEN bytes). */
void desired__path(char *buf, const char *base, const char *field);

/* Field readers of desired_parse.c, shared with the parsers of
 * service-level objects (healthCheck): each error names path and value. */
struct json_object;
/* Refuses a field not in fields (NULL-ended), suggesting the nearest. */
int desired__check_fields(struct json_object *obj, const char *path, const char *const *fields,
			  const char *what);
int desired__want_object(struct json_object *v, const char *path);
/* obj[key]; NULL when absent or null. */
struct json_object *desired__field(struct json_object *obj, const char *key);
/* A plain decimal integer in [min, max]. */
int desired__get_int(struct json_object *v, const char *path, long long min, long long max,
		     long long *out);
int desired__get_string(struct json_object *v, const char *path, const char *what,
			const char **out);
/* base.key as a boolean: absent or null is false, anything else an error. */
int desired__opt_bool(struct json_object *obj, const char *base, const char *key, bool *out);

/* services[i].healthCheck (desired_health.c): v may be NULL (none);
 * defaults filled in, checked by desired__check_health(). */
int desired__parse_health(struct json_object *v, const char *base, struct desired_service *svc);
/* The rules of a service's healthCheck; base is "services[i]". */
int desired__check_health(const struct desired_service *svc, const char *base);

/* The services of a desired state, one at a time: a tree's array, or
 * pieces of a text parsed as they are needed (desired_stream.c). get()
 * hands services[i]'s tree (an error ends the parse with it); put(), when
 * set, takes it back after use. parallel: get() and put() may be called
 * from several threads at once, each tree its own (a big state is then
 * parsed on every CPU; the result and the error are those of one). */
struct desired_svc_src {
	size_t n;
	int (*get)(void *ctx, size_t i, struct json_object **o);
	void (*put)(void *ctx, struct json_object *o);
	void *ctx;
	bool parallel;
};
/* desired__from_json() with the services from src; root's "services" is
 * then only checked to be there. src NULL: root's own array. */
int desired__from_src(struct desired *d, struct json_object *root,
		      const struct desired_svc_src *src);

/* Every rule about services[i] alone. */
int desired__check_service(const struct desired_service *svc, __u32 i);
/* Rules across services; each one already passed desired__check_service. */
int desired__check_all(const struct desired *d);

/* desired_parse.c: the JSON readers every part of a service uses. */
const char *desired__jtext(struct json_object *v, char *buf, size_t len);
const char *desired__jtype(struct json_object *v);
int desired__check_fields(struct json_object *obj, const char *path, const char *const *fields,
			  const char *what);
int desired__want_object(struct json_object *v, const char *path);
/* The field's value; NULL when absent or null. */
struct json_object *desired__field(struct json_object *obj, const char *key);
/* A plain decimal integer in [min, max]. */
int desired__get_int(struct json_object *v, const char *path, long long min, long long max,
		     long long *out);

/* desired_outlier.c: "outlierDetection" (#14). v NULL: all defaults. */
int desired__parse_outlier(struct json_object *v, const char *base, struct sluice_outlier_spec *o);
/* The rules for a model built in code; base is "services[i]". */
int desired__check_outlier(const struct sluice_outlier_spec *o, const char *base);
/* Only the fields not at their default; NULL when all are (nothing to
 * write). */
struct json_object *desired__outlier_to_json(const struct sluice_outlier_spec *o);
/* desired_affinity.c: "sessionAffinity" (#14) <-> affinity_timeout_s
 * (0: none). v NULL: none. */
int desired__parse_affinity(struct json_object *v, const char *base, __u32 *timeout_s);
/* The rule for a model built in code; base is "services[i]". */
int desired__check_affinity(__u32 timeout_s, const char *base);
/* {"type": "ClientIP", "timeoutSeconds": t}; NULL for no affinity. */
struct json_object *desired__affinity_to_json(__u32 timeout_s);

/* desired_src_range.c: "sourceRanges" (#13). v NULL: none. */
int desired__parse_src_ranges(struct json_object *v, const char *base, struct desired_service *svc);
/* The rules for a model built in code too; base is "services[i]". */
int desired__check_src_ranges(const struct desired_service *svc, const char *base);
/* ["10.0.0.0/8", ...]; NULL for none. */
struct json_object *desired__src_ranges_to_json(const struct desired_service *svc);

/* desired_policy.c: "allowFrom", "denyFrom", "denyAction" of the service
 * object o (#15); the compiler's rules, errors under base. */
int desired__parse_policy(struct json_object *o, const char *base, struct desired_service *svc);
int desired__check_policy(const struct desired_service *svc, const char *base);
void desired__policy_to_json(const struct desired_service *svc, struct json_object *obj);
/* "nodeDenyFrom" at the top level (v NULL: none). */
int desired__parse_node_deny(struct json_object *v, struct desired *d);

#endif /* SLUICE_DESIRED_INTERNAL_H */
