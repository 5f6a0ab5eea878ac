// SPDX-License-Identifier: MIT
/*
 * metrics_collect.c - reading the maps (and telemetry) into a metrics
 * snapshot for metrics__write().
 *
 * Contract (see metrics.h): one walk of services and one of backends;
 * per-CPU stats summed per id; services sorted by key, backends by
 * service then address. Map fill: services (VIP markers included),
 * backends, conntrack and ct_new are counted by walking them (conntrack
 * is the expensive one: one batched walk per scrape), telem_endpoints comes from
 * the last telemetry sync, the redirect map from sluice_sock_info.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <bpf/bpf.h>

#include "internal.h"
#include "metrics.h"

struct collect_ctx {
	struct metrics_snapshot *m;
	const struct metrics_src *src;
	size_t cap;
	__u64 entries; /* every entry walked, markers included */
};

static int collect__grow(void **v, size_t *cap, size_t n, size_t size)
{
	void *grown;

	if (n < *cap)
		return 0;
	*cap = *cap ? 2 * *cap : 64;
	grown = realloc(*v, *cap * size);
	if (!grown) {
		sluice__set_err("out of memory collecting metrics");
		return -ENOMEM;
	}
	*v = grown;
	return 0;
}

static int collect__service(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc *svc = value;
	struct collect_ctx *c = ctx;
	struct metrics_service *s;
	int err;

	c->entries++;
	if (svc->flags & SLUICE_SVC_F_VIP_MARKER || svc->svc_id >= SLUICE_MAX_SERVICES)
		return 0;
	err = collect__grow((void **)&c->m->services, &c->cap, c->m->nservices, sizeof(*s));
	if (err)
		return err;
	s = &c->m->services[c->m->nservices++];
	memset(s, 0, sizeof(*s));
	memcpy(&s->key, key, sizeof(s->key));
	s->svc_id = svc->svc_id;
	s->backend_count = svc->backend_count;
	sluice_svc_key__str(&s->key, s->name, sizeof(s->name));
	return 0;
}

static int collect__svc_cmp(const void *a, const void *b)
{
	const struct sluice_svc_key *x = &((const struct metrics_service *)a)->key;
	const struct sluice_svc_key *y = &((const struct metrics_service *)b)->key;
	int c;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	c = memcmp(x->addr, y->addr, sizeof(x->addr)); /* network order sorts numerically */
	if (c)
		return c;
	if (x->port != y->port)
		return ntohs(x->port) < ntohs(y->port) ? -1 : 1;
	return (x->proto > y->proto) - (x->proto < y->proto);
}

struct be_ctx {
	struct collect_ctx *c;
	const __u32 *svc_index;     /* svc_id -> index + 1 into services[], 0: none */
	struct sluice_backend *raw; /* parallel to backends[]: for telemetry identity */
	size_t raw_cap;
};

static int collect__backend(const void *key, const void *value, void *ctx)
{
	const struct sluice_backend *be = value;
	struct be_ctx *bc = ctx;
	struct metrics_snapshot *m = bc->c->m;
	struct sluice_addr a = { .family = be->family };
	struct metrics_backend *b;
	int err;

	bc->c->entries++;
	if (be->svc_id >= SLUICE_MAX_SERVICES || !bc->svc_index[be->svc_id])
		return 0; /* its service is gone or half-written: not a series */
	err = collect__grow((void **)&m->backends, &bc->c->cap, m->nbackends, sizeof(*b));
	if (!err)
		err = collect__grow((void **)&bc->raw, &bc->raw_cap, m->nbackends,
				    sizeof(*bc->raw));
	if (err)
		return err;
	bc->raw[m->nbackends] = *be;
	b = &m->backends[m->nbackends++];
	memset(b, 0, sizeof(*b));
	b->service = bc->svc_index[be->svc_id] - 1;
	b->backend_id = *(const __u32 *)key;
	b->weight = be->weight;
	memcpy(a.addr, be->addr, sizeof(a.addr));
	sluice_addr__str_port(&a, ntohs(be->port), b->addr, sizeof(b->addr));
	return 0;
}

static int collect__be_cmp(const void *a, const void *b)
{
	const struct metrics_backend *x = a, *y = b;

	if (x->service != y->service)
		return x->service < y->service ? -1 : 1;
	return strcmp(x->addr, y->addr) ?
		       strcmp(x->addr, y->addr) :
		       (x->backend_id > y->backend_id) - (x->backend_id < y->backend_id);
}

