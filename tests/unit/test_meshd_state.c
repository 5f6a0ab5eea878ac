// SPDX-License-Identifier: MIT
/*
 * test_meshd_state.c - the agent's desired state (user/meshd/state.c):
 * loading the state file, commits (validate, apply, atomic save; the maps
 * put back when the save fails) and the reconcile at start. The maps are a
 * stand-in (struct state_maps) that holds a desired state and fails on
 * request: what is tested is what state.c decides, not the kernel's maps
 * (test_desired.c has those). No root needed.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "desired.h"
#include "log.h"
#include "state.h"
#include "test.h"

static char dir[] = "/tmp/sluice-test-state.XXXXXX";

/* Maps that hold a desired state; apply number fail_apply fails. */
struct fake_maps {
	struct desired held;
	int reads, applies, fail_apply;
	bool fail_read;
	bool old_mismatch; /* an apply was told the maps held something else */
	int changed;       /* calls of the changed hook */
};

static void count_change(enum desired_change change, const struct desired_service *old_svc,
			 const struct desired_service *new_svc, void *ctx)
{
	(void)change;
	(void)old_svc;
	(void)new_svc;
	(*(int *)ctx)++;
}

/* Same services, names and backends (as sets): desired__diff() finds nothing. */
static bool same_state(const struct desired *a, const struct desired *b)
{
	int n = 0;

	desired__diff(a, b, count_change, &n);
	return !n;
}

static int fake_read(void *ctx, struct desired *out)
{
	struct fake_maps *f = ctx;

	f->reads++;
	desired__init(out);
	if (f->fail_read) {
		sluice__set_err("fake maps: cannot read");
		return -EIO;
	}
	return desired__copy(out, &f->held);
}

static int fake_apply(void *ctx, const struct desired *old, const struct desired *next)
{
	struct fake_maps *f = ctx;

	if (!same_state(old, &f->held))
		f->old_mismatch = true;
	if (++f->applies == f->fail_apply) {
		sluice__set_err("fake maps: backends map is full");
		return -ENOSPC;
	}
	desired__free(&f->held);
	return desired__copy(&f->held, next);
}

/* Like meshd's hook (its telemetry sync calls into the library), this
 * resets the library's error text: a commit must have taken it before. */
static void fake_changed(void *ctx)
{
	((struct fake_maps *)ctx)->changed++;
	sluice__set_err("%s", "");
}

static bool parse(struct desired *d, const char *json)
{
	desired__init(d);
	return ASSERT_OK(desired__from_string(d, json, strlen(json)), json);
}

static const char *const one_json =
	"{\"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80,"
	" \"protocol\": \"tcp\", \"backends\": [{\"address\": \"10.0.1.2\", \"port\": 8080}]}]}";
static const char *const two_json =
	"{\"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80,"
	" \"protocol\": \"tcp\", \"backends\": [{\"address\": \"10.0.1.2\", \"port\": 8080}]},"
	" {\"vip\": \"fd00::53\", \"port\": 53, \"protocol\": \"udp\","
	"  \"backends\": [{\"address\": \"fd00:1::2\", \"port\": 5353, \"weight\": 3}]}]}";

/* A state on fake maps whose file is dir/name (removed first); the maps
 * and the file start out holding `initial` (NULL: nothing). */
static bool setup(struct state *st, struct fake_maps *f, const char *name, const char *initial)
{
	static char path[PATH_MAX];

	memset(f, 0, sizeof(*f));
	memset(st, 0, sizeof(*st));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	if (initial) {
		struct desired d;

		if (!parse(&d, initial) || !ASSERT_OK(desired__save(&d, path), "save initial"))
			return false;
		desired__free(&d);
	}
	if (!ASSERT_OK(state__load(st, path), "load"))
		return false;
	if (initial && !ASSERT_OK(desired__copy(&f->held, &st->desired), "maps"))
		return false;
	st->maps = (struct state_maps){ fake_read, fake_apply, f };
	st->changed = fake_changed;
	st->changed_ctx = f;
	return true;
}

static void teardown(struct state *st, struct fake_maps *f)
{
	state__free(st);
	desired__free(&f->held);
}

/* The file as it is on disk now, parsed. */
static bool file_holds(const char *path, const struct desired *want, const char *what)
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

