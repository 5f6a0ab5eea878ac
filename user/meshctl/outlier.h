/* SPDX-License-Identifier: MIT */
/*
 * outlier.h - the outlier detection flags of `service add|set` and the
 * health cells of `service list|get` (#14), see outlier.c.
 */
#ifndef MESHCTL_OUTLIER_H
#define MESHCTL_OUTLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

struct outlier_flags {
	const char *failures, *base, *max, *max_pct, *panic;
	bool off, on, defaults;
};

/* The struct opt entries of the flags, to put in a command's table. */
#define OUTLIER_OPTS(f)                                                            \
	{ .name = "outlier-failures", .value = &(f)->failures },                   \
		{ .name = "outlier-base-ejection", .value = &(f)->base },          \
		{ .name = "outlier-max-ejection", .value = &(f)->max },            \
		{ .name = "outlier-max-ejected-percent", .value = &(f)->max_pct }, \
		{ .name = "outlier-panic-percent", .value = &(f)->panic },         \
		{ .name = "no-outlier-detection", .flag = &(f)->off },             \
	{                                                                          \
		.name = "outlier-detection", .flag = &(f)->on                      \
	}

/* Their help lines (terms short enough for a 100-column help). */
#define OUTLIER_HELP                                                                       \
	{ "--outlier-failures N",                                                          \
	  "connection failures in a row that eject a backend (1-255; default 3)" },        \
		{ "--outlier-base-ejection T",                                             \
		  "ejection time T (500ms, 30s, 5m) x ejections in a row (default 30s)" }, \
		{ "--outlier-max-ejection T", "cap of the ejection time (default 5m)" },   \
		{ "--outlier-max-ejected-percent N",                                       \
		  "at most N% of the backends ejected at once (1-100; default 50)" },      \
		{ "--outlier-panic-percent N",                                             \
		  "below N% healthy, use every backend (0-100, 0: never; default 50)" },   \
		{ "--no-outlier-detection", "never eject this service's backends" },       \
	{                                                                                  \
		"--outlier-detection", "turn it back on (after --no-outlier-detection)"    \
	}

/* The outlierDetection object the flags ask for (a JSON null value puts a
 * field back to its default); *out NULL when none was given. */
int outlier__flags_json(const struct outlier_flags *f, struct json_object **out);
/* "500ms", "30s", "5m" into milliseconds; the error names --flag. */
int outlier__duration_ms(const char *text, const char *flag, unsigned long *ms);
/* `service get`: the service's settings in words. */
void outlier__print_settings(struct json_object *svc);
/* `status`: the agent's outlier_detection object (nothing: an older meshd). */
void outlier__print_status(struct json_object *od);
/* `service list` HEALTHY: "2/3", "3/3 (off)", "-" (an older meshd). */
const char *outlier__healthy_cell(struct json_object *svc, char *buf, size_t len);
/* `service get` HEALTH of a backend: "healthy", "ejected until 11:40:32",
 * "probation", "unhealthy", "draining". */
const char *outlier__state_cell(struct json_object *be, char *buf, size_t len);

#endif /* MESHCTL_OUTLIER_H */
