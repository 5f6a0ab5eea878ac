// SPDX-License-Identifier: MIT
/*
 * pktbench.c - ns/packet of the Sluice XDP program through BPF_PROG_TEST_RUN,
 * next to the baselines of bpf/bench/bench.bpf.c (an empty program, one hash
 * lookup + counter, a new flow's two conntrack inserts) run the same way.
 *
 * Contract: loads xdp_lb through sluice__open() (nothing pinned, nothing
 * attached), configures one TCP service with 3 backends and prints one
 * Markdown table row per figure: median ns/packet over the rounds, the
 * min-max spread and the net cost (median minus the median of xdp_empty
 * measured with the same method). Every sample is checked against the
 * datapath counters (e.g. LB_EST grew by exactly the packets sent) so a
 * figure never silently measures a different path than it names; a
 * mismatch is an error (exit 1).
 *
 * Two methods, because of what test_run does with a packet:
 * - repeat: one BPF_PROG_TEST_RUN with repeat=R. The kernel runs the
 *   program R times on the SAME buffer, so a rewrite made by run i is the
 *   input of run i+1 (data_in is only copied once). A DNATed packet is no
 *   longer addressed to the VIP, so "established flow, repeat R" measures
 *   a real DNAT only if the rewrite is a no-op: the flow used for it is one
 *   whose backend is the VIP:port itself. The library rightly refuses such
 *   a backend, so after sluice__service_set() the bench rewrites one of the
 *   3 backends' entry in the backends map to VIP:port. The per-packet work
 *   is the same as for any backend; the written bytes just do not change.
 *   Time is the kernel's figure: whole ns per packet, truncated. The wall
 *   clock is no use here: with repeat > 1 the kernel swaps the program into
 *   the XDP dispatcher and back around the loop, which costs tens of ms.
 * - per-run: N runs with repeat=1, each on a fresh copy of the input, the
 *   kernel-reported durations summed / N. Needed for new flows (each packet
 *   a new 5-tuple); each duration includes the timer's own overhead, which
 *   xdp_empty measured the same way cancels.
 * The process is pinned to one CPU; figures are interleaved within each
 * round so drift hits all of them alike.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sluice.h"
#include "bench.skel.h"

#define PKT_LEN (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr))
#define MAX_ROUNDS 101

/* Addresses of the benchmark topology (host order, converted when used). */
#define VIP_ADDR 0x0a000064 /* 10.0.0.100 */
#define VIP_PORT 80
#define OTHER_ADDR 0x0a0000c8   /* 10.0.0.200: not a VIP */
#define BACKEND_ADDR 0x0a010000 /* 10.1.0.x */
#define BACKEND_PORT 8080
#define CLIENT_ADDR 0xc0a80101 /* 192.168.1.1: established flows */
#define NEWFLOW_NET 0xac100000 /* 172.16.0.0/12: one new flow per packet */
#define NEWFLOW_PORTS 50000
/* The same service with client-IP session affinity (#14), own backends. */
#define VIP_AFF_ADDR 0x0a000065     /* 10.0.0.101 */
#define BACKEND_AFF_ADDR 0x0a010010 /* 10.1.0.1x */

enum bench_prog {
	PROG_EMPTY,
	PROG_LOOKUP,
	PROG_CT,
	PROG_LB,
	PROG__MAX,
};

/* Slots of bench_counts, as enum bench_slot in bpf/bench/bench.bpf.c. */
#define BENCH_HIT 0
#define BENCH_SEQ 2

enum bench_method {
	M_REPEAT,
	M_PERRUN,
};

enum bench_pkt {
	PKT_EST_SELF,       /* established flow whose backend is VIP:port: DNAT is a no-op */
	PKT_EST,            /* established flow to a real backend */
	PKT_OTHER,          /* TCP to an address that is no VIP */
	PKT_NEW,            /* a fresh 5-tuple every packet */
	PKT_NEW_AFF,        /* the same, to the affinity service: the client (source
		       * address) is known, its entry is used (a hit) */
	PKT_NEW_AFF_CLIENT, /* ... from a new client every packet: an entry
			     * written (LRU full: an eviction) */
};

struct figure {
	const char *id;   /* JSON key */
	const char *name; /* table row */
	enum bench_prog prog;
	enum bench_method method;
	enum bench_pkt pkt;
	int expect; /* SLUICE_CNT_* or, for bench programs, BENCH_* slot that
		     * grows by one per packet; -1: none */
	int nsamples;
	double samples[MAX_ROUNDS];
	double med, min, max, net;
};