static void test_load(void)
{
	char path[PATH_MAX];
	struct state st = { 0 };
	FILE *fp;

	snprintf(path, sizeof(path), "%s/missing.json", dir);
	if (ASSERT_OK(state__load(&st, path), "a missing file")) {
		ASSERT_EQ(st.desired.nservices, 0, "is the empty state");
		ASSERT_TRUE(st.missing, "known to be missing");
	}
	state__free(&st);
	snprintf(path, sizeof(path), "%s/bad.json", dir);
	fp = fopen(path, "w");
	if (!ASSERT_TRUE(fp != NULL, "write bad.json"))
		return;
	fputs("{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 0}]}\n", fp);
	fclose(fp);
	ASSERT_NEQ(state__load(&st, path), 0, "an invalid file is refused");
	ASSERT_TRUE(strstr(sluice__errmsg(), "bad.json") != NULL, "the message names the file");
	state__free(&st);
	unlink(path);
}

/* A commit of two_json over one_json. */
struct commit_case {
	struct state st;
	struct fake_maps f;
	struct desired next;   /* what is committed */
	struct desired before; /* one_json */
	struct desired after;  /* two_json */
	char err[1024];
};

static bool commit_setup(struct commit_case *c, const char *name)
{
	desired__init(&c->next);
	desired__init(&c->before);
	desired__init(&c->after);
	return setup(&c->st, &c->f, name, one_json) && parse(&c->next, two_json) &&
	       parse(&c->before, one_json) && parse(&c->after, two_json);
}

static void commit_teardown(struct commit_case *c)
{
	desired__free(&c->next);
	desired__free(&c->before);
	desired__free(&c->after);
	teardown(&c->st, &c->f);
}

/* Refused: st->desired and the file as before (the maps: the caller's). */
static void as_before(struct commit_case *c)
{
	ASSERT_TRUE(same_state(&c->st.desired, &c->before), "st->desired as before");
	file_holds(c->st.path, &c->before, "the state file as before");
}

/* Adopted: maps, file and st->desired all hold it; nothing is left of
 * the temporary file the save renamed into place. */
static void test_commit(void)
{
	struct commit_case c;
	struct dirent *de;
	DIR *dp;

	if (!commit_setup(&c, "commit.json") ||
	    !ASSERT_OK(state__commit(&c.st, &c.next, c.err, sizeof(c.err)), c.err))
		goto out;
	ASSERT_EQ(c.next.nservices, 0, "next is consumed");
	ASSERT_TRUE(same_state(&c.st.desired, &c.after), "st->desired");
	ASSERT_TRUE(same_state(&c.f.held, &c.after), "the maps");
	ASSERT_FALSE(c.f.old_mismatch, "apply was told what the maps held");
	ASSERT_EQ(c.f.changed, 1, "changed hook");
	file_holds(c.st.path, &c.after, "the state file");
	dp = opendir(dir);
	while (dp && (de = readdir(dp)))
		ASSERT_TRUE(!strstr(de->d_name, ".tmp"), de->d_name);
	if (dp)
		closedir(dp);
out:
	commit_teardown(&c);
}

/* Refused, by the validation (before the maps) or by the maps (which
 * undid their part, all-or-nothing): nothing saved. A refusal by the maps
 * may have moved ids in the rollback, so the hook hears of it. */
static const struct refused_commit {
	const char *file;
	bool no_weights; /* every weight of a service 0: invalid */
	int fail_apply;
	const char *err;
	int applies, changed;
} refused_commits[] = {
	{ "invalid.json", true, 0, "weight", 0, 0 },
	{ "applyfail.json", false, 1, "fake maps: backends map is full", 1, 1 },
};

static void test_commit_refused(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(refused_commits); i++) {
		const struct refused_commit *r = &refused_commits[i];
		struct commit_case c;

		if (!commit_setup(&c, r->file))
			goto next;
		if (r->no_weights)
			c.next.services[1].backends[0].weight = 0;
		c.f.fail_apply = r->fail_apply;
		if (!ASSERT_NEQ(state__commit(&c.st, &c.next, c.err, sizeof(c.err)), 0, r->file))
			goto next;
		ASSERT_TRUE(strstr(c.err, r->err) != NULL, c.err);
		ASSERT_EQ(c.f.applies, r->applies, "applies");
		ASSERT_EQ(c.f.changed, r->changed, "changed hook");
		ASSERT_TRUE(same_state(&c.f.held, &c.before), "the maps as before");
		as_before(&c);
next:
		commit_teardown(&c);
	}
}

