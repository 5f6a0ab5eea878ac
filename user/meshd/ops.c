// SPDX-License-Identifier: MIT
/*
 * ops.c - API op handlers for services and apply (see ops.h); ops_backend.c
 * has the backend ones, ops_node.c the node-wide ones (status, conntrack,
 * uninstall).
 *
 * Edits of services (service.add, service.del) are made on the desired
 * state's JSON and parsed back with desired__from_json(), so an incremental
 * change gets the same validation and the same error texts as `meshctl
 * apply`; backend.* edit one service (ops__commit_service(), #16).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <json-c/printbuf.h>

#include "api.h"
#include "desired.h"
#include "jsonscan.h"
#include "sluice.h"
#include "yamljson.h"

#include "k8sint.h"
#include "meshd.h"
#include "ops.h"
#include "state.h"

const char *ops__str(struct json_object *req, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

bool ops__has(struct json_object *req, const char *key)
{
	return json_object_object_get_ex(req, key, NULL);
}

struct json_object *ops__svc_arg(struct json_object *req, struct svc_ref *ref)
{
	const char *text = ops__str(req, "service");

	if (!text)
		return api__error(
			"service: %s, want \"VIP:PORT/PROTO\" (e.g. \"10.96.0.10:80/tcp\")",
			ops__has(req, "service") ? "not a string" : "missing");
	if (desired__parse_svc_ref(text, &ref->vip, &ref->port, &ref->proto))
		return api__error("service: %s", sluice__errmsg());
	sluice_svc__str(&ref->vip, ref->port, ref->proto, ref->text, sizeof(ref->text));
	return NULL;
}

/* The service of a request (every change names one): through an index
 * of meshd's state kept across requests, checked on every hit (a linear
 * scan was 8% of a change at 10k services). Only the main loop's ops use
 * it. */
static struct desired_index ops_ix;

static int ops__find_svc(const struct desired *d, const struct svc_ref *ref)
{
	const struct desired_service *s =
		desired__find_cached(&ops_ix, d, &ref->vip, ref->port, ref->proto);

	return s ? (int)(s - d->services) : -1;
}

/* The index of the service ref names, or an error reply: not found, or
 * (edit) managed by Kubernetes. */
struct json_object *ops__existing_svc(const struct desired *d, const struct k8sint *ki,
				      const struct svc_ref *ref, bool edit, int *i)
{
	*i = ops__find_svc(d, ref);
	if (*i < 0)
		return api__error("service %s not found", ref->text);
	return edit ? k8sint__refuse_edit(ki, &d->services[*i], ref->text) : NULL;
}

/* {names[i]: vals[i]} */
static struct json_object *ops__stats_json(const __u64 *vals, const char *const *names, int n)
{
	struct json_object *o = json_object_new_object();

	for (int i = 0; o && i < n; i++)
		json_object_object_add(o, names[i], json_object_new_int64((int64_t)vals[i]));
	return o;
}

struct ops_be {
	__u32 id;
	struct sluice_addr addr;
	__u16 port; /* host order */
	struct sluice_backend_stats st;
	struct sluice_backend be;
};

/* addr with the bytes an address of its family does not use zeroed, so
 * two equal addresses compare equal with memcmp. */
static void ops__be_key(struct sluice_addr *out, const struct sluice_addr *in)
{
	memset(out, 0, sizeof(*out));
	out->family = in->family;
	memcpy(out->addr, in->addr, in->family == SLUICE_AF_INET ? 4 : 16);
}

static int ops__cmp_be(const void *x, const void *y)
{
	const struct ops_be *a = x, *b = y;
	int c = memcmp(&a->addr, &b->addr, sizeof(a->addr));

	return c ? c : a->port < b->port ? -1 : a->port > b->port;
}

/* Per-backend "id", "state", "stats", "health" from the maps, matched by
 * address (the maps know backends by id, the desired state by address);
 * *healthy counts the backends taking new flows that health lets through. */
