/* SPDX-License-Identifier: MIT */
/*
 * internal.h - helpers shared by the user/lib modules, not part of the API.
 *
 * Contract: a library function that fails sets the thread's error text with
 * sluice__set_err() once, at the place that knows what failed, and returns a
 * negative errno; callers up the stack pass the errno on without rewriting
 * the text.
 */
#ifndef SLUICE_INTERNAL_H
#define SLUICE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice.h"

#define SLUICE_ERRMSG_LEN 512

/* Forget the previous error, at the start of every public entry point. */
void sluice__clear_err(void);
/* Set "<fmt ...>: <libbpf's text for err>" as the error; returns err. */
int sluice__bpf_err(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write all of buf to fd (a socket without SIGPIPE, or a file), again
 * after EINTR; 0 or the negative errno of the failed write. */
int sluice__write_all(int fd, const void *buf, size_t len);

struct bpf_object;

/*
 * companion.c: the objects loaded beside the datapath (socket LB, redirect,
 * telemetry) run on the datapath's very maps. Between open and load of
 * obj, every map whose name does not start with own_prefix reuses the map
 * of that name of the struct sluice (-ENOENT when it has none); own maps
 * are pinned as pin_dir/<name> when pin_dir is given (NULL: not pinned).
 * With own_prefix "" every map is own: the datapath itself, s unused.
 */
int sluice__share_maps(const struct sluice *s, struct bpf_object *obj, const char *own_prefix,
		       const char *pin_dir);
/* Remove the pins of obj's own maps (obj opened, not loaded); a missing
 * pin is not an error. */
int sluice__unpin_maps(struct bpf_object *obj, const char *own_prefix, const char *pin_dir);
/* Remove one pin / detach the link pinned at path and remove the pin;
 * missing is not an error, a failure's text names the path. */
int sluice__unpin_path(const char *path);
int sluice__unpin_link(const char *path);
/* pin_grow.c: between open and load, per-CPU counter arrays pinned by an
 * older agent with fewer entries are replaced by copies of the object's
 * size (see the contract there). */
int sluice__grow_pins(struct bpf_object *obj, const char *pin_dir);

/* The datapath maps the library writes, looked up once at open. */
enum sluice_map_id {
	SLUICE_MAP_SERVICES,
	SLUICE_MAP_MAGLEV,
	SLUICE_MAP_BACKENDS,
	SLUICE_MAP_CONNTRACK,
	SLUICE_MAP_CT_NEW,
	SLUICE_MAP_SVC_STATS,
	SLUICE_MAP_BACKEND_STATS,
	SLUICE_MAP_COUNTERS,
	SLUICE_MAP_DROPS,
	SLUICE_MAP_BACKEND_HEALTH,    /* #14: per backend id, written by BPF */
	SLUICE_MAP_SVC_HEALTH,        /* #14: per service id, config + ejected */
	SLUICE_MAP_HEALTH_EVENTS,     /* #14: ring buffer of ejections */
	SLUICE_MAP_HEALTH_COUNTERS,   /* #14: per-CPU SLUICE_HCNT_* */
	SLUICE_MAP_AFFINITY,          /* #14: client -> backend (LRU) */
	SLUICE_MAP_SRC_RANGES,        /* #13: {svc id, CIDR} LPM trie */
	SLUICE_MAP_MAGLEV_IDS,        /* #16: svc id -> its table's map id */
	SLUICE_MAP_POLICY,            /* #15: {svc id, CIDR} LPM trie */
	SLUICE_MAP_POLICY_NODE,       /* #15: {family, CIDR} LPM trie */
	SLUICE_MAP_POLICY_NHOST,      /* #15: the node list's /32 and /128, hash */
	SLUICE_MAP_POLICY_HASH,       /* #15: policy entries by exact match, hash */
	SLUICE_MAP_POLICY_STATS,      /* #15: per-CPU denials per svc id */
	SLUICE_MAP_POLICY_CFG,        /* #15: node list prefixes per family */
	SLUICE_MAP_POLICY_NLENS,      /* #15: node list lengths in policy_nhost */
	SLUICE_MAP_BACKEND_ADDRS,     /* #17: backend address -> refs (reply filter) */
	SLUICE_MAP_BACKEND_ADDR_BITS, /* #17: the filter's bits, what BPF reads */
	SLUICE_MAP_SNAT_ADDR,         /* #13: the node's SNAT address per family */
	SLUICE_MAP_FWD_DEVS,          /* #17: egress devices XDP redirects to */
	SLUICE_MAP_SERVICE_ADDR_BITS, /* #17: services' addresses, bits BPF reads */
	SLUICE_MAP__MAX,
};

struct lb_bpf;
struct cut_async;
/* policy_cut_async.c: stops and frees the policy cut worker (close). */
void cut__async_free(struct sluice *s);

struct sluice {
	struct lb_bpf *skel;
	int fds[SLUICE_MAP__MAX];
	int ncpus;        /* possible CPUs: per-CPU values come in this many copies */
	bool outlier_off; /* node-wide: every svc_health written with threshold 0 */
	/* svc_table.c (#16): table map id per service id (0: ask maglev_ids),
	 * allocated on first need; the maglev map's id (names the tables) */
	__u32 *mg_ids;
	__u32 outer_id;
	/* the M of the table mg_ids names (0: unknown), for kmem.c (#16) */
	__u32 *mg_m;
	/* `maglev` of pins of layout 3: its template takes only tables of
	 * SLUICE_MAGLEV_M slots without BPF_F_INNER_MAP (probed at open) */
	bool maglev_fixed;
	/* backend ids whose delete waits for sluice__flush_deferred() */
	bool *pend; /* [SLUICE_MAX_BACKENDS] */
	__u32 *pend_ids;
	__u32 npend, pend_cap;
	struct svc_snap *snap;               /* svc_plan.c: ids and backends, kept in step */
	struct sluice_policy_cut_totals cut; /* policy_cut*.c: totals since open (#15) */
	char *cut_cgroup;                    /* policy_cut_netns.c: the scope (NULL: none) */
	unsigned int cut_max_netns, cut_budget_ms, cut_max_pids, cut_max_socks;
	bool cut_all;                /* ... every process of /proc, not the cgroup's */
	struct cut_async *cut_async; /* policy_cut_async.c: the worker (NULL: none) */
	bool addrs_synced;           /* svc_addrs.c: backend_addrs recounted once */
	/* svc_count.c: entries of `services` (known: counted once, then kept
	 * in step with this handle's inserts and deletes) */
	bool svc_counted;
	__u64 svc_entries, svc_markers;
	__u64 *addr_bits; /* backend_addr_bits, mmapped at open */
	__u64 *vip_bits;  /* service_addr_bits, mmapped at open */
	/* progs.c (#16): xdp_lb and tc_lb by enum sluice_prog (the
	 * skeleton's, or pinned ones reused: then owned, closed at close) */
	int prog_fds[2];
	bool progs_reused;
	char progs_why[192];
	char *pin_dir;                  /* opts->pin_dir, for sluice__progs_save() */
	struct progs_record *progs_rec; /* what this open's programs are */
};

/* Called once per element by maps__for_each(); non-zero stops the walk
 * and is returned by maps__for_each(). */
typedef int (*maps__elem_fn)(const void *key, const void *value, void *ctx);

/*
 * Walk every element of a hash map: batched lookups where the kernel has
 * them, get_next_key otherwise. Elements inserted or deleted during the
 * walk may or may not be seen. `name` only goes into error messages.
 */
int maps__for_each(int fd, const char *name, size_t key_size, size_t value_size, maps__elem_fn fn,
		   void *ctx);
/*
 * fn(key, value, ctx) for every key in [from, to) of an array map (keys are
 * __u32), MAPS_BATCH keys per batched lookup (arrays have them since 5.6),
 * one lookup per key where the kernel cannot batch. value_size is what
 * the kernel copies: for a per-CPU array, maps__percpu_size().
 */
int maps__for_range(int fd, const char *name, __u32 from, __u32 to, size_t value_size,
		    maps__elem_fn fn, void *ctx);
/* The size of a per-CPU value as userspace reads it: every possible
 * CPU's copy, each rounded up to 8 bytes. */
size_t maps__percpu_size(const struct sluice *s, size_t value_size);
/* CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns(). */
__u64 health__now_ns(void);
/* Sum `nfields` __u64 fields of a per-CPU value over every CPU into out. */
int maps__percpu_sum(const struct sluice *s, int fd, const char *name, __u32 key, __u64 *out,
		     __u32 nfields);
/* Set every CPU's copy of a per-CPU array slot to zero. */
int maps__percpu_zero(const struct sluice *s, int fd, const char *name, __u32 key,
		      size_t value_size);
/* Writes keys[i] -> vals[i] (BPF_ANY) for i < n in one batched update
 * (BPF_MAP_UPDATE_BATCH, 5.6+; element by element where the kernel has no
 * batch for the map), stopping at the first element that fails: *done
 * elements from the first are written. Returns 0 or that element's error;
 * sets no error text. */
int maps__update_many(int fd, const void *keys, size_t key_size, const void *vals,
		      size_t value_size, __u32 n, __u32 *done);
/* maps__percpu_zero() for n keys, in batched writes. */
int maps__percpu_zero_many(const struct sluice *s, int fd, const char *name, const __u32 *keys,
			   __u32 n, size_t value_size);
/* Whether a batch map operation failed because the kernel has none for
 * this map type (then the caller goes element by element). */
bool maps__batch_unsupported(int err);
/*
 * maps_outer.c: keys[i] -> vals[i] (inner map fds) in the map-in-map fd,
 * large writes split over threads so that the kernel's waits for RCU grace
 * periods (one per element on older kernels such as 6.1) overlap.
 * written[i] says whether element i was written (later elements may be
 * written after an earlier one failed); returns 0 or the error of the
 * lowest-indexed failed element, whose index goes to *failed.
 */
int maps__outer_update(int fd, const __u32 *keys, const int *vals, __u32 n, bool *written,
		       __u32 *failed);
/* Sets the error text for a failed operation on map `name` and returns err. */
int maps__err(int err, const char *name, const char *op, const char *what);

/* svc_table.c: a new Maglev inner map holding table (NULL: all slots 0)
 * of the smallest size, named as nobody's own table; the fd, or a
 * negative errno with the error text set. */
int svc__create_inner(struct sluice *s, const __u32 *table);
/* svc_table.c: the M of a service with nbackends backends on this handle's
 * maps: maglev__size(), or SLUICE_MAGLEV_M on pins of layout 3. */
__u32 svc__table_m(const struct sluice *s, __u32 nbackends);
/* svc_table.c: *m of the Maglev table behind fd (from its max_entries);
 * -EPROTO when fd is no Maglev-shaped array. */
int svc__table_info(int fd, __u32 *m);
/* svc_table.c: remember svc_id's table size (0: unknown) for kmem.c. */
void svc__table_note_m(struct sluice *s, __u32 svc_id, __u32 m);
/* svc_table.c: svc_id's table is gone (service deleted): the index drops it. */
void svc__table_forget(struct sluice *s, __u32 svc_id);
/* svc_table.c: backend id leaves its set: deleted from `backends` by
 * sluice__flush_deferred(), not handed out again before. */
void svc__defer_delete(struct sluice *s, __u32 id);
bool svc__deferred(const struct sluice *s, __u32 id);
/* svc_table.c: sluice__flush_deferred() without touching the error text;
 * also when a full backends map or id space needs their room. */
int svc__flush(struct sluice *s);
/* svc_addrs.c (#17): backend_addrs follows `backends`: a new entry's
 * address is counted (ref), a deleted one's uncounted (at 0 it lingers
 * for live flows, see sluice__backend_addrs_sweep). svc__backend_delete:
 * delete backends[id] and uncount its address; a negative errno (-ENOENT
 * when absent), no error text. svc__addrs_sync recounts from `backends`
 * (once per handle, at the first planned change); _if_empty only when
 * the map is empty and `backends` is not (at open). */
int svc__addr_ref(struct sluice *s, const struct sluice_backend *be);
void svc__addr_unref(struct sluice *s, const struct sluice_backend *be);
int svc__backend_delete(struct sluice *s, __u32 id);
int svc__addrs_sync(struct sluice *s);
int svc__addrs_sync_if_empty(struct sluice *s);
/* backend_addr_bits mapped (open) / unmapped (close). */
int svc__addr_bits_map(struct sluice *s);
void svc__addr_bits_unmap(struct sluice *s);
/* svc_vips.c (#17): service_addr_bits, the datapath's filter in front of
 * `services`. _map/_unmap at open/close; _set before the first entry of
 * an address is written (_clear undoes a _set that found the bit clear,
 * when the failed update's keys are gone again); _sync rebuilds the bits from the keys of
 * `services` (after VIP markers were deleted; at open when the bits are
 * all clear while `services` is not: pins of a library without them). */
int svc__vip_bits_map(struct sluice *s);
void svc__vip_bits_unmap(struct sluice *s);
bool svc__vip_bit_set(struct sluice *s, const struct sluice_svc_key *k); /* true: was clear */
void svc__vip_bit_clear(struct sluice *s, const struct sluice_svc_key *k);
int svc__vip_bits_sync(struct sluice *s);
/* ... from keys the caller walked: every key of `services` left (the
 * sweep's, without a walk of its own) */
int svc__vip_bits_sync_keys(struct sluice *s, const struct sluice_svc_key *keys, __u32 n);
int svc__vip_bits_sync_if_empty(struct sluice *s);
/* svc_policy_node.c: at open, a family whose node prefix copies in
 * policy_nhost do not match its prefixes goes back to the trie. */
int svc__policy_nlens_check(struct sluice *s);
/* svc_plan.c: forget the snapshot (the next set call reads the maps);
 * for writers it does not follow (deletes, sweep). */
void svc__snap_drop(struct sluice *s);
/* svc_plan.c: every live backend (key: its __u32 id, value: its struct
 * sluice_backend) from the handle's index when it holds one (kept in step
 * with every write of this handle: no map walk), else from one batched
 * walk of `backends` (which also shows entries a deferred delete still
 * holds, with their old service id). Order unspecified. *entries (may be
 * NULL): the entries `backends` holds, those waiting for a deferred
 * delete included, either way. */
int svc__backends_each(struct sluice *s, maps__elem_fn fn, void *ctx, __u64 *entries);
/* svc_plan.c: that index, read now (one walk of `backends`) if the handle
 * holds none, so a restart's read-back, reconcile, sweep and outlier sync
 * share one walk (#16). */
int svc__index_load(struct sluice *s);
/* fn(&id, &value, ctx) for each backend of service svc_id in the index,
 * in its order; non-zero from fn stops it. Without an index: none. */
int svc__index_of(const struct sluice *s, __u32 svc_id, maps__elem_fn fn, void *ctx);
/* svc_count.c: a `services` entry (marker: a VIP marker) this handle
 * inserted (delta 1, the key was absent) or deleted (-1, it was there). */
void svc__count(struct sluice *s, bool marker, int delta);
/* svc_plan.c: backend id deleted by the flush: free for new backends. */
void svc__snap_free_be(struct sluice *s, __u32 id);
/* svc_table.c: at close, the deferred deletes flushed, the index freed. */
void svc__tables_close(struct sluice *s);

/* svc_health.c (#14): the svc_health entry a service's spec means, with
 * `ejected` recounted from the backend_health entries of the ids[] (its
 * whole new backend set) whose active[] is true (in the Maglev table),
 * `backends` the number of those; an id not active loses its ejection
 * (no pick can choose it, so no success would restore it); when outlier
 * detection is off for it (spec or node-wide) the entries of ids[] that
 * carry an ejection or failures are cleared. Every entry written is saved in
 * *undo first (svc_health_undo__run() puts them back, newest first), so
 * a rejected update leaves both maps as they were. */
struct svc_health_undo {
	__u32 n, cap;
	struct svc_health_saved {
		bool svc; /* a svc_health entry (else backend_health) */
		__u32 key;
		union {
			struct sluice_svc_health sh;
			struct sluice_backend_health bh;
		};
	} * v;
};
/* zeroed (may be NULL) marks the ids whose entry this call's caller has
 * just zeroed (svc__health_zero_backends): not read again. */
int svc__health_write(struct sluice *s, __u32 svc_id, const struct sluice_outlier_spec *o,
		      const __u32 *ids, const bool *active, const bool *zeroed, __u32 nids,
		      struct svc_health_undo *undo);
/* Zero backend_health[id] of n ids (new backends get them), each saved in
 * undo; the entries read in one batch where the ids are close together. */
int svc__health_zero_backends(struct sluice *s, const __u32 *ids, __u32 n,
			      struct svc_health_undo *undo);
/* A backend leaving its service's set: its ejection flag cleared (saved
 * in undo), so a late success of one of its flows cannot make the kernel
 * decrement the service's recounted `ejected` below the truth. */
int svc__health_forget_backend(struct sluice *s, __u32 id, struct svc_health_undo *undo);
void svc__health_undo_run(struct sluice *s, struct svc_health_undo *undo);
void svc__health_undo_free(struct svc_health_undo *undo);
/* Best effort: a deleted service's entry zeroed (its id may be reused). */
void svc__health_forget(struct sluice *s, __u32 svc_id);
/* svc_affinity.c: best effort, off the packet path, one walk of the
 * affinity map: deletes the entries of every service id i with gone[i]
 * ([SLUICE_MAX_SERVICES]): its service was deleted or lost affinity, and
 * its id may go to another service. */
void svc__affinity_forget(struct sluice *s, const bool *gone);
/* svc_src_range.c: best effort, one walk of src_ranges: deletes the
 * entries of every service id i with gone[i] (#13). */
void svc__src_forget(struct sluice *s, const bool *gone);
/* svc_policy.c: the same for the policy trie (#15). */
void svc__policy_forget(struct sluice *s, const bool *gone);

/* svc_spec.c: spec checks and keys. IPv4 goes into dst[0], zeros after. */
void svc__addr_copy(__u32 dst[4], const struct sluice_addr *a);
/* -EINVAL with a message unless vip, port and proto can key a service. */
int svc__make_key(struct sluice_svc_key *key, const struct sluice_addr *vip, __u16 port,
		  __u8 proto);
/* Checks the whole spec (see sluice__service_set) and builds its key. */
int svc__validate(const struct sluice_service_spec *spec, struct sluice_svc_key *key);

/* sha256.c: SHA-256 for the program record (progs.c). */
#define SHA256_LEN 32
struct sha256 {
	__u32 h[8];
	__u64 len;
	__u8 buf[64];
	size_t nbuf;
};
void sha256__init(struct sha256 *c);
void sha256__update(struct sha256 *c, const void *data, size_t len);
void sha256__final(struct sha256 *c, __u8 out[SHA256_LEN]);

/*
 * progs.c (#16): a restart that finds its own programs skips the verifier.
 * sluice__progs_save() pins xdp_lb and tc_lb in the pin dir with a record
 * (a frozen one-entry array, PROGS_RECORD_NAME) of what they were loaded
 * from. The record is made before any load, from what would determine the
 * programs: the embedded object's bytes, the rodata config, and the
 * environment (library and libbpf versions, layout version, kernel
 * release and build, boot id).
 */
#define PROGS_RECORD_NAME "prog_record"
#define PROGS_PIN_XDP "prog_xdp_lb"
#define PROGS_PIN_TC "prog_tc_lb"
#define PROGS_RECORD_MAGIC 0x52475053 /* "SPGR" */
#define PROGS_RECORD_VERSION 1
struct progs_record {
	__u32 magic;
	__u32 version;
	__u32 cfg;
	__u32 prog_ids[2]; /* by enum sluice_prog; 0 until saved */
	__u32 pad;
	__u8 object[SHA256_LEN]; /* of the embedded lb.bpf.o */
	__u8 env[SHA256_LEN];    /* of progs__env()'s text */
	__u8 digest[SHA256_LEN]; /* of magic..cfg, object and env */
};
/* The environment's text (one line per item) into buf; never fails, an
 * unreadable item is written as "?" (and so differs from a readable one). */
void progs__env(char *buf, size_t len, const char *build_id);
void progs__record_make(struct progs_record *r, const void *obj, size_t obj_len, __u32 cfg,
			const char *env);
/* true when now may reuse what old names; otherwise false with the first
 * difference in why ("the BPF object differs (another build)", ...). */
bool progs__record_match(const struct progs_record *old, const struct progs_record *now, char *why,
			 size_t len);
/* Before the load: the record pinned in dir matches now and names pinned
 * programs that exist, of the right type and name: 1 with their fds in
 * fds[] (by enum sluice_prog), 0 with why, or a negative errno. */
int progs__find(const char *dir, const struct progs_record *now, int fds[2], char *why, size_t len);
/* After a load of the maps only: every map the programs in fds[] use is
 * one of obj's (or a .rodata with obj's bytes): 1, else 0 with why. */
int progs__bound(struct bpf_object *obj, const int fds[2], char *why, size_t len);
/* Pin fds[] and the record (ids filled in) in dir, replacing what is
 * there; the record last, removed first. */
int progs__pin(const char *dir, struct progs_record *r, const int fds[2]);
/* Remove the pins of progs__pin() (absent ones are fine). */
int progs__unpin(const char *dir);

#endif /* SLUICE_INTERNAL_H */
