/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb.h - the load-balancing decision shared by the XDP and tc entries:
 * parse, service lookup, conntrack, Maglev pick. It decides and counts; the
 * entry files apply the result with their own packet-writing primitives.
 */
#ifndef SLUICE_BPF_LB_H
#define SLUICE_BPF_LB_H

#include "common.h"
#include "maps.h"
#include "parse.h"
#include "ct.h"
#include "stats.h"
#include "health.h"
#include "src_range.h"
#include "policy.h"
#include "snat.h"
#include "sluice_hash.h"
#include "reply_filter.h"

enum lb_action {
	LB_PASS,   /* not ours: leave the packet as it is */
	LB_DROP,   /* malformed or not balanceable: drop, reason in drop */
	LB_DNAT,   /* rewrite destination to addr:port, then forward */
	LB_REVNAT, /* rewrite source to addr:port (the VIP), then forward */
	LB_REFUSE, /* answer with TCP RST / ICMP port unreachable */
};

/* addr first: lb_snat_port() then needs no pointer into @r beside @r
 * (a spill more, and 6.1 refuses xdp_lb's call chain; see there) */
struct lb_result {
	__u32 addr[4]; /* new address (network order) */
	__u16 port;    /* new port (network order) */
	enum lb_action action;
	enum sluice_drop_reason drop;
	__u32 svc_id; /* LB_REFUSE: the service refusing */
	/* Source NAT: also rewrite the other end to nat (lb_has_snat()).
	 * LB_DNAT: the source to the SNAT address:port, when nat.port is
	 * set (never 0 then); LB_REVNAT: when snat is set, the destination
	 * (a SNAT port) back to the client (whose port may be 0). */
	bool snat;
	struct sluice_snat_entry nat;
};

/* The flow hash (include/sluice_hash.h, shared with `meshctl explain`). */
static __always_inline __u32 lb_hash_seed(const struct sluice_ct_key *t, __u32 seed)
{
	return sluice_flow_hash_seed(t, seed);
}

static __always_inline bool tcp_flags_are_bad(__u8 flags)
{
	return !flags || (flags & (TCP_SYN | TCP_FIN)) == (TCP_SYN | TCP_FIN);
}

/* The backend id in @slot of the Maglev table @table; 0: none. */
static __always_inline __u32 lb_slot_id(void *table, __u32 slot)
{
	__u32 elem = slot / 2;
	struct sluice_maglev_pair *pair = bpf_map_lookup_elem(table, &elem);

	return pair ? pair->id[slot & 1] : 0;
}

/*
 * lb_table_m() - the M of the Maglev table @table, read from the table
 * itself (its max_entries, a CO-RE read of struct bpf_map, 5.10+). Tables
 * differ in size (#16) and a resize swaps the table in `maglev` while the
 * service entry stays: taking M from the very map the slot is read from
 * pairs every table with its own M, whatever order the swap and a packet
 * run in (M kept in the service entry could pair a new M with the old
 * table for a packet that read one before the swap and the other after).
 * Pins of layout 3 hold SLUICE_MAGLEV_M-slot tables: the same read gives
 * 16381 for them.
 */
static __always_inline __u32 lb_table_m(void *table)
{
	return sluice_maglev_m(((struct bpf_map *)table)->max_entries);
}

/* The backend id Maglev gives the flow @t of the service; 0: none. */
static __always_inline __u32 lb_select_id(__u32 svc_id, const struct sluice_ct_key *t)
{
	void *table = bpf_map_lookup_elem(&maglev, &svc_id);
	__u32 m;

	if (!table)
		return 0;
	m = lb_table_m(table);
	return m ? lb_slot_id(table, sluice_flow_slot(t, m)) : 0;
}

/* Extra Maglev slots a new flow whose pick is ejected tries. */
#define LB_EJECT_TRIES SLUICE_EJECT_TRIES

