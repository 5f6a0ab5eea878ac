// SPDX-License-Identifier: MIT
/*
 * sock.c - loading and attaching the socket-level programs: the socket LB
 * (sock.bpf.c, cgroup sock_addr hooks) and same-node redirection
 * (redir.bpf.c, cgroup sockops + sk_msg on the redirect map).
 *
 * Contract (see sock.h): each part is loaded on first use with the
 * datapath's maps reused by name from the struct sluice and its own maps
 * pinned under pin_dir (refused when pinned with another layout). This
 * file loads, reads counters, edits the local-address map and unpins;
 * sock_attach.c attaches and detaches.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"
#include "sock_internal.h"
#include "lb.skel.h"
#include "sock.skel.h"
#include "redir.skel.h"

_Static_assert(sizeof(struct sluice_sock_nat_key) == 32, "sluice_sock_nat_key layout");
_Static_assert(sizeof(struct sluice_sock_nat) == 24, "sluice_sock_nat layout");
_Static_assert(sizeof(struct sluice_redir_key) == 48, "sluice_redir_key layout");
_Static_assert(sizeof(struct sluice_redir_addr) == 20, "sluice_redir_addr layout");

static const char *const counter_names[] = {
#define X(name, str, help) str,
	SLUICE_SOCK_COUNTERS(X)
#undef X
};
static const char *const counter_helps[] = {
#define X(name, str, help) help,
	SLUICE_SOCK_COUNTERS(X)
#undef X
};
static const char *const redir_names[] = {
#define X(name, str, help) str,
	SLUICE_REDIR_COUNTERS(X)
#undef X
};
static const char *const redir_helps[] = {
#define X(name, str, help) help,
	SLUICE_REDIR_COUNTERS(X)
#undef X
};

const char *sluice_sock__counter_name(enum sluice_sock_counter c)
{
	return (unsigned)c < SLUICE_SOCK_CNT__MAX ? counter_names[c] : "unknown";
}

const char *sluice_sock__counter_help(enum sluice_sock_counter c)
{
	return (unsigned)c < SLUICE_SOCK_CNT__MAX ? counter_helps[c] : "unknown counter";
}

const char *sluice_sock__redir_counter_name(enum sluice_redir_counter c)
{
	return (unsigned)c < SLUICE_REDIR_CNT__MAX ? redir_names[c] : "unknown";
}

const char *sluice_sock__redir_counter_help(enum sluice_redir_counter c)
{
	return (unsigned)c < SLUICE_REDIR_CNT__MAX ? redir_helps[c] : "unknown counter";
}

/* Layout version of the pinned sock_* and redir_* maps, like the
 * datapath's: a pin of another layout is refused, never reused. */
#define SOCK_LAYOUT_PIN "sock_layout"

static int sock__check_layout(struct sluice_sock *ss)
{
	char path[PATH_MAX];
	__u32 key = 0, val = 0;
	int fd, err;

	if (!ss->pin_dir)
		return 0;
	err = sluice__path_join(path, sizeof(path), ss->pin_dir, SOCK_LAYOUT_PIN);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0; /* nothing pinned yet */
	err = bpf_map_lookup_elem(fd, &key, &val);
	close(fd);
	if (err)
		return sluice__bpf_err(err, "reading the layout map %s", path);
	if (val != SLUICE_SOCK_LAYOUT_VERSION) {
		sluice__set_err(
			"socket maps pinned under %s have layout version %u, this library uses %u: remove them with sluice_sock__unpin (meshd --cleanup) first",
			ss->pin_dir, val, SLUICE_SOCK_LAYOUT_VERSION);
		return -EPROTO;
	}
	return 0;
}

static int sock__write_layout(struct sluice_sock *ss)
{
	__u32 key = 0, val = SLUICE_SOCK_LAYOUT_VERSION;
	char path[PATH_MAX];
	int fd, err;

	if (!ss->pin_dir)
		return 0;
	err = sluice__path_join(path, sizeof(path), ss->pin_dir, SOCK_LAYOUT_PIN);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, SOCK_LAYOUT_PIN, sizeof(key), sizeof(val), 1, NULL);
	if (fd < 0)
		return sluice__bpf_err(fd, "creating the layout map %s", path);
	err = bpf_map_update_elem(fd, &key, &val, BPF_ANY);
	if (!err && bpf_obj_pin(fd, path))
		err = -errno;
	close(fd);
	if (err)
		return sluice__bpf_err(err, "pinning the layout map %s", path);
	return 0;
}

