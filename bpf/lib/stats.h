/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * stats.h - per-CPU counters: global events, drops by reason, and per
 * service / per backend traffic. Per-CPU maps need no atomics.
 */
#ifndef SLUICE_BPF_STATS_H
#define SLUICE_BPF_STATS_H

#include "common.h"
#include "maps.h"
#include "counters.h"

static __always_inline void stats_count(enum sluice_counter c)
{
	counter_add(&counters, c, 1);
}

static __always_inline void stats_drop(enum sluice_drop_reason r)
{
	counter_add(&drops, r, 1);
}

static __always_inline void stats_svc(__u32 svc_id, __u32 len, bool new_flow)
{
	struct sluice_svc_stats *s = bpf_map_lookup_elem(&svc_stats, &svc_id);

	if (!s)
		return;
	s->packets++;
	s->bytes += len;
	s->flows += new_flow;
}

static __always_inline void stats_backend(__u32 backend_id, __u32 len, bool new_flow)
{
	struct sluice_backend_stats *s = bpf_map_lookup_elem(&backend_stats, &backend_id);

	if (!s)
		return;
	s->packets++;
	s->bytes += len;
	s->flows += new_flow;
}

/* A flow balanced at the socket (sock_lb.h): its packets never pass the
 * LB as service traffic, so only the flow is counted. */
static __always_inline void stats_flow(__u32 svc_id, __u32 backend_id)
{
	struct sluice_svc_stats *s = bpf_map_lookup_elem(&svc_stats, &svc_id);
	struct sluice_backend_stats *b = bpf_map_lookup_elem(&backend_stats, &backend_id);

	if (s)
		s->flows++;
	if (b)
		b->flows++;
}

static __always_inline void stats_svc_refused(__u32 svc_id)
{
	struct sluice_svc_stats *s = bpf_map_lookup_elem(&svc_stats, &svc_id);

	if (s)
		s->refused++;
}

#endif /* SLUICE_BPF_STATS_H */
