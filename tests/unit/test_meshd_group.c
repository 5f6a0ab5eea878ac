// SPDX-License-Identifier: MIT
/*
 * test_meshd_group.c - group commit (#16): changes staged into one batch
 * are made durable by one fdatasync, each with its own verdict (a refused
 * one leaves the others); a failed sync puts every change of the batch
 * back in the maps and the state and cuts its records off the journal; a
 * batch is bounded. The maps are a stand-in that applies the difference
 * it is given (as in test_meshd_commit_one.c); the file and the journal
 * are real. No root.
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

static char dir[] = "/tmp/sluice-test-group.XXXXXX";

static bool setup(struct state *st, struct fake_maps *f, const char *name)
{
	return fake_state__setup(st, f, dir, name);
}

/* The done hook: batches heard, the last one's verdict. */
struct done_log {
	int calls, err;
	__u64 seq;
	char text[1024];
};

static void on_done(void *ctx, __u64 seq, int err, const char *text)
{
	struct done_log *l = ctx;

	l->calls++;
	l->seq = seq;
	l->err = err;
	snprintf(l->text, sizeof(l->text), "%s", text ? text : "");
}

/* services[i]'s first backend gets weight w, staged into the open batch. */
static int stage_weight(struct state *st, __u32 i, __u16 w, char *err, size_t len)
{
	struct desired_service s;
	int rc;

	if (!dup_svc(&st->desired, i, &s))
		return -ENOMEM;
	s.backends[0].weight = w;
	rc = state__stage_service(st, i, &s, err, len);
	if (rc) {
		free(s.backends);
		free(s.src_ranges);
		free(s.rules);
	}
	return rc;
}

static long file_size(const char *path)
{
	FILE *fp = fopen(path, "r");
	long n;

	if (!fp)
		return -1;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fclose(fp);
	return n;
}

/* Three changes (one service twice), one refused in between: one
 * fdatasync for the batch, nothing synced before the flush, the done hook
 * told once, and a restart reads every accepted change. */
static void test_group_one_sync(void)
{
	struct desired want;
	struct done_log log = { 0 };
	struct fake_maps f;
	struct state st;
	char err[1024];

	if (!setup(&st, &f, "one.json"))
		goto out;
	st.group.done = on_done;
	st.group.done_ctx = &log;
	desired__copy(&want, &st.desired);
	want.services[0].backends[0].weight = 5;
	want.services[1].backends[0].weight = 9;
	if (!ASSERT_OK(stage_weight(&st, 0, 5, err, sizeof(err)), err) ||
	    !ASSERT_OK(stage_weight(&st, 1, 8, err, sizeof(err)), err))
		goto free_want;
	/* refused alone: its service keeps its weight, the batch goes on */
	ASSERT_NEQ(stage_weight(&st, 2, 0, err, sizeof(err)), 0, "all weights 0 refused");
	ASSERT_TRUE(strstr(err, "every weight is 0") != NULL, err);
	if (!ASSERT_OK(stage_weight(&st, 1, 9, err, sizeof(err)), err))
		goto free_want;
	ASSERT_EQ(st.group.n, 3, "three staged");
	ASSERT_EQ(st.journal.syncs, 0, "nothing synced before the flush");
	ASSERT_EQ(st.journal.unsynced, 3, "three records written");
	ASSERT_EQ(log.calls, 0, "nobody told yet");
	ASSERT_TRUE(same_state(&f.held, &want), "the maps hold the batch already");
	ASSERT_EQ(state__group_seq(&st), st.group.seq, "a batch is open");
	if (ASSERT_OK(state__group_flush(&st), "flush")) {
		ASSERT_EQ(st.journal.syncs, 1, "ONE fdatasync");
		ASSERT_EQ(st.group.st.fsyncs, 1, "fsyncs counter");
		ASSERT_EQ(st.group.st.changes, 3, "changes counter");
		ASSERT_EQ(st.group.st.refused, 1, "refused counter");
		ASSERT_EQ(st.group.st.max_batch, 3, "max_batch");
		ASSERT_EQ(log.calls, 1, "done once");
		ASSERT_EQ(log.err, 0, "durable");
		ASSERT_EQ(state__group_seq(&st), 0, "no batch open");
		ASSERT_TRUE(same_state(&st.desired, &want), "st->desired");
		durable_holds(st.path, &want, "restart after the batch");
	}
	ASSERT_OK(state__group_flush(&st), "an empty flush");
	ASSERT_EQ(log.calls, 1, "an empty flush tells nobody");
free_want:
	desired__free(&want);
out:
	state__free(&st);
	desired__free(&f.held);
}

/* The fdatasync fails: every change of the batch back, newest first, in
 * the maps and st->desired; the journal as before the batch (its records
 * cut off); every waiter told the cause; the next batch works. */