static void ops__backends_json(struct sluice *sl, const struct desired_service *svc,
			       const struct sluice_service_info *info,
			       const struct sluice_svc_health *sh, struct json_object *arr,
			       __u32 *healthy)
{
	static const char *const names[] = { "packets", "bytes", "flows" };
	struct ops_be *have = NULL;
	__u32 nhave = 0;

	if (info && info->nbackends)
		have = calloc(info->nbackends, sizeof(*have));
	for (__u32 j = 0; have && j < info->nbackends; j++) {
		struct sluice_backend be;
		struct ops_be *h = &have[nhave];
		struct sluice_addr a;

		if (sluice__backend_get(sl, info->backend_ids[j], &be, &h->st))
			continue;
		h->be = be;
		h->id = info->backend_ids[j];
		a.family = be.family;
		memcpy(a.addr, be.addr, sizeof(a.addr));
		ops__be_key(&h->addr, &a);
		h->port = ntohs(be.port);
		nhave++;
	}
	/* sorted, so matching a 1024-backend service is not 1024 x 1024 */
	if (nhave)
		qsort(have, nhave, sizeof(*have), ops__cmp_be);
	for (__u32 i = 0; i < svc->nbackends && i < json_object_array_length(arr); i++) {
		const struct desired_backend *want = &svc->backends[i];
		struct json_object *o = json_object_array_get_idx(arr, i);
		const struct ops_be *h = NULL;
		struct sluice_backend_stats zero = { 0 };
		bool ok = false;

		if (nhave) {
			struct ops_be key = { .port = want->port };

			ops__be_key(&key.addr, &want->addr);
			h = bsearch(&key, have, nhave, sizeof(*have), ops__cmp_be);
		}
		json_object_object_add(o, "id", json_object_new_int64(h ? h->id : 0));
		json_object_object_add(o, "state",
				       json_object_new_string(!want->weight   ? "draining" :
							      want->unhealthy ? "unhealthy" :
										"active"));
		json_object_object_add(
			o, "stats", ops__stats_json((const __u64 *)(h ? &h->st : &zero), names, 3));
		if (h) {
			json_object_object_add(
				o, "health", ops__backend_health_json(sl, h->id, &h->be, sh, &ok));
			*healthy += ok && want->weight;
		}
	}
	free(have);
}

/* SERVICE of api.h: the desired JSON plus ids and counters from the maps;
 * ix (may be NULL) is a backend index for listings of many services. */
static struct json_object *ops__service_json_ix(struct sluice *sl,
						const struct desired_service *svc,
						const struct sluice_be_index *ix)
{
	static const char *const names[] = { "packets", "bytes", "flows", "refused" };
	struct json_object *o = desired__service_to_json(svc), *arr;
	struct sluice_service_info *info = calloc(1, sizeof(*info));
	struct sluice_svc_health sh = {};
	char ref[DESIRED_SVC_REF_LEN];
	__u32 healthy = 0, total = 0;

	if (!o || !info) {
		free(info);
		return o;
	}
	if (ix ? sluice__service_get_ix(sl, ix, &svc->vip, svc->port, svc->proto, info) :
		 sluice__service_get(sl, &svc->vip, svc->port, svc->proto, info)) {
		pr_warn("service %s is in the desired state but not in the maps: %s",
			sluice_svc__str(&svc->vip, svc->port, svc->proto, ref, sizeof(ref)),
			sluice__errmsg());
		free(info);
		info = NULL;
	}
	json_object_object_add(o, "id", json_object_new_int64(info ? info->svc.svc_id : 0));
	/* #16: the Maglev table's size, 0 without one (no active backend) */
	json_object_object_add(
		o, "maglev_slots",
		json_object_new_int64(info ? sluice__table_size(sl, info->svc.svc_id) : 0));
	json_object_object_add(o, "stats",
			       ops__stats_json(info ? (const __u64 *)&info->stats :
						      (const __u64[4]){ 0 },
					       names, 4));
	if (info && sluice__svc_health(sl, info->svc.svc_id, &sh))
		memset(&sh, 0, sizeof(sh));
	if (json_object_object_get_ex(o, "backends", &arr) &&
	    json_object_is_type(arr, json_type_array))
		ops__backends_json(sl, svc, info, &sh, arr, &healthy);
	for (__u32 j = 0; j < svc->nbackends; j++)
		total += svc->backends[j].weight != 0;
	json_object_object_add(o, "health",
			       ops__service_health_json(info ? &sh : NULL, healthy, total,
							sluice__outlier_detection(sl)));
	free(info);
	return o;
}

