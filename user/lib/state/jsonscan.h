/* SPDX-License-Identifier: MIT */
/*
 * jsonscan.h - a JSON text's structure without building its tree: the
 * members of an object and the elements of an array as byte ranges, so a
 * reader can hand json-c one piece at a time. json-c's tree of a whole
 * 30k-service state (or `apply` request) is ~360 MB; one service's is a
 * few KiB.
 *
 * Contract: the scan checks structure only (strings closed, no control
 * characters in them, brackets matched, commas and colons in place,
 * nesting at most YAMLJSON_MAX_DEPTH); it costs time linear in the text
 * and memory linear in the ranges it returns, at most max of them. Every
 * range is meant to be parsed with jscan__parse() (json-c, strict, with
 * yaml__parse_json()'s checks), which checks the rest. -EINVAL: the text
 * is not what was asked for or is malformed; no message is set, callers
 * fall back to the whole-text reader for the error it reports.
 */
#ifndef SLUICE_JSONSCAN_H
#define SLUICE_JSONSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

struct jscan_range {
	size_t off, len;
};

struct jscan_member {
	struct jscan_range key; /* between the quotes, escapes not decoded */
	struct jscan_range val;
	bool key_escaped; /* the key holds a backslash */
};

/* The members of the object that text[r] holds (white space around it
 * allowed). At most max members; more: -E2BIG. *v is malloc'ed. */
int jscan__members(const char *text, struct jscan_range r, size_t max, struct jscan_member **v,
		   size_t *n);
/* The elements of the array that text[r] holds. *n counts every element;
 * only the first max are stored (*v malloc'ed), so a caller can name the
 * count it refuses without memory in proportion to it. */
int jscan__elements(const char *text, struct jscan_range r, size_t max, struct jscan_range **v,
		    size_t *n);
/* jscan__elements() of a value jscan__members() or jscan__elements()
 * returned, which checked its structure already: no second check walk
 * (a 30k-service state is 35 MB, one walk ~35 ms). */
int jscan__elements_checked(const char *text, struct jscan_range r, size_t max,
			    struct jscan_range **v, size_t *n);
/* The value text[r] into a json-c tree with yaml__parse_json()'s rules;
 * errors name "name" and a place inside the range. */
int jscan__parse(const char *text, struct jscan_range r, const char *name,
		 struct json_object **out);

/* A placeholder object standing for buf[r] not parsed yet, buf being the
 * whole text (len bytes) it came from; it owns buf (freed with free()
 * when the object is put). NULL without memory (buf is then freed). */
struct json_object *jscan__raw_new(char *buf, size_t len, struct jscan_range r);
/* The text a placeholder stands for: false for any other object. */
bool jscan__raw_get(struct json_object *o, const char **text, size_t *len, struct jscan_range *r);

/* 0 when text is one JSON value that libyaml's reader (yaml__load()) and
 * json-c read as the same tree: no duplicate keys (libyaml names them,
 * json-c keeps the last), no backslash escapes, strings well-formed UTF-8, at most JSCAN_MAX_MEMBERS
 * members per object, numbers only integers of at most 18 digits, literals
 * true/false/null, no tab anywhere, nesting below YAMLJSON_MAX_DEPTH.
 * -EINVAL otherwise (then read it with yaml__load()). Linear time, no
 * allocation (a 1 KiB key list per nesting level on the stack). */
int jscan__plain(const char *text, size_t len);

/* Readers of a top level stop at this many members and keys this long
 * (the whole-text reader then takes over). */
#define JSCAN_MAX_MEMBERS 64
#define JSCAN_KEY_MAX 64

/* The key of m[i], NUL-terminated in key (JSCAN_KEY_MAX + 1 bytes):
 * false for one these readers leave to json-c (escaped, too long, a
 * duplicate of an earlier member, which json-c would collapse). */
bool jscan__plain_key(const char *text, const struct jscan_member *m, size_t i, char *key);

/* The object buf[0, len) as a tree in which the member named lazy, when
 * it is an object, is a jscan__raw_new() placeholder: a request of 30k
 * services is parsed one service at a time by the op that reads it.
 * 0: *out set; *taken: buf now belongs to *out. -EAGAIN: parse buf with
 * yaml__parse_json() instead (not an object, malformed, escaped or
 * duplicate keys; buf untouched). -ENOMEM: buf was taken and is freed. */
int jscan__parse_lazy(char *buf, size_t len, const char *lazy, const char *name,
		      struct json_object **out, bool *taken);

#endif /* SLUICE_JSONSCAN_H */
