/* SPDX-License-Identifier: MIT */
/*
 * ct.h - conntrack for the API: listing connections and flushing them.
 *
 * Contract: a connection is a FWD entry (client -> VIP as the client sent
 * it); its REPLY entry is found from the FWD key and the backend it holds.
 * Flushing deletes both directions (and REPLY entries whose FWD half the
 * LRU already evicted), so the next packet of a flushed flow is balanced
 * afresh. Only an optional service filter narrows either operation.
 */
#ifndef MESHD_CT_H
#define MESHD_CT_H

#include <stdbool.h>
#include <json-c/json.h>

#include "sluice.h"

struct ct_filter {
	bool all;
	struct sluice_addr vip;
	__u16 port; /* host order */
	__u8 proto;
};

/* Append up to limit connection objects to entries; *total counts all. */
int ct__list(struct sluice *sl, const struct ct_filter *f, __u32 limit, struct json_object *entries,
	     __u64 *total);
/* Delete the matching connections; counts connections and map entries. */
int ct__flush(struct sluice *sl, const struct ct_filter *f, __u64 *conns, __u64 *entries);

#endif /* MESHD_CT_H */
