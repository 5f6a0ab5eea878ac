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

#include <json-c/json.h>

struct meshd;
struct telemetry;

/* Records kept for `meshctl connections` (136 bytes each). */
#define TELEM_RECENT 4096

struct telem {
	struct telemetry *t; /* NULL: off or unavailable */
	char error[512];     /* why it is unavailable; "" when on, or off by flag */
};

/* After the maps are reconciled. Failures are logged and kept in
 * m->telem.error; only an impossible --telemetry off cleanup returns one. */
int telem__start(struct meshd *m);
/* Exit: the handle goes, a pinned link stays attached. */
void telem__stop(struct meshd *m);
/* epoll fd of the ring buffer; -1 when telemetry is not running. */
int telem__ring_fd(const struct meshd *m);
/* The ring is readable: aggregate the records, feed the followers. */
void telem__read(struct meshd *m);
/* The services or backends in the maps changed. */
void telem__changed(struct meshd *m);
/* status "telemetry" object */
struct json_object *telem__status_json(struct meshd *m);

#endif /* MESHD_TELEM_H */
