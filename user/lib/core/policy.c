// SPDX-License-Identifier: MIT
/*
 * policy.c - access rules (#15) as text, their validation, and their
 * compilation into the entries of the policy trie (sluice_abi.h).
 *
 * Contract: the kernel does one longest-prefix lookup per new flow, so
 * everything the rules mean is settled here. For every distinct prefix P
 * of a service's rules, the entry of P holds the verdict for each client
 * port of a client whose longest match is P: the rules that apply to such
 * a client are exactly the rules whose prefix contains P (a longer one
 * containing the client would be the longest match instead). Deny wins
 * over allow; no rule gives SLUICE_POL_NONE, which the kernel turns into
 * a denial only when the service has an allow list. Validation errors
 * name the rule ("denyFrom[2]: ...") and are checked before any map is
 * touched.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "internal.h"

#define RULE_TEXT_MAX 80

static int policy__port(const char *text, const char *s, const char *end, __u16 *out)
{
	unsigned long v = 0;

	if (s == end || end - s > 5 || (*s == '0' && end - s > 1))
		goto bad;
	for (const char *p = s; p < end; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		goto bad;
	*out = (__u16)v;
	return 0;
bad:
	sluice__set_err("\"%s\": client port \"%.*s\" is not a number 0-65535", text,
			(int)(end - s), s);
	return -EINVAL;
}

int sluice_policy_rule__parse(struct sluice_policy_rule *r, const char *text)
{
	char buf[RULE_TEXT_MAX], *slash, *colon, *dash;
	struct sluice_policy_rule tmp = { .port_lo = 0, .port_hi = 65535 };
	int ret;

	if (!text || strlen(text) >= sizeof(buf)) {
		sluice__set_err("\"%.24s\": not CIDR[:PORT[-PORT]]", text ? text : "");
		return -EINVAL;
	}
	strcpy(buf, text);
	slash = strchr(buf, '/');
	colon = slash ? strchr(slash, ':') : NULL; /* the prefix has no ':' */
	if (colon) {
		*colon = '\0';
		dash = strchr(colon + 1, '-');
		if (policy__port(text, colon + 1, dash ? dash : colon + 1 + strlen(colon + 1),
				 &tmp.port_lo))
			return -EINVAL;
		tmp.port_hi = tmp.port_lo;
		if (dash && policy__port(text, dash + 1, dash + 1 + strlen(dash + 1), &tmp.port_hi))
			return -EINVAL;
		if (tmp.port_lo > tmp.port_hi) {
			sluice__set_err("\"%s\": port range %u-%u is empty", text, tmp.port_lo,
					tmp.port_hi);
			return -EINVAL;
		}
	}
	ret = sluice_cidr__parse(&tmp.cidr, buf);
	if (ret < 0)
		return ret;
	*r = tmp;
	return ret;
}

static bool policy__any_port(const struct sluice_policy_rule *r)
{
	return r->port_lo == 0 && r->port_hi == 65535;
}

char *sluice_policy_rule__str(const struct sluice_policy_rule *r, char *buf, size_t len)
{
	char c[SLUICE_CIDR_STRLEN];

	sluice_cidr__str(&r->cidr, c, sizeof(c));
	if (policy__any_port(r))
		snprintf(buf, len, "%s", c);
	else if (r->port_lo == r->port_hi)
		snprintf(buf, len, "%s:%u", c, r->port_lo);
	else
		snprintf(buf, len, "%s:%u-%u", c, r->port_lo, r->port_hi);
	return buf;
}

bool sluice_policy_rule__eq(const struct sluice_policy_rule *a, const struct sluice_policy_rule *b)
{
	return sluice_cidr__eq(&a->cidr, &b->cidr) && a->port_lo == b->port_lo &&
	       a->port_hi == b->port_hi;
}

