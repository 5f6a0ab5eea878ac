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

struct meshd;

struct sockint {
	struct sluice_sock *ss;       /* NULL: not opened (no cgroup, error) */
	bool lb_running;              /* socket LB attached by this meshd */
	bool redir_running;           /* redirect attached and self-test passed */
	char lb_error[512];           /* why the socket LB is not running; "" otherwise */
	char redir_error[512];        /* why redirection is off although asked for */
	unsigned int redir_addrs;     /* node addresses given to the redirect */
	struct sluice_sock_info info; /* last refresh (metrics) */
};

/* After the maps are reconciled. Failures are logged and kept in the
 * errors above (status shows them); only an "off" that cannot detach
 * what an earlier meshd left returns one, and meshd runs on anyway. */
int sockint__start(struct meshd *m);
/* Exit: the handle goes, pinned links stay attached. */
void sockint__stop(struct meshd *m);
/* Refresh m->sock.info; NULL when there is nothing to report. */
const struct sluice_sock_info *sockint__info(struct meshd *m);
/* status "socket_lb" and "redirect" objects */
struct json_object *sockint__lb_json(struct meshd *m);
struct json_object *sockint__redir_json(struct meshd *m);

#endif /* MESHD_SOCKINT_H */
