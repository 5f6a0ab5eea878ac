/* SPDX-License-Identifier: MIT */
/*
 * state.h - the agent's desired state: loading it, reconciling the maps to
 * it at start, and committing changes from the API.
 *
 * Contract: m->desired is always what the maps hold and what the state
 * file says. state__commit() is the one way to change it: validate, apply
 * to the maps (all-or-nothing), save atomically; if the save fails the maps
 * are put back, so the file, the maps and m->desired never disagree.
 * Telemetry hears of every change (telem__changed()).
 */
#ifndef MESHD_STATE_H
#define MESHD_STATE_H

#include <stddef.h>

#include "desired.h"

struct meshd;

/* Read (and validate) the state file into d; a missing file is empty. */
int state__load(const char *path, struct desired *d);
/* Make the maps hold m->desired, whatever they hold now. */
int state__reconcile(struct meshd *m);
/* Adopt next (consumed on success: left empty). On error the text is in err. */
int state__commit(struct meshd *m, struct desired *next, char *err, size_t errlen);

#endif /* MESHD_STATE_H */
