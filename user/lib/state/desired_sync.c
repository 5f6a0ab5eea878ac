// SPDX-License-Identifier: MIT
/*
 * desired_sync.c - the desired state against the outside world: the state
 * file (atomic save, load), the difference between two states, and making
 * the maps follow a new state all-or-nothing (see desired.h).
 *
 * Contract: desired__save() never leaves a half-written state file: the
 * new text goes to "<path>.tmp.<pid>", is fsync'ed, renamed over the old
 * file and the directory is fsync'ed, so after a crash the file holds the
 * old or the new state. desired__apply() deletes first (frees map room),
 * then updates, then adds; when a write fails it restores, newest first,
 * every service it already changed and returns the first error, whose
 * text names the service.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "desired.h"
#include "internal.h"
#include "yamljson.h"

#define STATE_FILE_MAX (256u << 20)

/* The directory part of path ("." for a bare file name). */
static void sync__dirname(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(buf, len, ".");
	else if (slash == path)
		snprintf(buf, len, "/");
	else
		snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

static int sync__fsync_dir(const char *dir)
{
	int fd, err = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd))
		err = -errno;
	if (fd >= 0)
		close(fd);
	if (err)
		sluice__set_err("cannot sync directory %s: %s", dir, strerror(-err));
	return err;
}

int desired__save(const struct desired *d, const char *path)
{
	char dir[4096], tmp[4200];
	int fd = -1, err;

	sluice__clear_err();
	if (strlen(path) >= sizeof(dir)) {
		sluice__set_err("state file %.64s...: path too long", path);
		return -ENAMETOOLONG;
	}
	sync__dirname(path, dir, sizeof(dir));
	err = sluice__mkdir_p(dir, 0755);
	if (err)
		return err;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		sluice__set_err("cannot create %s: %s", tmp, strerror(errno));
		goto cleanup;
	}
	/* one service's tree at a time, not the whole state's */
	err = desired__write(d, fd);
	if (!err && fsync(fd))
		err = -errno;
	/* close() can report a delayed write error (NFS) */
	if (close(fd) && !err)
		err = -errno;
	fd = -1;
	if (err) {
		sluice__set_err("cannot write %s: %s", tmp, strerror(-err));
		goto cleanup;
	}
	if (rename(tmp, path)) {
		err = -errno;
		sluice__set_err("cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto cleanup;
	}
	/* The new content is in place once rename() returns: a failed fsync
	 * of the directory only leaves the name's durability in doubt, and
	 * reporting it as a failed save would make the caller roll the maps
	 * back while the file already holds the new state. */
	if (sync__fsync_dir(dir))
		fprintf(stderr, "warning: %s saved, but fsync of its directory failed: %s\n", path,
			sluice__errmsg());
	err = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (err)
		unlink(tmp); /* harmless when already renamed: the name is gone */
	return err;
}

int desired__load(struct desired *d, const char *path)
{
	int err = desired__load_existing(d, path);

	if (err != -ENOENT)
		return err;
	sluice__clear_err();
	return 0; /* first start: nothing desired yet */
}

int desired__load_existing(struct desired *d, const char *path)
{
	char msg[SLUICE_ERRMSG_LEN];
	struct json_object *root = NULL;
	size_t len;
	char *text;
	int err;

	sluice__clear_err();
	desired__init(d);
	err = yaml__read_file(path, STATE_FILE_MAX, &text, &len);
	if (err == -ENOENT) {
		sluice__set_err("state file %s does not exist", path);
		return err;
	}
	if (err)
		goto fail;
	/* We wrote it as JSON: one service's tree at a time (the whole
	 * state's would be ~12 KB per service); json-c is twice as fast as
	 * libyaml on a big state; a hand-edited YAML file still loads. */
	err = desired__from_text(d, text, len, path);
	if (err != -EAGAIN) {
		free(text);
		goto parsed;
	}
	err = yaml__parse_json(text, len, path, &root);
	if (err == -EINVAL)
		err = yaml__load(text, len, path, &root);
	free(text);
	if (err)
		goto fail;
	if (!root) {
		sluice__set_err("%s: empty file", path);
		err = -EINVAL;
		goto fail;
	}
	err = desired__from_json(d, root);
	json_object_put(root);
parsed:
	if (!err)
		return 0;
	snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
	sluice__set_err("%s: %s", path, msg);
fail:
	snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
	sluice__set_err("cannot load the state file: %s", msg);
	return err;
}

