// SPDX-License-Identifier: MIT
/*
 * sluice.c - loading, pinning and attaching the L4 datapath (lb.bpf.c).
 *
 * Contract: sluice__open() sets the rodata knobs, then loads; with a pin
 * directory every map is pinned at <pin_dir>/<map name>, and maps already
 * pinned there are reused (libbpf refuses a pin whose type, sizes or flags
 * differ), so conntrack and services survive agent restarts. Attachments
 * go through netlink and outlive the process; detaching is explicit.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"
#include "lb.skel.h"

/* Userspace and BPF share these layouts through sluice_abi.h; the sizes
 * are pinned here so an accidental layout change fails the build. */
_Static_assert(sizeof(struct sluice_svc_key) == 20, "sluice_svc_key layout");
_Static_assert(sizeof(struct sluice_svc) == 16, "sluice_svc layout");
_Static_assert(sizeof(struct sluice_backend) == 28, "sluice_backend layout");
_Static_assert(sizeof(struct sluice_ct_key) == 40, "sluice_ct_key layout");
_Static_assert(sizeof(struct sluice_ct_entry) == 48, "sluice_ct_entry layout");
_Static_assert(sizeof(struct sluice_svc_stats) == 32, "sluice_svc_stats layout");
_Static_assert(sizeof(struct sluice_backend_stats) == 24, "sluice_backend_stats layout");
_Static_assert(sizeof(struct sluice_backend_health) == 24, "sluice_backend_health layout");
_Static_assert(sizeof(struct sluice_svc_health) == 20, "sluice_svc_health layout");
_Static_assert(sizeof(struct sluice_health_event) == 32, "sluice_health_event layout");
_Static_assert(sizeof(struct sluice_affinity_key) == 24, "sluice_affinity_key layout");
_Static_assert(sizeof(struct sluice_affinity) == 16, "sluice_affinity layout");
_Static_assert(sizeof(struct sluice_src_range_key) == 24, "sluice_src_range_key layout");
_Static_assert(sizeof(struct sluice_policy_key) == 24, "sluice_policy_key layout");
_Static_assert(sizeof(struct sluice_policy_val) == 36, "sluice_policy_val layout");
_Static_assert(sizeof(struct sluice_policy_stats) == 24, "sluice_policy_stats layout");
_Static_assert(sizeof(struct sluice_backend_addr_key) == 20, "sluice_backend_addr_key layout");
_Static_assert(sizeof(struct sluice_snat_addr) == 16, "sluice_snat_addr layout");
_Static_assert(sizeof(struct sluice_maglev_pair) == 8,
	       "sluice_maglev_pair layout: no padding, so a table is __u32 slots[M + 1]");

struct map_desc {
	const char *name;
	__u32 key_size;
	__u32 value_size;
};