struct bench {
	struct sluice *s;
	struct bench_bpf *skel;
	int prog_fd[PROG__MAX];
	__u8 pkt[3][PKT_LEN]; /* PKT_EST_SELF, PKT_EST, PKT_OTHER */
	__u8 newpkt[PKT_LEN];
	__u64 next_flow; /* index of the next new-flow 5-tuple */
	__u32 ct_max;
	__u32 repeat;
	__u32 flows;
	__u32 rounds;
	int cpu;
	bool repeat_reuses; /* test_run feeds run i's output to run i+1 */
};

#define FIGURE(_id, _name, _prog, _method, _pkt, _expect)                                \
	{                                                                                \
		.id = _id, .name = _name, .prog = _prog, .method = _method, .pkt = _pkt, \
		.expect = _expect,                                                       \
	}

/* Each method has its own xdp_empty row, the baseline of that method. */
static struct figure figures[] = {
	FIGURE("empty_repeat", "xdp_empty", PROG_EMPTY, M_REPEAT, PKT_EST_SELF, -1),
	FIGURE("lookup_repeat", "xdp_lookup (hash hit + per-CPU add)", PROG_LOOKUP, M_REPEAT,
	       PKT_EST_SELF, BENCH_HIT),
	FIGURE("lb_other_repeat", "xdp_lb non-service packet (pass)", PROG_LB, M_REPEAT, PKT_OTHER,
	       SLUICE_CNT_PASS),
	FIGURE("lb_est_repeat", "xdp_lb established flow (DNAT)", PROG_LB, M_REPEAT, PKT_EST_SELF,
	       SLUICE_CNT_LB_EST),
	FIGURE("empty_perrun", "xdp_empty", PROG_EMPTY, M_PERRUN, PKT_EST, -1),
	FIGURE("lb_est_perrun", "xdp_lb established flow (DNAT)", PROG_LB, M_PERRUN, PKT_EST,
	       SLUICE_CNT_LB_EST),
	FIGURE("ct_insert_perrun", "xdp_ct_insert (a new flow's 2 CT inserts, CT full)", PROG_CT,
	       M_PERRUN, PKT_EST, BENCH_SEQ),
	FIGURE("lb_new_perrun", "xdp_lb new flow (Maglev + 2 CT inserts, CT full)", PROG_LB,
	       M_PERRUN, PKT_NEW, SLUICE_CNT_LB_NEW),
	FIGURE("lb_new_aff_perrun", "xdp_lb new flow, session affinity, known client (entry hit)",
	       PROG_LB, M_PERRUN, PKT_NEW_AFF, SLUICE_CNT_LB_NEW),
	FIGURE("lb_new_aff_client_perrun",
	       "xdp_lb new flow, session affinity, new client (entry written)", PROG_LB, M_PERRUN,
	       PKT_NEW_AFF_CLIENT, SLUICE_CNT_LB_NEW),
};
#define NFIGURES ((int)(sizeof(figures) / sizeof(figures[0])))

static void bench__err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bench__err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "Error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static bool verbose;

static int bench__libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || (level == LIBBPF_INFO && !verbose))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static __u16 csum_fold(__u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __u32 csum_add(__u32 sum, const void *buf, size_t len)
{
	const __u8 *p = buf;

	for (; len > 1; p += 2, len -= 2)
		sum += (p[0] << 8) | p[1];
	if (len)
		sum += p[0] << 8;
	return sum;
}

/* A 54-byte Ethernet/IPv4/TCP frame with correct checksums; addresses and
 * ports in host order. */
static void pkt__build(__u8 *buf, __u32 saddr, __u32 daddr, __u16 sport, __u16 dport, __u8 flags)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct tcphdr *tcp = (struct tcphdr *)(ip + 1);
	__u8 pseudo[12];
	__u32 sum;

	memset(buf, 0, PKT_LEN);
	memcpy(eth->h_dest, "\x02\x00\x00\x00\x00\x01", ETH_ALEN);
	memcpy(eth->h_source, "\x02\x00\x00\x00\x00\x02", ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);

	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons(sizeof(*ip) + sizeof(*tcp));
	ip->id = htons(1);
	ip->frag_off = htons(0x4000); /* DF */
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->saddr = htonl(saddr);
	ip->daddr = htonl(daddr);
	ip->check = htons(csum_fold(csum_add(0, ip, sizeof(*ip))));

	tcp->source = htons(sport);
	tcp->dest = htons(dport);
	tcp->seq = htonl(1000);
	tcp->ack_seq = htonl((flags & 0x10) ? 2000 : 0);
	tcp->doff = 5;
	((__u8 *)tcp)[13] = flags;
	tcp->window = htons(65535);

	memcpy(pseudo, &ip->saddr, 4);
	memcpy(pseudo + 4, &ip->daddr, 4);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	pseudo[10] = 0;
	pseudo[11] = sizeof(*tcp);
	sum = csum_add(0, pseudo, sizeof(pseudo));
	sum = csum_add(sum, tcp, sizeof(*tcp));
	tcp->check = htons(csum_fold(sum));
}

