/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sluice_abi.h - the one copy of every layout shared by bpf/ and user/.
 *
 * Contract: map keys and values, flags, counters and drop reasons live here
 * and nowhere else. Changing any layout below bumps SLUICE_LAYOUT_VERSION,
 * which is stamped into the pinned maps so an agent never reuses maps of a
 * different layout. A counter or drop reason appended to an enum is not a
 * layout change: the pinned per-CPU arrays grow at load (pin_grow.c) and
 * keep their counts. All addresses and ports in map keys/values are in
 * network byte order; IPv4 addresses occupy addr[0] with addr[1..3] zero.
 */
#ifndef SLUICE_ABI_H
#define SLUICE_ABI_H

#ifdef __BPF__
/* BPF side: types come from vmlinux.h */
#else
#include <linux/types.h>
#endif

/* 2: Maglev inner tables are BPF_F_MMAPABLE arrays of slot pairs
 *    (written with one memcpy), 32768 services and 327680 backends (was
 *    16384 / 65536). */
/* 3: conntrack split in two LRU maps: `conntrack` holds confirmed flows,
 *    `ct_new` unconfirmed ones; counters ct_confirmed, lb_no_state and
 *    lb_pickup. */
/* 4: Maglev tables sized by need (#16): the inner tables carry
 *    BPF_F_INNER_MAP and any size of the sizing rule below; a table's M is
 *    its own max_entries * 2 - 1. Pins of layout 3 are still used (meshd
 *    accepts them, nothing to migrate): their `maglev` takes only tables of
 *    SLUICE_MAGLEV_M slots without the flag, which the library detects at
 *    open and keeps making (every service at 16381, as before). */
#define SLUICE_LAYOUT_VERSION 4
/* The older layout a meshd of this version still runs on (see 4 above). */
#define SLUICE_LAYOUT_VERSION_FIXED_M 3

/* Maglev table size of pins of layout 3 (every service's, then), and the
 * reference size of the disruption figures. Prime. */
#ifndef SLUICE_MAGLEV_M
#define SLUICE_MAGLEV_M 16381
#endif

/*
 * Table size by need (#16). A service's M is the largest prime that fits
 * in the fewest 4 KiB pages holding SLUICE_MAGLEV_FACTOR slots per backend
 * of its spec (every backend, drained and unhealthy ones too, so draining
 * or a failing probe never resizes), at least one page (M = 1021: a
 * smaller table costs the kernel the same page) and at most 64 pages
 * (M = 65521). An mmapable table costs one page of header plus its slot
 * pages: 8 KiB up to 10 backends. M depends on the backend count alone,
 * so every node (and a restarted agent) builds the same table for the
 * same set, which conntrack-less flows rely on. Factor 100 keeps each
 * backend's share within one slot of ideal (<= 0.1% of traffic at
 * 10 backends); removing 1 of N moves <= 4% of the other backends'
 * slots at every size the rule produces (3.2% measured worst, at 10
 * backends in 1021 slots; 0.6% at M = 16381: tests/unit/test_maglev.c).
 */
#ifndef SLUICE_MAGLEV_FACTOR
#define SLUICE_MAGLEV_FACTOR 100
#endif
#define SLUICE_MAGLEV_PAGE_SLOTS 1024 /* __u32 slots in a 4 KiB page */
#define SLUICE_MAGLEV_PAGES_MAX 64
#define SLUICE_MAGLEV_M_MIN 1021
#define SLUICE_MAGLEV_M_MAX 65521

/* A Maglev table (one inner map per service) holds slot s in element
 * s / 2, id[s % 2]. The kernel rounds array values up to 8 bytes, so with
 * pairs the mmapable map's memory is exactly __u32 slots[M + 1] (the last
 * one unused, 0) and userspace fills a whole table with one memcpy. A
 * table of E elements has M = 2E - 1 slots (M is odd: a prime > 2). */
struct sluice_maglev_pair {
	__u32 id[2]; /* backend ids, never 0 in a used slot */
};
#define SLUICE_MAGLEV_ELEMS ((SLUICE_MAGLEV_M + 1) / 2)
#define SLUICE_MAGLEV_ELEMS_OF(m) (((m) + 1) / 2)
#define SLUICE_MAGLEV_ELEMS_MAX SLUICE_MAGLEV_ELEMS_OF(SLUICE_MAGLEV_M_MAX)

/* Capacity of the service table; also bounds service ids [1, MAX). A
 * service costs its Maglev table (8 KiB up to 10 backends) only while it
 * exists; svc_stats
 * preallocates 32 B per id per CPU (1 MiB per CPU). */
#ifndef SLUICE_MAX_SERVICES
#define SLUICE_MAX_SERVICES 32768
#endif

