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
	__u64 entries;    /* every entry walked, markers included */
	__u32 *svc_index; /* svc_id -> index + 1 into services[], 0: none */
	__u32 *be_index;  /* backend_id -> index + 1 into backends[] (unsorted) */
	__u32 max_svc_id, max_be_id;
	int ncpus;
	__u64 now_ns;
	struct sluice_backend *raw; /* parallel to backends[]: for telemetry identity */
};

/* Add every CPU's copy of a per-CPU value of nfields __u64 to out. */
static void collect__percpu_add(const struct collect_ctx *c, const void *value, __u64 *out,
				__u32 nfields)
{
	const __u64 *v = value;

	for (int cpu = 0; cpu < c->ncpus; cpu++)
		for (__u32 f = 0; f < nfields; f++)
			out[f] += v[(size_t)cpu * nfields + f];
}

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
	struct metrics_backend *b;
	int err;

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
	if (b->backend_id > bc->c->max_be_id)
		bc->c->max_be_id = b->backend_id;
	b->weight = be->weight;
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

static int collect__svc_stats(const void *key, const void *value, void *ctx)
{
	struct collect_ctx *c = ctx;
	__u32 i = c->svc_index[*(const __u32 *)key];

	if (i)
		collect__percpu_add(c, value, (__u64 *)&c->m->services[i - 1].stats,
				    sizeof(struct sluice_svc_stats) / sizeof(__u64));
	return 0;
}

static int collect__svc_health(const void *key, const void *value, void *ctx)
{
	struct collect_ctx *c = ctx;
	__u32 i = c->svc_index[*(const __u32 *)key];

	if (i)
		memcpy(&c->m->services[i - 1].health, value, sizeof(struct sluice_svc_health));
	return 0;
}

static int collect__svc_policy(const void *key, const void *value, void *ctx)
{
	struct collect_ctx *c = ctx;
	__u32 i = c->svc_index[*(const __u32 *)key];

	if (i)
		collect__percpu_add(c, value, (__u64 *)&c->m->services[i - 1].policy,
				    sizeof(struct sluice_policy_stats) / sizeof(__u64));
	return 0;
}

/* Services, then their stats and health read in batches over the ids in
 * use (one syscall per 1024 ids, not two per service: #16). */
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
		c->svc_index[m->services[i].svc_id] = i + 1;
		if (m->services[i].svc_id > c->max_svc_id)
			c->max_svc_id = m->services[i].svc_id;
	}
	if (m->nservices) {
		err = maps__for_range(s->fds[SLUICE_MAP_SVC_STATS], "svc_stats", 0,
				      c->max_svc_id + 1,
				      maps__percpu_size(s, sizeof(struct sluice_svc_stats)),
				      collect__svc_stats, c);
		if (!err)
			err = maps__for_range(s->fds[SLUICE_MAP_SVC_HEALTH], "svc_health", 0,
					      c->max_svc_id + 1, sizeof(struct sluice_svc_health),
					      collect__svc_health, c);
		if (!err)
			err = maps__for_range(s->fds[SLUICE_MAP_POLICY_STATS], "policy_stats", 0,
					      c->max_svc_id + 1,
					      maps__percpu_size(s,
								sizeof(struct sluice_policy_stats)),
					      collect__svc_policy, c);
		if (err)
			return err;
	}
	for (size_t i = 0; c->src->t && i < m->nservices; i++) {
		struct metrics_service *svc = &m->services[i];

		svc->has_telemetry =
			!telemetry__service_stats(c->src->t, svc->svc_id, &svc->key, &svc->tel);
	}
	return collect__map_info(m, "services", s->fds[SLUICE_MAP_SERVICES], c->entries);
}

/* The backend's health (#14), from its backend_health value h: its state
 * as listings show it, and the ejections the agent counted for it. */
static void collect__be_health(struct collect_ctx *c, struct metrics_backend *b,
			       const struct sluice_backend *raw,
			       const struct sluice_backend_health *h)
{
	struct metrics_service *svc = &c->m->services[b->service];
	struct sluice_backend_health_view v;

	sluice__backend_health_of(h, raw, &svc->health, c->now_ns, &v);
	b->health = v.state;
	b->fails = v.fails;
	if (v.state == SLUICE_BEH_HEALTHY || v.state == SLUICE_BEH_PROBATION)
		svc->healthy++;
	for (size_t k = 0; k < c->src->nejections; k++) {
		const struct metrics_ejections *e = &c->src->ejections[k];

		if (e->backend_id == b->backend_id && e->svc_id == svc->svc_id)
			memcpy(b->ejections, e->by_reason, sizeof(b->ejections));
	}
}

