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

/* The policy_nlens of the list @want[0..n): per family, the lengths its
 * shorter prefixes use, longest first (as sluice_svc.policy_lens), or 0
 * when they use more than SLUICE_POLICY_LENS or none. */
static void node__lens(const struct sluice_policy_key *want, __u32 n,
		       struct sluice_policy_nlens *nl)
{
	bool used[2][129] = { { false } };

	for (__u32 i = 0; i < n; i++)
		if (!node__is_host(&want[i]) && want[i].prefixlen - 32 <= 128)
			used[want[i].id == SLUICE_AF_INET6][want[i].prefixlen - 32] = true;
	for (int f = 0; f < 2; f++)
		nl->lens[f] = sluice_policy__lens_used(used[f]);
}

static int node__fam(const struct sluice_policy_key *k)
{
	return k->id == SLUICE_AF_INET6;
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

static void node__undo(struct sluice *s, struct node_keys *added)
{
	while (added->n) {
		added->n--;
		bpf_map_delete_elem(node__fd(s, &added->v[added->n]), &added->v[added->n]);
	}
}

static bool node__has(const struct sluice_policy_key *v, __u32 n, const struct sluice_policy_key *k)
{
	return n && bsearch(k, v, n, sizeof(*v), node__cmp);
}

/* Whether family @f's copies in policy_nhost (@copies, sorted) are
 * exactly its shorter prefixes of @want (sorted) when @lens is non-zero,
 * none when it is 0. */
static bool node__copies_match(const struct sluice_policy_key *want, __u32 n,
			       const struct node_keys *copies, int f, __u32 lens)
{
	__u32 shorter = 0, have = 0;

	for (__u32 i = 0; i < copies->n; i++)
		if (node__fam(&copies->v[i]) == f) {
			if (!lens || !node__has(want, n, &copies->v[i]))
				return false;
			have++;
		}
	if (!lens)
		return true;
	for (__u32 i = 0; i < n; i++)
		if (node__fam(&want[i]) == f && !node__is_host(&want[i]))
			shorter++;
	return have == shorter;
}

/* Family @f's copies to what @want (sorted) and @lens ask, @copies (sorted)
 * being those in policy_nhost now, @cur what policy_nlens holds (updated).
 * While they change the family is on the trie, which holds every old and
 * new prefix; it goes back to the hash only once every copy is in. A copy
 * that does not fit (policy_nhost full) leaves the family on the trie,
 * its copies removed: the same verdicts, one trie walk. An error only
 * when policy_nlens cannot be written before anything is removed. */
static int node__copies(struct sluice *s, const struct sluice_policy_key *want, __u32 n,
			const struct node_keys *copies, int f, __u32 lens,
			struct sluice_policy_nlens *cur)
{
	const struct sluice_policy_val val = { .verdict = SLUICE_POL_DENY };
	int fd = s->fds[SLUICE_MAP_POLICY_NHOST], nfd = s->fds[SLUICE_MAP_POLICY_NLENS], err;
	__u32 zero = 0;
	bool fits = true;

	if (cur->lens[f] == lens && node__copies_match(want, n, copies, f, lens))
		return 0;
	if (cur->lens[f]) {
		cur->lens[f] = 0;
		err = bpf_map_update_elem(nfd, &zero, cur, BPF_ANY);
		if (err)
			return maps__err(err, "policy_nlens", "update", "to the trie");
	}
	for (__u32 i = 0; i < copies->n; i++)
		if (node__fam(&copies->v[i]) == f && (!lens || !node__has(want, n, &copies->v[i])))
			bpf_map_delete_elem(fd, &copies->v[i]);
	for (__u32 i = 0; lens && i < n && fits; i++) {
		if (node__fam(&want[i]) != f || node__is_host(&want[i]) ||
		    node__has(copies->v, copies->n, &want[i]))
			continue;
		err = bpf_map_update_elem(fd, &want[i], &val, BPF_NOEXIST);
		fits = !err || err == -EEXIST;
	}
	if (!fits) {
		for (__u32 i = 0; i < n; i++)
			if (node__fam(&want[i]) == f && !node__is_host(&want[i]))
				bpf_map_delete_elem(fd, &want[i]);
		return 0;
	}
	if (!lens)
		return 0;
	cur->lens[f] = lens;
	if (bpf_map_update_elem(nfd, &zero, cur, BPF_ANY))
		cur->lens[f] = 0; /* still the trie: the same verdicts */
	return 0;
}

/* Both families to the trie and every copy out of policy_nhost (kept in
 * @copies to put back): room for host entries the copies would crowd. */
static int node__drop_copies(struct sluice *s, const struct node_keys *copies,
			     struct sluice_policy_nlens *cur)
{
	const struct sluice_policy_nlens none = {};
	__u32 zero = 0;
	int err;

	if (cur->lens[0] || cur->lens[1]) {
		err = bpf_map_update_elem(s->fds[SLUICE_MAP_POLICY_NLENS], &zero, &none, BPF_ANY);
		if (err)
			return maps__err(err, "policy_nlens", "update", "to the trie");
	}
	for (__u32 i = 0; i < copies->n; i++)
		bpf_map_delete_elem(s->fds[SLUICE_MAP_POLICY_NHOST], &copies->v[i]);
	return 0;
}

/* Undo node__drop_copies() (after the inserts that needed the room went). */
static void node__restore_copies(struct sluice *s, const struct node_keys *copies,
				 const struct sluice_policy_nlens *cur)
{
	const struct sluice_policy_val val = { .verdict = SLUICE_POL_DENY };
	__u32 zero = 0;

	for (__u32 i = 0; i < copies->n; i++)
		bpf_map_update_elem(s->fds[SLUICE_MAP_POLICY_NHOST], &copies->v[i], &val, BPF_ANY);
	bpf_map_update_elem(s->fds[SLUICE_MAP_POLICY_NLENS], &zero, cur, BPF_ANY);
}

/* The order keeps every client denied before and after denied in
 * between: new prefixes go in first (the trie, the host hash), then
 * policy_cfg, then each family's copies (node__copies()), then what left
 * the list goes. A host entry that finds policy_nhost full while copies
 * are in it takes their room (both families on the trie until their
 * copies are made again, if they fit). */
int sluice__policy_node_set(struct sluice *s, const struct sluice_cidr *deny, __u32 n)
{
	const struct sluice_policy_val val = { .verdict = SLUICE_POL_DENY };
	struct sluice_policy_cfg cfg = {}, old_cfg = {};
	struct sluice_policy_nlens nl, cur = {}, old_nl = {};
	__u32 zero = 0;
	struct node_keys old = {}, added = {}, misplaced = {}, mirrors = {}, dropped = {};
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
	if (!want || !added.v) {
		sluice__set_err("out of memory");
		err = -ENOMEM;
		goto out;
	}
	bpf_map_lookup_elem(s->fds[SLUICE_MAP_POLICY_NLENS], &zero, &old_nl);
	cur = old_nl;
	for (__u32 i = 0; i < n; i++) {
		node__key(&want[i], &deny[i]);
		if (node__has(old.v, old.n, &want[i]))
			continue;
		err = bpf_map_update_elem(node__fd(s, &want[i]), &want[i], &val, BPF_NOEXIST);
		if ((err == -E2BIG || err == -ENOSPC) && node__is_host(&want[i]) && mirrors.n) {
			err = node__drop_copies(s, &mirrors, &cur);
			if (!err) {
				dropped = mirrors; /* owned by dropped now */
				mirrors = (struct node_keys){};
				memset(&cur, 0, sizeof(cur));
				err = bpf_map_update_elem(node__fd(s, &want[i]), &want[i], &val,
							  BPF_NOEXIST);
			}
		}
		if (err) {
			snprintf(what, sizeof(what), "of %s",
				 sluice_cidr__str(&deny[i], c, sizeof(c)));
			maps__err(err, node__is_host(&want[i]) ? "policy_nhost" : "policy_node",
				  "insert", what);
			goto undo;
		}
		added.v[added.n++] = want[i];
	}
	/* the socket LB reads whether a family has prefixes: set once they
	 * are all in, and before the old ones go */
	for (__u32 i = 0; i < n; i++)
		cfg.node_prefixes[deny[i].addr.family == SLUICE_AF_INET6]++;
	bpf_map_lookup_elem(s->fds[SLUICE_MAP_POLICY_CFG], &zero, &old_cfg);
	err = bpf_map_update_elem(s->fds[SLUICE_MAP_POLICY_CFG], &zero, &cfg, BPF_ANY);
	if (err) {
		maps__err(err, "policy_cfg", "update", "of the node list's size");
		goto undo;
	}
	qsort(want, n, sizeof(*want), node__cmp);
	node__lens(want, n, &nl);
	for (int f = 0; f < 2 && !err; f++)
		err = node__copies(s, want, n, &mirrors, f, nl.lens[f], &cur);
	if (err) {
		/* policy_nlens could not be written (an array's only slot: not
		 * seen in practice). Nothing of the old list was removed: both
		 * families to the trie, which holds it whole, at best effort */
		memset(&cur, 0, sizeof(cur));
		bpf_map_update_elem(s->fds[SLUICE_MAP_POLICY_NLENS], &zero, &cur, BPF_ANY);
		bpf_map_update_elem(s->fds[SLUICE_MAP_POLICY_CFG], &zero, &old_cfg, BPF_ANY);
		node__undo(s, &added);
		goto out;
	}
	for (__u32 i = 0; i < old.n; i++)
		if (!node__has(want, n, &old.v[i]))
			bpf_map_delete_elem(node__fd(s, &old.v[i]), &old.v[i]);
	/* in the hash now if still wanted: out of the trie */
	for (__u32 i = 0; i < misplaced.n; i++)
		bpf_map_delete_elem(s->fds[SLUICE_MAP_POLICY_NODE], &misplaced.v[i]);
	goto out;
undo:
	node__undo(s, &added);
	if (dropped.n)
		node__restore_copies(s, &dropped, &old_nl);
out:
	free(dropped.v);
	free(mirrors.v);
	free(misplaced.v);
	free(old.v);
	free(added.v);
	free(want);
	return err;
}

/* At open: a family on the hash whose copies are not exactly its shorter
 * prefixes (an older agent, which knows nothing of the copies, changed
 * the list on these pins) goes back to the trie, which that agent kept
 * whole; the next set of the list copies it again. Walks the node list
 * only when some family is on the hash. */
int svc__policy_nlens_check(struct sluice *s)
{
	struct node_keys keys = {}, mirrors = {};
	struct sluice_policy_nlens cur = {};
	__u32 zero = 0;
	bool changed = false;
	int err;

	if (bpf_map_lookup_elem(s->fds[SLUICE_MAP_POLICY_NLENS], &zero, &cur) ||
	    (!cur.lens[0] && !cur.lens[1]))
		return 0;
	err = node__read(s, &keys, NULL, &mirrors);
	for (int f = 0; f < 2 && !err; f++) {
		struct sluice_policy_nlens want;

		node__lens(keys.v, keys.n, &want);
		if (cur.lens[f] &&
		    (want.lens[f] != cur.lens[f] ||
		     !node__copies_match(keys.v, keys.n, &mirrors, f, cur.lens[f]))) {
			cur.lens[f] = 0;
			changed = true;
		}
	}
	if (!err && changed) {
		err = bpf_map_update_elem(s->fds[SLUICE_MAP_POLICY_NLENS], &zero, &cur, BPF_ANY);
		if (err)
			maps__err(err, "policy_nlens", "update", "to the trie");
	}
	free(keys.v);
	free(mirrors.v);
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
