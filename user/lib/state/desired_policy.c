// SPDX-License-Identifier: MIT
/*
 * desired_policy.c - a service's access policy in the desired state (#15):
 *
 *   allowFrom: ["10.0.0.0/8", "192.168.1.0/24:1024-65535"]
 *   denyFrom:  ["10.0.66.0/24"]
 *   denyAction: drop            # or refuse (TCP RST / ICMP unreachable)
 *
 * and the node-wide deny list at the top level:
 *
 *   nodeDenyFrom: ["198.51.100.0/24", "2001:db8:bad::/48"]
 *
 * Each rule is "CIDR[:PORT[-PORT]]" (policy.c). Absent or [] lists: no
 * rule. Host bits are an error (as in sourceRanges); everything else the
 * library's compiler checks (policy.c), its message prefixed with the
 * service's path: "services[0].denyFrom[2]: ...". Comparisons keep the
 * order (a reordered list is an update that writes nothing new).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desired_internal.h"
#include "internal.h"

#define VAL_LEN 64

static int pol__list_len(struct json_object *v, const char *path, size_t max, size_t *n)
{
	char val[VAL_LEN];

	*n = 0;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return desired__err(
			path,
			"expected a list of CIDR[:PORT[-PORT]] (e.g. [\"10.0.0.0/8\"]), "
			"got %s %s",
			desired__jtype(v), desired__jtext(v, val, sizeof(val)));
	*n = json_object_array_length(v);
	if (*n > max)
		return desired__err(path, "%zu rules exceed the limit of %zu", *n, max);
	return 0;
}

static int pol__parse_one(struct json_object *v, const char *rpath, struct sluice_policy_rule *r)
{
	char msg[SLUICE_ERRMSG_LEN], want[SLUICE_POLICY_RULE_STRLEN];
	const char *s;
	int err;

	err = desired__get_string(v, rpath, "a rule such as \"10.0.0.0/8\" or \"10.0.0.0/8:53\"",
				  &s);
	if (err)
		return err;
	err = sluice_policy_rule__parse(r, s);
	if (err < 0) {
		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
		return desired__err(rpath, "%s", msg);
	}
	if (err)
		return desired__err(rpath, "\"%s\" has host bits set (the rule is %s)", s,
				    sluice_policy_rule__str(r, want, sizeof(want)));
	return 0;
}

int desired__parse_policy(struct json_object *o, const char *base, struct desired_service *svc)
{
	struct json_object *allow = desired__field(o, "allowFrom");
	struct json_object *deny = desired__field(o, "denyFrom");
	struct json_object *action = desired__field(o, "denyAction");
	char path[DESIRED_PATH_LEN], rpath[DESIRED_PATH_LEN], val[VAL_LEN];
	size_t na, nd;
	const char *s;
	int err;

	desired__path(path, base, "allowFrom");
	err = pol__list_len(allow, path, SLUICE_POLICY_PER_SVC, &na);
	desired__path(path, base, "denyFrom");
	if (!err)
		err = pol__list_len(deny, path, SLUICE_POLICY_PER_SVC, &nd);
	if (err)
		return err;
	if (action) {
		desired__path(path, base, "denyAction");
		err = desired__get_string(action, path, "\"drop\" or \"refuse\"", &s);
		if (err)
			return err;
		if (strcmp(s, "drop") && strcmp(s, "refuse"))
			return desired__err(path, "%s is not \"drop\" or \"refuse\"",
					    desired__jtext(action, val, sizeof(val)));
		svc->policy_refuse = !strcmp(s, "refuse");
	}
	if (!na && !nd)
		return 0;
	svc->rules = calloc(na + nd, sizeof(*svc->rules));
	if (!svc->rules) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (size_t j = 0; j < na + nd; j++) {
		desired__pathf(rpath, "%s.%s[%zu]", base, j < na ? "allowFrom" : "denyFrom",
			       j < na ? j : j - na);
		err = pol__parse_one(json_object_array_get_idx(j < na ? allow : deny,
							       j < na ? j : j - na),
				     rpath, &svc->rules[j]);
		if (err)
			return err;
		if (j < na)
			svc->nallow++;
		else
			svc->ndeny++;
	}
	return 0;
}

int desired__check_policy(const struct desired_service *svc, const char *base)
{
	struct sluice_policy_entry *e = NULL;
	char msg[SLUICE_ERRMSG_LEN];
	__u32 n = 0;
	int err;

	if ((svc->nallow || svc->ndeny) && !svc->rules)
		return desired__err(base, "%u policy rules but no array", svc->nallow + svc->ndeny);
	err = sluice_policy__compile(svc->vip.family, svc->rules, svc->nallow,
				     svc->rules ? svc->rules + svc->nallow : NULL, svc->ndeny, &e,
				     &n);
	free(e);
	if (err == -EINVAL) { /* "denyFrom[2]: ..." -> "services[0].denyFrom[2]: ..." */
		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
		sluice__set_err("%s.%s", base, msg);
	}
	return err;
}

static struct json_object *pol__list_json(const struct sluice_policy_rule *r, __u32 n)
{
	char buf[SLUICE_POLICY_RULE_STRLEN];
	struct json_object *list, *s;

