/* SPDX-License-Identifier: MIT */
/*
 * sluice.h - the userspace library under meshd, meshctl, tests and tools.
 *
 * Contract: sluice__open() loads the datapath object (build/lb.skel.h) and,
 * when a pin directory is given, pins its maps there or reuses maps already
 * pinned there (so a restarted agent keeps conntrack). Service updates are
 * validated completely before any map is written and are atomic from a
 * packet's point of view: a new Maglev table is built in a fresh inner map
 * and swapped in with one update of the outer map. Functions return 0 or a
 * negative errno; on error, sluice__errmsg() says what was wrong, naming the
 * field and value.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include <sys/types.h>

#include "sluice_abi.h"

/* Release of meshd, meshctl and the library (one copy for all). */
#define SLUICE_VERSION "0.1.0"

struct sluice;

/* An address of either family; IPv4 lives in addr[0] (network order). */
struct sluice_addr {
	__u8 family; /* SLUICE_AF_INET or SLUICE_AF_INET6 */
	__u32 addr[4];
};

struct sluice_opts {
	const char *pin_dir; /* NULL: nothing pinned (tests) */
	__u32 cfg;           /* SLUICE_CFG_* rodata knobs */
	/* #16: with pin_dir, take the programs sluice__progs_save() pinned
	 * there instead of loading them, when they are exactly the ones this
	 * open would load (see sluice__progs_reused()) */
	bool reuse_progs;
	const char *build_id; /* the caller's version: part of what must match */
};

enum sluice_prog {
	SLUICE_PROG_XDP,
	SLUICE_PROG_TC,
};

struct sluice_backend_spec {
	struct sluice_addr addr;
	__u16 port;   /* host order */
	__u16 weight; /* 0 = draining: no new flows, existing flows keep it */
	/* Failed its active health check (meshd): out of the Maglev table like
	 * a drained backend, state SLUICE_BE_UNHEALTHY, weight kept as given. */
	bool unhealthy;
};

/* Passive outlier detection of one service (#14); every 0 means the
 * default (SLUICE_OUTLIER_*_DEFAULT in sluice_abi.h). Written to the
 * kernel's svc_health entry with the service. */
struct sluice_outlier_spec {
	bool disabled;             /* off for this service */
	__u8 consecutive_failures; /* that eject a backend */
	__u8 max_ejected_pct;      /* 1-100 */
	__u8 panic_pct;            /* 1-100; SLUICE_OUTLIER_PANIC_NEVER: never */
	__u32 base_ejection_ms;    /* first ejection; then x ejections in a row */
	__u32 max_ejection_ms;     /* cap of the ejection time */
};
#define SLUICE_OUTLIER_PANIC_NEVER 255 /* spec only: kernel panic_pct 0 */

/* A source range: the address has no host bits, prefixlen is 0-32 for
 * IPv4 and 0-128 for IPv6 (sluice_cidr__parse() makes one). */
struct sluice_cidr {
	struct sluice_addr addr;
	__u8 prefixlen;
};

/* An access rule (#15): clients inside cidr, from a client port in
 * port_lo-port_hi (host order; 0-65535: any port). */
struct sluice_policy_rule {
	struct sluice_cidr cidr;
	__u16 port_lo, port_hi;
};

struct sluice_service_spec {
	struct sluice_addr vip;
	__u16 port; /* host order */
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u32 nbackends;
	const struct sluice_backend_spec *backends;
	struct sluice_outlier_spec outlier;
	__u32 affinity_timeout_s; /* client-IP session affinity; 0 = off,
				   * else 1-SLUICE_AFFINITY_TIMEOUT_MAX s */
	/* Source ranges (#13): 0: every client; else only clients inside one
	 * of them open flows on the XDP/tc path (SLUICE_SVC_F_SOURCE_RANGES),
	 * at most SLUICE_SRC_RANGES_PER_SVC, each of the VIP's family. */
	__u32 nsrc_ranges;
	const struct sluice_cidr *src_ranges;
	/* Access policy (#15, policy.c): deny wins; an allow list denies
	 * every client it does not name; none: everyone. At most
	 * SLUICE_POLICY_PER_SVC rules together, of the VIP's family. */
	__u32 nallow, ndeny;
	const struct sluice_policy_rule *allow, *deny;
	bool policy_refuse; /* denied: RST / ICMP unreachable, not a drop */
	bool snat;          /* SLUICE_SVC_F_SNAT: source NAT to the VIP */
	bool snat_node;     /* with snat: to the node's address instead
			     * (SLUICE_SVC_F_SNAT_NODE, sluice__snat_addr_set()) */
	bool drop_empty;    /* SLUICE_SVC_F_DROP_EMPTY: no backend drops, no refusal */
};
#define SLUICE_AFFINITY_TIMEOUT_MAX 86400     /* one day, as Kubernetes */
#define SLUICE_AFFINITY_TIMEOUT_DEFAULT 10800 /* 3 h, kube-proxy's default */

