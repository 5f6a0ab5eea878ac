// SPDX-License-Identifier: MIT
/*
 * svc_spec.c - checking a service spec before any map is touched, and
 * turning addresses into map keys. Every rejection names the field and
 * the value (backends by their index in the spec) so a config error can
 * be fixed from the message alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "internal.h"

static char *addr_port_str(const struct sluice_addr *a, __u16 port, char *buf)
{
	return sluice_addr__str_port(a, port, buf, SLUICE_ADDRPORT_STRLEN);
}

static bool addr_is_unspecified(const struct sluice_addr *a)
{
	if (a->family == SLUICE_AF_INET)
		return !a->addr[0];
	return !(a->addr[0] | a->addr[1] | a->addr[2] | a->addr[3]);
}

/* Map keys want IPv4 in addr[0] and zeros after it, whatever the caller
 * left in the unused words. */
void svc__addr_copy(__u32 dst[4], const struct sluice_addr *a)
{
	memset(dst, 0, 4 * sizeof(__u32));
	memcpy(dst, a->addr, (a->family == SLUICE_AF_INET ? 1 : 4) * sizeof(__u32));
}

int svc__make_key(struct sluice_svc_key *key, const struct sluice_addr *vip, __u16 port, __u8 proto)
{
	char abuf[SLUICE_ADDR_STRLEN];

	if (!vip || (vip->family != SLUICE_AF_INET && vip->family != SLUICE_AF_INET6)) {
		sluice__set_err("vip: family %u is not IPv4 (4) or IPv6 (6)",
				vip ? vip->family : 0);
		return -EINVAL;
	}
	if (addr_is_unspecified(vip)) {
		sluice__set_err("vip: unspecified address %s",
				sluice_addr__str(vip, abuf, sizeof(abuf)));
		return -EINVAL;
	}
	if (port == 0) {
		sluice__set_err("port 0 out of range 1-65535");
		return -EINVAL;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
		sluice__set_err("proto %u is not tcp (6) or udp (17)", proto);
		return -EINVAL;
	}
	memset(key, 0, sizeof(*key));
	svc__addr_copy(key->addr, vip);
	key->port = htons(port);
	key->proto = proto;
	key->family = vip->family;
	return 0;
}

static int svc__validate_backend(const struct sluice_service_spec *spec, __u32 i)
{
	const struct sluice_backend_spec *b = &spec->backends[i];
	char buf[SLUICE_ADDRPORT_STRLEN], other[SLUICE_ADDRPORT_STRLEN];

	if (b->addr.family != spec->vip.family) {
		sluice__set_err("backend %u: family %s differs from the vip's (%s)", i,
				b->addr.family == SLUICE_AF_INET  ? "IPv4" :
				b->addr.family == SLUICE_AF_INET6 ? "IPv6" :
								    "unknown",
				spec->vip.family == SLUICE_AF_INET ? "IPv4" : "IPv6");
		return -EINVAL;
	}
	if (addr_is_unspecified(&b->addr)) {
		sluice__set_err("backend %u: unspecified address %s", i,
				sluice_addr__str(&b->addr, buf, sizeof(buf)));
		return -EINVAL;
	}
	if (b->port == 0) {
		sluice__set_err("backend %u (%s): port 0 out of range 1-65535", i,
				sluice_addr__str(&b->addr, buf, sizeof(buf)));
		return -EINVAL;
	}
	if (b->port == spec->port && sluice_addr__eq(&b->addr, &spec->vip)) {
		sluice__set_err("backend %u (%s) is the service address itself", i,
				addr_port_str(&b->addr, b->port, buf));
		return -EINVAL;
	}
	for (__u32 j = 0; j < i; j++) {
		const struct sluice_backend_spec *o = &spec->backends[j];

		if (o->port == b->port && sluice_addr__eq(&o->addr, &b->addr)) {
			sluice__set_err("backend %u (%s) duplicates backend %u (%s)", i,
					addr_port_str(&b->addr, b->port, buf), j,
					addr_port_str(&o->addr, o->port, other));
			return -EINVAL;
		}
	}
	return 0;
}

/* Source ranges (#13): bounded, of the VIP's family, no host bits. */
static int svc__validate_src_ranges(const struct sluice_service_spec *spec)
{
	char buf[SLUICE_CIDR_STRLEN];

	if (spec->nsrc_ranges > SLUICE_SRC_RANGES_PER_SVC) {
		sluice__set_err("nsrc_ranges %u exceeds the limit of %u per service",
				spec->nsrc_ranges, SLUICE_SRC_RANGES_PER_SVC);
		return -EINVAL;
	}
	if (spec->nsrc_ranges && !spec->src_ranges) {
		sluice__set_err("nsrc_ranges is %u but src_ranges is NULL", spec->nsrc_ranges);
		return -EINVAL;
	}
	for (__u32 i = 0; i < spec->nsrc_ranges; i++) {
		const struct sluice_cidr *c = &spec->src_ranges[i];

		if (c->addr.family != spec->vip.family) {
			sluice__set_err("source range %u is not of the VIP's family", i);
			return -EINVAL;
		}
		if (!sluice_cidr__valid(c)) {
			sluice__set_err("source range %u (%s) has host bits set or a prefix "
					"out of range",
					i, sluice_cidr__str(c, buf, sizeof(buf)));
			return -EINVAL;
		}
	}
	return 0;
}

/* Access policy (#15): checked (and compiled, then dropped) before any
 * service of a call is written; svc__policy_plan() compiles it again. */
static int svc__validate_policy(const struct sluice_service_spec *spec)
{
	struct sluice_policy_entry *e = NULL;
	__u32 n = 0;
	int err;

	err = sluice_policy__compile(spec->vip.family, spec->allow, spec->nallow, spec->deny,
				     spec->ndeny, &e, &n);
	free(e);
	return err;
}

int svc__validate(const struct sluice_service_spec *spec, struct sluice_svc_key *key)
{
	int err;

	if (!spec) {
		sluice__set_err("service spec is NULL");
		return -EINVAL;
	}
	err = svc__make_key(key, &spec->vip, spec->port, spec->proto);
	if (err)
		return err;
	if (spec->nbackends > SLUICE_MAX_SVC_BACKENDS) {
		sluice__set_err("nbackends %u exceeds the limit of %u per service", spec->nbackends,
				SLUICE_MAX_SVC_BACKENDS);
		return -EINVAL;
	}
	if (spec->nbackends && !spec->backends) {
		sluice__set_err("nbackends is %u but backends is NULL", spec->nbackends);
		return -EINVAL;
	}
	if (spec->affinity_timeout_s > SLUICE_AFFINITY_TIMEOUT_MAX) {
		sluice__set_err("affinity_timeout_s %u out of range 1-%u (0: no affinity)",
				spec->affinity_timeout_s, SLUICE_AFFINITY_TIMEOUT_MAX);
		return -EINVAL;
	}
	for (__u32 i = 0; i < spec->nbackends; i++) {
		err = svc__validate_backend(spec, i);
		if (err)
			return err;
	}
	err = svc__validate_src_ranges(spec);
	if (!err)
		err = svc__validate_policy(spec);
	return err;
}
