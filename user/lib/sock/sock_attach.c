// SPDX-License-Identifier: MIT
/*
 * sock_attach.c - attaching the socket-level programs to a cgroup (and the
 * sk_msg verdict to the redirect map) as BPF links.
 *
 * Contract (see sock.h): links are pinned as pin_dir/link_<program> when
 * there is a pin dir, so they outlive the agent; the next agent finds a
 * pinned link that matches (same cgroup, same hook) and swaps its program
 * in place with bpf_link_update, so connect() is never unbalanced during a
 * restart; a link to another cgroup is detached and made anew. A part is
 * attached whole or not at all. Detaching also removes links pinned by an
 * earlier process.
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
#include "redir.skel.h"

/* Not in the UAPI headers of every distribution yet (Linux 6.10). */
#define SOCK_LINK_TYPE_SOCKMAP 14

struct sock_attach {
	const char *prog; /* program name; pinned as link_<prog> */
	enum bpf_attach_type type;
	bool on_map; /* target: redir_socks, else the cgroup */
};

/* Attach order. The verdict goes onto the map before sockops can put a
 * socket there; detaching runs the table backwards. */
static const struct sock_attach lb_attach[] = {
	{ "sock_connect4", BPF_CGROUP_INET4_CONNECT, false },
	{ "sock_connect6", BPF_CGROUP_INET6_CONNECT, false },
	{ "sock_sendmsg4", BPF_CGROUP_UDP4_SENDMSG, false },
	{ "sock_sendmsg6", BPF_CGROUP_UDP6_SENDMSG, false },
	{ "sock_recvmsg4", BPF_CGROUP_UDP4_RECVMSG, false },
	{ "sock_recvmsg6", BPF_CGROUP_UDP6_RECVMSG, false },
	{ "sock_peername4", BPF_CGROUP_INET4_GETPEERNAME, false },
	{ "sock_peername6", BPF_CGROUP_INET6_GETPEERNAME, false },
	/* Last: a link pinned by an agent that had no such program is
	 * simply missing, and made anew on the next attach. */
	{ "sock_health_ops", BPF_CGROUP_SOCK_OPS, false },
};

static const struct sock_attach redir_attach[] = {
	{ "redir_msg", BPF_SK_MSG_VERDICT, true },
	{ "redir_sockops", BPF_CGROUP_SOCK_OPS, false },
};

static const struct {
	const struct sock_attach *tab;
	int n;
	const char *what; /* for messages */
} parts[SOCK_PART__MAX] = {
	[SOCK_PART_LB] = { lb_attach, sizeof(lb_attach) / sizeof(lb_attach[0]), "socket LB" },
	[SOCK_PART_REDIR] = { redir_attach, sizeof(redir_attach) / sizeof(redir_attach[0]),
			      "socket redirect" },
};

_Static_assert(sizeof(lb_attach) / sizeof(lb_attach[0]) <= SOCK_MAX_LINKS, "links per part");

/* pin_dir/link_<prog>: where the link of one attachment is pinned. */
static int sock__link_path(char *buf, size_t len, const char *pin_dir, const struct sock_attach *a)
{
	char name[64];

	snprintf(name, sizeof(name), "link_%s", a->prog);
	return sluice__path_join(buf, len, pin_dir, name);
}

void sock__forget_links(struct sock_part_state *ps)
{
	for (int i = 0; i < SOCK_MAX_LINKS; i++) {
		if (ps->links[i] >= 0)
			close(ps->links[i]);
		ps->links[i] = -1;
	}
	free(ps->cgroup);
	ps->cgroup = NULL;
	ps->cgroup_id = 0;
}

/* Opens a cgroup v2 directory; its id is its inode number. */
static int sock__cgroup_open(const char *cgroup, __u64 *id)
{
	struct statfs sfs;
	struct stat st;
	int fd;

	if (!cgroup || !*cgroup) {
		sluice__set_err("no cgroup given");
		return -EINVAL;
	}
	fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int err = -errno;

		sluice__set_err("cgroup %s: %s", cgroup, strerror(-err));
		return err;
	}
	if (fstatfs(fd, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC || fstat(fd, &st)) {
		sluice__set_err(
			"%s is not a cgroup v2 directory (see the cgroup2 line of /proc/mounts)",
			cgroup);
		close(fd);
		return -EINVAL;
	}
	*id = st.st_ino;
	return fd;
}

