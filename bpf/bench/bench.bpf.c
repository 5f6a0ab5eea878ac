// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bench.bpf.c - baseline XDP programs for scripts/bench/pktbench.
 *
 * Contract: nothing attaches these; they only run under BPF_PROG_TEST_RUN so
 * the cost of xdp_lb can be put next to the floor of the test harness
 * (xdp_empty) and next to the smallest program that does what every LB
 * packet does at least once: read a field, look it up in a hash map and
 * bump a per-CPU counter (xdp_lookup). Userspace puts the benchmark
 * packet's IPv4 destination into bench_keys so the lookup hits, as the LB's
 * service lookup does for service traffic. xdp_ct_insert does the two
 * conntrack inserts of a new flow into an LRU map of the datapath's
 * conntrack layout and size, so the new-flow figure can be split into what
 * the map costs and what the LB adds. All return XDP_PASS.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "sluice_abi.h"

#define BENCH_ETH_HLEN 14

/* IPv4 destination address (network order) -> counter slot. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} bench_keys SEC(".maps");

enum bench_slot {
	BENCH_HIT = 0,  /* xdp_lookup hits */
	BENCH_MISS = 1, /* xdp_lookup misses: a wrong key shows up here */
	BENCH_SEQ = 2,  /* xdp_ct_insert flows inserted, also its key */
	BENCH__MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BENCH__MAX);
	__type(key, __u32);
	__type(value, __u64);
} bench_counts SEC(".maps");

/* Same layout and capacity as the datapath's conntrack (bpf/lib/maps.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_CT_MAX);
	__type(key, struct sluice_ct_key);
	__type(value, struct sluice_ct_entry);
} bench_ct SEC(".maps");

SEC("xdp")
int xdp_empty(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_lookup(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct iphdr *ip = data + BENCH_ETH_HLEN;
	__u32 miss = BENCH_MISS, *slot;
	__u32 key;
	__u64 *cnt;

	/* Bounds check like the LB's parser does before touching the header. */
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	key = ip->daddr;

	slot = bpf_map_lookup_elem(&bench_keys, &key);
	cnt = bpf_map_lookup_elem(&bench_counts, slot ? slot : &miss);
	if (cnt)
		*cnt += 1; /* per-CPU slot: no atomic needed */
	return XDP_PASS;
}

SEC("xdp")
int xdp_ct_insert(struct xdp_md *ctx)
{
	struct sluice_ct_entry e = {};
	struct sluice_ct_key k = {};
	__u32 slot = BENCH_SEQ;
	__u64 *seq;

	/* A per-CPU sequence number makes every run a new flow even though
	 * the input packet is always the same. */
	seq = bpf_map_lookup_elem(&bench_counts, &slot);
	if (!seq)
		return XDP_PASS;
	k.saddr[0] = (__u32)*seq;
	k.saddr[1] = (__u32)(*seq >> 32);
	k.proto = IPPROTO_TCP;
	k.family = SLUICE_AF_INET;
	*seq += 1;

	e.created_ns = bpf_ktime_get_ns();
	e.last_seen_ns = e.created_ns;
	k.dir = SLUICE_CT_FWD;
	bpf_map_update_elem(&bench_ct, &k, &e, BPF_ANY);
	k.dir = SLUICE_CT_REPLY;
	bpf_map_update_elem(&bench_ct, &k, &e, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
