// SPDX-License-Identifier: MIT
/*
 * test_sock.c - user/lib/sock/sock.h against the real kernel (run as root).
 * BPF_PROG_TEST_RUN cannot run cgroup sock_addr, sockops or sk_msg
 * programs, so the programs are attached for real: to a child cgroup this
 * suite creates under the cgroup2 mount (never above it), with the test
 * traffic in a private network namespace on its loopback and made by
 * forked children that join the cgroup. Covers attach/detach with and
 * without pins (links outliving the handle, reuse in place), argument and
 * layout errors, connect/sendto/recvfrom/getpeername through the socket LB
 * (IPv4, IPv6, refusal, the no-refuse knob), the access policy at
 * connect() and sendmsg() (EPERM, deferral; explain agrees), the origin a connect() leaves
 * with its socket for telemetry, counters and the redirect
 * self-test. The cgroup and pins are removed at exit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb_load.h"
#include "explain.h"
#include "sluice.h"
#include "sock.h"
#include "test.h"

static char cgroup[512];
static char pin_dir[128];

/* ------------------------------------------------------------ fixtures */

static bool setup_cgroup(void)
{
	char line[1024], dev[256], mnt[512], type[64];
	FILE *f = fopen("/proc/mounts", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %511s %63s", dev, mnt, type) == 3 &&
		    !strcmp(type, "cgroup2")) {
			snprintf(cgroup, sizeof(cgroup), "%.400s/sluice-test-sock.%d", mnt,
				 getpid());
			break;
		}
	}
	if (f)
		fclose(f);
	return cgroup[0] && !mkdir(cgroup, 0755);
}

static void cleanup(void)
{
	if (pin_dir[0]) {
		sluice_sock__unpin(pin_dir);
		sluice__unpin(pin_dir);
	}
	if (cgroup[0])
		rmdir(cgroup);
}

static bool lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	bool ok = fd >= 0 && !ioctl(fd, SIOCGIFFLAGS, &ifr);

	ifr.ifr_flags |= IFF_UP;
	ok = ok && !ioctl(fd, SIOCSIFFLAGS, &ifr);
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Loads of skeletons pass through here (-Wl,--wrap in the Makefile): with
 * refuse_redir set, redir.bpf.o fails as on a kernel whose verifier or BTF
 * refuses it (EINVAL), and every other object loads for real. */
static bool refuse_redir;
static int skel_loads; /* objects loaded (or refused) so far */
int __real_bpf_object__load_skeleton(struct bpf_object_skeleton *s);
int __wrap_bpf_object__load_skeleton(struct bpf_object_skeleton *s);

int __wrap_bpf_object__load_skeleton(struct bpf_object_skeleton *s)
{
	int err;

	skel_loads++;
	if (refuse_redir && !strcmp(s->name, "redir_bpf"))
		return -EINVAL;
	err = test__lb_prepare(s);
	return err ? err : __real_bpf_object__load_skeleton(s);
}

static struct sluice *lib__open(const char *pins)
{
	struct sluice_opts opts = { .pin_dir = pins };
	struct sluice *s = NULL;

