// SPDX-License-Identifier: MIT
/*
 * probe.c - active health checks: the targets (one per backend with weight
 * > 0 of a service with a healthCheck), their verdicts, and the verdicts'
 * way into the maps and into what `service get` and /metrics show (see
 * probe.h). The probes themselves and their schedule: probe_net.c.
 *
 * Contract: targets are sorted by (service key, backend address), so a
 * service's targets are contiguous and a backend is found by bsearch;
 * probe__sync() rebuilds them from st->desired after every change and
 * keeps the verdict of every backend that stays. The maps learn a verdict
 * only through state__apply_verdicts() (one service at a time) or through
 * the stamp of a commit; the operator's weights are never changed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "probe.h"
#include "state.h"

static const char *const probe__results[] = {
	[PROBE_R_OK] = "success",      [PROBE_R_REFUSED] = "refused",
	[PROBE_R_TIMEOUT] = "timeout", [PROBE_R_STATUS] = "http_status",
	[PROBE_R_ERROR] = "error",
};

const char *probe__result_name(enum probe_result r)
{
	return r < PROBE_R__MAX ? probe__results[r] : "unknown";
}

bool probe__verdict_feed(struct probe_verdict *v, bool ok, __u8 healthy, __u8 unhealthy)
{
	if (ok) {
		v->fails = 0;
		if (!v->down)
			return false;
		if (v->oks < 255)
			v->oks++;
		if (v->oks < healthy)
			return false;
		v->down = false;
		v->oks = 0;
		return true;
	}
	v->oks = 0;
	if (v->down)
		return false;
	if (v->fails < 255)
		v->fails++;
	if (v->fails < unhealthy)
		return false;
	v->down = true;
	v->fails = 0;
	return true;
}

/* Identity order: service key, then backend address and port. */
static int probe__cmp_id(const struct probe_target *a, const struct probe_target *b)
{
	struct desired_service x = { .vip = a->vip, .port = a->vport, .proto = a->proto };
	struct desired_service y = { .vip = b->vip, .port = b->vport, .proto = b->proto };
	int c = desired__cmp_key(&x, &y);

	if (c)
		return c;
	x.vip = a->addr;
	y.vip = b->addr;
	x.port = a->port;
	y.port = b->port;
	x.proto = y.proto = 0;
	return desired__cmp_key(&x, &y);
}

static int probe__cmp_qsort(const void *a, const void *b)
{
	return probe__cmp_id(a, b);
}

static void probe__id(struct probe_target *t, const struct desired_service *svc,
		      const struct desired_backend *be)
{
	t->vip = svc->vip;
	t->vport = svc->port;
	t->proto = svc->proto;
	t->addr = be->addr;
	t->port = be->port;
}

static struct probe_target *probe__lookup(struct probe_target *v, __u32 n,
					  const struct desired_service *svc,
					  const struct desired_backend *be)
{
	struct probe_target key;

	memset(&key, 0, sizeof(key));
	probe__id(&key, svc, be);
	return n ? bsearch(&key, v, n, sizeof(*v), probe__cmp_qsort) : NULL;
}

const struct probe_target *probe__find(const struct probe *p, const struct desired_service *svc,
				       const struct desired_backend *be)
{
	return probe__lookup(p->t, p->n, svc, be);
}

static __u32 probe__count(const struct desired *d)
{
	__u32 n = 0;

	for (__u32 i = 0; i < d->nservices; i++)
		for (__u32 j = 0; d->services[i].health.type && j < d->services[i].nbackends; j++)
			n += d->services[i].backends[j].weight != 0;
	return n;
}

/* A target of the new set takes over what the old one had (verdict,
 * schedule, the probe in flight); a changed check restarts its probe. */
