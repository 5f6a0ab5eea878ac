// SPDX-License-Identifier: MIT
/*
 * telemetry_agg.c - what the telemetry records add up to: attribution of
 * records to the services and backends in the maps, per-direction counts
 * and fixed-bucket histograms, the kernel's endpoint index, and the ring
 * of recent records.
 *
 * Contract (see telemetry.h): aggregates live in one slot per id, each
 * remembering the identity (service key; backend address, port, service)
 * it was created for. telemetry__sync() drops slots whose id left the
 * maps or now names something else, so series of deleted services and
 * backends disappear and a reused id starts from zero. Counters sum the
 * records' deltas (exact even when an UPDATE was lost); histograms take
 * one observation per CLOSE record.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"
#include "telemetry_internal.h"
#include "telemetry.skel.h"

/* RTT: loopback and same-rack (50 us) to intercontinental (1 s). */
static const __u64 rtt_bounds_us[] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
};
/* Duration: a request/response (1 ms) to an hour-long stream. */
static const __u64 duration_bounds_us[] = {
	1000,    5000,     10000,    50000,    100000,    500000,     1000000,
	5000000, 10000000, 30000000, 60000000, 300000000, 1800000000, 3600000000ull,
};
/* Bytes: a handshake-only probe (64 B) to a 1 GiB transfer, powers of 4. */
static const __u64 bytes_bounds[] = {
	64,      256,     1024,     4096,     16384,     65536,      262144,
	1048576, 4194304, 16777216, 67108864, 268435456, 1073741824,
};

#define NBOUNDS(a) ((unsigned int)(sizeof(a) / sizeof((a)[0])))

static const struct telemetry_hist_spec hist_specs[TELEMETRY_HIST__MAX] = {
	[TELEMETRY_HIST_RTT] = { "rtt", NBOUNDS(rtt_bounds_us), rtt_bounds_us, 1000000 },
	[TELEMETRY_HIST_DURATION] = { "duration", NBOUNDS(duration_bounds_us), duration_bounds_us,
				      1000000 },
	[TELEMETRY_HIST_BYTES] = { "bytes", NBOUNDS(bytes_bounds), bytes_bounds, 1 },
};

_Static_assert(NBOUNDS(rtt_bounds_us) < TELEMETRY_HIST_BUCKETS, "rtt buckets");
_Static_assert(NBOUNDS(duration_bounds_us) < TELEMETRY_HIST_BUCKETS, "duration buckets");
_Static_assert(NBOUNDS(bytes_bounds) < TELEMETRY_HIST_BUCKETS, "bytes buckets");

const struct telemetry_hist_spec *telemetry__hist_spec(enum telemetry_hist_kind kind)
{
	return (unsigned)kind < TELEMETRY_HIST__MAX ? &hist_specs[kind] : NULL;
}

int telem__agg_init(struct telemetry *t, __u32 recent)
{
	t->svcs = calloc(SLUICE_MAX_SERVICES, sizeof(*t->svcs));
	t->bes = calloc(SLUICE_MAX_BACKENDS, sizeof(*t->bes));
	t->recent = calloc(recent, sizeof(*t->recent));
	t->recent_cap = recent;
	if (!t->svcs || !t->bes || !t->recent) {
		sluice__set_err("out of memory for telemetry aggregates");
		return -ENOMEM;
	}
	return 0;
}

void telem__agg_free(struct telemetry *t)
{
	if (t->svcs)
		for (__u32 i = 0; i < SLUICE_MAX_SERVICES; i++)
			free(t->svcs[i]);
	if (t->bes)
		for (__u32 i = 0; i < SLUICE_MAX_BACKENDS; i++)
			free(t->bes[i]);
	free(t->svcs);
	free(t->bes);
	free(t->recent);
}

/* ---- sync: slots and the endpoint index follow the maps ---- */

struct agg_ep {
	struct sluice_telem_ep_key key;
	struct sluice_telem_ep val;
};

struct agg_eps {
	struct agg_ep *v;
	size_t n, cap;
};

static int agg__ep_push(struct agg_eps *l, const struct sluice_telem_ep_key *key,
			const struct sluice_telem_ep *val)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct agg_ep *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			sluice__set_err("out of memory syncing telemetry endpoints");
			return -ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].key = *key;
	l->v[l->n++].val = *val;
	return 0;
}

