// SPDX-License-Identifier: MIT
/*
 * ops_doctor.c - the "doctor" API op: what only meshd can check, each as
 * {"name","status","detail","hint"} for `meshctl doctor`, which adds the
 * checks of the node it runs on (kernel features) and of the two versions.
 *
 * Contract: read-only and bounded, it never stalls the loop: the hooks are
 * asked live (netlink, prog queries, a few syscalls each); services and
 * backends are read back once each (both bounded by their capacity);
 * conntrack, affinity and the other LRU maps are NOT walked here: their
 * fill is what the last /metrics scrape counted (with its age), or "not
 * counted" when nothing scraped yet. The reply carries meshd's version and
 * clock so meshctl can check skew.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/bpf.h>
#include <linux/magic.h>

#include <bpf/bpf.h>

#include "api.h"
#include "desired.h"
#include "doctor.h"
#include "sluice.h"

#include "attach.h"
#include "attach_hook.h"
#include "meshd.h"
#include "netlink.h"
#include "ops.h"

#define DOCTOR_XDP_PROG "xdp_lb"
#define DOCTOR_TC_PROG "tc_lb"

static void doctor__bpffs(struct meshd *m, struct json_object *arr)
{
	struct statfs sfs;

	if (statfs(m->cfg.bpffs, &sfs))
		doctor__add(arr, "bpffs", DOCTOR_FAIL,
			    "mount bpffs: mount -t bpf bpf /sys/fs/bpf, then restart meshd",
			    "pin dir %s: %s", m->cfg.bpffs, strerror(errno));
	else if (sfs.f_type != BPF_FS_MAGIC)
		doctor__add(
			arr, "bpffs", DOCTOR_FAIL,
			"mount bpffs there (mount -t bpf bpf DIR): pins elsewhere die with meshd",
			"pin dir %s is not on a bpf filesystem", m->cfg.bpffs);
	else
		doctor__add(arr, "bpffs", DOCTOR_OK, NULL, "pin dir %s is on bpffs", m->cfg.bpffs);
}

/* Up? By ioctl, which answers for meshd's network namespace (unlike /sys
 * when only the network namespace was entered). -1: unknown. */
static int doctor__if_up(const char *ifname)
{
	struct ifreq ifr = {};
	int fd, up = -1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (!ioctl(fd, SIOCGIFFLAGS, &ifr))
		up = !!(ifr.ifr_flags & IFF_UP);
	close(fd);
	return up;
}

/* Who holds the hook of e now: our program, a foreign one, or nobody. */
static void doctor__hook(struct meshd *m, const struct attach_entry *e, struct json_object *arr,
			 const char *name)
{
	const char *hint_foreign = "remove it (ip link set dev IF xdp off / tc filter del) or "
				   "leave the interface out of --interfaces";
	bool tc = m->att.mode == ATTACH_XDP_OFF;
	char pname[BPF_OBJ_NAME_LEN];
	struct netlink_xdp q = {};
	__u32 id = 0;
	bool generic;

	if (tc) {
		if (attach__tc_query(e->ifindex, &id))
			id = 0;
	} else if (netlink__xdp_query(e->ifindex, &q)) {
		doctor__add(arr, name, DOCTOR_FAIL, "check `ip link`", "XDP query failed: %s",
			    strerror(errno));
		return;
	}
	if (!tc) {
		id = q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id;
		id = id ? id : q.hw_prog_id;
	}
	generic = !tc && !q.drv_prog_id && q.skb_prog_id;
	if (!id) {
		doctor__add(arr, name, DOCTOR_FAIL, "see meshd's log; `meshctl status` shows why",
			    "no program on its %s hook%s%s", tc ? "tc ingress" : "XDP",
			    e->err[0] ? ": " : "", e->err);
		return;
	}
	attach__prog_name(id, pname, sizeof(pname));
	if (strcmp(pname, tc ? DOCTOR_TC_PROG : DOCTOR_XDP_PROG)) {
		doctor__add(arr, name, DOCTOR_FAIL, hint_foreign,
			    "FOREIGN %s program \"%s\" id %u holds the hook: Sluice is not there",
			    tc ? "tc ingress" : "XDP", pname, id);
		return;
	}
	if (generic)
		doctor__add(arr, name, DOCTOR_WARN,
			    "use a driver with native XDP, or --xdp-mode native when it has one",
			    "ours (%s id %u) in generic XDP mode: works, but slow", pname, id);
	else
		doctor__add(arr, name, DOCTOR_OK, NULL, "ours (%s id %u), %s", pname, id,
			    tc ? "tc ingress" : "native XDP");
}

