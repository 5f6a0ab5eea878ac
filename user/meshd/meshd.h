/* SPDX-License-Identifier: MIT */
/*
 * meshd.h - the agent's configuration and the state its modules share.
 *
 * Contract: config.c fills struct meshd_config from flags and the config
 * file; main.c owns struct meshd; every other module gets the pieces it
 * works on.
 * Nothing in here outlives the process except what the kernel keeps: pinned
 * maps and attached programs (restarts are hitless because of that).
 */
#ifndef MESHD_H
#define MESHD_H

#include <stdbool.h>
#include <time.h>

#include "desired.h"
#include "sluice.h"

#include "attach.h"
#include "conns.h"
#include "exporter.h"
#include "follow.h"
#include "k8sint.h"
#include "log.h"
#include "sockint.h"
#include "telem.h"

#define MESHD_BPFFS_DEFAULT "/sys/fs/bpf/sluice"
#define MESHD_STATE_DEFAULT "/var/lib/sluice/state.json"
#define MESHD_METRICS_DEFAULT ":9465" /* HTTP_DEFAULT_BIND of http.h */
#define MESHD_TELEMETRY_INTERVAL_DEFAULT 10
#define MESHD_TELEMETRY_INTERVAL_MAX 86400

struct meshd_config {
	char *interfaces; /* comma-separated names / fnmatch patterns */
	enum attach_xdp_mode xdp_mode;
	bool fib_forward;
	char *cgroup;
	char *bpffs;
	char *state;
	char *socket;
	enum log_level log_level;
	char *metrics;  /* bind address of /metrics; NULL: off */
	bool socket_lb; /* connect()/sendmsg() hooks on --cgroup */
	bool redirect;  /* sockops + sk_msg same-node redirection (opt-in) */
	bool telemetry;
	unsigned int telemetry_interval; /* seconds; 0: records at open and close only */
	bool kubernetes;                 /* sync Services/EndpointSlices (k8sint.h) */
	char *kubeconfig;                /* NULL: in-cluster service account */
	bool cleanup;
};

struct meshd {
	struct meshd_config cfg;
	struct sluice *sl;
	struct attach att;
	struct desired desired;   /* what the maps hold and the state file says */
	struct telem telem;       /* connection telemetry (sockops + ring buffer) */
	struct sockint sock;      /* socket LB + same-node redirection */
	struct conns conns;       /* connection records as API JSON */
	struct follow follow;     /* `meshctl connections --follow` streams */
	struct exporter exporter; /* GET /metrics */
	struct k8sint kube;       /* Kubernetes sync (--kubernetes) */
	time_t started_at;
	bool stop;        /* leave the event loop */
	bool uninstalled; /* programs detached and pins removed: just exit */
};

#endif /* MESHD_H */
