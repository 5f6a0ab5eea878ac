// SPDX-License-Identifier: MIT
/*
 * lbtool - a thin CLI over user/lib for the e2e tests and the demo.
 *
 * Contract: every invocation is one short-lived process. `load` creates the
 * maps and pins them under --pin DIR; every later command opens the object
 * again with the same DIR, so it works on the pinned maps. Programs are
 * loaded per process: `attach` attaches the programs of its own, freshly
 * loaded object (whose maps are the pinned ones) through netlink, so the
 * attachment outlives the process. Interface names resolve in the caller's
 * network namespace (run it under `nsenter --net=...`); the pins live in
 * the bpffs of the caller's mount namespace. Errors print "Error: ..." and
 * exit 1. The meshd/meshctl pair replaces this tool for operators.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb_load.h"
#include "sluice.h"

#define DEFAULT_PIN_DIR "/sys/fs/bpf/sluice"

static const char *pin_dir = DEFAULT_PIN_DIR;
static bool verbose;

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static int usage(void);

static void __attribute__((format(printf, 1, 2))) lbtool__err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "Error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* The library explains its failures once; fall back to errno text. */
static int lbtool__lib_err(int err, const char *what)
{
	const char *msg = sluice__errmsg();

	if (msg && *msg)
		lbtool__err("%s: %s", what, msg);
	else
		lbtool__err("%s: %s", what, strerror(err < 0 ? -err : err));
	return 1;
}

/* libbpf's own chatter is for debugging; its warnings still show. */
static int lbtool__libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_WARN && !verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* Runs the command of table whose name starts with argv[0] (bpftool
 * style); an ambiguous or unknown prefix is an error. */
static int lbtool__dispatch(const struct cmd *cmds, const char *what, int argc, char **argv)
{
	const struct cmd *hit = NULL;
	size_t len;

	if (argc < 1) {
		lbtool__err("missing %s command", what);
		return usage();
	}
	len = strlen(argv[0]);
	for (const struct cmd *c = cmds; c->name; c++) {
		if (strncmp(c->name, argv[0], len))
			continue;
		if (strlen(c->name) == len) {
			hit = c;
			break;
		}
		if (hit) {
			lbtool__err("ambiguous %s command '%s'", what, argv[0]);
			return 1;
		}
		hit = c;
	}
	if (!hit) {
		lbtool__err("unknown %s command '%s'", what, argv[0]);
		return usage();
	}
	return hit->fn(argc - 1, argv + 1);
}

/* Only `load` may create the pins: any other command on a missing DIR
 * would otherwise work on fresh, empty maps nobody else sees. */
static int lbtool__open(struct sluice **s, __u32 cfg, bool create)
{
	struct sluice_opts opts = { .pin_dir = pin_dir, .cfg = cfg };
	struct stat st;
	int err;

	if (!create && stat(pin_dir, &st)) {
		lbtool__err("no maps pinned under %s (%s): run `lbtool --pin %s load` first",
			    pin_dir, strerror(errno), pin_dir);
		return 1;
	}
	err = sluice__open(s, &opts);
	if (err)
		return lbtool__lib_err(err, "opening the datapath");
	return 0;
}

/* Parses "VIP:PORT/PROTO", e.g. "10.96.0.10:80/tcp" or "[fd00::1]:53/udp". */
static int lbtool__parse_svc(const char *text, struct sluice_addr *vip, __u16 *port, __u8 *proto)
{
	char buf[128];
	char *slash;
	int err;

	if (strlen(text) >= sizeof(buf)) {
		lbtool__err("service \"%.32s...\" is too long", text);
		return -EINVAL;
	}
	strcpy(buf, text);
	slash = strrchr(buf, '/');
	if (!slash) {
		lbtool__err("service \"%s\": expected VIP:PORT/PROTO, e.g. 10.96.0.10:80/tcp",
			    text);
		return -EINVAL;
	}
	*slash = '\0';
	err = sluice_addr__parse_port(vip, port, buf);
	if (!err)
		err = sluice_proto__parse(proto, slash + 1);
	if (err) {
		lbtool__err("service \"%s\": %s", text, sluice__errmsg());
		return err;
	}
	return 0;
}

