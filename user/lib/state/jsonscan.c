// SPDX-License-Identifier: MIT
/*
 * jsonscan.c - a JSON text's members and elements as byte ranges (see
 * jsonscan.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonscan.h"
#include "yamljson.h"

struct jscan {
	const char *p, *end;
};

static void jscan__ws(struct jscan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n'))
		s->p++;
}

/* At '"': past the closing quote. *escaped: a backslash inside. */
static int jscan__string(struct jscan *s, bool *escaped)
{
	*escaped = false;
	if (s->p >= s->end || *s->p != '"')
		return -EINVAL;
	for (s->p++; s->p < s->end; s->p++) {
		unsigned char c = (unsigned char)*s->p;

		if (c == '"') {
			s->p++;
			return 0;
		}
		if (c < 0x20)
			return -EINVAL;
		if (c == '\\') {
			*escaped = true;
			if (++s->p >= s->end)
				return -EINVAL;
		}
	}
	return -EINVAL;
}

static int jscan__value(struct jscan *s, int depth);

/* At '{' or '[': past the matching close. */
static int jscan__collection(struct jscan *s, int depth)
{
	char close = *s->p == '{' ? '}' : ']';
	bool obj = close == '}', esc;
	int err;

	if (depth >= YAMLJSON_MAX_DEPTH)
		return -EINVAL;
	s->p++;
	jscan__ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 0;
	}
	for (;;) {
		if (obj) {
			err = jscan__string(s, &esc);
			if (err)
				return err;
			jscan__ws(s);
			if (s->p >= s->end || *s->p != ':')
				return -EINVAL;
			s->p++;
		}
		err = jscan__value(s, depth + 1);
		if (err)
			return err;
		jscan__ws(s);
		if (s->p >= s->end)
			return -EINVAL;
		if (*s->p == close) {
			s->p++;
			return 0;
		}
		if (*s->p != ',')
			return -EINVAL;
		s->p++;
		jscan__ws(s);
	}
}

/* One value, white space before it skipped. Numbers and literals are
 * taken as a run of the characters they may hold; json-c checks them. */
static int jscan__value(struct jscan *s, int depth)
{
	const char *start;
	bool esc;

	jscan__ws(s);
	if (s->p >= s->end)
		return -EINVAL;
	if (*s->p == '{' || *s->p == '[')
		return jscan__collection(s, depth);
	if (*s->p == '"')
		return jscan__string(s, &esc);
	start = s->p;
	while (s->p < s->end && *s->p && strchr("+-.0123456789eEabcdfilnrstuAEFILNRSTU", *s->p))
		s->p++;
	return s->p > start ? 0 : -EINVAL;
}

/* s at the collection's open (after white space) and the text after its
 * close only white space. */
static int jscan__open(const char *text, struct jscan_range r, char open, bool checked,
		       struct jscan *s)
{
	struct jscan t;

	s->p = text + r.off;
	s->end = text + r.off + r.len;
	jscan__ws(s);
	if (s->p >= s->end || *s->p != open)
		return -EINVAL;
	if (checked)
		return 0;
	/* the whole value first: the walk below then needs no depth check */
	t = *s;
	if (jscan__collection(&t, 0))
		return -EINVAL;
	jscan__ws(&t);
	return t.p == t.end ? 0 : -EINVAL;
}

static int jscan__grow(void **v, size_t *cap, size_t n, size_t size)
{
	void *grown;

	if (n < *cap)
		return 0;
	*cap = *cap ? 2 * *cap : 16;
	grown = realloc(*v, *cap * size);
	if (!grown)
		return -ENOMEM;
	*v = grown;
	return 0;
}

int jscan__members(const char *text, struct jscan_range r, size_t max, struct jscan_member **v,
		   size_t *n)
{
	struct jscan_member *out = NULL;
	size_t cap = 0;
	struct jscan s;
	int err;

	*v = NULL;
	*n = 0;
	err = jscan__open(text, r, '{', false, &s);
	if (err)
		return err;
	s.p++;
	jscan__ws(&s);
	while (*s.p != '}') { /* well formed: checked by jscan__open() */
		struct jscan_member m;
		const char *k = s.p;

		if (*n == max) {
			err = -E2BIG;
			goto fail;
		}
		jscan__string(&s, &m.key_escaped);
		m.key = (struct jscan_range){ (size_t)(k + 1 - text), (size_t)(s.p - k - 2) };
		jscan__ws(&s);
		s.p++; /* ':' */
		jscan__ws(&s);
		k = s.p;
		jscan__value(&s, 1);
		m.val = (struct jscan_range){ (size_t)(k - text), (size_t)(s.p - k) };
		err = jscan__grow((void **)&out, &cap, *n, sizeof(*out));
		if (err)
			goto fail;
		out[(*n)++] = m;
		jscan__ws(&s);
		if (*s.p == ',')
			s.p++;
		jscan__ws(&s);
	}
	*v = out;
	return 0;
fail:
	free(out);
	*n = 0;
	return err;
}