/* The n-th new flow of kind k: a SYN from its own source address and port
 * (a new address every NEWFLOW_PORTS flows, or every flow for a new client). */
static void pkt__build_new(__u8 *buf, __u64 n, enum bench_pkt k)
{
	__u32 src = NEWFLOW_NET + (__u32)(k == PKT_NEW_AFF_CLIENT ? n : n / NEWFLOW_PORTS);

	pkt__build(buf, src, k == PKT_NEW ? VIP_ADDR : VIP_AFF_ADDR, 10000 + n % NEWFLOW_PORTS,
		   VIP_PORT, 0x02);
}

/* One test run; out (may be NULL) receives the output frame. */
static int bench__run(int fd, const void *pkt, __u32 repeat, void *out, __u32 *retval,
		      __u32 *duration)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = PKT_LEN,
		    .data_out = out, .data_size_out = out ? PKT_LEN : 0, .repeat = repeat);
	int err;

	err = bpf_prog_test_run_opts(fd, &opts);
	if (err) {
		err = -errno;
		bench__err("BPF_PROG_TEST_RUN: %s", strerror(errno));
		return err;
	}
	*retval = opts.retval;
	if (duration)
		*duration = opts.duration;
	return 0;
}

static int bench__counters(struct bench *b, __u64 out[SLUICE_CNT__MAX])
{
	int err = sluice__counters(b->s, out);

	if (err)
		bench__err("reading counters: %s", sluice__errmsg());
	return err;
}

/* The counter figure f promises to grow by one per packet, summed over CPUs. */
static int bench__expected(struct bench *b, const struct figure *f, __u64 *val)
{
	__u64 cnt[SLUICE_CNT__MAX], percpu[CPU_SETSIZE];
	int ncpu = libbpf_num_possible_cpus(), err, i;
	__u32 slot = f->expect;

	if (f->prog == PROG_LB) {
		err = bench__counters(b, cnt);
		*val = cnt[f->expect];
		return err;
	}
	if (ncpu < 0 || ncpu > CPU_SETSIZE)
		return -EINVAL;
	err = bpf_map_lookup_elem(bpf_map__fd(b->skel->maps.bench_counts), &slot, percpu);
	if (err) {
		err = -errno;
		bench__err("reading bench_counts: %s", strerror(errno));
		return err;
	}
	for (*val = 0, i = 0; i < ncpu; i++)
		*val += percpu[i];
	return 0;
}

