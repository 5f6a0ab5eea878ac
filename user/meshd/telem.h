/* SPDX-License-Identifier: MIT */
/*
 * telem.h - connection telemetry in the agent: the sockops program of
 * user/lib/telemetry/telemetry.h on --cgroup, its ring buffer read from the event
 * loop, and what status says about it.
 *
 * Contract: telemetry is an addition to the datapath, never a condition
 * for it: when it cannot start (no cgroup v2, a kernel without sockops or
 * socket storage) meshd runs on without it and status says why. The link
 * and the telem_* maps are pinned in the pin dir, so a restarted meshd
 * adopts the attachment in place and reads the records that waited in the
 * ring meanwhile; --telemetry off detaches what an earlier meshd pinned.
 * telem__changed() must follow every change of the services maps: it
 * keeps the kernel's endpoint index and the per-service aggregates right.
 */
#ifndef MESHD_TELEM_H
#define MESHD_TELEM_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "telemetry.h"

struct sluice;

/* Records kept for `meshctl connections` (136 bytes each). */
#define TELEM_RECENT 4096

struct telem_cfg {
	bool enabled;            /* --telemetry */
	const char *pin_dir;     /* --bpffs */
	const char *cgroup;      /* --cgroup; NULL: no cgroup v2 found */
	unsigned int interval_s; /* --telemetry-interval */
	/* Every record read (the connection streams); NULL: none. */
	telemetry_record_fn on_record;
	void *ctx;
};

struct telem {
	struct telemetry *t; /* NULL: off or unavailable */
	char error[512];     /* why it is unavailable; "" when on, or off by flag */
	struct telem_cfg cfg;
};

/* After the maps are reconciled. Failures are logged and kept in
 * tm->error; only an impossible --telemetry off cleanup returns one. */
int telem__start(struct telem *tm, const struct telem_cfg *cfg, struct sluice *sl);
/* Exit: the handle goes, a pinned link stays attached. */
void telem__stop(struct telem *tm);
/* epoll fd of the ring buffer; -1 when telemetry is not running. */
int telem__ring_fd(const struct telem *tm);
/* The ring is readable: aggregate the records, hand them to cfg.on_record. */
void telem__read(struct telem *tm);
/* The services or backends in the maps changed. */
void telem__changed(struct telem *tm);
/* status "telemetry" object; followers: the open connection streams */
struct json_object *telem__status_json(const struct telem *tm, size_t followers);

#endif /* MESHD_TELEM_H */
