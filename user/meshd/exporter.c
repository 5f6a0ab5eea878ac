// SPDX-License-Identifier: MIT
/*
 * exporter.c - the /metrics endpoint of meshd (see exporter.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "metrics.h"
#include "sluice.h"

#include "attach.h"
#include "desired.h"
#include "exporter.h"
#include "k8s.h"
#include "k8sint.h"
#include "log.h"
#include "ops.h"
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

/* sluice_service_info: the names behind the service labels. */
static int exporter__service_info(const struct desired *d, FILE *out)
{
	struct metrics_svc_info *info;
	char(*labels)[SLUICE_SVC_STRLEN];

	if (!d || !d->nservices)
		return 0;
	info = calloc(d->nservices, sizeof(*info));
	labels = calloc(d->nservices, sizeof(*labels));
	if (!info || !labels) {
		free(info);
		free(labels);
		return -ENOMEM;
	}
	for (__u32 i = 0; i < d->nservices; i++) {
		const struct desired_service *s = &d->services[i];

		info[i] = (struct metrics_svc_info){ sluice_svc__str(&s->vip, s->port, s->proto,
								     labels[i], sizeof(labels[i])),
						     s->name, s->source };
	}
	metrics__service_info(out, info, d->nservices);
	free(info);
	free(labels);
	return 0;
}

/* Handler of GET /metrics: the sources as they are at this scrape (the
 * telemetry handle may come and go with restarts of telemetry). */
static int exporter__render(void *ctx, FILE *out)
{
	const struct exporter_view *v = ctx;
	struct exporter *e = (struct exporter *)((char *)ctx - offsetof(struct exporter, view));
	struct metrics_snapshot *snap;
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
		.backends = v->backends,
	};
	err = metrics__collect(&src, &snap);
	if (!err) {
		err = metrics__write(snap, out);
		if (err)
			sluice__set_err("writing metrics: %s", strerror(-err));
		memcpy(e->fill, snap->maps, sizeof(e->fill));
		e->nfill = snap->nmaps;
		e->fill_at = time(NULL);
		metrics__snapshot_free(snap);
	}
	if (!err)
		err = exporter__service_info(v->desired, out);
	if (!err)
		k8sint__metrics(v->kube, out); /* the sync lives in the agent, not in metrics.c */
	if (!err && v->api)
		server__metrics(v->api, out);
	if (!err && v->probe)
		probe__metrics(v->probe, out);
	if (!err)
		ops__policy_metrics(v->sl, out);
	if (!err && e->h)
		exporter__http_metrics(e->h, out);
	return err;
}

static int exporter__healthz(void *ctx, FILE *out)
{
	(void)ctx;
	fputs("ok\n", out); /* served from the agent's loop: it runs */
	return 0;
}

static bool exporter__check(FILE *out, const char *name, const char *why)
{
	if (!why)
		fprintf(out, "[+]%s ok\n", name);
	else
		fprintf(out, "[-]%s: %s\n", name, why);
	return !why;
}

bool exporter__ready(const struct exporter_view *v, FILE *out)
{
	struct json_object *errs = NULL;
	struct k8s_stats st;
	char why[256];
	bool ok;

	ok = exporter__check(out, "datapath", v->sl ? NULL : "not loaded yet");
	if (v->att)
		errs = attach__errors_json(v->att);
	if (errs && json_object_array_length(errs)) {
		struct json_object *e = json_object_array_get_idx(errs, 0), *f;

		snprintf(why, sizeof(why), "%zu interface(s) not attached, first %s: %s",
			 json_object_array_length(errs),
			 json_object_object_get_ex(e, "ifname", &f) ? json_object_get_string(f) :
								      "?",
			 json_object_object_get_ex(e, "error", &f) ? json_object_get_string(f) :
								     "?");
		ok &= exporter__check(out, "interfaces", why);
	} else {
		ok &= exporter__check(out, "interfaces", NULL);
	}
	json_object_put(errs);
	if (!v->kube || !v->kube->k)
		return ok;
	k8s__stats(v->kube->k, &st);
	if (!st.synced)
		snprintf(why, sizeof(why),
			 "waiting for the first full list of Services and EndpointSlices");
	else if (v->kube->last_error[0])
		snprintf(why, sizeof(why), "the last synced set was not applied: %.180s",
			 v->kube->last_error);
	return exporter__check(out, "kubernetes",
			       !st.synced || v->kube->last_error[0] ? why : NULL) &&
	       ok;
}

/* 200 when ready, else 503; the body says which check failed. */
static int exporter__readyz(void *ctx, FILE *out)
{
	return exporter__ready(ctx, out) ? 0 : 503;
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
	e->routes[0] =
		(struct http_route){ "/metrics", METRICS_CONTENT_TYPE, exporter__render, &e->view };
	e->routes[1] = (struct http_route){ "/healthz", "text/plain; charset=utf-8",
					    exporter__healthz, &e->view };
	e->routes[2] = (struct http_route){ "/readyz", "text/plain; charset=utf-8",
					    exporter__readyz, &e->view };
	err = http__start(&e->h,
			  &(struct http_opts){ .bind = addr, .routes = e->routes, .nroutes = 3 });
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