static int sync__cmp_be(const void *x, const void *y)
{
	const struct desired_backend *a = x, *b = y;
	int c;

	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	c = memcmp(a->addr.addr, b->addr.addr,
		   (a->addr.family == SLUICE_AF_INET ? 1 : 4) * sizeof(__u32));
	if (c)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return a->weight < b->weight ? -1 : a->weight > b->weight;
}

/* Same backend set with the same weights, in any order; with verdicts,
 * the same `unhealthy` verdicts too: what the maps see. */
static bool sync__same_backends(const struct desired_service *a, const struct desired_service *b,
				bool verdicts)
{
	struct desired_backend *x, *y;
	bool same = false;
	__u32 n = a->nbackends;

	if (n != b->nbackends)
		return false;
	if (!n)
		return true;
	x = malloc(n * sizeof(*x));
	y = malloc(n * sizeof(*y));
	if (x && y) {
		memcpy(x, a->backends, n * sizeof(*x));
		memcpy(y, b->backends, n * sizeof(*y));
		qsort(x, n, sizeof(*x), sync__cmp_be);
		qsort(y, n, sizeof(*y), sync__cmp_be);
		same = true;
		for (__u32 i = 0; i < n && same; i++)
			same = !sync__cmp_be(&x[i], &y[i]) &&
			       (!verdicts || x[i].unhealthy == y[i].unhealthy);
	} /* out of memory: "different", and the update rewrites the same set */
	free(x);
	free(y);
	return same;
}

static const char *sync__source(const struct desired_service *s)
{
	return s->source[0] ? s->source : "manual";
}

static bool sync__same(const struct desired_service *a, const struct desired_service *b,
		       bool verdicts)
{
	return !strcmp(a->name, b->name) && !strcmp(sync__source(a), sync__source(b)) &&
	       sluice_outlier__same(&a->outlier, &b->outlier) &&
	       a->affinity_timeout_s == b->affinity_timeout_s && a->snat == b->snat &&
	       a->snat_node == b->snat_node && a->drop_empty == b->drop_empty &&
	       desired__health_eq(&a->health, &b->health) && desired__src_ranges_eq(a, b) &&
	       desired__policy_eq(a, b) && sync__same_backends(a, b, verdicts);
}

static int sync__cmp_ptr(const void *x, const void *y)
{
	return desired__cmp_key(*(const struct desired_service *const *)x,
				*(const struct desired_service *const *)y);
}

static const struct desired_service **sync__sorted(const struct desired *d)
{
	const struct desired_service **v;

	v = malloc((d->nservices + 1) * sizeof(*v));
	if (!v)
		return NULL;
	for (__u32 i = 0; i < d->nservices; i++)
		v[i] = &d->services[i];
	qsort(v, d->nservices, sizeof(*v), sync__cmp_ptr);
	return v;
}

/* Without memory for sorting: quadratic, but still correct. */
static void sync__diff_slow(const struct desired *old, const struct desired *new,
			    desired__diff_fn fn, void *ctx, bool verdicts)
{
	for (__u32 i = 0; i < old->nservices; i++) {
		const struct desired_service *o = &old->services[i];

		if (!desired__find(new, &o->vip, o->port, o->proto))
			fn(DESIRED_DELETE, o, NULL, ctx);
	}
	for (__u32 j = 0; j < new->nservices; j++) {
		const struct desired_service *n = &new->services[j];
		const struct desired_service *o = desired__find(old, &n->vip, n->port, n->proto);

		if (!o)
			fn(DESIRED_ADD, NULL, n, ctx);
		else if (!sync__same(o, n, verdicts))
			fn(DESIRED_UPDATE, o, n, ctx);
	}
}

