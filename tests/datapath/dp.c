// SPDX-License-Identifier: MIT
/*
 * dp.c - runner for datapath packet tests; see dp.h for the contract.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>

#include "dp.h"

const __u8 MAC_CLIENT[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
const __u8 MAC_NODE[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x02 };
const __u8 MAC_BACKEND[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x03 };

struct dp_world_svc {
	const char *vip;
	__u16 port;
	__u8 proto;
	struct dp_be be[3];
	int nbe;
};

/* clang-format off */
static const struct dp_world_svc dp_world[S__N] = {
	[S_T4] = { VIP4, SVC_PORT_TCP, IPPROTO_TCP, { { BE4, BE_PORT_TCP, 1 } }, 1 },
	[S_U4] = { VIP4, SVC_PORT_UDP, IPPROTO_UDP, { { BE4, BE_PORT_UDP, 1 } }, 1 },
	[S_T6] = { VIP6, SVC_PORT_TCP, IPPROTO_TCP, { { BE6, BE_PORT_TCP, 1 } }, 1 },
	[S_U6] = { VIP6, SVC_PORT_UDP, IPPROTO_UDP, { { BE6, BE_PORT_UDP, 1 } }, 1 },
	[S_T4_EMPTY] = { VIP4_EMPTY, SVC_PORT_TCP, IPPROTO_TCP, { { 0 } }, 0 },
	[S_U4_EMPTY] = { VIP4_EMPTY, SVC_PORT_UDP, IPPROTO_UDP, { { 0 } }, 0 },
	[S_T6_EMPTY] = { VIP6_EMPTY, SVC_PORT_TCP, IPPROTO_TCP, { { 0 } }, 0 },
	[S_U6_EMPTY] = { VIP6_EMPTY, SVC_PORT_UDP, IPPROTO_UDP, { { 0 } }, 0 },
	[S_T4_MULTI] = { VIP4_MULTI, SVC_PORT_TCP, IPPROTO_TCP,
			 { { BE4_M1, BE_PORT_TCP, 1 }, { BE4_M2, BE_PORT_TCP, 1 },
			   { BE4_M3, BE_PORT_TCP, 1 } }, 3 },
	[S_T6_MULTI] = { VIP6_MULTI, SVC_PORT_TCP, IPPROTO_TCP,
			 { { BE6_M1, BE_PORT_TCP, 1 }, { BE6_M2, BE_PORT_TCP, 1 },
			   { BE6_M3, BE_PORT_TCP, 1 } }, 3 },
};
/* clang-format on */

/* "step 2/3" of the running case, printed with every failure. */
static char dp__where[64];

void dp__fail(const struct dp *d, const char *fmt, ...)
{
	va_list ap;

	test__failed = 1;
	fprintf(stderr, "  [%s%s%s] ", d ? d->tag : "-", dp__where[0] ? " " : "", dp__where);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

void dp__at(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dp__where, sizeof(dp__where), fmt, ap);
	va_end(ap);
}

struct sluice_addr dp__addr(const char *text)
{
	struct sluice_addr a = { 0 };

	if (inet_pton(AF_INET, text, &a.addr[0]) == 1) {
		a.family = SLUICE_AF_INET;
	} else if (inet_pton(AF_INET6, text, a.addr) == 1) {
		a.family = SLUICE_AF_INET6;
	} else {
		fprintf(stderr, "dp: bad address literal %s\n", text);
		abort();
	}
	return a;
}

int dp__service(struct dp *d, const char *vip, __u16 port, __u8 proto, const struct dp_be *be,
		int n)
{
	struct sluice_backend_spec specs[SLUICE_MAX_SVC_BACKENDS];
	struct sluice_service_spec spec = {
		.vip = dp__addr(vip),
		.port = port,
		.proto = proto,
		.nbackends = (__u32)n,
		.backends = n ? specs : NULL,
	};
	int err;

	for (int i = 0; i < n; i++) {
		specs[i] = (struct sluice_backend_spec){
			.addr = dp__addr(be[i].addr),
			.port = be[i].port,
			.weight = be[i].weight,
		};
	}
	err = sluice__service_set(d->s, &spec);
	if (err)
		dp__fail(d, "sluice__service_set(%s:%u/%u, %d backends): %d (%s)", vip, port, proto,
			 n, err, sluice__errmsg());
	return err;
}

/* The standard services in one sluice__service_set_many(): its table
 * swaps overlap their RCU grace periods (one each, ~20 ms) where one
 * service_set() per service would wait for them one after another. */
