// SPDX-License-Identifier: MIT
/*
 * xdpgen - packet generator and counters of the veth benchmarks (B2, B3).
 *
 * Contract: four commands, each one short-lived process, interface names
 * resolved in the caller's network namespace (run under nsenter --net=):
 *   counter DEV --pin FILE --match NET/LEN   attach xdp_count to DEV (native
 *       XDP, through netlink, so it outlives the process) and pin its
 *       counters at FILE, its handshake switches at FILE_answer;
 *   redirect DEV --to DEV2                   attach xdp_redirect_only;
 *   flush-map FILE                           empty a pinned hash map (Sluice's
 *       conntrack between samples, as `conntrack -F` for netfilter);
 *   run --dev DEV --dst-mac MAC ...          generate for --duration-ms and
 *       print one JSON line: packets sent, packets counted at the backend
 *       (read from the pinned counters), the time and the rate: counted
 *       packets / (the kernel's test_run time + what ksoftirqd of that CPU
 *       ran meanwhile). With --handshake, every flow first opens with a
 *       real three-way handshake through the path (a SYN each, the
 *       backend's xdp_count answers SYN|ACK, then the warm-up's ACKs), so
 *       an LB confirms the flows as it does live connections' and the
 *       sample measures established flows, not picked-up ones. With
 *       --count-own-cpu only the frames xdp_count saw on --cpu count: on
 *       a path with one RX queue per CPU (veth numrxqueues) every frame a
 *       generator on CPU c sends is handled on c end to end (veth picks the
 *       peer's queue c % queues and schedules its NAPI on c), so
 *       generators run side by side on several CPUs measure one each.
 * `run` uses BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES: xdp_gen
 * writes each frame from the template and XDP_TXes it out of DEV to its
 * veth peer. The kernel runs the whole path (node and backend softirqs
 * included) on the CPU of the generator, so the rate is what one CPU
 * achieves for generator + path + counter; pin it (--cpu) and compare
 * only variants measured with the same placement. Removing what `counter`
 * and `redirect` attached is the caller's job (deleting the namespace
 * does it). The BPF object is build/xdpgen.bpf.o (--obj), built by
 * the Makefile from bpf/bench/xdpgen.bpf.c.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <dirent.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "xdpgen.h"

#define DEFAULT_OBJ "build/xdpgen.bpf.o"
/* Calibration runs that size the measured run. */
#define CAL_PACKETS_MIN 1000
#define CAL_PACKETS_MAX 100000
#define CAL_MIN_NS 20000000ULL
#define RUN_MAX_PACKETS 200000000U

struct gen_opts {
	const char *obj;
	const char *dev;
	const char *count_pin;
	__u8 dst_mac[ETH_ALEN];
	__u32 saddr, daddr; /* host order */
	__u16 dport;
	__u32 nflows, nvips;
	bool syn;
	bool warmup;
	bool handshake;
	bool count_own; /* count only what xdp_count saw on CPU cpu */
	__u64 seq_start;
	__u32 duration_ms;
	int cpu;
};

static void __attribute__((format(printf, 1, 2))) gen__err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "Error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int gen__libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_WARN)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Open the object with only `prog` loaded. */
static struct bpf_object *gen__load(const char *path, const char *prog, int *prog_fd)
{
	struct bpf_object *obj;
	struct bpf_program *p;
	int err;

	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		gen__err("opening %s: %s (make builds it)", path, strerror(errno));
		return NULL;
	}
	bpf_object__for_each_program(p, obj)
		bpf_program__set_autoload(p, !strcmp(bpf_program__name(p), prog));
	err = bpf_object__load(obj);
	if (err) {
		gen__err("loading %s from %s: %s", prog, path, strerror(-err));
		bpf_object__close(obj);
		return NULL;
	}
	*prog_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, prog));
	return obj;
}

static int gen__map_fd(struct bpf_object *obj, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	return m ? bpf_map__fd(m) : -ENOENT;
}

static int gen__ifindex(const char *name)
{
	int idx = (int)if_nametoindex(name);

	if (!idx)
		gen__err("interface \"%s\" not found in this network namespace", name);
	return idx;
}

