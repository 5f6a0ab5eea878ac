// SPDX-License-Identifier: MIT
/*
 * kmem.c - the kernel memory the datapath's maps hold (#16), as bpftool
 * reports it: the "memlock" of each map's fdinfo, which counts every
 * possible CPU's copy of a per-CPU value (6.4+ computes it per map type;
 * older kernels estimate it from the map's shape).
 *
 * Contract: sluice__kernel_memory() sums the maps of the handle's object
 * and every per-service Maglev table named in maglev_ids (read in batches,
 * never through the array-of-maps). Tables are sized by need (#16): each
 * is counted at the memlock of the first table of its size; sizes come
 * from the handle's index where it knows the table, else from the
 * table's info (once: then remembered). Costs a batched read of
 * maglev_ids, one fdinfo read per map of the object and per table size.
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

/* Distinct table sizes: the rule's 64 and SLUICE_MAGLEV_M. */
#define KMEM_SIZES (SLUICE_MAGLEV_PAGES_MAX + 1)

struct kmem_ctx {
	struct sluice *s;
	struct sluice_kmem *out;
	__u32 m[KMEM_SIZES]; /* a table size seen, and the memlock of its first table */
	__u64 bytes[KMEM_SIZES];
	__u32 nsizes;
};

/* Tables of one size have one shape, so the first one's memlock stands
 * for each: opening 30k map ids to read their fdinfo took 1.3 s, too long
 * for meshd's loop. A table the index does not know costs an open and an
 * info read once (then its size is remembered). */
static int kmem__table(const void *key, const void *value, void *ctx)
{
	__u32 id = *(const __u32 *)value, svc_id = *(const __u32 *)key, m = 0, i;
	struct kmem_ctx *c = ctx;
	int fd = -1;

	if (!id || svc_id >= SLUICE_MAX_SERVICES)
		return 0;
	if (c->s->mg_ids && !c->s->mg_ids[svc_id])
		c->s->mg_ids[svc_id] = id; /* what svc_table.c caches from maglev_ids too */
	if (c->s->mg_ids && c->s->mg_m && c->s->mg_ids[svc_id] == id)
		m = c->s->mg_m[svc_id];
	if (!m) {
		fd = bpf_map_get_fd_by_id(id);
		if (fd < 0)
			return 0; /* freed since: not held any more */
		if (svc__table_info(fd, &m)) {
			close(fd);
			return 0;
		}
		if (c->s->mg_ids && c->s->mg_ids[svc_id] == id)
			svc__table_note_m(c->s, svc_id, m);
	}
	for (i = 0; i < c->nsizes && c->m[i] != m; i++)
		;
	if (i == c->nsizes && i < KMEM_SIZES) {
		if (fd < 0)
			fd = bpf_map_get_fd_by_id(id);
		c->m[i] = m;
		c->bytes[i] = fd >= 0 ? kmem__memlock(fd) : 0;
		c->nsizes++;
	}
	if (fd >= 0)
		close(fd);
	c->out->maglev_tables++;
	c->out->maglev_bytes += i < KMEM_SIZES ? c->bytes[i] : 0;
	return 0;
}

int sluice__kernel_memory(struct sluice *s, struct sluice_kmem *out)
{
	struct kmem_ctx c = { .s = s, .out = out };
	struct bpf_map *map;
	int err;

	sluice__clear_err();
	memset(out, 0, sizeof(*out));
	if (!s->mg_ids) /* the index svc_table.c fills on need; NULL: no cache */
		s->mg_ids = calloc(SLUICE_MAX_SERVICES, sizeof(*s->mg_ids));
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
