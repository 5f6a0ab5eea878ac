/* SPDX-License-Identifier: MIT */
/*
 * plan.h - the address plan of the network benchmarks (B2-B4), shared by
 * svcload (Sluice services through the library), kprules (the equivalent
 * kube-proxy iptables / nftables rulesets) and xdpgen (the traffic), so
 * all three describe the very same services.
 *
 * Service i (0-based) is VIP PLAN_VIP_BASE + 1 + i, TCP port PLAN_SVC_PORT.
 * Its backend j is PLAN_BE_BASE + PLAN_BE_STRIDE * i + 1 + j, port
 * PLAN_BE_PORT; backend index PLAN_BE_SPARE_IDX is never used by a
 * service's own set: a backend change moves backend 0 there. Clients live in PLAN_CLIENT_BASE/12,
 * inside the cluster CIDR, so kube-proxy's "masquerade traffic from
 * outside the cluster" rules are evaluated but never fire: no variant pays
 * for SNAT, as Sluice does none. All constants are host order.
 */
#ifndef SLUICE_BENCH_PLAN_H
#define SLUICE_BENCH_PLAN_H

#define PLAN_VIP_BASE 0x0a600000u /* 10.96.0.0/16: up to 65534 services */
#define PLAN_SVC_PORT 80
#define PLAN_BE_BASE 0x0a800000u /* 10.128.0.0/9 */
#define PLAN_BE_PORT 8080
#define PLAN_BE_STRIDE 16u
/* Backend index of the replacement address a backend change moves to. */
#define PLAN_BE_SPARE_IDX (PLAN_BE_STRIDE - 2)
#define PLAN_MAX_BACKENDS PLAN_BE_SPARE_IDX
#define PLAN_MAX_SERVICES 65534u
#define PLAN_CLIENT_BASE 0x0a400000u /* 10.64.0.0/12 */
#define PLAN_CLUSTER_CIDR "10.0.0.0/8"

static inline unsigned int plan__vip(unsigned int svc)
{
	return PLAN_VIP_BASE + 1 + svc;
}

static inline unsigned int plan__backend(unsigned int svc, unsigned int idx)
{
	return PLAN_BE_BASE + PLAN_BE_STRIDE * svc + 1 + idx;
}

#endif /* SLUICE_BENCH_PLAN_H */
