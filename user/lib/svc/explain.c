// SPDX-License-Identifier: MIT
/*
 * explain.c - the walk of sluice__explain() (see explain.h): the new-flow
 * path of bpf/lib/lb.h (lb_service, lb_ct_fwd, lb_syn_again, lb_pick,
 * lb_pick_fallback), affinity.h (aff__pick) and sock_lb.h
 * (sock_lb_xlate), step for step, from the live maps and read-only.
 * Clocks as the kernel's: CLOCK_MONOTONIC for conntrack and health
 * (bpf_ktime_get_ns), CLOCK_MONOTONIC_COARSE for affinity
 * (bpf_ktime_get_coarse_ns).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include <bpf/bpf.h>

#include "explain.h"
#include "sluice_hash.h"
#include "sluice_sock_abi.h"
#include "svc_txn.h"
#include "explain_internal.h"

const char *sluice_explain_verdict__str(enum sluice_explain_verdict v)
{
	static const char *const names[] = { "pass",   "established", "balanced", "drop",
					     "refuse", "proceed",     "deny" };

	return (unsigned int)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}

const char *sluice_explain_access__str(enum sluice_explain_access a)
{
	static const char *const names[] = { "not-checked", "no-rules", "allow", "deny",
					     "deferred" };

	return (unsigned int)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}

void xp__step(struct xp *x, const char *step, const char *fmt, ...)
{
	struct sluice_explain *o = x->out;
	struct sluice_explain_step *st;
	va_list ap;

	if (o->nsteps >= SLUICE_EXPLAIN_STEPS)
		return;
	st = &o->steps[o->nsteps++];
	snprintf(st->step, sizeof(st->step), "%s", step);
	va_start(ap, fmt);
	vsnprintf(st->text, sizeof(st->text), fmt, ap);
	va_end(ap);
}

static __u64 xp__clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (__u64)ts.tv_sec * NS_PER_S + (__u64)ts.tv_nsec;
}

const char *xp__addrport(const __u32 *addr, __u8 family, __u16 port_be, char *buf, size_t len)
{
	struct sluice_addr a = { .family = family };

	memcpy(a.addr, addr, sizeof(a.addr));
	return sluice_addr__str_port(&a, ntohs(port_be), buf, len);
}

/* The flow as the kernel keys and hashes it (lb_process / sock_lb_xlate). */
static void xp__tuple(const struct sluice_explain_req *r, struct sluice_ct_key *t)
{
	memset(t, 0, sizeof(*t));
	if (r->path == SLUICE_EXPLAIN_SOCKET) {
		t->saddr[0] = (__u32)r->sock_cookie;
		t->saddr[1] = (__u32)(r->sock_cookie >> 32);
	} else {
		memcpy(t->saddr, r->client.addr, sizeof(t->saddr));
		t->sport = htons(r->client_port);
	}
	memcpy(t->daddr, r->vip.addr, sizeof(t->daddr));
	t->dport = htons(r->port);
	t->proto = r->proto;
	t->family = r->vip.family;
	t->dir = SLUICE_CT_FWD;
}

/* aff_usable() */
static const char *xp__aff_unusable(struct xp *x, __u32 id, __u32 svc_id)
{
	struct sluice_backend_health bh;
	struct sluice_backend be;

	if (bpf_map_lookup_elem(sluice__map_fd(x->s, "backends"), &id, &be))
		return "its backend is gone";
	if (be.svc_id != svc_id)
		return "its backend id now belongs to another service";
	if (be.state == SLUICE_BE_DRAINING || !be.weight)
		return "its backend is draining";
	if (be.state != SLUICE_BE_ACTIVE)
		return "its backend failed its health check";
	if (!bpf_map_lookup_elem(sluice__map_fd(x->s, "backend_health"), &id, &bh) &&
	    (bh.flags & SLUICE_BH_F_EJECTED) && x->now_coarse < bh.ejected_until_ns)
		return "its backend is ejected (outlier detection)";
	return NULL;
}