/* One sample of figure f over n packets: ns per packet. */
static int bench__sample(struct bench *b, struct figure *f, __u32 n, double *ns)
{
	int fd = b->prog_fd[f->prog];
	__u64 before, after;
	__u32 retval, dur;
	int err;

	/* One untimed packet first, so every timed packet is on the
	 * established path (the flow is confirmed: new flows, which go to
	 * ct_new, cannot evict it). */
	if (f->prog == PROG_LB && (f->pkt == PKT_EST || f->pkt == PKT_EST_SELF)) {
		err = bench__run(fd, b->pkt[f->pkt], 1, NULL, &retval, NULL);
		if (err)
			return err;
	}
	if (f->expect >= 0 && (err = bench__expected(b, f, &before)))
		return err;

	if (f->method == M_REPEAT) {
		err = bench__run(fd, b->pkt[f->pkt], n, NULL, &retval, &dur);
		if (err)
			return err;
		if (retval != XDP_PASS)
			goto bad_verdict;
		*ns = dur;
	} else {
		__u64 sum = 0;
		__u32 i;

		for (i = 0; i < n; i++) {
			const __u8 *pkt = b->pkt[f->pkt];

			if (f->pkt >= PKT_NEW) {
				pkt__build_new(b->newpkt, b->next_flow++, f->pkt);
				pkt = b->newpkt;
			}
			err = bench__run(fd, pkt, 1, NULL, &retval, &dur);
			if (err)
				return err;
			if (retval != XDP_PASS)
				goto bad_verdict;
			sum += dur;
		}
		*ns = (double)sum / n;
	}

	if (f->expect >= 0) {
		if ((err = bench__expected(b, f, &after)))
			return err;
		if (after - before != n) {
			bench__err("%s: counter %s grew by %llu, expected %u (one per packet): "
				   "the figure would not measure the path it names",
				   f->id,
				   f->prog == PROG_LB ? sluice__counter_name(f->expect) :
							"bench_counts",
				   (unsigned long long)(after - before), n);
			return -EPROTO;
		}
	}
	return 0;

bad_verdict:
	bench__err("%s: verdict %u, expected XDP_PASS (%u)", f->id, retval, XDP_PASS);
	return -EPROTO;
}

static __u32 bench__count(const struct bench *b, const struct figure *f)
{
	return f->method == M_REPEAT ? b->repeat : b->flows;
}

/* Run a SYN through xdp_lb and return the backend it was DNATed to; then
 * the backend's SYN|ACK and the client's ACK, so the flow is confirmed
 * (in the conntrack map, where new flows never evict it). */
static int bench__open_flow(struct bench *b, __u16 sport, __u32 *be_addr, __u16 *be_port)
{
	__u8 syn[PKT_LEN], out[PKT_LEN], pkt[PKT_LEN];
	struct iphdr *ip = (struct iphdr *)(out + ETH_HLEN);
	struct tcphdr *tcp = (struct tcphdr *)(ip + 1);
	__u32 retval;
	int err;

	pkt__build(syn, CLIENT_ADDR, VIP_ADDR, sport, VIP_PORT, 0x02);
	err = bench__run(b->prog_fd[PROG_LB], syn, 1, out, &retval, NULL);
	if (err)
		return err;
	if (retval != XDP_PASS) {
		bench__err("opening a flow: verdict %u, expected XDP_PASS", retval);
		return -EPROTO;
	}
	*be_addr = ntohl(ip->daddr);
	*be_port = ntohs(tcp->dest);
	pkt__build(pkt, *be_addr, CLIENT_ADDR, *be_port, sport, 0x12);
	err = bench__run(b->prog_fd[PROG_LB], pkt, 1, NULL, &retval, NULL);
	if (err)
		return err;
	pkt__build(pkt, CLIENT_ADDR, VIP_ADDR, sport, VIP_PORT, 0x10);
	return bench__run(b->prog_fd[PROG_LB], pkt, 1, NULL, &retval, NULL);
}

/* The rewritten backend's address in the reply filter, as the library
 * puts every backend's (#17): the flow's SYN|ACK comes from it. A
 * datapath without the filter (an older build) needs nothing. */