static int gen__attach(int ifindex, int prog_fd, const char *dev)
{
	int err = bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_DRV_MODE, NULL);

	if (err)
		gen__err("attaching XDP to %s: %s", dev, strerror(-err));
	return err;
}

/* ---- counter ---- */

static int gen__parse_prefix(const char *text, struct count_cfg *c)
{
	char buf[32], *slash, *end;
	struct in_addr a;
	unsigned long len = 32;

	snprintf(buf, sizeof(buf), "%s", text);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = 0;
		len = strtoul(slash + 1, &end, 10);
		if (*end || !slash[1] || len > 32)
			goto bad;
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		goto bad;
	c->mask = len ? htonl(~0u << (32 - len)) : 0;
	c->net = a.s_addr & c->mask;
	return 0;
bad:
	gen__err("--match: \"%s\" is not an IPv4 prefix (e.g. 10.128.0.0/9)", text);
	return -EINVAL;
}

static int do_counter(const char *obj_path, int argc, char **argv)
{
	struct count_cfg cc = {};
	const char *pin = NULL, *match = NULL;
	char cfg_pin[4096];
	struct bpf_object *obj;
	int ifindex, prog_fd, err, key = 0;

	if (argc < 1) {
		gen__err("counter: expected DEV --pin FILE --match NET/LEN");
		return 2;
	}
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--pin"))
			pin = argv[i + 1];
		else if (!strcmp(argv[i], "--match"))
			match = argv[i + 1];
	}
	if (!pin || !match || argc % 2 != 1) {
		gen__err("counter: expected DEV --pin FILE --match NET/LEN");
		return 2;
	}
	if (gen__parse_prefix(match, &cc))
		return 2;
	ifindex = gen__ifindex(argv[0]);
	if (!ifindex)
		return 1;
	obj = gen__load(obj_path, "xdp_count", &prog_fd);
	if (!obj)
		return 1;
	err = bpf_map_update_elem(gen__map_fd(obj, "count_cfg"), &key, &cc, BPF_ANY);
	if (err) {
		gen__err("writing count_cfg: %s", strerror(errno));
		goto cleanup;
	}
	err = bpf_obj_pin(gen__map_fd(obj, "rx_count"), pin);
	if (err) {
		gen__err("pinning the counters at %s: %s", pin, strerror(errno));
		goto cleanup;
	}
	snprintf(cfg_pin, sizeof(cfg_pin), "%s_answer", pin);
	err = bpf_obj_pin(gen__map_fd(obj, "count_answer"), cfg_pin);
	if (err)
		gen__err("pinning the handshake switches at %s: %s", cfg_pin, strerror(errno));
	else
		err = gen__attach(ifindex, prog_fd, argv[0]);
	if (err) {
		unlink(pin);
		unlink(cfg_pin);
	}
cleanup:
	bpf_object__close(obj);
	return err ? 1 : 0;
}

/* ---- redirect ---- */

static int do_redirect(const char *obj_path, int argc, char **argv)
{
	struct gen_cfg cfg = {};
	struct bpf_object *obj;
	int ifindex, prog_fd, err, key = 0;

	if (argc != 3 || strcmp(argv[1], "--to")) {
		gen__err("redirect: expected DEV --to DEV2");
		return 2;
	}
	ifindex = gen__ifindex(argv[0]);
	cfg.redirect_ifindex = (__u32)gen__ifindex(argv[2]);
	if (!ifindex || !cfg.redirect_ifindex)
		return 1;
	obj = gen__load(obj_path, "xdp_redirect_only", &prog_fd);
	if (!obj)
		return 1;
	err = bpf_map_update_elem(gen__map_fd(obj, "gen_cfg"), &key, &cfg, BPF_ANY);
	if (err)
		gen__err("writing gen_cfg: %s", strerror(errno));
	else
		err = gen__attach(ifindex, prog_fd, argv[0]);
	bpf_object__close(obj);
	return err ? 1 : 0;
}

/* ---- flush ---- */

