// SPDX-License-Identifier: MIT
/*
 * svc_affinity.c - the userspace side of client-IP session affinity: the
 * kernel writes the affinity map (bpf/lib/affinity.h); the library
 * forgets a service's entries when the service is deleted or loses
 * affinity, and counts entries for metrics.
 *
 * Contract: forgetting is best effort and never fails the update that
 * asked for it. The kernel checks at every lookup that an entry's backend
 * still belongs to the entry's service, so an entry left behind (a failed
 * delete, or a flow racing with the walk) never sends a client to another
 * service's backend; it is only a stale slot the LRU reclaims.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "internal.h"

struct aff_forget_ctx {
	const bool *gone;
	struct sluice_affinity_key *keys;
	__u32 n, cap;
};

static int aff__collect(const void *key, const void *value, void *ctx)
{
	const struct sluice_affinity_key *k = key;
	struct aff_forget_ctx *c = ctx;
	struct sluice_affinity_key *grown;

	(void)value;
	if (k->svc_id >= SLUICE_MAX_SERVICES || !c->gone[k->svc_id])
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 256;
		grown = realloc(c->keys, c->cap * sizeof(*c->keys));
		if (!grown)
			return -ENOMEM; /* delete what was collected */
		c->keys = grown;
	}
	c->keys[c->n++] = *k;
	return 0;
}

void svc__affinity_forget(struct sluice *s, const bool *gone)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	int fd = s->fds[SLUICE_MAP_AFFINITY];
	struct aff_forget_ctx c = { .gone = gone };
	__u32 count;
	int err;

	if (fd < 0)
		return;
	maps__for_each(fd, "affinity", sizeof(struct sluice_affinity_key),
		       sizeof(struct sluice_affinity), aff__collect, &c);
	count = c.n;
	err = c.n ? bpf_map_delete_batch(fd, c.keys, &count, &opts) : 0;
	if (err) {
		/* no batch delete, or an entry the LRU evicted meanwhile
		 * (-ENOENT stops the batch): the rest one by one */
		for (__u32 i = count < c.n ? count : 0; i < c.n; i++)
			bpf_map_delete_elem(fd, &c.keys[i]);
	}
	free(c.keys);
}

static int aff__count_one(const void *key, const void *value, void *ctx)
{
	(void)key;
	(void)value;
	(*(__u64 *)ctx)++;
	return 0;
}

int sluice__affinity_count(struct sluice *s, __u64 *count)
{
	__u64 n = 0;
	int err;

	sluice__clear_err();
	err = maps__for_each(s->fds[SLUICE_MAP_AFFINITY], "affinity",
			     sizeof(struct sluice_affinity_key), sizeof(struct sluice_affinity),
			     aff__count_one, &n);
	if (err)
		return err;
	*count = n;
	return 0;
}
