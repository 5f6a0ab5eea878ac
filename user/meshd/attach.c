// SPDX-License-Identifier: MIT
/*
 * attach.c - which interfaces carry the datapath: the patterns, the
 * interfaces that match them as links come and go, and what status says
 * (see attach.h). Putting the program on a hook is attach_hook.c's.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "attach_hook.h"
#include "fwddev.h"
#include "log.h"
#include "netlink.h"

static const char *const mode_names[] = {
	[ATTACH_XDP_NATIVE] = "native",
	[ATTACH_XDP_GENERIC] = "generic",
	[ATTACH_XDP_OFF] = "off",
};

int attach__parse_mode(const char *text, enum attach_xdp_mode *mode)
{
	for (int i = 0; i <= ATTACH_XDP_OFF; i++) {
		if (!strcmp(text, mode_names[i])) {
			*mode = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *attach__mode_name(enum attach_xdp_mode mode)
{
	return mode <= ATTACH_XDP_OFF ? mode_names[mode] : "?";
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

int attach__init(struct attach *a, struct sluice *sl, enum attach_xdp_mode mode,
		 const char *interfaces)
{
	char *copy, *tok, *save = NULL;

	memset(a, 0, sizeof(*a));
	a->sl = sl;
	a->mode = mode;
	if (!interfaces || !*interfaces)
		return 0;
	copy = strdup(interfaces);
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char **grown, *p = trim(tok);

		if (!*p)
			continue;
		grown = realloc(a->patterns, (a->npatterns + 1) * sizeof(*grown));
		if (!grown || !(grown[a->npatterns] = strdup(p))) {
			if (grown)
				a->patterns = grown;
			free(copy);
			attach__free(a);
			return -ENOMEM;
		}
		a->patterns = grown;
		a->npatterns++;
	}
	free(copy);
	return 0;
}

void attach__free(struct attach *a)
{
	for (int i = 0; i < a->npatterns; i++)
		free(a->patterns[i]);
	free(a->patterns);
	free(a->list);
	memset(a, 0, sizeof(*a));
}

static bool attach__matches(const struct attach *a, const char *ifname)
{
	for (int i = 0; i < a->npatterns; i++)
		if (!fnmatch(a->patterns[i], ifname, 0))
			return true;
	return false;
}

void attach__check_all(struct attach *a)
{
	for (int i = 0; i < a->n; i++) {
		struct attach_entry *e = &a->list[i];

		if (e->state == ATTACH_ATTACHED)
			attach__verify(a, e);
		else
			attach__try(a, e); /* logs only when the reason changes */
	}
}

static struct attach_entry *attach__find(struct attach *a, int ifindex)
{
	for (int i = 0; i < a->n; i++)
		if (a->list[i].ifindex == ifindex)
			return &a->list[i];
	return NULL;
}

static struct attach_entry *attach__add(struct attach *a, int ifindex, const char *ifname)
{
	struct attach_entry *e;

	if (a->n == a->cap) {
		int cap = a->cap ? 2 * a->cap : 8;
		struct attach_entry *grown = realloc(a->list, cap * sizeof(*grown));

		if (!grown)
			return NULL;
		a->list = grown;
		a->cap = cap;
	}
	e = &a->list[a->n++];
	memset(e, 0, sizeof(*e));
	e->ifindex = ifindex;
	e->state = ATTACH_FAILED;
	e->seen = true;
	snprintf(e->ifname, sizeof(e->ifname), "%s", ifname);
	return e;
}

static void attach__remove(struct attach *a, struct attach_entry *e)
{
	int i = e - a->list;

	memmove(e, e + 1, (a->n - i - 1) * sizeof(*e));
	a->n--;
}