static bool dp__world(struct dp *d)
{
	struct sluice_backend_spec be[S__N][3];
	struct sluice_service_spec specs[S__N];
	__u32 n = 0, applied = 0, failed = 0;
	int err;

	for (int i = S_NONE + 1; i < S__N; i++) {
		const struct dp_world_svc *w = &dp_world[i];

		for (int j = 0; j < w->nbe; j++)
			be[i][j] = (struct sluice_backend_spec){ .addr = dp__addr(w->be[j].addr),
								 .port = w->be[j].port,
								 .weight = w->be[j].weight };
		specs[n++] = (struct sluice_service_spec){ .vip = dp__addr(w->vip),
							   .port = w->port,
							   .proto = w->proto,
							   .nbackends = (__u32)w->nbe,
							   .backends = w->nbe ? be[i] : NULL };
	}
	err = sluice__service_set_many(d->s, specs, n, &applied, &failed);
	if (err)
		dp__fail(d, "sluice__service_set_many(world, %u services): %d at %u (%s)", n, err,
			 failed, sluice__errmsg());
	return !err;
}

bool dp__open(struct dp *d, enum dp_prog prog, bool world)
{
	return dp__open_cfg(d, prog, world, 0);
}

bool dp__open_cfg(struct dp *d, enum dp_prog prog, bool world, __u32 cfg)
{
	struct sluice_opts opts = { .cfg = cfg };
	int err;

	memset(d, 0, sizeof(*d));
	d->prog = prog;
	d->tag = prog == DP_XDP ? "xdp" : "tc";
	d->s = dp__cache_open(cfg, &d->cached);
	if (d->s) {
		err = 0;
	} else {
		dp__load_only(prog);
		err = sluice__open(&d->s, &opts);
		dp__load_only(0);
	}
	if (err) {
		dp__fail(d, "sluice__open: %d (%s)", err, sluice__errmsg());
		d->s = NULL;
		return false;
	}
	d->prog_fd = sluice__prog_fd(d->s, prog == DP_XDP ? SLUICE_PROG_XDP : SLUICE_PROG_TC);
	if (d->prog_fd < 0) {
		dp__fail(d, "sluice__prog_fd: %d", d->prog_fd);
		return false;
	}
	return !world || dp__world(d);
}

void dp__close(struct dp *d)
{
	if (d->s)
		sluice__close(d->s);
	d->s = NULL;
	dp__cache_release(d->cached);
	d->cached = NULL;
}

int dp__run(struct dp *d, const struct pkt *in, struct pkt *out, int *verdict)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in->buf, .data_size_in = (__u32)in->len,
		    .data_out = out->buf, .data_size_out = PKT_MAX, .repeat = 1, );
	int err;

	pkt__init(out);
	err = bpf_prog_test_run_opts(d->prog_fd, &o);
	if (err)
		return -errno;
	out->len = o.data_size_out;
	*verdict = (int)o.retval;
	return 0;
}

bool dp__wait_done(const long *done, long n)
{
	struct timespec t0, now, nap = { 0, 20000 };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (__atomic_load_n(done, __ATOMIC_ACQUIRE) < n) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 10)
			return false;
		nanosleep(&nap, NULL);
	}
	return true;
}

bool dp__send(struct dp *d, const struct pkt *in, struct pkt *out, int *verdict)
{
	int err = dp__run(d, in, out, verdict);

	if (err)
		dp__fail(d, "BPF_PROG_TEST_RUN on a %zu-byte frame: %d (%s)", in->len, err,
			 strerror(-err));
	return !err;
}

int dp__verdict_for(const struct dp *d, int xdp_verdict)
{
	if (d->prog == DP_XDP)
		return xdp_verdict;
	switch (xdp_verdict) {
	case XDP_PASS:
		return TC_ACT_OK;
	case XDP_DROP:
		return TC_ACT_SHOT;
	case XDP_TX:
	case XDP_REDIRECT:
		return TC_ACT_REDIRECT;
	}
	return TC_ACT_UNSPEC;
}

const char *dp__verdict_name(const struct dp *d, int v)
{
	static const char *const xdp[] = { "XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX",
					   "XDP_REDIRECT" };
	static char buf[32];

	if (d->prog == DP_XDP && v >= 0 && v <= XDP_REDIRECT)
		return xdp[v];
	if (d->prog == DP_TC) {
		switch (v) {
		case TC_ACT_UNSPEC:
			return "TC_ACT_UNSPEC";
		case TC_ACT_OK:
			return "TC_ACT_OK";
		case TC_ACT_SHOT:
			return "TC_ACT_SHOT";
		case TC_ACT_REDIRECT:
			return "TC_ACT_REDIRECT";
		}
	}
	snprintf(buf, sizeof(buf), "verdict %d", v);
	return buf;
}

