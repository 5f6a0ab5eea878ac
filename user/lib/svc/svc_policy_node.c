// SPDX-License-Identifier: MIT
/*
 * svc_policy_node.c - the node-wide deny list (#15, trie policy_node,
 * keyed by family and prefix), and reading the policy's use and counters.
 *
 * Contract: sluice__policy_node_set() replaces the whole list or nothing:
 * the list is checked first (sluice_policy__node_check()), then prefixes
 * that are new are inserted; a failed insert deletes what this call
 * inserted and leaves the old list. Prefixes that left the list are
 * deleted only after every new one is in, so a client denied before and
 * after is never let through in between. Where a family's prefixes
 * shorter than a host use at most SLUICE_POLICY_LENS lengths, each is
 * also copied into policy_nhost and policy_nlens names the lengths, so
 * the datapath makes a few exact lookups instead of walking the trie.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "internal.h"

struct node_keys {
	struct sluice_policy_key *v;
	__u32 n, cap;
	/* node__read of the trie: host keys left there by a meshd from before
	 * policy_nhost go here (moved to the hash by the next set) */
	struct node_keys *misplaced;
	/* node__read of policy_nhost: the copies of shorter prefixes
	 * (policy_nlens) go here, or nowhere when NULL */
	struct node_keys *mirrors;
	bool hash; /* reading policy_nhost */
};

static bool node__is_host(const struct sluice_policy_key *k)
{
	return k->prefixlen == 32 + (k->id == SLUICE_AF_INET6 ? 128 : 32);
}

static int node__push(struct node_keys *c, const struct sluice_policy_key *k)
{
	struct sluice_policy_key *grown;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 256;
		grown = realloc(c->v, c->cap * sizeof(*c->v));
		if (!grown) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
		c->v = grown;
	}
	c->v[c->n++] = *k;
	return 0;
}

static int node__collect(const void *key, const void *value, void *ctx)
{
	struct node_keys *c = ctx;

	(void)value;
	if (c->hash && !node__is_host(key))
		return c->mirrors ? node__push(c->mirrors, key) : 0;
	if (!c->hash && c->misplaced && node__is_host(key))
		return node__push(c->misplaced, key);
	return node__push(c, key);
}

static int node__cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct sluice_policy_key));
}

static void node__key(struct sluice_policy_key *k, const struct sluice_cidr *c)
{
	memset(k, 0, sizeof(*k));
	k->prefixlen = 32 + c->prefixlen;
	k->id = c->addr.family;
	svc__addr_copy(k->addr, &c->addr);
}

/* Host entries (/32, /128) live in the hash policy_nhost, the kernel's
 * first lookup; shorter prefixes in the trie policy_node (and, where
 * policy_nlens says so, a copy in policy_nhost: node__mirror()). */
static int node__fd(const struct sluice *s, const struct sluice_policy_key *k)
{
	return s->fds[node__is_host(k) ? SLUICE_MAP_POLICY_NHOST : SLUICE_MAP_POLICY_NODE];
}

/* The policy_nlens of the list @want[0..n): per family, whether its
 * shorter prefixes use at most SLUICE_POLICY_LENS lengths, and which
 * (longest first, as sluice_svc.policy_lens). */
static void node__lens(const struct sluice_policy_key *want, __u32 n,
		       struct sluice_policy_nlens *nl)
{
	bool used[2][129] = { { false } };
	__u32 k;

	memset(nl, 0, sizeof(*nl));
	for (__u32 i = 0; i < n; i++)
		if (!node__is_host(&want[i]) && want[i].prefixlen - 32 <= 128)
			used[want[i].id == SLUICE_AF_INET6][want[i].prefixlen - 32] = true;
	for (int f = 0; f < 2; f++) {
		nl->hash[f] = 1;
		k = 0;
		for (int len = 128; len >= 0; len--) {
			if (!used[f][len])
				continue;
			if (k == SLUICE_POLICY_LENS) {
				nl->hash[f] = 0; /* more lengths than the bound: the trie */
				nl->lens[f] = 0;
				break;
			}
			nl->lens[f] |= (__u32)(len + 1) << (8 * k++);
		}
	}
}

/* Whether the shorter prefix @k has a copy in policy_nhost under @nl. */
static bool node__mirror(const struct sluice_policy_nlens *nl, const struct sluice_policy_key *k)
{
	return !node__is_host(k) && nl->hash[k->id == SLUICE_AF_INET6];
}

