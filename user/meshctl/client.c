// SPDX-License-Identifier: MIT
/*
 * client.c - request/response with meshd over its Unix socket.
 *
 * Contract: see client.h. The transport lives in user/lib/api.c; this file
 * only shapes the request, unwraps {"ok", "data", "error"} and words the
 * errors for a person at a terminal.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "sluice.h"

#include "client.h"
#include "meshctl.h"
#include "output.h"

/* api.c already says "is meshd running?" and "needs root"; the one fix it
 * cannot name is meshctl's own option. */
static const char *hint(int err)
{
	return err == -ETIMEDOUT ? " (see --timeout)" : "";
}

int client__try(const char *op, struct json_object *args, struct json_object **data, char *err,
		size_t errlen)
{
	struct json_object *req, *resp = NULL, *v;
	struct json_object_iterator it, end;
	const char *msg;
	int ret;

	*data = NULL;
	req = out__xalloc(json_object_new_object());
	json_object_object_add(req, "op", json_object_new_string(op));
	if (args) {
		it = json_object_iter_begin(args);
		end = json_object_iter_end(args);
		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
			json_object_object_add(req, json_object_iter_peek_name(&it),
					       json_object_get(json_object_iter_peek_value(&it)));
		json_object_put(args);
	}

	ret = api__call(g_opts.socket, req, g_opts.timeout_ms, &resp);
	json_object_put(req);
	if (ret < 0) {
		msg = sluice__errmsg();
		if (msg && *msg)
			snprintf(err, errlen, "%s%s", msg, hint(ret));
		else
			snprintf(err, errlen, "cannot reach meshd at %s: %s%s", g_opts.socket,
				 strerror(-ret), hint(ret));
		return -1;
	}

	v = js__get(resp, "ok");
	if (!v || !json_object_is_type(v, json_type_boolean)) {
		snprintf(err, errlen, "malformed answer from meshd at %s: no \"ok\" field",
			 g_opts.socket);
		json_object_put(resp);
		return -1;
	}
	if (!json_object_get_boolean(v)) {
		snprintf(err, errlen, "%s", js__str(resp, "error", "meshd refused the request"));
		json_object_put(resp);
		return -1;
	}
	v = js__get(resp, "data");
	if (v && !json_object_is_type(v, json_type_null))
		*data = json_object_get(v);
	json_object_put(resp);
	return 0;
}

int client__call(const char *op, struct json_object *args, struct json_object **data)
{
	char err[1024];

	if (client__try(op, args, data, err, sizeof(err)))
		return out__error("%s", err);
	return 0;
}
