// SPDX-License-Identifier: MIT
/*
 * k8s_translate.c - Services + EndpointSlices -> the kubernetes part of the
 * desired state (rules in k8s.h).
 *
 * Contract: the output is deterministic (services sorted by key, backends
 * by address and port) so that an unchanged cluster translates to an equal
 * set and nothing is re-applied; every service it emits passes
 * desired__validate() on its own: backends are de-duplicated, a backend
 * equal to the VIP:port is dropped, at most SLUICE_MAX_SVC_BACKENDS per
 * service (ready endpoints first), a weight set that would leave no
 * backend above 0 is replaced by weight 1, and the service/backend totals
 * stay within the map limits. Whatever is dropped is reported through
 * o->warn, never silently.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "internal.h"
#include "k8s_internal.h"

struct cand {
	struct sluice_addr addr;
	__u16 port;
	__u16 weight;
	bool active; /* ready; else serving + terminating */
};

struct xlate {
	const struct k8s_xlate_opts *o;
	const struct k8s_slice **slices; /* sorted by namespace, service */
	__u32 nslices;
	struct desired out;
	__u32 cap;
	__u64 total_backends;
	__u64 total_ranges; /* source ranges (#13), bounded like backends */
	bool full;          /* a map limit was reached: later services are left out */
	struct cand *c;
	__u32 nc, capc;
};

static void xl__warn(struct xlate *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void xl__warn(struct xlate *x, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!x->o || !x->o->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	x->o->warn(buf, x->o->ctx);
}

static int cmp_addr(const struct sluice_addr *a, const struct sluice_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, (a->family == SLUICE_AF_INET ? 1 : 4) * sizeof(__u32));
}

static int slice__cmp_owner(const struct k8s_slice *s, const char *ns, const char *svc)
{
	int c = strcmp(s->ns, ns);

	return c ? c : strcmp(s->service, svc);
}

static int slices__cmp(const void *a, const void *b)
{
	const struct k8s_slice *x = *(const struct k8s_slice *const *)a;
	const struct k8s_slice *y = *(const struct k8s_slice *const *)b;
	int c = slice__cmp_owner(x, y->ns, y->service);

	return c ? c : strcmp(x->name, y->name);
}

