// SPDX-License-Identifier: MIT
/*
 * k8s_src_range.c - spec.loadBalancerSourceRanges of a Service (#13):
 * parsed once per Service object, then handed to each of its
 * load-balancer services by family.
 *
 * Contract, as kube-proxy: ranges are trimmed of spaces and host bits are
 * masked ("10.0.0.1/8" is 10.0.0.0/8); a range the API server would have
 * refused is ignored and noted as the Service's problem. Each family
 * keeps its own ranges: an address of the other family gets only those of
 * its own, and none of its family means every client, as with kube-proxy
 * (a dual-stack Service listing only IPv4 ranges is open over IPv6). At
 * most SLUICE_SRC_RANGES_PER_SVC ranges per family are kept, in order:
 * the ones after are dropped, which only ever narrows who is let in, and
 * the translation warns naming the Service. Duplicates (after masking)
 * count once.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "k8s_internal.h"

static int fam_idx(__u8 family)
{
	return family == SLUICE_AF_INET6;
}

static bool src__has(const struct k8s_svc *s, const struct sluice_cidr *c)
{
	for (__u32 i = 0; i < s->nsrc_ranges; i++)
		if (sluice_cidr__eq(&s->src_ranges[i], c))
			return true;
	return false;
}

/* " 10.0.0.0/8 " -> "10.0.0.0/8" in buf; false when it does not fit. */
static bool src__trim(const char *text, char *buf, size_t len)
{
	size_t n;

	while (isspace((unsigned char)*text))
		text++;
	n = strlen(text);
	while (n && isspace((unsigned char)text[n - 1]))
		n--;
	if (n >= len)
		return false;
	memcpy(buf, text, n);
	buf[n] = '\0';
	return true;
}

int k8s_svc__parse_src_ranges(struct k8s_svc *s, struct json_object *spec, char *prob, size_t plen,
			      bool *bad)
{
	struct json_object *arr = k8s_json__arr(spec, "loadBalancerSourceRanges", bad);
	size_t n = arr ? json_object_array_length(arr) : 0, ignored = 0;
	char buf[SLUICE_CIDR_STRLEN + 16], first[SLUICE_CIDR_STRLEN + 16] = "";
	struct sluice_cidr c;
	__u32 cap = 2 * SLUICE_SRC_RANGES_PER_SVC;

	prob[0] = '\0';
	if (!n || *bad)
		return 0;
	s->src_ranges = calloc(cap, sizeof(*s->src_ranges));
	if (!s->src_ranges)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);
		int per_fam = 0;

		if (!json_object_is_type(v, json_type_string)) {
			*bad = true;
			return 0;
		}
		if (!src__trim(json_object_get_string(v), buf, sizeof(buf)) ||
		    sluice_cidr__parse(&c, buf) < 0) {
			if (!ignored++)
				snprintf(first, sizeof(first), "%.*s", (int)sizeof(first) - 1,
					 json_object_get_string(v));
			continue;
		}
		if (src__has(s, &c))
			continue;
		for (__u32 j = 0; j < s->nsrc_ranges; j++)
			per_fam += s->src_ranges[j].addr.family == c.addr.family;
		if (per_fam >= SLUICE_SRC_RANGES_PER_SVC) {
			s->src_ranges_over[fam_idx(c.addr.family)]++;
			continue;
		}
		s->src_ranges[s->nsrc_ranges++] = c;
	}
	if (ignored)
		snprintf(prob, plen,
			 "loadBalancerSourceRanges: %zu not a CIDR (\"%s\"...): ignored", ignored,
			 first);
	return 0;
}

__u32 k8s_svc__src_ranges_count(const struct k8s_svc *svc, const struct sluice_addr *vip)
{
	__u32 n = 0;

	for (__u32 i = 0; i < svc->nsrc_ranges; i++)
		n += svc->src_ranges[i].addr.family == vip->family;
	return n;
}

int k8s_svc__src_ranges_for(const struct k8s_svc *svc, const struct sluice_addr *vip,
			    struct desired_service *d)
{
	__u32 n = k8s_svc__src_ranges_count(svc, vip);

	d->src_ranges = NULL;
	d->nsrc_ranges = 0;
	if (!n)
		return 0;
	d->src_ranges = calloc(n, sizeof(*d->src_ranges));
	if (!d->src_ranges)
		return -ENOMEM;
	for (__u32 i = 0; i < svc->nsrc_ranges; i++)
		if (svc->src_ranges[i].addr.family == vip->family)
			d->src_ranges[d->nsrc_ranges++] = svc->src_ranges[i];
	return (int)svc->src_ranges_over[fam_idx(vip->family)];
}
