/* SPDX-License-Identifier: MIT */
/*
 * telemetry.h - per-connection telemetry (bpf/telemetry.bpf.c) on top of a
 * loaded struct sluice: loading and attaching the sockops program to a
 * cgroup, reading its ring buffer and aggregating the records per service
 * and per backend.
 *
 * Contract: telemetry__open() loads the program with the datapath's maps
 * reused from the struct sluice and, with a pin dir, pins its own maps
 * (telem_*) and its link (pin_dir/link_telemetry_sockops): the program
 * stays attached while the agent is down (records wait in the ring, up to
 * its size), and a later open attaches in place (bpf_link_update, no gap).
 * Not thread-safe: one thread owns a handle. Functions return 0 or a
 * negative errno and explain failures in sluice__errmsg().
 *
 * What the agent calls:
 *	telemetry__open(&t, s, cgroup_fd, &opts)      at start (cgroup_fd < 0: attach later)
 *	epoll on telemetry__ring_fd(t); on EPOLLIN     telemetry__consume(t)
 *	and at least every TELEMETRY_DRAIN_MS          telemetry__consume(t)
 *	after every change of services/backends        telemetry__sync(t)
 *	GET /metrics                                   metrics__render(&src, out) (metrics.h)
 *	meshctl connections                            telemetry__recent(), telemetry__set_record_cb()
 *	uninstall                                      telemetry__unpin(pin_dir) before sluice__unpin()
 *
 * Records are attributed by the ids in them. telemetry__sync() reads the
 * services and backends maps: it forgets the aggregates of ids that are
 * gone or now name another service/backend (so deleted services' series
 * disappear and a reused id starts from zero), and it writes the
 * telem_endpoints map the kernel classifies sockets with (one entry per
 * backend address:port; a backend address:port shared by several
 * services is attributed to the lowest backend id).
 */
#ifndef SLUICE_TELEMETRY_H
#define SLUICE_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "sluice.h"
#include "sluice_telemetry_abi.h"

struct telemetry;

struct telemetry_opts {
	const char *pin_dir; /* normally the sluice pin dir; NULL: nothing pinned */
	__u32 ring_bytes;    /* power of 2, >= page size; 0: SLUICE_TELEM_RING_BYTES */
	__u32 interval_s;    /* UPDATE records of open connections; 0: none */
	__u32 cfg;           /* SLUICE_TELEM_CFG_* */
	__u32 recent;        /* records kept for telemetry__recent(); 0: 1024 */
};

/* Fixed histogram buckets. RTT and duration are kept in microseconds,
 * bytes in bytes; metrics print seconds. */
enum telemetry_hist_kind {
	TELEMETRY_HIST_RTT,      /* smoothed RTT at close */
	TELEMETRY_HIST_DURATION, /* connect()/accept to close */
	TELEMETRY_HIST_BYTES,    /* bytes acked + received over the connection */
	TELEMETRY_HIST__MAX
};

#define TELEMETRY_HIST_BUCKETS 16 /* room for the longest bound list + Inf */

struct telemetry_hist_spec {
	const char *name; /* "rtt", "duration", "bytes" */
	unsigned int nbounds;
	const __u64 *bounds; /* ascending, in the kept unit */
	__u64 per_unit;      /* kept units per base unit: 1000000 (us per s) or 1 */
};

const struct telemetry_hist_spec *telemetry__hist_spec(enum telemetry_hist_kind kind);

struct telemetry_hist {
	__u64 buckets[TELEMETRY_HIST_BUCKETS]; /* not cumulative; [nbounds]: above the last */
	__u64 count;
	__u64 sum; /* in the kept unit */
};

/* Counts of one direction (enum sluice_telem_dir) of a service or backend. */
struct telemetry_conn {
	__u64 opened;
	__u64 closed; /* resets included */
	__u64 reset;  /* closed by an RST from the peer */
	__u64 failed[SLUICE_TELEM_REASON__MAX];
	__u64 bytes_sent; /* acked by the peer */
	__u64 bytes_received;
	__u64 retrans; /* segments */
	__u64 rtos;
};

struct telemetry_svc_stats {
	bool seen[SLUICE_TELEM_DIR__MAX]; /* a record of that direction arrived */
	struct telemetry_conn conn[SLUICE_TELEM_DIR__MAX];
	struct telemetry_hist hist[SLUICE_TELEM_DIR__MAX][TELEMETRY_HIST__MAX];
};