	if (!ASSERT_OK(sluice__open(&s, &opts), "sluice__open"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	return s;
}

static struct sluice_sock *sock__open(struct sluice *s, const char *pins, __u32 cfg)
{
	struct sluice_sock_opts opts = { .pin_dir = pins, .cfg = cfg };
	struct sluice_sock *ss = NULL;

	if (!ASSERT_OK(sluice_sock__open(&ss, s, &opts), "sluice_sock__open"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	return ss;
}

/* Programs of one attach type on the test cgroup. */
static __u32 cg_progs(enum bpf_attach_type type)
{
	__u32 ids[8], cnt = 8;
	int fd = open(cgroup, O_RDONLY | O_DIRECTORY);

	if (fd < 0 || bpf_prog_query(fd, type, 0, NULL, ids, &cnt))
		cnt = 99;
	if (fd >= 0)
		close(fd);
	return cnt;
}

static __u32 cg_prog_id(enum bpf_attach_type type)
{
	__u32 ids[8] = { 0 }, cnt = 8;
	int fd = open(cgroup, O_RDONLY | O_DIRECTORY);

	if (fd >= 0)
		bpf_prog_query(fd, type, 0, NULL, ids, &cnt);
	if (fd >= 0)
		close(fd);
	return ids[0];
}

static const enum bpf_attach_type lb_types[] = {
	BPF_CGROUP_INET4_CONNECT,     BPF_CGROUP_INET6_CONNECT,     BPF_CGROUP_UDP4_SENDMSG,
	BPF_CGROUP_UDP6_SENDMSG,      BPF_CGROUP_UDP4_RECVMSG,      BPF_CGROUP_UDP6_RECVMSG,
	BPF_CGROUP_INET4_GETPEERNAME, BPF_CGROUP_INET6_GETPEERNAME,
};

static bool lb_attached(__u32 want)
{
	for (size_t i = 0; i < ARRAY_SIZE(lb_types); i++)
		if (cg_progs(lb_types[i]) != want)
			return false;
	return true;
}

static void addr4(struct sluice_addr *a, const char *text)
{
	ASSERT_OK(sluice_addr__parse(a, text), text);
}

/* VIP:vport/proto -> one backend at addr:port (or none when !be). */
static int svc_set(struct sluice *s, const char *vip, __u16 vport, __u8 proto, const char *be,
		   __u16 port)
{
	struct sluice_backend_spec b = { .port = port, .weight = 1 };
	struct sluice_service_spec spec = { .port = vport, .proto = proto };

	addr4(&spec.vip, vip);
	if (be) {
		addr4(&b.addr, be);
		spec.nbackends = 1;
		spec.backends = &b;
	}
	return sluice__service_set(s, &spec);
}

static int listener(int family, int type, __u16 *port)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = in6addr_loopback };
	struct sockaddr_in a4 = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr *a = family == AF_INET ? (void *)&a4 : (void *)&a6;
	socklen_t len = family == AF_INET ? sizeof(a4) : sizeof(a6);
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, a, len) || (type == SOCK_STREAM && listen(fd, 16)) ||
	    getsockname(fd, a, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET ? a4.sin_port : a6.sin6_port);
	return fd;
}

/* Runs fn in a forked child that joined the test cgroup; returns its
 * exit status (0 = every check in the child passed). */
static int in_cgroup(int (*fn)(void *), void *arg)
{
	char path[600];
	int status = -1, fd;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
		fd = open(path, O_WRONLY);
		if (fd < 0 || write(fd, "0", 1) != 1)
			_exit(100);
		close(fd);
		_exit(fn(arg));
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

struct dial {
	int family, type;
	const char *vip;
	__u16 port;
	int want_errno; /* 0: must work */
};

static void sockaddr_of(const struct dial *d, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (d->family == AF_INET) {
		struct sockaddr_in *a = (void *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(d->port);
		inet_pton(AF_INET, d->vip, &a->sin_addr);
		*len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(d->port);
		inet_pton(AF_INET6, d->vip, &a->sin6_addr);
		*len = sizeof(*a);
	}
}

/* Child: connect (TCP) or sendto+recvfrom (UDP) to the VIP; the peer
 * address the socket reports must be the VIP. Exit codes say what broke. */
static int dial__child(void *arg)
{
	const struct dial *d = arg;
	struct sockaddr_storage vip, peer;
	socklen_t vlen, plen = sizeof(peer);
	struct timeval tv = { .tv_sec = 2 };
	char buf[16];
	int fd, rc;

	sockaddr_of(d, &vip, &vlen);
	fd = socket(d->family, d->type, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (d->type == SOCK_STREAM)
		rc = connect(fd, (struct sockaddr *)&vip, vlen);
	else
		rc = sendto(fd, "ping", 4, 0, (struct sockaddr *)&vip, vlen) == 4 ? 0 : -1;
	if (d->want_errno)
		return rc == -1 && errno == d->want_errno ? 0 : 1;
	if (rc)
		return 2;
	if (d->type == SOCK_STREAM)
		rc = getpeername(fd, (struct sockaddr *)&peer, &plen);
	else
		rc = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen) == 4 ? 0 :
											       -1;
	if (rc)
		return 3;
	return plen == vlen && !memcmp(&peer, &vip, vlen) ? 0 : 4;
}

/* ---------------------------------------------------------------- tests */

static void test_names(void)
{
	for (int i = 0; i < SLUICE_SOCK_CNT__MAX; i++) {
		ASSERT_TRUE(strcmp(sluice_sock__counter_name(i), "unknown"), "sock counter name");
		ASSERT_TRUE(*sluice_sock__counter_help(i), "sock counter help");
	}
	for (int i = 0; i < SLUICE_REDIR_CNT__MAX; i++) {
		ASSERT_TRUE(strcmp(sluice_sock__redir_counter_name(i), "unknown"), "redir name");
		ASSERT_TRUE(*sluice_sock__redir_counter_help(i), "redir counter help");
	}
	ASSERT_TRUE(!strcmp(sluice_sock__counter_name(SLUICE_SOCK_CNT__MAX), "unknown"), "range");
	ASSERT_TRUE(!strcmp(sluice_sock__redir_counter_name(-1), "unknown"), "range");
}

static void test_bad_args(void)
{
	struct sluice_sock *ss = NULL;
	struct sluice *s;

	ASSERT_EQ(sluice_sock__open(&ss, NULL, NULL), -EINVAL, "open without sluice");
	s = lib__open(NULL);
	if (!s)
		return;
	ss = sock__open(s, NULL, 0);
	if (ss) {
		ASSERT_EQ(sluice_sock__attach_lb(ss, "/tmp"), -EINVAL, "attach to tmpfs");
		ASSERT_TRUE(strstr(sluice__errmsg(), "not a cgroup v2 directory") != NULL,
			    "message");
		ASSERT_EQ(sluice_sock__attach_lb(ss, "/nonexistent/cg"), -ENOENT, "missing cgroup");
		ASSERT_TRUE(strstr(sluice__errmsg(), "/nonexistent/cg") != NULL, "names the path");
		ASSERT_EQ(sluice_sock__redir_addr_add(ss, &(struct sluice_addr){ .family = 9 }),
			  -EINVAL, "bad address family");
		ASSERT_TRUE(lb_attached(0), "nothing attached");
		ASSERT_EQ(sluice_sock__unpin(""), -EINVAL, "unpin empty dir");
	}
	sluice_sock__close(ss);
	sluice__close(s);
}

/* Without pins the attachment is the handle's: it goes with close(). */
static void test_attach_detach(void)
{
	struct sluice_sock_info info;
	struct sluice_sock *ss;
	struct sluice *s = lib__open(NULL);
	struct stat st;

	if (!s)
		return;
	ss = sock__open(s, NULL, 0);
	if (!ss)
		goto out;
	stat(cgroup, &st);
	if (!ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach lb"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	ASSERT_TRUE(lb_attached(1), "8 programs, one each");
	ASSERT_EQ(cg_progs(BPF_CGROUP_SOCK_OPS), 1, "and the health sockops");
	ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach again");
	ASSERT_TRUE(lb_attached(1), "still one each");
	ASSERT_OK(sluice_sock__info(ss, &info), "info");
	ASSERT_TRUE(info.lb_attached && !info.redir_attached, "info: lb only");
	ASSERT_EQ(info.lb_cgroup_id, st.st_ino, "info: cgroup id");
	ASSERT_OK(sluice_sock__detach_lb(ss), "detach lb");
	ASSERT_TRUE(lb_attached(0), "detached");
	ASSERT_OK(sluice_sock__detach_lb(ss), "detach twice");
	ASSERT_OK(sluice_sock__attach_redir(ss, cgroup), "attach redir");
	ASSERT_EQ(cg_progs(BPF_CGROUP_SOCK_OPS), 1, "sockops attached");
	ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach lb");
	sluice_sock__close(ss);
	ASSERT_TRUE(lb_attached(0), "closing the handle detached lb");
	ASSERT_EQ(cg_progs(BPF_CGROUP_SOCK_OPS), 0, "and sockops");
out:
	sluice__close(s);
}

/* TCP and UDP through the socket LB, both families; the datapath's maps
 * are the ones the programs read; no conntrack entry appears. */
static void test_lb_traffic(void)
{
	__u16 tport, uport, t6port, u6port;
	int tfd = listener(AF_INET, SOCK_STREAM, &tport);
	int ufd = listener(AF_INET, SOCK_DGRAM, &uport);
	int t6fd = listener(AF_INET6, SOCK_STREAM, &t6port);
	int u6fd = listener(AF_INET6, SOCK_DGRAM, &u6port);
	struct dial d4 = { AF_INET, SOCK_STREAM, "10.96.0.1", 80, 0 };
	struct dial d6 = { AF_INET6, SOCK_STREAM, "fd96::1", 80, 0 };
	struct dial u4 = { AF_INET, SOCK_DGRAM, "10.96.0.1", 53, 0 };
	struct dial u6 = { AF_INET6, SOCK_DGRAM, "fd96::1", 53, 0 };
	struct sluice_service_info *si = calloc(1, sizeof(*si));
	struct sluice_sock_info info;
	struct sluice_sock *ss = NULL;
	struct sluice *s = lib__open(NULL);
	struct sluice_addr vip;
	__u64 ct = 1;
	pid_t echo;

	if (!s || !si || !ASSERT_TRUE(tfd >= 0 && ufd >= 0 && t6fd >= 0 && u6fd >= 0, "listeners"))
		goto out;
	ASSERT_OK(svc_set(s, "10.96.0.1", 80, IPPROTO_TCP, "127.0.0.1", tport), "svc tcp4");
	ASSERT_OK(svc_set(s, "10.96.0.1", 53, IPPROTO_UDP, "127.0.0.1", uport), "svc udp4");
	ASSERT_OK(svc_set(s, "fd96::1", 80, IPPROTO_TCP, "::1", t6port), "svc tcp6");
	ASSERT_OK(svc_set(s, "fd96::1", 53, IPPROTO_UDP, "::1", u6port), "svc udp6");
	ss = sock__open(s, NULL, 0);
	if (!ss || !ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach lb"))
		goto out;
	/* UDP echo for the children, outside the cgroup */
	echo = fork();
	if (echo == 0) {
		for (;;) {
			struct sockaddr_storage from;
			socklen_t flen = sizeof(from);
			char b[16];
			ssize_t r = recvfrom(ufd, b, sizeof(b), MSG_DONTWAIT, (void *)&from, &flen);

			if (r > 0)
				sendto(ufd, b, r, 0, (void *)&from, flen);
			flen = sizeof(from);
			r = recvfrom(u6fd, b, sizeof(b), MSG_DONTWAIT, (void *)&from, &flen);
			if (r > 0)
				sendto(u6fd, b, r, 0, (void *)&from, flen);
			usleep(1000);
		}
	}
	ASSERT_EQ(in_cgroup(dial__child, &d4), 0, "tcp4 connect to the VIP, peer = VIP");
	ASSERT_EQ(in_cgroup(dial__child, &d6), 0, "tcp6 connect to the VIP, peer = VIP");
	ASSERT_EQ(in_cgroup(dial__child, &u4), 0, "udp4 reply from the VIP");
	ASSERT_EQ(in_cgroup(dial__child, &u6), 0, "udp6 reply from the VIP");
	kill(echo, SIGKILL);
	waitpid(echo, NULL, 0);
	ASSERT_EQ(dial__child(&d4), 2, "outside the cgroup the VIP is unreachable");

	ASSERT_OK(sluice_sock__info(ss, &info), "info");
	ASSERT_EQ(info.lb[SLUICE_SOCK_CNT_CONNECT], 2, "connects balanced");
	ASSERT_EQ(info.lb[SLUICE_SOCK_CNT_SENDMSG], 2, "datagrams balanced");
	ASSERT_EQ(info.lb[SLUICE_SOCK_CNT_RECVMSG], 2, "recvmsg rewritten");
	ASSERT_EQ(info.lb[SLUICE_SOCK_CNT_PEERNAME], 2, "getpeername rewritten");
	addr4(&vip, "10.96.0.1");
	ASSERT_OK(sluice__service_get(s, &vip, 80, IPPROTO_TCP, si), "service get");
	ASSERT_EQ(si->stats.flows, 1, "service flows");
	ASSERT_EQ(si->stats.packets, 0, "no per-packet work");
	ASSERT_OK(sluice__ct_count(s, &ct), "ct count");
	ASSERT_EQ(ct, 0, "no conntrack entries");
out:
	free(si);
	sluice_sock__close(ss);
	sluice__close(s);
	close(tfd);
	close(ufd);
	close(t6fd);
	close(u6fd);
}

/* A kernel that refuses redir.bpf.o keeps the socket LB: attach, traffic
 * and its counters work, info() names why redirection is unavailable, and
 * attaching redirection fails with that reason. */
static void test_lb_without_redir(void)
{
	__u16 tport;
	int tfd = listener(AF_INET, SOCK_STREAM, &tport);
	struct dial d4 = { AF_INET, SOCK_STREAM, "10.96.0.2", 80, 0 };
	struct sluice_sock_info info;
	struct sluice_sock *ss = NULL;
	struct sluice *s = lib__open(NULL);

	refuse_redir = true;
	if (!s || !ASSERT_TRUE(tfd >= 0, "listener"))
		goto out;
	ASSERT_OK(svc_set(s, "10.96.0.2", 80, IPPROTO_TCP, "127.0.0.1", tport), "svc tcp4");
	ss = sock__open(s, NULL, 0);
	if (!ss)
		goto out;
	if (!ASSERT_OK(sluice_sock__info(ss, &info), "info before attaching"))
		fprintf(stderr, "    %s\n", sluice__errmsg());
	ASSERT_TRUE(strstr(info.redir_unavailable, "socket redirect") != NULL,
		    "info names the refused redirect object");
	if (!ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach lb"))
		goto out;
	ASSERT_EQ(in_cgroup(dial__child, &d4), 0, "tcp4 connect to the VIP through the socket LB");
	ASSERT_OK(sluice_sock__info(ss, &info), "info");
	ASSERT_TRUE(info.lb_attached && !info.redir_attached, "info: lb attached, redir not");
	ASSERT_EQ(info.lb[SLUICE_SOCK_CNT_CONNECT], 1, "connect balanced");
	ASSERT_EQ(info.redir[SLUICE_REDIR_CNT_ADDED], 0, "redirect counters read 0");
	ASSERT_TRUE(info.redir_unavailable[0] != '\0', "still unavailable");
	ASSERT_TRUE(sluice_sock__attach_redir(ss, cgroup) < 0, "attach redir refused");
	ASSERT_TRUE(strstr(sluice__errmsg(), "socket redirect") != NULL,
		    "the error names the redirect object");
	ASSERT_TRUE(lb_attached(1), "socket LB still attached");
out:
	refuse_redir = false;
	sluice_sock__close(ss);
	sluice__close(s);
	close(tfd);
}

struct origin_dial {
	const char *addr; /* a VIP, or the backend itself */
	__u16 port;
	int map_fd;                   /* sk_origin, inherited over fork() */
	struct sluice_sk_origin want; /* family 0: the socket must have none */
};

/* Child: connect() over TCP, then read the socket's sk_origin (keyed by
 * the socket's fd from userspace). Exit codes say what broke. */
static int origin__child(void *arg)
{
	const struct origin_dial *d = arg;
	struct dial dd = { AF_INET, SOCK_STREAM, d->addr, d->port, 0 };
	struct sluice_sk_origin got;
	struct sockaddr_storage to;
	socklen_t len;
	int fd, err;

	sockaddr_of(&dd, &to, &len);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&to, len))
		return 2;
	err = bpf_map_lookup_elem(d->map_fd, &fd, &got);
	if (!d->want.family)
		return err && errno == ENOENT ? 0 : 3;
	if (err)
		return 4;
	return memcmp(&got, &d->want, sizeof(got)) ? 5 : 0;
}

/* What the origin of a connect() to vip:80 must read, from the service
 * as the library reports it (its only backend: 127.0.0.1:port). */
static bool origin__want(struct sluice *s, const char *vip, __u16 port, struct sluice_sk_origin *o)
{
	struct sluice_service_info *si = calloc(1, sizeof(*si));
	struct sluice_addr a, be;
	bool ok = false;

	addr4(&a, vip);
	addr4(&be, "127.0.0.1");
	if (si && ASSERT_OK(sluice__service_get(s, &a, 80, IPPROTO_TCP, si), vip) &&
	    ASSERT_EQ(si->nbackends, 1, "one backend")) {
		memset(o, 0, sizeof(*o));
		memcpy(o->vip, si->key.addr, sizeof(o->vip));
		memcpy(o->addr, be.addr, sizeof(o->addr));
		o->vip_port = htons(80);
		o->port = htons(port);
		o->svc_id = si->svc.svc_id;
		o->backend_id = si->backend_ids[0];
		o->family = SLUICE_AF_INET;
		ok = true;
	}
	free(si);
	return ok;
}

/* Two VIPs over one backend address:port: each socket's origin names the
 * VIP it connected to, its service and that service's backend id (what
 * telemetry credits); a socket that dialled the backend itself has none. */
static void test_lb_origin(void)
{
	struct origin_dial a = { .addr = "10.96.0.4", .port = 80 };
	struct origin_dial b = { .addr = "10.96.0.5", .port = 80 };
	struct origin_dial direct = { .addr = "127.0.0.1" };
	struct sluice_sock *ss = NULL;
	struct sluice *s = lib__open(NULL);
	__u16 port;
	int lfd = listener(AF_INET, SOCK_STREAM, &port);
	int map_fd;

	if (!s || !ASSERT_TRUE(lfd >= 0, "listener"))
		goto out;
	map_fd = sluice__map_fd(s, "sk_origin");
	if (!ASSERT_GE(map_fd, 0, "sk_origin map"))
		goto out;
	ASSERT_OK(svc_set(s, a.addr, 80, IPPROTO_TCP, "127.0.0.1", port), "svc A");
	ASSERT_OK(svc_set(s, b.addr, 80, IPPROTO_TCP, "127.0.0.1", port), "svc B");
	if (!origin__want(s, a.addr, port, &a.want) || !origin__want(s, b.addr, port, &b.want))
		goto out;
	ASSERT_NEQ(a.want.svc_id, b.want.svc_id, "two services");
	a.map_fd = b.map_fd = direct.map_fd = map_fd;
	direct.port = port;
	ss = sock__open(s, NULL, 0);
	if (!ss || !ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach lb"))
		goto out;
	ASSERT_EQ(in_cgroup(origin__child, &b), 0, "connect to VIP B: origin B");
	ASSERT_EQ(in_cgroup(origin__child, &a), 0, "connect to VIP A: origin A");
	ASSERT_EQ(in_cgroup(origin__child, &direct), 0, "connect to the backend: no origin");
out:
	sluice_sock__close(ss);
	sluice__close(s);
	if (lfd >= 0)
		close(lfd);
}

/* `meshctl explain`'s socket-path verdict for VIP:port/proto when the
 * socket LB runs with @cfg (or none is attached: @off). */
static int explain_sock(struct sluice *s, const char *vip, __u16 port, __u8 proto, __u32 cfg,
			bool off)
{
	struct sluice_explain_req r = { .path = SLUICE_EXPLAIN_SOCKET,
					.port = port,
					.proto = proto,
					.sock_cookie = 1,
					.sock_cfg = cfg,
					.sock_lb_off = off };
	struct sluice_explain *x = calloc(1, sizeof(*x));
	int v = -1;

	if (x && !sluice_addr__parse(&r.vip, vip) && !sluice__explain(s, &r, x))
		v = (int)x->verdict;
	free(x);
	return v;
}

/* No backends: ECONNREFUSED at once (not EPERM), for TCP and UDP; with
 * SLUICE_SOCK_CFG_NO_REFUSE (or NO_UDP, for UDP) the socket LB leaves the
 * socket alone and the packet path would answer (here: no route). Explain
 * says the same with each configuration. */
static void test_lb_refused(void)
{
	struct dial t4 = { AF_INET, SOCK_STREAM, "10.96.0.2", 80, ECONNREFUSED };
	struct dial t6 = { AF_INET6, SOCK_STREAM, "fd96::2", 80, ECONNREFUSED };
	struct dial u4 = { AF_INET, SOCK_DGRAM, "10.96.0.2", 53, ECONNREFUSED };
	struct dial pass = { AF_INET, SOCK_STREAM, "10.96.0.2", 80, ENETUNREACH };
	struct dial upass = { AF_INET, SOCK_DGRAM, "10.96.0.2", 53, ENETUNREACH };
	struct sluice_sock_info info;
	struct sluice_sock *ss = NULL;
	struct sluice *s = lib__open(NULL);

	if (!s)
		return;
	ASSERT_OK(svc_set(s, "10.96.0.2", 80, IPPROTO_TCP, NULL, 0), "svc tcp4");
	ASSERT_OK(svc_set(s, "fd96::2", 80, IPPROTO_TCP, NULL, 0), "svc tcp6");
	ASSERT_OK(svc_set(s, "10.96.0.2", 53, IPPROTO_UDP, NULL, 0), "svc udp4");
	ss = sock__open(s, NULL, 0);
	if (!ss || !ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach lb"))
		goto out;
	ASSERT_EQ(in_cgroup(dial__child, &t4), 0, "tcp4 ECONNREFUSED");
	ASSERT_EQ(in_cgroup(dial__child, &t6), 0, "tcp6 ECONNREFUSED");
	ASSERT_EQ(in_cgroup(dial__child, &u4), 0, "udp4 ECONNREFUSED");
	ASSERT_OK(sluice_sock__info(ss, &info), "info");
	ASSERT_EQ(info.lb[SLUICE_SOCK_CNT_REFUSED], 3, "refusals counted");
	ASSERT_EQ(explain_sock(s, "10.96.0.2", 80, IPPROTO_TCP, 0, false), SLUICE_XV_REFUSE,
		  "explain: tcp4 refused");
	ASSERT_EQ(explain_sock(s, "10.96.0.2", 53, IPPROTO_UDP, 0, false), SLUICE_XV_REFUSE,
		  "explain: udp4 refused");
	ASSERT_EQ(explain_sock(s, "10.96.0.2", 80, IPPROTO_TCP, 0, true), SLUICE_XV_PROCEED,
		  "explain: no socket LB attached, left to the packet path");
	sluice_sock__close(ss);
	ss = sock__open(s, NULL, SLUICE_SOCK_CFG_NO_REFUSE);
	if (!ss || !ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach lb, no-refuse"))
		goto out;
	ASSERT_EQ(in_cgroup(dial__child, &pass), 0, "no-refuse: left to routing (no route)");
	ASSERT_EQ(explain_sock(s, "10.96.0.2", 80, IPPROTO_TCP, sluice_sock__cfg(ss), false),
		  SLUICE_XV_PROCEED, "explain, no-refuse: left to the packet path");
	sluice_sock__close(ss);
	ss = sock__open(s, NULL, SLUICE_SOCK_CFG_NO_UDP);
	if (!ss || !ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach lb, no-udp"))
		goto out;
	ASSERT_EQ(in_cgroup(dial__child, &t4), 0, "no-udp: TCP still refused");
	ASSERT_EQ(in_cgroup(dial__child, &upass), 0, "no-udp: UDP left to routing (no route)");
	ASSERT_EQ(explain_sock(s, "10.96.0.2", 80, IPPROTO_TCP, sluice_sock__cfg(ss), false),
		  SLUICE_XV_REFUSE, "explain, no-udp: TCP still refused");
	ASSERT_EQ(explain_sock(s, "10.96.0.2", 53, IPPROTO_UDP, sluice_sock__cfg(ss), false),
		  SLUICE_XV_PROCEED, "explain, no-udp: UDP left to the packet path");
out:
	sluice_sock__close(ss);
	sluice__close(s);
}

/* Pinned links outlive the handle and are updated in place by the next
 * one; unpin detaches and removes every pin of ours. */
static void test_pins(void)
{
	struct sluice_sock_info info;
	struct sluice_sock *ss = NULL;
	struct sluice *s = lib__open(pin_dir);
	char path[256];
	__u32 prog;
	int fd;

	if (!s)
		return;
	ss = sock__open(s, pin_dir, 0);
	if (!ss || !ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach lb"))
		goto out;
	ASSERT_OK(sluice_sock__attach_redir(ss, cgroup), "attach redir");
	prog = cg_prog_id(BPF_CGROUP_INET4_CONNECT);
	sluice_sock__close(ss);
	sluice__close(s);
	ss = NULL;
	ASSERT_TRUE(lb_attached(1), "pinned links outlive the handles");
	ASSERT_EQ(cg_progs(BPF_CGROUP_SOCK_OPS), 2, "sockops too (health, redirect)");

	s = lib__open(pin_dir);
	ss = s ? sock__open(s, pin_dir, 0) : NULL;
	if (!ss)
		goto out;
	ASSERT_OK(sluice_sock__info(ss, &info), "info from the pins");
	ASSERT_TRUE(info.lb_attached && info.redir_attached, "attached, seen from a new handle");
	ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach again");
	ASSERT_TRUE(lb_attached(1), "still one program each");
	ASSERT_NEQ(cg_prog_id(BPF_CGROUP_INET4_CONNECT), prog, "new program in the old link");
	ASSERT_OK(sluice_sock__detach_redir(ss), "detach redir of the earlier handle");
	ASSERT_EQ(cg_progs(BPF_CGROUP_SOCK_OPS), 1, "redirect's sockops gone, health's stays");
	sluice_sock__close(ss);
	ss = NULL;
	ASSERT_OK(sluice_sock__unpin(pin_dir), "unpin");
	ASSERT_TRUE(lb_attached(0), "unpin detached");
	snprintf(path, sizeof(path), "%s/sock_nat", pin_dir);
	ASSERT_TRUE(access(path, F_OK) != 0, "own maps unpinned");
	snprintf(path, sizeof(path), "%s/services", pin_dir);
	ASSERT_TRUE(access(path, F_OK) == 0, "datapath maps left for sluice__unpin");

	/* A pin of another layout is refused, not reused. */
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "sock_layout", 4, 4, 1, NULL);
	if (ASSERT_GE(fd, 0, "layout map")) {
		__u32 k = 0, v = 99;

		bpf_map_update_elem(fd, &k, &v, 0);
		snprintf(path, sizeof(path), "%s/sock_layout", pin_dir);
		ASSERT_OK(bpf_obj_pin(fd, path), "pin layout");
		close(fd);
		ss = sock__open(s, pin_dir, 0);
		if (ss) {
			ASSERT_EQ(sluice_sock__attach_lb(ss, cgroup), -EPROTO, "other layout");
			ASSERT_TRUE(strstr(sluice__errmsg(), "layout version 99") != NULL,
				    "message");
		}
		sluice_sock__close(ss);
		ss = NULL;
		ASSERT_OK(sluice_sock__unpin(pin_dir), "unpin");
	}
out:
	sluice_sock__close(ss);
	sluice__close(s);
}

static void test_redir_selftest(void)
{
	struct sluice_sock_info before, after;
	struct sluice_sock *ss = NULL;
	struct sluice *s = lib__open(NULL);
	struct sluice_addr a;
	char why[256];

	if (!s)
		return;
	ss = sock__open(s, NULL, 0);
	if (!ss)
		goto out;
	ASSERT_EQ(sluice_sock__redir_selftest(ss, why, sizeof(why)), -ENOTCONN, "not attached");
	ASSERT_TRUE(strstr(why, "not attached") != NULL, "reason");
	if (!ASSERT_OK(sluice_sock__attach_redir(ss, cgroup), "attach redir"))
		goto out;
	ASSERT_OK(sluice_sock__info(ss, &before), "info");
	if (!ASSERT_OK(sluice_sock__redir_selftest(ss, why, sizeof(why)), "self-test"))
		fprintf(stderr, "    reason: %s\n", why);
	ASSERT_OK(sluice_sock__info(ss, &after), "info");
	ASSERT_GE(after.redir[SLUICE_REDIR_CNT_BYTES] - before.redir[SLUICE_REDIR_CNT_BYTES],
		  2 << 20, "redirected bytes");
	ASSERT_EQ(after.redir[SLUICE_REDIR_CNT_ADDED] - before.redir[SLUICE_REDIR_CNT_ADDED], 2,
		  "two sockets added");
	ASSERT_EQ(after.redir_sockets, 0, "map empty after close");
	addr4(&a, "192.0.2.1");
	ASSERT_OK(sluice_sock__redir_addr_add(ss, &a), "local addr add");
	ASSERT_OK(sluice_sock__redir_addr_del(ss, &a), "local addr del");
	ASSERT_OK(sluice_sock__redir_addr_del(ss, &a), "del of a missing address is fine");
	ASSERT_OK(sluice_sock__detach_redir(ss), "detach");
	ASSERT_EQ(sluice_sock__redir_selftest(ss, why, sizeof(why)), -ENOTCONN, "detached");
out:
	sluice_sock__close(ss);
	sluice__close(s);
}

/* A connect() from a bound source: the access policy (#15) at the socket. */
struct bound_dial {
	const char *src;
	__u16 sport, port;
	int want;     /* 0: connects; else the errno */
	bool no_port; /* IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect() */
};

/* What the last bound__child's socket was before connect(), for explain
 * in the parent (shared memory). */
struct bound_seen {
	struct sockaddr_in local; /* getsockname() */
	__u64 cookie;             /* SO_COOKIE */
};
static struct bound_seen *bound_seen;

static int bound__child(void *arg)
{
	const struct bound_dial *b = arg;
	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(b->port) };
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(b->sport) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc;
	socklen_t len = sizeof(bound_seen->local);
	socklen_t clen = sizeof(bound_seen->cookie);

	inet_pton(AF_INET, "10.96.0.7", &vip.sin_addr);
	if (b->src) {
		inet_pton(AF_INET, b->src, &src.sin_addr);
		if (b->no_port)
			setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &(int){ 1 },
				   sizeof(int));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)))
			return 5;
	}
	if (bound_seen && (getsockname(fd, (struct sockaddr *)&bound_seen->local, &len) ||
			   getsockopt(fd, SOL_SOCKET, SO_COOKIE, &bound_seen->cookie, &clen)))
		return 6;
	rc = connect(fd, (struct sockaddr *)&vip, sizeof(vip));
	if (b->want)
		return rc == -1 && errno == b->want ? 0 : 1;
	return rc ? 2 : 0;
}

/* A connected socket from 127.0.0.5 to the backend: a change that denies
 * that source destroys it (SOCK_DESTROY), and its owner sees the abort. */
static void policy_cut_socket(struct sluice *s, struct sluice_service_spec *spec,
			      struct sluice_policy_rule *deny, int lfd, __u16 tport)
{
	struct sockaddr_in be = { .sin_family = AF_INET, .sin_port = htons(tport) };
	struct sockaddr_in src = { .sin_family = AF_INET };
	__u64 flows = 0, socks = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), afd, sock_err = 0;
	char c;

	inet_pton(AF_INET, "127.0.0.1", &be.sin_addr);
	inet_pton(AF_INET, "127.0.0.5", &src.sin_addr);
	if (!ASSERT_OK(bind(fd, (struct sockaddr *)&src, sizeof(src)), "bind .5") ||
	    !ASSERT_OK(connect(fd, (struct sockaddr *)&be, sizeof(be)), "connect to the backend"))
		goto out;
	afd = accept(lfd, NULL, NULL);
	ASSERT_OK(sluice__policy_cut(s, &flows, &socks, &sock_err), "cut, nothing denied");
	ASSERT_EQ(socks, 0, "nothing destroyed yet");
	sluice_policy_rule__parse(&deny[1], "127.0.0.5/32");
	ASSERT_OK(sluice__service_set(s, spec), "deny .5");
	ASSERT_OK(sluice__policy_cut(s, &flows, &socks, &sock_err), "cut");
	ASSERT_EQ(sock_err, 0, "sock_diag destroy available");
	ASSERT_EQ(socks, 1, "one socket destroyed");
	ASSERT_TRUE(recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == ECONNABORTED, "owner sees abort");
	if (afd >= 0)
		close(afd);
out:
	close(fd);
}

/* `meshctl explain --socket-cookie C --socket-src ADDR:PORT [--route-src
 * ROUTE]` for the socket the last bound__child described. */
static int explain_bound(struct sluice *s, const char *vip, __u16 port, __u8 proto,
			 const char *route, struct sluice_explain *x)
{
	struct sluice_explain_req r = { .path = SLUICE_EXPLAIN_SOCKET,
					.port = port,
					.proto = proto,
					.sock_cookie = bound_seen->cookie };

	sluice_addr__parse(&r.vip, vip);
	r.sock_src.family = SLUICE_AF_INET;
	r.sock_src.addr[0] = bound_seen->local.sin_addr.s_addr;
	r.sock_sport = ntohs(bound_seen->local.sin_port);
	if (route)
		sluice_addr__parse(&r.route_src, route);
	return sluice__explain(s, &r, x);
}

/* Explain says what the socket LB just did to the socket of case @d: EPERM
 * is deny (and the rule), a deferral is deferred (and the packet path's
 * check of @route), a connect() balanced. */
static void explain_bound_check(struct sluice *s, const struct bound_dial *d, const char *rule,
				const char *route, const char *what)
{
	struct sluice_explain *x = calloc(1, sizeof(*x));
	char buf[SLUICE_CIDR_STRLEN];

	if (!ASSERT_TRUE(x, "calloc") ||
	    !ASSERT_OK(explain_bound(s, "10.96.0.7", d->port, IPPROTO_TCP, route, x),
		       "explain, socket path"))
		goto out;
	/* port 80's service has rules, 81's only meets the node list */
	ASSERT_TRUE(x->nsteps > 0 &&
			    strstr(x->steps[0].text, d->port == 80 ? " access-policy" : " none"),
		    "explain's service step names the access policy flag");
	switch (d->want) {
	case EPERM:
		ASSERT_EQ(x->verdict, SLUICE_XV_DENY, what);
		ASSERT_EQ(x->policy.verdict, SLUICE_XA_DENY, "explain: the policy denies");
		ASSERT_TRUE(x->policy.has_rule &&
				    !strcmp(sluice_cidr__str(&x->policy.rule, buf, sizeof(buf)),
					    rule),
			    "explain names the rule that denied");
		break;
	case ENETUNREACH:
		ASSERT_EQ(x->verdict, SLUICE_XV_PROCEED, what);
		ASSERT_EQ(x->policy.verdict, SLUICE_XA_DEFERRED, "explain: deferred");
		ASSERT_TRUE(x->packet_checked,
			    "explain: the packet path's check of the route's source");
		ASSERT_EQ(x->packet_policy.verdict, SLUICE_XA_DENY,
			  "explain: the packet path denies");
		break;
	default:
		ASSERT_EQ(x->verdict, SLUICE_XV_BALANCED, what);
		ASSERT_EQ(x->policy.verdict, SLUICE_XA_ALLOW, "explain: the policy allows");
	}
out:
	free(x);
}

static void test_lb_policy(void)
{
	/* rule: the entry explain names for a denial; route: the source the
	 * packet path would see after a deferral (denied there) */
	static const struct {
		struct bound_dial d;
		const char *what, *rule, *route;
	} cases[] = {
		{ .d = { "127.0.0.1", 0, 80, 0, false }, .what = "allowed bound source connects" },
		{ .d = { "127.0.0.2", 0, 80, EPERM, false },
		  .what = "denied bound source: EPERM",
		  .rule = "127.0.0.2/32" },
		{ .d = { NULL, 0, 80, ENETUNREACH, false },
		  .what = "unbound: deferred to the packet path (no route)",
		  .route = "127.0.0.2" },
		{ .d = { "127.0.0.3", 0, 80, ENETUNREACH, true },
		  .what = "port rule, port not bound: deferred",
		  .route = "127.0.0.2" },
		{ .d = { "127.0.0.3", 40005, 80, EPERM, false },
		  .what = "port rule, bound port inside: EPERM",
		  .rule = "127.0.0.3/32" },
		{ .d = { "127.0.0.3", 40020, 80, 0, false },
		  .what = "port rule, bound port outside: connects" },
		{ .d = { "127.0.0.4", 0, 81, EPERM, false },
		  .what = "node-wide deny on a service without rules",
		  .rule = "127.0.0.4/32" },
		{ .d = { "127.0.0.1", 0, 81, 0, false }, .what = "node list: others connect" },
	};
	struct sluice_policy_rule deny[2];
	struct sluice_backend_spec b = { .port = 0, .weight = 1 };
	struct sluice_service_spec spec = { .port = 80,
					    .proto = IPPROTO_TCP,
					    .nbackends = 1,
					    .backends = &b,
					    .deny = deny,
					    .ndeny = 2 };
	struct sluice_sock_info info;
	struct sluice_sock *ss = NULL;
	struct sluice *s = lib__open(NULL);
	struct sluice_cidr node;
	__u16 tport;
	int tfd = listener(AF_INET, SOCK_STREAM, &tport);

	if (!s || !ASSERT_TRUE(tfd >= 0, "listener"))
		goto out;
	b.port = tport;
	addr4(&b.addr, "127.0.0.1");
	addr4(&spec.vip, "10.96.0.7");
	sluice_policy_rule__parse(&deny[0], "127.0.0.2/32");
	sluice_policy_rule__parse(&deny[1], "127.0.0.3/32:40000-40010");
	ASSERT_OK(sluice__service_set(s, &spec), "svc with deny rules");
	ASSERT_OK(svc_set(s, "10.96.0.7", 81, IPPROTO_TCP, "127.0.0.1", tport), "svc 81");
	sluice_cidr__parse(&node, "127.0.0.4/32");
	ASSERT_OK(sluice__policy_node_set(s, &node, 1), "node list");
	ss = sock__open(s, NULL, 0);
	if (!ss || !ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach lb"))
		goto out;
	bound_seen = mmap(NULL, sizeof(*bound_seen), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!ASSERT_TRUE(bound_seen != MAP_FAILED, "shared memory")) {
		bound_seen = NULL;
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (!ASSERT_EQ(in_cgroup(bound__child, (void *)&cases[i].d), 0, cases[i].what))
			continue;
		explain_bound_check(s, &cases[i].d, cases[i].rule, cases[i].route, cases[i].what);
	}
	munmap(bound_seen, sizeof(*bound_seen));
	bound_seen = NULL;
	ASSERT_OK(sluice_sock__info(ss, &info), "info");
	ASSERT_EQ(info.lb[SLUICE_SOCK_CNT_POLICY_DENIED], 3, "denials counted");
	ASSERT_EQ(info.lb[SLUICE_SOCK_CNT_POLICY_DEFER], 2, "deferrals counted");
	ASSERT_EQ(info.lb[SLUICE_SOCK_CNT_CONNECT], 3, "connects balanced");
	policy_cut_socket(s, &spec, deny, tfd, tport);
out:
	sluice_sock__close(ss);
	sluice__close(s);
	if (tfd >= 0)
		close(tfd);
}

/* An unconnected UDP socket's sendto() to the VIP, bound to src:0 (not
 * bound when !src); the local address goes to bound_seen first. */
struct udp_dial {
	const char *src;
	int want; /* 0: sent; else the errno */
};

static int udp_bound__child(void *arg)
{
	const struct udp_dial *u = arg;
	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(53) };
	struct sockaddr_in src = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rc;
	socklen_t len = sizeof(bound_seen->local);
	socklen_t clen = sizeof(bound_seen->cookie);

	inet_pton(AF_INET, "10.96.0.8", &vip.sin_addr);
	if (u->src) {
		inet_pton(AF_INET, u->src, &src.sin_addr);
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)))
			return 5;
	}
	if (getsockname(fd, (struct sockaddr *)&bound_seen->local, &len) ||
	    getsockopt(fd, SOL_SOCKET, SO_COOKIE, &bound_seen->cookie, &clen))
		return 6;
	rc = sendto(fd, "ping", 4, 0, (struct sockaddr *)&vip, sizeof(vip)) == 4 ? 0 : -1;
	if (u->want)
		return rc == -1 && errno == u->want ? 0 : 1;
	return rc ? 2 : 0;
}