/* Indexed by enum sluice_map_id; checked against the loaded maps. */
static const struct map_desc map_descs[SLUICE_MAP__MAX] = {
	[SLUICE_MAP_SERVICES] = { "services", sizeof(struct sluice_svc_key),
				  sizeof(struct sluice_svc) },
	[SLUICE_MAP_MAGLEV] = { "maglev", sizeof(__u32), sizeof(__u32) },
	[SLUICE_MAP_BACKENDS] = { "backends", sizeof(__u32), sizeof(struct sluice_backend) },
	[SLUICE_MAP_CONNTRACK] = { "conntrack", sizeof(struct sluice_ct_key),
				   sizeof(struct sluice_ct_entry) },
	[SLUICE_MAP_CT_NEW] = { "ct_new", sizeof(struct sluice_ct_key),
				sizeof(struct sluice_ct_entry) },
	[SLUICE_MAP_SVC_STATS] = { "svc_stats", sizeof(__u32), sizeof(struct sluice_svc_stats) },
	[SLUICE_MAP_BACKEND_STATS] = { "backend_stats", sizeof(__u32),
				       sizeof(struct sluice_backend_stats) },
	[SLUICE_MAP_COUNTERS] = { "counters", sizeof(__u32), sizeof(__u64) },
	[SLUICE_MAP_DROPS] = { "drops", sizeof(__u32), sizeof(__u64) },
	[SLUICE_MAP_BACKEND_HEALTH] = { "backend_health", sizeof(__u32),
					sizeof(struct sluice_backend_health) },
	[SLUICE_MAP_SVC_HEALTH] = { "svc_health", sizeof(__u32), sizeof(struct sluice_svc_health) },
	[SLUICE_MAP_HEALTH_EVENTS] = { "health_events", 0, 0 }, /* ring buffer */
	[SLUICE_MAP_HEALTH_COUNTERS] = { "health_counters", sizeof(__u32), sizeof(__u64) },
	[SLUICE_MAP_AFFINITY] = { "affinity", sizeof(struct sluice_affinity_key),
				  sizeof(struct sluice_affinity) },
	[SLUICE_MAP_SRC_RANGES] = { "src_ranges", sizeof(struct sluice_src_range_key),
				    sizeof(__u32) },
	[SLUICE_MAP_POLICY] = { "policy", sizeof(struct sluice_policy_key),
				sizeof(struct sluice_policy_val) },
	[SLUICE_MAP_POLICY_NODE] = { "policy_node", sizeof(struct sluice_policy_key),
				     sizeof(struct sluice_policy_val) },
	[SLUICE_MAP_POLICY_NHOST] = { "policy_nhost", sizeof(struct sluice_policy_key),
				      sizeof(struct sluice_policy_val) },
	[SLUICE_MAP_POLICY_HASH] = { "policy_hash", sizeof(struct sluice_policy_key),
				     sizeof(struct sluice_policy_val) },
	[SLUICE_MAP_POLICY_STATS] = { "policy_stats", sizeof(__u32),
				      sizeof(struct sluice_policy_stats) },
	[SLUICE_MAP_POLICY_CFG] = { "policy_cfg", sizeof(__u32), sizeof(struct sluice_policy_cfg) },
	[SLUICE_MAP_POLICY_NLENS] = { "policy_nlens", sizeof(__u32),
				      sizeof(struct sluice_policy_nlens) },
	[SLUICE_MAP_MAGLEV_IDS] = { "maglev_ids", sizeof(__u32), sizeof(__u32) },
	[SLUICE_MAP_BACKEND_ADDRS] = { "backend_addrs", sizeof(struct sluice_backend_addr_key),
				       sizeof(__u32) },
	[SLUICE_MAP_BACKEND_ADDR_BITS] = { "backend_addr_bits", sizeof(__u32), sizeof(__u64) },
	[SLUICE_MAP_SNAT_ADDR] = { "snat_addr", sizeof(__u32), sizeof(struct sluice_snat_addr) },
	[SLUICE_MAP_FWD_DEVS] = { "fwd_devs", sizeof(__u32), sizeof(__u32) },
	[SLUICE_MAP_SERVICE_ADDR_BITS] = { "service_addr_bits", sizeof(__u32), sizeof(__u64) },
};

/* Create the pin dir on bpffs and tell libbpf where each map lives. */
static int sluice__setup_pins(struct lb_bpf *skel, const char *dir)
{
	struct statfs st;
	int err;

	err = sluice__mkdir_p(dir, 0700);
	if (err)
		return err;
	if (statfs(dir, &st) || st.f_type != BPF_FS_MAGIC) {
		sluice__set_err(
			"pin dir %s is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)",
			dir);
		return -EINVAL;
	}
	err = sluice__grow_pins(skel->obj, dir);
	if (err)
		return err;
	return sluice__share_maps(NULL, skel->obj, "", dir);
}

/* A reused pin could come from another build; refuse any size mismatch
 * (libbpf checks pins against the object, this checks the object against
 * the structs this library was compiled with). */
static int sluice__check_maps(struct sluice *s)
{
	for (int i = 0; i < SLUICE_MAP__MAX; i++) {
		const struct map_desc *d = &map_descs[i];
		struct bpf_map *map = bpf_object__find_map_by_name(s->skel->obj, d->name);

		if (!map) {
			sluice__set_err("BPF object has no map \"%s\"", d->name);
			return -ENOENT;
		}
		if (bpf_map__key_size(map) != d->key_size ||
		    bpf_map__value_size(map) != d->value_size) {
			sluice__set_err(
				"%s map: key/value size %u/%u, library expects %u/%u (layout mismatch)",
				d->name, bpf_map__key_size(map), bpf_map__value_size(map),
				d->key_size, d->value_size);
			return -EPROTO;
		}
		s->fds[i] = bpf_map__fd(map);
	}
	return 0;
}

/*
 * Whether the reused `maglev` takes tables sized by need (#16): pins of
 * layout 3 were made from a template without BPF_F_INNER_MAP, which the
 * kernel checks on every insert (flags equal, max_entries equal without
 * the flag) and bpf_map_info does not show. So one small table of the new
 * kind is put into slot 0 (no service has id 0) and taken out again: the
 * kernel refuses it with EINVAL on an old template, and the library then
 * makes every table as before (SLUICE_MAGLEV_M slots, no flag). Costs two
 * RCU grace periods, only when the map was reused.
 */
