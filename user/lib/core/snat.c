// SPDX-License-Identifier: MIT
/*
 * snat.c - the node's source-NAT address per family (snat_addr map).
 *
 * Contract: services with SLUICE_SVC_F_SNAT_NODE (load-balancer and
 * external IPs with externalTrafficPolicy: Cluster) leave this node from
 * the address set here for their family; with none set their new flows
 * keep the client's address (counted, snat_no_address). One 16-byte
 * array element per family, written whole, so a packet sees the old
 * address or the new one.
 */
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "internal.h"

static int snat__key(__u8 family, __u32 *key)
{
	if (family == SLUICE_AF_INET)
		*key = SLUICE_SNAT_ADDR_V4;
	else if (family == SLUICE_AF_INET6)
		*key = SLUICE_SNAT_ADDR_V6;
	else {
		sluice__set_err("SNAT address: family %u is neither IPv4 nor IPv6", family);
		return -EINVAL;
	}
	return 0;
}

int sluice__snat_addr_set(struct sluice *s, __u8 family, const struct sluice_addr *addr)
{
	struct sluice_snat_addr v = {};
	__u32 key;
	int fd, err;

	sluice__clear_err();
	err = snat__key(family, &key);
	if (err)
		return err;
	if (addr && addr->family != family) {
		sluice__set_err("SNAT address: not of family %u", family);
		return -EINVAL;
	}
	if (addr)
		memcpy(v.addr, addr->addr, sizeof(v.addr));
	fd = s->fds[SLUICE_MAP_SNAT_ADDR];
	err = bpf_map_update_elem(fd, &key, &v, BPF_ANY);
	return err ? maps__err(err, "snat_addr", "update", "of the node address") : 0;
}

int sluice__snat_addr_get(struct sluice *s, __u8 family, struct sluice_addr *out)
{
	struct sluice_snat_addr v;
	__u32 key;
	int fd, err;

	sluice__clear_err();
	err = snat__key(family, &key);
	if (err)
		return err;
	fd = s->fds[SLUICE_MAP_SNAT_ADDR];
	err = bpf_map_lookup_elem(fd, &key, &v);
	if (err)
		return maps__err(err, "snat_addr", "lookup", "of the node address");
	memset(out, 0, sizeof(*out));
	if (!(v.addr[0] | v.addr[1] | v.addr[2] | v.addr[3]))
		return -ENOENT;
	out->family = family;
	memcpy(out->addr, v.addr, sizeof(out->addr));
	return 0;
}