static struct json_object *ops__service_json(struct sluice *sl, const struct desired_service *svc)
{
	return ops__service_json_ix(sl, svc, NULL);
}

/* --- services --- */

struct json_object *ops__service_list(struct meshd *m, struct json_object *req)
{
	struct json_object *d = json_object_new_object(), *arr = json_object_new_array();
	struct sluice_be_index *ix = NULL;

	(void)req;
	/* one walk of the backends map for the listing, not one per service;
	 * without the index (out of memory) each service walks it itself */
	if (sluice__be_index(m->sl, &ix))
		pr_warn("service list: %s; reading each service on its own", sluice__errmsg());
	for (__u32 i = 0; i < m->state.desired.nservices; i++) {
		const struct desired_service *svc = &m->state.desired.services[i];

		json_object_array_add(arr, probe__annotate(&m->probe, svc,
							   ops__service_json_ix(m->sl, svc, ix)));
	}
	sluice__be_index_free(ix);
	json_object_object_add(d, "services", arr);
	return api__ok(d);
}

struct json_object *ops__service_get(struct meshd *m, struct json_object *req)
{
	struct json_object *err;
	struct svc_ref ref;
	int i;

	err = ops__svc_arg(req, &ref);
	if (err)
		return err;
	err = ops__existing_svc(&m->state.desired, &m->kube, &ref, false, &i);
	if (err)
		return err;
	return api__ok(probe__annotate(&m->probe, &m->state.desired.services[i],
				       ops__service_json(m->sl, &m->state.desired.services[i])));
}

/* The desired state as JSON to edit; *services is its array. */
struct json_object *ops__state_json(const struct desired *d, struct json_object **services)
{
	struct json_object *root = desired__to_json(d);

	if (!root)
		return NULL;
	if (!json_object_object_get_ex(root, "services", services) ||
	    !json_object_is_type(*services, json_type_array)) {
		*services = json_object_new_array();
		json_object_object_add(root, "services", *services);
	}
	return root;
}

/* desired__from_json() names the edited service by its index in the
 * state ("services[3].backends[1].port: ..."), which the caller never saw:
 * name it by its ref instead. */
static struct json_object *ops__edit_error_text(const struct svc_ref *ref, int idx, const char *msg)
{
	char prefix[32];
	size_t len;

	len = snprintf(prefix, sizeof(prefix), "services[%d]", idx);
	if (idx < 0 || strncmp(msg, prefix, len))
		return api__error("%s", msg);
	msg += len;
	if (*msg == '.')
		msg++;
	return api__error("%s: %s", ref->text, msg);
}

static struct json_object *ops__edit_error(const struct svc_ref *ref, int idx)
{
	return ops__edit_error_text(ref, idx, sluice__errmsg());
}

struct json_object *ops__commit_service(struct state *st, struct sluice *sl, __u32 idx,
					struct desired_service *next, const struct svc_ref *ref)
{
	char err[1024];

	/* into the open batch: the answer waits for its fdatasync (group commit) */
	if (state__stage_service(st, idx, next, err, sizeof(err))) {
		free(next->backends);
		free(next->src_ranges);
		return ops__edit_error_text(ref, (int)idx, err);
	}
	/* sl NULL: a change of a batch, answered {"ok": true} alone */
	return api__ok(sl ? ops__service_json(sl, &st->desired.services[idx]) : NULL);
}