static int sock__load_err(struct sluice_sock *ss, int err, const char *what)
{
	char buf[128];

	libbpf_strerror(err, buf, sizeof(buf));
	if (ss->pin_dir)
		sluice__set_err(
			"loading the %s object: %s (maps pinned under %s may have another layout: sluice_sock__unpin them)",
			what, buf, ss->pin_dir);
	else
		sluice__set_err("loading the %s object: %s", what, buf);
	return err;
}

static int sock__load_lb(struct sluice_sock *ss)
{
	struct sock_bpf *skel;
	int err;

	if (ss->lb_skel)
		return 0;
	err = sock__check_layout(ss);
	if (err)
		return err;
	skel = sock_bpf__open();
	if (!skel)
		return sock__load_err(ss, -errno, "socket LB");
	skel->rodata->sock_cfg = ss->cfg;
	err = sluice__share_maps(ss->s, skel->obj, "sock_", ss->pin_dir);
	if (!err) {
		err = sock_bpf__load(skel);
		if (err)
			sock__load_err(ss, err, "socket LB");
	}
	if (!err)
		err = sock__write_layout(ss);
	if (err) {
		sock_bpf__destroy(skel);
		return err;
	}
	ss->lb_skel = skel;
	ss->parts[SOCK_PART_LB].obj = skel->obj;
	return 0;
}

static int sock__load_redir(struct sluice_sock *ss)
{
	struct redir_bpf *skel;
	int err;

	if (ss->redir_skel)
		return 0;
	err = sock__check_layout(ss);
	if (err)
		return err;
	skel = redir_bpf__open();
	if (!skel)
		return sock__load_err(ss, -errno, "socket redirect");
	skel->rodata->redir_queue_max = ss->redir_queue_max;
	err = sluice__share_maps(ss->s, skel->obj, "redir_", ss->pin_dir);
	if (!err) {
		err = redir_bpf__load(skel);
		if (err)
			sock__load_err(ss, err, "socket redirect");
	}
	if (!err)
		err = sock__write_layout(ss);
	if (err) {
		redir_bpf__destroy(skel);
		return err;
	}
	ss->redir_skel = skel;
	ss->parts[SOCK_PART_REDIR].obj = skel->obj;
	return 0;
}

int sock__load(struct sluice_sock *ss, enum sock_part p)
{
	return p == SOCK_PART_LB ? sock__load_lb(ss) : sock__load_redir(ss);
}

int sock__redir_map_fd(struct sluice_sock *ss)
{
	int err = sock__load_redir(ss);

	return err ? err : bpf_map__fd(ss->redir_skel->maps.redir_socks);
}

int sluice_sock__open(struct sluice_sock **out, struct sluice *s,
		      const struct sluice_sock_opts *opts)
{
	struct sluice_sock *ss;

	sluice__clear_err();
	if (!s) {
		sluice__set_err("sluice_sock__open needs an open struct sluice");
		return -EINVAL;
	}
	ss = calloc(1, sizeof(*ss));
	if (!ss)
		goto nomem;
	ss->s = s;
	ss->cfg = opts ? opts->cfg : 0;
	ss->redir_queue_max = opts ? opts->redir_queue_max : 0;
	if (opts && opts->pin_dir) {
		ss->pin_dir = strdup(opts->pin_dir);
		if (!ss->pin_dir)
			goto nomem;
	}
	for (int p = 0; p < SOCK_PART__MAX; p++)
		for (int i = 0; i < SOCK_MAX_LINKS; i++)
			ss->parts[p].links[i] = -1;
	*out = ss;
	return 0;
nomem:
	free(ss);
	sluice__set_err("out of memory");
	return -ENOMEM;
}

__u32 sluice_sock__cfg(const struct sluice_sock *ss)
{
	return ss ? ss->cfg : 0;
}

void sluice_sock__close(struct sluice_sock *ss)
{
	if (!ss)
		return;
	/* Unpinned links detach with their last fd, pinned ones stay. */
	for (int p = 0; p < SOCK_PART__MAX; p++)
		sock__forget_links(&ss->parts[p]);
	sock_bpf__destroy(ss->lb_skel);
	redir_bpf__destroy(ss->redir_skel);
	free(ss->pin_dir);
	free(ss);
}