static int sluice__probe_maglev(struct sluice *s)
{
	__u32 key = 0;
	int fd, err;

	fd = svc__create_inner(s, NULL);
	if (fd < 0)
		return fd;
	err = bpf_map_update_elem(s->fds[SLUICE_MAP_MAGLEV], &key, &fd, BPF_ANY);
	close(fd);
	if (err == -EINVAL) {
		s->maglev_fixed = true;
		return 0;
	}
	if (err)
		return maps__err(err, "maglev", "update", "probing its inner-map template");
	err = bpf_map_delete_elem(s->fds[SLUICE_MAP_MAGLEV], &key);
	if (err && err != -ENOENT)
		return maps__err(err, "maglev", "delete", "of the probe table in slot 0");
	return 0;
}

/* Whether <dir>/maglev is pinned already (its template predates this load). */
static bool sluice__maglev_pinned(const struct sluice_opts *opts)
{
	char path[PATH_MAX];

	if (!opts || !opts->pin_dir)
		return false;
	if (sluice__path_join(path, sizeof(path), opts->pin_dir, "maglev"))
		return false;
	return !access(path, F_OK);
}

/* The object opened, its config set and its maps told where their pins
 * are; with progs false, nothing but the maps is loaded. */
static int sluice__open_skel(struct sluice *s, const struct sluice_opts *opts, bool progs)
{
	char buf[128];
	int err;

	s->skel = lb_bpf__open();
	if (!s->skel) {
		err = -errno;
		libbpf_strerror(err, buf, sizeof(buf));
		sluice__set_err("opening the BPF object: %s", buf);
		return err;
	}
	s->skel->rodata->sluice_cfg = opts ? opts->cfg : 0;
	if (!progs) {
		bpf_program__set_autoload(s->skel->progs.xdp_lb, false);
		bpf_program__set_autoload(s->skel->progs.tc_lb, false);
	}
	if (opts && opts->pin_dir)
		return sluice__setup_pins(s->skel, opts->pin_dir);
	return 0;
}

/* #16 (progs.c): 1 when the programs pinned by an earlier open are the
 * ones this open would load, and the maps are loaded alone; 0 (why in
 * progs_why, s->skel NULL) when the programs must be loaded. */
static int sluice__reuse(struct sluice *s, const struct sluice_opts *opts)
{
	const size_t wl = sizeof(s->progs_why);
	char env[512];
	size_t len = 0;
	const void *obj = lb_bpf__elf_bytes(&len);
	int fds[2], err;

	progs__env(env, sizeof(env), opts ? opts->build_id : NULL);
	progs__record_make(s->progs_rec, obj, len, opts ? opts->cfg : 0, env);
	if (!opts || !opts->pin_dir) {
		snprintf(s->progs_why, wl, "no pin dir");
		return 0;
	}
	if (!opts->reuse_progs) {
		snprintf(s->progs_why, wl, "a reload was asked for");
		return 0;
	}
	if (!progs__find(opts->pin_dir, s->progs_rec, fds, s->progs_why, wl))
		return 0;
	err = sluice__open_skel(s, opts, false);
	if (!err)
		err = lb_bpf__load(s->skel);
	if (err)
		snprintf(s->progs_why, wl, "loading the maps alone failed: %s", strerror(-err));
	if (!err && progs__bound(s->skel->obj, fds, s->progs_why, wl)) {
		memcpy(s->prog_fds, fds, sizeof(fds));
		s->progs_reused = true;
		snprintf(s->progs_why, wl,
			 "the pinned programs are the ones this start would load (record matches)");
		return 1;
	}
	close(fds[0]);
	close(fds[1]);
	lb_bpf__destroy(s->skel);
	s->skel = NULL;
	sluice__clear_err();
	return 0;
}