static void test_group_sync_fails(void)
{
	struct desired before, inmaps, want;
	struct done_log log = { 0 };
	struct fake_maps f;
	struct state st;
	char err[1024];
	long jsize;

	if (!setup(&st, &f, "fail.json"))
		goto out;
	st.group.done = on_done;
	st.group.done_ctx = &log;
	/* one durable change first: the journal exists and holds a record */
	if (!ASSERT_OK(stage_weight(&st, 2, 6, err, sizeof(err)), err) ||
	    !ASSERT_OK(state__group_flush(&st), "first batch"))
		goto out;
	jsize = file_size(st.journal.path);
	desired__copy(&before, &st.desired);
	desired__copy(&inmaps, &f.held);
	if (!ASSERT_OK(stage_weight(&st, 0, 5, err, sizeof(err)), err) ||
	    !ASSERT_OK(stage_weight(&st, 1, 8, err, sizeof(err)), err) ||
	    !ASSERT_OK(stage_weight(&st, 0, 7, err, sizeof(err)), err))
		goto free;
	st.journal.fail_sync = -EIO;
	if (ASSERT_EQ(state__group_flush(&st), -EIO, "flush fails")) {
		ASSERT_EQ(log.calls, 2, "done told");
		ASSERT_EQ(log.err, -EIO, "with the error");
		ASSERT_TRUE(strstr(log.text, "Input/output error") != NULL, log.text);
		ASSERT_TRUE(strstr(log.text, "3 change(s) of its batch were put back") != NULL,
			    log.text);
		ASSERT_EQ(st.group.st.failed, 1, "failed counter");
		ASSERT_TRUE(same_state(&st.desired, &before), "st->desired as before");
		ASSERT_EQ(st.desired.services[0].backends[0].weight, 1, "service 0 as before");
		ASSERT_TRUE(same_state(&f.held, &inmaps), "the maps as before");
		ASSERT_EQ(file_size(st.journal.path), jsize, "the batch's records cut off");
		ASSERT_EQ(st.journal.records, 1, "the earlier record stays");
	}
	/* the disk is back: the next batch is durable */
	st.journal.fail_sync = 0;
	desired__copy(&want, &st.desired);
	want.services[1].backends[0].weight = 4;
	if (ASSERT_OK(stage_weight(&st, 1, 4, err, sizeof(err)), err) &&
	    ASSERT_OK(state__group_flush(&st), "next batch"))
		durable_holds(st.path, &want, "restart after the failed batch");
	desired__free(&want);
free:
	desired__free(&before);
	desired__free(&inmaps);
out:
	state__free(&st);
	desired__free(&f.held);
}

/* A batch holds at most STATE_GROUP_MAX changes: the next stage ends it
 * first (one fdatasync), then opens another. */
static void test_group_bounded(void)
{
	struct fake_maps f;
	struct state st;
	char err[1024];
	__u32 k;

	if (!setup(&st, &f, "bound.json"))
		goto out;
	for (k = 0; k < STATE_GROUP_MAX + 1; k++)
		if (!ASSERT_OK(stage_weight(&st, k % 3, (__u16)(k % 50 + 1), err, sizeof(err)),
			       err))
			goto out;
	ASSERT_EQ(st.group.st.batches, 1, "the full batch ended");
	ASSERT_EQ(st.journal.syncs, 1, "by one fdatasync");
	ASSERT_EQ(st.group.st.max_batch, STATE_GROUP_MAX, "of STATE_GROUP_MAX changes");
	ASSERT_EQ(st.group.n, 1, "the next batch holds the last");
	ASSERT_OK(state__group_flush(&st), "flush");
	ASSERT_EQ(st.journal.syncs, 2, "two fdatasyncs in all");
out:
	state__free(&st);
	desired__free(&f.held);
}

/* Anything else that changes the state ends the open batch first. */
static void test_group_whole_commit_ends_it(void)
{
	struct done_log log = { 0 };
	struct desired next;
	struct fake_maps f;
	struct state st;
	char err[1024];

	if (!setup(&st, &f, "whole.json"))
		goto out;
	st.group.done = on_done;
	st.group.done_ctx = &log;
	if (!ASSERT_OK(stage_weight(&st, 0, 5, err, sizeof(err)), err))
		goto out;
	desired__copy(&next, &st.desired);
	next.services[1].backends[0].weight = 2;
	if (ASSERT_OK(state__commit(&st, &next, err, sizeof(err)), err)) {
		ASSERT_EQ(log.calls, 1, "the batch ended before");
		ASSERT_EQ(log.err, 0, "durable");
		ASSERT_EQ(st.desired.services[0].backends[0].weight, 5, "the staged change kept");
		ASSERT_EQ(st.desired.services[1].backends[0].weight, 2, "the whole commit");
	}
	desired__free(&next);
out:
	state__free(&st);
	desired__free(&f.held);
}

static const struct test tests[] = {
	TEST(test_group_one_sync),
	TEST(test_group_sync_fails),
	TEST(test_group_bounded),
	TEST(test_group_whole_commit_ends_it),
};

int main(int argc, char **argv)
{
	return fake_state__main("meshd_group", dir, tests, ARRAY_SIZE(tests), argc, argv);
}