struct sluice_service_info {
	struct sluice_svc_key key;
	struct sluice_svc svc;
	struct sluice_svc_stats stats; /* summed over CPUs */
	__u32 nbackends;
	__u32 backend_ids[SLUICE_MAX_SVC_BACKENDS];
};

/* The size M of svc_id's Maglev table (#16: sized by need), 0 when it has
 * none or it is not known without reading the outer map. Remembered by
 * the handle after the first call per table. */
__u32 sluice__table_size(struct sluice *s, __u32 svc_id);

/* Loading and pinning */
int sluice__open(struct sluice **out, const struct sluice_opts *opts);
void sluice__close(struct sluice *s);
/* Remove every pin under pin_dir that sluice__open() created, then the dir. */
int sluice__unpin(const char *pin_dir);
int sluice__prog_fd(const struct sluice *s, enum sluice_prog prog);
/* Whether the open reused pinned programs (true) or loaded them, and why
 * (one line, never NULL). */
bool sluice__progs_reused(const struct sluice *s, const char **why);
/* Pin the loaded programs in the pin dir with the record of what they
 * were loaded from, replacing the earlier ones: call it once they are
 * attached. Nothing to do after a reuse. */
int sluice__progs_save(struct sluice *s);
/* fd of a datapath map by its BPF name ("services", "conntrack", ...) */
int sluice__map_fd(const struct sluice *s, const char *name);
/* mkdir -p with mode for every directory it creates; the error text names
 * the directory that could not be created. */
int sluice__mkdir_p(const char *dir, mode_t mode);
/* "dir/name" into buf; -ENAMETOOLONG, with the error text naming the
 * path, when it does not fit in len. */
int sluice__path_join(char *buf, size_t len, const char *dir, const char *name);
/* Last error text of this thread ("" when none). */
const char *sluice__errmsg(void);
/* Record this thread's error text, for code layered on the library (the
 * agent) that reports through sluice__errmsg() too. */
void sluice__set_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Walk every element of a map (batched where the kernel can). fn returning
 * non-zero stops the walk and is returned; name only goes into errors. */
typedef int (*sluice_map_walk_fn)(const void *key, const void *value, void *ctx);
int sluice__map_walk(int fd, const char *name, size_t key_size, size_t value_size,
		     sluice_map_walk_fn fn, void *ctx);
/* Set the error text for a failed operation on map `name`; returns err. */
int sluice__map_err(int err, const char *name, const char *op, const char *what);

/* Attachment (netlink-based: it outlives the calling process).
 * xdp_flags: XDP_FLAGS_DRV_MODE / XDP_FLAGS_SKB_MODE (0 = kernel's choice). */
int sluice__attach_xdp(struct sluice *s, int ifindex, __u32 xdp_flags);
int sluice__detach_xdp(int ifindex, __u32 xdp_flags);
int sluice__attach_tc(struct sluice *s, int ifindex);
/* The tc ingress slot Sluice's filter occupies (clsact, handle/priority). */
#define SLUICE_TC_HANDLE 1
#define SLUICE_TC_PRIO 1
int sluice__detach_tc(int ifindex);

/* Services. service_set creates the service or replaces its backend set
 * (backends kept by address keep their id, so conntrack and stats follow
 * them). Validation failures return -EINVAL and leave every map unchanged. */
