// SPDX-License-Identifier: MIT
/*
 * k8s_parse.c - a Service or an EndpointSlice, as the API sends it, into
 * the few fields the translation needs (struct k8s_svc, struct k8s_slice).
 *
 * Contract: parsing follows the API's documented defaults (protocol TCP,
 * targetPort = port, ready nil = true, serving nil = ready, terminating nil
 * = false; endpoints use addresses[0], as kube-proxy does). An object
 * without metadata.name/namespace, or whose known fields have the wrong
 * JSON type, is refused (-EINVAL, message naming the object); lesser
 * problems (an unparsable address, a bad weight annotation) drop just that
 * piece and are described in ->problem so the translation can warn.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "internal.h"
#include "k8s_internal.h"

#define LABEL_SERVICE_NAME "kubernetes.io/service-name"
#define LABEL_PROXY_NAME "service.kubernetes.io/service-proxy-name"

const char *k8s_kind__name(enum k8s_kind kind)
{
	return kind == K8S_SERVICES ? "Service" : "EndpointSlice";
}

static char *xstrdup(const char *s, bool *nomem)
{
	char *d = strdup(s ? s : "");

	if (!d)
		*nomem = true;
	return d;
}

/* Appends "; text" to *problem (best effort: problems are only warnings). */
static void problem_add(char **problem, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem_add(char **problem, const char *fmt, ...)
{
	char buf[256], *n;
	size_t old = *problem ? strlen(*problem) : 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (old > 1024)
		return;
	n = realloc(*problem, old + strlen(buf) + 3);
	if (!n)
		return;
	sprintf(n + old, "%s%s", old ? "; " : "", buf);
	*problem = n;
}

/* Only the plain textual forms the API server writes (no brackets, no zone). */
static int parse_ip(const char *text, struct sluice_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, text, &a->addr[0]) == 1) {
		a->family = SLUICE_AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, a->addr) == 1) {
		a->family = SLUICE_AF_INET6;
		return 0;
	}
	return -EINVAL;
}

static bool addr_unspec(const struct sluice_addr *a)
{
	return !(a->addr[0] | a->addr[1] | a->addr[2] | a->addr[3]);
}

static __u8 parse_proto(const char *text)
{
	if (!text || !strcmp(text, "TCP"))
		return IPPROTO_TCP;
	if (!strcmp(text, "UDP"))
		return IPPROTO_UDP;
	return 0; /* SCTP and anything newer: not balanced here */
}

/* How parsing one object ended: out of memory first, then a field of the
 * wrong JSON type (-EINVAL), else err; the message names the object. */
static int parse__outcome(int err, bool bad, bool nomem, enum k8s_kind kind, const char *ns,
			  const char *name)
{
	if (nomem)
		err = -ENOMEM;
	if (!err && bad) {
		sluice__set_err("%s %s/%s: a field has the wrong JSON type", k8s_kind__name(kind),
				ns, name);
		err = -EINVAL;
	}
	if (err == -ENOMEM)
		sluice__set_err("out of memory parsing %s %s/%s", k8s_kind__name(kind), ns, name);
	return err;
}

/* metadata.namespace + name: what identifies an object. */
int k8s_meta__ids(struct json_object *obj, enum k8s_kind kind, const char **ns, const char **name)
{
	bool bad = false;
	struct json_object *meta = k8s_json__obj(obj, "metadata", &bad);

	*ns = k8s_json__str(meta, "namespace", &bad);
	*name = k8s_json__str(meta, "name", &bad);
	if (!json_object_is_type(obj, json_type_object) || bad || !*ns || !*name || !**ns ||
	    !**name) {
		sluice__set_err("%s without metadata.namespace and metadata.name: %.120s",
				k8s_kind__name(kind),
				obj ? json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN) :
				      "null");
		return -EINVAL;
	}
	return 0;
}

/* --- Services --- */

void k8s_svc__free(struct k8s_svc *s)
{
	if (!s)
		return;
	for (__u32 i = 0; i < s->nports; i++)
		free(s->ports[i].name);
	for (__u32 i = 0; i < s->nrules; i++)
		free(s->rules[i].key);
	free(s->ports);
	free(s->rules);
	free(s->vips);
	free(s->src_ranges);
	free(s->pol_rules);
	free(s->ns);
	free(s->name);
	free(s->proxy_name);
	free(s->problem);
	free(s);
}

