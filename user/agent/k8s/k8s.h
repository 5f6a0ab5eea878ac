/* SPDX-License-Identifier: MIT */
/*
 * k8s.h - Kubernetes Service/EndpointSlice sync: the kubernetes-sourced
 * part of the desired state, kept up to date from the API server.
 *
 * Contract: k8s__open() reads the connection settings (in-cluster service
 * account, a kubeconfig, or a plain server URL for tests) and starts one
 * background thread that lists then watches v1 Services and
 * discovery.k8s.io/v1 EndpointSlices (resourceVersion, bookmarks, 410 Gone
 * -> relist, disconnect -> capped exponential backoff and resume, paged
 * lists). The thread never touches the maps: whenever the translated set
 * changes it leaves the new set for the owner, signals k8s__fd(), and the
 * owner's k8s__poll() calls on_state() in the owner's own thread. So the
 * agent keeps one thread writing maps and needs no locking of its own.
 * k8s__poll(), k8s__stats() and k8s__close() belong to the owner's thread;
 * the options are copied at open. The sync thread blocks all signals.
 *
 * on_state() gets the FULL set of kubernetes services every time (not a
 * delta), each with source "kubernetes", valid for desired__validate(). It
 * is first called only after a complete list of BOTH kinds has been
 * applied since k8s__open(): before that, a restarted agent must keep what
 * its state file holds (a partial translation, e.g. Services listed but
 * EndpointSlices not yet, would look like services without backends).
 * `complete` is therefore true in every call today; k8s__merge() honours
 * it, so an agent that merges through it stays correct if a partial
 * publish is ever added. A relist (410, restart of a watch) replaces a
 * kind's objects only when the new list is whole, so a relist never
 * publishes a shrunken set.
 *
 * Translation (see k8s_translate.c for the details):
 *   - one service per (VIP, service port, protocol): VIPs are spec.clusterIPs
 *     (or clusterIP), spec.externalIPs and status.loadBalancer.ingress[].ip
 *     (not ipMode "Proxy"); headless ("None") and ExternalName services,
 *     SCTP ports and services labelled service.kubernetes.io/service-proxy-name
 *     (other than opts.proxy_name) are skipped.
 *   - backends from the EndpointSlices labelled kubernetes.io/service-name
 *     of the same family (addressType IPv4/IPv6; FQDN ignored), matched by
 *     port name and protocol; the slice's port number is the resolved
 *     targetPort (named ports differ per slice), else a numeric targetPort.
 *   - conditions: ready (nil = true) -> active; !ready && serving (nil =
 *     ready) && terminating -> draining (weight 0); anything else is left
 *     out. When a service port has no active endpoint, its serving and
 *     terminating ones carry it with weight 1, or their annotated weight
 *     if above 0 (they still serve).
 *   - weights: Service annotation sluice.io/weights: "KEY=W,KEY=W" where
 *     KEY is an endpoint IP or an fnmatch pattern of the endpoint's
 *     targetRef name (pod name), first match wins, W 0-65535; else the
 *     EndpointSlice annotation sluice.io/weight: "W"; else 1. Weights are
 *     per endpoint (3 pods at 90 + 1 at 10 split 270:10). Weights that
 *     leave no ready endpoint above 0 are replaced by 1 (and logged).
 *   - active health check: Service annotation sluice.io/health-check: "tcp",
 *     "http" or "http:/PATH", with optional sluice.io/health-check-interval
 *     ("2s"), -timeout ("500ms"), -port ("8081", required for udp ports)
 *     and -thresholds ("2/3": healthy/unhealthy), for every port of the
 *     Service (k8s_health.c). Readiness stays the primary signal.
 *   - externalTrafficPolicy/internalTrafficPolicy Local keep only endpoints
 *     whose nodeName is opts.node_name (when node_name is set).
 *   - NodePorts (type NodePort or LoadBalancer, spec.ports[].nodePort
 *     1-65535): one service per node address (opts.node_addrs) of a family
 *     the Service has a cluster IP of, named "...@nodeport", with the
 *     endpoints of the cluster IP one; externalTrafficPolicy Local keeps
 *     the node's own endpoints with drop_empty (no local endpoint: new
 *     flows are dropped, not refused), Cluster all of them with snat
 *     (replies of a remote endpoint come back through this node).
 *   - externalIPs and load-balancer IPs with externalTrafficPolicy Cluster:
 *     snat to the node's SNAT address (snat_node), as kube-proxy
 *     masquerades them; meshd sets that address (sluice__snat_addr_set).
 *   - healthCheckNodePort (type LoadBalancer, externalTrafficPolicy Local):
 *     handed to opts.on_health as {namespace, name, port, local ready
 *     endpoints}, the count kube-proxy reports (distinct address:port
 *     pairs of this node over all ports).
 *   - name "namespace/name:portname" ("namespace/name" for an unnamed port),
 *     cut to 63 characters with a "~hash" suffix when longer.
 */