/*
 * lb_pick_fallback() - the Maglev pick @picked of the flow @t is ejected:
 * the backend of the first of LB_EJECT_TRIES more slots, from a second
 * hash of the same key (slot i = fmix(hash2(t) + i x golden) % M), that
 * is not ejected. Deterministic: the same flow gets the same backend on
 * every packet and every node with the same table and health. Returns
 * @picked when the service ignores health (threshold 0), in panic, or
 * when every try is ejected too. A global function, verified once on
 * its own (see health_fail()): its loop stays out of the packet
 * programs' verification.
 */
__noinline __u32 lb_pick_fallback(__u32 svc_id, __u32 h2, __u32 picked)
{
	struct sluice_backend_health *bh;
	struct sluice_svc_health *sh;
	__u64 now = bpf_ktime_get_ns();
	void *table;
	__u32 id, m;

	bh = bpf_map_lookup_elem(&backend_health, &picked);
	if (!bh || !health_is_ejected(bh, now))
		return picked; /* on probation: it gets flows again */
	sh = bpf_map_lookup_elem(&svc_health, &svc_id);
	if (!sh || !sh->threshold)
		return picked;
	if (health_panic(sh)) {
		health_count(SLUICE_HCNT_PANIC);
		return picked;
	}
	table = bpf_map_lookup_elem(&maglev, &svc_id);
	if (!table)
		return picked;
	m = lb_table_m(table);
	if (!m)
		return picked;
	for (__u32 i = 1; i <= LB_EJECT_TRIES; i++) {
		id = lb_slot_id(table, sluice_fallback_slot(h2, i, m));
		if (!id || id == picked)
			continue;
		bh = bpf_map_lookup_elem(&backend_health, &id);
		if (bh && health_is_ejected(bh, now))
			continue;
		health_count(SLUICE_HCNT_FALLBACK);
		return id;
	}
	return picked;
}

/**
 * lb_pick() - the backend for a new flow @t of service @svc_id: the
 * Maglev pick, or when @fallback is set and that backend is ejected,
 * lb_pick_fallback()'s. The cost for a healthy pick is one array lookup
 * (backend_health) and a flag test. NULL when the slot names a backend
 * that is gone (a removal raced with this packet).
 */
static __always_inline struct sluice_backend *lb_pick(__u32 svc_id, const struct sluice_ct_key *t,
						      __u32 *backend_id, bool fallback)
{
	struct sluice_backend_health *bh;

	*backend_id = lb_select_id(svc_id, t);
	if (!*backend_id)
		return NULL;
	bh = bpf_map_lookup_elem(&backend_health, backend_id);
	if (fallback && bh && (bh->flags & SLUICE_BH_F_EJECTED))
		*backend_id = lb_pick_fallback(svc_id, lb_hash_seed(t, SLUICE_HASH_SEED_FALLBACK),
					       *backend_id);
	return bpf_map_lookup_elem(&backends, backend_id);
}
/* needs lb_pick() above */
#include "affinity.h"
/* needs struct lb_result and lb_hash_seed() above */
#include "lb_snat.h"

static __always_inline void lb_set_nat(struct lb_result *r, enum lb_action a, const __u32 *addr,
				       __u16 port)
{
	r->action = a;
	__builtin_memcpy(r->addr, addr, sizeof(r->addr));
	r->port = port;
}

/* The FWD entry of @key's flow, confirmed or not (*fresh: in ct_new);
 * NULL when the flow is unknown, expired, or this SYN reopens it. */
static __always_inline struct sluice_ct_entry *lb_ct_fwd(struct sluice_ct_key *key, __u8 tcp_flags,
							 __u64 now, bool *fresh)
{
	struct sluice_ct_entry *ct;

	key->dir = SLUICE_CT_FWD;
	key->pad = 0;
	*fresh = false;
	ct = bpf_map_lookup_elem(&conntrack, key);
	if (ct && (ct_is_expired(ct, key->proto, now, false) ||
		   (ct_is_syn(tcp_flags) && ct_is_reopen(key, ct, tcp_flags, false)))) {
		ct_forget(key, ct); /* the new incarnation starts unconfirmed */
		ct = NULL;
	}
	if (ct)
		return ct;
	*fresh = true;
	ct = bpf_map_lookup_elem(&ct_new, key);
	if (ct && (ct_is_expired(ct, key->proto, now, true) ||
		   (ct_is_syn(tcp_flags) && ct_is_reopen(key, ct, tcp_flags, true))))
		ct = NULL; /* balanced afresh: ct_create() overwrites both entries */
	return ct;
}

