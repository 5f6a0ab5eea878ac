// SPDX-License-Identifier: MIT
/*
 * test_k8s.c - the Kubernetes sync without a network: API objects (the
 * fixtures of tests/e2e/k8s/fixtures and inline ones) -> struct desired,
 * every endpoint condition, named and numeric target ports, weights from
 * annotations, traffic policies, dual stack, the skipped kinds, limits;
 * the watch-stream decoder at every chunk boundary; the merge with manual
 * services; kubeconfig / in-cluster settings and token rotation.
 * Inline JSON is written with single quotes (turned into double quotes).
 */
#define _GNU_SOURCE /* vasprintf */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "desired.h"
#include "internal.h"
#include "k8s.h"
#include "k8s_internal.h"
#include "test.h"

static struct k8s_objs *svcs, *slices;
static char warnings[8192];

static void on_warn(const char *msg, void *ctx)
{
	size_t len = strlen(warnings);

	(void)ctx;
	snprintf(warnings + len, sizeof(warnings) - len, "%s\n", msg);
}

static void setup(void)
{
	k8s_objs__free(svcs);
	k8s_objs__free(slices);
	svcs = k8s_objs__new(K8S_SERVICES);
	slices = k8s_objs__new(K8S_SLICES);
	warnings[0] = '\0';
}

/* JSON text with ' for " (printf format) -> object. */
static struct json_object *J(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct json_object *J(const char *fmt, ...)
{
	struct json_object *o;
	char *buf = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	for (char *p = buf; *p; p++)
		if (*p == '\'')
			*p = '"';
	o = json_tokener_parse(buf);
	free(buf);
	return o;
}

static int put(struct k8s_objs *o, struct json_object *obj)
{
	int err;

	if (!obj) {
		TEST_FAIL("inline JSON does not parse");
		return -EINVAL;
	}
	err = k8s_objs__put_json(o, obj);
	json_object_put(obj);
	return err;
}

/* A Service with one clusterIP and the given ports array text. */
static int add_svc(const char *name, const char *cip, const char *ports, const char *extra)
{
	return put(svcs, J("{'metadata': {'name': '%s', 'namespace': 'ns'%s},"
			   " 'spec': {'clusterIP': '%s', 'ports': %s}}",
			   name, extra ? extra : "", cip, ports));
}

/* An EndpointSlice of service `svc` with ports and endpoints text. */
static int add_slice(const char *name, const char *svc, const char *family, const char *ports,
		     const char *eps, const char *ann)
{
	return put(slices,
		   J("{'metadata': {'name': '%s', 'namespace': 'ns', 'labels': "
		     "{'kubernetes.io/service-name': '%s'}%s}, 'addressType': '%s', 'ports': %s, "
		     "'endpoints': %s}",
		     name, svc, ann ? ann : "", family, ports, eps));
}

static int xlate(struct desired *d, const char *node)
{
	struct k8s_xlate_opts o = { .node_name = node, .warn = on_warn };
	int err;

	desired__init(d);
	err = k8s__translate(svcs, slices, &o, d);
	if (!err)
		err = desired__validate(d);
	if (err)
		TEST_FAIL("translate/validate: %s", sluice__errmsg());
	return err;
}

static const struct desired_service *find(const struct desired *d, const char *vip, __u16 port,
					  __u8 proto)
{
	struct sluice_addr a;

	if (sluice_addr__parse(&a, vip))
		return NULL;
	return desired__find(d, &a, port, proto);
}

/* weight of backend addr:port, -1 when absent */
static int weight(const struct desired_service *s, const char *addr, __u16 port)
{
	struct sluice_addr a;

	if (!s || sluice_addr__parse(&a, addr))
		return -1;
	for (__u32 i = 0; i < s->nbackends; i++)
		if (s->backends[i].port == port && sluice_addr__eq(&s->backends[i].addr, &a))
			return s->backends[i].weight;
	return -1;
}

static int load_list(struct k8s_objs *o, const char *rel)
{
	char path[PATH_MAX];
	struct json_object *root, *items;
	int err = 0;

	if (!test__repo_path(path, sizeof(path), rel))
		return -ENAMETOOLONG;
	root = json_object_from_file(path);
	if (!root || !json_object_object_get_ex(root, "items", &items)) {
		TEST_FAIL("cannot read %s", path);
		json_object_put(root);
		return -EINVAL;
	}
	for (size_t i = 0; i < json_object_array_length(items) && !err; i++)
		err = k8s_objs__put_json(o, json_object_array_get_idx(items, i));
	json_object_put(root);
	return err;
}

/* The recorded-format fixtures translate exactly to expected.json. */
static void test_fixtures(void)
{
	char path[PATH_MAX];
	struct desired got, want;

	setup();
	if (!ASSERT_OK(load_list(svcs, "tests/e2e/k8s/fixtures/services.json"), "services") ||
	    !ASSERT_OK(load_list(slices, "tests/e2e/k8s/fixtures/endpointslices.json"), "slices"))
		return;
	ASSERT_EQ(k8s_objs__count(svcs), 8, "8 Services stored");
	ASSERT_EQ(k8s_objs__count(slices), 7, "7 EndpointSlices stored");
	if (xlate(&got, "n1"))
		return;
	if (!ASSERT_TRUE(test__repo_path(path, sizeof(path),
					 "tests/e2e/k8s/fixtures/expected.json"),
			 "path") ||
	    !ASSERT_OK(desired__from_file(&want, path), sluice__errmsg())) {
		desired__free(&got);
		return;
	}
	if (!ASSERT_TRUE(k8s__desired_equal(&got, &want), "translation == expected.json")) {
		struct json_object *o = desired__to_json(&got);

		fprintf(stderr, "%s\n", json_object_to_json_string(o));
		json_object_put(o);
	}
	desired__free(&got);
	desired__free(&want);
}

/* Every combination of the three conditions, including nil (absent). */
static void test_conditions(void)
{
	static const struct {
		const char *cond;
		int expect; /* weight, -1 = excluded */
	} cases[] = {
		{ "{}", 1 }, /* all nil: ready */
		{ "{'ready': true}", 1 },
		{ "{'ready': true, 'serving': true, 'terminating': false}", 1 },
		{ "{'ready': true, 'terminating': true}", 1 }, /* publishNotReadyAddresses */
		{ "{'ready': false}", -1 },                    /* serving nil = ready */
		{ "{'ready': false, 'serving': true}", -1 },   /* not terminating */
		{ "{'ready': false, 'serving': true, 'terminating': true}", 0 },
		{ "{'ready': false, 'terminating': true}", -1 }, /* serving nil = false */
		{ "{'ready': false, 'serving': false, 'terminating': true}", -1 },
		{ "{'ready': false, 'serving': false, 'terminating': false}", -1 },
		{ "{'serving': true, 'terminating': true}", 1 }, /* ready nil = true */
	};
	struct desired d;
	char eps[4096];
	size_t off;

	setup();
	ASSERT_OK(add_svc("c", "10.96.1.1", "[{'port': 80, 'targetPort': 8080}]", NULL), "svc");
	/* one always-ready anchor so terminating ones show up as draining */
	off = snprintf(eps, sizeof(eps), "[{'addresses': ['10.9.0.1']}");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		off += snprintf(eps + off, sizeof(eps) - off,
				", {'addresses': ['10.9.1.%zu'], 'conditions': %s}", i + 1,
				cases[i].cond);
	snprintf(eps + off, sizeof(eps) - off, "]");
	ASSERT_OK(add_slice("c-1", "c", "IPv4", "[{'port': 8080}]", eps, NULL), "slice");
	if (xlate(&d, NULL))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char addr[32], what[160];

		snprintf(addr, sizeof(addr), "10.9.1.%zu", i + 1);
		snprintf(what, sizeof(what), "conditions %s", cases[i].cond);
		ASSERT_EQ(weight(find(&d, "10.96.1.1", 80, IPPROTO_TCP), addr, 8080),
			  cases[i].expect, what);
	}
	desired__free(&d);
}