static void probe__carry(struct probe_target *t, struct probe_target *old)
{
	struct desired_health_check hc = t->hc;
	__u32 svc_idx = t->svc_idx, be_idx = t->be_idx;
	__u64 next_ms = t->next_ms;
	bool changed = !desired__health_eq(&hc, &old->hc);

	if (changed && old->phase != PROBE_IDLE) {
		close(old->fd);
		old->fd = -1;
		old->phase = PROBE_IDLE;
	}
	*t = *old;
	t->hc = hc;
	if (changed)
		t->next_ms = next_ms; /* within the new interval, not the old one */
	t->svc_idx = svc_idx;
	t->be_idx = be_idx;
	old->phase = PROBE_IDLE; /* taken over: not cancelled below */
	old->fd = -1;
}

/* The new set from st->desired, in identity order: a backend new to the
 * engine takes its verdict from the maps (a restart keeps it out until it
 * passes healthyThreshold probes) and its first probe somewhere in the
 * next interval (10k backends must not be probed in one burst). */
static __u32 probe__collect(struct probe *p, struct probe_target *v, __u64 now_ms)
{
	const struct desired *d = &p->st->desired;
	__u32 k = 0;

	for (__u32 i = 0; i < d->nservices; i++) {
		const struct desired_service *svc = &d->services[i];

		for (__u32 j = 0; svc->health.type && j < svc->nbackends; j++) {
			if (!svc->backends[j].weight)
				continue; /* drained: never probed, never revived */
			memset(&v[k], 0, sizeof(v[k]));
			probe__id(&v[k], svc, &svc->backends[j]);
			v[k].svc_idx = i;
			v[k].be_idx = j;
			v[k].hc = svc->health;
			v[k].fd = -1;
			v[k].v.down = svc->backends[j].unhealthy;
			v[k].next_ms = now_ms + (__u64)rand() % svc->health.interval_ms;
			k++;
		}
	}
	if (k)
		qsort(v, k, sizeof(*v), probe__cmp_qsort);
	return k;
}

int probe__sync(struct probe *p)
{
	__u32 n = probe__count(&p->st->desired), k;
	struct probe_target *v;

	v = calloc(n + 1, sizeof(*v));
	if (!v) {
		pr_warn("health checks: out of memory: the old set of probes is kept");
		return -ENOMEM;
	}
	k = probe__collect(p, v, p->now_us() / 1000);
	for (__u32 i = 0; i < k; i++) {
		struct desired_service svc = { .vip = v[i].vip,
					       .port = v[i].vport,
					       .proto = v[i].proto };
		struct desired_backend be = { .addr = v[i].addr, .port = v[i].port };
		struct probe_target *old = probe__lookup(p->t, p->n, &svc, &be);

		if (old)
			probe__carry(&v[i], old);
	}
	/* probes of backends that left: cancelled */
	for (__u32 i = 0; i < p->n; i++)
		if (p->t[i].phase != PROBE_IDLE)
			probe__net_close(p, i);
	free(p->t);
	p->t = v;
	p->n = k;
	p->dirty = p->resynced = true; /* a panic may have begun or ended */
	return probe__resched(p);
}

/* Whether every backend with weight > 0 of svc is marked unhealthy: then
 * none is taken out (a service refusing everything helps nobody). */
static bool probe__all_down(const struct desired_service *svc)
{
	bool any = false;

	for (__u32 j = 0; j < svc->nbackends; j++) {
		if (!svc->backends[j].weight)
			continue;
		if (!svc->backends[j].unhealthy)
			return false;
		any = true;
	}
	return any;
}

/* svc's backends marked from the verdicts; true when the service panics
 * (then none is marked). */
static bool probe__mark(const struct probe *p, struct desired_service *svc)
{
	for (__u32 j = 0; j < svc->nbackends; j++) {
		const struct probe_target *t = NULL;

		if (svc->health.type && svc->backends[j].weight)
			t = probe__find(p, svc, &svc->backends[j]);
		svc->backends[j].unhealthy = t && t->v.down;
	}
	if (!probe__all_down(svc))
		return false;
	for (__u32 j = 0; j < svc->nbackends; j++)
		svc->backends[j].unhealthy = false;
	return true;
}