static int collect__be_stats(const void *key, const void *value, void *ctx)
{
	struct collect_ctx *c = ctx;
	__u32 i = c->be_index[*(const __u32 *)key];

	if (i)
		collect__percpu_add(c, value, (__u64 *)&c->m->backends[i - 1].stats,
				    sizeof(struct sluice_backend_stats) / sizeof(__u64));
	return 0;
}

static int collect__be_health_cb(const void *key, const void *value, void *ctx)
{
	struct collect_ctx *c = ctx;
	__u32 i = c->be_index[*(const __u32 *)key];

	if (i)
		collect__be_health(c, &c->m->backends[i - 1], &c->raw[i - 1], value);
	return 0;
}

/* Per-backend stats (unless no series want them) and health, in batches
 * over the ids in use. */
static int collect__be_ranges(struct collect_ctx *c, struct sluice *s)
{
	struct metrics_snapshot *m = c->m;
	int err = 0;

	if (!m->nbackends)
		return 0;
	c->be_index = calloc((size_t)c->max_be_id + 1, sizeof(*c->be_index));
	if (!c->be_index) {
		sluice__set_err("out of memory collecting metrics");
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->nbackends; i++)
		c->be_index[m->backends[i].backend_id] = i + 1;
	if (!m->no_backend_series)
		err = maps__for_range(s->fds[SLUICE_MAP_BACKEND_STATS], "backend_stats", 0,
				      c->max_be_id + 1,
				      maps__percpu_size(s, sizeof(struct sluice_backend_stats)),
				      collect__be_stats, c);
	if (!err)
		err = maps__for_range(s->fds[SLUICE_MAP_BACKEND_HEALTH], "backend_health", 0,
				      c->max_be_id + 1, sizeof(struct sluice_backend_health),
				      collect__be_health_cb, c);
	return err;
}

static int collect__backends(struct collect_ctx *c, struct sluice *s)
{
	struct metrics_snapshot *m = c->m;
	struct be_ctx bc = { .c = c };
	int err;

	bc.svc_index = c->svc_index;
	c->cap = 0;
	c->entries = 0;
	/* the library's index when it has one: no walk of a 100k-entry hash
	 * (a third of a scrape at 10k services x 10) */
	err = svc__backends_each(s, collect__backend, &bc, &c->entries);
	c->raw = bc.raw;
	m->no_backend_series = c->src->backends == METRICS_BACKENDS_OFF ||
			       (c->src->backends == METRICS_BACKENDS_AUTO &&
				m->nbackends > METRICS_BACKENDS_AUTO_MAX);
	for (size_t i = 0; !err && !m->no_backend_series && i < m->nbackends; i++) {
		struct sluice_addr a = { .family = bc.raw[i].family };

		memcpy(a.addr, bc.raw[i].addr, sizeof(a.addr));
		sluice_addr__str_port(&a, ntohs(bc.raw[i].port), m->backends[i].addr,
				      sizeof(m->backends[i].addr));
	}
	if (!err)
		err = collect__be_ranges(c, s);
	for (size_t i = 0; !err && c->src->t && i < m->nbackends; i++) {
		struct metrics_backend *b = &m->backends[i];

		if (!m->no_backend_series)
			b->has_telemetry = !telemetry__backend_stats(c->src->t, b->backend_id,
								     &bc.raw[i], &b->tel);
	}
	if (!err) {
		if (m->nbackends && !m->no_backend_series)
			qsort(m->backends, m->nbackends, sizeof(*m->backends), collect__be_cmp);
		err = collect__map_info(m, "backends", s->fds[SLUICE_MAP_BACKENDS], c->entries);
	}
	free(bc.raw);
	c->raw = NULL;
	free(c->be_index);
	c->be_index = NULL;
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

/* Access policy (#15): prefixes in use of both tries, of the node list's
 * host hash and of the services' exact-match hash (none preallocated:
 * capacity is max_entries). */
static int collect__policy(struct metrics_snapshot *m, struct sluice *s)
{
	static const char *const names[] = { "policy", "policy_node", "policy_nhost",
					     "policy_hash" };
	__u64 n;
	int fd, err = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !err; i++) {
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

int metrics__parse_backends(const char *text, enum metrics_backends *out)
{
	static const char *const names[] = { "auto", "on", "off" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(text, names[i])) {
			*out = (enum metrics_backends)i;
			return 0;
		}
	}
	return -EINVAL;
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
	c.svc_index = calloc(SLUICE_MAX_SERVICES, sizeof(*c.svc_index));
	if (!c.svc_index) {
		free(m);
		sluice__set_err("out of memory collecting metrics");
		return -ENOMEM;
	}
	c.ncpus = src->s->ncpus;
	c.now_ns = health__now_ns();
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
	free(c.svc_index);
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
