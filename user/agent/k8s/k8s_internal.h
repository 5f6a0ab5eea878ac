/* SPDX-License-Identifier: MIT */
/*
 * k8s_internal.h - the pieces of the Kubernetes sync under k8s.h, split so
 * that each can be tested without a network: the object store (parsed
 * Services and EndpointSlices), the translation into struct desired, the
 * incremental watch-stream decoder and the connection settings.
 *
 * Contract: nothing here does I/O except k8s_conn__from_opts() and
 * k8s_conn__token() (files only); libcurl is used only by k8s.c and
 * k8s_watch.c (private header k8s_sync.h), so a program that never calls
 * k8s__open() (the unit tests) links without it. Functions return 0 or a
 * negative errno with sluice__errmsg() saying what was wrong.
 */
#ifndef SLUICE_K8S_INTERNAL_H
#define SLUICE_K8S_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "k8s.h"

enum k8s_kind {
	K8S_SERVICES,
	K8S_SLICES,
	K8S__KINDS,
};

/* "Service" / "EndpointSlice", for messages. */
const char *k8s_kind__name(enum k8s_kind kind);

/* --- JSON fields (k8s_json.c) --- */

/* o[key]; NULL when o is not an object or the field is absent or null
 * (the API omits and nulls optional fields alike). */
struct json_object *k8s_json__get(struct json_object *o, const char *key);
/* The typed readers set *bad when the field has another JSON type, so
 * the caller refuses the object instead of reading it as absent. */
/* A string, NULL when absent. */
const char *k8s_json__str(struct json_object *o, const char *key, bool *bad);
/* A boolean, def when absent. */
bool k8s_json__bool(struct json_object *o, const char *key, bool def, bool *bad);
/* An array / an object, NULL when absent. */
struct json_object *k8s_json__arr(struct json_object *o, const char *key, bool *bad);
struct json_object *k8s_json__obj(struct json_object *o, const char *key, bool *bad);
/* v, an integer in [min, max]; -EINVAL when it is not (or v is NULL). */
int k8s_json__int(struct json_object *v, long long min, long long max, long long *out);

/* --- parsed objects (k8s_parse.c, k8s_store.c) --- */

struct k8s_svc_port {
	char *name; /* "" when unnamed */
	__u8 proto; /* IPPROTO_TCP / IPPROTO_UDP, 0 = other (SCTP): skipped */
	__u16 port;
	__u16 target_port; /* numeric targetPort, 0 = named or unset */
	bool target_named;
	__u16 node_port; /* spec.ports[].nodePort, 0 = none (or refused) */
};

struct k8s_vip {
	struct sluice_addr addr;
	bool external; /* externalIPs / load-balancer ingress: externalTrafficPolicy applies */
	bool lb;       /* status.loadBalancer.ingress: loadBalancerSourceRanges apply (#13) */
};

struct k8s_weight_rule {
	char *key;               /* fnmatch pattern of the targetRef name */
	struct sluice_addr addr; /* when the key is an address */
	bool is_addr;
	__u16 weight;
};

struct k8s_svc {
	char *ns, *name;
	char *proxy_name; /* service.kubernetes.io/service-proxy-name, NULL if unset */
	bool headless;    /* clusterIP None or type ExternalName: nothing to balance */
	bool etp_local, itp_local;
	bool node_ports;          /* type NodePort or LoadBalancer: nodePorts are served */
	bool load_balancer;       /* type LoadBalancer */
	__u16 hc_node_port;       /* spec.healthCheckNodePort, 0 = none (or refused) */
	__u32 affinity_timeout_s; /* spec.sessionAffinity ClientIP; 0: None */
	__u32 nvips;
	struct k8s_vip *vips;
	__u32 nports;
	struct k8s_svc_port *ports;
	__u32 nrules;
	struct k8s_weight_rule *rules;
	char *problem; /* what was ignored (a bad address, annotation), or NULL */
	struct desired_health_check health; /* sluice.io/health-check; type 0: none */
	/* spec.loadBalancerSourceRanges (#13, k8s_src_range.c): masked, no
	 * duplicates, at most SLUICE_SRC_RANGES_PER_SVC per family; over[0]
	 * (IPv4) and over[1] (IPv6) count the ones left out beyond that */
	__u32 nsrc_ranges;
	struct sluice_cidr *src_ranges;
	__u32 src_ranges_over[2];
	/* sluice.io/allow-from, deny-from, deny-action (#15, k8s_policy.c):
	 * npol_allow allow rules, then the deny rules, both families; closed:
	 * an annotation was bad, every client is denied */
	struct sluice_policy_rule *pol_rules;
	__u32 npol_rules, npol_allow;
	bool pol_refuse, pol_closed;
};

