/* SPDX-License-Identifier: MIT */
/*
 * dp.h - table-driven runner for datapath packet tests.
 *
 * Contract: every case runs against a datapath in the state of a fresh
 * load (one sluice__open() per case and program) holding the standard test
 * world below, so no conntrack or counter state leaks between cases. The
 * programs are verified once per config and reused, their maps put back
 * to the fresh state and checked before each case (dp_cache.c).
 * A load is test-sized (dp_load.c): only the program under test is loaded,
 * and the maps indexed by service / backend id hold DP_TEST_MAX_SERVICES /
 * DP_TEST_MAX_BACKENDS entries, snat_fwd / snat_rev DP_TEST_SNAT_MAX;
 * conntrack, ct_new and affinity keep their
 * production sizes.
 * A case is a sequence of steps; each step sends one packet through
 * BPF_PROG_TEST_RUN and checks the verdict, the output bytes, the exact
 * delta of every global counter and drop reason, and the exact delta of
 * every world service's stats (and the sum of its backends' stats).
 * Expected verdicts are written as XDP_*; tc runs expect the mapped
 * TC_ACT_* (PASS->OK, DROP->SHOT, TX->REDIRECT).
 * Each file test_*.c contributes a struct dp_suite; dp_main.c runs them.
 */
#ifndef SLUICE_TEST_DP_H
#define SLUICE_TEST_DP_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <linux/types.h>

#include "lb_load.h"
#include "pkt.h"
#include "sluice.h"
#include "test.h"

/* The test world. Every backend address+port is used by one service only,
 * so backend stats attribute to exactly one service. */
#define CLIENT4 "10.0.0.1"
#define CLIENT4B "10.0.0.2"
#define VIP4 "10.96.0.10"       /* tcp/80 -> BE4:8080, udp/53 -> BE4:5353 */
#define VIP4_EMPTY "10.96.0.20" /* tcp/80 and udp/53 without backends */
#define VIP4_MULTI "10.96.0.30" /* tcp/80 -> BE4_M1..3:8080 */
#define BE4 "10.1.0.1"
#define BE4_M1 "10.1.0.11"
#define BE4_M2 "10.1.0.12"
#define BE4_M3 "10.1.0.13"
#define OTHER4 "10.200.0.1" /* no service anywhere */

#define CLIENT6 "fd00::1"
#define CLIENT6B "fd00::2"
#define VIP6 "fd00:96::10"
#define VIP6_EMPTY "fd00:96::20"
#define VIP6_MULTI "fd00:96::30"
#define BE6 "fd00:1::1"
#define BE6_M1 "fd00:1::11"
#define BE6_M2 "fd00:1::12"
#define BE6_M3 "fd00:1::13"
#define OTHER6 "fd00:200::1"

#define SVC_PORT_TCP 80
#define SVC_PORT_UDP 53
#define BE_PORT_TCP 8080
#define BE_PORT_UDP 5353

extern const __u8 MAC_CLIENT[6];
extern const __u8 MAC_NODE[6];
extern const __u8 MAC_BACKEND[6];

enum dp_svc_id {
	S_NONE,
	S_T4, /* VIP4:80/tcp -> BE4:8080 */
	S_U4, /* VIP4:53/udp -> BE4:5353 */
	S_T6,
	S_U6,
	S_T4_EMPTY, /* VIP4_EMPTY:80/tcp, no backends */
	S_U4_EMPTY,
	S_T6_EMPTY,
	S_U6_EMPTY,
	S_T4_MULTI, /* VIP4_MULTI:80/tcp -> 3 backends */
	S_T6_MULTI,
	S__N,
};

enum dp_prog {
	DP_XDP = 1 << 0,
	DP_TC = 1 << 1,
};

/* Who sent a frame; fixes its MAC addresses. NAT keeps MACs (no FIB). */
enum dp_l2 {
	L2_CLIENT,  /* client -> node (default) */
	L2_BACKEND, /* backend -> node */
	L2_REFUSAL, /* node -> client: MACs of a client frame swapped */
};

/* One packet as a test describes it. Inputs get realistic defaults
 * (TTL/hop limit 57, IPv4 id 0x1234 + DF, TCP window 502) so a rewrite of
 * those fields is visible; .refusal describes the datapath's own answers
 * instead (TTL 64, id 0, DF, window 0). .build replaces everything. */
struct dp_pkt {
	__u8 af; /* 4 or 6 */
	__u8 proto;
	enum dp_l2 l2;
	const char *saddr, *daddr;
	__u16 sport, dport;
	__u8 flags;
	__u32 seq, ack;
	const char *data; /* payload text, may be NULL */
	bool csum0;       /* IPv4 UDP: checksum field 0 */
	bool seed;        /* L4 checksum field as TX offload leaves it (pkt__l4_seed) */
	bool refusal;
	__u8 ttl;                /* TTL / hop limit; 0: the default above */
	const __u8 *smac, *dmac; /* override l2 (forwarded frames) */
	void (*build)(struct pkt *p);
};

