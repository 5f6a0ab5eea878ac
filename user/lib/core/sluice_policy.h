/* SPDX-License-Identifier: MIT */
/*
 * sluice_policy.h - L4 access policy (#15): rules as text, their
 * validation and compilation into trie entries (policy.c), the node-wide
 * deny list and the per-service denial counters (policy_node.c).
 * Included by sluice.h; the per-service rules travel in
 * struct sluice_service_spec (allow / deny).
 */
#ifndef SLUICE_POLICY_H
#define SLUICE_POLICY_H

/* One entry of the policy trie: the prefix and the compiled verdicts. */
struct sluice_policy_entry {
	struct sluice_cidr cidr;
	struct sluice_policy_val val;
};

/* "10.0.0.0/8", "10.0.0.0/8:1024-65535", "fd00::/64:53": a CIDR and
 * optionally a client port or inclusive range. Returns like
 * sluice_cidr__parse() (1: host bits were cleared). */
int sluice_policy_rule__parse(struct sluice_policy_rule *r, const char *text);
/* The same spelling back; buf >= SLUICE_POLICY_RULE_STRLEN bytes. */
char *sluice_policy_rule__str(const struct sluice_policy_rule *r, char *buf, size_t len);
#define SLUICE_POLICY_RULE_STRLEN (SLUICE_CIDR_STRLEN + 12)
bool sluice_policy_rule__eq(const struct sluice_policy_rule *a, const struct sluice_policy_rule *b);

/*
 * sluice_policy__compile() - check the rules of one service (VIP family
 * @family) and compile them into trie entries, one per distinct prefix,
 * in *out (malloc'ed, *n entries; NULL/0 for no rules). Rejected, with
 * the rule named as "allowFrom[i]: ..." / "denyFrom[i]: ...": another
 * family, host bits set, port_lo > port_hi, more than
 * SLUICE_POLICY_PER_SVC rules, a rule of one list that overlaps another
 * of the same list (nested prefixes with overlapping ports, duplicates
 * included), a rule that is in both lists, and a prefix whose clients
 * would need more than SLUICE_POLICY_PORTS port ranges.
 */
int sluice_policy__compile(__u8 family, const struct sluice_policy_rule *allow, __u32 nallow,
			   const struct sluice_policy_rule *deny, __u32 ndeny,
			   struct sluice_policy_entry **out, __u32 *n);

/* The verdict (enum sluice_policy_verdict) the compiled entries give a
 * client address:port, as the kernel's longest-prefix lookup does; used
 * by tests and `meshctl explain`. */
__u8 sluice_policy__verdict(const struct sluice_policy_entry *e, __u32 n,
			    const struct sluice_addr *client, __u16 port);

/* The policy_lens of a service whose compiled entries are e[0..n)
 * (sluice_abi.h: byte i is 1 + the i-th longest distinct prefix length,
 * 0 after the last), or 0 when they use no length or more than
 * SLUICE_POLICY_LENS: the kernel then looks the trie up instead of
 * policy_hash. */
__u32 sluice_policy__lens(const struct sluice_policy_entry *e, __u32 n);
/* The same from the lengths in use (used[len], 0..128): the node list's
 * policy_nlens word of a family. */
__u32 sluice_policy__lens_used(const bool used[129]);

/*
 * sluice_policy__expand() - the policy_hash entries of a service whose
 * compiled entries are e[0..n), in *out (malloc'ed, *nout, sorted by
 * prefix), and their policy_lens in *lens. Entries of at most
 * SLUICE_POLICY_LENS distinct lengths come back as they are. With more,
 * each prefix is expanded into the 2^(t - len) prefixes of length t that
 * cover it, t the shortest kept length >= its own (controlled prefix
 * expansion), the kept lengths chosen to need the fewest entries (counted
 * before expansions that meet are merged: a bound, so @max is too); where
 * expansions meet, the longer original prefix wins, so the first hit of
 * the lookups longest first is the entry the trie's longest match would
 * give, value for value (val.from_len names the original length). When
 * that needs more than @max entries: 0, *out NULL, *lens 0 (the trie).
 * -ENOMEM with the error set.
 */
int sluice_policy__expand(const struct sluice_policy_entry *e, __u32 n, __u32 max,
			  struct sluice_policy_entry **out, __u32 *nout, __u32 *lens);
/* The most policy_hash entries a service with @n compiled entries may
 * take: expansion trades this much room for lookups by exact match. */
