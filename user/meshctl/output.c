// SPDX-License-Identifier: MIT
/*
 * output.c - errors, JSON, aligned tables and human units for meshctl.
 *
 * Contract: see output.h. Tables are built in memory and printed at once,
 * so a command that fails half-way prints its error alone, never a table
 * fragment followed by an error.
 */
#define _GNU_SOURCE /* vasprintf */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshctl.h"
#include "output.h"

#define TABLE_GAP 2 /* spaces between columns */

struct table {
	unsigned int ncols;
	unsigned int ncells; /* cells filled, header excluded */
	unsigned int cap;
	char **cells; /* row-major, header row first */
	bool *right;
};

static bool error_printed;

bool out__json_mode(void)
{
	return g_opts.format == OUT_JSON;
}

int out__error(const char *fmt, ...)
{
	struct json_object *obj;
	char msg[1024];
	va_list ap;

	if (error_printed)
		return -1;
	error_printed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (!out__json_mode()) {
		fflush(stdout);
		fprintf(stderr, "Error: %s\n", msg);
		return -1;
	}
	/* One line, exactly {"error": "..."}: json-c only escapes the text. */
	obj = json_object_new_string(msg);
	printf("{\"error\": %s}\n",
	       json_object_to_json_string_ext(obj, JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
	return -1;
}

void out__json(struct json_object *obj)
{
	int flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		    JSON_C_TO_STRING_NOSLASHESCAPE;

	/* A write command whose agent answered with nothing still prints a
	 * document, so `meshctl -o json ... | jq` never sees empty input. */
	if (!obj) {
		printf("{}\n");
		return;
	}
	printf("%s\n", json_object_to_json_string_ext(obj, flags));
}

void *out__xalloc(void *p)
{
	if (!p) {
		out__error("out of memory");
		exit(1);
	}
	return p;
}

char *out__bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n;
	unsigned int u = 0;

	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", n);
		return buf;
	}
	v /= 1024;
	/* 1023.96 KiB would print as "1024.0 KiB": move up a unit first. */
	while (v >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

char *out__duration(uint64_t s, char *buf, size_t len)
{
	/* Two units at most, the way people say it: "3m12s", "2h05m". */
	if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
	return buf;
}

char *out__seconds(double s, char *buf, size_t len)
{
	if (s <= 0)
		snprintf(buf, len, "0s");
	else if (s < 1e-3)
		snprintf(buf, len, "%.0fus", s * 1e6);
	else if (s < 1)
		snprintf(buf, len, "%.1fms", s * 1e3);
	else if (s < 60)
		snprintf(buf, len, "%.2fs", s);
	else
		out__duration((uint64_t)s, buf, len);
	return buf;
}

char *out__rate(double v, char *buf, size_t len)
{
	if (v < 0.05)
		snprintf(buf, len, "0");
	else if (v < 100)
		snprintf(buf, len, "%.1f", v);
	else if (v < 10000)
		snprintf(buf, len, "%.0f", v);
	else if (v < 1e7)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else
		snprintf(buf, len, "%.1fM", v / 1e6);
	return buf;
}

char *out__percent(uint64_t part, uint64_t whole, char *buf, size_t len)
{
	if (!whole)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", 100.0 * (double)part / (double)whole);
	return buf;
}

struct table *table__new(const char *const *headers)
{
	struct table *t = out__xalloc(calloc(1, sizeof(*t)));
	unsigned int i;

	while (headers[t->ncols])
		t->ncols++;
	t->cap = t->ncols * 16;
	t->cells = out__xalloc(calloc(t->cap, sizeof(*t->cells)));
	t->right = out__xalloc(calloc(t->ncols, sizeof(*t->right)));
	for (i = 0; i < t->ncols; i++) {
		const char *h = headers[i];

		if (h[0] == '>') {
			t->right[i] = true;
			h++;
		}
		t->cells[i] = out__xalloc(strdup(h));
	}
	return t;
}

void table__cell(struct table *t, const char *fmt, ...)
{
	unsigned int idx = t->ncols + t->ncells;
	va_list ap;
	int n;

	if (idx >= t->cap) {
		t->cap *= 2;
		t->cells = out__xalloc(realloc(t->cells, t->cap * sizeof(*t->cells)));
	}
	va_start(ap, fmt);
	n = vasprintf(&t->cells[idx], fmt, ap);
	va_end(ap);
	if (n < 0)
		out__xalloc(NULL);
	t->ncells++;
}

unsigned int table__rows(const struct table *t)
{
	return (t->ncells + t->ncols - 1) / t->ncols;
}

void table__print(struct table *t)
{
	unsigned int rows = 1 + table__rows(t), r, c;
	size_t *width = out__xalloc(calloc(t->ncols, sizeof(*width)));

	for (r = 0; r < rows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			size_t w = cell ? strlen(cell) : 0;

			if (w > width[c])
				width[c] = w;
		}
	}
	for (r = 0; r < rows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			bool last = c + 1 == t->ncols;

			if (!cell)
				cell = "";
			if (t->right[c])
				printf("%*s", (int)width[c], cell);
			else if (last)
				/* no trailing blanks: diffs and grep stay clean */
				printf("%s", cell);
			else
				printf("%-*s", (int)width[c], cell);
			if (!last)
				printf("%*s", TABLE_GAP, "");
		}
		printf("\n");
	}
	free(width);
}

void table__free(struct table *t)
{
	unsigned int i;

	if (!t)
		return;
	for (i = 0; i < t->ncols + t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->right);
	free(t);
}

struct json_object *js__get(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

const char *js__str(struct json_object *o, const char *key, const char *dflt)
{
	struct json_object *v = js__get(o, key);

	if (!v || json_object_is_type(v, json_type_null))
		return dflt;
	if (json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	/* a number where text was expected still prints as itself */
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

uint64_t js__u64(struct json_object *o, const char *key)
{
	struct json_object *v = js__get(o, key);

	if (!v)
		return 0;
	switch (json_object_get_type(v)) {
	case json_type_int:
		return json_object_get_uint64(v);
	case json_type_double: {
		double d = json_object_get_double(v);

		return d > 0 ? (uint64_t)(d + 0.5) : 0;
	}
	case json_type_boolean:
		return json_object_get_boolean(v);
	default:
		return 0;
	}
}

size_t js__len(struct json_object *arr)
{
	if (!arr || !json_object_is_type(arr, json_type_array))
		return 0;
	return json_object_array_length(arr);
}

struct json_object *js__idx(struct json_object *arr, size_t i)
{
	return json_object_array_get_idx(arr, i);
}

/* IPv6 addresses get brackets so the port stays readable. */
static const char *addr_port(const char *addr, uint64_t port, char *buf, size_t len)
{
	snprintf(buf, len, strchr(addr, ':') ? "[%s]:%" PRIu64 : "%s:%" PRIu64, addr, port);
	return buf;
}

const char *js__svc_ref(struct json_object *svc, char *buf, size_t len)
{
	char ap[80];

	snprintf(buf, len, "%s/%s",
		 addr_port(js__str(svc, "vip", "?"), js__u64(svc, "port"), ap, sizeof(ap)),
		 js__str(svc, "protocol", "?"));
	return buf;
}

const char *js__backend_ref(struct json_object *be, char *buf, size_t len)
{
	return addr_port(js__str(be, "address", "?"), js__u64(be, "port"), buf, len);
}
