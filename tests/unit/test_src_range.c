// SPDX-License-Identifier: MIT
/*
 * test_src_range.c - source ranges (#13) outside the packet path: the
 * CIDR parser; "sourceRanges" in the desired state (valid forms, every
 * rejection naming its path, hostile input such as 10k ranges or
 * garbage, JSON round trip, copy and compare); the service writer
 * against the real datapath object (run as root): entries and flag
 * written together, replaced without a gap, removed with the service, and
 * a rejected update leaving the trie and the service entry as they were;
 * and Kubernetes' loadBalancerSourceRanges on load-balancer addresses.
 */
#define _GNU_SOURCE /* vasprintf */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "desired.h"
#include "internal.h"
#include "k8s.h"
#include "k8s_internal.h"
#include "lb_load.h"
#include "test.h"

/* --- CIDR text --- */

static void test_cidr_parse(void)
{
	static const struct {
		const char *text;
		int rc;
		const char *canon, *err;
	} cases[] = {
		{ "10.0.0.0/8", 0, "10.0.0.0/8", NULL },
		{ "10.1.2.3/8", 1, "10.0.0.0/8", NULL },
		{ "0.0.0.0/0", 0, "0.0.0.0/0", NULL },
		{ "1.2.3.4/0", 1, "0.0.0.0/0", NULL },
		{ "10.0.0.1/32", 0, "10.0.0.1/32", NULL },
		{ "fd00::/64", 0, "fd00::/64", NULL },
		{ "fd00::1:2/112", 1, "fd00::1:0/112", NULL },
		{ "::/0", 0, "::/0", NULL },
		{ "fd00::1/128", 0, "fd00::1/128", NULL },
		{ "10.0.0.0/33", -EINVAL, NULL, "prefix out of range 0-32" },
		{ "fd00::/129", -EINVAL, NULL, "prefix out of range 0-128" },
		{ "10.0.0.0", -EINVAL, NULL, "not ADDRESS/PREFIX" },
		{ "10.0.0.0/", -EINVAL, NULL, "is not a number" },
		{ "10.0.0.0/08", -EINVAL, NULL, "is not a number" },
		{ "10.0.0.0/-1", -EINVAL, NULL, "is not a number" },
		{ "10.0.0.0/8 ", -EINVAL, NULL, "is not a number" },
		{ "10.0.0.0/1000", -EINVAL, NULL, "is not a number" },
		{ "banana/8", -EINVAL, NULL, "is not an IPv4 or IPv6 address" },
		{ "", -EINVAL, NULL, "empty" },
	};
	char buf[SLUICE_CIDR_STRLEN];
	struct sluice_cidr c;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc = sluice_cidr__parse(&c, cases[i].text);

		ASSERT_EQ(rc, cases[i].rc, cases[i].text);
		if (rc >= 0) {
			ASSERT_TRUE(!strcmp(sluice_cidr__str(&c, buf, sizeof(buf)), cases[i].canon),
				    cases[i].text);
			ASSERT_TRUE(sluice_cidr__valid(&c), "valid after parsing");
		} else if (!ASSERT_TRUE(strstr(sluice__errmsg(), cases[i].err) != NULL,
					cases[i].text)) {
			fprintf(stderr, "    got: %s\n", sluice__errmsg());
		}
	}
}

/* --- the desired state --- */

