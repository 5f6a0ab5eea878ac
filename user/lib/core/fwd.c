// SPDX-License-Identifier: MIT
/*
 * fwd.c - the egress devices XDP may redirect to (map fwd_devs, see
 * bpf/lib/fwd.h). Deciding which devices can take XDP frames is the
 * caller's job (meshd: user/meshd/fwddev.c); this only writes the set.
 *
 * Contract: sluice__fwd_dev_set() adds or removes one ifindex of the
 * caller's network namespace; a removal of an absent entry is not an
 * error. The kernel drops an entry itself when its device goes away.
 */
#include <errno.h>
#include <stdbool.h>

#include <bpf/bpf.h>

#include "internal.h"

int sluice__fwd_dev_set(struct sluice *s, int ifindex, bool on)
{
	__u32 key = (__u32)ifindex, val = (__u32)ifindex;
	int err;

	sluice__clear_err();
	if (ifindex <= 0) {
		sluice__set_err("fwd_devs: ifindex %d is not a device", ifindex);
		return -EINVAL;
	}
	if (on) {
		err = bpf_map_update_elem(s->fds[SLUICE_MAP_FWD_DEVS], &key, &val, BPF_ANY);
		return err ? maps__err(err, "fwd_devs", "update", "of an egress device") : 0;
	}
	err = bpf_map_delete_elem(s->fds[SLUICE_MAP_FWD_DEVS], &key);
	if (err && errno != ENOENT)
		return maps__err(err, "fwd_devs", "delete", "of an egress device");
	return 0;
}

int sluice__fwd_dev_has(struct sluice *s, int ifindex)
{
	__u32 key = (__u32)ifindex, val;

	sluice__clear_err();
	if (!bpf_map_lookup_elem(s->fds[SLUICE_MAP_FWD_DEVS], &key, &val))
		return 1;
	if (errno == ENOENT)
		return 0;
	return maps__err(-errno, "fwd_devs", "lookup", "of an egress device");
}

int sluice__fwd_dev_count(struct sluice *s)
{
	__u32 key, next;
	int n = 0, fd = s->fds[SLUICE_MAP_FWD_DEVS];

	sluice__clear_err();
	for (int err = bpf_map_get_next_key(fd, NULL, &next); !err && n < SLUICE_FWD_DEVS_MAX;
	     err = bpf_map_get_next_key(fd, &key, &next)) {
		key = next;
		n++;
	}
	return n;
}
