// SPDX-License-Identifier: MIT
/*
 * svclist.c - what the maps hold, read back as keys or as a desired state,
 * so the agent can reconcile after a restart against what is really there
 * rather than against what it last wrote.
 *
 * Contract: each map is walked once (services, then backends), so reading
 * back 16k services costs two walks, not one backends walk per service.
 * desired__from_maps() takes the backends from the handle's index
 * (svc__index_load()): the reconcile, sweep and outlier sync that follow
 * a restart's read-back use the same walk (#16). desired__from_maps_walk()
 * walks the map itself, to see what another writer did. VIP markers are not services. Backends whose service is missing (a
 * writer died between writes) are left out; desired__apply() then treats
 * their service as absent and writes it whole.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>

#include "desired.h"
#include "internal.h"

struct svclist_svcs {
	struct sluice_svc_key *keys;
	struct sluice_svc *vals; /* as the walk read them: no lookup per service */
	__u32 n, cap;
};

static int svclist__grow(void **v, size_t size, __u32 cap)
{
	void *grown = realloc(*v, cap * size);

	if (!grown) {
		sluice__set_err("out of memory reading the maps");
		return -ENOMEM;
	}
	*v = grown;
	return 0;
}

static int svclist__collect_svc(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc *svc = value;
	struct svclist_svcs *l = ctx;
	int err;

	if (svc->flags & SLUICE_SVC_F_VIP_MARKER)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		err = svclist__grow((void **)&l->keys, sizeof(*l->keys), l->cap);
		if (!err)
			err = svclist__grow((void **)&l->vals, sizeof(*l->vals), l->cap);
		if (err)
			return err;
	}
	l->keys[l->n] = *(const struct sluice_svc_key *)key;
	l->vals[l->n++] = *svc;
	return 0;
}

static int svclist__services(struct sluice *s, struct svclist_svcs *l)
{
	memset(l, 0, sizeof(*l));
	return maps__for_each(s->fds[SLUICE_MAP_SERVICES], "services",
			      sizeof(struct sluice_svc_key), sizeof(struct sluice_svc),
			      svclist__collect_svc, l);
}

int sluice__service_list(struct sluice *s, struct sluice_svc_key **keys, __u32 *n)
{
	struct svclist_svcs l;
	int err;

	sluice__clear_err();
	err = svclist__services(s, &l);
	free(l.vals);
	if (err) {
		free(l.keys);
		return err;
	}
	*keys = l.keys;
	*n = l.n;
	return 0;
}

struct svclist_be {
	__u32 id;
	struct sluice_backend val;
};

static int svclist__cmp_be(const void *x, const void *y)
{
	const struct svclist_be *a = x, *b = y;

	return a->id < b->id ? -1 : a->id > b->id;
}

static void svclist__fill_service(struct desired_service *svc, const struct sluice_svc_key *k)
{
	memset(svc, 0, sizeof(*svc));
	strcpy(svc->source, "manual");
	svc->vip.family = k->family;
	memcpy(svc->vip.addr, k->addr, sizeof(svc->vip.addr));
	svc->port = ntohs(k->port);
	svc->proto = k->proto;
}

/* The next backend of svc (its array sized for it). */
static void svclist__put_be(struct desired_service *svc, const struct sluice_backend *v)
{
	struct desired_backend *b = &svc->backends[svc->nbackends++];

	b->addr.family = v->family;
	memcpy(b->addr.addr, v->addr, sizeof(b->addr.addr));
	b->port = ntohs(v->port);
	b->weight = v->weight;
	b->unhealthy = v->state == SLUICE_BE_UNHEALTHY;
}

struct svclist_bes {
	const struct sluice *s; /* its deferred deletes (#16) left out */
	struct svclist_be *v;
	__u32 n, cap;
};

static int svclist__collect_be(const void *key, const void *value, void *ctx)
{
	struct svclist_bes *l = ctx;
	int err;

	if (svc__deferred(l->s, *(const __u32 *)key))
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		err = svclist__grow((void **)&l->v, sizeof(*l->v), l->cap);
		if (err)
			return err;
	}
	l->v[l->n].id = *(const __u32 *)key;
	l->v[l->n++].val = *(const struct sluice_backend *)value;
	return 0;
}

/* Hand each backend of a walk (in id order) to its service; *where[svc_id] is the
 * service's index + 1, 0 for ids no service has. */
