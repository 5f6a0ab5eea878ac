/* SPDX-License-Identifier: MIT */
/*
 * state_internal.h - what state.c shares with state_group.c only.
 */
#ifndef MESHD_STATE_INTERNAL_H
#define MESHD_STATE_INTERNAL_H

#include "state.h"

/* The maps changed (or changed back): ids may have moved. */
void state__changed(struct state *st);
/* One line per service change (desired__diff_fn). */
void state__log_change(enum desired_change change, const struct desired_service *old_svc,
		       const struct desired_service *new_svc, void *ctx);
/* What a failed save said, or the file and the errno. */
const char *state__save_err(const struct state *st, int err);

#endif /* MESHD_STATE_INTERNAL_H */
