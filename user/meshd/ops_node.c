// SPDX-License-Identifier: MIT
/*
 * ops_node.c - API op handlers for the node as a whole: status (versions,
 * attachments, map fill, counters, metrics and telemetry), conntrack
 * list/flush and uninstall.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>

#include "api.h"
#include "sluice.h"

#include "attach.h"
#include "ct.h"
#include "exporter.h"
#include "follow.h"
#include "k8sint.h"
#include "kfeat.h"
#include "meshd.h"
#include "ops.h"
#include "pin.h"
#include "sockint.h"
#include "telem.h"

/* A conntrack listing beyond this would not fit SLUICE_API_MAX_MSG. */
#define OPS_CT_LIST_MAX 50000

static int ops__count_one(const void *key, const void *value, void *ctx)
{
	(void)key;
	(void)value;
	(*(__u64 *)ctx)++;
	return 0;
}

/* Fill of one map. services, backends and the Maglev outer array from
 * the counts the library keeps in step with meshd's writes (#16: walking
 * them took 0.2-0.6 s per status at 10k services); the outer array by the
 * services that hold a slot, never by looking its slots up (a userspace
 * lookup of an array-of-maps element waits for an RCU grace period on
 * kernels up to 6.5, 16-18 ms each on 6.1). The other hash maps, which
 * the datapath writes too (conntrack) or that are small, by a walk. */
struct json_object *ops__map_fill(struct sluice *sl, const char *name)
{
	bool svcs = !strcmp(name, "services"), bes = !strcmp(name, "backends");
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	__u64 n = 0, nsvc, nmark, nbe;
	struct json_object *o;
	int fd;

	fd = sluice__map_fd(sl, name);
	memset(&info, 0, sizeof(info));
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return NULL;
	if (svcs || bes || info.type == BPF_MAP_TYPE_ARRAY_OF_MAPS) {
		if (sluice__map_entries(sl, &nsvc, &nmark, bes ? &nbe : NULL))
			pr_warn("status: %s", sluice__errmsg());
		else
			n = svcs ? nsvc + nmark : bes ? nbe : nsvc;
	} else if (sluice__map_walk(fd, name, info.key_size, info.value_size, ops__count_one, &n)) {
		pr_warn("status: %s", sluice__errmsg());
	}
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "entries", json_object_new_int64(n));
	json_object_object_add(o, "capacity", json_object_new_int64(info.max_entries));
	return o;
}

/* The maps' kernel memory (#16), null when it cannot be read. */
static struct json_object *ops__kmem_json(struct sluice *sl)
{
	struct json_object *o;
	struct sluice_kmem k;

	if (!sl || sluice__kernel_memory(sl, &k))
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)k.bytes));
	json_object_object_add(o, "maps", json_object_new_int64(k.maps));
	json_object_object_add(o, "maglev_bytes", json_object_new_int64((int64_t)k.maglev_bytes));
	json_object_object_add(o, "maglev_tables", json_object_new_int64(k.maglev_tables));
	return o;
}

/* #16: {"reused": bool, "reason": text} of this start's programs. */
static struct json_object *ops__progs_json(const struct sluice *sl)
{
	struct json_object *o = json_object_new_object();
	const char *why;
	bool reused = sluice__progs_reused(sl, &why);

	json_object_object_add(o, "reused", json_object_new_boolean(reused));
	json_object_object_add(o, "reason", json_object_new_string(why));
	return o;
}

struct json_object *ops__status(struct meshd *m, struct json_object *req)
{
	/* Per-CPU arrays (stats, counters, drops) are preallocated and
	 * always "full": their fill says nothing, so they are left out. */
	static const char *const maps[] = { "services",    "backends",     "maglev",
					    "conntrack",   "src_ranges",   "policy",
					    "policy_node", "policy_nhost", "policy_hash" };
	struct json_object *d = json_object_new_object(), *arr, *o;
	__u64 cnt[SLUICE_CNT__MAX], drops[SLUICE_DROP__MAX];
	time_t now = time(NULL);

