// SPDX-License-Identifier: MIT
/*
 * ops_backend.c - the backend ops (see ops.h): backend.add, backend.del,
 * backend.weight, backend.drain, backend.undrain, and backend.batch (many
 * of them in one request).
 *
 * Contract: an edit of a copy of the one service it names, staged with
 * state__stage_service() (the same rules and error texts as a parse of
 * the whole state, checked on what changes) into the open batch of group
 * commit: the answer waits for the batch's one fdatasync (state.h).
 * Going from a weight N > 0 to 0 (drain, or weight 0) records N as the
 * backend's "drainedWeight" in the desired state, so it is in the state
 * file (or its journal) and survives a restart; draining again keeps the
 * first record; any weight > 0 clears it. undrain gives back the recorded
 * weight, or 1 when none was recorded (a backend added with weight 0, a
 * state file from before the field), and refuses a backend that is not
 * draining.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "desired.h"
#include "sluice.h"

#include "meshd.h"
#include "ops.h"
#include "state.h"

enum backend_edit {
	BE_ADD,
	BE_DEL,
	BE_WEIGHT,
	BE_DRAIN,
	BE_UNDRAIN,
};

static struct json_object *ops__backend_arg(struct json_object *req, struct sluice_addr *addr,
					    __u16 *port)
{
	const char *text = ops__str(req, "backend");

	if (!text)
		return api__error("backend: %s, want \"ADDR:PORT\" (e.g. \"10.0.1.2:8080\")",
				  ops__has(req, "backend") ? "not a string" : "missing");
	if (sluice_addr__parse_port(addr, port, text))
		return api__error("backend: %s", sluice__errmsg());
	return NULL;
}

static struct json_object *ops__weight_arg(struct json_object *req, bool required, int *weight)
{
	struct json_object *v;
	int64_t w;

	if (!json_object_object_get_ex(req, "weight", &v)) {
		if (required)
			return api__error("weight: missing");
		*weight = 1;
		return NULL;
	}
	if (!json_object_is_type(v, json_type_int))
		return api__error("weight: %s is not an integer", json_object_to_json_string(v));
	w = json_object_get_int64(v);
	if (w < 0 || w > 65535)
		return api__error("weight: %lld is out of range 0-65535", (long long)w);
	*weight = (int)w;
	return NULL;
}

static int ops__find_backend(const struct desired_service *svc, const struct sluice_addr *addr,
			     __u16 port)
{
	for (__u32 i = 0; i < svc->nbackends; i++)
		if (svc->backends[i].port == port && sluice_addr__eq(&svc->backends[i].addr, addr))
			return i;
	return -1;
}

/* A backend gets `weight`; the weight before a drain is kept. */
static void ops__set_weight(struct desired_backend *be, int weight)
{
	if (weight)
		be->drained_weight = 0;
	else if (be->weight)
		be->drained_weight = be->weight;
	be->weight = (__u16)weight;
}

/* The weight of a weight, drain or undrain edit, or an error reply. */
static struct json_object *ops__edit_weight(struct json_object *req, enum backend_edit edit,
					    const struct desired_backend *cur, const char *be,
					    const char *svc, int *weight)
{
	switch (edit) {
	case BE_ADD:
		return ops__weight_arg(req, false, weight);
	case BE_WEIGHT:
		return ops__weight_arg(req, true, weight);
	case BE_DRAIN:
		*weight = 0; /* Maglev gives it no new flows, conntrack keeps the old */
		return NULL;
	case BE_UNDRAIN:
		if (cur->weight)
			return api__error("backend %s of service %s is not draining (weight %u): "
					  "nothing to undrain",
					  be, svc, cur->weight);
		*weight = cur->drained_weight ? cur->drained_weight : 1;
		return NULL;
	case BE_DEL:
		break;
	}
	return NULL;
}

/* lean: a change of a batch, answered without the service (reading it
 * back from the maps cost ~1 ms a change in a batch of 100 at 10k). */
static struct json_object *ops__backend_edit(struct meshd *m, struct json_object *req,
					     enum backend_edit edit, bool lean)
{
	char bbuf[SLUICE_ADDRPORT_STRLEN];
	struct desired_service next;
	const struct desired_service *cur;
	struct json_object *err;
	struct sluice_addr addr;
	struct svc_ref ref;
	int i, j, weight = 0;
	__u16 port;

