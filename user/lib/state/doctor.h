/* SPDX-License-Identifier: MIT */
/*
 * doctor.h - the verdict rules of `meshctl doctor` that need no kernel:
 * ok/warn/fail names and their order, map fill against capacity, clock
 * skew, and the drift between the desired state and what the maps hold.
 *
 * Contract: pure functions over their arguments (meshd's doctor op and
 * meshctl both use them, unit tests pin them down). A drift text names the
 * first DOCTOR_DRIFT_SHOWN differences by service reference and backend
 * address, so an operator can go straight to `meshctl service get`.
 */
#ifndef SLUICE_DOCTOR_H
#define SLUICE_DOCTOR_H

#include <stddef.h>
#include <linux/types.h>

struct desired;

enum doctor_status {
	DOCTOR_OK = 0,
	DOCTOR_WARN = 1,
	DOCTOR_FAIL = 2,
};

/* Map fill: warn from 80% of the capacity on, fail from 95% on (the
 * alert rules of scripts/prometheus use the same figures). */
#define DOCTOR_FILL_WARN_PCT 80
#define DOCTOR_FILL_FAIL_PCT 95
/* meshd's clock vs meshctl's: more than this apart is a warning. */
#define DOCTOR_CLOCK_SKEW_S 2.0
/* Differences named in a drift text; the rest are counted. */
#define DOCTOR_DRIFT_SHOWN 3

/* "ok", "warn", "fail" */
const char *doctor__status_name(enum doctor_status s);
/* Append {"name", "status", "detail" (printf), "hint" (null when ok or
 * none)} to arr, the one shape of a check in meshctl and meshd; a check
 * that cannot be allocated is left out. */
struct json_object;
void doctor__add(struct json_object *arr, const char *name, enum doctor_status st, const char *hint,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The reverse; -1 for anything else. */
int doctor__status_parse(const char *text);
/* The worse of the two. */
enum doctor_status doctor__worst(enum doctor_status a, enum doctor_status b);
/* capacity 0 (unknown) is ok. */
enum doctor_status doctor__fill(__u64 entries, __u64 capacity);
/* Two clocks, in seconds. */
enum doctor_status doctor__clock(double mine, double theirs);
/*
 * doctor__drift() - differences between want (the desired state) and have
 * (the maps read back, desired__from_maps()): services missing or extra,
 * backends missing or extra, weights that differ. Returns their number
 * (-ENOMEM when out of memory); buf gets the first DOCTOR_DRIFT_SHOWN,
 * "; "-separated ("" when none). One sorted merge: linear in services.
 */
int doctor__drift(const struct desired *want, const struct desired *have, char *buf, size_t len);

#endif /* SLUICE_DOCTOR_H */