static int bench__self_addr(struct bench *b)
{
	struct sluice_backend_addr_key k = { .addr = { htonl(VIP_ADDR) },
					     .family = SLUICE_AF_INET };
	int fd = sluice__map_fd(b->s, "backend_addrs");
	int bfd = sluice__map_fd(b->s, "backend_addr_bits");
	__u32 refs = 1, bit = sluice_addr_bit(k.addr, k.family), word = bit / 64;
	__u64 w = 0;

	if (fd < 0 || bfd < 0)
		return 0;
	if (bpf_map_update_elem(fd, &k, &refs, BPF_ANY) || bpf_map_lookup_elem(bfd, &word, &w) ||
	    (w |= 1ULL << (bit % 64), bpf_map_update_elem(bfd, &word, &w, BPF_ANY))) {
		bench__err("backend_addrs: adding the VIP: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

/* Point one backend of the service at VIP:port itself (see the top of the
 * file): flows balanced to it are DNATed to the bytes they already carry. */
static int bench__self_backend(struct bench *b, const struct sluice_service_spec *svc)
{
	struct sluice_service_info info;
	struct sluice_backend be;
	int err, fd;
	__u32 id;

	err = sluice__service_get(b->s, &svc->vip, svc->port, svc->proto, &info);
	if (err) {
		bench__err("reading the service back: %s", sluice__errmsg());
		return err;
	}
	if (info.nbackends != svc->nbackends) {
		bench__err("service has %u backends, expected %u", info.nbackends, svc->nbackends);
		return -EPROTO;
	}
	id = info.backend_ids[0];
	fd = sluice__map_fd(b->s, "backends");
	if (fd < 0 || bpf_map_lookup_elem(fd, &id, &be)) {
		bench__err("backend %u: not in the backends map", id);
		return -ENOENT;
	}
	be.addr[0] = htonl(VIP_ADDR);
	be.port = htons(VIP_PORT);
	if (bpf_map_update_elem(fd, &id, &be, BPF_EXIST)) {
		err = -errno;
		bench__err("backend %u: rewriting it to the VIP: %s", id, strerror(errno));
		return err;
	}
	return bench__self_addr(b);
}

/* The affinity service: VIP_AFF_ADDR:VIP_PORT, 3 backends of its own. */
static int bench__aff_service(struct bench *b)
{
	struct sluice_backend_spec be[3] = {};
	struct sluice_service_spec svc = {
		.vip = { .family = SLUICE_AF_INET, .addr = { htonl(VIP_AFF_ADDR) } },
		.port = VIP_PORT,
		.proto = IPPROTO_TCP,
		.nbackends = 3,
		.backends = be,
		.affinity_timeout_s = SLUICE_AFFINITY_TIMEOUT_DEFAULT,
	};
	int err;

	for (int i = 0; i < 3; i++) {
		be[i].addr.family = SLUICE_AF_INET;
		be[i].addr.addr[0] = htonl(BACKEND_AFF_ADDR + 1 + i);
		be[i].port = BACKEND_PORT;
		be[i].weight = 1;
	}
	err = sluice__service_set(b->s, &svc);
	if (err)
		bench__err("configuring the affinity service: %s", sluice__errmsg());
	return err;
}

/*
 * Load both objects, configure the service and find the two established
 * flows: one DNATed to the VIP:port itself (repeat-safe), one to a real
 * backend. Also record whether test_run feeds rewrites back across repeats.
 */
static int bench__setup(struct bench *b)
{
	struct sluice_backend_spec be[3] = {};
	struct sluice_service_spec svc = {};
	struct sluice_opts opts = {};
	bool have_self = false, have_real = false;
	__u64 before[SLUICE_CNT__MAX], after[SLUICE_CNT__MAX];
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info), key, slot = 0, retval;
	__u16 sport;
	int err, i;

	err = sluice__open(&b->s, &opts);
	if (err) {
		bench__err("loading the datapath: %s", sluice__errmsg());
		return err;
	}
	b->prog_fd[PROG_LB] = sluice__prog_fd(b->s, SLUICE_PROG_XDP);

	b->skel = bench_bpf__open_and_load();
	if (!b->skel) {
		err = -errno;
		bench__err("loading bench.bpf.o: %s", strerror(errno));
		return err;
	}
	b->prog_fd[PROG_EMPTY] = bpf_program__fd(b->skel->progs.xdp_empty);
	b->prog_fd[PROG_LOOKUP] = bpf_program__fd(b->skel->progs.xdp_lookup);
	b->prog_fd[PROG_CT] = bpf_program__fd(b->skel->progs.xdp_ct_insert);
	key = htonl(VIP_ADDR);
	err = bpf_map_update_elem(bpf_map__fd(b->skel->maps.bench_keys), &key, &slot, BPF_ANY);
	if (err) {
		err = -errno;
		bench__err("filling bench_keys: %s", strerror(errno));
		return err;
	}

	err = bpf_obj_get_info_by_fd(sluice__map_fd(b->s, "conntrack"), &info, &info_len);
	if (err) {
		err = -errno;
		bench__err("conntrack map info: %s", strerror(errno));
		return err;
	}
	b->ct_max = info.max_entries;

	for (i = 0; i < 3; i++) {
		be[i].addr.family = SLUICE_AF_INET;
		be[i].addr.addr[0] = htonl(BACKEND_ADDR + 1 + i);
		be[i].port = BACKEND_PORT;
		be[i].weight = 1;
	}
	svc.vip.family = SLUICE_AF_INET;
	svc.vip.addr[0] = htonl(VIP_ADDR);
	svc.port = VIP_PORT;
	svc.proto = IPPROTO_TCP;
	svc.nbackends = 3;
	svc.backends = be;
	err = sluice__service_set(b->s, &svc);
	if (err) {
		bench__err("configuring the service: %s", sluice__errmsg());
		return err;
	}
	err = bench__self_backend(b, &svc);
	if (err)
		return err;
	err = bench__aff_service(b);
	if (err)
		return err;

	/* Maglev spreads source ports over the 3 backends; a few tries find
	 * a flow for each kind. */
	for (sport = 40000; sport < 41000 && !(have_self && have_real); sport++) {
		__u32 addr;
		__u16 port;

		err = bench__open_flow(b, sport, &addr, &port);
		if (err)
			return err;
		if (addr == VIP_ADDR && port == VIP_PORT && !have_self) {
			pkt__build(b->pkt[PKT_EST_SELF], CLIENT_ADDR, VIP_ADDR, sport, VIP_PORT,
				   0x10);
			have_self = true;
		} else if (addr != VIP_ADDR && !have_real) {
			pkt__build(b->pkt[PKT_EST], CLIENT_ADDR, VIP_ADDR, sport, VIP_PORT, 0x10);
			have_real = true;
		}
	}
	if (!have_self || !have_real) {
		bench__err("no flow to %s found among 1000 source ports: is Maglev balancing?",
			   have_self ? "a real backend" : "the VIP backend");
		return -ENOENT;
	}
	pkt__build(b->pkt[PKT_OTHER], CLIENT_ADDR, OTHER_ADDR, 40000, VIP_PORT, 0x10);

	/* Evidence for the method: does run 2 of a repeat see run 1's DNAT? */
	if ((err = bench__counters(b, before)))
		return err;
	err = bench__run(b->prog_fd[PROG_LB], b->pkt[PKT_EST], 2, NULL, &retval, NULL);
	if (err)
		return err;
	if ((err = bench__counters(b, after)))
		return err;
	b->repeat_reuses = after[SLUICE_CNT_LB_EST] - before[SLUICE_CNT_LB_EST] == 1;
	return 0;
}

/* Fill both conntrack maps (the LB's and xdp_ct_insert's) past capacity so
 * every measured new flow evicts an LRU entry, the steady state of a busy
 * node, and all rounds see the same table state. */
static int bench__fill_ct(struct bench *b)
{
	__u64 n = b->ct_max / 2 + b->ct_max / 8, i;
	__u32 retval;
	int err;

	for (i = 0; i < n; i++) {
		pkt__build_new(b->newpkt, b->next_flow++, PKT_NEW);
		err = bench__run(b->prog_fd[PROG_LB], b->newpkt, 1, NULL, &retval, NULL);
		if (!err)
			err = bench__run(b->prog_fd[PROG_CT], b->newpkt, 1, NULL, &retval, NULL);
		if (err)
			return err;
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void figure__summarize(struct figure *f)
{
	double s[MAX_ROUNDS];
	int n = f->nsamples;

	memcpy(s, f->samples, n * sizeof(s[0]));
	qsort(s, n, sizeof(s[0]), cmp_double);
	f->min = s[0];
	f->max = s[n - 1];
	f->med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static const struct figure *figure__baseline(const struct figure *f)
{
	int i;

	for (i = 0; i < NFIGURES; i++)
		if (figures[i].prog == PROG_EMPTY && figures[i].method == f->method)
			return &figures[i];
	return f;
}

static const char *method__name(enum bench_method m)
{
	return m == M_REPEAT ? "repeat" : "per_run";
}

static void method__describe(const struct bench *b, const struct figure *f, char *buf, size_t len)
{
	if (f->method == M_REPEAT)
		snprintf(buf, len, "repeat %u", b->repeat);
	else
		snprintf(buf, len, "%u runs x 1", b->flows);
}

static void report__table(const struct bench *b)
{
	char how[64];
	int i;

	printf("| figure | ns/pkt median | spread (min-max) | net of empty |\n");
	printf("|---|---:|---:|---:|\n");
	for (i = 0; i < NFIGURES; i++) {
		const struct figure *f = &figures[i];

		method__describe(b, f, how, sizeof(how));
		printf("| %s, %s | %.2f | %.2f-%.2f | ", f->name, how, f->med, f->min, f->max);
		if (f == figure__baseline(f))
			printf("(baseline) |\n");
		else
			printf("%+.2f |\n", f->net);
	}
	printf("\nPinned to CPU %d; %u rounds, figures interleaved. \"repeat R\": one test run of\n"
	       "R packets, the kernel's figure (whole ns, truncated). \"N runs x 1\": N test runs\n"
	       "of one packet each, kernel durations summed / N; this includes the per-run timer\n"
	       "overhead, which the xdp_empty row of the same method cancels.\n"
	       "Net = median - median(xdp_empty of the same method).\n",
	       b->cpu, b->rounds);
	if (b->repeat_reuses)
		printf("test_run feeds each repeat the previous repeat's output, so the established-\n"
		       "flow repeat row uses a flow whose backend entry was rewritten to VIP:port:\n"
		       "its DNAT writes the bytes the packet already has and all R packets stay on\n"
		       "the established path (checked: lb_established grew by R).\n");
}

static void json__str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04x", *s);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

static void machine__cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !colon)
			continue;
		colon += 2;
		colon[strcspn(colon, "\n")] = 0;
		snprintf(buf, len, "%s", colon);
		break;
	}
	fclose(f);
}

static void report__json(const struct bench *b, FILE *out)
{
	char model[128];
	struct utsname un;
	int i;

	uname(&un);
	machine__cpu_model(model, sizeof(model));
	fprintf(out,
		"{\n  \"machine\": {\"nproc\": %ld, \"kernel\": ", sysconf(_SC_NPROCESSORS_ONLN));
	json__str(out, un.release);
	fprintf(out, ", \"cpu_model\": ");
	json__str(out, model);
	fprintf(out, ", \"pinned_cpu\": %d},\n", b->cpu);
	fprintf(out,
		"  \"params\": {\"repeat\": %u, \"runs_per_sample\": %u, \"rounds\": %u, "
		"\"conntrack_max\": %u},\n",
		b->repeat, b->flows, b->rounds, b->ct_max);
	fprintf(out, "  \"test_run_repeat_reuses_output\": %s,\n",
		b->repeat_reuses ? "true" : "false");
	fprintf(out, "  \"figures\": [");
	for (i = 0; i < NFIGURES; i++) {
		const struct figure *f = &figures[i];
		int k;

		fprintf(out, "%s\n    {\"id\": \"%s\", \"figure\": ", i ? "," : "", f->id);
		json__str(out, f->name);
		fprintf(out, ", \"method\": \"%s\", \"packets_per_sample\": %u, ",
			method__name(f->method), bench__count(b, f));
		fprintf(out, "\"median_ns\": %.3f, \"min_ns\": %.3f, \"max_ns\": %.3f, ", f->med,
			f->min, f->max);
		fprintf(out, "\"net_ns\": %.3f, \"baseline\": \"%s\", \"samples_ns\": [", f->net,
			figure__baseline(f)->id);
		for (k = 0; k < f->nsamples; k++)
			fprintf(out, "%s%.3f", k ? ", " : "", f->samples[k]);
		fprintf(out, "]}");
	}
	fprintf(out, "\n  ]\n}\n");
}

/* Default: the highest CPU we may run on; CPU 0 tends to take more of the
 * machine's housekeeping interrupts. */
static int bench__pin(int cpu)
{
	cpu_set_t set;
	int i, err;

	if (cpu < 0) {
		if (sched_getaffinity(0, sizeof(set), &set)) {
			err = -errno;
			bench__err("sched_getaffinity: %s", strerror(-err));
			return err;
		}
		for (i = CPU_SETSIZE - 1; i >= 0 && !CPU_ISSET(i, &set); i--)
			;
		cpu = i;
	}
	if (cpu >= CPU_SETSIZE) {
		bench__err("--cpu: %d is beyond the largest CPU number %d", cpu, CPU_SETSIZE - 1);
		return -EINVAL;
	}
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		err = -errno;
		bench__err("pinning to CPU %d: %s", cpu, strerror(-err));
		return err;
	}
	return cpu;
}

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s [--repeat N] [--runs N] [--rounds N] [--cpu N] [--quick]\n"
		"          [--json] [--json-out FILE] [--verbose]\n"
		"  --repeat N    packets per repeat-method sample (default 10000000, >= 1000000)\n"
		"  --runs N      test runs per per-run sample, e.g. new flows (default 1000000)\n"
		"  --rounds N    samples per figure, interleaved (default 5, >= 5)\n"
		"  --cpu N       CPU to pin to (default: the highest allowed)\n"
		"  --quick       --repeat 1000000 --runs 100000\n"
		"  --json        print JSON instead of the Markdown table\n"
		"  --json-out F  also write JSON to file F\n",
		prog);
}

