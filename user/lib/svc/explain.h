/* SPDX-License-Identifier: MIT */
/*
 * explain.h - `meshctl explain`: the decision the datapath would make for
 * one flow, walked in userspace from the live maps (#15).
 *
 * Contract: sluice__explain() reads (never writes) the maps the new-flow
 * path of bpf/lib/lb.h reads, in the same order and with the same rules:
 * service, conntrack (an existing flow keeps its backend), the access
 * policy (source ranges, the node deny list and the service's allow and
 * deny rules; on the socket path the socket program's check of the
 * socket's bound address, or its deferral), drop-when-empty / refusal, affinity,
 * the Maglev slot of the flow hash (include/sluice_hash.h, the kernel's
 * own code), the ejection fallback and the chosen backend with its
 * health. The answer is a verdict, the fields behind it, and a trace of
 * one line per step in the order the kernel takes them. Maglev tables
 * are found through the pinned `maglev_ids` array, never by reading the
 * outer map where that waits for a grace period (kernels before 6.7).
 *
 * What it cannot know: the packet (a TCP SYN is assumed: a new
 * connection, or the next SYN of the tuple), CPUs racing it, and on the
 * socket path the socket itself, which the caller describes: its cookie
 * (SO_COOKIE, the flow hash) and its local address (getsockname(), the
 * client sock_lb_xlate() checks the access policy with, and defers to
 * the packet path when there is none yet).
 */
#ifndef SLUICE_EXPLAIN_H
#define SLUICE_EXPLAIN_H

#include <stdbool.h>

#include "sluice.h"

enum sluice_explain_path {
	SLUICE_EXPLAIN_PACKET, /* XDP / tc: the client's address and port */
	SLUICE_EXPLAIN_SOCKET, /* socket LB: connect()/sendmsg() of a local socket */
};

struct sluice_explain_req {
	enum sluice_explain_path path;
	struct sluice_addr client; /* packet path */
	__u16 client_port;         /* host order */
	struct sluice_addr vip;
	__u16 port; /* host order */
	__u8 proto;
	__u64 sock_cookie;  /* socket path: SO_COOKIE, the flow hash's input */
	__u64 netns_cookie; /* socket path: SO_NETNS_COOKIE, the affinity client */
	/* socket path: what the socket LB runs with. sock_cfg: its
	 * SLUICE_SOCK_CFG_* load-time knobs (NO_UDP: UDP left to the packet
	 * path; NO_REFUSE: a service without backends left to the packet
	 * path, not ECONNREFUSED); sock_lb_off: none attached, every
	 * connect() goes to the VIP as it is. */
	__u32 sock_cfg;
	bool sock_lb_off;
	/* socket path: the socket's local address when connect()/sendmsg()
	 * runs (getsockname()), the client sock_policy() checks: family 0
	 * or the wildcard when not bound, sock_sport 0 (host order) when
	 * its port is not (IP_BIND_ADDRESS_NO_PORT). An IPv6 socket's
	 * IPv4-mapped address counts for an IPv4 service. */
	struct sluice_addr sock_src;
	__u16 sock_sport;
	/* socket path, when the socket LB defers for want of a source: the
	 * source its packets will carry (the route's choice; family 0: not
	 * known) and their port (0: not known), for the packet path's
	 * access check. */
	struct sluice_addr route_src;
	__u16 route_sport;
};

enum sluice_explain_verdict {
	SLUICE_XV_PASS,        /* not a service: passed unchanged */
	SLUICE_XV_ESTABLISHED, /* a flow conntrack knows: to its backend */
	SLUICE_XV_BALANCED,    /* a new flow: to the chosen backend */
	SLUICE_XV_DROP,        /* dropped, reason in drop */
	SLUICE_XV_REFUSE,      /* TCP RST / ICMP unreachable / ECONNREFUSED */
	SLUICE_XV_PROCEED,     /* socket path: left to the packet path */
	SLUICE_XV_DENY,        /* socket path: EPERM, the access policy */
};
const char *sluice_explain_verdict__str(enum sluice_explain_verdict v);

