// SPDX-License-Identifier: MIT
/*
 * ops_explain.c - the "explain" op (#15): the decision the datapath would
 * make for one flow, from the live maps (sluice__explain(), read-only).
 *
 * Request: {"service": "VIP:PORT/PROTO", "client": "ADDR:PORT"} for the
 * packet path (XDP/tc), or {"service", "socketCookie", "netnsCookie"}
 * (decimal strings: SO_COOKIE, SO_NETNS_COOKIE) for the socket LB, with
 * "socketSource" (the socket's local address, ADDR[:PORT]; absent: not
 * bound) and "routeSource" (ADDR[:PORT], the source its packets carry
 * when the socket LB defers to the packet path).
 * Answer: the verdict, the fields behind it and "trace", one
 * {"step", "text"} per decision in the kernel's order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "api.h"
#include "explain.h"

#include "meshd.h"
#include "ops.h"

#define JS_ADD(o, k, v) json_object_object_add((o), (k), (v))

static struct json_object *ops__cookie(struct json_object *req, const char *key, __u64 *out)
{
	const char *text = ops__str(req, key);
	char *end;

	*out = 0;
	if (!ops__has(req, key))
		return NULL;
	if (!text || !*text || *text < '0' || *text > '9')
		return api__error("%s: want a decimal number (a cookie)", key);
	errno = 0;
	*out = strtoull(text, &end, 10);
	if (*end || errno)
		return api__error("%s: \"%s\" is not a decimal number", key, text);
	return NULL;
}

/* An optional "ADDR", "ADDR:PORT" or "ADDR:0" (getsockname() of a socket
 * bound without a port); absent: family 0. */
static struct json_object *ops__addr_port0(struct json_object *req, const char *key,
					   struct sluice_addr *a, __u16 *port)
{
	const char *text = ops__str(req, key);
	char buf[SLUICE_ADDRPORT_STRLEN];
	size_t n;

	memset(a, 0, sizeof(*a));
	*port = 0;
	if (!ops__has(req, key))
		return NULL;
	if (!text)
		return api__error("%s: not a string, want \"ADDR[:PORT]\"", key);
	if (!sluice_addr__parse_port(a, port, text) || !sluice_addr__parse(a, text))
		return NULL;
	n = strlen(text);
	if (n > 2 && n < sizeof(buf) && !strcmp(text + n - 2, ":0")) {
		memcpy(buf, text, n - 2);
		buf[n - 2] = '\0';
		if (!sluice_addr__parse(a, buf))
			return NULL;
	}
	return api__error("%s: \"%s\": want ADDR or ADDR:PORT, e.g. 10.0.0.7:41234 or "
			  "[fd00::7]:41234",
			  key, text);
}

static struct json_object *ops__explain_req(struct json_object *req, struct sluice_explain_req *r)
{
	const char *client = ops__str(req, "client");
	struct json_object *err;
	struct svc_ref ref;

	err = ops__svc_arg(req, &ref);
	if (err)
		return err;
	r->vip = ref.vip;
	r->port = ref.port;
	r->proto = ref.proto;
	err = ops__cookie(req, "socketCookie", &r->sock_cookie);
	if (!err)
		err = ops__cookie(req, "netnsCookie", &r->netns_cookie);
	if (err)
		return err;
	if (ops__has(req, "socketCookie")) {
		r->path = SLUICE_EXPLAIN_SOCKET;
		err = ops__addr_port0(req, "socketSource", &r->sock_src, &r->sock_sport);
		if (!err)
			err = ops__addr_port0(req, "routeSource", &r->route_src, &r->route_sport);
		return err;
	}
	if (!client)
		return api__error("client: %s, want \"ADDR:PORT\" (or socketCookie)",
				  ops__has(req, "client") ? "not a string" : "missing");
	if (sluice_addr__parse_port(&r->client, &r->client_port, client))
		return api__error("client: %s", sluice__errmsg());
	return NULL;
}

