/* SPDX-License-Identifier: MIT */
/*
 * exporter.h - GET /metrics: the Prometheus exposition (user/agent/metrics/metrics.h)
 * served by the HTTP server of user/agent/metrics/http.h from meshd's event loop.
 *
 * Contract: started (bound) before the datapath is touched, so a bad or
 * taken --metrics address stops meshd early with a message naming it;
 * served only once the loop runs. Every scrape reads the maps and the
 * telemetry aggregates afresh: what it shows is the state at the scrape.
 */
#ifndef MESHD_EXPORTER_H
#define MESHD_EXPORTER_H

#include <json-c/json.h>

#include "http.h"

struct meshd;

struct exporter {
	struct http *h; /* NULL: --metrics off */
	struct http_route route;
};

/* Binds m->cfg.metrics (nothing when NULL). */
int exporter__start(struct meshd *m);
void exporter__stop(struct exporter *e);
/* -1 when off */
int exporter__fd(const struct exporter *e);
/* The epoll timeout the server needs (-1: none). */
int exporter__timeout_ms(const struct exporter *e);
void exporter__run(struct exporter *e);
/* status "metrics" object, or NULL (JSON null) when off */
struct json_object *exporter__status_json(struct meshd *m);

#endif /* MESHD_EXPORTER_H */
