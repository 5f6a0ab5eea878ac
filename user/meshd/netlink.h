/* SPDX-License-Identifier: MIT */
/*
 * netlink.h - following interfaces as they come and go (rtnetlink via
 * libnl), reported through struct netlink_ops (attach.c takes them).
 *
 * Contract: netlink__open() subscribes to RTNLGRP_LINK first and lists the
 * existing links second, so a link created in between is seen at least
 * once: the receiver must take repeated events in its stride. If the
 * kernel drops events (socket buffer overrun) the whole link list is read
 * again.
 */
#ifndef MESHD_NETLINK_H
#define MESHD_NETLINK_H

#include <linux/types.h>

struct nl_sock;

/* Where link events go. A full list (at open, after lost events) is
 * sync_begin, link_up for every link, sync_end: what was not seen since
 * sync_begin is gone. */
struct netlink_ops {
	/* A link exists (appeared, changed or renamed). */
	void (*link_up)(void *ctx, int ifindex, const char *ifname);
	/* A link was deleted; ifname may be NULL. */
	void (*link_gone)(void *ctx, int ifindex, const char *ifname);
	void (*sync_begin)(void *ctx);
	void (*sync_end)(void *ctx);
	void *ctx;
};

/* XDP programs on a link, by mode (0: none). */
struct netlink_xdp {
	__u32 drv_prog_id;
	__u32 skb_prog_id;
	__u32 hw_prog_id;
};

struct netlink {
	struct nl_sock *sk; /* event socket, non-blocking */
	struct netlink_ops ops;
};

int netlink__open(struct netlink *nl, const struct netlink_ops *ops);
int netlink__fd(const struct netlink *nl);
/* Handle every pending event (call when netlink__fd() is readable). */
int netlink__read(struct netlink *nl);
void netlink__close(struct netlink *nl);
/* The XDP programs of one link with one RTM_GETLINK. (libbpf's
 * bpf_xdp_query() dumps every link of the namespace per call, which makes
 * attaching n interfaces cost n^2.) Works without netlink__open(). */
int netlink__xdp_query(int ifindex, struct netlink_xdp *out);

#endif /* MESHD_NETLINK_H */
