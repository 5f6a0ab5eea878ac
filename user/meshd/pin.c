// SPDX-License-Identifier: MIT
/*
 * pin.c - bpffs mount, pin directory lock, layout version and the reuse of
 * the pinned programs (#16) (see pin.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include <bpf/bpf.h>

#include "sluice.h"
#include "sock.h"
#include "telemetry.h"

#include "attach.h"
#include "log.h"
#include "pin.h"

#define BPFFS_ROOT "/sys/fs/bpf"

int pin__mount_bpffs(const char *dir)
{
	size_t len = strlen(BPFFS_ROOT);
	struct statfs st;

	if (strncmp(dir, BPFFS_ROOT, len) || (dir[len] && dir[len] != '/'))
		return 0; /* elsewhere: the operator mounted it, statfs will tell */
	if (!statfs(BPFFS_ROOT, &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", BPFFS_ROOT, "bpf", 0, "mode=0700")) {
		int err = -errno;

		pr_err("%s is not bpffs and mounting bpffs there failed: %s", BPFFS_ROOT,
		       strerror(errno));
		return err;
	}
	pr_info("mounted bpffs on %s", BPFFS_ROOT);
	return 0;
}

static int pin__flock(const char *dir)
{
	int fd, err;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (errno != ENOENT)
			pr_err("pin dir %s: %s", dir, strerror(errno));
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		err = -errno;
		if (errno != EWOULDBLOCK) /* EBUSY: the caller says what it means */
			pr_err("pin dir %s: cannot lock: %s", dir, strerror(errno));
		close(fd);
		return err == -EWOULDBLOCK ? -EBUSY : err;
	}
	return fd;
}

int pin__lock(const char *dir)
{
	int err = sluice__mkdir_p(dir, 0700);

	if (err) {
		pr_err("pin dir %s: %s", dir, sluice__errmsg());
		return err;
	}
	return pin__flock(dir);
}

int pin__lock_existing(const char *dir)
{
	int fd = pin__flock(dir);

	return fd == -ENOENT ? 0 : fd;
}

static int pin__path(char *buf, size_t len, const char *dir, const char *name)
{
	int err = sluice__path_join(buf, len, dir, name);

	if (err)
		pr_err("%s", sluice__errmsg());
	return err;
}

bool pin__has_maps(const char *dir)
{
	struct dirent *de;
	bool found = false;
	DIR *d = opendir(dir);

	if (!d)
		return false;
	while (!found && (de = readdir(d)))
		found = de->d_name[0] != '.' && strcmp(de->d_name, PIN_LAYOUT_NAME);
	closedir(d);
	return found;
}

static int pin__count_one(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc *svc = value;

	(void)key;
	if (!(svc->flags & SLUICE_SVC_F_VIP_MARKER))
		(*(__u32 *)ctx)++;
	return 0;
}

int pin__count_services(const char *dir, __u32 *n)
{
	char path[PATH_MAX];
	int fd, err;

	*n = 0;
	err = pin__path(path, sizeof(path), dir, "services");
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0) {
		pr_err("cannot open the pinned services map %s: %s", path, strerror(-fd));
		return fd;
	}
	err = sluice__map_walk(fd, "services", sizeof(struct sluice_svc_key),
			       sizeof(struct sluice_svc), pin__count_one, n);
	close(fd);
	if (err)
		pr_err("%s", sluice__errmsg());
	return err;
}

/* Version in dir/layout: 0 if absent, -errno if unreadable. */
static long pin__read_layout(const char *dir)
{
	char path[PATH_MAX];
	__u32 key = 0, val = 0;
	int fd, err;

	err = pin__path(path, sizeof(path), dir, PIN_LAYOUT_NAME);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	err = bpf_map_lookup_elem(fd, &key, &val);
	close(fd);
	if (err)
		return err;
	return val;
}

