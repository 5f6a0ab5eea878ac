// SPDX-License-Identifier: MIT
/*
 * fuzz_k8s_watch.c - a watch response body: a byte stream of JSON events
 * ({"type": ..., "object": ...}) cut into chunks anywhere -> decoded
 * events -> the Service store, as k8s_watch.c does it.
 *
 * Input: the first byte picks the chunk size (1-256), the rest is the
 * body. Property: the stream splits the same values whatever the chunk
 * size (checked by feeding the body whole as well).
 */
#include <json-c/json.h>

#include "fuzz.h"
#include "k8s_internal.h"

struct fuzz_watch {
	struct k8s_objs *objs;
	unsigned int values;
};

static int fuzz__event(struct json_object *value, void *ctx)
{
	struct fuzz_watch *w = ctx;
	struct json_object *obj;
	enum k8s_ev_type type;
	const char *rv;
	char buf[256];
	int code;

	w->values++;
	if (k8s_event__decode(value, &type, &obj, &rv, &code))
		return 0;
	if (type == K8S_EV_ERROR)
		k8s_status__text(obj, buf, sizeof(buf), &code);
	else if (type == K8S_EV_DELETED)
		(void)k8s_objs__del_json(w->objs, obj);
	else if (type != K8S_EV_BOOKMARK)
		(void)k8s_objs__put_json(w->objs, obj);
	return 0;
}

/* Feeds body in chunks of step bytes; the number of whole values, or -1
 * when the stream was refused. */
static int fuzz__feed(const char *body, size_t len, size_t step)
{
	struct fuzz_watch w = { .objs = k8s_objs__new(K8S_SERVICES) };
	struct k8s_stream s;
	int err = 0;

	if (!w.objs || k8s_stream__init(&s, 1 << 20)) {
		k8s_objs__free(w.objs);
		return -2;
	}
	for (size_t off = 0; !err && off < len; off += step)
		err = k8s_stream__feed(&s, body + off, len - off < step ? len - off : step,
				       fuzz__event, &w);
	k8s_stream__free(&s);
	k8s_objs__free(w.objs);
	return err ? -1 : (int)w.values;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int chunked, whole;

	if (size < 1)
		return 0;
	chunked = fuzz__feed((const char *)data + 1, size - 1, (size_t)data[0] + 1);
	whole = fuzz__feed((const char *)data + 1, size - 1, size);
	if (chunked != -2 && whole != -2 && chunked != whole)
		fuzz__bug("chunk boundaries changed how the stream splits");
	return 0;
}
