// SPDX-License-Identifier: MIT
/*
 * test_policy.c - access policy (#15) outside the packet path: rule text,
 * validation (every rejection names its rule), the compiled verdicts
 * against a brute-force reading of the rules, the node-wide list, and
 * the writers against the real datapath object (run as root): entries
 * and flags written together, replaced, removed with the service, and
 * rejected updates (invalid rules, a full trie) leaving every map as it
 * was (a snapshot of services, backends, policy and policy_node).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "desired.h"
#include "internal.h"
#include "k8s.h"
#include "k8s_internal.h"
#include "lb_load.h"
#include "test.h"
#include "policy_snap.h"

static void test_rule_parse(void)
{
	static const struct {
		const char *text;
		int rc;
		const char *canon, *err;
	} cases[] = {
		{ "10.0.0.0/8", 0, "10.0.0.0/8", NULL },
		{ "10.0.0.0/8:53", 0, "10.0.0.0/8:53", NULL },
		{ "10.0.0.0/8:1024-65535", 0, "10.0.0.0/8:1024-65535", NULL },
		{ "10.0.0.0/8:0-65535", 0, "10.0.0.0/8", NULL },
		{ "10.1.0.0/8", 1, "10.0.0.0/8", NULL },
		{ "fd00::/64:443", 0, "fd00::/64:443", NULL },
		{ "::/0", 0, "::/0", NULL },
		{ "10.0.0.0/8:", -EINVAL, NULL, "is not a number 0-65535" },
		{ "10.0.0.0/8:65536", -EINVAL, NULL, "is not a number 0-65535" },
		{ "10.0.0.0/8:080", -EINVAL, NULL, "is not a number 0-65535" },
		{ "10.0.0.0/8:20-10", -EINVAL, NULL, "port range 20-10 is empty" },
		{ "10.0.0.0/8:1-", -EINVAL, NULL, "is not a number 0-65535" },
		{ "10.0.0.0:80", -EINVAL, NULL, "not ADDRESS/PREFIX" },
		{ "10.0.0.0/33", -EINVAL, NULL, "prefix out of range" },
	};
	char buf[SLUICE_POLICY_RULE_STRLEN];
	struct sluice_policy_rule r;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc = sluice_policy_rule__parse(&r, cases[i].text);

		ASSERT_EQ(rc, cases[i].rc, cases[i].text);
		if (rc >= 0)
			ASSERT_TRUE(!strcmp(sluice_policy_rule__str(&r, buf, sizeof(buf)),
					    cases[i].canon),
				    cases[i].text);
		else if (!ASSERT_TRUE(strstr(sluice__errmsg(), cases[i].err) != NULL,
				      cases[i].text))
			fprintf(stderr, "    got: %s\n", sluice__errmsg());
	}
}

#define MAXR 8

static __u32 rules(struct sluice_policy_rule *r, const char *const *text)
{
	__u32 n = 0;

	for (; n < MAXR && text[n]; n++)
		ASSERT_TRUE(sluice_policy_rule__parse(&r[n], text[n]) >= 0, text[n]);
	return n;
}

/* Host bits cannot come from the parser (it clears them): set them. */
static void test_compile_rejects(void)
{
	static const struct {
		const char *allow[MAXR], *deny[MAXR];
		bool v6, host_bits;
		const char *err;
	} cases[] = {
		{ { "fd00::/64" },
		  { 0 },
		  false,
		  false,
		  "allowFrom[0]: \"fd00::/64\" is not of the VIP's family" },
		{ { 0 },
		  { "10.0.0.0/8" },
		  true,
		  false,
		  "denyFrom[0]: \"10.0.0.0/8\" is not of the VIP's family" },
		{ { "10.0.0.0/8", "10.0.0.0/8" },
		  { 0 },
		  false,
		  false,
		  "allowFrom[1]: \"10.0.0.0/8\" duplicates allowFrom[0] \"10.0.0.0/8\"" },
		{ { 0 },
		  { "10.0.0.0/8", "192.168.0.0/16", "10.1.0.0/16" },
		  false,
		  false,
		  "denyFrom[2]: \"10.1.0.0/16\" overlaps denyFrom[0] \"10.0.0.0/8\"" },
		{ { 0 },
		  { "10.1.0.0/16:100-200", "10.0.0.0/8:200-300" },
		  false,
		  false,
		  "denyFrom[1]: \"10.0.0.0/8:200-300\" overlaps denyFrom[0]" },
		{ { "10.0.0.0/8" },
		  { "10.0.0.0/8" },
		  false,
		  false,
		  "allowFrom[0]: \"10.0.0.0/8\" is also denyFrom[0] (deny wins: remove one)" },
		{ { 0 },
		  { "10.0.0.0/8:1", "10.0.0.0/8:3", "10.0.0.0/8:5", "10.0.0.0/8:7",
		    "10.0.0.0/8:9" },
		  false,
		  false,
		  "clients in 10.0.0.0/8 need more than 4 client port ranges" },
		{ { "10.0.0.0/8" },
		  { 0 },
		  false,
		  true,
		  "allowFrom[0]: \"10.0.0.1/8\" has host bits set" },
	};
	struct sluice_policy_rule a[MAXR], d[MAXR];
	struct sluice_policy_entry *e;
	__u32 na, nd, n;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		na = rules(a, cases[i].allow);
		nd = rules(d, cases[i].deny);
		if (cases[i].host_bits)
			a[0].cidr.addr.addr[0] |= htonl(1);
		ASSERT_EQ(sluice_policy__compile(cases[i].v6 ? SLUICE_AF_INET6 : SLUICE_AF_INET, a,
						 na, d, nd, &e, &n),
			  -EINVAL, cases[i].err);
		if (!ASSERT_TRUE(strstr(sluice__errmsg(), cases[i].err) != NULL, cases[i].err))
			fprintf(stderr, "    got: %s\n", sluice__errmsg());
	}
	/* nested with disjoint ports is no overlap */
	na = rules(a, (const char *const[]){ "10.0.0.0/8:1-10", "10.1.0.0/16:11-20", NULL });
	ASSERT_OK(sluice_policy__compile(SLUICE_AF_INET, a, na, NULL, 0, &e, &n), "disjoint");
	free(e);
}

