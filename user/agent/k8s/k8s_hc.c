// SPDX-License-Identifier: MIT
/*
 * k8s_hc.c - the healthCheckNodePorts of the Services (k8s.h) and their
 * local endpoint counts, for the health servers (user/agent/hcnp).
 *
 * Contract: one entry per Service of type LoadBalancer with
 * externalTrafficPolicy Local and a valid spec.healthCheckNodePort (the
 * parser refuses others), the Services the translation serves (not
 * headless, not another proxy's); sorted by port. The count is what
 * kube-proxy reports: the distinct address:port pairs of ready endpoints
 * on this node over all of the Service's ports and families (with no node
 * name known, every ready endpoint: the datapath then uses them all too).
 * Two Services claiming one port (only a stand-in API server allows it):
 * the first by namespace/name keeps it, the other is reported.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "k8s_internal.h"

void k8s_hc_set__free(struct k8s_hc_set *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

bool k8s_hc_set__equal(const struct k8s_hc_set *a, const struct k8s_hc_set *b)
{
	return a->n == b->n && (!a->n || !memcmp(a->v, b->v, a->n * sizeof(*a->v)));
}

int k8s_hc_set__copy(struct k8s_hc_set *dst, const struct k8s_hc_set *src)
{
	dst->n = 0;
	dst->v = NULL;
	if (!src->n)
		return 0;
	dst->v = malloc(src->n * sizeof(*dst->v));
	if (!dst->v)
		return -ENOMEM;
	memcpy(dst->v, src->v, src->n * sizeof(*dst->v));
	dst->n = src->n;
	return 0;
}

struct hc_ep {
	struct sluice_addr addr;
	__u16 port;
};

static bool slice__serves(const struct k8s_svc *svc, const struct k8s_slice_port *sp)
{
	for (__u32 i = 0; i < svc->nports; i++)
		if (svc->ports[i].proto == sp->proto && !strcmp(svc->ports[i].name, sp->name))
			return true;
	return false;
}

static bool hc_ep__has(const struct hc_ep *v, __u32 n, const struct hc_ep *e)
{
	for (__u32 i = 0; i < n; i++)
		if (v[i].port == e->port && sluice_addr__eq(&v[i].addr, &e->addr))
			return true;
	return false;
}

/* Ready endpoints of svc on node (NULL: any), distinct address:port. */
static int hc__count(const struct k8s_svc *svc, const struct k8s_slice *const *sl, __u32 nsl,
		     const char *node, __u32 *count)
{
	struct hc_ep *v = NULL;
	__u32 n = 0, cap = 0;

	for (__u32 i = 0; i < nsl; i++) {
		const struct k8s_slice *s = sl[i];

		if (!s->service || !s->family || strcmp(s->ns, svc->ns) ||
		    strcmp(s->service, svc->name))
			continue;
		for (__u32 j = 0; j < s->nports; j++) {
			if (!s->ports[j].port || !slice__serves(svc, &s->ports[j]))
				continue;
			for (__u32 k = 0; k < s->neps; k++) {
				const struct k8s_ep *ep = &s->eps[k];
				struct hc_ep e = { .addr = ep->addr, .port = s->ports[j].port };

				if (!ep->ready || (node && (!ep->node || strcmp(ep->node, node))) ||
				    hc_ep__has(v, n, &e))
					continue;
				if (n == cap) {
					struct hc_ep *nv;

					cap = cap ? cap * 2 : 16;
					nv = realloc(v, cap * sizeof(*v));
					if (!nv) {
						free(v);
						return -ENOMEM;
					}
					v = nv;
				}
				v[n++] = e;
			}
		}
	}
	free(v);
	*count = n;
	return 0;
}

static int hc__cmp(const void *a, const void *b)
{
	const struct k8s_hc *x = a, *y = b;

	return x->port < y->port ? -1 : x->port > y->port;
}

static void hc__warn(const struct k8s_xlate_opts *o, const struct k8s_hc *keep,
		     const struct k8s_hc *drop)
{
	char buf[1200]; /* four names of up to 253 bytes */

	if (!o || !o->warn)
		return;
	snprintf(buf, sizeof(buf),
		 "Service %s/%s: healthCheckNodePort %u is already used by %s/%s: left out",
		 drop->ns, drop->name, drop->port, keep->ns, keep->name);
	o->warn(buf, o->ctx);
}

int k8s__translate_hc(const struct k8s_objs *svcs, const struct k8s_objs *slices,
		      const struct k8s_xlate_opts *o, struct k8s_hc_set *out)
{
	const char *want = o ? o->proxy_name : NULL, *node = o ? o->node_name : NULL;
	const void **sv = NULL, **sl = NULL;
	struct k8s_hc_set set = { 0 };
	__u32 nsv = 0, nsl = 0, m = 0;
	int err;

	err = k8s_objs__sorted(svcs, &sv, &nsv);
	if (!err)
		err = k8s_objs__sorted(slices, &sl, &nsl);
	if (!err && nsv && !(set.v = calloc(nsv, sizeof(*set.v))))
		err = -ENOMEM;
	for (__u32 i = 0; i < nsv && !err; i++) {
		const struct k8s_svc *svc = sv[i];
		struct k8s_hc *h = &set.v[set.n];

		if (svc->headless || !svc->hc_node_port ||
		    (svc->proxy_name && (!want || strcmp(svc->proxy_name, want))))
			continue;
		snprintf(h->ns, sizeof(h->ns), "%s", svc->ns);
		snprintf(h->name, sizeof(h->name), "%s", svc->name);
		h->port = svc->hc_node_port;
		err = hc__count(svc, (const struct k8s_slice *const *)sl, nsl, node,
				&h->local_endpoints);
		set.n++;
	}
	/* stable: of two Services on one port the first by namespace/name stays */
	if (!err && set.n > 1) {
		for (__u32 i = 1; i < set.n; i++) /* insertion sort keeps the order of equals */
			for (__u32 j = i; j > 0 && hc__cmp(&set.v[j - 1], &set.v[j]) > 0; j--) {
				struct k8s_hc t = set.v[j];

				set.v[j] = set.v[j - 1];
				set.v[j - 1] = t;
			}
		for (__u32 i = 0; i < set.n; i++) {
			if (m && set.v[m - 1].port == set.v[i].port) {
				hc__warn(o, &set.v[m - 1], &set.v[i]);
				continue;
			}
			set.v[m++] = set.v[i];
		}
		set.n = m;
	}
	free(sv);
	free(sl);
	if (err) {
		k8s_hc_set__free(&set);
		sluice__set_err("out of memory listing healthCheckNodePorts");
		return err;
	}
	k8s_hc_set__free(out);
	*out = set;
	return 0;
}
