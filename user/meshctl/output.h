/* SPDX-License-Identifier: MIT */
/*
 * output.h - everything meshctl prints: errors, JSON, aligned tables and
 * human forms of numbers.
 *
 * Contract: in table mode errors go to stderr as "Error: <text>"; in JSON
 * mode they go to stdout as {"error": "<text>"} so a script reading stdout
 * always gets one JSON document. Only the first error of a run is printed.
 * JSON output carries exact numbers; tables use human units for bytes and
 * durations.
 */
#ifndef MESHCTL_OUTPUT_H
#define MESHCTL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

/* Reports the error (once per run) and returns -1. */
int out__error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool out__json_mode(void);
/* Pretty-printed document and a newline on stdout. */
void out__json(struct json_object *obj);
/* Out of memory is not worth a recovery path in a CLI: report and exit 1. */
void *out__xalloc(void *p);

/* "512 B", "1.2 KiB", "3.4 GiB" */
char *out__bytes(uint64_t n, char *buf, size_t len);
/* "45s", "3m12s", "2h05m", "3d04h" */
char *out__duration(uint64_t seconds, char *buf, size_t len);
/* Sub-second precision for RTTs and connection lifetimes: "850us",
 * "12.3ms", "1.25s", then as out__duration() from a minute on. */
char *out__seconds(double s, char *buf, size_t len);
/* A rate per second: "0", "3.5", "120", "12.3k", "4.1M" */
char *out__rate(double per_s, char *buf, size_t len);
/* "42.0%" of whole, "-" when whole is 0 */
char *out__percent(uint64_t part, uint64_t whole, char *buf, size_t len);
#define OUT_NUM_LEN 32

/*
 * Tables: a header row, then rows of cells; columns are padded to their
 * widest cell. A header starting with '>' makes its column right-aligned
 * (numbers), the '>' is not printed. Cells fill the current row left to
 * right; a full row starts the next one.
 */
struct table;
struct table *table__new(const char *const *headers); /* NULL-terminated */
void table__cell(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void table__print(struct table *t);
void table__free(struct table *t);
unsigned int table__rows(const struct table *t);

/* Lenient readers of the agent's responses: a missing or mistyped field
 * reads as dflt / 0, so an older or newer agent still prints. */
struct json_object *js__get(struct json_object *o, const char *key);
const char *js__str(struct json_object *o, const char *key, const char *dflt);
uint64_t js__u64(struct json_object *o, const char *key);
size_t js__len(struct json_object *arr); /* 0 when not an array */
struct json_object *js__idx(struct json_object *arr, size_t i);
/* "10.96.0.10:80/tcp" from a SERVICE's vip, port and protocol */
const char *js__svc_ref(struct json_object *svc, char *buf, size_t len);
/* "10.0.1.2:8080" / "[fd00::1:2]:8080" from a backend's address and port */
const char *js__backend_ref(struct json_object *be, char *buf, size_t len);

#endif /* MESHCTL_OUTPUT_H */
