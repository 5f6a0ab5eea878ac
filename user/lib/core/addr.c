// SPDX-License-Identifier: MIT
/*
 * addr.c - text <-> struct sluice_addr, ports and protocols, for the CLI,
 * config files and error messages. Parsers are strict (no whitespace, no
 * signs, no zone ids) because their input ends up as map keys; every
 * rejection names the offending text. Output is left untouched on error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* Longest text we accept: an IPv6 address with IPv4 tail in brackets plus
 * a port is 53 characters; anything longer is certainly malformed. */
#define ADDR_TEXT_MAX 64

static int addr__parse_bare(struct sluice_addr *a, const char *text, const char *whole)
{
	struct sluice_addr tmp = {};

	if (inet_pton(AF_INET, text, &tmp.addr[0]) == 1) {
		tmp.family = SLUICE_AF_INET;
	} else if (inet_pton(AF_INET6, text, tmp.addr) == 1) {
		tmp.family = SLUICE_AF_INET6;
	} else {
		sluice__set_err("invalid address \"%s\": not an IPv4 or IPv6 address", whole);
		return -EINVAL;
	}
	*a = tmp;
	return 0;
}

/* Copies text into buf (ADDR_TEXT_MAX) or explains why it cannot. */
static int addr__copy_text(char *buf, const char *text, const char *what)
{
	size_t len;

	if (!text || !*text) {
		sluice__set_err("%s is empty", what);
		return -EINVAL;
	}
	len = strlen(text);
	if (len >= ADDR_TEXT_MAX) {
		sluice__set_err("%s \"%.*s...\" is too long", what, 24, text);
		return -EINVAL;
	}
	memcpy(buf, text, len + 1);
	return 0;
}

int sluice_addr__parse(struct sluice_addr *a, const char *text)
{
	char buf[ADDR_TEXT_MAX];
	char *p = buf;
	size_t len;
	int err;

	sluice__clear_err();
	err = addr__copy_text(buf, text, "address");
	if (err)
		return err;
	len = strlen(buf);
	/* "[fd00::1]" is accepted so an address can be pasted from a URL */
	if (buf[0] == '[') {
		if (len < 3 || buf[len - 1] != ']') {
			sluice__set_err("invalid address \"%s\": unbalanced brackets", text);
			return -EINVAL;
		}
		buf[len - 1] = '\0';
		p = buf + 1;
		if (!strchr(p, ':')) {
			sluice__set_err(
				"invalid address \"%s\": brackets are only for IPv6 addresses",
				text);
			return -EINVAL;
		}
	}
	return addr__parse_bare(a, p, text);
}

static int port__parse(__u16 *port, const char *p, const char *whole)
{
	unsigned long v = 0;
	const char *c;

	if (!*p) {
		sluice__set_err("invalid address \"%s\": missing port after ':'", whole);
		return -EINVAL;
	}
	for (c = p; *c; c++) {
		if (*c < '0' || *c > '9' || c - p >= 5) {
			sluice__set_err("invalid port \"%s\" in \"%s\": not a number 1-65535", p,
					whole);
			return -EINVAL;
		}
		v = v * 10 + (unsigned long)(*c - '0');
	}
	if (v < 1 || v > 65535) {
		sluice__set_err("invalid port \"%s\" in \"%s\": out of range 1-65535", p, whole);
		return -EINVAL;
	}
	*port = (__u16)v;
	return 0;
}

/* Splits "a:p" / "[a]:p" in place into the address and port texts. */
static int addr__split_port(char *buf, char **addr, char **port, const char *whole)
{
	char *colon, *close;

	if (buf[0] == '[') {
		close = strchr(buf, ']');
		if (!close) {
			sluice__set_err("invalid address \"%s\": unbalanced brackets", whole);
			return -EINVAL;
		}
		if (close[1] != ':') {
			sluice__set_err("invalid address \"%s\": expected [addr]:port", whole);
			return -EINVAL;
		}
		*close = '\0';
		*addr = buf + 1;
		*port = close + 2;
		if (!strchr(*addr, ':')) {
			sluice__set_err(
				"invalid address \"%s\": brackets are only for IPv6 addresses",
				whole);
			return -EINVAL;
		}
		return 0;
	}
	colon = strrchr(buf, ':');
	if (!colon) {
		sluice__set_err("invalid address \"%s\": missing port (expected addr:port)", whole);
		return -EINVAL;
	}
	if (strchr(buf, ':') != colon) {
		sluice__set_err(
			"invalid address \"%s\": an IPv6 address with a port needs brackets, e.g. [fd00::1]:80",
			whole);
		return -EINVAL;
	}
	*colon = '\0';
	*addr = buf;
	*port = colon + 1;
	return 0;
}