struct k8s_ep {
	struct sluice_addr addr;          /* addresses[0], as kube-proxy uses */
	bool ready, serving, terminating; /* nil resolved per the API docs */
	char *target;                     /* targetRef.name or NULL */
	char *node;                       /* nodeName or NULL */
};

struct k8s_slice_port {
	char *name; /* "" when unnamed */
	__u8 proto; /* as in k8s_svc_port */
	__u16 port; /* 0 = unspecified */
};

struct k8s_slice {
	char *ns, *name;
	char *service; /* label kubernetes.io/service-name, NULL: belongs to none */
	__u8 family;   /* SLUICE_AF_INET(6); 0 = FQDN or unknown: ignored */
	int weight;    /* sluice.io/weight, -1 when absent or invalid */
	char *problem; /* what was ignored, or NULL */
	__u32 nports;
	struct k8s_slice_port *ports;
	__u32 neps;
	struct k8s_ep *eps;
};

/* k8s_parse.c: API JSON -> the structs above (-EINVAL naming the object
 * when it cannot be identified or a field has the wrong JSON type). */
int k8s_svc__parse(struct json_object *obj, struct k8s_svc **out);
/* k8s_src_range.c (#13): spec.loadBalancerSourceRanges into s (ranges
 * that are not CIDRs described in prob, "" when none; *bad on a wrong
 * JSON type); -ENOMEM. */
int k8s_svc__parse_src_ranges(struct k8s_svc *s, struct json_object *spec, char *prob, size_t plen,
			      bool *bad);
/* The Service's source ranges that apply to an address of vip's family
 * into d->src_ranges (allocated, owned by d): for its load-balancer
 * addresses (and NodePorts). Returns how many of that family were left
 * out beyond the bound (warn about them), or -ENOMEM. */
int k8s_svc__src_ranges_for(const struct k8s_svc *svc, const struct sluice_addr *vip,
			    struct desired_service *d);
/* k8s_policy.c: the policy annotations of a Service (ann may be NULL);
 * problem text in prob ("" when none); -ENOMEM only. */
int k8s_svc__parse_policy(struct k8s_svc *s, struct json_object *ann, char *prob, size_t plen);
/* d's rules from s for d's VIP family (allocated, owned by d); a set
 * the compiler refuses becomes deny-all, named in prob. -ENOMEM only. */
int k8s_svc__policy_for(const struct k8s_svc *s, struct desired_service *d, char *prob,
			size_t plen);
/* How many k8s_svc__src_ranges_for() hands out for vip. */
__u32 k8s_svc__src_ranges_count(const struct k8s_svc *svc, const struct sluice_addr *vip);
void k8s_svc__free(struct k8s_svc *s);
int k8s_slice__parse(struct json_object *obj, struct k8s_slice **out);
void k8s_slice__free(struct k8s_slice *s);
/* k8s_health.c: the sluice.io/health-check* annotations (ann may be
 * NULL) into hc (type 0: none); a bad value leaves the check off with the
 * reason in problem ("" when none). -1 when an annotation is no string. */
int k8s_svc__parse_health(struct json_object *ann, struct desired_health_check *hc, char *problem,
			  size_t len);
/* metadata.namespace and metadata.name, both non-empty, or -EINVAL. */
int k8s_meta__ids(struct json_object *obj, enum k8s_kind kind, const char **ns, const char **name);

/* k8s_store.c: a set of objects of one kind, keyed by "namespace/name". */
struct k8s_objs;

struct k8s_objs *k8s_objs__new(enum k8s_kind kind);
void k8s_objs__free(struct k8s_objs *objs);
__u32 k8s_objs__count(const struct k8s_objs *objs);
/* Parse obj (a Service or EndpointSlice as the API sends it) and add it,
 * replacing one with the same key. -EINVAL when it lacks what identifies
 * it (metadata.name/namespace) or a field has the wrong JSON type. */
int k8s_objs__put_json(struct k8s_objs *objs, struct json_object *obj);
/* Remove by the object's metadata; removing a missing key is not an error. */
int k8s_objs__del_json(struct k8s_objs *objs, struct json_object *obj);
/* The objects as an array sorted by key (malloc'ed, the pointers stay
 * owned by objs); *n gets the count. */
int k8s_objs__sorted(const struct k8s_objs *objs, const void ***items, __u32 *n);

/* --- translation (k8s_translate.c) --- */

