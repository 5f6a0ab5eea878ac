// SPDX-License-Identifier: MIT
/*
 * test_desired_snat.c - "snat" and "dropWhenEmpty" in the desired state
 * (#13): absent is off, booleans only (the refusal names path and value),
 * to_json writes them only when on and round-trips, a change of either
 * alone is an update, and apply/from_maps against real maps (needs root):
 * the service entry carries SLUICE_SVC_F_SNAT / _DROP_EMPTY, they go off
 * again, and an adopt reads them back. "snat": "node" (to the node's
 * SNAT address, SLUICE_SVC_F_SNAT_NODE): parsed, written back, a change
 * from true is an update, other strings refused, applied and read back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "desired.h"
#include "internal.h"
#include "lb_load.h"
#include "test.h"

#define SVC(extra)                                                                        \
	"{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"tcp\", " \
	"\"backends\": [{\"address\": \"10.0.1.2\", \"port\": 8080}]" extra "}]}"

static int parse(struct desired *d, const char *text)
{
	return desired__from_string(d, text, strlen(text));
}

static void test_parse(void)
{
	struct desired d;

	if (ASSERT_OK(parse(&d, SVC("")), sluice__errmsg())) {
		ASSERT_FALSE(d.services[0].snat, "absent: no snat");
		ASSERT_FALSE(d.services[0].drop_empty, "absent: refuse");
		desired__free(&d);
	}
	if (ASSERT_OK(parse(&d, SVC(", \"snat\": true, \"dropWhenEmpty\": true")),
		      sluice__errmsg())) {
		ASSERT_TRUE(d.services[0].snat, "snat");
		ASSERT_TRUE(d.services[0].drop_empty, "dropWhenEmpty");
		desired__free(&d);
	}
	if (ASSERT_OK(parse(&d, SVC(", \"snat\": false, \"dropWhenEmpty\": null")),
		      sluice__errmsg())) {
		ASSERT_FALSE(d.services[0].snat, "false");
		ASSERT_FALSE(d.services[0].drop_empty, "null");
		desired__free(&d);
	}
}

static void test_rejects(void)
{
	struct desired d;

	ASSERT_EQ(parse(&d, SVC(", \"snat\": \"yes\"")), -EINVAL, "string");
	ASSERT_TRUE(strstr(sluice__errmsg(), "services[0].snat") &&
			    strstr(sluice__errmsg(), "\"yes\""),
		    sluice__errmsg());
	ASSERT_EQ(parse(&d, SVC(", \"dropWhenEmpty\": 1")), -EINVAL, "number");
	ASSERT_TRUE(strstr(sluice__errmsg(), "services[0].dropWhenEmpty") != NULL,
		    sluice__errmsg());
	ASSERT_EQ(parse(&d, SVC(", \"dropWhenEmty\": true")), -EINVAL, "typo");
	ASSERT_TRUE(strstr(sluice__errmsg(), "dropWhenEmpty") != NULL, sluice__errmsg());
}

static void test_json(void)
{
	struct desired d, back;
	struct json_object *j;
	const char *text;

	if (!ASSERT_OK(parse(&d, SVC(", \"snat\": true")), sluice__errmsg()))
		return;
	j = desired__to_json(&d);
	text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	ASSERT_TRUE(strstr(text, "\"snat\":true") != NULL, text);
	ASSERT_TRUE(!strstr(text, "dropWhenEmpty"), "off is not written");
	if (ASSERT_OK(parse(&back, text), sluice__errmsg())) {
		ASSERT_TRUE(back.services[0].snat && !back.services[0].drop_empty, "round trip");
		desired__free(&back);
	}
	json_object_put(j);
	desired__free(&d);
}

static void count_change(enum desired_change change, const struct desired_service *o,
			 const struct desired_service *n, void *ctx)
{
	(void)o;
	(void)n;
	if (change == DESIRED_UPDATE)
		(*(int *)ctx)++;
}

static void test_diff(void)
{
	struct desired a, b, c;
	int updates = 0;

	if (!ASSERT_OK(parse(&a, SVC("")), "a") ||
	    !ASSERT_OK(parse(&b, SVC(", \"snat\": true")), "b") ||
	    !ASSERT_OK(parse(&c, SVC(", \"dropWhenEmpty\": true")), "c"))
		return;
	desired__diff(&a, &b, count_change, &updates);
	ASSERT_EQ(updates, 1, "snat on is an update");
	updates = 0;
	desired__diff(&a, &c, count_change, &updates);
	ASSERT_EQ(updates, 1, "dropWhenEmpty on is an update");
	updates = 0;
	desired__diff(&b, &b, count_change, &updates);
	ASSERT_EQ(updates, 0, "same: no change");
	desired__free(&a);
	desired__free(&b);
	desired__free(&c);
}

static bool svc_flags(struct sluice *s, __u16 *flags)
{
	struct sluice_service_info info;
	struct sluice_addr vip;

	sluice_addr__parse(&vip, "10.96.0.10");
	if (!ASSERT_OK(sluice__service_get(s, &vip, 80, IPPROTO_TCP, &info), sluice__errmsg()))
		return false;
	*flags = info.svc.flags;
	return true;
}

static void test_apply(void)
{
	struct sluice_opts opts = {};
	struct desired empty = {}, a, b, cur;
	struct sluice *s;
	__u16 f;

	if (!ASSERT_OK(sluice__open(&s, &opts), sluice__errmsg()))
		return;
	if (!ASSERT_OK(parse(&a, SVC(", \"snat\": true, \"dropWhenEmpty\": true")), "a") ||
	    !ASSERT_OK(parse(&b, SVC("")), "b"))
		goto out;
	if (ASSERT_OK(desired__apply(s, &empty, &a), sluice__errmsg()) && svc_flags(s, &f)) {
		ASSERT_TRUE(f & SLUICE_SVC_F_SNAT, "snat flag");
		ASSERT_TRUE(f & SLUICE_SVC_F_DROP_EMPTY, "drop-empty flag");
	}
	if (ASSERT_OK(desired__from_maps(s, &cur), sluice__errmsg())) {
		ASSERT_TRUE(cur.services[0].snat && cur.services[0].drop_empty, "read back");
		desired__free(&cur);
	}
	if (ASSERT_OK(desired__apply(s, &a, &b), sluice__errmsg()) && svc_flags(s, &f))
		ASSERT_FALSE(f & (SLUICE_SVC_F_SNAT | SLUICE_SVC_F_DROP_EMPTY), "flags off");
	desired__free(&a);
	desired__free(&b);
out:
	sluice__close(s);
}

static void test_node(void)
{
	struct desired a, b, back;
	struct json_object *j;
	const char *text;
	int updates = 0;

	ASSERT_EQ(parse(&a, SVC(", \"snat\": \"nodes\"")), -EINVAL, "another string");
	ASSERT_TRUE(strstr(sluice__errmsg(), "services[0].snat") &&
			    strstr(sluice__errmsg(), "\"node\""),
		    sluice__errmsg());
	if (!ASSERT_OK(parse(&a, SVC(", \"snat\": \"node\"")), sluice__errmsg()))
		return;
	ASSERT_TRUE(a.services[0].snat && a.services[0].snat_node, "node: snat to the node");
	j = desired__to_json(&a);
	text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	ASSERT_TRUE(strstr(text, "\"snat\":\"node\"") != NULL, text);
	if (ASSERT_OK(parse(&back, text), sluice__errmsg())) {
		ASSERT_TRUE(back.services[0].snat_node, "round trip");
		desired__free(&back);
	}
	json_object_put(j);
	if (ASSERT_OK(parse(&b, SVC(", \"snat\": true")), "b")) {
		ASSERT_FALSE(b.services[0].snat_node, "true: to the VIP");
		desired__diff(&b, &a, count_change, &updates);
		ASSERT_EQ(updates, 1, "VIP -> node is an update");
		desired__free(&b);
	}
	desired__free(&a);
}

static void test_apply_node(void)
{
	struct sluice_opts opts = {};
	struct desired empty = {}, a, cur;
	struct sluice *s;
	__u16 f;

	if (!ASSERT_OK(sluice__open(&s, &opts), sluice__errmsg()))
		return;
	if (!ASSERT_OK(parse(&a, SVC(", \"snat\": \"node\"")), "a"))
		goto out;
	if (ASSERT_OK(desired__apply(s, &empty, &a), sluice__errmsg()) && svc_flags(s, &f))
		ASSERT_EQ(f & (SLUICE_SVC_F_SNAT | SLUICE_SVC_F_SNAT_NODE),
			  SLUICE_SVC_F_SNAT | SLUICE_SVC_F_SNAT_NODE, "snat + snat-node flags");
	if (ASSERT_OK(desired__from_maps(s, &cur), sluice__errmsg())) {
		ASSERT_TRUE(cur.services[0].snat && cur.services[0].snat_node, "read back");
		desired__free(&cur);
	}
	desired__free(&a);
out:
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_parse),
	TEST(test_rejects),
	TEST(test_json),
	TEST(test_diff),
	TEST(test_node),
	TEST_ROOT(test_apply),
	TEST_ROOT(test_apply_node),
};

int main(int argc, char **argv)
{
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("desired_snat", tests, ARRAY_SIZE(tests), argc, argv);
}
