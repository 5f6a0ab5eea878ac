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

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "desired.h"
#include "journal.h"

struct sluice;

/*
 * Group commit (#16, state_group.c): changes that arrive together (API
 * requests read in one turn of meshd's loop, one backend.batch request,
 * one Kubernetes pass) are each validated, applied to the maps and
 * written to the journal as they come (state__stage_service(), each with
 * its own verdict: a refused one leaves the others alone), and made
 * durable together by ONE fdatasync (state__group_flush()); only then is
 * any of them answered (the done hook). If that sync (or the full save
 * that replaces it when there is no file to journal against or the
 * journal is due) fails, every change of the batch is put back, newest
 * first, in the maps and st->desired, the journal's records of the batch
 * are cut off, and every one of them is answered with the cause: the
 * file, the maps and st->desired still agree. A batch holds at most
 * STATE_GROUP_MAX changes (a stage past it ends the batch first). Every
 * other change of the state (state__commit(), verdicts, compaction) ends
 * the open batch first.
 */
#define STATE_GROUP_MAX 1024

struct state_undo {
	__u32 i;                    /* services[i] was changed */
	struct desired_service old; /* what it was (owned) */
	bool own_rules;             /* old.rules is not the new service's too (a copy) */
};

struct state_group_stats {
	__u64 changes;    /* services staged */
	__u64 batches;    /* batches ended (each: one fdatasync or one full save) */
	__u64 fsyncs;     /* of them, journal fdatasyncs */
	__u64 full_saves; /* of them, full saves */
	__u64 failed;     /* batches put back (sync or save failed) */
	__u64 refused;    /* changes refused at stage (rules, maps, write) */
	__u32 max_batch;  /* most changes one batch held */
	/* microseconds spent, for the breakdown of a change's cost */
	__u64 validate_us, maps_us, write_us, fsync_us;
};

struct state_group {
	struct state_undo *undo; /* the open batch, oldest first */
	__u32 n, cap;
	bool full_save; /* the batch ends with a full save */
	__u64 seq;      /* the open batch's number (when n > 0) */
	/* The batch seq ended: err 0 (durable) or its error and text. */
	void (*done)(void *ctx, __u64 seq, int err, const char *text);
	void *done_ctx;
	char last_error[1024]; /* of the last failed batch */
	struct state_group_stats st;
};

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
	/* The open batch of changes not yet durable (group commit). */
	struct state_group group;
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

/* Group commit: stage services[i] := svc (consumed on success) into the
 * open batch: validated, applied, journaled, not yet durable; the batch's
 * number is state__group_seq(). On error nothing of it stays and the text
 * is in err; the batch's other changes are not touched. */
int state__stage_service(struct state *st, __u32 i, struct desired_service *svc, char *err,
			 size_t errlen);
/* The open batch made durable (one fdatasync or one full save), or put
 * back when that fails; the done hook hears it either way. 0 when there
 * was nothing to do. */
int state__group_flush(struct state *st);
/* The open batch's number, 0 when none is open. */
__u64 state__group_seq(const struct state *st);
/* status "commit" object: the counters of struct state_group_stats. */
struct json_object *state__group_json(const struct state *st);
void state__group_free(struct state *st);

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
