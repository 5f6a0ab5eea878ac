// SPDX-License-Identifier: MIT
/*
 * policybench.c - new-flow cost of the access policy (#15) in xdp_lb,
 * through BPF_PROG_TEST_RUN, as a same-run ratio: the same SYNs (a new
 * 5-tuple each) with no policy, and with 1k allow prefixes on the service
 * plus 100k node-wide deny prefixes (the client matches an allow /24 and
 * no deny prefix, so the flow is balanced after every lookup the policy
 * makes: policy_nhost (hosts, then one lookup per node prefix length, or
 * the node trie), and the service's one length in policy_hash, or its
 * trie on a build without the hash).
 *
 * Contract: loads the datapath through sluice__open() (nothing pinned or
 * attached), one TCP service with 3 backends. Rounds alternate the two
 * configurations (the node list and the service's rules are written and
 * removed between them); each round sends N SYNs with repeat=1 and sums
 * the kernel's per-run durations. Prints the median ns/flow of each and
 * their ratio (no policy / policy: >= 0.95 means the policy costs at most
 * ~5%), and the same ratio of the rounds' median runs (robust to a run
 * preempted by another task). Every SYN must be balanced (XDP_PASS with LB_NEW counted), else
 * exit 1. A first round of each, not counted, fills the conntrack LRU
 * (ct_new holds ~32k flows): otherwise the first no-policy round alone
 * inserts without evicting and skews the medians. Usage: policybench
 * [ROUNDS [FLOWS [both|trie|trie8|dense|spread|svc|node|deny|deny-svc]]] (defaults
 * 7, 20000, both; trie: the service's prefixes in 8 lengths, more than
 * policy_hash looks up (expanded into 4 by the writer, its trie before
 * that), trie8: the node list's too, see fill_rules(); spread: a service
 * shape no bounded expansion takes (its trie, spread_rule()); dense: only the
 * node list, /24s on every other /24 from 100.64.0.0 with the client in a
 * gap, where a trie walk goes all the way down; svc /
 * node write only the service's or only the node list's prefixes; deny: see deny_bench(), FLOWS is its repeat count; deny-svc
 * the same without the node list). A 2-vCPU
 * machine shared with other work: indications, not results.
 *
 * policybench --pin DIR on|off [BACKENDS] instead writes (on) or removes
 * (off) the same rules in the maps pinned under DIR by svcload: service 0
 * of plan.h (10.96.0.1:80, BACKENDS backends, default 10) and the node
 * list; for the veth-path figure of scripts/bench/b8_policy.sh.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf.h>

#include "sluice.h"
#include "plan.h"

#define PKT_LEN (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr))
#define NODE_PREFIXES 100000
#define SVC_PREFIXES 1000

static unsigned char pkt[PKT_LEN];

static void build_syn(__u16 sport, __u32 saddr)
{
	struct ethhdr *eth = (void *)pkt;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *th = (void *)(ip + 1);

	memset(pkt, 0, sizeof(pkt));
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->tot_len = htons(sizeof(*ip) + sizeof(*th));
	ip->saddr = saddr;
	inet_pton(AF_INET, "10.96.0.10", &ip->daddr);
	th->source = htons(sport);
	th->dest = htons(80);
	th->doff = 5;
	th->syn = 1;
	th->seq = htonl(1);
}

/* which rules "on" writes: both (default), the service's only, the node list's only */
static bool with_svc = true, with_node = true;

static int set_policy(struct sluice *s, struct sluice_service_spec *spec, bool on,
		      struct sluice_policy_rule *allow, struct sluice_cidr *node)
{
	spec->nallow = on && with_svc ? SVC_PREFIXES : 0;
	spec->allow = allow;
	return sluice__service_set(s, spec) ?:
		       sluice__policy_node_set(s, node, on && with_node ? NODE_PREFIXES : 0);
}