static int svc__add_vip(struct k8s_svc *s, const char *text, bool external, bool lb)
{
	struct sluice_addr a;
	struct k8s_vip *n;

	if (parse_ip(text, &a) || addr_unspec(&a)) {
		problem_add(&s->problem, "%s \"%s\" is not an IP address: ignored",
			    external ? "external IP" : "cluster IP", text);
		return 0;
	}
	for (__u32 i = 0; i < s->nvips; i++) {
		if (sluice_addr__eq(&s->vips[i].addr, &a)) {
			s->vips[i].lb |= lb; /* source ranges apply to it */
			return 0;            /* e.g. an external IP that repeats the cluster IP */
		}
	}
	n = realloc(s->vips, (s->nvips + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	s->vips = n;
	n[s->nvips].addr = a;
	n[s->nvips].external = external;
	n[s->nvips].lb = lb;
	s->nvips++;
	return 0;
}

/* Adds each string of arr as a VIP; *bad on a wrong type. */
static int svc__add_vips(struct k8s_svc *s, struct json_object *arr, bool external, bool *bad)
{
	size_t n = arr ? json_object_array_length(arr) : 0;
	int err;

	for (size_t i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);

		if (!json_object_is_type(v, json_type_string)) {
			*bad = true;
			return 0;
		}
		if (!strcmp(json_object_get_string(v), "None"))
			continue;
		err = svc__add_vip(s, json_object_get_string(v), external, false);
		if (err)
			return err;
	}
	return 0;
}

/* A nodePort (or healthCheckNodePort) the API server allocated: 1-65535.
 * Anything else (0, 70000, "80") is refused with a problem note, and only
 * that port is left unserved: the Service's other addresses still work. */
static __u16 svc__node_port(struct k8s_svc *s, struct json_object *v, const char *what,
			    const char *port_name)
{
	long long n;

	if (!v)
		return 0;
	if (k8s_json__int(v, 1, 65535, &n)) {
		problem_add(&s->problem, "%s%s%s %.40s is not a port number 1-65535: ignored", what,
			    port_name ? " of port " : "", port_name ? port_name : "",
			    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		return 0;
	}
	return (__u16)n;
}

static void svc__parse_node_port(struct k8s_svc *s, struct k8s_svc_port *sp, struct json_object *v)
{
	sp->node_port = svc__node_port(s, v, "nodePort", sp->name[0] ? sp->name : "(unnamed)");
}

static int svc__parse_port(struct k8s_svc *s, struct json_object *p, bool *bad, bool *nomem)
{
	struct k8s_svc_port *sp = &s->ports[s->nports];
	const char *name = k8s_json__str(p, "name", bad);
	const char *proto = k8s_json__str(p, "protocol", bad);
	struct json_object *tp = k8s_json__get(p, "targetPort");
	long long port, target;

	if (*bad)
		return 0;
	if (k8s_json__int(k8s_json__get(p, "port"), 1, 65535, &port)) {
		problem_add(&s->problem, "port %s has no valid port number: ignored",
			    name ? name : "(unnamed)");
		return 0;
	}
	memset(sp, 0, sizeof(*sp));
	sp->name = xstrdup(name, nomem);
	if (*nomem)
		return -ENOMEM;
	sp->proto = parse_proto(proto);
	sp->port = port;
	if (!tp) {
		sp->target_port = port; /* the API's default */
	} else if (json_object_is_type(tp, json_type_string)) {
		/* An IntOrString that holds a number in a string is still a number. */
		char *end;
		long v = strtol(json_object_get_string(tp), &end, 10);

		if (*json_object_get_string(tp) && !*end && v >= 1 && v <= 65535)
			sp->target_port = v;
		else
			sp->target_named = true;
	} else if (!k8s_json__int(tp, 1, 65535, &target)) {
		sp->target_port = target;
	} else {
		sp->target_port = port;
	}
	svc__parse_node_port(s, sp, k8s_json__get(p, "nodePort"));
	s->nports++;
	return 0;
}

/* "pod-a=90, canary-*=10, 10.0.0.5=0" */
static int svc__parse_weights(struct k8s_svc *s, const char *text)
{
	char *copy = strdup(text), *save = NULL, *tok;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct k8s_weight_rule *n, r = { 0 };
		char *eq, *end, *key = tok;
		long w;

		while (*key == ' ' || *key == '\t' || *key == '\n')
			key++;
		end = key + strlen(key);
		while (end > key && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n'))
			*--end = '\0';
		if (!*key)
			continue;
		eq = strrchr(key, '=');
		if (!eq || eq == key) {
			problem_add(&s->problem, K8S_ANN_WEIGHTS " entry \"%s\" is not KEY=WEIGHT",
				    key);
			continue;
		}
		*eq = '\0';
		w = strtol(eq + 1, &end, 10);
		if (!eq[1] || *end || w < 0 || w > 65535) {
			problem_add(&s->problem,
				    K8S_ANN_WEIGHTS " entry \"%s=%s\": weight is not 0-65535", key,
				    eq + 1);
			continue;
		}
		for (end = eq; end > key && (end[-1] == ' ' || end[-1] == '\t'); end--)
			end[-1] = '\0';
		r.key = strdup(key);
		if (!r.key) {
			err = -ENOMEM;
			break;
		}
		r.is_addr = !parse_ip(key, &r.addr);
		r.weight = w;
		n = realloc(s->rules, (s->nrules + 1) * sizeof(*n));
		if (!n) {
			free(r.key);
			err = -ENOMEM;
			break;
		}
		s->rules = n;
		n[s->nrules++] = r;
	}
	free(copy);
	return err;
}

/*
 * spec.sessionAffinity "ClientIP" with spec.sessionAffinityConfig.clientIP
 * .timeoutSeconds (the API server defaults it to 10800 and keeps it in
 * 1-86400; an object that is not, e.g. from a stand-in, gets the default
 * and a problem note). Anything but ClientIP is no affinity.
 */
static void svc__parse_affinity(struct k8s_svc *s, struct json_object *spec, bool *bad)
{
	const char *type = k8s_json__str(spec, "sessionAffinity", bad);
	struct json_object *cfg, *cip, *t;
	long long secs = SLUICE_AFFINITY_TIMEOUT_DEFAULT;

	if (*bad || !type || strcmp(type, "ClientIP"))
		return;
	cfg = k8s_json__obj(spec, "sessionAffinityConfig", bad);
	cip = k8s_json__obj(cfg, "clientIP", bad);
	t = k8s_json__get(cip, "timeoutSeconds");
	if (*bad)
		return;
	if (t && k8s_json__int(t, 1, SLUICE_AFFINITY_TIMEOUT_MAX, &secs)) {
		problem_add(&s->problem,
			    "sessionAffinityConfig.clientIP.timeoutSeconds %s is not 1-%u: %u used",
			    json_object_to_json_string(t), SLUICE_AFFINITY_TIMEOUT_MAX,
			    SLUICE_AFFINITY_TIMEOUT_DEFAULT);
		secs = SLUICE_AFFINITY_TIMEOUT_DEFAULT;
	}
	s->affinity_timeout_s = (__u32)secs;
}

int k8s_svc__parse(struct json_object *obj, struct k8s_svc **out)
{
	struct json_object *meta, *spec, *status, *labels, *ann, *ports, *ingress, *lb;
	bool bad = false, nomem = false;
	const char *ns, *name, *type, *cip, *etp, *itp, *proxy, *weights;
	char hcprob[256] = "";
	struct k8s_svc *s;
	size_t n;
	int err;

	err = k8s_meta__ids(obj, K8S_SERVICES, &ns, &name);
	if (err)
		return err;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ns = xstrdup(ns, &nomem);
	s->name = xstrdup(name, &nomem);
	meta = k8s_json__obj(obj, "metadata", &bad);
	labels = k8s_json__obj(meta, "labels", &bad);
	ann = k8s_json__obj(meta, "annotations", &bad);
	spec = k8s_json__obj(obj, "spec", &bad);
	status = k8s_json__obj(obj, "status", &bad);
	proxy = k8s_json__str(labels, LABEL_PROXY_NAME, &bad);
	weights = k8s_json__str(ann, K8S_ANN_WEIGHTS, &bad);
	type = k8s_json__str(spec, "type", &bad);
	cip = k8s_json__str(spec, "clusterIP", &bad);
	etp = k8s_json__str(spec, "externalTrafficPolicy", &bad);
	itp = k8s_json__str(spec, "internalTrafficPolicy", &bad);
	ports = k8s_json__arr(spec, "ports", &bad);
	lb = k8s_json__obj(status, "loadBalancer", &bad);
	ingress = k8s_json__arr(lb, "ingress", &bad);
	if (bad || nomem)
		goto out;
	if (proxy)
		s->proxy_name = xstrdup(proxy, &nomem);
	s->headless = (type && !strcmp(type, "ExternalName")) || (cip && !strcmp(cip, "None"));
	s->etp_local = etp && !strcmp(etp, "Local");
	s->itp_local = itp && !strcmp(itp, "Local");
	s->load_balancer = type && !strcmp(type, "LoadBalancer");
	s->node_ports = s->load_balancer || (type && !strcmp(type, "NodePort"));
	svc__parse_affinity(s, spec, &bad);
	if (s->headless)
		goto out; /* nothing to balance: keep the object, translate nothing */

	/* clusterIPs[0] == clusterIP when both are set; older objects have only clusterIP */
	if (k8s_json__get(spec, "clusterIPs"))
		err = svc__add_vips(s, k8s_json__arr(spec, "clusterIPs", &bad), false, &bad);
	else if (cip && *cip)
		err = svc__add_vip(s, cip, false, false);
	if (!err)
		err = svc__add_vips(s, k8s_json__arr(spec, "externalIPs", &bad), true, &bad);
	n = ingress ? json_object_array_length(ingress) : 0;
	for (size_t i = 0; i < n && !err && !bad; i++) {
		struct json_object *ing = json_object_array_get_idx(ingress, i);
		const char *ip = k8s_json__str(ing, "ip", &bad);
		const char *mode = k8s_json__str(ing, "ipMode", &bad);

		/* ipMode Proxy: the load balancer itself proxies to the nodes, the
		 * node must not capture traffic for that address (KEP-1860). */
		if (ip && !bad && !(mode && !strcmp(mode, "Proxy")))
			err = svc__add_vip(s, ip, true, true);
	}
	if (err || bad)
		goto out;

	n = ports ? json_object_array_length(ports) : 0;
	if (n) {
		s->ports = calloc(n, sizeof(*s->ports));
		if (!s->ports) {
			err = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < n && !err && !bad; i++) {
		struct json_object *p = json_object_array_get_idx(ports, i);

		if (!json_object_is_type(p, json_type_object))
			bad = true;
		else
			err = svc__parse_port(s, p, &bad, &nomem);
	}
	/* kube-proxy serves it only for LoadBalancer + Local (the API server
	 * allocates it only then) */
	if (!err && !bad && s->load_balancer && s->etp_local)
		s->hc_node_port = svc__node_port(s, k8s_json__get(spec, "healthCheckNodePort"),
						 "healthCheckNodePort", NULL);
	if (!err && !bad && weights)
		err = svc__parse_weights(s, weights);
	if (!err && !bad && k8s_svc__parse_health(ann, &s->health, hcprob, sizeof(hcprob)))
		bad = true;
	if (!err && hcprob[0])
		problem_add(&s->problem, "%s", hcprob);
	if (!err && !bad)
		err = k8s_svc__parse_src_ranges(s, spec, hcprob, sizeof(hcprob), &bad);
	if (!err && hcprob[0])
		problem_add(&s->problem, "%s", hcprob);
	if (!err && !bad)
		err = k8s_svc__parse_policy(s, ann, hcprob, sizeof(hcprob));
	if (!err && !bad && hcprob[0])
		problem_add(&s->problem, "%s", hcprob);
out:
	err = parse__outcome(err, bad, nomem, K8S_SERVICES, ns, name);
	if (err) {
		k8s_svc__free(s);
		return err;
	}
	*out = s;
	return 0;
}

/* --- EndpointSlices --- */

void k8s_slice__free(struct k8s_slice *s)
{
	if (!s)
		return;
	for (__u32 i = 0; i < s->nports; i++)
		free(s->ports[i].name);
	for (__u32 i = 0; i < s->neps; i++) {
		free(s->eps[i].target);
		free(s->eps[i].node);
	}
	free(s->ports);
	free(s->eps);
	free(s->ns);
	free(s->name);
	free(s->service);
	free(s->problem);
	free(s);
}

static int slice__parse_ports(struct k8s_slice *s, struct json_object *ports, bool *bad,
			      bool *nomem)
{
	size_t n = ports ? json_object_array_length(ports) : 0;

	if (!n)
		return 0;
	s->ports = calloc(n, sizeof(*s->ports));
	if (!s->ports)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(ports, i);
		struct k8s_slice_port *sp = &s->ports[s->nports];
		struct json_object *pv;
		long long port = 0;

		if (!json_object_is_type(p, json_type_object)) {
			*bad = true;
			return 0;
		}
		pv = k8s_json__get(p, "port");
		if (pv && k8s_json__int(pv, 1, 65535, &port)) {
			problem_add(&s->problem, "a port number is not 1-65535: port ignored");
			continue;
		}
		sp->name = xstrdup(k8s_json__str(p, "name", bad), nomem);
		sp->proto = parse_proto(k8s_json__str(p, "protocol", bad));
		sp->port = port;
		s->nports++;
		if (*nomem)
			return -ENOMEM;
	}
	return 0;
}

static int slice__parse_ep(struct k8s_slice *s, struct json_object *e, bool *bad, bool *nomem)
{
	struct json_object *addrs = k8s_json__arr(e, "addresses", bad);
	struct json_object *cond = k8s_json__obj(e, "conditions", bad);
	struct json_object *ref = k8s_json__obj(e, "targetRef", bad);
	struct k8s_ep *ep = &s->eps[s->neps];
	struct json_object *a0;
	const char *node = k8s_json__str(e, "nodeName", bad);
	const char *target = k8s_json__str(ref, "name", bad);

	if (*bad)
		return 0;
	a0 = addrs && json_object_array_length(addrs) ? json_object_array_get_idx(addrs, 0) : NULL;
	if (!a0 || !json_object_is_type(a0, json_type_string)) {
		problem_add(&s->problem, "an endpoint without addresses: ignored");
		return 0;
	}
	memset(ep, 0, sizeof(*ep));
	if (parse_ip(json_object_get_string(a0), &ep->addr) || ep->addr.family != s->family ||
	    addr_unspec(&ep->addr)) {
		problem_add(&s->problem, "endpoint address \"%s\" is not an %s address: ignored",
			    json_object_get_string(a0),
			    s->family == SLUICE_AF_INET ? "IPv4" : "IPv6");
		return 0;
	}
	/* Defaults as documented for discovery.k8s.io/v1 EndpointConditions. */
	ep->ready = k8s_json__bool(cond, "ready", true, bad);
	ep->serving = k8s_json__bool(cond, "serving", ep->ready, bad);
	ep->terminating = k8s_json__bool(cond, "terminating", false, bad);
	if (target)
		ep->target = xstrdup(target, nomem);
	if (node)
		ep->node = xstrdup(node, nomem);
	s->neps++;
	return *nomem ? -ENOMEM : 0;
}

int k8s_slice__parse(struct json_object *obj, struct k8s_slice **out)
{
	struct json_object *meta, *labels, *ann, *ports, *eps;
	bool bad = false, nomem = false;
	const char *ns, *name, *svc, *at, *w;
	struct k8s_slice *s;
	size_t n;
	int err;

	err = k8s_meta__ids(obj, K8S_SLICES, &ns, &name);
	if (err)
		return err;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->weight = -1;
	s->ns = xstrdup(ns, &nomem);
	s->name = xstrdup(name, &nomem);
	meta = k8s_json__obj(obj, "metadata", &bad);
	labels = k8s_json__obj(meta, "labels", &bad);
	ann = k8s_json__obj(meta, "annotations", &bad);
	svc = k8s_json__str(labels, LABEL_SERVICE_NAME, &bad);
	w = k8s_json__str(ann, K8S_ANN_WEIGHT, &bad);
	at = k8s_json__str(obj, "addressType", &bad);
	ports = k8s_json__arr(obj, "ports", &bad);
	eps = k8s_json__arr(obj, "endpoints", &bad);
	if (bad || nomem)
		goto out;
	if (svc)
		s->service = xstrdup(svc, &nomem);
	if (at && !strcmp(at, "IPv4"))
		s->family = SLUICE_AF_INET;
	else if (at && !strcmp(at, "IPv6"))
		s->family = SLUICE_AF_INET6;
	if (w) {
		char *end;
		long v = strtol(w, &end, 10);

		if (*w && !*end && v >= 0 && v <= 65535)
			s->weight = v;
		else
			problem_add(&s->problem, K8S_ANN_WEIGHT " \"%s\" is not 0-65535: ignored",
				    w);
	}
	if (!s->family)
		goto out; /* FQDN: nothing a datapath can balance to */
	err = slice__parse_ports(s, ports, &bad, &nomem);
	n = eps ? json_object_array_length(eps) : 0;
	if (!err && !bad && n) {
		s->eps = calloc(n, sizeof(*s->eps));
		if (!s->eps)
			err = -ENOMEM;
	}
	for (size_t i = 0; i < n && !err && !bad; i++) {
		struct json_object *e = json_object_array_get_idx(eps, i);

		if (!json_object_is_type(e, json_type_object))
			bad = true;
		else
			err = slice__parse_ep(s, e, &bad, &nomem);
	}
out:
	err = parse__outcome(err, bad, nomem, K8S_SLICES, ns, name);
	if (err) {
		k8s_slice__free(s);
		return err;
	}
	*out = s;
	return 0;
}