/* Empty a pinned hash map (Sluice's conntrack between samples): batches of
 * lookup-and-delete, then single deletes for whatever a batch left. */
static int do_flush(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info), count, batch = 4096, in = 0, out = 0;
	void *keys = NULL, *vals = NULL, *key = NULL;
	int fd, err = 0;
	bool first = true;

	if (argc != 1) {
		gen__err("flush-map: expected FILE (a pinned hash map)");
		return 2;
	}
	fd = bpf_obj_get(argv[0]);
	if (fd < 0) {
		gen__err("opening %s: %s", argv[0], strerror(errno));
		return 1;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &info_len)) {
		gen__err("%s: map info: %s", argv[0], strerror(errno));
		close(fd);
		return 1;
	}
	keys = calloc(batch, info.key_size);
	vals = calloc(batch, info.value_size);
	key = calloc(1, info.key_size);
	if (!keys || !vals || !key) {
		err = -ENOMEM;
		goto cleanup;
	}
	do {
		count = batch;
		err = bpf_map_lookup_and_delete_batch(fd, first ? NULL : &in, &out, keys, vals,
						      &count, &opts);
		first = false;
		in = out;
	} while (!err);
	/* -ENOENT: walked to the end; anything else (no batch support):
	 * single deletes below do the rest. */
	while (!bpf_map_get_next_key(fd, NULL, key))
		if (bpf_map_delete_elem(fd, key) && errno != ENOENT) {
			gen__err("%s: delete: %s", argv[0], strerror(errno));
			err = -errno;
			goto cleanup;
		}
	err = 0;
cleanup:
	free(keys);
	free(vals);
	free(key);
	close(fd);
	return err ? 1 : 0;
}

/* ---- run ---- */

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

/* Flow 0 to VIP 0 with valid checksums; xdp_gen derives the others. */
static void gen__template(const struct gen_opts *o, const __u8 *src_mac, __u8 *buf)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct tcphdr *tcp = (struct tcphdr *)(ip + 1);
	__u8 pseudo[12];
	__u32 sum;

	memset(buf, 0, GEN_FRAME_LEN);
	memcpy(eth->h_dest, o->dst_mac, ETH_ALEN);
	memcpy(eth->h_source, src_mac, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons(sizeof(*ip) + sizeof(*tcp));
	ip->id = htons(1);
	ip->frag_off = htons(0x4000); /* DF */
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->saddr = htonl(o->saddr);
	ip->daddr = htonl(o->daddr);
	ip->check = htons(csum_fold(csum_add(0, ip, sizeof(*ip))));
	tcp->source = htons(GEN_PORT_BASE);
	tcp->dest = htons(o->dport);
	tcp->seq = htonl(o->syn && o->handshake ? GEN_SEQ - 1 : GEN_SEQ);
	tcp->doff = 5;
	if (o->syn) {
		tcp->syn = 1;
	} else {
		tcp->ack = 1;
		tcp->ack_seq = htonl(GEN_ACK_SEQ);
	}
	tcp->window = htons(65535);
	memcpy(pseudo, &ip->saddr, 8);
	pseudo[8] = 0;
	pseudo[9] = IPPROTO_TCP;
	pseudo[10] = 0;
	pseudo[11] = sizeof(*tcp);
	sum = csum_add(0, pseudo, sizeof(pseudo));
	sum = csum_add(sum, tcp, sizeof(*tcp));
	tcp->check = htons(csum_fold(sum));
}

static int gen__own_mac(const char *dev, __u8 *mac)
{
	struct ifreq ifr = {};
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		gen__err("socket: %s", strerror(errno));
		return -errno;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr)) {
		err = -errno;
		gen__err("reading the MAC of %s: %s", dev, strerror(errno));
	} else {
		memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	}
	close(fd);
	return err;
}

