/* SPDX-License-Identifier: MIT */
/*
 * exporter.h - GET /metrics: the Prometheus exposition (user/agent/metrics/metrics.h)
 * served by the HTTP server of user/agent/metrics/http.h from meshd's event loop,
 * and the probes of the same server: GET /healthz (alive: the loop answers)
 * and GET /readyz (ready to carry traffic, see exporter__ready()).
 *
 * Contract: started (bound) before the datapath is touched, so a bad or
 * taken --metrics address stops meshd early with a message naming it;
 * served only once the loop runs. Every scrape reads the maps and the
 * telemetry aggregates afresh: what it shows is the state at the scrape.
 */
#ifndef MESHD_EXPORTER_H
#define MESHD_EXPORTER_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <json-c/json.h>

#include "http.h"
#include "metrics.h"

struct attach;
struct desired;
struct k8sint;
struct outlier;
struct probe;
struct server;
struct sluice;
struct sockint;
struct telem;

/* What a scrape reads, afresh each time: the pieces of the agent (the
 * telemetry handle inside telem may come and go with restarts of it). */
struct exporter_view {
	struct sluice *sl;
	struct telem *telem;
	struct sockint *sock;
	struct k8sint *kube;
	const struct outlier *outlier; /* NULL: no ejection counts */
	const struct probe *probe;     /* active health checks; NULL: none */
	const struct server *api;      /* NULL: none */
	const struct attach *att;      /* NULL: no interfaces to check */
	const struct desired *desired; /* names of services; NULL: none */
	time_t started_at;
	enum metrics_backends backends; /* --metrics-backends */
};

struct exporter {
	struct http *h;              /* NULL: --metrics off */
	const char *addr;            /* --metrics */
	struct http_route routes[3]; /* /metrics, /healthz, /readyz */
	struct exporter_view view;   /* sl NULL: nothing to show yet */
	/* Map fill as the last scrape counted it: what `doctor` reports,
	 * so the API op never walks a conntrack map of its own. */
	struct metrics_map fill[METRICS_MAPS_MAX];
	size_t nfill;
	time_t fill_at; /* 0: no scrape yet */
};

/* Binds addr, the --metrics value (nothing when NULL: off). */
int exporter__start(struct exporter *e, const char *addr);
/* Once the datapath is loaded: what scrapes show from now on. */
void exporter__set_view(struct exporter *e, const struct exporter_view *view);
void exporter__stop(struct exporter *e);
/* -1 when off */
int exporter__fd(const struct exporter *e);
/* The epoll timeout the server needs (-1: none). */
int exporter__timeout_ms(const struct exporter *e);
void exporter__run(struct exporter *e);
/*
 * exporter__ready() - is this agent ready to carry the node's traffic?
 * Writes one line per check, "[+]name ok" or "[-]name: why" (the format of
 * the Kubernetes API server's verbose /readyz), and returns whether all
 * passed: the datapath is loaded; every present interface that matches
 * --interfaces carries our program (none refused or failed); with
 * --kubernetes on, both kinds were listed in full and the last synced set
 * was committed.
 */
bool exporter__ready(const struct exporter_view *v, FILE *out);
/* status "metrics" object, or NULL (JSON null) when off */
struct json_object *exporter__status_json(const struct exporter *e);

#endif /* MESHD_EXPORTER_H */
