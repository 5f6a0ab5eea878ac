// SPDX-License-Identifier: MIT
/*
 * ops_telem.c - API op handlers on connection telemetry:
 * connections.list, connections.follow (a stream) and top.
 *
 * Contract: see user/lib/state/api.h for the shapes. connections.list shows
 * one RECORD per connection by default (its newest event: an open
 * connection as "open", a finished one as "closed" or "failed"); with
 * "events" every event kept. top is a snapshot of counters only (totals
 * since the agent started plus a monotonic time): rates and windowed
 * percentiles are for the client to compute from two snapshots, so any
 * number of `meshctl top` can run without meshd keeping per-client state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "api.h"
#include "desired.h"
#include "metrics.h"
#include "sluice.h"
#include "telemetry.h"

#include "conns.h"
#include "follow.h"
#include "log.h"
#include "meshd.h"
#include "ops.h"
#include "telem.h"

/* NULL when telemetry runs, else the error answer saying why not. */
static struct json_object *ops__need_telemetry(const struct telem *tm)
{
	if (tm->t)
		return NULL;
	if (!tm->cfg.enabled)
		return api__error(
			"telemetry is off (meshd --telemetry off): no connection records");
	return api__error("telemetry is unavailable: %s", tm->error[0] ? tm->error : "not started");
}

/* Optional "service": the canonical ref into buf ("" when absent). */
static struct json_object *ops__svc_filter(struct json_object *req, char *buf, size_t len)
{
	struct json_object *err;
	struct svc_ref ref;

	buf[0] = '\0';
	if (!ops__has(req, "service"))
		return NULL;
	err = ops__svc_arg(req, &ref);
	if (err)
		return err;
	snprintf(buf, len, "%s", ref.text);
	return NULL;
}

static struct json_object *ops__uint_arg(struct json_object *req, const char *key, __u64 min,
					 __u64 max, __u64 dflt, __u64 *out)
{
	struct json_object *v;
	int64_t n;

	*out = dflt;
	if (!json_object_object_get_ex(req, key, &v))
		return NULL;
	if (!json_object_is_type(v, json_type_int))
		return api__error("%s: %s is not an integer", key, json_object_to_json_string(v));
	n = json_object_get_int64(v);
	if (n < (int64_t)min || (__u64)n > max)
		return api__error("%s: %lld is out of range %llu-%llu", key, (long long)n,
				  (unsigned long long)min, (unsigned long long)max);
	*out = (__u64)n;
	return NULL;
}

static struct json_object *ops__bool_arg(struct json_object *req, const char *key, bool *out)
{
	struct json_object *v;

	*out = false;
	if (!json_object_object_get_ex(req, key, &v))
		return NULL;
	if (!json_object_is_type(v, json_type_boolean))
		return api__error("%s: %s is not true or false", key,
				  json_object_to_json_string(v));
	*out = json_object_get_boolean(v);
	return NULL;
}

/* --- connections.list --- */

struct ops_pick {
	__u64 cookie;
	size_t idx; /* into the records, oldest first */
};

/* By connection, newest record first within one. */
static int ops__pick_cmp(const void *a, const void *b)
{
	const struct ops_pick *x = a, *y = b;

	if (x->cookie != y->cookie)
		return x->cookie < y->cookie ? -1 : 1;
	return x->idx > y->idx ? -1 : x->idx < y->idx;
}

