// SPDX-License-Identifier: MIT
/*
 * k8sint.c - the Kubernetes sync in meshd (see k8sint.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "api.h"
#include "desired.h"
#include "k8s.h"
#include "sluice.h"

#include "k8sint.h"
#include "log.h"

/* Called from the sync thread: pr_*() writes one line per call. */
static void k8sint__log(enum k8s_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	switch (level) {
	case K8S_LOG_ERROR:
		pr_err("kubernetes: %s", msg);
		break;
	case K8S_LOG_WARN:
		pr_warn("kubernetes: %s", msg);
		break;
	case K8S_LOG_INFO:
		pr_info("kubernetes: %s", msg);
		break;
	default:
		pr_debug("kubernetes: %s", msg);
	}
}

/* The services a set changes (desired__diff_fn): indexes into the state
 * and the new versions; any add or delete makes it a whole commit. */
struct k8sint_pass {
	const struct desired_service *base;
	__u32 *idx;
	const struct desired_service **svc;
	__u32 n;
	bool whole;
};

static void k8sint__collect(enum desired_change change, const struct desired_service *old_svc,
			    const struct desired_service *new_svc, void *ctx)
{
	struct k8sint_pass *p = ctx;

	if (change != DESIRED_UPDATE || p->n >= STATE_GROUP_MAX) {
		p->whole = true;
		return;
	}
	p->idx[p->n] = (__u32)(old_svc - p->base);
	p->svc[p->n++] = new_svc;
}

/* One pass over the services next changes: each staged alone, one flush.
 * 1: next is not such a set (commit it whole); 0: done (*refused of them
 * kept their old version, the text of the first in err); < 0: the flush
 * failed, nothing changed. */
static int k8sint__pass(struct k8sint *ki, const struct desired *next, __u32 *refused, char *err,
			size_t errlen)
{
	struct state *st = ki->cfg.state;
	struct k8sint_pass p = { .base = st->desired.services };
	char one_err[1024];
	int rc = 1;

	*refused = 0;
	p.idx = calloc(STATE_GROUP_MAX, sizeof(*p.idx));
	p.svc = calloc(STATE_GROUP_MAX, sizeof(*p.svc));
	if (!p.idx || !p.svc)
		goto out;
	desired__diff(&st->desired, next, k8sint__collect, &p);
	if (p.whole)
		goto out;
	rc = 0;
	if (!p.n) /* a set with nothing of ours changed (a clash, an order) */
		goto out;
	state__group_flush(st); /* whatever is open is not this pass's */
	for (__u32 k = 0; k < p.n; k++) {
		struct desired one = { .nservices = 1,
				       .services = (struct desired_service *)p.svc[k] },
			       copy;

		if (desired__copy(&copy, &one)) {
			snprintf(one_err, sizeof(one_err), "out of memory");
		} else if (!state__stage_service(st, p.idx[k], &copy.services[0], one_err,
						 sizeof(one_err))) {
			free(copy.services);
			continue;
		} else {
			desired__free(&copy);
		}
		if (!(*refused)++)
			snprintf(err, errlen, "%s", one_err);
	}
	rc = state__group_flush(st);
	if (rc < 0)
		snprintf(err, errlen, "%s", st->group.last_error);
	ki->passes++;
	if (!rc)
		ki->pass_services += p.n - *refused;
	pr_debug("kubernetes: one pass over %u changed service(s), %u refused", p.n, *refused);
out:
	free(p.idx);
	free(p.svc);
	return rc;
}

static void k8sint__failed(struct k8sint *ki, const char *what, const char *err)
{
	snprintf(ki->last_error, sizeof(ki->last_error), "%s", err);
	ki->commit_errors++;
	pr_err("kubernetes: %s: %s", what, err);
	/* a load balancer's probe must not pick a node that is out of sync */
	hcnp__set_healthy(&ki->hc, false);
}

/* A new full set from the API server (in the loop's thread): manual
 * services kept, then state.c's commit path: one pass over the services
 * it changes, or (the first set, services added or removed) the whole
 * state, which validates, applies all-or-nothing, saves and puts the maps
 * back on a failed save. */
