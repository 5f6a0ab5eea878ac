// SPDX-License-Identifier: MIT
/*
 * desired_stream.c - a desired state read from JSON text and written as
 * JSON one service at a time (see desired.h), so neither holds json-c's
 * tree of the whole state: at 30k services x 10 backends that tree is
 * ~360 MB, one service's a few KiB.
 *
 * Contract: desired__from_text() accepts exactly what yaml__parse_json()
 * + desired__from_json() accept and reports the same errors, with one
 * exception: it returns -EAGAIN, message unset, for text it does not
 * handle (not a JSON object, a syntax error anywhere, a duplicate or
 * escaped top-level key), and the caller then reads the whole text the
 * old way, which reports what is wrong. A service's own errors are found
 * before a syntax error in a later service (the whole-text reader finds
 * the syntax error first). desired__write() writes the bytes
 * json_object_to_json_string_ext(desired__to_json(d), PRETTY | SPACED |
 * NOSLASHESCAPE) would, through a 64 KiB buffer; desired__write_plain()
 * the bytes of PLAIN | NOSLASHESCAPE (what api__write_msg() sends).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desired_internal.h"
#include "internal.h"
#include "jsonscan.h"
#include "yamljson.h"

struct stream_src {
	const char *text;
	const char *name;
	const struct jscan_range *v;
};

static int stream__get(void *ctx, size_t i, struct json_object **o)
{
	struct stream_src *s = ctx;

	/* any problem of the text: the whole-text reader names it */
	return jscan__parse(s->text, s->v[i], s->name, o) ? -EAGAIN : 0;
}

static void stream__put(void *ctx, struct json_object *o)
{
	(void)ctx;
	json_object_put(o);
}

/* root: every top-level member but "services" parsed, that one an empty
 * array standing for the ranges in *svcs. */
static int stream__root(const char *text, struct jscan_range r, const char *name,
			struct json_object **root, struct jscan_range **svcs, size_t *nsvcs)
{
	struct jscan_member *m = NULL;
	struct json_object *v;
	char key[JSCAN_KEY_MAX + 1];
	size_t n;
	int err;

	*svcs = NULL;
	*nsvcs = 0;
	*root = json_object_new_object();
	if (!*root)
		return -ENOMEM;
	err = jscan__members(text, r, JSCAN_MAX_MEMBERS, &m, &n);
	for (size_t i = 0; !err && i < n; i++) {
		if (!jscan__plain_key(text, m, i, key)) {
			err = -EAGAIN;
			break;
		}
		if (!strcmp(key, "services")) {
			if (jscan__elements_checked(text, m[i].val, SLUICE_MAX_SERVICES, svcs,
						    nsvcs)) {
				err = -EAGAIN; /* null, not a list, malformed */
				break;
			}
			v = json_object_new_array();
			if (!v)
				err = -ENOMEM;
		} else if (jscan__parse(text, m[i].val, name, &v)) {
			err = -EAGAIN;
		}
		if (!err && json_object_object_add(*root, key, v)) {
			json_object_put(v);
			err = -ENOMEM;
		}
	}
	free(m);
	if (err == -EINVAL || err == -E2BIG)
		err = -EAGAIN;
	if (err) {
		json_object_put(*root);
		*root = NULL;
		free(*svcs);
		*svcs = NULL;
	}
	return err;
}

int desired__from_text(struct desired *d, const char *text, size_t len, const char *name)
{
	struct jscan_range *v;
	struct json_object *root;
	struct stream_src s = { .text = text, .name = name };
	/* each get() parses its own piece of the text: threads may share it */
	struct desired_svc_src src = {
		.get = stream__get, .put = stream__put, .ctx = &s, .parallel = true
	};
	int err;

	sluice__clear_err();
	desired__init(d);
	err = stream__root(text, (struct jscan_range){ 0, len }, name, &root, &v, &src.n);
	if (err) {
		if (err == -ENOMEM)
			sluice__set_err("out of memory");
		return err;
	}
	s.v = v;
	/* no "services" member: desired__from_src() says it is missing */
	err = desired__from_src(d, root, &src);
	if (err == -EAGAIN)
		sluice__clear_err();
	json_object_put(root);
	free(v);
	return err;
}

