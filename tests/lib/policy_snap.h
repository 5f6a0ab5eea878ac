/* SPDX-License-Identifier: MIT */
/*
 * policy_snap.h - for the access policy suites (test_policy,
 * test_policy_hash): the library opened on the real datapath object
 * (root), and a byte-for-byte snapshot of the maps a policy update
 * writes (services, backends, policy, policy_node, policy_nhost,
 * policy_hash, policy_cfg, policy_nlens), to show a rejected update changed nothing.
 */
#ifndef SLUICE_TESTS_POLICY_SNAP_H
#define SLUICE_TESTS_POLICY_SNAP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test.h"

#define POLICY_SNAP_MAPS 8

static struct sluice *lib__open(void)
{
	struct sluice_opts opts = {};
	struct sluice *s = NULL;
	int err;

	err = sluice__open(&s, &opts);
	if (!ASSERT_OK(err, "sluice__open"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	return err ? NULL : s;
}

struct dump {
	char *buf;
	size_t n, cap, rec;
};

static size_t cmp_size;

static int rec_cmp(const void *a, const void *b)
{
	return memcmp(a, b, cmp_size);
}

struct snap {
	struct dump m[POLICY_SNAP_MAPS];
};

static const struct {
	const char *name;
	size_t ksz, vsz;
} snap_maps[POLICY_SNAP_MAPS] = {
	{ "services", sizeof(struct sluice_svc_key), sizeof(struct sluice_svc) },
	{ "backends", sizeof(__u32), sizeof(struct sluice_backend) },
	{ "policy", sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_val) },
	{ "policy_node", sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_val) },
	{ "policy_nhost", sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_val) },
	{ "policy_hash", sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_val) },
	{ "policy_cfg", sizeof(__u32), sizeof(struct sluice_policy_cfg) },
	{ "policy_nlens", sizeof(__u32), sizeof(struct sluice_policy_nlens) },
};

struct kv_ctx {
	struct dump *d;
	size_t ksz;
};

static int dump_kv(const void *key, const void *value, void *ctx)
{
	struct kv_ctx *c = ctx;
	struct dump *d = c->d;

	/* doubling: one realloc per element copies O(n^2) bytes under ASan,
	 * whose realloc always moves (262k trie entries: > 300 s) */
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 1024;
		char *grown = realloc(d->buf, cap * d->rec);

		if (!grown)
			return -ENOMEM;
		d->buf = grown;
		d->cap = cap;
	}
	memcpy(d->buf + d->n * d->rec, key, c->ksz);
	memcpy(d->buf + d->n * d->rec + c->ksz, value, d->rec - c->ksz);
	d->n++;
	return 0;
}

static __attribute__((unused)) void snap_take(struct sluice *s, struct snap *sn)
{
	for (int i = 0; i < POLICY_SNAP_MAPS; i++) {
		struct kv_ctx c = { &sn->m[i], snap_maps[i].ksz };

		sn->m[i] = (struct dump){ .rec = snap_maps[i].ksz + snap_maps[i].vsz };
		sluice__map_walk(sluice__map_fd(s, snap_maps[i].name), snap_maps[i].name,
				 snap_maps[i].ksz, snap_maps[i].vsz, dump_kv, &c);
		cmp_size = sn->m[i].rec;
		if (sn->m[i].n)
			qsort(sn->m[i].buf, sn->m[i].n, cmp_size, rec_cmp);
	}
}

static __attribute__((unused)) bool snap_same(const struct snap *a, const struct snap *b,
					      const char *what)
{
	bool ok = true;

	for (int i = 0; i < POLICY_SNAP_MAPS; i++) {
		ok &= ASSERT_EQ(a->m[i].n, b->m[i].n, snap_maps[i].name);
		if (a->m[i].n == b->m[i].n && a->m[i].n)
			ok &= ASSERT_TRUE(!memcmp(a->m[i].buf, b->m[i].buf,
						  a->m[i].n * a->m[i].rec),
					  snap_maps[i].name);
	}
	if (!ok)
		fprintf(stderr, "    maps changed by: %s\n", what);
	return ok;
}

static __attribute__((unused)) void snap_free(struct snap *sn)
{
	for (int i = 0; i < POLICY_SNAP_MAPS; i++)
		free(sn->m[i].buf);
}

#endif /* SLUICE_TESTS_POLICY_SNAP_H */