	(void)req;
	json_object_object_add(d, "version", json_object_new_string(SLUICE_VERSION));
	json_object_object_add(d, "layout_version", json_object_new_int(SLUICE_LAYOUT_VERSION));
	json_object_object_add(d, "started_at", json_object_new_int64(m->started_at));
	json_object_object_add(d, "uptime_seconds", json_object_new_int64(now - m->started_at));
	json_object_object_add(d, "pin_dir", json_object_new_string(m->cfg.bpffs));
	json_object_object_add(d, "programs", ops__progs_json(m->sl));
	json_object_object_add(d, "state_file", json_object_new_string(m->cfg.state));
	json_object_object_add(d, "xdp_mode",
			       json_object_new_string(attach__mode_name(m->cfg.xdp_mode)));
	json_object_object_add(d, "attachments", attach__to_json(&m->att));
	/* Beyond api.h: matching interfaces that are not attached, and why. */
	json_object_object_add(d, "attach_errors", attach__errors_json(&m->att));
	arr = json_object_new_array();
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		o = ops__map_fill(m->sl, maps[i]);
		if (o)
			json_object_array_add(arr, o);
	}
	json_object_object_add(d, "maps", arr);
	/* group commit (#16): batches, fsyncs and where a change's time goes */
	json_object_object_add(d, "commit", state__group_json(&m->state));
	o = json_object_new_object();
	if (!sluice__counters(m->sl, cnt))
		for (int i = 0; i < SLUICE_CNT__MAX; i++)
			json_object_object_add(o, sluice__counter_name(i),
					       json_object_new_int64((int64_t)cnt[i]));
	json_object_object_add(d, "counters", o);
	o = json_object_new_object();
	if (!sluice__drops(m->sl, drops))
		for (int i = SLUICE_DROP_NONE + 1; i < SLUICE_DROP__MAX; i++)
			json_object_object_add(o, sluice__drop_name(i),
					       json_object_new_int64((int64_t)drops[i]));
	json_object_object_add(d, "drops", o);
	/* The optional parts: null or "running": false when off, so a
	 * client tells "off" from "an older meshd without it". */
	json_object_object_add(d, "metrics", exporter__status_json(&m->exporter));
	json_object_object_add(d, "api", server__status_json(&m->api));
	json_object_object_add(d, "telemetry",
			       telem__status_json(&m->telem, follow__count(&m->follow)));
	json_object_object_add(d, "kubernetes", k8sint__status_json(&m->kube));
	json_object_object_add(d, "socket_lb", sockint__lb_json(&m->sock));
	json_object_object_add(d, "redirect", sockint__redir_json(&m->sock));
	json_object_object_add(d, "outlier_detection", outlier__status_json(&m->outlier));
	json_object_object_add(d, "kernel", kfeat__json());
	json_object_object_add(d, "kernel_memory", ops__kmem_json(m->sl));
	return api__ok(d);
}

/* --- conntrack --- */

static struct json_object *ops__ct_filter(struct json_object *req, struct ct_filter *f)
{
	struct json_object *err;
	struct svc_ref ref;

	memset(f, 0, sizeof(*f));
	if (!ops__has(req, "service")) {
		f->all = true;
		return NULL;
	}
	err = ops__svc_arg(req, &ref);
	if (err)
		return err;
	f->vip = ref.vip;
	f->port = ref.port;
	f->proto = ref.proto;
	return NULL;
}

struct json_object *ops__conntrack_list(struct meshd *m, struct json_object *req)
{
	struct json_object *err, *entries, *d;
	struct ct_filter f;
	__u64 total;

	err = ops__ct_filter(req, &f);
	if (err)
		return err;
	entries = json_object_new_array();
	if (ct__list(m->sl, &f, OPS_CT_LIST_MAX, entries, &total)) {
		json_object_put(entries);
		return api__error("%s", sluice__errmsg());
	}
	d = json_object_new_object();
	json_object_object_add(d, "entries", entries);
	json_object_object_add(d, "total", json_object_new_int64(total));
	json_object_object_add(d, "truncated", json_object_new_boolean(total > OPS_CT_LIST_MAX));
	return api__ok(d);
}

struct json_object *ops__conntrack_flush(struct meshd *m, struct json_object *req)
{
	struct json_object *err, *d;
	__u64 conns, entries;
	struct ct_filter f;
	int rc;

	err = ops__ct_filter(req, &f);
	if (err)
		return err;
	rc = ct__flush(m->sl, &f, &conns, &entries);
	pr_info("conntrack flush%s%s: %llu connections, %llu entries deleted%s",
		f.all ? "" : " of ", f.all ? "" : ops__str(req, "service"),
		(unsigned long long)conns, (unsigned long long)entries,
		rc ? " (stopped by an error)" : "");
	if (rc)
		return api__error("%s", sluice__errmsg());
	d = json_object_new_object();
	json_object_object_add(d, "deleted", json_object_new_int64(conns));
	json_object_object_add(d, "entries_deleted", json_object_new_int64(entries));
	return api__ok(d);
}

/* --- uninstall --- */

struct json_object *ops__uninstall(struct meshd *m, struct json_object *req)
{
	struct json_object *d;
	bool telem;
	int n, err;

	(void)req;
	pr_info("uninstall requested: detaching programs and removing pins");
	/* pin__remove() detaches the pinned telemetry link with its pins */
	telem = m->telem.t != NULL;
	n = attach__cleanup();
	err = pin__remove(m->cfg.bpffs);
	/* Exit even when something is left: the operator asked for meshd to go. */
	m->stop = true;
	m->uninstalled = true;
	if (n < 0)
		return api__error(
			"uninstall: detaching failed on some interface (see meshd's log); pins %s",
			err ? "not removed" : "removed");
	if (err)
		return api__error(
			"uninstall: %d programs detached, but removing the pins in %s failed: %s",
			n, m->cfg.bpffs, strerror(-err));
	d = json_object_new_object();
	json_object_object_add(d, "detached", json_object_new_int(n));
	json_object_object_add(d, "pin_dir", json_object_new_string(m->cfg.bpffs));
	if (telem)
		json_object_object_add(d, "telemetry_cgroup",
				       json_object_new_string(m->cfg.cgroup));
	/* pin__remove() also detached the pinned socket-LB/redirect links */
	if (m->sock.lb_running || m->sock.redir_running)
		json_object_object_add(d, "socket_cgroup", json_object_new_string(m->cfg.cgroup));
	return api__ok(d);
}