/* By key, then backend id: the first of equal keys is the lowest id. */
static int agg__ep_cmp(const void *a, const void *b)
{
	const struct agg_ep *x = a, *y = b;
	int c = memcmp(&x->key, &y->key, sizeof(x->key));

	if (c)
		return c;
	return x->val.backend_id < y->val.backend_id ? -1 : x->val.backend_id > y->val.backend_id;
}

static int agg__ep_key_cmp(const void *key, const void *elem)
{
	return memcmp(key, &((const struct agg_ep *)elem)->key, sizeof(struct sluice_telem_ep_key));
}

static int agg__svc_seen(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc *svc = value;
	struct telemetry *t = ctx;
	struct telem_svc_slot *slot;

	if (svc->flags & SLUICE_SVC_F_VIP_MARKER || !svc->svc_id ||
	    svc->svc_id >= SLUICE_MAX_SERVICES)
		return 0;
	slot = t->svcs[svc->svc_id];
	if (!slot) {
		slot = calloc(1, sizeof(*slot));
		if (!slot) {
			sluice__set_err("out of memory for telemetry aggregates");
			return -ENOMEM;
		}
		t->svcs[svc->svc_id] = slot;
	} else if (memcmp(&slot->key, key, sizeof(slot->key))) {
		memset(&slot->stats, 0, sizeof(slot->stats)); /* id reused */
	}
	memcpy(&slot->key, key, sizeof(slot->key));
	slot->live = true;
	return 0;
}

static bool agg__same_backend(const struct sluice_backend *a, const struct sluice_backend *b)
{
	return !memcmp(a->addr, b->addr, sizeof(a->addr)) && a->port == b->port &&
	       a->family == b->family && a->svc_id == b->svc_id;
}

struct agg_be_ctx {
	struct telemetry *t;
	struct agg_eps eps;
};

static int agg__be_seen(const void *key, const void *value, void *ctx)
{
	const struct sluice_backend *be = value;
	struct agg_be_ctx *c = ctx;
	__u32 id = *(const __u32 *)key;
	struct sluice_telem_ep_key ek = {};
	struct sluice_telem_ep ev = { .svc_id = be->svc_id, .backend_id = id };
	struct telem_be_slot *slot;

	if (!id || id >= SLUICE_MAX_BACKENDS)
		return 0;
	slot = c->t->bes[id];
	if (!slot) {
		slot = calloc(1, sizeof(*slot));
		if (!slot) {
			sluice__set_err("out of memory for telemetry aggregates");
			return -ENOMEM;
		}
		c->t->bes[id] = slot;
	} else if (!agg__same_backend(&slot->be, be)) {
		memset(&slot->stats, 0, sizeof(slot->stats));
	}
	slot->be = *be;
	slot->live = true;
	memcpy(ek.addr, be->addr, sizeof(ek.addr));
	ek.port = be->port;
	ek.family = be->family;
	return agg__ep_push(&c->eps, &ek, &ev);
}

static int agg__ep_collect(const void *key, const void *value, void *ctx)
{
	return agg__ep_push(ctx, key, value);
}

/* Make telem_endpoints hold exactly `want` (sorted, unique keys). */
static int agg__write_endpoints(struct telemetry *t, const struct agg_eps *want)
{
	int fd = bpf_map__fd(t->skel->maps.telem_endpoints), err;
	struct agg_eps have = {};
	struct agg_ep *hit;

	err = maps__for_each(fd, "telem_endpoints", sizeof(struct sluice_telem_ep_key),
			     sizeof(struct sluice_telem_ep), agg__ep_collect, &have);
	if (err)
		goto cleanup;
	qsort(have.v, have.n, sizeof(*have.v), agg__ep_cmp);
	for (size_t i = 0; i < have.n; i++) {
		if (bsearch(&have.v[i].key, want->v, want->n, sizeof(*want->v), agg__ep_key_cmp))
			continue;
		err = bpf_map_delete_elem(fd, &have.v[i].key);
		if (err && err != -ENOENT) {
			maps__err(err, "telem_endpoints", "delete", "of a stale endpoint");
			goto cleanup;
		}
	}
	for (size_t i = 0; i < want->n; i++) {
		hit = bsearch(&want->v[i].key, have.v, have.n, sizeof(*have.v), agg__ep_key_cmp);
		if (hit && !memcmp(&hit->val, &want->v[i].val, sizeof(hit->val)))
			continue;
		err = bpf_map_update_elem(fd, &want->v[i].key, &want->v[i].val, BPF_ANY);
		if (err) {
			maps__err(err, "telem_endpoints", "update", "of an endpoint");
			goto cleanup;
		}
	}
	t->nendpoints = want->n;
cleanup:
	free(have.v);
	return err;
}