/* aff__pick()'s lookup: 1 when the entry decides (o->backend_id set). */
static int xp__affinity(struct xp *x)
{
	struct sluice_explain *o = x->out;
	struct sluice_affinity_key k = { .svc_id = o->svc.svc_id };
	__u64 timeout = (__u64)o->svc.affinity_timeout_s * NS_PER_S;
	const char *who = "client", *bad;
	struct sluice_affinity a;
	int err;

	o->aff.checked = true;
	if (x->req->path == SLUICE_EXPLAIN_SOCKET) {
		k.addr[0] = (__u32)x->req->netns_cookie;
		k.addr[1] = (__u32)(x->req->netns_cookie >> 32);
		k.kind = SLUICE_AFF_NETNS;
		who = "network namespace";
	} else {
		memcpy(k.addr, o->tuple.saddr, sizeof(k.addr));
		k.family = o->tuple.family;
		k.kind = SLUICE_AFF_ADDR;
	}
	err = bpf_map_lookup_elem(sluice__map_fd(x->s, "affinity"), &k, &a);
	if (err && err != -ENOENT)
		return maps__err(err, "affinity", "lookup", "of the client");
	if (err) {
		xp__step(x, "affinity",
			 "no entry for this %s: the ordinary pick, then an entry "
			 "is written",
			 who);
		return 0;
	}
	o->aff.found = true;
	o->aff.backend_id = a.backend_id;
	o->aff.idle_ns = x->now_coarse > a.last_seen_ns ? x->now_coarse - a.last_seen_ns : 0;
	if (x->now_coarse > a.last_seen_ns && o->aff.idle_ns > timeout) {
		xp__step(x, "affinity",
			 "entry to backend id %u expired (idle %llus > %us): the "
			 "ordinary pick, the entry rewritten",
			 a.backend_id, (unsigned long long)(o->aff.idle_ns / NS_PER_S),
			 o->svc.affinity_timeout_s);
		return 0;
	}
	bad = xp__aff_unusable(x, a.backend_id, o->svc.svc_id);
	if (bad) {
		o->aff.broken = true;
		xp__step(x, "affinity",
			 "entry to backend id %u is broken: %s; the ordinary pick, "
			 "the entry rewritten (affinity_broken)",
			 a.backend_id, bad);
		return 0;
	}
	o->aff.used = true;
	o->backend_id = a.backend_id;
	xp__step(x, "affinity",
		 "entry (idle %llus of %us): the %s goes to backend id %u, "
		 "its last one (affinity_hit)",
		 (unsigned long long)(o->aff.idle_ns / NS_PER_S), o->svc.affinity_timeout_s, who,
		 a.backend_id);
	return 1;
}

/* The backend id in @slot of the table @fd; 0: none. */
static __u32 xp__slot_id(int fd, __u32 slot)
{
	struct sluice_maglev_pair pair;
	__u32 elem = slot / 2;

	if (bpf_map_lookup_elem(fd, &elem, &pair))
		return 0;
	return pair.id[slot & 1];
}

