// SPDX-License-Identifier: MIT
/*
 * outlier.c - meshctl's side of passive outlier detection (#14): the
 * --outlier-* flags of `service add` and `service set` turned into the
 * desired state's outlierDetection object, and the health columns and
 * lines `service list` and `service get` print.
 *
 * Contract: every flag value is checked here, so a typo gets its error
 * (naming the flag and the value) before meshd is asked; meshd checks
 * the result again with the desired state's rules.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "meshctl.h"
#include "outlier.h"
#include "output.h"

#define OUTLIER_MS_MAX 86400000ul /* as the desired state allows: one day */

/* "500ms", "30s", "5m" -> milliseconds (1 ms to one day). */
int outlier__duration_ms(const char *text, const char *flag, unsigned long *ms)
{
	static const struct {
		const char *unit;
		unsigned long ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 } };
	unsigned long v;
	char *end;

	errno = 0;
	if (!isdigit((unsigned char)text[0]))
		goto bad;
	v = strtoul(text, &end, 10);
	if (errno)
		goto bad;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit))
			continue;
		if (!v || v > OUTLIER_MS_MAX / units[i].ms)
			return out__error("invalid --%s '%s': out of range 1ms-1440m", flag, text);
		*ms = v * units[i].ms;
		return 0;
	}
bad:
	return out__error("invalid --%s '%s': expected a duration with its unit, e.g. 500ms, "
			  "30s or 5m",
			  flag, text);
}

static void outlier__set(struct json_object *o, const char *key, struct json_object *v)
{
	json_object_object_add(o, key, v); /* NULL: JSON null, back to the default */
}

static int outlier__num(struct json_object *o, const char *text, const char *flag,
			unsigned long min, unsigned long max, const char *key)
{
	unsigned long v;
	char what[64];

	snprintf(what, sizeof(what), "--%s", flag);
	if (opts__uint(text, min, max, what, &v))
		return -1;
	outlier__set(o, key, json_object_new_int64((int64_t)v));
	return 0;
}

static int outlier__dur(struct json_object *o, const char *text, const char *flag, const char *key)
{
	unsigned long ms;

	if (outlier__duration_ms(text, flag, &ms))
		return -1;
	outlier__set(o, key, json_object_new_int64((int64_t)ms));
	return 0;
}

/* The flags' fields; NULL in *out when no flag was given. */
static int outlier__fields(const struct outlier_flags *f, struct json_object *o)
{
	if (f->off && f->on)
		return cmd__usage_error("--no-outlier-detection and --outlier-detection contradict "
					"each other");
	if (f->off)
		outlier__set(o, "enabled", json_object_new_boolean(0));
	if (f->on)
		outlier__set(o, "enabled", NULL);
	if (f->failures &&
	    outlier__num(o, f->failures, "outlier-failures", 1, 255, "consecutiveFailures"))
		return -1;
	if (f->base && outlier__dur(o, f->base, "outlier-base-ejection", "baseEjectionMs"))
		return -1;
	if (f->max && outlier__dur(o, f->max, "outlier-max-ejection", "maxEjectionMs"))
		return -1;
	if (f->max_pct &&
	    outlier__num(o, f->max_pct, "outlier-max-ejected-percent", 1, 100, "maxEjectedPercent"))
		return -1;
	if (f->panic &&
	    outlier__num(o, f->panic, "outlier-panic-percent", 0, 100, "panicThresholdPercent"))
		return -1;
	return 0;
}

int outlier__flags_json(const struct outlier_flags *f, struct json_object **out)
{
	struct json_object *o;

	*out = NULL;
	if (f->defaults &&
	    (f->off || f->on || f->failures || f->base || f->max || f->max_pct || f->panic))
		return cmd__usage_error("--outlier-defaults resets every outlier setting: give it "
					"alone");
	o = out__xalloc(json_object_new_object());
	if (outlier__fields(f, o)) {
		json_object_put(o);
		return -1;
	}
	if (!json_object_object_length(o) && !f->defaults) {
		json_object_put(o);
		return 0;
	}
	*out = o;
	return 0;
}

