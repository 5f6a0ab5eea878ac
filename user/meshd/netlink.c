// SPDX-License-Identifier: MIT
/*
 * netlink.c - RTNLGRP_LINK events and link dumps with libnl (see netlink.h).
 *
 * Messages are decoded here (ifinfomsg + IFLA_IFNAME) rather than with
 * libnl-route's rtnl_link objects: libnl-route 3.7 fails to parse some link
 * types of current kernels (a bridge, for one), and such a link would then
 * be invisible — never attached, or forgotten by a resync although present.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include "log.h"
#include "netlink.h"

/* Events arrive in bursts (a veth pair, many pods at once): give the
 * kernel room before it has to drop them. */
#define NETLINK_RCVBUF (4 << 20)

static int netlink__on_msg(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct nlattr *tb[IFLA_MAX + 1];
	struct netlink *nl = arg;
	struct ifinfomsg *ifi;
	const char *name;

	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return NL_OK;
	if (nlmsg_parse(nlh, sizeof(*ifi), tb, IFLA_MAX, NULL) < 0)
		return NL_OK;
	ifi = nlmsg_data(nlh);
	/* AF_BRIDGE messages describe bridge ports, not the link itself:
	 * a bridge port's DELLINK does not delete the interface. */
	if (ifi->ifi_family != AF_UNSPEC || ifi->ifi_index <= 0)
		return NL_OK;
	name = tb[IFLA_IFNAME] ? nla_get_string(tb[IFLA_IFNAME]) : NULL;
	if (nlh->nlmsg_type == RTM_DELLINK) {
		pr_debug("netlink: link %s (ifindex %d) deleted", name ? name : "?",
			 ifi->ifi_index);
		nl->ops.link_gone(nl->ops.ctx, ifi->ifi_index, name);
	} else if (name) {
		pr_debug("netlink: link %s (ifindex %d) new or changed", name, ifi->ifi_index);
		nl->ops.link_up(nl->ops.ctx, ifi->ifi_index, name);
	}
	return NL_OK;
}

/* Read the current link list and hand it over (mark and sweep). */
static int netlink__sync(struct netlink *nl)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct nl_sock *sk;
	int err;

	/* A socket of its own: the dump must not mix with queued events. */
	sk = nl_socket_alloc();
	if (!sk) {
		pr_err("netlink: out of memory");
		return -ENOMEM;
	}
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, netlink__on_msg, nl);
	nl->ops.sync_begin(nl->ops.ctx);
	err = nl_connect(sk, NETLINK_ROUTE);
	if (!err)
		err = nl_send_simple(sk, RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof(ifi));
	if (err >= 0)
		err = nl_recvmsgs_default(sk);
	nl_socket_free(sk);
	if (err < 0) {
		/* Forget nothing on a partial list. */
		pr_err("netlink: listing links: %s", nl_geterror(err));
		return -EIO;
	}
	nl->ops.sync_end(nl->ops.ctx);
	return 0;
}

int netlink__open(struct netlink *nl, const struct netlink_ops *ops)
{
	int err;

	memset(nl, 0, sizeof(*nl));
	nl->ops = *ops;
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		pr_err("netlink: out of memory");
		return -ENOMEM;
	}
	/* Multicast events carry no sequence numbers we asked for. */
	nl_socket_disable_seq_check(nl->sk);
	nl_socket_modify_cb(nl->sk, NL_CB_VALID, NL_CB_CUSTOM, netlink__on_msg, nl);
	err = nl_connect(nl->sk, NETLINK_ROUTE);
	if (!err)
		err = nl_socket_add_membership(nl->sk, RTNLGRP_LINK);
	if (!err)
		err = nl_socket_set_nonblocking(nl->sk);
	if (err) {
		pr_err("netlink: subscribing to link events: %s", nl_geterror(err));
		netlink__close(nl);
		return -EIO;
	}
	nl_socket_set_buffer_size(nl->sk, NETLINK_RCVBUF, 0);
	return netlink__sync(nl);
}

int netlink__fd(const struct netlink *nl)
{
	return nl_socket_get_fd(nl->sk);
}

int netlink__read(struct netlink *nl)
{
	int err;

	for (;;) {
		err = nl_recvmsgs_default(nl->sk);
		if (err >= 0)
			continue;
		if (err == -NLE_AGAIN)
			return 0;
		/* libnl reports the kernel's ENOBUFS (events were lost) as
		 * NLE_NOMEM. Whatever it was, the link list is the truth. */
		pr_warn("netlink: %s; reading the link list again",
			err == -NLE_NOMEM ? "link events were lost (receive queue overflow)" :
					    nl_geterror(err));
		return netlink__sync(nl);
	}
}

void netlink__close(struct netlink *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	nl->sk = NULL;
}

struct netlink_xdp_req {
	struct netlink_xdp *out;
	bool found;
};

static int netlink__on_xdp(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[IFLA_MAX + 1], *xtb[IFLA_XDP_MAX + 1];
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct netlink_xdp_req *req = arg;

	if (nlh->nlmsg_type != RTM_NEWLINK ||
	    nlmsg_parse(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0)
		return NL_OK;
	req->found = true;
	if (!tb[IFLA_XDP] || nla_parse_nested(xtb, IFLA_XDP_MAX, tb[IFLA_XDP], NULL) < 0)
		return NL_OK;
	if (xtb[IFLA_XDP_DRV_PROG_ID])
		req->out->drv_prog_id = nla_get_u32(xtb[IFLA_XDP_DRV_PROG_ID]);
	if (xtb[IFLA_XDP_SKB_PROG_ID])
		req->out->skb_prog_id = nla_get_u32(xtb[IFLA_XDP_SKB_PROG_ID]);
	if (xtb[IFLA_XDP_HW_PROG_ID])
		req->out->hw_prog_id = nla_get_u32(xtb[IFLA_XDP_HW_PROG_ID]);
	return NL_OK;
}

int netlink__xdp_query(int ifindex, struct netlink_xdp *out)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
	struct netlink_xdp_req req = { .out = out };
	struct nl_sock *sk;
	int err;

	memset(out, 0, sizeof(*out));
	sk = nl_socket_alloc();
	if (!sk)
		return -ENOMEM;
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, netlink__on_xdp, &req);
	err = nl_connect(sk, NETLINK_ROUTE);
	if (!err)
		err = nl_send_simple(sk, RTM_GETLINK, 0, &ifi, sizeof(ifi));
	/* Until the ACK: the answer, or the error (no such device). */
	if (err >= 0)
		err = nl_wait_for_ack(sk);
	nl_socket_free(sk);
	if (err < 0)
		return err == -NLE_OBJ_NOTFOUND || err == -NLE_NODEV ? -ENODEV : -EIO;
	return req.found ? 0 : -ENODEV;
}
