/* SPDX-License-Identifier: MIT */
/*
 * nodeaddr.h - the addresses of meshd's network namespace that serve
 * NodePorts, followed through rtnetlink (RTNLGRP_IPV4_IFADDR/IPV6_IFADDR).
 *
 * Contract: nodeaddr__open() subscribes first and lists second, so no
 * change is missed; every burst of events (or lost events) leads to one new
 * list, and on_change() gets the whole set, sorted, only when it differs
 * from the last one. Loopback, link-local, multicast, tentative (IPv6 DAD
 * not done) and failed addresses are left out, and with --nodeport-addresses
 * only addresses inside its CIDRs stay (k8s_nodeaddr__usable()). The socket
 * is non-blocking: nodeaddr__read() never waits for events; the list itself
 * is one request to the kernel.
 */
#ifndef MESHD_NODEADDR_H
#define MESHD_NODEADDR_H

#include <linux/types.h>

#include "k8s.h"

struct nl_sock;

typedef void (*nodeaddr_fn)(void *ctx, const struct sluice_addr *addrs, __u32 n);

struct nodeaddr {
	struct nl_sock *sk; /* events, non-blocking */
	struct k8s_cidr *cidrs;
	__u32 ncidrs;
	struct sluice_addr *addrs; /* the last set handed over */
	__u32 n;
	nodeaddr_fn on_change;
	void *ctx;
	bool seen; /* an event came in this read */
};

/* cidrs: --nodeport-addresses (NULL: every address). Lists the addresses
 * once (on_change() is called with them, even when empty). */
int nodeaddr__open(struct nodeaddr *na, const char *cidrs, nodeaddr_fn on_change, void *ctx);
int nodeaddr__fd(const struct nodeaddr *na);
/* The fd was readable: drain the events, list again if any came. */
int nodeaddr__read(struct nodeaddr *na);
void nodeaddr__close(struct nodeaddr *na);

#endif /* MESHD_NODEADDR_H */
