// SPDX-License-Identifier: MIT
/*
 * k8s_nodeaddr.c - which of the node's addresses serve NodePorts: the
 * --nodeport-addresses CIDRs and the addresses that never do (k8s.h).
 *
 * Contract: pure functions, no I/O; meshd's nodeaddr.c reads the
 * addresses from the kernel and asks k8s_nodeaddr__usable() about each.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "internal.h"
#include "k8s.h"

#define CIDR_TEXT_MAX 64

static void cidr__mask(struct k8s_cidr *c)
{
	unsigned int words = c->addr.family == SLUICE_AF_INET ? 1 : 4;

	for (unsigned int i = 0; i < words; i++) {
		int bits = (int)c->len - (int)i * 32;
		__u32 mask = bits >= 32 ? 0xffffffffu : bits <= 0 ? 0 : ~(0xffffffffu >> bits);

		c->addr.addr[i] &= htonl(mask);
	}
}

static int cidr__parse_one(const char *text, struct k8s_cidr *c)
{
	char buf[CIDR_TEXT_MAX], *slash, *end;
	unsigned long len;
	int max;

	if (strlen(text) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (!slash || !slash[1])
		return -EINVAL;
	*slash = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, &c->addr.addr[0]) == 1)
		c->addr.family = SLUICE_AF_INET;
	else if (inet_pton(AF_INET6, buf, c->addr.addr) == 1)
		c->addr.family = SLUICE_AF_INET6;
	else
		return -EINVAL;
	max = c->addr.family == SLUICE_AF_INET ? 32 : 128;
	if (slash[1] < '0' || slash[1] > '9')
		return -EINVAL;
	len = strtoul(slash + 1, &end, 10);
	if (*end || len > (unsigned long)max)
		return -EINVAL;
	c->len = (__u8)len;
	cidr__mask(c);
	return 0;
}

int k8s_cidrs__parse(const char *text, struct k8s_cidr **out, __u32 *n)
{
	char *copy = strdup(text ? text : ""), *tok;
	struct k8s_cidr *v = NULL;
	__u32 cnt = 0;
	int err = 0;

	sluice__clear_err();
	if (!copy)
		return -ENOMEM;
	/* each comma separates two entries: "a,,b" and "a," have an empty one */
	v = calloc(strlen(copy) / 2 + 1, sizeof(*v));
	if (!v) {
		free(copy);
		return -ENOMEM;
	}
	for (char *p = copy; (tok = strsep(&p, ","));) {
		char *e;

		while (*tok == ' ')
			tok++;
		for (e = tok + strlen(tok); e > tok && e[-1] == ' ';)
			*--e = '\0';
		if (!*tok || cidr__parse_one(tok, &v[cnt])) {
			sluice__set_err(
				"\"%.64s\" is not a CIDR (ADDRESS/PREFIX, e.g. 192.0.2.0/24 "
				"or fd00::/64)",
				tok);
			err = -EINVAL;
			break;
		}
		cnt++;
	}
	free(copy);
	if (err || !cnt) {
		free(v);
		if (!err) {
			sluice__set_err("no CIDR given");
			err = -EINVAL;
		}
		return err;
	}
	*out = v;
	*n = cnt;
	return 0;
}

bool k8s_cidr__contains(const struct k8s_cidr *c, const struct sluice_addr *a)
{
	struct k8s_cidr x = { .addr = *a, .len = c->len };

	if (a->family != c->addr.family)
		return false;
	cidr__mask(&x);
	return sluice_addr__eq(&x.addr, &c->addr);
}

static bool addr__never(const struct sluice_addr *a)
{
	const __u8 *b = (const __u8 *)a->addr;
	static const __u8 loop6[16] = { [15] = 1 };
	static const __u8 zero6[16];

	if (a->family == SLUICE_AF_INET)
		return b[0] == 127 || b[0] == 0 || (b[0] == 169 && b[1] == 254) || b[0] >= 224;
	return !memcmp(b, loop6, 16) || !memcmp(b, zero6, 16) ||
	       (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || b[0] == 0xff;
}

bool k8s_nodeaddr__usable(const struct sluice_addr *a, const struct k8s_cidr *cidrs, __u32 n)
{
	if ((a->family != SLUICE_AF_INET && a->family != SLUICE_AF_INET6) || addr__never(a))
		return false;
	if (!n)
		return true;
	for (__u32 i = 0; i < n; i++)
		if (k8s_cidr__contains(&cidrs[i], a))
			return true;
	return false;
}
