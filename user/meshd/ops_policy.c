// SPDX-License-Identifier: MIT
/*
 * ops_policy.c - the access policy ops (#15):
 *   policy.list {}                          every service with rules or denials,
 *                                           the node-wide list, trie use
 *   policy.get {"service"}                  one service's rules and denials
 *   policy.node.set {"nodeDenyFrom": [...]} replace the node-wide deny list
 *                                           (null or []: none)
 * A service's rules are changed with service.set (allowFrom, denyFrom,
 * denyAction). Denials are counted per service and reason, never per
 * client. Changes go through state__commit() like every other edit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#include "desired.h"
#include "meshd.h"
#include "ops.h"
#include "state.h"

static void pol__denied_json(struct sluice *sl, const struct desired_service *svc,
			     struct json_object *o, __u64 *total)
{
	static const char *const names[] = {
#define X(name, str, help) str,
		SLUICE_POLICY_REASONS(X)
#undef X
	};
	struct sluice_policy_stats st = {};
	struct sluice_service_info *info = calloc(1, sizeof(*info));
	struct json_object *d = json_object_new_object();
	__u32 entries = 0;

	*total = 0;
	if (info && !sluice__service_get(sl, &svc->vip, svc->port, svc->proto, info)) {
		sluice__policy_stats(sl, info->svc.svc_id, &st);
		if (info->svc.flags & SLUICE_SVC_F_POLICY)
			sluice__policy_entries(sl, info->svc.svc_id, &entries);
	}
	free(info);
	for (int r = 0; r < SLUICE_POLICY_R__MAX; r++) {
		json_object_object_add(d, names[r], json_object_new_int64((int64_t)st.denied[r]));
		*total += st.denied[r];
	}
	json_object_object_add(o, "denied", d);
	json_object_object_add(o, "entries", json_object_new_int64(entries));
}

static struct json_object *pol__service_json(struct sluice *sl, const struct desired_service *svc,
					     __u64 *denied)
{
	struct json_object *full = desired__service_to_json(svc), *o = json_object_new_object(), *v;
	char ref[DESIRED_SVC_REF_LEN];

	json_object_object_add(o, "service",
			       json_object_new_string(desired__svc_ref(svc, ref, sizeof(ref))));
	if (svc->name[0])
		json_object_object_add(o, "name", json_object_new_string(svc->name));
	/* a list held by full gets a reference; a new empty one has its own */
	for (const char *const *k = (const char *const[]){ "allowFrom", "denyFrom", NULL }; *k; k++)
		json_object_object_add(o, *k,
				       json_object_object_get_ex(full, *k, &v) ?
					       json_object_get(v) :
					       json_object_new_array());
	json_object_object_add(o, "denyAction",
			       json_object_new_string(svc->policy_refuse ? "refuse" : "drop"));
	json_object_put(full);
	pol__denied_json(sl, svc, o, denied);
	return o;
}

static struct json_object *pol__node_json(const struct desired *d)
{
	struct json_object *l = desired__node_deny_to_json(d);

	return l ? l : json_object_new_array();
}

static const char *const pol__cut_states[] = {
	[SLUICE_CUT_IDLE] = "idle",
	[SLUICE_CUT_PENDING] = "pending",
	[SLUICE_CUT_RUNNING] = "running",
};

