// SPDX-License-Identifier: MIT
/*
 * state.c - desired state: load, reconcile at start, commit (see state.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desired.h"
#include "sluice.h"

#include "log.h"
#include "state.h"
#include "state_internal.h"

static int state__sluice_read(void *ctx, struct desired *out)
{
	return desired__from_maps(ctx, out);
}

static int state__sluice_apply(void *ctx, const struct desired *old, const struct desired *next)
{
	return desired__apply(ctx, old, next);
}

struct state_maps state__sluice_maps(struct sluice *sl)
{
	return (struct state_maps){ state__sluice_read, state__sluice_apply, sl };
}

static const char *const state__missing_names[] = {
	[STATE_MISSING_REFUSE] = "refuse",
	[STATE_MISSING_ADOPT] = "adopt",
	[STATE_MISSING_EMPTY] = "empty",
};

const char *state__missing_name(enum state_missing mode)
{
	return state__missing_names[mode];
}

int state__parse_missing(const char *text, enum state_missing *out)
{
	for (size_t i = 0; i < sizeof(state__missing_names) / sizeof(*state__missing_names); i++) {
		if (!strcmp(text, state__missing_names[i])) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* The journal's changes onto the file just loaded, folded into it. */
static int state__replay(struct state *st)
{
	__u32 n;
	int err;

	err = journal__replay(&st->journal, st->path, &st->desired, &n);
	if (!err && n)
		err = desired__validate(&st->desired);
	if (err) {
		pr_err("%s", sluice__errmsg());
		return err;
	}
	if (!n)
		return 0;
	pr_info("state file %s: %u change(s) replayed from %s", st->path, n, st->journal.path);
	err = desired__save(&st->desired, st->path);
	if (err)
		pr_err("%s", sluice__errmsg());
	else
		journal__reset(&st->journal);
	return err;
}

int state__load(struct state *st, const char *path)
{
	int err;

	st->path = path;
	st->missing = false;
	desired__init(&st->desired);
	journal__init(&st->journal, path);
	err = desired__load_existing(&st->desired, path);
	if (err == -ENOENT) {
		/* Decided from the open's own error, not an earlier stat(). */
		st->missing = true;
		pr_info("state file %s does not exist", path);
		/* a journal of another file: its base check drops it */
		return journal__replay(&st->journal, path, &st->desired, &(__u32){ 0 });
	}
	if (err)
		pr_err("%s", sluice__errmsg()); /* names the file */
	return err ?: state__replay(st);
}

int state__check_missing(const struct state *st, __u32 nservices)
{
	if (!st->missing || !nservices || st->on_missing != STATE_MISSING_REFUSE)
		return 0;
	pr_err("state file %s does not exist, but the pinned maps hold %u service(s): refusing to "
	       "start, which would delete them. Put the file back or fix --state; "
	       "--state-missing=adopt keeps the maps' services and writes them to the file, "
	       "--state-missing=empty deletes them",
	       st->path, nservices);
	return -EEXIST;
}

/* The file was missing and the maps hold services: they become the
 * desired state (backends and weights as `service list` shows them;
 * names and sources were only in the file), saved at once. */
static int state__adopt(struct state *st, const struct desired *inmaps)
{
	struct desired copy;
	int err;

	err = desired__copy(&copy, inmaps);
	if (!err)
		err = desired__save(&copy, st->path);
	if (err) {
		pr_err("adopting the maps' services into %s: %s", st->path, sluice__errmsg());
		desired__free(&copy);
		return err;
	}
	desired__free(&st->desired);
	st->desired = copy;
	pr_warn("state file %s did not exist: adopted the %u service(s) the pinned maps hold "
		"(--state-missing=adopt) and saved them; their names are not known",
		st->path, copy.nservices);
	return 0;
}

/* A missing file against the maps' services, before anything is applied. */
static int state__settle_missing(struct state *st, const struct desired *inmaps)
{
	int err;

	if (!st->missing || !inmaps->nservices)
		return 0;
	err = state__check_missing(st, inmaps->nservices);
	if (!err && st->on_missing == STATE_MISSING_ADOPT)
		err = state__adopt(st, inmaps);
	return err;
}