/* Datagrams waiting on the backend socket @fd, the last one's source
 * into @from (drained). */
static int udp_drain(int fd, struct sockaddr_in *from)
{
	socklen_t len = sizeof(*from);
	char b[16];
	int n = 0;

	while (recvfrom(fd, b, sizeof(b), MSG_DONTWAIT, (struct sockaddr *)from, &len) > 0) {
		n++;
		len = sizeof(*from);
	}
	return n;
}

/* A UDP socket from 127.0.0.5 connected to the backend (as the socket LB
 * leaves one: its datagrams go there unchecked) and an unconnected one:
 * a change that denies 127.0.0.5 destroys the connected one only, whose
 * owner sees ECONNABORTED, then a socket with no peer. A TCP service on
 * the same backend address and port that denies 127.0.0.6 leaves .6's
 * connected UDP socket alone: only a service of its own protocol counts. */
static void policy_cut_udp(struct sluice *s, struct sluice_service_spec *spec,
			   struct sluice_policy_rule *deny, __u16 uport)
{
	struct sockaddr_in be = { .sin_family = AF_INET, .sin_port = htons(uport) };
	struct sockaddr_in src = { .sin_family = AF_INET }, src6 = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), ufd = socket(AF_INET, SOCK_DGRAM, 0);
	int fd6 = socket(AF_INET, SOCK_DGRAM, 0);
	struct sluice_service_spec tcp = *spec;
	struct sluice_policy_rule deny6;
	__u64 flows = 0, socks = 0;
	int sock_err = 0;
	char c;

	inet_pton(AF_INET, "127.0.0.1", &be.sin_addr);
	inet_pton(AF_INET, "127.0.0.5", &src.sin_addr);
	inet_pton(AF_INET, "127.0.0.6", &src6.sin_addr);
	if (!ASSERT_OK(bind(fd, (struct sockaddr *)&src, sizeof(src)), "bind .5") ||
	    !ASSERT_OK(connect(fd, (struct sockaddr *)&be, sizeof(be)), "connect to the backend") ||
	    !ASSERT_OK(bind(ufd, (struct sockaddr *)&src, sizeof(src)), "bind .5, unconnected") ||
	    !ASSERT_OK(bind(fd6, (struct sockaddr *)&src6, sizeof(src6)), "bind .6") ||
	    !ASSERT_OK(connect(fd6, (struct sockaddr *)&be, sizeof(be)), "connect .6"))
		goto out;
	ASSERT_OK(sluice__policy_cut(s, &flows, &socks, &sock_err), "cut, nothing denied");
	ASSERT_EQ(socks, 0, "nothing destroyed yet");
	tcp.proto = IPPROTO_TCP;
	tcp.deny = &deny6;
	sluice_policy_rule__parse(&deny6, "127.0.0.6/32");
	ASSERT_OK(sluice__service_set(s, &tcp), "a TCP service on the same backend denies .6");
	sluice_policy_rule__parse(deny, "127.0.0.5/32");
	ASSERT_OK(sluice__service_set(s, spec), "deny .5");
	ASSERT_OK(sluice__policy_cut(s, &flows, &socks, &sock_err), "cut");
	ASSERT_EQ(sock_err, 0, "sock_diag destroy available");
	ASSERT_EQ(socks, 1, "the connected UDP socket destroyed, not the others");
	ASSERT_TRUE(recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == ECONNABORTED, "owner sees abort");
	ASSERT_TRUE(send(fd, "x", 1, 0) < 0 && errno == EDESTADDRREQ, "then no peer");
	ASSERT_EQ(send(fd6, "x", 1, 0), 1,
		  ".6's UDP socket kept: the TCP service's rule is not its");
	ASSERT_OK(sluice__service_del(s, &tcp.vip, tcp.port, IPPROTO_TCP), "TCP service removed");
