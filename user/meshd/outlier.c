// SPDX-License-Identifier: MIT
/*
 * outlier.c - passive outlier detection in the agent (see outlier.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "sluice.h"

#include "log.h"
#include "outlier.h"

/* Every service of d gets its svc_health entry, from its settings. */
static void outlier__sync(struct outlier *o, const struct desired *d)
{
	struct sluice_service_ref *refs = calloc(d->nservices + 1, sizeof(*refs));
	struct sluice_outlier_spec *specs = calloc(d->nservices + 1, sizeof(*specs));
	__u32 written = 0;

	if (!refs || !specs) {
		pr_warn("outlier detection: out of memory writing its settings");
		goto out;
	}
	for (__u32 i = 0; i < d->nservices; i++) {
		refs[i] = (struct sluice_service_ref){ .vip = d->services[i].vip,
						       .port = d->services[i].port,
						       .proto = d->services[i].proto };
		specs[i] = d->services[i].outlier;
	}
	if (sluice__outlier_sync(o->sl, refs, specs, d->nservices, &written))
		pr_warn("outlier detection: writing the services' settings: %s (%u of %u done)",
			sluice__errmsg(), written, d->nservices);
	else if (o->enabled)
		pr_info("outlier detection on: settings of %u service(s) in the kernel", written);
	else
		pr_info("outlier detection off node-wide (--outlier-detection off): "
			"%u service(s) never eject",
			written);
out:
	free(refs);
	free(specs);
}

void outlier__start(struct outlier *o, struct sluice *sl, const struct desired *d, bool enabled)
{
	int err;

	memset(o, 0, sizeof(*o));
	o->sl = sl;
	o->desired = d;
	o->enabled = enabled;
	outlier__sync(o, d);
	err = sluice__health_events_open(sl, outlier__on_event, o, &o->ev);
	if (err) {
		snprintf(o->error, sizeof(o->error), "%s", sluice__errmsg());
		pr_warn("outlier detection: cannot read the kernel's health events (ejections "
			"still happen, unlogged): %s",
			o->error);
		return;
	}
	outlier__read(o); /* what happened while no meshd ran */
}

void outlier__stop(struct outlier *o)
{
	sluice__health_events_close(o->ev);
	free(o->ej);
	memset(o, 0, sizeof(*o));
}

int outlier__fd(const struct outlier *o)
{
	return o->ev ? sluice__health_events_fd(o->ev) : -1;
}

void outlier__read(struct outlier *o)
{
	if (o->ev && sluice__health_events_read(o->ev) < 0)
		pr_warn("outlier detection: %s", sluice__errmsg());
}

/* "11:40:32 UTC (30 s" */
static void outlier__until(char *buf, size_t len, __u64 now_ms, __u64 until_ms)
{
	time_t t = (time_t)(until_ms / 1000);
	char hms[32] = "?";
	struct tm tm;

	if (gmtime_r(&t, &tm))
		strftime(hms, sizeof(hms), "%H:%M:%S UTC", &tm);
	snprintf(buf, len, "%s (%llu s", hms,
		 (unsigned long long)(until_ms > now_ms ? (until_ms - now_ms + 500) / 1000 : 0));
}

void outlier__describe(char *buf, size_t len, const struct sluice_health_event *ev,
		       const char *backend, const char *name, const char *svc, __u64 now_ms,
		       __u64 until_ms)
{
	const char *reason = sluice__health_reason_name(ev->reason);
	char who[256], until[64];

	if (name && *name)
		snprintf(who, sizeof(who), "backend %s of %s (%s)", backend, name, svc);
	else
		snprintf(who, sizeof(who), "backend %s of %s", backend, svc);
	outlier__until(until, sizeof(until), now_ms, until_ms);
	switch (ev->kind) {
	case SLUICE_HEALTH_EV_EJECTED:
		snprintf(
			buf, len,
			"%s ejected: %u consecutive failures (%s), until %s, ejection %u in a row)",
			who, ev->fails, reason, until, ev->ejections);
		break;
	case SLUICE_HEALTH_EV_REEJECTED:
		snprintf(buf, len,
			 "%s ejected again: failed on probation (%s), until %s, ejection %u in a "
			 "row)",
			 who, reason, until, ev->ejections);
		break;
	case SLUICE_HEALTH_EV_RESTORED:
		snprintf(buf, len, "%s restored: answered on probation", who);
		break;
	case SLUICE_HEALTH_EV_MAX_EJECTED:
		snprintf(buf, len,
			 "%s not ejected after %u consecutive failures (%s): the service's "
			 "maxEjectedPercent is used up",
			 who, ev->fails, reason);
		break;
	default:
		snprintf(buf, len, "%s: unknown health event %u", who, ev->kind);
	}
}

