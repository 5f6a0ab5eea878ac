/* SPDX-License-Identifier: MIT */
/*
 * svc_txn.h - private to service.c (the writes) and svc_plan.c (what to
 * write): one service's set operation, planned from a snapshot of the
 * maps taken once per sluice__service_set_many() call.
 */
#ifndef SLUICE_SVC_TXN_H
#define SLUICE_SVC_TXN_H

#include "internal.h"

enum svc_undo_kind {
	UNDO_BACKEND, /* restore backends[ids[i]] as it was, or delete it */
	UNDO_MAGLEV,  /* put the old inner table back, or empty the slot */
	UNDO_SERVICE, /* restore the service entry, or delete it */
	UNDO_MARKER,  /* delete the VIP marker we created */
	UNDO_SLOTS,   /* write the old values of in-place table slots back */
};

struct svc_slot {
	__u32 slot, old, new; /* a slot an in-place change writes */
};

struct svc_undo {
	enum svc_undo_kind kind;
	__u32 idx;
};

struct svc_old_be {
	__u32 id;
	struct sluice_backend val;
	bool kept;
};

struct svc_be_list {
	struct svc_old_be *v;
	__u32 n, cap;
};

/* What the maps hold, read once by the first set call of a handle and
 * then kept in step with its writes (#16: a change reads no map walk):
 * which ids are taken and every live backend per service id. Ids handed
 * out are marked taken at once; ids of deferred deletes stay taken until
 * the flush. Dropped (read again by the next call) after a failed call,
 * a delete or a sweep, the paths it does not follow. */
/* A policy trie element (#15) and what an update changed. */
struct svc_pol_elem {
	struct sluice_policy_key k;
	struct sluice_policy_val v;
};

struct svc_pol_undo {
	struct sluice_policy_key k;
	struct sluice_policy_val v; /* the old value, when existed */
	bool existed;
};

/* The maps a service's policy entries live in: the trie holds every
 * entry, the hash those of services with SLUICE_SVC_F_POLICY_HASH. */
enum svc_pol_map {
	SVC_POL_TRIE,
	SVC_POL_HASH,
	SVC_POL__MAPS
};

/* The policy entries of one map, sorted by service id. */
struct svc_pol_set {
	struct svc_pol_elem *v;
	__u32 n, cap;
	bool loaded;
	/* new keys the call's plans insert so far (policy_hash's room,
	 * svc__policy_plan(); stale keys go only after their group) */
	long long delta;
};

struct svc_snap {
	struct sluice *s;
	bool *svc_used;             /* [SLUICE_MAX_SERVICES], read when first needed */
	bool *be_used;              /* [SLUICE_MAX_BACKENDS] */
	struct svc_be_list *by_svc; /* [SLUICE_MAX_SERVICES] */
	/* entries whose service id is out of range (left by a crash or an
	 * older library): in no by_svc list, counted and swept all the same */
	struct svc_be_list junk;
	__u32 next_svc, next_be; /* no free id below these */
	/* src_ranges entries sorted by service id, read when first needed */
	struct sluice_src_range_key *srcs;
	__u32 nsrcs, srcs_cap;
	bool srcs_loaded;
	/* policy entries sorted by service id, per map, read when first
	 * needed */
	struct svc_pol_set pols[SVC_POL__MAPS];
};

