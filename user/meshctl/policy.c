// SPDX-License-Identifier: MIT
/*
 * policy.c - `meshctl policy` (#15): list and get the access policy of
 * services (rules, action, denials per reason, trie entries), set a
 * service's rules, and replace the node-wide deny list.
 *
 *   meshctl policy set SVC --allow-from 10.0.0.0/8 --deny-from 10.0.66.0/24:1-1023
 *   meshctl policy node 198.51.100.0/24,2001:db8:bad::/48
 *
 * Rules are checked here as far as their text goes (CIDR[:PORT[-PORT]],
 * host bits); overlaps and limits are meshd's, whose error names the rule.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"

#include "client.h"
#include "meshctl.h"
#include "output.h"

/* "a,b,c" -> ["a","b","c"]; "" -> [] (remove). */
static int policy__list_arg(const char *flag, const char *text, bool cidr_only,
			    struct json_object **out)
{
	char buf[SLUICE_POLICY_RULE_STRLEN], *copy, *item, *save = NULL;
	struct json_object *arr = out__xalloc(json_object_new_array());
	struct sluice_policy_rule r;
	int rc;

	copy = strdup(text);
	if (!copy)
		return out__error("out of memory");
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		rc = cidr_only ? sluice_cidr__parse(&r.cidr, item) :
				 sluice_policy_rule__parse(&r, item);
		if (rc < 0 || rc > 0) {
			if (rc > 0)
				out__error("%s: \"%s\" has host bits set (it means %s)", flag, item,
					   cidr_only ?
						   sluice_cidr__str(&r.cidr, buf, sizeof(buf)) :
						   sluice_policy_rule__str(&r, buf, sizeof(buf)));
			else
				out__error("%s: %s", flag, sluice__errmsg());
			free(copy);
			json_object_put(arr);
			return -1;
		}
		json_object_array_add(arr, json_object_new_string(item));
	}
	free(copy);
	*out = arr;
	return 0;
}

static void policy__join(struct json_object *l, char *buf, size_t len, const char *none)
{
	size_t used = 0;

	snprintf(buf, len, "%s", none);
	for (size_t i = 0; i < js__len(l) && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "",
					 json_object_get_string(js__idx(l, i)));
}

static void policy__row(struct table *t, struct json_object *s)
{
	struct json_object *d = js__get(s, "denied");
	char allow[512], deny[512];

	policy__join(js__get(s, "allowFrom"), allow, sizeof(allow), "-");
	policy__join(js__get(s, "denyFrom"), deny, sizeof(deny), "-");
	table__cell(t, "%s", js__str(s, "service", "?"));
	table__cell(t, "%s", allow);
	table__cell(t, "%s", deny);
	table__cell(t, "%s", js__str(s, "denyAction", "drop"));
	table__cell(t, "%llu", (unsigned long long)js__u64(s, "entries"));
	table__cell(t, "%llu/%llu/%llu", (unsigned long long)js__u64(d, "deny_list"),
		    (unsigned long long)js__u64(d, "not_allowed"),
		    (unsigned long long)js__u64(d, "node_deny"));
}

static int do_list(int argc, char **argv)
{
	static const char *const cols[] = { "SERVICE", "ALLOW",    "DENY",
					    "ACTION",  ">ENTRIES", ">DENIED(deny/notallowed/node)",
					    NULL };
	struct json_object *data = NULL, *svcs, *maps, *cut;
	struct table *t;
	char node[1024], *pos[1];
	int npos;

	if (opts__parse(argc, argv, (const struct opt[]){ { NULL } }, pos, 0, &npos))
		return -1;
	if (client__call("policy.list", NULL, &data))
		return -1;
	if (out__json_mode()) {
		out__json(data);
		json_object_put(data);
		return 0;
	}
	svcs = js__get(data, "services");
	t = table__new(cols);
	for (size_t i = 0; i < js__len(svcs); i++)
		policy__row(t, js__idx(svcs, i));
	table__print(t);
	table__free(t);
	policy__join(js__get(data, "nodeDenyFrom"), node, sizeof(node), "none");
	printf("\nNode deny: %s\n", node);
	cut = js__get(data, "cut");
	printf("Cut:       %llu flows, %llu sockets since meshd started; pod network namespaces: "
	       "%llu entered, %llu failed, %llu skipped\n",
	       (unsigned long long)js__u64(cut, "flows"),
	       (unsigned long long)js__u64(cut, "sockets"),
	       (unsigned long long)js__u64(cut, "netns"),
	       (unsigned long long)js__u64(cut, "netns_failed"),
	       (unsigned long long)js__u64(cut, "netns_skipped"));
	if (*js__str(cut, "last_error", ""))
		printf("           last failure: %s\n", js__str(cut, "last_error", ""));
	/* the cut runs in the background (meshd's worker) */
	if (!strcmp(js__str(cut, "state", "idle"), "running"))
		printf("           running for %llu ms, %llu namespaces so far\n",
		       (unsigned long long)js__u64(cut, "run_us") / 1000,
		       (unsigned long long)js__u64(cut, "run_netns"));
	else if (!strcmp(js__str(cut, "state", "idle"), "pending"))
		printf("           pending\n");
	if (js__u64(cut, "runs"))
		printf("           last run %.1f ms: %llu flows, %llu sockets (%llu runs, %llu "
		       "restarted by a newer change)\n",
		       (double)js__u64(cut, "last_run_us") / 1000,
		       (unsigned long long)js__u64(cut, "last_run_flows"),
		       (unsigned long long)js__u64(cut, "last_run_sockets"),
		       (unsigned long long)js__u64(cut, "runs"),
		       (unsigned long long)js__u64(cut, "restarts"));
	maps = js__get(data, "maps");
	for (size_t i = 0; i < js__len(maps); i++)
		printf("Map %-11s %llu of %llu entries\n", js__str(js__idx(maps, i), "name", "?"),
		       (unsigned long long)js__u64(js__idx(maps, i), "entries"),
		       (unsigned long long)js__u64(js__idx(maps, i), "capacity"));
	json_object_put(data);
	return 0;
}