/* The save fails (the state file's directory is a file): the maps are
 * put back; when that fails too the error says so. */
static void test_commit_save_fails(void)
{
	char blocker[PATH_MAX], path[PATH_MAX + 16];
	struct commit_case c;
	FILE *fp;

	snprintf(blocker, sizeof(blocker), "%s/not-a-dir", dir);
	snprintf(path, sizeof(path), "%s/state.json", blocker);
	fp = fopen(blocker, "w");
	if (!ASSERT_TRUE(fp != NULL, "create the blocker"))
		return;
	fclose(fp);
	for (int put_back_fails = 0; put_back_fails <= 1; put_back_fails++) {
		if (!commit_setup(&c, "savefail.json"))
			goto next;
		c.st.path = path;
		c.f.fail_apply = put_back_fails ? 2 : 0;
		if (!ASSERT_NEQ(state__commit(&c.st, &c.next, c.err, sizeof(c.err)), 0, "commit"))
			goto next;
		ASSERT_EQ(c.f.applies, 2, "applied, then put back");
		ASSERT_EQ(c.f.changed, 2, "changed hook after each");
		ASSERT_TRUE(same_state(&c.st.desired, &c.before), "st->desired as before");
		/* the cause, not just the verdict: the file and strerror */
		ASSERT_TRUE(strstr(c.err, blocker) != NULL, c.err);
		ASSERT_TRUE(strstr(c.err, strerror(ENOTDIR)) != NULL, c.err);
		if (put_back_fails) {
			ASSERT_TRUE(strstr(c.err, "; putting the maps back failed too: fake maps"),
				    c.err);
		} else {
			ASSERT_TRUE(strstr(c.err, "(nothing was changed)") != NULL, c.err);
			ASSERT_TRUE(same_state(&c.f.held, &c.before), "the maps put back");
		}
next:
		commit_teardown(&c);
	}
	unlink(blocker);
}

/* have against want: backends compare as a set, names are not the maps'. */
static void test_tally(void)
{
	static const char *const have_json =
		"{\"services\": ["
		" {\"vip\": \"10.96.0.1\", \"port\": 80, \"protocol\": \"tcp\", \"backends\": ["
		"   {\"address\": \"10.0.1.2\", \"port\": 80}, {\"address\": \"10.0.1.3\", \"port\": 80}]},"
		" {\"vip\": \"10.96.0.2\", \"port\": 80, \"protocol\": \"tcp\", \"backends\": ["
		"   {\"address\": \"10.0.2.2\", \"port\": 80}, {\"address\": \"10.0.2.3\", \"port\": 80}]},"
		" {\"vip\": \"10.96.0.3\", \"port\": 80, \"protocol\": \"tcp\"}]}";
	static const char *const want_json =
		"{\"services\": ["
		" {\"name\": \"a\", \"vip\": \"10.96.0.1\", \"port\": 80, \"protocol\": \"tcp\","
		"  \"backends\": [{\"address\": \"10.0.1.3\", \"port\": 80},"
		"                 {\"address\": \"10.0.1.2\", \"port\": 80}]},"
		" {\"vip\": \"10.96.0.2\", \"port\": 80, \"protocol\": \"tcp\", \"backends\": ["
		"   {\"address\": \"10.0.2.2\", \"port\": 80, \"weight\": 0},"
		"   {\"address\": \"10.0.2.3\", \"port\": 80}]},"
		" {\"vip\": \"10.96.0.3\", \"port\": 80, \"protocol\": \"udp\"}]}";
	struct desired have, want;
	struct state_tally t;

	if (!parse(&have, have_json) || !parse(&want, want_json))
		goto out;
	state__tally(&have, &want, &t);
	ASSERT_EQ(t.same, 1, "reordered backends and a new name are no change");
	ASSERT_EQ(t.changed, 1, "a weight is");
	ASSERT_EQ(t.added, 1, "another protocol is another service");
	ASSERT_EQ(t.deleted, 1, "and the old one goes");
out:
	desired__free(&have);
	desired__free(&want);
}

