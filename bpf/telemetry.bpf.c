// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * telemetry.bpf.c - per-connection telemetry (cgroup sockops).
 *
 * telemetry_sockops tracks TCP sockets to and from services (see
 * lib/telemetry.h for which), keeps their state in socket storage
 * (telem_sk) and writes records to the telem_events ring buffer: OPEN when
 * established, UPDATE for open connections at most every
 * telem_interval_ns (on the first ACK after it: an idle connection has
 * nothing new to say), CLOSE when an established socket reaches
 * TCP_CLOSE, FAIL when a connect() never got established (RST or ICMP in
 * answer to the SYN, SYN timeout, aborted). It is attached next to other
 * sockops programs (the same-node redirect) on the same cgroup: cgroup
 * links run them all, and the callback flags are OR-ed, never replaced.
 */
#include "lib/telemetry.h"

static __always_inline void telem_on_connect(struct bpf_sock_ops *ops)
{
	struct sluice_telem_ep ep;
	struct telem_tuple t;
	struct telem_sk *st;
	__u8 via_vip;

	if (telem_cfg & SLUICE_TELEM_CFG_NO_OUTBOUND || !telem_tuple_read(ops, &t))
		return;
	if (telem_origin(ops, &t, &ep)) {
		if (!(telem_cfg & SLUICE_TELEM_CFG_NO_INBOUND))
			telem_peer_note(&t, &ep);
		telem_start(ops, &ep, SLUICE_TELEM_OUTBOUND, 0, TELEM_SK_CONNECTING);
		return;
	}
	if (telem_classify_outbound(&t, &ep, &via_vip)) {
		telem_start(ops, &ep, SLUICE_TELEM_OUTBOUND, via_vip, TELEM_SK_CONNECTING);
		return;
	}
	/* connect() again after a failure, now to something else: forget */
	st = telem_state(ops);
	if (st)
		st->state = TELEM_SK_DONE;
}

static __always_inline void telem_on_active_established(struct bpf_sock_ops *ops)
{
	struct telem_sk *st = telem_state(ops);

	if (!st || st->state != TELEM_SK_CONNECTING)
		return;
	telem_resolve_backend(ops, st);
	telem_track_srtt(st, ops->srtt_us >> 3);
	st->acked_base = ops->bytes_acked;
	st->state = TELEM_SK_OPEN;
	telem_emit(ops, st, SLUICE_TELEM_OPEN, SLUICE_TELEM_REASON_NONE);
}

static __always_inline void telem_on_passive_established(struct bpf_sock_ops *ops)
{
	struct sluice_telem_ep ep;
	struct telem_tuple t;
	struct telem_sk *st;

	if (telem_cfg & SLUICE_TELEM_CFG_NO_INBOUND || !telem_tuple_read(ops, &t))
		return;
	if (!telem_endpoint(t.laddr, t.lport, t.family, &ep))
		return;
	if (!telem_peer_take(&t, &ep))
		telem_ct_inbound(&t, &ep);
	st = telem_start(ops, &ep, SLUICE_TELEM_INBOUND, 0, TELEM_SK_OPEN);
	if (!st)
		return;
	st->acked_base = ops->bytes_acked;
	telem_emit(ops, st, SLUICE_TELEM_OPEN, SLUICE_TELEM_REASON_NONE);
}

static __always_inline void telem_on_rtt(struct bpf_sock_ops *ops)
{
	struct telem_sk *st = telem_state(ops);

	if (!st || st->state == TELEM_SK_DONE)
		return;
	telem_track_srtt(st, ops->args[1] >> 3); /* args: mrtt_us, srtt_us << 3 */
	if (st->state == TELEM_SK_OPEN && telem_interval_ns &&
	    bpf_ktime_get_ns() - st->last_ns >= telem_interval_ns)
		telem_emit(ops, st, SLUICE_TELEM_UPDATE, SLUICE_TELEM_REASON_NONE);
}

static __always_inline void telem_on_state(struct bpf_sock_ops *ops)
{
	__u32 old = ops->args[0], new = ops->args[1];
	struct telem_sk *st;

	if (new != BPF_TCP_CLOSE || old == BPF_TCP_CLOSE)
		return;
	st = telem_state(ops);
	if (!st || st->state == TELEM_SK_DONE)
		return;
	if (st->state == TELEM_SK_CONNECTING) {
		/* the SYN may have been balanced before it failed */
		telem_resolve_backend(ops, st);
		telem_emit(ops, st, SLUICE_TELEM_FAIL, telem_fail_reason(telem_sk_err(ops)));
	} else {
		telem_emit(ops, st, SLUICE_TELEM_CLOSE, telem_close_reason(telem_sk_err(ops)));
	}
	st->state = TELEM_SK_DONE;
}

SEC("sockops")
int telemetry_sockops(struct bpf_sock_ops *ops)
{
	struct telem_sk *st;

	switch (ops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		telem_on_connect(ops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		telem_on_active_established(ops);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		telem_on_passive_established(ops);
		break;
	case BPF_SOCK_OPS_RTT_CB:
		telem_on_rtt(ops);
		break;
	case BPF_SOCK_OPS_RETRANS_CB:
		st = telem_state(ops);
		if (st && st->state != TELEM_SK_DONE &&
		    ops->args[2] == 0) /* args: seq, segs, err */
			st->retrans += ops->args[1];
		break;
	case BPF_SOCK_OPS_RTO_CB:
		st = telem_state(ops);
		if (st && st->state != TELEM_SK_DONE)
			st->rtos++;
		break;
	case BPF_SOCK_OPS_STATE_CB:
		telem_on_state(ops);
		break;
	}
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