/* Every key of both maps into old; with @misplaced, host keys found in
 * the trie go there instead; with @mirrors, the copies of shorter
 * prefixes found in policy_nhost go there (else they are skipped: the
 * trie has them). */
static int node__read(struct sluice *s, struct node_keys *old, struct node_keys *misplaced,
		      struct node_keys *mirrors)
{
	int err;

	old->misplaced = misplaced;
	old->mirrors = mirrors;
	old->hash = false;
	err = maps__for_each(s->fds[SLUICE_MAP_POLICY_NODE], "policy_node",
			     sizeof(struct sluice_policy_key), sizeof(struct sluice_policy_val),
			     node__collect, old);
	old->hash = true;
	if (!err)
		err = maps__for_each(s->fds[SLUICE_MAP_POLICY_NHOST], "policy_nhost",
				     sizeof(struct sluice_policy_key),
				     sizeof(struct sluice_policy_val), node__collect, old);
	old->misplaced = NULL;
	old->mirrors = NULL;
	old->hash = false;
	if (!err && old->n)
		qsort(old->v, old->n, sizeof(*old->v), node__cmp);
	if (!err && mirrors && mirrors->n)
		qsort(mirrors->v, mirrors->n, sizeof(*mirrors->v), node__cmp);
	return err;
}

static void node__undo(struct sluice *s, struct node_keys *added, struct node_keys *added_m)
{
	while (added_m->n) {
		added_m->n--;
		bpf_map_delete_elem(s->fds[SLUICE_MAP_POLICY_NHOST], &added_m->v[added_m->n]);
	}
	while (added->n) {
		added->n--;
		bpf_map_delete_elem(node__fd(s, &added->v[added->n]), &added->v[added->n]);
	}
}

static bool node__has(const struct node_keys *c, const struct sluice_policy_key *k)
{
	return c->n && bsearch(k, c->v, c->n, sizeof(*c->v), node__cmp);
}

/* The order keeps every client denied before and after denied in
 * between: new prefixes (and their copies) go in first, then
 * policy_cfg and policy_nlens switch, then what left the list goes. */
