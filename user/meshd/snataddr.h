/* SPDX-License-Identifier: MIT */
/*
 * snataddr.h - the node's source-NAT address per family (--snat-address),
 * for services that source-NAT to the node rather than to their VIP
 * (load-balancer and external IPs of externalTrafficPolicy Cluster).
 *
 * Contract: an address given for a family is written once and kept;
 * "auto" (the default) takes the lowest of the node addresses meshd
 * follows for NodePorts (inside --nodeport-addresses) of each family and
 * follows them, so with --kubernetes off nothing is set for auto; "none"
 * sets nothing. A family without an address is cleared in the map: such
 * services' new flows keep the client's address (counted in the datapath
 * as snat_no_address). Every change is logged.
 */
#ifndef MESHD_SNATADDR_H
#define MESHD_SNATADDR_H

#include <stdbool.h>
#include <linux/types.h>

#include "sluice.h"

struct snataddr {
	bool follow;                /* auto: from the node addresses */
	struct sluice_addr want[2]; /* given: [0] IPv4, [1] IPv6; family 0: none */
	struct sluice_addr cur[2];  /* as last written to snat_addr */
	bool written;               /* cur is known */
};

/* --snat-address TEXT (NULL: auto) from @origin: 0, or 2 after printing
 * the usage error. */
int snataddr__parse(struct snataddr *sa, const char *text, const char *origin);
/* Write the address of each family: given, else (auto) the lowest of
 * @node (n addresses, any order), else none. Failures are logged. */
void snataddr__apply(struct snataddr *sa, struct sluice *sl, const struct sluice_addr *node,
		     __u32 n);

#endif /* MESHD_SNATADDR_H */
