// SPDX-License-Identifier: MIT
/*
 * state_group.c - group commit of one-service changes (see state.h): stage
 * each change (validate, apply, journal without sync), end the batch with
 * one fdatasync, or put every change of it back when that fails.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "desired.h"
#include "sluice.h"

#include "log.h"
#include "state.h"
#include "state_internal.h"

static __u64 group__now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000 + (__u64)ts.tv_nsec / 1000;
}

__u64 state__group_seq(const struct state *st)
{
	return st->group.n ? st->group.seq : 0;
}

static int group__reserve(struct state_group *g)
{
	struct state_undo *grown;
	__u32 cap;

	if (g->n < g->cap)
		return 0;
	cap = g->cap ? 2 * g->cap : 16;
	if (cap > STATE_GROUP_MAX)
		cap = STATE_GROUP_MAX;
	grown = realloc(g->undo, cap * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	g->undo = grown;
	g->cap = cap;
	return 0;
}

/* Make services[i] (= *svc, the maps hold it) durable in the open batch:
 * its journal record, unless the batch ends with a full save anyway. */
static int group__journal(struct state *st, const struct desired_service *svc)
{
	int err;

	if (st->group.full_save)
		return 0;
	if (st->missing || journal__due(&st->journal, false)) {
		st->group.full_save = true;
		return 0;
	}
	err = journal__write(&st->journal, st->path, svc);
	if (err == -ENOENT) { /* no state file to journal against: saved whole */
		sluice__set_err("%s", "");
		st->group.full_save = true;
		return 0;
	}
	/* A failed write that took the journal with it (its cut failed too)
	 * took the batch's earlier records: the batch ends with a full save. */
	if (err && st->journal.fd < 0 && st->group.n)
		st->group.full_save = true;
	return err;
}

int state__stage_service(struct state *st, __u32 i, struct desired_service *svc, char *errbuf,
			 size_t errlen)
{
	struct desired want = { .nservices = 1, .services = svc }, have = { .nservices = 1 };
	struct state_group *g = &st->group;
	struct desired_service old;
	__u64 t0, t1, t2;
	int err;

	if (g->n >= STATE_GROUP_MAX)
		state__group_flush(st); /* bounded: its changes hear their verdict */
	if (group__reserve(g)) {
		snprintf(errbuf, errlen, "out of memory");
		g->st.refused++;
		return -ENOMEM;
	}
	t0 = group__now_us();
	err = desired__validate_one(&st->desired, i, svc);
	t1 = group__now_us();
	g->st.validate_us += t1 - t0;
	if (err) {
		snprintf(errbuf, errlen, "%s", sluice__errmsg());
		g->st.refused++;
		return err;
	}
	old = st->desired.services[i];
	have.services = &old;
	if (st->stamp)
		st->stamp(st->verdict_ctx, &want);
	err = st->maps.apply(st->maps.ctx, &have, &want);
	t2 = group__now_us();
	g->st.maps_us += t2 - t1;
	if (err) {
		snprintf(errbuf, errlen, "%s", sluice__errmsg());
		g->st.refused++;
		state__changed(st); /* rolled back, but ids may have moved */
		return err;
	}
	/* The whole state with svc in place, without a copy of it. */
	st->desired.services[i] = *svc;
	err = group__journal(st, svc);
	g->st.write_us += group__now_us() - t2;
	if (err) {
		/* this one alone goes back; the batch's others stay staged */
		snprintf(errbuf, errlen, "%s", sluice__errmsg());
		st->desired.services[i] = old;
		state__changed(st);
		if (st->maps.apply(st->maps.ctx, &want, &have))
			snprintf(errbuf + strlen(errbuf), errlen - strlen(errbuf),
				 "; putting the maps back failed too: %s", sluice__errmsg());
		else
			snprintf(errbuf + strlen(errbuf), errlen - strlen(errbuf),
				 " (nothing was changed)");
		state__changed(st);
		g->st.refused++;
		pr_err("%s", errbuf);
		return err;
	}
	if (!g->n)
		g->seq++;
	g->undo[g->n++] =
		(struct state_undo){ .i = i, .old = old, .own_rules = old.rules != svc->rules };
	g->st.changes++;
	state__changed(st);
	desired__diff(&have, &want, state__log_change, NULL);
	/* The health checks' targets change only where one is or was
	 * checked: their rebuild walks every service. */
	if (st->adopted && (old.health.type || st->desired.services[i].health.type))
		st->adopted(st->verdict_ctx);
	memset(svc, 0, sizeof(*svc));
	return 0;
}