/* Sum of the backend's counters over CPUs; only CPU @cpu's when >= 0. */
static int gen__read_count(int fd, int cpu, __u64 out[COUNT__MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals;
	int err = 0;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 slot = 0; slot < COUNT__MAX && !err; slot++) {
		out[slot] = 0;
		if (bpf_map_lookup_elem(fd, &slot, vals)) {
			err = -errno;
			gen__err("reading the backend counters: %s", strerror(errno));
			break;
		}
		for (int c = 0; c < ncpu; c++)
			if (cpu < 0 || c == cpu)
				out[slot] += vals[c];
	}
	free(vals);
	return err;
}

/* Frames still in a veth ring when the last test run returns arrive a
 * little later: wait until the count is still for a few milliseconds. */
static int gen__drain(int fd, int cpu, __u64 out[COUNT__MAX])
{
	__u64 last = ~0ULL;
	int still = 0, err;

	for (int i = 0; i < 300 && still < 5; i++) {
		err = gen__read_count(fd, cpu, out);
		if (err)
			return err;
		still = out[0] + out[1] == last ? still + 1 : 0;
		last = out[0] + out[1];
		usleep(1000);
	}
	return 0;
}

/* One live-frames test run of `repeat` frames; *ns_per_pkt gets the
 * kernel's figure: its timer runs around the loop that generates, flushes
 * and (when bottom halves are re-enabled) processes the frames on this
 * CPU, and stops while the task is preempted. Each call also costs a fixed
 * tens of milliseconds outside that timer (the program is swapped into
 * the XDP dispatcher and back, an RCU wait each), which is why a sample
 * is one long call and why wall time would misstate short ones. */
/* CPU time (ns) the ksoftirqd thread of `cpu` has run so far, 0 if not
 * found. Softirq work that overflows its budget (a slow path: thousands of
 * iptables rules per new connection) continues in ksoftirqd, and the
 * test_run timer stops while the generator yields to it: that time is
 * still the path's and is added to the sample. */
static __u64 gen__ksoftirqd_ns(int cpu)
{
	static char path[64];
	unsigned long long run = 0;
	char want[32], comm[32];
	FILE *f;

	if (cpu < 0)
		return 0;
	if (!path[0]) {
		DIR *d = opendir("/proc");
		struct dirent *e;

		snprintf(want, sizeof(want), "ksoftirqd/%d\n", cpu);
		while (d && (e = readdir(d))) {
			char p[300];

			if (e->d_name[0] < '1' || e->d_name[0] > '9')
				continue;
			snprintf(p, sizeof(p), "/proc/%s/comm", e->d_name);
			f = fopen(p, "r");
			if (!f)
				continue;
			if (fgets(comm, sizeof(comm), f) && !strcmp(comm, want))
				snprintf(path, sizeof(path), "/proc/%.20s/schedstat", e->d_name);
			fclose(f);
			if (path[0])
				break;
		}
		if (d)
			closedir(d);
		if (!path[0])
			return 0;
	}
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &run) != 1)
		run = 0;
	fclose(f);
	return run;
}

static int gen__test_run(int prog_fd, const __u8 *frame, int ifindex, __u32 repeat,
			 __u32 *ns_per_pkt)
{
	struct xdp_md ctx = { .data_end = GEN_FRAME_LEN, .ingress_ifindex = ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = GEN_FRAME_LEN,
		    .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = repeat,
		    .flags = BPF_F_TEST_XDP_LIVE_FRAMES);

	if (bpf_prog_test_run_opts(prog_fd, &opts)) {
		gen__err("BPF_PROG_TEST_RUN (live frames): %s", strerror(errno));
		return -errno;
	}
	if (ns_per_pkt)
		*ns_per_pkt = opts.duration;
	return 0;
}

/* count_answer[@cpu] of the backend's xdp_count (pinned at COUNT_answer):
 * a slot of its own per generator, so generators side by side do not
 * switch each other's answers off. */
static int gen__answer(int fd, int cpu, __u32 answer)
{
	__u32 key = (__u32)cpu;

	return bpf_map_update_elem(fd, &key, &answer, BPF_ANY) ? -errno : 0;
}

/* --handshake: a SYN for each of the o->nflows flows, which the backend
 * answers with a SYN|ACK through the node while count_answer[cpu] is set;
 * the warm-up's ACKs then complete the handshakes. */
