// SPDX-License-Identifier: MIT
/*
 * test_kmem.c - sluice__kernel_memory() (#16) against bpftool's own
 * figures (run as root): with 5 services programmed, the tables counted
 * are the 5 in maglev_ids, and every byte equals the sum of bpftool's
 * bytes_memlock over the same map ids (the object's maps and the tables);
 * a deleted service's table leaves the count.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "lb_load.h"
#include "sluice.h"
#include "test.h"

#define NSVC 5

static struct sluice_service_spec spec_of(__u32 i, struct sluice_backend_spec *b)
{
	struct sluice_service_spec spec = { .port = 80, .proto = IPPROTO_TCP, .nbackends = 3 };

	spec.vip.family = SLUICE_AF_INET;
	spec.vip.addr[0] = htonl(0x0a600000 + i + 1);
	spec.backends = b;
	for (__u32 j = 0; j < 3; j++) {
		memset(&b[j], 0, sizeof(b[j]));
		b[j].addr.family = SLUICE_AF_INET;
		b[j].addr.addr[0] = htonl(0x0a010000 + i * 16 + j + 1);
		b[j].port = 8080;
		b[j].weight = 1;
	}
	return spec;
}

/* bytes_memlock of every map bpftool lists, by id (json array of maps). */
static struct json_object *bpftool_maps(void)
{
	FILE *p = popen("bpftool map show -j 2>/dev/null", "r");
	struct json_object *o;
	size_t len = 0, cap = 1 << 20;
	char *buf = malloc(cap);

	if (!p || !buf) {
		if (p)
			pclose(p);
		free(buf);
		return NULL;
	}
	for (size_t n; (n = fread(buf + len, 1, cap - len - 1, p)) > 0;) {
		len += n;
		if (len + 1 == cap) {
			char *grown = realloc(buf, cap * 2);

			if (!grown)
				break;
			buf = grown;
			cap *= 2;
		}
	}
	pclose(p);
	buf[len] = '\0';
	o = json_tokener_parse(buf);
	free(buf);
	return o;
}

static __u64 memlock_of(struct json_object *maps, __u32 id)
{
	for (size_t i = 0; i < json_object_array_length(maps); i++) {
		struct json_object *m = json_object_array_get_idx(maps, i), *v;

		if (json_object_object_get_ex(m, "id", &v) &&
		    (__u32)json_object_get_int64(v) == id &&
		    json_object_object_get_ex(m, "bytes_memlock", &v))
			return (__u64)json_object_get_int64(v);
	}
	return 0;
}

static __u32 id_of_fd(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

static void test_matches_bpftool(void)
{
	static const char *const names[] = { "services",  "backends",      "maglev",
					     "conntrack", "backend_stats", "maglev_ids" };
	struct sluice_backend_spec b[3];
	struct sluice_opts opts = {};
	struct sluice *s = NULL;
	struct json_object *maps = NULL;
	struct sluice_kmem k, after;
	__u64 want_tables = 0, seen = 0;
	int ids_fd;

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		return;
	for (__u32 i = 0; i < NSVC; i++) {
		struct sluice_service_spec spec = spec_of(i, b);

		ASSERT_OK(sluice__service_set(s, &spec), "service_set");
	}
	if (!ASSERT_OK(sluice__kernel_memory(s, &k), "kernel_memory"))
		goto out;
	maps = bpftool_maps();
	if (!ASSERT_TRUE(maps != NULL, "bpftool map show -j"))
		goto out;
	ASSERT_EQ(k.maglev_tables, NSVC, "one table per service");
	ids_fd = sluice__map_fd(s, "maglev_ids");
	for (__u32 svc = 0; svc < 64; svc++) {
		__u32 id = 0;

		if (!bpf_map_lookup_elem(ids_fd, &svc, &id) && id)
			want_tables += memlock_of(maps, id);
	}
	ASSERT_EQ(k.maglev_bytes, want_tables, "tables: bpftool's bytes_memlock");
	ASSERT_TRUE(k.maglev_bytes >= NSVC * (__u64)SLUICE_MAGLEV_M_MIN * 4,
		    "a table holds at least its slots");
	/* the object's named maps are in the total as bpftool counts them */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		__u64 m = memlock_of(maps, id_of_fd(sluice__map_fd(s, names[i])));

		ASSERT_TRUE(m > 0, names[i]);
		seen += m;
	}
	ASSERT_TRUE(k.bytes >= seen + k.maglev_bytes, "total holds the named maps and tables");
	ASSERT_TRUE(k.maps > NSVC + sizeof(names) / sizeof(names[0]), "maps counted");
	{
		struct sluice_service_spec spec = spec_of(0, b);

		ASSERT_OK(sluice__service_del(s, &spec.vip, spec.port, spec.proto), "delete");
	}
	sluice__flush_deferred(s);
	if (ASSERT_OK(sluice__kernel_memory(s, &after), "kernel_memory after delete")) {
		ASSERT_EQ(after.maglev_tables, NSVC - 1, "the deleted service's table left");
		ASSERT_EQ(after.maglev_bytes, k.maglev_bytes - k.maglev_bytes / NSVC,
			  "its table's bytes left");
		/* hash maps count their elements (6.4+): its backends left too */
		ASSERT_TRUE(after.bytes <= k.bytes - k.maglev_bytes / NSVC, "total went down");
	}
out:
	json_object_put(maps);
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_matches_bpftool),
};

int main(int argc, char **argv)
{
	if (!test__have_root("kmem", "loads BPF"))
		return 0;
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("kmem", tests, ARRAY_SIZE(tests), argc, argv);
}
