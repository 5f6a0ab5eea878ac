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
#include "log.h"

#define MESHD_BPFFS_DEFAULT "/sys/fs/bpf/sluice"
#define MESHD_STATE_DEFAULT "/var/lib/sluice/state.json"

struct meshd_config {
	char *interfaces; /* comma-separated names / fnmatch patterns */
	enum attach_xdp_mode xdp_mode;
	bool fib_forward;
	char *cgroup;
	char *bpffs;
	char *state;
	char *socket;
	enum log_level log_level;
	bool cleanup;
};

struct meshd {
	struct meshd_config cfg;
	struct sluice *sl;
	struct attach att;
	struct desired desired; /* what the maps hold and the state file says */
	time_t started_at;
	bool stop;        /* leave the event loop */
	bool uninstalled; /* programs detached and pins removed: just exit */
};

#endif /* MESHD_H */