/* First slice of ns/svc in x->slices (binary search). */
static __u32 xl__first_slice(const struct xlate *x, const char *ns, const char *svc)
{
	__u32 lo = 0, hi = x->nslices;

	while (lo < hi) {
		__u32 mid = lo + (hi - lo) / 2;

		if (slice__cmp_owner(x->slices[mid], ns, svc) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static __u16 xl__weight(const struct k8s_svc *svc, const struct k8s_slice *sl,
			const struct k8s_ep *ep)
{
	for (__u32 i = 0; i < svc->nrules; i++) {
		const struct k8s_weight_rule *r = &svc->rules[i];

		if (r->is_addr ? sluice_addr__eq(&r->addr, &ep->addr) :
				 ep->target && !fnmatch(r->key, ep->target, 0))
			return r->weight;
	}
	return sl->weight >= 0 ? sl->weight : 1;
}

static int xl__add_cand(struct xlate *x, const struct cand *c)
{
	if (x->nc == x->capc) {
		__u32 n = x->capc ? x->capc * 2 : 64;
		struct cand *v = realloc(x->c, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		x->c = v;
		x->capc = n;
	}
	x->c[x->nc++] = *c;
	return 0;
}

static int cand__cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	int c = cmp_addr(&x->addr, &y->addr);

	if (c)
		return c;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return (int)y->active - (int)x->active; /* the ready copy first */
}

static int cand__cmp_active_first(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->active != y->active)
		return x->active ? -1 : 1;
	return cand__cmp(a, b);
}

/* The service's endpoints for one (port, VIP) into x->c; vport is the
 * port clients use on vip (the nodePort for a node address). */
static int xl__collect(struct xlate *x, const struct k8s_svc *svc, const struct k8s_svc_port *p,
		       const struct k8s_vip *vip, __u16 vport, __u32 first)
{
	const char *node = x->o ? x->o->node_name : NULL;
	bool local = node && (vip->external ? svc->etp_local : svc->itp_local);
	int err;

	x->nc = 0;
	for (__u32 i = first; i < x->nslices; i++) {
		const struct k8s_slice *sl = x->slices[i];
		const struct k8s_slice_port *sp = NULL;
		__u16 port;

		if (slice__cmp_owner(sl, svc->ns, svc->name))
			break;
		if (sl->family != vip->addr.family)
			continue;
		for (__u32 j = 0; j < sl->nports && !sp; j++)
			if (sl->ports[j].proto == p->proto && !strcmp(sl->ports[j].name, p->name))
				sp = &sl->ports[j];
		if (!sp)
			continue; /* this slice does not serve that port */
		/* The controller resolved a named targetPort per pod into the
		 * slice's port; a hand-made slice may leave it unset. */
		port = sp->port ? sp->port : p->target_port;
		if (!port)
			continue;
		for (__u32 j = 0; j < sl->neps; j++) {
			const struct k8s_ep *ep = &sl->eps[j];
			struct cand c = { .addr = ep->addr, .port = port, .active = ep->ready };

			if (!ep->ready && !(ep->serving && ep->terminating))
				continue;
			if (local && (!ep->node || strcmp(ep->node, node)))
				continue;
			if (port == vport && sluice_addr__eq(&ep->addr, &vip->addr))
				continue; /* would send the VIP to itself */
			c.weight = xl__weight(svc, sl, ep);
			err = xl__add_cand(x, &c);
			if (err)
				return err;
		}
	}
	return 0;
}

/* Dedupe, apply the condition rules to the weights, cap the count. */
static void xl__settle(struct xlate *x, const char *name)
{
	__u32 n = 0, active = 0;
	__u64 active_weight = 0;

	if (!x->nc)
		return;
	qsort(x->c, x->nc, sizeof(*x->c), cand__cmp);
	for (__u32 i = 0; i < x->nc; i++) {
		/* the same endpoint in two slices (slice migration): keep the ready copy */
		if (n && x->c[n - 1].port == x->c[i].port &&
		    sluice_addr__eq(&x->c[n - 1].addr, &x->c[i].addr))
			continue;
		x->c[n++] = x->c[i];
	}
	x->nc = n;
	for (__u32 i = 0; i < n; i++) {
		active += x->c[i].active;
		active_weight += x->c[i].active ? x->c[i].weight : 0;
	}
	if (active && !active_weight)
		xl__warn(x, "%s: %s gives every ready endpoint weight 0; using weight 1", name,
			 K8S_ANN_WEIGHTS);
	for (__u32 i = 0; i < n; i++) {
		struct cand *c = &x->c[i];

		if (!active)
			c->weight = c->weight ? c->weight : 1; /* terminating-only: still serve */
		else if (!c->active)
			c->weight = 0; /* draining: existing flows only */
		else if (!active_weight)
			c->weight = 1;
	}
	if (n > SLUICE_MAX_SVC_BACKENDS) {
		xl__warn(x, "%s: %u endpoints exceed the limit of %u per service; %u left out",
			 name, n, SLUICE_MAX_SVC_BACKENDS, n - SLUICE_MAX_SVC_BACKENDS);
		qsort(x->c, n, sizeof(*x->c), cand__cmp_active_first);
		x->nc = SLUICE_MAX_SVC_BACKENDS;
		qsort(x->c, x->nc, sizeof(*x->c), cand__cmp);
	}
}

/* mark: "" or K8S_NODEPORT_MARK, kept whole when the name is cut. */
static void xl__name(char *buf, const struct k8s_svc *svc, const struct k8s_svc_port *p,
		     const char *mark)
{
	int mlen = (int)strlen(mark);
	char full[512];
	__u32 h = 2166136261u;
	int len;

	if (p->name[0])
		len = snprintf(full, sizeof(full), "%s/%s:%s%s", svc->ns, svc->name, p->name, mark);
	else
		len = snprintf(full, sizeof(full), "%s/%s%s", svc->ns, svc->name, mark);
	if (len >= (int)sizeof(full))
		len = sizeof(full) - 1;
	/* The API server only admits DNS names, but a byte outside printable
	 * ASCII here would make desired__validate() refuse the whole state
	 * (every service of the node), and cutting the name below could split
	 * a UTF-8 sequence: such bytes become '?'. */
	for (char *c = full; *c; c++)
		if (*c < 0x21 || *c > 0x7e)
			*c = '?';
	if (len < DESIRED_NAME_MAX) {
		memcpy(buf, full, len + 1);
		return;
	}
	/* A label only (the key is VIP:port/proto): keep it readable and unique. */
	for (const char *c = full; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	snprintf(buf, DESIRED_NAME_MAX, "%.*s~%08x%s", DESIRED_NAME_MAX - 10 - mlen, full, h, mark);
}

/*
 * externalTrafficPolicy of a NodePort: Cluster balances over every ready
 * endpoint and source-NATs to the node address (a remote endpoint's reply
 * must come back through this node to be reverse-NATed); Local keeps the
 * node's own endpoints (xl__collect) and the client's address, and a node
 * without one drops new flows rather than refusing them, so an external
 * load balancer's probe (healthCheckNodePort) and not a client's RST
 * steers traffic away (SLUICE_SVC_F_SNAT / _DROP_EMPTY in the datapath).
 * With no node name known, Local keeps every endpoint (xl__collect) and
 * so never leaves the service empty. Load-balancer and external IPs of
 * Cluster are source-NATed too (xl__emit), to the node's SNAT address
 * (snat_node): the VIP is not this node's, so an answer to it would not
 * come back here.
 */
static void xl__nodeport_policy(struct desired_service *d, const struct k8s_svc *svc)
{
	d->snat = !svc->etp_local;
	d->drop_empty = svc->etp_local;
}

/* A load-balancer address's source ranges (#13), a warning for those
 * beyond the bound; the trie's capacity is shared by every service, so
 * past it the ranges of later services are left out with their service
 * (leaving them open would be worse). */
static int xl__src_ranges(struct xlate *x, const struct k8s_svc *svc, const struct k8s_vip *vip,
			  struct desired_service *d)
{
	char a[SLUICE_ADDR_STRLEN];
	int over;

	over = k8s_svc__src_ranges_for(svc, &vip->addr, d);
	if (over < 0)
		return over;
	if (over)
		xl__warn(x,
			 "Service %s/%s: %u loadBalancerSourceRanges of %s, only the first %u "
			 "are enforced on %s; clients in the other %d are dropped",
			 svc->ns, svc->name, SLUICE_SRC_RANGES_PER_SVC + over,
			 vip->addr.family == SLUICE_AF_INET ? "IPv4" : "IPv6",
			 SLUICE_SRC_RANGES_PER_SVC, sluice_addr__str(&vip->addr, a, sizeof(a)),
			 over);
	x->total_ranges += d->nsrc_ranges;
	return 0;
}

/* The policy annotations (#15) for d's address; a refused set is named. */
static int xl__policy(struct xlate *x, const struct k8s_svc *svc, struct desired_service *d)
{
	char prob[SLUICE_ERRMSG_LEN], ref[DESIRED_SVC_REF_LEN];
	int err = k8s_svc__policy_for(svc, d, prob, sizeof(prob));

	if (!err && prob[0])
		xl__warn(x, "Service %s/%s on %s: %s", svc->ns, svc->name,
			 desired__svc_ref(d, ref, sizeof(ref)), prob);
	return err;
}

static int xl__emit(struct xlate *x, const struct k8s_svc *svc, const struct k8s_svc_port *p,
		    const struct k8s_vip *vip, __u16 vport, bool node_port)
{
	struct desired_service *d;
	char name[DESIRED_NAME_MAX];

	xl__name(name, svc, p, node_port ? K8S_NODEPORT_MARK : "");
	xl__settle(x, name);
	if (x->out.nservices >= SLUICE_MAX_SERVICES - 1 ||
	    x->total_backends + x->nc > SLUICE_MAX_BACKENDS - 1 ||
	    x->total_ranges + (vip->lb ? k8s_svc__src_ranges_count(svc, &vip->addr) : 0) >
		    SLUICE_SRC_RANGES_MAX / 2) {
		if (!x->full)
			xl__warn(x,
				 "%s and later services left out: the maps hold at most %u "
				 "services, %u backends and %u source ranges",
				 name, SLUICE_MAX_SERVICES - 1, SLUICE_MAX_BACKENDS - 1,
				 SLUICE_SRC_RANGES_MAX / 2);
		x->full = true;
		return 0;
	}
	if (x->out.nservices == x->cap) {
		__u32 n = x->cap ? x->cap * 2 : 64;
		struct desired_service *v = realloc(x->out.services, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		x->out.services = v;
		x->cap = n;
	}
	d = &x->out.services[x->out.nservices];
	memset(d, 0, sizeof(*d));
	memcpy(d->name, name, sizeof(name));
	snprintf(d->source, sizeof(d->source), "%s", K8S_SOURCE);
	d->vip = vip->addr;
	d->port = vport;
	d->proto = p->proto;
	d->affinity_timeout_s = svc->affinity_timeout_s;
	if (vip->lb && xl__src_ranges(x, svc, vip, d))
		return -ENOMEM;
	if (xl__policy(x, svc, d))
		return -ENOMEM;
	if (x->nc) {
		d->backends = calloc(x->nc, sizeof(*d->backends));
		if (!d->backends)
			return -ENOMEM;
	}
	for (__u32 i = 0; i < x->nc; i++) {
		d->backends[i].addr = x->c[i].addr;
		d->backends[i].port = x->c[i].port;
		d->backends[i].weight = x->c[i].weight;
	}
	d->nbackends = x->nc;
	d->health = svc->health;
	/* a udp port is probed over TCP on the port the annotation names */
	if (d->health.type && desired__health_validate(&d->health, d->proto, K8S_ANN_HEALTH)) {
		xl__warn(x, "%s: %s: no health check on this port", name, sluice__errmsg());
		memset(&d->health, 0, sizeof(d->health));
	}
	if (node_port)
		xl__nodeport_policy(d, svc);
	else if (vip->external && !svc->etp_local)
		d->snat = d->snat_node = true; /* not a node address: SNAT to the node's */
	x->total_backends += x->nc;
	x->out.nservices++;
	return 0;
}

/* Whether the Service has a cluster IP of this family (its ipFamilies). */
static bool svc__has_family(const struct k8s_svc *svc, __u8 family)
{
	bool any_cluster = false;

	for (__u32 i = 0; i < svc->nvips; i++)
		any_cluster |= !svc->vips[i].external;
	for (__u32 i = 0; i < svc->nvips; i++)
		if ((!any_cluster || !svc->vips[i].external) && svc->vips[i].addr.family == family)
			return true;
	return false;
}

/* The port's nodePort on every node address of the Service's families. */
static int xl__node_ports(struct xlate *x, const struct k8s_svc *svc, const struct k8s_svc_port *p,
			  __u32 first)
{
	int err = 0;

	if (!svc->node_ports || !p->node_port || !x->o)
		return 0;
	for (__u32 i = 0; i < x->o->nnode_addrs && !err; i++) {
		/* external: externalTrafficPolicy applies, as to load-balancer IPs */
		struct k8s_vip vip = { .addr = x->o->node_addrs[i],
				       .external = true,
				       /* the issue asks for NodePort traffic too */
				       .lb = svc->load_balancer };

		if (!svc__has_family(svc, vip.addr.family))
			continue;
		err = xl__collect(x, svc, p, &vip, p->node_port, first);
		if (!err)
			err = xl__emit(x, svc, p, &vip, p->node_port, true);
	}
	return err;
}

static int xl__service(struct xlate *x, const struct k8s_svc *svc)
{
	const char *want = x->o ? x->o->proxy_name : NULL;
	__u32 first;
	int err;

	if (svc->headless)
		return 0;
	/* kube-proxy's rule: a service labelled for another proxy is not ours. */
	if (svc->proxy_name && (!want || strcmp(svc->proxy_name, want)))
		return 0;
	if (svc->problem)
		xl__warn(x, "Service %s/%s: %s", svc->ns, svc->name, svc->problem);
	first = xl__first_slice(x, svc->ns, svc->name);
	for (__u32 i = 0; i < svc->nports; i++) {
		const struct k8s_svc_port *p = &svc->ports[i];

		if (!p->proto)
			continue; /* SCTP */
		for (__u32 j = 0; j < svc->nvips; j++) {
			err = xl__collect(x, svc, p, &svc->vips[j], p->port, first);
			if (!err)
				err = xl__emit(x, svc, p, &svc->vips[j], p->port, false);
			if (err)
				return err;
		}
		err = xl__node_ports(x, svc, p, first);
		if (err)
			return err;
	}
	return 0;
}

struct keyed {
	struct desired_service *svc;
	__u32 idx;
};

static int keyed__cmp(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = desired__cmp_key(x->svc, y->svc);

	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sort by key; of two services with one key the first translated (by
 * namespace/name) stays and the other is reported. */
static int xl__sort(struct xlate *x)
{
	struct desired_service *v = NULL;
	struct keyed *k = NULL;
	__u32 n = x->out.nservices, m = 0;
	char ref[DESIRED_SVC_REF_LEN];

	if (n < 2)
		return 0;
	k = malloc(n * sizeof(*k));
	v = malloc(n * sizeof(*v));
	if (!k || !v) {
		free(k);
		free(v);
		return -ENOMEM;
	}
	for (__u32 i = 0; i < n; i++)
		k[i] = (struct keyed){ &x->out.services[i], i };
	qsort(k, n, sizeof(*k), keyed__cmp);
	for (__u32 i = 0; i < n; i++) {
		if (m && !desired__cmp_key(&v[m - 1], k[i].svc)) {
			xl__warn(x, "%s of %s is already used by %s: left out",
				 desired__svc_ref(k[i].svc, ref, sizeof(ref)), k[i].svc->name,
				 v[m - 1].name);
			free(k[i].svc->backends);
			free(k[i].svc->src_ranges);
			free(k[i].svc->rules);
			continue;
		}
		v[m++] = *k[i].svc;
	}
	free(x->out.services);
	free(k);
	x->out.services = v;
	x->out.nservices = m;
	return 0;
}

int k8s__translate(const struct k8s_objs *svcs, const struct k8s_objs *slices,
		   const struct k8s_xlate_opts *o, struct desired *out)
{
	const void **sv = NULL, **sl = NULL;
	struct xlate x = { .o = o };
	__u32 nsv = 0, nsl = 0;
	int err;

	sluice__clear_err();
	desired__init(&x.out);
	err = k8s_objs__sorted(svcs, &sv, &nsv);
	if (!err)
		err = k8s_objs__sorted(slices, &sl, &nsl);
	if (err)
		goto out;
	/* only slices that can contribute, grouped by owning service */
	x.slices = (const struct k8s_slice **)sl;
	for (__u32 i = 0; i < nsl; i++) {
		const struct k8s_slice *s = sl[i];

		if (s->problem)
			xl__warn(&x, "EndpointSlice %s/%s: %s", s->ns, s->name, s->problem);
		if (s->service && s->family)
			x.slices[x.nslices++] = s;
	}
	if (x.nslices)
		qsort(x.slices, x.nslices, sizeof(*x.slices), slices__cmp);
	for (__u32 i = 0; i < nsv && !err; i++)
		err = xl__service(&x, sv[i]);
	if (!err)
		err = xl__sort(&x);
out:
	free(sv);
	free(sl);
	free(x.c);
	if (err) {
		desired__free(&x.out);
		sluice__set_err("out of memory translating Kubernetes services");
		return err;
	}
	desired__free(out);
	*out = x.out;
	return 0;
}

bool k8s__desired_equal(const struct desired *a, const struct desired *b)
{
	if (a->nservices != b->nservices)
		return false;
	for (__u32 i = 0; i < a->nservices; i++) {
		const struct desired_service *x = &a->services[i], *y = &b->services[i];

		if (desired__cmp_key(x, y) || strcmp(x->name, y->name) ||
		    strcmp(x->source, y->source) || x->nbackends != y->nbackends ||
		    x->affinity_timeout_s != y->affinity_timeout_s || x->snat != y->snat ||
		    x->snat_node != y->snat_node || x->drop_empty != y->drop_empty ||
		    !desired__health_eq(&x->health, &y->health) || !desired__src_ranges_eq(x, y) ||
		    !desired__policy_eq(x, y))
			return false;
		for (__u32 j = 0; j < x->nbackends; j++) {
			const struct desired_backend *p = &x->backends[j], *q = &y->backends[j];

			if (p->port != q->port || p->weight != q->weight ||
			    !sluice_addr__eq(&p->addr, &q->addr))
				return false;
		}
	}
	return true;
}
