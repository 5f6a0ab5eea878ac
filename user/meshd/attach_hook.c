// SPDX-License-Identifier: MIT
/*
 * attach_hook.c - our program on one interface's XDP or tc ingress hook
 * (attach.c decides which interfaces; see attach.h).
 *
 * Ownership of a hook is decided by program name: xdp_lb and tc_lb are
 * ours whichever meshd loaded them, anything else is foreign. Replacing
 * uses the kernel's compare-and-swap (XDP_FLAGS_REPLACE with the expected
 * old program, UPDATE_IF_NOEXIST when the hook was empty), so a foreign
 * program attached between our check and our attach is never clobbered.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/bpf.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sluice.h"

#include "attach.h"
#include "attach_hook.h"
#include "log.h"
#include "netlink.h"

#define XDP_PROG_NAME "xdp_lb"
#define TC_PROG_NAME "tc_lb"

/* Name of a loaded program into buf ("" if it is gone already). */
void attach__prog_name(__u32 id, char *buf, size_t len)
{
	struct bpf_prog_info info;
	__u32 info_len = sizeof(info);
	int fd;

	buf[0] = '\0';
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return;
	memset(&info, 0, sizeof(info));
	if (!bpf_obj_get_info_by_fd(fd, &info, &info_len))
		snprintf(buf, len, "%s", info.name);
	close(fd);
}

static bool attach__prog_is(__u32 id, const char *want)
{
	char name[BPF_OBJ_NAME_LEN];

	attach__prog_name(id, name, sizeof(name));
	return !strcmp(name, want);
}

static __u32 attach__fd_prog_id(int prog_fd)
{
	struct bpf_prog_info info;
	__u32 info_len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &info_len))
		return 0;
	return info.id;
}

static const char *errstr(int err, char *buf, size_t len)
{
	libbpf_strerror(err, buf, len);
	return buf;
}

/* Record why e is not attached; returns err. */
static int attach__fail(struct attach_entry *e, enum attach_state state, int err, const char *fmt,
			...) __attribute__((format(printf, 4, 5)));
static int attach__fail(struct attach_entry *e, enum attach_state state, int err, const char *fmt,
			...)
{
	char msg[sizeof(e->err)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Link events repeat (carrier, MTU, ...): say it once per change.
	 * ENODEV: the link is being deleted, its DELLINK event follows. */
	if (err == -ENODEV)
		pr_debug("%s", msg);
	else if (e->state == ATTACH_ATTACHED || strcmp(msg, e->err))
		pr_err("%s", msg);
	snprintf(e->err, sizeof(e->err), "%s", msg);
	e->state = state;
	return err;
}

/* Detach one of our XDP programs, only if it is still the one attached. */
static int attach__xdp_detach_id(int ifindex, const char *ifname, __u32 flags, __u32 id,
				 const char *why)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
	char ebuf[128];
	int fd, err;

	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return 0; /* gone meanwhile */
	opts.old_prog_fd = fd;
	err = bpf_xdp_detach(ifindex, flags | XDP_FLAGS_REPLACE, &opts);
	close(fd);
	if (err) {
		pr_err("detach xdp from %s failed: %s", ifname, errstr(err, ebuf, sizeof(ebuf)));
		return err;
	}
	pr_info("detached %s xdp %s prog id %u%s", ifname,
		flags & XDP_FLAGS_SKB_MODE ? "generic" : "native", id, why);
	return 1;
}

/* Detach xdp_lb in whichever mode it sits. Returns how many, or -errno. */
static int attach__xdp_detach_ours(int ifindex, const char *ifname, const char *why)
{
	struct netlink_xdp q;
	int err, n = 0;

	if (netlink__xdp_query(ifindex, &q))
		return 0;
	if (q.drv_prog_id && attach__prog_is(q.drv_prog_id, XDP_PROG_NAME)) {
		err = attach__xdp_detach_id(ifindex, ifname, XDP_FLAGS_DRV_MODE, q.drv_prog_id,
					    why);
		if (err < 0)
			return err;
		n += err;
	}
	if (q.skb_prog_id && attach__prog_is(q.skb_prog_id, XDP_PROG_NAME)) {
		err = attach__xdp_detach_id(ifindex, ifname, XDP_FLAGS_SKB_MODE, q.skb_prog_id,
					    why);
		if (err < 0)
			return err;
		n += err;
	}
	return n;
}

