// SPDX-License-Identifier: MIT
/*
 * explain_policy.c - the access step of `meshctl explain`: whether a new
 * flow may open, and the rule that decided (see explain.h).
 *
 * Contract: explain__policy() answers for every kind of access rule the
 * datapath checks on the new-flow path, in the kernel's order: the
 * service's source ranges (bpf/lib/src_range.h), then its access policy. The verdict comes
 * from the same LPM lookup the kernel makes (so it is the kernel's), the
 * rule from the service's ranges read back: the longest prefix holding
 * the client. Then the access policy (#15, bpf/lib/policy.h): node-wide
 * deny list, the service's allow/deny lists, through the kernel's own
 * lookups (sluice__policy_verdict()); its source names the list, its rule
 * the entry an exact-match lookup found (policy_nhost, policy_hash: the
 * trie's lookup does not say which prefix matched), and its text the map.
 * The socket LB (explain__sock_policy(), bpf/lib/sock_lb.h sock_policy())
 * checks no source ranges and takes the socket's bound address and port
 * as the client: without them it defers to the packet path.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bpf/bpf.h>

#include "explain.h"
#include "internal.h"

/* Whether the client address a (family of c) lies inside c. */
static bool explain__cidr_has(const struct sluice_cidr *c, const __u32 *a)
{
	__u32 bits = c->prefixlen;

	for (int i = 0; i < 4 && bits; i++) {
		__u32 n = bits >= 32 ? 32 : bits;
		__u32 mask = n == 32 ? 0xffffffffu : ~(0xffffffffu >> n);

		if ((ntohl(a[i]) & mask) != (ntohl(c->addr.addr[i]) & mask))
			return false;
		bits -= n;
	}
	return true;
}

/* The longest of the service's ranges holding the client. */
static int explain__range_rule(struct sluice *s, __u32 svc_id, const struct sluice_ct_key *t,
			       struct sluice_explain_policy *out)
{
	struct sluice_cidr ranges[SLUICE_SRC_RANGES_PER_SVC];
	__u32 n = 0;
	int err;

	err = sluice__service_src_ranges(s, svc_id, t->family, ranges, SLUICE_SRC_RANGES_PER_SVC,
					 &n);
	if (err)
		return err;
	out->nrules = n;
	for (__u32 i = 0; i < n && i < SLUICE_SRC_RANGES_PER_SVC; i++) {
		if (!explain__cidr_has(&ranges[i], t->saddr))
			continue;
		if (!out->has_rule || ranges[i].prefixlen > out->rule.prefixlen) {
			out->rule = ranges[i];
			out->has_rule = true;
		}
	}
	return 0;
}

/* Source ranges: the kernel's lookup (src_range_allows()), then the rule. */
static int explain__src_ranges(struct sluice *s, const struct sluice_svc *svc,
			       const struct sluice_ct_key *t, struct sluice_explain_policy *out)
{
	struct sluice_src_range_key k = { .svc_id = svc->svc_id };
	char buf[SLUICE_CIDR_STRLEN];
	__u32 v;
	int err;

	k.prefixlen = t->family == SLUICE_AF_INET ? 32 + 32 : 32 + 128;
	memcpy(k.addr, t->saddr, sizeof(k.addr));
	err = bpf_map_lookup_elem(sluice__map_fd(s, "src_ranges"), &k, &v);
	if (err && err != -ENOENT)
		return maps__err(err, "src_ranges", "lookup", "of the client");
	out->source = "sourceRanges";
	out->verdict = err ? SLUICE_XA_DENY : SLUICE_XA_ALLOW;
	out->drop = SLUICE_DROP_SOURCE_RANGE;
	err = explain__range_rule(s, svc->svc_id, t, out);
	if (err)
		return err;
	if (out->verdict == SLUICE_XA_DENY && out->has_rule)
		snprintf(out->why, sizeof(out->why),
			 "the kernel's lookup found no range but %s holds the client: the trie "
			 "and the ranges read back disagree",
			 sluice_cidr__str(&out->rule, buf, sizeof(buf)));
	else if (out->verdict == SLUICE_XA_DENY)
		snprintf(out->why, sizeof(out->why),
			 "the client is in none of the service's %u source ranges: dropped "
			 "unanswered (drop reason source_range)",
			 out->nrules);
	else if (out->has_rule)
		snprintf(out->why, sizeof(out->why), "source range %s holds the client",
			 sluice_cidr__str(&out->rule, buf, sizeof(buf)));
	else
		snprintf(out->why, sizeof(out->why),
			 "the kernel's lookup allows the client but no range read back holds it");
	return 0;
}