int sluice__service_set(struct sluice *s, const struct sluice_service_spec *spec);
/* Sets n services in one pass: the maps are read once and the services
 * are written in groups of up to SLUICE_SET_GROUP, one map-in-map update
 * (one RCU grace period, ~8 ms) per group instead of per service, and that
 * wait overlaps the next group's writes (a thread of the call's own): 10k
 * services take seconds, not minutes. Every spec is validated before
 * anything is written (-EINVAL, maps unchanged) and no service may be
 * given twice. Each group is all-or-nothing: on error the first *applied
 * specs are live (undo them to get all-or-nothing for the whole call), the
 * others are as they were, and *failed is the index of the spec the error
 * is about. applied and failed may be NULL; on success *applied == n. */
#define SLUICE_SET_GROUP 256
int sluice__service_set_many(struct sluice *s, const struct sluice_service_spec *specs, __u32 n,
			     __u32 *applied, __u32 *failed);
/* A change of an existing service writes only the Maglev slots that
 * differ, in place (no RCU grace period); a new table is swapped in only
 * when the service gets its first active backend (or its table is not
 * this library's). Backends that left a set stay in the backends map,
 * unused by any slot, until sluice__flush_deferred() deletes them after
 * an RCU grace period (it blocks for one, ~10-20 ms): a packet that read
 * the old slot may still be on its way. Call it when idle (meshd: after
 * 20 ms without changes, at least every second); sluice__close() does.
 * Their ids are not reused before. Returns how many were deleted. */
int sluice__flush_deferred(struct sluice *s);
__u32 sluice__deferred_count(const struct sluice *s);
int sluice__service_del(struct sluice *s, const struct sluice_addr *vip, __u16 port, __u8 proto);
/* Deletes n services in one pass: every entry first (then no packet
 * reaches them), then, best effort, their Maglev tables (replaced by one
 * shared empty table in one batch update: one RCU grace period, where
 * deleting the slots would cost one each), backends (one walk of the
 * backends map) and unused VIP markers; what is left in a slot or after a
 * failed clean-up is overwritten or collected when the service id is used
 * again. Services that do not exist are skipped. An invalid ref is
 * -EINVAL with nothing deleted; on a failed entry delete *done (may be
 * NULL) is the index of the ref that failed: refs before it are gone,
 * the others untouched. */
struct sluice_service_ref {
	struct sluice_addr vip;
	__u16 port;
	__u8 proto;
};
int sluice__service_del_many(struct sluice *s, const struct sluice_service_ref *refs, __u32 n,
			     __u32 *done);
/* Entries no service explains, left by an update that was interrupted
 * (a writer killed between its backends, tables and service entries):
 * sluice__sweep() deletes backends whose service id no service carries,
 * empties Maglev tables of such ids that still name backends (one batch,
 * one RCU grace period) and deletes VIP markers of addresses without a
 * service. Touches nothing a live service refers to; for the one writer
 * (meshd runs it at start, after its reconcile). Counts what it removed. */
struct sluice_sweep {
	__u32 backends, tables, markers;
	bool tables_skipped; /* kernel < 6.7: slot reads too slow (svc_sweep.c) */
};
int sluice__sweep(struct sluice *s, struct sluice_sweep *out);
/* The reply filter (#17, backend_addrs): an address no backend has any
 * more stays while a flow to it may be live; this deletes those that no
 * conntrack or ct_new entry names (walks both only when there are any).
 * For the one writer (meshd, on its check tick). */
int sluice__backend_addrs_sweep(struct sluice *s, __u32 *removed);
/* The filter's count of backends with address a (*present: in the map). */
__u32 sluice__backend_addr_refs(struct sluice *s, const struct sluice_addr *a, bool *present);
int sluice__service_get(struct sluice *s, const struct sluice_addr *vip, __u16 port, __u8 proto,
			struct sluice_service_info *info);
/* service_get walks the backends map for each call; a listing of many
 * services reads it once into an index (a snapshot: build it right before
 * the listing) and gets each service with service_get_ix. */