int attach__tc_query(int ifindex, __u32 *prog_id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SLUICE_TC_HANDLE, .priority = SLUICE_TC_PRIO);
	int err;

	/* "no qdisc" is the common answer, not worth a log line */
	log__libbpf_quiet(true);
	err = bpf_tc_query(&hook, &opts);
	log__libbpf_quiet(false);
	if (err)
		return err; /* no clsact qdisc or no filter in our slot */
	*prog_id = opts.prog_id;
	return 0;
}

/* Detach tc_lb from tc ingress. Returns 1 if detached, 0 if absent, -errno. */
static int attach__tc_detach_ours(int ifindex, const char *ifname, const char *why)
{
	__u32 id;
	int err;

	if (attach__tc_query(ifindex, &id) || !attach__prog_is(id, TC_PROG_NAME))
		return 0;
	err = sluice__detach_tc(ifindex);
	if (err) {
		pr_err("%s", sluice__errmsg());
		return err;
	}
	pr_info("detached %s tc ingress prog id %u%s", ifname, id, why);
	return 1;
}

static int attach__refuse(struct attach_entry *e, const char *hook, __u32 id)
{
	char name[BPF_OBJ_NAME_LEN];

	attach__prog_name(id, name, sizeof(name));
	return attach__fail(
		e, ATTACH_REFUSED, -EBUSY,
		"refused foreign %s program \"%s\" id %u on %s: Sluice never replaces it; "
		"remove it or leave %s out of --interfaces",
		hook, name, id, e->ifname, e->ifname);
}

static int attach__xdp(struct attach *a, struct attach_entry *e)
{
	bool native = a->mode == ATTACH_XDP_NATIVE;
	__u32 flags = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	const char *mode = attach__mode_name(a->mode);
	LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
	struct netlink_xdp q;
	int prog_fd, old_fd = -1, err;
	__u32 same_id, other_id;
	char ebuf[128];

	prog_fd = sluice__prog_fd(a->sl, SLUICE_PROG_XDP);
	err = netlink__xdp_query(e->ifindex, &q);
	if (err)
		return attach__fail(e, ATTACH_FAILED, err, "query XDP on %s failed: %s", e->ifname,
				    errstr(err, ebuf, sizeof(ebuf)));
	if (q.drv_prog_id && !attach__prog_is(q.drv_prog_id, XDP_PROG_NAME))
		return attach__refuse(e, "XDP", q.drv_prog_id);
	if (q.skb_prog_id && !attach__prog_is(q.skb_prog_id, XDP_PROG_NAME))
		return attach__refuse(e, "XDP", q.skb_prog_id);
	if (q.hw_prog_id)
		return attach__refuse(e, "XDP offload", q.hw_prog_id);
	same_id = native ? q.drv_prog_id : q.skb_prog_id;
	other_id = native ? q.skb_prog_id : q.drv_prog_id;
	if (other_id) {
		/* The kernel holds one XDP mode at a time: a mode change
		 * cannot be atomic, say so. */
		pr_warn("%s: switching XDP from %s to %s mode, packets bypass the datapath briefly",
			e->ifname, native ? "generic" : "native", mode);
		err = attach__xdp_detach_id(e->ifindex, e->ifname,
					    native ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE,
					    other_id, " (mode change)");
		if (err < 0)
			return attach__fail(e, ATTACH_FAILED, err, "%s: XDP mode change failed",
					    e->ifname);
	}
	if (same_id) {
		old_fd = bpf_prog_get_fd_by_id(same_id);
		if (old_fd < 0) /* detached meanwhile: the hook is empty now */
			same_id = 0;
	}
	if (same_id) {
		opts.old_prog_fd = old_fd;
		err = bpf_xdp_attach(e->ifindex, prog_fd, flags | XDP_FLAGS_REPLACE, &opts);
		close(old_fd);
	} else {
		err = bpf_xdp_attach(e->ifindex, prog_fd, flags | XDP_FLAGS_UPDATE_IF_NOEXIST,
				     NULL);
	}
	if (err == -EEXIST || err == -EBUSY)
		return attach__fail(e, ATTACH_FAILED, err,
				    "attach xdp %s to %s: another program was attached meanwhile; "
				    "retrying on the next link event",
				    mode, e->ifname);
	if (err)
		return attach__fail(e, ATTACH_FAILED, err, "attach xdp %s to %s failed: %s%s", mode,
				    e->ifname, errstr(err, ebuf, sizeof(ebuf)),
				    native && err == -EOPNOTSUPP ?
					    " (driver lacks native XDP: use --xdp-mode generic)" :
					    "");
	e->prog_id = attach__fd_prog_id(prog_fd);
	if (same_id)
		pr_info("attached %s xdp %s prog id %u (replaced prog id %u)", e->ifname, mode,
			e->prog_id, same_id);
	else
		pr_info("attached %s xdp %s prog id %u", e->ifname, mode, e->prog_id);
	return 0;
}

