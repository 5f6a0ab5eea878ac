// SPDX-License-Identifier: MIT
/*
 * health.c - passive outlier detection (#14) as userspace sees it: the
 * spec <-> svc_health translation, the per-backend view listings show,
 * the health counters and names, and the consumer of the kernel's
 * health_events ring buffer.
 *
 * Contract: the kernel decides ejections (bpf/lib/health.h); nothing here
 * writes backend_health. Times in the maps are bpf_ktime_get_ns()
 * (CLOCK_MONOTONIC); what people see is wall clock, converted here once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"

static const char *const hcnt_names[SLUICE_HCNT__MAX] = {
#define X(name, str, help) [SLUICE_HCNT_##name] = str,
	SLUICE_HEALTH_COUNTERS(X)
#undef X
};

static const char *const hcnt_help[SLUICE_HCNT__MAX] = {
#define X(name, str, help) [SLUICE_HCNT_##name] = help,
	SLUICE_HEALTH_COUNTERS(X)
#undef X
};

static const char *const reason_names[SLUICE_HEALTH_R__MAX] = {
#define X(name, str, help) [SLUICE_HEALTH_R_##name] = str,
	SLUICE_HEALTH_REASONS(X)
#undef X
};

static const char *const reason_help[SLUICE_HEALTH_R__MAX] = {
#define X(name, str, help) [SLUICE_HEALTH_R_##name] = help,
	SLUICE_HEALTH_REASONS(X)
#undef X
};

const char *sluice__health_counter_name(enum sluice_health_counter c)
{
	return (unsigned int)c < SLUICE_HCNT__MAX ? hcnt_names[c] : "unknown";
}

const char *sluice__health_counter_help(enum sluice_health_counter c)
{
	return (unsigned int)c < SLUICE_HCNT__MAX ? hcnt_help[c] : "unknown counter";
}

const char *sluice__health_reason_name(enum sluice_health_reason r)
{
	return (unsigned int)r < SLUICE_HEALTH_R__MAX ? reason_names[r] : "unknown";
}

const char *sluice__health_reason_help(enum sluice_health_reason r)
{
	return (unsigned int)r < SLUICE_HEALTH_R__MAX ? reason_help[r] : "unknown reason";
}

const char *sluice__health_event_name(__u8 kind)
{
	switch (kind) {
	case SLUICE_HEALTH_EV_EJECTED:
		return "ejected";
	case SLUICE_HEALTH_EV_REEJECTED:
		return "reejected";
	case SLUICE_HEALTH_EV_RESTORED:
		return "restored";
	case SLUICE_HEALTH_EV_MAX_EJECTED:
		return "max_ejected";
	}
	return "unknown";
}

const char *sluice_be_health__str(enum sluice_be_health h)
{
	static const char *const names[SLUICE_BEH__MAX] = {
		[SLUICE_BEH_HEALTHY] = "healthy",     [SLUICE_BEH_EJECTED] = "ejected",
		[SLUICE_BEH_PROBATION] = "probation", [SLUICE_BEH_UNHEALTHY] = "unhealthy",
		[SLUICE_BEH_DRAINING] = "draining",
	};

	return (unsigned int)h < SLUICE_BEH__MAX ? names[h] : "unknown";
}

void sluice__set_outlier_detection(struct sluice *s, bool on)
{
	s->outlier_off = !on;
}

bool sluice__outlier_detection(const struct sluice *s)
{
	return !s->outlier_off;
}

void sluice_outlier__to_kernel(const struct sluice_outlier_spec *o, bool node_off,
			       struct sluice_svc_health *out)
{
	memset(out, 0, sizeof(*out));
	out->threshold = o->consecutive_failures ?: SLUICE_OUTLIER_THRESHOLD_DEFAULT;
	out->max_ejected_pct = o->max_ejected_pct ?: SLUICE_OUTLIER_MAX_EJECTED_PCT_DEFAULT;
	out->panic_pct = o->panic_pct == SLUICE_OUTLIER_PANIC_NEVER ?
				 0 :
			 o->panic_pct ?:
					SLUICE_OUTLIER_PANIC_PCT_DEFAULT;
	out->base_ms = o->base_ejection_ms ?: SLUICE_OUTLIER_BASE_MS_DEFAULT;
	out->max_ms = o->max_ejection_ms ?: SLUICE_OUTLIER_MAX_MS_DEFAULT;
	/* Off keeps the rest of the config: an entry written by us always has
	 * base_ms != 0, unlike one never written (from_kernel tells them
	 * apart). The kernel looks at threshold only. */
	if (o->disabled || node_off)
		out->threshold = 0;
}

/* v, or 0 when it is the default: the canonical spec names non-defaults. */
static __u32 outlier__nondefault(__u32 v, __u32 def)
{
	return v == def ? 0 : v;
}

void sluice_outlier__from_kernel(const struct sluice_svc_health *h, struct sluice_outlier_spec *out)
{
	memset(out, 0, sizeof(*out));
	if (!h->threshold) {
		out->disabled = true;
		return;
	}
	out->consecutive_failures =
		outlier__nondefault(h->threshold, SLUICE_OUTLIER_THRESHOLD_DEFAULT);
	out->max_ejected_pct =
		outlier__nondefault(h->max_ejected_pct, SLUICE_OUTLIER_MAX_EJECTED_PCT_DEFAULT);
	out->panic_pct =
		!h->panic_pct ? SLUICE_OUTLIER_PANIC_NEVER :
				outlier__nondefault(h->panic_pct, SLUICE_OUTLIER_PANIC_PCT_DEFAULT);
	out->base_ejection_ms = outlier__nondefault(h->base_ms, SLUICE_OUTLIER_BASE_MS_DEFAULT);
	out->max_ejection_ms = outlier__nondefault(h->max_ms, SLUICE_OUTLIER_MAX_MS_DEFAULT);
}