/* keep[i]: record i is the newest of its connection. */
static int ops__newest_per_conn(const struct sluice_telem_rec *recs, size_t n, bool *keep)
{
	struct ops_pick *p = calloc(n ? n : 1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		p[i] = (struct ops_pick){ recs[i].cookie, i };
	qsort(p, n, sizeof(*p), ops__pick_cmp);
	for (size_t i = 0; i < n; i++)
		keep[p[i].idx] = !i || p[i].cookie != p[i - 1].cookie;
	free(p);
	return 0;
}

struct json_object *ops__connections_list(struct meshd *m, struct json_object *req)
{
	struct json_object *err, *arr, *d;
	struct sluice_telem_rec *recs = NULL;
	char filter[DESIRED_SVC_REF_LEN];
	size_t n, shown = 0, first;
	bool events, *keep = NULL;
	__u64 limit;

	err = ops__need_telemetry(&m->telem);
	if (!err)
		err = ops__uint_arg(req, "limit", 1, TELEM_RECENT, TELEM_RECENT, &limit);
	if (!err)
		err = ops__bool_arg(req, "events", &events);
	if (!err)
		err = ops__svc_filter(req, filter, sizeof(filter));
	if (err)
		return err;
	/* Records waiting in the ring are news too. */
	telem__read(&m->telem);
	recs = calloc(TELEM_RECENT, sizeof(*recs));
	keep = calloc(TELEM_RECENT, sizeof(*keep));
	if (!recs || !keep) {
		free(recs);
		free(keep);
		return api__error("out of memory");
	}
	n = telemetry__recent(m->telem.t, recs, TELEM_RECENT);
	if (events) {
		for (size_t i = 0; i < n; i++)
			keep[i] = true;
	} else if (ops__newest_per_conn(recs, n, keep)) {
		free(recs);
		free(keep);
		return api__error("out of memory");
	}
	/* The newest `limit` of what passes, printed oldest first. */
	first = n;
	while (first > 0 && shown < limit) {
		const struct conns_name *svc;

		first--;
		if (!keep[first])
			continue;
		svc = conns__service(&m->conns, recs[first].svc_id);
		if (filter[0] && (!svc || strcmp(svc->ref, filter))) {
			keep[first] = false;
			continue;
		}
		shown++;
	}
	arr = json_object_new_array();
	for (size_t i = first; i < n; i++)
		if (keep[i])
			json_object_array_add(arr, conns__rec_json(&m->conns, &recs[i]));
	free(recs);
	free(keep);
	d = json_object_new_object();
	json_object_object_add(d, "records", arr);
	return api__ok(d);
}

/* --- connections.follow --- */

struct json_object *ops__connections_follow(struct meshd *m, struct json_object *req, int fd,
					    int pid, bool *kept)
{
	char filter[DESIRED_SVC_REF_LEN];
	struct json_object *err, *resp, *d;
	int rc;

	*kept = false;
	err = ops__need_telemetry(&m->telem);
	if (!err)
		err = ops__svc_filter(req, filter, sizeof(filter));
	if (err)
		return err;
	if (follow__count(&m->follow) >= FOLLOW_MAX)
		return api__error("%d connection streams are open already, the most meshd serves",
				  FOLLOW_MAX);
	/* The answer first, then the records: the client knows it is in. */
	d = json_object_new_object();
	json_object_object_add(d, "following", json_object_new_boolean(1));
	if (filter[0])
		json_object_object_add(d, "service", json_object_new_string(filter));
	resp = api__ok(d);
	rc = resp ? api__write_msg(fd, resp) : -ENOMEM;
	json_object_put(resp);
	if (rc) {
		pr_debug("api: connections.follow: answer not delivered: %s", sluice__errmsg());
		return NULL; /* the client is gone: nothing to answer */
	}
	rc = follow__add(&m->follow, fd, pid, filter[0] ? filter : NULL);
	if (rc) {
		pr_warn("connections stream for pid %d: %s", pid, strerror(-rc));
		return NULL;
	}
	*kept = true;
	return NULL;
}

/* --- top --- */

static void ops__add_u64(struct json_object *o, const char *key, __u64 v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static struct json_object *ops__hist_json(const struct telemetry_hist *h,
					  enum telemetry_hist_kind kind)
{
	const struct telemetry_hist_spec *spec = telemetry__hist_spec(kind);
	struct json_object *o = json_object_new_object(), *le, *counts;

	le = json_object_new_array();
	counts = json_object_new_array();
	for (unsigned int i = 0; i < spec->nbounds; i++)
		json_object_array_add(le, json_object_new_uint64(spec->bounds[i]));
	for (unsigned int i = 0; i <= spec->nbounds; i++)
		json_object_array_add(counts, json_object_new_uint64(h->buckets[i]));
	json_object_object_add(o, "le", le);
	json_object_object_add(o, "counts", counts);
	ops__add_u64(o, "count", h->count);
	ops__add_u64(o, "sum", h->sum);
	return o;
}

static struct json_object *ops__conn_json(const struct telemetry_svc_stats *tel, int dir)
{
	const struct telemetry_conn *c = &tel->conn[dir];
	struct json_object *o = json_object_new_object();
	__u64 failed = 0;

	for (int r = 0; r < SLUICE_TELEM_REASON__MAX; r++)
		failed += c->failed[r];
	ops__add_u64(o, "opened", c->opened);
	ops__add_u64(o, "closed", c->closed);
	ops__add_u64(o, "reset", c->reset);
	ops__add_u64(o, "failed", failed);
	ops__add_u64(o, "active", c->opened > c->closed ? c->opened - c->closed : 0);
	ops__add_u64(o, "bytes_sent", c->bytes_sent);
	ops__add_u64(o, "bytes_received", c->bytes_received);
	ops__add_u64(o, "retransmits", c->retrans);
	ops__add_u64(o, "rtos", c->rtos);
	json_object_object_add(o, "rtt_us",
			       ops__hist_json(&tel->hist[dir][TELEMETRY_HIST_RTT],
					      TELEMETRY_HIST_RTT));
	return o;
}

static struct json_object *ops__top_service(const struct desired *desired,
					    const struct metrics_service *s)
{
	struct json_object *o = json_object_new_object(), *conns;
	struct sluice_addr vip = { .family = s->key.family };
	struct desired_service *d;

	memcpy(vip.addr, s->key.addr, sizeof(vip.addr));
	d = desired__find(desired, &vip, ntohs(s->key.port), s->key.proto);
	json_object_object_add(o, "service", json_object_new_string(s->name));
	json_object_object_add(o, "name", json_object_new_string(d ? d->name : ""));
	ops__add_u64(o, "id", s->svc_id);
	ops__add_u64(o, "backends", s->backend_count);
	ops__add_u64(o, "packets", s->stats.packets);
	ops__add_u64(o, "bytes", s->stats.bytes);
	ops__add_u64(o, "flows", s->stats.flows);
	ops__add_u64(o, "refused", s->stats.refused);
	conns = json_object_new_object();
	for (int dir = 0; s->has_telemetry && dir < SLUICE_TELEM_DIR__MAX; dir++)
		if (s->tel.seen[dir])
			json_object_object_add(conns, telemetry__dir_name(dir),
					       ops__conn_json(&s->tel, dir));
	json_object_object_add(o, "connections", conns);
	return o;
}

struct json_object *ops__top(struct meshd *m, struct json_object *req)
{
	/* top shows services only: no per-backend reads */
	struct metrics_src src = { .s = m->sl,
				   .t = m->telem.t,
				   .start_time = m->started_at,
				   .backends = METRICS_BACKENDS_OFF };
	struct json_object *d, *arr;
	struct metrics_snapshot *snap;
	struct timespec now;

	(void)req;
	/* Counts as of now, not as of the last time the ring woke us. */
	telem__read(&m->telem);
	if (metrics__collect(&src, &snap))
		return api__error("%s", sluice__errmsg());
	clock_gettime(CLOCK_MONOTONIC, &now);
	d = json_object_new_object();
	ops__add_u64(d, "time_ms", (__u64)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	ops__add_u64(d, "uptime_seconds", time(NULL) - m->started_at);
	json_object_object_add(d, "telemetry", json_object_new_boolean(m->telem.t != NULL));
	if (snap->has_telemetry) {
		ops__add_u64(d, "records_read", snap->telemetry.read);
		ops__add_u64(d, "records_lost", snap->telemetry.kernel[SLUICE_TELEM_CNT_LOST]);
	}
	arr = json_object_new_array();
	for (size_t i = 0; i < snap->nservices; i++)
		json_object_array_add(arr, ops__top_service(&m->state.desired, &snap->services[i]));
	json_object_object_add(d, "services", arr);
	metrics__snapshot_free(snap);
	return api__ok(d);
}