struct sluice_be_index;
int sluice__be_index(struct sluice *s, struct sluice_be_index **out);
void sluice__be_index_free(struct sluice_be_index *ix);
int sluice__service_get_ix(struct sluice *s, const struct sluice_be_index *ix,
			   const struct sluice_addr *vip, __u16 port, __u8 proto,
			   struct sluice_service_info *info);

/* The entries of the services map (#16: `meshctl status` at 10k services
 * walked it twice per call): *services the services (each holds a Maglev
 * table slot), *markers the VIP markers. From counts this handle keeps in
 * step with its own writes, after one walk of the map the first time; a
 * change made through another handle is not seen (meshd is the one
 * writer). *backends (may be NULL): the entries of `backends`, from the
 * handle's index once it has one (its first planned change), else one
 * walk; backends waiting for a deferred delete included. */
int sluice__map_entries(struct sluice *s, __u64 *services, __u64 *markers, __u64 *backends);

/* The kernel memory of the datapath's maps (#16), bpftool's "memlock":
 * every map of the object plus each service's Maglev table found through
 * maglev_ids (tables an older version made without an entry there are
 * not counted), each the size of the first (one shape for all). */
struct sluice_kmem {
	__u64 bytes; /* everything below */
	__u32 maps;
	__u64 maglev_bytes; /* of which: the per-service Maglev tables */
	__u32 maglev_tables;
};
int sluice__kernel_memory(struct sluice *s, struct sluice_kmem *out);

/* Counters, summed over CPUs. */
int sluice__counters(struct sluice *s, __u64 out[SLUICE_CNT__MAX]);
/* The node's source-NAT address of @family for services with snat_node
 * (snat.c); @addr NULL clears it. get: -ENOENT when none is set. */
int sluice__snat_addr_set(struct sluice *s, __u8 family, const struct sluice_addr *addr);
int sluice__snat_addr_get(struct sluice *s, __u8 family, struct sluice_addr *out);
int sluice__drops(struct sluice *s, __u64 out[SLUICE_DROP__MAX]);
/* Egress devices XDP redirects to in auto mode (fwd.c, map fwd_devs):
 * set adds (@on) or removes one ifindex of the caller's namespace; has
 * returns 1/0; count the number of entries. */
int sluice__fwd_dev_set(struct sluice *s, int ifindex, bool on);
int sluice__fwd_dev_has(struct sluice *s, int ifindex);
int sluice__fwd_dev_count(struct sluice *s);
int sluice__backend_get(struct sluice *s, __u32 backend_id, struct sluice_backend *be,
			struct sluice_backend_stats *stats);
/* Number of conntrack entries (both directions): confirmed flows in
 * "conntrack", unconfirmed ones in "ct_new". */
int sluice__ct_count(struct sluice *s, __u64 *count);
int sluice__ct_new_count(struct sluice *s, __u64 *count);
/* Client-IP session affinity entries (all services, both kinds). */
int sluice__affinity_count(struct sluice *s, __u64 *count);

/*
 * Passive outlier detection (#14). The kernel ejects and restores
 * backends; the library writes each service's svc_health entry with the
 * service (service_set/set_many), zeroes backend_health[id] when it gives
 * an id to a new backend, and reads both for listings.
 */
/* Node-wide switch (meshd --no-outlier-detection): off writes threshold 0
 * for every service the library writes from then on, and clears their
 * ejections. On by default. */
void sluice__set_outlier_detection(struct sluice *s, bool on);
bool sluice__outlier_detection(const struct sluice *s);
/* The svc_health configuration a spec means: defaults for 0 fields,
 * threshold 0 when disabled or node_off, panic NEVER -> 0; `ejected` and
 * `backends` are left 0. */
void sluice_outlier__to_kernel(const struct sluice_outlier_spec *o, bool node_off,
			       struct sluice_svc_health *out);
/* The spec an entry was written from, in canonical form (0 for every
 * field at its default; disabled: the other fields 0). An entry never
 * written (all zero: an older agent) reads as disabled. */
void sluice_outlier__from_kernel(const struct sluice_svc_health *h,
				 struct sluice_outlier_spec *out);
