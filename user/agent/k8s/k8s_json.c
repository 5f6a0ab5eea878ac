// SPDX-License-Identifier: MIT
/*
 * k8s_json.c - fields of the JSON the API server and kubeconfig files
 * hold, read the way the API means them (see k8s_internal.h).
 *
 * Contract: a field that is absent and one that is null read the same
 * (NULL, or the default), because the API omits and nulls optional fields
 * alike. A field of the wrong JSON type sets *bad instead of reading as
 * absent, so the caller can refuse the object rather than guess.
 */
#include <errno.h>

#include "k8s_internal.h"

struct json_object *k8s_json__get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return v;
}

/* The field when it has this JSON type; NULL and *bad when it has another. */
static struct json_object *json__typed(struct json_object *o, const char *key, enum json_type type,
				       bool *bad)
{
	struct json_object *v = k8s_json__get(o, key);

	if (v && !json_object_is_type(v, type)) {
		*bad = true;
		return NULL;
	}
	return v;
}

const char *k8s_json__str(struct json_object *o, const char *key, bool *bad)
{
	struct json_object *v = json__typed(o, key, json_type_string, bad);

	return v ? json_object_get_string(v) : NULL;
}

bool k8s_json__bool(struct json_object *o, const char *key, bool def, bool *bad)
{
	struct json_object *v = json__typed(o, key, json_type_boolean, bad);

	return v ? json_object_get_boolean(v) : def;
}

struct json_object *k8s_json__arr(struct json_object *o, const char *key, bool *bad)
{
	return json__typed(o, key, json_type_array, bad);
}

struct json_object *k8s_json__obj(struct json_object *o, const char *key, bool *bad)
{
	return json__typed(o, key, json_type_object, bad);
}

int k8s_json__int(struct json_object *v, long long min, long long max, long long *out)
{
	if (!v || !json_object_is_type(v, json_type_int))
		return -EINVAL;
	errno = 0;
	*out = json_object_get_int64(v);
	if (errno || *out < min || *out > max)
		return -EINVAL;
	return 0;
}
