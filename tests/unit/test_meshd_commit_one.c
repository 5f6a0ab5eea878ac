// SPDX-License-Identifier: MIT
/*
 * test_meshd_commit_one.c - one service changed (#16): desired__validate_one()
 * says exactly what desired__validate() of the whole state says (verdict and
 * text), and state__commit_service() hands the maps only that service, saves
 * the whole state, and keeps the all-or-nothing of state__commit() (refused:
 * nothing changed; save failed: the maps put back). The maps are a stand-in
 * that applies the difference it is given, like desired__apply(). No root.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "desired.h"
#include "log.h"
#include "state.h"
#include "test.h"
#include "fake_state.h"

static char dir[] = "/tmp/sluice-test-commit1.XXXXXX";

enum mutation {
	MUT_NONE,
	MUT_ALL_ZERO,
	MUT_DUP_BACKEND,
	MUT_FAMILY,
	MUT_TWIN_BEFORE,
	MUT_TWIN_AFTER,
	MUT_OWN_ADDRESS,
	MUT_NEW_KEY,
	MUT_COUNT,
};

static void mutate(struct desired_service *s, enum mutation m, const struct desired *d)
{
	switch (m) {
	case MUT_ALL_ZERO:
		s->backends[0].weight = 0;
		break;
	case MUT_DUP_BACKEND:
		s->backends[1] = s->backends[0];
		break;
	case MUT_FAMILY:
		s->backends[1].addr = d->services[2].backends[0].addr;
		break;
	case MUT_TWIN_BEFORE:
		s->vip = d->services[0].vip;
		break;
	case MUT_TWIN_AFTER: /* the key of services[2], family included */
		s->vip = d->services[2].vip;
		s->port = d->services[2].port;
		s->proto = d->services[2].proto;
		s->nbackends = 0;
		break;
	case MUT_OWN_ADDRESS:
		s->backends[0].addr = s->vip;
		s->backends[0].port = s->port;
		break;
	case MUT_NEW_KEY:
		s->port = 81;
		break;
	default:
		s->backends[0].weight = 9;
	}
}

/* Every mutation of services[1]: the same verdict and text as a
 * desired__validate() of the whole state with it in place. */
static void test_validate_one_same_texts(void)
{
	struct desired d;

	if (!parse(&d, three_json))
		return;
	for (int m = MUT_NONE; m < MUT_COUNT; m++) {
		struct desired_service s, saved = d.services[1];
		char one[1024], what[32];
		int r1, rall;

		if (!dup_svc(&d, 1, &s))
			break;
		mutate(&s, m, &d);
		r1 = desired__validate_one(&d, 1, &s);
		snprintf(one, sizeof(one), "%s", sluice__errmsg());
		d.services[1] = s;
		rall = desired__validate(&d);
		d.services[1] = saved;
		snprintf(what, sizeof(what), "mutation %d", m);
		ASSERT_EQ(r1, rall, what);
		ASSERT_TRUE(!strcmp(one, sluice__errmsg()), one);
		ASSERT_EQ(rall != 0, m != MUT_NONE && m != MUT_NEW_KEY, what);
		free(s.backends);
		free(s.src_ranges);
	}
	desired__free(&d);
}

static bool setup(struct state *st, struct fake_maps *f, const char *name)
{
	return fake_state__setup(st, f, dir, name);
}

/* Adopted: the maps were given services[1] alone; maps, file and
 * st->desired hold the new weight; the others untouched. */
static void test_commit_one(void)
{
	struct desired_service s;
	struct desired after;
	struct fake_maps f;
	struct state st;
	char err[1024];

	if (!setup(&st, &f, "one.json") || !dup_svc(&st.desired, 1, &s))
		goto out;
	s.backends[0].weight = 7;
	if (!ASSERT_OK(desired__copy(&after, &st.desired), "after"))
		goto out;
	after.services[1].backends[0].weight = 7;
	if (ASSERT_OK(state__commit_service(&st, 1, &s, err, sizeof(err)), err)) {
		ASSERT_TRUE(!s.backends && !s.nbackends, "svc consumed");
		ASSERT_EQ(f.applies, 1, "one apply");
		ASSERT_EQ(f.widest, 1, "the maps were given the one service");
		ASSERT_EQ(f.changed, 1, "changed hook");
		ASSERT_TRUE(same_state(&st.desired, &after), "st->desired");
		ASSERT_TRUE(same_state(&f.held, &after), "the maps");
		ASSERT_EQ(st.desired.services[1].backends[1].drained_weight, 4,
			  "drainedWeight kept");
		ASSERT_EQ(access(st.journal.path, F_OK), 0, "in the journal");
		ASSERT_EQ(st.journal.records, 1, "one record");
		durable_holds(st.path, &after, "the state file and its journal");
	}
	desired__free(&after);
out:
	state__free(&st);
	desired__free(&f.held);
}

/* Refused by the rules (nothing applied), by the maps (applied once,
 * rolled back by them), or by the save (applied, then put back, and when
 * that fails too the text says so): st->desired and the file as before. */