static bool in_rule(const struct sluice_policy_rule *r, __u32 addr, __u16 port)
{
	__u32 mask = r->cidr.prefixlen ? ~0u << (32 - r->cidr.prefixlen) : 0;

	return (addr & mask) == ntohl(r->cidr.addr.addr[0]) && port >= r->port_lo &&
	       port <= r->port_hi;
}

/* The compiled entries answer, for every client, what a plain reading
 * of the rules says: any deny -> DENY, else any allow -> ALLOW, else NONE. */
static void test_compile_semantics(void)
{
	static const char *const allow[] = { "10.0.0.0/8:2000-65535", "10.1.0.0/16:1000-1999",
					     "192.168.0.0/24:53", "10.1.2.0/24:0-999", NULL };
	static const char *const deny[] = { "10.1.0.0/16:0-99", "10.0.0.0/24:0-1023",
					    "10.1.2.3/32:1500", "0.0.0.0/0:60000", NULL };
	static const __u16 ports[] = { 0,    6,    7,    8,     53,    54,    99,
				       100,  999,  1000, 1023,  1024,  1499,  1500,
				       1501, 1999, 2000, 59999, 60000, 60001, 65535 };
	struct sluice_policy_rule a[MAXR], d[MAXR];
	struct sluice_policy_entry *e = NULL;
	__u32 na = rules(a, allow), nd = rules(d, deny), n = 0, bad = 0, checked = 0;
	static const __u32 addrs[] = { 0x0a000000, 0x0a000001, 0x0a0000ff, 0x0a000100,
				       0x0a010000, 0x0a010203, 0x0a010204, 0x0a0102ff,
				       0x0a020304, 0xc0a80001, 0xc0a80101, 0x01020304 };

	if (!ASSERT_OK(sluice_policy__compile(SLUICE_AF_INET, a, na, d, nd, &e, &n), "compile")) {
		fprintf(stderr, "    %s\n", sluice__errmsg());
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(addrs); i++) {
		for (size_t j = 0; j < ARRAY_SIZE(ports); j++) {
			struct sluice_addr c = { .family = SLUICE_AF_INET };
			__u8 want = SLUICE_POL_NONE, got;

			c.addr[0] = htonl(addrs[i]);
			for (__u32 k = 0; k < na; k++)
				if (in_rule(&a[k], addrs[i], ports[j]))
					want = SLUICE_POL_ALLOW;
			for (__u32 k = 0; k < nd; k++)
				if (in_rule(&d[k], addrs[i], ports[j]))
					want = SLUICE_POL_DENY;
			got = sluice_policy__verdict(e, n, &c, ports[j]);
			checked++;
			if (got != want && bad++ < 5)
				fprintf(stderr, "    %08x:%u: got %u want %u\n", addrs[i], ports[j],
					got, want);
		}
	}
	ASSERT_EQ(bad, 0, "verdicts as the rules read");
	ASSERT_EQ(checked, ARRAY_SIZE(addrs) * ARRAY_SIZE(ports), "all checked");
	free(e);
}

static void test_node_check(void)
{
	struct sluice_cidr c[4];

	sluice_cidr__parse(&c[0], "10.0.0.0/8");
	sluice_cidr__parse(&c[1], "fd00::/64");
	sluice_cidr__parse(&c[2], "10.2.0.0/16");
	ASSERT_EQ(sluice_policy__node_check(c, 3), -EINVAL, "nested");
	ASSERT_TRUE(strstr(sluice__errmsg(), "nodeDenyFrom[2]: \"10.2.0.0/16\" lies inside "
					     "nodeDenyFrom[0] \"10.0.0.0/8\"") != NULL,
		    sluice__errmsg());
	sluice_cidr__parse(&c[2], "fd00::/64");
	ASSERT_EQ(sluice_policy__node_check(c, 3), -EINVAL, "duplicate");
	ASSERT_TRUE(strstr(sluice__errmsg(), "duplicates") != NULL, sluice__errmsg());
	sluice_cidr__parse(&c[2], "11.0.0.0/8");
	sluice_cidr__parse(&c[3], "10.0.0.0/8"); /* same bits, other family */
	c[3].addr.family = SLUICE_AF_INET6;
	ASSERT_OK(sluice_policy__node_check(c, 4), "disjoint, families apart");
}

/* --- the desired state --- */

#define SVC4 "{\"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"tcp\""

static int parse(struct desired *d, const char *text)
{
	return desired__from_string(d, text, strlen(text));
}

static void test_desired_valid(void)
{
	static const char text[] = "nodeDenyFrom: [198.51.100.0/24, \"2001:db8::/32\"]\n"
				   "services:\n"
				   "  - vip: 10.96.0.10\n    port: 80\n    protocol: tcp\n"
				   "    allowFrom: [10.0.0.0/8, \"192.168.0.0/16:1024-65535\"]\n"
				   "    denyFrom: [10.66.0.0/16]\n"
				   "    denyAction: refuse\n";
	struct desired d, back, copy;
	struct json_object *j;
	char buf[SLUICE_POLICY_RULE_STRLEN];

	if (!ASSERT_OK(parse(&d, text), "parse")) {
		fprintf(stderr, "    %s\n", sluice__errmsg());
		return;
	}
	ASSERT_EQ(d.services[0].nallow, 2, "two allow");
	ASSERT_EQ(d.services[0].ndeny, 1, "one deny");
	ASSERT_TRUE(d.services[0].policy_refuse, "refuse");
	ASSERT_TRUE(!strcmp(sluice_policy_rule__str(&d.services[0].rules[1], buf, sizeof(buf)),
			    "192.168.0.0/16:1024-65535"),
		    buf);
	ASSERT_EQ(d.nnode_deny, 2, "node list");
	j = desired__to_json(&d);
	if (ASSERT_TRUE(j != NULL, "to_json") && ASSERT_OK(desired__from_json(&back, j), "back")) {
		ASSERT_TRUE(desired__policy_eq(&d.services[0], &back.services[0]), "round trip");
		ASSERT_TRUE(desired__node_deny_eq(&d, &back), "node round trip");
		desired__free(&back);
	}
	json_object_put(j);
	if (ASSERT_OK(desired__copy(&copy, &d), "copy")) {
		ASSERT_TRUE(desired__policy_eq(&d.services[0], &copy.services[0]) &&
				    copy.services[0].rules != d.services[0].rules,
			    "deep copy");
		ASSERT_TRUE(desired__node_deny_eq(&d, &copy) && copy.node_deny != d.node_deny,
			    "node deep copy");
		desired__free(&copy);
	}
	desired__free(&d);
}

