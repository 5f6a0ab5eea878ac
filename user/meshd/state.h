/* SPDX-License-Identifier: MIT */
/*
 * state.h - the agent's desired state: loading it, reconciling the maps to
 * it at start, and committing changes from the API and the Kubernetes sync.
 *
 * Contract: st->desired is always what the maps hold and what the state
 * file says. state__commit() is the one way to change it: validate, apply
 * to the maps (all-or-nothing), save atomically; if the save fails the maps
 * are put back, so the file, the maps and st->desired never disagree.
 * Whoever keeps ids of the maps hears of every change (st->changed).
 */
#ifndef MESHD_STATE_H
#define MESHD_STATE_H

#include <stddef.h>

#include "desired.h"
#include "journal.h"

struct sluice;

/* The maps the state is kept in: the datapath's (state__sluice_maps()),
 * or a stand-in where the kernel is not the point (tests). */
struct state_maps {
	/* What the maps hold now, as a desired state (reconcile's start). */
	int (*read)(void *ctx, struct desired *out);
	/* Make the maps hold next, given they hold old; all-or-nothing. */
	int (*apply)(void *ctx, const struct desired *old, const struct desired *next);
	void *ctx;
};

/* What a start does when the state file does not exist but the pinned
 * maps hold services (a moved file, a typo in --state, a wiped disk):
 * never delete a node's services unless the operator said so. */
enum state_missing {
	STATE_MISSING_REFUSE, /* exit, naming the file, the count and the flag */
	STATE_MISSING_ADOPT,  /* the maps' services become the state, saved */
	STATE_MISSING_EMPTY,  /* delete them, logged as a warning */
};

int state__parse_missing(const char *text, enum state_missing *out);
const char *state__missing_name(enum state_missing mode);

struct state {
	struct desired desired; /* what the maps hold and the state file says */
	const char *path;       /* the state file */
	/* The file did not exist at load: the reconcile decides by on_missing. */
	bool missing;
	enum state_missing on_missing;
	struct state_maps maps;
	/* One service's changes since the last full save (journal.h). */
	struct journal journal;
	/* The maps changed (or changed back): service and backend ids may
	 * have moved. NULL: nobody to tell. */
	void (*changed)(void *ctx);
	void *changed_ctx;
	/* Runtime verdicts the maps hold besides the operator's state (the
	 * backends' `unhealthy`, active health checks: probe.h): stamp() sets
	 * them in a state about to be committed, so an edit keeps them for the
	 * backends that stay; adopted() hears that st->desired was replaced.
	 * NULL: none. */
	void (*stamp)(void *ctx, struct desired *next);
	void (*adopted)(void *ctx);
	void *verdict_ctx;
};

/* desired__from_maps() and desired__apply() on sl. */
struct state_maps state__sluice_maps(struct sluice *sl);

/* Read (and validate) the state file at path into st->desired; a missing
 * file is empty and sets st->missing. The maps are set later
 * (state__reconcile() needs them). */
int state__load(struct state *st, const char *path);
void state__free(struct state *st);
/* Fold the journal into the state file when it is due (idle_only: only
 * when changes stopped JOURNAL_IDLE_MS ago), or now (force). Errors are
 * logged: the journal stays, nothing is lost. */
void state__compact(struct state *st, bool force);
/* With st->missing and STATE_MISSING_REFUSE: -EEXIST (logged, naming the
 * file, the count and the flag) when the maps hold nservices > 0. Lets
 * meshd refuse before it touches the datapath; the reconcile checks too. */
int state__check_missing(const struct state *st, __u32 nservices);
/* Make the maps hold st->desired, whatever they hold now; after a missing
 * file, what they hold is kept, adopted or deleted as st->on_missing says. */
int state__reconcile(struct state *st);
/* Adopt next (consumed on success: left empty). On error the text is in err. */
int state__commit(struct state *st, struct desired *next, char *err, size_t errlen);
/* The same for one change: services[i] becomes svc (consumed on success:
 * zeroed; its arrays st's). Validated with desired__validate_one(), only
 * that service applied to the maps and logged, made durable by an append
 * to the journal (journal.h; a full save when there is no state file yet
 * or the journal is due). */
int state__commit_service(struct state *st, __u32 i, struct desired_service *svc, char *err,
			  size_t errlen);

/* New verdicts for services[i] (svc: the same service, its backends'
 * `unhealthy` changed) into the maps and st->desired; the state file is
 * not touched (verdicts are not the operator's). */
int state__apply_verdicts(struct state *st, __u32 i, const struct desired_service *svc);

/* What a reconcile changes: have (the maps) against want, each service
 * logged as it will change. Backends compare as sets: their order in the
 * file is not a change. */
struct state_tally {
	__u32 added, changed, deleted, same;
};
void state__tally(const struct desired *have, const struct desired *want, struct state_tally *t);

#endif /* MESHD_STATE_H */