out:
	close(fd);
	close(ufd);
	close(fd6);
}

/* The access policy at sendmsg(): an unconnected UDP socket bound to a
 * denied source gets EPERM from sendto() to the VIP and nothing reaches
 * the backend; a bound allowed source is balanced to it; an unbound one is
 * deferred (the packet path would check it: here no route). Explain of
 * each socket says the same. */
static void test_lb_policy_udp(void)
{
	struct udp_dial denied = { "127.0.0.2", EPERM }, allowed = { "127.0.0.1", 0 },
			unbound = { NULL, ENETUNREACH };
	struct sluice_policy_rule deny;
	struct sluice_backend_spec b = { .port = 0, .weight = 1 };
	struct sluice_service_spec spec = { .port = 53,
					    .proto = IPPROTO_UDP,
					    .nbackends = 1,
					    .backends = &b,
					    .deny = &deny,
					    .ndeny = 1 };
	struct sluice_explain *x = calloc(1, sizeof(*x));
	struct sluice_sock_info info;
	struct sluice_sock *ss = NULL;
	struct sluice *s = lib__open(NULL);
	struct sockaddr_in from;
	__u16 uport;
	int ufd = listener(AF_INET, SOCK_DGRAM, &uport);

	bound_seen = mmap(NULL, sizeof(*bound_seen), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (bound_seen == MAP_FAILED)
		bound_seen = NULL;
	if (!s || !x || !ASSERT_TRUE(ufd >= 0 && bound_seen, "listener, shared memory"))
		goto out;
	b.port = uport;
	addr4(&b.addr, "127.0.0.1");
	addr4(&spec.vip, "10.96.0.8");
	sluice_policy_rule__parse(&deny, "127.0.0.2/32");
	ASSERT_OK(sluice__service_set(s, &spec), "udp svc with a deny rule");
	ss = sock__open(s, NULL, 0);
	if (!ss || !ASSERT_OK(sluice_sock__attach_lb(ss, cgroup), "attach lb"))
		goto out;

	ASSERT_EQ(in_cgroup(udp_bound__child, &denied), 0, "denied bound source: sendto() EPERM");
	ASSERT_EQ(udp_drain(ufd, &from), 0, "nothing reached the backend");
	if (ASSERT_OK(explain_bound(s, "10.96.0.8", 53, IPPROTO_UDP, NULL, x), "explain denied"))
		ASSERT_EQ(x->verdict, SLUICE_XV_DENY, "explain: deny (EPERM)");

	ASSERT_EQ(in_cgroup(udp_bound__child, &allowed), 0, "allowed bound source: sent");
	usleep(20000);
	ASSERT_EQ(udp_drain(ufd, &from), 1, "the datagram reached the backend");
	ASSERT_EQ(ntohs(from.sin_port), ntohs(bound_seen->local.sin_port), "from the bound port");
	if (ASSERT_OK(explain_bound(s, "10.96.0.8", 53, IPPROTO_UDP, NULL, x), "explain allowed"))
		ASSERT_EQ(x->verdict, SLUICE_XV_BALANCED, "explain: balanced");

	ASSERT_EQ(in_cgroup(udp_bound__child, &unbound), 0, "unbound: deferred (no route)");
	if (ASSERT_OK(explain_bound(s, "10.96.0.8", 53, IPPROTO_UDP, NULL, x), "explain unbound"))
		ASSERT_EQ(x->policy.verdict, SLUICE_XA_DEFERRED, "explain: deferred");

	ASSERT_OK(sluice_sock__info(ss, &info), "info");
	ASSERT_EQ(info.lb[SLUICE_SOCK_CNT_POLICY_DENIED], 1, "denial counted");
	ASSERT_EQ(info.lb[SLUICE_SOCK_CNT_POLICY_DEFER], 1, "deferral counted");
	ASSERT_EQ(info.lb[SLUICE_SOCK_CNT_SENDMSG], 1, "one datagram balanced");
	policy_cut_udp(s, &spec, &deny, uport);
out:
	if (bound_seen)
		munmap(bound_seen, sizeof(*bound_seen));
	bound_seen = NULL;
	free(x);
	sluice_sock__close(ss);
	sluice__close(s);
	if (ufd >= 0)
		close(ufd);
}

/* A new handle on pin_dir and its counters (@what), which load no object. */
static struct sluice_sock *counters_fresh(struct sluice *s, struct sluice_sock_info *a,
					  const char *what)
{
	struct sluice_sock *ss = sock__open(s, pin_dir, 0);
	int loads = skel_loads;

	if (ss) {
		ASSERT_OK(sluice_sock__counters(ss, a), what);
		ASSERT_EQ(skel_loads, loads, "no object loaded");
	}
	return ss;
}

/* What a metrics scrape reads (sluice_sock__counters()) loads no object:
 * with nothing pinned every figure is 0; with the parts pinned by an
 * earlier handle (their counters written there) it sums the pins, and
 * gives what sluice_sock__info() gives after loading them; a shorter
 * counters pin gives what it has, a redirect pin of another shape 0. */
static void test_counters_noload(void)
{
	struct sluice_sock_info a, b;
	struct sluice_sock *ss = NULL;
	struct sluice *s = lib__open(pin_dir);
	int ncpu = libbpf_num_possible_cpus(), fd = -1, loads;
	__u32 k = SLUICE_SOCK_CNT__MAX - 1;
	__u64 *v = NULL, want = 0;
	char path[256];

	if (!s || !ASSERT_GE(ncpu, 1, "cpus"))
		goto out;
	sluice_sock__unpin(pin_dir);
	ss = counters_fresh(s, &a, "counters, nothing pinned");
	if (!ss)
		goto out;
	loads = skel_loads;
	memset(&b, 0, sizeof(b));
	ASSERT_MEM_EQ(&a, &b, sizeof(a), "all 0");
	ASSERT_OK(sluice_sock__info(ss, &b), "info loads");
	ASSERT_EQ(skel_loads, loads + 2, "info loaded both parts");
	sluice_sock__close(ss);
	ss = NULL;
	snprintf(path, sizeof(path), "%s/sock_counters", pin_dir);
	fd = bpf_obj_get(path);
	v = calloc((size_t)ncpu, sizeof(*v));
	if (!ASSERT_GE(fd, 0, "sock_counters pinned") || !ASSERT_TRUE(v != NULL, "alloc"))
		goto out;
	for (int i = 0; i < ncpu; i++)
		want += v[i] = 1000u + (__u64)i;
	ASSERT_OK(bpf_map_update_elem(fd, &k, v, BPF_ANY), "a count on every CPU");
	ss = counters_fresh(s, &a, "counters from the pins");
	if (!ss)
		goto out;
	ASSERT_EQ(a.lb[k], want, "summed over the CPUs");
	ASSERT_OK(sluice_sock__info(ss, &b), "info");
	ASSERT_MEM_EQ(a.lb, b.lb, sizeof(a.lb), "the socket LB's counters as info gives them");
	ASSERT_MEM_EQ(a.redir, b.redir, sizeof(a.redir), "redirect's too");
	ASSERT_EQ(a.redir_sockets, b.redir_sockets, "redirected sockets");
	loads = skel_loads;
	ASSERT_OK(sluice_sock__counters(ss, &a), "counters of loaded parts");
	ASSERT_EQ(skel_loads, loads, "nothing loaded again");
	ASSERT_EQ(a.lb[k], want, "read from the loaded map");
	sluice_sock__close(ss);
	ss = NULL;
	close(fd);
	fd = -1;

	/* Pins of another shape: a sock_counters of 2 entries (an older
	 * agent's) gives those two, the rest 0; a redir_counters whose values
	 * are not 8 bytes is not read (0), and does not cost the LB's. */
	sluice_sock__unpin(pin_dir);
	fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "sock_counters", 4, 8, 2, NULL);
	if (!ASSERT_GE(fd, 0, "a 2-entry sock_counters"))
		goto out;
	k = 1;
	ASSERT_OK(bpf_map_update_elem(fd, &k, v, BPF_ANY), "its entry 1");
	ASSERT_OK(bpf_obj_pin(fd, path), "pinned where the LB's goes");
	close(fd);
	snprintf(path, sizeof(path), "%s/redir_counters", pin_dir);
	fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "redir_counters", 4, 4, 8, NULL);
	if (!ASSERT_GE(fd, 0, "a redir_counters of 4-byte values") ||
	    !ASSERT_OK(bpf_obj_pin(fd, path), "pinned"))
		goto out;
	ss = counters_fresh(s, &a, "counters of odd pins");
	if (!ss)
		goto out;
	ASSERT_EQ(a.lb[1], want, "the older pin's entry 1");
	ASSERT_EQ(a.lb[0] + a.lb[SLUICE_SOCK_CNT__MAX - 1], 0, "beyond it: 0");
	ASSERT_EQ(a.redir[0] + a.redir_sockets, 0, "the odd redirect pin reads 0");