/* lb_pick_fallback(): the pick @picked of the table @fd is ejected. */
static __u32 xp__fallback(struct xp *x, int fd, __u32 picked)
{
	struct sluice_explain *o = x->out;
	__u32 h2 = sluice_flow_hash_seed(&o->tuple, SLUICE_HASH_SEED_FALLBACK), id, slot;
	int bh_fd = sluice__map_fd(x->s, "backend_health");
	struct sluice_backend_health bh;
	struct sluice_svc_health sh;
	__u32 healthy;

	if (bpf_map_lookup_elem(bh_fd, &picked, &bh) || !xp__health_ejected(&bh, x->now)) {
		xp__step(x, "health",
			 "picked backend id %u is on probation (ejection over): it "
			 "takes the flow",
			 picked);
		return picked;
	}
	if (bpf_map_lookup_elem(sluice__map_fd(x->s, "svc_health"), &o->svc.svc_id, &sh) ||
	    !sh.threshold) {
		xp__step(x, "health",
			 "picked backend id %u is ejected but the service ignores "
			 "health (outlier detection off): it takes the flow",
			 picked);
		return picked;
	}
	healthy = sh.backends - (sh.ejected > sh.backends ? sh.backends : sh.ejected);
	if (healthy * 100 < (__u32)sh.panic_pct * sh.backends) {
		xp__step(x, "health",
			 "picked backend id %u is ejected but the service is in panic "
			 "(%u of %u healthy < %u%%): it takes the flow",
			 picked, healthy, sh.backends, sh.panic_pct);
		return picked;
	}
	o->maglev.fallback = true;
	for (__u32 i = 1; i <= SLUICE_EJECT_TRIES; i++) {
		slot = sluice_fallback_slot(h2, i, o->maglev.m);
		id = xp__slot_id(fd, slot);
		o->maglev.fb_tries = i;
		if (!id || id == picked)
			continue;
		if (!bpf_map_lookup_elem(bh_fd, &id, &bh) && xp__health_ejected(&bh, x->now))
			continue;
		o->maglev.fb_slot = slot;
		xp__step(x, "health",
			 "picked backend id %u is ejected: fallback try %u, slot %u, "
			 "gives backend id %u (health_fallback)",
			 picked, i, slot, id);
		return id;
	}
	xp__step(x, "health",
		 "picked backend id %u is ejected and so are all %u fallback slots: "
		 "it takes the flow",
		 picked, SLUICE_EJECT_TRIES);
	return picked;
}

/* lb_pick(): the Maglev slot, and the fallback off an ejected backend. */
static int xp__maglev(struct xp *x)
{
	struct sluice_explain *o = x->out;
	struct sluice_backend_health bh;
	int fd;

	o->maglev.done = true;
	o->maglev.hash = sluice_flow_hash_seed(&o->tuple, SLUICE_HASH_SEED_FLOW);
	fd = svc__table_read_fd(x->s, o->svc.svc_id);
	/* M from the table itself, as the datapath takes it (lb_table_m) */
	if (fd >= 0 && svc__table_info(fd, &o->maglev.m)) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		xp__step(x, "maglev",
			 "hash %08x; the service's table is not known through "
			 "maglev_ids (an older agent made it?) and the outer map is "
			 "not read on this kernel: its size and slot not read",
			 o->maglev.hash);
		return 0;
	}
	o->maglev.slot = sluice_flow_slot(&o->tuple, o->maglev.m);
	o->maglev.table = true;
	o->maglev.slot_id = xp__slot_id(fd, o->maglev.slot);
	xp__step(x, "maglev", "flow hash %08x, slot %u of %u: backend id %u", o->maglev.hash,
		 o->maglev.slot, o->maglev.m, o->maglev.slot_id);
	o->backend_id = o->maglev.slot_id;
	if (o->backend_id &&
	    !bpf_map_lookup_elem(sluice__map_fd(x->s, "backend_health"), &o->backend_id, &bh) &&
	    (bh.flags & SLUICE_BH_F_EJECTED))
		o->backend_id = xp__fallback(x, fd, o->backend_id);
	close(fd);
	return 0;
}

/* The address's bit in service_addr_bits (what the datapath tests before
 * the services lookup); true when it cannot be read (no filter). */
static bool xp__vip_bit(struct xp *x, const struct sluice_svc_key *k)
{
	__u32 bit = sluice_addr_bit(k->addr, k->family), word = bit / 64;
	__u64 w;

	if (bpf_map_lookup_elem(sluice__map_fd(x->s, "service_addr_bits"), &word, &w))
		return true;
	return w & (1ULL << (bit % 64));
}