/* Where the service's rules are looked up, in words (its entry's flags). */
static const char *svc_path(struct sluice *s, const struct sluice_service_spec *spec, char *buf,
			    size_t len)
{
	struct sluice_svc_key k = { .port = htons(spec->port),
				    .proto = spec->proto,
				    .family = spec->vip.family };
	struct sluice_svc svc;

	memcpy(k.addr, spec->vip.addr, sizeof(k.addr));
	if (bpf_map_lookup_elem(sluice__map_fd(s, "services"), &k, &svc))
		return "no service";
	if (!(svc.flags & SLUICE_SVC_F_POLICY))
		return "no rules";
	if (!(svc.flags & SLUICE_SVC_F_POLICY_HASH))
		return "its trie";
	snprintf(buf, len, "policy_hash, lengths /%u /%u /%u /%u", (svc.policy_lens & 0xff) - 1,
		 (svc.policy_lens >> 8 & 0xff) - 1, (svc.policy_lens >> 16 & 0xff) - 1,
		 (svc.policy_lens >> 24 & 0xff) - 1);
	return buf;
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* ns per new flow of one round (the mean); -1 on error. *med: the median
 * run of the round, which a run preempted by another task (a shared
 * machine: one 4 ms slice is 10% of a 20000-flow round) cannot move. */
static double round_ns(struct sluice *s, int fd, __u32 flows, __u32 *base, __u32 saddr, double *med)
{
	static __u32 *runs;
	static __u32 nruns;
	unsigned char out[PKT_LEN];
	__u64 total = 0, before[SLUICE_CNT__MAX], after[SLUICE_CNT__MAX];

	if (nruns < flows) {
		free(runs);
		runs = calloc(flows, sizeof(*runs));
		if (!runs)
			return -1;
		nruns = flows;
	}

	sluice__counters(s, before);
	for (__u32 i = 0; i < flows; i++, (*base)++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = PKT_LEN,
			    .data_out = out, .data_size_out = PKT_LEN, .repeat = 1);

		build_syn((__u16)(1024 + *base % 60000), saddr);
		((struct iphdr *)(pkt + ETH_HLEN))->id = htons((__u16)*base);
		if (bpf_prog_test_run_opts(fd, &o) || o.retval != XDP_PASS)
			return -1;
		total += o.duration;
		runs[i] = o.duration;
	}
	qsort(runs, flows, sizeof(*runs), cmp_u32);
	*med = runs[flows / 2];
	sluice__counters(s, after);
	/* a 5-tuple seen again (after 60000 ports) is a SYN of a known flow */
	if (after[SLUICE_CNT_LB_NEW] - before[SLUICE_CNT_LB_NEW] + after[SLUICE_CNT_LB_EST] -
		    before[SLUICE_CNT_LB_EST] !=
	    flows)
		return -1;
	return (double)total / flows;
}

/* "trie": the service's rules in more lengths than policy_hash looks up
 * (sluice_policy__expand() folds them into 4: 1500 entries); "trie8" the
 * node list's too (2: the node trie). */
static int trie_shapes;

/* The rules of both modes: 10.(i/256).(i%256).0/24 allowed on the
 * service, 100.64.0.0 + 7i /32 denied node-wide (one length each: the
 * service's policy_hash and the node's policy_nhost answer). With
 * trie_shapes: the service's prefixes in 8 lengths, /17-/24, one in each
 * /16 from 11.0.0.0 (more lengths than policy_hash looks up: expanded to
 * /18 /20 /22 /24), and the node's /24s from 100.64.0.0 (one length: copied into
 * policy_nhost). trie_shapes 2 ("trie8"): the node's prefixes in 8
 * lengths, /24-/31, one in each /24 from 100.64.0.0 (more lengths than
 * policy_nhost's copies take: the node trie). */
/* "spread" (4): a service shape no bounded expansion takes, so its trie
 * answers: 28 /8s from 11.0.0.0, 470 /16s from 41.0.0.0, 470 /20s from
 * 43.0.0.0, 28 /24s from 44.0.0.0, 4 /32s from 45.0.0.0. Folding any
 * length into its neighbour costs more than the 7000 extra entries the
 * writer allows 1000 prefixes (470 x 15 for a 4-bit gap, 28 x 255 for an
 * 8-bit one). */
static void spread_rule(struct sluice_cidr *c, __u32 i)
{
	static const struct {
		__u32 n, base;
		__u8 len;
	} part[] = { { 28, 0x0b000000, 8 },
		     { 470, 0x29000000, 16 },
		     { 470, 0x2b000000, 20 },
		     { 28, 0x2c000000, 24 },
		     { 4, 0x2d000000, 32 } };

	for (__u32 p = 0; p < sizeof(part) / sizeof(part[0]); p++) {
		if (i >= part[p].n) {
			i -= part[p].n;
			continue;
		}
		c->addr.addr[0] = htonl(part[p].base + (i << (32 - part[p].len)));
		c->prefixlen = part[p].len;
		return;
	}
}

