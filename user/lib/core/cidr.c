// SPDX-License-Identifier: MIT
/*
 * cidr.c - source ranges as text ("10.0.0.0/8", "fd00::/64") and as
 * struct sluice_cidr, for the desired state, meshctl and Kubernetes.
 *
 * Contract: the parser is as strict as the address parser (no spaces,
 * signs or leading zeros in the prefix length; the "/LEN" is required)
 * and clears host bits, telling the caller that it did so the caller
 * decides whether that is an error (the desired state) or normal
 * (Kubernetes, whose own parser masks). Errors name the text.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "internal.h"

#define CIDR_TEXT_MAX 64

static __u8 cidr__bits(__u8 family)
{
	return family == SLUICE_AF_INET ? 32 : 128;
}

bool sluice_cidr__mask(struct sluice_cidr *c)
{
	__u32 words = c->addr.family == SLUICE_AF_INET ? 1 : 4;
	bool had = false;

	for (__u32 w = 0; w < words; w++) {
		__u32 keep = c->prefixlen >= 32 * (w + 1) ? 32 :
			     c->prefixlen <= 32 * w       ? 0 :
							    c->prefixlen - 32 * w;
		__u32 mask = keep ? htonl(~0u << (32 - keep)) : 0;

		if (c->addr.addr[w] & ~mask)
			had = true;
		c->addr.addr[w] &= mask;
	}
	return had;
}

int sluice_cidr__parse(struct sluice_cidr *c, const char *text)
{
	char buf[CIDR_TEXT_MAX], *slash, *len_text;
	struct sluice_cidr tmp = {};
	unsigned long len = 0;
	size_t n;

	if (!text || !*text) {
		sluice__set_err("source range is empty (want ADDRESS/PREFIX, e.g. 10.0.0.0/8)");
		return -EINVAL;
	}
	n = strlen(text);
	if (n >= sizeof(buf)) {
		sluice__set_err("\"%.24s...\": too long for a source range", text);
		return -EINVAL;
	}
	memcpy(buf, text, n + 1);
	slash = strchr(buf, '/');
	if (!slash) {
		sluice__set_err("\"%s\": not ADDRESS/PREFIX (e.g. 10.0.0.0/8)", text);
		return -EINVAL;
	}
	*slash = '\0';
	len_text = slash + 1;
	if (inet_pton(AF_INET, buf, &tmp.addr.addr[0]) == 1) {
		tmp.addr.family = SLUICE_AF_INET;
	} else if (inet_pton(AF_INET6, buf, tmp.addr.addr) == 1) {
		tmp.addr.family = SLUICE_AF_INET6;
	} else {
		sluice__set_err("\"%s\": \"%s\" is not an IPv4 or IPv6 address", text, buf);
		return -EINVAL;
	}
	if (!*len_text || strlen(len_text) > 3 || (len_text[0] == '0' && len_text[1])) {
		sluice__set_err("\"%s\": prefix \"%s\" is not a number 0-%u", text, len_text,
				cidr__bits(tmp.addr.family));
		return -EINVAL;
	}
	for (const char *p = len_text; *p; p++) {
		if (*p < '0' || *p > '9') {
			sluice__set_err("\"%s\": prefix \"%s\" is not a number 0-%u", text,
					len_text, cidr__bits(tmp.addr.family));
			return -EINVAL;
		}
		len = len * 10 + (unsigned long)(*p - '0');
	}
	if (len > cidr__bits(tmp.addr.family)) {
		sluice__set_err("\"%s\": prefix out of range 0-%u", text,
				cidr__bits(tmp.addr.family));
		return -EINVAL;
	}
	tmp.prefixlen = (__u8)len;
	*c = tmp;
	return sluice_cidr__mask(c) ? 1 : 0;
}

bool sluice_cidr__valid(const struct sluice_cidr *c)
{
	struct sluice_cidr tmp = *c;

	if (c->addr.family != SLUICE_AF_INET && c->addr.family != SLUICE_AF_INET6)
		return false;
	if (c->prefixlen > cidr__bits(c->addr.family))
		return false;
	return !sluice_cidr__mask(&tmp);
}

bool sluice_cidr__eq(const struct sluice_cidr *a, const struct sluice_cidr *b)
{
	return a->prefixlen == b->prefixlen && sluice_addr__eq(&a->addr, &b->addr);
}

char *sluice_cidr__str(const struct sluice_cidr *c, char *buf, size_t len)
{
	char addr[SLUICE_ADDR_STRLEN];

	snprintf(buf, len, "%s/%u", sluice_addr__str(&c->addr, addr, sizeof(addr)), c->prefixlen);
	return buf;
}
