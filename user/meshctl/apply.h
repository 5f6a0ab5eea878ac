/* SPDX-License-Identifier: MIT */
/*
 * apply.h - `meshctl apply`'s view of meshd's services before the apply
 * (apply_have.c), for the backend lines of its diff.
 */
#ifndef MESHCTL_APPLY_H
#define MESHCTL_APPLY_H

#include <stdbool.h>
#include <json-c/json.h>

#include "desired.h"

struct have {
	bool known; /* false: the list could not be read (no detail shown) */
	struct desired d;
	struct desired_index ix;
	__u32 cap;
};

/* Read `service.list` one service at a time into h (best effort, silent). */
void have__load(struct have *h);
/* The service ref names as it was, as JSON (put it); NULL if none. */
struct json_object *have__find(const struct have *h, const char *ref);
void have__free(struct have *h);

#endif /* MESHCTL_APPLY_H */
