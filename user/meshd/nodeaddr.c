// SPDX-License-Identifier: MIT
/*
 * nodeaddr.c - the node's NodePort addresses from rtnetlink (nodeaddr.h).
 *
 * Messages are decoded by hand (ifaddrmsg + IFA_LOCAL/IFA_ADDRESS), as
 * netlink.c does for links, rather than through libnl-route's caches.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>

#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include "log.h"
#include "nodeaddr.h"
#include "sluice.h"

#define NODEADDR_MAX 4096 /* more addresses than any node has: the rest ignored */

struct nodeaddr_list {
	const struct nodeaddr *na;
	struct sluice_addr *v;
	__u32 n, cap;
	bool nomem;
};

static int nodeaddr__on_event(struct nl_msg *msg, void *arg)
{
	(void)msg;
	((struct nodeaddr *)arg)->seen = true;
	return NL_OK;
}

static void list__add(struct nodeaddr_list *l, const struct sluice_addr *a)
{
	if (!k8s_nodeaddr__usable(a, l->na->cidrs, l->na->ncidrs) || l->n >= NODEADDR_MAX)
		return;
	for (__u32 i = 0; i < l->n; i++)
		if (sluice_addr__eq(&l->v[i], a))
			return; /* one address on two links */
	if (l->n == l->cap) {
		__u32 cap = l->cap ? l->cap * 2 : 16;
		struct sluice_addr *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			l->nomem = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *a;
}

static int nodeaddr__on_addr(struct nl_msg *msg, void *arg)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct nlattr *tb[IFA_MAX + 1], *at;
	struct nodeaddr_list *l = arg;
	struct sluice_addr a;
	struct ifaddrmsg *ifa;
	__u32 flags;

	memset(&a, 0, sizeof(a));
	if (nlh->nlmsg_type != RTM_NEWADDR || nlmsg_parse(nlh, sizeof(*ifa), tb, IFA_MAX, NULL) < 0)
		return NL_OK;
	ifa = nlmsg_data(nlh);
	flags = tb[IFA_FLAGS] ? nla_get_u32(tb[IFA_FLAGS]) : ifa->ifa_flags;
	if (flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED))
		return NL_OK;
	/* IPv4: IFA_LOCAL is the address (IFA_ADDRESS is the peer's on ptp links) */
	at = ifa->ifa_family == AF_INET && tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!at)
		return NL_OK;
	if (ifa->ifa_family == AF_INET && nla_len(at) == 4) {
		a.family = SLUICE_AF_INET;
		memcpy(a.addr, nla_data(at), 4);
	} else if (ifa->ifa_family == AF_INET6 && nla_len(at) == 16) {
		a.family = SLUICE_AF_INET6;
		memcpy(a.addr, nla_data(at), 16);
	} else {
		return NL_OK;
	}
	list__add(l, &a);
	return NL_OK;
}

static int addr__cmp(const void *x, const void *y)
{
	const struct sluice_addr *a = x, *b = y;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

static bool nodeaddr__same(const struct sluice_addr *a, __u32 na, const struct sluice_addr *b,
			   __u32 nb)
{
	if (na != nb)
		return false;
	for (__u32 i = 0; i < na; i++)
		if (addr__cmp(&a[i], &b[i]))
			return false;
	return true;
}

/* "node addresses for NodePorts: 2: 10.0.0.5, fd00::5" (the first 8). */
static void nodeaddr__log(const struct nodeaddr *na)
{
	char list[8 * (SLUICE_ADDR_STRLEN + 2) + 8] = "", buf[SLUICE_ADDR_STRLEN];
	size_t off = 0;

	for (__u32 i = 0; i < na->n && i < 8; i++)
		off += snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : ": ",
				sluice_addr__str(&na->addrs[i], buf, sizeof(buf)));
	if (na->n > 8)
		snprintf(list + off, sizeof(list) - off, ", ...");
	pr_info("node addresses for NodePorts%s: %u%s", na->ncidrs ? " (--nodeport-addresses)" : "",
		na->n, list);
}

/* List the addresses; hand them over when they changed. */
static int nodeaddr__sync(struct nodeaddr *na, bool first)
{
	struct ifaddrmsg ifa = { .ifa_family = AF_UNSPEC };
	struct nodeaddr_list l = { .na = na };
	struct nl_sock *sk;
	int err;

	sk = nl_socket_alloc();
	if (!sk) {
		pr_err("node addresses: out of memory");
		return -ENOMEM;
	}
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, nodeaddr__on_addr, &l);
	err = nl_connect(sk, NETLINK_ROUTE);
	if (!err)
		err = nl_send_simple(sk, RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof(ifa));
	if (err >= 0)
		err = nl_recvmsgs_default(sk);
	nl_socket_free(sk);
	if (err < 0 || l.nomem) {
		/* keep the last set: a partial list would remove NodePorts */
		pr_err("node addresses: listing them: %s",
		       l.nomem ? "out of memory" : nl_geterror(err));
		free(l.v);
		return err < 0 ? -EIO : -ENOMEM;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), addr__cmp);
	if (!first && nodeaddr__same(l.v, l.n, na->addrs, na->n)) {
		free(l.v);
		return 0;
	}
	free(na->addrs);
	na->addrs = l.v;
	na->n = l.n;
	nodeaddr__log(na);
	na->on_change(na->ctx, na->addrs, na->n);
	return 0;
}

int nodeaddr__open(struct nodeaddr *na, const char *cidrs, nodeaddr_fn on_change, void *ctx)
{
	int err;

	memset(na, 0, sizeof(*na));
	na->on_change = on_change;
	na->ctx = ctx;
	if (cidrs && k8s_cidrs__parse(cidrs, &na->cidrs, &na->ncidrs)) {
		pr_err("--nodeport-addresses: %s", sluice__errmsg());
		return -EINVAL;
	}
	na->sk = nl_socket_alloc();
	if (!na->sk) {
		pr_err("node addresses: out of memory");
		nodeaddr__close(na);
		return -ENOMEM;
	}
	nl_socket_disable_seq_check(na->sk);
	nl_socket_modify_cb(na->sk, NL_CB_VALID, NL_CB_CUSTOM, nodeaddr__on_event, na);
	err = nl_connect(na->sk, NETLINK_ROUTE);
	if (!err)
		err = nl_socket_add_memberships(na->sk, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR,
						0);
	if (!err)
		err = nl_socket_set_nonblocking(na->sk);
	if (err) {
		pr_err("node addresses: subscribing to address events: %s", nl_geterror(err));
		nodeaddr__close(na);
		return -EIO;
	}
	nl_socket_set_buffer_size(na->sk, 1 << 20, 0);
	return nodeaddr__sync(na, true);
}

int nodeaddr__fd(const struct nodeaddr *na)
{
	return na->sk ? nl_socket_get_fd(na->sk) : -1;
}

int nodeaddr__read(struct nodeaddr *na)
{
	int err;

	na->seen = false;
	for (;;) {
		err = nl_recvmsgs_default(na->sk);
		if (err >= 0)
			continue;
		if (err != -NLE_AGAIN)
			na->seen = true; /* lost events (ENOBUFS) or worse: the list is the truth */
		break;
	}
	return na->seen ? nodeaddr__sync(na, false) : 0;
}

void nodeaddr__close(struct nodeaddr *na)
{
	if (na->sk)
		nl_socket_free(na->sk);
	na->sk = NULL;
	free(na->cidrs);
	free(na->addrs);
	na->cidrs = NULL;
	na->addrs = NULL;
	na->n = na->ncidrs = 0;
}