static int do_get(int argc, char **argv)
{
	struct json_object *args, *data = NULL, *d;
	char *pos[1], svc[ARGS_SVC_LEN], buf[4096];
	struct sluice_addr vip;
	int npos;

	if (opts__parse(argc, argv, (const struct opt[]){ { NULL } }, pos, 1, &npos))
		return -1;
	if (npos < 1)
		return cmd__usage_error("missing SVC");
	if (args__svc(pos[0], &vip, svc, sizeof(svc)))
		return -1;
	args = out__xalloc(json_object_new_object());
	json_object_object_add(args, "service", json_object_new_string(svc));
	if (client__call("policy.get", args, &data))
		return -1;
	if (out__json_mode()) {
		out__json(data);
		json_object_put(data);
		return 0;
	}
	d = js__get(data, "denied");
	printf("Service:   %s\n", js__str(data, "service", svc));
	policy__join(js__get(data, "allowFrom"), buf, sizeof(buf), "(none: every client)");
	printf("Allow:     %s\n", buf);
	policy__join(js__get(data, "denyFrom"), buf, sizeof(buf), "(none)");
	printf("Deny:      %s\n", buf);
	printf("Action:    %s\n", js__str(data, "denyAction", "drop"));
	printf("Entries:   %llu\n", (unsigned long long)js__u64(data, "entries"));
	printf("Denied:    deny_list %llu, not_allowed %llu, node_deny %llu\n",
	       (unsigned long long)js__u64(d, "deny_list"),
	       (unsigned long long)js__u64(d, "not_allowed"),
	       (unsigned long long)js__u64(d, "node_deny"));
	json_object_put(data);
	return 0;
}

static int policy__set_list(struct json_object *args, const char *key, const char *flag,
			    const char *text)
{
	struct json_object *l;

	if (!text)
		return 0;
	if (policy__list_arg(flag, text, false, &l))
		return -1;
	json_object_object_add(args, key, js__len(l) ? l : NULL); /* null: removed */
	if (!js__len(l))
		json_object_put(l);
	return 1;
}

static int do_set(int argc, char **argv)
{
	const char *allow = NULL, *deny = NULL, *action = NULL;
	const struct opt opts[] = {
		{ .name = "allow-from", .value = &allow },
		{ .name = "deny-from", .value = &deny },
		{ .name = "deny-action", .value = &action },
		{ NULL },
	};
	struct json_object *args, *data = NULL;
	char *pos[1], svc[ARGS_SVC_LEN];
	struct sluice_addr vip;
	int npos, set = 0, rc;

	if (opts__parse(argc, argv, opts, pos, 1, &npos))
		return -1;
	if (npos < 1)
		return cmd__usage_error("missing SVC");
	if (args__svc(pos[0], &vip, svc, sizeof(svc)))
		return -1;
	if (action && strcmp(action, "drop") && strcmp(action, "refuse"))
		return cmd__usage_error("--deny-action '%s': want drop or refuse", action);
	args = out__xalloc(json_object_new_object());
	json_object_object_add(args, "service", json_object_new_string(svc));
	rc = policy__set_list(args, "allowFrom", "--allow-from", allow);
	if (rc >= 0)
		set |= rc, rc = policy__set_list(args, "denyFrom", "--deny-from", deny);
	if (rc < 0) {
		json_object_put(args);
		return -1;
	}
	set |= rc;
	if (action) {
		json_object_object_add(args, "denyAction", json_object_new_string(action));
		set = 1;
	}
	if (!set) {
		json_object_put(args);
		return cmd__usage_error("nothing to set: give --allow-from, --deny-from or "
					"--deny-action");
	}
	if (client__call("service.set", args, &data))
		return -1;
	if (out__json_mode())
		out__json(data);
	else
		printf("policy of %s updated\n", svc);
	json_object_put(data);
	return 0;
}