/* Parse the edited JSON back (validating all of it) and commit. Consumes
 * root. idx: the edited service's index in root (-1: none). Answers with
 * the service ref names, or with `deleted` after a delete. */
struct json_object *ops__commit_json(struct state *st, struct sluice *sl, struct json_object *root,
				     int idx, const struct svc_ref *ref,
				     struct json_object *deleted)
{
	struct desired next;
	char err[1024];
	int i;

	desired__init(&next);
	if (desired__from_json(&next, root)) {
		json_object_put(root);
		json_object_put(deleted);
		return ops__edit_error(ref, idx);
	}
	json_object_put(root);
	if (state__commit(st, &next, err, sizeof(err))) {
		desired__free(&next);
		json_object_put(deleted);
		return api__error("%s", err);
	}
	if (deleted)
		return api__ok(deleted);
	i = ops__find_svc(&st->desired, ref);
	return api__ok(i < 0 ? NULL : ops__service_json(sl, &st->desired.services[i]));
}

struct json_object *ops__service_add(struct meshd *m, struct json_object *req)
{
	struct json_object *err, *root, *services, *svc, *v;
	char abuf[SLUICE_ADDR_STRLEN], pbuf[8];
	struct svc_ref ref;
	int i;

	err = ops__svc_arg(req, &ref);
	if (err)
		return err;
	i = ops__find_svc(&m->state.desired, &ref);
	if (i >= 0 &&
	    (err = k8sint__refuse_edit(&m->kube, &m->state.desired.services[i], ref.text)))
		return err;
	if (i >= 0)
		return api__error(
			"service %s already exists (change its backends with backend add/del/weight, or use apply)",
			ref.text);
	if (json_object_object_get_ex(req, "name", &v) && !json_object_is_type(v, json_type_string))
		return api__error("name: %s is not a string", json_object_to_json_string(v));
	root = ops__state_json(&m->state.desired, &services);
	if (!root)
		return api__error("out of memory");
	svc = json_object_new_object();
	if (json_object_object_get_ex(req, "name", &v))
		json_object_object_add(svc, "name", json_object_get(v));
	json_object_object_add(
		svc, "vip", json_object_new_string(sluice_addr__str(&ref.vip, abuf, sizeof(abuf))));
	json_object_object_add(svc, "port", json_object_new_int(ref.port));
	json_object_object_add(
		svc, "protocol",
		json_object_new_string(sluice_proto__str(ref.proto, pbuf, sizeof(pbuf))));
	if (json_object_object_get_ex(req, "backends", &v))
		json_object_object_add(svc, "backends", json_object_get(v));
	if (json_object_object_get_ex(req, "outlierDetection", &v) && v)
		json_object_object_add(svc, "outlierDetection", json_object_get(v));
	if (json_object_object_get_ex(req, "sessionAffinity", &v) && v)
		json_object_object_add(svc, "sessionAffinity", json_object_get(v));
	if (json_object_object_get_ex(req, "healthCheck", &v) && v)
		json_object_object_add(svc, "healthCheck", json_object_get(v));
	if (json_object_object_get_ex(req, "snat", &v) && v)
		json_object_object_add(svc, "snat", json_object_get(v));
	if (json_object_object_get_ex(req, "dropWhenEmpty", &v) && v)
		json_object_object_add(svc, "dropWhenEmpty", json_object_get(v));
	for (const char *const *k = (const char *const[]){ "sourceRanges", "allowFrom", "denyFrom",
							   "denyAction", NULL };
	     *k; k++)
		if (json_object_object_get_ex(req, *k, &v) && v)
			json_object_object_add(svc, *k, json_object_get(v));
	json_object_array_add(services, svc);
	return ops__commit_json(&m->state, m->sl, root, json_object_array_length(services) - 1,
				&ref, NULL);
}

struct json_object *ops__service_del(struct meshd *m, struct json_object *req)
{
	struct json_object *err, *root, *services, *old;
	struct svc_ref ref;
	int i;