/* Does the prefix a contain the address of b (with b->prefixlen >= a's)? */
static bool policy__contains(const struct sluice_cidr *a, const struct sluice_cidr *b)
{
	__u32 bits = a->prefixlen;

	if (a->addr.family != b->addr.family || b->prefixlen < bits)
		return false;
	for (__u32 w = 0; w < 4 && bits; w++) {
		__u32 keep = bits >= 32 ? 32 : bits;
		__u32 mask = htonl(~0u << (32 - keep));

		if ((a->addr.addr[w] ^ b->addr.addr[w]) & mask)
			return false;
		bits -= keep;
	}
	return true;
}

static bool policy__overlap(const struct sluice_policy_rule *a, const struct sluice_policy_rule *b)
{
	return (policy__contains(&a->cidr, &b->cidr) || policy__contains(&b->cidr, &a->cidr)) &&
	       a->port_lo <= b->port_hi && b->port_lo <= a->port_hi;
}

static int policy__check_list(__u8 family, const char *name, const struct sluice_policy_rule *v,
			      __u32 n)
{
	char a[SLUICE_POLICY_RULE_STRLEN], b[SLUICE_POLICY_RULE_STRLEN];

	if (n && !v) {
		sluice__set_err("%s: %u rules but no array", name, n);
		return -EINVAL;
	}
	for (__u32 i = 0; i < n; i++) {
		sluice_policy_rule__str(&v[i], a, sizeof(a));
		if (v[i].cidr.addr.family != family) {
			sluice__set_err("%s[%u]: \"%s\" is not of the VIP's family", name, i, a);
			return -EINVAL;
		}
		if (!sluice_cidr__valid(&v[i].cidr) || v[i].port_lo > v[i].port_hi) {
			sluice__set_err("%s[%u]: \"%s\" has host bits set, a prefix or a port "
					"range out of range",
					name, i, a);
			return -EINVAL;
		}
		for (__u32 j = 0; j < i; j++) {
			if (!policy__overlap(&v[i], &v[j]))
				continue;
			sluice__set_err("%s[%u]: \"%s\" %s %s[%u] \"%s\"", name, i, a,
					sluice_policy_rule__eq(&v[i], &v[j]) ? "duplicates" :
									       "overlaps",
					name, j, sluice_policy_rule__str(&v[j], b, sizeof(b)));
			return -EINVAL;
		}
	}
	return 0;
}

static int policy__check(__u8 family, const struct sluice_policy_rule *allow, __u32 nallow,
			 const struct sluice_policy_rule *deny, __u32 ndeny)
{
	char a[SLUICE_POLICY_RULE_STRLEN];
	int err;

	if (nallow > SLUICE_POLICY_PER_SVC || ndeny > SLUICE_POLICY_PER_SVC - nallow) {
		sluice__set_err("allowFrom + denyFrom: %u rules, at most %u per service",
				nallow + ndeny, SLUICE_POLICY_PER_SVC);
		return -EINVAL;
	}
	err = policy__check_list(family, "allowFrom", allow, nallow);
	if (!err)
		err = policy__check_list(family, "denyFrom", deny, ndeny);
	if (err)
		return err;
	for (__u32 i = 0; i < nallow; i++)
		for (__u32 j = 0; j < ndeny; j++)
			if (sluice_policy_rule__eq(&allow[i], &deny[j])) {
				sluice__set_err("allowFrom[%u]: \"%s\" is also denyFrom[%u] (deny "
						"wins: remove one)",
						i, sluice_policy_rule__str(&allow[i], a, sizeof(a)),
						j);
				return -EINVAL;
			}
	return 0;
}

struct policy_ctx {
	__u8 family;
	const struct sluice_policy_rule *allow, *deny;
	__u32 nallow, ndeny;
	__u32 *bounds; /* scratch: 2 per rule + 2 */
};

