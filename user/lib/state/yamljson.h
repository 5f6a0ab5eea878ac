/* SPDX-License-Identifier: MIT */
/*
 * yamljson.h - configuration text (YAML or JSON) into json-c trees, so every
 * consumer (desired state, meshd's config file) validates one shape.
 *
 * Contract: YAML is read with libyaml's document loader. Plain scalars
 * become ints (decimal, fits in int64), doubles (decimal with '.' or an
 * exponent), true/false, null (null, ~ or nothing), else strings; quoted
 * scalars always stay strings. Mapping keys must be scalars and unique.
 * Numbers with a leading zero (080: octal in YAML 1.1, decimal in 1.2) stay
 * strings so the validator rejects them. Errors return -EINVAL with
 * "NAME:LINE:COLUMN: problem" in sluice__errmsg(); an empty document
 * returns 0 with *out = NULL.
 *
 * Both readers refuse, with the place named: nesting deeper than
 * YAMLJSON_MAX_DEPTH collections (checked while reading, so a hostile text
 * costs time linear in its size), a NUL character in a string or key,
 * invalid UTF-8, and (JSON) numbers with leading zeros.
 * (Named yamljson.h, not yaml.h: -Iuser/lib would shadow libyaml's <yaml.h>.)
 */
#ifndef SLUICE_YAMLJSON_H
#define SLUICE_YAMLJSON_H

#include <stddef.h>
#include <json-c/json.h>

/* Config files nest four or five levels; 64 leaves room and keeps the
 * readers' per-level work bounded. */
#define YAMLJSON_MAX_DEPTH 64

/* YAML (one document; a second one is an error). name labels errors. */
int yaml__parse(const char *text, size_t len, const char *name, struct json_object **out);
/* Strict JSON with json-c: the whole text must be one value. */
int yaml__parse_json(const char *text, size_t len, const char *name, struct json_object **out);
/* Text that starts with '{' or '[' is JSON or YAML flow style: read with
 * libyaml (which catches duplicate keys), and when libyaml cannot parse it,
 * with json-c, whose error is reported. Anything else is YAML. */
int yaml__load(const char *text, size_t len, const char *name, struct json_object **out);
/* Read a whole file (at most max_len bytes) into a NUL-terminated buffer. */
int yaml__read_file(const char *path, size_t max_len, char **text, size_t *len);

#endif /* SLUICE_YAMLJSON_H */