/* Sorts by key and keeps the lowest backend id of each key. */
static void agg__ep_unique(struct agg_eps *l)
{
	size_t out = 0;

	qsort(l->v, l->n, sizeof(*l->v), agg__ep_cmp);
	for (size_t i = 0; i < l->n; i++)
		if (!out || memcmp(&l->v[out - 1].key, &l->v[i].key, sizeof(l->v[i].key)))
			l->v[out++] = l->v[i];
	l->n = out;
}

static void agg__drop_dead(struct telemetry *t)
{
	for (__u32 i = 0; i < SLUICE_MAX_SERVICES; i++)
		if (t->svcs[i] && !t->svcs[i]->live) {
			free(t->svcs[i]);
			t->svcs[i] = NULL;
		}
	for (__u32 i = 0; i < SLUICE_MAX_BACKENDS; i++)
		if (t->bes[i] && !t->bes[i]->live) {
			free(t->bes[i]);
			t->bes[i] = NULL;
		}
}

int telemetry__sync(struct telemetry *t)
{
	struct agg_be_ctx c = { .t = t };
	int err;

	sluice__clear_err();
	for (__u32 i = 0; i < SLUICE_MAX_SERVICES; i++)
		if (t->svcs[i])
			t->svcs[i]->live = false;
	for (__u32 i = 0; i < SLUICE_MAX_BACKENDS; i++)
		if (t->bes[i])
			t->bes[i]->live = false;
	err = maps__for_each(t->s->fds[SLUICE_MAP_SERVICES], "services",
			     sizeof(struct sluice_svc_key), sizeof(struct sluice_svc),
			     agg__svc_seen, t);
	if (!err)
		err = maps__for_each(t->s->fds[SLUICE_MAP_BACKENDS], "backends", sizeof(__u32),
				     sizeof(struct sluice_backend), agg__be_seen, &c);
	if (err)
		goto cleanup; /* keep every slot: a failed read is no deletion */
	agg__drop_dead(t);
	agg__ep_unique(&c.eps);
	err = agg__write_endpoints(t, &c.eps);
cleanup:
	free(c.eps.v);
	return err;
}

/* ---- records ---- */

static void agg__hist_add(struct telemetry_hist *h, enum telemetry_hist_kind kind, __u64 v)
{
	const struct telemetry_hist_spec *spec = &hist_specs[kind];
	unsigned int i = 0;

	while (i < spec->nbounds && v > spec->bounds[i])
		i++;
	h->buckets[i]++;
	h->count++;
	h->sum += v;
}

static void agg__conn_add(struct telemetry_conn *c, const struct sluice_telem_rec *rec)
{
	switch (rec->type) {
	case SLUICE_TELEM_OPEN:
		c->opened++;
		break;
	case SLUICE_TELEM_CLOSE:
		c->closed++;
		if (rec->reason == SLUICE_TELEM_REASON_RESET)
			c->reset++;
		break;
	case SLUICE_TELEM_FAIL:
		if (rec->reason < SLUICE_TELEM_REASON__MAX)
			c->failed[rec->reason]++;
		break;
	}
	c->bytes_sent += rec->d_bytes_acked;
	c->bytes_received += rec->d_bytes_received;
	c->retrans += rec->d_retrans;
	c->rtos += rec->d_rtos;
}

