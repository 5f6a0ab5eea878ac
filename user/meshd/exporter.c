// SPDX-License-Identifier: MIT
/*
 * exporter.c - the /metrics endpoint of meshd (see exporter.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "metrics.h"
#include "sluice.h"

#include "exporter.h"
#include "k8sint.h"
#include "log.h"
#include "meshd.h"

/* Handler of GET /metrics: the sources as they are at this scrape (the
 * telemetry handle may come and go with restarts of telemetry). */
static int exporter__render(void *ctx, FILE *out)
{
	struct meshd *m = ctx;
	int err;
	struct metrics_src src = {
		.s = m->sl,
		.t = m->telem.t,
		.sock = sockint__info(m), /* refreshed for this scrape */
		.start_time = (double)m->started_at,
	};

	if (!m->sl)
		return -EAGAIN; /* not loaded yet: cannot happen once the loop runs */
	err = metrics__render(&src, out);
	if (!err)
		k8sint__metrics(m, out); /* the sync lives in the agent, not in metrics.c */
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

int exporter__start(struct meshd *m)
{
	struct exporter *e = &m->exporter;
	char url[128];
	int err;

	e->h = NULL;
	if (!m->cfg.metrics) {
		pr_info("metrics off (--metrics off)");
		return 0;
	}
	e->route = (struct http_route){ "/metrics", METRICS_CONTENT_TYPE, exporter__render, m };
	err = http__start(&e->h, &(struct http_opts){ .bind = m->cfg.metrics,
						      .routes = &e->route,
						      .nroutes = 1 });
	if (err) {
		e->h = NULL;
		pr_err("%s (--metrics)", sluice__errmsg());
		return err;
	}
	exporter__url(m->cfg.metrics, http__port(e->h), url, sizeof(url));
	pr_info("metrics on %s (--metrics %s)", url, m->cfg.metrics);
	return 0;
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

struct json_object *exporter__status_json(struct meshd *m)
{
	struct json_object *o;
	unsigned int port;
	char url[128];

	if (!m->exporter.h)
		return NULL;
	port = http__port(m->exporter.h);
	exporter__url(m->cfg.metrics, port, url, sizeof(url));
	o = json_object_new_object();
	json_object_object_add(o, "address", json_object_new_string(m->cfg.metrics));
	json_object_object_add(o, "port", json_object_new_int64(port));
	json_object_object_add(o, "url", json_object_new_string(url));
	return o;
}