/* The access check of a new flow: one place, so every kind of rule
 * (source ranges now, allow/deny policy later) answers the same way. */
enum sluice_explain_access {
	SLUICE_XA_NOT_CHECKED, /* an existing flow, or a path that does not check */
	SLUICE_XA_NO_RULES,    /* the service has none: everyone */
	SLUICE_XA_ALLOW,       /* a rule lets the client in */
	SLUICE_XA_DENY,        /* a rule, or the lack of one, keeps it out */
	SLUICE_XA_DEFERRED,    /* socket path: no source known yet, the packet path checks */
};
const char *sluice_explain_access__str(enum sluice_explain_access a);

struct sluice_explain_policy {
	enum sluice_explain_access verdict;
	const char *source; /* what decided: "sourceRanges", "-" */
	bool has_rule;      /* rule: the entry that decided */
	struct sluice_cidr rule;
	__u32 nrules;                 /* the service's rules of that kind */
	enum sluice_drop_reason drop; /* SLUICE_XA_DENY: what the kernel counts */
	bool ports;                   /* the entry that matched has client-port ranges */
	char why[256];
};

struct sluice_explain_step {
	char step[16];
	char text[320];
};
#define SLUICE_EXPLAIN_STEPS 16

struct sluice_explain {
	enum sluice_explain_verdict verdict;
	enum sluice_drop_reason drop; /* SLUICE_XV_DROP */
	bool svc_found;
	struct sluice_svc svc;
	struct sluice_ct_key tuple; /* as hashed: FWD key (socket: cookie as source) */
	struct {
		bool found;     /* an entry for the tuple, used or not */
		bool confirmed; /* in conntrack (else ct_new) */
		bool used;      /* the flow keeps its backend */
		__u32 backend_id;
		struct sluice_addr addr;
		__u16 port; /* host order */
		__u8 tcp_flags;
		__u64 age_ns, idle_ns;
	} ct;
	struct sluice_explain_policy policy;
	/* socket path, policy deferred and req->route_src given: the packet
	 * path's access check of the socket's first packet */
	bool packet_checked;
	struct sluice_explain_policy packet_policy;
	struct {
		bool checked; /* the service has affinity on this path */
		bool found;   /* an entry for the client */
		bool used;    /* it decided */
		bool broken;  /* within its timeout but its backend unusable */
		__u32 backend_id;
		__u64 idle_ns;
	} aff;
	struct {
		bool done;  /* the flow hash was computed */
		bool table; /* the service's table was found */
		__u32 hash, slot, slot_id;
		__u32 m;        /* the table's size (table), as the datapath reads it */
		bool fallback;  /* the pick was ejected: fallback tried */
		__u32 fb_slot;  /* the fallback's slot that decided (fallback) */
		__u32 fb_tries; /* slots tried */
	} maglev;
	__u32 backend_id; /* the backend the flow goes to, 0: none */
	bool be_found;
	struct sluice_backend be;
	struct sluice_backend_health_view health;
	bool snat; /* source-NATed (service flag or hairpin) */
	__u32 nsteps;
	struct sluice_explain_step steps[SLUICE_EXPLAIN_STEPS];
};

/* Walk req through the live maps into *out. 0, or a negative errno with
 * the error text set (a map could not be read, a malformed request). */
int sluice__explain(struct sluice *s, const struct sluice_explain_req *req,
		    struct sluice_explain *out);

/* explain_policy.c: the access verdict of a new flow @t to @svc, read from
 * the maps as the datapath decides it (0 or a negative errno). */
int explain__policy(struct sluice *s, const struct sluice_svc *svc, const struct sluice_ct_key *t,
		    enum sluice_explain_path path, struct sluice_explain_policy *out);
/* The socket LB's check (sock_policy()) of the socket @r describes:
 * deny (EPERM), allow, not checked, or deferred (no source yet, or a
 * port a matching rule needs), as the kernel decides it. */
int explain__sock_policy(struct sluice *s, const struct sluice_svc *svc,
			 const struct sluice_explain_req *r, struct sluice_explain_policy *out);

#endif /* SLUICE_EXPLAIN_H */