/* At start the maps are made to hold the file's state, whatever they held. */
static void test_reconcile(void)
{
	struct fake_maps f;
	struct state st;
	struct desired want;

	if (!setup(&st, &f, "reconcile.json", two_json) || !parse(&want, two_json))
		goto out;
	desired__free(&f.held);
	if (!parse(&f.held, one_json))
		goto out;
	if (!ASSERT_OK(state__reconcile(&st), "reconcile"))
		goto out;
	ASSERT_EQ(f.reads, 1, "the maps read once");
	ASSERT_FALSE(f.old_mismatch, "apply was told what the maps held");
	ASSERT_TRUE(same_state(&f.held, &want), "the maps hold the file's state");
	ASSERT_TRUE(same_state(&st.desired, &want), "st->desired unchanged");
	ASSERT_EQ(f.changed, 0, "nobody holds ids before the start");
	f.fail_read = true;
	ASSERT_EQ(state__reconcile(&st), -EIO, "unreadable maps");
	ASSERT_EQ(f.applies, 1, "and nothing applied then");
out:
	desired__free(&want);
	teardown(&st, &f);
}

static bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* No state file, the maps hold two services: refuse leaves maps and disk
 * alone, adopt writes the maps' services to the file, empty deletes them.
 * With empty maps a missing file is a first start, whatever the mode. */
static const struct missing_case {
	enum state_missing mode;
	bool maps_hold; /* the maps hold two_json (else nothing) */
	int err;
	bool file_after;  /* the state file exists afterwards */
	int applies;      /* maps applies */
	bool maps_kept;   /* the maps still hold two_json */
	bool desired_two; /* st->desired is two_json afterwards */
} missing_cases[] = {
	{ STATE_MISSING_REFUSE, true, -EEXIST, false, 0, true, false },
	{ STATE_MISSING_ADOPT, true, 0, true, 1, true, true },
	{ STATE_MISSING_EMPTY, true, 0, false, 1, false, false },
	{ STATE_MISSING_REFUSE, false, 0, false, 1, false, false },
};

static void test_missing_file(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(missing_cases); i++) {
		const struct missing_case *m = &missing_cases[i];
		struct desired two;
		struct fake_maps f;
		struct state st;
		char what[64];

		desired__init(&two);
		snprintf(what, sizeof(what), "%s, maps %s", state__missing_name(m->mode),
			 m->maps_hold ? "hold two" : "empty");
		if (!setup(&st, &f, "missing.json", NULL) || !parse(&two, two_json))
			goto next;
		ASSERT_TRUE(st.missing, "the file is missing");
		st.on_missing = m->mode;
		if (m->maps_hold && !ASSERT_OK(desired__copy(&f.held, &two), "maps"))
			goto next;
		ASSERT_EQ(state__check_missing(&st, f.held.nservices), m->err, what);
		ASSERT_EQ(state__reconcile(&st), m->err, what);
		ASSERT_EQ(f.applies, m->applies, what);
		ASSERT_EQ(file_exists(st.path), m->file_after, what);
		if (m->maps_kept)
			ASSERT_TRUE(same_state(&f.held, &two), "the maps' services kept");
		else
			ASSERT_EQ(f.held.nservices, 0, "the maps emptied");
		if (m->desired_two) {
			ASSERT_TRUE(same_state(&st.desired, &two), "adopted");
			file_holds(st.path, &two, "the adopted state saved");
		} else {
			ASSERT_EQ(st.desired.nservices, 0, "st->desired empty");
		}
		ASSERT_EQ(st.missing, m->err != 0, "settled unless refused");
next:
		unlink(st.path);
		desired__free(&two);
		teardown(&st, &f);
	}
}

static const struct test tests[] = {
	TEST(test_load),           TEST(test_commit),
	TEST(test_commit_refused), TEST(test_commit_save_fails),
	TEST(test_tally),          TEST(test_reconcile),
	TEST(test_missing_file),
};

int main(int argc, char **argv)
{
	static const char *const files[] = { "commit.json",   "invalid.json",   "applyfail.json",
					     "savefail.json", "reconcile.json", "missing.json" };
	char path[PATH_MAX];
	int rc;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	/* the commits log each change at info: only errors here */
	log__set_level(LOG_LEVEL_ERROR);
	rc = test__run_all("meshd_state", tests, ARRAY_SIZE(tests), argc, argv);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	if (rmdir(dir))
		fprintf(stderr, "test_meshd_state: %s left behind: %s\n", dir, strerror(errno));
	return rc;
}