static int sluice__load(struct sluice *s, const struct sluice_opts *opts)
{
	char buf[128];
	int err;

	if (sluice__reuse(s, opts))
		return 0;
	err = sluice__open_skel(s, opts, true);
	if (err)
		return err;
	err = lb_bpf__load(s->skel);
	if (err) {
		libbpf_strerror(err, buf, sizeof(buf));
		if (opts && opts->pin_dir)
			sluice__set_err(
				"loading the BPF object: %s (maps pinned under %s may have another layout: sluice__unpin them)",
				buf, opts->pin_dir);
		else
			sluice__set_err("loading the BPF object: %s (needs root / CAP_BPF)", buf);
		return err;
	}
	s->prog_fds[SLUICE_PROG_XDP] = bpf_program__fd(s->skel->progs.xdp_lb);
	s->prog_fds[SLUICE_PROG_TC] = bpf_program__fd(s->skel->progs.tc_lb);
	return 0;
}

int sluice__open(struct sluice **out, const struct sluice_opts *opts)
{
	bool maglev_reused = sluice__maglev_pinned(opts);
	struct sluice *s;
	int err;

	sluice__clear_err();
	s = calloc(1, sizeof(*s));
	if (s)
		s->progs_rec = calloc(1, sizeof(*s->progs_rec));
	if (s && opts && opts->pin_dir)
		s->pin_dir = strdup(opts->pin_dir);
	if (!s || !s->progs_rec || (opts && opts->pin_dir && !s->pin_dir)) {
		sluice__set_err("out of memory");
		sluice__close(s);
		return -ENOMEM;
	}
	s->prog_fds[0] = s->prog_fds[1] = -1;
	err = sluice__load(s, opts);
	if (err)
		goto cleanup;
	err = sluice__check_maps(s);
	if (err)
		goto cleanup;
	s->ncpus = libbpf_num_possible_cpus();
	if (s->ncpus <= 0) {
		err = s->ncpus ? s->ncpus : -EINVAL;
		sluice__set_err("cannot count possible CPUs: %s", strerror(-err));
		goto cleanup;
	}
	if (maglev_reused) {
		err = sluice__probe_maglev(s);
		if (err)
			goto cleanup;
	}
	/* pins of a library without the reply filter: filled before any
	 * program of this one can be attached */
	err = svc__addr_bits_map(s);
	if (!err)
		err = svc__addrs_sync_if_empty(s);
	if (!err)
		err = svc__vip_bits_map(s);
	if (!err)
		err = svc__vip_bits_sync_if_empty(s);
	if (!err)
		err = svc__policy_nlens_check(s);
	if (err)
		goto cleanup;
	*out = s;
	return 0;
cleanup:
	sluice__close(s);
	return err;
}

void sluice__close(struct sluice *s)
{
	if (!s)
		return;
	cut__async_free(s); /* first: the worker uses the maps */
	if (s->skel)
		svc__tables_close(s);
	svc__addr_bits_unmap(s);
	svc__vip_bits_unmap(s);
	lb_bpf__destroy(s->skel);
	for (int p = 0; s->progs_reused && p < 2; p++)
		close(s->prog_fds[p]);
	free(s->progs_rec);
	free(s->pin_dir);
	free(s->cut_cgroup);
	free(s);
}

bool sluice__progs_reused(const struct sluice *s, const char **why)
{
	if (why)
		*why = s->progs_why[0] ? s->progs_why : "loaded";
	return s->progs_reused;
}

int sluice__progs_save(struct sluice *s)
{
	sluice__clear_err();
	if (s->progs_reused)
		return 0;
	if (!s->pin_dir) {
		sluice__set_err("no pin dir to pin the programs in");
		return -EINVAL;
	}
	if (s->prog_fds[0] < 0 || s->prog_fds[1] < 0) {
		sluice__set_err("the programs were not loaded");
		return -ENOENT;
	}
	return progs__pin(s->pin_dir, s->progs_rec, s->prog_fds);
}

int sluice__unpin(const char *pin_dir)
{
	struct lb_bpf *skel;
	int err = 0;

	sluice__clear_err();
	if (!pin_dir || !*pin_dir) {
		sluice__set_err("pin dir is empty");
		return -EINVAL;
	}
	/* Open (not load) the object just for its map names: the one list. */
	skel = lb_bpf__open();
	if (!skel) {
		err = -errno;
		sluice__set_err("opening the BPF object: %s", strerror(-err));
		return err;
	}
	err = progs__unpin(pin_dir) ?: sluice__unpin_maps(skel->obj, "", pin_dir);
	if (err)
		goto cleanup;
	if (rmdir(pin_dir) && errno != ENOENT) {
		err = -errno;
		sluice__set_err("pin dir %s: %s (pins that are not Sluice's were left in place)",
				pin_dir, strerror(errno));
	}
cleanup:
	lb_bpf__destroy(skel);
	return err;
}