int sluice_addr__parse_port(struct sluice_addr *a, __u16 *port, const char *text)
{
	struct sluice_addr tmp;
	char buf[ADDR_TEXT_MAX];
	char *addr_txt, *port_txt;
	__u16 p;
	int err;

	sluice__clear_err();
	err = addr__copy_text(buf, text, "address");
	if (err)
		return err;
	err = addr__split_port(buf, &addr_txt, &port_txt, text);
	if (err)
		return err;
	err = port__parse(&p, port_txt, text);
	if (err)
		return err;
	err = addr__parse_bare(&tmp, addr_txt, text);
	if (err)
		return err;
	*a = tmp;
	*port = p;
	return 0;
}

char *sluice_addr__str(const struct sluice_addr *a, char *buf, size_t len)
{
	char tmp[INET6_ADDRSTRLEN];

	if (!len)
		return buf;
	if (a->family == SLUICE_AF_INET && inet_ntop(AF_INET, &a->addr[0], tmp, sizeof(tmp)))
		snprintf(buf, len, "%s", tmp);
	else if (a->family == SLUICE_AF_INET6 && inet_ntop(AF_INET6, a->addr, tmp, sizeof(tmp)))
		snprintf(buf, len, "%s", tmp);
	else
		snprintf(buf, len, "<family %u>", a->family);
	return buf;
}

char *sluice_addr__str_port(const struct sluice_addr *a, __u16 port, char *buf, size_t len)
{
	char tmp[SLUICE_ADDR_STRLEN];

	sluice_addr__str(a, tmp, sizeof(tmp));
	if (a->family == SLUICE_AF_INET6)
		snprintf(buf, len, "[%s]:%u", tmp, port);
	else
		snprintf(buf, len, "%s:%u", tmp, port);
	return buf;
}

char *sluice_svc__str(const struct sluice_addr *vip, __u16 port, __u8 proto, char *buf, size_t len)
{
	char abuf[SLUICE_ADDRPORT_STRLEN], pbuf[8];

	snprintf(buf, len, "%s/%s", sluice_addr__str_port(vip, port, abuf, sizeof(abuf)),
		 sluice_proto__str(proto, pbuf, sizeof(pbuf)));
	return buf;
}

char *sluice_svc_key__str(const struct sluice_svc_key *key, char *buf, size_t len)
{
	struct sluice_addr vip = { .family = key->family };

	memcpy(vip.addr, key->addr, sizeof(vip.addr));
	return sluice_svc__str(&vip, ntohs(key->port), key->proto, buf, len);
}

bool sluice_addr__eq(const struct sluice_addr *a, const struct sluice_addr *b)
{
	if (a->family != b->family)
		return false;
	if (a->family == SLUICE_AF_INET)
		return a->addr[0] == b->addr[0];
	return memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

int sluice_proto__parse(__u8 *proto, const char *text)
{
	sluice__clear_err();
	if (!text || !*text) {
		sluice__set_err("protocol is empty");
		return -EINVAL;
	}
	if (!strcasecmp(text, "tcp") || !strcmp(text, "6")) {
		*proto = IPPROTO_TCP;
	} else if (!strcasecmp(text, "udp") || !strcmp(text, "17")) {
		*proto = IPPROTO_UDP;
	} else {
		sluice__set_err("invalid protocol \"%.32s\": expected tcp or udp", text);
		return -EINVAL;
	}
	return 0;
}

const char *sluice_proto__str(__u8 proto, char *buf, size_t len)
{
	if (proto == IPPROTO_TCP)
		return "tcp";
	if (proto == IPPROTO_UDP)
		return "udp";
	snprintf(buf, len, "%u", proto);
	return buf;
}
