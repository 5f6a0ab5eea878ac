// SPDX-License-Identifier: MIT
/*
 * dispatch.c - the op table of the API (see dispatch.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api.h"

#include "dispatch.h"
#include "log.h"
#include "meshd.h"
#include "ops.h"

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
static const struct {
	const char *op;
	ops__fn fn;
	const char *const *args;
	ops__stream_fn stream; /* instead of fn: the connection stays open */
} dispatch_ops[] = {
	{ "status", ops__status, ARGS(NULL), NULL },
	{ "service.list", ops__service_list, ARGS(NULL), NULL },
	{ "service.get", ops__service_get, ARGS("service"), NULL },
	{ "service.add", ops__service_add,
	  ARGS("service", "name", "backends", "outlierDetection", "sessionAffinity", "healthCheck",
	       "snat", "dropWhenEmpty", "sourceRanges", "allowFrom", "denyFrom", "denyAction"),
	  NULL },
	{ "service.set", ops__service_set,
	  ARGS("service", "name", "outlierDetection", "sessionAffinity", "healthCheck", "snat",
	       "dropWhenEmpty", "sourceRanges", "allowFrom", "denyFrom", "denyAction"),
	  NULL },
	{ "service.del", ops__service_del, ARGS("service"), NULL },
	{ "backend.add", ops__backend_add, ARGS("service", "backend", "weight"), NULL },
	{ "backend.del", ops__backend_del, ARGS("service", "backend"), NULL },
	{ "backend.weight", ops__backend_weight, ARGS("service", "backend", "weight"), NULL },
	{ "backend.drain", ops__backend_drain, ARGS("service", "backend"), NULL },
	{ "backend.undrain", ops__backend_undrain, ARGS("service", "backend"), NULL },
	{ "backend.batch", ops__backend_batch, ARGS("changes"), NULL },
	{ "apply", ops__apply, ARGS("desired", "dry_run"), NULL },
	{ "conntrack.list", ops__conntrack_list, ARGS("service"), NULL },
	{ "conntrack.flush", ops__conntrack_flush, ARGS("service"), NULL },
	{ "uninstall", ops__uninstall, ARGS(NULL), NULL },
	{ "connections.list", ops__connections_list, ARGS("limit", "service", "events"), NULL },
	{ "connections.follow", NULL, ARGS("service"), ops__connections_follow },
	{ "top", ops__top, ARGS(NULL), NULL },
	{ "doctor", ops__doctor, ARGS(NULL), NULL },
	{ "explain", ops__explain,
	  ARGS("service", "client", "socketCookie", "netnsCookie", "socketSource", "routeSource"),
	  NULL },
	{ "policy.list", ops__policy_list, ARGS(NULL), NULL },
	{ "policy.get", ops__policy_get, ARGS("service"), NULL },
	{ "policy.node.set", ops__policy_node_set, ARGS("nodeDenyFrom"), NULL },
};

static int dispatch__check_args(struct json_object *req, const char *op, const char *const *args,
				struct json_object **err)
{
	json_object_object_foreach(req, key, val)
	{
		char known[256] = "";
		size_t off = 0;
		bool ok = !strcmp(key, "op");

		(void)val;
		for (int i = 0; args[i] && !ok; i++)
			ok = !strcmp(key, args[i]);
		if (ok)
			continue;
		for (int i = 0; args[i]; i++)
			off += snprintf(known + off, off < sizeof(known) ? sizeof(known) - off : 0,
					"%s%s", i ? ", " : "", args[i]);
		*err = args[0] ? api__error("%s: unknown argument \"%s\" (it takes: %s)", op, key,
					    known) :
				 api__error("%s: unknown argument \"%s\" (it takes none)", op, key);
		return -EINVAL;
	}
	return 0;
}

static struct json_object *dispatch__op(struct meshd *m, struct json_object *req,
					const char **opname, int fd, int pid, bool *taken)
{
	struct json_object *v, *err, *resp;
	const char *op;

	if (!json_object_is_type(req, json_type_object))
		return api__error("request is not a JSON object");
	if (!json_object_object_get_ex(req, "op", &v) || !json_object_is_type(v, json_type_string))
		return api__error("request has no \"op\" string");
	op = json_object_get_string(v);
	*opname = op;
	for (size_t i = 0; i < sizeof(dispatch_ops) / sizeof(dispatch_ops[0]); i++) {
		if (strcmp(op, dispatch_ops[i].op))
			continue;
		if (dispatch__check_args(req, op, dispatch_ops[i].args, &err))
			return err;
		if (!dispatch_ops[i].stream) {
			resp = dispatch_ops[i].fn(m, req);
			return resp ? resp : api__error("out of memory");
		}
		resp = dispatch_ops[i].stream(m, req, fd, pid, taken);
		if (!resp)
			pr_debug("api: %s from pid %d: %s", op, pid,
				 *taken ? "streaming" : "client gone");
		return resp;
	}
	return api__error("unknown op \"%s\"", op);
}

struct json_object *dispatch__request(void *ctx, struct json_object *req, int fd, int pid,
				      bool *taken)
{
	struct meshd *m = ctx;
	struct json_object *resp, *v;
	const char *op = "?";
	__u64 staged = m->state.group.st.changes;

	*taken = false;
	m->held = 0;
	/* after uninstall (or a signal) nothing may change the maps or the
	 * state file again, even requests that arrived with it */
	if (((struct meshd *)ctx)->stop)
		return api__error("meshd is stopping");
	resp = dispatch__op(ctx, req, &op, fd, pid, taken);
	if (!resp)
		return NULL;
	/* It staged changes into the open batch: answered when that is durable. */
	if (m->state.group.st.changes != staged)
		m->held = state__group_seq(&m->state);
	if (json_object_object_get_ex(resp, "ok", &v) && json_object_get_boolean(v))
		pr_debug("api: %s from pid %d: ok", op, pid);
	else
		pr_debug("api: %s from pid %d: %s", op, pid,
			 json_object_object_get_ex(resp, "error", &v) ? json_object_get_string(v) :
									"?");
	return resp;
}

__u64 dispatch__hold(void *ctx)
{
	struct meshd *m = ctx;
	__u64 seq = m->held;

	m->held = 0;
	return seq;
}

void dispatch__sync(void *ctx)
{
	state__group_flush(&((struct meshd *)ctx)->state);
}

void dispatch__done(void *ctx, __u64 seq, int err, const char *text)
{
	(void)err;
	server__release(&((struct meshd *)ctx)->api, seq, text);
}
