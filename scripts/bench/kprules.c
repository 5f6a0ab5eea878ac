// SPDX-License-Identifier: MIT
/*
 * kprules - the kube-proxy rulesets Sluice is compared with, for the
 * services of plan.h: what kube-proxy (v1.28+) would program for N
 * ClusterIP services of B endpoints each, in its iptables mode (input of
 * iptables-restore) and in its nftables mode (input of nft -f).
 *
 * Contract: prints to stdout; never runs iptables or nft itself (the caller
 * feeds the text to them inside a bench namespace).
 *   kprules iptables|nft --services N --backends B
 *       the full ruleset, programmed from empty;
 *   kprules iptables-change|nft-change --services N --backends B --svc S
 *       what kube-proxy's partial sync writes when backend 0 of service S
 *       is replaced by the spare address (plan.h): for iptables a
 *       --noflush restore that rewrites KUBE-SERVICES whole (kube-proxy
 *       always does) plus the service's chain, the new endpoint chain and
 *       the deletion of the old one; for nftables one transaction that
 *       rewrites the service chain and swaps the endpoint chains.
 * Chain names are hash-like strings of kube-proxy's lengths, derived from
 * the service and endpoint so a change names the same chains kube-proxy
 * would. Rules follow kube-proxy's layout: in iptables a KUBE-SERVICES
 * rule per service, a KUBE-SVC chain with the masquerade check and one
 * statistic-random rule per endpoint, a KUBE-SEP chain per endpoint with
 * the hairpin check and the DNAT; in nftables the service-ips verdict map,
 * a service chain with numgen random, an endpoint chain per endpoint.
 * The filter-table / forward-hook rules kube-proxy installs (conntrack
 * INVALID drop, new-connection checks) are included, so the established
 * path pays what a kube-proxy node pays.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

struct kp {
	unsigned int nservices;
	unsigned int nbackends;
	int change_svc; /* -1: full ruleset */
};

static const char *ip4(unsigned int a, char *buf)
{
	struct in_addr in = { .s_addr = htonl(a) };

	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

/* 16 characters of kube-proxy's base32 alphabet from a 64-bit FNV-1a hash
 * of the words given: the shape of kube-proxy's chain-name hashes. */
static const char *kp__hash(char *out, unsigned int a, unsigned int b)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	unsigned long long h = 0xcbf29ce484222325ULL;
	unsigned int w[2] = { a, b };

	for (int i = 0; i < 2; i++)
		for (int k = 0; k < 4; k++) {
			h ^= (w[i] >> (8 * k)) & 0xff;
			h *= 0x100000001b3ULL;
		}
	for (int i = 0; i < 16; i++) {
		out[i] = alphabet[h & 31];
		h = (h >> 5) | (h << 59);
		h *= 0x100000001b3ULL;
	}
	out[16] = 0;
	return out;
}

/* Backend offset of endpoint j of service svc, after or before a change. */
static unsigned int kp__be_off(const struct kp *k, unsigned int svc, unsigned int j, bool changed)
{
	return changed && (int)svc == k->change_svc && j == 0 ? PLAN_BE_SPARE_IDX : j;
}

/* ---- iptables (iptables-restore input) ---- */

static void ipt__svc_rule(unsigned int svc)
{
	char vip[INET_ADDRSTRLEN], h[17];

	printf("-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"bench/svc-%u:http cluster "
	       "IP\" -m tcp --dport %u -j KUBE-SVC-%s\n",
	       ip4(plan__vip(svc), vip), svc, PLAN_SVC_PORT, kp__hash(h, svc, ~0u));
}

static void ipt__sep_name(char *out, unsigned int svc, unsigned int off)
{
	kp__hash(out, svc, off);
}