/* Only terminating endpoints: they keep the service up, with weight 1. */
static void test_terminating_only(void)
{
	const struct desired_service *s;
	struct desired d;

	setup();
	ASSERT_OK(add_svc("t", "10.96.1.2", "[{'port': 80, 'targetPort': 8080}]", NULL), "svc");
	ASSERT_OK(add_slice("t-1", "t", "IPv4", "[{'port': 8080}]",
			    "[{'addresses': ['10.9.2.1'], 'conditions': {'ready': false, "
			    "'serving': true, 'terminating': true}},"
			    " {'addresses': ['10.9.2.2'], 'conditions': {'ready': false, "
			    "'serving': true, 'terminating': true}},"
			    " {'addresses': ['10.9.2.3'], 'conditions': {'ready': false, "
			    "'serving': false, 'terminating': true}}]",
			    NULL),
		  "slice");
	if (xlate(&d, NULL))
		return;
	s = find(&d, "10.96.1.2", 80, IPPROTO_TCP);
	if (ASSERT_TRUE(s, "service present")) {
		ASSERT_EQ(s->nbackends, 2, "two serving endpoints");
		ASSERT_EQ(weight(s, "10.9.2.1", 8080), 1, "terminating-only weight 1");
		ASSERT_EQ(weight(s, "10.9.2.2", 8080), 1, "terminating-only weight 1");
		ASSERT_EQ(weight(s, "10.9.2.3", 8080), -1, "not serving: out");
	}
	desired__free(&d);
	/* a ready endpoint appears: the terminating ones drain */
	ASSERT_OK(add_slice("t-2", "t", "IPv4", "[{'port': 8080}]",
			    "[{'addresses': ['10.9.2.9'], 'conditions': {'ready': true}}]", NULL),
		  "second slice");
	if (xlate(&d, NULL))
		return;
	s = find(&d, "10.96.1.2", 80, IPPROTO_TCP);
	ASSERT_EQ(weight(s, "10.9.2.1", 8080), 0, "now draining");
	ASSERT_EQ(weight(s, "10.9.2.9", 8080), 1, "ready one active");
	desired__free(&d);
}

/* Named target ports resolve per slice; names and protocols must match. */
static void test_named_ports(void)
{
	const struct desired_service *s;
	struct desired d;

	setup();
	ASSERT_OK(add_svc("np", "10.96.1.3",
			  "[{'name': 'web', 'port': 80, 'targetPort': 'http'},"
			  " {'name': 'dns', 'protocol': 'UDP', 'port': 53, 'targetPort': 5353},"
			  " {'name': 'raw', 'port': 81, 'targetPort': '9100'}]",
			  NULL),
		  "svc");
	/* pods of version 1 name port 8080 "http", version 2 uses 9090 */
	ASSERT_OK(add_slice("np-a", "np", "IPv4",
			    "[{'name': 'web', 'protocol': 'TCP', 'port': 8080},"
			    " {'name': 'dns', 'protocol': 'TCP', 'port': 5353},"
			    " {'name': 'raw'}]",
			    "[{'addresses': ['10.9.3.1']}]", NULL),
		  "slice a");
	ASSERT_OK(add_slice("np-b", "np", "IPv4",
			    "[{'name': 'web', 'port': 9090}, {'name': 'dns', 'protocol': 'UDP', "
			    "'port': 5353}]",
			    "[{'addresses': ['10.9.3.2']}]", NULL),
		  "slice b");
	ASSERT_OK(add_slice("np-c", "np", "IPv4", "[{'name': 'other', 'port': 7777}]",
			    "[{'addresses': ['10.9.3.3']}]", NULL),
		  "slice c");
	if (xlate(&d, NULL))
		return;
	s = find(&d, "10.96.1.3", 80, IPPROTO_TCP);
	ASSERT_EQ(weight(s, "10.9.3.1", 8080), 1, "slice a: http = 8080");
	ASSERT_EQ(weight(s, "10.9.3.2", 9090), 1, "slice b: http = 9090");
	ASSERT_EQ(s ? s->nbackends : 0, 2, "slice c has no 'web' port");
	s = find(&d, "10.96.1.3", 53, IPPROTO_UDP);
	ASSERT_EQ(s ? s->nbackends : 0, 1, "dns: only the UDP slice port matches");
	ASSERT_EQ(weight(s, "10.9.3.2", 5353), 1, "dns backend");
	s = find(&d, "10.96.1.3", 81, IPPROTO_TCP);
	ASSERT_EQ(weight(s, "10.9.3.1", 9100), 1, "slice port without number: targetPort '9100'");
	desired__free(&d);
}