/* The service step: 1 when there is a service to walk on. */
static int xp__service(struct xp *x)
{
	struct sluice_explain *o = x->out;
	struct sluice_svc_key k = { .port = o->tuple.dport, .proto = o->tuple.proto };
	char buf[SLUICE_SVC_STRLEN];
	int err;

	memcpy(k.addr, o->tuple.daddr, sizeof(k.addr));
	k.family = o->tuple.family;
	sluice_svc_key__str(&k, buf, sizeof(buf));
	err = bpf_map_lookup_elem(sluice__map_fd(x->s, "services"), &k, &o->svc);
	if (err && err != -ENOENT)
		return maps__err(err, "services", "lookup", "of the service");
	if (x->req->path == SLUICE_EXPLAIN_PACKET && !xp__vip_bit(x, &k)) {
		/* as lb_process(): no bit, no services lookup */
		o->verdict = SLUICE_XV_PASS;
		xp__step(x, "service", "%s%s: the datapath leaves the flow alone", buf,
			 err ? " is no service (no service has its address)" :
			       " exists, but its address's bit in service_addr_bits is clear (a"
			       " library bug: the datapath skips the lookup)");
		return 0;
	}
	if (err || (o->svc.flags & SLUICE_SVC_F_VIP_MARKER)) {
		o->verdict = x->req->path == SLUICE_EXPLAIN_SOCKET ? SLUICE_XV_PROCEED :
								     SLUICE_XV_PASS;
		xp__step(x, "service", "%s is no service%s: the datapath leaves the flow alone",
			 buf, err ? "" : " (its address is a VIP for other ports)");
		return 0;
	}
	o->svc_found = true;
	xp__step(x, "service", "%s: id %u, %u backend%s in the table, flags:%s%s%s%s%s%s%s%s", buf,
		 o->svc.svc_id, o->svc.backend_count, o->svc.backend_count == 1 ? "" : "s",
		 o->svc.flags & SLUICE_SVC_F_AFFINITY ? " affinity" : "",
		 o->svc.flags & SLUICE_SVC_F_SOURCE_RANGES ? " source-ranges" : "",
		 o->svc.flags & SLUICE_SVC_F_POLICY ? " access-policy" : "",
		 o->svc.flags & SLUICE_SVC_F_POLICY_ALLOWLIST ? " allow-list" : "",
		 o->svc.flags & SLUICE_SVC_F_POLICY_REFUSE ? " refuse-denied" : "",
		 o->svc.flags & SLUICE_SVC_F_SNAT ? " snat" : "",
		 o->svc.flags & SLUICE_SVC_F_DROP_EMPTY ? " drop-when-empty" : "",
		 o->svc.flags & (SLUICE_SVC_F_AFFINITY | SLUICE_SVC_F_SOURCE_RANGES |
				 SLUICE_SVC_F_POLICY | SLUICE_SVC_F_SNAT |
				 SLUICE_SVC_F_DROP_EMPTY) ?
			 "" :
			 " none");
	return 1;
}

/* The socket LB deferred: the packet path's access check of the socket's
 * first packet, when the caller knows the source the route gives it. */
static int xp__packet_policy(struct xp *x)
{
	const struct sluice_explain_req *r = x->req;
	struct sluice_explain *o = x->out;
	struct sluice_explain_policy *p = &o->packet_policy;
	struct sluice_ct_key t = { .family = r->vip.family };
	char src[SLUICE_ADDRPORT_STRLEN];
	int err;

	if (!r->route_src.family) {
		xp__step(x, "packet",
			 "the packet path checks the source the route gives the first packet "
			 "(name it to see that check: --route-src)");
		return 0;
	}
	memcpy(t.saddr, r->route_src.addr, sizeof(t.saddr));
	t.sport = htons(r->route_sport);
	err = explain__policy(x->s, &o->svc, &t, SLUICE_EXPLAIN_PACKET, p);
	if (err)
		return err;
	o->packet_checked = true;
	if (r->route_sport)
		xp__addrport(t.saddr, t.family, t.sport, src, sizeof(src));
	else
		sluice_addr__str(&r->route_src, src, sizeof(src));
	if (!r->route_sport && p->ports)
		xp__step(x, "packet",
			 "from %s: a rule that holds it depends on the client port, not known "
			 "yet (%s for port 0: %s)",
			 src, sluice_explain_access__str(p->verdict), p->why);
	else if (p->verdict == SLUICE_XA_DENY)
		xp__step(x, "packet", "from %s: deny: %s; the first packet is dropped (%s)", src,
			 p->why,
			 o->tuple.proto == IPPROTO_TCP ? "connect() times out" :
							 "the datagram is lost");
	else
		xp__step(x, "packet",
			 "from %s: %s: %s; then balanced by its 5-tuple (explain ADDR:PORT "
			 "SVC once the port is known)",
			 src, sluice_explain_access__str(p->verdict), p->why);
	return 0;
}