static int svclist__attach_walked(struct desired *d, const struct svclist_bes *bes,
				  const __u32 *where)
{
	__u32 *count;

	count = calloc(d->nservices + 1, sizeof(*count));
	if (!count) {
		sluice__set_err("out of memory reading the maps");
		return -ENOMEM;
	}
	for (__u32 i = 0; i < bes->n; i++)
		if (bes->v[i].val.svc_id < SLUICE_MAX_SERVICES && where[bes->v[i].val.svc_id])
			count[where[bes->v[i].val.svc_id] - 1]++;
	for (__u32 i = 0; i < d->nservices; i++) {
		if (!count[i])
			continue;
		d->services[i].backends = calloc(count[i], sizeof(struct desired_backend));
		if (!d->services[i].backends) {
			free(count);
			sluice__set_err("out of memory reading the maps");
			return -ENOMEM;
		}
	}
	for (__u32 i = 0; i < bes->n; i++) {
		const struct sluice_backend *v = &bes->v[i].val;

		if (v->svc_id < SLUICE_MAX_SERVICES && where[v->svc_id])
			svclist__put_be(&d->services[where[v->svc_id] - 1], v);
	}
	free(count);
	return 0;
}

/* Each service's backends from the handle's index (one walk of the map
 * for them all, shared with the reconcile after it), in id order. */
static int svclist__attach_indexed(struct sluice *s, struct desired *d,
				   const struct svclist_svcs *svcs)
{
	struct svclist_bes l = { .s = s };
	int err = 0;

	for (__u32 i = 0; i < d->nservices && !err; i++) {
		struct desired_service *svc = &d->services[i];

		l.n = 0;
		err = svc__index_of(s, svcs->vals[i].svc_id, svclist__collect_be, &l);
		if (err || !l.n)
			continue;
		qsort(l.v, l.n, sizeof(*l.v), svclist__cmp_be);
		svc->backends = calloc(l.n, sizeof(*svc->backends));
		if (!svc->backends) {
			sluice__set_err("out of memory reading the maps");
			err = -ENOMEM;
			break;
		}
		for (__u32 j = 0; j < l.n; j++)
			svclist__put_be(svc, &l.v[j].val);
	}
	free(l.v);
	return err;
}

struct svclist_where {
	struct desired *d;
	const __u32 *where; /* svc id -> index + 1 of its service, 0 for none */
};

static int svclist__collect_health(const void *key, const void *value, void *ctx)
{
	const struct svclist_where *c = ctx;
	__u32 i = c->where[*(const __u32 *)key];

	if (i)
		sluice_outlier__from_kernel(value, &c->d->services[i - 1].outlier);
	return 0;
}

/* The settings each service's svc_health entry was written from (#14), so
 * a reconcile against the state file sees no change where there is none:
 * one walk of the array up to the highest id, not a lookup per service.
 * An entry an older agent never wrote is zero: disabled, which the
 * reconcile turns into an update that writes it. */
static int svclist__outlier(struct sluice *s, struct desired *d, const __u32 *where, __u32 max_id)
{
	struct svclist_where c = { d, where };
	struct sluice_svc_health zero = {};

	for (__u32 i = 0; i < d->nservices; i++) /* no slot read: disabled */
		sluice_outlier__from_kernel(&zero, &d->services[i].outlier);
	if (!d->nservices)
		return 0;
	return maps__for_range(s->fds[SLUICE_MAP_SVC_HEALTH], "svc_health", 0, max_id + 1,
			       sizeof(struct sluice_svc_health), svclist__collect_health, &c);
}

/* The service-level settings its entry holds: affinity, NAT, when empty. */
static void svclist__flags(const struct sluice_svc *svc, struct desired_service *d)
{
	if (svc->flags & SLUICE_SVC_F_AFFINITY)
		d->affinity_timeout_s = svc->affinity_timeout_s;
	d->snat = svc->flags & SLUICE_SVC_F_SNAT;
	d->snat_node = d->snat && (svc->flags & SLUICE_SVC_F_SNAT_NODE);
	d->drop_empty = svc->flags & SLUICE_SVC_F_DROP_EMPTY;
	d->policy_in_maps = svc->flags & SLUICE_SVC_F_POLICY;
	d->policy_refuse = svc->flags & SLUICE_SVC_F_POLICY_REFUSE;
}

/* The node-wide deny list (#15), as policy_node holds it. */
static int svclist__node_deny(struct sluice *s, struct desired *d)
{
	__u32 n = 0;
	int err;

	err = sluice__policy_node_get(s, NULL, 0, &n);
	if (err || !n)
		return err;
	d->node_deny = calloc(n, sizeof(*d->node_deny));
	if (!d->node_deny) {
		sluice__set_err("out of memory reading the maps");
		return -ENOMEM;
	}
	err = sluice__policy_node_get(s, d->node_deny, n, &d->nnode_deny);
	if (d->nnode_deny > n)
		d->nnode_deny = n;
	return err;
}

struct svclist_src {
	struct desired *d;
	const __u32 *where; /* svc id -> index + 1 of a service with the flag */
};