void dp__build(struct pkt *p, const struct dp_pkt *s)
{
	const __u8 *smac = MAC_CLIENT, *dmac = MAC_NODE;
	size_t dlen = s->data ? strlen(s->data) : 0;
	__u8 ttl;

	pkt__init(p);
	if (s->build) {
		s->build(p);
		pkt__finish(p);
		return;
	}
	if (s->l2 == L2_BACKEND)
		smac = MAC_BACKEND;
	if (s->l2 == L2_REFUSAL) {
		smac = MAC_NODE;
		dmac = MAC_CLIENT;
	}
	if (s->smac)
		smac = s->smac;
	if (s->dmac)
		dmac = s->dmac;
	if (s->ttl)
		ttl = s->ttl;
	else
		ttl = s->refusal ? 64 : 57;
	if (s->af == 4) {
		pkt__eth(p, smac, dmac, 0x0800);
		pkt__ipv4(p, s->saddr, s->daddr, s->proto, .ttl = ttl,
			  .id = s->refusal ? 0 : 0x1234, .frag = PKT_IP_DF);
	} else {
		pkt__eth(p, smac, dmac, 0x86dd);
		pkt__ipv6(p, s->saddr, s->daddr, s->proto, .hop_limit = ttl);
	}
	if (s->proto == IPPROTO_TCP)
		pkt__tcp(p, s->sport, s->dport, s->seq, s->ack, s->flags,
			 .window = s->refusal ? 0 : 502);
	else
		pkt__udp(p, s->sport, s->dport, .csum_zero = s->csum0);
	pkt__payload(p, s->data, dlen);
	pkt__finish(p);
	if (s->seed)
		pkt__l4_seed(p);
}

void dp__hexdiff(const struct pkt *exp, const __u8 *got, size_t glen)
{
	size_t n = glen > exp->len ? glen : exp->len;
	size_t first = n;

	for (size_t i = 0; i < n; i++) {
		if (i >= glen || i >= exp->len || got[i] != exp->buf[i]) {
			first = i;
			break;
		}
	}
	fprintf(stderr, "    got %zu bytes, expected %zu", glen, exp->len);
	if (first < n)
		fprintf(stderr, "; first difference at byte %zu (%s)", first,
			pkt__field_name(exp, first));
	fprintf(stderr, "\n");
	/* got line, then the expected line with ".." where bytes agree */
	for (size_t row = 0; row < n; row += 16) {
		bool differs = false;

		fprintf(stderr, "    %04zx got ", row);
		for (size_t i = row; i < row + 16 && i < n; i++) {
			if (i < glen)
				fprintf(stderr, "%02x ", got[i]);
			else
				fprintf(stderr, "-- ");
			if (i >= glen || i >= exp->len || got[i] != exp->buf[i])
				differs = true;
		}
		fprintf(stderr, "\n");
		if (!differs)
			continue;
		fprintf(stderr, "         exp ");
		for (size_t i = row; i < row + 16 && i < n; i++) {
			if (i >= exp->len)
				fprintf(stderr, "-- ");
			else if (i < glen && got[i] == exp->buf[i])
				fprintf(stderr, ".. ");
			else
				fprintf(stderr, "%02x ", exp->buf[i]);
		}
		fprintf(stderr, "\n");
	}
}

bool dp__expect_bytes(const struct dp *d, const char *what, const struct pkt *got,
		      const struct pkt *exp)
{
	if (got->len == exp->len && !memcmp(got->buf, exp->buf, got->len))
		return true;
	dp__fail(d, "%s: output bytes differ", what);
	dp__hexdiff(exp, got->buf, got->len);
	return false;
}

int dp__which(const struct pkt *got, const struct dp_pkt *spec, const char *const *addrs, int n,
	      __u16 port)
{
	struct pkt exp;

	for (int i = 0; i < n; i++) {
		struct dp_pkt s = *spec;

		s.daddr = addrs[i];
		s.dport = port;
		dp__build(&exp, &s);
		if (got->len == exp.len && !memcmp(got->buf, exp.buf, exp.len))
			return i;
	}
	return -1;
}

bool dp__counts(struct dp *d, struct dp_counts *c)
{
	int err = sluice__counters(d->s, c->cnt);

	if (!err)
		err = sluice__drops(d->s, c->drop);
	if (err)
		dp__fail(d, "reading counters: %d (%s)", err, sluice__errmsg());
	return !err;
}