/* Capacity of the backend table; also bounds backend ids [1, MAX): ten
 * per service at full capacity. backend_stats preallocates 24 B per id
 * per CPU (7.5 MiB per CPU). */
#ifndef SLUICE_MAX_BACKENDS
#define SLUICE_MAX_BACKENDS 327680
#endif

/* Largest backend set of one service: keeps M/n >= 16 so weights still
 * resolve to whole slots. */
#ifndef SLUICE_MAX_SVC_BACKENDS
#define SLUICE_MAX_SVC_BACKENDS 1024
#endif

/* Conntrack LRU size; each flow takes two entries (forward + reply). */
#ifndef SLUICE_CT_MAX
#define SLUICE_CT_MAX 262144
#endif

/* Unconfirmed flows (a SYN or a first datagram nobody answered yet) live
 * in a LRU of their own: a flood of them can only push out other
 * unconfirmed flows, never an established one. */
#ifndef SLUICE_CT_NEW_MAX
#define SLUICE_CT_NEW_MAX 65536
#endif

/* Idle timeouts of unconfirmed entries, shared with meshd's sweep: a
 * handshake that did not finish in 10 s is retried with a new SYN (that
 * balances afresh); a request without answer for 30 s is as good as lost. */
#define SLUICE_CT_NEW_TIMEOUT_TCP_NS (10ULL * 1000000000ULL)
#define SLUICE_CT_NEW_TIMEOUT_UDP_NS (30ULL * 1000000000ULL)

/* Idle timeouts of confirmed flows (bpf/lib/ct.h), shared with `meshctl
 * explain`: kube-proxy's for established TCP; a minute once FIN or RST was
 * seen; Linux conntrack's for a UDP stream. */
#define SLUICE_CT_TIMEOUT_TCP_NS (24ULL * 3600 * 1000000000ULL)
#define SLUICE_CT_TIMEOUT_TCP_CLOSE_NS (60ULL * 1000000000ULL)
#define SLUICE_CT_TIMEOUT_UDP_NS (120ULL * 1000000000ULL)

/* Upper bound of IPv6 extension headers walked before giving up. */
#ifndef SLUICE_IPV6_EXTHDR_MAX
#define SLUICE_IPV6_EXTHDR_MAX 6
#endif

#define SLUICE_AF_INET 4
#define SLUICE_AF_INET6 6

/* services: {VIP, port, proto, family} -> struct sluice_svc */
struct sluice_svc_key {
	__u32 addr[4];
	__u16 port;
	__u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family; /* SLUICE_AF_INET or SLUICE_AF_INET6 */
};

/* A key with port 0 marks "this address is a VIP for proto": fragments to a
 * VIP are dropped (their ports are unknown) instead of passed on. */
#define SLUICE_SVC_F_VIP_MARKER (1u << 0)

/* Client-IP session affinity: a new flow from a client that has a live
 * affinity entry for this service goes to that entry's backend (see
 * struct sluice_affinity_key). Zero in pins of older agents: off. */
#define SLUICE_SVC_F_AFFINITY (1u << 1)

/* Source NAT (externalTrafficPolicy: Cluster): a new flow's client address
 * and port are replaced by the service's own address (the node address of a
 * NodePort) and a port from SLUICE_SNAT_PORT_MIN..MAX, so the backend's
 * answers come back through this node wherever the backend runs. */
#define SLUICE_SVC_F_SNAT (1u << 2)

/* No backend (externalTrafficPolicy: Local on a node without local
 * endpoints): drop new flows, counted as SLUICE_DROP_NO_LOCAL_BACKEND,
 * instead of refusing them with RST/ICMP. */
#define SLUICE_SVC_F_DROP_EMPTY (1u << 3)

/* Only clients inside the service's source ranges (loadBalancerSourceRanges)
 * may open flows; others are dropped as SLUICE_DROP_SOURCE_RANGE. */
#define SLUICE_SVC_F_SOURCE_RANGES (1u << 4)

/* Access policy (#15, bpf/lib/policy.h): look the client up in the
 * service's entries of the `policy` trie on each new flow. */
#define SLUICE_SVC_F_POLICY (1u << 5)
/* The service has an allow list: a client no allow entry matches is
 * denied (reason not_allowed). */
#define SLUICE_SVC_F_POLICY_ALLOWLIST (1u << 6)
/* Denied new flows are refused (TCP RST, ICMP port unreachable) instead of
 * dropped unanswered. Also applies to the node-wide deny list. */
#define SLUICE_SVC_F_POLICY_REFUSE (1u << 7)
/* With SLUICE_SVC_F_SNAT: the SNAT address is the node's of the VIP's
 * family (snat_addr), not the VIP. For addresses that are not the node's
 * own (load-balancer and external IPs): a remote backend's answer to the
 * VIP would not come back through this node. Zero in pins of older
 * agents; an older datapath ignores it (SNAT to the VIP). */