	err = ops__svc_arg(req, &ref);
	if (err)
		return err;
	err = ops__existing_svc(&m->state.desired, &m->kube, &ref, true, &i);
	if (err)
		return err;
	root = ops__state_json(&m->state.desired, &services);
	if (!root)
		return api__error("out of memory");
	old = ops__service_json(m->sl, &m->state.desired.services[i]);
	json_object_array_del_idx(services, i, 1);
	return ops__commit_json(&m->state, m->sl, root, -1, &ref, old);
}

/* --- apply --- */

/* An apply's changes, noted compactly by the diff and turned into the
 * answer's JSON after the commit: 30k changes as json-c objects are
 * ~24 MB, which would otherwise sit beside the commit's own memory. */
struct ops_change {
	__u8 kind; /* enum desired_change */
	__u8 proto;
	__u16 port;
	struct sluice_addr vip;
};

struct ops_changes {
	struct ops_change *v;
	__u32 n, cap;
	bool nomem;
};

static void ops__change_note(enum desired_change change, const struct desired_service *old_svc,
			     const struct desired_service *new_svc, void *ctx)
{
	const struct desired_service *svc = new_svc ? new_svc : old_svc;
	struct ops_changes *c = ctx;
	struct ops_change *grown;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		grown = realloc(c->v, c->cap * sizeof(*c->v));
		if (!grown) {
			c->nomem = true;
			return;
		}
		c->v = grown;
	}
	c->v[c->n++] = (struct ops_change){
		.kind = change, .proto = svc->proto, .port = svc->port, .vip = svc->vip
	};
}

static const char *const ops__actions[] = {
	[DESIRED_ADD] = "add",
	[DESIRED_UPDATE] = "update",
	[DESIRED_DELETE] = "delete",
};

/* json-c's indentation of a pretty-printed level. */
static void ops__indent(struct printbuf *pb, int level, int flags)
{
	if (!(flags & JSON_C_TO_STRING_PRETTY))
		return;
	for (int i = 0; i < level; i++) {
		if (flags & JSON_C_TO_STRING_PRETTY_TAB)
			printbuf_strappend(pb, "\t");
		else
			printbuf_strappend(pb, "  ");
	}
}

static void ops__changes_free(struct json_object *jso, void *userdata)
{
	struct ops_changes *c = userdata;

	(void)jso;
	free(c->v);
	free(c);
}

/* The array's text as json-c 0.16 writes an array (json_object_array_to_
 * json_string: separators and spacing by flags), each {"action", "service"}
 * object serialized by json-c itself from one reused object (escaping,
 * spacing). With JSON_C_TO_STRING_PRETTY the objects' own lines are
 * indented as at the top level (meshd answers in plain text). */
static int ops__changes_text(struct json_object *jso, struct printbuf *pb, int level, int flags)
{
	const struct ops_changes *c = json_object_get_userdata(jso);
	bool pretty = flags & JSON_C_TO_STRING_PRETTY;
	bool spaced = (flags & JSON_C_TO_STRING_SPACED) && !pretty;
	struct json_object *o = json_object_new_object();
	char ref[DESIRED_SVC_REF_LEN];
	const char *text;

	if (!o)
		return -1;
	printbuf_strappend(pb, "[");
	if (pretty)
		printbuf_strappend(pb, "\n");
	for (__u32 i = 0; i < c->n; i++) {
		json_object_object_add(o, "action",
				       json_object_new_string(ops__actions[c->v[i].kind]));
		json_object_object_add(
			o, "service",
			json_object_new_string(sluice_svc__str(&c->v[i].vip, c->v[i].port,
							       c->v[i].proto, ref, sizeof(ref))));
		text = json_object_to_json_string_ext(o, flags);
		if (!text) {
			json_object_put(o);
			return -1;
		}
		if (i)
			printbuf_strappend(pb, ",");
		if (i && pretty)
			printbuf_strappend(pb, "\n");
		if (spaced)
			printbuf_strappend(pb, " ");
		ops__indent(pb, level + 1, flags);
		printbuf_memappend(pb, text, (int)strlen(text));
	}
	if (pretty && c->n)
		printbuf_strappend(pb, "\n");
	ops__indent(pb, level, flags);
	if (spaced)
		printbuf_strappend(pb, " ]");
	else
		printbuf_strappend(pb, "]");
	json_object_put(o);
	return 0;
}