/* The access step; 1 when it decides the flow (dropped, or on the socket
 * path denied or deferred). */
static int xp__access(struct xp *x)
{
	struct sluice_explain *o = x->out;
	bool socket = x->req->path == SLUICE_EXPLAIN_SOCKET;
	int err;

	if (socket)
		err = explain__sock_policy(x->s, &o->svc, x->req, &o->policy);
	else
		err = explain__policy(x->s, &o->svc, &o->tuple, x->req->path, &o->policy);
	if (err)
		return err;
	xp__step(x, "policy", "%s: %s", sluice_explain_access__str(o->policy.verdict),
		 o->policy.why);
	if (o->policy.verdict == SLUICE_XA_DEFERRED) {
		o->verdict = SLUICE_XV_PROCEED;
		err = xp__packet_policy(x);
		return err ? err : 1;
	}
	if (o->policy.verdict != SLUICE_XA_DENY)
		return 0;
	if (socket) {
		/* sock_lb_xlate(): bpf_set_retval(-EPERM), SYS_REJECT */
		o->verdict = SLUICE_XV_DENY;
		xp__step(x, "verdict",
			 "deny: connect()/sendmsg() fails with EPERM (socket LB counter "
			 "policy_denied)");
		return 1;
	}
	o->verdict = SLUICE_XV_DROP;
	o->drop = o->policy.drop;
	return 1;
}

/* No backend in the table: drop (drop-when-empty) or refuse. */
static void xp__empty(struct xp *x)
{
	struct sluice_explain *o = x->out;

	if (x->req->path == SLUICE_EXPLAIN_SOCKET &&
	    (x->req->sock_cfg & SLUICE_SOCK_CFG_NO_REFUSE)) {
		o->verdict = SLUICE_XV_PROCEED;
		xp__step(x, "backends",
			 "none, and the socket LB does not refuse (NO_REFUSE): the socket goes "
			 "to the VIP as it is and the packet path answers");
	} else if (x->req->path == SLUICE_EXPLAIN_SOCKET) {
		o->verdict = SLUICE_XV_REFUSE;
		xp__step(x, "backends", "none: connect()/sendmsg() fails with ECONNREFUSED");
	} else if (o->svc.flags & SLUICE_SVC_F_DROP_EMPTY) {
		o->verdict = SLUICE_XV_DROP;
		o->drop = SLUICE_DROP_NO_LOCAL_BACKEND;
		xp__step(x, "backends",
			 "none and drop-when-empty: dropped unanswered "
			 "(no_local_backend), the client's balancer tries another node");
	} else {
		o->verdict = SLUICE_XV_REFUSE;
		xp__step(x, "backends", "none: refused (%s)",
			 o->tuple.proto == IPPROTO_TCP ? "TCP RST from the VIP" :
							 "ICMP port unreachable");
	}
}