struct k8s_xlate_opts {
	const char *node_name;
	const char *proxy_name;
	/* This node's addresses (k8s_nodeaddr.c, already filtered by
	 * --nodeport-addresses): every nodePort is served on each of them
	 * of the Service's families. */
	const struct sluice_addr *node_addrs;
	__u32 nnode_addrs;
	/* Problems that do not stop the sync (a bad annotation, a VIP clash). */
	void (*warn)(const char *msg, void *ctx);
	void *ctx;
};

/* The kubernetes services for these objects, sorted by key, valid for
 * desired__validate(). *out is replaced. Returns 0 or -ENOMEM. */
int k8s__translate(const struct k8s_objs *svcs, const struct k8s_objs *slices,
		   const struct k8s_xlate_opts *o, struct desired *out);
/* Same services, names, sources and backends in the same order. */
bool k8s__desired_equal(const struct desired *a, const struct desired *b);
/* The healthCheckNodePorts these objects ask for (k8s.h), sorted by port;
 * *out is replaced. Returns 0 or -ENOMEM. */
int k8s__translate_hc(const struct k8s_objs *svcs, const struct k8s_objs *slices,
		      const struct k8s_xlate_opts *o, struct k8s_hc_set *out);

/* --- watch streams (k8s_stream.c) --- */

enum k8s_ev_type {
	K8S_EV_ADDED,
	K8S_EV_MODIFIED,
	K8S_EV_DELETED,
	K8S_EV_BOOKMARK,
	K8S_EV_ERROR,
};

/* Decodes {"type": T, "object": O}: *object borrows O; *rv is
 * O.metadata.resourceVersion or NULL; for ERROR, *code is the Status code
 * (410 = Gone) and *rv NULL. -EINVAL naming the problem otherwise. */
int k8s_event__decode(struct json_object *ev, enum k8s_ev_type *type, struct json_object **object,
		      const char **rv, int *code);
/* "code 410 Expired: too old resource version" out of a Status object. */
void k8s_status__text(struct json_object *status, char *buf, size_t len, int *code);

/* Splits a byte stream of concatenated JSON values (the watch body; chunk
 * boundaries fall anywhere) into whole values. */
struct k8s_stream {
	struct json_tokener *tok;
	size_t pending; /* bytes since the last whole value */
	size_t max;     /* larger than this without completing: error */
	char *buf;      /* those bytes, reparsed whole once the value ends */
	size_t cap;
	char carry[4]; /* a UTF-8 sequence cut by the chunk's end */
	size_t ncarry;
};
/* Called per whole value; a negative return stops the feed and is returned. */
typedef int (*k8s_stream_fn)(struct json_object *value, void *ctx);

int k8s_stream__init(struct k8s_stream *s, size_t max);
void k8s_stream__reset(struct k8s_stream *s);
void k8s_stream__free(struct k8s_stream *s);
/* 0, fn's negative return, or -EBADMSG for malformed JSON (or a value
 * longer than max), with sluice__errmsg() quoting the problem. */
int k8s_stream__feed(struct k8s_stream *s, const char *buf, size_t len, k8s_stream_fn fn,
		     void *ctx);

/* --- connection settings (k8s_config.c) --- */

#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct k8s_conn {
	char *server;     /* "https://10.0.0.1:6443", no trailing slash */
	char *token;      /* a static token, or NULL */
	char *token_file; /* re-read per request, or NULL */
	char *ca_file;    /* PEM file, or NULL */
	char *ca_pem;     /* PEM bytes (certificate-authority-data), or NULL */
	size_t ca_len;
	char *cert_file, *key_file; /* client certificate */
	char *cert_pem, *key_pem;
	size_t cert_len, key_len;
	bool insecure; /* insecure-skip-tls-verify: true in the kubeconfig */
	char *origin;  /* "in-cluster", "kubeconfig FILE (context X)", "--server" */
};

int k8s_conn__from_opts(struct k8s_conn *c, const struct k8s_opts *o);
/* in-cluster settings with env and the service account directory given. */
int k8s_conn__in_cluster(struct k8s_conn *c, const char *host, const char *port,
			 const char *sa_dir);
int k8s_conn__from_kubeconfig(struct k8s_conn *c, const char *path);
void k8s_conn__free(struct k8s_conn *c);
/* The bearer token to send now into buf ("" for none). */
int k8s_conn__token(const struct k8s_conn *c, char *buf, size_t len);
/* RFC 4648 base64 (whitespace ignored) into a malloc'ed buffer. */
int k8s__base64_decode(const char *text, char **out, size_t *len);

#endif /* SLUICE_K8S_INTERNAL_H */