static int parse(struct desired *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int parse(struct desired *d, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;
	int n, err;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	err = desired__from_string(d, text, (size_t)n);
	free(text);
	return err;
}

#define SVC4 "{\"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"tcp\""
#define SVC6 "{\"vip\": \"fd00::10\", \"port\": 80, \"protocol\": \"tcp\""

static void test_desired_valid(void)
{
	struct json_object *j;
	struct desired d, d2;
	char buf[SLUICE_CIDR_STRLEN];

	if (!ASSERT_OK(parse(&d, "{\"services\": [" SVC4 ", \"sourceRanges\": [\"10.0.0.0/8\", "
				 "\"192.168.1.0/24\"]}, " SVC6 ", \"sourceRanges\": "
				 "[\"fd00:1::/64\"]}, {\"vip\": \"10.96.0.11\", \"port\": 80, "
				 "\"protocol\": \"tcp\", \"sourceRanges\": []}]}"),
		       "parse")) {
		fprintf(stderr, "    %s\n", sluice__errmsg());
		return;
	}
	ASSERT_EQ(d.services[0].nsrc_ranges, 2, "two v4 ranges");
	ASSERT_TRUE(!strcmp(sluice_cidr__str(&d.services[0].src_ranges[1], buf, sizeof(buf)),
			    "192.168.1.0/24"),
		    "order kept");
	ASSERT_EQ(d.services[1].nsrc_ranges, 1, "one v6 range");
	ASSERT_EQ(d.services[2].nsrc_ranges, 0, "[] is none");
	/* JSON round trip: written as given, none when there are none */
	j = desired__service_to_json(&d.services[0]);
	ASSERT_TRUE(j && !strcmp(json_object_to_json_string_ext(
					 json_object_object_get(j, "sourceRanges"),
					 JSON_C_TO_STRING_PLAIN),
				 "[\"10.0.0.0\\/8\",\"192.168.1.0\\/24\"]"),
		    "to_json");
	json_object_put(j);
	j = desired__service_to_json(&d.services[2]);
	ASSERT_FALSE(json_object_object_get_ex(j, "sourceRanges", NULL), "none: no field");
	json_object_put(j);
	/* deep copy, compared as sets */
	if (ASSERT_OK(desired__copy(&d2, &d), "copy")) {
		ASSERT_TRUE(d2.services[0].src_ranges != d.services[0].src_ranges, "deep");
		ASSERT_TRUE(desired__src_ranges_eq(&d.services[0], &d2.services[0]), "equal");
		d2.services[0].src_ranges[0] = d.services[0].src_ranges[1];
		d2.services[0].src_ranges[1] = d.services[0].src_ranges[0];
		ASSERT_TRUE(desired__src_ranges_eq(&d.services[0], &d2.services[0]),
			    "order does not matter");
		d2.services[0].src_ranges[1].prefixlen = 25;
		d2.services[0].src_ranges[1].addr.addr[0] = htonl(0xc0a80100);
		ASSERT_FALSE(desired__src_ranges_eq(&d.services[0], &d2.services[0]),
			     "a different prefix differs");
		ASSERT_OK(desired__validate(&d2), "the changed copy is still valid");
		desired__free(&d2);
	}
	desired__free(&d);
}

static void test_desired_rejects(void)
{
	static const struct {
		const char *svc, *err;
	} cases[] = {
		{ SVC4 ", \"sourceRanges\": [\"10.0.0.0/8\", \"10.0.0.0/33\"]}",
		  "services[0].sourceRanges[1]: \"10.0.0.0/33\": prefix out of range 0-32" },
		{ SVC4 ", \"sourceRanges\": [\"10.0.0.1/8\"]}",
		  "services[0].sourceRanges[0]: \"10.0.0.1/8\" has host bits set (the range is "
		  "10.0.0.0/8)" },
		{ SVC4 ", \"sourceRanges\": [\"fd00::/64\"]}",
		  "services[0].sourceRanges[0]: \"fd00::/64\" is IPv6 but the VIP 10.96.0.10 is "
		  "IPv4" },
		{ SVC6 ", \"sourceRanges\": [\"10.0.0.0/8\"]}",
		  "services[0].sourceRanges[0]: \"10.0.0.0/8\" is IPv4 but the VIP fd00::10 is "
		  "IPv6" },
		{ SVC4 ", \"sourceRanges\": [\"10.0.0.0/8\", \"10.0.0.0/8\"]}",
		  "services[0].sourceRanges[1]: \"10.0.0.0/8\" is a duplicate of sourceRanges[0]" },
		{ SVC4 ", \"sourceRanges\": \"10.0.0.0/8\"}",
		  "services[0].sourceRanges: expected a list of CIDRs" },
		{ SVC4 ", \"sourceRanges\": [8]}", "services[0].sourceRanges[0]: " },
		{ SVC4 ", \"sourceRanges\": [\"\"]}", "services[0].sourceRanges[0]: " },
		{ SVC4 ", \"sourceRanges\": [\"10.0.0.0/8\\u0000x\"]}",
		  "services[0].sourceRanges[0]: " },
		{ SVC4 ", \"sourceRange\": [\"10.0.0.0/8\"]}", "sourceRange" },
	};
	struct desired d;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int err = parse(&d, "{\"services\": [%s]}", cases[i].svc);

		ASSERT_EQ(err, -EINVAL, cases[i].svc);
		if (!ASSERT_TRUE(strstr(sluice__errmsg(), cases[i].err) != NULL, cases[i].err))
			fprintf(stderr, "    got: %s\n", sluice__errmsg());
		ASSERT_EQ(d.nservices, 0, "left empty");
	}
}