void probe__stamp(struct probe *p, struct desired *next)
{
	for (__u32 i = 0; i < next->nservices; i++)
		probe__mark(p, &next->services[i]);
}

/* The service's targets (contiguous: [first, end)) entered or left panic. */
static void probe__set_panic(struct probe *p, __u32 first, __u32 end, bool panic)
{
	char ref[DESIRED_SVC_REF_LEN];

	if (p->t[first].panic == panic)
		return;
	for (__u32 i = first; i < end; i++)
		p->t[i].panic = panic;
	sluice_svc__str(&p->t[first].vip, p->t[first].vport, p->t[first].proto, ref, sizeof(ref));
	if (panic) {
		p->stats.panics++;
		pr_warn("service %s: every backend fails its health check: all of them stay in the "
			"Maglev table (panic) rather than refusing every connection",
			ref);
	} else {
		pr_info("service %s: a backend passes its health check again: panic over", ref);
	}
}

/* One service's verdicts into the maps when they differ from what they
 * hold. Returns -ENOMEM/the apply's error. */
static int probe__apply_svc(struct probe *p, __u32 first, __u32 end)
{
	struct desired_service *cur = &p->st->desired.services[p->t[first].svc_idx];
	struct desired_service want = *cur;
	char ref[DESIRED_SVC_REF_LEN];
	bool same = true, panic;
	int err = 0;

	want.backends = malloc((cur->nbackends + 1) * sizeof(*want.backends));
	if (!want.backends)
		return -ENOMEM;
	memcpy(want.backends, cur->backends, cur->nbackends * sizeof(*want.backends));
	panic = probe__mark(p, &want);
	probe__set_panic(p, first, end, panic);
	for (__u32 j = 0; j < cur->nbackends && same; j++)
		same = want.backends[j].unhealthy == cur->backends[j].unhealthy;
	if (!same)
		err = state__apply_verdicts(p->st, p->t[first].svc_idx, &want);
	if (err)
		pr_warn("service %s: health check verdicts not written: %s (retried on the next "
			"probe)",
			sluice_svc__str(&cur->vip, cur->port, cur->proto, ref, sizeof(ref)),
			sluice__errmsg());
	free(want.backends);
	return err;
}

void probe__apply(struct probe *p)
{
	__u32 first = 0;

	if (!p->dirty)
		return;
	p->dirty = false;
	while (first < p->n) {
		__u32 end = first + 1;
		bool flipped = p->t[first].flipped || p->resynced;

		while (end < p->n && p->t[end].svc_idx == p->t[first].svc_idx)
			flipped |= p->t[end++].flipped;
		for (__u32 i = first; i < end; i++)
			p->t[i].flipped = false;
		if (flipped && probe__apply_svc(p, first, end)) {
			p->stats.apply_errors++;
			p->dirty = true;
			p->t[first].flipped = true; /* again on the next run */
		}
		first = end;
	}
	p->resynced = false;
}

static const char *probe__state(const struct probe_target *t)
{
	if (!t->v.down)
		return t->probes ? "healthy" : "unknown";
	return t->panic ? "unhealthy (panic: kept)" : "unhealthy";
}

struct json_object *probe__backend_json(const struct probe *p, const struct desired_service *svc,
					const struct desired_backend *be)
{
	const struct probe_target *t = probe__find(p, svc, be);
	struct json_object *o;

	if (!t)
		return NULL;
	o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "state", json_object_new_string(probe__state(t)));
	json_object_object_add(o, "probes", json_object_new_int64((int64_t)t->probes));
	json_object_object_add(o, "failsInARow", json_object_new_int(t->v.fails));
	json_object_object_add(o, "successesInARow", json_object_new_int(t->v.oks));
	if (!t->last_at_ms)
		return o;
	json_object_object_add(o, "lastResult",
			       json_object_new_string(probe__result_name(t->last)));
	if (t->last_http)
		json_object_object_add(o, "lastHttpStatus", json_object_new_int(t->last_http));
	json_object_object_add(o, "latencyMs", json_object_new_double(t->last_us / 1000.0));
	json_object_object_add(
		o, "agoMs", json_object_new_int64((int64_t)(p->now_us() / 1000 - t->last_at_ms)));
	return o;
}

