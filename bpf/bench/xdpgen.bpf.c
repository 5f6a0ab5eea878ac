// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdpgen.bpf.c - the programs of the B2/B3 veth benchmarks.
 *
 * xdp_gen runs only under BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES
 * and XDP_TXes every frame out of the generator's veth. Live frames reuse
 * their pages and whatever runs downstream (the LB's DNAT, the kernel's
 * TTL/MAC rewrite) writes into them, so every run first rewrites the whole
 * header from the template in gen_cfg, then makes it flow n of the
 * configured pattern (source address/port and VIP), with checksums fixed
 * up incrementally (RFC 1624).
 * xdp_count sits on the backend's veth in every variant: it counts what
 * arrives, split by whether the destination is in the expected (backend)
 * prefix, and drops it; during a handshake (count_answer) it answers
 * each SYN with a SYN|ACK instead (xdp_answer_syn). Being an XDP program
 * it also makes the veth accept redirected frames, the same way in every
 * variant.
 * xdp_redirect_only redirects everything from the node's client-side veth
 * to its backend-side veth: the ceiling of the path.
 * Built by the Makefile (build/xdpgen.bpf.o); scripts/bench/xdpgen loads it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdpgen.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_ALEN 6

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_cfg);
} gen_cfg SEC(".maps");

/* Next packet number; the generator runs on one CPU, so a plain add. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gen_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct count_cfg);
} count_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GEN_ANSWER_CPUS);
	__type(key, __u32);
	__type(value, __u32);
} count_answer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} rx_count SEC(".maps");

static __always_inline __u32 csum_add16(__u32 sum, __u16 from, __u16 to)
{
	return sum + (__u16)~from + to;
}

/* One's complement arithmetic is byte-order neutral, so raw network-order
 * halves go in and the result goes back as is. */
static __always_inline __u16 csum_replace32(__u16 check, __u32 from, __u32 to)
{
	__u32 sum = (__u16)~check;

	sum = csum_add16(sum, from >> 16, to >> 16);
	sum = csum_add16(sum, from & 0xffff, to & 0xffff);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline __u16 csum_replace16(__u16 check, __u16 from, __u16 to)
{
	__u32 sum = (__u16)~check;

	sum = csum_add16(sum, from, to);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp")
int xdp_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	struct tcphdr *tcp = (void *)(ip + 1);
	__u32 key = 0, f, saddr, daddr, vip_off;
	struct gen_cfg *cfg;
	__u16 sport;
	__u64 *seq;

	cfg = bpf_map_lookup_elem(&gen_cfg, &key);
	seq = bpf_map_lookup_elem(&gen_seq, &key);
	if (!cfg || !seq || data + GEN_FRAME_LEN > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, cfg->frame, GEN_FRAME_LEN);

	f = cfg->nflows ? (__u32)(*seq % cfg->nflows) : (__u32)*seq;
	*seq += 1;
	/* Scattered (Knuth's multiplicative hash), not f % nvips: a sample of
	 * consecutive flows then hits services all over the table, not one
	 * run of neighbours (iptables pays per rule before the service's). */
	vip_off = cfg->nvips > 1 ? (f * 2654435761u) % cfg->nvips : 0;
	if (!f)
		return XDP_TX;

	saddr = bpf_htonl(bpf_ntohl(ip->saddr) + f / GEN_PORTS);
	daddr = bpf_htonl(bpf_ntohl(ip->daddr) + vip_off);
	sport = bpf_htons(GEN_PORT_BASE + f % GEN_PORTS);

	ip->check = csum_replace32(ip->check, ip->saddr, saddr);
	ip->check = csum_replace32(ip->check, ip->daddr, daddr);
	tcp->check = csum_replace32(tcp->check, ip->saddr, saddr);
	tcp->check = csum_replace32(tcp->check, ip->daddr, daddr);
	tcp->check = csum_replace16(tcp->check, tcp->source, sport);
	ip->saddr = saddr;
	ip->daddr = daddr;
	tcp->source = sport;
	return XDP_TX;
}

/* The backend's answer to the SYN @ip/@tcp: addresses, ports and MACs
 * swapped (none of which changes a checksum), SYN -> SYN|ACK acknowledging
 * the SYN, its own sequence number the one the client's ACKs acknowledge
 * (xdpgen.h), the TCP checksum updated for what changed. */
static __always_inline int xdp_answer_syn(struct ethhdr *eth, struct iphdr *ip, struct tcphdr *tcp)
{
	__u8 mac[ETH_ALEN];
	__u16 *flags = (__u16 *)((__u8 *)tcp + 12), old = *flags;
	__u32 a = ip->saddr, seq = tcp->seq, ack_seq = tcp->ack_seq;
	__u16 port = tcp->source;

	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	ip->saddr = ip->daddr;
	ip->daddr = a;
	tcp->source = tcp->dest;
	tcp->dest = port;
	tcp->ack = 1;
	tcp->check = csum_replace16(tcp->check, old, *flags);
	tcp->ack_seq = bpf_htonl(bpf_ntohl(seq) + 1);
	tcp->seq = bpf_htonl(GEN_ACK_SEQ - 1);
	tcp->check = csum_replace32(tcp->check, ack_seq, tcp->ack_seq);
	tcp->check = csum_replace32(tcp->check, seq, tcp->seq);
	return XDP_TX;
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 key = 0, slot = COUNT_OTHER;
	struct tcphdr *tcp = (void *)(ip + 1);
	struct count_cfg *cfg;
	__u32 *answer;
	__u64 *cnt;

	cfg = bpf_map_lookup_elem(&count_cfg, &key);
	if (cfg && (void *)(ip + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP) &&
	    ip->protocol == IPPROTO_TCP && (ip->daddr & cfg->mask) == cfg->net)
		slot = COUNT_MATCH;
	cnt = bpf_map_lookup_elem(&rx_count, &slot);
	if (cnt)
		*cnt += 1;
	/* bounds first: 6.1's verifier does not carry the check above over
	 * slot's trip through the stack */
	if (slot != COUNT_MATCH || (void *)(tcp + 1) > data_end || ip->ihl != 5 || !tcp->syn ||
	    tcp->ack)
		return XDP_DROP;
	key = bpf_get_smp_processor_id();
	answer = bpf_map_lookup_elem(&count_answer, &key);
	return answer && *answer ? xdp_answer_syn(eth, ip, tcp) : XDP_DROP;
}

SEC("xdp")
int xdp_redirect_only(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct gen_cfg *cfg = bpf_map_lookup_elem(&gen_cfg, &key);

	if (!cfg)
		return XDP_ABORTED;
	return bpf_redirect(cfg->redirect_ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
