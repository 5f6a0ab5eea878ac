// SPDX-License-Identifier: MIT
/*
 * desired_affinity.c - "sessionAffinity" of a service in the desired state
 * (#14), in Kubernetes' words so a Service's spec reads the same here:
 *
 *   sessionAffinity: {type: ClientIP, timeoutSeconds: 10800}
 *   sessionAffinity: {type: None}
 *
 * timeoutSeconds is 1-86400 (one day, as Kubernetes), default 10800 (3 h,
 * kube-proxy's), and only goes with ClientIP. In the model it is one
 * number: affinity_timeout_s, 0 for none.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "desired_internal.h"
#include "internal.h"

#define VAL_LEN 64

static const char *const aff_fields[] = { "type", "timeoutSeconds", NULL };

static int aff__type(struct json_object *o, const char *base, bool *client_ip)
{
	char path[DESIRED_PATH_LEN], val[VAL_LEN];
	struct json_object *v = desired__field(o, "type");
	const char *s;

	desired__path(path, base, "type");
	if (!v)
		return desired__err(path, "missing (\"ClientIP\" or \"None\")");
	if (!json_object_is_type(v, json_type_string))
		return desired__err(path, "expected \"ClientIP\" or \"None\", got %s %s",
				    desired__jtype(v), desired__jtext(v, val, sizeof(val)));
	s = json_object_get_string(v);
	if (!strcmp(s, "ClientIP") || !strcmp(s, "None")) {
		*client_ip = !strcmp(s, "ClientIP");
		return 0;
	}
	if (!strcasecmp(s, "ClientIP") || !strcasecmp(s, "None"))
		return desired__err(path, "%s: write \"ClientIP\" or \"None\" (as Kubernetes)",
				    desired__jtext(v, val, sizeof(val)));
	return desired__err(path, "%s is not \"ClientIP\" or \"None\"",
			    desired__jtext(v, val, sizeof(val)));
}

int desired__parse_affinity(struct json_object *v, const char *base, __u32 *timeout_s)
{
	char path[DESIRED_PATH_LEN], tpath[DESIRED_PATH_LEN];
	struct json_object *t;
	bool client_ip = false;
	long long x = SLUICE_AFFINITY_TIMEOUT_DEFAULT;
	int err;

	*timeout_s = 0;
	if (!v)
		return 0;
	desired__path(path, base, "sessionAffinity");
	err = desired__want_object(v, path);
	if (!err)
		err = desired__check_fields(v, path, aff_fields, "sessionAffinity");
	if (!err)
		err = aff__type(v, path, &client_ip);
	if (err)
		return err;
	t = desired__field(v, "timeoutSeconds");
	desired__path(tpath, path, "timeoutSeconds");
	if (t && !client_ip)
		return desired__err(tpath, "only goes with type \"ClientIP\"");
	if (t) {
		err = desired__get_int(t, tpath, 1, SLUICE_AFFINITY_TIMEOUT_MAX, &x);
		if (err)
			return err;
	}
	*timeout_s = client_ip ? (__u32)x : 0;
	return 0;
}

int desired__check_affinity(__u32 timeout_s, const char *base)
{
	char path[DESIRED_PATH_LEN];

	if (timeout_s <= SLUICE_AFFINITY_TIMEOUT_MAX)
		return 0;
	desired__pathf(path, "%s.sessionAffinity.timeoutSeconds", base);
	return desired__err(path, "%u is out of range 1-%u", timeout_s,
			    SLUICE_AFFINITY_TIMEOUT_MAX);
}

struct json_object *desired__affinity_to_json(__u32 timeout_s)
{
	struct json_object *o;

	if (!timeout_s)
		return NULL;
	o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "type", json_object_new_string("ClientIP"));
	json_object_object_add(o, "timeoutSeconds", json_object_new_int64(timeout_s));
	return o;
}