void k8sint__commit_set(struct k8sint *ki, const struct desired *kube, bool complete)
{
	struct desired next;
	__u32 clash = 0, refused = 0;
	char err[1024];
	int rc = 1;

	desired__init(&next);
	if (k8s__merge(&ki->cfg.state->desired, kube, complete, &next, &clash)) {
		snprintf(ki->last_error, sizeof(ki->last_error), "out of memory");
		ki->commit_errors++;
		pr_err("kubernetes: merging %u services: out of memory", kube->nservices);
		return;
	}
	if (ki->commits)
		rc = k8sint__pass(ki, &next, &refused, err, sizeof(err));
	if (rc > 0) {
		rc = state__commit(ki->cfg.state, &next, err, sizeof(err));
		if (!rc)
			ki->whole_commits++;
	}
	desired__free(&next);
	if (rc) {
		k8sint__failed(ki, "the synced services were not applied (the old ones stay)", err);
		return;
	}
	if (refused) {
		ki->commit_errors += refused - 1;
		k8sint__failed(ki,
			       "services of the synced set were refused (their old versions stay)",
			       err);
	} else {
		ki->last_error[0] = '\0';
		hcnp__set_healthy(&ki->hc, true);
	}
	ki->commits++;
	if (clash && clash != ki->clashes)
		pr_warn("kubernetes: %u services clash with manual ones (manual kept)", clash);
	ki->clashes = clash;
	pr_debug("kubernetes: %u kubernetes services committed", kube->nservices);
}

static void k8sint__on_state(const struct desired *kube, bool complete, void *ctx)
{
	k8sint__commit_set(ctx, kube, complete);
}

static void k8sint__on_health(const struct k8s_hc_set *set, void *ctx)
{
	struct k8sint *ki = ctx;

	k8s_hc_set__free(&ki->want);
	if (k8s_hc_set__copy(&ki->want, set))
		pr_err("kubernetes: healthCheckNodePorts: out of memory");
	ki->hc_failed = hcnp__sync(&ki->hc, &ki->want);
}

static void k8sint__hc_log(bool error, const char *msg, void *ctx)
{
	(void)ctx;
	if (error)
		pr_err("kubernetes: %s", msg);
	else
		pr_info("kubernetes: %s", msg);
}

static void k8sint__on_addrs(void *ctx, const struct sluice_addr *addrs, __u32 n)
{
	struct k8sint *ki = ctx;

	snataddr__apply(ki->cfg.snat, ki->cfg.sl, addrs, n);
	/* before the sync starts: k8s__open() takes them from ki->na */
	if (ki->k && k8s__set_node_addrs(ki->k, addrs, n))
		pr_err("kubernetes: node addresses: out of memory (NodePorts not updated)");
}

enum {
	K8SINT_EV_SYNC,
	K8SINT_EV_ADDRS,
	K8SINT_EV_HCNP
};

/* One epoll fd over the sync's eventfd, the address events and hcnp's. */
static int k8sint__epoll(struct k8sint *ki)
{
	int fds[] = { k8s__fd(ki->k), nodeaddr__fd(&ki->na), hcnp__fd(&ki->hc) };
	int err;

	ki->epfd = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < 3 && ki->epfd >= 0; i++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u32 = i };

		if (epoll_ctl(ki->epfd, EPOLL_CTL_ADD, fds[i], &e)) {
			err = errno;
			close(ki->epfd);
			ki->epfd = -1;
			errno = err;
		}
	}
	if (ki->epfd >= 0)
		return 0;
	sluice__set_err("epoll: %s", strerror(errno));
	return -EIO;
}

