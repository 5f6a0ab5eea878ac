/* SPDX-License-Identifier: MIT */
/*
 * pkt.h - packet builder for datapath tests (Cilium-test style).
 *
 * Contract: headers are pushed in wire order (pkt__eth, pkt__ipv4 or
 * pkt__ipv6 + extension headers, pkt__tcp / pkt__udp / pkt__icmp4 /
 * pkt__icmp6, pkt__payload), then pkt__finish() fills every length that was
 * not overridden and computes the IPv4 header checksum and the TCP, UDP and
 * ICMP checksums from scratch. That checksum code shares nothing with the
 * datapath, which only updates checksums incrementally: an expected packet
 * built here is an independent check of those updates. After finishing, a
 * packet may be damaged on purpose (pkt__truncate, pkt__put*, pkt__pad).
 * Builder misuse (overflow, bad address text) aborts: it is a test bug.
 * Option structs are passed as designated initializers:
 *   pkt__ipv4(&p, "10.0.0.1", "10.96.0.10", IPPROTO_TCP, .ttl = 5, .id = 7);
 * Numbers are host order; the builder writes network order.
 */
#ifndef SLUICE_TEST_PKT_H
#define SLUICE_TEST_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

/* Larger than any frame the tests build; XDP test runs cap at ~3.5 KiB. */
#define PKT_MAX 2048

#define PKT_TH_FIN 0x01
#define PKT_TH_SYN 0x02
#define PKT_TH_RST 0x04
#define PKT_TH_PSH 0x08
#define PKT_TH_ACK 0x10
#define PKT_TH_URG 0x20

#define PKT_IP_DF 0x4000
#define PKT_IP_MF 0x2000

struct pkt {
	__u8 buf[PKT_MAX];
	size_t len;
	int l3_off;      /* -1 until an IP header is pushed */
	int l4_off;      /* -1 until TCP/UDP/ICMP is pushed */
	__u8 af;         /* 4 or 6 once an IP header is pushed */
	__u8 l4_proto;   /* protocol of the pushed L4 header */
	int nexthdr_off; /* IPv6: byte that names the next pushed header */
	__u8 next_proto; /* IPv6: upper protocol given to pkt__ipv6() */
	/* lengths/checksums left alone by pkt__finish() */
	bool keep_ip_len;
	bool keep_ihl;
	bool keep_udp_len;
	bool keep_l4_csum;
	bool udp_csum_zero;
	bool keep_doff;
	bool finished;
};

struct pkt_ipv4_opts {
	__u8 tos;
	__u8 ttl; /* 0: 64 */
	__u16 id;
	__u16 frag; /* flags (PKT_IP_DF/MF) | offset in 8-byte units */
	const void *options;
	__u8 options_len; /* multiple of 4, at most 40 */
	__u8 ihl;         /* 0: 5 + options_len / 4 */
	__u16 tot_len;    /* 0: computed by pkt__finish() */
};

struct pkt_ipv6_opts {
	__u8 tclass;
	__u32 flow;        /* 20 bits */
	__u8 hop_limit;    /* 0: 64 */
	__u16 payload_len; /* 0: computed by pkt__finish() */
};

struct pkt_tcp_opts {
	__u16 window;
	__u16 urg_ptr;
	const void *options;
	__u8 options_len; /* multiple of 4, at most 40 */
	__u8 doff;        /* 0: 5 + options_len / 4 */
	bool keep_csum;   /* leave the checksum field as csum says */
	__u16 csum;
};

struct pkt_udp_opts {
	bool csum_zero; /* IPv4 "no checksum": field stays 0 */
	__u16 len;      /* 0: computed by pkt__finish() */
};

void pkt__init(struct pkt *p);
void pkt__eth(struct pkt *p, const __u8 *smac, const __u8 *dmac, __u16 ethertype);
/* An 802.1Q tag: call after pkt__eth(..., 0x8100); ethertype is the inner one. */
void pkt__vlan(struct pkt *p, __u16 tci, __u16 ethertype);
/* Raw bytes anywhere in the chain (ARP bodies, odd headers). */
void pkt__bytes(struct pkt *p, const void *data, size_t len);

void pkt__ipv4_o(struct pkt *p, const char *saddr, const char *daddr, __u8 proto,
		 const struct pkt_ipv4_opts *o);
