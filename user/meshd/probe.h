/* SPDX-License-Identifier: MIT */
/*
 * probe.h - active health checks: meshd probes the backends of services
 * with a healthCheck (TCP connect, or HTTP/1.1 GET answered 2xx/3xx) and
 * takes a backend that fails unhealthyThreshold probes in a row out of the
 * Maglev table (state SLUICE_BE_UNHEALTHY: existing flows keep it, as with
 * draining); healthyThreshold successes in a row bring it back.
 *
 * Contract: every probe is non-blocking and bounded in time (its timeout),
 * in number (PROBE_MAX_INFLIGHT at once) and in bytes read (the status
 * line only); the engine's sockets and its timer sit behind one epoll fd
 * that meshd's loop watches (probe__fd), so no probe ever delays the API,
 * netlink or the ring buffers. Probes run from meshd's network namespace.
 * The verdicts are runtime state: they go into the maps through the
 * backends' `unhealthy` flag of st->desired, never into the state file,
 * and they survive a restart through the maps (desired__from_maps).
 * A backend drained (weight 0) or removed by the operator is not probed
 * and never revived; when every backend of a service with weight > 0 is
 * unhealthy, all of them stay in the table (panic: counted and logged).
 */
#ifndef MESHD_PROBE_H
#define MESHD_PROBE_H

#include <stdbool.h>
#include <stdio.h>
#include <json-c/json.h>

#include "desired.h"

struct state;

/* Probes open at once; more due probes wait for a slot (a blackholed
 * service holds its slots for the timeout). */
#ifndef PROBE_MAX_INFLIGHT
#define PROBE_MAX_INFLIGHT 256
#endif
/* The HTTP status line is read into this much, no more. */
#define PROBE_LINE_MAX 64

enum probe_result {
	PROBE_R_OK,      /* connected (tcp) / 2xx or 3xx (http) */
	PROBE_R_REFUSED, /* RST to the SYN */
	PROBE_R_TIMEOUT, /* no verdict within timeoutMs */
	PROBE_R_STATUS,  /* http: answered with another status */
	PROBE_R_ERROR,   /* any other socket error, or not an HTTP answer */
	PROBE_R__MAX
};

const char *probe__result_name(enum probe_result r);

/* The verdict of one backend from its consecutive results. */
struct probe_verdict {
	bool down;  /* out of the table (unless the service panics) */
	__u8 fails; /* failures in a row while up */
	__u8 oks;   /* successes in a row while down */
};

/* Feeds one result; true when `down` flipped. Pure: the thresholds rule. */
bool probe__verdict_feed(struct probe_verdict *v, bool ok, __u8 healthy, __u8 unhealthy);

enum probe_phase {
	PROBE_IDLE,
	PROBE_CONNECTING,
	PROBE_SENDING,
	PROBE_READING,
};

struct probe_target {
	/* identity: service key + backend address */
	struct sluice_addr vip, addr;
	__u16 vport, port;
	__u8 proto;
	bool panic;            /* the service's backends are all down: all kept */
	bool flipped;          /* verdict changed since the last apply */
	__u32 svc_idx, be_idx; /* into st->desired as of the last sync */
	struct desired_health_check hc;
	struct probe_verdict v;
	/* schedule and the probe in flight */
	__u64 next_ms, start_us, deadline_ms;
	int fd;
	__u32 slot;      /* in fl[] while in flight */
	__u8 phase;      /* enum probe_phase */
	__u16 sent, got; /* request bytes sent, status bytes read */
	char line[PROBE_LINE_MAX];
	/* what `service get` shows */
	__u8 last;        /* enum probe_result of the last probe */
	__u16 last_http;  /* its HTTP status, 0: none */
	__u32 last_us;    /* its duration */
	__u64 last_at_ms; /* when it ended (0: no probe yet) */
	__u64 probes;
};

/* Prometheus histogram of probe durations (seconds). */
#define PROBE_BUCKETS 12

struct probe_stats {
	__u64 results[PROBE_R__MAX];
	__u64 buckets[PROBE_BUCKETS]; /* cumulative at render, plain here */
	__u64 count;
	double sum_s;
	__u64 panics;      /* services that entered panic */
	__u64 transitions; /* verdicts that flipped */
	__u64 apply_errors;
	__u64 waited; /* due probes that found every slot taken */
};

struct probe {
	struct state *st;
	int epfd, tfd;
	struct probe_target *t; /* sorted by identity */
	__u32 n, cap;
	__u32 *heap; /* idle targets by next_ms */
	__u32 nheap;
	__u32 fl[PROBE_MAX_INFLIGHT]; /* targets with a probe in flight */
	__u32 inflight;
	__u64 armed_ms; /* the timer's expiry, 0: disarmed */
	bool dirty;     /* a verdict flipped: apply */
	bool resynced;  /* targets rebuilt: every service's panic rechecked */
	struct probe_stats stats;
	__u64 (*now_us)(void); /* monotonic; tests replace it */
};

/* Hooks itself into st (stamp and adopt), takes the verdicts the maps hold
 * (st->desired after the reconcile) and schedules the first probes. */
int probe__start(struct probe *p, struct state *st);
void probe__stop(struct probe *p);
int probe__fd(const struct probe *p);
/* Everything ready: finished probes, timeouts, due probes; applies flipped
 * verdicts. Never blocks. */
void probe__run(struct probe *p);

/* Rebuilds the targets from st->desired, keeping the verdicts (and the
 * probes in flight) of the backends that stay. */
int probe__sync(struct probe *p);
/* The verdicts into next's backends (the panic rule applied). */
void probe__stamp(struct probe *p, struct desired *next);
/* Flipped verdicts into the maps (one apply per changed service). */
void probe__apply(struct probe *p);
/* The probe state of a backend, or NULL (not probed). */
const struct probe_target *probe__find(const struct probe *p, const struct desired_service *svc,
				       const struct desired_backend *be);
/* {"state", "lastResult", "lastHttpStatus", "latencyMs", "probes", "ago_ms"}
 * of a backend, or NULL when it is not probed. */
struct json_object *probe__backend_json(const struct probe *p, const struct desired_service *svc,
					const struct desired_backend *be);
void probe__metrics(const struct probe *p, FILE *out);
/* Adds "probe" (probe__backend_json) to each backend of o, the API's
 * SERVICE object of svc; returns o. */
struct json_object *probe__annotate(const struct probe *p, const struct desired_service *svc,
				    struct json_object *o);
/* A finished probe into the counters and the duration histogram. */
void probe__observe(struct probe_stats *st, enum probe_result r, __u64 us);
/* probe_net.c: the in-flight list, the heap of idle targets and the timer
 * rebuilt after the targets moved (probe__sync). */
int probe__resched(struct probe *p);

/* probe_net.c: one probe's I/O. */
int probe__net_start(struct probe *p, __u32 i);
/* events for target i; true when the probe ended (result in *r) */
bool probe__net_io(struct probe *p, __u32 i, __u32 events, enum probe_result *r);
void probe__net_close(struct probe *p, __u32 i);
/* "HTTP/1.1 503 ..." -> 503; 0 when not (yet) a status line */
int probe__http_status(const char *line, size_t len);

#endif /* MESHD_PROBE_H */
