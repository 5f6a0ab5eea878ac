// SPDX-License-Identifier: MIT
/*
 * k8s_policy.c - the access policy of a Service from its annotations
 * (#15):
 *   sluice.io/allow-from:  "10.0.0.0/8, 192.168.0.0/16:1024-65535"
 *   sluice.io/deny-from:   "10.0.66.0/24"
 *   sluice.io/deny-action: "drop" | "refuse"
 * applied to every address of the Service (ClusterIP, load-balancer
 * addresses, NodePorts), each getting the rules of its own family.
 *
 * Contract: rules are comma separated CIDR[:PORT[-PORT]], spaces allowed;
 * host bits are masked as with loadBalancerSourceRanges (10.1.2.3/8 is
 * 10.0.0.0/8) and the first such rule is noted as the Service's problem,
 * where the declarative file refuses it: failing such a Service closed
 * would deny every client of one that worked before. An annotation
 * with a rule that does not parse, a bad deny-action, or rules the
 * compiler refuses (overlaps, too many) are not half applied: the
 * Service gets a problem naming it and, failing closed, a policy that
 * denies every client (deny 0.0.0.0/0 and ::/0) until it is fixed, so a
 * typo never opens a Service that was meant to be restricted. Namespace
 * or label selectors are not supported (yet).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "k8s_internal.h"

#define K8S_ANN_ALLOW "sluice.io/allow-from"
#define K8S_ANN_DENY "sluice.io/deny-from"
#define K8S_ANN_ACTION "sluice.io/deny-action"

/* Appends the rules of text to s->pol_rules; -EINVAL with the problem. */
static int pol__list(struct k8s_svc *s, const char *key, const char *text, char *prob, size_t plen)
{
	char *copy = strdup(text), *item, *save = NULL, *end;
	char rule[SLUICE_POLICY_RULE_STRLEN];
	struct sluice_policy_rule *grown;
	int err = 0, ret;

	if (!copy)
		return -ENOMEM;
	for (item = strtok_r(copy, ",", &save); item && !err; item = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*item))
			item++;
		end = item + strlen(item);
		while (end > item && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (!*item)
			continue;
		if (s->npol_rules >= SLUICE_POLICY_PER_SVC) {
			/* an annotation is the cluster's input: bounded here,
			 * not only by the later validation */
			snprintf(prob, plen, "%s: more than %u rules", key, SLUICE_POLICY_PER_SVC);
			err = -EINVAL;
			break;
		}
		grown = realloc(s->pol_rules, (s->npol_rules + 1) * sizeof(*grown));
		if (!grown) {
			err = -ENOMEM;
			break;
		}
		s->pol_rules = grown;
		ret = sluice_policy_rule__parse(&s->pol_rules[s->npol_rules], item);
		if (ret < 0) {
			snprintf(prob, plen, "%s: %s", key, sluice__errmsg());
			err = -EINVAL;
			break;
		}
		if (ret > 0 && !prob[0])
			snprintf(prob, plen, "%s: \"%s\" has host bits set: read as %s", key, item,
				 sluice_policy_rule__str(&s->pol_rules[s->npol_rules], rule,
							 sizeof(rule)));
		s->npol_rules++;
	}
	free(copy);
	return err;
}

int k8s_svc__parse_policy(struct k8s_svc *s, struct json_object *ann, char *prob, size_t plen)
{
	bool bad = false;
	const char *allow = ann ? k8s_json__str(ann, K8S_ANN_ALLOW, &bad) : NULL;
	const char *deny = ann ? k8s_json__str(ann, K8S_ANN_DENY, &bad) : NULL;
	const char *action = ann ? k8s_json__str(ann, K8S_ANN_ACTION, &bad) : NULL;
	int err = 0;

	prob[0] = '\0';
	if (action && strcmp(action, "drop") && strcmp(action, "refuse")) {
		snprintf(prob, plen, "%s: \"%s\" is not drop or refuse", K8S_ANN_ACTION, action);
		err = -EINVAL;
	}
	s->pol_refuse = action && !strcmp(action, "refuse");
	if (!err && allow)
		err = pol__list(s, K8S_ANN_ALLOW, allow, prob, plen);
	s->npol_allow = s->npol_rules;
	if (!err && deny)
		err = pol__list(s, K8S_ANN_DENY, deny, prob, plen);
	if (err == -ENOMEM)
		return err;
	s->pol_closed = err || bad;
	if (bad && !prob[0])
		snprintf(prob, plen, "sluice.io/allow-from|deny-from|deny-action: not a string");
	if (s->pol_closed)
		snprintf(prob + strlen(prob), plen - strlen(prob),
			 "; access policy: every client denied until fixed");
	return 0;
}

/* d's rules: the Service's of d's family, or deny-all when closed. */
static int pol__fill(const struct k8s_svc *s, struct desired_service *d)
{
	__u32 n = 0;

	d->rules = calloc(s->npol_rules + 1, sizeof(*d->rules));
	if (!d->rules)
		return -ENOMEM;
	if (s->pol_closed) {
		d->rules[0] = (struct sluice_policy_rule){ .cidr.addr.family = d->vip.family,
							   .port_hi = 65535 };
		d->ndeny = 1;
		return 0;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (__u32 i = 0; i < s->npol_rules; i++) {
			if ((i < s->npol_allow) != !pass ||
			    s->pol_rules[i].cidr.addr.family != d->vip.family)
				continue;
			d->rules[n++] = s->pol_rules[i];
		}
		if (!pass)
			d->nallow = n;
	}
	d->ndeny = n - d->nallow;
	return 0;
}

int k8s_svc__policy_for(const struct k8s_svc *s, struct desired_service *d, char *prob, size_t plen)
{
	struct sluice_policy_entry *e = NULL;
	__u32 n = 0;
	int err;

	d->rules = NULL;
	d->nallow = d->ndeny = 0;
	d->policy_refuse = s->pol_refuse;
	prob[0] = '\0';
	if (!s->npol_rules && !s->pol_closed)
		return 0;
	err = pol__fill(s, d);
	if (err)
		return err;
	err = sluice_policy__compile(d->vip.family, d->rules, d->nallow, d->rules + d->nallow,
				     d->ndeny, &e, &n);
	free(e);
	if (err == -ENOMEM)
		return err;
	if (err) { /* fail closed */
		snprintf(prob, plen, "%s; every client denied until fixed", sluice__errmsg());
		d->rules[0] = (struct sluice_policy_rule){ .cidr.addr.family = d->vip.family,
							   .port_hi = 65535 };
		d->nallow = 0;
		d->ndeny = 1;
	}
	return 0;
}
