// SPDX-License-Identifier: MIT
/*
 * fuzz_k8s_objects.c - Kubernetes Service and EndpointSlice objects as the
 * API server sends them (a list's "items", JSON) -> the object stores ->
 * the desired state meshd would program.
 *
 * Input: a JSON array of objects; each goes to both stores (each parser
 * must refuse the other kind cleanly). Property: k8s__translate's result
 * always passes desired__validate, whatever the objects held.
 */
#include <json-c/json.h>

#include "desired.h"
#include "fuzz.h"
#include "k8s_internal.h"

static void fuzz__warn(const char *msg, void *ctx)
{
	(void)msg;
	(void)ctx;
}

static void fuzz__translate(struct k8s_objs *svcs, struct k8s_objs *slices)
{
	struct k8s_xlate_opts o = { .node_name = "node-a", .warn = fuzz__warn };
	struct desired d;

	desired__init(&d);
	if (!k8s__translate(svcs, slices, &o, &d) && desired__validate(&d))
		fuzz__bug("translated services fail desired__validate");
	desired__free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct k8s_objs *svcs = k8s_objs__new(K8S_SERVICES);
	struct k8s_objs *slices = k8s_objs__new(K8S_SLICES);
	struct json_tokener *tok = json_tokener_new_ex(64);
	struct json_object *root = NULL;

	if (!svcs || !slices || !tok || size > INT32_MAX)
		goto out;
	root = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	if (!json_object_is_type(root, json_type_array))
		goto out;
	for (size_t i = 0; i < json_object_array_length(root); i++) {
		struct json_object *obj = json_object_array_get_idx(root, i);

		(void)k8s_objs__put_json(svcs, obj);
		(void)k8s_objs__put_json(slices, obj);
	}
	fuzz__translate(svcs, slices);
	/* deleting what was added leaves nothing to translate */
	for (size_t i = 0; i < json_object_array_length(root); i++) {
		struct json_object *obj = json_object_array_get_idx(root, i);

		(void)k8s_objs__del_json(svcs, obj);
		(void)k8s_objs__del_json(slices, obj);
	}
	fuzz__translate(svcs, slices);
out:
	json_object_put(root);
	if (tok)
		json_tokener_free(tok);
	k8s_objs__free(svcs);
	k8s_objs__free(slices);
	return 0;
}
