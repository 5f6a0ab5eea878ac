/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * counters.h - bump one slot of a per-CPU counter array (counters, drops,
 * sock_counters, redir_counters, telem_counters). Each CPU writes only its
 * own copy, so a plain add is safe; userspace sums over CPUs.
 */
#ifndef SLUICE_BPF_COUNTERS_H
#define SLUICE_BPF_COUNTERS_H

#include "common.h"

/* @map is a BPF_MAP_TYPE_PERCPU_ARRAY of __u64; an index past its end is
 * ignored, as the lookup fails. */
static __always_inline void counter_add(void *map, __u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);

	if (v)
		*v += n;
}

#endif /* SLUICE_BPF_COUNTERS_H */
