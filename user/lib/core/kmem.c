// SPDX-License-Identifier: MIT
/*
 * kmem.c - the kernel memory the datapath's maps hold (#16), as bpftool
 * reports it: the "memlock" of each map's fdinfo, which counts every
 * possible CPU's copy of a per-CPU value (6.4+ computes it per map type;
 * older kernels estimate it from the map's shape).
 *
 * Contract: sluice__kernel_memory() sums the maps of the handle's object
 * and every per-service Maglev table named in maglev_ids (read in batches,
 * never through the array-of-maps), each counted at the size of the
 * first (all tables have one shape). Costs a batched read of maglev_ids
 * and one fdinfo read per map of the object.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"
#include "lb.skel.h"

/* memlock of the map behind fd, from /proc/self/fdinfo; 0 when absent. */
static __u64 kmem__memlock(int fd)
{
	char path[64], buf[512];
	unsigned long long v = 0;
	ssize_t n;
	char *p;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return 0;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, "memlock:");
	if (p)
		sscanf(p + strlen("memlock:"), "%llu", &v);
	return v;
}

struct kmem_ctx {
	struct sluice_kmem *out;
	__u64 table_bytes; /* the first table's memlock: every table has one shape */
};

/* Every Maglev table has the same shape (SLUICE_MAGLEV_ELEMS slots, the
 * library's check before it adopts one), so one table's memlock stands
 * for each: opening 30k map ids to read their fdinfo took 1.3 s, too long
 * for meshd's loop. */
static int kmem__table(const void *key, const void *value, void *ctx)
{
	__u32 id = *(const __u32 *)value;
	struct kmem_ctx *c = ctx;
	int fd;

	(void)key;
	if (!id)
		return 0;
	if (!c->table_bytes) {
		fd = bpf_map_get_fd_by_id(id);
		if (fd < 0)
			return 0; /* freed since: not held any more */
		c->table_bytes = kmem__memlock(fd);
		close(fd);
	}
	c->out->maglev_tables++;
	c->out->maglev_bytes += c->table_bytes;
	return 0;
}

int sluice__kernel_memory(struct sluice *s, struct sluice_kmem *out)
{
	struct kmem_ctx c = { .out = out };
	struct bpf_map *map;
	int err;

	sluice__clear_err();
	memset(out, 0, sizeof(*out));
	bpf_object__for_each_map(map, s->skel->obj) {
		int fd = bpf_map__fd(map);

		if (fd < 0)
			continue;
		out->maps++;
		out->bytes += kmem__memlock(fd);
	}
	err = maps__for_range(s->fds[SLUICE_MAP_MAGLEV_IDS], "maglev_ids", 0, SLUICE_MAX_SERVICES,
			      sizeof(__u32), kmem__table, &c);
	if (err)
		return err;
	out->maps += out->maglev_tables;
	out->bytes += out->maglev_bytes;
	return 0;
}
