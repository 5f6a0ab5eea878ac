// SPDX-License-Identifier: MIT
/*
 * desired_check.c - the semantic rules of the desired state: one service
 * on its own (name, addresses, port, protocol, backends) and the services
 * together (limits, duplicates).
 *
 * Contract: the rules live only here, so a model parsed from text
 * (desired_parse.c) and one edited in code by the agent
 * (desired__validate) obey exactly the same rules. Each error names the
 * path of the field ("services[1].backends[0].port") and the value found,
 * and returns -EINVAL (-ENOMEM when the duplicate search cannot allocate).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "desired_internal.h"
#include "internal.h"

static int desired__verr(const char *path, const char *fmt, va_list ap)
{
	char msg[SLUICE_ERRMSG_LEN];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	sluice__set_err("%s: %s", path, msg);
	return -EINVAL;
}

int desired__err(const char *path, const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = desired__verr(path, fmt, ap);
	va_end(ap);
	return err;
}

int desired__err_at(const char *base, const char *field, const char *fmt, ...)
{
	char path[DESIRED_PATH_LEN];
	va_list ap;
	int err;

	desired__path(path, base, field);
	va_start(ap, fmt);
	err = desired__verr(path, fmt, ap);
	va_end(ap);
	return err;
}

/* The error of base.backends[j] (field NULL) or base.backends[j].field. */
static int __attribute__((format(printf, 4, 5)))
desired__err_be(const char *base, __u32 j, const char *field, const char *fmt, ...)
{
	char path[DESIRED_PATH_LEN];
	va_list ap;
	int err;

	if (field)
		desired__pathf(path, "%s.backends[%u].%s", base, j, field);
	else
		desired__pathf(path, "%s.backends[%u]", base, j);
	va_start(ap, fmt);
	err = desired__verr(path, fmt, ap);
	va_end(ap);
	return err;
}

void desired__pathf(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, DESIRED_PATH_LEN, fmt, ap);
	va_end(ap);
}

/* Called for every field of every service: without printf. */
void desired__path(char *buf, const char *base, const char *field)
{
	size_t b = strlen(base), f = strlen(field);

	if (b + 1 + f >= DESIRED_PATH_LEN) {
		desired__pathf(buf, "%s.%s", base, field);
		return;
	}
	memcpy(buf, base, b);
	buf[b] = '.';
	memcpy(buf + b + 1, field, f + 1);
}

static const char *desired__family(__u8 family)
{
	return family == SLUICE_AF_INET ? "IPv4" : family == SLUICE_AF_INET6 ? "IPv6" : "unknown";
}

static bool desired__addr_unspec(const struct sluice_addr *a)
{
	if (a->family == SLUICE_AF_INET)
		return !a->addr[0];
	return !(a->addr[0] | a->addr[1] | a->addr[2] | a->addr[3]);
}

static int desired__cmp_addr(const struct sluice_addr *a, const struct sluice_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	/* network order: memcmp sorts numerically */
	return memcmp(a->addr, b->addr, (a->family == SLUICE_AF_INET ? 1 : 4) * sizeof(__u32));
}

int desired__cmp_key(const struct desired_service *a, const struct desired_service *b)
{
	int c = desired__cmp_addr(&a->vip, &b->vip);

	if (c)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return a->proto < b->proto ? -1 : a->proto > b->proto;
}

struct desired_idx {
	const void *item;
	__u32 idx;
};

static int desired__cmp_svc_idx(const void *x, const void *y)
{
	const struct desired_idx *a = x, *b = y;
	int c = desired__cmp_key(a->item, b->item);

	return c ? c : (a->idx < b->idx ? -1 : a->idx > b->idx);
}

