/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - the Prometheus exposition of Sluice (text format 0.0.4).
 *
 * Contract: metrics__collect() reads everything once (datapath counters
 * and drops, services and backends with their per-CPU stats, map fill,
 * and, when given, telemetry aggregates and socket-LB/redirect counters)
 * into a plain snapshot; metrics__write() turns a snapshot into text and
 * does nothing else, so it is tested on fixed input. metrics__render() is
 * both. Every name has the sluice_ prefix and base units (seconds, bytes);
 * counters end in _total; each family has HELP and TYPE lines. Labels are
 * bounded: service ("VIP:port/proto"), backend ("addr:port"), direction
 * ("outbound": a client here connected to the service; "inbound": a
 * backend here accepted), reason (a counter, drop or failure name), map
 * (a map name) and, on sluice_build_info only, version and layout. No
 * client address is ever a label. Only services and backends present in
 * the maps are written, so deleted ones disappear; telemetry series of a
 * service or backend appear with its first connection record. Output is
 * sorted (services by key, backends by service then address), so two
 * renders of the same state are byte-identical.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdbool.h>
#include <stdio.h>

#include "sluice.h"
#include "sock.h"
#include "telemetry.h"

/* Content-Type of the text format. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Ejections the agent counted from the kernel's health events (#14), per
 * backend id (of service svc_id) and reason of the last failure. */
struct metrics_ejections {
	__u32 svc_id, backend_id;
	__u64 by_reason[SLUICE_HEALTH_R__MAX];
};

/* Per-backend series (sluice_backend_*), meshd --metrics-backends: auto
 * writes them while the maps hold at most METRICS_BACKENDS_AUTO_MAX
 * backends (at 10k services x 10 they are 94% of a 57 MB scrape); off
 * never, and then per-backend stats are not even read. */
enum metrics_backends {
	METRICS_BACKENDS_AUTO,
	METRICS_BACKENDS_ON,
	METRICS_BACKENDS_OFF,
};

#define METRICS_BACKENDS_AUTO_MAX 10000

/* "auto", "on", "off" -> *out; -EINVAL for anything else. */
int metrics__parse_backends(const char *text, enum metrics_backends *out);

struct metrics_src {
	struct sluice *s;                          /* required */
	struct telemetry *t;                       /* NULL: no connection metrics */
	const struct sluice_sock_info *sock;       /* NULL: no socket LB/redirect metrics */
	double start_time;                         /* agent start, Unix seconds */
	const struct metrics_ejections *ejections; /* may be NULL */
	size_t nejections;
	enum metrics_backends backends; /* meshd --metrics-backends */
};

struct metrics_service {
	char name[SLUICE_ADDRPORT_STRLEN + 8]; /* the service label */
	struct sluice_svc_key key;
	__u32 svc_id;
	__u16 backend_count; /* backends taking new flows */
	__u16 healthy;       /* of those: not ejected, not unhealthy (#14) */
	struct sluice_svc_health health;
	struct sluice_svc_stats stats;
	struct sluice_policy_stats policy; /* new flows denied, by reason (#15) */
	bool has_telemetry;
	struct telemetry_svc_stats tel;
};

struct metrics_backend {
	size_t service;                    /* index into services[] */
	char addr[SLUICE_ADDRPORT_STRLEN]; /* the backend label */
	__u32 backend_id;
	__u16 weight;
	__u8 health; /* enum sluice_be_health */
	__u32 fails; /* consecutive failures */
	__u64 ejections[SLUICE_HEALTH_R__MAX];
	struct sluice_backend_stats stats;
	bool has_telemetry;
	struct telemetry_backend_stats tel;
};

struct metrics_map {
	char name[32];
	__u64 entries;
	__u64 capacity;
};

#define METRICS_MAPS_MAX 12

struct metrics_snapshot {
	const char *version;
	__u32 layout_version;
	double start_time;
	__u64 counters[SLUICE_CNT__MAX];
	__u64 drops[SLUICE_DROP__MAX];
	__u64 health[SLUICE_HCNT__MAX];   /* health_counters */
	struct metrics_service *services; /* sorted by key */
	size_t nservices;
	struct metrics_backend *backends; /* sorted by service, then address */
	size_t nbackends;
	struct metrics_map maps[METRICS_MAPS_MAX];
	size_t nmaps;
	bool has_telemetry;
	struct telemetry_info telemetry;
	bool has_sock;
	struct sluice_sock_info sock;
	/* no sluice_backend_* series (their state still counts in
	 * sluice_service_healthy_backends): see enum metrics_backends */
	bool no_backend_series;
};

int metrics__collect(const struct metrics_src *src, struct metrics_snapshot **out);
void metrics__snapshot_free(struct metrics_snapshot *m);
/* Returns 0, or -EIO when writing to out failed. */
int metrics__write(const struct metrics_snapshot *m, FILE *out);
/* What names a service label, for sluice_service_info (the maps do not
 * know names: the agent's desired state does). */
struct metrics_svc_info {
	const char *service; /* the label: "10.96.0.10:80/tcp" */
	const char *name;    /* "default/web:http" */
	const char *source;  /* "kubernetes" or "manual" */
};

/* sluice_service_info{service,name,namespace,source} 1 for each; the
 * namespace is the part of a kubernetes service's name before '/'. */
void metrics__service_info(FILE *out, const struct metrics_svc_info *info, size_t n);
/* collect + write */
int metrics__render(const struct metrics_src *src, FILE *out);

#endif /* SLUICE_METRICS_H */
