// SPDX-License-Identifier: MIT
/*
 * test_k8s_nodeport.c - NodePorts, externalTrafficPolicy and
 * healthCheckNodePort in the Kubernetes translation, without a network:
 * a nodePort on each node address of the Service's families, the
 * --nodeport-addresses filter, UDP, Cluster vs Local endpoints, a
 * LoadBalancer without nodePorts (allocateLoadBalancerNodePorts false),
 * node addresses coming and going, hostile nodePort values, snat for
 * Cluster (to the node address for load-balancer and external IPs) and
 * drop-when-empty for Local, and the
 * healthCheckNodePort set with kube-proxy's local endpoint count.
 * Inline JSON is written with single quotes (turned into double quotes).
 */
#define _GNU_SOURCE /* vasprintf */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <netinet/in.h>

#include "desired.h"
#include "internal.h"
#include "k8s.h"
#include "k8s_internal.h"
#include "test.h"

static struct k8s_objs *svcs, *slices;
static char warnings[8192];
static struct sluice_addr node[8];
static __u32 nnode;

static void on_warn(const char *msg, void *ctx)
{
	size_t len = strlen(warnings);

	(void)ctx;
	snprintf(warnings + len, sizeof(warnings) - len, "%s\n", msg);
}

/* Node addresses from "a,b,c" (no filter: every one given is usable). */
static void set_nodes(const char *list)
{
	char buf[256], *save = NULL;

	nnode = 0;
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *t = strtok_r(buf, ",", &save); t && nnode < 8; t = strtok_r(NULL, ",", &save))
		if (!sluice_addr__parse(&node[nnode], t))
			nnode++;
}

static void setup(void)
{
	k8s_objs__free(svcs);
	k8s_objs__free(slices);
	svcs = k8s_objs__new(K8S_SERVICES);
	slices = k8s_objs__new(K8S_SLICES);
	warnings[0] = '\0';
	set_nodes("192.0.2.1,198.51.100.1,2001:db8::1");
}

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

/* A Service named `name` with the given spec fields (text after "spec": {). */
static int add_svc(const char *name, const char *spec)
{
	return put(svcs,
		   J("{'metadata': {'name': '%s', 'namespace': 'ns'}, 'spec': {%s}}", name, spec));
}

/* Endpoints 10.9.0.1 on n1 and 10.9.0.2 on n2, ready, port 8080 named http (tcp). */
static int add_eps(const char *svc, const char *ports)
{
	char name[64];

	snprintf(name, sizeof(name), "%s-1", svc);
	return put(
		slices,
		J("{'metadata': {'name': '%s', 'namespace': 'ns', 'labels': "
		  "{'kubernetes.io/service-name': '%s'}}, 'addressType': 'IPv4', 'ports': %s, "
		  "'endpoints': [{'addresses': ['10.9.0.1'], 'nodeName': 'n1'},"
		  " {'addresses': ['10.9.0.2'], 'nodeName': 'n2'},"
		  " {'addresses': ['10.9.0.3'], 'nodeName': 'n1', 'conditions': {'ready': false}}]}",
		  name, svc, ports));
}

