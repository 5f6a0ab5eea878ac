/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb_snat.h - which flows a balanced packet source-NATs, and to what
 * (the VIP, or the node's SNAT address of SLUICE_SVC_F_SNAT_NODE
 * services); the port allocation and the maps are snat.h's.
 *
 * Contract: included by lb.h after struct lb_result and lb_hash_seed();
 * lb_snat() fills lb_result.nat for LB_DNAT, or turns the result into a
 * SNAT_PORTS_EXHAUSTED drop. Helpers: map lookups/updates/deletes only.
 */
#ifndef SLUICE_BPF_LB_SNAT_H
#define SLUICE_BPF_LB_SNAT_H

#include "snat.h"
#include "stats.h"

/* lb_snat_port()'s result: the port's flow uses the node's SNAT address. */
#define LB_SNAT_NODE (1 << 16)
/* lb_snat_port()'s @f: the service's SLUICE_SVC_F_SNAT* bits and these */
#define LB_SNAT_F_RST (1u << 16) /* the packet has RST */
#define LB_SNAT_F_NEW (1u << 17) /* the flow is new (no conntrack entry) */

/*
 * lb_snat_port() - the SNAT port (network order) with which a packet of
 * the flow @t (client tuple) balanced to r->addr:r->port leaves, 0 when
 * the flow is not SNATed, -1 when a new one finds no free port; ORed
 * with LB_SNAT_NODE when the SNAT address is the node's (snat_addr), not
 * the VIP. SNATed are the flows of a service with SLUICE_SVC_F_SNAT (in
 * @f) and hairpin flows, whose client is its own backend: its answer to
 * itself would not come back through this hook otherwise. A new flow of
 * a SLUICE_SVC_F_SNAT_NODE service while no node address of its family
 * is set keeps the client's address (SLUICE_CNT_SNAT_NO_ADDR; a hairpin
 * one falls back to the VIP). LB_SNAT_F_NEW: a port found must still be
 * this client's (snat_lookup()). A RST ends the flow (its port is still
 * used for this packet); a RST of a flow without a port goes out without
 * one, as junk the backend ignores.
 *
 * A global function, verified once on its own: inlined, its branches
 * tripled the instructions the verifier walks through xdp_lb (327k vs
 * 106k before SNAT; 126k with it). It only reads through its pointers
 * and returns the port: whether every supported kernel's verifier sees
 * a global function's writes into the caller's stack was not checked.
 *
 * Its frame must stay n and a map key (24 bytes, 32 as 6.1 counts):
 * 6.1 caps xdp_lb (336, 352 there) + this + snat_alloc() at 512. So what
 * is asked comes in one @f, and t, r and f are all that lives across the
 * calls (callee-saved registers, no spill; r->addr is r, see lb_result).
 */
__noinline int lb_snat_port(const struct sluice_ct_key *t, const struct lb_result *r, __u32 f)
{
	const __u32 node_f = SLUICE_SVC_F_SNAT | SLUICE_SVC_F_SNAT_NODE;
	struct sluice_snat_entry n = {};
	const __u32 *na;

	if (!t || !r)
		return 0;
	if (!(f & SLUICE_SVC_F_SNAT) && !snat_addr_eq(t->saddr, r->addr))
		return 0;
	if (snat_lookup(t, r->addr, r->port, &n, f & LB_SNAT_F_NEW)) {
		if ((f & (LB_SNAT_F_NEW | LB_SNAT_F_RST)) == LB_SNAT_F_RST)
			snat_forget(t, r->addr, r->port);
		goto out;
	}
	if (f & LB_SNAT_F_RST)
		return 0;
	na = t->daddr;
	if ((f & node_f) == node_f) {
		na = snat_node_addr(t->family);
		if (!na && !snat_addr_eq(t->saddr, r->addr)) {
			stats_count(SLUICE_CNT_SNAT_NO_ADDR);
			return 0;
		}
		if (!na) /* hairpin: the VIP does */
			na = t->daddr;
	}
	__builtin_memcpy(n.addr, na, sizeof(n.addr));
	if (snat_alloc(t, r->addr, r->port, lb_hash_seed(t, 0x5a75a7), &n))
		return -1;
out:
	return n.port | (snat_addr_eq(n.addr, t->daddr) ? 0 : LB_SNAT_NODE);
}

/* Source NAT of the flow @t that @r DNATs (lb_snat_port()): the SNAT
 * address is the one the client addressed, or the node's. Return: false
 * when the packet is to be dropped (no free port), with @r saying so. */
static __always_inline bool lb_snat(const struct sluice_ct_key *t, const struct sluice_svc *svc,
				    __u8 tcp_flags, bool new_flow, struct lb_result *r)
{
	__u32 f = (svc->flags & (SLUICE_SVC_F_SNAT | SLUICE_SVC_F_SNAT_NODE)) |
		  (tcp_flags & TCP_RST ? LB_SNAT_F_RST : 0) | (new_flow ? LB_SNAT_F_NEW : 0);
	const __u32 *na = t->daddr;
	int port = 0;

	/* lb_snat_port()'s first test, inline: most flows neither ask for
	 * SNAT nor hairpin, and skip the call (#17) */
	if ((f & SLUICE_SVC_F_SNAT) || snat_addr_eq(t->saddr, r->addr))
		port = lb_snat_port(t, r, f);

	if (port < 0) {
		r->action = LB_DROP;
		r->drop = SLUICE_DROP_SNAT_PORTS_EXHAUSTED;
		return false;
	}
	/* The node address a flow took is re-read here: one changed since
	 * (meshd's choice moved) breaks the flows SNATed to the old one. */
	if (port & LB_SNAT_NODE)
		na = snat_node_addr(t->family) ?: t->daddr;
	r->nat.port = port & 0xffff;
	__builtin_memcpy(r->nat.addr, na, sizeof(r->nat.addr));
	return true;
}

/* Does @r also rewrite the other end (see struct lb_result)? */
static __always_inline bool lb_has_snat(const struct lb_result *r)
{
	return r->snat || r->nat.port;
}

#endif /* SLUICE_BPF_LB_SNAT_H */