/* Parses "ADDR:PORT[@WEIGHT]"; the weight defaults to 1. */
static int lbtool__parse_backend(const char *text, struct sluice_backend_spec *be)
{
	char buf[128], *at, *end;
	unsigned long w = 1;
	int err;

	if (strlen(text) >= sizeof(buf)) {
		lbtool__err("backend \"%.32s...\" is too long", text);
		return -EINVAL;
	}
	strcpy(buf, text);
	at = strrchr(buf, '@');
	if (at) {
		*at = '\0';
		errno = 0;
		w = strtoul(at + 1, &end, 10);
		if (errno || !at[1] || *end || w > 0xffff) {
			lbtool__err("backend \"%s\": weight \"%s\" is not a number 0-65535", text,
				    at + 1);
			return -EINVAL;
		}
	}
	err = sluice_addr__parse_port(&be->addr, &be->port, buf);
	if (err) {
		lbtool__err("backend \"%s\": %s", text, sluice__errmsg());
		return err;
	}
	be->weight = (__u16)w;
	return 0;
}

static int lbtool__ifindex(const char *ifname)
{
	unsigned int idx = if_nametoindex(ifname);

	if (!idx)
		lbtool__err("interface \"%s\" not found in this network namespace: %s", ifname,
			    strerror(errno));
	return (int)idx;
}

/* ---- load / unpin ---- */

/* Only maps are shared between processes; knobs such as --fib shape the
 * programs, which each process loads itself, so they belong to `attach`. */
static int do_load(int argc, char **argv)
{
	struct sluice *s;

	if (argc) {
		lbtool__err("load: unknown argument \"%s\" (--fib is an option of attach xdp)",
			    argv[0]);
		return 1;
	}
	if (lbtool__open(&s, 0, true))
		return 1;
	sluice__close(s);
	printf("maps pinned under %s\n", pin_dir);
	return 0;
}

static int do_unpin(int argc, char **argv)
{
	int err;

	(void)argv;
	if (argc) {
		lbtool__err("unpin takes no arguments");
		return 1;
	}
	err = sluice__unpin(pin_dir);
	if (err)
		return lbtool__lib_err(err, "unpinning");
	return 0;
}

/* ---- attach / detach ---- */

struct hook_args {
	bool xdp;
	const char *ifname;
	__u32 xdp_flags;
	__u32 cfg;
};

/* "xdp|tc IFNAME [--generic] [--fib] [--fwd-off]" */
static int lbtool__parse_hook(int argc, char **argv, struct hook_args *h, const char *what)
{
	if (argc < 2) {
		lbtool__err("%s: expected xdp|tc IFNAME", what);
		return -EINVAL;
	}
	if (!strcmp(argv[0], "xdp")) {
		h->xdp = true;
		h->xdp_flags = XDP_FLAGS_DRV_MODE;
	} else if (strcmp(argv[0], "tc")) {
		lbtool__err("%s: hook \"%s\" is neither xdp nor tc", what, argv[0]);
		return -EINVAL;
	}
	h->ifname = argv[1];
	for (int i = 2; i < argc; i++) {
		if (h->xdp && !strcmp(argv[i], "--generic")) {
			h->xdp_flags = XDP_FLAGS_SKB_MODE;
		} else if (h->xdp && !strcmp(argv[i], "--fib")) {
			h->cfg |= SLUICE_CFG_FIB_FORWARD;
		} else if (!strcmp(argv[i], "--fwd-off")) {
			h->cfg |= SLUICE_CFG_FWD_OFF;
		} else {
			lbtool__err("%s: unknown argument \"%s\"", what, argv[i]);
			return -EINVAL;
		}
	}
	return 0;
}

static int do_attach(int argc, char **argv)
{
	struct hook_args h = {};
	struct sluice *s;
	int ifindex, err;

	if (lbtool__parse_hook(argc, argv, &h, "attach"))
		return 1;
	ifindex = lbtool__ifindex(h.ifname);
	if (!ifindex)
		return 1;
	test__lb_load = 0; /* the one command that needs the programs */
	if (lbtool__open(&s, h.cfg, false))
		return 1;
	if (h.xdp)
		err = sluice__attach_xdp(s, ifindex, h.xdp_flags);
	else
		err = sluice__attach_tc(s, ifindex);
	sluice__close(s);
	if (err) {
		char what[64];

		snprintf(what, sizeof(what), "attaching %s to %s", argv[0], h.ifname);
		return lbtool__lib_err(err, what);
	}
	return 0;
}