static __u8 policy__port_verdict(const struct policy_ctx *c, const struct sluice_cidr *p,
				 __u32 port)
{
	bool allowed = false;

	for (__u32 i = 0; i < c->ndeny; i++)
		if (port >= c->deny[i].port_lo && port <= c->deny[i].port_hi &&
		    policy__contains(&c->deny[i].cidr, p))
			return SLUICE_POL_DENY;
	for (__u32 i = 0; i < c->nallow && !allowed; i++)
		allowed = port >= c->allow[i].port_lo && port <= c->allow[i].port_hi &&
			  policy__contains(&c->allow[i].cidr, p);
	return allowed ? SLUICE_POL_ALLOW : SLUICE_POL_NONE;
}

static int policy__cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static void policy__add_bounds(const struct sluice_policy_rule *v, __u32 n,
			       const struct sluice_cidr *p, __u32 *b, __u32 *nb)
{
	for (__u32 i = 0; i < n; i++) {
		if (policy__any_port(&v[i]) || !policy__contains(&v[i].cidr, p))
			continue;
		b[(*nb)++] = v[i].port_lo;
		b[(*nb)++] = (__u32)v[i].port_hi + 1;
	}
}

/* The value of prefix p: its verdict per elementary port interval, the
 * commonest verdict (by ports covered) as the default, the others as
 * port ranges. */
static int policy__value(const struct policy_ctx *c, const struct sluice_cidr *p,
			 struct sluice_policy_val *val)
{
	__u32 *b = c->bounds, nb = 0, cover[3] = {}, k, lo;
	struct sluice_policy_port runs[64];
	__u32 nruns = 0;
	char buf[SLUICE_CIDR_STRLEN];
	__u8 v, def = 0;

	b[nb++] = 0;
	b[nb++] = 65536;
	policy__add_bounds(c->allow, c->nallow, p, b, &nb);
	policy__add_bounds(c->deny, c->ndeny, p, b, &nb);
	qsort(b, nb, sizeof(*b), policy__cmp_u32);
	memset(val, 0, sizeof(*val));
	for (k = 0, lo = 0; k + 1 < nb; k++) {
		if (b[k] == b[k + 1])
			continue;
		v = policy__port_verdict(c, p, b[k]);
		cover[v] += b[k + 1] - b[k];
		if (nruns && runs[nruns - 1].verdict == v && runs[nruns - 1].hi + 1u == b[k]) {
			runs[nruns - 1].hi = (__u16)(b[k + 1] - 1);
			continue;
		}
		if (nruns == sizeof(runs) / sizeof(runs[0]))
			goto too_many;
		lo = b[k];
		runs[nruns++] = (struct sluice_policy_port){ .lo = (__u16)lo,
							     .hi = (__u16)(b[k + 1] - 1),
							     .verdict = v };
	}
	for (v = 1; v < 3; v++)
		if (cover[v] > cover[def])
			def = v;
	val->verdict = def;
	for (k = 0; k < nruns; k++) {
		if (runs[k].verdict == def)
			continue;
		if (val->nports == SLUICE_POLICY_PORTS)
			goto too_many;
		val->port[val->nports++] = runs[k];
	}
	return 0;
too_many:
	sluice__set_err("allowFrom/denyFrom: clients in %s need more than %u client port ranges",
			sluice_cidr__str(p, buf, sizeof(buf)), SLUICE_POLICY_PORTS);
	return -EINVAL;
}

static int policy__cmp_cidr(const void *a, const void *b)
{
	const struct sluice_cidr *x = a, *y = b;
	int r = memcmp(x->addr.addr, y->addr.addr, sizeof(x->addr.addr));

	return r ? r : (int)x->prefixlen - (int)y->prefixlen;
}

int sluice_policy__compile(__u8 family, const struct sluice_policy_rule *allow, __u32 nallow,
			   const struct sluice_policy_rule *deny, __u32 ndeny,
			   struct sluice_policy_entry **out, __u32 *n)
{
	struct policy_ctx c = { family, allow, deny, nallow, ndeny, NULL };
	struct sluice_cidr *p = NULL;
	struct sluice_policy_entry *e = NULL;
	__u32 np = 0, ne = 0;
	int err;

