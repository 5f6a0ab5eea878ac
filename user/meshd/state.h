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

struct state {
	struct desired desired; /* what the maps hold and the state file says */
	const char *path;       /* the state file */
	struct state_maps maps;
	/* The maps changed (or changed back): service and backend ids may
	 * have moved. NULL: nobody to tell. */
	void (*changed)(void *ctx);
	void *changed_ctx;
};

/* desired__from_maps() and desired__apply() on sl. */
struct state_maps state__sluice_maps(struct sluice *sl);

/* Read (and validate) the state file at path into st->desired; a missing
 * file is empty. The maps are set later (state__reconcile() needs them). */
int state__load(struct state *st, const char *path);
void state__free(struct state *st);
/* Make the maps hold st->desired, whatever they hold now. */
int state__reconcile(struct state *st);
/* Adopt next (consumed on success: left empty). On error the text is in err. */
int state__commit(struct state *st, struct desired *next, char *err, size_t errlen);

/* What a reconcile changes: have (the maps) against want, each service
 * logged as it will change. Backends compare as sets: their order in the
 * file is not a change. */
struct state_tally {
	__u32 added, changed, deleted, same;
};
void state__tally(const struct desired *have, const struct desired *want, struct state_tally *t);

#endif /* MESHD_STATE_H */