static void test_weights(void)
{
	const struct desired_service *s;
	struct desired d;
	const char *eps = "[{'addresses': ['10.9.4.1'], 'targetRef': {'kind': 'Pod', 'name': "
			  "'app-v1-x'}},"
			  " {'addresses': ['10.9.4.2'], 'targetRef': {'name': 'app-v2-y'}},"
			  " {'addresses': ['10.9.4.3'], 'targetRef': {'name': 'app-v1-z'}},"
			  " {'addresses': ['10.9.4.4']}]";

	setup();
	ASSERT_OK(add_svc("w", "10.96.1.4", "[{'port': 80, 'targetPort': 8080}]",
			  ", 'annotations': {'sluice.io/weights': "
			  "'10.9.4.3=5, app-v2-*=10,app-v1-*=90, bogus, x=70000'}"),
		  "svc");
	ASSERT_OK(add_slice("w-1", "w", "IPv4", "[{'port': 8080}]", eps,
			    ", 'annotations': {'sluice.io/weight': '7'}"),
		  "slice");
	if (xlate(&d, NULL))
		return;
	s = find(&d, "10.96.1.4", 80, IPPROTO_TCP);
	ASSERT_EQ(weight(s, "10.9.4.1", 8080), 90, "glob app-v1-*");
	ASSERT_EQ(weight(s, "10.9.4.2", 8080), 10, "glob app-v2-*");
	ASSERT_EQ(weight(s, "10.9.4.3", 8080), 5, "IP rule listed first wins");
	ASSERT_EQ(weight(s, "10.9.4.4", 8080), 7, "no rule: the slice's sluice.io/weight");
	ASSERT_TRUE(strstr(warnings, "\"bogus\" is not KEY=WEIGHT"), "bad entry reported");
	ASSERT_TRUE(strstr(warnings, "x=70000"), "bad weight reported");
	desired__free(&d);

	/* weights that would leave nothing to balance to fall back to 1 */
	setup();
	ASSERT_OK(add_svc("z", "10.96.1.5", "[{'port': 80, 'targetPort': 8080}]",
			  ", 'annotations': {'sluice.io/weights': '*=0, 10.9.4.4=0'}"),
		  "svc");
	ASSERT_OK(add_slice("z-1", "z", "IPv4", "[{'port': 8080}]", eps, NULL), "slice");
	if (xlate(&d, NULL))
		return;
	s = find(&d, "10.96.1.5", 80, IPPROTO_TCP);
	ASSERT_EQ(weight(s, "10.9.4.1", 8080), 1, "all-zero falls back to 1");
	ASSERT_TRUE(strstr(warnings, "gives every ready endpoint weight 0"), "reported");
	desired__free(&d);
}

/* sluice.io/health-check*: the check on every port of the Service, with
 * defaults; a udp port without health-check-port and a bad value leave
 * the check off with a warning; a changed annotation is a change. */
static void test_health_annotation(void)
{
	const struct desired_service *s;
	const char *eps = "[{'addresses': ['10.9.5.1']}]";
	struct desired d, e;

	setup();
	ASSERT_OK(add_svc("h", "10.96.1.6",
			  "[{'name': 'web', 'port': 80, 'targetPort': 8080},"
			  " {'name': 'dns', 'port': 53, 'protocol': 'UDP', 'targetPort': 53}]",
			  ", 'annotations': {'sluice.io/health-check': 'http:/healthz',"
			  " 'sluice.io/health-check-interval': '2s',"
			  " 'sluice.io/health-check-thresholds': '1/4'}"),
		  "svc");
	ASSERT_OK(add_slice("h-1", "h", "IPv4",
			    "[{'name': 'web', 'port': 8080}, {'name': 'dns', 'port': 53, "
			    "'protocol': 'UDP'}]",
			    eps, NULL),
		  "slice");
	if (xlate(&d, NULL))
		return;
	s = find(&d, "10.96.1.6", 80, IPPROTO_TCP);
	if (ASSERT_TRUE(s, "tcp port")) {
		ASSERT_EQ(s->health.type, DESIRED_HC_HTTP, "http");
		ASSERT_TRUE(!strcmp(s->health.path, "/healthz"), "path");
		ASSERT_EQ(s->health.interval_ms, 2000, "interval");
		ASSERT_EQ(s->health.timeout_ms, 1000, "default timeout");
		ASSERT_EQ(s->health.healthy_threshold, 1, "healthy");
		ASSERT_EQ(s->health.unhealthy_threshold, 4, "unhealthy");
	}
	s = find(&d, "10.96.1.6", 53, IPPROTO_UDP);
	if (ASSERT_TRUE(s, "udp port"))
		ASSERT_EQ(s->health.type, DESIRED_HC_NONE, "udp without a port: no check");
	ASSERT_TRUE(strstr(warnings, "healthCheck") == NULL &&
			    strstr(warnings, "a udp service's backends are probed over TCP"),
		    "udp port reported");
	/* the annotation changed: a change of the desired state */
	setup();
	ASSERT_OK(add_svc("h", "10.96.1.6",
			  "[{'name': 'web', 'port': 80, 'targetPort': 8080},"
			  " {'name': 'dns', 'port': 53, 'protocol': 'UDP', 'targetPort': 53}]",
			  ", 'annotations': {'sluice.io/health-check': 'tcp',"
			  " 'sluice.io/health-check-timeout': 'soon'}"),
		  "svc bad timeout");
	ASSERT_OK(add_slice("h-1", "h", "IPv4",
			    "[{'name': 'web', 'port': 8080}, {'name': 'dns', 'port': 53, "
			    "'protocol': 'UDP'}]",
			    eps, NULL),
		  "slice");
	if (xlate(&e, NULL)) {
		desired__free(&d);
		return;
	}
	s = find(&e, "10.96.1.6", 80, IPPROTO_TCP);
	if (ASSERT_TRUE(s, "tcp port"))
		ASSERT_EQ(s->health.type, DESIRED_HC_NONE, "bad timeout: check off");
	ASSERT_TRUE(strstr(warnings, "sluice.io/health-check-timeout \"soon\""),
		    "bad timeout reported");
	ASSERT_EQ(e.nservices, d.nservices, "same services");
	ASSERT_FALSE(k8s__desired_equal(&d, &e), "a check change is a change");
	desired__free(&d);
	desired__free(&e);
}

