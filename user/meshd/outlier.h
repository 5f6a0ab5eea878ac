/* SPDX-License-Identifier: MIT */
/*
 * outlier.h - passive outlier detection (#14) in the agent: the kernel
 * ejects and restores backends by itself; meshd configures it (the
 * svc_health entry of every service at start, --outlier-detection),
 * reads the kernel's health_events ring buffer in its event loop, logs
 * every ejection and restoration at info, and counts them for metrics.
 *
 * Contract: never a condition for the datapath: when the ring cannot be
 * read meshd runs on (ejections still happen in the kernel) and status
 * says why. The state (who is ejected, until when) lives in the pinned
 * maps, so it survives a restart; only the counts start again at 0.
 */
#ifndef MESHD_OUTLIER_H
#define MESHD_OUTLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "desired.h"
#include "metrics.h"

struct outlier {
	struct sluice *sl;
	const struct desired *desired;   /* names for the log */
	struct sluice_health_events *ev; /* NULL: not reading */
	bool enabled;                    /* --outlier-detection */
	struct metrics_ejections *ej;    /* ejection counts per backend */
	size_t nej, cap;
	__u64 events[SLUICE_HEALTH_EV_MAX_EJECTED + 1]; /* by kind */
	char error[256]; /* why events are not read; "" when they are */
};

/* After the reconcile: writes svc_health for every service of d (services
 * the reconcile left alone have none after an upgrade), then reads the
 * events that waited in the ring. */
void outlier__start(struct outlier *o, struct sluice *sl, const struct desired *d, bool enabled);
void outlier__stop(struct outlier *o);
/* epoll fd of the ring; -1 when not reading. */
int outlier__fd(const struct outlier *o);
void outlier__read(struct outlier *o);
/* One event: logged and counted (the ring's callback; tests call it). */
void outlier__on_event(const struct sluice_health_event *ev, void *ctx);
/*
 * The log line of an event, from resolved names: backend "10.0.1.2:8080",
 * name "web" (or "" for none), svc "10.96.0.10:80/tcp"; now_ms and
 * until_ms are wall clock (Unix ms). E.g. "backend 10.0.1.2:8080 of web
 * (10.96.0.10:80/tcp) ejected: 3 consecutive failures (rst), until
 * 11:40:32 UTC (30 s, ejection 1 in a row)".
 */
void outlier__describe(char *buf, size_t len, const struct sluice_health_event *ev,
		       const char *backend, const char *name, const char *svc, __u64 now_ms,
		       __u64 until_ms);
/* status "outlier_detection" object */
struct json_object *outlier__status_json(const struct outlier *o);

#endif /* MESHD_OUTLIER_H */