	*out = NULL;
	*n = 0;
	err = policy__check(family, allow, nallow, deny, ndeny);
	if (err || !(nallow + ndeny))
		return err;
	p = calloc(nallow + ndeny, sizeof(*p));
	e = calloc(nallow + ndeny, sizeof(*e));
	c.bounds = calloc(2 * (nallow + ndeny) + 2, sizeof(*c.bounds));
	if (!p || !e || !c.bounds) {
		sluice__set_err("out of memory");
		err = -ENOMEM;
		goto out;
	}
	for (__u32 i = 0; i < nallow; i++)
		p[np++] = allow[i].cidr;
	for (__u32 i = 0; i < ndeny; i++)
		p[np++] = deny[i].cidr;
	if (family == SLUICE_AF_INET) /* the words an IPv4 key leaves 0 */
		for (__u32 i = 0; i < np; i++)
			memset(&p[i].addr.addr[1], 0, 3 * sizeof(p[i].addr.addr[0]));
	qsort(p, np, sizeof(*p), policy__cmp_cidr);
	for (__u32 i = 0; i < np; i++) {
		if (ne && sluice_cidr__eq(&e[ne - 1].cidr, &p[i]))
			continue;
		e[ne].cidr = p[i];
		err = policy__value(&c, &p[i], &e[ne].val);
		if (err)
			goto out;
		ne++;
	}
	*out = e;
	*n = ne;
	e = NULL;
out:
	free(p);
	free(e);
	free(c.bounds);
	return err;
}

__u8 sluice_policy__verdict(const struct sluice_policy_entry *e, __u32 n,
			    const struct sluice_addr *client, __u16 port)
{
	struct sluice_cidr host = { .addr = *client };
	const struct sluice_policy_entry *best = NULL;

	host.prefixlen = client->family == SLUICE_AF_INET ? 32 : 128;
	for (__u32 i = 0; i < n; i++)
		if (policy__contains(&e[i].cidr, &host) &&
		    (!best || e[i].cidr.prefixlen > best->cidr.prefixlen))
			best = &e[i];
	if (!best)
		return SLUICE_POL_NONE;
	for (__u32 i = 0; i < best->val.nports && i < SLUICE_POLICY_PORTS; i++)
		if (port >= best->val.port[i].lo && port <= best->val.port[i].hi)
			return best->val.port[i].verdict;
	return best->val.verdict;
}

__u32 sluice_policy__lens(const struct sluice_policy_entry *e, __u32 n)
{
	bool used[129] = { false };

	for (__u32 i = 0; i < n; i++)
		if (e[i].cidr.prefixlen <= 128)
			used[e[i].cidr.prefixlen] = true;
	return sluice_policy__lens_used(used);
}

__u32 sluice_policy__lens_used(const bool used[129])
{
	__u32 lens = 0, k = 0;

	for (int len = 128; len >= 0; len--) {
		if (!used[len])
			continue;
		if (k == SLUICE_POLICY_LENS)
			return 0; /* more lengths than the bound: the trie */
		lens |= (__u32)(len + 1) << (8 * k++);
	}
	return lens;
}

/* Prefix expansion (sluice_policy__expand()). */
struct policy_gen {
	struct sluice_policy_entry e;
	__u32 seq; /* generation order: a later one comes from a longer prefix */
};

