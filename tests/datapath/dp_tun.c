// SPDX-License-Identifier: MIT
/*
 * dp_tun.c - the way in for frames BPF_PROG_TEST_RUN refuses: a TUN
 * device in a network namespace of a forked child (see dp.h). Nothing here
 * touches the caller's namespace; the device, its attachments and the
 * namespace disappear when the child exits, however it exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <bpf/libbpf.h>

#include "dp.h"

bool dp__needs_tun(const struct dp *d, const struct pkt *in)
{
	__u16 proto;

	if (in->len < 14)
		return true;
	if (d->prog != DP_TC)
		return false;
	/* the kernel wants a whole network header behind these ethertypes */
	proto = pkt__get16(in, 12);
	return (proto == ETH_P_IP && in->len < 14 + 20) ||
	       (proto == ETH_P_IPV6 && in->len < 14 + 40);
}

bool dp__tun_open(struct dp *d, struct dp_tun *t)
{
	struct ifreq ifr = { 0 };
	int sk = -1, err;

	t->fd = -1;
	if (unshare(CLONE_NEWNET)) {
		dp__fail(d, "unshare(CLONE_NEWNET): %s", strerror(errno));
		return false;
	}
	t->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (t->fd < 0) {
		dp__fail(d, "open /dev/net/tun: %s", strerror(errno));
		return false;
	}
	/* IFF_TUN with packet info: any length, even 0, is accepted */
	ifr.ifr_flags = IFF_TUN;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "sltun%d", (int)getpid() % 100000);
	if (ioctl(t->fd, TUNSETIFF, &ifr) < 0)
		goto err;
	sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sk < 0 || ioctl(sk, SIOCGIFFLAGS, &ifr) < 0)
		goto err;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sk, SIOCSIFFLAGS, &ifr) < 0)
		goto err;
	close(sk);
	t->ifindex = (int)if_nametoindex(ifr.ifr_name);
	if (d->prog == DP_XDP) {
		err = bpf_xdp_attach(t->ifindex, d->prog_fd, 0, NULL);
	} else {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = t->ifindex,
			    .attach_point = BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = d->prog_fd);

		err = bpf_tc_hook_create(&hook);
		if (!err || err == -EEXIST)
			err = bpf_tc_attach(&hook, &opts);
	}
	if (err) {
		dp__fail(d, "attaching to the TUN device: %d", err);
		return false;
	}
	return true;
err:
	dp__fail(d, "TUN device %s: %s", ifr.ifr_name, strerror(errno));
	if (sk >= 0)
		close(sk);
	return false;
}

bool dp__tun_send(struct dp *d, struct dp_tun *t, const struct pkt *in,
		  const struct dp_counts *before, struct dp_counts *after)
{
	struct timespec ts = { 0, 1000000 };
	__u8 buf[4 + PKT_MAX];

	/* struct tun_pi: flags 0, protocol IPv4 (the stack discards it later) */
	buf[0] = 0;
	buf[1] = 0;
	buf[2] = ETH_P_IP >> 8;
	buf[3] = ETH_P_IP & 0xff;
	memcpy(buf + 4, in->buf, in->len);
	if (write(t->fd, buf, 4 + in->len) != (ssize_t)(4 + in->len)) {
		dp__fail(d, "write of %zu bytes to TUN: %s", in->len, strerror(errno));
		return false;
	}
	/* delivery is synchronous today; polling guards against a softirq */
	for (int i = 0; i < 200; i++) {
		if (!dp__counts(d, after))
			return false;
		if (memcmp(before, after, sizeof(*after)))
			break;
		nanosleep(&ts, NULL);
	}
	return true;
}

void dp__tun_close(struct dp_tun *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

void dp__in_child(struct dp *d, int (*fn)(struct dp *d, void *arg), void *arg)
{
	int status = 0;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		dp__fail(d, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		test__failed = 0;
		_exit(fn(d, arg) || test__failed ? 1 : 0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		dp__fail(d, "forked child failed (status %#x)", status);
}
