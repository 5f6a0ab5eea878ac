// SPDX-License-Identifier: MIT
/*
 * ct.c - decoding, flushing and sweeping the conntrack maps (see ct.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <bpf/bpf.h>

#include "ct.h"

#define CT_MAP "conntrack"
#define CT_NEW_MAP "ct_new"

/* The two conntrack maps: confirmed flows, then unconfirmed ones. */
static const struct {
	const char *map;
	const char *state; /* the STATE column of meshctl conntrack list */
} ct__maps[] = {
	{ CT_MAP, "confirmed" },
	{ CT_NEW_MAP, "new" },
};

static bool ct__addr_is(const __u32 addr[4], const struct sluice_addr *a)
{
	if (a->family == SLUICE_AF_INET)
		return addr[0] == a->addr[0];
	return !memcmp(addr, a->addr, 4 * sizeof(__u32));
}

/* FWD: the client addressed the VIP itself. */
static bool ct__fwd_matches(const struct sluice_ct_key *k, const struct ct_filter *f)
{
	return f->all || (k->family == f->vip.family && k->proto == f->proto &&
			  k->dport == htons(f->port) && ct__addr_is(k->daddr, &f->vip));
}

/* REPLY: the entry holds the VIP the reply is rewritten to. */
static bool ct__reply_matches(const struct sluice_ct_key *k, const struct sluice_ct_entry *e,
			      const struct ct_filter *f)
{
	return f->all || (k->family == f->vip.family && k->proto == f->proto &&
			  e->port == htons(f->port) && ct__addr_is(e->addr, &f->vip));
}

static struct sluice_addr ct__addr(const __u32 addr[4], __u8 family)
{
	struct sluice_addr a = { .family = family };

	memcpy(a.addr, addr, sizeof(a.addr));
	return a;
}