/* The verdict @drop of sluice__policy_verdict() and the entry @hit that
 * decided, in words. */
static void explain__access_fill(const struct sluice_svc *svc, int drop,
				 const struct sluice_policy_hit *hit,
				 struct sluice_explain_policy *out)
{
	char buf[SLUICE_CIDR_STRLEN];
	size_t n;

	out->has_rule = hit->has_prefix;
	out->rule = hit->prefix;
	out->ports = hit->ports;
	out->source = drop == SLUICE_DROP_POLICY_NODE_DENY   ? "nodeDenyFrom" :
		      drop == SLUICE_DROP_POLICY_DENY        ? "denyFrom" :
		      drop == SLUICE_DROP_POLICY_NOT_ALLOWED ? "allowFrom" :
		      svc->flags & SLUICE_SVC_F_POLICY       ? "allowFrom/denyFrom" :
							       "nodeDenyFrom";
	out->verdict = drop ? SLUICE_XA_DENY : SLUICE_XA_ALLOW;
	out->drop = drop ? (enum sluice_drop_reason)drop : SLUICE_DROP_NONE;
	if (drop == SLUICE_DROP_POLICY_NODE_DENY)
		snprintf(out->why, sizeof(out->why),
			 "the node-wide deny list holds the client: denied (drop reason %s)",
			 sluice__drop_name(drop));
	else if (drop == SLUICE_DROP_POLICY_DENY)
		snprintf(out->why, sizeof(out->why),
			 "the service's deny list holds the client: denied (drop reason %s)",
			 sluice__drop_name(drop));
	else if (drop)
		snprintf(out->why, sizeof(out->why),
			 "the service has an allow list and it does not hold the client: denied "
			 "(drop reason %s)",
			 sluice__drop_name(drop));
	else if (svc->flags & SLUICE_SVC_F_POLICY)
		snprintf(out->why, sizeof(out->why),
			 "the service's access policy lets the client in");
	else
		snprintf(out->why, sizeof(out->why),
			 "the node-wide deny list does not hold the client");
	/* which lookup decided: the prefix of an exact match, else the map */
	n = strlen(out->why);
	if (hit->has_prefix)
		snprintf(out->why + n, sizeof(out->why) - n, " [%s %s, lookup %u]", hit->map,
			 sluice_cidr__str(&hit->prefix, buf, sizeof(buf)),
			 hit->lookups ? hit->lookups : 1);
	else if (hit->map)
		snprintf(out->why + n, sizeof(out->why) - n, " [%s]", hit->map);
	else if (svc->flags & SLUICE_SVC_F_POLICY_HASH)
		snprintf(out->why + n, sizeof(out->why) - n,
			 " [policy_hash: no match in %u lookups]", hit->lookups);
}

/* The access policy (#15), checked after the source ranges: the node-wide
 * deny list, then the service's allow/deny lists; the verdict from the
 * kernel's own lookups (sluice__policy_verdict()). */
static bool explain__access(struct sluice *s, const struct sluice_svc *svc,
			    const struct sluice_ct_key *t, struct sluice_explain_policy *out)
{
	struct sluice_policy_hit hit;
	int drop = sluice__policy_verdict(s, svc, t, &hit);

	if (!drop && !(svc->flags & SLUICE_SVC_F_POLICY))
		return false;
	explain__access_fill(svc, drop, &hit, out);
	return true;
}

