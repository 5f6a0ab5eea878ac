// SPDX-License-Identifier: MIT
/*
 * telemetry.c - loading and attaching the connection telemetry program
 * (bpf/telemetry.bpf.c, cgroup sockops) and reading its ring buffer.
 *
 * Contract (see telemetry.h): the datapath maps are the very maps of the
 * struct sluice (bpf_map__reuse_fd); telem_* maps and the cgroup link are
 * pinned under pin_dir when one is given, reused by the next agent, and
 * the link is updated in place (no moment without telemetry). A pinned
 * ring buffer of another size than asked is replaced (the records waiting
 * in it are the price of resizing). Aggregation lives in telemetry_agg.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"
#include "telemetry_internal.h"
#include "lb.skel.h"
#include "telemetry.skel.h"

_Static_assert(sizeof(struct sluice_telem_rec) == 136, "sluice_telem_rec layout");
_Static_assert(sizeof(struct sluice_telem_ep_key) == 20, "sluice_telem_ep_key layout");
_Static_assert(sizeof(struct sluice_telem_ep) == 8, "sluice_telem_ep layout");

#define TELEM_PROG "telemetry_sockops"
#define TELEM_LINK_PIN "link_" TELEM_PROG

static const char *const reason_names[] = {
#define X(name, str, help) str,
	SLUICE_TELEM_REASONS(X)
#undef X
};
static const struct telemetry_counter kernel_counters[] = {
#define X(name, key, metric, help) { key, metric, help, 0 },
	SLUICE_TELEM_COUNTERS(X)
#undef X
};
/* Counted by the agent as it reads the ring. */
static const struct telemetry_counter agent_counters[] = {
	{ "records_read", "telemetry_records_read_total",
	  "Connection records the agent read from the ring buffer.", 0 },
	{ "records_unattributed", "telemetry_records_unattributed_total",
	  "Connection records of services or backends no longer configured.", 0 },
};

#define NAGENT (sizeof(agent_counters) / sizeof(agent_counters[0]))
_Static_assert(NAGENT + SLUICE_TELEM_CNT__MAX == TELEMETRY_COUNTERS, "telemetry counters");

const char *telemetry__reason_name(enum sluice_telem_reason r)
{
	return (unsigned)r < SLUICE_TELEM_REASON__MAX ? reason_names[r] : "unknown";
}

struct telemetry_counter telemetry__counter(const struct telemetry_info *info, unsigned int i)
{
	/* the agent's right after the kernel's ring buffer counters */
	const unsigned int agent = SLUICE_TELEM_CNT_LOST + 1;
	const __u64 agent_values[NAGENT] = { info->read, info->unattributed };
	struct telemetry_counter c = { "unknown", "unknown", "unknown counter", 0 };

	if (i >= agent && i < agent + NAGENT) {
		c = agent_counters[i - agent];
		c.value = agent_values[i - agent];
	} else if (i < TELEMETRY_COUNTERS) {
		i -= i < agent ? 0 : NAGENT;
		c = kernel_counters[i];
		c.value = info->kernel[i];
	}
	return c;
}

const char *telemetry__dir_name(enum sluice_telem_dir d)
{
	switch (d) {
	case SLUICE_TELEM_OUTBOUND:
		return "outbound";
	case SLUICE_TELEM_INBOUND:
		return "inbound";
	default:
		return "unknown";
	}
}

const char *telemetry__type_name(enum sluice_telem_type type)
{
	switch (type) {
	case SLUICE_TELEM_OPEN:
		return "open";
	case SLUICE_TELEM_UPDATE:
		return "update";
	case SLUICE_TELEM_CLOSE:
		return "close";
	case SLUICE_TELEM_FAIL:
		return "fail";
	default:
		return "unknown";
	}
}

/* A pinned ring of another size cannot be reused: drop that pin only. */
static int telem__drop_resized_ring(const char *path, __u32 want)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd, err;

	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0; /* not pinned (yet) */
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (err)
		return sluice__bpf_err(err, "reading the pinned ring buffer %s", path);
	if (info.max_entries != want && unlink(path)) {
		err = -errno;
		sluice__set_err("unpin the resized ring buffer %s: %s", path, strerror(errno));
		return err;
	}
	return 0;
}