/* Changes come in key order (family, VIP, port, protocol). verdicts:
 * backends' `unhealthy` verdicts count (the maps' view, for apply). */
static void sync__diff(const struct desired *old, const struct desired *new, desired__diff_fn fn,
		       void *ctx, bool verdicts)
{
	const struct desired_service **a, **b;
	__u32 i = 0, j = 0, na = old->nservices, nb = new->nservices;

	a = sync__sorted(old);
	b = sync__sorted(new);
	if (!a || !b) {
		free(a);
		free(b);
		sync__diff_slow(old, new, fn, ctx, verdicts);
		return;
	}
	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : desired__cmp_key(a[i], b[j]);

		if (c < 0) {
			fn(DESIRED_DELETE, a[i++], NULL, ctx);
		} else if (c > 0) {
			fn(DESIRED_ADD, NULL, b[j++], ctx);
		} else {
			if (!sync__same(a[i], b[j], verdicts))
				fn(DESIRED_UPDATE, a[i], b[j], ctx);
			i++;
			j++;
		}
	}
	free(a);
	free(b);
}

void desired__diff(const struct desired *old, const struct desired *new, desired__diff_fn fn,
		   void *ctx)
{
	sync__diff(old, new, fn, ctx, false);
}

struct sync_change {
	enum desired_change kind;
	const struct desired_service *old, *new;
};

struct sync_plan {
	struct sync_change *v;
	__u32 n, cap;
	bool nomem;
	bool outlier_off; /* node-wide: outlier settings do not reach the maps */
	bool policy_cut;  /* an update narrowed or changed a policy (#15) */
	bool cut_stale;   /* ... or a service comes or goes: a running cut restarts */
};

static void sync__collect(enum desired_change kind, const struct desired_service *old_svc,
			  const struct desired_service *new_svc, void *ctx)
{
	struct sync_plan *p = ctx;
	struct sync_change *grown;

	if (kind == DESIRED_UPDATE && !desired__policy_eq(old_svc, new_svc))
		p->policy_cut = true;
	if (kind != DESIRED_UPDATE || p->policy_cut)
		p->cut_stale = true; /* a service id may be reused */

	/* a label-only (or health-check-only) update leaves the maps as they are */
	if (kind == DESIRED_UPDATE && sync__same_backends(old_svc, new_svc, true) &&
	    (p->outlier_off || sluice_outlier__same(&old_svc->outlier, &new_svc->outlier)) &&
	    old_svc->affinity_timeout_s == new_svc->affinity_timeout_s &&
	    old_svc->snat == new_svc->snat && old_svc->snat_node == new_svc->snat_node &&
	    old_svc->drop_empty == new_svc->drop_empty &&
	    desired__src_ranges_eq(old_svc, new_svc) && desired__policy_eq(old_svc, new_svc))
		return;
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		grown = realloc(p->v, p->cap * sizeof(*p->v));
		if (!grown) {
			p->nomem = true;
			return;
		}
		p->v = grown;
	}
	p->v[p->n++] = (struct sync_change){ .kind = kind, .old = old_svc, .new = new_svc };
}

/* The library's spec of svc; free spec->backends after use. */
static int sync__spec(const struct desired_service *svc, struct sluice_service_spec *spec)
{
	struct sluice_backend_spec *bes = NULL;

	if (svc->nbackends) {
		bes = calloc(svc->nbackends, sizeof(*bes));
		if (!bes) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
	}
	for (__u32 i = 0; i < svc->nbackends; i++)
		bes[i] = (struct sluice_backend_spec){ .addr = svc->backends[i].addr,
						       .port = svc->backends[i].port,
						       .weight = svc->backends[i].weight,
						       .unhealthy = svc->backends[i].unhealthy };
	*spec = (struct sluice_service_spec){
		.vip = svc->vip,
		.port = svc->port,
		.proto = svc->proto,
		.backends = bes,
		.nbackends = svc->nbackends,
		.outlier = svc->outlier,
		.affinity_timeout_s = svc->affinity_timeout_s,
		.nsrc_ranges = svc->nsrc_ranges,
		.src_ranges = svc->src_ranges,
		.snat = svc->snat,
		.snat_node = svc->snat_node,
		.drop_empty = svc->drop_empty,
		.nallow = svc->nallow,
		.ndeny = svc->ndeny,
		.allow = svc->rules,
		.deny = svc->rules ? svc->rules + svc->nallow : NULL,
		.policy_refuse = svc->policy_refuse,
	};
	return 0;
}