static __u64 ct__now_ns(void)
{
	struct timespec ts;

	/* bpf_ktime_get_ns() is CLOCK_MONOTONIC. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static __s64 ct__seconds_since(__u64 now, __u64 then)
{
	return then && now > then ? (__s64)((now - then) / 1000000000ull) : 0;
}

static const char *ct__flags_str(__u8 flags, char *buf, size_t len)
{
	static const char *const names[] = {
		"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"
	};
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < 8; i++) {
		if (!(flags & (1u << i)))
			continue;
		off += snprintf(buf + off, len - off, "%s%s", off ? "," : "", names[i]);
		if (off >= len)
			break;
	}
	return buf;
}

struct ct_list_ctx {
	const struct ct_filter *f;
	const char *state;
	struct json_object *entries;
	__u32 limit;
	__u64 total;
	__u64 now;
};

static int ct__list_one(const void *key, const void *value, void *arg)
{
	const struct sluice_ct_key *k = key;
	const struct sluice_ct_entry *e = value;
	struct ct_list_ctx *c = arg;
	char buf[SLUICE_ADDRPORT_STRLEN + 8], pbuf[8];
	struct sluice_addr a;
	struct json_object *o;

	if (k->dir != SLUICE_CT_FWD || !ct__fwd_matches(k, c->f))
		return 0;
	if (c->total++ >= c->limit)
		return 0;
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(
		o, "proto",
		json_object_new_string(sluice_proto__str(k->proto, pbuf, sizeof(pbuf))));
	a = ct__addr(k->saddr, k->family);
	json_object_object_add(o, "client",
			       json_object_new_string(sluice_addr__str_port(&a, ntohs(k->sport),
									    buf, sizeof(buf))));
	a = ct__addr(k->daddr, k->family);
	json_object_object_add(o, "service",
			       json_object_new_string(sluice_svc__str(&a, ntohs(k->dport), k->proto,
								      buf, sizeof(buf))));
	a = ct__addr(e->addr, k->family);
	json_object_object_add(o, "backend",
			       json_object_new_string(sluice_addr__str_port(&a, ntohs(e->port), buf,
									    sizeof(buf))));
	json_object_object_add(o, "backend_id", json_object_new_int64(e->backend_id));
	json_object_object_add(o, "state", json_object_new_string(c->state));
	json_object_object_add(o, "age_seconds",
			       json_object_new_int64(ct__seconds_since(c->now, e->created_ns)));
	json_object_object_add(o, "idle_seconds",
			       json_object_new_int64(ct__seconds_since(c->now, e->last_seen_ns)));
	json_object_object_add(
		o, "tcp_flags",
		json_object_new_string(k->proto == IPPROTO_TCP ?
					       ct__flags_str(e->tcp_flags, buf, sizeof(buf)) :
					       ""));
	json_object_array_add(c->entries, o);
	return 0;
}

int ct__list(struct sluice *sl, const struct ct_filter *f, __u32 limit, struct json_object *entries,
	     __u64 *total)
{
	struct ct_list_ctx c = { .f = f, .entries = entries, .limit = limit, .now = ct__now_ns() };
	int fd, err = 0;

	for (size_t i = 0; !err && i < sizeof(ct__maps) / sizeof(ct__maps[0]); i++) {
		fd = sluice__map_fd(sl, ct__maps[i].map);
		if (fd < 0)
			return fd;
		c.state = ct__maps[i].state;
		err = sluice__map_walk(fd, ct__maps[i].map, sizeof(struct sluice_ct_key),
				       sizeof(struct sluice_ct_entry), ct__list_one, &c);
	}
	*total = c.total;
	return err;
}

struct ct_flush_ctx {
	const struct ct_filter *f;
	struct sluice_ct_key *keys;
	size_t n, cap;
};

static int ct__push(struct ct_flush_ctx *c, const struct sluice_ct_key *k)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 1024;
		struct sluice_ct_key *grown = realloc(c->keys, cap * sizeof(*grown));

		if (!grown) {
			sluice__set_err("conntrack flush: out of memory");
			return -ENOMEM;
		}
		c->keys = grown;
		c->cap = cap;
	}
	c->keys[c->n++] = *k;
	return 0;
}

/* Collect first, delete after: deleting during a batched walk can make
 * the walk skip or repeat entries. */
static int ct__flush_one(const void *key, const void *value, void *arg)
{
	const struct sluice_ct_key *k = key;
	const struct sluice_ct_entry *e = value;
	struct ct_flush_ctx *c = arg;
	struct sluice_ct_key rev;
	int err;

	if (k->dir == SLUICE_CT_REPLY)
		return ct__reply_matches(k, e, c->f) ? ct__push(c, k) : 0;
	if (!ct__fwd_matches(k, c->f))
		return 0;
	err = ct__push(c, k);
	if (err || c->f->all)
		return err; /* with no filter the REPLY half is walked anyway */
	/* The REPLY half as the backend sends it: backend -> client. */
	memset(&rev, 0, sizeof(rev));
	memcpy(rev.saddr, e->addr, sizeof(rev.saddr));
	memcpy(rev.daddr, k->saddr, sizeof(rev.daddr));
	rev.sport = e->port;
	rev.dport = k->sport;
	rev.proto = k->proto;
	rev.family = k->family;
	rev.dir = SLUICE_CT_REPLY;
	return ct__push(c, &rev);
}

/* Flush the matching flows of one map, adding to the two counts. */
static int ct__flush_map(struct sluice *sl, const char *map, const struct ct_filter *f,
			 __u64 *conns, __u64 *entries)
{
	struct ct_flush_ctx c = { .f = f };
	int fd, err;

	fd = sluice__map_fd(sl, map);
	if (fd < 0)
		return fd;
	err = sluice__map_walk(fd, map, sizeof(struct sluice_ct_key),
			       sizeof(struct sluice_ct_entry), ct__flush_one, &c);
	for (size_t i = 0; !err && i < c.n; i++) {
		/* A REPLY key may be listed twice (own match + from its FWD). */
		int derr = bpf_map_delete_elem(fd, &c.keys[i]);

		if (derr == -ENOENT)
			continue;
		if (derr) {
			err = sluice__map_err(derr, map, "delete", "of an entry");
			break;
		}
		(*entries)++;
		if (c.keys[i].dir == SLUICE_CT_FWD)
			(*conns)++;
	}
	free(c.keys);
	return err;
}

int ct__flush(struct sluice *sl, const struct ct_filter *f, __u64 *conns, __u64 *entries)
{
	int err = 0;

	*conns = *entries = 0;
	for (size_t i = 0; !err && i < sizeof(ct__maps) / sizeof(ct__maps[0]); i++)
		err = ct__flush_map(sl, ct__maps[i].map, f, conns, entries);
	return err;
}

struct ct_sweep_ctx {
	struct ct_flush_ctx keys; /* the expired ones */
	__u64 now;
	__u64 seen;
};

/* The datapath's idle rule for ct_new (see bpf/lib/ct.h). */
static bool ct__new_expired(const struct sluice_ct_key *k, const struct sluice_ct_entry *e,
			    __u64 now)
{
	__u64 timeout = k->proto == IPPROTO_TCP ? SLUICE_CT_NEW_TIMEOUT_TCP_NS :
						  SLUICE_CT_NEW_TIMEOUT_UDP_NS;

	return now > e->last_seen_ns && now - e->last_seen_ns > timeout;
}

static int ct__sweep_one(const void *key, const void *value, void *arg)
{
	struct ct_sweep_ctx *c = arg;

	c->seen++;
	if (!ct__new_expired(key, value, c->now))
		return 0;
	return ct__push(&c->keys, key);
}

/* The walk took a while: keep only the keys still expired now, so an
 * entry the datapath recreated or refreshed meanwhile (a new SYN on the
 * same tuple) is not deleted under it. Compacts keys[0..n). */
static size_t ct__still_expired(int fd, struct sluice_ct_key *keys, size_t n)
{
	struct sluice_ct_entry e;
	__u64 now = ct__now_ns();
	size_t kept = 0;

	for (size_t i = 0; i < n; i++)
		if (!bpf_map_lookup_elem(fd, &keys[i], &e) && ct__new_expired(&keys[i], &e, now))
			keys[kept++] = keys[i];
	return kept;
}

/*
 * Delete keys in batches (one syscall per CT_SWEEP_BATCH: a flood leaves
 * 65536 of them, ~1.5 s one by one here). A key gone meanwhile (evicted,
 * confirmed, recreated) stops a batch: skip it and go on. Without batch
 * deletes in the kernel, one by one.
 */
#define CT_SWEEP_BATCH 4096

static int ct__delete_chunk(int fd, const struct sluice_ct_key *keys, size_t n, bool *batch,
			    __u64 *removed)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	size_t i = 0;

	while (i < n) {
		__u32 count = n - i;
		int err;

		if (*batch) {
			err = bpf_map_delete_batch(fd, &keys[i], &count, &opts);
		} else {
			count = 1;
			err = bpf_map_delete_elem(fd, &keys[i]);
		}
		if (!err) {
			*removed += count;
			i += count;
			continue;
		}
		if (err == -ENOENT) {
			*removed += *batch ? count : 0;
			i += (*batch ? count : 0) + 1;
			continue;
		}
		if (*batch && (err == -EINVAL || err == -EOPNOTSUPP || err == -524)) {
			*batch = false; /* 524: the kernel's ENOTSUPP, no batch op */
			continue;
		}
		return sluice__map_err(err, CT_NEW_MAP, "delete", "of an expired entry");
	}
	return 0;
}