/* A service's arrays; its access policy's rules only when they are its
 * own (a backend edit shares them with the service it was copied from). */
static void group__free_svc(struct desired_service *s, bool rules)
{
	free(s->backends);
	free(s->src_ranges);
	if (rules)
		free(s->rules);
}

/* The sync failed: every change of the batch back, newest first (a
 * service changed twice ends as it was before the first). */
static void group__put_back(struct state *st, int err)
{
	struct state_group *g = &st->group;
	bool maps_failed = false, health = false;
	int off;

	off = snprintf(g->last_error, sizeof(g->last_error), "%s", state__save_err(st, err));
	if (off < 0 || (size_t)off >= sizeof(g->last_error))
		off = sizeof(g->last_error) - 1;
	journal__rewind(&st->journal);
	state__changed(st);
	for (__u32 k = g->n; k-- > 0;) {
		struct state_undo *u = &g->undo[k];
		struct desired_service cur = st->desired.services[u->i];
		struct desired have = { .nservices = 1, .services = &cur };
		struct desired want = { .nservices = 1, .services = &u->old };

		if (st->maps.apply(st->maps.ctx, &have, &want) && !maps_failed) {
			maps_failed = true;
			snprintf(g->last_error + off, sizeof(g->last_error) - off,
				 "; putting the maps back failed too: %s", sluice__errmsg());
		}
		health = health || cur.health.type || u->old.health.type;
		st->desired.services[u->i] = u->old;
		group__free_svc(&cur, cur.rules != u->old.rules);
	}
	if (!maps_failed)
		snprintf(g->last_error + off, sizeof(g->last_error) - off,
			 "; the %u change(s) of its batch were put back (nothing was changed)",
			 g->n);
	state__changed(st);
	if (st->adopted && health)
		st->adopted(st->verdict_ctx);
	pr_err("%s", g->last_error);
}

int state__group_flush(struct state *st)
{
	struct state_group *g = &st->group;
	__u64 t0, seq = g->seq;
	__u32 n = g->n;
	int err;

	if (!n)
		return 0;
	t0 = group__now_us();
	sluice__set_err("%s", "");
	if (g->full_save) {
		err = desired__save(&st->desired, st->path);
		if (!err)
			journal__reset(&st->journal); /* its records are in the file */
		g->st.full_saves++;
	} else {
		err = journal__sync(&st->journal);
		g->st.fsyncs++;
	}
	g->st.fsync_us += group__now_us() - t0;
	g->st.batches++;
	if (n > g->st.max_batch)
		g->st.max_batch = n;
	if (err) {
		g->st.failed++;
		group__put_back(st, err);
	} else {
		for (__u32 k = 0; k < n; k++)
			group__free_svc(&g->undo[k].old, g->undo[k].own_rules);
		if (n > 1)
			pr_debug("group commit: %u changes made durable by one %s", n,
				 g->full_save ? "save" : "fdatasync");
	}
	g->n = 0;
	g->full_save = false;
	if (g->done)
		g->done(g->done_ctx, seq, err, err ? g->last_error : NULL);
	return err;
}

void state__group_free(struct state *st)
{
	state__group_flush(st);
	free(st->group.undo);
	st->group.undo = NULL;
	st->group.cap = 0;
}

struct json_object *state__group_json(const struct state *st)
{
	const struct state_group_stats *s = &st->group.st;
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "changes", json_object_new_uint64(s->changes));
	json_object_object_add(o, "refused", json_object_new_uint64(s->refused));
	json_object_object_add(o, "batches", json_object_new_uint64(s->batches));
	json_object_object_add(o, "fsyncs", json_object_new_uint64(s->fsyncs));
	json_object_object_add(o, "full_saves", json_object_new_uint64(s->full_saves));
	json_object_object_add(o, "failed", json_object_new_uint64(s->failed));
	json_object_object_add(o, "max_batch", json_object_new_uint64(s->max_batch));
	json_object_object_add(o, "validate_us", json_object_new_uint64(s->validate_us));
	json_object_object_add(o, "maps_us", json_object_new_uint64(s->maps_us));
	json_object_object_add(o, "write_us", json_object_new_uint64(s->write_us));
	json_object_object_add(o, "fsync_us", json_object_new_uint64(s->fsync_us));
	return o;
}