/* 10k ranges, and 65: refused before anything is allocated for them. */
static void test_desired_hostile_count(void)
{
	size_t cap = 10000 * 24 + 256, len;
	char *text = malloc(cap);
	struct desired d;

	if (!ASSERT_TRUE(text != NULL, "malloc"))
		return;
	for (int n = 0; n < 2; n++) {
		int count = n ? 10000 : SLUICE_SRC_RANGES_PER_SVC + 1;

		len = (size_t)snprintf(text, cap, "{\"services\": [" SVC4 ", \"sourceRanges\": [");
		for (int i = 0; i < count; i++)
			len += (size_t)snprintf(text + len, cap - len, "%s\"10.%d.%d.0/24\"",
						i ? "," : "", i / 256, i % 256);
		len += (size_t)snprintf(text + len, cap - len, "]}]}");
		ASSERT_EQ(desired__from_string(&d, text, len), -EINVAL, "too many");
		ASSERT_TRUE(strstr(sluice__errmsg(), "services[0].sourceRanges: ") &&
				    strstr(sluice__errmsg(), "ranges exceed the limit of 64 per "
							     "service"),
			    sluice__errmsg());
	}
	/* exactly the bound is fine */
	len = (size_t)snprintf(text, cap, "{\"services\": [" SVC4 ", \"sourceRanges\": [");
	for (int i = 0; i < SLUICE_SRC_RANGES_PER_SVC; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s\"10.0.%d.0/24\"", i ? "," : "",
					i);
	len += (size_t)snprintf(text + len, cap - len, "]}]}");
	if (ASSERT_OK(desired__from_string(&d, text, len), "64 ranges"))
		ASSERT_EQ(d.services[0].nsrc_ranges, SLUICE_SRC_RANGES_PER_SVC, "all kept");
	desired__free(&d);
	free(text);
}

/* --- the service writer (root) --- */

static struct sluice *lib__open(void)
{
	struct sluice_opts opts = {};
	struct sluice *s = NULL;
	int err;

