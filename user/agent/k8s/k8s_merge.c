// SPDX-License-Identifier: MIT
/*
 * k8s_merge.c - the agent's next desired state out of its current one and
 * a translated kubernetes set (k8s__merge(), rules in k8s.h).
 *
 * Contract: manual services keep their order and win a VIP:port/proto
 * clash; kubernetes ones follow in the translation's order; with complete
 * == false nothing kubernetes-sourced is removed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "k8s_internal.h"

static int svcp__cmp(const void *a, const void *b)
{
	return desired__cmp_key(*(const struct desired_service *const *)a,
				*(const struct desired_service *const *)b);
}

static bool svcp__has(const struct desired_service **v, __u32 n, const struct desired_service *s)
{
	return n && bsearch(&s, v, n, sizeof(*v), svcp__cmp);
}

static int merge__push(struct desired *d, const struct desired_service *s)
{
	struct desired_service *t = &d->services[d->nservices];

	*t = *s;
	t->backends = NULL;
	t->src_ranges = NULL;
	t->rules = NULL;
	if (s->nbackends) {
		t->backends = malloc(s->nbackends * sizeof(*t->backends));
		if (!t->backends)
			return -ENOMEM;
		memcpy(t->backends, s->backends, s->nbackends * sizeof(*t->backends));
	}
	d->nservices++;
	return desired__src_ranges_dup(t, s) || desired__policy_dup(t, s) ? -ENOMEM : 0;
}

static bool is_kube(const struct desired_service *s)
{
	return !strcmp(s->source, K8S_SOURCE);
}

int k8s__merge(const struct desired *cur, const struct desired *kube, bool complete,
	       struct desired *out, __u32 *conflicts)
{
	const struct desired_service **manual = NULL, **kv = NULL;
	__u32 nmanual = 0, nkube = 0, clash = 0;
	struct desired d;
	int err = -ENOMEM;

	sluice__clear_err();
	desired__init(&d);
	d.services = calloc(cur->nservices + kube->nservices + 1, sizeof(*d.services));
	manual = calloc(cur->nservices + 1, sizeof(*manual));
	kv = calloc(kube->nservices + 1, sizeof(*kv));
	if (!d.services || !manual || !kv)
		goto out;
	for (__u32 i = 0; i < cur->nservices; i++) {
		if (is_kube(&cur->services[i]))
			continue;
		manual[nmanual++] = &cur->services[i];
		if (merge__push(&d, &cur->services[i]))
			goto out;
	}
	qsort(manual, nmanual, sizeof(*manual), svcp__cmp);
	for (__u32 i = 0; i < kube->nservices; i++) {
		const struct desired_service *s = &kube->services[i];

		if (svcp__has(manual, nmanual, s)) {
			clash++;
			continue;
		}
		kv[nkube++] = s;
		if (merge__push(&d, s))
			goto out;
	}
	if (!complete) {
		qsort(kv, nkube, sizeof(*kv), svcp__cmp);
		for (__u32 i = 0; i < cur->nservices; i++) {
			const struct desired_service *s = &cur->services[i];

			if (is_kube(s) && !svcp__has(kv, nkube, s) && merge__push(&d, s))
				goto out;
		}
	}
	err = 0;
out:
	free(manual);
	free(kv);
	if (err) {
		desired__free(&d);
		sluice__set_err("out of memory merging the Kubernetes services");
		return err;
	}
	if (conflicts)
		*conflicts = clash;
	*out = d;
	return 0;
}