static int parse_u32(const char *opt, const char *text, __u32 min, __u32 *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 0);
	if (errno || *end || !*text || *text == '-' || v < min || v > UINT_MAX) {
		bench__err("%s: \"%s\" is not a 32-bit number >= %u", opt, text, min);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repeat", required_argument, NULL, 'r' },
		{ "runs", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'R' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "json-out", required_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct bench b = { .repeat = 10000000, .flows = 1000000, .rounds = 5, .cpu = -1 };
	bool json = false, set_repeat = false, set_runs = false, quick = false;
	const char *json_out = NULL;
	__u32 cpu;
	int opt, err = 0, r, i;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			err = parse_u32("--repeat", optarg, 1, &b.repeat);
			set_repeat = true;
			break;
		case 'n':
			err = parse_u32("--runs", optarg, 1, &b.flows);
			set_runs = true;
			break;
		case 'R':
			err = parse_u32("--rounds", optarg, 1, &b.rounds);
			break;
		case 'c':
			err = parse_u32("--cpu", optarg, 0, &cpu);
			b.cpu = cpu > INT_MAX ? INT_MAX : (int)cpu;
			break;
		case 'q':
			quick = true;
			break;
		case 'j':
			json = true;
			break;
		case 'o':
			json_out = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
		if (err)
			return 2;
	}
	if (optind != argc) {
		usage(stderr, argv[0]);
		return 2;
	}
	if (quick) {
		if (!set_repeat)
			b.repeat = 1000000;
		if (!set_runs)
			b.flows = 100000;
	}
	if (b.rounds < 5 || b.rounds > MAX_ROUNDS) {
		bench__err("--rounds: %u is outside [5, %d]", b.rounds, MAX_ROUNDS);
		return 2;
	}
	if (b.repeat < 1000000) {
		bench__err("--repeat: %u is below 1000000: too short to time", b.repeat);
		return 2;
	}

	libbpf_set_print(bench__libbpf_print);
	b.cpu = bench__pin(b.cpu);
	if (b.cpu < 0)
		return 1;

	err = bench__setup(&b);
	if (err)
		goto out;
	fprintf(stderr, "pktbench: CPU %d, repeat %u, %u runs per sample, %u rounds\n", b.cpu,
		b.repeat, b.flows, b.rounds);
	fprintf(stderr, "pktbench: filling conntrack (%u entries)...\n", b.ct_max);
	err = bench__fill_ct(&b);
	if (err)
		goto out;

	/* Warm-up pass (not recorded): code, maps and CPU frequency settle. */
	for (i = 0; i < NFIGURES; i++) {
		struct figure *f = &figures[i];
		double ns;

		err = bench__sample(&b, f, bench__count(&b, f) / 10 ?: 1, &ns);
		if (err)
			goto out;
	}

	for (r = 0; r < (int)b.rounds; r++) {
		fprintf(stderr, "pktbench: round %d/%u\n", r + 1, b.rounds);
		for (i = 0; i < NFIGURES; i++) {
			/* Rotate the order each round so no figure always runs
			 * right after the same neighbour. */
			struct figure *f = &figures[(i + r) % NFIGURES];

			err = bench__sample(&b, f, bench__count(&b, f), &f->samples[f->nsamples]);
			if (err)
				goto out;
			f->nsamples++;
		}
	}

	for (i = 0; i < NFIGURES; i++)
		figure__summarize(&figures[i]);
	for (i = 0; i < NFIGURES; i++)
		figures[i].net = figures[i].med - figure__baseline(&figures[i])->med;

	if (json)
		report__json(&b, stdout);
	else
		report__table(&b);
	if (json_out) {
		FILE *f = fopen(json_out, "w");

		if (!f) {
			err = -errno;
			bench__err("writing %s: %s", json_out, strerror(-err));
			goto out;
		}
		report__json(&b, f);
		if (fclose(f)) {
			err = -errno;
			bench__err("writing %s: %s", json_out, strerror(-err));
		}
	}
out:
	bench_bpf__destroy(b.skel);
	sluice__close(b.s);
	return err ? 1 : 0;
}
