/* SPDX-License-Identifier: MIT */
/*
 * telemetry_internal.h - the telemetry handle, shared by telemetry.c
 * (loading, attaching, the ring) and telemetry_agg.c (attribution,
 * aggregation, recent records). Not part of the API.
 */
#ifndef SLUICE_TELEMETRY_INTERNAL_H
#define SLUICE_TELEMETRY_INTERNAL_H

#include <limits.h>

#include "telemetry.h"

struct telemetry_bpf;
struct ring_buffer;
struct bpf_link;

/* A service id as last seen in the maps, and what its records added up to. */
struct telem_svc_slot {
	struct sluice_svc_key key; /* identity: a reused id is another service */
	bool live;                 /* seen by the current sync */
	struct telemetry_svc_stats stats;
};

struct telem_be_slot {
	struct sluice_backend be; /* identity: addr, port, family, svc_id */
	bool live;
	struct telemetry_backend_stats stats;
};

struct telemetry {
	struct sluice *s;
	struct telemetry_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *link;
	char *pin_dir;
	char link_path[PATH_MAX];
	__u32 ring_bytes;

	struct telem_svc_slot **svcs; /* [SLUICE_MAX_SERVICES], by svc_id */
	struct telem_be_slot **bes;   /* [SLUICE_MAX_BACKENDS], by backend_id */
	__u32 nendpoints;
	bool resynced; /* one sync per consume for records of unknown ids */
	__u64 read;
	__u64 unattributed;

	struct sluice_telem_rec *recent; /* ring of the newest records */
	size_t recent_cap, recent_next, recent_n;
	telemetry_record_fn cb;
	void *cb_ctx;
};

/* telemetry_agg.c */
int telem__agg_init(struct telemetry *t, __u32 recent);
void telem__agg_free(struct telemetry *t);
/* ring_buffer__new() callback: one record */
int telem__on_record(void *ctx, void *data, size_t size);

#endif /* SLUICE_TELEMETRY_INTERNAL_H */