bool sluice_outlier__same(const struct sluice_outlier_spec *a, const struct sluice_outlier_spec *b)
{
	struct sluice_svc_health x, y;

	sluice_outlier__to_kernel(a, false, &x);
	sluice_outlier__to_kernel(b, false, &y);
	/* disabled: the other settings do not reach the kernel's decisions */
	if (!x.threshold && !y.threshold)
		return true;
	return !memcmp(&x, &y, sizeof(x));
}

__u64 sluice__mono_to_wall_ms(__u64 mono_ns)
{
	struct timespec mono, wall;
	__s64 now_mono_ns, delta_ns, wall_ms;

	if (!mono_ns)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &wall);
	now_mono_ns = (__s64)mono.tv_sec * 1000000000 + mono.tv_nsec;
	delta_ns = (__s64)mono_ns - now_mono_ns;
	wall_ms = (__s64)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 + delta_ns / 1000000;
	return wall_ms > 0 ? (__u64)wall_ms : 0;
}

__u64 health__now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (__u64)t.tv_sec * 1000000000 + t.tv_nsec;
}

int sluice__svc_health(struct sluice *s, __u32 svc_id, struct sluice_svc_health *out)
{
	int err;

	sluice__clear_err();
	err = bpf_map_lookup_elem(s->fds[SLUICE_MAP_SVC_HEALTH], &svc_id, out);
	if (err)
		return maps__err(err, "svc_health", "lookup", "of a service");
	return 0;
}

void sluice__backend_health_of(const struct sluice_backend_health *h,
			       const struct sluice_backend *be, const struct sluice_svc_health *svc,
			       __u64 now_ns, struct sluice_backend_health_view *out)
{
	memset(out, 0, sizeof(*out));
	out->raw = *h;
	out->fails = h->fails;
	out->ejections = h->ejections;
	out->reason = h->reason;
	out->last_fail_ms = sluice__mono_to_wall_ms(h->last_fail_ns);
	if (be && be->state == SLUICE_BE_UNHEALTHY)
		out->state = SLUICE_BEH_UNHEALTHY;
	else if (be && (be->state == SLUICE_BE_DRAINING || !be->weight))
		out->state = SLUICE_BEH_DRAINING;
	else if (!(h->flags & SLUICE_BH_F_EJECTED) || (svc && !svc->threshold))
		out->state = SLUICE_BEH_HEALTHY; /* detection off: picks ignore it */
	else if (h->ejected_until_ns > now_ns)
		out->state = SLUICE_BEH_EJECTED;
	else
		out->state = SLUICE_BEH_PROBATION;
	if (out->state == SLUICE_BEH_EJECTED)
		out->ejected_until_ms = sluice__mono_to_wall_ms(h->ejected_until_ns);
}

int sluice__backend_health(struct sluice *s, __u32 backend_id, const struct sluice_backend *be,
			   const struct sluice_svc_health *svc,
			   struct sluice_backend_health_view *out)
{
	struct sluice_backend_health h;
	int err;

	sluice__clear_err();
	memset(out, 0, sizeof(*out));
	err = bpf_map_lookup_elem(s->fds[SLUICE_MAP_BACKEND_HEALTH], &backend_id, &h);
	if (err)
		return maps__err(err, "backend_health", "lookup", "of a backend");
	sluice__backend_health_of(&h, be, svc, health__now_ns(), out);
	return 0;
}

int sluice__health_counters(struct sluice *s, __u64 out[SLUICE_HCNT__MAX])
{
	int err;

	sluice__clear_err();
	for (__u32 i = 0; i < SLUICE_HCNT__MAX; i++) {
		err = maps__percpu_sum(s, s->fds[SLUICE_MAP_HEALTH_COUNTERS], "health_counters", i,
				       &out[i], 1);
		if (err)
			return err;
	}
	return 0;
}

struct sluice_health_events {
	struct ring_buffer *rb;
	sluice_health_event_fn fn;
	void *ctx;
};

static int health__on_record(void *ctx, void *data, size_t size)
{
	struct sluice_health_events *he = ctx;
	struct sluice_health_event ev = {};

	/* a shorter record (another build) is read as far as it goes */
	memcpy(&ev, data, size < sizeof(ev) ? size : sizeof(ev));
	he->fn(&ev, he->ctx);
	return 0;
}

int sluice__health_events_open(struct sluice *s, sluice_health_event_fn fn, void *ctx,
			       struct sluice_health_events **out)
{
	struct sluice_health_events *he;
	int err;

	sluice__clear_err();
	*out = NULL;
	he = calloc(1, sizeof(*he));
	if (!he) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	he->fn = fn;
	he->ctx = ctx;
	he->rb = ring_buffer__new(s->fds[SLUICE_MAP_HEALTH_EVENTS], health__on_record, he, NULL);
	if (!he->rb) {
		err = -errno;
		free(he);
		return maps__err(err, "health_events", "open", "of the ring buffer");
	}
	*out = he;
	return 0;
}

int sluice__health_events_fd(const struct sluice_health_events *he)
{
	return he ? ring_buffer__epoll_fd(he->rb) : -1;
}

int sluice__health_events_read(struct sluice_health_events *he)
{
	int n;

	if (!he)
		return 0;
	n = ring_buffer__consume(he->rb);
	if (n < 0)
		return maps__err(n, "health_events", "read", "of the ring buffer");
	return n;
}

void sluice__health_events_close(struct sluice_health_events *he)
{
	if (!he)
		return;
	ring_buffer__free(he->rb);
	free(he);
}