int pin__check_layout(const char *dir)
{
	long version = pin__read_layout(dir);

	if (version < 0) {
		pr_err("pin dir %s: cannot read the layout map: %s", dir, strerror(-version));
		return version;
	}
	if (version == SLUICE_LAYOUT_VERSION)
		return 0;
	if (version == SLUICE_LAYOUT_VERSION_FIXED_M) {
		/* only the Maglev template differs: the library finds it out
		 * and keeps every table at SLUICE_MAGLEV_M slots (no upgrade
		 * breaks a connection); the stamp stays 3 (pin__write_layout)
		 * so the meshd of layout 3 may still run on these pins */
		pr_info("pinned maps in %s have layout version %ld: Maglev tables keep %d slots "
			"each (sized by need only on maps made by meshd --cleanup and a restart)",
			dir, version, SLUICE_MAGLEV_M);
		return 0;
	}
	if (version == 0 && !pin__has_maps(dir))
		return 0; /* fresh directory */
	pr_err("pinned maps in %s have layout version %ld%s, this meshd uses %d; "
	       "run meshd --cleanup (drops conntrack) or use a matching meshd",
	       dir, version, version ? "" : " (no layout map)", SLUICE_LAYOUT_VERSION);
	return -EPROTO;
}

int pin__write_layout(const char *dir)
{
	char path[PATH_MAX];
	__u32 key = 0, val = SLUICE_LAYOUT_VERSION;
	long version = pin__read_layout(dir);
	int fd, err;

	if (version == SLUICE_LAYOUT_VERSION || version == SLUICE_LAYOUT_VERSION_FIXED_M)
		return 0; /* 3: still what these maps are (pin__check_layout) */
	err = pin__path(path, sizeof(path), dir, PIN_LAYOUT_NAME);
	if (err)
		return err;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, PIN_LAYOUT_NAME, sizeof(key), sizeof(val), 1, NULL);
	if (fd < 0) {
		pr_err("creating the layout map: %s", strerror(-fd));
		return fd;
	}
	err = bpf_map_update_elem(fd, &key, &val, BPF_ANY);
	if (!err)
		err = bpf_obj_pin(fd, path);
	close(fd);
	if (err)
		pr_err("pinning the layout map at %s: %s", path, strerror(-err));
	return err;
}

int pin__remove(const char *dir)
{
	char path[PATH_MAX];
	int err;

	err = pin__path(path, sizeof(path), dir, PIN_LAYOUT_NAME);
	if (err)
		return err;
	if (unlink(path) && errno != ENOENT) {
		err = -errno;
		pr_err("unpin %s: %s", path, strerror(errno));
		return err;
	}
	/* The socket-LB/redirect and telemetry pins first: sluice__unpin()
	 * removes the directory, which must be empty by then. */
	err = sluice_sock__unpin(dir);
	if (err) {
		pr_err("%s", sluice__errmsg());
		return err;
	}
	err = telemetry__unpin(dir);
	if (err) {
		pr_err("%s", sluice__errmsg());
		return err;
	}
	err = sluice__unpin(dir);
	if (err) {
		pr_err("%s", sluice__errmsg());
		return err;
	}
	pr_info("removed the pins in %s", dir);
	return 0;
}

int pin__cleanup(const char *bpffs)
{
	int lock, n, err = 0;
	struct stat st;

	lock = pin__lock_existing(bpffs);
	if (lock < 0) {
		if (lock == -EBUSY)
			pr_err("meshd is running on %s: use `meshctl uninstall`, or stop it first",
			       bpffs);
		return 1;
	}
	n = attach__cleanup();
	if (!stat(bpffs, &st))
		err = pin__remove(bpffs);
	else
		pr_info("nothing pinned: %s does not exist", bpffs);
	if (lock > 0)
		close(lock);
	if (n < 0 || err) {
		pr_err("cleanup incomplete (see above)");
		return 1;
	}
	pr_info("cleanup done: %d programs detached", n);
	return 0;
}

void pin__log_progs(struct sluice *sl)
{
	const char *why;

	if (sluice__progs_reused(sl, &why))
		pr_info("programs reused, no load: %s", why);
	else
		pr_info("programs loaded: %s", why);
}

void pin__save_progs(struct sluice *sl, const char *dir)
{
	if (sluice__progs_reused(sl, NULL))
		return;
	if (sluice__progs_save(sl))
		pr_warn("programs not pinned for reuse (the next start loads them): %s",
			sluice__errmsg());
	else
		pr_debug("programs pinned in %s with their record for the next start", dir);
}