int sluice__policy_node_set(struct sluice *s, const struct sluice_cidr *deny, __u32 n)
{
	const struct sluice_policy_val val = { .verdict = SLUICE_POL_DENY };
	struct sluice_policy_cfg cfg = {}, old_cfg = {};
	struct sluice_policy_nlens nl, old_nl = {};
	__u32 zero = 0;
	struct node_keys old = {}, added = {}, added_m = {}, misplaced = {}, mirrors = {};
	struct sluice_policy_key *want = NULL;
	char what[SLUICE_CIDR_STRLEN + 16], c[SLUICE_CIDR_STRLEN];
	int err;

	sluice__clear_err();
	err = sluice_policy__node_check(deny, n);
	if (!err)
		err = node__read(s, &old, &misplaced, &mirrors);
	if (err)
		goto out;
	want = calloc(n ? n : 1, sizeof(*want));
	added.v = calloc(n ? n : 1, sizeof(*added.v));
	added_m.v = calloc(n ? n : 1, sizeof(*added_m.v));
	if (!want || !added.v || !added_m.v) {
		sluice__set_err("out of memory");
		err = -ENOMEM;
		goto out;
	}
	for (__u32 i = 0; i < n; i++)
		node__key(&want[i], &deny[i]);
	node__lens(want, n, &nl);
	for (__u32 i = 0; i < n; i++) {
		const char *map = NULL;

		snprintf(what, sizeof(what), "of %s", sluice_cidr__str(&deny[i], c, sizeof(c)));
		if (!node__has(&old, &want[i])) {
			err = bpf_map_update_elem(node__fd(s, &want[i]), &want[i], &val,
						  BPF_NOEXIST);
			if (err)
				map = node__is_host(&want[i]) ? "policy_nhost" : "policy_node";
			else
				added.v[added.n++] = want[i];
		}
		if (!err && node__mirror(&nl, &want[i]) && !node__has(&mirrors, &want[i])) {
			err = bpf_map_update_elem(s->fds[SLUICE_MAP_POLICY_NHOST], &want[i], &val,
						  BPF_NOEXIST);
			if (err)
				map = "policy_nhost";
			else
				added_m.v[added_m.n++] = want[i];
		}
		if (err) {
			maps__err(err, map, "insert", what);
			node__undo(s, &added, &added_m);
			goto out;
		}
	}
	/* the socket LB reads whether a family has prefixes, the packet LB
	 * which lengths to look up: set once they are all in, before the old
	 * ones go */
	for (__u32 i = 0; i < n; i++)
		cfg.node_prefixes[deny[i].addr.family == SLUICE_AF_INET6]++;
	bpf_map_lookup_elem(s->fds[SLUICE_MAP_POLICY_CFG], &zero, &old_cfg);
	bpf_map_lookup_elem(s->fds[SLUICE_MAP_POLICY_NLENS], &zero, &old_nl);
	err = bpf_map_update_elem(s->fds[SLUICE_MAP_POLICY_CFG], &zero, &cfg, BPF_ANY);
	if (err) {
		maps__err(err, "policy_cfg", "update", "of the node list's size");
		node__undo(s, &added, &added_m);
		goto out;
	}
	err = bpf_map_update_elem(s->fds[SLUICE_MAP_POLICY_NLENS], &zero, &nl, BPF_ANY);
	if (err) {
		maps__err(err, "policy_nlens", "update", "of the node list's lengths");
		bpf_map_update_elem(s->fds[SLUICE_MAP_POLICY_CFG], &zero, &old_cfg, BPF_ANY);
		node__undo(s, &added, &added_m);
		goto out;
	}
	qsort(want, n, sizeof(*want), node__cmp);
	for (__u32 i = 0; i < old.n; i++)
		if (!bsearch(&old.v[i], want, n, sizeof(*want), node__cmp))
			bpf_map_delete_elem(node__fd(s, &old.v[i]), &old.v[i]);
	/* copies of prefixes that left, or of a family the trie decides now */
	for (__u32 i = 0; i < mirrors.n; i++)
		if (!node__mirror(&nl, &mirrors.v[i]) ||
		    !bsearch(&mirrors.v[i], want, n, sizeof(*want), node__cmp))
			bpf_map_delete_elem(s->fds[SLUICE_MAP_POLICY_NHOST], &mirrors.v[i]);
	/* in the hash now if still wanted: out of the trie */
	for (__u32 i = 0; i < misplaced.n; i++)
		bpf_map_delete_elem(s->fds[SLUICE_MAP_POLICY_NODE], &misplaced.v[i]);
out:
	free(mirrors.v);
	free(misplaced.v);
	free(old.v);
	free(added.v);
	free(added_m.v);
	free(want);
	return err;
}

int sluice__policy_node_get(struct sluice *s, struct sluice_cidr *out, __u32 max, __u32 *n)
{
	struct node_keys keys = {};
	int err;

	sluice__clear_err();
	err = node__read(s, &keys, NULL, NULL);
	if (err)
		goto out;
	for (__u32 i = 0; i < keys.n && i < max; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].addr.family = (__u8)keys.v[i].id;
		memcpy(out[i].addr.addr, keys.v[i].addr, sizeof(keys.v[i].addr));
		out[i].prefixlen = (__u8)(keys.v[i].prefixlen - 32);
	}
	*n = keys.n;
out:
	free(keys.v);
	return err;
}

struct count_ctx {
	__u32 svc_id, n;
};

static int node__count(const void *key, const void *value, void *ctx)
{
	struct count_ctx *c = ctx;

	(void)value;
	if (!c->svc_id || ((const struct sluice_policy_key *)key)->id == c->svc_id)
		c->n++;
	return 0;
}

int sluice__policy_entries(struct sluice *s, __u32 svc_id, __u32 *n)
{
	struct count_ctx c = { .svc_id = svc_id };
	int err;

	sluice__clear_err();
	err = maps__for_each(s->fds[SLUICE_MAP_POLICY], "policy", sizeof(struct sluice_policy_key),
			     sizeof(struct sluice_policy_val), node__count, &c);
	*n = c.n;
	return err;
}

int sluice__policy_stats(struct sluice *s, __u32 svc_id, struct sluice_policy_stats *out)
{
	sluice__clear_err();
	return maps__percpu_sum(s, s->fds[SLUICE_MAP_POLICY_STATS], "policy_stats", svc_id,
				(__u64 *)out, sizeof(*out) / sizeof(__u64));
}
