/* SPDX-License-Identifier: MIT */
/*
 * policy_cut.h - what policy_cut.c (conntrack, this network namespace's
 * sockets) and policy_cut_netns.c (the sockets of other network
 * namespaces) share: the walk context and the one socket pass.
 */
#ifndef SLUICE_POLICY_CUT_H
#define SLUICE_POLICY_CUT_H

#include <stddef.h>

#include "internal.h"

struct cut_ctx {
	struct sluice *s;
	/* [SLUICE_MAX_SERVICES] the service entries by id; flags 0: none */
	const struct sluice_svc *svcs;
	struct sluice_ct_key *keys;
	size_t n, cap;
};

/* Destroys the TCP sockets (both families) of the calling thread's network
 * namespace whose peer is a backend in @bes (daddr:dport, svc id in
 * saddr[0]) of a service that now denies the socket's own address:port;
 * *socks grows by the number destroyed. -EOPNOTSUPP without
 * CONFIG_INET_DIAG_DESTROY, -errno of sock_diag otherwise. */
int cut__socks(struct cut_ctx *bes, __u64 *socks);

/* The same pass in every other network namespace of the processes of the
 * handle's cut scope (policy_cut_netns.c); counts go to s->cut. */
void cut__socks_netns(struct cut_ctx *bes, __u64 *socks);

#endif /* SLUICE_POLICY_CUT_H */