static void fill_rules(struct sluice_policy_rule *allow, struct sluice_cidr *node)
{
	for (__u32 i = 0; i < SVC_PREFIXES; i++) {
		allow[i].cidr.addr.family = SLUICE_AF_INET;
		allow[i].cidr.addr.addr[0] = htonl(0x0a000000 | i << 8);
		allow[i].cidr.prefixlen = 24;
		allow[i].port_hi = 65535;
		if (trie_shapes) {
			allow[i].cidr.addr.addr[0] = htonl(0x0b000000 + (i << 16));
			allow[i].cidr.prefixlen = (__u8)(17 + i % 8);
		}
		if (trie_shapes == 4)
			spread_rule(&allow[i].cidr, i);
	}
	for (__u32 i = 0; i < NODE_PREFIXES; i++) {
		node[i].addr.family = SLUICE_AF_INET;
		node[i].addr.addr[0] = htonl(0x64400000 + i * 7);
		node[i].prefixlen = 32;
		if (trie_shapes) {
			node[i].addr.addr[0] = htonl(0x64400000 + (i << 8));
			node[i].prefixlen = trie_shapes == 2 ? (__u8)(24 + i % 8) : 24;
		}
		if (trie_shapes == 3) /* dense: every other /24 */
			node[i].addr.addr[0] = htonl(0x64400000 + (i << 9));
	}
}

/* --pin DIR on|off [BACKENDS]: the policy on svcload's service 0. */
static int pinned(const char *dir, const char *mode, int nbe, struct sluice_policy_rule *allow,
		  struct sluice_cidr *node)
{
	struct sluice_backend_spec be[PLAN_MAX_BACKENDS] = {};
	struct sluice_service_spec spec = {
		.port = PLAN_SVC_PORT, .proto = IPPROTO_TCP, .nbackends = (__u32)nbe, .backends = be
	};
	struct sluice_opts opts = { .pin_dir = dir };
	struct sluice *s = NULL;
	int err;

