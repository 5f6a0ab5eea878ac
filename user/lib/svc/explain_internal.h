/* SPDX-License-Identifier: MIT */
/*
 * explain_internal.h - what the parts of the explain walk share
 * (explain.c: service, access, affinity, Maglev, backend;
 * explain_ct.c: conntrack).
 */
#ifndef SLUICE_EXPLAIN_INTERNAL_H
#define SLUICE_EXPLAIN_INTERNAL_H

#include "explain.h"

#define NS_PER_S 1000000000ULL
#define TCP_FIN 0x01
#define TCP_RST 0x04

/* What one walk holds besides its answer. */
struct xp {
	struct sluice *s;
	const struct sluice_explain_req *req;
	struct sluice_explain *out;
	__u64 now, now_coarse;
	char be_str[SLUICE_ADDRPORT_STRLEN];
};

void xp__step(struct xp *x, const char *step, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "10.0.0.1:80" of an address and a port in network order. */
const char *xp__addrport(const __u32 *addr, __u8 family, __u16 port_be, char *buf, size_t len);
/* health_is_ejected(): ejected and the time not over. */
bool xp__health_ejected(const struct sluice_backend_health *bh, __u64 now);
/* explain_ct.c, lb_ct_fwd(): 1 when conntrack keeps the flow on its
 * backend (o->backend_id set), 0 for a new flow, or a negative errno. */
int xp__conntrack(struct xp *x);

#endif /* SLUICE_EXPLAIN_INTERNAL_H */
