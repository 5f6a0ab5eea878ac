// SPDX-License-Identifier: MIT
/*
 * ops_health.c - passive outlier detection (#14) in the API's SERVICE
 * objects: each backend's "health", the service's "health" summary, and
 * service.set, which changes a service's outlierDetection settings.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"

#include "meshd.h"
#include "ops.h"

struct json_object *ops__backend_health_json(struct sluice *sl, __u32 id,
					     const struct sluice_backend *be,
					     const struct sluice_svc_health *sh, bool *healthy)
{
	struct sluice_backend_health_view v;
	struct json_object *o;

	*healthy = false;
	if (sluice__backend_health(sl, id, be, sh, &v))
		return NULL;
	*healthy = v.state == SLUICE_BEH_HEALTHY || v.state == SLUICE_BEH_PROBATION;
	o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "state", json_object_new_string(sluice_be_health__str(v.state)));
	json_object_object_add(o, "consecutive_failures", json_object_new_int64(v.fails));
	json_object_object_add(o, "ejections", json_object_new_int64(v.ejections));
	json_object_object_add(o, "last_failure_reason",
			       json_object_new_string(v.last_fail_ms ?
							      sluice__health_reason_name(v.reason) :
							      "none"));
	json_object_object_add(o, "last_failure_ms",
			       json_object_new_int64((int64_t)v.last_fail_ms));
	json_object_object_add(o, "ejected_until_ms",
			       json_object_new_int64((int64_t)v.ejected_until_ms));
	return o;
}

struct json_object *ops__service_health_json(const struct sluice_svc_health *sh, __u32 healthy,
					     __u32 total, bool node_on)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "healthy", json_object_new_int64(healthy));
	json_object_object_add(o, "total", json_object_new_int64(total));
	json_object_object_add(o, "outlier_detection",
			       json_object_new_boolean(node_on && sh && sh->threshold));
	json_object_object_add(o, "ejected", json_object_new_int64(sh ? sh->ejected : 0));
	return o;
}

/* The service's settings with req's merged in: a field given replaces
 * its value, a field given as null goes back to its default; an empty
 * result leaves the object out (all defaults). */
static void ops__merge_outlier(struct json_object *svc, struct json_object *req_od)
{
	struct json_object *od = NULL;

	if (!json_object_object_get_ex(svc, "outlierDetection", &od) ||
	    !json_object_is_type(od, json_type_object)) {
		od = json_object_new_object();
		json_object_object_add(svc, "outlierDetection", od);
	}
	json_object_object_foreach(req_od, key, val)
	{
		if (val)
			json_object_object_add(od, key, json_object_get(val));
		else
			json_object_object_del(od, key);
	}
	if (!json_object_object_length(od))
		json_object_object_del(svc, "outlierDetection");
}

/* service.set {"service": SVC, FIELD: value | null, ...}: service-level
 * fields of the desired JSON (name, outlierDetection, sessionAffinity,
 * healthCheck, snat, dropWhenEmpty, sourceRanges; dispatch checks the names).
 * outlierDetection's fields given change (null: back to the default; null for the whole object:
 * every setting back to its default); the others are replaced (null:
 * removed, i.e. the default). The rules are the desired state's, checked
 * by the commit. */
struct json_object *ops__service_set(struct meshd *m, struct json_object *req)
{
	struct json_object *err, *root, *services, *svc, *od;
	struct svc_ref ref;
	int i, n = 0;

	err = ops__svc_arg(req, &ref);
	if (err)
		return err;
	if (json_object_object_get_ex(req, "outlierDetection", &od) && od &&
	    !json_object_is_type(od, json_type_object))
		return api__error("outlierDetection: %s is not an object",
				  json_object_to_json_string(od));
	err = ops__existing_svc(&m->state.desired, &m->kube, &ref, true, &i);
	if (err)
		return err;
	root = ops__state_json(&m->state.desired, &services);
	if (!root)
		return api__error("out of memory");
	svc = json_object_array_get_idx(services, i);
	json_object_object_foreach(req, key, val)
	{
		if (!strcmp(key, "op") || !strcmp(key, "service"))
			continue;
		n++;
		if (val && !strcmp(key, "outlierDetection"))
			ops__merge_outlier(svc, val);
		else if (val)
			json_object_object_add(svc, key, json_object_get(val));
		else
			json_object_object_del(svc, key);
	}
	if (!n) {
		json_object_put(root);
		return api__error("nothing to set: give a service-level field (name, "
				  "outlierDetection, sessionAffinity, healthCheck, snat, "
				  "dropWhenEmpty, sourceRanges, allowFrom, denyFrom, denyAction)");
	}
	return ops__commit_json(&m->state, m->sl, root, i, &ref, NULL);
}