static int do_detach(int argc, char **argv)
{
	struct hook_args h = {};
	int ifindex, err;

	if (lbtool__parse_hook(argc, argv, &h, "detach"))
		return 1;
	ifindex = lbtool__ifindex(h.ifname);
	if (!ifindex)
		return 1;
	err = h.xdp ? sluice__detach_xdp(ifindex, h.xdp_flags) : sluice__detach_tc(ifindex);
	if (err) {
		char what[64];

		snprintf(what, sizeof(what), "detaching %s from %s", argv[0], h.ifname);
		return lbtool__lib_err(err, what);
	}
	return 0;
}

/*
 * A veth does not wake its peer for frames XDP_TX'd into it unless the peer
 * runs an XDP program itself (veth_xdp_flush() only kicks peers with one;
 * GRO alone is enough for XDP_REDIRECT, not for XDP_TX). The refusals the
 * datapath XDP_TXes back to a client veth would then sit in its ring. A
 * real NIC has no such peer; in the test topology this two-instruction
 * XDP_PASS program on the client's veth stands in for the wire.
 */
static int do_xdp_pass(int argc, char **argv)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int ifindex, fd, err;

	if (argc != 1) {
		lbtool__err("xdp-pass: expected IFNAME");
		return 1;
	}
	ifindex = lbtool__ifindex(argv[0]);
	if (!ifindex)
		return 1;
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_pass", "GPL", insns,
			   sizeof(insns) / sizeof(insns[0]), NULL);
	if (fd < 0) {
		lbtool__err("xdp-pass: loading the XDP_PASS program: %s", strerror(errno));
		return 1;
	}
	err = bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, NULL);
	close(fd);
	if (err) {
		lbtool__err("xdp-pass: attaching to %s: %s", argv[0], strerror(-err));
		return 1;
	}
	return 0;
}

/* ---- svc ---- */

static int do_svc_set(int argc, char **argv)
{
	struct sluice_backend_spec *bes = NULL;
	struct sluice_service_spec spec = {};
	struct sluice *s = NULL;
	char name[96];
	int err, ret = 1;

	if (argc < 1) {
		lbtool__err("svc set: expected VIP:PORT/PROTO [BACKEND:PORT[@WEIGHT] ...]");
		return 1;
	}
	if (lbtool__parse_svc(argv[0], &spec.vip, &spec.port, &spec.proto))
		return 1;
	if (argc > 1) {
		bes = calloc((size_t)argc - 1, sizeof(*bes));
		if (!bes) {
			lbtool__err("svc set: out of memory");
			return 1;
		}
	}
	for (int i = 1; i < argc; i++)
		if (lbtool__parse_backend(argv[i], &bes[i - 1]))
			goto cleanup;
	spec.nbackends = (__u32)argc - 1;
	spec.backends = bes;
	if (lbtool__open(&s, 0, false))
		goto cleanup;
	err = sluice__service_set(s, &spec);
	if (err) {
		lbtool__lib_err(err, "svc set");
		goto cleanup;
	}
	printf("service %s: %u backend(s)\n",
	       sluice_svc__str(&spec.vip, spec.port, spec.proto, name, sizeof(name)),
	       spec.nbackends);
	ret = 0;
cleanup:
	sluice__close(s);
	free(bes);
	return ret;
}

/* Until services carry these flags in their spec (meshd/meshctl), the
 * e2e tests set them here, in the pinned services map itself (opened by
 * its pin: no object load, no verification). */
static int do_svc_flags(int argc, char **argv)
{
	struct sluice_svc_key key = {};
	struct sluice_addr vip;
	char path[512];
	struct sluice_svc v;
	__u16 flags = 0;
	int fd, ret = 1;

	if (argc < 1) {
		lbtool__err("svc flags: expected VIP:PORT/PROTO [snat] [drop-empty]");
		return 1;
	}
	if (lbtool__parse_svc(argv[0], &vip, &key.port, &key.proto))
		return 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "snat")) {
			flags |= SLUICE_SVC_F_SNAT;
		} else if (!strcmp(argv[i], "drop-empty")) {
			flags |= SLUICE_SVC_F_DROP_EMPTY;
		} else {
			lbtool__err("svc flags: unknown flag \"%s\" (snat, drop-empty)", argv[i]);
			return 1;
		}
	}
	key.port = htons(key.port);
	key.family = vip.family;
	memcpy(key.addr, vip.addr, sizeof(key.addr));
	snprintf(path, sizeof(path), "%s/services", pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		lbtool__err("svc flags: %s: %s (run `lbtool --pin %s load` first)", path,
			    strerror(errno), pin_dir);
		return 1;
	}
	if (bpf_map_lookup_elem(fd, &key, &v)) {
		lbtool__err("svc flags: no service %s", argv[0]);
		goto cleanup;
	}
	v.flags = (__u16)((v.flags & ~(SLUICE_SVC_F_SNAT | SLUICE_SVC_F_DROP_EMPTY)) | flags);
	if (bpf_map_update_elem(fd, &key, &v, BPF_EXIST)) {
		lbtool__err("svc flags: updating %s: %s", argv[0], strerror(errno));
		goto cleanup;
	}
	printf("service %s: flags 0x%x\n", argv[0], v.flags);
	ret = 0;