static struct json_object *ops__str_obj(const char *s)
{
	return json_object_new_string(s);
}

static struct json_object *ops__explain_ct(const struct sluice_explain *x)
{
	struct json_object *o = json_object_new_object();
	char buf[SLUICE_ADDRPORT_STRLEN];

	JS_ADD(o, "found", json_object_new_boolean(x->ct.found));
	if (!x->ct.found)
		return o;
	JS_ADD(o, "used", json_object_new_boolean(x->ct.used));
	JS_ADD(o, "state", ops__str_obj(x->ct.confirmed ? "confirmed" : "new"));
	JS_ADD(o, "backend",
	       ops__str_obj(sluice_addr__str_port(&x->ct.addr, x->ct.port, buf, sizeof(buf))));
	JS_ADD(o, "backend_id", json_object_new_int64(x->ct.backend_id));
	JS_ADD(o, "age_seconds", json_object_new_int64((int64_t)(x->ct.age_ns / 1000000000ULL)));
	JS_ADD(o, "idle_seconds", json_object_new_int64((int64_t)(x->ct.idle_ns / 1000000000ULL)));
	return o;
}

static struct json_object *ops__explain_policy(const struct sluice_explain_policy *p)
{
	struct json_object *o = json_object_new_object();
	char buf[SLUICE_CIDR_STRLEN];

	JS_ADD(o, "verdict", ops__str_obj(sluice_explain_access__str(p->verdict)));
	JS_ADD(o, "source", ops__str_obj(p->source ? p->source : "-"));
	JS_ADD(o, "rule",
	       p->has_rule ? ops__str_obj(sluice_cidr__str(&p->rule, buf, sizeof(buf))) : NULL);
	JS_ADD(o, "rules", json_object_new_int64(p->nrules));
	JS_ADD(o, "drop",
	       p->verdict == SLUICE_XA_DENY ? ops__str_obj(sluice__drop_name(p->drop)) : NULL);
	JS_ADD(o, "client_ports", json_object_new_boolean(p->ports));
	JS_ADD(o, "why", ops__str_obj(p->why));
	return o;
}

static struct json_object *ops__explain_pick(const struct sluice_explain *x)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_object();

	JS_ADD(a, "checked", json_object_new_boolean(x->aff.checked));
	JS_ADD(a, "found", json_object_new_boolean(x->aff.found));
	JS_ADD(a, "used", json_object_new_boolean(x->aff.used));
	JS_ADD(a, "broken", json_object_new_boolean(x->aff.broken));
	if (x->aff.found)
		JS_ADD(a, "backend_id", json_object_new_int64(x->aff.backend_id));
	JS_ADD(o, "affinity", a);
	a = json_object_new_object();
	JS_ADD(a, "computed", json_object_new_boolean(x->maglev.done));
	if (x->maglev.done) {
		JS_ADD(a, "hash", json_object_new_int64(x->maglev.hash));
		JS_ADD(a, "slot", json_object_new_int64(x->maglev.slot));
		JS_ADD(a, "table_found", json_object_new_boolean(x->maglev.table));
		if (x->maglev.table)
			JS_ADD(a, "table_size", json_object_new_int64(x->maglev.m));
		JS_ADD(a, "slot_backend_id", json_object_new_int64(x->maglev.slot_id));
		JS_ADD(a, "fallback", json_object_new_boolean(x->maglev.fallback));
		if (x->maglev.fallback)
			JS_ADD(a, "fallback_slot", json_object_new_int64(x->maglev.fb_slot));
	}
	JS_ADD(o, "maglev", a);
	return o;
}

