// SPDX-License-Identifier: MIT
/*
 * policy_cut.c - a policy change cuts what it now denies (#15): conntrack
 * flows of the XDP/tc path (both entries, both maps) and TCP and connected
 * UDP sockets the socket LB connected (SOCK_DESTROY through sock_diag).
 *
 * Contract: the verdict is the kernel's: the lookups of policy_nhost,
 * policy_node and policy (or policy_hash, per prefix length) with the
 * flow's client address and port, the service's flags and policy_lens
 * from the services map. Conntrack is walked first and
 * deleted after (deleting during a batched walk skips entries). Sockets:
 * every TCP and connected UDP socket of the caller's network namespace (sock_diag sees no
 * other) whose peer is a backend address:port is checked against each
 * service that backend serves, with its own address:port as the client;
 * a denied one is destroyed (its owner sees ECONNABORTED). SNAT state of
 * a cut flow is left to its LRU.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <bpf/bpf.h>

#include "policy_cut.h"

#define CUT_CT_BATCH 256  /* conntrack deletes per pass of the gate (0.3-4 ms) */
#define CUT_SOCK_BATCH 32 /* SOCK_DESTROYs per pass of the gate */

/* The verdict of value v for the client port. */
static __u8 cut__port_verdict(const struct sluice_policy_val *v, __u16 port)
{
	for (__u32 i = 0; i < v->nports && i < SLUICE_POLICY_PORTS; i++)
		if (port >= v->port[i].lo && port <= v->port[i].hi)
			return v->port[i].verdict;
	return v->verdict;
}

static void cut__hit(struct sluice_policy_hit *hit, const char *map,
		     const struct sluice_policy_key *k, __u8 family,
		     const struct sluice_policy_val *v)
{
	if (!hit)
		return;
	hit->map = map;
	if (v->nports)
		hit->ports = true;
	hit->has_prefix = k != NULL;
	if (!k)
		return;
	memset(&hit->prefix, 0, sizeof(hit->prefix));
	hit->prefix.addr.family = family;
	memcpy(hit->prefix.addr.addr, k->addr, sizeof(k->addr));
	hit->prefix.prefixlen = (__u8)(k->prefixlen - 32);
	if (v->from_len && v->from_len - 1 < hit->prefix.prefixlen) {
		/* an expanded entry of policy_hash: the rule's own prefix */
		hit->prefix.prefixlen = (__u8)(v->from_len - 1);
		sluice_cidr__mask(&hit->prefix);
	}
}

/* One exact lookup in @fd (@name) per length of @lens, longest first, the
 * client address masked to it, as the kernel's policy_hash_lookup(); the
 * lookups made go to @hit, after @before made in the same map. */
static __u8 cut__hash_lookup(int fd, const char *name, struct sluice_policy_key *k,
			     const struct sluice_ct_key *t, __u32 lens,
			     struct sluice_policy_hit *hit, __u32 before)
{
	struct sluice_policy_val v;
	__u32 len;

	for (__u32 i = 0; i < SLUICE_POLICY_LENS; i++) {
		len = (lens >> (8 * i)) & 0xff;
		if (!len--)
			break;
		k->prefixlen = 32 + len;
		for (__u32 w = 0; w < 4; w++) {
			__u32 keep = len >= 32 * w + 32 ? 32 : len > 32 * w ? len - 32 * w : 0;

			k->addr[w] = keep ? t->saddr[w] & htonl(~0u << (32 - keep)) : 0;
		}
		if (hit)
			hit->lookups = (__u8)(before + i + 1);
		if (!bpf_map_lookup_elem(fd, k, &v)) {
			cut__hit(hit, name, k, t->family, &v);
			return cut__port_verdict(&v, ntohs(t->sport));
		}
	}
	return SLUICE_POL_NONE;
}

/* The node list (policy_nhost, then its copies of the shorter prefixes
 * there or the trie policy_node) or the trie policy with id @id, as the
 * kernel's policy_lookup()/policy_node_lookup(). */