	err = ops__svc_arg(req, &ref);
	if (!err)
		err = ops__backend_arg(req, &addr, &port);
	if (!err)
		err = ops__existing_svc(&m->state.desired, &m->kube, &ref, true, &i);
	if (err)
		return err;
	cur = &m->state.desired.services[i];
	j = ops__find_backend(cur, &addr, port);
	sluice_addr__str_port(&addr, port, bbuf, sizeof(bbuf));
	if (edit == BE_ADD && j >= 0)
		return api__error(
			"backend %s is already in service %s (use backend weight to change it)",
			bbuf, ref.text);
	if (edit != BE_ADD && j < 0)
		return api__error("backend %s is not in service %s", bbuf, ref.text);
	err = ops__edit_weight(req, edit, j >= 0 ? &cur->backends[j] : NULL, bbuf, ref.text,
			       &weight);
	if (err)
		return err;
	/* A copy of this service only: the rest of the state is not touched. */
	next = *cur;
	next.src_ranges = NULL;
	next.backends = malloc((cur->nbackends + 1) * sizeof(*next.backends));
	if (!next.backends || desired__src_ranges_dup(&next, cur)) {
		free(next.backends);
		return api__error("out of memory");
	}
	if (cur->nbackends)
		memcpy(next.backends, cur->backends, cur->nbackends * sizeof(*next.backends));
	if (edit == BE_ADD) {
		next.backends[next.nbackends++] = (struct desired_backend){
			.addr = addr, .port = port, .weight = (__u16)weight
		};
	} else if (edit == BE_DEL) {
		memmove(&next.backends[j], &next.backends[j + 1],
			(next.nbackends - j - 1) * sizeof(*next.backends));
		next.nbackends--;
	} else {
		ops__set_weight(&next.backends[j], weight);
	}
	return ops__commit_service(&m->state, lean ? NULL : m->sl, (__u32)i, &next, &ref);
}

struct json_object *ops__backend_add(struct meshd *m, struct json_object *req)
{
	return ops__backend_edit(m, req, BE_ADD, false);
}

struct json_object *ops__backend_del(struct meshd *m, struct json_object *req)
{
	return ops__backend_edit(m, req, BE_DEL, false);
}

struct json_object *ops__backend_weight(struct meshd *m, struct json_object *req)
{
	return ops__backend_edit(m, req, BE_WEIGHT, false);
}

struct json_object *ops__backend_drain(struct meshd *m, struct json_object *req)
{
	return ops__backend_edit(m, req, BE_DRAIN, false);
}

struct json_object *ops__backend_undrain(struct meshd *m, struct json_object *req)
{
	return ops__backend_edit(m, req, BE_UNDRAIN, false);
}

/* One change of a backend.batch: {"op", "service", "backend", "weight"}. */
static struct json_object *ops__batch_one(struct meshd *m, struct json_object *e, size_t k)
{
	static const struct {
		const char *name;
		enum backend_edit edit;
	} edits[] = { { "add", BE_ADD },
		      { "del", BE_DEL },
		      { "weight", BE_WEIGHT },
		      { "drain", BE_DRAIN },
		      { "undrain", BE_UNDRAIN } };
	const char *op;

	if (!json_object_is_type(e, json_type_object))
		return api__error("changes[%zu]: not an object", k);
	json_object_object_foreach(e, key, val)
	{
		(void)val;
		if (strcmp(key, "op") && strcmp(key, "service") && strcmp(key, "backend") &&
		    strcmp(key, "weight"))
			return api__error("changes[%zu]: unknown argument \"%s\" (it takes: op, "
					  "service, backend, weight)",
					  k, key);
	}
	op = ops__str(e, "op");
	for (size_t i = 0; op && i < sizeof(edits) / sizeof(edits[0]); i++)
		if (!strcmp(op, edits[i].name))
			return ops__backend_edit(m, e, edits[i].edit, true);
	return api__error("changes[%zu]: op: %s%s%s, want add, del, weight, drain or undrain", k,
			  op ? "\"" : "", op ? op : "missing", op ? "\"" : "");
}

struct json_object *ops__backend_batch(struct meshd *m, struct json_object *req)
{
	struct json_object *changes, *results, *data, *r, *v;
	size_t n, applied = 0;

	if (!json_object_object_get_ex(req, "changes", &changes) ||
	    !json_object_is_type(changes, json_type_array))
		return api__error(
			"changes: %s, want an array of {\"op\", \"service\", \"backend\", "
			"\"weight\"}",
			ops__has(req, "changes") ? "not an array" : "missing");
	n = json_object_array_length(changes);
	if (n > STATE_GROUP_MAX)
		return api__error("changes: %zu changes, at most %u in one batch", n,
				  STATE_GROUP_MAX);
	/* all of them in one batch: one fdatasync, one verdict on durability */
	if (m->state.group.n + n > STATE_GROUP_MAX)
		state__group_flush(&m->state);
	results = json_object_new_array();
	if (!results)
		return api__error("out of memory");
	for (size_t k = 0; k < n; k++) {
		r = ops__batch_one(m, json_object_array_get_idx(changes, k), k);
		if (!r) {
			json_object_put(results);
			return api__error("out of memory");
		}
		if (json_object_object_get_ex(r, "ok", &v) && json_object_get_boolean(v))
			applied++;
		json_object_array_add(results, r);
	}
	data = json_object_new_object();
	if (!data) {
		json_object_put(results);
		return api__error("out of memory");
	}
	json_object_object_add(data, "results", results);
	json_object_object_add(data, "applied", json_object_new_uint64(applied));
	json_object_object_add(data, "refused", json_object_new_uint64(n - applied));
	return api__ok(data);
}