/* A client SYN again this long after its flow began, unanswered, is a
 * connection attempt the backend failed (the kernel's first SYN
 * retransmission comes after 1 s). */
#define LB_SYN_TIMEOUT_NS (500ULL * 1000000)

/*
 * lb_syn_again() - the client sent the SYN of the unconfirmed flow @fwd
 * (FWD entry @fe) again and its backend sent nothing back: a SYN_TIMEOUT
 * failure of that backend when the flow is LB_SYN_TIMEOUT_NS old,
 * counted once per flow (SLUICE_CT_F_FAIL_COUNTED). When the backend is
 * ejected now (by this failure or before), the connection was never
 * established anywhere: it is balanced afresh (the ejection fallback
 * picks a healthy backend) instead of waiting on a dead one, and its old
 * REPLY entry goes.
 *
 * Return: true when the flow must be balanced afresh.
 */
static __noinline bool lb_syn_again(const struct sluice_ct_key *fwd, struct sluice_ct_entry *fe,
				    __u64 now)
{
	struct sluice_backend_health *bh;
	struct sluice_ct_key rev = {};
	struct sluice_ct_entry *r;
	__u32 id = fe->backend_id;

	ct_reply_key(fwd, fe->addr, fe->port, &rev);
	r = bpf_map_lookup_elem(&ct_new, &rev);
	if (r && ct_reply_is_of(r, fwd) && r->tcp_flags)
		return false; /* the backend answered (SYN|ACK or RST) */
	if (!(fe->ct_flags & SLUICE_CT_F_FAIL_COUNTED) && (fe->tcp_flags & TCP_SYN) &&
	    now >= fe->created_ns + LB_SYN_TIMEOUT_NS) {
		fe->ct_flags |= SLUICE_CT_F_FAIL_COUNTED;
		health_fail(fe->svc_id, id, SLUICE_HEALTH_R_SYN_TIMEOUT, now);
	}
	bh = bpf_map_lookup_elem(&backend_health, &id);
	if (!bh || !health_is_ejected(bh, now))
		return false;
	if (r && ct_reply_is_of(r, fwd))
		bpf_map_delete_elem(&ct_new, &rev);
	return true;
}

/*
 * lb_health_reply() - the backend answers the unconfirmed flow whose
 * REPLY key is @rev and entry @re (flags before this packet) with
 * @tcp_flags. Its first SYN|ACK is a success; a RST before any SYN|ACK,
 * to a flow that began with the client's SYN, is a failure (reason RST),
 * once per flow like SYN_TIMEOUT.
 */