static int gen__handshake(const struct gen_opts *o, struct bpf_object *obj, int prog_fd,
			  int ifindex, const __u8 *src_mac, int count_fd)
{
	struct gen_opts syn = *o;
	struct gen_cfg cfg = {};
	__u64 seq = o->seq_start, n[COUNT__MAX];
	char path[4096];
	__u32 key = 0;
	int cfg_fd, err;

	snprintf(path, sizeof(path), "%s_answer", o->count_pin);
	cfg_fd = bpf_obj_get(path);
	if (cfg_fd < 0) {
		gen__err("--handshake: opening %s: %s", path, strerror(errno));
		return -errno;
	}
	syn.syn = true;
	gen__template(&syn, src_mac, cfg.frame);
	cfg.nflows = o->nflows;
	cfg.nvips = o->nvips;
	err = gen__answer(cfg_fd, o->cpu, 1);
	if (!err && (bpf_map_update_elem(gen__map_fd(obj, "gen_cfg"), &key, &cfg, BPF_ANY) ||
		     bpf_map_update_elem(gen__map_fd(obj, "gen_seq"), &key, &seq, BPF_ANY)))
		err = -errno;
	if (err)
		gen__err("--handshake: configuring: %s", strerror(-err));
	else
		err = gen__test_run(prog_fd, cfg.frame, ifindex, o->nflows, NULL);
	/* the answers cross the node in this CPU's softirqs: let them land */
	if (!err)
		err = gen__drain(count_fd, -1, n);
	usleep(10000);
	if (gen__answer(cfg_fd, o->cpu, 0) && !err) {
		gen__err("--handshake: resetting %s: %s", path, strerror(errno));
		err = -EIO;
	}
	close(cfg_fd);
	return err;
}

static int gen__run(const struct gen_opts *o)
{
	struct gen_cfg cfg = {};
	__u8 src_mac[ETH_ALEN];
	__u64 before[COUNT__MAX], after[COUNT__MAX], n, rx, kernel_ns, path_ns, soft, wall, t0;
	struct bpf_object *obj;
	__u32 key = 0, ns = 0;
	int ifindex, prog_fd, count_fd = -1, err;

	ifindex = gen__ifindex(o->dev);
	if (!ifindex)
		return -ENODEV;
	if ((err = gen__own_mac(o->dev, src_mac)))
		return err;
	count_fd = bpf_obj_get(o->count_pin);
	if (count_fd < 0) {
		gen__err("opening the backend counters %s: %s", o->count_pin, strerror(errno));
		return -errno;
	}
	obj = gen__load(o->obj, "xdp_gen", &prog_fd);
	if (!obj) {
		close(count_fd);
		return -EINVAL;
	}
	if (o->handshake && (err = gen__handshake(o, obj, prog_fd, ifindex, src_mac, count_fd)))
		goto cleanup;
	gen__template(o, src_mac, cfg.frame);
	cfg.nflows = o->nflows;
	cfg.nvips = o->nvips;
	err = bpf_map_update_elem(gen__map_fd(obj, "gen_cfg"), &key, &cfg, BPF_ANY);
	if (!err)
		err = bpf_map_update_elem(gen__map_fd(obj, "gen_seq"), &key, &o->seq_start,
					  BPF_ANY);
	if (err) {
		err = -errno;
		gen__err("configuring xdp_gen: %s", strerror(errno));
		goto cleanup;
	}

	/* Established flows are opened before the clock starts; a new-flow
	 * run warms code and caches with flows of its own. */
	if (o->warmup) {
		err = gen__test_run(prog_fd, cfg.frame, ifindex, o->nflows ? 2 * o->nflows : 2000,
				    NULL);
		if (err)
			goto cleanup;
	}
	/* Size the measured run from short ones so it lasts --duration-ms:
	 * 10x more packets until the calibration run itself lasts 20 ms, so
	 * a slow path (a new connection behind thousands of iptables rules)
	 * does not spend seconds calibrating. */
	for (n = CAL_PACKETS_MIN;; n *= 10) {
		err = gen__test_run(prog_fd, cfg.frame, ifindex, (__u32)n, &ns);
		if (err)
			goto cleanup;
		if ((__u64)ns * n >= CAL_MIN_NS || n >= CAL_PACKETS_MAX)
			break;
	}
	n = ns ? (__u64)o->duration_ms * 1000000ULL / ns : RUN_MAX_PACKETS;
	n = n < 1000 ? 1000 : n > RUN_MAX_PACKETS ? RUN_MAX_PACKETS : n;
	if ((err = gen__drain(count_fd, o->count_own ? o->cpu : -1, before)))
		goto cleanup;

	soft = gen__ksoftirqd_ns(o->cpu);
	t0 = now_ns();
	err = gen__test_run(prog_fd, cfg.frame, ifindex, (__u32)n, &ns);
	if (err)
		goto cleanup;
	wall = now_ns() - t0;
	if ((err = gen__drain(count_fd, o->count_own ? o->cpu : -1, after)))
		goto cleanup;
	soft = gen__ksoftirqd_ns(o->cpu) - soft;
	rx = after[COUNT_MATCH] - before[COUNT_MATCH];
	kernel_ns = (__u64)ns * n;
	path_ns = kernel_ns + soft;

	printf("{\"sent\": %llu, \"received\": %llu, \"other\": %llu, \"ns_per_pkt\": %u, "
	       "\"kernel_ns\": %llu, \"ksoftirqd_ns\": %llu, \"wall_ns\": %llu, "
	       "\"pps\": %.1f, \"cpu\": %d}\n",
	       (unsigned long long)n, (unsigned long long)rx,
	       (unsigned long long)(after[COUNT_OTHER] - before[COUNT_OTHER]), ns,
	       (unsigned long long)kernel_ns, (unsigned long long)soft, (unsigned long long)wall,
	       path_ns ? (double)rx * 1e9 / (double)path_ns : 0.0, o->cpu);
cleanup:
	close(count_fd);
	bpf_object__close(obj);
	return err;
}

