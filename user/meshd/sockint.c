// SPDX-License-Identifier: MIT
/*
 * sockint.c - socket LB and same-node redirection in the agent (see
 * sockint.h).
 */
#include <errno.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "sluice.h"
#include "sock.h"

#include "log.h"
#include "sockint.h"

/*
 * The node's own addresses (besides loopback, which the redirect always
 * covers): connections between two local sockets over e.g. the node's
 * interface address are same-node too. Read once at start; an address
 * added later is simply not redirected (it takes the normal path).
 */
static void sockint__add_node_addrs(struct sockint *si)
{
	struct ifaddrs *ifa, *i;
	char text[INET6_ADDRSTRLEN];
	struct sluice_addr a;

	if (getifaddrs(&ifa)) {
		pr_warn("redirect: listing the node's addresses: %s (only loopback is redirected)",
			strerror(errno));
		return;
	}
	for (i = ifa; i; i = i->ifa_next) {
		const void *raw;
		int fam;

		if (!i->ifa_addr)
			continue;
		fam = i->ifa_addr->sa_family;
		if (fam == AF_INET) {
			const struct sockaddr_in *sin = (const void *)i->ifa_addr;

			if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127)
				continue;
			raw = &sin->sin_addr;
		} else if (fam == AF_INET6) {
			const struct sockaddr_in6 *sin6 = (const void *)i->ifa_addr;

			if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
				continue;
			raw = &sin6->sin6_addr;
		} else {
			continue;
		}
		if (!inet_ntop(fam, raw, text, sizeof(text)) || sluice_addr__parse(&a, text))
			continue;
		if (sluice_sock__redir_addr_add(si->ss, &a)) {
			pr_warn("redirect: node address %s (%s): %s", text, i->ifa_name,
				sluice__errmsg());
			continue;
		}
		pr_debug("redirect: node address %s (%s)", text, i->ifa_name);
		si->redir_addrs++;
	}
	freeifaddrs(ifa);
}

static int sockint__lb(struct sockint *si)
{
	const struct sockint_cfg *cfg = &si->cfg;
	bool was;

	if (!cfg->socket_lb) {
		/* not sluice_sock__info(): that loads the programs */
		was = sluice_sock__lb_attached(si->ss);
		if (sluice_sock__detach_lb(si->ss)) {
			snprintf(si->lb_error, sizeof(si->lb_error),
				 "detaching the socket LB an earlier meshd left failed: %s",
				 sluice__errmsg());
			pr_err("--socket-lb off: %s", si->lb_error);
			return -EIO;
		}
		pr_info("socket LB off%s", was ? ": detached the one an earlier meshd left" : "");
		return 0;
	}
	if (!cfg->cgroup) {
		snprintf(si->lb_error, sizeof(si->lb_error),
			 "no cgroup v2 mount found (give --cgroup)");
		pr_warn("socket LB unavailable: %s", si->lb_error);
		return 0;
	}
	if (sluice_sock__attach_lb(si->ss, cfg->cgroup)) {
		snprintf(si->lb_error, sizeof(si->lb_error), "%s", sluice__errmsg());
		pr_warn("socket LB unavailable, services are balanced per packet only: %s",
			si->lb_error);
		return 0;
	}
	si->lb_running = true;
	pr_info("socket LB on cgroup %s: connect()/sendmsg() to a VIP go straight to a backend",
		cfg->cgroup);
	return 0;
}

static int sockint__redir(struct sockint *si)
{
	const struct sockint_cfg *cfg = &si->cfg;
	char why[sizeof(si->redir_error) - 32];

	if (!cfg->redirect) {
		if (sluice_sock__detach_redir(si->ss)) {
			snprintf(si->redir_error, sizeof(si->redir_error),
				 "detaching the redirect an earlier meshd left failed: %s",
				 sluice__errmsg());
			pr_err("--redirect off: %s", si->redir_error);
			return -EIO;
		}
		pr_debug("same-node redirection off");
		return 0;
	}
	if (!cfg->cgroup) {
		snprintf(si->redir_error, sizeof(si->redir_error),
			 "no cgroup v2 mount found (give --cgroup)");
		pr_warn("redirect off: %s", si->redir_error);
		return 0;
	}
	why[0] = '\0';
	if (sluice_sock__attach_redir(si->ss, cfg->cgroup)) {
		snprintf(si->redir_error, sizeof(si->redir_error), "attach failed: %s",
			 sluice__errmsg());
	} else if (sluice_sock__redir_selftest(si->ss, why, sizeof(why))) {
		snprintf(si->redir_error, sizeof(si->redir_error), "self-test failed: %s",
			 why[0] ? why : sluice__errmsg());
	}
	if (si->redir_error[0]) {
		/* A redirect that failed its test must not carry real traffic. */
		if (sluice_sock__detach_redir(si->ss))
			pr_err("redirect: detaching after the failure: %s", sluice__errmsg());
		pr_warn("redirect off: %s", si->redir_error);
		return 0;
	}
	si->redir_running = true;
	sockint__add_node_addrs(si);
	pr_info("same-node redirection on cgroup %s: self-test passed, %u node address(es) "
		"besides loopback",
		cfg->cgroup, si->redir_addrs);
	return 0;
}