int k8sint__start(struct k8sint *ki, const struct k8sint_cfg *cfg)
{
	struct k8s_opts ko = {
		.kubeconfig = cfg->kubeconfig,
		.node_name = getenv("NODE_NAME"),
		.on_state = k8sint__on_state,
		.on_health = k8sint__on_health,
		.log = k8sint__log,
		.ctx = ki,
	};
	int err;

	ki->cfg = *cfg;
	ki->k = NULL;
	ki->hc.epfd = -1;
	ki->epfd = -1;
	if (!cfg->enabled || !cfg->snat->follow) /* else with the node addresses */
		snataddr__apply(cfg->snat, cfg->sl, NULL, 0);
	if (!cfg->enabled) {
		if (cfg->nodeport_addresses)
			pr_warn("--nodeport-addresses %s ignored: NodePorts come from --kubernetes "
				"on",
				cfg->nodeport_addresses);
		return 0;
	}
	if (ko.node_name && !*ko.node_name)
		ko.node_name = NULL;
	err = hcnp__init(&ki->hc, &(struct hcnp_opts){ .log = k8sint__hc_log, .ctx = ki });
	if (err) {
		pr_err("kubernetes: %s", sluice__errmsg());
		return err;
	}
	err = nodeaddr__open(&ki->na, cfg->nodeport_addresses, k8sint__on_addrs, ki);
	if (err)
		return err;
	ko.node_addrs = ki->na.addrs;
	ko.nnode_addrs = ki->na.n;
	err = k8s__open(&ko, &ki->k);
	if (!err && k8sint__epoll(ki)) {
		pr_err("kubernetes: %s", sluice__errmsg());
		return -EIO;
	}
	if (err) {
		ki->k = NULL;
		pr_err("kubernetes: %s (--kubernetes on%s%s)", sluice__errmsg(),
		       cfg->kubeconfig ? ", --kubeconfig " : ", in-cluster",
		       cfg->kubeconfig ? cfg->kubeconfig : "");
		return err;
	}
	pr_info("kubernetes: sync started (node %s); the state file's services stay until "
		"the first full list of both kinds",
		ko.node_name ? ko.node_name :
			       "unknown: NODE_NAME unset, traffic policies Local ignored");
	return 0;
}

void k8sint__stop(struct k8sint *ki)
{
	k8s__close(ki->k);
	ki->k = NULL;
	if (ki->epfd >= 0)
		close(ki->epfd);
	ki->epfd = -1;
	if (ki->cfg.enabled) {
		hcnp__free(&ki->hc);
		nodeaddr__close(&ki->na);
		k8s_hc_set__free(&ki->want);
	}
}

int k8sint__fd(const struct k8sint *ki)
{
	return ki->k ? ki->epfd : -1;
}

void k8sint__run(struct k8sint *ki)
{
	struct epoll_event evs[4];
	int n;

	if (!ki->k)
		return;
	/* level-triggered: the loop's epoll reports this fd until it is drained */
	n = epoll_wait(ki->epfd, evs, 4, 0);
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u32 == K8SINT_EV_SYNC)
			k8s__poll(ki->k);
		else if (evs[i].data.u32 == K8SINT_EV_ADDRS)
			nodeaddr__read(&ki->na);
	}
	hcnp__run(&ki->hc); /* every time: its deadlines */
}

int k8sint__timeout_ms(const struct k8sint *ki)
{
	return ki->k ? hcnp__timeout_ms(&ki->hc) : -1;
}

void k8sint__tick(struct k8sint *ki)
{
	if (ki->k && ki->hc_failed)
		ki->hc_failed = hcnp__sync(&ki->hc, &ki->want);
}

static struct json_object *k8sint__addrs_json(const struct nodeaddr *na)
{
	struct json_object *a = json_object_new_array();
	char buf[SLUICE_ADDR_STRLEN];

	for (__u32 i = 0; a && i < na->n; i++)
		json_object_array_add(a, json_object_new_string(sluice_addr__str(&na->addrs[i], buf,
										 sizeof(buf))));
	return a;
}

struct json_object *k8sint__status_json(const struct k8sint *ki)
{
	struct json_object *o;
	struct k8s_stats st;

	if (!ki->k)
		return NULL;
	k8s__stats(ki->k, &st);
	o = k8s__stats_to_json(&st);
	if (!o)
		return NULL;
	/* The agent's side: commits of synced sets and what refused them. */
	json_object_object_add(o, "commits", json_object_new_uint64(ki->commits));
	json_object_object_add(o, "commit_errors", json_object_new_uint64(ki->commit_errors));
	json_object_object_add(o, "whole_commits", json_object_new_uint64(ki->whole_commits));
	json_object_object_add(o, "service_passes", json_object_new_uint64(ki->passes));
	json_object_object_add(o, "service_pass_changes",
			       json_object_new_uint64(ki->pass_services));
	json_object_object_add(o, "commit_error", json_object_new_string(ki->last_error));
	json_object_object_add(o, "clashes", json_object_new_int64(ki->clashes));
	json_object_object_add(o, "node_addresses", k8sint__addrs_json(&ki->na));
	json_object_object_add(o, "health_check_node_ports",
			       json_object_new_int64(hcnp__count(&ki->hc)));
	json_object_object_add(o, "kubeconfig",
			       ki->cfg.kubeconfig ? json_object_new_string(ki->cfg.kubeconfig) :
						    NULL);
	return o;
}