#define SLUICE_SVC_F_SNAT_NODE (1u << 8)
/* With SLUICE_SVC_F_POLICY: the service's policy entries are also in the
 * exact-match hash `policy_hash`, and sluice_svc.policy_lens names the
 * prefix lengths they use there; the datapath makes one hash lookup per
 * length, longest first, instead of the trie walk. Entries of more than
 * SLUICE_POLICY_LENS lengths are expanded to at most that many
 * (sluice_policy__expand()). Zero in pins of older agents (and for a
 * service whose expansion would take too many entries, or find no room):
 * the trie, which always holds every entry unexpanded, decides. */
#define SLUICE_SVC_F_POLICY_HASH (1u << 9)

#define SLUICE_SNAT_PORT_MIN 61000
#define SLUICE_SNAT_PORT_MAX 65535

/*
 * Source NAT state (services with SLUICE_SVC_F_SNAT, and hairpin flows:
 * a client balanced to itself). Two LRU hash maps, layered outside
 * conntrack, which stays keyed by the client's own tuple:
 * snat_fwd: {client, backend} -> the SNAT address:port the flow uses;
 * snat_rev: {backend, SNAT address:port} -> the client, so the backend's
 * answer is un-SNATed before the conntrack reply lookup. A port is owned
 * by the snat_rev entry (inserted with BPF_NOEXIST), so two flows to one
 * backend never share a SNAT tuple.
 */
#ifndef SLUICE_SNAT_MAX
#define SLUICE_SNAT_MAX 65536
#endif