static void agg__svc_add(struct telemetry_svc_stats *s, const struct sluice_telem_rec *rec)
{
	struct telemetry_hist *h = s->hist[rec->dir];

	s->seen[rec->dir] = true;
	agg__conn_add(&s->conn[rec->dir], rec);
	if (rec->type != SLUICE_TELEM_CLOSE)
		return;
	if (rec->srtt_us)
		agg__hist_add(&h[TELEMETRY_HIST_RTT], TELEMETRY_HIST_RTT, rec->srtt_us);
	agg__hist_add(&h[TELEMETRY_HIST_DURATION], TELEMETRY_HIST_DURATION,
		      rec->ts_ns > rec->start_ns ? (rec->ts_ns - rec->start_ns) / 1000 : 0);
	agg__hist_add(&h[TELEMETRY_HIST_BYTES], TELEMETRY_HIST_BYTES,
		      rec->bytes_acked + rec->bytes_received);
}

static struct telem_svc_slot *agg__svc(struct telemetry *t, __u32 id)
{
	return id && id < SLUICE_MAX_SERVICES ? t->svcs[id] : NULL;
}

static struct telem_be_slot *agg__be(struct telemetry *t, __u32 id, __u32 svc_id)
{
	struct telem_be_slot *slot = id && id < SLUICE_MAX_BACKENDS ? t->bes[id] : NULL;

	return slot && slot->be.svc_id == svc_id ? slot : NULL;
}

static void agg__add(struct telemetry *t, const struct sluice_telem_rec *rec)
{
	struct telem_svc_slot *svc;
	struct telem_be_slot *be;

	if (rec->dir >= SLUICE_TELEM_DIR__MAX) {
		t->unattributed++;
		return;
	}
	svc = agg__svc(t, rec->svc_id);
	be = agg__be(t, rec->backend_id, rec->svc_id);
	/* Ids created since the last sync: look once per consume. */
	if ((!svc || (rec->backend_id && !be)) && !t->resynced) {
		t->resynced = true;
		telemetry__sync(t);
		svc = agg__svc(t, rec->svc_id);
		be = agg__be(t, rec->backend_id, rec->svc_id);
	}
	if (!svc) {
		t->unattributed++;
		return;
	}
	agg__svc_add(&svc->stats, rec);
	if (be) {
		be->stats.seen[rec->dir] = true;
		agg__conn_add(&be->stats.conn[rec->dir], rec);
	}
}

int telem__on_record(void *ctx, void *data, size_t size)
{
	struct telemetry *t = ctx;
	struct sluice_telem_rec rec;

	if (size < sizeof(rec))
		return 0; /* not ours: skip, keep reading */
	memcpy(&rec, data, sizeof(rec));
	t->read++;
	agg__add(t, &rec);
	t->recent[t->recent_next] = rec;
	t->recent_next = (t->recent_next + 1) % t->recent_cap;
	if (t->recent_n < t->recent_cap)
		t->recent_n++;
	if (t->cb)
		t->cb(&rec, t->cb_ctx);
	return 0;
}

/* ---- queries ---- */

int telemetry__service_stats(struct telemetry *t, __u32 svc_id, const struct sluice_svc_key *key,
			     struct telemetry_svc_stats *out)
{
	struct telem_svc_slot *slot = agg__svc(t, svc_id);

	if (!slot || memcmp(&slot->key, key, sizeof(*key)) ||
	    (!slot->stats.seen[SLUICE_TELEM_OUTBOUND] && !slot->stats.seen[SLUICE_TELEM_INBOUND]))
		return -ENOENT;
	*out = slot->stats;
	return 0;
}

int telemetry__backend_stats(struct telemetry *t, __u32 backend_id, const struct sluice_backend *be,
			     struct telemetry_backend_stats *out)
{
	struct telem_be_slot *slot = agg__be(t, backend_id, be->svc_id);

	if (!slot || !agg__same_backend(&slot->be, be) ||
	    (!slot->stats.seen[SLUICE_TELEM_OUTBOUND] && !slot->stats.seen[SLUICE_TELEM_INBOUND]))
		return -ENOENT;
	*out = slot->stats;
	return 0;
}

size_t telemetry__recent(const struct telemetry *t, struct sluice_telem_rec *out, size_t max)
{
	size_t n = t->recent_n < max ? t->recent_n : max;
	size_t start = (t->recent_next + t->recent_cap - n) % t->recent_cap;

	for (size_t i = 0; i < n; i++)
		out[i] = t->recent[(start + i) % t->recent_cap];
	return n;
}

void telemetry__set_record_cb(struct telemetry *t, telemetry_record_fn fn, void *ctx)
{
	t->cb = fn;
	t->cb_ctx = ctx;
}