/* clang-format off */
#define TCP4(s, d, sp, dp_, fl, ...)                                           \
	(&(const struct dp_pkt){ .af = 4, .proto = IPPROTO_TCP, .saddr = s, .daddr = d, \
				 .sport = sp, .dport = dp_, .flags = fl, __VA_ARGS__ })
#define TCP6(s, d, sp, dp_, fl, ...)                                           \
	(&(const struct dp_pkt){ .af = 6, .proto = IPPROTO_TCP, .saddr = s, .daddr = d, \
				 .sport = sp, .dport = dp_, .flags = fl, __VA_ARGS__ })
#define UDP4(s, d, sp, dp_, ...)                                               \
	(&(const struct dp_pkt){ .af = 4, .proto = IPPROTO_UDP, .saddr = s, .daddr = d, \
				 .sport = sp, .dport = dp_, __VA_ARGS__ })
#define UDP6(s, d, sp, dp_, ...)                                               \
	(&(const struct dp_pkt){ .af = 6, .proto = IPPROTO_UDP, .saddr = s, .daddr = d, \
				 .sport = sp, .dport = dp_, __VA_ARGS__ })
/* clang-format on */
#define CUSTOM(fn) (&(const struct dp_pkt){ .build = fn })

/* How a step moves the stats of its service (and its backends). Every
 * packet that hits a service counts in its packets/bytes (input frame
 * length), refused ones included; backends count what they are sent. */
enum dp_acct {
	ACCT_NONE,
	ACCT_NEW,     /* svc + backend: packets 1, bytes, flows 1 */
	ACCT_PKT,     /* svc + backend: packets 1, bytes */
	ACCT_REFUSED, /* svc: packets 1, bytes, refused 1 */
	ACCT_SEEN,    /* svc: packets 1, bytes (hit, but neither sent nor refused) */
};

struct dp_step {
	const struct dp_pkt *in;
	const struct dp_pkt *out; /* NULL: output must equal the input */
	int verdict;              /* XDP_* */
	__u64 cnt[SLUICE_CNT__MAX];
	__u64 drop[SLUICE_DROP__MAX];
	enum dp_svc_id svc;
	enum dp_acct acct;
};

#define DP_MAX_STEPS 8

struct dp;

struct dp_case {
	const char *name;
	const char *desc;
	unsigned int progs; /* DP_XDP | DP_TC; 0: both */
	__u32 cfg;          /* rodata knobs (SLUICE_CFG_*) */
	/* When set, the case runs in a forked child inside a network
	 * namespace of its own that netns() prepares (routes, neighbours). */
	bool (*netns)(struct dp *d);
	/* Services beyond the world, added after loading. */
	bool (*setup)(struct dp *d);
	struct dp_step steps[DP_MAX_STEPS];
};

/* clang-format off */
#define C(x) [SLUICE_CNT_##x] = 1
#define D(x) [SLUICE_DROP_##x] = 1

#define PASSES(in_) { .in = in_, .verdict = XDP_PASS, .cnt = { C(PASS) } }
#define DROPS(in_, reason)                                                     \
	{ .in = in_, .verdict = XDP_DROP, .drop = { D(reason) } }
#define NEW_FLOW(in_, out_, svc_)                                              \
	{ .in = in_, .out = out_, .verdict = XDP_PASS,                         \
	  .cnt = { C(LB_NEW), C(FIB_PASS) }, .svc = svc_, .acct = ACCT_NEW }
#define EST_FLOW(in_, out_, svc_)                                              \
	{ .in = in_, .out = out_, .verdict = XDP_PASS,                         \
	  .cnt = { C(LB_EST), C(FIB_PASS) }, .svc = svc_, .acct = ACCT_PKT }
#define REV_NAT(in_, out_, svc_)                                               \
	{ .in = in_, .out = out_, .verdict = XDP_PASS,                         \
	  .cnt = { C(REVNAT), C(FIB_PASS) }, .svc = svc_, .acct = ACCT_PKT }
/* The same, for the packet that confirms an unconfirmed flow: the client's
 * ACK after the backend's SYN|ACK, or a UDP flow's first answer. */
#define EST_CONFIRMS(in_, out_, svc_)                                          \
	{ .in = in_, .out = out_, .verdict = XDP_PASS,                         \
	  .cnt = { C(LB_EST), C(FIB_PASS), C(CT_CONFIRMED) }, .svc = svc_,     \
	  .acct = ACCT_PKT }