static int jscan__elements_in(const char *text, struct jscan_range r, size_t max, bool checked,
			      struct jscan_range **v, size_t *n)
{
	struct jscan_range *out = NULL;
	size_t cap = 0;
	struct jscan s;
	int err;

	*v = NULL;
	*n = 0;
	err = jscan__open(text, r, '[', checked, &s);
	if (err)
		return err;
	s.p++;
	jscan__ws(&s);
	while (*s.p != ']') {
		const char *k = s.p;

		jscan__value(&s, 1);
		if (*n < max) {
			err = jscan__grow((void **)&out, &cap, *n, sizeof(*out));
			if (err) {
				free(out);
				*n = 0;
				return err;
			}
			out[*n] = (struct jscan_range){ (size_t)(k - text), (size_t)(s.p - k) };
		}
		(*n)++;
		jscan__ws(&s);
		if (*s.p == ',')
			s.p++;
		jscan__ws(&s);
	}
	*v = out;
	return 0;
}

int jscan__elements(const char *text, struct jscan_range r, size_t max, struct jscan_range **v,
		    size_t *n)
{
	return jscan__elements_in(text, r, max, false, v, n);
}

int jscan__elements_checked(const char *text, struct jscan_range r, size_t max,
			    struct jscan_range **v, size_t *n)
{
	return jscan__elements_in(text, r, max, true, v, n);
}

/* Well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code
 * points past U+10FFFF), which both readers take. */