static int desired__cmp_be_idx(const void *x, const void *y)
{
	const struct desired_idx *a = x, *b = y;
	const struct desired_backend *p = a->item, *q = b->item;
	int c = desired__cmp_addr(&p->addr, &q->addr);

	if (c)
		return c;
	if (p->port != q->port)
		return p->port < q->port ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/*
 * Sort (item, index) pairs; equal neighbours are duplicates. Reports the
 * duplicate that comes first in the user's order: the smallest "later"
 * index, paired with its earlier twin. Returns 1 and sets *first and *dup
 * when there is a duplicate, 0 when all are distinct, -ENOMEM.
 */
static int desired__find_dup(const void *items, size_t size, __u32 n,
			     int (*cmp)(const void *, const void *), __u32 *first, __u32 *dup)
{
	struct desired_idx *v;
	bool found = false;

	if (n < 2)
		return 0;
	v = malloc(n * sizeof(*v));
	if (!v) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (__u32 i = 0; i < n; i++)
		v[i] = (struct desired_idx){ .item = (const char *)items + (size_t)i * size,
					     .idx = i };
	qsort(v, n, sizeof(*v), cmp);
	for (__u32 i = 1; i < n; i++) {
		struct desired_idx a = v[i - 1], b = v[i];

		/* compare keys only: make the indexes equal */
		a.idx = b.idx;
		if (cmp(&a, &b))
			continue;
		if (!found || v[i].idx < *dup) {
			/* the earliest twin of a run is the one sorted first */
			__u32 k = i - 1;

			while (k > 0) {
				struct desired_idx p = v[k - 1];

				p.idx = v[k].idx;
				if (cmp(&p, &v[k]))
					break;
				k--;
			}
			*first = v[k].idx;
			*dup = v[i].idx;
			found = true;
		}
	}
	free(v);
	return found;
}

static int desired__check_name(const struct desired_service *svc, const char *base)
{
	size_t len = strnlen(svc->name, DESIRED_NAME_MAX);

	if (len == DESIRED_NAME_MAX)
		return desired__err_at(base, "name", "\"%.24s...\" is longer than %d characters",
				       svc->name, DESIRED_NAME_MAX - 1);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)svc->name[i] < 0x20 || svc->name[i] == 0x7f)
			return desired__err_at(base, "name", "\"%s\" contains a control character",
					       svc->name);
	if (strnlen(svc->source, DESIRED_SOURCE_MAX) == DESIRED_SOURCE_MAX ||
	    (svc->source[0] && strcmp(svc->source, "manual") && strcmp(svc->source, "kubernetes")))
		return desired__err_at(base, "source",
				       "\"%.*s\" is not \"manual\" or \"kubernetes\"",
				       DESIRED_SOURCE_MAX, svc->source);
	return 0;
}

static int desired__check_backend(const struct desired_service *svc, __u32 j, const char *base)
{
	const struct desired_backend *b = &svc->backends[j];
	char a[SLUICE_ADDR_STRLEN], v[SLUICE_ADDR_STRLEN];
	char ap[SLUICE_ADDRPORT_STRLEN];

	if (b->addr.family != svc->vip.family)
		return desired__err_be(
			base, j, "address",
			"%s is %s but the vip %s is %s (a service's backends share its family)",
			sluice_addr__str(&b->addr, a, sizeof(a)), desired__family(b->addr.family),
			sluice_addr__str(&svc->vip, v, sizeof(v)),
			desired__family(svc->vip.family));
	if (desired__addr_unspec(&b->addr))
		return desired__err_be(base, j, "address", "%s is the unspecified address",
				       sluice_addr__str(&b->addr, a, sizeof(a)));
	if (!b->port)
		return desired__err_be(base, j, "port", "0 is out of range 1-65535");
	if (b->port == svc->port && sluice_addr__eq(&b->addr, &svc->vip))
		return desired__err_be(base, j, NULL, "%s is the service's own address",
				       sluice_addr__str_port(&b->addr, b->port, ap, sizeof(ap)));
	return 0;
}

/* base is "services[i]". */
int desired__check_service(const struct desired_service *svc, __u32 i)
{
	char base[DESIRED_PATH_LEN], a[SLUICE_ADDRPORT_STRLEN];
	__u32 first, dup, active = 0;
	int err;

	desired__pathf(base, "services[%u]", i);
	err = desired__check_name(svc, base);
	if (err)
		return err;
	if (svc->vip.family != SLUICE_AF_INET && svc->vip.family != SLUICE_AF_INET6)
		return desired__err_at(base, "vip", "address family %u is not IPv4 or IPv6",
				       svc->vip.family);
	if (desired__addr_unspec(&svc->vip))
		return desired__err_at(base, "vip", "%s is the unspecified address",
				       sluice_addr__str(&svc->vip, a, sizeof(a)));
	if (!svc->port)
		return desired__err_at(base, "port", "0 is out of range 1-65535");
	if (svc->proto != IPPROTO_TCP && svc->proto != IPPROTO_UDP)
		return desired__err_at(base, "protocol", "%u is not tcp or udp", svc->proto);
	if (svc->snat_node && !svc->snat)
		return desired__err_at(base, "snat", "to the node address without source NAT");
	if (svc->nbackends > SLUICE_MAX_SVC_BACKENDS)
		return desired__err_at(base, "backends",
				       "%u backends exceed the limit of %u per service",
				       svc->nbackends, SLUICE_MAX_SVC_BACKENDS);
	if (svc->nbackends && !svc->backends)
		return desired__err_at(base, "backends", "%u backends but no array",
				       svc->nbackends);
	for (__u32 j = 0; j < svc->nbackends; j++) {
		err = desired__check_backend(svc, j, base);
		if (err)
			return err;
		active += svc->backends[j].weight != 0;
	}
	if (svc->nbackends && !active)
		return desired__err_at(base, "backends",
				       "every weight is 0 (at least one backend needs weight > 0; "
				       "to refuse connections, list no backends)");
	err = desired__find_dup(svc->backends, sizeof(*svc->backends), svc->nbackends,
				desired__cmp_be_idx, &first, &dup);
	if (err < 0)
		return err;
	if (err) {
		const struct desired_backend *b = &svc->backends[dup];

		return desired__err_be(base, dup, NULL, "%s is a duplicate of backends[%u]",
				       sluice_addr__str_port(&b->addr, b->port, a, sizeof(a)),
				       first);
	}
	return desired__check_outlier(&svc->outlier, base)                    ?:
		       desired__check_affinity(svc->affinity_timeout_s, base) ?:
		       desired__check_health(svc, base)                       ?:
		       desired__check_src_ranges(svc, base)                   ?:
		       desired__check_policy(svc, base);
}

