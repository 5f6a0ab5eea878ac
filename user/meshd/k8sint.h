/* SPDX-License-Identifier: MIT */
/*
 * k8sint.h - the Kubernetes sync (user/lib/k8s.h) in the agent:
 * --kubernetes on|off and --kubeconfig FILE, the commit of each synced set,
 * the guard that keeps API edits off kubernetes services, and what status
 * and /metrics say about the sync.
 *
 * Contract: every set the sync hands over is merged with the manual
 * services (manual ones win a clash) and committed through state.h, the
 * one path that changes the maps and the state file; nothing is removed
 * before the first full list of both kinds (k8s.h). The sync coalesces
 * the watch events that arrive together (its debounce) into one set; the
 * first set, and any that adds or removes a service (or changes more than
 * STATE_GROUP_MAX), is committed whole (state__commit()); any other is
 * one pass over the services it changed, each validated, applied and
 * journaled alone (state__stage_service(): a refused one keeps its old
 * version, the others go on), made durable by one fdatasync
 * (state__group_flush()). A kubernetes
 * service belongs to the API server: meshctl edits of it are refused, and
 * `apply` keeps the kubernetes services whatever the file says. With the
 * sync on, it also follows the node's addresses for the NodePorts
 * (nodeaddr.h) and serves the healthCheckNodePorts (hcnp.h); a synced set
 * that cannot be committed makes them answer serviceProxyHealthy false.
 */
#ifndef MESHD_K8SINT_H
#define MESHD_K8SINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

#include <json-c/json.h>

#include "desired.h"
#include "hcnp.h"
#include "nodeaddr.h"
#include "snataddr.h"
#include "state.h"

struct k8s;

struct k8sint_cfg {
	bool enabled;                   /* --kubernetes */
	const char *kubeconfig;         /* --kubeconfig; NULL: in-cluster */
	const char *nodeport_addresses; /* --nodeport-addresses; NULL: every address */
	struct snataddr *snat;          /* --snat-address, written into sl */
	struct sluice *sl;              /* the datapath */
	struct state *state;            /* what the maps hold; the commit path */
};

struct k8sint {
	struct k8s *k;         /* NULL: --kubernetes off */
	__u64 commits;         /* synced sets committed */
	__u64 commit_errors;   /* synced sets (or services of a pass) refused */
	__u64 whole_commits;   /* of the commits, whole-state ones */
	__u64 passes;          /* of them, per-service passes (one fsync each) */
	__u64 pass_services;   /* services changed by those passes */
	__u32 clashes;         /* kubernetes services left out for manual ones */
	char last_error[1024]; /* of the last commit, "" after a success */
	struct k8sint_cfg cfg;
	struct nodeaddr na;     /* the node's NodePort addresses, followed */
	struct hcnp hc;         /* healthCheckNodePort servers */
	struct k8s_hc_set want; /* the last healthCheckNodePorts asked for */
	int epfd;               /* the sync's eventfd, node address events, hcnp */
	int hc_failed;          /* of them, ports not served (retried on tick) */
};

/* Opens the sync when cfg->enabled (after the state load and the
 * reconcile); 0 when off. On error the reason is logged: refuse to start. */
int k8sint__start(struct k8sint *ki, const struct k8sint_cfg *cfg);
void k8sint__stop(struct k8sint *ki);
/* One fd for the loop (-1 when off): readable when a synced set, a node
 * address change or a healthCheckNodePort client waits. */
int k8sint__fd(const struct k8sint *ki);
/* After every wait (never blocks): commit a new set if one waits, follow
 * node address changes, serve the healthCheckNodePort servers (their
 * deadlines too, within k8sint__timeout_ms(), -1: none). */
void k8sint__run(struct k8sint *ki);
int k8sint__timeout_ms(const struct k8sint *ki);
/* The loop's check tick: ports that could not be bound are tried again. */
void k8sint__tick(struct k8sint *ki);
/* Commits one set the sync handed over (its callback, in the loop's
 * thread; the unit tests call it directly): merged with the manual
 * services, then one pass or a whole commit as the contract above says;
 * the counters and last_error tell what happened. */
void k8sint__commit_set(struct k8sint *ki, const struct desired *kube, bool complete);
/* status "kubernetes" object, or NULL (JSON null) when off. */
struct json_object *k8sint__status_json(const struct k8sint *ki);
/* sluice_kubernetes_* samples for /metrics (nothing when off). */
void k8sint__metrics(const struct k8sint *ki, FILE *out);
/* NULL when svc may be edited (manual, or the sync is off: then nobody
 * manages a leftover kubernetes service) through the API, else the error response. */
struct json_object *k8sint__refuse_edit(const struct k8sint *ki, const struct desired_service *svc,
					const char *ref);
/* apply: the file's state `want` plus the current kubernetes services
 * (consumed into *out); *kept counts those kept. 0 or -ENOMEM. With the
 * sync off, want itself is moved into *out (and left empty). */
int k8sint__apply_merge(const struct k8sint *ki, struct desired *want, struct desired *out,
			__u32 *kept);

#endif /* MESHD_K8SINT_H */