#ifndef SLUICE_K8S_H
#define SLUICE_K8S_H

#include <stdbool.h>
#include <time.h>
#include <linux/types.h>

#include "desired.h"

#define K8S_SOURCE "kubernetes"
#define K8S_ANN_WEIGHTS "sluice.io/weights"
#define K8S_ANN_WEIGHT "sluice.io/weight"
#define K8S_ANN_HEALTH "sluice.io/health-check"

struct k8s;

/* The suffix of a NodePort service's name: "ns/name:port@nodeport". */
#define K8S_NODEPORT_MARK "@nodeport"

/*
 * Node addresses for NodePorts (k8s_nodeaddr.c): --nodeport-addresses, a
 * list of CIDRs like kube-proxy's, keeps the addresses inside one of them
 * (none: every address). Loopback, link-local, multicast and unspecified
 * addresses never serve NodePorts (kube-proxy's nftables mode does the
 * same; a NodePort on 127.0.0.1 would need route_localnet).
 */
struct k8s_cidr {
	struct sluice_addr addr; /* host bits cleared */
	__u8 len;
};

/* "10.0.0.0/8,fd00::/64" -> *out (malloc'ed), *n entries; spaces around
 * entries allowed. -EINVAL with sluice__errmsg() quoting the bad entry. */
int k8s_cidrs__parse(const char *text, struct k8s_cidr **out, __u32 *n);
bool k8s_cidr__contains(const struct k8s_cidr *c, const struct sluice_addr *a);
/* May a serve NodePorts under these CIDRs (n == 0: no filter)? */
bool k8s_nodeaddr__usable(const struct sluice_addr *a, const struct k8s_cidr *cidrs, __u32 n);

/* A healthCheckNodePort to serve (user/agent/hcnp). */
struct k8s_hc {
	char ns[254], name[254];
	__u16 port;
	__u32 local_endpoints; /* ready endpoints on this node */
};

struct k8s_hc_set {
	__u32 n;
	struct k8s_hc *v; /* sorted by port, one Service per port */
};

void k8s_hc_set__free(struct k8s_hc_set *s);
bool k8s_hc_set__equal(const struct k8s_hc_set *a, const struct k8s_hc_set *b);
int k8s_hc_set__copy(struct k8s_hc_set *dst, const struct k8s_hc_set *src);

enum k8s_log_level {
	K8S_LOG_ERROR,
	K8S_LOG_WARN,
	K8S_LOG_INFO,
	K8S_LOG_DEBUG,
};

struct k8s_opts {
	/* Where the API server is; first match wins:
	 *   kubeconfig set   -> that file (current-context: server, CA, token,
	 *                       tokenFile or client certificate and key);
	 *   server set       -> that URL ("http://127.0.0.1:8080" for tests,
	 *                       https needs ca_file), token from token_file;
	 *   neither          -> in-cluster: https://$KUBERNETES_SERVICE_HOST:
	 *                       $KUBERNETES_SERVICE_PORT with the service
	 *                       account token and CA under
	 *                       /var/run/secrets/kubernetes.io/serviceaccount. */
	const char *kubeconfig;
	const char *server;
	const char *token_file; /* re-read before every request (rotation) */
	const char *ca_file;
	/* This node (spec.nodeName), for the traffic policies "Local";
	 * NULL: the policies are ignored (all endpoints are used). */
	const char *node_name;
	/* Serve services labelled service.kubernetes.io/service-proxy-name
	 * with this value; NULL: skip every labelled service (like kube-proxy). */
	const char *proxy_name;
	unsigned int backoff_min_ms;  /* 0: 500 */
	unsigned int backoff_max_ms;  /* 0: 30000 */
	unsigned int watch_timeout_s; /* 0: random 300-600, like client-go */
	unsigned int page_size;       /* list ?limit=, 0: 500 */
	unsigned int debounce_ms;     /* coalesce changes, 0: 100 */
	/* This node's addresses for the NodePorts (copied; k8s__set_node_addrs()
	 * changes them later). */
	const struct sluice_addr *node_addrs;
	__u32 nnode_addrs;
	/* Called in k8s__poll()'s thread with the full kubernetes set. */
	void (*on_state)(const struct desired *kube, bool complete, void *ctx);
	/* Called in k8s__poll()'s thread with every healthCheckNodePort when
	 * that set (or a local endpoint count) changed; may be NULL. */
	void (*on_health)(const struct k8s_hc_set *hc, void *ctx);
	/* Called from the sync thread; NULL: lines on stderr. */
	void (*log)(enum k8s_log_level level, const char *msg, void *ctx);
	void *ctx;
};