int desired__check_all(const struct desired *d)
{
	char ref[DESIRED_SVC_REF_LEN], path[DESIRED_PATH_LEN];
	__u64 total = 0;
	__u32 first, dup;
	int err;

	if (d->nservices > SLUICE_MAX_SERVICES - 1)
		return desired__err("services", "%u services exceed the limit of %u", d->nservices,
				    SLUICE_MAX_SERVICES - 1);
	for (__u32 i = 0; i < d->nservices; i++)
		total += d->services[i].nbackends;
	if (total > SLUICE_MAX_BACKENDS - 1)
		return desired__err("services", "%llu backends in total exceed the limit of %u",
				    (unsigned long long)total, SLUICE_MAX_BACKENDS - 1);
	total = 0;
	for (__u32 i = 0; i < d->nservices; i++)
		total += d->services[i].nsrc_ranges;
	/* half the trie: an update writes a service's new ranges before it
	 * deletes the old ones */
	if (total > SLUICE_SRC_RANGES_MAX / 2)
		return desired__err("services",
				    "%llu source ranges in total exceed the limit of %u",
				    (unsigned long long)total, SLUICE_SRC_RANGES_MAX / 2);
	err = desired__find_dup(d->services, sizeof(*d->services), d->nservices,
				desired__cmp_svc_idx, &first, &dup);
	if (err < 0)
		return err;
	if (err) {
		desired__pathf(path, "services[%u]", dup);
		return desired__err(path, "%s is a duplicate of services[%u]",
				    desired__svc_ref(&d->services[dup], ref, sizeof(ref)), first);
	}
	return 0;
}

int desired__validate(const struct desired *d)
{
	int err;

	sluice__clear_err();
	if (d->nservices && !d->services)
		return desired__err("services", "%u services but no array", d->nservices);
	for (__u32 i = 0; i < d->nservices; i++) {
		err = desired__check_service(&d->services[i], i);
		if (err)
			return err;
	}
	err = desired__check_all(d);
	if (!err && d->nnode_deny)
		err = d->node_deny ? sluice_policy__node_check(d->node_deny, d->nnode_deny) :
				     desired__err("nodeDenyFrom", "%u prefixes but no array",
						  d->nnode_deny);
	return err;
}

/* Totals of d with services[i] replaced by svc, against the limits of
 * desired__check_all() (same texts). */
static int desired__check_totals_one(const struct desired *d, __u32 i,
				     const struct desired_service *svc)
{
	__u64 be = 0, sr = 0;

	/* no more than the service had: d's totals, checked when they were
	 * made, cannot grow (a weight or drain change: no scan of every
	 * service) */
	if (svc->nbackends <= d->services[i].nbackends &&
	    svc->nsrc_ranges <= d->services[i].nsrc_ranges)
		return 0;
	for (__u32 k = 0; k < d->nservices; k++) {
		const struct desired_service *s = k == i ? svc : &d->services[k];

		be += s->nbackends;
		sr += s->nsrc_ranges;
	}
	if (be > SLUICE_MAX_BACKENDS - 1)
		return desired__err("services", "%llu backends in total exceed the limit of %u",
				    (unsigned long long)be, SLUICE_MAX_BACKENDS - 1);
	if (sr > SLUICE_SRC_RANGES_MAX / 2)
		return desired__err("services",
				    "%llu source ranges in total exceed the limit of %u",
				    (unsigned long long)sr, SLUICE_SRC_RANGES_MAX / 2);
	return 0;
}

int desired__validate_one(const struct desired *d, __u32 i, const struct desired_service *svc)
{
	char ref[DESIRED_SVC_REF_LEN], path[DESIRED_PATH_LEN];
	int err;

	sluice__clear_err();
	if (i >= d->nservices)
		return desired__err("services", "no service %u of %u", i, d->nservices);
	err = desired__check_service(svc, i) ?: desired__check_totals_one(d, i, svc);
	if (err || !desired__cmp_key(svc, &d->services[i]))
		return err;
	/* A new key: the one twin it could have, found by a scan (no sort). */
	for (__u32 k = 0; k < d->nservices; k++) {
		if (k == i || desired__cmp_key(svc, &d->services[k]))
			continue;
		desired__pathf(path, "services[%u]", k > i ? k : i);
		return desired__err(path, "%s is a duplicate of services[%u]",
				    desired__svc_ref(svc, ref, sizeof(ref)), k < i ? k : i);
	}
	return 0;
}
