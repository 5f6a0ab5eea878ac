// SPDX-License-Identifier: MIT
/*
 * k8s_store.c - the objects of one kind as the sync keeps them: parsed
 * once on arrival (k8s_parse.c), in a hash table keyed by
 * "namespace/name".
 *
 * Contract: put replaces an object with the same key, and a refused object
 * leaves the table unchanged; delete of a missing key is not an error
 * (a watch may report the deletion of something a relist never saw).
 * k8s_objs__sorted() gives a stable order for deterministic translation;
 * the order is kept between calls and sorted again only after an object
 * was added or deleted (a modification keeps its entry: at 10k services
 * the sort was half of the sync thread's time for each published set).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "k8s_internal.h"

struct k8s_obj {
	struct k8s_obj *next;
	__u64 hash;
	char *key;
	void *data; /* struct k8s_svc or struct k8s_slice */
};

/* The entries in key order, as of the last add or delete. */
struct objs_order {
	struct k8s_obj **v;
	__u32 n;
	bool stale;
};

struct k8s_objs {
	enum k8s_kind kind;
	__u32 count;
	__u32 nbuckets; /* power of two */
	struct k8s_obj **buckets;
	struct objs_order *order; /* k8s_objs__sorted()'s, kept across calls */
};

/* --- the table --- */

static __u64 objs__hash(const char *key)
{
	__u64 h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 0x100000001b3ULL;
	return h;
}

static void objs__free_data(enum k8s_kind kind, void *data)
{
	if (kind == K8S_SERVICES)
		k8s_svc__free(data);
	else
		k8s_slice__free(data);
}

struct k8s_objs *k8s_objs__new(enum k8s_kind kind)
{
	struct k8s_objs *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->kind = kind;
	o->nbuckets = 64;
	o->buckets = calloc(o->nbuckets, sizeof(*o->buckets));
	o->order = calloc(1, sizeof(*o->order));
	if (!o->buckets || !o->order) {
		free(o->buckets);
		free(o->order);
		free(o);
		return NULL;
	}
	o->order->stale = true;
	return o;
}

void k8s_objs__free(struct k8s_objs *o)
{
	if (!o)
		return;
	for (__u32 i = 0; i < o->nbuckets; i++) {
		struct k8s_obj *e = o->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			objs__free_data(o->kind, e->data);
			free(e->key);
			free(e);
		}
	}
	free(o->buckets);
	free(o->order->v);
	free(o->order);
	free(o);
}

__u32 k8s_objs__count(const struct k8s_objs *o)
{
	return o ? o->count : 0;
}

/* Doubling keeps chains short; a failed grow only costs speed. */
static void objs__grow(struct k8s_objs *o)
{
	__u32 n = o->nbuckets * 2;
	struct k8s_obj **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (__u32 i = 0; i < o->nbuckets; i++) {
		struct k8s_obj *e = o->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(o->buckets);
	o->buckets = b;
	o->nbuckets = n;
}

static struct k8s_obj **objs__slot(struct k8s_objs *o, const char *key, __u64 hash)
{
	struct k8s_obj **p = &o->buckets[hash & (o->nbuckets - 1)];

	while (*p && ((*p)->hash != hash || strcmp((*p)->key, key)))
		p = &(*p)->next;
	return p;
}

static char *objs__key(const char *ns, const char *name)
{
	size_t len = strlen(ns) + strlen(name) + 2;
	char *key = malloc(len);

	if (key)
		snprintf(key, len, "%s/%s", ns, name);
	return key;
}

int k8s_objs__put_json(struct k8s_objs *o, struct json_object *obj)
{
	const char *ns, *name;
	struct k8s_obj **slot, *e;
	void *data = NULL;
	char *key;
	__u64 hash;
	int err;

	sluice__clear_err();
	if (o->kind == K8S_SERVICES)
		err = k8s_svc__parse(obj, (struct k8s_svc **)&data);
	else
		err = k8s_slice__parse(obj, (struct k8s_slice **)&data);
	if (err)
		return err;
	k8s_meta__ids(obj, o->kind, &ns, &name);
	key = objs__key(ns, name);
	if (!key)
		goto nomem;
	hash = objs__hash(key);
	slot = objs__slot(o, key, hash);
	if (*slot) {
		objs__free_data(o->kind, (*slot)->data);
		(*slot)->data = data;
		free(key);
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		free(key);
		goto nomem;
	}
	e->key = key;
	e->hash = hash;
	e->data = data;
	*slot = e;
	o->count++;
	o->order->stale = true;
	if (o->count > o->nbuckets)
		objs__grow(o);
	return 0;
nomem:
	objs__free_data(o->kind, data);
	sluice__set_err("out of memory storing a %s", k8s_kind__name(o->kind));
	return -ENOMEM;
}

int k8s_objs__del_json(struct k8s_objs *o, struct json_object *obj)
{
	const char *ns, *name;
	struct k8s_obj **slot, *e;
	char *key;
	int err;

	sluice__clear_err();
	err = k8s_meta__ids(obj, o->kind, &ns, &name);
	if (err)
		return err;
	key = objs__key(ns, name);
	if (!key) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	slot = objs__slot(o, key, objs__hash(key));
	free(key);
	e = *slot;
	if (!e)
		return 0;
	*slot = e->next;
	objs__free_data(o->kind, e->data);
	free(e->key);
	free(e);
	o->count--;
	o->order->stale = true;
	return 0;
}

static int objs__cmp(const void *a, const void *b)
{
	return strcmp((*(struct k8s_obj *const *)a)->key, (*(struct k8s_obj *const *)b)->key);
}

/* The entries in key order again (after an add or delete). */
static int objs__order(const struct k8s_objs *o)
{
	struct objs_order *ord = o->order;
	struct k8s_obj **v = NULL;
	__u32 k = 0;

	if (o->count) {
		v = malloc(o->count * sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	for (__u32 i = 0; i < o->nbuckets; i++)
		for (struct k8s_obj *e = o->buckets[i]; e; e = e->next)
			v[k++] = e;
	qsort(v, k, sizeof(*v), objs__cmp);
	free(ord->v);
	ord->v = v;
	ord->n = k;
	ord->stale = false;
	return 0;
}

int k8s_objs__sorted(const struct k8s_objs *o, const void ***items, __u32 *n)
{
	const void **out;

	*items = NULL;
	*n = 0;
	if (!o || !o->count)
		return 0;
	out = malloc(o->count * sizeof(*out));
	if (!out || (o->order->stale && objs__order(o))) {
		free(out);
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (__u32 i = 0; i < o->order->n; i++)
		out[i] = o->order->v[i]->data;
	*items = out;
	*n = o->order->n;
	return 0;
}
