// SPDX-License-Identifier: MIT
/*
 * dp_step.c - helpers of hand-written datapath tests that walk a flow
 * packet by packet (test_snat.c, test_drop_empty.c): one step with its
 * exact verdict, output bytes and counter deltas, and service flags
 * written into the services map as meshd would write them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "dp.h"

bool dp__svc_flags(struct dp *d, const char *vip, __u16 port, __u8 proto, __u16 flags)
{
	struct sluice_addr a = dp__addr(vip);
	struct sluice_svc_key k = { .port = htons(port), .proto = proto, .family = a.family };
	int fd = sluice__map_fd(d->s, "services");
	struct sluice_svc v;

	memcpy(k.addr, a.addr, sizeof(k.addr));
	if (fd < 0 || bpf_map_lookup_elem(fd, &k, &v)) {
		dp__fail(d, "no service %s:%u/%u to flag", vip, port, proto);
		return false;
	}
	v.flags |= flags;
	if (bpf_map_update_elem(fd, &k, &v, BPF_EXIST)) {
		dp__fail(d, "flagging %s:%u/%u: %s", vip, port, proto, strerror(errno));
		return false;
	}
	return true;
}

bool dp__step(struct dp *d, const struct dp_pkt *in_spec, const struct dp_pkt *exp_spec,
	      int verdict, const __u64 *cnt, const __u64 *drop)
{
	static struct pkt in, got, exp;
	struct dp_counts before, after;
	int v;

	dp__build(&in, in_spec);
	if (!dp__counts(d, &before) || !dp__send(d, &in, &got, &v) || !dp__counts(d, &after))
		return false;
	if (v != dp__verdict_for(d, verdict)) {
		dp__fail(d, "verdict %s, expected %s", dp__verdict_name(d, v),
			 dp__verdict_name(d, dp__verdict_for(d, verdict)));
		return false;
	}
	if (exp_spec) {
		dp__build(&exp, exp_spec);
		if (!dp__expect_bytes(d, "output", &got, &exp))
			return false;
	}
	return dp__expect_counts(d, "counters", &before, &after, cnt, drop);
}