#define REV_CONFIRMS(in_, out_, svc_)                                          \
	{ .in = in_, .out = out_, .verdict = XDP_PASS,                         \
	  .cnt = { C(REVNAT), C(FIB_PASS), C(CT_CONFIRMED) }, .svc = svc_,     \
	  .acct = ACCT_PKT }
/* A TCP RST or SYN|ACK matching no flow: Maglev pick, no state. */
#define NO_STATE(in_, out_, svc_)                                              \
	{ .in = in_, .out = out_, .verdict = XDP_PASS,                         \
	  .cnt = { C(LB_NO_STATE), C(FIB_PASS) }, .svc = svc_, .acct = ACCT_PKT }
/* A TCP ACK or data matching no flow: Maglev pick, tracked in ct_new. */
#define PICKS_UP(in_, out_, svc_)                                              \
	{ .in = in_, .out = out_, .verdict = XDP_PASS,                         \
	  .cnt = { C(LB_PICKUP), C(FIB_PASS) }, .svc = svc_, .acct = ACCT_PKT }
#define REFUSES(in_, out_, svc_)                                               \
	{ .in = in_, .out = out_, .verdict = XDP_TX, .cnt = { C(REFUSED) },    \
	  .svc = svc_, .acct = ACCT_REFUSED }
/* clang-format on */

struct dp_suite {
	const char *name;
	const struct dp_case *cases;
	size_t ncases;
	const struct test *tests; /* hand-written cases (loops, threads) */
	size_t ntests;
};

extern const struct dp_suite dp_suite_lb;
extern const struct dp_suite dp_suite_lb_flows;
extern const struct dp_suite dp_suite_trunc;
extern const struct dp_suite dp_suite_pass;
extern const struct dp_suite dp_suite_malformed;
extern const struct dp_suite dp_suite_refuse;
extern const struct dp_suite dp_suite_updates;
extern const struct dp_suite dp_suite_fwd;
extern const struct dp_suite dp_suite_ct_flood;
extern const struct dp_suite dp_suite_health;
extern const struct dp_suite dp_suite_affinity;
extern const struct dp_suite dp_suite_src_range;
extern const struct dp_suite dp_suite_policy;
extern const struct dp_suite dp_suite_policy_hash;
extern const struct dp_suite dp_suite_snat;
extern const struct dp_suite dp_suite_drop_empty;
extern const struct dp_suite dp_suite_explain;
extern const struct dp_suite dp_suite_reply_filter;
extern const struct dp_suite dp_suite_snat_node;
extern const struct dp_suite dp_suite_sizes;
extern const struct dp_suite dp_suite_csum;
extern const struct dp_suite dp_suite_cache;

/* A loaded datapath, one program under test. */
struct dp {
	struct sluice *s;
	enum dp_prog prog;
	int prog_fd;
	const char *tag; /* "xdp" / "tc", prefixes failure messages */
	void *cached;    /* the load of dp_cache.c it holds, or NULL */
};

struct dp_be {
	const char *addr;
	__u16 port;
	__u16 weight;
};

/* Sizes of the id-indexed maps in every test load (dp_load.c); a case
 * must create fewer services / backends than these at any one time. */
#define DP_TEST_MAX_SERVICES TEST_LB_MAX_SERVICES
#define DP_TEST_MAX_BACKENDS TEST_LB_MAX_BACKENDS
/* Size of snat_fwd and snat_rev in every test load: more than the 4536
 * ports of SLUICE_SNAT_PORT_MIN..MAX, so filling them evicts nothing. */
#define DP_TEST_SNAT_MAX TEST_LB_SNAT_MAX

/* Loads of lb.bpf.o by this thread load only these programs (DP_*);
 * 0: all of them. */
void dp__load_only(unsigned int progs);

/* dp_cache.c: the verified load of config cfg, put back to its pristine
 * state and opened through pins, or NULL (then load afresh). Hand *token
 * to dp__cache_release() after sluice__close(). */
struct sluice *dp__cache_open(__u32 cfg, void **token);
void dp__cache_release(void *token);
/* While on, this thread's opens load afresh (the reference in test_cache.c). */
void dp__cache_bypass(bool on);
/* 0 when every map the programs of a use holds what b's holds (the Maglev
 * outer map and ring buffers aside), else -EBADMSG or an errno; what
 * names the map that differs. */
int dp__cache_diff(struct sluice *a, struct sluice *b, char *what, size_t len);

/* An access policy (#15) as rule text (sluice_policy_rule__parse()). */
#define DP_POL_RULES 8
struct dp_pol {
	const char *allow[DP_POL_RULES];
	const char *deny[DP_POL_RULES];
	bool refuse;
};
/* Re-sets a world service (one backend) with policy p (test_policy.c). */
bool dp__with_policy(struct dp *d, const char *vip, __u16 port, __u8 proto, const char *be,
		     __u16 be_port, const struct dp_pol *p);