/* What happens to the flow at a backend that cannot take new flows. */
static const char *xp__be_note(const struct sluice_explain *o)
{
	switch (o->health.state) {
	case SLUICE_BEH_DRAINING:
		return o->ct.used ? "draining: it owns no slot, but existing flows stay on it" :
				    "draining: it owns no slot (an affinity entry to it breaks)";
	case SLUICE_BEH_UNHEALTHY:
		return o->ct.used ? "failed its health check: out of the table, existing flows "
				    "stay" :
				    "failed its health check: out of the table";
	case SLUICE_BEH_EJECTED:
		return o->ct.used ?
			       "ejected by outlier detection: existing flows stay, new ones "
			       "fall back to other slots" :
			       "ejected by outlier detection: it takes the flow anyway (see the health step)";
	case SLUICE_BEH_PROBATION:
		return "on probation: its next connection decides whether it stays";
	default:
		return "healthy";
	}
}

/* The chosen backend, its health, NAT, and the verdict. */
static int xp__backend(struct xp *x)
{
	struct sluice_explain *o = x->out;
	struct sluice_svc_health sh = {};
	bool socket = x->req->path == SLUICE_EXPLAIN_SOCKET;
	int err;

	err = bpf_map_lookup_elem(sluice__map_fd(x->s, "backends"), &o->backend_id, &o->be);
	if (err && err != -ENOENT)
		return maps__err(err, "backends", "lookup", "of the backend");
	o->be_found = !err;
	if (!o->be_found && o->ct.used) {
		xp__step(x, "backend",
			 "id %u is no longer in backends (removed): the flow keeps "
			 "its address %s until it ends",
			 o->backend_id, x->be_str);
		xp__step(x, "verdict", "established: DNAT to %s", x->be_str);
		return 0;
	}
	if (!o->be_found || (socket && o->be.family != o->tuple.family)) {
		o->verdict = socket ? SLUICE_XV_PROCEED : SLUICE_XV_DROP;
		o->drop = socket ? 0 : SLUICE_DROP_NO_BACKEND;
		xp__step(x, "verdict",
			 socket ? "backend id %u not found: left to the packet path" :
				  "backend id %u not found (a removal raced): dropped "
				  "(no_backend)",
			 o->backend_id);
		return 0;
	}
	xp__addrport(o->be.addr, o->be.family, o->be.port, x->be_str, sizeof(x->be_str));
	sluice__svc_health(x->s, o->be.svc_id, &sh);
	err = sluice__backend_health(x->s, o->backend_id, &o->be, &sh, &o->health);
	if (err)
		return err;
	xp__step(x, "backend", "%s (id %u, weight %u): %s%s", x->be_str, o->backend_id,
		 o->be.weight, xp__be_note(o),
		 o->health.fails ? ", with consecutive failures counted" : "");
	if (!socket && ((o->svc.flags & SLUICE_SVC_F_SNAT) ||
			(o->be.family == o->tuple.family &&
			 !memcmp(o->be.addr, o->tuple.saddr, sizeof(o->be.addr))))) {
		o->snat = true;
		xp__step(x, "nat", "source NAT to the VIP and a port of %u-%u (%s)",
			 SLUICE_SNAT_PORT_MIN, SLUICE_SNAT_PORT_MAX,
			 o->svc.flags & SLUICE_SVC_F_SNAT ? "the service's snat flag" :
							    "hairpin: the client is the backend");
	}
	if (o->verdict != SLUICE_XV_ESTABLISHED)
		o->verdict = SLUICE_XV_BALANCED;
	xp__step(x, "verdict", "%s: %s to %s", sluice_explain_verdict__str(o->verdict),
		 socket ? "connect() rewritten" : "DNAT", x->be_str);
	return 0;
}

/* The new-flow part: access, emptiness, affinity, Maglev, health. */
static int xp__new_flow(struct xp *x)
{
	struct sluice_explain *o = x->out;
	int err;

	err = xp__access(x);
	if (err)
		return err < 0 ? err : 0;
	if (!o->svc.backend_count) {
		xp__empty(x);
		return 0;
	}
	if ((o->svc.flags & SLUICE_SVC_F_AFFINITY) && o->svc.affinity_timeout_s) {
		err = xp__affinity(x);
		if (err < 0)
			return err;
	}
	if (!o->aff.used) {
		err = xp__maglev(x);
		if (err)
			return err;
	}
	if (!o->backend_id && !o->maglev.table && o->maglev.done) {
		xp__step(x, "verdict", "undecided: the service's table could not be read");
		o->verdict = SLUICE_XV_PROCEED;
		return 0;
	}
	return xp__backend(x);
}