/* The service chain's rules (its declaration is the caller's). */
static void ipt__svc_chain(const struct kp *k, unsigned int svc, bool changed)
{
	char vip[INET_ADDRSTRLEN], be[INET_ADDRSTRLEN], h[17], sep[17];
	unsigned int n = k->nbackends;

	kp__hash(h, svc, ~0u);
	printf("-A KUBE-SVC-%s ! -s %s -d %s/32 -p tcp -m comment --comment \"bench/svc-%u:http "
	       "cluster IP\" -m tcp --dport %u -j KUBE-MARK-MASQ\n",
	       h, PLAN_CLUSTER_CIDR, ip4(plan__vip(svc), vip), svc, PLAN_SVC_PORT);
	for (unsigned int j = 0; j < n; j++) {
		unsigned int off = kp__be_off(k, svc, j, changed);

		ipt__sep_name(sep, svc, off);
		printf("-A KUBE-SVC-%s -m comment --comment \"bench/svc-%u:http -> %s:%u\"", h, svc,
		       ip4(plan__backend(svc, off), be), PLAN_BE_PORT);
		/* kube-proxy: endpoint j of n is taken with 1/(n-j), the last always */
		if (j + 1 < n)
			printf(" -m statistic --mode random --probability %.11f", 1.0 / (n - j));
		printf(" -j KUBE-SEP-%s\n", sep);
	}
}

static void ipt__sep_chain(unsigned int svc, unsigned int off)
{
	char be[INET_ADDRSTRLEN], sep[17];

	ipt__sep_name(sep, svc, off);
	ip4(plan__backend(svc, off), be);
	printf("-A KUBE-SEP-%s -s %s/32 -m comment --comment \"bench/svc-%u:http\" -j "
	       "KUBE-MARK-MASQ\n",
	       sep, be, svc);
	printf("-A KUBE-SEP-%s -p tcp -m comment --comment \"bench/svc-%u:http\" -m tcp -j DNAT "
	       "--to-destination %s:%u\n",
	       sep, svc, be, PLAN_BE_PORT);
}

static void ipt__filter_hooks(void);