struct svc_txn {
	struct sluice *s;
	const struct sluice_service_spec *spec;
	struct sluice_svc_key key;
	struct sluice_svc_key marker_key;
	bool vip_bit_new; /* svc__vip_bit_set() set its address's bit: undone with the marker */
	bool existed;
	struct sluice_svc old_svc;
	__u32 svc_id;
	struct svc_old_be *old; /* backends carrying svc_id before the update */
	__u32 nold;
	__u32 *ids;                  /* new backend ids, parallel to spec->backends */
	int *old_idx;                /* index into old[] or -1 for a new backend */
	struct sluice_backend *vals; /* the entries written, parallel to ids */
	bool *active;                /* parallel to spec->backends: weight > 0, not unhealthy */
	__u32 nactive;
	int old_inner_fd;       /* maglev[svc_id] before the swap, -1 if none */
	int new_inner_fd;       /* the table to swap in, -1 if unchanged or none */
	bool owned;             /* old_inner_fd is this library's table of svc_id */
	__u32 old_m;            /* old_inner_fd's M (0: unknown) */
	__u32 m;                /* the new set's M (svc__table_m) */
	__u32 *table;           /* the new table (backend ids), only while planned */
	__u32 *mem;             /* old_inner_fd mmapped when changed in place */
	struct svc_slot *slots; /* the in-place change and its undo */
	__u32 nslots;
	struct svc_undo *undo;
	__u32 nundo;
	struct svc_health_undo hundo; /* backend_health/svc_health entries (#14) */
	/* source ranges (#13): svc_id's entries in the snapshot, and the
	 * entries this update inserted (a rollback deletes them) */
	const struct sluice_src_range_key *src_old;
	__u32 nsrc_old;
	struct sluice_src_range_key *src_added;
	__u32 nsrc_added;
	/* access policy (#15): the compiled entries (the trie's), those of
	 * policy_hash (the same, or expanded to at most SLUICE_POLICY_LENS
	 * lengths; none when the trie alone decides), the new service
	 * entry's policy_lens (0: the trie alone), and per map svc_id's
	 * entries in the snapshot and what this update changed */
	struct sluice_policy_entry *pol_new;
	__u32 npol_new;
	struct sluice_policy_entry *pol_hash;
	__u32 npol_hash;
	__u32 pol_lens;
	struct {
		const struct svc_pol_elem *old;
		__u32 nold;
		struct svc_pol_undo *undo;
		__u32 nundo;
	} pol[SVC_POL__MAPS];
};

/* The handle's snapshot, read from the maps if it has none (*out NULL on
 * error); its per-call parts reset. */
int svc__snap_get(struct sluice *s, struct svc_snap **out);
/* fn(&id, &value, ctx) for every entry of snap: each service's backends,
 * then the junk (out-of-range service ids); non-zero from fn stops it. */
int svc__snap_each(const struct svc_snap *snap, maps__elem_fn fn, void *ctx);
/* svc_addrs.c: svc__addrs_sync() counting the backends of snap (NULL, or
 * deletes pending: a walk of `backends`) */
int svc__addrs_sync_snap(struct sluice *s, const struct svc_snap *snap);
/* After t's group is live: t's service holds its new set. */
int svc__snap_commit(struct svc_snap *snap, const struct svc_txn *t);
/* Allocates t's arrays for spec (whose map key is key); no map access. */
int svc__txn_init(struct svc_txn *t, struct sluice *s, const struct sluice_service_spec *spec,
		  const struct sluice_svc_key *key);
void svc__txn_free(struct svc_txn *t);
/* Everything the writes need, from the snapshot and one lookup; no map
 * is written. */
int svc__plan(struct svc_txn *t, struct svc_snap *snap);

/* svc_table.c (#16): find svc_id's current table without reading the
 * outer map where avoidable (old_inner_fd, owned); plan the new one
 * (unchanged, in place, or a new table in new_inner_fd); write the changed
 * slots in place / put them back; after the group is live, update the
 * index; free what the txn holds. */
int svc__table_find(struct svc_txn *t);
/* A read-only fd of svc_id's live table, found as svc__table_find() does
 * (the index, the outer map only where reading it is cheap) but writing
 * nothing; the caller closes it. -ENOENT: none found that way. */
int svc__table_read_fd(struct sluice *s, __u32 svc_id);
int svc__table_build(struct svc_txn *t);
int svc__table_write(struct svc_txn *t);
void svc__table_undo(struct svc_txn *t);
void svc__table_commit(struct svc_txn *t);
void svc__table_free(struct svc_txn *t);

/* svc_src_range.c (#13): find t's old entries (reading the trie into
 * the snapshot when t has or had ranges); write the new ones; undo those;
 * delete the old ones the spec no longer names (after the group is live). */
int svc__src_plan(struct svc_txn *t, struct svc_snap *snap);
int svc__src_write(struct svc_txn *t);
void svc__src_undo(struct svc_txn *t);
void svc__src_delete_stale(struct svc_txn *t);

/* svc_policy.c (#15): the same steps for the policy trie and hash; the
 * plan compiles the spec's rules. */
int svc__policy_plan(struct svc_txn *t, struct svc_snap *snap);
int svc__policy_write(struct svc_txn *t);
void svc__policy_undo(struct svc_txn *t);
void svc__policy_delete_stale(struct svc_txn *t);
void svc__policy_free(struct svc_txn *t);

#endif /* SLUICE_SVC_TXN_H */