	list = json_object_new_array();
	for (__u32 j = 0; list && j < n; j++) {
		s = json_object_new_string(sluice_policy_rule__str(&r[j], buf, sizeof(buf)));
		if (!s || json_object_array_add(list, s))
			json_object_put(s);
	}
	return list;
}

void desired__policy_to_json(const struct desired_service *svc, struct json_object *obj)
{
	if (svc->nallow)
		json_object_object_add(obj, "allowFrom", pol__list_json(svc->rules, svc->nallow));
	if (svc->ndeny)
		json_object_object_add(obj, "denyFrom",
				       pol__list_json(svc->rules + svc->nallow, svc->ndeny));
	if (svc->policy_refuse)
		json_object_object_add(obj, "denyAction", json_object_new_string("refuse"));
}

bool desired__policy_eq(const struct desired_service *a, const struct desired_service *b)
{
	__u32 n = a->nallow + a->ndeny;

	if (a->nallow != b->nallow || a->ndeny != b->ndeny ||
	    a->policy_refuse != b->policy_refuse || a->policy_in_maps != b->policy_in_maps)
		return false;
	for (__u32 i = 0; i < n; i++)
		if (!sluice_policy_rule__eq(&a->rules[i], &b->rules[i]))
			return false;
	return true;
}

int desired__policy_dup(struct desired_service *dst, const struct desired_service *src)
{
	__u32 n = src->nallow + src->ndeny;

	dst->rules = NULL;
	dst->nallow = dst->ndeny = 0;
	if (!n)
		return 0;
	dst->rules = malloc(n * sizeof(*dst->rules));
	if (!dst->rules) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	memcpy(dst->rules, src->rules, n * sizeof(*dst->rules));
	dst->nallow = src->nallow;
	dst->ndeny = src->ndeny;
	return 0;
}

/* --- nodeDenyFrom --- */

int desired__parse_node_deny(struct json_object *v, struct desired *d)
{
	char rpath[DESIRED_PATH_LEN], msg[SLUICE_ERRMSG_LEN], want[SLUICE_CIDR_STRLEN];
	const char *s;
	size_t n;
	int err;

	err = pol__list_len(v, "nodeDenyFrom", SLUICE_POLICY_NODE_RULES, &n);
	if (err || !n)
		return err;
	d->node_deny = calloc(n, sizeof(*d->node_deny));
	if (!d->node_deny) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (size_t j = 0; j < n; j++) {
		desired__pathf(rpath, "nodeDenyFrom[%zu]", j);
		err = desired__get_string(json_object_array_get_idx(v, j), rpath,
					  "a CIDR such as \"10.0.0.0/8\"", &s);
		if (err)
			return err;
		err = sluice_cidr__parse(&d->node_deny[j], s);
		if (err < 0) {
			snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
			return desired__err(rpath, "%s", msg);
		}
		if (err)
			return desired__err(rpath, "\"%s\" has host bits set (the prefix is %s)", s,
					    sluice_cidr__str(&d->node_deny[j], want, sizeof(want)));
		d->nnode_deny++;
	}
	return sluice_policy__node_check(d->node_deny, d->nnode_deny);
}

struct json_object *desired__node_deny_to_json(const struct desired *d)
{
	char buf[SLUICE_CIDR_STRLEN];
	struct json_object *list, *s;

	if (!d->nnode_deny)
		return NULL;
	list = json_object_new_array();
	for (__u32 j = 0; list && j < d->nnode_deny; j++) {
		s = json_object_new_string(sluice_cidr__str(&d->node_deny[j], buf, sizeof(buf)));
		if (!s || json_object_array_add(list, s))
			json_object_put(s);
	}
	return list;
}

bool desired__node_deny_eq(const struct desired *a, const struct desired *b)
{
	if (a->nnode_deny != b->nnode_deny)
		return false;
	for (__u32 i = 0; i < a->nnode_deny; i++)
		if (!sluice_cidr__eq(&a->node_deny[i], &b->node_deny[i]))
			return false;
	return true;
}

int desired__node_deny_dup(struct desired *dst, const struct desired *src)
{
	dst->node_deny = NULL;
	dst->nnode_deny = 0;
	if (!src->nnode_deny)
		return 0;
	dst->node_deny = malloc(src->nnode_deny * sizeof(*dst->node_deny));
	if (!dst->node_deny) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	memcpy(dst->node_deny, src->node_deny, src->nnode_deny * sizeof(*dst->node_deny));
	dst->nnode_deny = src->nnode_deny;
	return 0;
}

/* --- cutting what a change denies --- */

/* A policy changed (#15): cut what it now denies. Best effort: the change
 * is applied either way, and the kernel checks every new flow. With a
 * worker (meshd), only asked for: the worker cuts off this thread. */
void desired__policy_cut(struct sluice *s)
{
	__u64 flows = 0, socks = 0;
	int sock_err = 0;

	if (sluice__policy_cut_deferred(s)) {
		sluice__policy_cut_request(s);
		return;
	}
	if (sluice__policy_cut(s, &flows, &socks, &sock_err))
		fprintf(stderr, "sluice: policy cut: %s\n", sluice__errmsg());
	else if (sock_err)
		fprintf(stderr, "sluice: policy cut: sockets not destroyed: %s\n",
			strerror(-sock_err));
	sluice__clear_err();
}
