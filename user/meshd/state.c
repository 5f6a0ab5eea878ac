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

int state__load(struct state *st, const char *path)
{
	int err;

	st->path = path;
	desired__init(&st->desired);
	err = desired__load(&st->desired, path);
	if (err)
		pr_err("%s", sluice__errmsg()); /* names the file */
	return err;
}

void state__free(struct state *st)
{
	desired__free(&st->desired);
}

static void state__changed(struct state *st)
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

static void state__log_change(enum desired_change change, const struct desired_service *old_svc,
			      const struct desired_service *new_svc, void *ctx)
{
	const struct desired_service *svc = new_svc ? new_svc : old_svc;
	static const char *const verbs[] = {
		[DESIRED_ADD] = "added",
		[DESIRED_UPDATE] = "updated",
		[DESIRED_DELETE] = "deleted",
	};
	char ref[DESIRED_SVC_REF_LEN], bes[512];

	(void)ctx;
	/* desired__diff() and state__tally() pass old_svc, new_svc or both */
	// cppcheck-suppress nullPointer
	sluice_svc__str(&svc->vip, svc->port, svc->proto, ref, sizeof(ref));
	if (change == DESIRED_DELETE)
		pr_info("service %s%s%s%s deleted", ref, svc->name[0] ? " (" : "", svc->name,
			svc->name[0] ? ")" : "");
	else
		pr_info("service %s%s%s%s %s: backends %s", ref, svc->name[0] ? " (" : "",
			svc->name, svc->name[0] ? ")" : "", verbs[change],
			state__backends_str(svc, bes, sizeof(bes)));
}

void state__tally(const struct desired *have, const struct desired *want, struct state_tally *t)
{
	*t = (struct state_tally){ 0 };
	/* Log what really changes in the datapath; names live in the file only. */
	for (__u32 i = 0; i < want->nservices; i++) {
		const struct desired_service *w = &want->services[i];
		const struct desired_service *h = desired__find(have, &w->vip, w->port, w->proto);

		if (!h) {
			state__log_change(DESIRED_ADD, NULL, w, NULL);
			t->added++;
		} else if (!state__backends_same(h, w)) {
			state__log_change(DESIRED_UPDATE, h, w, NULL);
			t->changed++;
		} else {
			t->same++;
		}
	}
	for (__u32 i = 0; i < have->nservices; i++) {
		const struct desired_service *h = &have->services[i];

		if (!desired__find(want, &h->vip, h->port, h->proto)) {
			state__log_change(DESIRED_DELETE, h, NULL, NULL);
			t->deleted++;
		}
	}
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
	state__tally(&inmaps, &st->desired, &t);
	/* Unchanged services are set again too: idempotent, moves no flow. */
	err = st->maps.apply(st->maps.ctx, &inmaps, &st->desired);
	if (err)
		pr_err("reconciling the maps to %s: %s", st->path, sluice__errmsg());
	else
		pr_info("reconciled %u services from %s: %u added, %u changed, %u deleted, %u unchanged",
			st->desired.nservices, st->path, t.added, t.changed, t.deleted, t.same);
	desired__free(&inmaps);
	return err;
}

int state__commit(struct state *st, struct desired *next, char *errbuf, size_t errlen)
{
	int err, rerr;

	err = desired__validate(next);
	if (err) {
		snprintf(errbuf, errlen, "%s", sluice__errmsg());
		return err;
	}
	err = st->maps.apply(st->maps.ctx, &st->desired, next);
	if (err) {
		snprintf(errbuf, errlen, "%s", sluice__errmsg());
		/* rolled back, but a rollback may hand out other backend ids */
		state__changed(st);
		return err;
	}
	err = desired__save(next, st->path);
	/* The maps changed (and maybe changed back): ids may have moved. */
	state__changed(st);
	if (err) {
		int off = snprintf(errbuf, errlen, "%s", sluice__errmsg());

		if (off < 0 || (size_t)off >= errlen)
			off = errlen ? errlen - 1 : 0;
		rerr = st->maps.apply(st->maps.ctx, next, &st->desired);
		state__changed(st);
		if (rerr)
			snprintf(errbuf + off, errlen - off,
				 "; putting the maps back failed too: %s", sluice__errmsg());
		else
			snprintf(errbuf + off, errlen - off, " (nothing was changed)");
		pr_err("%s", errbuf);
		return err;
	}
	desired__diff(&st->desired, next, state__log_change, NULL);
	desired__free(&st->desired);
	st->desired = *next;
	desired__init(next);
	return 0;
}