out:
	if (fd >= 0)
		close(fd);
	free(v);
	sluice_sock__close(ss);
	sluice__close(s);
	sluice_sock__unpin(pin_dir);
	snprintf(path, sizeof(path), "%s/sock_counters", pin_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/redir_counters", pin_dir);
	unlink(path);
}

static const struct test tests[] = {
	TEST(test_names),      TEST(test_bad_args),       TEST(test_attach_detach),
	TEST(test_lb_traffic), TEST(test_lb_refused),     TEST(test_lb_origin),
	TEST(test_pins),       TEST(test_redir_selftest), TEST(test_lb_without_redir),
	TEST(test_lb_policy),  TEST(test_lb_policy_udp),  TEST(test_counters_noload),
};

int main(int argc, char **argv)
{
	if (!test__have_root("sock", "attaches cgroup programs"))
		return 0;
	/* Test traffic stays in a private netns; cgroup programs see it
	 * because the cgroup, not the netns, scopes them. */
	if (unshare(CLONE_NEWNET) || !lo_up()) {
		printf("FAIL: sock/setup (private network namespace: %s)\n", strerror(errno));
		return 1;
	}
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/sluice-test-sock-%d", getpid());
	if (!setup_cgroup()) {
		printf("FAIL: sock/setup (no cgroup2 mount or cannot create %s)\n", cgroup);
		return 1;
	}
	atexit(cleanup);
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("sock", tests, ARRAY_SIZE(tests), argc, argv);
}
