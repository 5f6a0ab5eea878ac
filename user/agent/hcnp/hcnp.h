/* SPDX-License-Identifier: MIT */
/*
 * hcnp.h - healthCheckNodePort servers, as kube-proxy serves them
 * (pkg/proxy/healthcheck/service_health.go): one HTTP server per port of a
 * LoadBalancer Service with externalTrafficPolicy Local, on every address
 * of the node (":PORT"), so a cloud load balancer sends traffic only to
 * nodes with a local endpoint.
 *
 * Contract: any request path, GET or HEAD, answers 200 when the Service has
 * at least one ready endpoint on this node and the proxy is healthy, else
 * 503; Content-Type application/json, X-Content-Type-Options nosniff and
 * kube-proxy's body, byte for byte (tab-indented, no final newline):
 *   {"service": {"namespace": NS, "name": NAME}, "localEndpoints": N,
 *    "serviceProxyHealthy": BOOL}
 * A server listens on [::]:PORT (0.0.0.0:PORT on a node without IPv6), or
 * on opts.host. Servers come and go with hcnp__sync(); a port that cannot
 * be bound (in use) is logged, counted in hcnp__sync()'s return, and tried
 * again by the next hcnp__sync() (meshd: every check tick). Each server is the
 * metrics server's (user/agent/metrics/http.h) with its limits: a bounded
 * connection count, a deadline for a whole request however slowly it
 * trickles, an idle timeout; nothing blocks the agent's loop.
 *
 * Agent loop: add hcnp__fd() (one epoll fd over every server) for
 * EPOLLIN, call hcnp__run() after every wait and bound the wait by
 * hcnp__timeout_ms().
 */
#ifndef SLUICE_HCNP_H
#define SLUICE_HCNP_H

#include <stdbool.h>
#include <linux/types.h>

#include "k8s.h"

/* Small on purpose: a probe is one tiny request every few seconds per
 * load balancer; the rest is abuse. A server holds at most HCNP_MAX_CONNS
 * + HCNP_CONN_MARGIN descriptors, and there are at most HCNP_MAX_SERVERS
 * (the API server allocates these ports for LoadBalancer Services with
 * externalTrafficPolicy Local only): ~3k descriptors in the worst case. */
#define HCNP_MAX_CONNS 16
#define HCNP_CONN_MARGIN 8
#define HCNP_MAX_SERVERS 128
#define HCNP_REQUEST_MS 5000
#define HCNP_IDLE_S 10

struct http;
struct hcnp_server;

struct hcnp_opts {
	/* Bind host ("" or NULL: every address of both families). */
	const char *host;
	void (*log)(bool error, const char *msg, void *ctx);
	void *ctx;
};

struct hcnp {
	int epfd;
	struct hcnp_opts opts;
	struct hcnp_server **v;
	__u32 n;
	bool healthy;                /* serviceProxyHealthy */
	__u16 *failed, *prev_failed; /* ports not served by this / the last sync */
	__u32 nfailed, nprev_failed;
};

int hcnp__init(struct hcnp *s, const struct hcnp_opts *opts);
void hcnp__free(struct hcnp *s);
int hcnp__fd(const struct hcnp *s);
/* Serve this set: start, stop and update servers. Returns how many ports
 * could not be served (logged). */
int hcnp__sync(struct hcnp *s, const struct k8s_hc_set *set);
/* serviceProxyHealthy: false answers 503 whatever the endpoints. */
void hcnp__set_healthy(struct hcnp *s, bool healthy);
void hcnp__run(struct hcnp *s);
/* ms until hcnp__run() must run anyway; -1: no deadline. */
int hcnp__timeout_ms(const struct hcnp *s);
__u32 hcnp__count(const struct hcnp *s);
/* kube-proxy's body for one Service into buf; its length, or < 0. */
int hcnp__body(char *buf, size_t len, const char *ns, const char *name, __u32 local_endpoints,
	       bool healthy);

#endif /* SLUICE_HCNP_H */