void state__free(struct state *st)
{
	state__compact(st, true); /* the journal folded in at exit */
	state__group_free(st);
	desired__free(&st->desired);
	journal__close(&st->journal);
}

void state__compact(struct state *st, bool force)
{
	int err;

	state__group_flush(st); /* a batch ends before anything else */
	if (!st->journal.records || (!force && !journal__due(&st->journal, true)))
		return;
	err = desired__save(&st->desired, st->path);
	if (err) {
		pr_warn("folding %s into the state file: %s (the journal stays)", st->journal.path,
			sluice__errmsg());
		return;
	}
	journal__reset(&st->journal);
}

void state__changed(struct state *st)
{
	if (st->changed)
		st->changed(st->changed_ctx);
}

static bool state__backends_same(const struct desired_service *a, const struct desired_service *b)
{
	if (a->nbackends != b->nbackends)
		return false;
	for (__u32 i = 0; i < a->nbackends; i++) {
		bool found = false;

		for (__u32 j = 0; j < b->nbackends && !found; j++)
			found = a->backends[i].port == b->backends[j].port &&
				a->backends[i].weight == b->backends[j].weight &&
				sluice_addr__eq(&a->backends[i].addr, &b->backends[j].addr);
		if (!found)
			return false;
	}
	return true;
}

/* "10.0.1.2:8080@90 10.0.2.2:8080@10", cut short with "..." */
static const char *state__backends_str(const struct desired_service *svc, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	if (!svc->nbackends) {
		snprintf(buf, len, "none");
		return buf;
	}
	for (__u32 i = 0; i < svc->nbackends; i++) {
		char abuf[SLUICE_ADDRPORT_STRLEN];
		int w;

		w = snprintf(buf + off, len - off, "%s%s@%u", i ? " " : "",
			     sluice_addr__str_port(&svc->backends[i].addr, svc->backends[i].port,
						   abuf, sizeof(abuf)),
			     svc->backends[i].weight);
		if (w < 0 || (size_t)w >= len - off) {
			snprintf(buf + (len > 4 ? len - 4 : 0), len > 4 ? 4 : len, "...");
			break;
		}
		off += w;
	}
	return buf;
}

/* An update (both given) that changes what outlier detection does. */
static bool state__outlier_changed(enum desired_change change,
				   const struct desired_service *old_svc,
				   const struct desired_service *new_svc)
{
	if (change != DESIRED_UPDATE || !old_svc || !new_svc)
		return false;
	return !sluice_outlier__same(&old_svc->outlier, &new_svc->outlier);
}

void state__log_change(enum desired_change change, const struct desired_service *old_svc,
		       const struct desired_service *new_svc, void *ctx)
{
	const struct desired_service *svc = new_svc ? new_svc : old_svc;
	static const char *const verbs[] = {
		[DESIRED_ADD] = "added",
		[DESIRED_UPDATE] = "updated",
		[DESIRED_DELETE] = "deleted",
	};
	char ref[DESIRED_SVC_REF_LEN], bes[512], ranges[48] = "";

	(void)ctx;
	/* source ranges (#13): on an add with some, on an update that changes them */
	if (new_svc &&
	    (change == DESIRED_ADD ? new_svc->nsrc_ranges != 0 :
				     old_svc && !desired__src_ranges_eq(old_svc, new_svc)))
		snprintf(ranges, sizeof(ranges), "; source ranges: %u%s", new_svc->nsrc_ranges,
			 new_svc->nsrc_ranges ? "" : " (any client)");
	/* desired__diff() and state__tally() pass old_svc, new_svc or both */
	// cppcheck-suppress nullPointer
	sluice_svc__str(&svc->vip, svc->port, svc->proto, ref, sizeof(ref));
	if (change == DESIRED_DELETE)
		pr_info("service %s%s%s%s deleted", ref, svc->name[0] ? " (" : "", svc->name,
			svc->name[0] ? ")" : "");
	else
		pr_info("service %s%s%s%s %s: backends %s%s%s", ref, svc->name[0] ? " (" : "",
			svc->name, svc->name[0] ? ")" : "", verbs[change],
			state__backends_str(svc, bes, sizeof(bes)),
			state__outlier_changed(change, old_svc, new_svc) ?
				"; outlier detection settings changed" :
				"",
			ranges);
}

