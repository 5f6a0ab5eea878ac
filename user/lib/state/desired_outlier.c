// SPDX-License-Identifier: MIT
/*
 * desired_outlier.c - a service's "outlierDetection" (#14): passive
 * outlier detection settings in the desired state.
 *
 *   "outlierDetection": {"enabled": true, "consecutiveFailures": 3,
 *     "baseEjectionMs": 30000, "maxEjectionMs": 300000,
 *     "maxEjectedPercent": 50, "panicThresholdPercent": 50}
 *
 * Every field is optional (the defaults above, SLUICE_OUTLIER_*_DEFAULT);
 * panicThresholdPercent 0 means "never panic". Contract: the values are
 * kept as written (a field left out stays 0 = default in struct
 * sluice_outlier_spec) and written back by desired__outlier_to_json()
 * only when they are not 0, so a file round-trips; whether two specs
 * differ is sluice_outlier__same()'s business (what the kernel gets).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "desired_internal.h"
#include "internal.h"

#define OUTLIER_MS_MAX 86400000 /* one day: longer is a config error */

static const char *const outlier_fields[] = {
	"enabled",
	"consecutiveFailures",
	"baseEjectionMs",
	"maxEjectionMs",
	"maxEjectedPercent",
	"panicThresholdPercent",
	NULL,
};

/* The integer fields, in the order their errors are reported. */
enum outlier_int_id {
	OUT_FAILURES,
	OUT_BASE_MS,
	OUT_MAX_MS,
	OUT_MAX_EJECTED,
	OUT_PANIC,
	OUT__MAX,
};

static const struct outlier_int {
	const char *field;
	long long min, max;
} outlier_ints[OUT__MAX] = {
	[OUT_FAILURES] = { "consecutiveFailures", 1, 255 },
	[OUT_BASE_MS] = { "baseEjectionMs", 1, OUTLIER_MS_MAX },
	[OUT_MAX_MS] = { "maxEjectionMs", 1, OUTLIER_MS_MAX },
	[OUT_MAX_EJECTED] = { "maxEjectedPercent", 1, 100 },
	[OUT_PANIC] = { "panicThresholdPercent", 0, 100 },
};

static void outlier__store(struct sluice_outlier_spec *o, enum outlier_int_id id, long long x)
{
	switch (id) {
	case OUT_FAILURES:
		o->consecutive_failures = (__u8)x;
		break;
	case OUT_BASE_MS:
		o->base_ejection_ms = (__u32)x;
		break;
	case OUT_MAX_MS:
		o->max_ejection_ms = (__u32)x;
		break;
	case OUT_MAX_EJECTED:
		o->max_ejected_pct = (__u8)x;
		break;
	case OUT_PANIC: /* 0 written: never panic (0 in the spec is the default) */
		o->panic_pct = x ? (__u8)x : SLUICE_OUTLIER_PANIC_NEVER;
		break;
	case OUT__MAX:
		break;
	}
}

static int outlier__enabled(struct json_object *o, const char *base, bool *disabled)
{
	char path[DESIRED_PATH_LEN], val[64];
	struct json_object *v = desired__field(o, "enabled");

	if (!v)
		return 0;
	desired__path(path, base, "enabled");
	if (!json_object_is_type(v, json_type_boolean))
		return desired__err(path, "expected true or false, got %s %s", desired__jtype(v),
				    desired__jtext(v, val, sizeof(val)));
	*disabled = !json_object_get_boolean(v);
	return 0;
}

int desired__parse_outlier(struct json_object *v, const char *svc_base,
			   struct sluice_outlier_spec *o)
{
	char base[DESIRED_PATH_LEN], path[DESIRED_PATH_LEN];
	struct json_object *f;
	long long x;
	int err;

	memset(o, 0, sizeof(*o));
	if (!v)
		return 0;
	desired__path(base, svc_base, "outlierDetection");
	err = desired__want_object(v, base);
	if (!err)
		err = desired__check_fields(v, base, outlier_fields, "outlierDetection");
	if (!err)
		err = outlier__enabled(v, base, &o->disabled);
	for (int i = 0; i < OUT__MAX && !err; i++) {
		f = desired__field(v, outlier_ints[i].field);
		if (!f)
			continue;
		desired__path(path, base, outlier_ints[i].field);
		err = desired__get_int(f, path, outlier_ints[i].min, outlier_ints[i].max, &x);
		if (!err)
			outlier__store(o, i, x);
	}
	return err;
}

int desired__check_outlier(const struct sluice_outlier_spec *o, const char *svc_base)
{
	char base[DESIRED_PATH_LEN];
	struct sluice_svc_health k;

	desired__path(base, svc_base, "outlierDetection");
	if (o->max_ejected_pct > 100)
		return desired__err_at(base, "maxEjectedPercent", "%u is out of range 1-100",
				       o->max_ejected_pct);
	if (o->panic_pct > 100 && o->panic_pct != SLUICE_OUTLIER_PANIC_NEVER)
		return desired__err_at(base, "panicThresholdPercent", "%u is out of range 0-100",
				       o->panic_pct);
	if (o->base_ejection_ms > OUTLIER_MS_MAX)
		return desired__err_at(base, "baseEjectionMs", "%u is out of range 1-%u",
				       o->base_ejection_ms, OUTLIER_MS_MAX);
	if (o->max_ejection_ms > OUTLIER_MS_MAX)
		return desired__err_at(base, "maxEjectionMs", "%u is out of range 1-%u",
				       o->max_ejection_ms, OUTLIER_MS_MAX);
	/* with the defaults filled in: the cap must not be below the base */
	sluice_outlier__to_kernel(o, false, &k);
	if (k.max_ms < k.base_ms)
		return desired__err_at(base, "maxEjectionMs", "%u is less than baseEjectionMs %u%s",
				       k.max_ms, k.base_ms,
				       o->max_ejection_ms ? "" : " (maxEjectionMs default)");
	return 0;
}

static void outlier__add_int(struct json_object *obj, const char *key, long long v)
{
	struct json_object *j = json_object_new_int64(v);

	if (j && json_object_object_add(obj, key, j))
		json_object_put(j);
}

struct json_object *desired__outlier_to_json(const struct sluice_outlier_spec *o)
{
	struct json_object *obj, *b;

	if (!o->disabled && !o->consecutive_failures && !o->base_ejection_ms &&
	    !o->max_ejection_ms && !o->max_ejected_pct && !o->panic_pct)
		return NULL;
	obj = json_object_new_object();
	if (!obj)
		return NULL;
	if (o->disabled) {
		b = json_object_new_boolean(0);
		if (b && json_object_object_add(obj, "enabled", b))
			json_object_put(b);
	}
	if (o->consecutive_failures)
		outlier__add_int(obj, "consecutiveFailures", o->consecutive_failures);
	if (o->base_ejection_ms)
		outlier__add_int(obj, "baseEjectionMs", o->base_ejection_ms);
	if (o->max_ejection_ms)
		outlier__add_int(obj, "maxEjectionMs", o->max_ejection_ms);
	if (o->max_ejected_pct)
		outlier__add_int(obj, "maxEjectedPercent", o->max_ejected_pct);
	if (o->panic_pct)
		outlier__add_int(obj, "panicThresholdPercent",
				 o->panic_pct == SLUICE_OUTLIER_PANIC_NEVER ? 0 : o->panic_pct);
	return obj;
}