static int collect__map_info(struct metrics_snapshot *m, const char *name, int fd, __u64 entries)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	struct metrics_map *mm;
	int err;

	if (m->nmaps >= METRICS_MAPS_MAX)
		return 0;
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err)
		return maps__err(err, name, "info", "query");
	mm = &m->maps[m->nmaps++];
	snprintf(mm->name, sizeof(mm->name), "%s", name);
	mm->entries = entries;
	mm->capacity = info.max_entries;
	return 0;
}

static int collect__services(struct collect_ctx *c, struct sluice *s)
{
	struct metrics_snapshot *m = c->m;
	int err;

	err = maps__for_each(s->fds[SLUICE_MAP_SERVICES], "services", sizeof(struct sluice_svc_key),
			     sizeof(struct sluice_svc), collect__service, c);
	if (err)
		return err;
	if (m->nservices)
		qsort(m->services, m->nservices, sizeof(*m->services), collect__svc_cmp);
	for (size_t i = 0; i < m->nservices; i++) {
		struct metrics_service *svc = &m->services[i];

		err = maps__percpu_sum(s, s->fds[SLUICE_MAP_SVC_STATS], "svc_stats", svc->svc_id,
				       (__u64 *)&svc->stats, sizeof(svc->stats) / sizeof(__u64));
		if (!err)
			err = sluice__svc_health(s, svc->svc_id, &svc->health);
		if (!err)
			err = sluice__policy_stats(s, svc->svc_id, &svc->policy);
		if (err)
			return err;
		if (c->src->t)
			svc->has_telemetry = !telemetry__service_stats(c->src->t, svc->svc_id,
								       &svc->key, &svc->tel);
	}
	return collect__map_info(m, "services", s->fds[SLUICE_MAP_SERVICES], c->entries);
}

/* The backend's health (#14): its state as listings show it, and the
 * ejections the agent counted for it. */
static int collect__be_health(struct collect_ctx *c, struct sluice *s, struct metrics_backend *b,
			      const struct sluice_backend *raw)
{
	struct metrics_service *svc = &c->m->services[b->service];
	struct sluice_backend_health_view v;
	int err;

	err = sluice__backend_health(s, b->backend_id, raw, &svc->health, &v);
	if (err)
		return err;
	b->health = v.state;
	b->fails = v.fails;
	if (v.state == SLUICE_BEH_HEALTHY || v.state == SLUICE_BEH_PROBATION)
		svc->healthy++;
	for (size_t k = 0; k < c->src->nejections; k++) {
		const struct metrics_ejections *e = &c->src->ejections[k];

		if (e->backend_id == b->backend_id && e->svc_id == svc->svc_id)
			memcpy(b->ejections, e->by_reason, sizeof(b->ejections));
	}
	return 0;
}

static int collect__backends(struct collect_ctx *c, struct sluice *s)
{
	struct metrics_snapshot *m = c->m;
	struct be_ctx bc = { .c = c };
	__u32 *index;
	int err;

	index = calloc(SLUICE_MAX_SERVICES, sizeof(*index));
	if (!index) {
		sluice__set_err("out of memory collecting metrics");
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->nservices; i++)
		index[m->services[i].svc_id] = i + 1;
	bc.svc_index = index;
	c->cap = 0;
	c->entries = 0;
	err = maps__for_each(s->fds[SLUICE_MAP_BACKENDS], "backends", sizeof(__u32),
			     sizeof(struct sluice_backend), collect__backend, &bc);
	for (size_t i = 0; !err && i < m->nbackends; i++) {
		struct metrics_backend *b = &m->backends[i];

		err = maps__percpu_sum(s, s->fds[SLUICE_MAP_BACKEND_STATS], "backend_stats",
				       b->backend_id, (__u64 *)&b->stats,
				       sizeof(b->stats) / sizeof(__u64));
		if (!err)
			err = collect__be_health(c, s, b, &bc.raw[i]);
		if (!err && c->src->t)
			b->has_telemetry = !telemetry__backend_stats(c->src->t, b->backend_id,
								     &bc.raw[i], &b->tel);
	}
	if (!err) {
		if (m->nbackends)
			qsort(m->backends, m->nbackends, sizeof(*m->backends), collect__be_cmp);
		err = collect__map_info(m, "backends", s->fds[SLUICE_MAP_BACKENDS], c->entries);
	}
	free(bc.raw);
	free(index);
	return err;
}

static int collect__count_one(const void *key, const void *value, void *ctx)
{
	(void)key;
	(void)value;
	(*(__u64 *)ctx)++;
	return 0;
}

/* Source NAT (#13): ports in use, all services (snat_rev holds one entry
 * per SNATed flow; snat_fwd the same flows the other way round). */
