// SPDX-License-Identifier: MIT
/*
 * k8s_stream.c - watch responses: a chunked body of concatenated JSON
 * events ({"type": ..., "object": ...}), cut into whole events as bytes
 * arrive, whatever the chunk boundaries.
 *
 * Contract: k8s_stream__feed() hands each whole value to the callback in
 * order and keeps a partial one for the next call; whitespace between
 * values (the API server ends each event with a newline) is skipped. After
 * malformed JSON the stream is unusable (there is no reliable place to
 * resume in the middle of a value): the caller drops the connection and
 * resumes the watch from its last resourceVersion.
 *
 * A value that spans chunks is kept and parsed again whole once json-c
 * says it ended: json-c 0.16 reads a number cut by a chunk boundary
 * differently ("4" then "-1}" is accepted as 4, "4-1}" is an error), so
 * the incremental result only tells where the value ends. Its UTF-8
 * check also fails on a character cut by a chunk's end, so the last bytes
 * of an unfinished character wait for the next chunk.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "k8s_internal.h"

int k8s_stream__init(struct k8s_stream *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	/* depth 64: API objects nest far less; deeper input is an attack or a bug */
	s->tok = json_tokener_new_ex(64);
	if (!s->tok) {
		sluice__set_err("out of memory for a JSON tokener");
		return -ENOMEM;
	}
	/* strict JSON, several values in a row (ALLOW_TRAILING_CHARS: strict
	 * mode otherwise rejects the next event after the first one) */
	json_tokener_set_flags(s->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
					       JSON_TOKENER_VALIDATE_UTF8);
	s->max = max;
	return 0;
}

void k8s_stream__reset(struct k8s_stream *s)
{
	if (s->tok)
		json_tokener_reset(s->tok);
	s->pending = 0;
	s->ncarry = 0;
}

void k8s_stream__free(struct k8s_stream *s)
{
	if (s->tok)
		json_tokener_free(s->tok);
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

/* Keep len more bytes of the pending value. */
static int stream__keep(struct k8s_stream *s, const char *buf, size_t len)
{
	char *grown;
	size_t cap;

	if (s->pending + len > s->cap) {
		cap = s->cap ? s->cap : 4096;
		while (cap < s->pending + len)
			cap *= 2;
		grown = realloc(s->buf, cap);
		if (!grown) {
			sluice__set_err("out of memory for a watch event");
			return -ENOMEM;
		}
		s->buf = grown;
		s->cap = cap;
	}
	memcpy(s->buf + s->pending, buf, len);
	s->pending += len;
	return 0;
}

/* The kept value, parsed whole; NULL with *jerr set when it is not one
 * complete value (json_tokener_continue: a valid start, the tokener
 * holds it and the next bytes continue it). */
static struct json_object *stream__reparse(struct k8s_stream *s, enum json_tokener_error *jerr)
{
	struct json_object *v;

	json_tokener_reset(s->tok);
	v = json_tokener_parse_ex(s->tok, s->buf, (int)s->pending);
	*jerr = json_tokener_get_error(s->tok);
	if (v && json_tokener_get_parse_end(s->tok) != s->pending) {
		json_object_put(v);
		v = NULL;
		*jerr = json_tokener_error_parse_unexpected;
	}
	return v;
}

/* Quote the bytes around a parse error for the log (control chars as '.'). */
static void stream__quote(char *out, size_t outlen, const char *buf, size_t len)
{
	size_t n = len < outlen - 1 ? len : outlen - 1;

	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)buf[i] < 0x20 ? '.' : buf[i];
	out[n] = '\0';
}

static int stream__feed(struct k8s_stream *s, const char *buf, size_t len, k8s_stream_fn fn,
			void *ctx)
{
	while (len) {
		struct json_object *v;
		enum json_tokener_error jerr;
		size_t used, blen;
		const char *base;
		int err;

		/* skip separators here so they never count as a pending value */
		if (!s->pending && (*buf == '\n' || *buf == '\r' || *buf == ' ' || *buf == '\t')) {
			buf++;
			len--;
			continue;
		}
		/* Watch events are objects. A bare number or word has no end of
		 * its own, so whether it ended at a chunk boundary would decide
		 * how the rest splits: refuse it where it starts. */
		if (!s->pending && *buf != '{') {
			char q[32];

			stream__quote(q, sizeof(q), buf, len);
			sluice__set_err("malformed JSON in the watch stream: expected an event "
					"object near \"%s\"",
					q);
			return -EBADMSG;
		}
		v = json_tokener_parse_ex(s->tok, buf, len > INT32_MAX ? INT32_MAX : (int)len);
		jerr = json_tokener_get_error(s->tok);
		if (!v && jerr == json_tokener_continue) {
			if (s->max && s->pending + len > s->max) {
				sluice__set_err("watch event larger than %zu bytes", s->max);
				return -EBADMSG;
			}
			return stream__keep(s, buf, len);
		}
		used = v ? json_tokener_get_parse_end(s->tok) : len;
		base = buf;
		blen = len;
		if (s->pending) {
			/* the value spanned chunks: its whole text decides */
			json_object_put(v);
			err = stream__keep(s, buf, used);
			if (err)
				return err;
			v = stream__reparse(s, &jerr);
			base = s->buf;
			blen = s->pending;
			if (!v && jerr == json_tokener_continue) {
				/* only a split made it end or fail: read on */
				if (s->max && s->pending > s->max) {
					sluice__set_err("watch event larger than %zu bytes",
							s->max);
					return -EBADMSG;
				}
				buf += used;
				len -= used;
				continue;
			}
		}
		if (!v) {
			char q[64];
			size_t at = json_tokener_get_parse_end(s->tok);

			if (at > blen)
				at = blen;
			stream__quote(q, sizeof(q), base + (at > 16 ? at - 16 : 0),
				      blen - (at > 16 ? at - 16 : 0));
			sluice__set_err("malformed JSON in the watch stream: %s near \"%s\"",
					json_tokener_error_desc(jerr), q);
			return -EBADMSG;
		}
		json_tokener_reset(s->tok);
		s->pending = 0;
		buf += used;
		len -= used;
		err = fn(v, ctx);
		json_object_put(v);
		if (err < 0)
			return err;
	}
	return 0;
}

