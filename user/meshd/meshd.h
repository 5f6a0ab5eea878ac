/* SPDX-License-Identifier: MIT */
/*
 * meshd.h - the agent's configuration and the state its modules share.
 *
 * Contract: main.c owns struct meshd and hands every module the pieces it
 * works on; only the API op handlers (ops*.c), the dispatch edge, see the
 * whole agent.
 * Nothing in here outlives the process except what the kernel keeps: pinned
 * maps and attached programs (restarts are hitless because of that).
 */
#ifndef MESHD_H
#define MESHD_H

#include <stdbool.h>
#include <time.h>

#include "sluice.h"

#include "attach.h"
#include "config.h"
#include "conns.h"
#include "deferred.h"
#include "exporter.h"
#include "follow.h"
#include "k8sint.h"
#include "log.h"
#include "outlier.h"
#include "probe.h"
#include "server.h"
#include "sockint.h"
#include "state.h"
#include "telem.h"

struct meshd {
	struct meshd_config cfg;
	struct sluice *sl;
	struct attach att;
	struct state state;       /* what the maps hold and the state file says */
	struct telem telem;       /* connection telemetry (sockops + ring buffer) */
	struct sockint sock;      /* socket LB + same-node redirection */
	struct conns conns;       /* connection records as API JSON */
	struct follow follow;     /* `meshctl connections --follow` streams */
	struct exporter exporter; /* GET /metrics */
	struct k8sint kube;       /* Kubernetes sync (--kubernetes) */
	struct outlier outlier;   /* passive outlier detection's events (#14) */
	struct probe probe;       /* active health checks */
	struct deferred defer;    /* deferred backend deletes (#16) */
	struct server api;        /* the API socket and its connections */
	time_t started_at;
	__u64 held;       /* the batch the request being handled waits for */
	bool stop;        /* leave the event loop */
	bool uninstalled; /* programs detached and pins removed: just exit */
	bool trim;        /* the maps changed: give freed heap back (main.c) */
};

#endif /* MESHD_H */