static const char *const sync__verb[] = {
	[DESIRED_ADD] = "adding",
	[DESIRED_UPDATE] = "updating",
	[DESIRED_DELETE] = "deleting",
};

/* "adding 10.0.0.1:80/tcp: <the library's error>" */
static void sync__name_err(const struct sync_change *c)
{
	char msg[SLUICE_ERRMSG_LEN], ref[DESIRED_SVC_REF_LEN];

	snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
	sluice__set_err("%s %s: %s", sync__verb[c->kind],
			desired__svc_ref(c->old ? c->old : c->new, ref, sizeof(ref)), msg);
}

/* The services of list (n of them) gone in one sluice__service_del_many()
 * call (one walk of the backends map, one RCU grace period for the
 * tables); *done: how many of the list's head are gone. */
static int sync__del_list(struct sluice *s, const struct desired_service *const *list, __u32 n,
			  __u32 *done)
{
	struct sluice_service_ref *refs;
	int err;

	*done = 0;
	refs = calloc(n + 1, sizeof(*refs));
	if (!refs) {
		sluice__set_err("out of memory planning the update");
		return -ENOMEM;
	}
	for (__u32 i = 0; i < n; i++)
		refs[i] = (struct sluice_service_ref){ .vip = list[i]->vip,
						       .port = list[i]->port,
						       .proto = list[i]->proto };
	err = sluice__service_del_many(s, refs, n, done);
	free(refs);
	return err;
}

/* The services of list written in one sluice__service_set_many() call (the
 * maps read once, one RCU grace period per group of tables); *done: how
 * many of the list's head are live, *failed: the one the error is about. */
static int sync__set_list(struct sluice *s, const struct desired_service *const *list, __u32 n,
			  __u32 *done, __u32 *failed)
{
	struct sluice_service_spec *specs;
	__u32 nspecs = 0;
	int err = 0;

	*done = 0;
	*failed = n;
	specs = calloc(n + 1, sizeof(*specs));
	if (!specs) {
		sluice__set_err("out of memory planning the update");
		return -ENOMEM;
	}
	for (; nspecs < n && !err; nspecs += !err)
		err = sync__spec(list[nspecs], &specs[nspecs]);
	if (!err)
		err = sluice__service_set_many(s, specs, n, done, failed);
	for (__u32 k = 0; k < nspecs; k++)
		free((void *)specs[k].backends);
	free(specs);
	return err;
}

/* Plan indexes of the changes of these kinds, in this order, and the
 * service each writes (new) or removes (old). */
static __u32 sync__select(const struct sync_plan *plan, const __u32 *from, __u32 nfrom,
			  const enum desired_change *kinds, size_t nkinds, bool old,
			  const struct desired_service **list, __u32 *idx)
{
	__u32 n = 0;

	for (size_t k = 0; k < nkinds; k++)
		for (__u32 j = 0; j < nfrom; j++) {
			const struct sync_change *c = &plan->v[from ? from[j] : j];

			if (c->kind != kinds[k])
				continue;
			list[n] = old ? c->old : c->new;
			idx[n++] = from ? from[j] : j;
		}
	return n;
}

/* Deletes, then updates and adds; the plan indexes of the changes that
 * took effect go to done[] (in that order) and an error names its change. */