static int policy__cmp_gen(const void *a, const void *b)
{
	const struct policy_gen *x = a, *y = b;
	int r = policy__cmp_cidr(&x->e.cidr, &y->e.cidr);

	return r ? r : x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int policy__cmp_len(const void *a, const void *b)
{
	const struct sluice_policy_entry *x = *(const struct sluice_policy_entry *const *)a;
	const struct sluice_policy_entry *y = *(const struct sluice_policy_entry *const *)b;

	/* shorter first; ties by address, so the order is total */
	if (x->cidr.prefixlen != y->cidr.prefixlen)
		return (int)x->cidr.prefixlen - (int)y->cidr.prefixlen;
	return policy__cmp_cidr(&x->cidr, &y->cidr);
}

/* c[j] entries of length len[j] expanded to len[to] take at most this many
 * entries (none meet: an upper bound), saturated at cap + 1. */
static __u64 policy__group_cost(const __u32 *c, const __u8 *len, __u32 from, __u32 to, __u64 cap)
{
	__u64 sum = 0;

	for (__u32 j = from; j <= to; j++) {
		__u32 d = (__u32)(len[to] - len[j]);

		if (d >= 32 || (__u64)c[j] << d > cap)
			return cap + 1;
		sum += (__u64)c[j] << d;
		if (sum > cap)
			return cap + 1;
	}
	return sum;
}

/* Bit @i (0: the most significant of addr[0]) of a network-order address. */
static void policy__set_bit(__u32 *addr, __u32 i)
{
	addr[i / 32] = htonl(ntohl(addr[i / 32]) | 1u << (31 - i % 32));
}

int sluice_policy__expand(const struct sluice_policy_entry *e, __u32 n, __u32 max,
			  struct sluice_policy_entry **out, __u32 *nout, __u32 *lens)
{
	__u32 c[129] = { 0 }, k = 0, pos[129], cut[SLUICE_POLICY_LENS + 1][129];
	__u64 best[SLUICE_POLICY_LENS + 1][129], cost, total;
	const struct sluice_policy_entry **by_len = NULL;
	struct policy_gen *g = NULL;
	struct sluice_policy_entry *o = NULL;
	__u8 len[129], target[129] = { 0 };
	bool used[129] = { false };
	__u32 ng = 0, no = 0, groups = 0;
	int err = 0;

	*out = NULL;
	*nout = 0;
	*lens = 0;
	for (__u32 i = 0; i < n; i++)
		if (e[i].cidr.prefixlen <= 128)
			used[e[i].cidr.prefixlen] = true;
	for (int l = 0; l <= 128; l++)
		if (used[l]) {
			pos[l] = k;
			len[k++] = (__u8)l;
		}
	if (!k)
		return 0;
	for (__u32 i = 0; i < n; i++)
		if (e[i].cidr.prefixlen <= 128)
			c[pos[e[i].cidr.prefixlen]]++;
	/* best[g][j]: the fewest entries for lengths 0..j in g groups, each
	 * expanded to its longest length (the only choice that can do: a
	 * prefix never gets shorter); cut[g][j]: where the last group starts */
	for (__u32 gi = 0; gi <= SLUICE_POLICY_LENS; gi++)
		for (__u32 j = 0; j < k; j++)
			best[gi][j] = (__u64)max + 1;
	for (__u32 j = 0; j < k; j++) {
		best[1][j] = policy__group_cost(c, len, 0, j, max);
		cut[1][j] = 0;
		for (__u32 gi = 2; gi <= SLUICE_POLICY_LENS; gi++)
			for (__u32 i = 1; i <= j; i++) {
				if (best[gi - 1][i - 1] > max)
					continue;
				cost = best[gi - 1][i - 1] + policy__group_cost(c, len, i, j, max);
				if (cost < best[gi][j]) {
					best[gi][j] = cost;
					cut[gi][j] = i;
				}
			}
	}
	total = (__u64)max + 1;
	for (__u32 gi = 1; gi <= SLUICE_POLICY_LENS; gi++)
		if (best[gi][k - 1] < total) {
			total = best[gi][k - 1];
			groups = gi;
		}
	if (total > max)
		return 0;                          /* too many: the trie */
	for (__u32 j = k, gi = groups; gi; gi--) { /* each length's target */
		__u32 from = cut[gi][j - 1];

		for (__u32 x = from; x < j; x++)
			target[len[x]] = len[j - 1];
		j = from;
	}
	memset(used, 0, sizeof(used));
	for (__u32 i = 0; i < k; i++)
		used[target[len[i]]] = true;
	by_len = calloc(n, sizeof(*by_len));
	g = calloc(total ? total : 1, sizeof(*g));
	if (!by_len || !g) {
		err = -ENOMEM;
		goto out;
	}
	for (__u32 i = 0; i < n; i++)
		by_len[i] = &e[i];
	qsort(by_len, n, sizeof(*by_len), policy__cmp_len);
	for (__u32 i = 0; i < n; i++) { /* shorter first: a longer one overrides */
		const struct sluice_policy_entry *p = by_len[i];
		__u32 l = p->cidr.prefixlen, t = target[l];

		if (l > 128)
			continue;
		for (__u32 sub = 0; sub < 1u << (t - l); sub++) {
			struct sluice_policy_entry *x = &g[ng].e;

			*x = *p;
			x->cidr.prefixlen = (__u8)t;
			x->val.from_len = t == l ? 0 : (__u8)(l + 1);
			for (__u32 b = 0; b < t - l; b++)
				if (sub >> (t - l - 1 - b) & 1)
					policy__set_bit(x->cidr.addr.addr, l + b);
			g[ng].seq = ng;
			ng++;
		}
	}
	qsort(g, ng, sizeof(*g), policy__cmp_gen);
	o = calloc(ng ? ng : 1, sizeof(*o));
	if (!o) {
		err = -ENOMEM;
		goto out;
	}
	for (__u32 i = 0; i < ng; i++) { /* the last of equal prefixes wins */
		if (i + 1 < ng && sluice_cidr__eq(&g[i].e.cidr, &g[i + 1].e.cidr))
			continue;
		o[no++] = g[i].e;
	}
	*out = o;
	*nout = no;
	*lens = sluice_policy__lens_used(used);
	o = NULL;
out:
	if (err)
		sluice__set_err("out of memory");
	free(o);
	free(g);
	free(by_len);
	return err;
}

static const struct sluice_cidr *node_sort_base;

static int policy__cmp_idx(const void *a, const void *b)
{
	const struct sluice_cidr *x = &node_sort_base[*(const __u32 *)a];
	const struct sluice_cidr *y = &node_sort_base[*(const __u32 *)b];

	if (x->addr.family != y->addr.family)
		return (int)x->addr.family - (int)y->addr.family;
	return policy__cmp_cidr(x, y);
}

int sluice_policy__node_check(const struct sluice_cidr *deny, __u32 n)
{
	char a[SLUICE_CIDR_STRLEN], b[SLUICE_CIDR_STRLEN];
	__u32 *idx, i;
	int err = 0;

	if (n > SLUICE_POLICY_NODE_RULES) {
		sluice__set_err("nodeDenyFrom: %u prefixes, at most %u", n,
				SLUICE_POLICY_NODE_RULES);
		return -EINVAL;
	}
	for (i = 0; i < n; i++)
		if (!sluice_cidr__valid(&deny[i])) {
			sluice__set_err("nodeDenyFrom[%u]: \"%s\" has host bits set or a prefix "
					"out of range",
					i, sluice_cidr__str(&deny[i], a, sizeof(a)));
			return -EINVAL;
		}
	idx = calloc(n ? n : 1, sizeof(*idx));
	if (!idx) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		idx[i] = i;
	node_sort_base = deny; /* sorted order: a prefix nested in another
				* follows it or one nested in it */
	qsort(idx, n, sizeof(*idx), policy__cmp_idx);
	for (i = 1; i < n && !err; i++) {
		const struct sluice_cidr *x = &deny[idx[i - 1]], *y = &deny[idx[i]];

		if (!policy__contains(x, y))
			continue;
		sluice__set_err("nodeDenyFrom[%u]: \"%s\" %s nodeDenyFrom[%u] \"%s\"", idx[i],
				sluice_cidr__str(y, a, sizeof(a)),
				sluice_cidr__eq(x, y) ? "duplicates" : "lies inside", idx[i - 1],
				sluice_cidr__str(x, b, sizeof(b)));
		err = -EINVAL;
	}
	free(idx);
	return err;
}