bool dp__expect_counts(const struct dp *d, const char *what, const struct dp_counts *before,
		       const struct dp_counts *after, const __u64 *cnt, const __u64 *drop)
{
	bool ok = true;

	for (int i = 0; i < SLUICE_CNT__MAX; i++) {
		__u64 delta = after->cnt[i] - before->cnt[i];

		if (delta != cnt[i]) {
			dp__fail(d, "%s: counter %s moved by %llu, expected %llu", what,
				 sluice__counter_name(i), (unsigned long long)delta,
				 (unsigned long long)cnt[i]);
			ok = false;
		}
	}
	for (int i = 0; i < SLUICE_DROP__MAX; i++) {
		__u64 delta = after->drop[i] - before->drop[i];

		if (delta != drop[i]) {
			dp__fail(d, "%s: drop %s moved by %llu, expected %llu", what,
				 sluice__drop_name(i), (unsigned long long)delta,
				 (unsigned long long)drop[i]);
			ok = false;
		}
	}
	return ok;
}

/* Stats of every world service and the sum over its backends. */
struct dp_stats {
	struct sluice_svc_stats svc[S__N];
	struct sluice_backend_stats be[S__N];
};

static bool dp__stats(struct dp *d, struct dp_stats *st)
{
	static struct sluice_service_info info;

	memset(st, 0, sizeof(*st));
	for (int i = S_NONE + 1; i < S__N; i++) {
		const struct dp_world_svc *w = &dp_world[i];
		struct sluice_addr vip = dp__addr(w->vip);
		int err;

		err = sluice__service_get(d->s, &vip, w->port, w->proto, &info);
		if (err) {
			dp__fail(d, "sluice__service_get(%s:%u/%u): %d (%s)", w->vip, w->port,
				 w->proto, err, sluice__errmsg());
			return false;
		}
		st->svc[i] = info.stats;
		for (__u32 b = 0; b < info.nbackends; b++) {
			struct sluice_backend_stats bs;
			struct sluice_backend be;

			err = sluice__backend_get(d->s, info.backend_ids[b], &be, &bs);
			if (err) {
				dp__fail(d, "sluice__backend_get(%u): %d (%s)", info.backend_ids[b],
					 err, sluice__errmsg());
				return false;
			}
			st->be[i].packets += bs.packets;
			st->be[i].bytes += bs.bytes;
			st->be[i].flows += bs.flows;
		}
	}
	return true;
}

/* clang-format off */
static const char *const dp_svc_names[S__N] = {
	[S_T4] = "tcp " VIP4 ":80", [S_U4] = "udp " VIP4 ":53",
	[S_T6] = "tcp [" VIP6 "]:80", [S_U6] = "udp [" VIP6 "]:53",
	[S_T4_EMPTY] = "tcp " VIP4_EMPTY ":80", [S_U4_EMPTY] = "udp " VIP4_EMPTY ":53",
	[S_T6_EMPTY] = "tcp [" VIP6_EMPTY "]:80", [S_U6_EMPTY] = "udp [" VIP6_EMPTY "]:53",
	[S_T4_MULTI] = "tcp " VIP4_MULTI ":80", [S_T6_MULTI] = "tcp [" VIP6_MULTI "]:80",
};
/* clang-format on */

#define DP_DELTA(field, a, b) ((unsigned long long)((a).field - (b).field))

static bool dp__expect_stats(const struct dp *d, const struct dp_stats *before,
			     const struct dp_stats *after, enum dp_svc_id svc, enum dp_acct acct,
			     size_t frame_len)
{
	bool ok = true;

	for (int i = S_NONE + 1; i < S__N; i++) {
		struct sluice_svc_stats e = { 0 };
		struct sluice_backend_stats be;
		const struct sluice_svc_stats *a = &after->svc[i], *b = &before->svc[i];
		const struct sluice_backend_stats *ba = &after->be[i], *bb = &before->be[i];

		if (i == (int)svc && acct != ACCT_NONE) {
			e.packets = 1;
			e.bytes = frame_len;
			e.flows = acct == ACCT_NEW;
			e.refused = acct == ACCT_REFUSED;
		}
		/* backends only see what is sent to them */
		be = (struct sluice_backend_stats){ e.packets, e.bytes, e.flows };
		if (acct == ACCT_REFUSED || acct == ACCT_SEEN)
			be = (struct sluice_backend_stats){ 0 };
		if (a->packets - b->packets != e.packets || a->bytes - b->bytes != e.bytes ||
		    a->flows - b->flows != e.flows || a->refused - b->refused != e.refused) {
			dp__fail(
				d,
				"svc_stats of %s moved by packets %llu bytes %llu flows %llu refused %llu, expected %llu/%llu/%llu/%llu",
				dp_svc_names[i], DP_DELTA(packets, *a, *b), DP_DELTA(bytes, *a, *b),
				DP_DELTA(flows, *a, *b), DP_DELTA(refused, *a, *b),
				(unsigned long long)e.packets, (unsigned long long)e.bytes,
				(unsigned long long)e.flows, (unsigned long long)e.refused);
			ok = false;
		}
		if (ba->packets - bb->packets != be.packets || ba->bytes - bb->bytes != be.bytes ||
		    ba->flows - bb->flows != be.flows) {
			dp__fail(
				d,
				"backend_stats (sum) of %s moved by packets %llu bytes %llu flows %llu, expected %llu/%llu/%llu",
				dp_svc_names[i], DP_DELTA(packets, *ba, *bb),
				DP_DELTA(bytes, *ba, *bb), DP_DELTA(flows, *ba, *bb),
				(unsigned long long)be.packets, (unsigned long long)be.bytes,
				(unsigned long long)be.flows);
			ok = false;
		}
	}
	return ok;
}