static int attach__tc(struct attach *a, struct attach_entry *e)
{
	__u32 old_id = 0;
	int err;

	if (!attach__tc_query(e->ifindex, &old_id) && !attach__prog_is(old_id, TC_PROG_NAME))
		return attach__refuse(e, "tc ingress", old_id);
	/* BPF_TC_F_REPLACE: the filter's program is swapped under RCU. */
	err = sluice__attach_tc(a->sl, e->ifindex);
	if (err)
		return attach__fail(e, ATTACH_FAILED, err, "%s", sluice__errmsg());
	e->prog_id = attach__fd_prog_id(sluice__prog_fd(a->sl, SLUICE_PROG_TC));
	if (old_id)
		pr_info("attached %s tc ingress prog id %u (replaced prog id %u)", e->ifname,
			e->prog_id, old_id);
	else
		pr_info("attached %s tc ingress prog id %u", e->ifname, e->prog_id);
	return 0;
}

void attach__try(struct attach *a, struct attach_entry *e)
{
	int err;

	err = a->mode == ATTACH_XDP_OFF ? attach__tc(a, e) : attach__xdp(a, e);
	if (err)
		return;
	e->state = ATTACH_ATTACHED;
	e->err[0] = '\0';
	/* The hook we left behind after a mode change would NAT twice. */
	if (a->mode == ATTACH_XDP_OFF)
		attach__xdp_detach_ours(e->ifindex, e->ifname, " (now at tc ingress)");
	else
		attach__tc_detach_ours(e->ifindex, e->ifname, " (now at xdp)");
}

/* Still ours? XDP changes on an interface that is up come as link events;
 * tc changes and anything on a down interface only the periodic check sees. */
void attach__verify(struct attach *a, struct attach_entry *e)
{
	bool tc = a->mode == ATTACH_XDP_OFF;
	const char *hook = tc ? "tc ingress" : "xdp";
	struct netlink_xdp q;
	__u32 id = 0, old_id;

	if (tc) {
		if (attach__tc_query(e->ifindex, &id))
			id = 0; /* no filter in our slot, or no clsact qdisc */
	} else {
		if (netlink__xdp_query(e->ifindex, &q))
			return; /* the link is going away */
		id = a->mode == ATTACH_XDP_NATIVE ? q.drv_prog_id : q.skb_prog_id;
	}
	if (id == e->prog_id)
		return;
	if (id)
		pr_warn("%s: %s prog id %u replaced ours (prog id %u)", e->ifname, hook, id,
			e->prog_id);
	old_id = e->prog_id;
	attach__try(a, e);
	/* No program while the link is being deleted is no news: only
	 * report a detach when the link is still there to attach to. */
	if (!id && e->state == ATTACH_ATTACHED)
		pr_warn("%s: our %s program (prog id %u) had been detached by someone else",
			e->ifname, hook, old_id);
}

int attach__cleanup(void)
{
	struct if_nameindex *ifs, *it;
	int n = 0, err, ret = 0;

	ifs = if_nameindex();
	if (!ifs) {
		err = -errno;
		pr_err("cannot list interfaces: %s", strerror(errno));
		return err;
	}
	for (it = ifs; it->if_index; it++) {
		err = attach__xdp_detach_ours(it->if_index, it->if_name, "");
		if (err < 0)
			ret = err;
		else
			n += err;
		err = attach__tc_detach_ours(it->if_index, it->if_name, "");
		if (err < 0)
			ret = err;
		else
			n += err;
	}
	if_freenameindex(ifs);
	return ret ? ret : n;
}