static void doctor__interfaces(struct meshd *m, struct json_object *arr)
{
	char name[IF_NAMESIZE + 16];
	int up;

	if (!m->att.n)
		doctor__add(arr, "interfaces", DOCTOR_WARN,
			    "check --interfaces (names or globs of this node's uplinks)",
			    "no interface matches --interfaces: no packet path on this node");
	for (int i = 0; i < m->att.n; i++) {
		const struct attach_entry *e = &m->att.list[i];

		snprintf(name, sizeof(name), "iface %s", e->ifname);
		doctor__hook(m, e, arr, name);
		up = doctor__if_up(e->ifname);
		if (up == 0)
			doctor__add(arr, name, DOCTOR_WARN, "ip link set dev IF up",
				    "interface is down: carries no traffic");
	}
}

/* Does the cgroup (or map) hold a program called want at type? */
static int doctor__has_prog(int target_fd, enum bpf_attach_type type, const char *want)
{
	__u32 ids[64], cnt = 64;
	char pname[BPF_OBJ_NAME_LEN];

	if (bpf_prog_query(target_fd, type, 0, NULL, ids, &cnt))
		return -errno;
	for (__u32 i = 0; i < cnt; i++) {
		attach__prog_name(ids[i], pname, sizeof(pname));
		if (!strcmp(pname, want))
			return 1;
	}
	return 0;
}

static const struct {
	const char *prog;
	enum bpf_attach_type type;
	bool redir; /* part of --redirect, else of --socket-lb */
} doctor_sock_hooks[] = {
	{ "sock_connect4", BPF_CGROUP_INET4_CONNECT, false },
	{ "sock_connect6", BPF_CGROUP_INET6_CONNECT, false },
	{ "sock_health_ops", BPF_CGROUP_SOCK_OPS, false },
	{ "redir_sockops", BPF_CGROUP_SOCK_OPS, true },
};

/* The sk_msg verdict on the pinned redir_socks map. */
static int doctor__skmsg(struct meshd *m)
{
	char path[4096];
	int fd, rc;

	if (sluice__path_join(path, sizeof(path), m->cfg.bpffs, "redir_socks"))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	rc = doctor__has_prog(fd, BPF_SK_MSG_VERDICT, "redir_msg");
	close(fd);
	return rc;
}

static void doctor__sockets(struct meshd *m, struct json_object *arr)
{
	const char *hint = "see meshd's log and `meshctl status` (socket LB, redirect)";
	const char *cg = m->cfg.cgroup;
	char missing[256] = "";
	size_t off = 0;
	int fd, rc;

	if (!m->cfg.socket_lb && !m->cfg.redirect) {
		doctor__add(arr, "socket hooks", DOCTOR_OK, NULL,
			    "socket LB and redirect are off (not asked for)");
		return;
	}
	fd = cg ? open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd < 0) {
		doctor__add(arr, "socket hooks", DOCTOR_FAIL,
			    "give meshd --cgroup of an existing cgroup v2 directory",
			    "cgroup %s: %s", cg ? cg : "(none found)",
			    cg ? strerror(errno) : "no cgroup v2 mount");
		return;
	}
	for (size_t i = 0; i < sizeof(doctor_sock_hooks) / sizeof(doctor_sock_hooks[0]); i++) {
		if (doctor_sock_hooks[i].redir ? !m->cfg.redirect : !m->cfg.socket_lb)
			continue;
		rc = doctor__has_prog(fd, doctor_sock_hooks[i].type, doctor_sock_hooks[i].prog);
		if (rc != 1 && off < sizeof(missing))
			off += snprintf(missing + off, sizeof(missing) - off, "%s%s",
					off ? ", " : "", doctor_sock_hooks[i].prog);
	}
	close(fd);
	if (m->cfg.redirect && m->sock.redir_running && doctor__skmsg(m) == 0 &&
	    off < sizeof(missing))
		off += snprintf(missing + off, sizeof(missing) - off, "%sredir_msg (sk_msg)",
				off ? ", " : "");
	if (off)
		doctor__add(arr, "socket hooks", DOCTOR_FAIL, hint, "cgroup %s lacks %s", cg,
			    missing);
	else if (m->cfg.redirect && !m->sock.redir_running)
		doctor__add(arr, "socket hooks", DOCTOR_WARN, hint,
			    "redirect asked for but off: %s", m->sock.redir_error);
	else
		doctor__add(arr, "socket hooks", DOCTOR_OK, NULL, "cgroup %s has our %s%s%s", cg,
			    m->cfg.socket_lb ? "connect/sockops programs" : "",
			    m->cfg.socket_lb && m->cfg.redirect ? " and " : "",
			    m->cfg.redirect ? "redirect (sockops + sk_msg)" : "");
}

