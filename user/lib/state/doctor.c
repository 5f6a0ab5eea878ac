// SPDX-License-Identifier: MIT
/*
 * doctor.c - verdict rules of `meshctl doctor` (see doctor.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desired.h"
#include "doctor.h"

void doctor__add(struct json_object *arr, const char *name, enum doctor_status st, const char *hint,
		 const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char detail[1024];
	va_list ap;

	if (!o)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "status", json_object_new_string(doctor__status_name(st)));
	json_object_object_add(o, "detail", json_object_new_string(detail));
	json_object_object_add(o, "hint",
			       st == DOCTOR_OK || !hint ? NULL : json_object_new_string(hint));
	if (json_object_array_add(arr, o))
		json_object_put(o);
}

static const char *const doctor_names[] = { "ok", "warn", "fail" };

const char *doctor__status_name(enum doctor_status s)
{
	return (unsigned int)s < 3 ? doctor_names[s] : "?";
}

int doctor__status_parse(const char *text)
{
	for (int i = 0; text && i < 3; i++)
		if (!strcmp(text, doctor_names[i]))
			return i;
	return -1;
}

enum doctor_status doctor__worst(enum doctor_status a, enum doctor_status b)
{
	return a > b ? a : b;
}

enum doctor_status doctor__fill(__u64 entries, __u64 capacity)
{
	/* entries * 100 cannot overflow for any map size the kernel allows */
	if (!capacity)
		return DOCTOR_OK;
	if (entries * 100 >= capacity * DOCTOR_FILL_FAIL_PCT)
		return DOCTOR_FAIL;
	if (entries * 100 >= capacity * DOCTOR_FILL_WARN_PCT)
		return DOCTOR_WARN;
	return DOCTOR_OK;
}

enum doctor_status doctor__clock(double mine, double theirs)
{
	double d = mine > theirs ? mine - theirs : theirs - mine;

	return d > DOCTOR_CLOCK_SKEW_S ? DOCTOR_WARN : DOCTOR_OK;
}

struct drift {
	char *buf;
	size_t len, off;
	unsigned int n;
};

static void drift__add(struct drift *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void drift__add(struct drift *d, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (d->n++ >= DOCTOR_DRIFT_SHOWN || d->off >= d->len)
		return;
	if (d->n > 1) {
		w = snprintf(d->buf + d->off, d->len - d->off, "; ");
		d->off += w > 0 ? (size_t)w : 0;
		if (d->off >= d->len)
			return;
	}
	va_start(ap, fmt);
	w = vsnprintf(d->buf + d->off, d->len - d->off, fmt, ap);
	va_end(ap);
	d->off += w > 0 ? (size_t)w : 0;
}

static const struct desired_backend *drift__find_be(const struct desired_service *svc,
						    const struct desired_backend *b)
{
	for (__u32 i = 0; svc && i < svc->nbackends; i++)
		if (svc->backends[i].port == b->port &&
		    sluice_addr__eq(&svc->backends[i].addr, &b->addr))
			return &svc->backends[i];
	return NULL;
}

/* The backends of one service present on both sides. */
static void drift__backends(struct drift *d, const struct desired_service *want,
			    const struct desired_service *have)
{
	char ref[DESIRED_SVC_REF_LEN], be[SLUICE_ADDRPORT_STRLEN];
	const struct desired_backend *o;

	desired__svc_ref(want, ref, sizeof(ref));
	for (__u32 i = 0; i < want->nbackends; i++) {
		const struct desired_backend *b = &want->backends[i];

		sluice_addr__str_port(&b->addr, b->port, be, sizeof(be));
		o = drift__find_be(have, b);
		if (!o)
			drift__add(d, "%s: backend %s missing from the maps", ref, be);
		else if (o->weight != b->weight)
			drift__add(d, "%s: backend %s has weight %u in the maps, %u desired", ref,
				   be, o->weight, b->weight);
	}
	for (__u32 i = 0; i < have->nbackends; i++) {
		const struct desired_backend *b = &have->backends[i];

		if (drift__find_be(want, b))
			continue;
		sluice_addr__str_port(&b->addr, b->port, be, sizeof(be));
		drift__add(d, "%s: backend %s in the maps is not desired", ref, be);
	}
}

static int drift__cmp(const void *a, const void *b)
{
	return desired__cmp_key(*(const struct desired_service *const *)a,
				*(const struct desired_service *const *)b);
}

/* Pointers to d's services in key order; NULL when out of memory. */
static const struct desired_service **drift__sorted(const struct desired *d)
{
	const struct desired_service **v = calloc(d->nservices + 1, sizeof(*v));

	if (!v)
		return NULL;
	for (__u32 i = 0; i < d->nservices; i++)
		v[i] = &d->services[i];
	if (d->nservices)
		qsort(v, d->nservices, sizeof(*v), drift__cmp);
	return v;
}

int doctor__drift(const struct desired *want, const struct desired *have, char *buf, size_t len)
{
	const struct desired_service **w = drift__sorted(want), **h = drift__sorted(have);
	struct drift d = { .buf = buf, .len = len };
	char ref[DESIRED_SVC_REF_LEN];
	__u32 i = 0, j = 0;
	int c;

	if (len)
		buf[0] = '\0';
	if (!w || !h) {
		free(w);
		free(h);
		return -ENOMEM;
	}
	/* one merge walk: sorted both, so 32k services stay linear */
	while (i < want->nservices || j < have->nservices) {
		if (i == want->nservices)
			c = 1;
		else if (j == have->nservices)
			c = -1;
		else
			c = desired__cmp_key(w[i], h[j]);
		if (!c) {
			drift__backends(&d, w[i++], h[j++]);
		} else if (c < 0) {
			desired__svc_ref(w[i++], ref, sizeof(ref));
			drift__add(&d, "service %s missing from the maps", ref);
		} else {
			desired__svc_ref(h[j++], ref, sizeof(ref));
			drift__add(&d, "service %s in the maps is not desired", ref);
		}
	}
	free(w);
	free(h);
	return d.n > INT_MAX ? INT_MAX : (int)d.n;
}