/* Datapath maps: the struct sluice's own. telem_* maps: pinned if asked,
 * but a pinned ring of another size than asked goes first. */
static int telem__share_maps(struct telemetry *t)
{
	char path[PATH_MAX];
	int err;

	if (t->pin_dir) {
		err = sluice__path_join(path, sizeof(path), t->pin_dir,
					bpf_map__name(t->skel->maps.telem_events));
		if (!err)
			err = telem__drop_resized_ring(path, t->ring_bytes);
		if (err)
			return err;
	}
	return sluice__share_maps(t->s, t->skel->obj, "telem_", t->pin_dir);
}

static int telem__check_ring_size(__u32 bytes)
{
	long page = sysconf(_SC_PAGESIZE);

	if (bytes < (__u32)page || (bytes & (bytes - 1))) {
		sluice__set_err("ring buffer size %u: must be a power of 2 and at least %ld", bytes,
				page);
		return -EINVAL;
	}
	return 0;
}

static int telem__load(struct telemetry *t, const struct telemetry_opts *opts)
{
	char buf[128];
	int err;

	t->skel = telemetry_bpf__open();
	if (!t->skel) {
		err = -errno;
		return sluice__bpf_err(err, "opening the telemetry BPF object");
	}
	t->skel->rodata->telem_interval_ns = (__u64)opts->interval_s * 1000000000ull;
	t->skel->rodata->telem_cfg = opts->cfg;
	/* a batch of records per wakeup, at most a quarter of the ring so a
	 * tiny ring still wakes its reader before it fills */
	t->skel->rodata->telem_wakeup_bytes = t->ring_bytes / 4 < TELEMETRY_WAKEUP_BYTES ?
						      t->ring_bytes / 4 :
						      TELEMETRY_WAKEUP_BYTES;
	err = bpf_map__set_max_entries(t->skel->maps.telem_events, t->ring_bytes);
	if (err)
		return sluice__bpf_err(err, "sizing the ring buffer");
	err = telem__share_maps(t);
	if (err)
		return err;
	err = telemetry_bpf__load(t->skel);
	if (err) {
		libbpf_strerror(err, buf, sizeof(buf));
		if (t->pin_dir)
			sluice__set_err(
				"loading the telemetry object: %s (maps pinned under %s may have another layout: telemetry__unpin them)",
				buf, t->pin_dir);
		else
			sluice__set_err("loading the telemetry object: %s", buf);
		return err;
	}
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.telem_events), telem__on_record, t,
				 NULL);
	if (!t->rb)
		return sluice__bpf_err(-errno, "reading the ring buffer");
	return 0;
}

/* An attachment left pinned by an earlier agent: run our program in it. */
static int telem__adopt_link(struct telemetry *t)
{
	if (access(t->link_path, F_OK))
		return 0;
	t->link = bpf_link__open(t->link_path);
	if (!t->link)
		return sluice__bpf_err(-errno, "opening the pinned link %s", t->link_path);
	if (bpf_link__update_program(t->link, t->skel->progs.telemetry_sockops))
		return sluice__bpf_err(-errno, "replacing the program of %s", t->link_path);
	return 0;
}

static __u64 telem__link_cgroup(struct bpf_link *link)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (!link || bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len))
		return 0;
	return info.cgroup.cgroup_id;
}

/* A cgroup v2 id is the inode number of its directory. */
static __u64 telem__fd_cgroup(int cgroup_fd)
{
	struct stat st;

	return fstat(cgroup_fd, &st) ? 0 : st.st_ino;
}

static void telem__drop_link(struct telemetry *t)
{
	if (!t->link)
		return;
	if (t->pin_dir)
		bpf_link__unpin(t->link);
	bpf_link__detach(t->link);
	bpf_link__destroy(t->link);
	t->link = NULL;
}

int telemetry__attach(struct telemetry *t, int cgroup_fd)
{
	struct bpf_link *link;
	int err;

	sluice__clear_err();
	if (t->link && telem__link_cgroup(t->link) == telem__fd_cgroup(cgroup_fd))
		return 0; /* adopted at open, program already replaced */
	/* Attach the new one before the old goes: never a gap in between. */
	link = bpf_program__attach_cgroup(t->skel->progs.telemetry_sockops, cgroup_fd);
	if (!link)
		return sluice__bpf_err(-errno, "attaching telemetry to the cgroup");
	telem__drop_link(t);
	t->link = link;
	if (t->pin_dir) {
		err = bpf_link__pin(link, t->link_path);
		if (err) {
			telem__drop_link(t);
			return sluice__bpf_err(err, "pinning the link at %s", t->link_path);
		}
	}
	return 0;
}