	err = sluice__open(&s, &opts);
	if (!ASSERT_OK(err, "sluice__open"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	return err ? NULL : s;
}

struct ranges_of {
	__u32 svc_id, n, other;
};

static int count_entry(const void *key, const void *value, void *ctx)
{
	const struct sluice_src_range_key *k = key;
	struct ranges_of *r = ctx;

	(void)value;
	if (k->svc_id == r->svc_id)
		r->n++;
	else
		r->other++;
	return 0;
}

/* Entries of svc_id in the trie (and of anyone else in *other). */
static __u32 entries(struct sluice *s, __u32 svc_id, __u32 *other)
{
	struct ranges_of r = { .svc_id = svc_id };

	sluice__map_walk(sluice__map_fd(s, "src_ranges"), "src_ranges",
			 sizeof(struct sluice_src_range_key), sizeof(__u32), count_entry, &r);
	if (other)
		*other = r.other;
	return r.n;
}

static bool svc_entry(struct sluice *s, const struct sluice_service_spec *spec,
		      struct sluice_svc *out)
{
	struct sluice_svc_key k = { .port = htons(spec->port),
				    .proto = spec->proto,
				    .family = spec->vip.family };

	memcpy(k.addr, spec->vip.addr, sizeof(k.addr));
	return !bpf_map_lookup_elem(sluice__map_fd(s, "services"), &k, out);
}

static void cidrs(struct sluice_cidr *c, const char *const *text, __u32 n)
{
	for (__u32 i = 0; i < n; i++)
		ASSERT_TRUE(sluice_cidr__parse(&c[i], text[i]) == 0, text[i]);
}

static void test_writer(void)
{
	static const char *const first[] = { "10.0.0.0/8", "192.168.1.0/24" };
	static const char *const second[] = { "192.168.1.0/24", "172.16.0.0/12", "10.1.0.0/16" };
	struct sluice_backend_spec be = { .port = 8080, .weight = 1 };
	struct sluice_service_spec spec = {
		.port = 80, .proto = IPPROTO_TCP, .nbackends = 1, .backends = &be
	};
	struct sluice_cidr c1[2], c2[3], got[8];
	struct sluice *s = lib__open();
	struct sluice_svc svc;
	__u32 n = 0, other;

	if (!s)
		return;
	sluice_addr__parse(&spec.vip, "10.96.0.10");
	sluice_addr__parse(&be.addr, "10.1.0.1");
	cidrs(c1, first, 2);
	cidrs(c2, second, 3);

	spec.nsrc_ranges = 2;
	spec.src_ranges = c1;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set with 2 ranges"))
		goto out;
	ASSERT_TRUE(svc_entry(s, &spec, &svc) && (svc.flags & SLUICE_SVC_F_SOURCE_RANGES),
		    "flag set");
	ASSERT_EQ(entries(s, svc.svc_id, &other), 2, "two entries");
	ASSERT_OK(sluice__service_src_ranges(s, svc.svc_id, SLUICE_AF_INET, got, 8, &n),
		  "read back");
	ASSERT_EQ(n, 2, "read back two");

	/* the maps read back as a desired state carry the ranges */
	{
		struct desired back;

		if (ASSERT_OK(desired__from_maps(s, &back), "from_maps")) {
			struct desired_service want = { .nsrc_ranges = 2, .src_ranges = c1 };

			ASSERT_EQ(back.nservices, 1, "one service");
			ASSERT_TRUE(back.nservices == 1 &&
					    desired__src_ranges_eq(&back.services[0], &want),
				    "ranges read back");
			desired__free(&back);
		}
	}

	/* replaced: one kept, two new, one gone */
	spec.nsrc_ranges = 3;
	spec.src_ranges = c2;
	ASSERT_OK(sluice__service_set(s, &spec), "set with 3 other ranges");
	ASSERT_EQ(entries(s, svc.svc_id, &other), 3, "three entries, the stale one deleted");
	ASSERT_EQ(other, 0, "nothing else");

	/* the same again writes nothing new */
	ASSERT_OK(sluice__service_set(s, &spec), "set unchanged");
	ASSERT_EQ(entries(s, svc.svc_id, NULL), 3, "still three");

	/* none: flag off, entries gone */
	spec.nsrc_ranges = 0;
	ASSERT_OK(sluice__service_set(s, &spec), "set without ranges");
	ASSERT_TRUE(svc_entry(s, &spec, &svc) && !(svc.flags & SLUICE_SVC_F_SOURCE_RANGES),
		    "flag cleared");
	ASSERT_EQ(entries(s, svc.svc_id, &other), 0, "entries deleted");

	/* deleting the service forgets its entries */
	spec.nsrc_ranges = 2;
	spec.src_ranges = c1;
	ASSERT_OK(sluice__service_set(s, &spec), "ranges again");
	ASSERT_OK(sluice__service_del(s, &spec.vip, spec.port, spec.proto), "del");
	ASSERT_EQ(entries(s, svc.svc_id, &other), 0, "gone with the service");
	ASSERT_EQ(other, 0, "nothing else");
out:
	sluice__close(s);
}

static void test_writer_validation(void)
{
	static const char *const v6[] = { "fd00::/64" };
	struct sluice_service_spec spec = { .port = 80, .proto = IPPROTO_TCP };
	struct sluice_cidr c[SLUICE_SRC_RANGES_PER_SVC + 1] = {};
	struct sluice *s = lib__open();

	if (!s)
		return;
	sluice_addr__parse(&spec.vip, "10.96.0.10");
	cidrs(c, v6, 1);
	spec.nsrc_ranges = 1;
	spec.src_ranges = c;
	ASSERT_EQ(sluice__service_set(s, &spec), -EINVAL, "v6 range on a v4 VIP");
	ASSERT_TRUE(strstr(sluice__errmsg(), "not of the VIP's family") != NULL, "named");
	sluice_cidr__parse(&c[0], "10.0.0.0/8");
	c[0].addr.addr[0] = htonl(0x0a000001); /* host bits behind the parser's back */
	ASSERT_EQ(sluice__service_set(s, &spec), -EINVAL, "host bits");
	spec.nsrc_ranges = SLUICE_SRC_RANGES_PER_SVC + 1;
	ASSERT_EQ(sluice__service_set(s, &spec), -EINVAL, "65 ranges");
	ASSERT_EQ(entries(s, 1, NULL), 0, "nothing written");
	sluice__close(s);
}

/* The trie full but for one slot: an update adding two ranges fails on
 * the second, and every map is as before it (old ranges, old flag). */
static void test_writer_rollback(void)
{
	static const char *const before[] = { "10.0.0.0/8" };
	static const char *const after[] = { "10.0.0.0/8", "11.0.0.0/8", "12.0.0.0/8" };
	struct sluice_backend_spec be = { .port = 8080, .weight = 1 };
	struct sluice_service_spec spec = {
		.port = 80, .proto = IPPROTO_TCP, .nbackends = 1, .backends = &be
	};
	struct sluice_cidr cb[1], ca[3];
	struct sluice *s = lib__open();
	struct sluice_svc svc, svc2;
	struct sluice_src_range_key k = { .prefixlen = 64, .svc_id = 30000 };
	__u32 one = 1, filler = 0, other;
	int fd, err;

	if (!s)
		return;
	fd = sluice__map_fd(s, "src_ranges");
	sluice_addr__parse(&spec.vip, "10.96.0.10");
	sluice_addr__parse(&be.addr, "10.1.0.1");
	cidrs(cb, before, 1);
	cidrs(ca, after, 3);
	spec.nsrc_ranges = 1;
	spec.src_ranges = cb;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set with one range"))
		goto out;
	svc_entry(s, &spec, &svc);
	/* fill up to one free slot with entries of a service id nobody has */
	for (__u32 i = 0; i < SLUICE_SRC_RANGES_MAX - 2; i++) {
		k.addr[0] = htonl(0x64000000 + i);
		if (bpf_map_update_elem(fd, &k, &one, BPF_NOEXIST))
			break;
		filler++;
	}
	ASSERT_EQ(filler, SLUICE_SRC_RANGES_MAX - 2, "filled");
	spec.nsrc_ranges = 3;
	spec.src_ranges = ca;
	err = sluice__service_set(s, &spec);
	ASSERT_TRUE(err == -ENOSPC || err == -E2BIG, "the third range does not fit");
	ASSERT_TRUE(strstr(sluice__errmsg(), "src_ranges map: insert of source range") != NULL,
		    sluice__errmsg());
	ASSERT_EQ(entries(s, svc.svc_id, &other), 1, "only the old range");
	ASSERT_EQ(other, filler, "the filler untouched");
	ASSERT_TRUE(svc_entry(s, &spec, &svc2) && !memcmp(&svc, &svc2, sizeof(svc)),
		    "service entry as before");
out:
	sluice__close(s);
}

/* --- Kubernetes --- */

static struct k8s_objs *svcs, *slices;
static char warnings[8192];

static void on_warn(const char *msg, void *ctx)
{
	size_t len = strlen(warnings);

	(void)ctx;
	snprintf(warnings + len, sizeof(warnings) - len, "%s\n", msg);
}

static void k8s_setup(void)
{
	k8s_objs__free(svcs);
	k8s_objs__free(slices);
	svcs = k8s_objs__new(K8S_SERVICES);
	slices = k8s_objs__new(K8S_SLICES);
	warnings[0] = '\0';
}

static int put_json(struct k8s_objs *o, const char *text)
{
	char *buf = strdup(text);
	struct json_object *obj;
	int err;

	if (!buf)
		return -ENOMEM;
	for (char *p = buf; *p; p++)
		if (*p == '\'')
			*p = '"';
	obj = json_tokener_parse(buf);
	free(buf);
	if (!obj) {
		TEST_FAIL("inline JSON does not parse: %s", text);
		return -EINVAL;
	}
	err = k8s_objs__put_json(o, obj);
	json_object_put(obj);
	return err;
}

/* A dual-stack LoadBalancer Service "lb" with the given ranges text. */
static int lb_service(const char *ranges)
{
	char text[4096 * 8];

	snprintf(text, sizeof(text),
		 "{'metadata': {'name': 'lb', 'namespace': 'ns'}, 'spec': {'type': "
		 "'LoadBalancer', 'clusterIP': '10.96.5.1', 'externalIPs': ['10.96.5.2'], "
		 "'ports': [{'port': 80}], 'loadBalancerSourceRanges': %s}, 'status': "
		 "{'loadBalancer': {'ingress': [{'ip': '203.0.113.5'}, {'ip': "
		 "'2001:db8::5'}]}}}",
		 ranges);
	return put_json(svcs, text) ?:
		       put_json(slices, "{'metadata': {'name': 'lb-4', 'namespace': 'ns', "
					"'labels': {'kubernetes.io/service-name': 'lb'}}, "
					"'addressType': 'IPv4', 'ports': [{'port': 80}], "
					"'endpoints': [{'addresses': ['10.9.7.1']}]}") ?:
		       put_json(slices, "{'metadata': {'name': 'lb-6', 'namespace': 'ns', "
					"'labels': {'kubernetes.io/service-name': 'lb'}}, "
					"'addressType': 'IPv6', 'ports': [{'port': 80}], "
					"'endpoints': [{'addresses': ['fd00::9:7:1']}]}");
}

static const struct desired_service *k8s_find(const struct desired *d, const char *vip)
{
	struct sluice_addr a;

	if (sluice_addr__parse(&a, vip))
		return NULL;
	return desired__find(d, &a, 80, IPPROTO_TCP);
}

static bool has_range(const struct desired_service *s, const char *text)
{
	char buf[SLUICE_CIDR_STRLEN];

	for (__u32 i = 0; s && i < s->nsrc_ranges; i++)
		if (!strcmp(sluice_cidr__str(&s->src_ranges[i], buf, sizeof(buf)), text))
			return true;
	return false;
}

static int k8s_xlate(struct desired *d)
{
	struct k8s_xlate_opts o = { .warn = on_warn };
	int err;

	desired__init(d);
	err = k8s__translate(svcs, slices, &o, d);
	if (!err)
		err = desired__validate(d);
	if (err)
		TEST_FAIL("translate/validate: %s", sluice__errmsg());
	return err;
}

static void test_k8s_lb_ranges(void)
{
	const struct desired_service *lb4, *lb6, *cip, *ext;
	struct desired d, d2;

	k8s_setup();
	if (!ASSERT_OK(lb_service("[' 10.1.2.3/8 ', '192.168.0.0/16', '10.0.0.0/8', "
				  "'2001:db8:1::/48', 'nonsense']"),
		       "objects"))
		return;
	if (k8s_xlate(&d))
		return;
	lb4 = k8s_find(&d, "203.0.113.5");
	lb6 = k8s_find(&d, "2001:db8::5");
	cip = k8s_find(&d, "10.96.5.1");
	ext = k8s_find(&d, "10.96.5.2");
	ASSERT_EQ(lb4 ? lb4->nsrc_ranges : 99, 2, "IPv4 LB: masked, deduplicated");
	ASSERT_TRUE(has_range(lb4, "10.0.0.0/8") && has_range(lb4, "192.168.0.0/16"), "v4 set");
	ASSERT_EQ(lb6 ? lb6->nsrc_ranges : 99, 1, "IPv6 LB: its family only");
	ASSERT_TRUE(has_range(lb6, "2001:db8:1::/48"), "v6 set");
	ASSERT_EQ(cip ? cip->nsrc_ranges : 99, 0, "cluster IP: no ranges");
	ASSERT_EQ(ext ? ext->nsrc_ranges : 99, 0, "external IP: no ranges (as kube-proxy)");
	if (ASSERT_OK(desired__copy(&d2, &d), "copy")) {
		ASSERT_TRUE(k8s__desired_equal(&d, &d2), "equal copies");
		for (__u32 i = 0; i < d2.nservices; i++)
			if (d2.services[i].nsrc_ranges)
				d2.services[i].src_ranges[0].prefixlen = 9;
		ASSERT_FALSE(k8s__desired_equal(&d, &d2), "a range change is a change");
		desired__free(&d2);
	}
	desired__free(&d);
	/* the bad one is noted on the Service, the rest still apply */
	ASSERT_TRUE(svcs != NULL, "store");
}

/* Over 64 of a family: the first 64 are enforced, a warning names the
 * Service; the other family is untouched. */
static void test_k8s_lb_ranges_bound(void)
{
	char ranges[4096 * 8];
	const struct desired_service *lb4, *lb6;
	size_t len = 0;
	struct desired d;

	k8s_setup();
	len += (size_t)snprintf(ranges + len, sizeof(ranges) - len, "['2001:db8::/32'");
	for (int i = 0; i < 70; i++)
		len += (size_t)snprintf(ranges + len, sizeof(ranges) - len, ", '10.%d.0.0/16'", i);
	snprintf(ranges + len, sizeof(ranges) - len, "]");
	if (!ASSERT_OK(lb_service(ranges), "objects") || k8s_xlate(&d))
		return;
	lb4 = k8s_find(&d, "203.0.113.5");
	lb6 = k8s_find(&d, "2001:db8::5");
	ASSERT_EQ(lb4 ? lb4->nsrc_ranges : 0, SLUICE_SRC_RANGES_PER_SVC, "first 64");
	ASSERT_TRUE(has_range(lb4, "10.63.0.0/16") && !has_range(lb4, "10.64.0.0/16"), "in order");
	ASSERT_EQ(lb6 ? lb6->nsrc_ranges : 0, 1, "v6 unaffected");
	if (!ASSERT_TRUE(strstr(warnings, "Service ns/lb: 70 loadBalancerSourceRanges of IPv4, "
					  "only the first 64 are enforced on 203.0.113.5") != NULL,
			 "warning"))
		fprintf(stderr, "    warnings: %s\n", warnings);
	desired__free(&d);
}

static const struct test tests[] = {
	TEST(test_cidr_parse),
	TEST(test_desired_valid),
	TEST(test_desired_rejects),
	TEST(test_desired_hostile_count),
	TEST(test_writer),
	TEST(test_writer_validation),
	TEST(test_writer_rollback),
	TEST(test_k8s_lb_ranges),
	TEST(test_k8s_lb_ranges_bound),
};

int main(int argc, char **argv)
{
	/* no program attached or run; src_ranges filled to its production
	 * size, so the maps keep theirs (lb_load.h) */
	test__lb_load = TEST_LB_NO_PROGS;
	int rc = test__run_all("src_range", tests, ARRAY_SIZE(tests), argc, argv);

	k8s_objs__free(svcs);
	k8s_objs__free(slices);
	return rc;
}
