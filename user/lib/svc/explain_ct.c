// SPDX-License-Identifier: MIT
/*
 * explain_ct.c - the conntrack step of the explain walk: lb_ct_fwd(),
 * ct_is_expired(), ct_is_reopen() and lb_syn_again() of bpf/lib (lb.h,
 * ct.h) for the flow's FWD key, read-only, a SYN assumed for TCP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <netinet/in.h>

#include <bpf/bpf.h>

#include "explain_internal.h"
#include "internal.h"

/* ct_is_expired() */
static bool xp__ct_expired(const struct sluice_ct_entry *e, __u8 proto, __u64 now, bool fresh)
{
	__u64 timeout = SLUICE_CT_TIMEOUT_UDP_NS;

	if (now <= e->last_seen_ns)
		return false;
	if (fresh)
		timeout = proto == IPPROTO_TCP ? SLUICE_CT_NEW_TIMEOUT_TCP_NS :
						 SLUICE_CT_NEW_TIMEOUT_UDP_NS;
	else if (proto == IPPROTO_TCP)
		timeout = e->tcp_flags & (TCP_FIN | TCP_RST) ? SLUICE_CT_TIMEOUT_TCP_CLOSE_NS :
							       SLUICE_CT_TIMEOUT_TCP_NS;
	return now - e->last_seen_ns > timeout;
}

/* ct_reply_key() */
static void xp__reply_key(const struct sluice_ct_key *fwd, const struct sluice_ct_entry *e,
			  struct sluice_ct_key *rev)
{
	memset(rev, 0, sizeof(*rev));
	memcpy(rev->saddr, e->addr, sizeof(rev->saddr));
	memcpy(rev->daddr, fwd->saddr, sizeof(rev->daddr));
	rev->sport = e->port;
	rev->dport = fwd->sport;
	rev->proto = fwd->proto;
	rev->family = fwd->family;
	rev->dir = SLUICE_CT_REPLY;
}

/* ct_is_reopen() for a SYN: the connection on this tuple ended. */
static bool xp__ct_reopen(int fd, const struct sluice_ct_key *fwd, const struct sluice_ct_entry *e)
{
	struct sluice_ct_key rev;
	struct sluice_ct_entry r;

	if (fwd->proto != IPPROTO_TCP)
		return false;
	if (e->tcp_flags & (TCP_FIN | TCP_RST))
		return true;
	xp__reply_key(fwd, e, &rev);
	return !bpf_map_lookup_elem(fd, &rev, &r) && (r.tcp_flags & (TCP_FIN | TCP_RST));
}

bool xp__health_ejected(const struct sluice_backend_health *bh, __u64 now)
{
	return (bh->flags & SLUICE_BH_F_EJECTED) && now < bh->ejected_until_ns;
}

/* lb_syn_again(): a SYN again of an unconfirmed flow whose backend never
 * answered and is ejected now is balanced afresh. */
static bool xp__syn_afresh(struct xp *x, const struct sluice_ct_key *fwd,
			   const struct sluice_ct_entry *e)
{
	struct sluice_backend_health bh;
	struct sluice_ct_key rev;
	struct sluice_ct_entry r;

	if (fwd->proto != IPPROTO_TCP)
		return false;
	xp__reply_key(fwd, e, &rev);
	if (!bpf_map_lookup_elem(sluice__map_fd(x->s, "ct_new"), &rev, &r) && r.tcp_flags &&
	    r.port == fwd->dport && !memcmp(r.addr, fwd->daddr, sizeof(r.addr)))
		return false;
	if (bpf_map_lookup_elem(sluice__map_fd(x->s, "backend_health"), &e->backend_id, &bh))
		return false;
	return xp__health_ejected(&bh, x->now);
}

/* One conntrack map's FWD entry: *hit when the flow keeps its backend. */
static int xp__ct_map(struct xp *x, bool fresh, bool *hit)
{
	struct sluice_explain *o = x->out;
	const char *map = fresh ? "ct_new" : "conntrack";
	int fd = sluice__map_fd(x->s, map), err;
	struct sluice_ct_entry e;
	const char *why = NULL;

	*hit = false;
	err = bpf_map_lookup_elem(fd, &o->tuple, &e);
	if (err == -ENOENT)
		return 0;
	if (err)
		return maps__err(err, map, "lookup", "of the flow");
	if (xp__ct_expired(&e, o->tuple.proto, x->now, fresh))
		why = "expired (idle past its timeout): a miss, balanced afresh";
	else if (xp__ct_reopen(fd, &o->tuple, &e))
		why = "its connection ended (FIN/RST seen): a new SYN on the tuple is balanced "
		      "afresh";
	else if (fresh && xp__syn_afresh(x, &o->tuple, &e))
		why = "unanswered and its backend is ejected: a SYN again is balanced afresh";
	o->ct.found = true;
	o->ct.confirmed = !fresh;
	o->ct.backend_id = e.backend_id;
	o->ct.addr.family = o->tuple.family;
	memcpy(o->ct.addr.addr, e.addr, sizeof(e.addr));
	o->ct.port = ntohs(e.port);
	o->ct.tcp_flags = e.tcp_flags;
	o->ct.age_ns = x->now > e.created_ns ? x->now - e.created_ns : 0;
	o->ct.idle_ns = x->now > e.last_seen_ns ? x->now - e.last_seen_ns : 0;
	xp__addrport(e.addr, o->tuple.family, e.port, x->be_str, sizeof(x->be_str));
	xp__step(x, "conntrack", "%s entry: backend %s (id %u), age %llus, idle %llus%s%s",
		 fresh ? "unconfirmed (ct_new)" : "confirmed", x->be_str, e.backend_id,
		 (unsigned long long)(o->ct.age_ns / NS_PER_S),
		 (unsigned long long)(o->ct.idle_ns / NS_PER_S), why ? "; " : "", why ? why : "");
	if (!why) {
		*hit = true;
		o->ct.used = true;
	}
	return 0;
}

/* lb_ct_fwd(): conntrack, then ct_new. Returns 1 on a hit. */
int xp__conntrack(struct xp *x)
{
	struct sluice_explain *o = x->out;
	bool hit;
	int err;

	err = xp__ct_map(x, false, &hit);
	if (!err && !hit)
		err = xp__ct_map(x, true, &hit);
	if (err)
		return err;
	if (!o->ct.found)
		xp__step(x, "conntrack", "no entry for this tuple: a new flow");
	if (!hit)
		return 0;
	o->verdict = SLUICE_XV_ESTABLISHED;
	o->backend_id = o->ct.backend_id;
	return 1;
}