static int do_node(int argc, char **argv)
{
	struct json_object *args, *data = NULL, *l;
	char *pos[1], buf[1024];
	int npos;

	if (opts__parse(argc, argv, (const struct opt[]){ { NULL } }, pos, 1, &npos))
		return -1;
	if (npos < 1)
		return cmd__usage_error("missing CIDR[,CIDR...] (\"\" empties the list)");
	if (policy__list_arg("nodeDenyFrom", pos[0], true, &l))
		return -1;
	args = out__xalloc(json_object_new_object());
	json_object_object_add(args, "nodeDenyFrom", l);
	if (client__call("policy.node.set", args, &data))
		return -1;
	if (out__json_mode()) {
		out__json(data);
	} else {
		policy__join(js__get(data, "nodeDenyFrom"), buf, sizeof(buf), "none");
		printf("node deny list: %s\n", buf);
	}
	json_object_put(data);
	return 0;
}

static const struct help_item svc_args[] = {
	{ "SVC", "a service, VIP:PORT/PROTO" },
	{ NULL, NULL },
};

static const struct help_item set_opts[] = {
	{ "--allow-from RULES", "only these clients may connect (\"\" removes the list)" },
	{ "--deny-from RULES", "these clients may not; deny wins over allow (\"\" removes)" },
	{ "--deny-action drop|refuse", "denied: drop silently, or TCP RST / ICMP unreachable" },
	{ NULL, NULL },
};

static const struct cmd policy_list_cmd = {
	.name = "list",
	.fn = do_list,
	.grammar = "",
	.summary = "services with access rules or denials, the node deny list, map use, what "
		   "policy changes cut and the cut running in the background",
	.example = "meshctl policy list\nmeshctl policy list -o json",
};

static const struct cmd policy_get_cmd = {
	.name = "get",
	.fn = do_get,
	.grammar = "SVC",
	.summary = "one service's access rules, action and denials by reason",
	.args = svc_args,
	.example = "meshctl policy get 10.96.0.10:80/tcp",
};

static const struct cmd policy_set_cmd = {
	.name = "set",
	.fn = do_set,
	.grammar = "SVC [--allow-from RULES] [--deny-from RULES] [--deny-action drop|refuse]",
	.summary = "replace a service's access rules (RULES: CIDR[:PORT[-PORT]],...)",
	.args = svc_args,
	.opts = set_opts,
	.notes =
		"A rule's optional PORT is the client's source port. New connections follow the\n"
		"rules at once; established ones from a source the change denies are cut: their\n"
		"conntrack entries go, and TCP and connected UDP sockets the socket LB connected\n"
		"are destroyed in meshd's and in the socket LB cgroup's network namespaces\n"
		"(pods; bounded: see `policy list` for what was cut, failed or skipped; an\n"
		"unconnected UDP socket meets the check at its next sendto()). The change is answered\n"
		"at once and the cut runs in the background: `policy list` shows it running\n"
		"(`-o json`: cut.state); a change during a cut restarts it under the final\n"
		"rules.",
	.example = "meshctl policy set 10.96.0.10:80/tcp --allow-from 10.0.0.0/8 --deny-from "
		   "10.0.66.0/24\nmeshctl policy set 10.96.0.10:80/tcp --allow-from \"\"",
};

static const struct cmd policy_node_cmd = {
	.name = "node",
	.fn = do_node,
	.grammar = "CIDR[,CIDR...] | \"\"",
	.summary = "replace the node-wide deny list (every service; \"\" empties it)",
	.example =
		"meshctl policy node 198.51.100.0/24,2001:db8:bad::/48\nmeshctl policy node \"\"",
};

const struct cmd policy_cmd = {
	.name = "policy",
	.sub = (const struct cmd *const[]){ &policy_list_cmd, &policy_get_cmd, &policy_set_cmd,
					    &policy_node_cmd, NULL },
	.summary = "L4 access policy: who may connect to which service",
	.example = "meshctl policy list\n"
		   "meshctl policy set 10.96.0.10:80/tcp --deny-from 10.0.66.0/24",
};
