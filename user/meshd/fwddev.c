// SPDX-License-Identifier: MIT
/*
 * fwddev.c - which egress devices can take redirected XDP frames (the
 * datapath's fwd_devs, bpf/lib/fwd.h), decided per device as links come
 * and go (attach.c hands over every link event).
 *
 * Linux 6.3+ says it itself: the netdev generic netlink family reports a
 * device's xdp_features, and NETDEV_XDP_ACT_NDO_XMIT is set exactly when a
 * redirected frame can leave through it (veth: when its peer runs XDP or
 * has GRO on, updated as that changes). Before 6.3 (Debian 12's 6.1) the
 * family is missing and only a veth is judged: capable when its peer has
 * an XDP program (RTM_GETLINK, in the peer's namespace by netns id) or,
 * peer in this namespace, GRO on (ETHTOOL_GGRO). Anything else stays with
 * the kernel there; --fib-forward on overrides.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/ethtool.h>
#include <linux/genetlink.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>

#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include "fwddev.h"
#include "log.h"

/* include/uapi/linux/netdev.h (6.3+), absent from 6.1's headers */
#define FWD_NETDEV_CMD_DEV_GET 1
#define FWD_NETDEV_A_DEV_IFINDEX 1
#define FWD_NETDEV_A_DEV_XDP_FEATURES 3
#define FWD_NETDEV_XDP_ACT_NDO_XMIT (1ULL << 2)

struct fwd_reply {
	int family_id;
	bool found;
	__u64 xdp_features;
	/* RTM_GETLINK */
	char kind[16];
	int link;
	int link_nsid;
	bool has_xdp;
};

static int fwddev__on_genl(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct nlattr *tb[CTRL_ATTR_MAX + 1];
	struct fwd_reply *r = arg;

	if (nlh->nlmsg_type == GENL_ID_CTRL) {
		if (nlmsg_parse(nlh, GENL_HDRLEN, tb, CTRL_ATTR_MAX, NULL) >= 0 &&
		    tb[CTRL_ATTR_FAMILY_ID])
			r->family_id = nla_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
		return NL_OK;
	}
	if (nlmsg_parse(nlh, GENL_HDRLEN, tb, FWD_NETDEV_A_DEV_XDP_FEATURES, NULL) >= 0 &&
	    tb[FWD_NETDEV_A_DEV_XDP_FEATURES]) {
		r->found = true;
		r->xdp_features = nla_get_u64(tb[FWD_NETDEV_A_DEV_XDP_FEATURES]);
	}
	return NL_OK;
}

/* One generic netlink request, its answer through fwddev__on_genl. */
static int fwddev__genl(int type, __u8 cmd, int attr, const void *val, int len, struct fwd_reply *r)
{
	struct genlmsghdr g = { .cmd = cmd, .version = 1 };
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_msg *msg = NULL;
	int err = -ENOMEM;

	if (!sk)
		return -ENOMEM;
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, fwddev__on_genl, r);
	msg = nlmsg_alloc_simple(type, NLM_F_REQUEST | NLM_F_ACK);
	if (!msg || nlmsg_append(msg, &g, sizeof(g), NLMSG_ALIGNTO) < 0 ||
	    nla_put(msg, attr, len, val) < 0)
		goto out;
	err = nl_connect(sk, NETLINK_GENERIC);
	if (!err)
		err = nl_send_auto(sk, msg);
	if (err >= 0)
		err = nl_wait_for_ack(sk);
	err = err < 0 ? -EIO : 0;
out:
	nlmsg_free(msg);
	nl_socket_free(sk);
	return err;
}

/* 1/0: the kernel's own word on ndo_xdp_xmit; -ENOENT: no netdev family. */
static int fwddev__xdp_features(int ifindex)
{
	static int family_id = -1; /* 0: looked up, missing */
	struct fwd_reply r = {};
	__u32 idx = (__u32)ifindex;

	/* tests: judge as on a kernel before 6.3 */
	if (getenv("SLUICE_FWD_PRE_6_3"))
		return -ENOENT;
	if (family_id < 0) {
		fwddev__genl(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME, "netdev",
			     sizeof("netdev"), &r);
		family_id = r.family_id;
		pr_debug("fwd: netdev genl family %s", family_id ? "found" : "missing (< 6.3)");
	}
	if (!family_id)
		return -ENOENT;
	r = (struct fwd_reply){};
	if (fwddev__genl(family_id, FWD_NETDEV_CMD_DEV_GET, FWD_NETDEV_A_DEV_IFINDEX, &idx,
			 sizeof(idx), &r) ||
	    !r.found)
		return -ENODEV;
	return !!(r.xdp_features & FWD_NETDEV_XDP_ACT_NDO_XMIT);
}