static void pol__add_u64(struct json_object *o, const char *k, __u64 v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

/* "cut": totals of the cuts since meshd started, and the worker's run in
 * progress (state, run_us, run_netns) and last completed run */
static struct json_object *pol__cut_json(struct sluice *sl)
{
	struct json_object *o = json_object_new_object();
	struct sluice_policy_cut_totals t;

	sluice__policy_cut_totals(sl, &t);
	json_object_object_add(o, "state", json_object_new_string(pol__cut_states[t.state]));
	pol__add_u64(o, "flows", t.flows);
	pol__add_u64(o, "sockets", t.socks);
	pol__add_u64(o, "netns", t.netns);
	pol__add_u64(o, "netns_failed", t.netns_failed);
	pol__add_u64(o, "netns_skipped", t.netns_skipped);
	pol__add_u64(o, "scans_truncated", t.scans_truncated);
	pol__add_u64(o, "pids_scanned", t.pids_scanned);
	pol__add_u64(o, "sockets_truncated", t.socks_truncated);
	pol__add_u64(o, "last_netns", t.last_netns);
	pol__add_u64(o, "last_netns_us", t.last_netns_us);
	json_object_object_add(o, "last_error",
			       json_object_new_string(t.last_err ? strerror(-t.last_err) : ""));
	pol__add_u64(o, "requests", t.requests);
	pol__add_u64(o, "runs", t.runs);
	pol__add_u64(o, "restarts", t.restarts);
	pol__add_u64(o, "run_us", t.run_us);
	pol__add_u64(o, "run_netns", t.run_netns);
	pol__add_u64(o, "last_run_us", t.last_run_us);
	pol__add_u64(o, "last_run_flows", t.last_flows);
	pol__add_u64(o, "last_run_sockets", t.last_socks);
	json_object_object_add(o, "last_run_error",
			       json_object_new_string(t.last_run_err ? strerror(-t.last_run_err) :
								       ""));
	return o;
}

void ops__policy_metrics(struct sluice *sl, FILE *out)
{
	struct sluice_policy_cut_totals t;

	sluice__policy_cut_totals(sl, &t);
	fprintf(out,
		"# HELP sluice_policy_cut_flows_total Conntrack flows a policy change cut.\n"
		"# TYPE sluice_policy_cut_flows_total counter\n"
		"sluice_policy_cut_flows_total %llu\n"
		"# HELP sluice_policy_cut_sockets_total Sockets a policy change destroyed.\n"
		"# TYPE sluice_policy_cut_sockets_total counter\n"
		"sluice_policy_cut_sockets_total %llu\n"
		"# HELP sluice_policy_cut_netns_total Other network namespaces of policy cuts, "
		"by result.\n"
		"# TYPE sluice_policy_cut_netns_total counter\n"
		"sluice_policy_cut_netns_total{result=\"entered\"} %llu\n"
		"sluice_policy_cut_netns_total{result=\"failed\"} %llu\n"
		"sluice_policy_cut_netns_total{result=\"skipped\"} %llu\n"
		"# HELP sluice_policy_cut_scans_truncated_total Policy cuts whose process walk "
		"hit a bound.\n"
		"# TYPE sluice_policy_cut_scans_truncated_total counter\n"
		"sluice_policy_cut_scans_truncated_total %llu\n"
		"# HELP sluice_policy_cut_dumps_truncated_total Socket dumps with more denied "
		"sockets than one cut destroys (the rest wait for the next).\n"
		"# TYPE sluice_policy_cut_dumps_truncated_total counter\n"
		"sluice_policy_cut_dumps_truncated_total %llu\n"
		"# HELP sluice_policy_cut_runs_total Policy cuts, by how they ended (restarted: "
		"a newer change came).\n"
		"# TYPE sluice_policy_cut_runs_total counter\n"
		"sluice_policy_cut_runs_total{result=\"completed\"} %llu\n"
		"sluice_policy_cut_runs_total{result=\"restarted\"} %llu\n"
		"# HELP sluice_policy_cut_running 1 while a policy cut runs in the background.\n"
		"# TYPE sluice_policy_cut_running gauge\n"
		"sluice_policy_cut_running %d\n"
		"# HELP sluice_policy_cut_last_run_seconds Time of the last completed policy cut.\n"
		"# TYPE sluice_policy_cut_last_run_seconds gauge\n"
		"sluice_policy_cut_last_run_seconds %.6f\n",
		(unsigned long long)t.flows, (unsigned long long)t.socks,
		(unsigned long long)t.netns, (unsigned long long)t.netns_failed,
		(unsigned long long)t.netns_skipped, (unsigned long long)t.scans_truncated,
		(unsigned long long)t.socks_truncated, (unsigned long long)t.runs,
		(unsigned long long)t.restarts, t.state == SLUICE_CUT_RUNNING,
		(double)t.last_run_us / 1e6);
}

struct json_object *ops__policy_list(struct meshd *m, struct json_object *req)
{
	struct json_object *d = json_object_new_object(), *arr = json_object_new_array(), *o;
	const struct desired *ds = &m->state.desired;
	__u64 denied;

	(void)req;
	for (__u32 i = 0; i < ds->nservices; i++) {
		const struct desired_service *svc = &ds->services[i];

		o = pol__service_json(m->sl, svc, &denied);
		if (svc->nallow || svc->ndeny || denied)
			json_object_array_add(arr, o);
		else
			json_object_put(o);
	}
	json_object_object_add(d, "services", arr);
	json_object_object_add(d, "nodeDenyFrom", pol__node_json(ds));
	arr = json_object_new_array();
	for (const char *const *k = (const char *const[]){ "policy", "policy_node", "policy_nhost",
							   "policy_hash", NULL };
	     *k; k++) {
		o = ops__map_fill(m->sl, *k);
		if (o)
			json_object_array_add(arr, o);
	}
	json_object_object_add(d, "maps", arr);
	json_object_object_add(d, "cut", pol__cut_json(m->sl));
	return api__ok(d);
}

struct json_object *ops__policy_get(struct meshd *m, struct json_object *req)
{
	struct json_object *err;
	struct svc_ref ref;
	__u64 denied;
	int i;

	err = ops__svc_arg(req, &ref);
	if (err)
		return err;
	err = ops__existing_svc(&m->state.desired, &m->kube, &ref, false, &i);
	if (err)
		return err;
	return api__ok(pol__service_json(m->sl, &m->state.desired.services[i], &denied));
}

struct json_object *ops__policy_node_set(struct meshd *m, struct json_object *req)
{
	struct json_object *root, *services, *v = NULL, *d;
	struct desired next;
	char err[1024];

	json_object_object_get_ex(req, "nodeDenyFrom", &v);
	if (v && !json_object_is_type(v, json_type_array))
		return api__error("nodeDenyFrom: expected a list of CIDRs");
	root = ops__state_json(&m->state.desired, &services);
	if (!root)
		return api__error("out of memory");
	if (v && json_object_array_length(v))
		json_object_object_add(root, "nodeDenyFrom", json_object_get(v));
	else
		json_object_object_del(root, "nodeDenyFrom");
	desired__init(&next);
	if (desired__from_json(&next, root)) {
		json_object_put(root);
		return api__error("%s", sluice__errmsg());
	}
	json_object_put(root);
	if (state__commit(&m->state, &next, err, sizeof(err))) {
		desired__free(&next);
		return api__error("%s", err);
	}
	d = json_object_new_object();
	json_object_object_add(d, "nodeDenyFrom", pol__node_json(&m->state.desired));
	return api__ok(d);
}