/* Headless, ExternalName, SCTP, other proxies: nothing; proxy_name match: in. */
static void test_skipped(void)
{
	struct k8s_xlate_opts o = { .proxy_name = "sluice" };
	struct desired d;

	setup();
	ASSERT_OK(add_svc("h", "None", "[{'port': 80}]", NULL), "headless");
	ASSERT_OK(put(svcs, J("{'metadata': {'name': 'x', 'namespace': 'ns'}, 'spec': "
			      "{'type': 'ExternalName', 'externalName': 'a.example'}}")),
		  "externalname");
	ASSERT_OK(add_svc("s", "10.96.1.6", "[{'protocol': 'SCTP', 'port': 80}]", NULL), "sctp");
	ASSERT_OK(add_svc("p", "10.96.1.7", "[{'port': 80}]",
			  ", 'labels': {'service.kubernetes.io/service-proxy-name': 'sluice'}"),
		  "labelled");
	ASSERT_OK(add_slice("h-1", "h", "IPv4", "[{'port': 80}]", "[{'addresses': ['10.9.5.1']}]",
			    NULL),
		  "slice");
	if (xlate(&d, NULL))
		return;
	ASSERT_EQ(d.nservices, 0, "nothing translated");
	desired__free(&d);
	desired__init(&d);
	ASSERT_OK(k8s__translate(svcs, slices, &o, &d), "with proxy_name");
	ASSERT_EQ(d.nservices, 1, "the service labelled for us");
	desired__free(&d);
}

/* Local traffic policies keep this node's endpoints (when the node is known). */
static void test_traffic_policy(void)
{
	struct desired d;

	setup();
	ASSERT_OK(put(svcs, J("{'metadata': {'name': 'l', 'namespace': 'ns'}, 'spec': {"
			      "'type': 'LoadBalancer', 'clusterIP': '10.96.1.8', 'externalIPs': "
			      "['192.0.2.8'], 'externalTrafficPolicy': 'Local', "
			      "'internalTrafficPolicy': 'Cluster', 'ports': [{'port': 80}]}}")),
		  "svc");
	ASSERT_OK(add_slice("l-1", "l", "IPv4", "[{'port': 80}]",
			    "[{'addresses': ['10.9.6.1'], 'nodeName': 'n1'},"
			    " {'addresses': ['10.9.6.2'], 'nodeName': 'n2'},"
			    " {'addresses': ['10.9.6.3']}]",
			    NULL),
		  "slice");
	if (xlate(&d, "n1"))
		return;
	ASSERT_EQ(find(&d, "10.96.1.8", 80, IPPROTO_TCP)->nbackends, 3, "cluster IP: all");
	ASSERT_EQ(find(&d, "192.0.2.8", 80, IPPROTO_TCP)->nbackends, 1, "external IP: local");
	ASSERT_EQ(weight(find(&d, "192.0.2.8", 80, IPPROTO_TCP), "10.9.6.1", 80), 1, "n1's");
	desired__free(&d);
	if (xlate(&d, NULL))
		return;
	ASSERT_EQ(find(&d, "192.0.2.8", 80, IPPROTO_TCP)->nbackends, 3, "node unknown: all");
	desired__free(&d);
}

/* spec.sessionAffinity / sessionAffinityConfig.clientIP.timeoutSeconds */
static void test_session_affinity(void)
{
	static const struct {
		const char *name, *cip, *spec;
		__u32 want;
	} cases[] = {
		{ "a", "10.96.2.1",
		  ", 'sessionAffinity': 'ClientIP', 'sessionAffinityConfig': "
		  "{'clientIP': {'timeoutSeconds': 600}}",
		  600 },
		{ "b", "10.96.2.2", ", 'sessionAffinity': 'ClientIP'", 10800 },
		{ "c", "10.96.2.3", ", 'sessionAffinity': 'None'", 0 },
		{ "d", "10.96.2.4", "", 0 },
		{ "e", "10.96.2.5",
		  ", 'sessionAffinity': 'ClientIP', 'sessionAffinityConfig': "
		  "{'clientIP': {'timeoutSeconds': 0}}",
		  10800 },
	};
	struct desired d, d2;

	setup();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		ASSERT_OK(put(svcs, J("{'metadata': {'name': '%s', 'namespace': 'ns'}, 'spec': {"
				      "'clusterIP': '%s', 'ports': [{'port': 80}]%s}}",
				      cases[i].name, cases[i].cip, cases[i].spec)),
			  cases[i].name);
		ASSERT_OK(add_slice(cases[i].name, cases[i].name, "IPv4", "[{'port': 80}]",
				    "[{'addresses': ['10.9.7.1']}]", NULL),
			  "slice");
	}
	if (xlate(&d, NULL))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct desired_service *s = find(&d, cases[i].cip, 80, IPPROTO_TCP);

		if (ASSERT_TRUE(s != NULL, cases[i].name))
			ASSERT_EQ(s->affinity_timeout_s, cases[i].want, cases[i].name);
	}
	ASSERT_TRUE(strstr(warnings, "timeoutSeconds 0 is not 1-86400") != NULL,
		    "warning about the bad timeout");
	/* a change of affinity alone makes the translation differ */
	if (ASSERT_OK(desired__copy(&d2, &d), "copy")) {
		ASSERT_TRUE(k8s__desired_equal(&d, &d2), "copies equal");
		d2.services[0].affinity_timeout_s += 1;
		ASSERT_FALSE(k8s__desired_equal(&d, &d2), "affinity differs");
		desired__free(&d2);
	}
	desired__free(&d);
}