static void ops__explain_backend(const struct sluice_explain *x, struct json_object *d)
{
	char buf[SLUICE_ADDRPORT_STRLEN];
	struct sluice_addr a = { .family = x->be.family };

	if (!x->be_found) {
		JS_ADD(d, "backend", NULL);
		return;
	}
	memcpy(a.addr, x->be.addr, sizeof(a.addr));
	JS_ADD(d, "backend",
	       ops__str_obj(sluice_addr__str_port(&a, ntohs(x->be.port), buf, sizeof(buf))));
	JS_ADD(d, "backend_id", json_object_new_int64(x->backend_id));
	JS_ADD(d, "backend_health",
	       ops__str_obj(sluice_be_health__str((enum sluice_be_health)x->health.state)));
	JS_ADD(d, "backend_weight", json_object_new_int64(x->be.weight));
	JS_ADD(d, "snat", json_object_new_boolean(x->snat));
}

static struct json_object *ops__explain_json(const struct sluice_explain_req *r,
					     const struct sluice_explain *x)
{
	struct json_object *d = json_object_new_object(), *trace, *st, *pick;
	char buf[SLUICE_SVC_STRLEN];

	JS_ADD(d, "path", ops__str_obj(r->path == SLUICE_EXPLAIN_SOCKET ? "socket" : "packet"));
	JS_ADD(d, "service",
	       ops__str_obj(sluice_svc__str(&r->vip, r->port, r->proto, buf, sizeof(buf))));
	if (r->path == SLUICE_EXPLAIN_PACKET)
		JS_ADD(d, "client",
		       ops__str_obj(sluice_addr__str_port(&r->client, r->client_port, buf,
							  sizeof(buf))));
	else
		JS_ADD(d, "socket_source",
		       r->sock_src.family ?
			       ops__str_obj(sluice_addr__str_port(&r->sock_src, r->sock_sport, buf,
								  sizeof(buf))) :
			       NULL);
	JS_ADD(d, "verdict", ops__str_obj(sluice_explain_verdict__str(x->verdict)));
	JS_ADD(d, "drop_reason",
	       x->verdict == SLUICE_XV_DROP ? ops__str_obj(sluice__drop_name(x->drop)) : NULL);
	JS_ADD(d, "service_found", json_object_new_boolean(x->svc_found));
	if (x->svc_found)
		JS_ADD(d, "service_id", json_object_new_int64(x->svc.svc_id));
	ops__explain_backend(x, d);
	JS_ADD(d, "conntrack", ops__explain_ct(x));
	JS_ADD(d, "policy", ops__explain_policy(&x->policy));
	if (r->path == SLUICE_EXPLAIN_SOCKET)
		JS_ADD(d, "packet_policy",
		       x->packet_checked ? ops__explain_policy(&x->packet_policy) : NULL);
	pick = ops__explain_pick(x);
	JS_ADD(d, "affinity", json_object_get(json_object_object_get(pick, "affinity")));
	JS_ADD(d, "maglev", json_object_get(json_object_object_get(pick, "maglev")));
	json_object_put(pick);
	trace = json_object_new_array();
	for (__u32 i = 0; i < x->nsteps; i++) {
		st = json_object_new_object();
		JS_ADD(st, "step", ops__str_obj(x->steps[i].step));
		JS_ADD(st, "text", ops__str_obj(x->steps[i].text));
		json_object_array_add(trace, st);
	}
	JS_ADD(d, "trace", trace);
	return d;
}

struct json_object *ops__explain(struct meshd *m, struct json_object *req)
{
	struct sluice_explain_req r = { .path = SLUICE_EXPLAIN_PACKET };
	struct sluice_explain *x;
	struct json_object *err, *d;

	err = ops__explain_req(req, &r);
	if (err)
		return err;
	/* what this meshd's socket LB really does (#15) */
	r.sock_cfg = sluice_sock__cfg(m->sock.ss);
	r.sock_lb_off = !m->sock.lb_running;
	x = calloc(1, sizeof(*x));
	if (!x)
		return api__error("explain: out of memory");
	if (sluice__explain(m->sl, &r, x)) {
		err = api__error("explain: %s", sluice__errmsg());
		free(x);
		return err;
	}
	d = ops__explain_json(&r, x);
	free(x);
	return api__ok(d);
}