struct outlier_find {
	__u32 svc_id;
	struct sluice_svc_key key;
	bool found;
};

static int outlier__match_svc(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc *svc = value;
	struct outlier_find *f = ctx;

	if (svc->flags & SLUICE_SVC_F_VIP_MARKER || svc->svc_id != f->svc_id)
		return 0;
	f->key = *(const struct sluice_svc_key *)key;
	f->found = true;
	return 1; /* stop */
}

/* backend, name and service of the event's ids, as the maps say now */
static void outlier__names(struct outlier *o, const struct sluice_health_event *ev, char *be,
			   char *svc, const char **name)
{
	struct outlier_find f = { .svc_id = ev->svc_id };
	struct sluice_backend b;
	struct sluice_addr a;
	const struct desired_service *ds;
	int fd = sluice__map_fd(o->sl, "services");

	*name = "";
	snprintf(be, SLUICE_ADDRPORT_STRLEN, "id %u", ev->backend_id);
	if (!sluice__backend_get(o->sl, ev->backend_id, &b, NULL)) {
		a = (struct sluice_addr){ .family = b.family };
		memcpy(a.addr, b.addr, sizeof(a.addr));
		sluice_addr__str_port(&a, ntohs(b.port), be, SLUICE_ADDRPORT_STRLEN);
	}
	snprintf(svc, SLUICE_SVC_STRLEN, "service id %u", ev->svc_id);
	if (fd < 0 ||
	    sluice__map_walk(fd, "services", sizeof(struct sluice_svc_key),
			     sizeof(struct sluice_svc), outlier__match_svc, &f) < 0 ||
	    !f.found)
		return;
	sluice_svc_key__str(&f.key, svc, SLUICE_SVC_STRLEN);
	a = (struct sluice_addr){ .family = f.key.family };
	memcpy(a.addr, f.key.addr, sizeof(a.addr));
	ds = o->desired ? desired__find(o->desired, &a, ntohs(f.key.port), f.key.proto) : NULL;
	if (ds)
		*name = ds->name;
}

static void outlier__count(struct outlier *o, const struct sluice_health_event *ev)
{
	struct metrics_ejections *e = NULL, *grown;

	if (ev->kind <= SLUICE_HEALTH_EV_MAX_EJECTED)
		o->events[ev->kind]++;
	if (ev->kind != SLUICE_HEALTH_EV_EJECTED && ev->kind != SLUICE_HEALTH_EV_REEJECTED)
		return;
	for (size_t i = 0; i < o->nej && !e; i++)
		if (o->ej[i].backend_id == ev->backend_id && o->ej[i].svc_id == ev->svc_id)
			e = &o->ej[i];
	if (!e) {
		if (o->nej == o->cap) {
			o->cap = o->cap ? 2 * o->cap : 16;
			grown = realloc(o->ej, o->cap * sizeof(*o->ej));
			if (!grown)
				return; /* the count is lost, the log line is not */
			o->ej = grown;
		}
		e = &o->ej[o->nej++];
		memset(e, 0, sizeof(*e));
		e->svc_id = ev->svc_id;
		e->backend_id = ev->backend_id;
	}
	e->by_reason[ev->reason < SLUICE_HEALTH_R__MAX ? ev->reason : SLUICE_HEALTH_R_NONE]++;
}

void outlier__on_event(const struct sluice_health_event *ev, void *ctx)
{
	struct outlier *o = ctx;
	char be[SLUICE_ADDRPORT_STRLEN], svc[SLUICE_SVC_STRLEN], line[512];
	struct timespec now;
	const char *name;

	outlier__count(o, ev);
	outlier__names(o, ev, be, svc, &name);
	clock_gettime(CLOCK_REALTIME, &now);
	outlier__describe(line, sizeof(line), ev, be, name, svc,
			  (__u64)now.tv_sec * 1000 + now.tv_nsec / 1000000,
			  sluice__mono_to_wall_ms(ev->ejected_until_ns));
	pr_info("%s", line);
}

struct json_object *outlier__status_json(const struct outlier *o)
{
	struct json_object *j = json_object_new_object();

	if (!j)
		return NULL;
	json_object_object_add(j, "enabled", json_object_new_boolean(o->enabled));
	json_object_object_add(j, "events", json_object_new_boolean(o->ev != NULL));
	if (o->error[0])
		json_object_object_add(j, "error", json_object_new_string(o->error));
	for (int k = SLUICE_HEALTH_EV_EJECTED; k <= SLUICE_HEALTH_EV_MAX_EJECTED; k++)
		json_object_object_add(j, sluice__health_event_name(k),
				       json_object_new_int64((int64_t)o->events[k]));
	return j;
}
