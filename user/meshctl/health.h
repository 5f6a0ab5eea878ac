/* SPDX-License-Identifier: MIT */
/*
 * health.h - active health check options of `meshctl service add|set` and
 * their part of `service get` (health.c).
 */
#ifndef MESHCTL_HEALTH_H
#define MESHCTL_HEALTH_H

#include <stdbool.h>
#include <json-c/json.h>

struct health_flags {
	const char *check, *interval, *timeout, *port, *thresholds;
};

/* The struct opt entries of the flags, filling h. */
#define HEALTH_OPTS(h)                                                  \
	{ .name = "health", .value = &(h)->check },                     \
		{ .name = "health-interval", .value = &(h)->interval }, \
		{ .name = "health-timeout", .value = &(h)->timeout },   \
		{ .name = "health-port", .value = &(h)->port },         \
	{                                                               \
		.name = "health-thresholds", .value = &(h)->thresholds  \
	}

#define HEALTH_HELP                                                                               \
	{ "--health CHECK",                                                                       \
	  "tcp (a connect passes), http (GET / 2xx or 3xx passes), http:/PATH" },                 \
		{ "--health-interval DUR",                                                        \
		  "time between probes of a backend: 500ms, 2s, 1m (default 5s)" },               \
		{ "--health-timeout DUR",                                                         \
		  "a slower probe fails (default 1s; shorter than the interval)" },               \
		{ "--health-port N", "probe this port, not each backend's own (udp: required)" }, \
	{                                                                                         \
		"--health-thresholds H/U",                                                        \
			"out after U failed probes in a row, back after H passes (default 2/3)"   \
	}

/* The flags as a "healthCheck" object: 0 with *out NULL when none was
 * given; 1 with *out the object, or NULL for "--health none" (allowed
 * with allow_none: remove the check); -1 after reporting an error. */
int health__flags_json(const struct health_flags *h, bool allow_none, struct json_object **out);
/* service get: the check and a table of each backend's probe state. */
void health__print(struct json_object *svc);

#endif /* MESHCTL_HEALTH_H */