/* --- writing --- */

#define STREAM_BUF (64u << 10)

struct stream_out {
	int fd;
	int err;
	size_t n;
	size_t total; /* bytes written */
	size_t max;   /* past it: -EMSGSIZE, nothing more written */
	char buf[STREAM_BUF];
};

static void stream__flush(struct stream_out *o)
{
	if (!o->err && o->n && o->n > o->max - o->total)
		o->err = -EMSGSIZE;
	if (!o->err && o->n)
		o->err = sluice__write_all(o->fd, o->buf, o->n);
	o->total += o->n;
	o->n = 0;
}

static void stream__put_bytes(struct stream_out *o, const char *p, size_t len)
{
	while (len) {
		size_t k = STREAM_BUF - o->n < len ? STREAM_BUF - o->n : len;

		memcpy(o->buf + o->n, p, k);
		o->n += k;
		p += k;
		len -= k;
		if (o->n == STREAM_BUF)
			stream__flush(o);
	}
}

/* json-c's text of a value at the top level, as it prints it nested
 * `indent` spaces deep: every line after the first indented more (raw
 * newlines only separate lines; in strings they are escaped). */
static void stream__put_nested(struct stream_out *o, struct json_object *v, int indent)
{
	static const char spaces[] = "        ";
	const char *s, *nl;

	s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s) {
		o->err = o->err ?: -ENOMEM;
		return;
	}
	while ((nl = strchr(s, '\n'))) {
		stream__put_bytes(o, s, (size_t)(nl + 1 - s));
		stream__put_bytes(o, spaces, (size_t)indent);
		s = nl + 1;
	}
	stream__put_bytes(o, s, strlen(s));
}

/* json-c's plain text of a value (one line, no spaces). */
static void stream__put_plain(struct stream_out *o, struct json_object *v)
{
	const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);

	if (!s)
		o->err = o->err ?: -ENOMEM;
	else
		stream__put_bytes(o, s, strlen(s));
}

/* pretty: the state file's layout; else one line (the API's) */
static int stream__write(const struct desired *d, int fd, bool pretty, size_t max, size_t *written)
{
	struct stream_out *o = malloc(sizeof(*o));
	struct json_object *v;
	int err;

	if (!o)
		return -ENOMEM;
	o->fd = fd;
	o->err = 0;
	o->n = 0;
	o->total = 0;
	o->max = max;
	if (pretty)
		stream__put_bytes(o, "{\n  \"services\": [", 17);
	else
		stream__put_bytes(o, "{\"services\":[", 13);
	for (__u32 i = 0; i < d->nservices && !o->err; i++) {
		v = desired__service_to_json(&d->services[i]);
		if (!v) {
			o->err = -ENOMEM;
			break;
		}
		if (!pretty) {
			if (i)
				stream__put_bytes(o, ",", 1);
			stream__put_plain(o, v);
		} else {
			stream__put_bytes(o, i ? ",\n    " : "\n    ", i ? 6 : 5);
			stream__put_nested(o, v, 4);
		}
		json_object_put(v);
	}
	stream__put_bytes(o, pretty ? "\n  ]" : "]", pretty ? 4 : 1);
	v = desired__node_deny_to_json(d);
	if (v) {
		if (pretty) {
			stream__put_bytes(o, ",\n  \"nodeDenyFrom\": ", 20);
			stream__put_nested(o, v, 2);
		} else {
			stream__put_bytes(o, ",\"nodeDenyFrom\":", 16);
			stream__put_plain(o, v);
		}
		json_object_put(v);
	}
	stream__put_bytes(o, pretty ? "\n}\n" : "}", pretty ? 3 : 1);
	stream__flush(o);
	err = o->err;
	if (written)
		*written = o->total;
	free(o);
	return err;
}

int desired__write(const struct desired *d, int fd)
{
	return stream__write(d, fd, true, SIZE_MAX, NULL);
}

int desired__write_plain(const struct desired *d, int fd, size_t max, size_t *written)
{
	return stream__write(d, fd, false, max, written);
}