#define SLUICE_POLICY_EXPAND_FACTOR 8
#define SLUICE_POLICY_EXPAND_MAX (SLUICE_POLICY_EXPAND_FACTOR * SLUICE_POLICY_PER_SVC)

/* Node-wide deny list (policy_node trie): replaces the whole list, all
 * or nothing; rules of both families, no nested or duplicate prefixes
 * ("nodeDenyFrom[i]: ..."), at most SLUICE_POLICY_NODE_RULES. */
int sluice_policy__node_check(const struct sluice_cidr *deny, __u32 n);
int sluice__policy_node_set(struct sluice *s, const struct sluice_cidr *deny, __u32 n);
/* Up to max prefixes into out, *n the count (may exceed max). */
int sluice__policy_node_get(struct sluice *s, struct sluice_cidr *out, __u32 max, __u32 *n);
/* Entries of the policy trie in use: of service svc_id (0: all services). */
int sluice__policy_entries(struct sluice *s, __u32 svc_id, __u32 *n);
/* New flows to svc_id denied, per reason, summed over CPUs. */
int sluice__policy_stats(struct sluice *s, __u32 svc_id, struct sluice_policy_stats *out);

/* Where the entry that decided sluice__policy_verdict() was found. */
struct sluice_policy_hit {
	const char *map; /* "policy_nhost", "policy_node", "policy",
				   * "policy_hash"; NULL: no entry matched */
	bool has_prefix; /* prefix known (the exact-match maps) */
	struct sluice_cidr prefix;
	__u8 lookups; /* exact lookups made in the map that decided: policy_hash
		       * (the service's), policy_nhost (the host key, then one
		       * per length of policy_nlens) */
	bool ports;   /* an entry that matched (node list or the service's) has
		       * client-port ranges: a verdict of port 0 is no verdict
		       * where the port is not known yet (policy_sock_denies()) */
};

/*
 * Cutting flows a policy change denies (#15, policy_cut.c): why the flow
 * whose FWD conntrack key is @fwd (client -> VIP) would be denied now
 * (SLUICE_DROP_POLICY_*), 0 when allowed; @svc is its service's entry.
 * The same lookups as the kernel's (the node list, then the service's
 * trie or, with SLUICE_SVC_F_POLICY_HASH, its exact lookups per length).
 * @hit (may be NULL): the entry that decided.
 */
int sluice__policy_verdict(struct sluice *s, const struct sluice_svc *svc,
			   const struct sluice_ct_key *fwd, struct sluice_policy_hit *hit);
/* Remove every conntrack flow (both maps, both entries) the policy now
 * denies and destroy the TCP and connected UDP sockets that the socket LB connected to a
 * backend from a source the policy now denies (SOCK_DESTROY; without
 * CONFIG_INET_DIAG_DESTROY *socks stays 0 and *sock_err says why): those
 * of this network namespace, then those of every other network namespace
 * of the processes of the cut scope (sluice__policy_cut_scope()), bounded
 * in count and time; failures and skips there are counted in the totals,
 * not returned. Counts add to the handle's totals
 * (sluice__policy_cut_totals()). Best effort: flows that start while it
 * runs are checked by the kernel anyway. Runs in the caller's thread,
 * whether or not a worker exists (below). */
int sluice__policy_cut(struct sluice *s, __u64 *flows, __u64 *socks, int *sock_err);

/*
 * The cut off the caller's thread (policy_cut_async.c). After
 * sluice__policy_cut_async(), desired__apply() no longer cuts: it asks for
 * a cut (sluice__policy_cut_request()), which returns at once, and a
 * worker thread runs it; the thread starts with sluice__policy_cut_start()
 * (a request made before waits for it: meshd starts it once the scope is
 * set) and stops in sluice__close(). Requests coalesce: one run at a time
 * and at most one waiting. Order: a write that can change a verdict (a
 * policy, the node list, a service added or removed) is bracketed by
 * sluice__policy_cut_writing(s, true/false); it ends the run in progress
 * at its next batch of deletions (a write waits for one batch at most:
 * 0.3-4 ms measured at load 16), no run begins while it lasts, and the run begins again after
 * it, so nothing is cut by a verdict taken under an older policy or a
 * half-written one, and the last run is the final policy's. Only the map
 * fds and the totals are shared with the worker; the handle is otherwise
 * not thread-safe as before.
 */
int sluice__policy_cut_async(struct sluice *s);
int sluice__policy_cut_start(struct sluice *s);
/* true when a worker exists (started or not) */
bool sluice__policy_cut_deferred(const struct sluice *s);
void sluice__policy_cut_request(struct sluice *s);
void sluice__policy_cut_writing(struct sluice *s, bool on);

