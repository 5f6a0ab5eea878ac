// SPDX-License-Identifier: MIT
/*
 * telem.c - connection telemetry in the agent (see telem.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sluice.h"
#include "telemetry.h"

#include "conns.h"
#include "follow.h"
#include "log.h"
#include "meshd.h"
#include "telem.h"

/* Every record read: to the followers, if there are any. */
static void telem__on_record(const struct sluice_telem_rec *rec, void *ctx)
{
	struct meshd *m = ctx;

	if (follow__count(&m->follow))
		conns__broadcast(m, rec);
}

static int telem__off(struct meshd *m)
{
	bool was_attached = telemetry__pinned(m->cfg.bpffs);
	int err;

	err = telemetry__unpin(m->cfg.bpffs);
	if (err) {
		pr_err("--telemetry off: removing the telemetry an earlier meshd left: %s",
		       sluice__errmsg());
		return err;
	}
	if (was_attached)
		pr_info("telemetry off: detached the telemetry program an earlier meshd left");
	else
		pr_info("telemetry off");
	return 0;
}

int telem__start(struct meshd *m)
{
	struct telemetry_opts opts = {
		.pin_dir = m->cfg.bpffs,
		.interval_s = m->cfg.telemetry_interval,
		.recent = TELEM_RECENT,
	};
	struct telem *tm = &m->telem;
	int cgfd, err;

	tm->error[0] = '\0';
	if (!m->cfg.telemetry)
		return telem__off(m);
	if (!m->cfg.cgroup) {
		snprintf(tm->error, sizeof(tm->error), "no cgroup v2 mount found (give --cgroup)");
		pr_warn("telemetry unavailable: %s", tm->error);
		return 0;
	}
	cgfd = open(m->cfg.cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		snprintf(tm->error, sizeof(tm->error), "cgroup %s: %s", m->cfg.cgroup,
			 strerror(errno));
		pr_warn("telemetry unavailable: %s", tm->error);
		return 0;
	}
	/* The attachment holds the cgroup; the fd is not needed after. */
	err = telemetry__open(&tm->t, m->sl, cgfd, &opts);
	close(cgfd);
	if (err) {
		tm->t = NULL;
		snprintf(tm->error, sizeof(tm->error), "%s", sluice__errmsg());
		pr_warn("telemetry unavailable, the datapath runs without it: %s", tm->error);
		return 0;
	}
	telemetry__set_record_cb(tm->t, telem__on_record, m);
	if (m->cfg.telemetry_interval)
		pr_info("telemetry on cgroup %s: every TCP connection to or from a service, "
			"long-lived ones reported every %us",
			m->cfg.cgroup, m->cfg.telemetry_interval);
	else
		pr_info("telemetry on cgroup %s: every TCP connection to or from a service",
			m->cfg.cgroup);
	return 0;
}

void telem__stop(struct meshd *m)
{
	telemetry__close(m->telem.t); /* the pinned link stays attached */
	m->telem.t = NULL;
}

int telem__ring_fd(const struct meshd *m)
{
	return m->telem.t ? telemetry__ring_fd(m->telem.t) : -1;
}

void telem__read(struct meshd *m)
{
	if (m->telem.t && telemetry__consume(m->telem.t) < 0)
		pr_warn("telemetry: %s", sluice__errmsg());
}

void telem__changed(struct meshd *m)
{
	conns__stale(&m->conns);
	if (m->telem.t && telemetry__sync(m->telem.t))
		pr_warn("telemetry: updating its view of the services: %s", sluice__errmsg());
}

static void telem__add_u64(struct json_object *o, const char *key, __u64 v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

struct json_object *telem__status_json(struct meshd *m)
{
	struct json_object *o = json_object_new_object();
	struct telemetry_info info;

	json_object_object_add(o, "enabled", json_object_new_boolean(m->cfg.telemetry));
	json_object_object_add(o, "running", json_object_new_boolean(m->telem.t != NULL));
	json_object_object_add(o, "cgroup",
			       m->cfg.cgroup ? json_object_new_string(m->cfg.cgroup) : NULL);
	json_object_object_add(o, "interval_seconds",
			       json_object_new_int64(m->cfg.telemetry_interval));
	if (m->telem.error[0])
		json_object_object_add(o, "error", json_object_new_string(m->telem.error));
	json_object_object_add(o, "followers", json_object_new_int64(follow__count(&m->follow)));
	if (!m->telem.t)
		return o;
	if (telemetry__info(m->telem.t, &info)) {
		json_object_object_add(o, "error", json_object_new_string(sluice__errmsg()));
		return o;
	}
	json_object_object_add(o, "attached", json_object_new_boolean(info.attached));
	telem__add_u64(o, "cgroup_id", info.cgroup_id);
	for (unsigned int i = 0; i < TELEMETRY_COUNTERS; i++) {
		struct telemetry_counter c = telemetry__counter(&info, i);

		telem__add_u64(o, c.key, c.value);
	}
	telem__add_u64(o, "endpoints", info.endpoints);
	telem__add_u64(o, "endpoints_capacity", info.endpoints_max);
	telem__add_u64(o, "ring_bytes", info.ring_bytes);
	return o;
}
