// SPDX-License-Identifier: MIT
/*
 * policy_cut_netns.c - a policy cut (#15) reaches the sockets the socket LB
 * connected in other network namespaces (pods): sock_diag only ever sees
 * the namespace of the socket it is asked through.
 *
 * Contract: the processes of the cut scope (the cgroup the socket LB is
 * attached to, and every cgroup below it) name the network namespaces
 * where such sockets can live. Their distinct namespaces (by the inode of
 * /proc/PID/ns/net, the caller's own left out: policy_cut.c did it) are
 * visited one after the other by one short-lived thread that setns()es
 * into each and runs the same socket pass there; the caller's thread never
 * changes namespace. Everything is bounded: processes read, cgroup depth,
 * namespaces visited, and a time budget from the start of the walk; what a
 * bound leaves out is counted (netns_skipped, scans_truncated), a
 * namespace where setns() or sock_diag failed too (netns_failed,
 * last_err). Portable to 6.1: setns(CLONE_NEWNET) and SOCK_DESTROY are
 * far older; the 6.5 bpf_sock_destroy() kfunc is not needed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "policy_cut.h"

struct ns_seen {
	__u64 ino;
	int pid;
};

struct ns_walk {
	struct cut_ctx *bes;
	const struct cut_scope *scope;
	unsigned int max_netns, max_pids;
	__u64 start_ns, deadline_ns;
	__u64 self_ino;
	struct ns_seen *v;
	size_t n, cap, pids;
	bool truncated, canceled;
	/* results */
	__u64 socks, visited, failed, skipped;
	int last_err;
};

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + (__u64)ts.tv_nsec;
}

static bool walk__late(struct ns_walk *w)
{
	return now_ns() > w->deadline_ns;
}

static int walk__push(struct ns_walk *w, __u64 ino, int pid)
{
	if (w->n && w->v[w->n - 1].ino == ino)
		return 0; /* the processes of one cgroup mostly share one */
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct ns_seen *g = realloc(w->v, cap * sizeof(*g));

		if (!g)
			return -ENOMEM;
		w->v = g;
		w->cap = cap;
	}
	w->v[w->n++] = (struct ns_seen){ .ino = ino, .pid = pid };
	return 0;
}

static int walk__procs(struct ns_walk *w, const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	FILE *f;
	int pid, err = 0;

	if (snprintf(path, sizeof(path), "%s/cgroup.procs", dir) >= (int)sizeof(path)) {
		w->truncated = true;
		return 0;
	}
	f = fopen(path, "re");
	if (!f)
		return 0; /* removed meanwhile, or not a cgroup v2 directory */
	while (!err && fscanf(f, "%d", &pid) == 1) {
		if (pid <= 0)
			continue; /* not in our PID namespace */
		if (w->pids++ >= w->max_pids || ((w->pids & 255) == 0 && walk__late(w))) {
			w->truncated = true;
			err = 1;
			break;
		}
		snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
		if (stat(path, &st) || (__u64)st.st_ino == w->self_ino)
			continue; /* exited, or in our namespace */
		if (walk__push(w, st.st_ino, pid))
			err = -ENOMEM;
	}
	fclose(f);
	return err;
}