/* policy_node_any(): whether the node-wide list has prefixes of @family. */
static bool explain__node_any(struct sluice *s, __u8 family)
{
	struct sluice_policy_cfg c;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(sluice__map_fd(s, "policy_cfg"), &zero, &c))
		return false;
	return c.node_prefixes[family == SLUICE_AF_INET6];
}

/* sock_policy()'s client: the socket's local address in the service's
 * family, into @t; NULL, or why there is none (the kernel defers). */
static const char *explain__sock_client(const struct sluice_explain_req *r, struct sluice_ct_key *t)
{
	const struct sluice_addr *a = &r->sock_src;

	t->family = r->vip.family;
	if (!a->family)
		return "the socket is not bound, the route picks its source after "
		       "connect()/sendmsg()";
	if (r->vip.family == SLUICE_AF_INET && a->family == SLUICE_AF_INET6) {
		/* an IPv6 socket to an IPv4-mapped VIP: the kernel tests word 2 only */
		if (a->addr[2] != htonl(0xffff))
			return "the IPv6 socket is bound to no IPv4-mapped address, the route "
			       "picks its IPv4 source";
		t->saddr[0] = a->addr[3];
	} else {
		memcpy(t->saddr, a->addr, sizeof(t->saddr));
	}
	if (!t->saddr[0] && !t->saddr[1] && !t->saddr[2] && !t->saddr[3])
		return "the socket has no source address yet (not bound, or bound to the "
		       "wildcard), the route picks it after connect()/sendmsg()";
	t->sport = htons(r->sock_sport);
	return NULL;
}

int explain__sock_policy(struct sluice *s, const struct sluice_svc *svc,
			 const struct sluice_explain_req *r, struct sluice_explain_policy *out)
{
	struct sluice_ct_key t = {};
	struct sluice_policy_hit hit;
	const char *defer;
	int drop = 0;

	memset(out, 0, sizeof(*out));
	out->source = "-";
	if (!(svc->flags & SLUICE_SVC_F_POLICY) && !explain__node_any(s, r->vip.family)) {
		out->verdict = SLUICE_XA_NOT_CHECKED;
		snprintf(out->why, sizeof(out->why),
			 "no access policy and no node-wide deny of this family (the socket LB "
			 "checks no source ranges: they describe external clients)");
		return 0;
	}
	defer = explain__sock_client(r, &t);
	if (!defer) {
		drop = sluice__policy_verdict(s, svc, &t, &hit);
		explain__access_fill(svc, drop, &hit, out);
		/* policy_sock_denies(): no port yet, and a matching rule has ports */
		if (!r->sock_sport && hit.ports)
			defer = "the socket's port is not bound yet and a rule that holds its "
				"address depends on the client port";
	}
	if (!defer)
		return 0;
	out->verdict = SLUICE_XA_DEFERRED;
	out->drop = SLUICE_DROP_NONE;
	snprintf(out->why, sizeof(out->why),
		 "%s: the socket LB leaves the socket alone (policy_deferred) and the packet path "
		 "checks its first packet",
		 defer);
	return 0;
}

int explain__policy(struct sluice *s, const struct sluice_svc *svc, const struct sluice_ct_key *t,
		    enum sluice_explain_path path, struct sluice_explain_policy *out)
{
	int err;

	memset(out, 0, sizeof(*out));
	out->source = "-";
	if (path == SLUICE_EXPLAIN_SOCKET) {
		sluice__set_err("the socket path's access check is explain__sock_policy()");
		return -EINVAL;
	}
	if (svc->flags & SLUICE_SVC_F_SOURCE_RANGES) {
		err = explain__src_ranges(s, svc, t, out);
		if (err || out->verdict == SLUICE_XA_DENY)
			return err;
	}
	if (explain__access(s, svc, t, out))
		return 0;
	if (svc->flags & SLUICE_SVC_F_SOURCE_RANGES)
		return 0;
	out->verdict = SLUICE_XA_NO_RULES;
	snprintf(out->why, sizeof(out->why),
		 "the service has no source ranges and no access policy: every client");
	return 0;
}