#define pkt__ipv4(p, saddr, daddr, proto, ...) \
	pkt__ipv4_o(p, saddr, daddr, proto, &(struct pkt_ipv4_opts){ __VA_ARGS__ })

/* proto is the upper protocol; extension headers pushed next are chained
 * in front of it automatically. */
void pkt__ipv6_o(struct pkt *p, const char *saddr, const char *daddr, __u8 proto,
		 const struct pkt_ipv6_opts *o);
#define pkt__ipv6(p, saddr, daddr, proto, ...) \
	pkt__ipv6_o(p, saddr, daddr, proto, &(struct pkt_ipv6_opts){ __VA_ARGS__ })

/* Hop-by-hop (0), routing (43, segments left 0) or destination options (60)
 * of len bytes (multiple of 8, >= 8), or AH (51, multiple of 4, >= 12).
 * Padding is a PadN option, so the header is well formed. */
void pkt__ipv6_ext(struct pkt *p, __u8 type, size_t len);
/* Fragment header (44); offset in 8-byte units. */
void pkt__ipv6_frag(struct pkt *p, __u16 offset, bool more, __u32 id);

void pkt__tcp_o(struct pkt *p, __u16 sport, __u16 dport, __u32 seq, __u32 ack, __u8 flags,
		const struct pkt_tcp_opts *o);
#define pkt__tcp(p, sport, dport, seq, ack, flags, ...) \
	pkt__tcp_o(p, sport, dport, seq, ack, flags, &(struct pkt_tcp_opts){ __VA_ARGS__ })

void pkt__udp_o(struct pkt *p, __u16 sport, __u16 dport, const struct pkt_udp_opts *o);
#define pkt__udp(p, sport, dport, ...) \
	pkt__udp_o(p, sport, dport, &(struct pkt_udp_opts){ __VA_ARGS__ })

/* rest: the 4 bytes after type/code/checksum (echo id/seq, unused, MTU). */
void pkt__icmp4(struct pkt *p, __u8 type, __u8 code, __u32 rest);
void pkt__icmp6(struct pkt *p, __u8 type, __u8 code, __u32 rest);

void pkt__payload(struct pkt *p, const void *data, size_t len);

/* Fill lengths and checksums. Idempotent; call once all headers are in. */
void pkt__finish(struct pkt *p);

/* After finishing: the TCP/UDP checksum field as a sender with TX checksum
 * offload leaves it (CHECKSUM_PARTIAL): the folded pseudo-header sum. */
void pkt__l4_seed(struct pkt *p);

/* Damage after finishing; checksums are not refreshed. */
void pkt__truncate(struct pkt *p, size_t len);
void pkt__pad(struct pkt *p, size_t n); /* Ethernet padding: zeros */
void pkt__put8(struct pkt *p, size_t off, __u8 v);
void pkt__put16(struct pkt *p, size_t off, __u16 v);
void pkt__put32(struct pkt *p, size_t off, __u32 v);
__u16 pkt__get16(const struct pkt *p, size_t off);
__u32 pkt__get32(const struct pkt *p, size_t off);
/* Recompute the IPv4 header checksum after poking header fields. */
void pkt__ipv4_csum_fix(struct pkt *p);

/* Field offsets, for pokes and diagnostics. */
#define PKT_IP4_TOT_LEN 2
#define PKT_IP4_ID 4
#define PKT_IP4_FRAG 6
#define PKT_IP4_TTL 8
#define PKT_IP4_CSUM 10
#define PKT_IP4_SADDR 12
#define PKT_IP4_DADDR 16
#define PKT_IP6_PLEN 4
#define PKT_IP6_NEXTHDR 6
#define PKT_IP6_SADDR 8
#define PKT_IP6_DADDR 24
#define PKT_TCP_FLAGS 13
#define PKT_TCP_CSUM 16
#define PKT_UDP_LEN 4
#define PKT_UDP_CSUM 6

/* Human name of the field at byte off of an expected packet, e.g.
 * "IPv4 daddr" or "TCP csum", for failure reports. */
const char *pkt__field_name(const struct pkt *p, size_t off);

/* Internet checksum helpers, exported for tests that verify packets they
 * did not build (e.g. search for a payload with a given checksum). */
__u32 pkt__csum_add(__u32 sum, const void *data, size_t len);
__u16 pkt__csum_fold(__u32 sum);

#endif /* SLUICE_TEST_PKT_H */