static __u8 cut__lookup(const struct sluice *s, int fd, __u32 id, const struct sluice_ct_key *t,
			struct sluice_policy_hit *hit)
{
	struct sluice_policy_key k = { .id = id };
	struct sluice_policy_nlens nl;
	struct sluice_policy_val v;
	bool node = fd == s->fds[SLUICE_MAP_POLICY_NODE];
	__u32 zero = 0;

	k.prefixlen = 32 + (t->family == SLUICE_AF_INET ? 32 : 128);
	memcpy(k.addr, t->saddr, sizeof(k.addr));
	/* the node list's host entries first, as the kernel does */
	if (node && !bpf_map_lookup_elem(s->fds[SLUICE_MAP_POLICY_NHOST], &k, &v)) {
		cut__hit(hit, "policy_nhost", &k, t->family, &v);
		return cut__port_verdict(&v, ntohs(t->sport));
	}
	/* then its shorter prefixes' copies there, one length at a time */
	if (node && !bpf_map_lookup_elem(s->fds[SLUICE_MAP_POLICY_NLENS], &zero, &nl) &&
	    nl.lens[t->family == SLUICE_AF_INET6]) {
		if (hit)
			hit->lookups = 1; /* the host entry's */
		return cut__hash_lookup(s->fds[SLUICE_MAP_POLICY_NHOST], "policy_nhost", &k, t,
					nl.lens[t->family == SLUICE_AF_INET6], hit, 1);
	}
	if (bpf_map_lookup_elem(fd, &k, &v))
		return SLUICE_POL_NONE;
	cut__hit(hit, node ? "policy_node" : "policy", NULL, t->family, &v);
	return cut__port_verdict(&v, ntohs(t->sport));
}

/* The service's entries as the kernel's policy_svc_lookup() finds them:
 * with SLUICE_SVC_F_POLICY_HASH one exact lookup in policy_hash per
 * length of svc->policy_lens, longest first; the trie otherwise. */
static __u8 cut__svc_lookup(const struct sluice *s, const struct sluice_svc *svc,
			    const struct sluice_ct_key *t, struct sluice_policy_hit *hit)
{
	struct sluice_policy_key k = { .id = svc->svc_id };

	if (!(svc->flags & SLUICE_SVC_F_POLICY_HASH))
		return cut__lookup(s, s->fds[SLUICE_MAP_POLICY], svc->svc_id, t, hit);
	return cut__hash_lookup(s->fds[SLUICE_MAP_POLICY_HASH], "policy_hash", &k, t,
				svc->policy_lens, hit, 0);
}

int sluice__policy_verdict(struct sluice *s, const struct sluice_svc *svc,
			   const struct sluice_ct_key *fwd, struct sluice_policy_hit *hit)
{
	bool ports;
	__u8 v;

	if (hit)
		memset(hit, 0, sizeof(*hit));
	if (cut__lookup(s, s->fds[SLUICE_MAP_POLICY_NODE], fwd->family, fwd, hit) ==
	    SLUICE_POL_DENY)
		return SLUICE_DROP_POLICY_NODE_DENY;
	if (hit) {
		/* the node entry's ports still count, as in __policy_denies() */
		ports = hit->ports;
		memset(hit, 0, sizeof(*hit));
		hit->ports = ports;
	}
	if (!(svc->flags & SLUICE_SVC_F_POLICY))
		return 0;
	v = cut__svc_lookup(s, svc, fwd, hit);
	if (v == SLUICE_POL_DENY)
		return SLUICE_DROP_POLICY_DENY;
	if (v == SLUICE_POL_NONE && (svc->flags & SLUICE_SVC_F_POLICY_ALLOWLIST))
		return SLUICE_DROP_POLICY_NOT_ALLOWED;
	return 0;
}

static int cut__push(struct cut_ctx *c, const struct sluice_ct_key *k)
{
	struct sluice_ct_key *grown;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 256;
		grown = realloc(c->keys, c->cap * sizeof(*grown));
		if (!grown) {
			sluice__set_err("policy cut: out of memory");
			return -ENOMEM;
		}
		c->keys = grown;
	}
	c->keys[c->n++] = *k;
	return 0;
}