static int parse_u32(const char *opt, const char *text, __u32 *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(text, &end, 0);
	if (errno || *end || !*text || *text == '-' || v > 0xffffffffUL) {
		gen__err("%s: \"%s\" is not a 32-bit number", opt, text);
		return -EINVAL;
	}
	*out = (__u32)v;
	return 0;
}

static int parse_ip(const char *opt, const char *text, __u32 *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, text, &a) != 1) {
		gen__err("%s: \"%s\" is not an IPv4 address", opt, text);
		return -EINVAL;
	}
	*out = ntohl(a.s_addr);
	return 0;
}

static int parse_mac(const char *text, __u8 *mac)
{
	unsigned int b[ETH_ALEN];

	if (sscanf(text, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6) {
		gen__err("--dst-mac: \"%s\" is not a MAC address", text);
		return -EINVAL;
	}
	for (int i = 0; i < ETH_ALEN; i++)
		mac[i] = (__u8)b[i];
	return 0;
}

static int do_run(const char *obj_path, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "dst-mac", required_argument, NULL, 'm' },
		{ "saddr", required_argument, NULL, 's' },
		{ "daddr", required_argument, NULL, 'D' },
		{ "dport", required_argument, NULL, 'P' },
		{ "nvips", required_argument, NULL, 'V' },
		{ "flows", required_argument, NULL, 'f' },
		{ "syn", no_argument, NULL, 'S' },
		{ "warmup", no_argument, NULL, 'w' },
		{ "handshake", no_argument, NULL, 'H' },
		{ "count-own-cpu", no_argument, NULL, 'O' },
		{ "seq-start", required_argument, NULL, 'q' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration-ms", required_argument, NULL, 't' },
		{ "cpu", required_argument, NULL, 'C' },
		{},
	};
	struct gen_opts o = {
		.obj = obj_path, .dport = 80, .nvips = 1, .nflows = 1, .duration_ms = 1000, .cpu = -1
	};
	bool have_mac = false;
	__u32 v;
	int opt, err = 0;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.dev = optarg;
			break;
		case 'm':
			err = parse_mac(optarg, o.dst_mac);
			have_mac = true;
			break;
		case 's':
			err = parse_ip("--saddr", optarg, &o.saddr);
			break;
		case 'D':
			err = parse_ip("--daddr", optarg, &o.daddr);
			break;
		case 'P':
			err = parse_u32("--dport", optarg, &v);
			o.dport = (__u16)v;
			break;
		case 'V':
			err = parse_u32("--nvips", optarg, &o.nvips);
			break;
		case 'f':
			err = parse_u32("--flows", optarg, &o.nflows);
			break;
		case 'S':
			o.syn = true;
			break;
		case 'w':
			o.warmup = true;
			break;
		case 'H':
			o.handshake = true;
			break;
		case 'O':
			o.count_own = true;
			break;
		case 'q':
			err = parse_u32("--seq-start", optarg, &v);
			o.seq_start = v;
			break;
		case 'c':
			o.count_pin = optarg;
			break;
		case 't':
			err = parse_u32("--duration-ms", optarg, &o.duration_ms);
			break;
		case 'C':
			err = parse_u32("--cpu", optarg, &v);
			o.cpu = (int)v;
			break;
		default:
			return 2;
		}
		if (err)
			return 2;
	}
	if (!o.dev || !have_mac || !o.saddr || !o.daddr || !o.count_pin) {
		gen__err("run: --dev, --dst-mac, --saddr, --daddr and --count are required");
		return 2;
	}
	if (o.count_own && o.cpu < 0) {
		gen__err("run: --count-own-cpu needs --cpu");
		return 2;
	}
	if (o.handshake &&
	    (o.syn || !o.nflows || !o.warmup || o.cpu < 0 || o.cpu >= GEN_ANSWER_CPUS)) {
		gen__err("run: --handshake opens --flows N (N > 0) established flows: needs "
			 "--warmup and --cpu C (C < %d), not --syn",
			 GEN_ANSWER_CPUS);
		return 2;
	}
	if (o.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(o.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set)) {
			gen__err("pinning to CPU %d: %s", o.cpu, strerror(errno));
			return 1;
		}
	}
	return gen__run(&o) ? 1 : 0;
}