cleanup:
	close(fd);
	return ret;
}

static int do_svc_del(int argc, char **argv)
{
	struct sluice_addr vip;
	struct sluice *s;
	__u16 port;
	__u8 proto;
	int err;

	if (argc != 1) {
		lbtool__err("svc del: expected VIP:PORT/PROTO");
		return 1;
	}
	if (lbtool__parse_svc(argv[0], &vip, &port, &proto))
		return 1;
	if (lbtool__open(&s, 0, false))
		return 1;
	err = sluice__service_del(s, &vip, port, proto);
	sluice__close(s);
	if (err)
		return lbtool__lib_err(err, "svc del");
	return 0;
}

static const char *lbtool__be_state(__u8 state)
{
	switch (state) {
	case SLUICE_BE_ACTIVE:
		return "active";
	case SLUICE_BE_DRAINING:
		return "draining";
	default:
		return "?";
	}
}

static int do_svc_get(int argc, char **argv)
{
	struct sluice_service_info *info = NULL;
	struct sluice_addr vip;
	struct sluice *s = NULL;
	char name[96];
	int err, ret = 1;
	__u16 port;
	__u8 proto;

	if (argc != 1) {
		lbtool__err("svc get: expected VIP:PORT/PROTO");
		return 1;
	}
	if (lbtool__parse_svc(argv[0], &vip, &port, &proto))
		return 1;
	/* about 4 KiB of backend ids: keep it off the stack */
	info = calloc(1, sizeof(*info));
	if (!info) {
		lbtool__err("svc get: out of memory");
		return 1;
	}
	if (lbtool__open(&s, 0, false))
		goto cleanup;
	err = sluice__service_get(s, &vip, port, proto, info);
	if (err) {
		lbtool__lib_err(err, "svc get");
		goto cleanup;
	}
	printf("service %s  id %u  backends %u\n",
	       sluice_svc__str(&vip, port, proto, name, sizeof(name)), info->svc.svc_id,
	       info->nbackends);
	printf("  packets %llu  bytes %llu  flows %llu  refused %llu\n",
	       (unsigned long long)info->stats.packets, (unsigned long long)info->stats.bytes,
	       (unsigned long long)info->stats.flows, (unsigned long long)info->stats.refused);
	if (info->nbackends)
		printf("  %-6s %-28s %6s %-9s %8s %10s %12s\n", "ID", "BACKEND", "WEIGHT", "STATE",
		       "FLOWS", "PACKETS", "BYTES");
	for (__u32 i = 0; i < info->nbackends; i++) {
		struct sluice_backend_stats st;
		struct sluice_backend be;
		struct sluice_addr a = {};
		char ap[SLUICE_ADDRPORT_STRLEN];

		err = sluice__backend_get(s, info->backend_ids[i], &be, &st);
		if (err) {
			lbtool__lib_err(err, "svc get: reading a backend");
			goto cleanup;
		}
		a.family = be.family;
		memcpy(a.addr, be.addr, sizeof(a.addr));
		printf("  %-6u %-28s %6u %-9s %8llu %10llu %12llu\n", info->backend_ids[i],
		       sluice_addr__str_port(&a, ntohs(be.port), ap, sizeof(ap)), be.weight,
		       lbtool__be_state(be.state), (unsigned long long)st.flows,
		       (unsigned long long)st.packets, (unsigned long long)st.bytes);
	}
	ret = 0;
cleanup:
	sluice__close(s);
	free(info);
	return ret;
}

static const struct cmd svc_cmds[] = {
	{ "set", do_svc_set },     { "del", do_svc_del }, { "get", do_svc_get },
	{ "flags", do_svc_flags }, { NULL, NULL },
};

static int do_svc(int argc, char **argv)
{
	return lbtool__dispatch(svc_cmds, "svc", argc, argv);
}