static void k8sint__metric(FILE *out, const char *name, const char *type, const char *help,
			   double val)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, val);
}

void k8sint__metrics(const struct k8sint *ki, FILE *out)
{
	struct k8s_stats st;

	if (!ki->k)
		return;
	k8s__stats(ki->k, &st);
	k8sint__metric(out, "sluice_kubernetes_synced", "gauge",
		       "1 once Services and EndpointSlices were fully listed since meshd started",
		       st.synced);
	k8sint__metric(out, "sluice_kubernetes_watch_restarts_total", "counter",
		       "Kubernetes watches that ended and were started again", st.watch_restarts);
	k8sint__metric(out, "sluice_kubernetes_relists_total", "counter",
		       "Kubernetes lists after the first one of each kind (410 Gone, errors)",
		       st.relists);
	/* API-side failures and synced sets the agent could not commit. */
	k8sint__metric(out, "sluice_kubernetes_sync_errors_total", "counter",
		       "Kubernetes sync errors: failed requests, HTTP errors, malformed objects, "
		       "synced sets that could not be applied",
		       (double)(st.sync_errors + ki->commit_errors));
	k8sint__metric(
		out, "sluice_kubernetes_last_sync_timestamp_seconds", "gauge",
		"Unix time of the last list, event or bookmark from the API server (0: never)",
		(double)st.last_sync);
	k8sint__metric(out, "sluice_kubernetes_translate_cpu_seconds_total", "counter",
		       "CPU time the sync thread spent translating Kubernetes objects into "
		       "service sets and checking them",
		       (double)st.translate_cpu_us / 1e6);
	k8sint__metric(out, "sluice_kubernetes_nodeport_addresses", "gauge",
		       "Node addresses NodePorts are served on (inside --nodeport-addresses)",
		       ki->na.n);
	k8sint__metric(out, "sluice_kubernetes_health_check_node_ports", "gauge",
		       "healthCheckNodePort servers listening", hcnp__count(&ki->hc));
	k8sint__metric(out, "sluice_kubernetes_health_check_node_ports_failed", "gauge",
		       "healthCheckNodePorts that could not be served (port in use; retried)",
		       ki->hc_failed);
}

struct json_object *k8sint__refuse_edit(const struct k8sint *ki, const struct desired_service *svc,
					const char *ref)
{
	/* With the sync off nobody manages them: they are the operator's. */
	if (!ki->k || strcmp(svc->source, K8S_SOURCE))
		return NULL;
	return api__error("service %s%s%s%s is managed by Kubernetes (source kubernetes); change "
			  "the Service/EndpointSlice instead",
			  ref, svc->name[0] ? " (" : "", svc->name, svc->name[0] ? ")" : "");
}

int k8sint__apply_merge(const struct k8sint *ki, struct desired *want, struct desired *out,
			__u32 *kept)
{
	const struct desired *cur;
	struct desired kube;
	__u32 clash = 0;
	int err = 0;

	*kept = 0;
	desired__init(out);
	if (!ki->k || !ki->cfg.state) {
		/* moved, not copied: a second 30k-service state is ~18 MB */
		*out = *want;
		desired__init(want);
		return 0;
	}
	cur = &ki->cfg.state->desired;
	/* The current kubernetes subset, as if the sync had just handed it over. */
	desired__init(&kube);
	for (__u32 i = 0; i < cur->nservices; i++)
		if (!strcmp(cur->services[i].source, K8S_SOURCE))
			(*kept)++;
	if (*kept) {
		kube.services = calloc(*kept, sizeof(*kube.services));
		if (!kube.services)
			return -ENOMEM;
		/* shallow: the merge copies what it keeps */
		for (__u32 i = 0; i < cur->nservices; i++)
			if (!strcmp(cur->services[i].source, K8S_SOURCE))
				kube.services[kube.nservices++] = cur->services[i];
	}
	err = k8s__merge(want, &kube, true, out, &clash);
	free(kube.services);
	if (err)
		return err;
	*kept = 0;
	for (__u32 i = 0; i < out->nservices; i++)
		if (!strcmp(out->services[i].source, K8S_SOURCE))
			(*kept)++;
	return 0;
}