void state__tally(const struct desired *have, const struct desired *want, struct state_tally *t)
{
	struct desired_index hx, wx;

	*t = (struct state_tally){ 0 };
	desired__index_init(&hx, have);
	desired__index_init(&wx, want);
	/* Log what really changes in the datapath; names live in the file only. */
	for (__u32 i = 0; i < want->nservices; i++) {
		const struct desired_service *w = &want->services[i];
		const struct desired_service *h =
			desired__index_find(&hx, &w->vip, w->port, w->proto);

		if (!h) {
			state__log_change(DESIRED_ADD, NULL, w, NULL);
			t->added++;
		} else if (!state__backends_same(h, w) || !desired__src_ranges_eq(h, w)) {
			state__log_change(DESIRED_UPDATE, h, w, NULL);
			t->changed++;
		} else {
			t->same++;
		}
	}
	for (__u32 i = 0; i < have->nservices; i++) {
		const struct desired_service *h = &have->services[i];

		if (!desired__index_find(&wx, &h->vip, h->port, h->proto)) {
			state__log_change(DESIRED_DELETE, h, NULL, NULL);
			t->deleted++;
		}
	}
	desired__index_free(&hx);
	desired__index_free(&wx);
}

/* The first backend of svc with weight > 0 that is not unhealthy, or -1:
 * then every such backend is down and none may be taken out (panic). */
static int state__first_usable(const struct desired_service *svc)
{
	for (__u32 j = 0; j < svc->nbackends; j++)
		if (svc->backends[j].weight && !svc->backends[j].unhealthy)
			return (int)j;
	return -1;
}

/* A restart keeps the verdicts the maps hold for backends that keep
 * weight > 0 in a service that keeps its healthCheck. */
static void state__keep_verdicts(const struct desired *inmaps, struct desired *want)
{
	struct desired_index ix;

	desired__index_init(&ix, inmaps);
	for (__u32 i = 0; i < want->nservices; i++) {
		struct desired_service *w = &want->services[i];
		const struct desired_service *h =
			desired__index_find(&ix, &w->vip, w->port, w->proto);

		if (!h || !w->health.type)
			continue;
		for (__u32 j = 0; j < w->nbackends; j++)
			for (__u32 k = 0; k < h->nbackends && w->backends[j].weight; k++)
				if (h->backends[k].unhealthy &&
				    h->backends[k].port == w->backends[j].port &&
				    sluice_addr__eq(&h->backends[k].addr, &w->backends[j].addr))
					w->backends[j].unhealthy = true;
		if (state__first_usable(w) < 0)
			for (__u32 j = 0; j < w->nbackends; j++)
				w->backends[j].unhealthy = false;
	}
	desired__index_free(&ix);
}

int state__reconcile(struct state *st)
{
	struct desired inmaps;
	struct state_tally t;
	int err;

	err = st->maps.read(st->maps.ctx, &inmaps);
	if (err) {
		pr_err("reading back the services in the maps: %s", sluice__errmsg());
		return err;
	}
	err = state__settle_missing(st, &inmaps);
	if (err)
		goto cleanup;
	state__keep_verdicts(&inmaps, &st->desired);
	state__tally(&inmaps, &st->desired, &t);
	err = st->maps.apply(st->maps.ctx, &inmaps, &st->desired);
	if (err)
		pr_err("reconciling the maps to %s: %s", st->path, sluice__errmsg());
	else if (st->missing && t.deleted)
		pr_warn("state file %s did not exist (--state-missing=empty): deleted all %u "
			"service(s) the pinned maps held",
			st->path, t.deleted);
	else
		pr_info("reconciled %u services from %s: %u added, %u changed, %u deleted, %u unchanged",
			st->desired.nservices, st->path, t.added, t.changed, t.deleted, t.same);
	if (!err)
		st->missing = false;
cleanup:
	desired__free(&inmaps);
	return err;
}