static int xlate(struct desired *d, const char *node_name)
{
	struct k8s_xlate_opts o = {
		.node_name = node_name, .node_addrs = node, .nnode_addrs = nnode, .warn = on_warn
	};
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

static bool has_backend(const struct desired_service *s, const char *addr, __u16 port)
{
	struct sluice_addr a;

	if (!s || sluice_addr__parse(&a, addr))
		return false;
	for (__u32 i = 0; i < s->nbackends; i++)
		if (s->backends[i].port == port && sluice_addr__eq(&s->backends[i].addr, &a))
			return true;
	return false;
}

static __u32 count_nodeports(const struct desired *d)
{
	__u32 n = 0;

	for (__u32 i = 0; i < d->nservices; i++)
		n += strstr(d->services[i].name, K8S_NODEPORT_MARK) != NULL;
	return n;
}

#define NP_SPEC                                                                             \
	"'type': 'NodePort', 'clusterIP': '10.96.0.5', 'ports': [{'name': 'http', 'port': " \
	"80, 'targetPort': 8080, 'nodePort': 30080}]"
#define HTTP_PORTS "[{'name': 'http', 'port': 8080}]"

/* One service per node address of the Service's family, the cluster IP's backends. */
static void test_each_node_address(void)
{
	const struct desired_service *c, *a, *b;
	struct desired d;

	setup();
	ASSERT_OK(add_svc("np", NP_SPEC), "svc");
	ASSERT_OK(add_eps("np", HTTP_PORTS), "slice");
	if (xlate(&d, "n1"))
		return;
	c = find(&d, "10.96.0.5", 80, IPPROTO_TCP);
	a = find(&d, "192.0.2.1", 30080, IPPROTO_TCP);
	b = find(&d, "198.51.100.1", 30080, IPPROTO_TCP);
	ASSERT_EQ(d.nservices, 3, "cluster IP + two IPv4 node addresses");
	ASSERT_TRUE(c && a && b, "all present");
	ASSERT_TRUE(!find(&d, "2001:db8::1", 30080, IPPROTO_TCP), "no IPv6: single-stack IPv4");
	if (a && c) {
		ASSERT_TRUE(!strcmp(a->name, "ns/np:http@nodeport"), "named with the marker");
		ASSERT_TRUE(!strcmp(a->source, K8S_SOURCE), "source kubernetes");
		ASSERT_EQ(a->nbackends, c->nbackends, "same endpoints as the cluster IP");
		ASSERT_EQ(a->nbackends, 2, "the two ready ones (Cluster: both nodes)");
		ASSERT_TRUE(has_backend(a, "10.9.0.2", 8080), "remote endpoint too");
	}
	desired__free(&d);
	/* a ClusterIP Service never gets one, even with a stray nodePort */
	setup();
	ASSERT_OK(add_svc("cip", "'clusterIP': '10.96.0.6', 'ports': [{'port': 80, "
				 "'nodePort': 30081}]"),
		  "svc");
	if (xlate(&d, "n1"))
		return;
	ASSERT_EQ(count_nodeports(&d), 0, "type ClusterIP: no NodePort");
	desired__free(&d);
}

/* Dual stack: each family's node addresses, each with its own slices. */
static void test_dual_stack(void)
{
	const struct desired_service *s6;
	struct desired d;

	setup();
	ASSERT_OK(add_svc("ds", "'type': 'NodePort', 'clusterIPs': ['10.96.0.7', 'fd00::7'], "
				"'ports': [{'port': 53, 'protocol': 'UDP', 'nodePort': 30053}]"),
		  "svc");
	ASSERT_OK(put(slices, J("{'metadata': {'name': 'ds-6', 'namespace': 'ns', 'labels': "
				"{'kubernetes.io/service-name': 'ds'}}, 'addressType': 'IPv6', "
				"'ports': [{'port': 5353, 'protocol': 'UDP'}], "
				"'endpoints': [{'addresses': ['fd00::9:1']}]}")),
		  "v6 slice");
	if (xlate(&d, NULL))
		return;
	ASSERT_EQ(count_nodeports(&d), 3, "2 IPv4 + 1 IPv6 node addresses");
	s6 = find(&d, "2001:db8::1", 30053, IPPROTO_UDP);
	ASSERT_TRUE(has_backend(s6, "fd00::9:1", 5353), "IPv6 node address: IPv6 endpoint");
	ASSERT_TRUE(!find(&d, "192.0.2.1", 30053, IPPROTO_TCP), "UDP only");
	ASSERT_EQ(find(&d, "192.0.2.1", 30053, IPPROTO_UDP)->nbackends, 0,
		  "IPv4: no IPv4 endpoint");
	desired__free(&d);
}

/* --nodeport-addresses and the addresses that never serve NodePorts. */
static void test_nodeport_addresses(void)
{
	static const char *const bad[] = { "",           "10.0.0.0/33",
					   "fd00::/129", "abc/8",
					   "10.0.0.0",   "10.0.0.0/8,",
					   "10.0.0.0/x", "10.0.0.0/8,,fd00::/64" };
	static const char *const never[] = { "127.0.0.1", "169.254.3.4", "0.0.0.0", "224.0.0.1",
					     "::1",       "fe80::1",     "::",      "ff02::1" };
	struct k8s_cidr *c = NULL;
	struct sluice_addr a;
	__u32 n = 0;

	if (!ASSERT_OK(k8s_cidrs__parse(" 192.0.2.7/24 , fd00::/64", &c, &n), "parse"))
		return;
	ASSERT_EQ(n, 2, "two CIDRs");
	sluice_addr__parse(&a, "192.0.2.200");
	ASSERT_TRUE(k8s_nodeaddr__usable(&a, c, n), "inside 192.0.2.0/24 (host bits ignored)");
	sluice_addr__parse(&a, "198.51.100.1");
	ASSERT_FALSE(k8s_nodeaddr__usable(&a, c, n), "outside every CIDR");
	ASSERT_TRUE(k8s_nodeaddr__usable(&a, NULL, 0), "no filter: every address");
	sluice_addr__parse(&a, "fd00::5");
	ASSERT_TRUE(k8s_nodeaddr__usable(&a, c, n), "inside fd00::/64");
	sluice_addr__parse(&a, "fd00:0:0:1::5");
	ASSERT_FALSE(k8s_nodeaddr__usable(&a, c, n), "outside fd00::/64");
	free(c);
	for (size_t i = 0; i < ARRAY_SIZE(never); i++) {
		sluice_addr__parse(&a, never[i]);
		if (!ASSERT_FALSE(k8s_nodeaddr__usable(&a, NULL, 0), "never a NodePort address"))
			fprintf(stderr, "  address %s\n", never[i]);
	}
	if (ASSERT_OK(k8s_cidrs__parse("0.0.0.0/0", &c, &n), "/0")) {
		sluice_addr__parse(&a, "203.0.113.9");
		ASSERT_TRUE(k8s_nodeaddr__usable(&a, c, n), "0.0.0.0/0: every IPv4");
		free(c);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		c = NULL;
		if (!ASSERT_EQ(k8s_cidrs__parse(bad[i], &c, &n), -EINVAL, "refused"))
			fprintf(stderr, "  text \"%s\"\n", bad[i]);
		ASSERT_TRUE(!c, "nothing returned");
		ASSERT_TRUE(strstr(sluice__errmsg(), "CIDR"), "message says what is wanted");
	}
	k8s_cidrs__parse("10.0.0.0/8,bogus", &c, &n);
	ASSERT_TRUE(strstr(sluice__errmsg(), "\"bogus\""), "the bad entry is quoted");
}

/* Cluster: every ready endpoint; Local: this node's only, kept when none. */
static void test_traffic_policy(void)
{
	const struct desired_service *s;
	struct desired d;

	setup();
	ASSERT_OK(add_svc("cl", NP_SPEC), "cluster");
	ASSERT_OK(add_eps("cl", HTTP_PORTS), "cluster slice");
	ASSERT_OK(add_svc("lo", "'type': 'NodePort', 'clusterIP': '10.96.0.8', "
				"'externalTrafficPolicy': 'Local', 'ports': [{'name': 'http', "
				"'port': 80, 'nodePort': 30082}]"),
		  "local");
	ASSERT_OK(add_eps("lo", HTTP_PORTS), "local slice");
	if (xlate(&d, "n1"))
		return;
	s = find(&d, "192.0.2.1", 30080, IPPROTO_TCP);
	ASSERT_EQ(s ? s->nbackends : 0, 2, "Cluster: both nodes' endpoints");
	ASSERT_TRUE(s && s->snat && !s->drop_empty, "Cluster: snat, not drop-when-empty");
	s = find(&d, "192.0.2.1", 30082, IPPROTO_TCP);
	ASSERT_EQ(s ? s->nbackends : 0, 1, "Local: n1's endpoint only");
	ASSERT_TRUE(has_backend(s, "10.9.0.1", 8080), "the ready one on n1");
	ASSERT_TRUE(s && !s->snat && s->drop_empty, "Local: drop-when-empty, client address kept");
	s = find(&d, "10.96.0.8", 80, IPPROTO_TCP);
	ASSERT_TRUE(s && !s->snat && !s->drop_empty, "the cluster IP: neither");
	ASSERT_EQ(find(&d, "10.96.0.8", 80, IPPROTO_TCP)->nbackends, 2,
		  "the cluster IP keeps every endpoint (internalTrafficPolicy Cluster)");
	desired__free(&d);
	if (xlate(&d, "n3"))
		return;
	s = find(&d, "198.51.100.1", 30082, IPPROTO_TCP);
	ASSERT_TRUE(s, "Local without a local endpoint: the service stays");
	ASSERT_EQ(s ? s->nbackends : 1, 0, "with no backend");
	ASSERT_TRUE(s && s->drop_empty, "and drops new flows");
	desired__free(&d);
}

/* Cluster -> Local with the same (local) endpoints: only the flags change,
 * and that is a change the sync publishes. */
static void test_policy_change_publishes(void)
{
	struct desired a, b;

	setup();
	ASSERT_OK(add_svc("pc", NP_SPEC), "Cluster");
	ASSERT_OK(put(slices,
		      J("{'metadata': {'name': 'pc-1', 'namespace': 'ns', 'labels': "
			"{'kubernetes.io/service-name': 'pc'}}, 'addressType': 'IPv4', "
			"'ports': " HTTP_PORTS ", 'endpoints': [{'addresses': ['10.9.0.1'], "
			"'nodeName': 'n1'}]}")),
		  "slice");
	if (xlate(&a, "n1"))
		return;
	ASSERT_OK(add_svc("pc", NP_SPEC ", 'externalTrafficPolicy': 'Local'"), "now Local");
	if (!xlate(&b, "n1")) {
		ASSERT_EQ(find(&b, "192.0.2.1", 30080, IPPROTO_TCP)->nbackends,
			  find(&a, "192.0.2.1", 30080, IPPROTO_TCP)->nbackends, "same backends");
		ASSERT_FALSE(k8s__desired_equal(&a, &b), "the flags differ: a change");
		desired__free(&b);
	}
	desired__free(&a);
}

/* Load-balancer and external IPs of Cluster: snat to the node address
 * (they are not the node's); Local: the client's address; NodePorts:
 * snat to their own (node) address; the cluster IP: none. */
static void test_external_snat(void)
{
	const struct desired_service *s;
	struct desired a, b;

	setup();
	ASSERT_OK(add_svc("lb", "'type': 'LoadBalancer', 'clusterIP': '10.96.0.9', "
				"'externalIPs': ['198.51.100.77'], 'ports': [{'name': 'http', "
				"'port': 80, 'nodePort': 31080}]} , 'status': {'loadBalancer': "
				"{'ingress': [{'ip': '203.0.113.9'}]}"),
		  "svc");
	ASSERT_OK(add_eps("lb", HTTP_PORTS), "slice");
	if (xlate(&a, "n1"))
		return;
	s = find(&a, "203.0.113.9", 80, IPPROTO_TCP);
	ASSERT_TRUE(s && s->snat && s->snat_node, "load-balancer IP: snat to the node");
	s = find(&a, "198.51.100.77", 80, IPPROTO_TCP);
	ASSERT_TRUE(s && s->snat && s->snat_node, "external IP: snat to the node");
	s = find(&a, "192.0.2.1", 31080, IPPROTO_TCP);
	ASSERT_TRUE(s && s->snat && !s->snat_node, "NodePort: snat to its own address");
	s = find(&a, "10.96.0.9", 80, IPPROTO_TCP);
	ASSERT_TRUE(s && !s->snat && !s->snat_node, "cluster IP: no snat");
	ASSERT_OK(add_svc("lb", "'type': 'LoadBalancer', 'clusterIP': '10.96.0.9', "
				"'externalTrafficPolicy': 'Local', 'externalIPs': "
				"['198.51.100.77'], 'ports': [{'name': 'http', 'port': 80, "
				"'nodePort': 31080}]} , 'status': {'loadBalancer': {'ingress': "
				"[{'ip': '203.0.113.9'}]}"),
		  "now Local");
	if (!xlate(&b, "n1")) {
		s = find(&b, "203.0.113.9", 80, IPPROTO_TCP);
		ASSERT_TRUE(s && !s->snat && !s->snat_node, "Local: the client's address");
		ASSERT_FALSE(k8s__desired_equal(&a, &b), "a change the sync publishes");
		desired__free(&b);
	}
	desired__free(&a);
}

/* type LoadBalancer with allocateLoadBalancerNodePorts false: no nodePort. */
static void test_lb_without_node_ports(void)
{
	struct desired d;

	setup();
	ASSERT_OK(put(svcs,
		      J("{'metadata': {'name': 'lb', 'namespace': 'ns'}, 'spec': {"
			"'type': 'LoadBalancer', 'clusterIP': '10.96.0.9', "
			"'allocateLoadBalancerNodePorts': false, 'ports': [{'port': 443}]},"
			" 'status': {'loadBalancer': {'ingress': [{'ip': '203.0.113.9'}]}}}")),
		  "svc");
	if (xlate(&d, "n1"))
		return;
	ASSERT_EQ(d.nservices, 2, "cluster IP + load-balancer IP");
	ASSERT_TRUE(find(&d, "203.0.113.9", 443, IPPROTO_TCP), "load-balancer IP");
	ASSERT_EQ(count_nodeports(&d), 0, "no NodePort");
	desired__free(&d);
	/* with one: on the node addresses next to the load-balancer IP */
	setup();
	ASSERT_OK(add_svc("lb", "'type': 'LoadBalancer', 'clusterIP': '10.96.0.9', "
				"'ports': [{'port': 443, 'nodePort': 31443}]"),
		  "svc");
	if (xlate(&d, "n1"))
		return;
	ASSERT_EQ(count_nodeports(&d), 2, "LoadBalancer: NodePorts too");
	desired__free(&d);
}

/* loadBalancerSourceRanges hold for the NodePorts of a LoadBalancer
 * Service too (per family: the IPv6 node address gets the IPv6 range),
 * never for a plain NodePort Service's. */
static void test_source_ranges(void)
{
	const struct desired_service *s;
	struct desired d;

	setup();
	ASSERT_OK(put(svcs,
		      J("{'metadata': {'name': 'lb', 'namespace': 'ns'}, 'spec': {"
			"'type': 'LoadBalancer', 'clusterIP': '10.96.0.9', "
			"'ipFamilies': ['IPv4', 'IPv6'], 'clusterIPs': ['10.96.0.9', 'fd00::9'], "
			"'loadBalancerSourceRanges': ['10.1.0.0/16', 'fd00:1::/64'], "
			"'ports': [{'port': 443, 'nodePort': 31443}]},"
			" 'status': {'loadBalancer': {'ingress': [{'ip': '203.0.113.9'}]}}}")),
		  "svc");
	if (xlate(&d, "n1"))
		return;
	s = find(&d, "192.0.2.1", 31443, IPPROTO_TCP);
	if (ASSERT_TRUE(s, "IPv4 NodePort") && ASSERT_EQ(s->nsrc_ranges, 1, "one v4 range"))
		ASSERT_EQ(s->src_ranges[0].prefixlen, 16, "the /16");
	s = find(&d, "2001:db8::1", 31443, IPPROTO_TCP);
	if (ASSERT_TRUE(s, "IPv6 NodePort"))
		ASSERT_EQ(s->nsrc_ranges, 1, "one v6 range");
	s = find(&d, "10.96.0.9", 443, IPPROTO_TCP);
	if (ASSERT_TRUE(s, "cluster IP"))
		ASSERT_EQ(s->nsrc_ranges, 0, "cluster IP open");
	desired__free(&d);

	setup();
	ASSERT_OK(add_svc("np", "'type': 'NodePort', 'clusterIP': '10.96.0.5', "
				"'loadBalancerSourceRanges': ['10.1.0.0/16'], "
				"'ports': [{'port': 80, 'nodePort': 30080}]"),
		  "svc");
	if (xlate(&d, "n1"))
		return;
	s = find(&d, "192.0.2.1", 30080, IPPROTO_TCP);
	if (ASSERT_TRUE(s, "NodePort"))
		ASSERT_EQ(s->nsrc_ranges, 0, "type NodePort: ranges do not apply");
	desired__free(&d);
}

/* Node addresses appear and disappear: the NodePort services follow. */
static void test_node_address_changes(void)
{
	struct desired d;

	setup();
	ASSERT_OK(add_svc("np", NP_SPEC), "svc");
	set_nodes("192.0.2.1");
	if (xlate(&d, NULL))
		return;
	ASSERT_EQ(count_nodeports(&d), 1, "one address");
	desired__free(&d);
	set_nodes("192.0.2.1,192.0.2.2");
	if (xlate(&d, NULL))
		return;
	ASSERT_EQ(count_nodeports(&d), 2, "an address appeared");
	ASSERT_TRUE(find(&d, "192.0.2.2", 30080, IPPROTO_TCP), "on the new address");
	desired__free(&d);
	set_nodes("192.0.2.2");
	if (xlate(&d, NULL))
		return;
	ASSERT_EQ(count_nodeports(&d), 1, "an address went");
	ASSERT_TRUE(!find(&d, "192.0.2.1", 30080, IPPROTO_TCP), "gone with its address");
	desired__free(&d);
	set_nodes("");
	if (xlate(&d, NULL))
		return;
	ASSERT_EQ(count_nodeports(&d), 0, "no address: no NodePort");
	ASSERT_EQ(d.nservices, 1, "the cluster IP stays");
	desired__free(&d);
}

/* nodePort 0, 70000, a string, a float: refused with a note, nothing else lost. */
static void test_hostile_node_ports(void)
{
	static const char *const vals[] = { "0", "70000", "'30080'", "-1", "30080.5", "{}" };
	struct desired d;
	char spec[512];

	for (size_t i = 0; i < ARRAY_SIZE(vals); i++) {
		setup();
		snprintf(spec, sizeof(spec),
			 "'type': 'LoadBalancer', 'clusterIP': '10.96.0.5', "
			 "'externalTrafficPolicy': 'Local', 'healthCheckNodePort': %s, "
			 "'ports': [{'name': 'http', 'port': 80, 'nodePort': %s}, "
			 "{'name': 'b', 'port': 81, 'nodePort': 30081}]",
			 vals[i], vals[i]);
		if (!ASSERT_OK(add_svc("h", spec), "the Service is kept")) {
			fprintf(stderr, "  value %s: %s\n", vals[i], sluice__errmsg());
			continue;
		}
		if (xlate(&d, "n1"))
			continue;
		if (!ASSERT_EQ(count_nodeports(&d), 2, "only port b's nodePort (2 addresses)"))
			fprintf(stderr, "  value %s\n", vals[i]);
		ASSERT_TRUE(find(&d, "10.96.0.5", 80, IPPROTO_TCP), "cluster IP still served");
		ASSERT_TRUE(find(&d, "192.0.2.1", 30081, IPPROTO_TCP), "other port's nodePort");
		if (!ASSERT_TRUE(strstr(warnings, "nodePort of port http") &&
					 strstr(warnings, "is not a port number 1-65535"),
				 "clear warning"))
			fprintf(stderr, "  warnings: %s\n", warnings);
		ASSERT_TRUE(strstr(warnings, "healthCheckNodePort"), "hc port refused too");
		desired__free(&d);
	}
}

static int hc_set(struct k8s_hc_set *hc, const char *node_name)
{
	struct k8s_xlate_opts o = { .node_name = node_name, .warn = on_warn };

	memset(hc, 0, sizeof(*hc));
	return k8s__translate_hc(svcs, slices, &o, hc);
}

/* healthCheckNodePort: LoadBalancer + Local only; kube-proxy's count. */
static void test_health_check_node_port(void)
{
	struct k8s_hc_set hc;

	setup();
	ASSERT_OK(add_svc("web", "'type': 'LoadBalancer', 'clusterIP': '10.96.0.10', "
				 "'externalTrafficPolicy': 'Local', 'healthCheckNodePort': 32000, "
				 "'ports': [{'name': 'http', 'port': 80, 'nodePort': 30080}, "
				 "{'name': 'https', 'port': 443, 'nodePort': 30443}]"),
		  "lb local");
	/* one pod serving both ports counts once per address:port pair */
	ASSERT_OK(add_eps("web", "[{'name': 'http', 'port': 8080}, {'name': 'https', 'port': "
				 "8443}]"),
		  "slice");
	ASSERT_OK(add_svc("cl", "'type': 'LoadBalancer', 'clusterIP': '10.96.0.11', "
				"'healthCheckNodePort': 32001, 'ports': [{'port': 80}]"),
		  "lb cluster: no hc port");
	ASSERT_OK(add_svc("zdup", "'type': 'LoadBalancer', 'clusterIP': '10.96.0.12', "
				  "'externalTrafficPolicy': 'Local', 'healthCheckNodePort': 32000, "
				  "'ports': [{'port': 80}]"),
		  "port clash");
	ASSERT_OK(add_svc("none", "'type': 'LoadBalancer', 'clusterIP': '10.96.0.13', "
				  "'externalTrafficPolicy': 'Local', 'healthCheckNodePort': 32002, "
				  "'ports': [{'port': 80}]"),
		  "no endpoints");
	if (!ASSERT_OK(hc_set(&hc, "n1"), "hc"))
		return;
	if (ASSERT_EQ(hc.n, 2, "web and none (cl is Cluster, dup clashes)")) {
		ASSERT_EQ(hc.v[0].port, 32000, "sorted by port");
		ASSERT_TRUE(!strcmp(hc.v[0].ns, "ns") && !strcmp(hc.v[0].name, "web"), "web");
		ASSERT_EQ(hc.v[0].local_endpoints, 2,
			  "n1's ready pod on 2 ports (not the unready)");
		ASSERT_TRUE(!strcmp(hc.v[1].name, "none"), "none");
		ASSERT_EQ(hc.v[1].local_endpoints, 0, "no endpoint: 0");
	}
	ASSERT_TRUE(strstr(warnings, "healthCheckNodePort 32000 is already used by ns/web"),
		    "clash reported");
	k8s_hc_set__free(&hc);
	if (ASSERT_OK(hc_set(&hc, "n9"), "hc n9") && ASSERT_EQ(hc.n, 2, "two"))
		ASSERT_EQ(hc.v[0].local_endpoints, 0, "another node: none local");
	k8s_hc_set__free(&hc);
}

static const struct test tests[] = {
	TEST(test_each_node_address),       TEST(test_dual_stack),
	TEST(test_nodeport_addresses),      TEST(test_traffic_policy),
	TEST(test_policy_change_publishes), TEST(test_lb_without_node_ports),
	TEST(test_node_address_changes),    TEST(test_hostile_node_ports),
	TEST(test_health_check_node_port),  TEST(test_source_ranges),
	TEST(test_external_snat),
};

int main(int argc, char **argv)
{
	int ret = test__run_all("k8s_nodeport", tests, ARRAY_SIZE(tests), argc, argv);

	k8s_objs__free(svcs);
	k8s_objs__free(slices);
	return ret;
}