static void ipt__filter(bool hooks)
{
	printf("*filter\n"
	       ":KUBE-EXTERNAL-SERVICES - [0:0]\n"
	       ":KUBE-FORWARD - [0:0]\n"
	       ":KUBE-NODEPORTS - [0:0]\n"
	       ":KUBE-PROXY-FIREWALL - [0:0]\n"
	       ":KUBE-SERVICES - [0:0]\n"
	       "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
	       "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark "
	       "--mark 0x4000/0x4000 -j ACCEPT\n"
	       "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m "
	       "conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
	if (hooks)
		ipt__filter_hooks();
	printf("COMMIT\n");
}

/* Jumps from the built-in chains: only in the full ruleset (kube-proxy
 * installs them once, outside its restores). One section per table: a
 * second section of a table would flush the first. */
static void ipt__filter_hooks(void)
{
	printf("-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load "
	       "balancer firewall\" -j KUBE-PROXY-FIREWALL\n"
	       "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j "
	       "KUBE-NODEPORTS\n"
	       "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes "
	       "externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n"
	       "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load "
	       "balancer firewall\" -j KUBE-PROXY-FIREWALL\n"
	       "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n"
	       "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
	       "portals\" -j KUBE-SERVICES\n"
	       "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes "
	       "externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n"
	       "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load "
	       "balancer firewall\" -j KUBE-PROXY-FIREWALL\n"
	       "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service "
	       "portals\" -j KUBE-SERVICES\n");
}

static void ipt__nat_hooks(void)
{
	printf("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j "
	       "KUBE-SERVICES\n"
	       "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
	       "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j "
	       "KUBE-POSTROUTING\n");
}

static void ipt__nat_head(void)
{
	printf("*nat\n"
	       ":KUBE-MARK-MASQ - [0:0]\n"
	       ":KUBE-NODEPORTS - [0:0]\n"
	       ":KUBE-POSTROUTING - [0:0]\n"
	       ":KUBE-SERVICES - [0:0]\n");
}

static void ipt__nat_common(const struct kp *k)
{
	printf("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n"
	       "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
	       "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n"
	       "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring "
	       "SNAT\" -j MASQUERADE --random-fully\n");
	for (unsigned int i = 0; i < k->nservices; i++)
		ipt__svc_rule(i);
	printf("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this "
	       "must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j "
	       "KUBE-NODEPORTS\n");
}

static void ipt__full(const struct kp *k)
{
	char h[17];

	ipt__filter(true);
	ipt__nat_head();
	for (unsigned int i = 0; i < k->nservices; i++) {
		printf(":KUBE-SVC-%s - [0:0]\n", kp__hash(h, i, ~0u));
		for (unsigned int j = 0; j < k->nbackends; j++)
			printf(":KUBE-SEP-%s - [0:0]\n", kp__hash(h, i, j));
	}
	ipt__nat_hooks();
	ipt__nat_common(k);
	for (unsigned int i = 0; i < k->nservices; i++) {
		ipt__svc_chain(k, i, false);
		for (unsigned int j = 0; j < k->nbackends; j++)
			ipt__sep_chain(i, j);
	}
	printf("COMMIT\n");
}

static void ipt__change(const struct kp *k)
{
	unsigned int s = (unsigned int)k->change_svc;
	char h[17];

	ipt__filter(false);
	ipt__nat_head();
	printf(":KUBE-SVC-%s - [0:0]\n", kp__hash(h, s, ~0u));
	printf(":KUBE-SEP-%s - [0:0]\n", kp__hash(h, s, PLAN_BE_SPARE_IDX));
	printf(":KUBE-SEP-%s - [0:0]\n", kp__hash(h, s, 0));
	ipt__nat_common(k);
	ipt__svc_chain(k, s, true);
	ipt__sep_chain(s, PLAN_BE_SPARE_IDX);
	printf("-X KUBE-SEP-%s\n", kp__hash(h, s, 0));
	printf("COMMIT\n");
}

/* ---- nftables (nft -f input) ---- */

static void nft__svc_chain_name(char *out, size_t len, unsigned int svc)
{
	char h[17];

	snprintf(out, len, "service-%.8s-bench/svc-%u/tcp/http", kp__hash(h, svc, ~0u), svc);
}

static void nft__ep_chain_name(char *out, size_t len, unsigned int svc, unsigned int off)
{
	char h[17], be[INET_ADDRSTRLEN];

	snprintf(out, len, "endpoint-%.8s-bench/svc-%u/tcp/http__%s/%u", kp__hash(h, svc, off), svc,
		 ip4(plan__backend(svc, off), be), PLAN_BE_PORT);
}

static void nft__svc_rules(const struct kp *k, unsigned int svc, bool changed, const char *pfx)
{
	char name[96], ep[96], vip[INET_ADDRSTRLEN];

	nft__svc_chain_name(name, sizeof(name), svc);
	printf("%s%s ip daddr %s tcp dport %u ip saddr != %s jump mark-for-masquerade\n", pfx, name,
	       ip4(plan__vip(svc), vip), PLAN_SVC_PORT, PLAN_CLUSTER_CIDR);
	printf("%s%s numgen random mod %u vmap { ", pfx, name, k->nbackends);
	for (unsigned int j = 0; j < k->nbackends; j++) {
		nft__ep_chain_name(ep, sizeof(ep), svc, kp__be_off(k, svc, j, changed));
		printf("%s%u : goto %s", j ? ", " : "", j, ep);
	}
	printf(" }\n");
}

static void nft__ep_rules(unsigned int svc, unsigned int off, const char *pfx)
{
	char ep[96], be[INET_ADDRSTRLEN];

	nft__ep_chain_name(ep, sizeof(ep), svc, off);
	ip4(plan__backend(svc, off), be);
	printf("%s%s ip saddr %s jump mark-for-masquerade\n", pfx, ep, be);
	printf("%s%s meta l4proto tcp dnat to %s:%u\n", pfx, ep, be, PLAN_BE_PORT);
}

static void nft__full(const struct kp *k)
{
	const char *add_rule = "add rule ip kube-proxy ";
	char name[96], vip[INET_ADDRSTRLEN];

	printf("add table ip kube-proxy { comment \"rules for kube-proxy\" ; }\n"
	       "add chain ip kube-proxy mark-for-masquerade\n"
	       "add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000\n"
	       "add chain ip kube-proxy masquerading\n"
	       "add rule ip kube-proxy masquerading mark and 0x4000 == 0 return\n"
	       "add rule ip kube-proxy masquerading mark set mark xor 0x4000\n"
	       "add rule ip kube-proxy masquerading masquerade fully-random\n"
	       "add chain ip kube-proxy services\n"
	       "add chain ip kube-proxy service-endpoints-check\n"
	       "add chain ip kube-proxy cluster-ips-check\n"
	       "add chain ip kube-proxy filter-forward { type filter hook forward priority -110 "
	       "; }\n"
	       "add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check\n"
	       "add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check\n"
	       "add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority "
	       "dstnat ; }\n"
	       "add rule ip kube-proxy nat-prerouting jump services\n"
	       "add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }\n"
	       "add rule ip kube-proxy nat-output jump services\n"
	       "add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority "
	       "srcnat ; }\n"
	       "add rule ip kube-proxy nat-postrouting jump masquerading\n"
	       "add set ip kube-proxy cluster-ips { type ipv4_addr ; comment \"Active ClusterIPs\" "
	       "; }\n"
	       "add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . "
	       "inet_service : verdict ; comment \"vmap to drop or reject packets to services "
	       "with no endpoints\" ; }\n"
	       "add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : "
	       "verdict ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }\n"
	       "add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport "
	       "vmap @no-endpoint-services\n"
	       "add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "
	       "\"Reject traffic to invalid ports of ClusterIPs\"\n"
	       "add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap "
	       "@service-ips\n");
	for (unsigned int i = 0; i < k->nservices; i++) {
		nft__svc_chain_name(name, sizeof(name), i);
		printf("add chain ip kube-proxy %s\n", name);
		for (unsigned int j = 0; j < k->nbackends; j++) {
			char ep[96];

			nft__ep_chain_name(ep, sizeof(ep), i, j);
			printf("add chain ip kube-proxy %s\n", ep);
			nft__ep_rules(i, j, add_rule);
		}
		nft__svc_rules(k, i, false, add_rule);
		ip4(plan__vip(i), vip);
		printf("add element ip kube-proxy cluster-ips { %s }\n", vip);
		printf("add element ip kube-proxy service-ips { %s . tcp . %u : goto %s }\n", vip,
		       PLAN_SVC_PORT, name);
	}
}

static void nft__change(const struct kp *k)
{
	const char *add_rule = "add rule ip kube-proxy ";
	unsigned int s = (unsigned int)k->change_svc;
	char name[96], ep[96];

	nft__ep_chain_name(ep, sizeof(ep), s, PLAN_BE_SPARE_IDX);
	printf("add chain ip kube-proxy %s\n", ep);
	printf("flush chain ip kube-proxy %s\n", ep);
	nft__ep_rules(s, PLAN_BE_SPARE_IDX, add_rule);
	nft__svc_chain_name(name, sizeof(name), s);
	printf("flush chain ip kube-proxy %s\n", name);
	nft__svc_rules(k, s, true, add_rule);
	nft__ep_chain_name(ep, sizeof(ep), s, 0);
	printf("delete chain ip kube-proxy %s\n", ep);
}

static int usage(void)
{
	fprintf(stderr,
		"Usage: kprules iptables|nft --services N --backends B\n"
		"       kprules iptables-change|nft-change --services N --backends B --svc S\n");
	return 2;
}

static int parse_uint(const char *text, unsigned int max, unsigned int *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(text, &end, 0);
	if (errno || *end || !*text || *text == '-' || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

int main(int argc, char **argv)
{
	struct kp k = { .nbackends = 10, .change_svc = -1 };
	unsigned int svc = 0;
	bool have_svc = false;
	const char *mode;

	if (argc < 2)
		return usage();
	mode = argv[1];
	for (int i = 2; i < argc; i += 2) {
		int err = -EINVAL;

		if (i + 1 >= argc)
			return usage();
		if (!strcmp(argv[i], "--services"))
			err = parse_uint(argv[i + 1], PLAN_MAX_SERVICES, &k.nservices);
		else if (!strcmp(argv[i], "--backends"))
			err = parse_uint(argv[i + 1], PLAN_MAX_BACKENDS, &k.nbackends);
		else if (!strcmp(argv[i], "--svc"))
			err = parse_uint(argv[i + 1], PLAN_MAX_SERVICES, &svc), have_svc = true;
		if (err) {
			fprintf(stderr, "Error: %s %s: bad option or value\n", argv[i],
				argv[i + 1]);
			return 2;
		}
	}
	if (!k.nservices || !k.nbackends)
		return usage();
	if (!strcmp(mode, "iptables") || !strcmp(mode, "nft")) {
		if (have_svc)
			return usage();
		if (mode[0] == 'i')
			ipt__full(&k);
		else
			nft__full(&k);
	} else if (!strcmp(mode, "iptables-change") || !strcmp(mode, "nft-change")) {
		if (!have_svc || svc >= k.nservices) {
			fprintf(stderr, "Error: --svc: expected a service below --services\n");
			return 2;
		}
		k.change_svc = (int)svc;
		if (mode[0] == 'i')
			ipt__change(&k);
		else
			nft__change(&k);
	} else {
		return usage();
	}
	return fflush(stdout) ? 1 : 0;
}
