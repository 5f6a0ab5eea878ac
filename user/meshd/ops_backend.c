// SPDX-License-Identifier: MIT
/*
 * ops_backend.c - the backend ops (see ops.h): backend.add, backend.del,
 * backend.weight, backend.drain and backend.undrain.
 *
 * Contract: an edit of a copy of the one service it names, committed with
 * state__commit_service() (the same rules and error texts as a parse of
 * the whole state, checked on what changes). Going from a weight N > 0 to
 * 0 (drain, or weight 0) records N as the backend's "drainedWeight" in the
 * desired state, so it is in the state file (or its journal) and survives
 * a restart; draining again keeps the first record; any weight > 0 clears
 * it. undrain gives back the recorded weight, or 1 when none was recorded
 * (a backend added with weight 0, a state file from before the field), and
 * refuses a backend that is not draining.
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

static struct json_object *ops__backend_edit(struct meshd *m, struct json_object *req,
					     enum backend_edit edit)
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
	return ops__commit_service(&m->state, m->sl, (__u32)i, &next, &ref);
}

struct json_object *ops__backend_add(struct meshd *m, struct json_object *req)
{
	return ops__backend_edit(m, req, BE_ADD);
}

struct json_object *ops__backend_del(struct meshd *m, struct json_object *req)
{
	return ops__backend_edit(m, req, BE_DEL);
}

struct json_object *ops__backend_weight(struct meshd *m, struct json_object *req)
{
	return ops__backend_edit(m, req, BE_WEIGHT);
}

struct json_object *ops__backend_drain(struct meshd *m, struct json_object *req)
{
	return ops__backend_edit(m, req, BE_DRAIN);
}

struct json_object *ops__backend_undrain(struct meshd *m, struct json_object *req)
{
	return ops__backend_edit(m, req, BE_UNDRAIN);
}