static void test_desired_rejects(void)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
		{ "{\"services\": [" SVC4 ", \"denyFrom\": [\"10.0.0.0/8\", \"1.0.0.0/8\", "
		  "\"10.2.0.0/16\"]}]}",
		  "services[0].denyFrom[2]: \"10.2.0.0/16\" overlaps denyFrom[0]" },
		{ "{\"services\": [" SVC4 ", \"allowFrom\": [\"10.0.0.1/8\"]}]}",
		  "services[0].allowFrom[0]: \"10.0.0.1/8\" has host bits set (the rule is "
		  "10.0.0.0/8)" },
		{ "{\"services\": [" SVC4 ", \"allowFrom\": [\"fd00::/8\"]}]}",
		  "services[0].allowFrom[0]: \"fd00::/8\" is not of the VIP's family" },
		{ "{\"services\": [" SVC4 ", \"denyFrom\": [\"10.0.0.0/8:99999\"]}]}",
		  "services[0].denyFrom[0]: \"10.0.0.0/8:99999\": client port" },
		{ "{\"services\": [" SVC4 ", \"denyFrom\": \"10.0.0.0/8\"}]}",
		  "services[0].denyFrom: expected a list" },
		{ "{\"services\": [" SVC4 ", \"denyAction\": \"reject\"}]}",
		  "services[0].denyAction: \"reject\" is not \"drop\" or \"refuse\"" },
		{ "{\"services\": [], \"nodeDenyFrom\": [\"10.0.0.0/8\", \"10.1.0.0/16\"]}",
		  "nodeDenyFrom[1]: \"10.1.0.0/16\" lies inside nodeDenyFrom[0]" },
		{ "{\"services\": [], \"nodeDenyFrom\": [\"10.0.0.1/8\"]}",
		  "nodeDenyFrom[0]: \"10.0.0.1/8\" has host bits set" },
	};
	struct desired d;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		ASSERT_EQ(parse(&d, cases[i].text), -EINVAL, cases[i].err);
		if (!ASSERT_TRUE(strstr(sluice__errmsg(), cases[i].err) != NULL, cases[i].err))
			fprintf(stderr, "    got: %s\n", sluice__errmsg());
	}
}

/* --- Kubernetes annotations --- */

static char warnings[8192];