struct sluice_snat_fwd_key {
	__u32 caddr[4]; /* client */
	__u32 baddr[4]; /* backend */
	__u16 cport;
	__u16 bport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

struct sluice_snat_rev_key {
	__u32 baddr[4]; /* backend (the answer's source) */
	__u32 naddr[4]; /* SNAT address (the answer's destination) */
	__u16 bport;
	__u16 nport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

/* snat_addr: ARRAY of 2, SLUICE_SNAT_ADDR_V4 / _V6 -> the node's SNAT
 * address of that family (services with SLUICE_SVC_F_SNAT_NODE); all
 * zero: none set, such services' new flows keep the client's address
 * (counted as SLUICE_CNT_SNAT_NO_ADDR). A map of its own, so pins of
 * older agents gain it at load and no layout changes. */
#define SLUICE_SNAT_ADDR_V4 0
#define SLUICE_SNAT_ADDR_V6 1
#define SLUICE_SNAT_ADDR_MAX 2

struct sluice_snat_addr {
	__u32 addr[4];
};

/* snat_fwd: the SNAT address:port; snat_rev: the client's. */
struct sluice_snat_entry {
	__u32 addr[4];
	__u16 port;
	__u16 pad;
};

struct sluice_svc {
	__u32 svc_id;             /* index into maglev outer map and svc_stats */
	__u16 backend_count;      /* backends with weight > 0; 0 -> refuse */
	__u16 flags;              /* SLUICE_SVC_F_* */
	__u32 affinity_timeout_s; /* SLUICE_SVC_F_AFFINITY: idle timeout, s */
	__u32 policy_lens;        /* SLUICE_SVC_F_POLICY_HASH: byte i (from the
				   * low one) is 1 + the i-th longest prefix
				   * length of the service's policy entries,
				   * 0 after the last (SLUICE_POLICY_LENS);
				   * was `reserved`, always 0 before */
};

/* backends: backend_id -> struct sluice_backend */
enum sluice_backend_state {
	SLUICE_BE_ACTIVE = 0,
	SLUICE_BE_DRAINING = 1,  /* weight 0: no new flows, existing keep going */
	SLUICE_BE_UNHEALTHY = 2, /* failed its active health check: out of the
				  * Maglev table like a drained one */
};

struct sluice_backend {
	__u32 addr[4];
	__u16 port;
	__u8 family;
	__u8 state; /* enum sluice_backend_state */
	__u32 svc_id;
	__u16 weight;
	__u16 reserved;
};

/* backend_addrs: the addresses of the backends, so a packet that is not to
 * a service looks conntrack up (as a reply of a balanced flow) only when
 * its source is one of them: a reply always comes from its backend, SNATed
 * and hairpin flows too. The value counts the `backends` entries with the
 * address (the library keeps it in step); 0 means no backend has it any
 * more but a flow to it may still be live: the entry stays until
 * sluice__backend_addrs_sweep() finds no conntrack reply entry from it. */
struct sluice_backend_addr_key {
	__u32 addr[4]; /* as struct sluice_backend: IPv4 in addr[0], zeros after */
	__u8 family;
	__u8 pad[3];
};
/* Distinct backend addresses: as many as backends, twice over: an update
 * adds the new addresses before the old ones leave, and a removed one
 * lingers while a flow to it may live (a full map of backends replaced
 * by another full map needs both at once). Not preallocated: entries in
 * use cost memory, not the bound. */
#ifndef SLUICE_BACKEND_ADDRS_MAX
#define SLUICE_BACKEND_ADDRS_MAX (2 * SLUICE_MAX_BACKENDS)
#endif

/* backend_addr_bits: the filter the datapath reads, one bit per hash of
 * an address, set for every key of backend_addrs (false positives only
 * cost their packets the conntrack lookups). An array: its lookup is
 * inlined by the verifier, where a hash miss is a helper call (~20 ns).
 * 1 Mbit (128 KiB): ~1% false positives at 10k addresses, 27% at 327k. */
#define SLUICE_ADDR_BITS_WORDS 16384
/* service_addr_bits (#17): the same filter over the services' addresses
 * (every key of `services`, VIP markers included), read before the
 * services lookup, so a packet to no service's address pays a bit test,
 * not a hash miss. A bit is set before the first entry of its address is
 * written; bits are cleared only by a rebuild from the keys after a VIP
 * marker was deleted (the address's last service went). */
static inline __attribute__((always_inline)) __u32 sluice_addr_bit(const __u32 addr[4], __u8 family)
{
	__u32 h = (addr[0] * 0x9e3779b1u) ^ (addr[1] * 0x85ebca77u) ^ (addr[2] * 0xc2b2ae3du) ^
		  (addr[3] * 0x27d4eb2fu) ^ family;

	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	return h & (SLUICE_ADDR_BITS_WORDS * 64 - 1);
}

/* Conntrack. Every flow has two entries in one LRU map (`ct_new` until
 * the backend answered and, for TCP, the client completed the handshake;
 * `conntrack` from then on): the forward entry (client -> VIP, as the
 * client sent it) holds the backend; the reply entry (backend -> client,
 * as the backend sends it) holds the VIP the reply must be rewritten to.
 * Both maps share key and value layouts. */
enum sluice_ct_dir {
	SLUICE_CT_FWD = 0,
	SLUICE_CT_REPLY = 1,
};

struct sluice_ct_key {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u8 dir; /* enum sluice_ct_dir */
	__u8 pad;
};

/* struct sluice_ct_entry.ct_flags */
#define SLUICE_CT_F_FAIL_COUNTED \
	(1u << 0) /* FWD: this flow's failure was
					    * counted against its backend */

struct sluice_ct_entry {
	__u32 addr[4];  /* FWD: backend address; REPLY: VIP */
	__u16 port;     /* FWD: backend port; REPLY: service port */
	__u8 tcp_flags; /* union of TCP flags seen in this direction */
	__u8 ct_flags;  /* SLUICE_CT_F_* (0 in entries of older agents) */
	__u32 backend_id;
	__u32 svc_id;
	__u64 created_ns;   /* bpf_ktime_get_ns() at flow creation */
	__u64 last_seen_ns; /* refreshed at most once a second */
};

/* Per-CPU statistics. svc_stats is indexed by svc_id, backend_stats by
 * backend_id; userspace sums over CPUs. */
struct sluice_svc_stats {
	__u64 packets;
	__u64 bytes;
	__u64 flows;   /* new flows balanced */
	__u64 refused; /* packets answered with RST / ICMP unreachable */
};

struct sluice_backend_stats {
	__u64 packets;
	__u64 bytes;
	__u64 flows;
};

/* sk_origin (socket storage): what a TCP connect() through the socket LB
 * asked for and where it was sent. One backend address:port can serve
 * several services (two Kubernetes Services over the same pods); this is
 * how telemetry credits the one whose VIP the client used. */
struct sluice_sk_origin {
	__u32 vip[4];  /* what the client connected to */
	__u32 addr[4]; /* the backend it was sent to */
	__u16 vip_port;
	__u16 port;
	__u32 svc_id;
	__u32 backend_id;
	__u8 family;
	__u8 hflags; /* SLUICE_SKO_F_*, the socket LB's health sockops */
	__u8 pad[2];
};

/* struct sluice_sk_origin.hflags: this connect()'s failure was counted
 * against backend_id already (an RTO in SYN_SENT; the close that follows
 * is the same failure). Cleared when the socket connects again. */
#define SLUICE_SKO_F_FAIL_COUNTED (1u << 0)

/*
 * Passive outlier detection (resilient backends). The kernel counts
 * connection failures per backend id, ejects a backend at the service's
 * threshold of consecutive failures, and every new-flow pick (XDP, tc,
 * socket LB) skips ejected backends; existing flows are left alone. All
 * of it is decided in BPF; meshd only configures it and reads events.
 */

/* backend_health: ARRAY indexed by backend id. Written by BPF; userspace
 * zeroes an id's entry when it gives the id to a backend, and reads it. */
#define SLUICE_BH_F_EJECTED (1u << 0) /* counted in svc_health.ejected */

struct sluice_backend_health {
	__u64 ejected_until_ns; /* bpf_ktime_get_ns() when the ejection ends;
				 * from then on the backend is on probation:
				 * one success restores it, one failure
				 * ejects it again */
	__u64 last_fail_ns;     /* 0: never failed */
	__u32 fails;            /* consecutive failures; a success zeroes it */
	__u16 ejections;        /* ejections in a row, the backoff multiplier;
				 * zeroed by a success more than max_ms after
				 * the last failure */
	__u8 reason;            /* enum sluice_health_reason of the last failure */
	__u8 flags;             /* SLUICE_BH_F_* */
};

/* svc_health: ARRAY indexed by service id. Userspace writes the config
 * (with `ejected` recounted from backend_health) whenever it writes the
 * service; BPF changes `ejected` only, atomically. threshold 0: passive
 * outlier detection off for the service (nothing is ejected and picks
 * ignore health). */
struct sluice_svc_health {
	__u32 ejected;        /* backends of the service ejected now */
	__u16 backends;       /* backends with weight > 0 (as backend_count) */
	__u8 threshold;       /* consecutive failures that eject; 0 = off */
	__u8 max_ejected_pct; /* at most this % of backends ejected (>= 1) */
	__u8 panic_pct;       /* healthy below this %: ignore health */
	__u8 pad[3];
	__u32 base_ms; /* ejection time = base_ms x ejections ... */
	__u32 max_ms;  /* ... capped here */
};

/* Defaults (Envoy's outlier detection where it has one). */
#define SLUICE_OUTLIER_THRESHOLD_DEFAULT 3
#define SLUICE_OUTLIER_BASE_MS_DEFAULT 30000
#define SLUICE_OUTLIER_MAX_MS_DEFAULT 300000
#define SLUICE_OUTLIER_MAX_EJECTED_PCT_DEFAULT 50
#define SLUICE_OUTLIER_PANIC_PCT_DEFAULT 50

/* Why a connection attempt counted as a failure (label "reason"). */
#define SLUICE_HEALTH_REASONS(X)                                                           \
	X(NONE, "none", "no failure")                                                      \
	X(RST, "rst", "packet path: the backend answered a SYN with RST")                  \
	X(SYN_TIMEOUT, "syn_timeout",                                                      \
	  "packet path: the client sent its SYN again, the first was not answered")        \
	X(SOCK_REFUSED, "sock_refused", "socket LB: connect() ended in RST")               \
	X(SOCK_TIMEOUT, "sock_timeout", "socket LB: connect()'s SYN timed out (RTO)")      \
	X(SOCK_ERROR, "sock_error", "socket LB: connect() failed otherwise (ICMP, abort)") \
	X(PROBE, "probe", "active health check failed (meshd)")

enum sluice_health_reason {
#define X(name, str, help) SLUICE_HEALTH_R_##name,
	SLUICE_HEALTH_REASONS(X)
#undef X
	SLUICE_HEALTH_R__MAX
};

/* health_events ring buffer records. */
enum sluice_health_event_kind {
	SLUICE_HEALTH_EV_EJECTED = 1,     /* threshold reached: ejected */
	SLUICE_HEALTH_EV_REEJECTED = 2,   /* failed on probation: ejected again */
	SLUICE_HEALTH_EV_RESTORED = 3,    /* succeeded on probation: back */
	SLUICE_HEALTH_EV_MAX_EJECTED = 4, /* threshold reached, not ejected:
					   * max_ejected_pct reached */
};

struct sluice_health_event {
	__u64 ts_ns;            /* bpf_ktime_get_ns() */
	__u64 ejected_until_ns; /* EJECTED/REEJECTED */
	__u32 svc_id;
	__u32 backend_id;
	__u32 fails;
	__u16 ejections;
	__u8 kind;   /* enum sluice_health_event_kind */
	__u8 reason; /* enum sluice_health_reason of the last failure */
};

#ifndef SLUICE_HEALTH_EVENTS_BYTES
#define SLUICE_HEALTH_EVENTS_BYTES (64 * 1024)
#endif

/* Health and affinity counters: a per-CPU array of their own
 * (health_counters), so the pinned `counters` map keeps its size. */
#define SLUICE_HEALTH_COUNTERS(X)                                                         \
	X(FAIL, "health_fail", "connection attempt counted as a backend failure")         \
	X(SUCCESS, "health_success", "connection attempt counted as a success")           \
	X(EJECT, "health_eject", "backend ejected (or ejected again) by the kernel")      \
	X(RESTORE, "health_restore", "ejected backend restored by a success")             \
	X(MAX_EJECTED, "health_max_ejected",                                              \
	  "threshold reached but the service's max-ejected share is used up")             \
	X(FALLBACK, "lb_eject_fallback",                                                  \
	  "new flow's pick was ejected: moved to the next healthy backend")               \
	X(PANIC, "lb_panic",                                                              \
	  "new flow's pick was ejected but too few are healthy: health ignored")          \
	X(EVENT_LOST, "health_event_lost", "health event not written: ring full")         \
	X(AFFINITY_HIT, "affinity_hit", "new flow sent to its client's affinity backend") \
	X(AFFINITY_BROKEN, "affinity_broken",                                             \
	  "affinity entry named a backend gone, drained or ejected: picked afresh")

enum sluice_health_counter {
#define X(name, str, help) SLUICE_HCNT_##name,
	SLUICE_HEALTH_COUNTERS(X)
#undef X
	SLUICE_HCNT__MAX
};

/*
 * affinity: LRU hash, client -> backend for services with
 * SLUICE_SVC_F_AFFINITY. On the packet path the client is its source
 * address; on the socket path (no source address at connect()) it is the
 * client's network namespace (kind SLUICE_AFF_NETNS, cookie in addr[0..1]),
 * as Cilium's socket LB does.
 */
#define SLUICE_AFF_ADDR 0
#define SLUICE_AFF_NETNS 1

#ifndef SLUICE_AFFINITY_MAX
#define SLUICE_AFFINITY_MAX 65536
#endif

struct sluice_affinity_key {
	__u32 addr[4];
	__u32 svc_id;
	__u8 family; /* of addr; 0 for SLUICE_AFF_NETNS */
	__u8 kind;   /* SLUICE_AFF_* */
	__u16 pad;
};

struct sluice_affinity {
	__u64 last_seen_ns; /* coarse clock, refreshed at most once a second */
	__u32 backend_id;
	__u32 pad;
};

/*
 * src_ranges: LPM trie of the source ranges (loadBalancerSourceRanges) of
 * services with SLUICE_SVC_F_SOURCE_RANGES. The key is the service id
 * followed by the client address, so one longest-prefix lookup with
 * prefixlen 32 + 128 answers "is this client inside one of service X's
 * ranges"; an entry's prefixlen is 32 (the id) + the range's prefix
 * length. The family is the VIP's (a service has one), so it is not part
 * of the key: IPv4 ranges sit in addr[0] (network order), prefix 0-32.
 * The value is unused (1).
 */
#ifndef SLUICE_SRC_RANGES_MAX
#define SLUICE_SRC_RANGES_MAX 65536 /* entries, all services together */
#endif
#define SLUICE_SRC_RANGES_PER_SVC 64 /* ranges of one service */

struct sluice_src_range_key {
	__u32 prefixlen; /* 32 + the range's prefix length */
	__u32 svc_id;    /* host order: its 32 bits always match whole */
	__u32 addr[4];
};

/*
 * Access policy (#15). Two LPM tries with one key layout:
 * policy:      {svc_id, client prefix} of services with SLUICE_SVC_F_POLICY;
 * policy_node: {family, client prefix}, the node-wide deny list checked
 *              for every service (id is SLUICE_AF_INET / SLUICE_AF_INET6),
 *              its prefixes shorter than a host;
 * policy_nhost: a hash with the same key, the node list's host entries
 *              (/32, /128: prefixlen 64 with id SLUICE_AF_INET, 160 with
 *              SLUICE_AF_INET6), looked up first: one exact match instead
 *              of a trie walk for the common case of long lists of hosts;
 *              and, for a family whose shorter node prefixes use at most
 *              SLUICE_POLICY_LENS lengths, a copy of those too, looked up
 *              once per length (policy_nlens) instead of the trie;
 * policy_hash: a hash with the same key, the `policy` entries of the
 *              services with SLUICE_SVC_F_POLICY_HASH, in at most
 *              SLUICE_POLICY_LENS prefix lengths (a copy, or, for a
 *              service using more lengths, each prefix expanded to the
 *              next longer length kept: sluice_policy__expand()): the
 *              datapath masks the client address to each length of
 *              sluice_svc.policy_lens, longest first, and the first hit is
 *              the longest match the trie would give. The trie keeps every
 *              service's entries (the fallback, older agents, explain).
 * Each is looked up once per new flow (policy_hash once per length, the
 * client address masked to it); the value of the longest match holds the verdict for every client port, as
 * userspace compiled it from the rules: deny wins over allow, so an allow
 * prefix nested in a deny prefix carries the deny, and a rule with a port
 * range turns into a per-port exception of its prefix (at most
 * SLUICE_POLICY_PORTS ranges per prefix). IPv4 prefixes sit in addr[0].
 */
#ifndef SLUICE_POLICY_MAX
#define SLUICE_POLICY_MAX 262144 /* policy trie entries, all services */
#endif
#ifndef SLUICE_POLICY_NODE_MAX
#define SLUICE_POLICY_NODE_MAX 262144 /* policy_node trie entries */
#endif
#define SLUICE_POLICY_PER_SVC 1024      /* allowFrom + denyFrom rules of one service */
#define SLUICE_POLICY_NODE_RULES 131072 /* node-wide deny rules */
#define SLUICE_POLICY_PORTS 4           /* port ranges carried by one prefix */
#define SLUICE_POLICY_LENS 4            /* prefix lengths of one service looked up in policy_hash */

enum sluice_policy_verdict {
	SLUICE_POL_NONE = 0,  /* no rule: allowed unless the service has an allow list */
	SLUICE_POL_ALLOW = 1, /* an allow rule matches (and no deny rule) */
	SLUICE_POL_DENY = 2,  /* a deny rule matches */
};

struct sluice_policy_key {
	__u32 prefixlen; /* 32 + the rule's prefix length */
	__u32 id;        /* host order: svc_id (policy) or SLUICE_AF_* (policy_node) */
	__u32 addr[4];
};

struct sluice_policy_port {
	__u16 lo, hi; /* client port range, host order, inclusive */
	__u8 verdict; /* enum sluice_policy_verdict for ports inside */
	__u8 pad[3];
};

struct sluice_policy_val {
	__u8 verdict; /* enum sluice_policy_verdict for ports outside every range */
	__u8 nports;  /* used entries of port[] */
	/* policy_hash only: 1 + the length of the service's prefix this
	 * entry was expanded from (sluice_policy__expand()), 0 when the key
	 * is that prefix itself; what `meshctl explain` names. The datapath
	 * does not read it. */
	__u8 from_len;
	__u8 pad;
	struct sluice_policy_port port[SLUICE_POLICY_PORTS];
};

/* Why a new flow was denied: the label "reason" of the policy metrics and
 * the index into struct sluice_policy_stats. */
#define SLUICE_POLICY_REASONS(X)                                                                \
	X(DENY_LIST, "deny_list", "the client matches the service's denyFrom")                  \
	X(NOT_ALLOWED, "not_allowed", "the service has an allowFrom list the client is not in") \
	X(NODE_DENY, "node_deny", "the client matches the node-wide deny list")

enum sluice_policy_reason {
#define X(name, str, help) SLUICE_POLICY_R_##name,
	SLUICE_POLICY_REASONS(X)
#undef X
	SLUICE_POLICY_R__MAX
};

/* policy_cfg: one-element array written with the node list: prefixes of
 * each family in policy_node ([0] IPv4, [1] IPv6), so the socket LB knows
 * without a trie walk whether the node list can concern a connect(). */
struct sluice_policy_cfg {
	__u32 node_prefixes[2];
};

/* policy_nlens: one-element array written with the node list. Per family
 * ([0] IPv4, [1] IPv6), lens[f] non-zero when every prefix of the family
 * shorter than a host is also in policy_nhost (keyed like the trie, the
 * address masked to it), which holds when they use at most
 * SLUICE_POLICY_LENS lengths; it names those lengths as
 * sluice_svc.policy_lens does (byte i: 1 + the i-th longest, 0 after the
 * last). The datapath masks the client address to each and looks
 * policy_nhost up instead of walking the trie policy_node. 0 (more
 * lengths, hosts only, the copies being changed, or a meshd from before
 * this map: it reads as zeros): the trie decides. One aligned word per
 * family, so a reader never sees half of a change. The trie always holds
 * every shorter prefix. */
struct sluice_policy_nlens {
	__u32 lens[2];
};

/* policy_stats: per-CPU array indexed by svc_id, new flows denied. */
struct sluice_policy_stats {
	__u64 denied[SLUICE_POLICY_R__MAX];
};

/* Global per-CPU counters, indexed by enum sluice_counter. */
#define SLUICE_COUNTERS(X)                                                                         \
	X(PASS, "pass", "not service traffic, passed unchanged")                                   \
	X(LB_NEW, "lb_new", "new flow balanced to a backend")                                      \
	X(LB_EST, "lb_established", "packet of an existing flow DNATed")                           \
	X(REVNAT, "revnat", "reply rewritten to come from the VIP")                                \
	X(REFUSED, "refused", "service without backends: RST/ICMP sent")                           \
	X(FIB_REDIRECT, "fib_redirect", "forwarded by FIB lookup + redirect")                      \
	X(FIB_PASS, "fib_pass", "handed to the kernel to forward")                                 \
	X(CT_CONFIRMED, "ct_confirmed",                                                            \
	  "flow confirmed (handshake completed or UDP answered): moved to conntrack")              \
	X(LB_NO_STATE, "lb_no_state",                                                              \
	  "TCP RST or SYN|ACK without conntrack entry: DNAT to the Maglev pick, no state kept")    \
	X(LB_PICKUP, "lb_pickup",                                                                  \
	  "TCP ACK or data of an unknown flow: DNAT to the Maglev pick, tracked unconfirmed")      \
	X(SNAT_NO_ADDR, "snat_no_address",                                                         \
	  "new flow of a service source-NATed to the node address, none set: client kept")         \
	X(FWD_NOT_CAPABLE, "fwd_not_capable",                                                      \
	  "XDP: handed to the kernel, the egress device cannot take XDP frames (not in fwd_devs)") \
	X(CSUM_PARTIAL, "csum_partial",                                                            \
	  "XDP: NATed packet with a partial L4 checksum (sender's TX offload): seed updated")

enum sluice_counter {
#define X(name, str, help) SLUICE_CNT_##name,
	SLUICE_COUNTERS(X)
#undef X
	SLUICE_CNT__MAX
};

/* Drop reasons, indexed into the per-CPU drops map. Each is also the
 * "reason" label of the drop metric. */
#define SLUICE_DROP_REASONS(X)                                                                    \
	X(NONE, "none", "not a drop")                                                             \
	X(TRUNC_ETH, "truncated_ethernet", "frame shorter than an Ethernet header")               \
	X(TRUNC_IPV4, "truncated_ipv4", "frame shorter than the IPv4 header")                     \
	X(BAD_IHL, "bad_ipv4_ihl", "IPv4 ihl below 5 or beyond the frame")                        \
	X(BAD_IPV4_LEN, "bad_ipv4_length", "IPv4 tot_len beyond the frame or below the header")   \
	X(TRUNC_IPV6, "truncated_ipv6", "frame shorter than the IPv6 header")                     \
	X(BAD_IPV6_LEN, "bad_ipv6_length", "IPv6 payload_len beyond the frame")                   \
	X(IPV6_EXTHDR, "ipv6_exthdr",                                                             \
	  "IPv6 extension headers truncated or beyond the parse bound")                           \
	X(TRUNC_TCP, "truncated_tcp", "TCP header truncated or doff < 5")                         \
	X(TRUNC_UDP, "truncated_udp", "UDP header truncated")                                     \
	X(FRAGMENT, "fragment", "IP fragment addressed to a VIP")                                 \
	X(BAD_TCP_FLAGS, "bad_tcp_flags", "TCP to a service with no flags or SYN+FIN")            \
	X(NO_BACKEND, "no_backend", "Maglev slot names a backend that is gone")                   \
	X(REFUSE_FAILED, "refuse_failed", "could not build the RST/ICMP refusal")                 \
	X(NO_LOCAL_BACKEND, "no_local_backend",                                                   \
	  "new flow to a service that drops when empty (traffic policy Local)")                   \
	X(SNAT_PORTS_EXHAUSTED, "snat_ports_exhausted", "no free source-NAT port for a new flow") \
	X(SOURCE_RANGE, "source_range", "client outside the service's source ranges")             \
	X(POLICY_DENY, "policy_deny", "new flow denied by the service's denyFrom")                \
	X(POLICY_NOT_ALLOWED, "policy_not_allowed", "new flow from a client not in allowFrom")    \
	X(POLICY_NODE_DENY, "policy_node_deny", "new flow denied by the node-wide deny list")

enum sluice_drop_reason {
#define X(name, str, help) SLUICE_DROP_##name,
	SLUICE_DROP_REASONS(X)
#undef X
	SLUICE_DROP__MAX
};

/* Load-time knobs (rodata `sluice_cfg`), bit flags. */
#define SLUICE_CFG_FIB_FORWARD (1u << 0) /* XDP: redirect to any egress, fwd_devs or not */
#define SLUICE_CFG_FWD_OFF (1u << 1)     /* XDP and tc: no FIB lookup, the kernel forwards */
/* Neither: XDP redirects to the egress devices listed in fwd_devs, tc to any. */

/* fwd_devs: DEVMAP_HASH of the egress devices that can take redirected XDP
 * frames, ifindex -> ifindex (struct bpf_devmap_val without a program). */
#ifndef SLUICE_FWD_DEVS_MAX
#define SLUICE_FWD_DEVS_MAX 4096
#endif

#endif /* SLUICE_ABI_H */
