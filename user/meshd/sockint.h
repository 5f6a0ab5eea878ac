/* SPDX-License-Identifier: MIT */
/*
 * sockint.h - socket-level load balancing and same-node redirection
 * (user/lib/sock/sock.h) in the agent: --socket-lb and --redirect on --cgroup,
 * the redirect's start-up self-test, and what status and /metrics say.
 *
 * Contract: like telemetry, both parts are additions to the per-packet
 * datapath, never conditions for it: a part that cannot start is logged,
 * kept in its error and reported by status while meshd runs on (the
 * packet path still serves every service). Links and sock_* / redir_*
 * maps are pinned in the pin dir: a restarted meshd swaps the programs
 * inside the pinned links (no gap); "off" detaches what an earlier meshd
 * left. Redirection is opt-in and stays off unless its self-test (a local
 * TCP pair through the redirect, data verified) passes.
 */
#ifndef MESHD_SOCKINT_H
#define MESHD_SOCKINT_H

#include <stdbool.h>

#include <json-c/json.h>

#include "sock.h"

struct sluice;

struct sockint_cfg {
	bool socket_lb;      /* --socket-lb */
	bool redirect;       /* --redirect */
	const char *cgroup;  /* --cgroup; NULL: no cgroup v2 found */
	const char *pin_dir; /* --bpffs */
	bool policy_cut_all; /* --policy-cut-netns all */
};

struct sockint {
	struct sluice_sock *ss;       /* NULL: not opened (no cgroup, error) */
	bool lb_running;              /* socket LB attached by this meshd */
	bool redir_running;           /* redirect attached and self-test passed */
	char lb_error[512];           /* why the socket LB is not running; "" otherwise */
	char redir_error[512];        /* why redirection is off although asked for */
	unsigned int redir_addrs;     /* node addresses given to the redirect */
	struct sluice_sock_info info; /* last refresh (metrics) */
	struct sockint_cfg cfg;
};

/* After the maps are reconciled. Failures are logged and kept in the
 * errors above (status shows them); only an "off" that cannot detach
 * what an earlier meshd left returns one, and meshd runs on anyway.
 * Last, with the policy cut's scope set, it starts the cut worker (#15):
 * a cut the reconcile asked for runs then, reaching the pods too. */
int sockint__start(struct sockint *si, const struct sockint_cfg *cfg, struct sluice *sl);
/* Exit: the handle goes, pinned links stay attached. */
void sockint__stop(struct sockint *si);
/* Refresh si->info; NULL when there is nothing to report. */
const struct sluice_sock_info *sockint__info(struct sockint *si);
/* status "socket_lb" and "redirect" objects */
struct json_object *sockint__lb_json(struct sockint *si);
struct json_object *sockint__redir_json(struct sockint *si);

#endif /* MESHD_SOCKINT_H */