	if (nbe < 1 || nbe > (int)PLAN_MAX_BACKENDS || (strcmp(mode, "on") && strcmp(mode, "off")))
		return 2;
	spec.vip.family = SLUICE_AF_INET;
	spec.vip.addr[0] = htonl(plan__vip(0));
	for (int j = 0; j < nbe; j++) {
		be[j].addr.family = SLUICE_AF_INET;
		be[j].addr.addr[0] = htonl(plan__backend(0, (unsigned int)j));
		be[j].port = PLAN_BE_PORT;
		be[j].weight = 1;
	}
	fill_rules(allow, node);
	err = sluice__open(&s, &opts) ?: set_policy(s, &spec, !strcmp(mode, "on"), allow, node);
	if (err)
		fprintf(stderr, "policybench: %s: %s\n", dir, sluice__errmsg());
	sluice__close(s);
	return err ? 1 : 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * The deny mode: the 1k prefixes as the service's denyFrom, the 100k
 * node prefixes as in `both`, and one SYN from a client in a denied /24
 * run @repeat times per BPF_PROG_TEST_RUN (a denied flow leaves no
 * state, so every run makes the whole policy check: policy_nhost, the
 * node trie, the service's entries, and the drop). The kernel's mean per
 * run over many runs is what the policy lookups cost plus a fixed path,
 * with little of a shared machine's noise; comparing builds, not a ratio.
 */
static int deny_bench(struct sluice *s, int fd, struct sluice_service_spec *spec,
		      struct sluice_policy_rule *rules, struct sluice_cidr *node, int rounds,
		      __u32 repeat, __u32 saddr)
{
	unsigned char out[PKT_LEN];
	double ns[64];

	spec->ndeny = SVC_PREFIXES;
	spec->deny = rules;
	if (sluice__service_set(s, spec) ||
	    sluice__policy_node_set(s, node, with_node ? NODE_PREFIXES : 0)) {
		fprintf(stderr, "policybench: %s\n", sluice__errmsg());
		return 1;
	}
	build_syn(1024, saddr);
	for (int r = -1; r < rounds; r++) { /* -1: the warm-up */
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = PKT_LEN,
			    .data_out = out, .data_size_out = PKT_LEN, .repeat = repeat);

		if (bpf_prog_test_run_opts(fd, &o) || o.retval != XDP_DROP) {
			fprintf(stderr, "policybench: the denied SYN was not dropped\n");
			return 1;
		}
		ns[r < 0 ? 0 : r] = o.duration;
	}
	qsort(ns, rounds, sizeof(double), cmp_d);
	printf("denied SYN, 1k service deny prefixes%s: %.0f ns/run "
	       "(median of %d x %u runs, min-max %.0f-%.0f)\n",
	       with_node ? " + 100k node prefixes" : "", ns[rounds / 2], rounds, repeat, ns[0],
	       ns[rounds - 1]);
	return 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 7, fd;
	__u32 flows = argc > 2 ? (__u32)atoi(argv[2]) : 20000, base = 0, saddr;
	struct sluice_backend_spec be[3] = {};
	struct sluice_service_spec spec = {
		.port = 80, .proto = IPPROTO_TCP, .nbackends = 3, .backends = be
	};
	struct sluice_policy_rule *allow = calloc(SVC_PREFIXES, sizeof(*allow));
	struct sluice_cidr *node = calloc(NODE_PREFIXES, sizeof(*node));
	double off[64], on[64], moff[64], mon[64];
	struct sluice_opts opts = {};
	struct sluice *s = NULL;
	char path[64];
	cpu_set_t cpu;

	if (!allow || !node)
		return 2;
	if (argc > 3 && !strcmp(argv[1], "--pin"))
		return pinned(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 10, allow, node);
	if (argc > 3) {
		trie_shapes = !strcmp(argv[3], "trie")   ? 1 :
			      !strcmp(argv[3], "trie8")  ? 2 :
			      !strcmp(argv[3], "dense")  ? 3 :
			      !strcmp(argv[3], "spread") ? 4 :
							   0;
		with_svc = strcmp(argv[3], "node") != 0 && trie_shapes != 3;
		with_node = strcmp(argv[3], "svc") != 0 && strcmp(argv[3], "deny-svc") != 0;
	}
	if (rounds < 1 || rounds > 64 || !flows)
		return 2;
	CPU_ZERO(&cpu);
	CPU_SET(0, &cpu);
	sched_setaffinity(0, sizeof(cpu), &cpu);
	if (sluice__open(&s, &opts)) {
		fprintf(stderr, "policybench: %s\n", sluice__errmsg());
		return 1;
	}
	sluice_addr__parse(&spec.vip, "10.96.0.10");
	for (int i = 0; i < 3; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.1.0.%d", i + 1);
		sluice_addr__parse(&be[i].addr, a);
		be[i].port = 8080;
		be[i].weight = 1;
	}
	fill_rules(allow, node);
	/* in allow 10.0.5.0/24, or (trie) 11.5.0.0/22, or (dense) in the
	 * uncovered /24 between two node /24s: a walk to the trie's bottom */
	inet_pton(AF_INET,
		  trie_shapes == 3 ? "100.64.9.9" :
		  trie_shapes == 4 ? "43.1.16.9" :
		  trie_shapes      ? "11.5.0.9" :
				     "10.0.5.9",
		  &saddr);
	fd = sluice__prog_fd(s, SLUICE_PROG_XDP);
	if (argc > 3 && !strncmp(argv[3], "deny", 4))
		return deny_bench(s, fd, &spec, allow, node, rounds, flows, saddr);
	for (int r = -1; r < rounds; r++) { /* -1: the warm-up, overwritten */
		if (set_policy(s, &spec, false, allow, node) ||
		    (off[r < 0 ? 0 : r] =
			     round_ns(s, fd, flows, &base, saddr, &moff[r < 0 ? 0 : r])) < 0 ||
		    set_policy(s, &spec, true, allow, node) ||
		    (on[r < 0 ? 0 : r] =
			     round_ns(s, fd, flows, &base, saddr, &mon[r < 0 ? 0 : r])) < 0) {
			fprintf(stderr, "policybench: round %d failed: %s\n", r, sluice__errmsg());
			return 1;
		}
	}
	if (with_svc)
		printf("the service's rules: %s\n", svc_path(s, &spec, path, sizeof(path)));
	qsort(off, rounds, sizeof(double), cmp_d);
	qsort(on, rounds, sizeof(double), cmp_d);
	printf("| new flow, xdp_lb | ns/flow (median of %d x %u) | min-max |\n", rounds, flows);
	printf("|---|---|---|\n");
	printf("| no policy | %.1f | %.1f-%.1f |\n", off[rounds / 2], off[0], off[rounds - 1]);
	printf("| %s | %.1f | %.1f-%.1f |\n",
	       trie_shapes == 4      ? "1k service /8-/32, spread (its trie) + 100k node /24" :
	       trie_shapes == 3      ? "100k node /24s, every other one, client between" :
	       trie_shapes == 2      ? "1k service /17-/24 + 100k node /24-/31 (node trie)" :
	       trie_shapes           ? "1k service /17-/24 (expanded) + 100k node /24 (hash)" :
	       with_svc && with_node ? "1k service prefixes + 100k node prefixes" :
	       with_svc              ? "1k service prefixes" :
				       "100k node prefixes",
	       on[rounds / 2], on[0], on[rounds - 1]);
	printf("ratio (no policy / policy): %.3f\n", off[rounds / 2] / on[rounds / 2]);
	qsort(moff, rounds, sizeof(double), cmp_d);
	qsort(mon, rounds, sizeof(double), cmp_d);
	printf("per-flow medians (median of rounds): no policy %.0f ns, policy %.0f ns, "
	       "ratio %.3f\n",
	       moff[rounds / 2], mon[rounds / 2], moff[rounds / 2] / mon[rounds / 2]);
	sluice__close(s);
	free(allow);
	free(node);
	return 0;
}
