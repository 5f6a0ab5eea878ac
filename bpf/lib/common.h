/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * common.h - includes and constants every Sluice BPF file needs. vmlinux.h
 * carries types but not UAPI macros, so the few macros used are defined here.
 */
#ifndef SLUICE_BPF_COMMON_H
#define SLUICE_BPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sluice_abi.h"

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

#define AF_INET 2
#define AF_INET6 10

#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF
#define IP_DF 0x4000

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60
#define NEXTHDR_ICMPV6 58

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define ICMP_DEST_UNREACH 3
#define ICMP_PORT_UNREACH 3
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PORT_UNREACH 4

#define NSEC_PER_SEC 1000000000ULL

/* errno values: a socket's sk_err, and the error a socket hook returns to
 * the syscall (bpf_set_retval()). */
#define EPERM 1
#define EPIPE 32
#define ENETUNREACH 101
#define ECONNRESET 104
#define ETIMEDOUT 110
#define ECONNREFUSED 111
#define EHOSTUNREACH 113

/* Load-time knobs, set by userspace before load (SLUICE_CFG_*). */
const volatile __u32 sluice_cfg = 0;

static __always_inline bool cfg_has(__u32 flag)
{
	return sluice_cfg & flag;
}

#endif /* SLUICE_BPF_COMMON_H */
