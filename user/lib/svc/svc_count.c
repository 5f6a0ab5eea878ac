// SPDX-License-Identifier: MIT
/*
 * svc_count.c - the entries of the services map, counted without walking
 * it (see sluice__map_entries() in sluice.h).
 *
 * Contract: the first call walks `services` once; from then on every
 * insert and delete this handle makes calls svc__count() (service.c,
 * svc_query.c, svc_sweep.c: each after the kernel said the key was absent
 * or there), so the counts equal a walk's while this handle is the one
 * writer. A sweep recounts from its own walk.
 */
#include <errno.h>

#include "internal.h"

void svc__count(struct sluice *s, bool marker, int delta)
{
	__u64 *n = marker ? &s->svc_markers : &s->svc_entries;

	if (!s->svc_counted)
		return;
	if (delta < 0 && !*n) {
		s->svc_counted = false; /* out of step: count again */
		return;
	}
	*n += delta;
}

static int count__one(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc *svc = value;
	struct sluice *s = ctx;

	(void)key;
	if (svc->flags & SLUICE_SVC_F_VIP_MARKER)
		s->svc_markers++;
	else
		s->svc_entries++;
	return 0;
}

static int count__noop(const void *key, const void *value, void *ctx)
{
	(void)key;
	(void)value;
	(void)ctx;
	return 0;
}

int sluice__map_entries(struct sluice *s, __u64 *services, __u64 *markers, __u64 *backends)
{
	int err;

	sluice__clear_err();
	if (!s->svc_counted) {
		s->svc_entries = s->svc_markers = 0;
		err = maps__for_each(s->fds[SLUICE_MAP_SERVICES], "services",
				     sizeof(struct sluice_svc_key), sizeof(struct sluice_svc),
				     count__one, s);
		if (err)
			return err;
		s->svc_counted = true;
	}
	*services = s->svc_entries;
	*markers = s->svc_markers;
	return backends ? svc__backends_each(s, count__noop, NULL, backends) : 0;
}