/* What desired__save() said, or at least the file and the errno: an
 * operator must never see an error without its cause. */
const char *state__save_err(const struct state *st, int err)
{
	static char msg[1024];

	if (sluice__errmsg()[0])
		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
	else
		snprintf(msg, sizeof(msg), "cannot save %s: %s", st->path, strerror(-err));
	return msg;
}

/* The save failed after the maps took want (from have): the cause in
 * errbuf, the maps put back. */
static void state__save_failed(struct state *st, int err, const struct desired *have,
			       const struct desired *want, char *errbuf, size_t errlen)
{
	/* The cause now: the changed hook and the put-back below reset the
	 * library's message. */
	int off = snprintf(errbuf, errlen, "%s", state__save_err(st, err)), rerr;

	if (off < 0 || (size_t)off >= errlen)
		off = errlen ? errlen - 1 : 0;
	/* The maps changed: ids may have moved. */
	state__changed(st);
	rerr = st->maps.apply(st->maps.ctx, want, have);
	if (rerr)
		snprintf(errbuf + off, errlen - off, "; putting the maps back failed too: %s",
			 sluice__errmsg());
	else
		snprintf(errbuf + off, errlen - off, " (nothing was changed)");
	state__changed(st);
	pr_err("%s", errbuf);
}

int state__commit(struct state *st, struct desired *next, char *errbuf, size_t errlen)
{
	int err;

	state__group_flush(st); /* its changes are the base of this one */
	err = desired__validate(next);
	if (err) {
		snprintf(errbuf, errlen, "%s", sluice__errmsg());
		return err;
	}
	if (st->stamp)
		st->stamp(st->verdict_ctx, next);
	err = st->maps.apply(st->maps.ctx, &st->desired, next);
	if (err) {
		snprintf(errbuf, errlen, "%s", sluice__errmsg());
		/* rolled back, but a rollback may hand out other backend ids */
		state__changed(st);
		return err;
	}
	err = desired__save(next, st->path);
	if (err) {
		state__save_failed(st, err, &st->desired, next, errbuf, errlen);
		return err;
	}
	journal__reset(&st->journal); /* its records are in the file now */
	state__changed(st);
	desired__diff(&st->desired, next, state__log_change, NULL);
	desired__free(&st->desired);
	st->desired = *next;
	desired__init(next);
	if (st->adopted)
		st->adopted(st->verdict_ctx);
	return 0;
}

int state__commit_service(struct state *st, __u32 i, struct desired_service *svc, char *errbuf,
			  size_t errlen)
{
	int err;

	/* A batch of its own, ended at once (the open one first). */
	state__group_flush(st);
	err = state__stage_service(st, i, svc, errbuf, errlen);
	if (err)
		return err;
	err = state__group_flush(st);
	if (err)
		snprintf(errbuf, errlen, "%s", st->group.last_error);
	return err;
}

int state__apply_verdicts(struct state *st, __u32 i, const struct desired_service *svc)
{
	struct desired_service *cur = &st->desired.services[i];
	struct desired have = { .nservices = 1, .services = cur };
	struct desired want = { .nservices = 1, .services = (struct desired_service *)svc };
	int err;

	if (st->group.n) /* a batch ends before anything else (cur stays valid) */
		state__group_flush(st);
	err = st->maps.apply(st->maps.ctx, &have, &want);
	if (err)
		return err;
	for (__u32 j = 0; j < cur->nbackends && j < svc->nbackends; j++)
		cur->backends[j].unhealthy = svc->backends[j].unhealthy;
	return 0;
}
