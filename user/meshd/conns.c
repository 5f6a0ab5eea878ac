// SPDX-License-Identifier: MIT
/*
 * conns.c - connection records as API JSON (see conns.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include "desired.h"
#include "sluice.h"
#include "telemetry.h"

#include "conns.h"
#include "follow.h"
#include "log.h"

void conns__init(struct conns *c, struct sluice *sl, const struct desired *desired)
{
	memset(c, 0, sizeof(*c));
	c->sl = sl;
	c->desired = desired;
}

void conns__stale(struct conns *c)
{
	c->fresh = false;
}

void conns__free(struct conns *c)
{
	free(c->names);
	c->names = NULL;
	c->n = 0;
	c->fresh = false;
}

struct conns_walk {
	const struct desired *desired;
	struct conns_name *v;
	size_t n, cap;
};

static int conns__collect(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc_key *k = key;
	const struct sluice_svc *svc = value;
	struct conns_walk *w = ctx;
	struct desired_service *d;
	struct sluice_addr vip = { .family = k->family };
	struct conns_name *cn;

	if (svc->flags & SLUICE_SVC_F_VIP_MARKER)
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct conns_name *grown = realloc(w->v, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		w->v = grown;
		w->cap = cap;
	}
	memcpy(vip.addr, k->addr, sizeof(vip.addr));
	cn = &w->v[w->n++];
	cn->svc_id = svc->svc_id;
	sluice_svc__str(&vip, ntohs(k->port), k->proto, cn->ref, sizeof(cn->ref));
	d = desired__find(w->desired, &vip, ntohs(k->port), k->proto);
	snprintf(cn->name, sizeof(cn->name), "%s", d ? d->name : "");
	return 0;
}

static int conns__cmp(const void *a, const void *b)
{
	const struct conns_name *x = a, *y = b;

	return x->svc_id < y->svc_id ? -1 : x->svc_id > y->svc_id;
}

static int conns__refresh(struct conns *c)
{
	struct conns_walk w = { .desired = c->desired };
	int fd = sluice__map_fd(c->sl, "services"), err;

	err = sluice__map_walk(fd, "services", sizeof(struct sluice_svc_key),
			       sizeof(struct sluice_svc), conns__collect, &w);
	if (err) {
		free(w.v);
		pr_warn("naming connection records: %s",
			err == -ENOMEM ? "out of memory" : sluice__errmsg());
		return err;
	}
	qsort(w.v, w.n, sizeof(*w.v), conns__cmp);
	free(c->names);
	c->names = w.v;
	c->n = w.n;
	c->fresh = true;
	return 0;
}

const struct conns_name *conns__service(struct conns *c, __u32 svc_id)
{
	struct conns_name key = { .svc_id = svc_id };

	if (!c->fresh && conns__refresh(c))
		return NULL;
	if (!c->n)
		return NULL;
	return bsearch(&key, c->names, c->n, sizeof(key), conns__cmp);
}

static void conns__add_addr(struct json_object *o, const char *key, __u8 family,
			    const __u32 addr[4], __u16 port)
{
	struct sluice_addr a = { .family = family };
	char buf[SLUICE_ADDRPORT_STRLEN];

	memcpy(a.addr, addr, sizeof(a.addr));
	json_object_object_add(
		o, key, json_object_new_string(sluice_addr__str_port(&a, port, buf, sizeof(buf))));
}

/* Kernel time (bpf_ktime_get_ns: CLOCK_MONOTONIC) to Unix seconds. */
static double conns__wall(__u64 ts_ns)
{
	struct timespec mono, real;
	double now_mono, now_real;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	now_mono = mono.tv_sec + mono.tv_nsec / 1e9;
	now_real = real.tv_sec + real.tv_nsec / 1e9;
	return now_real - (now_mono - ts_ns / 1e9);
}

static const char *conns__state(__u8 type)
{
	switch (type) {
	case SLUICE_TELEM_OPEN:
	case SLUICE_TELEM_UPDATE:
		return "open";
	case SLUICE_TELEM_CLOSE:
		return "closed";
	case SLUICE_TELEM_FAIL:
		return "failed";
	default:
		return "unknown";
	}
}

static void conns__add_u64(struct json_object *o, const char *key, __u64 v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

/* A double written with `decimals` digits, not as 9.6000000000000002e-05. */
static void conns__add_fixed(struct json_object *o, const char *key, double v, int decimals)
{
	char buf[48];

	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	json_object_object_add(o, key, json_object_new_double_s(v, buf));
}

struct json_object *conns__rec_json(struct conns *c, const struct sluice_telem_rec *rec)
{
	struct json_object *o = json_object_new_object();
	const struct conns_name *svc;
	struct sluice_backend be;
	bool client_is_local = rec->dir == SLUICE_TELEM_OUTBOUND;

	if (!o)
		return NULL;
	conns__add_fixed(o, "time", conns__wall(rec->ts_ns), 3);
	json_object_object_add(o, "event", json_object_new_string(telemetry__type_name(rec->type)));
	json_object_object_add(o, "state", json_object_new_string(conns__state(rec->type)));
	svc = conns__service(c, rec->svc_id);
	json_object_object_add(o, "service", svc ? json_object_new_string(svc->ref) : NULL);
	if (svc && svc->name[0])
		json_object_object_add(o, "name", json_object_new_string(svc->name));
	conns__add_u64(o, "service_id", rec->svc_id);
	/* A backend id is attributed only while it belongs to that service. */
	if (rec->backend_id && !sluice__backend_get(c->sl, rec->backend_id, &be, NULL) &&
	    be.svc_id == rec->svc_id)
		conns__add_addr(o, "backend", be.family, be.addr, ntohs(be.port));
	else
		json_object_object_add(o, "backend", NULL);
	conns__add_u64(o, "backend_id", rec->backend_id);
	json_object_object_add(o, "direction",
			       json_object_new_string(telemetry__dir_name(rec->dir)));
	conns__add_addr(o, "client", rec->family, client_is_local ? rec->laddr : rec->raddr,
			client_is_local ? rec->lport : rec->rport);
	conns__add_addr(o, "local", rec->family, rec->laddr, rec->lport);
	conns__add_addr(o, "remote", rec->family, rec->raddr, rec->rport);
	conns__add_fixed(o, "duration_seconds",
			 rec->ts_ns > rec->start_ns ? (rec->ts_ns - rec->start_ns) / 1e9 : 0, 6);
	conns__add_u64(o, "bytes_sent", rec->bytes_acked);
	conns__add_u64(o, "bytes_received", rec->bytes_received);
	conns__add_u64(o, "segs_out", rec->segs_out);
	conns__add_u64(o, "segs_in", rec->segs_in);
	conns__add_u64(o, "retransmits", rec->retrans);
	conns__add_u64(o, "rtos", rec->rtos);
	conns__add_u64(o, "srtt_us", rec->srtt_us);
	conns__add_u64(o, "srtt_min_us", rec->srtt_min_us);
	json_object_object_add(o, "reason",
			       json_object_new_string(telemetry__reason_name(rec->reason)));
	conns__add_u64(o, "cookie", rec->cookie);
	return o;
}

void conns__broadcast(struct conns *c, struct follow *f, const struct sluice_telem_rec *rec)
{
	const struct conns_name *svc = conns__service(c, rec->svc_id);
	struct json_object *o;
	const char *text;

	if (!follow__wants(f, svc ? svc->ref : NULL))
		return;
	o = conns__rec_json(c, rec);
	text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE) :
		   NULL;
	if (text)
		follow__send(f, svc ? svc->ref : NULL, text);
	json_object_put(o);
}