static int sockint__open(struct sockint *si, const struct sockint_cfg *cfg, struct sluice *sl)
{
	int err, err2;

	si->cfg = *cfg;
	si->lb_error[0] = si->redir_error[0] = '\0';
	err = sluice_sock__open(&si->ss, sl, &(struct sluice_sock_opts){ .pin_dir = cfg->pin_dir });
	if (err) {
		si->ss = NULL;
		snprintf(si->lb_error, sizeof(si->lb_error), "%s", sluice__errmsg());
		snprintf(si->redir_error, sizeof(si->redir_error), "%s", si->lb_error);
		pr_warn("socket LB and redirection unavailable: %s", si->lb_error);
		return 0;
	}
	/* Both parts get their chance; the first error is returned. */
	err = sockint__lb(si);
	/* a policy cut reaches the sockets of the cgroup's pods (#15) */
	if (si->lb_running && sluice__policy_cut_scope(sl, cfg->cgroup, 0, 0))
		pr_warn("policy cut: sockets of other network namespaces: %s", sluice__errmsg());
	err2 = sockint__redir(si);
	return err ? err : err2;
}

int sockint__start(struct sockint *si, const struct sockint_cfg *cfg, struct sluice *sl)
{
	int err = sockint__open(si, cfg, sl);

	/* the scope is set (or left empty: the socket LB is not running) */
	sluice__policy_cut_procs(sl, cfg->policy_cut_all, 0);
	if (sluice__policy_cut_deferred(sl) && sluice__policy_cut_start(sl))
		pr_warn("policy cut worker: %s; cuts wait for a restart", sluice__errmsg());
	return err;
}

void sockint__stop(struct sockint *si)
{
	sluice_sock__close(si->ss); /* pinned links stay attached */
	si->ss = NULL;
}

const struct sluice_sock_info *sockint__info(struct sockint *si)
{
	if (!si->ss)
		return NULL;
	/* not sluice_sock__info(): a scrape loads no program (a part never
	 * enabled would cost the verifier ~0.2 s on the first one) */
	if (sluice_sock__counters(si->ss, &si->info)) {
		pr_debug("socket LB counters: %s", sluice__errmsg());
		return NULL;
	}
	return &si->info;
}

static void sockint__add_u64(struct json_object *o, const char *key, __u64 v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static struct json_object *sockint__common(const struct sockint *si, bool enabled, bool running,
					   const char *error)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "enabled", json_object_new_boolean(enabled));
	json_object_object_add(o, "running", json_object_new_boolean(running));
	json_object_object_add(o, "cgroup",
			       si->cfg.cgroup ? json_object_new_string(si->cfg.cgroup) : NULL);
	if (error[0])
		json_object_object_add(o, "error", json_object_new_string(error));
	return o;
}

struct json_object *sockint__lb_json(struct sockint *si)
{
	struct json_object *o, *c;
	struct sluice_sock_info info;

	o = sockint__common(si, si->cfg.socket_lb, si->lb_running, si->lb_error);
	if (!si->ss)
		return o;
	if (sluice_sock__info(si->ss, &info)) {
		json_object_object_add(o, "error", json_object_new_string(sluice__errmsg()));
		return o;
	}
	json_object_object_add(o, "attached", json_object_new_boolean(info.lb_attached));
	sockint__add_u64(o, "cgroup_id", info.lb_cgroup_id);
	c = json_object_new_object();
	for (int i = 0; i < SLUICE_SOCK_CNT__MAX; i++)
		sockint__add_u64(c, sluice_sock__counter_name(i), info.lb[i]);
	json_object_object_add(o, "counters", c);
	return o;
}

struct json_object *sockint__redir_json(struct sockint *si)
{
	struct json_object *o, *c;
	struct sluice_sock_info info;
	const char *selftest = "not run";

	o = sockint__common(si, si->cfg.redirect, si->redir_running, si->redir_error);
	if (si->redir_running)
		selftest = "passed";
	else if (!strncmp(si->redir_error, "self-test failed", 16))
		selftest = "failed";
	json_object_object_add(o, "selftest", json_object_new_string(selftest));
	if (!si->ss)
		return o;
	if (sluice_sock__info(si->ss, &info)) {
		json_object_object_add(o, "error", json_object_new_string(sluice__errmsg()));
		return o;
	}
	if (info.redir_unavailable[0]) /* this kernel refuses redir.bpf.o */
		json_object_object_add(o, "unavailable",
				       json_object_new_string(info.redir_unavailable));
	json_object_object_add(o, "attached", json_object_new_boolean(info.redir_attached));
	sockint__add_u64(o, "cgroup_id", info.redir_cgroup_id);
	sockint__add_u64(o, "node_addresses", si->redir_addrs);
	sockint__add_u64(o, "sockets", info.redir_sockets);
	/* both ends of a redirected connection are in the map */
	sockint__add_u64(o, "connections", info.redir_sockets / 2);
	c = json_object_new_object();
	for (int i = 0; i < SLUICE_REDIR_CNT__MAX; i++)
		sockint__add_u64(c, sluice_sock__redir_counter_name(i), info.redir[i]);
	json_object_object_add(o, "counters", c);
	return o;
}