static int sync__do_all(struct sluice *s, const struct sync_plan *plan,
			const struct desired_service **list, __u32 *idx, __u32 *done, __u32 *ndone)
{
	static const enum desired_change dels[] = { DESIRED_DELETE };
	static const enum desired_change sets[] = { DESIRED_UPDATE, DESIRED_ADD };
	__u32 n, k = 0, bad = 0;
	int err;

	/* deletes first: they free map room for the rest */
	n = sync__select(plan, NULL, plan->n, dels, 1, true, list, idx);
	err = sync__del_list(s, list, n, &k);
	bad = k;
	if (!err) {
		for (__u32 j = 0; j < k; j++)
			done[(*ndone)++] = idx[j];
		n = sync__select(plan, NULL, plan->n, sets, 2, false, list, idx);
		err = sync__set_list(s, list, n, &k, &bad);
	}
	for (__u32 j = 0; j < k && j < n; j++)
		done[(*ndone)++] = idx[j];
	if (err && bad < n)
		sync__name_err(&plan->v[idx[bad]]);
	return err;
}

/* Puts back what the changes in done[] did, in batches too: added
 * services deleted first (room), then updated and deleted ones written
 * as they were. Returns how many could not be restored. */
static __u32 sync__undo_all(struct sluice *s, const struct sync_plan *plan,
			    const struct desired_service **list, __u32 *idx, const __u32 *done,
			    __u32 ndone)
{
	static const enum desired_change added[] = { DESIRED_ADD };
	static const enum desired_change changed[] = { DESIRED_UPDATE, DESIRED_DELETE };
	__u32 n, k = 0, bad, failed = 0;

	n = sync__select(plan, done, ndone, added, 1, false, list, idx);
	if (sync__del_list(s, list, n, &k))
		failed += n - k;
	n = sync__select(plan, done, ndone, changed, 2, true, list, idx);
	if (sync__set_list(s, list, n, &k, &bad))
		failed += n - k;
	return failed;
}

int desired__apply(struct sluice *s, const struct desired *old, const struct desired *new)
{
	char msg[SLUICE_ERRMSG_LEN];
	struct sync_plan plan = {};
	struct desired empty = {};
	const struct desired_service **list = NULL;
	__u32 *done = NULL, *idx = NULL, ndone = 0, failed;
	bool writing = false;
	int err;

	err = desired__validate(new);
	if (err)
		return err;
	plan.outlier_off = !sluice__outlier_detection(s);
	sync__diff(old ? old : &empty, new, sync__collect, &plan, true);
	done = calloc(plan.n + 1, sizeof(*done));
	idx = calloc(plan.n + 1, sizeof(*idx));
	list = calloc(plan.n + 1, sizeof(*list));
	if (plan.nomem || !done || !idx || !list) {
		sluice__set_err("out of memory planning the update");
		err = -ENOMEM;
		goto cleanup;
	}
	/* a cut running in a worker must not delete by a verdict taken before
	 * (or in the middle of) these writes: it stops and runs again after */
	writing = plan.cut_stale || !desired__node_deny_eq(old ? old : &empty, new);
	if (writing)
		sluice__policy_cut_writing(s, true);
	/* the node-wide deny list first: all or nothing itself, and put back
	 * when a service fails */
	if (!desired__node_deny_eq(old ? old : &empty, new)) {
		err = sluice__policy_node_set(s, new->node_deny, new->nnode_deny);
		if (err)
			goto cleanup;
	}
	err = sync__do_all(s, &plan, list, idx, done, &ndone);
	if (!err) {
		if (plan.policy_cut || !desired__node_deny_eq(old ? old : &empty, new))
			desired__policy_cut(s);
		goto cleanup;
	}
	if (!desired__node_deny_eq(old ? old : &empty, new))
		sluice__policy_node_set(s, old ? old->node_deny : NULL, old ? old->nnode_deny : 0);
	snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
	failed = sync__undo_all(s, &plan, list, idx, done, ndone);
	if (failed)
		sluice__set_err("%s (restoring %u already changed services also failed; "
				"apply the state again)",
				msg, failed);
	else
		sluice__set_err("%s", msg);
cleanup:
	if (writing)
		sluice__policy_cut_writing(s, false);
	free(done);
	free(idx);
	free(list);
	free(plan.v);
	return err;
}