/* The answer's "changes": written from the vector *c (taken over) when the
 * answer is serialized, never held as a tree of objects. At 30k services
 * that tree was 31 MB of meshd's heap, the peak of a whole apply (#16).
 * Anything that walks the array in process sees it empty: it is text. */
static struct json_object *ops__changes_json(struct ops_changes *c)
{
	struct json_object *arr = json_object_new_array();
	struct ops_changes *own = malloc(sizeof(*own));

	if (!arr || !own) {
		json_object_put(arr);
		free(own);
		free(c->v);
		return NULL;
	}
	*own = *c;
	c->v = NULL;
	json_object_set_serializer(arr, ops__changes_text, own, ops__changes_free);
	return arr;
}

/* The desired state of an apply: from the text the server left unparsed
 * (one service's tree at a time), else from the tree. */
static int ops__desired(struct json_object *want, struct desired *file)
{
	struct json_object *full, *v;
	struct jscan_range r;
	const char *text;
	char msg[1024];
	size_t len;
	int err;

	desired__init(file);
	if (!jscan__raw_get(want, &text, &len, &r))
		return desired__from_json(file, want);
	err = desired__from_text(file, text + r.off, r.len, "request");
	if (err != -EAGAIN)
		return err;
	/* what the server would have said of the whole request */
	err = yaml__parse_json(text, len, "request", &full);
	if (err) {
		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
		sluice__set_err("bad request: %s", msg);
		return err;
	}
	if (json_object_object_get_ex(full, "desired", &v)) {
		err = desired__from_json(file, v);
	} else { /* cannot happen: the placeholder stood for it */
		sluice__set_err("desired: missing");
		err = -EINVAL;
	}
	json_object_put(full);
	return err;
}

struct json_object *ops__apply(struct meshd *m, struct json_object *req)
{
	struct json_object *want, *v, *changes, *d;
	struct ops_changes ch = { 0 };
	struct desired next, file;
	bool dry_run = false;
	__u32 kept = 0;
	char err[1024];

	if (!json_object_object_get_ex(req, "desired", &want))
		return api__error(
			"desired: missing (the whole desired state: {\"services\": [...]})");
	if (json_object_object_get_ex(req, "dry_run", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return api__error("dry_run: %s is not true or false",
					  json_object_to_json_string(v));
		dry_run = json_object_get_boolean(v);
	}
	if (ops__desired(want, &file))
		return api__error("%s", sluice__errmsg());
	/* the request's text or tree: not needed past this point */
	json_object_object_del(req, "desired");
	/* Kubernetes services belong to the API server: the file's state plus
	 * the current ones (a plain copy with the sync off). */
	if (k8sint__apply_merge(&m->kube, &file, &next, &kept)) {
		desired__free(&file);
		return api__error("out of memory");
	}
	desired__free(&file);
	desired__diff(&m->state.desired, &next, ops__change_note, &ch);
	if (ch.nomem) {
		desired__free(&next);
		free(ch.v);
		return api__error("out of memory");
	}
	if (!dry_run && ch.n && state__commit(&m->state, &next, err, sizeof(err))) {
		desired__free(&next);
		free(ch.v);
		return api__error("%s", err);
	}
	desired__free(&next);
	/* NULL (no memory) answers "changes": null: the apply itself stands */
	changes = ops__changes_json(&ch);
	d = json_object_new_object();
	json_object_object_add(d, "changes", changes);
	json_object_object_add(d, "applied", json_object_new_boolean(!dry_run));
	if (m->kube.k)
		json_object_object_add(d, "kubernetes_kept", json_object_new_int64(kept));
	return api__ok(d);
}
