/* SPDX-License-Identifier: MIT */
/*
 * ct.h - conntrack for the API: listing connections and flushing them.
 *
 * Contract: a connection is a FWD entry (client -> VIP as the client sent
 * it); its REPLY entry is found from the FWD key and the backend it holds.
 * Both maps are covered: `conntrack` (state "confirmed") and `ct_new`
 * (state "new": nobody answered yet). ct__sweep() deletes the ct_new
 * entries idle past the datapath's timeouts, which otherwise stay until
 * hit or evicted: after a flood the table drains within one timeout plus
 * one sweep interval.
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
/* Delete expired ct_new entries; *removed of them, *left still there.
 * Bounded by the map's size (65536 entries: one batched walk and one
 * delete per expired entry). Then the reply filter's addresses of removed
 * backends that no flow names any more (sluice__backend_addrs_sweep: walks
 * both conntrack maps only while there are such addresses); *addrs of
 * them removed. */
int ct__sweep(struct sluice *sl, __u64 *removed, __u64 *left, __u32 *addrs);

#endif /* MESHD_CT_H */