/* Whether two specs configure the kernel the same way (0 == default). */
bool sluice_outlier__same(const struct sluice_outlier_spec *a, const struct sluice_outlier_spec *b);
/* Writes svc_health for n services at once (meshd at start: services the
 * reconcile found unchanged have no entry after an upgrade): for each
 * existing service, its config from o[i], `backends` and `ejected`
 * recounted from the maps. Services that do not exist are skipped;
 * *written (may be NULL) counts the entries written. */
int sluice__outlier_sync(struct sluice *s, const struct sluice_service_ref *refs,
			 const struct sluice_outlier_spec *o, __u32 n, __u32 *written);

/* What listings show per backend. */
enum sluice_be_health {
	SLUICE_BEH_HEALTHY = 0,
	SLUICE_BEH_EJECTED,   /* ejected by the kernel, until ejected_until_ms */
	SLUICE_BEH_PROBATION, /* ejection over: the next attempt decides */
	SLUICE_BEH_UNHEALTHY, /* failed its active health check */
	SLUICE_BEH_DRAINING,  /* weight 0: no new flows */
	SLUICE_BEH__MAX,
};
const char *sluice_be_health__str(enum sluice_be_health h); /* "healthy", ... */
struct sluice_backend_health_view {
	__u8 state;  /* enum sluice_be_health */
	__u8 reason; /* enum sluice_health_reason of the last failure */
	__u16 ejections;
	__u32 fails;            /* consecutive failures */
	__u64 ejected_until_ms; /* wall clock (Unix ms) for EJECTED, else 0 */
	__u64 last_fail_ms;     /* wall clock (Unix ms), 0: never failed */
	struct sluice_backend_health raw;
};
/* be: the backend's entry (sluice__backend_get); svc: its service's
 * svc_health (sluice__svc_health), for whether ejection applies at all. */
int sluice__backend_health(struct sluice *s, __u32 backend_id, const struct sluice_backend *be,
			   const struct sluice_svc_health *svc,
			   struct sluice_backend_health_view *out);
/* The same view of a backend_health value already read (h), at now_ns
 * (CLOCK_MONOTONIC): what a reader of many backends uses after reading
 * the map in batches (metrics). */
void sluice__backend_health_of(const struct sluice_backend_health *h,
			       const struct sluice_backend *be, const struct sluice_svc_health *svc,
			       __u64 now_ns, struct sluice_backend_health_view *out);
/* The service's entry; all zero when none was written. */
int sluice__svc_health(struct sluice *s, __u32 svc_id, struct sluice_svc_health *out);
/* bpf_ktime_get_ns() (CLOCK_MONOTONIC) as wall-clock Unix ms; 0 -> 0. */
__u64 sluice__mono_to_wall_ms(__u64 mono_ns);
int sluice__health_counters(struct sluice *s, __u64 out[SLUICE_HCNT__MAX]);
const char *sluice__health_counter_name(enum sluice_health_counter c);
const char *sluice__health_counter_help(enum sluice_health_counter c);
const char *sluice__health_reason_name(enum sluice_health_reason r);
const char *sluice__health_reason_help(enum sluice_health_reason r);
/* "ejected", "reejected", "restored", "max_ejected"; else "unknown". */
const char *sluice__health_event_name(__u8 kind);

/* The kernel's health events (ring buffer health_events): fn is called for
 * each record by sluice__health_events_read(), which never blocks; poll
 * sluice__health_events_fd() (epoll) to know when to call it. */
struct sluice_health_events;
typedef void (*sluice_health_event_fn)(const struct sluice_health_event *ev, void *ctx);
int sluice__health_events_open(struct sluice *s, sluice_health_event_fn fn, void *ctx,
			       struct sluice_health_events **out);
int sluice__health_events_fd(const struct sluice_health_events *he);
/* Records handed to fn, or a negative errno. */
int sluice__health_events_read(struct sluice_health_events *he);
void sluice__health_events_close(struct sluice_health_events *he);

/* Names for metrics and CLI output. */
const char *sluice__counter_name(enum sluice_counter c);
const char *sluice__drop_name(enum sluice_drop_reason r);
/* One-line descriptions (metric HELP text). Out of range: "unknown ...". */
const char *sluice__counter_help(enum sluice_counter c);
const char *sluice__drop_help(enum sluice_drop_reason r);

