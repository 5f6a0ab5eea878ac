// SPDX-License-Identifier: MIT
/*
 * exporter.c - the /metrics endpoint of meshd (see exporter.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "metrics.h"
#include "sluice.h"

#include "exporter.h"
#include "k8sint.h"
#include "log.h"
#include "outlier.h"
#include "server.h"
#include "probe.h"
#include "sockint.h"
#include "telem.h"

/* The metrics server's own connections: what abuse it shrugged off. */
static void exporter__http_metrics(const struct http *h, FILE *out)
{
	struct http_stats st;

	http__stats(h, &st);
	fprintf(out,
		"# HELP sluice_metrics_http_connections Connections to this metrics server now.\n"
		"# TYPE sluice_metrics_http_connections gauge\n"
		"sluice_metrics_http_connections %llu\n"
		"# HELP sluice_metrics_http_connections_closed_total Metrics server connections "
		"closed by it, by why.\n"
		"# TYPE sluice_metrics_http_connections_closed_total counter\n"
		"sluice_metrics_http_connections_closed_total{reason=\"request_deadline\"} %llu\n"
		"sluice_metrics_http_connections_closed_total{reason=\"answer_deadline\"} %llu\n"
		"sluice_metrics_http_connections_closed_total{reason=\"evicted\"} %llu\n",
		(unsigned long long)st.open, (unsigned long long)st.request_deadline,
		(unsigned long long)st.answer_deadline, (unsigned long long)st.evicted);
}

/* Handler of GET /metrics: the sources as they are at this scrape (the
 * telemetry handle may come and go with restarts of telemetry). */
static int exporter__render(void *ctx, FILE *out)
{
	const struct exporter_view *v = ctx;
	const struct exporter *e =
		(const struct exporter *)((const char *)v - offsetof(struct exporter, view));
	struct metrics_src src;
	int err;

	if (!v->sl)
		return -EAGAIN; /* not loaded yet: cannot happen once the loop runs */
	src = (struct metrics_src){
		.s = v->sl,
		.t = v->telem->t,
		.sock = sockint__info(v->sock), /* refreshed for this scrape */
		.start_time = (double)v->started_at,
		.ejections = v->outlier ? v->outlier->ej : NULL,
		.nejections = v->outlier ? v->outlier->nej : 0,
	};
	err = metrics__render(&src, out);
	if (!err)
		k8sint__metrics(v->kube, out); /* the sync lives in the agent, not in metrics.c */
	if (!err && v->api)
		server__metrics(v->api, out);
	if (!err && v->probe)
		probe__metrics(v->probe, out);
	if (!err && e->h)
		exporter__http_metrics(e->h, out);
	return err;
}

/* A URL to reach the endpoint from this node: any-address binds are
 * reachable on localhost. */
static void exporter__url(const char *addr, unsigned int port, char *buf, size_t len)
{
	const char *colon = strrchr(addr, ':');
	int hlen = colon ? (int)(colon - addr) : 0;

	if (!hlen || !strncmp(addr, "0.0.0.0:", 8) || !strncmp(addr, "[::]:", 5))
		snprintf(buf, len, "http://localhost:%u/metrics", port);
	else
		snprintf(buf, len, "http://%.*s:%u/metrics", hlen, addr, port);
}

int exporter__start(struct exporter *e, const char *addr)
{
	char url[128];
	int err;

	e->h = NULL;
	e->addr = addr;
	if (!addr) {
		pr_info("metrics off (--metrics off)");
		return 0;
	}
	e->route =
		(struct http_route){ "/metrics", METRICS_CONTENT_TYPE, exporter__render, &e->view };
	err = http__start(&e->h,
			  &(struct http_opts){ .bind = addr, .routes = &e->route, .nroutes = 1 });
	if (err) {
		e->h = NULL;
		pr_err("%s (--metrics)", sluice__errmsg());
		return err;
	}
	exporter__url(addr, http__port(e->h), url, sizeof(url));
	pr_info("metrics on %s (--metrics %s)", url, addr);
	return 0;
}

void exporter__set_view(struct exporter *e, const struct exporter_view *view)
{
	e->view = *view;
}

void exporter__stop(struct exporter *e)
{
	http__stop(e->h);
	e->h = NULL;
}

int exporter__fd(const struct exporter *e)
{
	return e->h ? http__fd(e->h) : -1;
}

int exporter__timeout_ms(const struct exporter *e)
{
	return e->h ? http__timeout_ms(e->h) : -1;
}

void exporter__run(struct exporter *e)
{
	if (e->h && http__run(e->h))
		pr_debug("metrics server: a request failed");
}

struct json_object *exporter__status_json(const struct exporter *e)
{
	struct json_object *o;
	unsigned int port;
	char url[128];

	if (!e->h)
		return NULL;
	port = http__port(e->h);
	exporter__url(e->addr, port, url, sizeof(url));
	o = json_object_new_object();
	json_object_object_add(o, "address", json_object_new_string(e->addr));
	json_object_object_add(o, "port", json_object_new_int64(port));
	json_object_object_add(o, "url", json_object_new_string(url));
	return o;
}