static void doctor__fill_one(struct json_object *arr, const char *map, __u64 n, __u64 cap,
			     const char *age)
{
	enum doctor_status st = doctor__fill(n, cap);
	char name[48];

	snprintf(name, sizeof(name), "map %s", map);
	doctor__add(arr, name, st,
		    st == DOCTOR_FAIL ? "near full: new entries fail; raise the capacity or "
					"remove what is unused" :
					"filling up: plan for more capacity",
		    "%llu of %llu entries (%.1f%%)%s", (unsigned long long)n,
		    (unsigned long long)cap, cap ? 100.0 * (double)n / (double)cap : 0.0, age);
}

/* services and backends counted now (bounded by their capacity); the
 * other maps as the last scrape counted them. */
static void doctor__maps(struct meshd *m, struct json_object *arr)
{
	static const char *const now[] = { "services", "backends" };
	const struct exporter *e = &m->exporter;
	char age[64];

	for (size_t i = 0; i < 2; i++) {
		struct json_object *o = ops__map_fill(m->sl, now[i]), *n, *c;

		if (o && json_object_object_get_ex(o, "entries", &n) &&
		    json_object_object_get_ex(o, "capacity", &c))
			doctor__fill_one(arr, now[i], json_object_get_int64(n),
					 json_object_get_int64(c), "");
		json_object_put(o);
	}
	if (!e->fill_at) {
		doctor__add(arr, "map conntrack", DOCTOR_OK, NULL,
			    "not counted: %s (walking it here could stall meshd)",
			    e->h ? "no /metrics scrape yet" : "--metrics is off");
		return;
	}
	snprintf(age, sizeof(age), " at the scrape %llds ago",
		 (long long)(time(NULL) - e->fill_at));
	for (size_t i = 0; i < e->nfill; i++)
		if (strcmp(e->fill[i].name, "services") && strcmp(e->fill[i].name, "backends"))
			doctor__fill_one(arr, e->fill[i].name, e->fill[i].entries,
					 e->fill[i].capacity, age);
}

static void doctor__drift_check(struct meshd *m, struct json_object *arr)
{
	struct desired have;
	char text[768];
	int n;

	/* the map itself, not the index: a write by anyone else shows */
	if (desired__from_maps_walk(m->sl, &have)) {
		doctor__add(arr, "drift", DOCTOR_FAIL, "see meshd's log", "reading the maps: %s",
			    sluice__errmsg());
		return;
	}
	n = doctor__drift(&m->state.desired, &have, text, sizeof(text));
	desired__free(&have);
	if (n < 0)
		doctor__add(arr, "drift", DOCTOR_FAIL, NULL, "out of memory comparing");
	else if (n)
		doctor__add(arr, "drift", DOCTOR_FAIL,
			    "restart meshd (it reconciles the maps with its state at start), or "
			    "re-apply the service",
			    "%d difference%s between meshd's state and the maps: %s%s", n,
			    n == 1 ? "" : "s", text, n > DOCTOR_DRIFT_SHOWN ? "; ..." : "");
	else
		doctor__add(arr, "drift", DOCTOR_OK, NULL,
			    "the maps hold meshd's state (%u service%s)",
			    m->state.desired.nservices, m->state.desired.nservices == 1 ? "" : "s");
}

struct json_object *ops__doctor(struct meshd *m, struct json_object *req)
{
	struct json_object *d = json_object_new_object(), *arr = json_object_new_array();
	struct timespec ts;

	(void)req;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_object_object_add(d, "version", json_object_new_string(SLUICE_VERSION));
	json_object_object_add(d, "layout_version", json_object_new_int(SLUICE_LAYOUT_VERSION));
	json_object_object_add(d, "time",
			       json_object_new_double((double)ts.tv_sec + ts.tv_nsec / 1e9));
	json_object_object_add(d, "pin_dir", json_object_new_string(m->cfg.bpffs));
	json_object_object_add(d, "xdp_mode",
			       json_object_new_string(attach__mode_name(m->cfg.xdp_mode)));
	doctor__bpffs(m, arr);
	doctor__interfaces(m, arr);
	doctor__sockets(m, arr);
	doctor__maps(m, arr);
	doctor__drift_check(m, arr);
	json_object_object_add(d, "checks", arr);
	return api__ok(d);
}