/*
 * The cgroup v2 directory the socket LB is attached to (NULL: none, the
 * cut sees this network namespace only). A cut reads cgroup.procs there
 * and in every cgroup below (at most SLUICE_CUT_MAX_PIDS processes,
 * SLUICE_CUT_MAX_DEPTH levels), takes the distinct network namespaces of
 * those processes (/proc/PID/ns/net, by inode) other than the caller's,
 * at most @max_netns (0: SLUICE_CUT_MAX_NETNS), and in a short-lived
 * thread enters each one (setns()) and destroys the denied sockets there,
 * until @budget_ms (0: SLUICE_CUT_BUDGET_MS) has passed since the walk
 * began; the rest are counted as skipped. Needs CAP_SYS_ADMIN and the
 * processes' PIDs visible (the host's PID namespace).
 */
#ifndef SLUICE_CUT_MAX_NETNS
#define SLUICE_CUT_MAX_NETNS 1024 /* pods per node are ~110-250 by default */
#endif
#ifndef SLUICE_CUT_MAX_PIDS
#define SLUICE_CUT_MAX_PIDS 65536 /* one stat() each: ~2 us */
#endif
#ifndef SLUICE_CUT_MAX_DEPTH
#define SLUICE_CUT_MAX_DEPTH 16 /* kubepods.slice/<qos>/<pod>/<container>: 4 */
#endif
#ifndef SLUICE_CUT_BUDGET_MS
/* off meshd's loop since the worker (the loop waited for 500 ms before):
 * 1024 namespaces at ~2.5-4.5 ms each fit */
#define SLUICE_CUT_BUDGET_MS 8000
#endif
int sluice__policy_cut_scope(struct sluice *s, const char *cgroup_dir, unsigned int max_netns,
			     unsigned int budget_ms);
/* @all: the namespaces of every process in /proc instead of the cgroup's
 * (the same bounds); @max_pids: processes read (0: SLUICE_CUT_MAX_PIDS). */
void sluice__policy_cut_procs(struct sluice *s, bool all, unsigned int max_pids);
/* Denied sockets one sock_diag dump keeps for destruction (a pod can open
 * any number): beyond, the rest wait for the next cut (socks_truncated).
 * 0: SLUICE_CUT_MAX_SOCKS (48 bytes each). */
#ifndef SLUICE_CUT_MAX_SOCKS
#define SLUICE_CUT_MAX_SOCKS 65536
#endif
void sluice__policy_cut_max_socks(struct sluice *s, unsigned int max_socks);

enum sluice_cut_state {
	SLUICE_CUT_IDLE,    /* no worker, or nothing to do */
	SLUICE_CUT_PENDING, /* asked for; waits for the worker's start or a write */
	SLUICE_CUT_RUNNING,
};

/* Totals since the handle was opened, and the worker's progress. */
struct sluice_policy_cut_totals {
	__u64 flows;           /* conntrack flows removed */
	__u64 socks;           /* sockets destroyed, every network namespace */
	__u64 netns;           /* other network namespaces entered (summed over cuts) */
	__u64 netns_failed;    /* ... where setns() or sock_diag failed */
	__u64 netns_skipped;   /* ... left out: over max_netns or the time budget */
	__u64 scans_truncated; /* cuts whose process walk hit a bound */
	__u64 pids_scanned;    /* processes read by the walks */
	__u64 socks_truncated; /* dumps with more denied sockets than kept */
	__u64 last_netns_us;   /* the last cut's time in the cgroup walk and netns */
	__u32 last_netns;      /* network namespaces the last cut entered */
	int last_err;          /* -errno of the last failed netns (0: none yet) */
	/* the worker (all 0 without one) */
	enum sluice_cut_state state;
	__u64 requests;    /* cuts asked for */
	__u64 runs;        /* runs that completed */
	__u64 restarts;    /* runs ended early by a newer write (run again) */
	__u64 run_us;      /* the run in progress so far (0: none) */
	__u32 run_netns;   /* ... namespaces it entered so far */
	__u64 last_run_us; /* the last completed run, from its start */
	__u64 last_flows, last_socks;
	int last_run_err; /* -errno of the last completed run (0: fine) */
};
void sluice__policy_cut_totals(const struct sluice *s, struct sluice_policy_cut_totals *out);

#endif /* SLUICE_POLICY_H */