static void on_warn(const char *msg, void *ctx)
{
	size_t len = strlen(warnings);

	(void)ctx;
	snprintf(warnings + len, sizeof(warnings) - len, "%s\n", msg);
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

/* A dual-stack ClusterIP Service with these annotations, translated. */
static int k8s_policy(const char *annotations, struct desired *d)
{
	struct k8s_objs *svcs = k8s_objs__new(K8S_SERVICES), *slices = k8s_objs__new(K8S_SLICES);
	struct k8s_xlate_opts o = { .warn = on_warn };
	char text[2048];
	int err;

	warnings[0] = '\0';
	snprintf(text, sizeof(text),
		 "{'metadata': {'name': 'web', 'namespace': 'ns', 'annotations': {%s}}, "
		 "'spec': {'clusterIPs': ['10.96.7.1', 'fd00:96::7'], 'clusterIP': '10.96.7.1', "
		 "'ports': [{'port': 80}]}}",
		 annotations);
	desired__init(d);
	err = put_json(svcs, text) ?:
		      put_json(slices, "{'metadata': {'name': 'web-4', 'namespace': 'ns', "
				       "'labels': {'kubernetes.io/service-name': 'web'}}, "
				       "'addressType': 'IPv4', 'ports': [{'port': 80}], "
				       "'endpoints': [{'addresses': ['10.9.7.1']}]}");
	if (!err)
		err = k8s__translate(svcs, slices, &o, d);
	if (!err)
		err = desired__validate(d);
	if (err)
		TEST_FAIL("translate/validate: %s", sluice__errmsg());
	k8s_objs__free(svcs);
	k8s_objs__free(slices);
	return err;
}

static const struct desired_service *find80(const struct desired *d, const char *vip)
{
	struct sluice_addr a;

	return sluice_addr__parse(&a, vip) ? NULL : desired__find(d, &a, 80, IPPROTO_TCP);
}

static void test_k8s_annotations(void)
{
	const struct desired_service *v4, *v6;
	char buf[SLUICE_POLICY_RULE_STRLEN];
	struct desired d;

	if (k8s_policy("'sluice.io/allow-from': '10.0.0.0/8, fd00::/16', "
		       "'sluice.io/deny-from': '10.1.2.3/8:1-1023', "
		       "'sluice.io/deny-action': 'refuse'",
		       &d))
		return;
	v4 = find80(&d, "10.96.7.1");
	v6 = find80(&d, "fd00:96::7");
	if (ASSERT_TRUE(v4 && v6, "both families")) {
		ASSERT_TRUE(v4->nallow == 1 && v4->ndeny == 1 && v4->policy_refuse, "v4 rules");
		ASSERT_TRUE(!strcmp(sluice_policy_rule__str(&v4->rules[1], buf, sizeof(buf)),
				    "10.0.0.0/8:1-1023"),
			    buf);
		ASSERT_TRUE(v6->nallow == 1 && v6->ndeny == 0, "v6 gets its own family only");
	}
	/* masked, not refused (the file refuses it), and said */
	ASSERT_TRUE(strstr(warnings, "\"10.1.2.3/8:1-1023\" has host bits set: read as "
				     "10.0.0.0/8:1-1023") &&
			    !strstr(warnings, "every client denied"),
		    warnings);
	desired__free(&d);

	/* a rule that does not parse: closed, not open */
	if (k8s_policy("'sluice.io/allow-from': '10.0.0.0/8, banana'", &d))
		return;
	v4 = find80(&d, "10.96.7.1");
	if (ASSERT_TRUE(v4 != NULL, "v4") &&
	    ASSERT_TRUE(v4->nallow == 0 && v4->ndeny == 1, "deny-all"))
		ASSERT_TRUE(!strcmp(sluice_policy_rule__str(&v4->rules[0], buf, sizeof(buf)),
				    "0.0.0.0/0"),
			    buf);
	desired__free(&d);

	/* rules the compiler refuses: closed, with a warning */
	if (k8s_policy("'sluice.io/deny-from': '10.0.0.0/8, 10.1.0.0/16'", &d))
		return;
	v4 = find80(&d, "10.96.7.1");
	ASSERT_TRUE(v4 && v4->nallow == 0 && v4->ndeny == 1 && v4->rules[0].cidr.prefixlen == 0,
		    "deny-all");
	ASSERT_TRUE(strstr(warnings, "overlaps") && strstr(warnings, "every client denied"),
		    warnings);
	desired__free(&d);
}

/* --- writers against the real object (root) --- */

static bool svc_entry(struct sluice *s, const struct sluice_service_spec *spec,
		      struct sluice_svc *out)
{
	struct sluice_svc_key k = { .port = htons(spec->port),
				    .proto = spec->proto,
				    .family = spec->vip.family };

	memcpy(k.addr, spec->vip.addr, sizeof(k.addr));
	return !bpf_map_lookup_elem(sluice__map_fd(s, "services"), &k, out);
}

static void test_writer(void)
{
	struct sluice_backend_spec be = { .port = 8080, .weight = 1 };
	struct sluice_service_spec spec = {
		.port = 80, .proto = IPPROTO_TCP, .nbackends = 1, .backends = &be
	};
	struct sluice_policy_rule a[MAXR], d[MAXR];
	struct sluice *s = lib__open();
	struct sluice_svc svc;
	__u32 n = 0;

	if (!s)
		return;
	sluice_addr__parse(&spec.vip, "10.96.0.10");
	sluice_addr__parse(&be.addr, "10.1.0.1");
	spec.allow = a;
	spec.deny = d;
	spec.nallow = rules(a, (const char *const[]){ "10.0.0.0/8", "192.168.0.0/16", NULL });
	spec.ndeny = rules(d, (const char *const[]){ "10.0.0.0/24", NULL });
	spec.policy_refuse = true;
	if (!ASSERT_OK(sluice__service_set(s, &spec), "set with a policy"))
		goto out;
	ASSERT_TRUE(svc_entry(s, &spec, &svc), "service");
	ASSERT_EQ(svc.flags & (SLUICE_SVC_F_POLICY | SLUICE_SVC_F_POLICY_ALLOWLIST |
			       SLUICE_SVC_F_POLICY_REFUSE),
		  SLUICE_SVC_F_POLICY | SLUICE_SVC_F_POLICY_ALLOWLIST | SLUICE_SVC_F_POLICY_REFUSE,
		  "flags");
	ASSERT_OK(sluice__policy_entries(s, svc.svc_id, &n), "entries");
	ASSERT_EQ(n, 3, "three prefixes");
	/* deny only: allow-list and refuse flags go, one stale prefix left */
	spec.nallow = 0;
	spec.policy_refuse = false;
	ASSERT_OK(sluice__service_set(s, &spec), "deny only");
	ASSERT_TRUE(svc_entry(s, &spec, &svc), "service");
	ASSERT_EQ(svc.flags & (SLUICE_SVC_F_POLICY | SLUICE_SVC_F_POLICY_ALLOWLIST |
			       SLUICE_SVC_F_POLICY_REFUSE),
		  SLUICE_SVC_F_POLICY, "flags");
	ASSERT_OK(sluice__policy_entries(s, 0, &n), "entries");
	ASSERT_EQ(n, 1, "one prefix");
	spec.ndeny = 0;
	ASSERT_OK(sluice__service_set(s, &spec), "none");
	ASSERT_TRUE(svc_entry(s, &spec, &svc) && !(svc.flags & SLUICE_SVC_F_POLICY), "flag off");
	ASSERT_OK(sluice__policy_entries(s, 0, &n), "entries");
	ASSERT_EQ(n, 0, "none left");
	spec.ndeny = 1;
	ASSERT_OK(sluice__service_set(s, &spec), "again");
	ASSERT_OK(sluice__service_del(s, &spec.vip, spec.port, spec.proto), "del");
	ASSERT_OK(sluice__policy_entries(s, 0, &n), "entries");
	ASSERT_EQ(n, 0, "gone with the service");
out:
	sluice__close(s);
}

/* Rejected updates leave every map as it was: invalid rules in the second
 * service of a call (checked before any write), and a trie with room
 * for fewer prefixes than the update brings (fails mid-write). */
static void test_writer_rollback(void)
{
	struct sluice_backend_spec be[2] = { { .port = 8080, .weight = 1 },
					     { .port = 8081, .weight = 1 } };
	struct sluice_service_spec spec[2] = {
		{ .port = 80, .proto = IPPROTO_TCP, .nbackends = 1, .backends = &be[0] },
		{ .port = 81, .proto = IPPROTO_TCP, .nbackends = 1, .backends = &be[1] },
	};
	struct sluice_policy_rule a0[MAXR], a1[MAXR], d1[MAXR];
	struct sluice_policy_val val = { .verdict = SLUICE_POL_DENY };
	struct sluice_policy_key k = { .prefixlen = 64, .id = 30000 };
	struct sluice_cidr nd;
	struct snap before, after;
	struct sluice *s = lib__open();
	__u32 filler = 0;
	int fd, err;

	if (!s)
		return;
	fd = sluice__map_fd(s, "policy");
	sluice_addr__parse(&spec[0].vip, "10.96.0.10");
	sluice_addr__parse(&spec[1].vip, "10.96.0.10");
	sluice_addr__parse(&be[0].addr, "10.1.0.1");
	sluice_addr__parse(&be[1].addr, "10.1.0.2");
	spec[0].allow = a0;
	spec[0].nallow = rules(a0, (const char *const[]){ "10.0.0.0/8", NULL });
	sluice_cidr__parse(&nd, "192.0.2.0/24");
	if (!ASSERT_OK(sluice__service_set_many(s, spec, 2, NULL, NULL), "first") ||
	    !ASSERT_OK(sluice__policy_node_set(s, &nd, 1), "node list"))
		goto out;

	/* invalid second service: nothing of the first is written either */
	spec[0].nallow = rules(a0, (const char *const[]){ "10.0.0.0/8", "11.0.0.0/8", NULL });
	spec[1].deny = d1;
	spec[1].ndeny = rules(d1, (const char *const[]){ "10.0.0.0/8", "10.0.0.0/8", NULL });
	snap_take(s, &before);
	ASSERT_EQ(sluice__service_set_many(s, spec, 2, NULL, NULL), -EINVAL, "duplicate rejected");
	ASSERT_TRUE(strstr(sluice__errmsg(), "denyFrom[1]") != NULL, sluice__errmsg());
	snap_take(s, &after);
	snap_same(&before, &after, "a rejected rule");
	snap_free(&after);

	/* the trie full but for one slot: the update needs three */
	for (__u32 i = 0; i < SLUICE_POLICY_MAX - 4; i++) {
		k.addr[0] = htonl(0x64000000 + i);
		if (bpf_map_update_elem(fd, &k, &val, BPF_NOEXIST))
			break;
		filler++;
	}
	ASSERT_EQ(filler, SLUICE_POLICY_MAX - 4, "filled");
	snap_free(&before);
	snap_take(s, &before);
	spec[1].allow = a1;
	spec[1].nallow =
		rules(a1, (const char *const[]){ "172.16.0.0/12", "198.51.100.0/24:1-9", NULL });
	spec[1].ndeny = rules(d1, (const char *const[]){ "172.16.1.0/24", NULL });
	err = sluice__service_set_many(s, spec, 2, NULL, NULL);
	ASSERT_TRUE(err == -ENOSPC || err == -E2BIG, "does not fit");
	ASSERT_TRUE(strstr(sluice__errmsg(), "policy map: insert of policy prefix") != NULL,
		    sluice__errmsg());
	snap_take(s, &after);
	snap_same(&before, &after, "a full trie");
	snap_free(&after);
	snap_free(&before);
out:
	sluice__close(s);
}

/* The node list is replaced whole; a rejected list changes nothing. */
static void test_node_writer(void)
{
	struct sluice_cidr c[3], got[4];
	struct sluice *s = lib__open();
	__u32 n = 0;

	if (!s)
		return;
	sluice_cidr__parse(&c[0], "10.0.0.0/8");
	sluice_cidr__parse(&c[1], "fd00::/64");
	sluice_cidr__parse(&c[2], "192.0.2.1/32");
	ASSERT_OK(sluice__policy_node_set(s, c, 3), "three");
	ASSERT_OK(sluice__policy_node_get(s, got, 4, &n), "get");
	ASSERT_EQ(n, 3, "three back");
	sluice_cidr__parse(&c[2], "10.9.0.0/16");
	ASSERT_EQ(sluice__policy_node_set(s, c, 3), -EINVAL, "nested");
	ASSERT_OK(sluice__policy_node_get(s, got, 4, &n), "get");
	ASSERT_EQ(n, 3, "unchanged");
	ASSERT_OK(sluice__policy_node_set(s, &c[1], 1), "one");
	ASSERT_OK(sluice__policy_node_get(s, got, 4, &n), "get");
	ASSERT_TRUE(n == 1 && sluice_cidr__eq(&got[0], &c[1]), "only fd00::/64");
	ASSERT_OK(sluice__policy_node_set(s, NULL, 0), "empty");
	ASSERT_OK(sluice__policy_node_get(s, got, 4, &n), "get");
	ASSERT_EQ(n, 0, "empty");
	sluice__close(s);
}

/* Where a node entry lives: 1 the hash policy_nhost, 2 the trie, 3 both. */
static int node_where(struct sluice *s, const struct sluice_cidr *c)
{
	struct sluice_policy_key k = { .prefixlen = 32 + c->prefixlen, .id = c->addr.family };
	struct sluice_policy_val v;

	memcpy(k.addr, c->addr.addr, sizeof(k.addr));
	int in_hash = !bpf_map_lookup_elem(sluice__map_fd(s, "policy_nhost"), &k, &v);
	int in_trie = !bpf_map_lookup_elem(sluice__map_fd(s, "policy_node"), &k, &v);

	return in_hash | in_trie << 1;
}

/* Host entries go to the hash, shorter ones to the trie (and, with at
 * most SLUICE_POLICY_LENS lengths, a copy to the hash); a /32 that a
 * meshd from before the hash left in the trie moves to the hash at the
 * next set, and a set without it removes it from both. */
static void test_node_host_hash(void)
{
	struct sluice_policy_val deny = { .verdict = SLUICE_POL_DENY };
	struct sluice_policy_key k = { .prefixlen = 64, .id = SLUICE_AF_INET };
	struct sluice_cidr c[3], got[4];
	struct sluice *s = lib__open();
	__u32 n = 0;

	if (!s)
		return;
	sluice_cidr__parse(&c[0], "192.0.2.1/32");
	sluice_cidr__parse(&c[1], "fd00::7/128");
	sluice_cidr__parse(&c[2], "198.51.100.0/24");
	ASSERT_OK(sluice__policy_node_set(s, c, 3), "set");
	ASSERT_EQ(node_where(s, &c[0]), 1, "/32 in the hash only");
	ASSERT_EQ(node_where(s, &c[1]), 1, "/128 in the hash only");
	ASSERT_EQ(node_where(s, &c[2]), 3, "/24 in the trie, its copy in the hash");
	ASSERT_OK(sluice__policy_node_set(s, &c[2], 1), "only the /24");
	ASSERT_EQ(node_where(s, &c[0]) | node_where(s, &c[1]), 0, "hosts gone");
	/* an old meshd's layout: a /32 in the trie */
	inet_pton(AF_INET, "203.0.113.9", &k.addr[0]);
	ASSERT_OK(bpf_map_update_elem(sluice__map_fd(s, "policy_node"), &k, &deny, BPF_NOEXIST),
		  "plant a /32 in the trie");
	sluice_cidr__parse(&c[0], "203.0.113.9/32");
	ASSERT_EQ(node_where(s, &c[0]), 2, "planted in the trie");
	ASSERT_OK(sluice__policy_node_get(s, got, 4, &n), "get");
	ASSERT_EQ(n, 2, "get sees the planted entry");
	ASSERT_OK(sluice__policy_node_set(s, c, 1), "set the same /32");
	ASSERT_EQ(node_where(s, &c[0]), 1, "moved to the hash");
	ASSERT_EQ(node_where(s, &c[2]), 0, "the /24 gone");
	ASSERT_OK(bpf_map_update_elem(sluice__map_fd(s, "policy_node"), &k, &deny, BPF_NOEXIST),
		  "plant it again");
	ASSERT_OK(sluice__policy_node_set(s, NULL, 0), "empty");
	ASSERT_EQ(node_where(s, &c[0]), 0, "gone from both");
	sluice__close(s);
}

static bool nlens_is(struct sluice *s, int f, __u32 lens, const char *what)
{
	struct sluice_policy_nlens nl = {};
	__u32 zero = 0;

	if (!ASSERT_OK(bpf_map_lookup_elem(sluice__map_fd(s, "policy_nlens"), &zero, &nl),
		       "read policy_nlens"))
		return false;
	if (nl.lens[f] == lens)
		return true;
	fprintf(stderr, "    policy_nlens[%d]: lens %#x, want %#x\n", f, nl.lens[f], lens);
	return ASSERT_TRUE(false, what);
}

/* policy_nhost (@fd) filled with IPv4 host keys from 100.64.0.0 (no
 * test's list has them) until it takes no more: how many went in. */
static __u32 plant_hosts(int fd, __u32 max)
{
	const struct sluice_policy_val deny = { .verdict = SLUICE_POL_DENY };
	struct sluice_policy_key k = { .prefixlen = 64, .id = SLUICE_AF_INET };
	__u32 n = 0;

	for (__u32 i = 0; i < max; i++) {
		k.addr[0] = htonl(0x64400000 + i);
		if (bpf_map_update_elem(fd, &k, &deny, BPF_NOEXIST))
			break;
		n++;
	}
	return n;
}

#define LENS4(a, b, c, e) ((a + 1) | (b + 1) << 8 | (c + 1) << 16 | (__u32)(e + 1) << 24)

/* A family's shorter node prefixes of at most 4 lengths are copied into
 * policy_nhost and their lengths written to policy_nlens; a fifth length
 * takes the family back to the trie (copies removed), the other family
 * keeps its copies; back at 4 they return. A copy that cannot be
 * inserted (policy_nhost full) leaves its family on the trie, and a host
 * entry that finds it full takes the copies' room: the set succeeds with
 * the same verdicts either way, and the next set with room copies again. */
static void test_node_lens(void)
{
	static const char *const text[] = { "10.0.0.0/31",   "192.0.2.0/24", "10.200.0.0/16",
					    "198.18.0.0/15", "fd00::/64",    "203.0.113.0/25",
					    "192.0.3.0/24" };
	struct sluice_policy_key k = { .prefixlen = 64, .id = SLUICE_AF_INET };
	struct sluice_ct_key t = { .family = SLUICE_AF_INET, .proto = IPPROTO_TCP };
	struct sluice_svc svc = {};
	struct sluice_cidr c[7];
	struct sluice *s = lib__open();
	struct bpf_map_info info = {};
	__u32 planted, max, info_len = sizeof(info);
	struct sluice_policy_val v;
	int fd;

	if (!s)
		return;
	for (int i = 0; i < 7; i++)
		sluice_cidr__parse(&c[i], text[i]);
	ASSERT_OK(sluice__policy_node_set(s, c, 5), "4 IPv4 lengths, 1 IPv6");
	nlens_is(s, 0, LENS4(31, 24, 16, 15), "IPv4 copied");
	nlens_is(s, 1, 64 + 1, "IPv6 copied");
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(node_where(s, &c[i]), 3, text[i]);
	ASSERT_OK(sluice__policy_node_set(s, c, 6), "a fifth IPv4 length");
	nlens_is(s, 0, 0, "IPv4 on the trie");
	nlens_is(s, 1, 64 + 1, "IPv6 still copied");
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(node_where(s, &c[i]), i == 4 ? 3 : 2, text[i]);
	ASSERT_OK(sluice__policy_node_set(s, c, 5), "back to 4");
	nlens_is(s, 0, LENS4(31, 24, 16, 15), "IPv4 copied again");
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(node_where(s, &c[i]), i == 5 ? 0 : 3, text[i]);

	/* policy_nhost full (host keys no list has, to its last slot): a new
	 * /24's copy has no room, so IPv4 goes to the trie, its copies out;
	 * the set succeeds and the /24 denies */
	fd = sluice__map_fd(s, "policy_nhost");
	max = bpf_obj_get_info_by_fd(fd, &info, &info_len) ? 0 : info.max_entries;
	planted = plant_hosts(fd, max);
	ASSERT_TRUE(planted > 0 && planted < max, "policy_nhost filled");
	c[5] = c[6]; /* 192.0.3.0/24 */
	ASSERT_OK(sluice__policy_node_set(s, c, 6), "the set, a copy without room");
	nlens_is(s, 0, 0, "IPv4 on the trie");
	nlens_is(s, 1, 64 + 1, "IPv6 kept its copy");
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(node_where(s, &c[i]), i == 4 ? 3 : 2, text[i]);
	inet_pton(AF_INET, "192.0.3.7", &t.saddr[0]);
	ASSERT_EQ(sluice__policy_verdict(s, &svc, &t, NULL), SLUICE_DROP_POLICY_NODE_DENY,
		  "the new /24 denies (trie)");
	k.addr[0] = htonl(0x64400000);
	ASSERT_TRUE(bpf_map_lookup_elem(fd, &k, &v) && errno == ENOENT, "planted hosts gone");
	/* back on the hash; then full again and a new host entry: the copies
	 * give it their room (both families on the trie), the set succeeds */
	ASSERT_OK(sluice__policy_node_set(s, c, 5), "back to 4 lengths");
	nlens_is(s, 0, LENS4(31, 24, 16, 15), "IPv4 copied");
	planted = plant_hosts(fd, max);
	ASSERT_TRUE(planted > 0 && planted < max, "policy_nhost filled again");
	sluice_cidr__parse(&c[5], "203.0.113.77/32");
	ASSERT_OK(sluice__policy_node_set(s, c, 6), "a host where copies were");
	ASSERT_EQ(node_where(s, &c[5]), 1, "the host in policy_nhost");
	inet_pton(AF_INET, "203.0.113.77", &t.saddr[0]);
	ASSERT_EQ(sluice__policy_verdict(s, &svc, &t, NULL), SLUICE_DROP_POLICY_NODE_DENY,
		  "the host denies");
	inet_pton(AF_INET, "10.0.0.1", &t.saddr[0]);
	ASSERT_EQ(sluice__policy_verdict(s, &svc, &t, NULL), SLUICE_DROP_POLICY_NODE_DENY,
		  "10.0.0.0/31 still denies");
	/* the next set, with room, copies again */
	ASSERT_OK(sluice__policy_node_set(s, c, 6), "the same list, room again");
	nlens_is(s, 0, LENS4(31, 24, 16, 15), "IPv4 copied again");
	nlens_is(s, 1, 64 + 1, "IPv6 copied again");
	ASSERT_OK(sluice__policy_node_set(s, NULL, 0), "empty");
	for (int i = 0; i < 6; i++)
		ASSERT_EQ(node_where(s, &c[i]), 0, text[i]);
	nlens_is(s, 0, 0, "no IPv4 lengths");
	sluice__close(s);
}

/* Pins of an agent from before policy_nlens: no such pin, the node list's
 * shorter prefixes in the trie alone. The datapath (and the verdict)
 * reads the trie then; a restarted agent creates the map, and its next
 * set of the same list adds the copies and the lengths; the verdict never
 * changes. */
static void test_node_old_pins(void)
{
	struct sluice_ct_key t = { .family = SLUICE_AF_INET, .proto = IPPROTO_TCP };
	struct sluice_opts opts = {};
	struct sluice_svc svc = {};
	struct sluice_policy_key k = { .prefixlen = 32 + 24, .id = SLUICE_AF_INET };
	struct sluice_cidr c;
	char dir[64], path[96];
	struct sluice *s = NULL;

	snprintf(dir, sizeof(dir), "/sys/fs/bpf/sluice-test-nlens-%d", (int)getpid());
	opts.pin_dir = dir;
	if (!ASSERT_OK(sluice__open(&s, &opts), "open pinned"))
		goto out;
	sluice_cidr__parse(&c, "198.51.100.0/24");
	ASSERT_OK(sluice__policy_node_set(s, &c, 1), "set");
	inet_pton(AF_INET, "198.51.100.0", &k.addr[0]);
	ASSERT_EQ(node_where(s, &c), 3, "copied");
	/* the older agent's layout: no copy, no policy_nlens */
	ASSERT_OK(bpf_map_delete_elem(sluice__map_fd(s, "policy_nhost"), &k), "drop the copy");
	sluice__close(s);
	s = NULL;
	snprintf(path, sizeof(path), "%s/policy_nlens", dir);
	ASSERT_OK(unlink(path), "no policy_nlens pin");
	if (!ASSERT_OK(sluice__open(&s, &opts), "the restart"))
		goto out;
	nlens_is(s, 0, 0, "a new policy_nlens reads as the trie");
	inet_pton(AF_INET, "198.51.100.7", &t.saddr[0]);
	t.sport = htons(40000);
	ASSERT_EQ(sluice__policy_verdict(s, &svc, &t, NULL), SLUICE_DROP_POLICY_NODE_DENY,
		  "trie: denied");
	ASSERT_OK(sluice__policy_node_set(s, &c, 1), "the same list again");
	ASSERT_EQ(node_where(s, &c), 3, "copied now");
	nlens_is(s, 0, 24 + 1, "the hash decides");
	ASSERT_EQ(sluice__policy_verdict(s, &svc, &t, NULL), SLUICE_DROP_POLICY_NODE_DENY,
		  "hash: denied");
out:
	sluice__close(s);
	sluice__unpin(dir);
}

/* An older agent (it knows nothing of the copies) changed the list on
 * these pins: it put a new /24 in the trie alone and took the old one out
 * of the trie, leaving its copy. The next open takes IPv4 back to the
 * trie, so the verdicts are the older agent's list; the next set copies
 * the list again. Pins whose copies match stay on the hash. */
static void test_node_older_agent(void)
{
	const struct sluice_policy_val deny = { .verdict = SLUICE_POL_DENY };
	struct sluice_ct_key t = { .family = SLUICE_AF_INET, .proto = IPPROTO_TCP };
	struct sluice_policy_key k = { .prefixlen = 32 + 24, .id = SLUICE_AF_INET };
	struct sluice_opts opts = {};
	struct sluice_svc svc = {};
	struct sluice_cidr c[2];
	char dir[64];
	struct sluice *s = NULL;

	snprintf(dir, sizeof(dir), "/sys/fs/bpf/sluice-test-nolder-%d", (int)getpid());
	opts.pin_dir = dir;
	if (!ASSERT_OK(sluice__open(&s, &opts), "open pinned"))
		goto out;
	sluice_cidr__parse(&c[0], "198.51.100.0/24");
	sluice_cidr__parse(&c[1], "fd00:9::/48");
	ASSERT_OK(sluice__policy_node_set(s, c, 2), "set");
	sluice__close(s);
	s = NULL;
	if (!ASSERT_OK(sluice__open(&s, &opts), "a restart, nothing changed"))
		goto out;
	nlens_is(s, 0, 24 + 1, "matching copies: still the hash");
	/* the older agent's set: trie only */
	inet_pton(AF_INET, "198.51.100.0", &k.addr[0]);
	ASSERT_OK(bpf_map_delete_elem(sluice__map_fd(s, "policy_node"), &k), "old /24 out");
	inet_pton(AF_INET, "203.0.113.0", &k.addr[0]);
	ASSERT_OK(bpf_map_update_elem(sluice__map_fd(s, "policy_node"), &k, &deny, BPF_NOEXIST),
		  "new /24 in the trie");
	sluice__close(s);
	s = NULL;
	if (!ASSERT_OK(sluice__open(&s, &opts), "this agent again"))
		goto out;
	nlens_is(s, 0, 0, "IPv4 back on the trie");
	nlens_is(s, 1, 48 + 1, "IPv6 untouched, still the hash");
	t.sport = htons(40000);
	inet_pton(AF_INET, "203.0.113.9", &t.saddr[0]);
	ASSERT_EQ(sluice__policy_verdict(s, &svc, &t, NULL), SLUICE_DROP_POLICY_NODE_DENY,
		  "the older agent's /24 denies");
	inet_pton(AF_INET, "198.51.100.9", &t.saddr[0]);
	ASSERT_EQ(sluice__policy_verdict(s, &svc, &t, NULL), 0, "its removed /24 does not");
	sluice_cidr__parse(&c[0], "203.0.113.0/24");
	ASSERT_OK(sluice__policy_node_set(s, c, 2), "this agent's set");
	nlens_is(s, 0, 24 + 1, "copied again");
	ASSERT_EQ(node_where(s, &c[0]), 3, "the /24 and its copy");
	sluice_cidr__parse(&c[1], "198.51.100.0/24");
	ASSERT_EQ(node_where(s, &c[1]), 0, "the stale copy gone");
out:
	sluice__close(s);
	sluice__unpin(dir);
}

/* desired__apply() writes policy and node list; the maps read back say a
 * policy is there (rules are not readable back), so re-applying the
 * same state from them rewrites it to the same entries. */
static void test_desired_apply(void)
{
	static const char text[] = "{\"nodeDenyFrom\": [\"198.51.100.0/24\"], \"services\": [" SVC4
				   ", \"backends\": [{\"address\": \"10.1.0.1\", \"port\": 8080}], "
				   "\"allowFrom\": [\"10.0.0.0/8\"], \"denyFrom\": "
				   "[\"10.0.0.0/24\"]}]}";
	struct desired d, maps, none = {};
	struct sluice *s = lib__open();
	__u32 n = 0;

	if (!s)
		return;
	if (!ASSERT_OK(parse(&d, text), "parse"))
		goto out;
	if (!ASSERT_OK(desired__apply(s, NULL, &d), "apply")) {
		fprintf(stderr, "    %s\n", sluice__errmsg());
		goto free;
	}
	ASSERT_OK(sluice__policy_entries(s, 0, &n), "entries");
	ASSERT_EQ(n, 2, "two prefixes");
	if (ASSERT_OK(desired__from_maps(s, &maps), "from_maps")) {
		ASSERT_EQ(maps.nnode_deny, 1, "node list read back");
		ASSERT_TRUE(maps.nservices == 1 && maps.services[0].policy_in_maps, "marked");
		ASSERT_OK(desired__apply(s, &maps, &d), "re-apply");
		ASSERT_OK(sluice__policy_entries(s, 0, &n), "entries");
		ASSERT_EQ(n, 2, "still two");
		desired__free(&maps);
	}
	ASSERT_OK(desired__apply(s, &d, &none), "apply nothing");
	ASSERT_OK(sluice__policy_entries(s, 0, &n), "entries");
	ASSERT_EQ(n, 0, "none");
	ASSERT_OK(sluice__policy_node_get(s, NULL, 0, &n), "node");
	ASSERT_EQ(n, 0, "node list gone");
free:
	desired__free(&d);
out:
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_rule_parse),      TEST(test_compile_rejects),  TEST(test_compile_semantics),
	TEST(test_node_check),      TEST(test_writer),           TEST(test_writer_rollback),
	TEST(test_node_writer),     TEST(test_node_host_hash),   TEST(test_node_lens),
	TEST(test_node_old_pins),   TEST(test_node_older_agent), TEST(test_desired_valid),
	TEST(test_desired_rejects), TEST(test_desired_apply),    TEST(test_k8s_annotations),
};

int main(int argc, char **argv)
{
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("policy", tests, ARRAY_SIZE(tests), argc, argv);
}