/* "30s", "1m30s", "1500ms" */
static char *outlier__ms(uint64_t ms, char *buf, size_t len)
{
	if (ms % 1000)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else
		out__duration(ms / 1000, buf, len);
	return buf;
}

static uint64_t outlier__field(struct json_object *od, const char *key, uint64_t dflt)
{
	struct json_object *v = js__get(od, key);

	return v ? js__u64(od, key) : dflt;
}

void outlier__print_settings(struct json_object *svc)
{
	struct json_object *od = js__get(svc, "outlierDetection"), *h = js__get(svc, "health");
	struct json_object *en = js__get(od, "enabled");
	char base[OUT_NUM_LEN], max[OUT_NUM_LEN];
	uint64_t panic;

	if (!h)
		return; /* an older meshd: no outlier detection */
	if (en && !json_object_get_boolean(en)) {
		printf("Outlier:   off for this service\n");
		return;
	}
	if (!json_object_get_boolean(js__get(h, "outlier_detection"))) {
		printf("Outlier:   off (node-wide: meshd --outlier-detection off)\n");
		return;
	}
	panic = outlier__field(od, "panicThresholdPercent", 50);
	printf("Outlier:   %llu failures in a row eject a backend for %s x ejections in a row "
	       "(at most %s);\n"
	       "           at most %llu%% of backends ejected; ",
	       (unsigned long long)outlier__field(od, "consecutiveFailures", 3),
	       outlier__ms(outlier__field(od, "baseEjectionMs", 30000), base, sizeof(base)),
	       outlier__ms(outlier__field(od, "maxEjectionMs", 300000), max, sizeof(max)),
	       (unsigned long long)outlier__field(od, "maxEjectedPercent", 50));
	if (panic)
		printf("below %llu%% healthy, health is ignored\n", (unsigned long long)panic);
	else
		printf("health is never ignored (no panic)\n");
}

const char *outlier__healthy_cell(struct json_object *svc, char *buf, size_t len)
{
	struct json_object *h = js__get(svc, "health");

	if (!h)
		return "-"; /* an older meshd */
	snprintf(buf, len, "%llu/%llu%s", (unsigned long long)js__u64(h, "healthy"),
		 (unsigned long long)js__u64(h, "total"),
		 json_object_get_boolean(js__get(h, "outlier_detection")) ? "" : " (off)");
	return buf;
}

const char *outlier__state_cell(struct json_object *be, char *buf, size_t len)
{
	struct json_object *h = js__get(be, "health");
	const char *state = js__str(h, "state", NULL);
	uint64_t until = js__u64(h, "ejected_until_ms");
	time_t t = (time_t)(until / 1000);
	char hms[16];
	struct tm tm;

	if (!state)
		return js__str(be, "state", js__u64(be, "weight") ? "active" : "draining");
	if (strcmp(state, "ejected") || !until || !localtime_r(&t, &tm))
		return state;
	strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
	snprintf(buf, len, "ejected until %s", hms);
	return buf;
}

void outlier__print_status(struct json_object *od)
{
	if (!od)
		return;
	if (!json_object_get_boolean(js__get(od, "enabled"))) {
		printf("Outliers:    detection off node-wide (meshd --outlier-detection off)\n");
		return;
	}
	if (!json_object_get_boolean(js__get(od, "events"))) {
		printf("Outliers:    detection on; the kernel's events are not read: %s\n",
		       js__str(od, "error", "?"));
		return;
	}
	printf("Outliers:    detection on; since meshd started: %llu ejected, %llu ejected again, "
	       "%llu restored,\n             %llu not ejected (max ejected reached)\n",
	       (unsigned long long)js__u64(od, "ejected"),
	       (unsigned long long)js__u64(od, "reejected"),
	       (unsigned long long)js__u64(od, "restored"),
	       (unsigned long long)js__u64(od, "max_ejected"));
}
