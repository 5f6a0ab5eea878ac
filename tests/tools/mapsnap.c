// SPDX-License-Identifier: MIT
/*
 * mapsnap - a comparable text snapshot of the pinned service maps, for the
 * e2e tests that prove a refused update left every map as it was.
 *
 * Usage: mapsnap PIN_DIR OUT [VIP:PORT/PROTO ...]
 *
 * Writes every services and backends entry as "key-hex => value-hex",
 * sorted, the service ids that have a Maglev table, and for each named
 * service its whole table. bpftool's JSON dump of 327k backends takes tens
 * of seconds to print and parse; this reads the maps with batch lookups.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "desired.h"
#include "sluice.h"

struct snap {
	char **lines;
	size_t n, cap;
};

static int snap_add(struct snap *s, const void *key, size_t ks, const void *val, size_t vs)
{
	char *line, *p;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		char **l = realloc(s->lines, cap * sizeof(*l));

		if (!l)
			return -ENOMEM;
		s->lines = l;
		s->cap = cap;
	}
	line = malloc(2 * (ks + vs) + 8);
	if (!line)
		return -ENOMEM;
	p = line;
	for (size_t i = 0; i < ks; i++)
		p += sprintf(p, "%02x", ((const unsigned char *)key)[i]);
	p += sprintf(p, " => ");
	for (size_t i = 0; i < vs; i++)
		p += sprintf(p, "%02x", ((const unsigned char *)val)[i]);
	s->lines[s->n++] = line;
	return 0;
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every entry of a hash or array map, through get_next_key + lookup. */
static int snap_map(int fd, struct snap *s)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	unsigned char key[64], next[64], val[256];
	void *prev = NULL;
	int err;

	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err)
		return err;
	if (info.key_size > sizeof(key) || info.value_size > sizeof(val))
		return -E2BIG;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, info.key_size);
		prev = key;
		if (bpf_map_lookup_elem(fd, key, val))
			continue; /* deleted meanwhile */
		err = snap_add(s, key, info.key_size, val, info.value_size);
		if (err)
			return err;
	}
	return 0;
}

static void snap_print(FILE *f, const char *title, struct snap *s)
{
	qsort(s->lines, s->n, sizeof(*s->lines), cmp_line);
	fprintf(f, "## %s %zu\n", title, s->n);
	for (size_t i = 0; i < s->n; i++) {
		fprintf(f, "%s\n", s->lines[i]);
		free(s->lines[i]);
	}
	free(s->lines);
	memset(s, 0, sizeof(*s));
}

static int open_pin(const char *dir, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		fprintf(stderr, "Error: %s: %s\n", path, strerror(errno));
	return fd;
}

/* The named service's whole Maglev table, or why there is none. */
static void snap_table(FILE *f, int svc_fd, int maglev_fd, const char *ref)
{
	struct sluice_svc_key key = {};
	struct sluice_svc svc;
	struct sluice_addr vip;
	__u32 inner_id;
	int ifd;

	fprintf(f, "## maglev %s\n", ref);
	if (desired__parse_svc_ref(ref, &vip, &key.port, &key.proto)) {
		fprintf(f, "bad reference\n");
		return;
	}
	memcpy(key.addr, vip.addr, sizeof(key.addr));
	key.family = vip.family;
	key.port = htons(key.port);
	if (bpf_map_lookup_elem(svc_fd, &key, &svc) ||
	    bpf_map_lookup_elem(maglev_fd, &svc.svc_id, &inner_id)) {
		fprintf(f, "no service or no table\n");
		return;
	}
	ifd = bpf_map_get_fd_by_id(inner_id);
	if (ifd < 0) {
		fprintf(f, "table %u: %s\n", inner_id, strerror(errno));
		return;
	}
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(ifd, &info, &len)) {
		fprintf(f, "table %u: no info: %s\n", inner_id, strerror(errno));
		close(ifd);
		return;
	}
	fprintf(f, "elements %u\n", info.max_entries); /* the size is part of the table */
	for (__u32 i = 0; i < info.max_entries; i++) {
		struct sluice_maglev_pair pair;

		if (bpf_map_lookup_elem(ifd, &i, &pair))
			fprintf(f, "%u: lookup failed\n", i);
		else
			fprintf(f, "%u %u\n", pair.id[0], pair.id[1]);
	}
	close(ifd);
}

int main(int argc, char **argv)
{
	struct snap s = {};
	int svc_fd, be_fd, mg_fd, err;
	__u32 id, next, *prev = NULL, inner;
	FILE *f;

	if (argc < 3) {
		fprintf(stderr, "Usage: mapsnap PIN_DIR OUT [VIP:PORT/PROTO ...]\n");
		return 2;
	}
	svc_fd = open_pin(argv[1], "services");
	be_fd = open_pin(argv[1], "backends");
	mg_fd = open_pin(argv[1], "maglev");
	if (svc_fd < 0 || be_fd < 0 || mg_fd < 0)
		return 1;
	f = fopen(argv[2], "w");
	if (!f) {
		fprintf(stderr, "Error: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	err = snap_map(svc_fd, &s);
	snap_print(f, "services", &s);
	err = err ?: snap_map(be_fd, &s);
	snap_print(f, "backends", &s);
	fprintf(f, "## maglev service ids\n");
	/* an array of maps: ids without a table do not look up */
	while (!err && !bpf_map_get_next_key(mg_fd, prev, &next)) {
		id = next;
		prev = &id;
		if (!bpf_map_lookup_elem(mg_fd, &id, &inner))
			fprintf(f, "%u\n", id);
	}
	for (int i = 3; !err && i < argc; i++)
		snap_table(f, svc_fd, mg_fd, argv[i]);
	if (fclose(f) || err) {
		fprintf(stderr, "Error: snapshot of %s failed: %s\n", argv[1],
			strerror(err < 0 ? -err : errno));
		return 1;
	}
	return 0;
}