struct k8s_stats {
	bool synced;          /* both kinds fully listed since k8s__open() */
	bool connected[2];    /* [0] Services, [1] EndpointSlices: a watch is open */
	__u64 watch_restarts; /* watches that ended and were started again */
	__u64 relists;        /* lists after the first one of each kind (410, errors) */
	__u64 sync_errors;    /* failed requests, HTTP errors, malformed JSON or objects */
	__u64 events;         /* watch events applied (ADDED/MODIFIED/DELETED) */
	__u64 publishes;      /* times on_state got a changed set */
	time_t last_sync;     /* last list, event or bookmark from the server (0: never) */
	time_t last_change;   /* last time the translated set changed (0: never) */
	__u32 services;       /* Services known */
	__u32 endpointslices; /* EndpointSlices known */
	__u32 kube_services;  /* services in the last published set */
	/* The sync thread's CPU time (its thread clock, so not inflated by a
	 * loaded machine) translating the objects into a set and checking it:
	 * in all, and for the last set translated. */
	__u64 translate_cpu_us;
	__u64 last_translate_cpu_us;
	char last_error[256]; /* "" when none since the last success */
};

/* Reads the configuration and starts the sync thread. Returns 0 or a
 * negative errno with sluice__errmsg() naming what is wrong (a missing
 * token file, a kubeconfig without current-context, ...). */
int k8s__open(const struct k8s_opts *opts, struct k8s **out);
/* Readable (EPOLLIN) when k8s__poll() has a new set to hand over. */
int k8s__fd(const struct k8s *k);
/* Clears k8s__fd() and, if a new set is waiting, calls on_state() with it.
 * Returns 1 if on_state() was called, else 0. */
int k8s__poll(struct k8s *k);
void k8s__stats(struct k8s *k, struct k8s_stats *st);
/* The node's addresses changed (owner's thread): the sync translates again
 * and publishes if the NodePort services change. 0 or -ENOMEM. */
int k8s__set_node_addrs(struct k8s *k, const struct sluice_addr *addrs, __u32 n);
/* Stops the thread (interrupting any request) and frees everything. */
void k8s__close(struct k8s *k);
/* The stats as the agent API shows them (meshctl status -o json):
 * {"synced", "connected": {"services", "endpointslices"}, "watch_restarts",
 *  "relists", "sync_errors", "events", "publishes", "last_sync",
 *  "last_change" (unix seconds, 0 = never), "services", "endpointslices",
 *  "kube_services", "last_error"}. */
struct json_object *k8s__stats_to_json(const struct k8s_stats *st);

/*
 * The agent's next desired state: every service of `cur` whose source is
 * not "kubernetes" (manual ones win a VIP:port/proto clash: the kubernetes
 * one is left out and counted in *conflicts), then the services of `kube`.
 * With complete == false, kubernetes services of `cur` missing from `kube`
 * are kept (nothing is deleted before a full sync). Manual services keep
 * their order, kubernetes ones follow sorted by key. Returns 0 or -ENOMEM.
 */
int k8s__merge(const struct desired *cur, const struct desired *kube, bool complete,
	       struct desired *out, __u32 *conflicts);

#endif /* SLUICE_K8S_H */