static bool jscan__utf8(const unsigned char *p, const unsigned char *end)
{
	while (p < end) {
		unsigned c = *p++, n, min, cp;

		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, min = 0x80, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, min = 0x800, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, min = 0x10000, cp = c & 0x07;
		else
			return false;
		if ((size_t)(end - p) < n)
			return false;
		for (; n; n--, p++) {
			if ((*p & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (*p & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

/* A string without escapes, well-formed UTF-8. */
static int jscan__plain_string(struct jscan *s)
{
	const char *start = s->p;
	bool esc;

	if (jscan__string(s, &esc) || esc ||
	    !jscan__utf8((const unsigned char *)start + 1, (const unsigned char *)s->p - 1))
		return -EINVAL;
	return 0;
}

/* A literal or an integer of at most 18 digits (no fraction, exponent,
 * leading zero or '+'): what libyaml's reader and json-c type alike. */
static int jscan__plain_scalar(struct jscan *s)
{
	static const char *const lits[] = { "true", "false", "null" };
	const char *start = s->p, *digits;

	for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		size_t n = strlen(lits[i]);

		if ((size_t)(s->end - s->p) >= n && !memcmp(s->p, lits[i], n)) {
			s->p += n;
			goto end;
		}
	}
	if (*s->p == '-')
		s->p++;
	digits = s->p;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	if (s->p == digits || s->p - digits > 18 || (*digits == '0' && s->p - digits > 1))
		return -EINVAL;
end:
	/* "1.5", "1e3", "truex": not plain */
	if (s->p < s->end &&
	    (isalnum((unsigned char)*s->p) || *s->p == '.' || *s->p == '+' || *s->p == '-'))
		return -EINVAL;
	return s->p > start ? 0 : -EINVAL;
}

/* jscan__plain()'s walk of one value (white space before it skipped). */
static int jscan__plain_value(struct jscan *s, int depth)
{
	struct {
		const char *p;
		size_t len;
	} keys[JSCAN_MAX_MEMBERS];
	size_t n = 0;
	bool obj;
	char close;

	jscan__ws(s);
	if (s->p >= s->end)
		return -EINVAL;
	if (*s->p == '"')
		return jscan__plain_string(s);
	if (*s->p != '{' && *s->p != '[')
		return jscan__plain_scalar(s);
	if (depth >= YAMLJSON_MAX_DEPTH)
		return -EINVAL;
	obj = *s->p == '{';
	close = obj ? '}' : ']';
	s->p++;
	jscan__ws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 0;
	}
	for (;;) {
		if (obj) {
			const char *k = s->p;

			if (n == JSCAN_MAX_MEMBERS || jscan__plain_string(s))
				return -EINVAL;
			keys[n].p = k + 1;
			keys[n].len = (size_t)(s->p - k - 2);
			for (size_t j = 0; j < n; j++) /* a duplicate key: libyaml names it */
				if (keys[j].len == keys[n].len &&
				    !memcmp(keys[j].p, keys[n].p, keys[n].len))
					return -EINVAL;
			n++;
			jscan__ws(s);
			if (s->p >= s->end || *s->p != ':')
				return -EINVAL;
			s->p++;
		}
		if (jscan__plain_value(s, depth + 1))
			return -EINVAL;
		jscan__ws(s);
		if (s->p >= s->end)
			return -EINVAL;
		if (*s->p == close) {
			s->p++;
			return 0;
		}
		if (*s->p != ',')
			return -EINVAL;
		s->p++;
		jscan__ws(s);
	}
}

int jscan__plain(const char *text, size_t len)
{
	struct jscan s = { text, text + len };

	if (memchr(text, '\t', len) || jscan__plain_value(&s, 0))
		return -EINVAL;
	jscan__ws(&s);
	return s.p == s.end ? 0 : -EINVAL;
}

int jscan__parse(const char *text, struct jscan_range r, const char *name, struct json_object **out)
{
	char *copy;
	int err;

	/* json-c waits for more digits after a number that ends the input:
	 * a scalar is parsed from a NUL-terminated copy */
	if (r.len && (text[r.off] == '{' || text[r.off] == '[' || text[r.off] == '"'))
		return yaml__parse_json(text + r.off, r.len, name, out);
	copy = malloc(r.len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, text + r.off, r.len);
	copy[r.len] = '\0';
	err = yaml__parse_json(copy, r.len + 1, name, out);
	free(copy);
	return err;
}

#define JSCAN_RAW_MAGIC 0x6a736372u /* "jscr" */

struct jscan_raw {
	uint32_t magic;
	char *buf;
	size_t len;
	struct jscan_range r;
};

static void jscan__raw_free(struct json_object *o, void *ud)
{
	struct jscan_raw *raw = ud;

	(void)o;
	free(raw->buf);
	free(raw);
}

struct json_object *jscan__raw_new(char *buf, size_t len, struct jscan_range r)
{
	struct json_object *o = json_object_new_object();
	struct jscan_raw *raw = malloc(sizeof(*raw));

	if (!o || !raw) {
		json_object_put(o);
		free(raw);
		free(buf);
		return NULL;
	}
	*raw = (struct jscan_raw){ .magic = JSCAN_RAW_MAGIC, .buf = buf, .len = len, .r = r };
	json_object_set_userdata(o, raw, jscan__raw_free);
	return o;
}

bool jscan__raw_get(struct json_object *o, const char **text, size_t *len, struct jscan_range *r)
{
	struct jscan_raw *raw;

	if (!json_object_is_type(o, json_type_object))
		return false;
	raw = json_object_get_userdata(o);
	if (!raw || raw->magic != JSCAN_RAW_MAGIC)
		return false;
	*text = raw->buf;
	*len = raw->len;
	*r = raw->r;
	return true;
}

bool jscan__plain_key(const char *text, const struct jscan_member *m, size_t i, char *key)
{
	if (m[i].key_escaped || m[i].key.len > JSCAN_KEY_MAX ||
	    memchr(text + m[i].key.off, '\0', m[i].key.len))
		return false;
	for (size_t j = 0; j < i; j++)
		if (m[j].key.len == m[i].key.len &&
		    !memcmp(text + m[j].key.off, text + m[i].key.off, m[i].key.len))
			return false;
	memcpy(key, text + m[i].key.off, m[i].key.len);
	key[m[i].key.len] = '\0';
	return true;
}

int jscan__parse_lazy(char *buf, size_t len, const char *lazy, const char *name,
		      struct json_object **out, bool *taken)
{
	struct jscan_member *m = NULL;
	struct json_object *root, *v;
	char key[JSCAN_KEY_MAX + 1];
	size_t n, lazy_i = SIZE_MAX;
	int err;

	*out = NULL;
	*taken = false;
	root = json_object_new_object();
	if (!root)
		return -EAGAIN;
	err = jscan__members(buf, (struct jscan_range){ 0, len }, JSCAN_MAX_MEMBERS, &m, &n);
	for (size_t i = 0; !err && i < n; i++) {
		if (!jscan__plain_key(buf, m, i, key)) {
			err = -EAGAIN;
		} else if (!strcmp(key, lazy) && buf[m[i].val.off] == '{') {
			lazy_i = i; /* added last: it takes buf */
		} else if (jscan__parse(buf, m[i].val, name, &v)) {
			err = -EAGAIN;
		} else if (json_object_object_add(root, key, v)) {
			json_object_put(v);
			err = -EAGAIN;
		}
	}
	if (!err && lazy_i != SIZE_MAX) {
		v = jscan__raw_new(buf, len, m[lazy_i].val);
		*taken = true; /* freed by jscan__raw_new() on failure */
		if (!v || json_object_object_add(root, lazy, v)) {
			json_object_put(v);
			err = -ENOMEM;
		}
	}
	free(m);
	if (err) {
		json_object_put(root);
		return *taken ? -ENOMEM : -EAGAIN;
	}
	*out = root;
	return 0;
}