/* Loads the datapath and, when world is true, the standard services. */
bool dp__open(struct dp *d, enum dp_prog prog, bool world);
/* Same with rodata knobs (SLUICE_CFG_*). */
bool dp__open_cfg(struct dp *d, enum dp_prog prog, bool world, __u32 cfg);
void dp__close(struct dp *d);
/* Creates or replaces a service (n == 0: no backends). */
int dp__service(struct dp *d, const char *vip, __u16 port, __u8 proto, const struct dp_be *be,
		int n);

/* One BPF_PROG_TEST_RUN. Returns 0 or a negative errno; *verdict is the
 * raw program return value, *out the output frame. */
int dp__run(struct dp *d, const struct pkt *in, struct pkt *out, int *verdict);
/* dp__run() that reports a failed run (with the frame length and errno). */
bool dp__send(struct dp *d, const struct pkt *in, struct pkt *out, int *verdict);

/*
 * For tests that change maps while a worker thread sends: true once *done
 * (packets the worker finished, counted after each run) reaches n, within
 * 10 s. A changer that waits for started + 1 after each change knows one
 * packet begun after the change has seen it, whatever the scheduler does.
 */
bool dp__wait_done(const long *done, long n);
/* XDP_* verdict as the program under test returns it. */
int dp__verdict_for(const struct dp *d, int xdp_verdict);
const char *dp__verdict_name(const struct dp *d, int verdict);

void dp__build(struct pkt *p, const struct dp_pkt *spec);

/* Failure report with the program tag; marks the test failed. */
void dp__fail(const struct dp *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets the context printed with failures ("flow 7", "len 33"); "" clears. */
void dp__at(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Byte-by-byte diff of got against expected, naming the first field. */
void dp__hexdiff(const struct pkt *exp, const __u8 *got, size_t glen);
/* Compares output to expected; reports a diff on mismatch. */
bool dp__expect_bytes(const struct dp *d, const char *what, const struct pkt *got,
		      const struct pkt *exp);

/* Index of the backend in addrs[] (all on port) whose DNAT of spec equals
 * got byte for byte, or -1. Thread-safe. */
int dp__which(const struct pkt *got, const struct dp_pkt *spec, const char *const *addrs, int n,
	      __u16 port);

/* Counter snapshots for exact deltas. */
struct dp_counts {
	__u64 cnt[SLUICE_CNT__MAX];
	__u64 drop[SLUICE_DROP__MAX];
};

bool dp__counts(struct dp *d, struct dp_counts *c);
/* Checks after - before == the expected arrays, exactly, for every index. */
bool dp__expect_counts(const struct dp *d, const char *what, const struct dp_counts *before,
		       const struct dp_counts *after, const __u64 *cnt, const __u64 *drop);

/*
 * Frames BPF_PROG_TEST_RUN refuses (any frame < 14 bytes; for tc also an
 * IPv4 frame < 34 and an IPv6 frame < 54 bytes) reach the programs through
 * a TUN device instead: an L3 device, so the program sees exactly the bytes
 * written. dp__in_child() runs fn in a forked child; dp__tun_open() (child
 * only) moves it into a new network namespace of its own, creates the TUN
 * device there and attaches the program under test. Everything vanishes
 * with the child. Verdicts are not observable this way, counters are.
 */
struct dp_tun {
	int fd;
	int ifindex;
};

bool dp__needs_tun(const struct dp *d, const struct pkt *in);
bool dp__tun_open(struct dp *d, struct dp_tun *t);
/* Writes one frame and waits until the datapath accounted for it. */
bool dp__tun_send(struct dp *d, struct dp_tun *t, const struct pkt *in,
		  const struct dp_counts *before, struct dp_counts *after);
void dp__tun_close(struct dp_tun *t);
void dp__in_child(struct dp *d, int (*fn)(struct dp *d, void *arg), void *arg);

/* Runs the steps of one case against an open datapath. */
bool dp__run_steps(struct dp *d, const struct dp_case *c);
/* Runs a case through each selected program with a fresh load each. */
void dp__run_case(const struct dp_case *c);

/* Runs fn once per program, each time on a fresh world. */
void dp__each_prog(unsigned int progs, void (*fn)(struct dp *d));

/* Hand-written flows (dp_step.c). One packet: checks the verdict (XDP_*),
 * the exact counter deltas and, when exp is set, the output bytes. */
bool dp__step(struct dp *d, const struct dp_pkt *in, const struct dp_pkt *exp, int verdict,
	      const __u64 *cnt, const __u64 *drop);
/* ORs SLUICE_SVC_F_* flags into a service, in the services map itself. */
bool dp__svc_flags(struct dp *d, const char *vip, __u16 port, __u8 proto, __u16 flags);

/* Text address to library form. */
struct sluice_addr dp__addr(const char *text);

#endif /* SLUICE_TEST_DP_H */