static int fwddev__on_link(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1], *x[IFLA_XDP_MAX + 1];
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct fwd_reply *r = arg;

	if (nlh->nlmsg_type != RTM_NEWLINK ||
	    nlmsg_parse(nlh, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0)
		return NL_OK;
	r->found = true;
	if (tb[IFLA_LINK])
		r->link = (int)nla_get_u32(tb[IFLA_LINK]);
	r->link_nsid = tb[IFLA_LINK_NETNSID] ? (int)nla_get_s32(tb[IFLA_LINK_NETNSID]) : -1;
	if (tb[IFLA_LINKINFO] &&
	    nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) >= 0 && li[IFLA_INFO_KIND])
		nla_strlcpy(r->kind, li[IFLA_INFO_KIND], sizeof(r->kind));
	if (tb[IFLA_XDP] && nla_parse_nested(x, IFLA_XDP_MAX, tb[IFLA_XDP], NULL) >= 0 &&
	    x[IFLA_XDP_ATTACHED])
		r->has_xdp = nla_get_u8(x[IFLA_XDP_ATTACHED]) != XDP_ATTACHED_NONE;
	return NL_OK;
}

/* RTM_GETLINK of one link, in the namespace of netns id nsid (-1: ours). */
static int fwddev__getlink(int ifindex, int nsid, struct fwd_reply *r)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_msg *msg;
	int err = -ENOMEM;

	if (!sk)
		return -ENOMEM;
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, fwddev__on_link, r);
	msg = nlmsg_alloc_simple(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK);
	if (!msg || nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    (nsid >= 0 && nla_put_s32(msg, IFLA_TARGET_NETNSID, nsid) < 0))
		goto out;
	err = nl_connect(sk, NETLINK_ROUTE);
	if (!err)
		err = nl_send_auto(sk, msg);
	if (err >= 0)
		err = nl_wait_for_ack(sk);
	err = err < 0 || !r->found ? -ENODEV : 0;
out:
	nlmsg_free(msg);
	nl_socket_free(sk);
	return err;
}

static bool fwddev__gro_on(int ifindex)
{
	struct ethtool_value ev = { .cmd = ETHTOOL_GGRO };
	struct ifreq ifr = {};
	bool on = false;
	int fd;

	if (!if_indextoname((unsigned int)ifindex, ifr.ifr_name))
		return false;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	ifr.ifr_data = (void *)&ev;
	on = !ioctl(fd, SIOCETHTOOL, &ifr) && ev.data;
	close(fd);
	return on;
}

/* Before 6.3: a veth whose peer runs XDP or (same namespace) GRO. */
static bool fwddev__veth_capable(int ifindex, const char **why)
{
	struct fwd_reply dev = {}, peer = {};

	*why = "not a veth (before Linux 6.3 only veths are judged)";
	if (fwddev__getlink(ifindex, -1, &dev) || strcmp(dev.kind, "veth") || dev.link <= 0)
		return false;
	*why = "veth peer not found";
	if (fwddev__getlink(dev.link, dev.link_nsid, &peer))
		return false;
	*why = "veth peer runs XDP";
	if (peer.has_xdp)
		return true;
	*why = "veth peer has GRO on";
	if (dev.link_nsid < 0 && fwddev__gro_on(dev.link))
		return true;
	*why = dev.link_nsid < 0 ? "veth peer has neither XDP nor GRO" :
				   "veth peer in another namespace without XDP (its GRO is not "
				   "visible from here before Linux 6.3)";
	return false;
}

bool fwddev__capable(int ifindex, const char **why)
{
	int rc = fwddev__xdp_features(ifindex);

	if (rc >= 0) {
		*why = rc ? "xdp_features has ndo_xmit" : "xdp_features lacks ndo_xmit";
		return rc;
	}
	return fwddev__veth_capable(ifindex, why);
}

void fwddev__link_up(struct sluice *sl, int ifindex, const char *ifname)
{
	const char *why = "";
	bool on = fwddev__capable(ifindex, &why);
	int had = sluice__fwd_dev_has(sl, ifindex);

	if (had == (int)on)
		return;
	if (sluice__fwd_dev_set(sl, ifindex, on)) {
		pr_warn("fwd: %s (ifindex %d): %s", ifname, ifindex, sluice__errmsg());
		return;
	}
	pr_info("fwd: %s (ifindex %d) %s XDP redirect targets: %s", ifname, ifindex,
		on ? "joins the" : "leaves the", why);
}

void fwddev__link_gone(struct sluice *sl, int ifindex)
{
	/* the kernel drops the devmap entry of a deleted device itself; this
	 * covers a link that left the namespace */
	sluice__fwd_dev_set(sl, ifindex, false);
}