static int sock__sum(struct sluice_sock *ss, int fd, const char *name, __u64 *out, __u32 n)
{
	int err;

	for (__u32 i = 0; i < n; i++) {
		err = maps__percpu_sum(ss->s, fd, name, i, &out[i], 1);
		if (err)
			return err;
	}
	return 0;
}

/* The part's map @name without loading the part: the loaded object's map
 * @loaded, else its pin under pin_dir (*own: the new fd, closed by the
 * caller; a pin whose key or value size is not @key_size / @value_size
 * is refused, -EPROTO); -ENOENT when there is neither: the part never ran
 * here. *max: the map's max_entries. */
static int sock__map_noload(struct sluice_sock *ss, const struct bpf_map *loaded, const char *name,
			    __u32 key_size, __u32 value_size, int *own, __u32 *max)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int err;

	*own = -1;
	if (loaded) {
		*max = bpf_map__max_entries(loaded);
		return bpf_map__fd(loaded);
	}
	if (!ss->pin_dir)
		return -ENOENT;
	err = sock__check_layout(ss);
	if (err)
		return err;
	err = sluice__path_join(path, sizeof(path), ss->pin_dir, name);
	if (err)
		return err;
	*own = bpf_obj_get(path);
	if (*own < 0)
		return errno == ENOENT ? -ENOENT : sluice__bpf_err(-errno, "opening %s", path);
	err = bpf_obj_get_info_by_fd(*own, &info, &len);
	if (err)
		return sluice__bpf_err(err, "reading %s", path);
	if (info.key_size != key_size || info.value_size != value_size) {
		sluice__set_err("%s: key/value size %u/%u, this library reads %u/%u", path,
				info.key_size, info.value_size, key_size, value_size);
		return -EPROTO;
	}
	*max = info.max_entries;
	return *own;
}

/* sock__sum() of the counters a sock__map_noload() map holds (an older
 * pin may hold fewer: the others read 0); zeros without one. */
static int sock__sum_noload(struct sluice_sock *ss, const struct bpf_map *loaded, const char *name,
			    __u64 *out, __u32 n)
{
	__u32 max = 0;
	int own, fd = sock__map_noload(ss, loaded, name, sizeof(__u32), sizeof(__u64), &own, &max);
	int err = fd == -ENOENT ? 0 : fd;

	if (fd >= 0)
		err = sock__sum(ss, fd, name, out, n < max ? n : max);
	if (own >= 0)
		close(own);
	return err;
}

/* The sockets in the redirect map (2 per connection), without loading. */
static int sock__redir_socks_noload(struct sluice_sock *ss, __u32 *count)
{
	struct sluice_redir_key key, next;
	void *prev = NULL;
	__u32 max = 0;
	int own, fd, err;

	fd = sock__map_noload(ss, ss->redir_skel ? ss->redir_skel->maps.redir_socks : NULL,
			      "redir_socks", sizeof(key), sizeof(__u64), &own, &max);
	if (fd < 0) {
		if (own >= 0)
			close(own);
		return fd == -ENOENT ? 0 : fd;
	}
	while (!(err = bpf_map_get_next_key(fd, prev, &next))) {
		(*count)++;
		key = next;
		prev = &key;
	}
	if (own >= 0)
		close(own);
	if (err != -ENOENT)
		return maps__err(err, "redir_socks", "walk", "(get_next_key)");
	return 0;
}

int sluice_sock__counters(struct sluice_sock *ss, struct sluice_sock_info *info)
{
	int err;

	sluice__clear_err();
	memset(info, 0, sizeof(*info));
	info->lb_attached = sock__part_attached(ss, SOCK_PART_LB, &info->lb_cgroup_id);
	info->redir_attached = sock__part_attached(ss, SOCK_PART_REDIR, &info->redir_cgroup_id);
	err = sock__sum_noload(ss, ss->lb_skel ? ss->lb_skel->maps.sock_counters : NULL,
			       "sock_counters", info->lb, SLUICE_SOCK_CNT__MAX);
	if (err)
		return err;
	/* as in sluice_sock__info(): the LB's figures never depend on the
	 * redirect's; a pin of it that cannot be read reads 0 */
	err = sock__sum_noload(ss, ss->redir_skel ? ss->redir_skel->maps.redir_counters : NULL,
			       "redir_counters", info->redir, SLUICE_REDIR_CNT__MAX);
	if (!err)
		err = sock__redir_socks_noload(ss, &info->redir_sockets);
	if (err) {
		memset(info->redir, 0, sizeof(info->redir));
		info->redir_sockets = 0;
		sluice__clear_err();
	}
	return 0;
}

