/* SPDX-License-Identifier: MIT */
/*
 * fake_state.h - the meshd state fixture shared by the unit suites of the
 * state file, its journal and group commit (test_meshd_commit_one,
 * test_meshd_group): three services as JSON, maps that are a stand-in
 * applying the difference they are given (like desired__apply(): services
 * replaced, added and removed), and
 * checks of what a restart reads. Header-only: each suite uses a part.
 */
#ifndef SLUICE_TEST_FAKE_STATE_H
#define SLUICE_TEST_FAKE_STATE_H

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "desired.h"
#include "log.h"
#include "state.h"
#include "test.h"

static const char *const three_json =
	"{\"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80,"
	" \"protocol\": \"tcp\", \"backends\": [{\"address\": \"10.0.1.2\", \"port\": 8080}]},"
	" {\"vip\": \"10.96.0.11\", \"port\": 80, \"protocol\": \"tcp\", \"backends\":"
	"  [{\"address\": \"10.0.2.2\", \"port\": 8080, \"weight\": 3},"
	"   {\"address\": \"10.0.2.3\", \"port\": 8080, \"weight\": 0, \"drainedWeight\": 4}]},"
	" {\"vip\": \"fd00::53\", \"port\": 53, \"protocol\": \"udp\","
	"  \"backends\": [{\"address\": \"fd00:1::2\", \"port\": 5353}]}]}";

/* Maps holding a desired state; an apply changes only the services it is
 * given (old and next), like desired__apply(). */
struct fake_maps {
	struct desired held;
	int applies, fail_apply, changed;
	__u32 widest; /* most services an apply was given */
};

static inline void count_change(enum desired_change change, const struct desired_service *old_svc,
				const struct desired_service *new_svc, void *ctx)
{
	(void)change;
	(void)old_svc;
	(void)new_svc;
	(*(int *)ctx)++;
}

static inline bool same_state(const struct desired *a, const struct desired *b)
{
	int n = 0;

	desired__diff(a, b, count_change, &n);
	return !n;
}

static inline int fake_read(void *ctx, struct desired *out)
{
	return desired__copy(out, &((struct fake_maps *)ctx)->held);
}

/* What a service owns (as desired__free() frees it). */
static inline void fake_svc_free(struct desired_service *s)
{
	free(s->backends);
	free(s->src_ranges);
	free(s->rules);
}

/* One service out of held (the rest kept in order). */
static inline void fake_drop(struct desired *held, struct desired_service *h)
{
	__u32 i = (__u32)(h - held->services);

	fake_svc_free(h);
	memmove(h, h + 1, (held->nservices - i - 1) * sizeof(*h));
	held->nservices--;
}

static inline int fake_apply(void *ctx, const struct desired *old, const struct desired *next)
{
	struct fake_maps *f = ctx;

	f->widest = old->nservices > f->widest ? old->nservices : f->widest;
	f->widest = next->nservices > f->widest ? next->nservices : f->widest;
	if (++f->applies == f->fail_apply) {
		sluice__set_err("fake maps: backends map is full");
		return -ENOSPC;
	}
	/* a service of old that next lacks is removed */
	for (__u32 i = 0; i < old->nservices; i++) {
		const struct desired_service *o = &old->services[i];
		struct desired_service *h = desired__find(&f->held, &o->vip, o->port, o->proto);

		if (h && !desired__find(next, &o->vip, o->port, o->proto))
			fake_drop(&f->held, h);
	}
	/* every service of next replaces its twin or is added */
	for (__u32 i = 0; i < next->nservices; i++) {
		const struct desired_service *n = &next->services[i];
		struct desired_service *h = desired__find(&f->held, &n->vip, n->port, n->proto);
		struct desired one = { .nservices = 1, .services = (struct desired_service *)n };
		struct desired copy;

		if (desired__copy(&copy, &one))
			return -ENOMEM;
		if (!h) {
			struct desired_service *v =
				realloc(f->held.services, (f->held.nservices + 1) * sizeof(*v));

			if (!v) {
				desired__free(&copy);
				return -ENOMEM;
			}
			f->held.services = v;
			h = &v[f->held.nservices++];
		} else {
			fake_svc_free(h);
		}
		*h = copy.services[0];
		free(copy.services);
	}
	return 0;
}

static inline void fake_changed(void *ctx)
{
	((struct fake_maps *)ctx)->changed++;
	sluice__set_err("%s", "");
}

static inline bool parse(struct desired *d, const char *json)
{
	desired__init(d);
	return ASSERT_OK(desired__from_string(d, json, strlen(json)), json);
}

/* A deep copy of d->services[i] to edit. */
static inline bool dup_svc(const struct desired *d, __u32 i, struct desired_service *out)
{
	struct desired one = { .nservices = 1, .services = &d->services[i] }, copy;

	if (!ASSERT_OK(desired__copy(&copy, &one), "copy"))
		return false;
	*out = copy.services[0];
	free(copy.services);
	return true;
}

static inline bool fake_state__setup(struct state *st, struct fake_maps *f, const char *dir,
				     const char *name)
{
	static char path[PATH_MAX];
	struct desired d;

	memset(f, 0, sizeof(*f));
	memset(st, 0, sizeof(*st));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!parse(&d, three_json) || !ASSERT_OK(desired__save(&d, path), "save"))
		return false;
	desired__free(&d);
	if (!ASSERT_OK(state__load(st, path), "load") ||
	    !ASSERT_OK(desired__copy(&f->held, &st->desired), "maps"))
		return false;
	st->maps = (struct state_maps){ fake_read, fake_apply, f };
	st->changed = fake_changed;
	st->changed_ctx = f;
	return true;
}

static inline bool file_holds(const char *path, const struct desired *want, const char *what)
{
	struct desired d;
	bool ok;

	desired__init(&d);
	if (!ASSERT_OK(desired__load(&d, path), what))
		return false;
	ok = ASSERT_TRUE(same_state(&d, want), what);
	desired__free(&d);
	return ok;
}

/* What a restart reads (the file, the journal replayed and folded in):
 * want; then the file alone holds it and the journal is gone. */
static inline bool durable_holds(const char *path, const struct desired *want, const char *what)
{
	struct state st2;
	char jpath[PATH_MAX + 16];
	bool ok;

	memset(&st2, 0, sizeof(st2));
	snprintf(jpath, sizeof(jpath), "%s.journal", path);
	if (!ASSERT_OK(state__load(&st2, path), what))
		return false;
	ok = ASSERT_TRUE(same_state(&st2.desired, want), what);
	state__free(&st2);
	ok = ASSERT_NEQ(access(jpath, F_OK), 0, "journal folded in at load") && ok;
	return file_holds(path, want, what) && ok;
}

/* A suite's main(): its files live in a fresh temporary directory dir
 * (a mkdtemp() template), every file in it is removed at the end, then
 * the directory (no list of names to keep in step with the tests). */
static inline int fake_state__main(const char *suite, char *dir, const struct test *tests, size_t n,
				   int argc, char **argv)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int rc;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	log__set_level(LOG_LEVEL_ERROR);
	rc = test__run_all(suite, tests, n, argc, argv);
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	if (rmdir(dir))
		fprintf(stderr, "%s: cannot remove %s: %s\n", suite, dir, strerror(errno));
	return rc;
}

#endif /* SLUICE_TEST_FAKE_STATE_H */