struct telemetry_backend_stats {
	bool seen[SLUICE_TELEM_DIR__MAX];
	struct telemetry_conn conn[SLUICE_TELEM_DIR__MAX];
};

struct telemetry_info {
	__u64 kernel[SLUICE_TELEM_CNT__MAX]; /* telem_counters, summed over CPUs */
	__u64 read;                          /* records read from the ring by this handle */
	__u64 unattributed;                  /* records of ids no longer in the maps */
	__u32 endpoints;                     /* telem_endpoints entries after the last sync */
	__u32 endpoints_max;
	__u32 ring_bytes;
	bool attached;
	__u64 cgroup_id; /* of the attachment; 0 when detached */
};

/* s must outlive the handle. cgroup_fd: an open cgroup v2 directory to
 * attach to, or -1. Runs telemetry__sync() once. */
int telemetry__open(struct telemetry **out, struct sluice *s, int cgroup_fd,
		    const struct telemetry_opts *opts);
/* Frees the handle. A pinned link stays attached; an unpinned one ends. */
void telemetry__close(struct telemetry *t);

/* Attach to another cgroup (moves a pinned attachment; the new link is
 * made before the old one goes). The attachment ends with
 * telemetry__close() when unpinned, with telemetry__unpin() when pinned. */
int telemetry__attach(struct telemetry *t, int cgroup_fd);

/* Readable when a batch of records waits (epoll fd of the ring buffer):
 * the kernel wakes the reader once TELEMETRY_WAKEUP_BYTES (or a quarter of
 * the ring) are waiting, not per record, so the reader must also call
 * telemetry__consume() every TELEMETRY_DRAIN_MS; a lone record waits at
 * most that long. */
#define TELEMETRY_WAKEUP_BYTES 16384
#define TELEMETRY_DRAIN_MS 100
int telemetry__ring_fd(const struct telemetry *t);
/* Reads every waiting record without blocking; returns how many. */
int telemetry__consume(struct telemetry *t);

/* See the contract above; cheap enough to call after every update. */
int telemetry__sync(struct telemetry *t);

/* Aggregates of a service or backend, if it has any and is still the one
 * named by key / be (the current map contents). -ENOENT otherwise. */
int telemetry__service_stats(struct telemetry *t, __u32 svc_id, const struct sluice_svc_key *key,
			     struct telemetry_svc_stats *out);
int telemetry__backend_stats(struct telemetry *t, __u32 backend_id, const struct sluice_backend *be,
			     struct telemetry_backend_stats *out);

int telemetry__info(struct telemetry *t, struct telemetry_info *info);

/* The newest records (at most max), oldest first; returns how many. */
size_t telemetry__recent(const struct telemetry *t, struct sluice_telem_rec *out, size_t max);
/* Called for every record read, after aggregation (connections --follow). */
typedef void (*telemetry_record_fn)(const struct sluice_telem_rec *rec, void *ctx);
void telemetry__set_record_cb(struct telemetry *t, telemetry_record_fn fn, void *ctx);

/* Whether an earlier agent left the program attached under pin_dir. */
bool telemetry__pinned(const char *pin_dir);
/* Detach what is pinned under pin_dir and remove the telem_* pins.
 * Missing pins are not an error. */
int telemetry__unpin(const char *pin_dir);

/* Counters of telemetry_info, for status and metrics alike. */
struct telemetry_counter {
	const char *key;    /* in the agent's status: "records_lost" */
	const char *metric; /* after "sluice_": "telemetry_records_lost_total" */
	const char *help;   /* the metric's HELP text */
	__u64 value;
};
/* The kernel's (SLUICE_TELEM_COUNTERS) and the agent's two (records read,
 * records unattributed, right after the ring buffer's), in the order they
 * are shown: i from 0 to TELEMETRY_COUNTERS - 1. */
#define TELEMETRY_COUNTERS (SLUICE_TELEM_CNT__MAX + 2)
struct telemetry_counter telemetry__counter(const struct telemetry_info *info, unsigned int i);

/* Names for metrics and CLI output; never NULL. */
const char *telemetry__reason_name(enum sluice_telem_reason r);
const char *telemetry__dir_name(enum sluice_telem_dir d);   /* "outbound" / "inbound" */
const char *telemetry__type_name(enum sluice_telem_type t); /* "open", "update", ... */

#endif /* SLUICE_TELEMETRY_H */