int sluice_sock__info(struct sluice_sock *ss, struct sluice_sock_info *info)
{
	char why[sizeof(info->redir_unavailable)] = "";
	int err;

	sluice__clear_err();
	err = sock__load_lb(ss);
	if (err)
		return err;
	/* The socket LB never depends on redirection: a kernel that refuses
	 * redir.bpf.o still gets the LB's figures, and the reason. */
	if (sock__load_redir(ss)) {
		snprintf(why, sizeof(why), "%s", sluice__errmsg());
		sluice__clear_err();
	}
	err = sluice_sock__counters(ss, info); /* both read from what is loaded now */
	if (err || !why[0])
		return err;
	memset(info->redir, 0, sizeof(info->redir));
	info->redir_sockets = 0;
	memcpy(info->redir_unavailable, why, sizeof(why));
	return 0;
}

static int sock__redir_addr(struct sluice_sock *ss, const struct sluice_addr *a, bool add)
{
	struct sluice_redir_addr key = {};
	char buf[SLUICE_ADDR_STRLEN];
	__u8 one = 1;
	int fd, err;

	sluice__clear_err();
	if (!a || (a->family != SLUICE_AF_INET && a->family != SLUICE_AF_INET6)) {
		sluice__set_err("redirect address: family must be IPv4 or IPv6");
		return -EINVAL;
	}
	err = sock__load_redir(ss);
	if (err)
		return err;
	svc__addr_copy(key.addr, a);
	key.family = a->family;
	fd = bpf_map__fd(ss->redir_skel->maps.redir_addrs);
	err = add ? bpf_map_update_elem(fd, &key, &one, BPF_ANY) : bpf_map_delete_elem(fd, &key);
	if (err == -ENOENT && !add)
		return 0;
	if (err)
		return maps__err(err, "redir_addrs", add ? "insert of" : "delete of",
				 sluice_addr__str(a, buf, sizeof(buf)));
	return 0;
}

int sluice_sock__redir_addr_add(struct sluice_sock *ss, const struct sluice_addr *a)
{
	return sock__redir_addr(ss, a, true);
}

int sluice_sock__redir_addr_del(struct sluice_sock *ss, const struct sluice_addr *a)
{
	return sock__redir_addr(ss, a, false);
}

int sluice_sock__unpin(const char *pin_dir)
{
	struct sluice_sock ss = { .pin_dir = (char *)pin_dir };
	struct redir_bpf *redir = NULL;
	struct sock_bpf *lb = NULL;
	int err;

	sluice__clear_err();
	if (!pin_dir || !*pin_dir) {
		sluice__set_err("pin dir is empty");
		return -EINVAL;
	}
	for (int p = 0; p < SOCK_PART__MAX; p++)
		for (int i = 0; i < SOCK_MAX_LINKS; i++)
			ss.parts[p].links[i] = -1;
	err = sock__detach_part(&ss, SOCK_PART_LB);
	if (!err)
		err = sluice_sock__detach_redir(&ss);
	if (err)
		return err;
	/* Open (not load) the objects just for their map names. */
	lb = sock_bpf__open();
	redir = redir_bpf__open();
	if (!lb || !redir) {
		err = -errno;
		sluice__set_err("opening the socket BPF objects: %s", strerror(-err));
		goto cleanup;
	}
	err = sluice__unpin_maps(lb->obj, "sock_", pin_dir);
	if (!err)
		err = sluice__unpin_maps(redir->obj, "redir_", pin_dir);
	if (!err) {
		char path[PATH_MAX];

		err = sluice__path_join(path, sizeof(path), pin_dir, SOCK_LAYOUT_PIN);
		if (!err)
			err = sluice__unpin_path(path);
	}
cleanup:
	sock_bpf__destroy(lb);
	redir_bpf__destroy(redir);
	return err;
}