static void attach__link_up(void *ctx, int ifindex, const char *ifname)
{
	struct attach *a = ctx;
	struct attach_entry *e = attach__find(a, ifindex);

	if (a->fwd_auto)
		fwddev__link_up(a->sl, ifindex, ifname);
	if (!e) {
		if (!attach__matches(a, ifname))
			return;
		e = attach__add(a, ifindex, ifname);
		if (!e) {
			pr_err("%s: out of memory, not attached", ifname);
			return;
		}
		attach__try(a, e);
		return;
	}
	e->seen = true;
	if (strcmp(e->ifname, ifname)) {
		pr_info("%s (ifindex %d) is now called %s", e->ifname, ifindex, ifname);
		snprintf(e->ifname, sizeof(e->ifname), "%s", ifname);
		if (e->state != ATTACH_ATTACHED && !attach__matches(a, ifname)) {
			attach__remove(a, e);
			return;
		}
	}
	if (e->state == ATTACH_ATTACHED)
		attach__verify(a, e);
	else
		attach__try(a, e);
}

static void attach__link_gone(void *ctx, int ifindex, const char *ifname)
{
	struct attach *a = ctx;
	struct attach_entry *e = attach__find(a, ifindex);

	if (a->fwd_auto)
		fwddev__link_gone(a->sl, ifindex);
	if (!e)
		return;
	if (e->state == ATTACH_ATTACHED)
		pr_info("forgot %s (ifindex %d): link deleted, the kernel detached prog id %u",
			ifname && *ifname ? ifname : e->ifname, ifindex, e->prog_id);
	attach__remove(a, e);
}

static void attach__sync_begin(void *ctx)
{
	struct attach *a = ctx;

	for (int i = 0; i < a->n; i++)
		a->list[i].seen = false;
}

static void attach__sync_end(void *ctx)
{
	struct attach *a = ctx;

	for (int i = 0; i < a->n;) {
		struct attach_entry *e = &a->list[i];

		if (e->seen) {
			i++;
			continue;
		}
		attach__link_gone(a, e->ifindex, e->ifname);
	}
}

void attach__link_ops(struct attach *a, struct netlink_ops *ops)
{
	*ops = (struct netlink_ops){
		.link_up = attach__link_up,
		.link_gone = attach__link_gone,
		.sync_begin = attach__sync_begin,
		.sync_end = attach__sync_end,
		.ctx = a,
	};
}

void attach__log_waiting(const struct attach *a)
{
	for (int i = 0; i < a->npatterns; i++) {
		const char *p = a->patterns[i];
		bool found = false;

		if (strpbrk(p, "*?["))
			continue;
		for (int j = 0; j < a->n && !found; j++)
			found = !strcmp(a->list[j].ifname, p);
		if (!found)
			pr_info("waiting for interface %s to appear", p);
	}
}

int attach__count(const struct attach *a)
{
	int n = 0;

	for (int i = 0; i < a->n; i++)
		n += a->list[i].state == ATTACH_ATTACHED;
	return n;
}

struct json_object *attach__to_json(const struct attach *a)
{
	struct json_object *arr = json_object_new_array();
	bool tc = a->mode == ATTACH_XDP_OFF;

	for (int i = 0; arr && i < a->n; i++) {
		const struct attach_entry *e = &a->list[i];
		struct json_object *o;

		if (e->state != ATTACH_ATTACHED)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "ifname", json_object_new_string(e->ifname));
		json_object_object_add(o, "ifindex", json_object_new_int(e->ifindex));
		json_object_object_add(o, "hook", json_object_new_string(tc ? "tc" : "xdp"));
		json_object_object_add(
			o, "mode", json_object_new_string(tc ? "tc" : attach__mode_name(a->mode)));
		json_object_object_add(o, "prog_id", json_object_new_int64(e->prog_id));
		json_object_array_add(arr, o);
	}
	return arr;
}

struct json_object *attach__errors_json(const struct attach *a)
{
	struct json_object *arr = json_object_new_array();

	for (int i = 0; arr && i < a->n; i++) {
		const struct attach_entry *e = &a->list[i];
		struct json_object *o;

		if (e->state == ATTACH_ATTACHED)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "ifname", json_object_new_string(e->ifname));
		json_object_object_add(o, "ifindex", json_object_new_int(e->ifindex));
		json_object_object_add(o, "error", json_object_new_string(e->err));
		json_object_array_add(arr, o);
	}
	return arr;
}
