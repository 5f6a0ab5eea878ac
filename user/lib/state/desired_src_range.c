// SPDX-License-Identifier: MIT
/*
 * desired_src_range.c - "sourceRanges" of a service in the desired state
 * (#13), Kubernetes' loadBalancerSourceRanges:
 *
 *   sourceRanges: ["10.0.0.0/8", "192.168.1.0/24"]
 *
 * Absent or [] means every client. Otherwise at most
 * SLUICE_SRC_RANGES_PER_SVC (64) CIDRs, each of the VIP's family, without
 * host bits ("10.0.0.1/8" is rejected, naming 10.0.0.0/8: a typo in an
 * access rule should not silently widen or shift it) and no duplicates.
 * The order is kept as written; comparisons ignore it (a set).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desired_internal.h"
#include "internal.h"

#define VAL_LEN 64

int desired__parse_src_ranges(struct json_object *v, const char *base, struct desired_service *svc)
{
	char path[DESIRED_PATH_LEN], rpath[DESIRED_PATH_LEN], val[VAL_LEN], msg[SLUICE_ERRMSG_LEN];
	char want[SLUICE_CIDR_STRLEN];
	struct sluice_cidr *c;
	const char *s;
	size_t n;
	int err;

	desired__path(path, base, "sourceRanges");
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return desired__err(path,
				    "expected a list of CIDRs (e.g. [\"10.0.0.0/8\"]), got %s %s",
				    desired__jtype(v), desired__jtext(v, val, sizeof(val)));
	n = json_object_array_length(v);
	if (n > SLUICE_SRC_RANGES_PER_SVC)
		return desired__err(path, "%zu ranges exceed the limit of %u per service", n,
				    SLUICE_SRC_RANGES_PER_SVC);
	if (!n)
		return 0;
	svc->src_ranges = calloc(n, sizeof(*svc->src_ranges));
	if (!svc->src_ranges) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (size_t j = 0; j < n; j++) {
		desired__pathf(rpath, "%s[%zu]", path, j);
		err = desired__get_string(json_object_array_get_idx(v, j), rpath,
					  "a CIDR such as \"10.0.0.0/8\"", &s);
		if (err)
			return err;
		c = &svc->src_ranges[j];
		err = sluice_cidr__parse(c, s);
		if (err < 0) {
			snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
			return desired__err(rpath, "%s", msg);
		}
		if (err)
			return desired__err(rpath, "\"%s\" has host bits set (the range is %s)", s,
					    sluice_cidr__str(c, want, sizeof(want)));
		svc->nsrc_ranges++;
	}
	return 0;
}

int desired__check_src_ranges(const struct desired_service *svc, const char *base)
{
	char path[DESIRED_PATH_LEN], a[SLUICE_CIDR_STRLEN], vip[SLUICE_ADDR_STRLEN];

	desired__path(path, base, "sourceRanges");
	if (svc->nsrc_ranges > SLUICE_SRC_RANGES_PER_SVC)
		return desired__err(path, "%u ranges exceed the limit of %u per service",
				    svc->nsrc_ranges, SLUICE_SRC_RANGES_PER_SVC);
	if (svc->nsrc_ranges && !svc->src_ranges)
		return desired__err(path, "%u ranges but no array", svc->nsrc_ranges);
	for (__u32 j = 0; j < svc->nsrc_ranges; j++) {
		const struct sluice_cidr *c = &svc->src_ranges[j];

		desired__pathf(path, "%s.sourceRanges[%u]", base, j);
		if (c->addr.family != svc->vip.family)
			return desired__err(path, "\"%s\" is %s but the VIP %s is %s",
					    sluice_cidr__str(c, a, sizeof(a)),
					    c->addr.family == SLUICE_AF_INET ? "IPv4" : "IPv6",
					    sluice_addr__str(&svc->vip, vip, sizeof(vip)),
					    svc->vip.family == SLUICE_AF_INET ? "IPv4" : "IPv6");
		if (!sluice_cidr__valid(c))
			return desired__err(path,
					    "\"%s\" has host bits set or a prefix out of range",
					    sluice_cidr__str(c, a, sizeof(a)));
		for (__u32 k = 0; k < j; k++)
			if (sluice_cidr__eq(c, &svc->src_ranges[k]))
				return desired__err(path,
						    "\"%s\" is a duplicate of sourceRanges[%u]",
						    sluice_cidr__str(c, a, sizeof(a)), k);
	}
	return 0;
}

struct json_object *desired__src_ranges_to_json(const struct desired_service *svc)
{
	char buf[SLUICE_CIDR_STRLEN];
	struct json_object *list, *s;

	if (!svc->nsrc_ranges)
		return NULL;
	list = json_object_new_array();
	for (__u32 j = 0; list && j < svc->nsrc_ranges; j++) {
		s = json_object_new_string(sluice_cidr__str(&svc->src_ranges[j], buf, sizeof(buf)));
		if (!s || json_object_array_add(list, s))
			json_object_put(s);
	}
	return list;
}

bool desired__src_ranges_eq(const struct desired_service *a, const struct desired_service *b)
{
	if (a->nsrc_ranges != b->nsrc_ranges)
		return false;
	/* at most 64 each, no duplicates: a quadratic set compare */
	for (__u32 i = 0; i < a->nsrc_ranges; i++) {
		bool found = false;

		for (__u32 j = 0; j < b->nsrc_ranges && !found; j++)
			found = sluice_cidr__eq(&a->src_ranges[i], &b->src_ranges[j]);
		if (!found)
			return false;
	}
	return true;
}

int desired__src_ranges_dup(struct desired_service *dst, const struct desired_service *src)
{
	dst->src_ranges = NULL;
	dst->nsrc_ranges = 0;
	if (!src->nsrc_ranges)
		return 0;
	dst->src_ranges = malloc(src->nsrc_ranges * sizeof(*dst->src_ranges));
	if (!dst->src_ranges) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	memcpy(dst->src_ranges, src->src_ranges, src->nsrc_ranges * sizeof(*dst->src_ranges));
	dst->nsrc_ranges = src->nsrc_ranges;
	return 0;
}