/* Upper bounds of the duration histogram, seconds. */
static const double probe__le[PROBE_BUCKETS] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
						 0.05,   0.1,   0.25,   0.5,   1,    2.5 };

void probe__observe(struct probe_stats *st, enum probe_result r, __u64 us)
{
	double s = us / 1e6;

	st->results[r]++;
	st->count++;
	st->sum_s += s;
	for (int i = 0; i < PROBE_BUCKETS; i++)
		if (s <= probe__le[i]) {
			st->buckets[i]++;
			break;
		}
}

static void probe__metrics_services(const struct probe *p, FILE *out)
{
	char ref[DESIRED_SVC_REF_LEN];
	__u32 first = 0;

	fprintf(out, "# HELP sluice_probe_unhealthy_backends Backends of the service failing "
		     "their active health check (out of the Maglev table unless the service "
		     "panics).\n"
		     "# TYPE sluice_probe_unhealthy_backends gauge\n");
	while (first < p->n) {
		__u32 end = first, down = 0;

		while (end < p->n && p->t[end].svc_idx == p->t[first].svc_idx)
			down += p->t[end++].v.down;
		fprintf(out, "sluice_probe_unhealthy_backends{service=\"%s\"} %u\n",
			sluice_svc__str(&p->t[first].vip, p->t[first].vport, p->t[first].proto, ref,
					sizeof(ref)),
			down);
		first = end;
	}
}

void probe__metrics(const struct probe *p, FILE *out)
{
	const struct probe_stats *st = &p->stats;
	__u64 cum = 0;

	fprintf(out, "# HELP sluice_probe_results_total Active health check probes, by result.\n"
		     "# TYPE sluice_probe_results_total counter\n");
	for (int r = 0; r < PROBE_R__MAX; r++)
		fprintf(out, "sluice_probe_results_total{result=\"%s\"} %llu\n",
			probe__result_name(r), (unsigned long long)st->results[r]);
	fprintf(out, "# HELP sluice_probe_duration_seconds Time from a probe's connect() to its "
		     "verdict.\n"
		     "# TYPE sluice_probe_duration_seconds histogram\n");
	for (int i = 0; i < PROBE_BUCKETS; i++) {
		cum += st->buckets[i];
		fprintf(out, "sluice_probe_duration_seconds_bucket{le=\"%g\"} %llu\n", probe__le[i],
			(unsigned long long)cum);
	}
	fprintf(out,
		"sluice_probe_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
		"sluice_probe_duration_seconds_sum %.6f\n"
		"sluice_probe_duration_seconds_count %llu\n",
		(unsigned long long)st->count, st->sum_s, (unsigned long long)st->count);
	fprintf(out,
		"# HELP sluice_probe_panics_total Times a service had every backend failing its "
		"health check and kept them all.\n"
		"# TYPE sluice_probe_panics_total counter\n"
		"sluice_probe_panics_total %llu\n",
		(unsigned long long)st->panics);
	probe__metrics_services(p, out);
}

struct json_object *probe__annotate(const struct probe *p, const struct desired_service *svc,
				    struct json_object *o)
{
	struct json_object *arr, *h;

	if (!o || !svc->health.type || !json_object_object_get_ex(o, "backends", &arr))
		return o;
	for (__u32 j = 0; j < svc->nbackends && j < json_object_array_length(arr); j++) {
		h = probe__backend_json(p, svc, &svc->backends[j]);
		if (h)
			json_object_object_add(json_object_array_get_idx(arr, j), "probe", h);
	}
	return o;
}