/* Is this pinned link the attachment a would make to target? */
static bool sock__link_matches(int fd, const struct sock_attach *a, __u64 cgroup_id, int map_fd)
{
	struct bpf_link_info info = {};
	struct bpf_map_info minfo = {};
	__u32 len = sizeof(info), mlen = sizeof(minfo);
	const __u32 *raw = (const __u32 *)&info.raw_tracepoint;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return false;
	if (!a->on_map)
		return info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cgroup_id &&
		       info.cgroup.attach_type == a->type;
	/* sockmap link info: { __u32 map_id; __u32 attach_type; } */
	if (bpf_obj_get_info_by_fd(map_fd, &minfo, &mlen))
		return false;
	return info.type == SOCK_LINK_TYPE_SOCKMAP && raw[0] == minfo.id && raw[1] == a->type;
}

static int sock__redir_pinned_map(const char *pin_dir)
{
	char path[PATH_MAX];

	if (sluice__path_join(path, sizeof(path), pin_dir, "redir_socks"))
		return -ENAMETOOLONG;
	return bpf_obj_get(path);
}

/* Undo one attachment: our link fd, a pinned link of an earlier agent,
 * or an old-style sk_msg map attachment. Missing is not an error. */
static int sock__unlink_one(const char *pin_dir, const struct sock_attach *a, int *held,
			    int prog_fd, int map_fd)
{
	char path[PATH_MAX];
	int err;

	if (*held >= 0) {
		bpf_link_detach(*held);
		close(*held);
	} else if (*held == SOCK_LINK_PROG_ATTACHED) {
		bpf_prog_detach2(prog_fd, map_fd, a->type);
	}
	*held = -1;
	if (!pin_dir)
		return 0;
	err = sock__link_path(path, sizeof(path), pin_dir, a);
	if (err)
		return err;
	return sluice__unpin_link(path);
}

/* Pre-6.10 kernels have no sockmap links: attach the verdict to the map
 * (it lives as long as the map) and remember that there is no fd. */
static int sock__attach_to_map(const struct sock_attach *a, int prog_fd, int map_fd, int *held)
{
	int err = bpf_prog_attach(prog_fd, map_fd, a->type, 0);

	if (err)
		return sluice__bpf_err(err, "attaching %s to the redirect map", a->prog);
	*held = SOCK_LINK_PROG_ATTACHED;
	return 0;
}

/* One attachment: reuse (update) a matching pinned link, else make one. */
static int sock__link_one(struct sluice_sock *ss, const struct sock_attach *a, int prog_fd,
			  int target_fd, __u64 cgroup_id, int *held)
{
	char path[PATH_MAX];
	int fd, err;

	if (ss->pin_dir) {
		err = sock__link_path(path, sizeof(path), ss->pin_dir, a);
		if (err)
			return err;
		fd = bpf_obj_get(path);
		if (fd >= 0) {
			/* The previous agent's attachment: swap programs
			 * in place so no connect() goes unbalanced. */
			if (sock__link_matches(fd, a, cgroup_id, target_fd) &&
			    !bpf_link_update(fd, prog_fd, NULL)) {
				*held = fd;
				return 0;
			}
			bpf_link_detach(fd);
			close(fd);
			unlink(path);
		}
	}
	fd = bpf_link_create(prog_fd, target_fd, a->type, NULL);
	if (fd < 0 && a->on_map && (fd == -EINVAL || fd == -EOPNOTSUPP))
		return sock__attach_to_map(a, prog_fd, target_fd, held);
	if (fd < 0)
		return sluice__bpf_err(fd, "attaching %s", a->prog);
	*held = fd;
	if (ss->pin_dir && bpf_obj_pin(fd, path)) {
		err = -errno;
		return sluice__bpf_err(err, "pinning the link at %s", path);
	}
	return 0;
}

int sock__detach_part(struct sluice_sock *ss, enum sock_part p)
{
	struct sock_part_state *ps = &ss->parts[p];
	int map_fd = -1, err = 0, e;

	if (p == SOCK_PART_REDIR)
		map_fd = ss->redir_skel ? bpf_map__fd(ss->redir_skel->maps.redir_socks) : -1;
	for (int i = parts[p].n - 1; i >= 0; i--) {
		const struct sock_attach *a = &parts[p].tab[i];
		struct bpf_program *prog =
			ps->obj ? bpf_object__find_program_by_name(ps->obj, a->prog) : NULL;

		e = sock__unlink_one(ss->pin_dir, a, &ps->links[i],
				     prog ? bpf_program__fd(prog) : -1, map_fd);
		if (e && !err)
			err = e;
	}
	sock__forget_links(ps);
	return err;
}