bool dp__run_steps(struct dp *d, const struct dp_case *c)
{
	static struct pkt in, out, exp;
	struct dp_stats sb, sa;
	struct dp_counts cb, ca;
	int nsteps = 0, verdict, want;
	bool ok = true;

	while (nsteps < DP_MAX_STEPS && c->steps[nsteps].in)
		nsteps++;
	for (int i = 0; i < nsteps; i++) {
		const struct dp_step *st = &c->steps[i];

		if (c->name && test__current && strcmp(c->name, test__current))
			dp__at("%s, step %d/%d", c->name, i + 1, nsteps);
		else
			dp__at("step %d/%d", i + 1, nsteps);
		dp__build(&in, st->in);
		dp__build(&exp, st->out ? st->out : st->in);
		if (!dp__counts(d, &cb) || !dp__stats(d, &sb))
			return false;
		if (!dp__send(d, &in, &out, &verdict))
			return false;
		want = dp__verdict_for(d, st->verdict);
		if (verdict != want) {
			dp__fail(d, "verdict %s, expected %s", dp__verdict_name(d, verdict),
				 dp__verdict_name(d, want));
			ok = false;
		}
		if (st->verdict != XDP_DROP)
			ok &= dp__expect_bytes(d, "output", &out, &exp);
		if (!dp__counts(d, &ca) || !dp__stats(d, &sa))
			return false;
		ok &= dp__expect_counts(d, "counters", &cb, &ca, st->cnt, st->drop);
		ok &= dp__expect_stats(d, &sb, &sa, st->svc, st->acct, in.len);
	}
	dp__where[0] = '\0';
	return ok;
}

static bool dp__open_case(struct dp *d, enum dp_prog prog, const struct dp_case *c)
{
	return dp__open_cfg(d, prog, true, c->cfg) && (!c->setup || c->setup(d));
}

static int dp__case_child(struct dp *parent, void *arg)
{
	const struct dp_case *c = arg;
	struct dp d;

	if (!c->netns(parent))
		return 1;
	if (dp__open_case(&d, parent->prog, c))
		dp__run_steps(&d, c);
	dp__close(&d);
	return test__failed;
}

void dp__run_case(const struct dp_case *c)
{
	static const enum dp_prog progs[] = { DP_XDP, DP_TC };
	int failed_before = test__failed;

	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		struct dp d;

		if (c->progs && !(c->progs & progs[i]))
			continue;
		if (c->netns) {
			/* only the tag and program matter to the child */
			memset(&d, 0, sizeof(d));
			d.prog = progs[i];
			d.tag = progs[i] == DP_XDP ? "xdp" : "tc";
			dp__in_child(&d, dp__case_child, (void *)c);
			continue;
		}
		if (dp__open_case(&d, progs[i], c))
			dp__run_steps(&d, c);
		dp__close(&d);
		dp__where[0] = '\0';
	}
	if (test__failed && !failed_before && c->desc)
		fprintf(stderr, "  case: %s\n", c->desc);
}

void dp__each_prog(unsigned int progs, void (*fn)(struct dp *d))
{
	static const enum dp_prog all[] = { DP_XDP, DP_TC };

	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		struct dp d;

		if (progs && !(progs & all[i]))
			continue;
		if (dp__open(&d, all[i], true))
			fn(&d);
		dp__close(&d);
		dp__where[0] = '\0';
	}
}