static int cut__ct_one(const void *key, const void *value, void *arg)
{
	const struct sluice_ct_key *k = key;
	const struct sluice_ct_entry *e = value;
	struct cut_ctx *c = arg;
	struct sluice_ct_key rev = {};
	int err;

	if ((++c->seen & 4095) == 0 && cut__stale(c))
		return -ECANCELED;
	if (k->dir != SLUICE_CT_FWD || e->svc_id >= SLUICE_MAX_SERVICES ||
	    !c->svcs[e->svc_id].flags ||
	    !sluice__policy_verdict(c->s, &c->svcs[e->svc_id], k, NULL))
		return 0;
	err = cut__push(c, k);
	if (err)
		return err;
	memcpy(rev.saddr, e->addr, sizeof(rev.saddr)); /* backend -> client */
	memcpy(rev.daddr, k->saddr, sizeof(rev.daddr));
	rev.sport = e->port;
	rev.dport = k->sport;
	rev.proto = k->proto;
	rev.family = k->family;
	rev.dir = SLUICE_CT_REPLY;
	return cut__push(c, &rev);
}

/* Bits of the cut's own copy of a service's flags, above the ABI's. */
#define CUT_F_SERVICE 0x8000 /* non-zero: a service */
#define CUT_F_UDP 0x4000     /* its key's protocol is UDP (else TCP) */

static int cut__svcs_one(const void *key, const void *value, void *arg)
{
	const struct sluice_svc_key *k = key;
	const struct sluice_svc *svc = value;
	struct sluice_svc *svcs = arg;

	if (!(svc->flags & SLUICE_SVC_F_VIP_MARKER) && svc->svc_id < SLUICE_MAX_SERVICES) {
		svcs[svc->svc_id] = *svc;
		svcs[svc->svc_id].flags |= CUT_F_SERVICE;
		if (k->proto == IPPROTO_UDP)
			svcs[svc->svc_id].flags |= CUT_F_UDP;
	}
	return 0;
}

static int cut__conntrack(struct cut_ctx *c, __u64 *flows)
{
	static const enum sluice_map_id maps[] = { SLUICE_MAP_CONNTRACK, SLUICE_MAP_CT_NEW };
	int err = 0;

	for (size_t m = 0; m < 2 && !err; m++) {
		int fd = c->s->fds[maps[m]];

		c->n = 0;
		err = maps__for_each(fd, "conntrack", sizeof(struct sluice_ct_key),
				     sizeof(struct sluice_ct_entry), cut__ct_one, c);
		/* a batch at a time through the gate: a write waits for one */
		for (size_t i = 0; !err && i < c->n; i += CUT_CT_BATCH) {
			if (!cut__gate(c)) {
				err = -ECANCELED;
				break;
			}
			for (size_t j = i; j < c->n && j < i + CUT_CT_BATCH; j++)
				if (!bpf_map_delete_elem(fd, &c->keys[j]) &&
				    c->keys[j].dir == SLUICE_CT_FWD)
					(*flows)++;
			cut__ungate(c);
		}
	}
	return err;
}

/* --- sockets --- */

static int cut__be_one(const void *key, const void *value, void *arg)
{
	struct cut_ctx *c = arg;
	const struct sluice_backend *b = value;
	struct sluice_ct_key k = {};

	(void)key;
	/* kept in a ct key: daddr/dport the backend, dir unused, pad = 0 */
	memcpy(k.daddr, b->addr, sizeof(k.daddr));
	k.dport = b->port;
	k.family = b->family;
	k.sport = 0;
	memcpy(&k.saddr[0], &b->svc_id, sizeof(b->svc_id)); /* svc id in saddr[0] */
	return cut__push(c, &k);
}