static size_t utf8__need(unsigned char lead)
{
	return lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
}

/* How many bytes at the end of buf start a UTF-8 character they do not
 * finish (0-3). */
static size_t utf8__cut_tail(const char *buf, size_t len)
{
	for (size_t k = 1; k <= 3 && k <= len; k++) {
		unsigned char c = (unsigned char)buf[len - k];

		if ((c & 0xc0) == 0x80)
			continue;
		return c >= 0xc0 && c < 0xf8 && utf8__need(c) > k ? k : 0;
	}
	return 0;
}

int k8s_stream__feed(struct k8s_stream *s, const char *buf, size_t len, k8s_stream_fn fn, void *ctx)
{
	size_t hold, n;
	int err;

	/* first finish the character the last chunk cut */
	while (s->ncarry && len) {
		if (((unsigned char)*buf & 0xc0) == 0x80) {
			s->carry[s->ncarry++] = *buf++;
			len--;
			if (s->ncarry < utf8__need((unsigned char)s->carry[0]))
				continue;
		}
		n = s->ncarry;
		s->ncarry = 0;
		err = stream__feed(s, s->carry, n, fn, ctx);
		if (err)
			return err;
	}
	hold = utf8__cut_tail(buf, len);
	err = stream__feed(s, buf, len - hold, fn, ctx);
	if (err)
		return err;
	memcpy(s->carry + s->ncarry, buf + len - hold, hold);
	s->ncarry += hold;
	return 0;
}

void k8s_status__text(struct json_object *status, char *buf, size_t len, int *code)
{
	struct json_object *c = k8s_json__get(status, "code");
	struct json_object *reason = k8s_json__get(status, "reason");
	struct json_object *msg = k8s_json__get(status, "message");

	*code = c && json_object_is_type(c, json_type_int) ? json_object_get_int(c) : 0;
	snprintf(buf, len, "code %d %s: %s", *code,
		 reason && json_object_is_type(reason, json_type_string) ?
			 json_object_get_string(reason) :
			 "",
		 msg && json_object_is_type(msg, json_type_string) ? json_object_get_string(msg) :
								     "(no message)");
}

int k8s_event__decode(struct json_object *ev, enum k8s_ev_type *type, struct json_object **object,
		      const char **rv, int *code)
{
	static const char *const names[] = { "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR" };
	struct json_object *t = k8s_json__get(ev, "type");
	struct json_object *o = k8s_json__get(ev, "object");
	struct json_object *r;
	const char *ts;
	int i;

	*rv = NULL;
	*code = 0;
	if (!t || !json_object_is_type(t, json_type_string) || !o ||
	    !json_object_is_type(o, json_type_object)) {
		sluice__set_err("watch event is not {\"type\": string, \"object\": object}: %.120s",
				json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN));
		return -EINVAL;
	}
	ts = json_object_get_string(t);
	for (i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (!strcmp(ts, names[i]))
			break;
	if (i == (int)(sizeof(names) / sizeof(names[0]))) {
		sluice__set_err("watch event of unknown type \"%.32s\"", ts);
		return -EINVAL;
	}
	*type = i;
	*object = o;
	if (*type == K8S_EV_ERROR) {
		char text[256];

		k8s_status__text(o, text, sizeof(text), code);
		return 0;
	}
	r = k8s_json__get(k8s_json__get(o, "metadata"), "resourceVersion");
	if (r && json_object_is_type(r, json_type_string) && *json_object_get_string(r))
		*rv = json_object_get_string(r);
	if (!*rv) {
		sluice__set_err("%s event without metadata.resourceVersion", ts);
		return -EINVAL;
	}
	return 0;
}