static int xp__check(const struct sluice_explain_req *r)
{
	char buf[SLUICE_ADDR_STRLEN];

	if (r->proto != IPPROTO_TCP && r->proto != IPPROTO_UDP) {
		sluice__set_err("protocol %u: only tcp and udp are balanced", r->proto);
		return -EINVAL;
	}
	if (r->vip.family != SLUICE_AF_INET && r->vip.family != SLUICE_AF_INET6) {
		sluice__set_err("the service address has no family");
		return -EINVAL;
	}
	if (r->path == SLUICE_EXPLAIN_PACKET && r->client.family != r->vip.family) {
		sluice__set_err("client %s is not of the service's address family",
				sluice_addr__str(&r->client, buf, sizeof(buf)));
		return -EINVAL;
	}
	/* an IPv6 socket reaches an IPv4 service (IPv4-mapped); not the reverse */
	if (r->path == SLUICE_EXPLAIN_SOCKET && r->sock_src.family == SLUICE_AF_INET &&
	    r->vip.family == SLUICE_AF_INET6) {
		sluice__set_err("socket address %s: an IPv4 socket cannot reach an IPv6 service",
				sluice_addr__str(&r->sock_src, buf, sizeof(buf)));
		return -EINVAL;
	}
	if (r->path == SLUICE_EXPLAIN_SOCKET && r->route_src.family &&
	    r->route_src.family != r->vip.family) {
		sluice__set_err("route source %s is not of the service's address family",
				sluice_addr__str(&r->route_src, buf, sizeof(buf)));
		return -EINVAL;
	}
	return 0;
}

/* sock_lb_xlate()'s first tests, before the service lookup: 1 when the
 * socket LB leaves the socket alone (no LB attached, UDP with NO_UDP). */
static int xp__sock_skips(struct xp *x)
{
	const struct sluice_explain_req *req = x->req;

	if (req->path != SLUICE_EXPLAIN_SOCKET)
		return 0;
	if (req->sock_lb_off) {
		x->out->verdict = SLUICE_XV_PROCEED;
		xp__step(x, "socket LB",
			 "not attached: connect()/sendmsg() go to the VIP as they are and the "
			 "packet path decides");
		return 1;
	}
	if (req->proto == IPPROTO_UDP && (req->sock_cfg & SLUICE_SOCK_CFG_NO_UDP)) {
		x->out->verdict = SLUICE_XV_PROCEED;
		xp__step(x, "socket LB",
			 "UDP is left to the packet path (NO_UDP): sendmsg() goes to the VIP as "
			 "it is");
		return 1;
	}
	return 0;
}

int sluice__explain(struct sluice *s, const struct sluice_explain_req *req,
		    struct sluice_explain *out)
{
	struct xp x = { .s = s, .req = req, .out = out };
	int err;

	sluice__clear_err();
	memset(out, 0, sizeof(*out));
	err = xp__check(req);
	if (err)
		return err;
	x.now = xp__clock(CLOCK_MONOTONIC);
	x.now_coarse = xp__clock(CLOCK_MONOTONIC_COARSE);
	xp__tuple(req, &out->tuple);
	if (xp__sock_skips(&x))
		return 0;
	err = xp__service(&x);
	if (err <= 0)
		return err;
	if (req->path == SLUICE_EXPLAIN_PACKET) {
		err = xp__conntrack(&x);
		if (err < 0)
			return err;
		if (err)
			return xp__backend(&x);
	} else {
		xp__step(&x, "conntrack",
			 "socket LB: no conntrack; every connect() is a new pick "
			 "hashed by the socket cookie %llu",
			 (unsigned long long)req->sock_cookie);
	}
	return xp__new_flow(&x);
}