static __noinline void lb_health_reply(const struct sluice_ct_key *rev,
				       const struct sluice_ct_entry *re, __u8 tcp_flags, __u64 now)
{
	struct sluice_ct_key fwd = {};
	struct sluice_ct_entry *fe;

	if (re->tcp_flags & (TCP_SYN | TCP_RST))
		return; /* answered before, counted then */
	if ((tcp_flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) {
		health_success(re->svc_id, re->backend_id, now);
		return;
	}
	if (!(tcp_flags & TCP_RST))
		return;
	fe = ct_new_fwd_of(rev, re, &fwd);
	if (!fe || !(fe->tcp_flags & TCP_SYN) || (fe->ct_flags & SLUICE_CT_F_FAIL_COUNTED))
		return; /* a picked-up flow, or counted already */
	fe->ct_flags |= SLUICE_CT_F_FAIL_COUNTED;
	health_fail(re->svc_id, re->backend_id, SLUICE_HEALTH_R_RST, now);
}

/* A packet of a known flow: to its backend; the client's ACK completing
 * the handshake confirms an unconfirmed one. */
static __always_inline void lb_established(struct pkt *p, struct sluice_ct_key *key,
					   struct sluice_ct_entry *ct, bool fresh, __u64 now,
					   struct lb_result *r)
{
	lb_set_nat(r, LB_DNAT, ct->addr, ct->port);
	stats_count(SLUICE_CNT_LB_EST);
	stats_svc(ct->svc_id, p->frame_len, false);
	stats_backend(ct->backend_id, p->frame_len, false);
	if (ct_touch(ct, p->tcp_flags, now))
		ct_keep_reply(key, ct, now, fresh);
	if (fresh && key->proto == IPPROTO_TCP && ct_confirm_tcp(key, ct, p->tcp_flags, now))
		stats_count(SLUICE_CNT_CT_CONFIRMED);
}

/*
 * A TCP packet without SYN of a flow we do not know goes where Maglev puts
 * it (where it went before, while the set is unchanged). An ACK or data
 * may be a live connection whose entries were lost (flushed, evicted, an
 * upgrade that replaced the maps): it is tracked in ct_new so the
 * backend's answer is rewritten, and the backend's answer confirms it. A
 * flood of junk ACKs gets RSTs back, which confirm nothing, so it only
 * ever fills ct_new. A RST or a SYN|ACK leaves no state.
 */
static __always_inline void lb_midflow(struct pkt *p, const struct sluice_ct_key *key, __u32 svc_id,
				       __u32 backend_id, const struct sluice_backend *be, __u64 now)
{
	if (p->tcp_flags & (TCP_SYN | TCP_RST)) {
		stats_count(SLUICE_CNT_LB_NO_STATE);
	} else {
		ct_create(key, svc_id, backend_id, be, p->tcp_flags, now);
		stats_count(SLUICE_CNT_LB_PICKUP);
	}
	stats_svc(svc_id, p->frame_len, false);
	stats_backend(backend_id, p->frame_len, false);
}

/* A TCP packet other than a SYN, of no flow we know. */
static __always_inline bool lb_is_midflow(const struct pkt *p)
{
	return p->tuple.proto == IPPROTO_TCP && (p->tcp_flags & (TCP_SYN | TCP_ACK)) != TCP_SYN;
}

static __always_inline void lb_service(struct pkt *p, const struct sluice_svc *svc,
				       struct lb_result *r)
{
	struct sluice_ct_key key = p->tuple;
	__u64 now = CT_NOW();
	struct sluice_ct_entry *ct;
	struct sluice_backend *be;
	__u32 backend_id = 0;
	bool fresh;

	if (p->tuple.proto == IPPROTO_TCP && tcp_flags_are_bad(p->tcp_flags)) {
		r->action = LB_DROP;
		r->drop = SLUICE_DROP_BAD_TCP_FLAGS;
		return;
	}

	ct = lb_ct_fwd(&key, p->tcp_flags, now, &fresh);
	if (ct && fresh && key.proto == IPPROTO_TCP &&
	    (p->tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN &&
	    lb_syn_again(&key, ct, bpf_ktime_get_ns())) /* health: precise */
		ct = NULL; /* its backend is ejected: balanced afresh below */
	if (ct) {
		lb_set_nat(r, LB_DNAT, ct->addr, ct->port);
		if (!lb_snat(&key, svc, p->tcp_flags, false, r))
			return;
		lb_established(p, &key, ct, fresh, now, r);
		return;
	}

	/* A client outside the service's source ranges gets nothing, not
	 * even a refusal; established flows never get here. */
	if ((svc->flags & SLUICE_SVC_F_SOURCE_RANGES) && !src_range_allows(&key, svc->svc_id)) {
		r->action = LB_DROP;
		r->drop = SLUICE_DROP_SOURCE_RANGE;
		return;
	}
	/* Access policy (#15): dropped, or refused when the service says so */
	r->drop = policy_denies(&key, svc->svc_id, svc->flags, svc->policy_lens);
	if (r->drop) {
		r->action = (svc->flags & SLUICE_SVC_F_POLICY_REFUSE) ? LB_REFUSE : LB_DROP;
		r->svc_id = svc->svc_id;
		stats_svc(svc->svc_id, p->frame_len, false);
		return;
	}

	if (!svc->backend_count && (svc->flags & SLUICE_SVC_F_DROP_EMPTY)) {
		r->action = LB_DROP;
		r->drop = SLUICE_DROP_NO_LOCAL_BACKEND;
		stats_svc(svc->svc_id, p->frame_len, false);
		return;
	}
	if (!svc->backend_count) {
		/* counted as refused by lb_refused() once the answer is out */
		r->action = LB_REFUSE;
		r->svc_id = svc->svc_id;
		stats_svc(svc->svc_id, p->frame_len, false);
		return;
	}

	/* A TCP packet without SYN belongs to a connection that lives where
	 * Maglev put it (lb_midflow): no ejection fallback for it, and no
	 * affinity entry written for it (it may be junk). */
	if (svc->flags & SLUICE_SVC_F_AFFINITY)
		be = aff_pick_addr(svc, &key, !lb_is_midflow(p), &backend_id);
	else
		be = lb_pick(svc->svc_id, &key, &backend_id, !lb_is_midflow(p));
	if (!be) {
		r->action = LB_DROP;
		r->drop = SLUICE_DROP_NO_BACKEND;
		return;
	}
	lb_set_nat(r, LB_DNAT, be->addr, be->port);
	if (!lb_snat(&key, svc, p->tcp_flags, true, r))
		return;
	if (lb_is_midflow(p)) {
		lb_midflow(p, &key, svc->svc_id, backend_id, be, now);
		return;
	}
	/* An LRU map does not fail on insert; should it, the flow still
	 * goes to the Maglev pick, which is stable while the set is. */
	ct_create(&key, svc->svc_id, backend_id, be, p->tcp_flags, now);
	stats_count(SLUICE_CNT_LB_NEW);
	stats_svc(svc->svc_id, p->frame_len, true);
	stats_backend(backend_id, p->frame_len, true);
}

/* A SYN that is not to a service, e.g. a client connecting straight to a
 * backend from a port a balanced flow used before: the answer's tuple is
 * that flow's reply tuple, which must not rewrite it once the flow ended
 * (or while it is unconfirmed). */
static __always_inline void lb_direct_syn(const struct pkt *p, __u64 now)
{
	struct sluice_ct_key rev = {};

	if (p->tuple.proto != IPPROTO_TCP || (p->tcp_flags & (TCP_SYN | TCP_ACK)) != TCP_SYN)
		return;
	__builtin_memcpy(rev.saddr, p->tuple.daddr, sizeof(rev.saddr));
	__builtin_memcpy(rev.daddr, p->tuple.saddr, sizeof(rev.daddr));
	rev.sport = p->tuple.dport;
	rev.dport = p->tuple.sport;
	rev.proto = IPPROTO_TCP;
	rev.family = p->tuple.family;
	rev.dir = SLUICE_CT_REPLY;
	ct_drop_dead_reply(&rev, now);
	/* An unconfirmed balanced flow on that reply tuple (a handshake that
	 * failed or never finished, kept until its timeout) would take this
	 * connection's SYN|ACK: the two cannot both work at the backend, and
	 * the direct SYN is the newer. */
	bpf_map_delete_elem(&ct_new, &rev);
}

static __always_inline void lb_reply(struct pkt *p, struct lb_result *r)
{
	struct sluice_ct_key key = p->tuple;
	struct sluice_ct_entry *ct;
	bool fresh = false;
	__u64 now;

	if (!reply_filter_may_reply(&key)) { /* not from a backend: no flow's */
		if (reply_filter_syn_to_backend(&key, p->tcp_flags))
			lb_direct_syn(p, CT_NOW());
		goto pass;
	}
	now = CT_NOW();
	/* An answer to a SNAT port: conntrack knows the flow by the client */
	if (snat_port_in_range(key.dport))
		r->snat = snat_reverse(&key, &r->nat, p->tcp_flags);
	key.dir = SLUICE_CT_REPLY;
	key.pad = 0;
	ct = bpf_map_lookup_elem(&conntrack, &key);
	if (ct && ct_is_expired(ct, key.proto, now, false))
		ct = NULL;
	if (!ct) {
		fresh = true;
		ct = bpf_map_lookup_elem(&ct_new, &key);
		if (ct && ct_is_expired(ct, key.proto, now, true))
			ct = NULL;
	}
	if (!ct) {
		lb_direct_syn(p, now);
pass:
		r->snat = false;
		r->action = LB_PASS;
		stats_count(SLUICE_CNT_PASS);
		return;
	}
	if (fresh && key.proto == IPPROTO_TCP && (p->tcp_flags & (TCP_SYN | TCP_RST)))
		lb_health_reply(&key, ct, p->tcp_flags, bpf_ktime_get_ns()); /* before ct_touch */
	ct_touch(ct, p->tcp_flags, now);
	lb_set_nat(r, LB_REVNAT, ct->addr, ct->port);
	stats_count(SLUICE_CNT_REVNAT);
	stats_svc(ct->svc_id, p->frame_len, false);
	stats_backend(ct->backend_id, p->frame_len, false);
	/* UDP: any answer; TCP: an answer that is not a SYN|ACK (the
	 * handshake confirms on the client's ACK) nor a RST, i.e. the
	 * backend knows the connection of a flow picked up mid-way */
	if (fresh && (key.proto == IPPROTO_UDP || !(p->tcp_flags & (TCP_SYN | TCP_RST))) &&
	    ct_confirm_reply(&key, ct, now))
		stats_count(SLUICE_CNT_CT_CONFIRMED);
}

/**
 * lb_process() - decide what to do with the frame described by @p.
 *
 * Counts the event (counters, per-service and per-backend stats) but does
 * not touch the packet. Drops are counted by the caller via lb_drop().
 */
static __always_inline void lb_process(struct pkt *p, struct lb_result *r)
{
	struct sluice_svc_key skey = {};
	struct sluice_svc *svc;
	int ret;

	ret = parse_packet(p);
	if (ret < 0) {
		r->action = LB_DROP;
		r->drop = -ret;
		return;
	}
	if (ret == PARSE_PASS) {
		r->action = LB_PASS;
		stats_count(SLUICE_CNT_PASS);
		return;
	}

	/* not to a service's address: one bit test, no services lookup */
	if (!vip_filter_may_be_service(&p->tuple)) {
		if (p->fragment)
			goto pass;
		lb_reply(p, r);
		return;
	}
	__builtin_memcpy(skey.addr, p->tuple.daddr, sizeof(skey.addr));
	skey.proto = p->tuple.proto;
	skey.family = p->tuple.family;
	if (p->fragment) {
		/* Ports are unknown: never guess a backend for it. */
		if (bpf_map_lookup_elem(&services, &skey)) {
			r->action = LB_DROP;
			r->drop = SLUICE_DROP_FRAGMENT;
			return;
		}
pass:
		r->action = LB_PASS;
		stats_count(SLUICE_CNT_PASS);
		return;
	}

	skey.port = p->tuple.dport;
	svc = bpf_map_lookup_elem(&services, &skey);
	if (svc && !(svc->flags & SLUICE_SVC_F_VIP_MARKER))
		lb_service(p, svc, r);
	else
		lb_reply(p, r);
}

static __always_inline void lb_drop(enum sluice_drop_reason reason)
{
	stats_drop(reason);
}

/* The refusal was sent (or, for an incoming RST, deliberately not). */
static __always_inline void lb_refused(const struct lb_result *r)
{
	stats_count(SLUICE_CNT_REFUSED);
	stats_svc_refused(r->svc_id);
}

#endif /* SLUICE_BPF_LB_H */