/* Dual stack: each VIP takes the slices of its family. */
static void test_dual_stack(void)
{
	const struct desired_service *s4, *s6;
	struct desired d;

	setup();
	ASSERT_OK(put(svcs,
		      J("{'metadata': {'name': 'ds', 'namespace': 'ns'}, 'spec': {"
			"'clusterIP': 'fd00::96:9', 'clusterIPs': ['fd00::96:9', '10.96.1.9'],"
			" 'ports': [{'name': 'h', 'port': 80}]}}")),
		  "svc");
	ASSERT_OK(add_slice("ds-4", "ds", "IPv4", "[{'name': 'h', 'port': 80}]",
			    "[{'addresses': ['10.9.7.1']}]", NULL),
		  "v4 slice");
	ASSERT_OK(add_slice("ds-6", "ds", "IPv6", "[{'name': 'h', 'port': 80}]",
			    "[{'addresses': ['fd00::9:7:1']}, {'addresses': ['10.9.7.9']}]", NULL),
		  "v6 slice");
	if (xlate(&d, NULL))
		return;
	s4 = find(&d, "10.96.1.9", 80, IPPROTO_TCP);
	s6 = find(&d, "fd00::96:9", 80, IPPROTO_TCP);
	ASSERT_EQ(s4 ? s4->nbackends : 0, 1, "IPv4 VIP: the IPv4 slice");
	ASSERT_EQ(s6 ? s6->nbackends : 0, 1, "IPv6 VIP: the IPv6 slice");
	ASSERT_EQ(weight(s6, "fd00::9:7:1", 80), 1, "v6 backend");
	ASSERT_TRUE(strstr(warnings, "\"10.9.7.9\" is not an IPv6 address"), "mixed slice noted");
	ASSERT_EQ(d.services[0].vip.family, SLUICE_AF_INET, "sorted: IPv4 first");
	desired__free(&d);
}

/* Same endpoint twice (slice migration), backend == VIP:port, VIP clash. */
static void test_dedupe_and_clash(void)
{
	const struct desired_service *s;
	struct desired d;

	setup();
	ASSERT_OK(add_svc("a", "10.96.1.10", "[{'port': 80}]", NULL), "a");
	ASSERT_OK(add_svc("b", "10.96.1.10", "[{'port': 80}]", NULL), "b clashes");
	ASSERT_OK(
		add_slice("a-1", "a", "IPv4", "[{'port': 80}]",
			  "[{'addresses': ['10.9.8.1'], 'conditions': {'ready': false, "
			  "'serving': true, 'terminating': true}}, {'addresses': ['10.96.1.10']}]",
			  NULL),
		"a-1");
	ASSERT_OK(add_slice("a-2", "a", "IPv4", "[{'port': 80}]",
			    "[{'addresses': ['10.9.8.1']}, {'addresses': ['10.9.8.2']}]", NULL),
		  "a-2");
	if (xlate(&d, NULL))
		return;
	ASSERT_EQ(d.nservices, 1, "one service per key");
	s = find(&d, "10.96.1.10", 80, IPPROTO_TCP);
	if (ASSERT_TRUE(s, "present")) {
		ASSERT_TRUE(!strcmp(s->name, "ns/a"), "the first by namespace/name stays");
		ASSERT_EQ(s->nbackends, 2, "duplicate and self removed");
		ASSERT_EQ(weight(s, "10.9.8.1", 80), 1, "the ready copy wins");
	}
	ASSERT_TRUE(strstr(warnings, "10.96.1.10:80/tcp of ns/b is already used by ns/a"),
		    "clash reported");
	desired__free(&d);
}

static void test_long_name_and_limits(void)
{
	static char eps[1100 * 128];
	char name[80];
	const struct desired_service *s;
	struct desired d;
	size_t off;

	setup();
	memset(name, 'n', 60);
	name[60] = '\0';
	ASSERT_OK(add_svc(name, "10.96.1.11", "[{'name': 'a-long-port-name', 'port': 80}]", NULL),
		  "long");
	off = snprintf(eps, sizeof(eps), "[");
	for (int i = 0; i < 1100; i++)
		off += snprintf(eps + off, sizeof(eps) - off,
				"%s{'addresses': ['10.10.%d.%d'], 'conditions': {'ready': %s, "
				"'serving': true, 'terminating': %s}}",
				i ? ", " : "", i / 256, i % 256, i % 2 ? "true" : "false",
				i % 2 ? "false" : "true");
	snprintf(eps + off, sizeof(eps) - off, "]");
	ASSERT_OK(add_slice("big", name, "IPv4", "[{'name': 'a-long-port-name', 'port': 80}]", eps,
			    NULL),
		  "big slice");
	if (xlate(&d, NULL))
		return;
	s = find(&d, "10.96.1.11", 80, IPPROTO_TCP);
	if (ASSERT_TRUE(s, "present")) {
		__u32 active = 0;

		ASSERT_EQ(strlen(s->name), DESIRED_NAME_MAX - 1, "name cut to 63");
		ASSERT_TRUE(strchr(s->name, '~'), "with a hash");
		ASSERT_EQ(s->nbackends, SLUICE_MAX_SVC_BACKENDS, "capped");
		for (__u32 i = 0; i < s->nbackends; i++)
			active += s->backends[i].weight > 0;
		ASSERT_EQ(active, 550, "all 550 ready ones kept");
	}
	ASSERT_TRUE(strstr(warnings, "exceed the limit"), "cap reported");
	desired__free(&d);
}