int telemetry__open(struct telemetry **out, struct sluice *s, int cgroup_fd,
		    const struct telemetry_opts *opts)
{
	static const struct telemetry_opts defaults;
	struct telemetry *t;
	int err;

	sluice__clear_err();
	if (!opts)
		opts = &defaults;
	t = calloc(1, sizeof(*t));
	if (!t) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	t->s = s;
	t->ring_bytes = opts->ring_bytes ? opts->ring_bytes : SLUICE_TELEM_RING_BYTES;
	err = telem__check_ring_size(t->ring_bytes);
	if (err)
		goto cleanup;
	if (opts->pin_dir) {
		t->pin_dir = strdup(opts->pin_dir);
		err = t->pin_dir ? sluice__path_join(t->link_path, sizeof(t->link_path),
						     opts->pin_dir, TELEM_LINK_PIN) :
				   -ENOMEM;
		if (err)
			goto cleanup;
	}
	err = telem__agg_init(t, opts->recent ? opts->recent : 1024);
	if (!err)
		err = telem__load(t, opts);
	if (!err && t->pin_dir)
		err = telem__adopt_link(t);
	if (!err && cgroup_fd >= 0)
		err = telemetry__attach(t, cgroup_fd);
	if (!err)
		err = telemetry__sync(t);
	if (err)
		goto cleanup;
	*out = t;
	return 0;
cleanup:
	if (err == -ENOMEM && !*sluice__errmsg())
		sluice__set_err("out of memory");
	telemetry__close(t);
	return err;
}

void telemetry__close(struct telemetry *t)
{
	if (!t)
		return;
	ring_buffer__free(t->rb);
	bpf_link__destroy(t->link); /* pinned: stays attached */
	telemetry_bpf__destroy(t->skel);
	telem__agg_free(t);
	free(t->pin_dir);
	free(t);
}

int telemetry__ring_fd(const struct telemetry *t)
{
	return ring_buffer__epoll_fd(t->rb);
}

int telemetry__consume(struct telemetry *t)
{
	int n;

	sluice__clear_err();
	t->resynced = false;
	n = ring_buffer__consume(t->rb);
	if (n < 0)
		return sluice__bpf_err(n, "reading the telemetry ring buffer");
	return n;
}

int telemetry__info(struct telemetry *t, struct telemetry_info *info)
{
	int fd = bpf_map__fd(t->skel->maps.telem_counters), err;

	sluice__clear_err();
	memset(info, 0, sizeof(*info));
	for (__u32 i = 0; i < SLUICE_TELEM_CNT__MAX; i++) {
		err = maps__percpu_sum(t->s, fd, "telem_counters", i, &info->kernel[i], 1);
		if (err)
			return err;
	}
	info->read = t->read;
	info->unattributed = t->unattributed;
	info->endpoints = t->nendpoints;
	info->endpoints_max = bpf_map__max_entries(t->skel->maps.telem_endpoints);
	info->ring_bytes = t->ring_bytes;
	info->attached = t->link != NULL;
	info->cgroup_id = telem__link_cgroup(t->link);
	return 0;
}

bool telemetry__pinned(const char *pin_dir)
{
	char path[PATH_MAX];

	return !sluice__path_join(path, sizeof(path), pin_dir, TELEM_LINK_PIN) &&
	       !access(path, F_OK);
}

int telemetry__unpin(const char *pin_dir)
{
	char path[PATH_MAX];
	struct telemetry_bpf *skel;
	int err;

	sluice__clear_err();
	err = sluice__path_join(path, sizeof(path), pin_dir, TELEM_LINK_PIN);
	if (!err)
		err = sluice__unpin_link(path);
	if (err)
		return err;
	/* Open (not load) the object for the names of our maps. */
	skel = telemetry_bpf__open();
	if (!skel)
		return sluice__bpf_err(-errno, "opening the telemetry BPF object");
	err = sluice__unpin_maps(skel->obj, "telem_", pin_dir);
	telemetry_bpf__destroy(skel);
	return err;
}