int sluice__prog_fd(const struct sluice *s, enum sluice_prog prog)
{
	sluice__clear_err();
	switch (prog) {
	case SLUICE_PROG_XDP:
	case SLUICE_PROG_TC:
		return s->prog_fds[prog];
	}
	sluice__set_err("unknown program %d", (int)prog);
	return -EINVAL;
}

int sluice__map_fd(const struct sluice *s, const char *name)
{
	struct bpf_map *map;

	sluice__clear_err();
	map = name ? bpf_object__find_map_by_name(s->skel->obj, name) : NULL;
	if (!map) {
		sluice__set_err("no map named \"%s\"", name ? name : "(null)");
		return -ENOENT;
	}
	return bpf_map__fd(map);
}

/* "eth0 (ifindex 2)" for messages; the name may be gone already. */
static const char *ifname(int ifindex, char *buf, size_t len)
{
	char name[IF_NAMESIZE];

	if (if_indextoname(ifindex, name))
		snprintf(buf, len, "%s (ifindex %d)", name, ifindex);
	else
		snprintf(buf, len, "ifindex %d", ifindex);
	return buf;
}

static int sluice__link_err(int err, const char *op, int ifindex)
{
	char ebuf[128], ibuf[IF_NAMESIZE + 24];

	libbpf_strerror(err, ebuf, sizeof(ebuf));
	sluice__set_err("%s %s: %s", op, ifname(ifindex, ibuf, sizeof(ibuf)), ebuf);
	return err;
}

int sluice__attach_xdp(struct sluice *s, int ifindex, __u32 xdp_flags)
{
	int err;

	sluice__clear_err();
	/* No UPDATE_IF_NOEXIST: a restarted agent replaces its old program. */
	err = bpf_xdp_attach(ifindex, s->prog_fds[SLUICE_PROG_XDP], xdp_flags, NULL);
	if (err)
		return sluice__link_err(err, "attach XDP to", ifindex);
	return 0;
}

int sluice__detach_xdp(int ifindex, __u32 xdp_flags)
{
	int err;

	sluice__clear_err();
	err = bpf_xdp_detach(ifindex, xdp_flags, NULL);
	if (err)
		return sluice__link_err(err, "detach XDP from", ifindex);
	return 0;
}

static libbpf_print_fn_t tc_prev_print;
static const char *tc_quiet_text;

/* libbpf prints the kernel's extack text at warning level, also for the
 * normal cases of a restart ("Exclusivity flag on": clsact exists) and of
 * an idempotent detach ("Cannot find specified filter chain"): keep those
 * out of the logs, pass everything else on. Not thread-safe, like
 * libbpf_set_print() itself. */
static int tc__quiet_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char buf[256];
	va_list copy;

	va_copy(copy, args);
	vsnprintf(buf, sizeof(buf), fmt, copy);
	va_end(copy);
	if (tc_quiet_text && strstr(buf, tc_quiet_text))
		return 0;
	return tc_prev_print ? tc_prev_print(level, fmt, args) : 0;
}

static void tc__quiet(const char *text)
{
	tc_quiet_text = text;
	tc_prev_print = libbpf_set_print(tc__quiet_print);
}

static void tc__unquiet(void)
{
	libbpf_set_print(tc_prev_print);
	tc_quiet_text = NULL;
}

int sluice__attach_tc(struct sluice *s, int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SLUICE_TC_HANDLE, .priority = SLUICE_TC_PRIO,
		    .prog_fd = s->prog_fds[SLUICE_PROG_TC], .flags = BPF_TC_F_REPLACE);
	int err;

	sluice__clear_err();
	/* The clsact qdisc may exist already (ours from a previous run, or
	 * someone else's): share it. */
	tc__quiet("Exclusivity flag on");
	err = bpf_tc_hook_create(&hook);
	tc__unquiet();
	if (err && err != -EEXIST)
		return sluice__link_err(err, "create clsact qdisc on", ifindex);
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		return sluice__link_err(err, "attach tc ingress filter to", ifindex);
	return 0;
}

int sluice__detach_tc(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = SLUICE_TC_HANDLE, .priority = SLUICE_TC_PRIO);
	int err;

	sluice__clear_err();
	/* Only our filter goes; the clsact qdisc may carry other filters. */
	tc__quiet("Cannot find specified filter chain");
	err = bpf_tc_detach(&hook, &opts);
	tc__unquiet();
	if (err)
		return sluice__link_err(err, "detach tc ingress filter from", ifindex);
	return 0;
}