static int cut__sock_check(struct cut_ctx *bes, const struct inet_diag_msg *m, __u8 proto)
{
	__u8 family = m->idiag_family == AF_INET ? SLUICE_AF_INET : SLUICE_AF_INET6;
	size_t alen = family == SLUICE_AF_INET ? 4 : 16;
	struct sluice_ct_key t = { .family = family, .proto = proto };

	memcpy(t.saddr, m->id.idiag_src, alen);
	t.sport = m->id.idiag_sport;
	for (size_t i = 0; i < bes->n; i++) {
		const struct sluice_ct_key *b = &bes->keys[i];
		__u32 svc_id = b->saddr[0];

		if (b->family != family || b->dport != m->id.idiag_dport ||
		    memcmp(b->daddr, m->id.idiag_dst, alen) || svc_id >= SLUICE_MAX_SERVICES ||
		    !bes->svcs[svc_id].flags)
			continue;
		/* only a service of the socket's own protocol connected it */
		if (!(bes->svcs[svc_id].flags & CUT_F_UDP) != (proto == IPPROTO_TCP))
			continue;
		if (sluice__policy_verdict(bes->s, &bes->svcs[svc_id], &t, NULL))
			return 1;
	}
	return 0;
}

static int cut__nl_send(int fd, __u16 type, __u16 flags, const struct inet_diag_req_v2 *req)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} msg = { .nlh = { .nlmsg_len = sizeof(msg),
			   .nlmsg_type = type,
			   .nlmsg_flags = NLM_F_REQUEST | flags },
		  .r = *req };

	return send(fd, &msg, sizeof(msg), 0) == (ssize_t)sizeof(msg) ? 0 : -errno;
}

/* Destroys the denied sockets of one family and protocol; -EOPNOTSUPP
 * without CONFIG_INET_DIAG_DESTROY. TCP: every state but LISTEN (10) and
 * TIME_WAIT (6). UDP: connected sockets only (ESTABLISHED, 1): the
 * socket LB checks an unconnected one's every sendmsg() to a VIP, but a
 * connected one's datagrams go to its backend unchecked; destroyed
 * (udp_abort()), it is disconnected and its owner sees ECONNABORTED once,
 * then EDESTADDRREQ from send(). Without udp_diag (CONFIG_INET_UDP_DIAG)
 * the dump answers an error: nothing is cut, as for TCP without tcp_diag. */
static int cut__socks_family(struct cut_ctx *bes, int af, __u8 proto, __u64 *socks)
{
	struct inet_diag_req_v2 req = { .sdiag_family = af,
					.sdiag_protocol = proto,
					.idiag_states = proto == IPPROTO_UDP ?
								1u << 1 :
								~((1u << 10) | (1u << 6)) };
	struct inet_diag_sockid *kill = NULL;
	size_t nkill = 0, cap = 0, max = SLUICE_CUT_MAX_SOCKS;
	char buf[16384];
	int fd, err = 0;
	bool done = false, truncated = false;

	if (bes->scope && bes->scope->max_socks)
		max = bes->scope->max_socks;
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return -errno;
	err = cut__nl_send(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, &req);
	while (!err && !done) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (void *)buf;

		if (len < 0) {
			err = -errno;
			break;
		}
		for (; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				done = true;
				break;
			}
			if (!cut__sock_check(bes, NLMSG_DATA(h), proto))
				continue;
			if (nkill == max) { /* the rest wait for the next cut */
				truncated = true;
				continue;
			}
			if (nkill == cap) {
				struct inet_diag_sockid *g;

				cap = cap ? 2 * cap : 16;
				g = realloc(kill, cap * sizeof(*g));
				if (!g) {
					err = -ENOMEM;
					break;
				}
				kill = g;
			}
			kill[nkill++] = ((struct inet_diag_msg *)NLMSG_DATA(h))->id;
		}
	}
	for (size_t i = 0; !err && i < nkill; i++) {
		struct {
			struct nlmsghdr nlh;
			struct nlmsgerr e;
		} ack;

		if (i % CUT_SOCK_BATCH == 0) {
			if (i)
				cut__ungate(bes);
			if (!cut__gate(bes)) {
				err = -ECANCELED;
				nkill = 0; /* nothing held to release */
				break;
			}
		}
		req.id = kill[i];
		req.idiag_states = ~0u;
		err = cut__nl_send(fd, SOCK_DESTROY, NLM_F_ACK, &req);
		if (!err && recv(fd, &ack, sizeof(ack), 0) < 0)
			err = -errno;
		if (!err && ack.nlh.nlmsg_type == NLMSG_ERROR && ack.e.error &&
		    ack.e.error != -ENOENT)
			err = ack.e.error;
		if (!err)
			(*socks)++;
	}
	if (nkill)
		cut__ungate(bes);
	if (truncated) {
		cut__lock(bes->s);
		bes->s->cut.socks_truncated++;
		cut__unlock(bes->s);
	}
	free(kill);
	close(fd);
	return err;
}

