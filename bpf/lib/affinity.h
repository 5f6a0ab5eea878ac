/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * affinity.h - client-IP session affinity: a new flow to a service with
 * SLUICE_SVC_F_AFFINITY goes to the backend its client used last, while
 * that backend is usable and the client has not been idle past the
 * service's timeout (sluice_svc.affinity_timeout_s). Otherwise the flow
 * gets the ordinary pick and the client's entry is rewritten to it.
 *
 * One entry point per path replaces the ordinary pick for such services:
 *   be = svc->flags & SLUICE_SVC_F_AFFINITY ?
 *	  aff_pick_addr(svc, &tuple, new_flow, &backend_id) :   (lb.h)
 *	  lb_pick(svc->svc_id, &tuple, &backend_id, new_flow);
 *   aff_pick_netns(ctx, svc, &hkey, &backend_id)            (sock_lb.h)
 * Services without affinity pay one flag test. Existing flows never get
 * here (conntrack, or the connected socket, keeps them on their backend).
 *
 * Lookup, pick and record are one non-inlined function: the XDP/tc entry
 * has no stack to spare (it is at the verifier's 512-byte limit with the
 * conntrack call chain), and a subprogram's frame is its own.
 */
#ifndef SLUICE_BPF_AFFINITY_H
#define SLUICE_BPF_AFFINITY_H

#include "common.h"
#include "maps.h"
#include "counters.h"
#include "lb.h"

/* aff__pick() @how: the key kind, and whether to write the entry. */
#define AFF_HOW_NETNS (1u << 0) /* SLUICE_AFF_NETNS, else SLUICE_AFF_ADDR */
#define AFF_HOW_RECORD (1u << 1)

static __always_inline void aff_count(enum sluice_health_counter c)
{
	counter_add(&health_counters, c, 1);
}

/* Whether backend @id (an affinity entry's) may still take new flows of
 * service @svc_id: it exists, belongs to the service (ids are reused), is
 * ACTIVE (not draining, not unhealthy by probe) and is not ejected by
 * passive outlier detection now. */
static __always_inline struct sluice_backend *aff_usable(__u32 id, __u32 svc_id, __u64 now)
{
	struct sluice_backend_health *h;
	struct sluice_backend *be;

	be = bpf_map_lookup_elem(&backends, &id);
	if (!be || be->svc_id != svc_id || be->state != SLUICE_BE_ACTIVE || !be->weight)
		return NULL;
	h = bpf_map_lookup_elem(&backend_health, &id);
	if (h && (h->flags & SLUICE_BH_F_EJECTED) && now < h->ejected_until_ns)
		return NULL;
	return be;
}

/*
 * The client's entry when it is valid: not idle past the timeout (its
 * time is refreshed at most once a second, so a busy client costs no
 * write per flow) and its backend usable. *broken: an entry within its
 * timeout named a backend that is not.
 */
static __always_inline struct sluice_backend *aff_valid(const struct sluice_affinity_key *k,
							__u32 timeout_s, __u64 now,
							__u32 *backend_id, bool *broken)
{
	__u64 timeout_ns = (__u64)timeout_s * NSEC_PER_SEC;
	struct sluice_affinity *a;
	struct sluice_backend *be;

	a = bpf_map_lookup_elem(&affinity, k);
	/* idle past the timeout: a fresh pick, not a broken affinity */
	if (!a || (now > a->last_seen_ns && now - a->last_seen_ns > timeout_ns))
		return NULL;
	be = aff_usable(a->backend_id, k->svc_id, now);
	if (!be) {
		*broken = true;
		return NULL;
	}
	*backend_id = a->backend_id;
	if (now > a->last_seen_ns && now - a->last_seen_ns >= NSEC_PER_SEC)
		a->last_seen_ns = now;
	return be;
}

/* @client: 4 words of source address, or 2 of netns cookie (@how). */
static __noinline struct sluice_backend *aff__pick(const struct sluice_svc *svc,
						   const struct sluice_ct_key *t,
						   const __u32 *client, __u32 how,
						   __u32 *backend_id)
{
	struct sluice_affinity_key k = { .svc_id = svc->svc_id };
	struct sluice_affinity val = {};
	/* The coarse clock (kernel 5.11): affinity timeouts are seconds and
	 * ejections tens of seconds, so a tick's lag does not matter, and the
	 * precise clock's read was a third of the hit path's extra cost
	 * (make bench B1: 0.92x -> 0.94-0.98x of a new flow without affinity). */
	__u64 now = bpf_ktime_get_coarse_ns();
	struct sluice_backend *be;
	bool broken = false;

	k.addr[0] = client[0];
	k.addr[1] = client[1];
	if (how & AFF_HOW_NETNS) {
		k.kind = SLUICE_AFF_NETNS;
	} else {
		k.addr[2] = client[2];
		k.addr[3] = client[3];
		k.family = t->family;
		k.kind = SLUICE_AFF_ADDR;
	}
	be = aff_valid(&k, svc->affinity_timeout_s, now, backend_id, &broken);
	if (be) {
		aff_count(SLUICE_HCNT_AFFINITY_HIT);
		return be;
	}
	/* the ordinary pick; a new flow is moved off an ejected backend */
	be = lb_pick(svc->svc_id, t, backend_id, how & AFF_HOW_RECORD);
	if (!be || !(how & AFF_HOW_RECORD))
		return be;
	if (broken)
		aff_count(SLUICE_HCNT_AFFINITY_BROKEN);
	/* LRU: an insert never fails for room, the idlest client goes */
	val.last_seen_ns = now;
	val.backend_id = *backend_id;
	bpf_map_update_elem(&affinity, &k, &val, BPF_ANY);
	return be;
}

/**
 * aff_pick_addr() - packet path: the client is the flow's source address.
 * @record: false for a packet that may be junk (an ACK of no known flow):
 *	it may use the client's entry but does not write one.
 *
 * Returns the backend (and *backend_id) as lb_pick() does.
 */
static __always_inline struct sluice_backend *aff_pick_addr(const struct sluice_svc *svc,
							    const struct sluice_ct_key *t,
							    bool record, __u32 *backend_id)
{
	if (!svc->affinity_timeout_s)
		return lb_pick(svc->svc_id, t, backend_id, record);
	return aff__pick(svc, t, t->saddr, record ? AFF_HOW_RECORD : 0, backend_id);
}

/**
 * aff_pick_netns() - socket LB: connect()/sendmsg() run before the socket
 * has a source address (the route chooses it later), so the client is
 * the socket's network namespace, as in Cilium's socket LB: each pod
 * (netns) is one client. bpf_get_netns_cookie() in sock_addr programs:
 * kernel 5.7.
 */
static __always_inline struct sluice_backend *aff_pick_netns(struct bpf_sock_addr *ctx,
							     const struct sluice_svc *svc,
							     const struct sluice_ct_key *t,
							     __u32 *backend_id)
{
	__u64 netns;

	if (!svc->affinity_timeout_s)
		return lb_pick(svc->svc_id, t, backend_id, true);
	netns = bpf_get_netns_cookie(ctx);
	return aff__pick(svc, t, (const __u32 *)&netns, AFF_HOW_NETNS | AFF_HOW_RECORD, backend_id);
}

#endif /* SLUICE_BPF_AFFINITY_H */