/* One walk of src_ranges hands each entry to its service (#13). */
static int svclist__collect_src(const void *key, const void *value, void *ctx)
{
	const struct sluice_src_range_key *k = key;
	struct svclist_src *c = ctx;
	struct desired_service *svc;
	struct sluice_cidr *r;

	(void)value;
	if (k->svc_id >= SLUICE_MAX_SERVICES || !c->where[k->svc_id] || k->prefixlen < 32)
		return 0;
	svc = &c->d->services[c->where[k->svc_id] - 1];
	if (svc->nsrc_ranges >= SLUICE_SRC_RANGES_PER_SVC)
		return 0;
	if (!svc->src_ranges) {
		svc->src_ranges = calloc(SLUICE_SRC_RANGES_PER_SVC, sizeof(*svc->src_ranges));
		if (!svc->src_ranges) {
			sluice__set_err("out of memory reading the maps");
			return -ENOMEM;
		}
	}
	r = &svc->src_ranges[svc->nsrc_ranges++];
	r->addr.family = svc->vip.family;
	memcpy(r->addr.addr, k->addr, sizeof(r->addr.addr));
	r->prefixlen = (__u8)(k->prefixlen - 32);
	return 0;
}

static int svclist__src_ranges(struct sluice *s, struct desired *d, const struct svclist_svcs *svcs)
{
	struct svclist_src c = { .d = d };
	__u32 *where;
	bool any = false;
	int err;

	where = calloc(SLUICE_MAX_SERVICES, sizeof(*where));
	if (!where) {
		sluice__set_err("out of memory reading the maps");
		return -ENOMEM;
	}
	for (__u32 i = 0; i < svcs->n; i++) {
		if (svcs->vals[i].svc_id < SLUICE_MAX_SERVICES &&
		    (svcs->vals[i].flags & SLUICE_SVC_F_SOURCE_RANGES)) {
			where[svcs->vals[i].svc_id] = i + 1;
			any = true;
		}
	}
	c.where = where;
	err = any ? maps__for_each(s->fds[SLUICE_MAP_SRC_RANGES], "src_ranges",
				   sizeof(struct sluice_src_range_key), sizeof(__u32),
				   svclist__collect_src, &c) :
		    0;
	free(where);
	return err;
}

static int svclist__cmp_svc(const void *x, const void *y)
{
	return desired__cmp_key(x, y);
}

/* walk: the backends from a walk of the map, else from the index. */
static int svclist__read(struct sluice *s, struct desired *d, bool walk)
{
	struct svclist_svcs svcs = {};
	struct svclist_bes bes = { .s = s };
	struct desired tmp = {};
	__u32 *where = NULL, max_id = 0;
	int err;

	sluice__clear_err();
	desired__init(d);
	err = svclist__services(s, &svcs);
	if (err)
		goto cleanup;
	err = walk ? maps__for_each(s->fds[SLUICE_MAP_BACKENDS], "backends", sizeof(__u32),
				    sizeof(struct sluice_backend), svclist__collect_be, &bes) :
		     svc__index_load(s);
	if (err)
		goto cleanup;
	if (bes.n)
		qsort(bes.v, bes.n, sizeof(*bes.v), svclist__cmp_be);
	where = calloc(SLUICE_MAX_SERVICES, sizeof(*where));
	tmp.services = calloc(svcs.n + 1, sizeof(*tmp.services));
	if (!where || !tmp.services) {
		sluice__set_err("out of memory reading the maps");
		err = -ENOMEM;
		goto cleanup;
	}
	for (__u32 i = 0; i < svcs.n; i++) {
		__u32 id = svcs.vals[i].svc_id;

		svclist__fill_service(&tmp.services[i], &svcs.keys[i]);
		svclist__flags(&svcs.vals[i], &tmp.services[i]);
		if (id < SLUICE_MAX_SERVICES) {
			where[id] = i + 1;
			max_id = id > max_id ? id : max_id;
		}
	}
	tmp.nservices = svcs.n;
	err = svclist__outlier(s, &tmp, where, max_id);
	if (!err)
		err = walk ? svclist__attach_walked(&tmp, &bes, where) :
			     svclist__attach_indexed(s, &tmp, &svcs);
	if (!err)
		err = svclist__src_ranges(s, &tmp, &svcs);
	if (err)
		goto cleanup;
	qsort(tmp.services, tmp.nservices, sizeof(*tmp.services), svclist__cmp_svc);
	err = svclist__node_deny(s, &tmp);
	if (err)
		goto cleanup;
	*d = tmp;
	tmp = (struct desired){};
cleanup:
	desired__free(&tmp);
	free(where);
	free(bes.v);
	free(svcs.keys);
	free(svcs.vals);
	return err;
}

int desired__from_maps(struct sluice *s, struct desired *d)
{
	return svclist__read(s, d, false);
}

int desired__from_maps_walk(struct sluice *s, struct desired *d)
{
	return svclist__read(s, d, true);
}