static void test_commit_one_refused(void)
{
	char blocker[PATH_MAX], badpath[PATH_MAX + 16];
	FILE *fp;

	snprintf(blocker, sizeof(blocker), "%s/not-a-dir", dir);
	snprintf(badpath, sizeof(badpath), "%s/state.json", blocker);
	fp = fopen(blocker, "w");
	if (!ASSERT_TRUE(fp != NULL, "blocker"))
		return;
	fclose(fp);
	for (int k = 0; k < 4; k++) {
		static const char *const want[] = { "services[1].backends: every weight is 0",
						    "fake maps: backends map is full",
						    "(nothing was changed)",
						    "; putting the maps back failed too" };
		static const int applies[] = { 0, 1, 2, 2 };
		struct desired before, inmaps;
		struct desired_service s;
		struct fake_maps f;
		struct state st;
		char err[1024];
		const char *path;

		if (!setup(&st, &f, "refused.json") || !dup_svc(&st.desired, 1, &s))
			goto next;
		path = st.path;
		desired__copy(&before, &st.desired);
		desired__copy(&inmaps, &f.held);
		s.backends[0].weight = k ? 5 : 0;
		f.fail_apply = k == 1 ? 1 : k == 3 ? 2 : 0;
		if (k >= 2)
			st.path = badpath;
		if (ASSERT_NEQ(state__commit_service(&st, 1, &s, err, sizeof(err)), 0, want[k])) {
			ASSERT_TRUE(strstr(err, want[k]) != NULL, err);
			ASSERT_EQ(f.applies, applies[k], want[k]);
			ASSERT_TRUE(same_state(&st.desired, &before), "st->desired as before");
			ASSERT_EQ(st.desired.services[1].backends[0].weight, 3,
				  "the weight as before");
			if (k != 3)
				ASSERT_TRUE(same_state(&f.held, &inmaps), "the maps as before");
			durable_holds(path, &before, "the file as before");
		}
		free(s.backends);
		free(s.src_ranges);
		desired__free(&before);
		desired__free(&inmaps);
next:
		state__free(&st);
		desired__free(&f.held);
	}
	unlink(blocker);
}

/* Crashes around the journal: k changes acknowledged, then (a) the
 * journal's last line cut short (a record whose fdatasync never
 * returned), (b) a full save that renamed the new file in but died
 * before removing the journal, (c) a record of a service not in the file
 * (corrupt): (a) and (b) restart with every acknowledged change, (c) is
 * refused naming the journal and the line. */
static void test_journal_crashes(void)
{
	for (int c = 0; c < 3; c++) {
		struct desired_service s;
		struct desired want;
		struct fake_maps f;
		struct state st, st2;
		char err[1024];
		FILE *fp;

		if (!setup(&st, &f, "crash.json"))
			goto next;
		for (int k = 1; k <= 3; k++) {
			if (!dup_svc(&st.desired, (__u32)k % 3, &s))
				goto next;
			s.backends[0].weight = (__u16)(10 + k);
			if (!ASSERT_OK(state__commit_service(&st, (__u32)k % 3, &s, err,
							     sizeof(err)),
				       err))
				goto next;
		}
		desired__copy(&want, &st.desired);
		if (c == 1) { /* the save renamed in, the journal stays */
			if (!ASSERT_OK(desired__save(&want, st.path), "save"))
				goto free_want;
		}
		fp = fopen(st.journal.path, "a");
		if (!ASSERT_TRUE(fp != NULL, "journal"))
			goto free_want;
		fputs(c == 0 ?
			      "{\"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"tcp\", \"backe" :
		      c == 1 ? "{\"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"tcp\"}\n" :
			       "{\"vip\": \"10.96.9.9\", \"port\": 80, \"protocol\": \"tcp\"}\n",
		      fp);
		fclose(fp);
		memset(&st2, 0, sizeof(st2));
		if (c < 2) {
			if (ASSERT_OK(state__load(&st2, st.path), sluice__errmsg()))
				ASSERT_TRUE(same_state(&st2.desired, &want),
					    "every acknowledged change");
			ASSERT_EQ(st2.desired.services[1].backends[0].weight, 11, "weight 11");
			ASSERT_EQ(st2.desired.services[0].backends[0].weight, 13, "weight 13");
		} else {
			ASSERT_NEQ(state__load(&st2, st.path), 0, "corrupt journal refused");
			ASSERT_TRUE(strstr(sluice__errmsg(),
					   ".journal: line 5: a service the state "
					   "file does not have") != NULL,
				    sluice__errmsg());
		}
		state__free(&st2);
free_want:
		desired__free(&want);
next:
		state__free(&st);
		desired__free(&f.held);
	}
}

static const struct test tests[] = {
	TEST(test_journal_crashes),
	TEST(test_validate_one_same_texts),
	TEST(test_commit_one),
	TEST(test_commit_one_refused),
};

int main(int argc, char **argv)
{
	return fake_state__main("meshd_commit_one", dir, tests, ARRAY_SIZE(tests), argc, argv);
}
