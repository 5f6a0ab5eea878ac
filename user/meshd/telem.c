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

#include "log.h"
#include "telem.h"

static int telem__off(struct telem *tm)
{
	const char *pin_dir = tm->cfg.pin_dir;
	bool was_attached = telemetry__pinned(pin_dir);
	int err;

	err = telemetry__unpin(pin_dir);
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

int telem__start(struct telem *tm, const struct telem_cfg *cfg, struct sluice *sl)
{
	struct telemetry_opts opts = {
		.pin_dir = cfg->pin_dir,
		.interval_s = cfg->interval_s,
		.recent = TELEM_RECENT,
	};
	int cgfd, err;

	tm->cfg = *cfg;
	tm->error[0] = '\0';
	if (!cfg->enabled)
		return telem__off(tm);
	if (!cfg->cgroup) {
		snprintf(tm->error, sizeof(tm->error), "no cgroup v2 mount found (give --cgroup)");
		pr_warn("telemetry unavailable: %s", tm->error);
		return 0;
	}
	cgfd = open(cfg->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		snprintf(tm->error, sizeof(tm->error), "cgroup %s: %s", cfg->cgroup,
			 strerror(errno));
		pr_warn("telemetry unavailable: %s", tm->error);
		return 0;
	}
	/* The attachment holds the cgroup; the fd is not needed after. */
	err = telemetry__open(&tm->t, sl, cgfd, &opts);
	close(cgfd);
	if (err) {
		tm->t = NULL;
		snprintf(tm->error, sizeof(tm->error), "%s", sluice__errmsg());
		pr_warn("telemetry unavailable, the datapath runs without it: %s", tm->error);
		return 0;
	}
	if (cfg->on_record)
		telemetry__set_record_cb(tm->t, cfg->on_record, cfg->ctx);
	if (cfg->interval_s)
		pr_info("telemetry on cgroup %s: every TCP connection to or from a service, "
			"long-lived ones reported every %us",
			cfg->cgroup, cfg->interval_s);
	else
		pr_info("telemetry on cgroup %s: every TCP connection to or from a service",
			cfg->cgroup);
	return 0;
}

void telem__stop(struct telem *tm)
{
	telemetry__close(tm->t); /* the pinned link stays attached */
	tm->t = NULL;
}

int telem__ring_fd(const struct telem *tm)
{
	return tm->t ? telemetry__ring_fd(tm->t) : -1;
}

void telem__read(struct telem *tm)
{
	if (tm->t && telemetry__consume(tm->t) < 0)
		pr_warn("telemetry: %s", sluice__errmsg());
}

void telem__changed(struct telem *tm)
{
	if (tm->t && telemetry__sync(tm->t))
		pr_warn("telemetry: updating its view of the services: %s", sluice__errmsg());
}

static void telem__add_u64(struct json_object *o, const char *key, __u64 v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

struct json_object *telem__status_json(const struct telem *tm, size_t followers)
{
	struct json_object *o = json_object_new_object();
	struct telemetry_info info;

	json_object_object_add(o, "enabled", json_object_new_boolean(tm->cfg.enabled));
	json_object_object_add(o, "running", json_object_new_boolean(tm->t != NULL));
	json_object_object_add(o, "cgroup",
			       tm->cfg.cgroup ? json_object_new_string(tm->cfg.cgroup) : NULL);
	json_object_object_add(o, "interval_seconds", json_object_new_int64(tm->cfg.interval_s));
	if (tm->error[0])
		json_object_object_add(o, "error", json_object_new_string(tm->error));
	json_object_object_add(o, "followers", json_object_new_int64(followers));
	if (!tm->t)
		return o;
	if (telemetry__info(tm->t, &info)) {
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