/* Bad objects are refused whole; the store keeps what it had. */
static void test_store(void)
{
	struct json_object *ref;
	struct desired d;

	setup();
	ASSERT_OK(add_svc("s", "10.96.1.12", "[{'port': 80}]", NULL), "add");
	ASSERT_OK(add_svc("s", "10.96.1.13", "[{'port': 80}]", NULL), "replace");
	ASSERT_EQ(k8s_objs__count(svcs), 1, "replaced, not added");
	ASSERT_EQ(put(svcs, J("{'metadata': {'namespace': 'ns'}, 'spec': {}}")), -EINVAL,
		  "no name");
	ASSERT_TRUE(strstr(sluice__errmsg(), "metadata.name"), "names the field");
	ASSERT_EQ(put(svcs, J("{'metadata': {'name': 's', 'namespace': 'ns'}, 'spec': "
			      "{'clusterIP': '10.96.1.14', 'ports': 'eighty'}}")),
		  -EINVAL, "ports of the wrong type");
	ASSERT_EQ(put(slices, J("{'metadata': {'name': 'x', 'namespace': 'ns'}, 'addressType': "
				"'IPv4', 'endpoints': [{'addresses': ['10.0.0.1'], 'conditions': "
				"{'ready': 'yes'}}]}")),
		  -EINVAL, "condition of the wrong type");
	if (!xlate(&d, NULL)) {
		ASSERT_EQ(d.nservices, 1, "still the replaced one");
		ASSERT_TRUE(find(&d, "10.96.1.13", 80, IPPROTO_TCP), "unchanged by bad updates");
		desired__free(&d);
	}
	ref = J("{'metadata': {'name': 's', 'namespace': 'ns'}}");
	ASSERT_OK(k8s_objs__del_json(svcs, ref), "delete");
	ASSERT_EQ(k8s_objs__count(svcs), 0, "deleted");
	ASSERT_OK(k8s_objs__del_json(svcs, ref), "delete a missing one");
	json_object_put(ref);
}

struct collected {
	int n;
	char types[64][16];
	bool fail_third;
};

static int collect(struct json_object *v, void *ctx)
{
	struct collected *c = ctx;
	struct json_object *t;

	if (c->n < 64 && json_object_object_get_ex(v, "type", &t))
		snprintf(c->types[c->n], sizeof(c->types[0]), "%s", json_object_get_string(t));
	c->n++;
	return c->fail_third && c->n == 3 ? -ECANCELED : 0;
}

/* Any chunking of a watch body yields the same events. */
static void test_stream(void)
{
	const char *body =
		"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"5\"}}}\n"
		"{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":"
		"\"6\",\"x\":\"a}b{\\\"c\"}}}\n\n"
		"{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}}}\n";
	size_t len = strlen(body);
	struct k8s_stream s;

	for (size_t step = 1; step <= len; step++) {
		struct collected c = { 0 };
		int err = 0;

		if (!ASSERT_OK(k8s_stream__init(&s, 1 << 20), "init"))
			return;
		for (size_t off = 0; off < len && !err; off += step)
			err = k8s_stream__feed(&s, body + off, off + step > len ? len - off : step,
					       collect, &c);
		if (!ASSERT_OK(err, "feed") || !ASSERT_EQ(c.n, 3, "three events") ||
		    !ASSERT_TRUE(!strcmp(c.types[2], "DELETED"), "in order")) {
			fprintf(stderr, "  at chunk size %zu\n", step);
			k8s_stream__free(&s);
			return;
		}
		k8s_stream__free(&s);
	}

	/* malformed JSON: an error naming it, the events before it delivered */
	{
		struct collected c = { 0 };
		const char *bad = "{\"type\":\"ADDED\",\"object\":{}}\n{\"type\": oops}\n";

		k8s_stream__init(&s, 1 << 20);
		ASSERT_EQ(k8s_stream__feed(&s, bad, strlen(bad), collect, &c), -EBADMSG,
			  "malformed");
		ASSERT_EQ(c.n, 1, "the good event before it");
		ASSERT_TRUE(strstr(sluice__errmsg(), "malformed JSON"), "message");
		k8s_stream__free(&s);
	}
	/* a value that is not an object: refused where it starts, however the
	 * body is cut ("4" then "-" used to read as one pending number) */
	for (size_t step = 1; step <= 2; step++) {
		struct collected c = { 0 };
		const char *num = "4-";
		int err = 0;

		k8s_stream__init(&s, 1 << 20);
		for (size_t off = 0; off < 2 && !err; off += step)
			err = k8s_stream__feed(&s, num + off, step, collect, &c);
		ASSERT_EQ(err, -EBADMSG, "a bare number");
		ASSERT_TRUE(strstr(sluice__errmsg(), "expected an event object near \"4"),
			    "message");
		k8s_stream__free(&s);
	}
	/* a character of several bytes cut by a chunk's end is no error */
	for (size_t step = 1; step <= 4; step++) {
		struct collected c = { 0 };
		const char *utf =
			"{\"type\":\"ADDED\",\"object\":{\"x\": \"caf\xc3\xa9 \xe2\x82\xac "
			"\xf0\x9f\x98\x80\"}}\n";
		size_t ulen = strlen(utf);
		int err = 0;

		k8s_stream__init(&s, 1 << 20);
		for (size_t off = 0; off < ulen && !err; off += step)
			err = k8s_stream__feed(&s, utf + off, off + step > ulen ? ulen - off : step,
					       collect, &c);
		if (!ASSERT_OK(err, sluice__errmsg()) || !ASSERT_EQ(c.n, 1, "one event"))
			fprintf(stderr, "  at chunk size %zu\n", step);
		k8s_stream__free(&s);
	}
	/* a malformed number is refused at every chunk size (json-c read
	 * "4" then "-1}" as 4 when a boundary fell between them) */
	for (size_t step = 1; step <= 40; step++) {
		struct collected c = { 0 };
		const char *bad = "{\"type\":\"ADDED\",\"object\":{\"code\": 4-1}}\n";
		size_t blen = strlen(bad);
		int err = 0;

		k8s_stream__init(&s, 1 << 20);
		for (size_t off = 0; off < blen && !err; off += step)
			err = k8s_stream__feed(&s, bad + off, off + step > blen ? blen - off : step,
					       collect, &c);
		if (!ASSERT_EQ(err, -EBADMSG, "4-1") || !ASSERT_EQ(c.n, 0, "no event"))
			fprintf(stderr, "  at chunk size %zu\n", step);
		k8s_stream__free(&s);
	}
	/* a value that never ends is cut at max */
	{
		struct collected c = { 0 };
		char big[300];

		memset(big, ' ', sizeof(big));
		memcpy(big, "{\"type\": \"", 10);
		k8s_stream__init(&s, 100);
		ASSERT_EQ(k8s_stream__feed(&s, big, sizeof(big), collect, &c), -EBADMSG, "too big");
		k8s_stream__free(&s);
	}
	/* the callback can stop the feed */
	{
		struct collected c = { .fail_third = true };

		k8s_stream__init(&s, 1 << 20);
		ASSERT_EQ(k8s_stream__feed(&s, body, len, collect, &c), -ECANCELED, "stopped");
		k8s_stream__free(&s);
	}
}