static int usage(FILE *out)
{
	fprintf(out, "Usage: xdpgen [--obj FILE] COMMAND\n"
		     "  counter DEV --pin FILE --match NET/LEN   count + drop on DEV (XDP)\n"
		     "  redirect DEV --to DEV2                   redirect-only XDP on DEV\n"
		     "  flush-map FILE                           empty a pinned hash map\n"
		     "  run --dev DEV --dst-mac MAC --saddr A --daddr A --count FILE\n"
		     "      [--dport P] [--nvips N] [--flows N (0: all new)] [--syn] [--warmup]\n"
		     "      [--handshake (SYN, backend's SYN|ACK, ACK per flow first)]\n"
		     "      [--count-own-cpu (count what arrived on --cpu only: one of several\n"
		     "      generators on a multi-queue path)]\n"
		     "      [--seq-start S] [--duration-ms D] [--cpu C]\n"
		     "FILE defaults to " DEFAULT_OBJ ".\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *obj = DEFAULT_OBJ;
	int i = 1;

	if (argc > 2 && !strcmp(argv[1], "--obj")) {
		obj = argv[2];
		i = 3;
	}
	if (i >= argc)
		return usage(stderr);
	libbpf_set_print(gen__libbpf_print);
	if (!strcmp(argv[i], "counter"))
		return do_counter(obj, argc - i - 1, argv + i + 1);
	if (!strcmp(argv[i], "redirect"))
		return do_redirect(obj, argc - i - 1, argv + i + 1);
	if (!strcmp(argv[i], "flush-map"))
		return do_flush(argc - i - 1, argv + i + 1);
	if (!strcmp(argv[i], "run"))
		return do_run(obj, argc - i, argv + i);
	if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
		usage(stdout);
		return 0;
	}
	return usage(stderr);
}