/* A dump walks the kernel's whole established hash (global, not per
 * namespace: 262144 buckets here, ~1-3 ms): only for a family and a
 * protocol that have backends. */
int cut__socks(struct cut_ctx *bes, __u64 *socks)
{
	bool v4[2] = {}, v6[2] = {}; /* [0] TCP, [1] UDP */
	int err = 0;

	for (size_t i = 0; i < bes->n; i++) {
		__u32 svc_id = bes->keys[i].saddr[0];
		int p;

		if (svc_id >= SLUICE_MAX_SERVICES || !bes->svcs[svc_id].flags)
			continue;
		p = !!(bes->svcs[svc_id].flags & CUT_F_UDP);
		v4[p] |= bes->keys[i].family == SLUICE_AF_INET;
		v6[p] |= bes->keys[i].family == SLUICE_AF_INET6;
	}
	for (int p = 0; p < 2 && !err; p++) {
		__u8 proto = p ? IPPROTO_UDP : IPPROTO_TCP;

		if (v4[p])
			err = cut__socks_family(bes, AF_INET, proto, socks);
		if (!err && v6[p])
			err = cut__socks_family(bes, AF_INET6, proto, socks);
	}
	return err;
}

int cut__run(struct sluice *s, struct cut_async *as, __u64 gen, const struct cut_scope *scope,
	     __u64 *flows, __u64 *socks, int *sock_err)
{
	struct sluice_svc *svcs = calloc(SLUICE_MAX_SERVICES, sizeof(*svcs));
	struct cut_ctx c = { .s = s, .svcs = svcs, .as = as, .gen = gen };
	struct cut_ctx bes = { .s = s, .svcs = svcs, .scope = scope, .as = as, .gen = gen };
	int err;

	*flows = *socks = 0;
	*sock_err = 0;
	if (!svcs) {
		sluice__set_err("policy cut: out of memory");
		return -ENOMEM;
	}
	err = maps__for_each(s->fds[SLUICE_MAP_SERVICES], "services", sizeof(struct sluice_svc_key),
			     sizeof(struct sluice_svc), cut__svcs_one, svcs);
	if (!err)
		err = cut__conntrack(&c, flows);
	if (!err)
		err = maps__for_each(s->fds[SLUICE_MAP_BACKENDS], "backends", sizeof(__u32),
				     sizeof(struct sluice_backend), cut__be_one, &bes);
	if (!err && bes.n) {
		*sock_err = cut__socks(&bes, socks);
		if (*sock_err == -ECANCELED)
			err = -ECANCELED;
		else
			err = cut__socks_netns(&bes, socks);
	}
	cut__lock(s);
	s->cut.flows += *flows;
	s->cut.socks += *socks;
	cut__unlock(s);
	free(c.keys);
	free(bes.keys);
	free(svcs);
	return err;
}

int sluice__policy_cut(struct sluice *s, __u64 *flows, __u64 *socks, int *sock_err)
{
	struct cut_scope scope;
	int err;

	sluice__clear_err();
	cut__lock(s);
	scope = (struct cut_scope){ .cgroup = s->cut_cgroup ? strdup(s->cut_cgroup) : NULL,
				    .all = s->cut_all,
				    .max_netns = s->cut_max_netns,
				    .budget_ms = s->cut_budget_ms,
				    .max_pids = s->cut_max_pids,
				    .max_socks = s->cut_max_socks };
	cut__unlock(s);
	if (s->cut_cgroup && !scope.cgroup) {
		sluice__set_err("policy cut: out of memory");
		return -ENOMEM;
	}
	err = cut__run(s, NULL, 0, &scope, flows, socks, sock_err);

	free(scope.cgroup);
	return err;
}