static int ct__delete_keys(int fd, struct sluice_ct_key *keys, size_t n, __u64 *removed)
{
	bool batch = true;
	int err = 0;

	for (size_t i = 0; !err && i < n; i += CT_SWEEP_BATCH) {
		size_t span = n - i < CT_SWEEP_BATCH ? n - i : CT_SWEEP_BATCH;

		err = ct__delete_chunk(fd, &keys[i], ct__still_expired(fd, &keys[i], span), &batch,
				       removed);
	}
	return err;
}

int ct__sweep(struct sluice *sl, __u64 *removed, __u64 *left, __u32 *addrs)
{
	struct ct_sweep_ctx c = { .now = ct__now_ns() };
	int fd, err;

	*removed = *left = 0;
	fd = sluice__map_fd(sl, CT_NEW_MAP);
	if (fd < 0)
		return fd;
	err = sluice__map_walk(fd, CT_NEW_MAP, sizeof(struct sluice_ct_key),
			       sizeof(struct sluice_ct_entry), ct__sweep_one, &c);
	if (!err)
		err = ct__delete_keys(fd, c.keys.keys, c.keys.n, removed);
	free(c.keys.keys);
	*left = c.seen > *removed ? c.seen - *removed : 0;
	*addrs = 0;
	return err ? err : sluice__backend_addrs_sweep(sl, addrs);
}
