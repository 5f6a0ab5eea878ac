// SPDX-License-Identifier: MIT
/*
 * test_k8s_store.c - the sync's object store keeps its key order between
 * translations (k8s_objs__sorted(), #16): after any sequence of adds,
 * modifications and deletes the order equals a fresh sort of the keys,
 * and a modified object is seen with its new contents. No network.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "internal.h"
#include "k8s.h"
#include "k8s_internal.h"
#include "test.h"

/* Service NAME in namespace ns; type NodePort when np. */
static int put_svc(struct k8s_objs *o, const char *name, bool np)
{
	char buf[512];
	struct json_object *obj;
	int err;

	snprintf(buf, sizeof(buf),
		 "{\"metadata\": {\"name\": \"%s\", \"namespace\": \"ns\"}, \"spec\": {\"type\": "
		 "\"%s\", \"clusterIP\": \"10.96.0.1\", \"ports\": [{\"port\": 80%s}]}}",
		 name, np ? "NodePort" : "ClusterIP", np ? ", \"nodePort\": 30080" : "");
	obj = json_tokener_parse(buf);
	if (!ASSERT_TRUE(obj != NULL, buf))
		return -EINVAL;
	err = k8s_objs__put_json(o, obj);
	json_object_put(obj);
	return err;
}

static int del_svc(struct k8s_objs *o, const char *name)
{
	char buf[256];
	struct json_object *obj;
	int err;

	snprintf(buf, sizeof(buf), "{\"metadata\": {\"name\": \"%s\", \"namespace\": \"ns\"}}",
		 name);
	obj = json_tokener_parse(buf);
	err = k8s_objs__del_json(o, obj);
	json_object_put(obj);
	return err;
}

struct want {
	const char *name;
	bool np; /* reads as a NodePort */
};

static int cmp_want(const void *a, const void *b)
{
	return strcmp(((const struct want *)a)->name, ((const struct want *)b)->name);
}

/* The store's order is want[0..n) sorted by name, each with its type. */
static bool order_is(struct k8s_objs *o, const struct want *w, __u32 n)
{
	struct want v[64];
	const void **items;
	__u32 got;
	bool ok = true;

	memcpy(v, w, n * sizeof(*v));
	qsort(v, n, sizeof(*v), cmp_want);
	if (!ASSERT_OK(k8s_objs__sorted(o, &items, &got), "sorted") ||
	    !ASSERT_EQ(got, n, "object count")) {
		free(items);
		return false;
	}
	for (__u32 i = 0; i < n && ok; i++) {
		const struct k8s_svc *s = items[i];

		ok = ASSERT_TRUE(!strcmp(s->name, v[i].name), v[i].name) &&
		     ASSERT_EQ(s->node_ports, v[i].np, s->name);
	}
	free(items);
	return ok;
}

/* Adds, a modification, deletes, adds after a delete: each time the
 * order equals a fresh sort and a modified object shows its new data. */
static void test_order_kept(void)
{
	struct k8s_objs *o = k8s_objs__new(K8S_SERVICES);

	if (!ASSERT_TRUE(o != NULL, "new"))
		return;
	ASSERT_OK(put_svc(o, "c", false), "add c");
	ASSERT_OK(put_svc(o, "a", false), "add a");
	ASSERT_OK(put_svc(o, "b", false), "add b");
	order_is(o, (struct want[]){ { "c", false }, { "a", false }, { "b", false } }, 3);
	ASSERT_OK(put_svc(o, "b", true), "modify b");
	order_is(o, (struct want[]){ { "a", false }, { "b", true }, { "c", false } }, 3);
	/* twice: the kept order, nothing added in between */
	order_is(o, (struct want[]){ { "a", false }, { "b", true }, { "c", false } }, 3);
	ASSERT_OK(del_svc(o, "a"), "delete a");
	order_is(o, (struct want[]){ { "b", true }, { "c", false } }, 2);
	ASSERT_OK(put_svc(o, "d", false), "add d");
	ASSERT_OK(put_svc(o, "a0", false), "add a0");
	order_is(o,
		 (struct want[]){ { "a0", false }, { "b", true }, { "c", false }, { "d", false } },
		 4);
	ASSERT_OK(put_svc(o, "b", false), "b back to ClusterIP");
	order_is(o,
		 (struct want[]){ { "a0", false }, { "b", false }, { "c", false }, { "d", false } },
		 4);
	k8s_objs__free(o);
}

/* 2000 random adds, modifications and deletes over 40 names, the order
 * and every object's type checked after each against a fresh sort. */
static void test_order_random(void)
{
	struct k8s_objs *o = k8s_objs__new(K8S_SERVICES);
	char pool[40][8];
	bool in[40] = { false }, np[40] = { false };
	unsigned int seed = 16;

	if (!ASSERT_TRUE(o != NULL, "new"))
		return;
	for (int i = 0; i < 40; i++)
		snprintf(pool[i], sizeof(pool[i]), "s%02d", (i * 17) % 40);
	for (int step = 0; step < 2000; step++) {
		struct want w[40];
		int k = rand_r(&seed) % 40, n = 0;

		if (in[k] && rand_r(&seed) % 3 == 0) {
			if (!ASSERT_OK(del_svc(o, pool[k]), "delete"))
				break;
			in[k] = false;
		} else {
			np[k] = rand_r(&seed) % 2;
			if (!ASSERT_OK(put_svc(o, pool[k], np[k]), "put"))
				break;
			in[k] = true;
		}
		for (int i = 0; i < 40; i++)
			if (in[i])
				w[n++] = (struct want){ pool[i], np[i] };
		if (!order_is(o, w, (__u32)n)) {
			TEST_FAIL("order differs at step %d", step);
			break;
		}
	}
	k8s_objs__free(o);
}

static const struct test tests[] = {
	TEST(test_order_kept),
	TEST(test_order_random),
};

int main(int argc, char **argv)
{
	return test__run_all("k8s_store", tests, ARRAY_SIZE(tests), argc, argv);
}
