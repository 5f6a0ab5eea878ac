/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdpgen.h - layouts shared by bpf/bench/xdpgen.bpf.c and
 * scripts/bench/xdpgen.c (the B2/B3 traffic generator and its counters).
 */
#ifndef SLUICE_BENCH_XDPGEN_H
#define SLUICE_BENCH_XDPGEN_H

/* Ethernet + IPv4 + TCP without options: the frame every run writes. */
#define GEN_FRAME_LEN 54
/* Source ports a client address uses before the next address is taken. */
#define GEN_PORTS 64000
#define GEN_PORT_BASE 1024
/* Sequence numbers of the client's ACKs (seq, ack_seq); a handshake's SYN
 * carries GEN_SEQ - 1, the backend's SYN|ACK GEN_ACK_SEQ - 1, so the
 * handshake is one netfilter's TCP tracking takes as valid too. */
#define GEN_SEQ 1000
#define GEN_ACK_SEQ 2000

/* gen_cfg[0]: what xdp_gen writes. The template carries valid checksums
 * for flow 0 to VIP 0; other flows are derived by incremental updates. */
struct gen_cfg {
	__u8 frame[GEN_FRAME_LEN];
	__u8 pad[2];
	__u32 nflows;           /* flows cycled through; 0: every packet a new flow */
	__u32 nvips;            /* destinations: template daddr + (flow * 2654435761) % nvips */
	__u32 redirect_ifindex; /* xdp_redirect_only: where frames go */
};

/* rx_count slots of xdp_count (per-CPU). */
enum count_slot {
	COUNT_MATCH = 0, /* IPv4 TCP to the expected destination prefix */
	COUNT_OTHER = 1, /* anything else: a variant that did not DNAT */
	COUNT__MAX,
};

/* count_cfg[0]: the expected destination prefix (network order). */
struct count_cfg {
	__u32 net;
	__u32 mask;
};

/* count_answer[cpu] (a __u32 per CPU, written by the generator pinned to
 * that CPU): while set, a SYN that xdp_count sees on that CPU is also
 * answered: turned into the backend's SYN|ACK and XDP_TXed back through
 * the node, so the LB sees a real three-way handshake and confirms the
 * flow as it would a live connection's (xdpgen run --handshake). The
 * whole path of a generator's frames runs on its CPU, so generators on
 * several CPUs each switch their own slot. */
#define GEN_ANSWER_CPUS 256

#endif /* SLUICE_BENCH_XDPGEN_H */