static void test_events(void)
{
	struct json_object *obj, *ev;
	enum k8s_ev_type type;
	const char *rv;
	int code;

	ev = J("{'type': 'MODIFIED', 'object': {'metadata': {'resourceVersion': '42'}}}");
	ASSERT_OK(k8s_event__decode(ev, &type, &obj, &rv, &code), "modified");
	ASSERT_EQ(type, K8S_EV_MODIFIED, "type");
	ASSERT_TRUE(rv && !strcmp(rv, "42"), "rv");
	json_object_put(ev);
	ev = J("{'type': 'ERROR', 'object': {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {},"
	       " 'status': 'Failure', 'message': 'too old resource version: 1 (5)', 'reason': "
	       "'Expired', 'code': 410}}");
	ASSERT_OK(k8s_event__decode(ev, &type, &obj, &rv, &code), "error event");
	ASSERT_EQ(type, K8S_EV_ERROR, "ERROR");
	ASSERT_EQ(code, 410, "410 Gone");
	json_object_put(ev);
	ev = J("{'type': 'BOOKMARK', 'object': {'kind': 'Service', 'metadata': {}}}");
	ASSERT_EQ(k8s_event__decode(ev, &type, &obj, &rv, &code), -EINVAL, "bookmark without rv");
	json_object_put(ev);
	ev = J("{'type': 'SURPRISE', 'object': {}}");
	ASSERT_EQ(k8s_event__decode(ev, &type, &obj, &rv, &code), -EINVAL, "unknown type");
	json_object_put(ev);
	ev = J("[1, 2]");
	ASSERT_EQ(k8s_event__decode(ev, &type, &obj, &rv, &code), -EINVAL, "not an event");
	json_object_put(ev);
}

static void mk_svc(struct desired_service *s, const char *vip, const char *source, int nbe)
{
	memset(s, 0, sizeof(*s));
	sluice_addr__parse(&s->vip, vip);
	s->port = 80;
	s->proto = IPPROTO_TCP;
	snprintf(s->name, sizeof(s->name), "%s", vip);
	snprintf(s->source, sizeof(s->source), "%s", source);
	s->nbackends = nbe;
	s->backends = nbe ? calloc(nbe, sizeof(*s->backends)) : NULL;
	for (int i = 0; i < nbe; i++) {
		sluice_addr__parse(&s->backends[i].addr, "10.0.0.1");
		s->backends[i].addr.addr[0] = htonl(0x0a000001 + i);
		s->backends[i].port = 8080;
		s->backends[i].weight = 1;
	}
}

static void test_merge(void)
{
	struct desired cur = { 0 }, kube = { 0 }, out;
	__u32 conflicts = 9;

	cur.nservices = 3;
	cur.services = calloc(3, sizeof(*cur.services));
	mk_svc(&cur.services[0], "10.96.2.1", "manual", 1);
	mk_svc(&cur.services[1], "10.96.2.2", "kubernetes", 2); /* gone from the cluster */
	mk_svc(&cur.services[2], "10.96.2.3", "kubernetes", 1);
	kube.nservices = 2;
	kube.services = calloc(2, sizeof(*kube.services));
	mk_svc(&kube.services[0], "10.96.2.1", "kubernetes", 3); /* clashes with manual */
	mk_svc(&kube.services[1], "10.96.2.3", "kubernetes", 2);

	ASSERT_OK(k8s__merge(&cur, &kube, true, &out, &conflicts), "merge complete");
	ASSERT_EQ(conflicts, 1, "one clash");
	ASSERT_EQ(out.nservices, 2, "manual + kube");
	ASSERT_TRUE(!strcmp(out.services[0].source, "manual") && out.services[0].nbackends == 1,
		    "manual wins its key");
	ASSERT_EQ(out.services[1].nbackends, 2, "kube service updated");
	ASSERT_OK(desired__validate(&out), "valid");
	desired__free(&out);

	ASSERT_OK(k8s__merge(&cur, &kube, false, &out, NULL), "merge incomplete");
	ASSERT_EQ(out.nservices, 3, "nothing deleted before a full sync");
	ASSERT_TRUE(desired__find(&out, &cur.services[1].vip, 80, IPPROTO_TCP), "10.96.2.2 kept");
	desired__free(&out);
	desired__free(&cur);
	desired__free(&kube);
}