static int collect__snat(struct metrics_snapshot *m, struct sluice *s)
{
	int fd = sluice__map_fd(s, "snat_rev");
	__u64 n = 0;
	int err;

	if (fd < 0)
		return 0; /* an object without source NAT */
	err = maps__for_each(fd, "snat_rev", sizeof(struct sluice_snat_rev_key),
			     sizeof(struct sluice_snat_entry), collect__count_one, &n);
	return err ?: collect__map_info(m, "snat_rev", fd, n);
}

/* Access policy (#15): prefixes in use of both tries (not preallocated:
 * capacity is max_entries). */
static int collect__policy(struct metrics_snapshot *m, struct sluice *s)
{
	static const char *const names[] = { "policy", "policy_node" };
	__u64 n;
	int fd, err = 0;

	for (int i = 0; i < 2 && !err; i++) {
		fd = sluice__map_fd(s, names[i]);
		if (fd < 0)
			continue;
		n = 0;
		err = maps__for_each(fd, names[i], sizeof(struct sluice_policy_key),
				     sizeof(struct sluice_policy_val), collect__count_one, &n);
		if (!err)
			err = collect__map_info(m, names[i], fd, n);
	}
	return err;
}

static int collect__extra(struct collect_ctx *c, struct sluice *s)
{
	struct metrics_snapshot *m = c->m;
	__u64 ct;
	int err;

	err = sluice__ct_count(s, &ct);
	if (!err)
		err = collect__map_info(m, "conntrack", s->fds[SLUICE_MAP_CONNTRACK], ct);
	if (!err)
		err = sluice__ct_new_count(s, &ct);
	if (!err)
		err = collect__map_info(m, "ct_new", s->fds[SLUICE_MAP_CT_NEW], ct);
	/* session affinity (#14): clients remembered, all services */
	if (!err)
		err = sluice__affinity_count(s, &ct);
	if (!err)
		err = collect__map_info(m, "affinity", s->fds[SLUICE_MAP_AFFINITY], ct);
	if (!err)
		err = collect__snat(m, s);
	if (!err)
		err = collect__policy(m, s);
	if (!err && c->src->t) {
		err = telemetry__info(c->src->t, &m->telemetry);
		m->has_telemetry = !err;
		if (!err && m->nmaps < METRICS_MAPS_MAX) {
			struct metrics_map *mm = &m->maps[m->nmaps++];

			snprintf(mm->name, sizeof(mm->name), "telem_endpoints");
			mm->entries = m->telemetry.endpoints;
			mm->capacity = m->telemetry.endpoints_max;
		}
	}
	if (!err && c->src->sock) {
		m->has_sock = true;
		m->sock = *c->src->sock;
		if (m->nmaps < METRICS_MAPS_MAX) {
			struct metrics_map *mm = &m->maps[m->nmaps++];

			snprintf(mm->name, sizeof(mm->name), "redir_socks");
			mm->entries = m->sock.redir_sockets;
			mm->capacity = SLUICE_REDIR_MAX;
		}
	}
	return err;
}

int metrics__collect(const struct metrics_src *src, struct metrics_snapshot **out)
{
	struct metrics_snapshot *m;
	struct collect_ctx c = { .src = src };
	int err;

	sluice__clear_err();
	m = calloc(1, sizeof(*m));
	if (!m) {
		sluice__set_err("out of memory collecting metrics");
		return -ENOMEM;
	}
	c.m = m;
	m->version = SLUICE_VERSION;
	m->layout_version = SLUICE_LAYOUT_VERSION;
	m->start_time = src->start_time;
	err = sluice__counters(src->s, m->counters);
	if (!err)
		err = sluice__drops(src->s, m->drops);
	if (!err)
		err = sluice__health_counters(src->s, m->health);
	if (!err)
		err = collect__services(&c, src->s);
	if (!err)
		err = collect__backends(&c, src->s);
	if (!err)
		err = collect__extra(&c, src->s);
	if (err) {
		metrics__snapshot_free(m);
		return err;
	}
	*out = m;
	return 0;
}

void metrics__snapshot_free(struct metrics_snapshot *m)
{
	if (!m)
		return;
	free(m->services);
	free(m->backends);
	free(m);
}

int metrics__render(const struct metrics_src *src, FILE *out)
{
	struct metrics_snapshot *m;
	int err;

	err = metrics__collect(src, &m);
	if (err)
		return err;
	err = metrics__write(m, out);
	if (err)
		sluice__set_err("writing metrics: %s", strerror(-err));
	metrics__snapshot_free(m);
	return err;
}