/* 1: a bound stopped the walk, -ENOMEM */
static int walk__cgroup(struct ns_walk *w, const char *dir, int depth)
{
	char sub[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int err = walk__procs(w, dir);

	if (err)
		return err;
	d = opendir(dir);
	if (!d)
		return 0;
	while (!err && (e = readdir(d))) {
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (depth >= SLUICE_CUT_MAX_DEPTH ||
		    snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= (int)sizeof(sub)) {
			w->truncated = true;
			continue;
		}
		err = walk__cgroup(w, sub, depth + 1);
	}
	closedir(d);
	return err;
}

/* Every process of /proc (the scope "all"): the same bounds as the
 * cgroup walk, processes counted against max_pids. 1: a bound stopped it. */
static int walk__proc_all(struct ns_walk *w)
{
	char path[64];
	struct dirent *e;
	struct stat st;
	int err = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return -errno;
	while (!err && (e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 0 || pid > INT_MAX)
			continue; /* not a process */
		if (w->pids++ >= w->max_pids || ((w->pids & 255) == 0 && walk__late(w))) {
			w->truncated = true;
			err = 1;
			break;
		}
		snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
		if (stat(path, &st) || (__u64)st.st_ino == w->self_ino)
			continue; /* exited, a kernel thread's, or ours */
		if (walk__push(w, st.st_ino, (int)pid))
			err = -ENOMEM;
	}
	closedir(d);
	return err;
}

static int ns_cmp(const void *a, const void *b)
{
	const struct ns_seen *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* One namespace: 1 visited, 0 gone (the process left, or its PID was
 * reused in another namespace), -errno failed. */
static int walk__visit(struct ns_walk *w, const struct ns_seen *ns)
{
	char path[64];
	struct stat st;
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", ns->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? 0 : -errno;
	if (fstat(fd, &st) || (__u64)st.st_ino != ns->ino) {
		close(fd);
		return 0;
	}
	err = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	if (!err)
		err = cut__socks(w->bes, &w->socks);
	return err ? err : 1;
}

static void *walk__thread(void *arg)
{
	struct ns_walk *w = arg;
	struct cut_async *as = w->bes->as;
	struct stat st;
	size_t n = 0;
	int err;

	if (stat("/proc/thread-self/ns/net", &st)) {
		w->last_err = -errno;
		w->failed++;
		return NULL;
	}
	w->self_ino = st.st_ino;
	err = w->scope->all ? walk__proc_all(w) : walk__cgroup(w, w->scope->cgroup, 0);
	if (err < 0) {
		w->last_err = err;
		w->failed++;
	}
	if (w->n) {
		qsort(w->v, w->n, sizeof(*w->v), ns_cmp);
		for (size_t i = 0; i < w->n; i++)
			if (!n || w->v[n - 1].ino != w->v[i].ino)
				w->v[n++] = w->v[i];
	}
	for (size_t i = 0; i < n; i++) {
		int r;

		if (cut__stale(w->bes)) {
			w->canceled = true;
			break;
		}
		if (i >= w->max_netns || walk__late(w)) {
			w->skipped += n - i;
			break;
		}
		r = walk__visit(w, &w->v[i]);
		if (r == -ECANCELED) {
			w->canceled = true;
			break;
		}
		if (r > 0) {
			w->visited++;
			if (as) /* progress, read by sluice__policy_cut_totals() */
				__atomic_store_n(&as->run_netns, (__u32)w->visited,
						 __ATOMIC_RELAXED);
		} else if (r < 0) {
			w->failed++;
			w->last_err = r;
		} else {
			w->skipped++;
		}
	}
	return NULL;
}

int cut__socks_netns(struct cut_ctx *bes, __u64 *socks)
{
	struct sluice *s = bes->s;
	const struct cut_scope *sc = bes->scope;
	struct ns_walk w = { .bes = bes, .scope = sc };
	struct sluice_policy_cut_totals *t = &s->cut;
	pthread_t th;
	int err;

	if (!sc || (!sc->cgroup && !sc->all))
		return 0;
	w.max_netns = sc->max_netns ? sc->max_netns : SLUICE_CUT_MAX_NETNS;
	w.max_pids = sc->max_pids ? sc->max_pids : SLUICE_CUT_MAX_PIDS;
	w.start_ns = now_ns();
	w.deadline_ns = w.start_ns +
			(__u64)(sc->budget_ms ? sc->budget_ms : SLUICE_CUT_BUDGET_MS) * 1000000ull;
	/* its own thread: setns() changes the calling thread's namespace */
	err = pthread_create(&th, NULL, walk__thread, &w);
	if (err) {
		cut__lock(s);
		t->netns_failed++;
		t->last_err = -err;
		cut__unlock(s);
		return 0;
	}
	pthread_join(th, NULL);
	*socks += w.socks;
	cut__lock(s);
	t->netns += w.visited;
	t->netns_failed += w.failed;
	t->netns_skipped += w.skipped;
	t->scans_truncated += w.truncated;
	t->pids_scanned += w.pids;
	if (w.last_err)
		t->last_err = w.last_err;
	if (!w.canceled) {
		t->last_netns = (__u32)w.visited;
		t->last_netns_us = (now_ns() - w.start_ns) / 1000;
	}
	cut__unlock(s);
	free(w.v);
	return w.canceled ? -ECANCELED : 0;
}

int sluice__policy_cut_scope(struct sluice *s, const char *cgroup_dir, unsigned int max_netns,
			     unsigned int budget_ms)
{
	char *dup = NULL;

	sluice__clear_err();
	if (cgroup_dir) {
		dup = strdup(cgroup_dir);
		if (!dup) {
			sluice__set_err("policy cut scope: out of memory");
			return -ENOMEM;
		}
	}
	cut__lock(s); /* a worker copies the scope when a run begins */
	free(s->cut_cgroup);
	s->cut_cgroup = dup;
	s->cut_max_netns = max_netns;
	s->cut_budget_ms = budget_ms;
	cut__unlock(s);
	return 0;
}

void sluice__policy_cut_procs(struct sluice *s, bool all, unsigned int max_pids)
{
	cut__lock(s);
	s->cut_all = all;
	s->cut_max_pids = max_pids;
	cut__unlock(s);
}

void sluice__policy_cut_max_socks(struct sluice *s, unsigned int max_socks)
{
	cut__lock(s);
	s->cut_max_socks = max_socks;
	cut__unlock(s);
}