static void test_equal(void)
{
	struct desired a, b;

	setup();
	ASSERT_OK(load_list(svcs, "tests/e2e/k8s/fixtures/services.json"), "services");
	ASSERT_OK(load_list(slices, "tests/e2e/k8s/fixtures/endpointslices.json"), "slices");
	if (xlate(&a, "n1") || xlate(&b, "n1"))
		return;
	ASSERT_TRUE(k8s__desired_equal(&a, &b), "same input, equal output");
	b.services[0].backends[1].weight++;
	ASSERT_FALSE(k8s__desired_equal(&a, &b), "a weight differs");
	b.services[0].backends[1].weight--;
	b.services[2].name[0] = 'X';
	ASSERT_FALSE(k8s__desired_equal(&a, &b), "a name differs");
	desired__free(&a);
	desired__free(&b);
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

static void test_config(void)
{
	char dir[] = "/tmp/sluice-k8s-XXXXXX", path[PATH_MAX], kc[PATH_MAX], tok[256], *pem;
	struct k8s_conn c;
	size_t len;

	if (!ASSERT_TRUE(mkdtemp(dir), "tmpdir"))
		return;
	ASSERT_OK(k8s__base64_decode("aGVsbG8g\nd29ybGQ=", &pem, &len), "base64");
	ASSERT_TRUE(len == 11 && !memcmp(pem, "hello world", 11), "decoded");
	free(pem);
	ASSERT_EQ(k8s__base64_decode("a$b=", &pem, &len), -EINVAL, "bad base64");

	/* in-cluster: env + service account directory, IPv6 host in brackets */
	snprintf(path, sizeof(path), "%s/token", dir);
	write_file(path, "tok-1\n");
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	write_file(path, "-----BEGIN CERTIFICATE-----\n");
	if (ASSERT_OK(k8s_conn__in_cluster(&c, "fd00::1", "443", dir), sluice__errmsg())) {
		ASSERT_TRUE(!strcmp(c.server, "https://[fd00::1]:443"), "server URL");
		ASSERT_OK(k8s_conn__token(&c, tok, sizeof(tok)), "token");
		ASSERT_TRUE(!strcmp(tok, "tok-1"), "token read, newline cut");
		snprintf(path, sizeof(path), "%s/token", dir);
		write_file(path, "tok-2");
		ASSERT_OK(k8s_conn__token(&c, tok, sizeof(tok)), "token again");
		ASSERT_TRUE(!strcmp(tok, "tok-2"), "a rotated token is picked up");
		k8s_conn__free(&c);
	}
	ASSERT_EQ(k8s_conn__in_cluster(&c, NULL, NULL, dir), -ENOENT, "not in a cluster");

	/* kubeconfig: CA data, a relative tokenFile */
	snprintf(kc, sizeof(kc), "%s/config", dir);
	write_file(kc, "apiVersion: v1\nkind: Config\ncurrent-context: b\n"
		       "clusters:\n- name: c1\n  cluster:\n    server: https://10.0.0.1:6443/\n"
		       "    certificate-authority-data: aGVsbG8=\n"
		       "contexts:\n- name: a\n  context: {cluster: nope, user: nope}\n"
		       "- name: b\n  context:\n    cluster: c1\n    user: u1\n"
		       "users:\n- name: u1\n  user:\n    tokenFile: token\n");
	if (ASSERT_OK(k8s_conn__from_kubeconfig(&c, kc), sluice__errmsg())) {
		ASSERT_TRUE(!strcmp(c.server, "https://10.0.0.1:6443"), "server, no trailing /");
		ASSERT_TRUE(c.ca_pem && c.ca_len == 5 && !memcmp(c.ca_pem, "hello", 5), "CA data");
		ASSERT_TRUE(c.token_file && strstr(c.token_file, dir), "tokenFile made absolute");
		k8s_conn__free(&c);
	}
	write_file(kc, "current-context: b\nclusters:\n- name: c1\n  cluster:\n"
		       "    server: https://k:6443\n    insecure-skip-tls-verify: true\n"
		       "contexts:\n- name: b\n  context: {cluster: c1, user: u1}\n"
		       "users:\n- name: u1\n  user:\n    token: 12345\n"
		       "    client-certificate-data: aGVsbG8=\n    client-key-data: aGVsbG8=\n");
	if (ASSERT_OK(k8s_conn__from_kubeconfig(&c, kc), sluice__errmsg())) {
		ASSERT_TRUE(c.insecure, "insecure-skip-tls-verify");
		ASSERT_OK(k8s_conn__token(&c, tok, sizeof(tok)), "static token");
		ASSERT_TRUE(!strcmp(tok, "12345"), "an all-digit token stays text");
		ASSERT_TRUE(c.cert_pem && c.key_pem, "client certificate");
		k8s_conn__free(&c);
	}
	write_file(kc, "current-context: b\nclusters:\n- name: c1\n  cluster: {server: "
		       "'https://k'}\ncontexts:\n- name: b\n  context: {cluster: c1, user: u1}\n"
		       "users:\n- name: u1\n  user:\n    exec: {command: aws}\n");
	ASSERT_EQ(k8s_conn__from_kubeconfig(&c, kc), -ENOTSUP, "exec plugin refused");
	ASSERT_TRUE(strstr(sluice__errmsg(), "user.exec is not supported"), "says why");
	write_file(kc, "clusters: []\n");
	ASSERT_EQ(k8s_conn__from_kubeconfig(&c, kc), -EINVAL, "no current-context");
	ASSERT_TRUE(strstr(sluice__errmsg(), "no current-context"), "says so");

	snprintf(path, sizeof(path), "rm -rf %s", dir);
	if (system(path))
		TEST_FAIL("cleanup");
}

static const struct test tests[] = {
	TEST(test_fixtures),
	TEST(test_conditions),
	TEST(test_terminating_only),
	TEST(test_named_ports),
	TEST(test_weights),
	TEST(test_health_annotation),
	TEST(test_skipped),
	TEST(test_traffic_policy),
	TEST(test_session_affinity),
	TEST(test_dual_stack),
	TEST(test_dedupe_and_clash),
	TEST(test_long_name_and_limits),
	TEST(test_store),
	TEST(test_stream),
	TEST(test_events),
	TEST(test_merge),
	TEST(test_equal),
	TEST(test_config),
};

int main(int argc, char **argv)
{
	int ret = test__run_all("k8s", tests, ARRAY_SIZE(tests), argc, argv);

	k8s_objs__free(svcs);
	k8s_objs__free(slices);
	return ret;
}