/* ---- stats ---- */

static int do_stats(int argc, char **argv)
{
	__u64 cnt[SLUICE_CNT__MAX], drops[SLUICE_DROP__MAX], ct = 0;
	struct sluice *s;
	int err;

	(void)argv;
	if (argc) {
		lbtool__err("stats takes no arguments");
		return 1;
	}
	if (lbtool__open(&s, 0, false))
		return 1;
	err = sluice__counters(s, cnt);
	if (!err)
		err = sluice__drops(s, drops);
	if (!err)
		err = sluice__ct_count(s, &ct);
	sluice__close(s);
	if (err)
		return lbtool__lib_err(err, "stats");
	printf("counters:\n");
	for (int i = 0; i < SLUICE_CNT__MAX; i++)
		printf("  %-20s %12llu\n", sluice__counter_name(i), (unsigned long long)cnt[i]);
	printf("drops:\n");
	for (int i = 1; i < SLUICE_DROP__MAX; i++)
		printf("  %-20s %12llu\n", sluice__drop_name(i), (unsigned long long)drops[i]);
	printf("conntrack entries: %llu\n", (unsigned long long)ct);
	return 0;
}

/* ---- fwd-dev: the egress devices XDP redirects to (fwd_devs) ---- */

static int do_fwd_dev(int argc, char **argv)
{
	struct sluice *s;
	int ifindex = 0, err;
	bool on;

	if (argc != 2 || (strcmp(argv[0], "add") && strcmp(argv[0], "del"))) {
		lbtool__err("fwd-dev: expected add|del IFNAME");
		return 1;
	}
	on = !strcmp(argv[0], "add");
	ifindex = lbtool__ifindex(argv[1]);
	if (!ifindex)
		return 1;
	if (lbtool__open(&s, 0, false))
		return 1;
	err = sluice__fwd_dev_set(s, ifindex, on);
	sluice__close(s);
	return err ? lbtool__lib_err(err, "fwd-dev") : 0;
}

static const struct cmd cmds[] = {
	{ "load", do_load },         { "attach", do_attach },   { "detach", do_detach },
	{ "svc", do_svc },           { "stats", do_stats },     { "unpin", do_unpin },
	{ "xdp-pass", do_xdp_pass }, { "fwd-dev", do_fwd_dev }, { NULL, NULL },
};

static int usage(void)
{
	fprintf(stderr,
		"Usage: lbtool [--pin DIR] [-v] COMMAND\n"
		"  load                                  create the maps, pin them under DIR\n"
		"  attach xdp IFNAME [--generic] [--fib|--fwd-off]  attach XDP (native unless\n"
		"                                        --generic); after NAT it redirects to the\n"
		"                                        egress devices of fwd-dev, --fib to any,\n"
		"                                        --fwd-off to none (the kernel forwards)\n"
		"  attach tc IFNAME [--fwd-off]          attach tc ingress (redirects after NAT)\n"
		"  fwd-dev add|del IFNAME                an egress device XDP may redirect to\n"
		"  detach xdp|tc IFNAME [--generic]\n"
		"  svc set VIP:PORT/PROTO [BACKEND:PORT[@WEIGHT] ...]\n"
		"  svc del VIP:PORT/PROTO\n"
		"  svc get VIP:PORT/PROTO\n"
		"  svc flags VIP:PORT/PROTO [snat] [drop-empty]   set the service's source NAT\n"
		"                                        and drop-when-empty flags (others kept)\n"
		"  stats                                 counters, drops by reason, conntrack size\n"
		"  unpin                                 remove the pins under DIR\n"
		"  xdp-pass IFNAME                       attach a bare XDP_PASS program (test\n"
		"                                        veths: lets XDP_TX frames reach this end)\n"
		"DIR defaults to " DEFAULT_PIN_DIR ". IFNAME resolves in the caller's network\n"
		"namespace: run with `nsenter --net=/var/run/netns/NS lbtool ...`.\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	/* '+': stop at the first command word so its own flags reach it */
	while ((c = getopt_long(argc, argv, "+p:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pin_dir = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			return usage();
		}
	}
	libbpf_set_print(lbtool__libbpf_print);
	/* every command but attach works on the pinned maps alone: no
	 * verifier run over programs it would not use (tests/lib/lb_load.h) */
	test__lb_load = TEST_LB_NO_PROGS;
	return lbtool__dispatch(cmds, "lbtool", argc - optind, argv + optind);
}