static int sock__attach_part(struct sluice_sock *ss, enum sock_part p, const char *cgroup)
{
	struct sock_part_state *ps = &ss->parts[p];
	int cg_fd, map_fd = -1, err;
	__u64 cgroup_id = 0;

	sluice__clear_err();
	err = sock__load(ss, p);
	if (err)
		return err;
	cg_fd = sock__cgroup_open(cgroup, &cgroup_id);
	if (cg_fd < 0)
		return cg_fd;
	if (ps->cgroup_id == cgroup_id) /* ours already, same programs */
		goto out;
	if (ps->cgroup_id)
		sock__detach_part(ss, p);
	if (p == SOCK_PART_REDIR)
		map_fd = bpf_map__fd(ss->redir_skel->maps.redir_socks);
	for (int i = 0; i < parts[p].n; i++) {
		const struct sock_attach *a = &parts[p].tab[i];
		struct bpf_program *prog = bpf_object__find_program_by_name(ps->obj, a->prog);

		if (!prog) {
			sluice__set_err("BPF object has no program %s", a->prog);
			err = -ENOENT;
			break;
		}
		err = sock__link_one(ss, a, bpf_program__fd(prog), a->on_map ? map_fd : cg_fd,
				     cgroup_id, &ps->links[i]);
		if (err)
			break;
	}
	if (err) {
		char msg[SLUICE_ERRMSG_LEN];

		/* Whole or nothing; keep the first error's text. */
		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
		sock__detach_part(ss, p);
		sluice__set_err("%s on %s: %s (detached)", parts[p].what, cgroup, msg);
		goto out;
	}
	ps->cgroup = strdup(cgroup);
	ps->cgroup_id = cgroup_id;
out:
	close(cg_fd);
	return err;
}

int sluice_sock__attach_lb(struct sluice_sock *ss, const char *cgroup)
{
	return sock__attach_part(ss, SOCK_PART_LB, cgroup);
}

int sluice_sock__attach_redir(struct sluice_sock *ss, const char *cgroup)
{
	return sock__attach_part(ss, SOCK_PART_REDIR, cgroup);
}

int sluice_sock__detach_lb(struct sluice_sock *ss)
{
	sluice__clear_err();
	return sock__detach_part(ss, SOCK_PART_LB);
}

bool sluice_sock__lb_attached(struct sluice_sock *ss)
{
	__u64 cgroup_id;

	return sock__part_attached(ss, SOCK_PART_LB, &cgroup_id);
}

int sluice_sock__detach_redir(struct sluice_sock *ss)
{
	int map_fd = -1;

	sluice__clear_err();
	/* An old-style verdict attachment of an earlier agent has no pin:
	 * find it on the pinned map. */
	if (!ss->redir_skel && ss->pin_dir)
		map_fd = sock__redir_pinned_map(ss->pin_dir);
	if (map_fd >= 0) {
		__u32 ids[1], cnt = 1;

		if (!bpf_prog_query(map_fd, BPF_SK_MSG_VERDICT, 0, NULL, ids, &cnt) && cnt) {
			int fd = bpf_prog_get_fd_by_id(ids[0]);

			if (fd >= 0) {
				bpf_prog_detach2(fd, map_fd, BPF_SK_MSG_VERDICT);
				close(fd);
			}
		}
		close(map_fd);
	}
	return sock__detach_part(ss, SOCK_PART_REDIR);
}

/* Attached by us, or pinned by an earlier agent (its first link). */
bool sock__part_attached(struct sluice_sock *ss, enum sock_part p, __u64 *cgroup_id)
{
	const struct sock_attach *a = &parts[p].tab[parts[p].n - 1]; /* a cgroup link */
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd;

	*cgroup_id = ss->parts[p].cgroup_id;
	if (*cgroup_id)
		return true;
	if (!ss->pin_dir || sock__link_path(path, sizeof(path), ss->pin_dir, a))
		return false;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return false;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == BPF_LINK_TYPE_CGROUP)
		*cgroup_id = info.cgroup.cgroup_id;
	close(fd);
	return *cgroup_id != 0;
}
