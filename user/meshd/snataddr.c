// SPDX-License-Identifier: MIT
/*
 * snataddr.c - --snat-address: parsed, and the node's SNAT address per
 * family written to the datapath (see snataddr.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "snataddr.h"

static int snataddr__idx(__u8 family)
{
	return family == SLUICE_AF_INET6;
}

static bool snataddr__unspec(const struct sluice_addr *a)
{
	return !(a->addr[0] | a->addr[1] | a->addr[2] | a->addr[3]);
}

int snataddr__parse(struct snataddr *sa, const char *text, const char *origin)
{
	char buf[256], *save = NULL, *tok;
	struct sluice_addr a;

	memset(sa, 0, sizeof(*sa));
	if (!text || !strcmp(text, "auto")) {
		sa->follow = true;
		return 0;
	}
	if (!strcmp(text, "none"))
		return 0;
	snprintf(buf, sizeof(buf), "%s", text);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (sluice_addr__parse(&a, tok) || snataddr__unspec(&a)) {
			fprintf(stderr,
				"meshd: %s: \"%s\" is not an IPv4 or IPv6 address (auto, none or "
				"ADDR[,ADDR], one per family)\n",
				origin, tok);
			return 2;
		}
		if (sa->want[snataddr__idx(a.family)].family) {
			fprintf(stderr, "meshd: %s: two %s addresses: one per family\n", origin,
				a.family == SLUICE_AF_INET ? "IPv4" : "IPv6");
			return 2;
		}
		sa->want[snataddr__idx(a.family)] = a;
	}
	if (!sa->want[0].family && !sa->want[1].family) {
		fprintf(stderr, "meshd: %s: no address (auto, none or ADDR[,ADDR])\n", origin);
		return 2;
	}
	return 0;
}

static int snataddr__cmp(const struct sluice_addr *a, const struct sluice_addr *b)
{
	for (int i = 0; i < 4; i++) {
		__u32 x = __builtin_bswap32(a->addr[i]), y = __builtin_bswap32(b->addr[i]);

		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

/* The address family @f gets: given, else the lowest node address. */
static struct sluice_addr snataddr__pick(const struct snataddr *sa, __u8 f,
					 const struct sluice_addr *node, __u32 n)
{
	struct sluice_addr best = { 0 };

	if (sa->want[snataddr__idx(f)].family || !sa->follow)
		return sa->want[snataddr__idx(f)];
	for (__u32 i = 0; i < n; i++)
		if (node[i].family == f && (!best.family || snataddr__cmp(&node[i], &best) < 0))
			best = node[i];
	return best;
}

void snataddr__apply(struct snataddr *sa, struct sluice *sl, const struct sluice_addr *node,
		     __u32 n)
{
	static const __u8 fams[2] = { SLUICE_AF_INET, SLUICE_AF_INET6 };
	char s[SLUICE_ADDR_STRLEN];

	for (int i = 0; i < 2; i++) {
		struct sluice_addr a = snataddr__pick(sa, fams[i], node, n);

		if (sa->written && sluice_addr__eq(&a, &sa->cur[i]))
			continue;
		if (sluice__snat_addr_set(sl, fams[i], a.family ? &a : NULL)) {
			pr_err("source NAT address: %s", sluice__errmsg());
			continue;
		}
		sa->cur[i] = a;
		if (a.family)
			pr_info("source NAT address (IPv%c) for load-balancer and external IPs: %s%s",
				i ? '6' : '4', sluice_addr__str(&a, s, sizeof(s)),
				sa->want[i].family ? " (--snat-address)" : " (a node address)");
		else
			pr_info("source NAT address (IPv%c): none; load-balancer and external IPs "
				"of traffic policy Cluster keep the client's address",
				i ? '6' : '4');
	}
	sa->written = true;
}