/* Addresses: "10.0.0.1", "fd00::1"; "10.0.0.1:80", "[fd00::1]:80".
 * Return -EINVAL with a message naming the text on malformed input. */
int sluice_addr__parse(struct sluice_addr *a, const char *text);
/* Same address, same family; IPv4 compares addr[0] only. */
bool sluice_addr__eq(const struct sluice_addr *a, const struct sluice_addr *b);
int sluice_addr__parse_port(struct sluice_addr *a, __u16 *port, const char *text);
/* Formats into buf (>= 48 bytes); returns buf. */
char *sluice_addr__str(const struct sluice_addr *a, char *buf, size_t len);
#define SLUICE_ADDR_STRLEN 48
/* "10.0.0.1:80" / "[fd00::1]:80" into buf (>= 56 bytes); returns buf. */
char *sluice_addr__str_port(const struct sluice_addr *a, __u16 port, char *buf, size_t len);
#define SLUICE_ADDRPORT_STRLEN 56
/* "10.96.0.10:80/tcp" / "[fd00::10]:53/udp" into buf (>= 64 bytes);
 * returns buf. The one spelling of a service in messages, labels and the CLI. */
char *sluice_svc__str(const struct sluice_addr *vip, __u16 port, __u8 proto, char *buf, size_t len);
/* The same for a services map key (port in network order). */
char *sluice_svc_key__str(const struct sluice_svc_key *key, char *buf, size_t len);
#define SLUICE_SVC_STRLEN (SLUICE_ADDRPORT_STRLEN + 8)
/* The source ranges of service svc_id as the src_ranges map holds them
 * (family: the VIP's); up to max into out, *n the count (may exceed max). */
int sluice__service_src_ranges(struct sluice *s, __u32 svc_id, __u8 family, struct sluice_cidr *out,
			       __u32 max, __u32 *n);
/* Source ranges (cidr.c): "10.0.0.0/8", "fd00::/64". Host bits are
 * cleared; returns 1 when there were any ("10.0.0.1/8" is 10.0.0.0/8),
 * 0 when none, -EINVAL with the text named when malformed or the prefix
 * is out of range ("\"10.0.0.0/33\": prefix out of range 0-32"). */
int sluice_cidr__parse(struct sluice_cidr *c, const char *text);
/* Prefix in range for the family and no host bits. */
bool sluice_cidr__valid(const struct sluice_cidr *c);
/* Clears the address bits past prefixlen (the family's words); true when
 * any was set. */
bool sluice_cidr__mask(struct sluice_cidr *c);
bool sluice_cidr__eq(const struct sluice_cidr *a, const struct sluice_cidr *b);
/* "10.0.0.0/8" into buf (>= SLUICE_CIDR_STRLEN bytes); returns buf. */
char *sluice_cidr__str(const struct sluice_cidr *c, char *buf, size_t len);
#define SLUICE_CIDR_STRLEN (SLUICE_ADDR_STRLEN + 4)
int sluice_proto__parse(__u8 *proto, const char *text); /* "tcp" / "udp" */
/* "tcp", "udp", else the number written into buf; never NULL. */
const char *sluice_proto__str(__u8 proto, char *buf, size_t len);

/* Maglev (maglev.c): fill table[m] with indexes into backends[] so that each
 * backend owns a share of slots proportional to its weight; weight-0
 * backends own none. Backends are identified for hashing by addr+port, so a
 * backend keeps most of its slots when others come or go. Returns 0, or
 * -EINVAL when m is not prime, n is 0 or every weight is 0. */
int maglev__build(const struct sluice_backend_spec *backends, __u32 n, __u32 m, __u32 *table);
/* The table size M of a service with n backends (every backend of its
 * spec, weight 0 too): the largest prime in the fewest 4 KiB pages that
 * hold SLUICE_MAGLEV_FACTOR x n slots, within [SLUICE_MAGLEV_M_MIN,
 * SLUICE_MAGLEV_M_MAX] (sluice_abi.h). A pure function of n. */
__u32 maglev__size(__u32 n);

#include "sluice_policy.h"

#endif /* SLUICE_H */
