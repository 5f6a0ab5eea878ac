// SPDX-License-Identifier: MIT
/*
 * stats.c - reading the datapath's counters: global counters and drop
 * reasons, per-backend entries and stats, conntrack occupancy. Per-CPU
 * values are summed here so callers never see per-CPU layouts.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>

#include "internal.h"

static int stats__sum_array(struct sluice *s, enum sluice_map_id map, const char *name, __u64 *out,
			    __u32 n)
{
	int err;

	for (__u32 i = 0; i < n; i++) {
		err = maps__percpu_sum(s, s->fds[map], name, i, &out[i], 1);
		if (err)
			return err;
	}
	return 0;
}

int sluice__counters(struct sluice *s, __u64 out[SLUICE_CNT__MAX])
{
	sluice__clear_err();
	return stats__sum_array(s, SLUICE_MAP_COUNTERS, "counters", out, SLUICE_CNT__MAX);
}

int sluice__drops(struct sluice *s, __u64 out[SLUICE_DROP__MAX])
{
	sluice__clear_err();
	return stats__sum_array(s, SLUICE_MAP_DROPS, "drops", out, SLUICE_DROP__MAX);
}

int sluice__backend_get(struct sluice *s, __u32 backend_id, struct sluice_backend *be,
			struct sluice_backend_stats *stats)
{
	struct sluice_backend tmp;
	int err;

	sluice__clear_err();
	err = bpf_map_lookup_elem(s->fds[SLUICE_MAP_BACKENDS], &backend_id, &tmp);
	if (err == -ENOENT) {
		sluice__set_err("backend id %u does not exist", backend_id);
		return err;
	}
	if (err)
		return maps__err(err, "backends", "lookup", "of a backend");
	if (be)
		*be = tmp;
	if (!stats)
		return 0;
	return maps__percpu_sum(s, s->fds[SLUICE_MAP_BACKEND_STATS], "backend_stats", backend_id,
				(__u64 *)stats, sizeof(*stats) / sizeof(__u64));
}

static int stats__count_one(const void *key, const void *value, void *ctx)
{
	(void)key;
	(void)value;
	(*(__u64 *)ctx)++;
	return 0;
}

static int stats__ct_count(int fd, const char *name, __u64 *count)
{
	__u64 n = 0;
	int err;

	sluice__clear_err();
	err = maps__for_each(fd, name, sizeof(struct sluice_ct_key), sizeof(struct sluice_ct_entry),
			     stats__count_one, &n);
	if (err)
		return err;
	*count = n;
	return 0;
}

int sluice__ct_count(struct sluice *s, __u64 *count)
{
	return stats__ct_count(s->fds[SLUICE_MAP_CONNTRACK], "conntrack", count);
}

int sluice__ct_new_count(struct sluice *s, __u64 *count)
{
	return stats__ct_count(s->fds[SLUICE_MAP_CT_NEW], "ct_new", count);
}
