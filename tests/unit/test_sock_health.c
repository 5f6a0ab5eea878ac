// SPDX-License-Identifier: MIT
/*
 * test_sock_health.c - passive outlier detection on the socket path (#14):
 * the socket LB's sockops program (sock_health_ops) with real sockets.
 * As in test_sock.c, the programs are attached to a child cgroup this
 * suite creates and the traffic stays in a private network namespace,
 * made by forked children that joined the cgroup. A VIP with a live and a
 * dead backend (a closed port: RST, ECONNREFUSED): three refused
 * connect()s eject the dead one, counted once per socket, with its event;
 * then every connect() reaches the live one, whose success zeroes its
 * failures. A backend whose SYNs vanish (a veth with nobody behind it) counts one
 * SOCK_TIMEOUT at the first retransmission timeout and not again when the
 * socket is closed. Sockets the client closes itself in SYN_SENT count
 * nothing. svc_health is written by the test (h14-ctl writes it
 * in the library). The cgroup is removed at exit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lb_load.h"
#include "sluice.h"
#include "sock.h"
#include "test.h"

#define VIP "10.96.0.90"
#define VIP_BLACKHOLE "10.96.0.91"
#define BLACKHOLE_BE "192.0.2.1"

static char cgroup[512];
static char pin_dir[128];

static bool setup_cgroup(void)
{
	char line[1024], dev[256], mnt[512], type[64];
	FILE *f = fopen("/proc/mounts", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %511s %63s", dev, mnt, type) == 3 &&
		    !strcmp(type, "cgroup2")) {
			snprintf(cgroup, sizeof(cgroup), "%.400s/sluice-test-sock-health.%d", mnt,
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

/* Runs fn in a forked child that joined the test cgroup; its exit code. */
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

/* A TCP port on 127.0.0.1: listening, or bound then closed (refuses). */
static int tcp_port(bool listening, __u16 *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, len) || (listening && listen(fd, 128)) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	if (!listening) {
		close(fd);
		return 0;
	}
	return fd;
}

/* Shared with the children (MAP_SHARED). */
struct dials {
	int max;     /* connect()s at most */
	int stop_at; /* stop after this many refusals (0: never) */
	int ok, refused, other;
};

static int dials__child(void *arg)
{
	struct dials *d = arg;
	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(80) };

	inet_pton(AF_INET, VIP, &vip.sin_addr);
	for (int i = 0; i < d->max && (!d->stop_at || d->refused < d->stop_at); i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (!connect(fd, (struct sockaddr *)&vip, sizeof(vip)))
			d->ok++;
		else if (errno == ECONNREFUSED)
			d->refused++;
		else
			d->other++;
		close(fd);
	}
	return 0;
}

struct world {
	struct sluice *s;
	struct sluice_sock *ss;
	int bh_fd, sh_fd, hc_fd;
	__u32 svc_id, live_id, dead_id;
};

static __u64 hcount(struct world *w, __u32 c)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 vals[ncpus > 0 ? ncpus : 1], sum = 0;

	if (bpf_map_lookup_elem(w->hc_fd, &c, vals))
		return ~0ULL;
	for (int i = 0; i < ncpus; i++)
		sum += vals[i];
	return sum;
}

static struct sluice_backend_health bh_of(struct world *w, __u32 id)
{
	struct sluice_backend_health bh = { 0 };

	ASSERT_OK(bpf_map_lookup_elem(w->bh_fd, &id, &bh), "backend_health lookup");
	return bh;
}

/* VIP:80 -> backends on 127.0.0.1:ports[i]; its svc_health (threshold 3,
 * defaults otherwise) and the backend ids in port order. */
static bool svc_setup(struct world *w, const char *vip, const char *addr, const __u16 *ports, int n,
		      __u32 *ids)
{
	struct sluice_service_info *si = calloc(1, sizeof(*si));
	struct sluice_backend_spec b[2] = { 0 };
	struct sluice_service_spec spec = { .port = 80, .proto = IPPROTO_TCP, .backends = b };
	struct sluice_svc_health sh = { .backends = (__u16)n,
					.threshold = 3,
					.max_ejected_pct = 50,
					.panic_pct = 50,
					.base_ms = 30000,
					.max_ms = 300000 };
	int be_fd = sluice__map_fd(w->s, "backends");
	bool ok = false;

	spec.nbackends = (__u32)n;
	ASSERT_OK(sluice_addr__parse(&spec.vip, vip), vip);
	for (int i = 0; i < n; i++) {
		ASSERT_OK(sluice_addr__parse(&b[i].addr, addr), addr);
		b[i].port = ports[i];
		b[i].weight = 1;
	}
	if (!si || !ASSERT_OK(sluice__service_set(w->s, &spec), "service set") ||
	    !ASSERT_OK(sluice__service_get(w->s, &spec.vip, 80, IPPROTO_TCP, si), "service get"))
		goto out;
	w->svc_id = si->svc.svc_id;
	for (__u32 i = 0; i < si->nbackends; i++) {
		struct sluice_backend be;

		if (bpf_map_lookup_elem(be_fd, &si->backend_ids[i], &be))
			continue;
		for (int j = 0; j < n; j++)
			if (be.port == htons(ports[j]))
				ids[j] = si->backend_ids[i];
	}
	ok = ASSERT_OK(bpf_map_update_elem(w->sh_fd, &w->svc_id, &sh, BPF_ANY), "svc_health");
out:
	free(si);
	return ok;
}

static bool world_open(struct world *w)
{
	struct sluice_sock_opts so = { 0 };
	struct sluice_opts o = { 0 };

	memset(w, 0, sizeof(*w));
	if (!ASSERT_OK(sluice__open(&w->s, &o), "sluice__open")) {
		fprintf(stderr, "    %s\n", sluice__errmsg());
		return false;
	}
	w->bh_fd = sluice__map_fd(w->s, "backend_health");
	w->sh_fd = sluice__map_fd(w->s, "svc_health");
	w->hc_fd = sluice__map_fd(w->s, "health_counters");
	if (!ASSERT_OK(sluice_sock__open(&w->ss, w->s, &so), "sluice_sock__open") ||
	    !ASSERT_OK(sluice_sock__attach_lb(w->ss, cgroup), "attach lb")) {
		fprintf(stderr, "    %s\n", sluice__errmsg());
		return false;
	}
	return true;
}

static void world_close(struct world *w)
{
	sluice_sock__close(w->ss);
	sluice__close(w->s);
}

static int ev_count;
static struct sluice_health_event ev_last;

static int on_event(void *ctx, void *data, size_t len)
{
	(void)ctx;
	if (len == sizeof(ev_last))
		memcpy(&ev_last, data, len);
	ev_count++;
	return 0;
}

/* Three refused connect()s eject the dead backend; then all go live. */
static void test_refused_ejects(void)
{
	struct dials *d =
		mmap(NULL, sizeof(*d), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct sluice_backend_health bh;
	struct ring_buffer *rb = NULL;
	__u16 ports[2];
	__u32 ids[2] = { 0 };
	int lfd = tcp_port(true, &ports[0]);
	struct world w = { 0 };

	if (!ASSERT_TRUE(d != MAP_FAILED && lfd >= 0 && !tcp_port(false, &ports[1]), "ports") ||
	    !world_open(&w))
		goto out;
	if (!svc_setup(&w, VIP, "127.0.0.1", ports, 2, ids))
		goto out;
	w.live_id = ids[0];
	w.dead_id = ids[1];
	rb = ring_buffer__new(sluice__map_fd(w.s, "health_events"), on_event, NULL, NULL);
	if (!ASSERT_TRUE(rb != NULL, "ring buffer"))
		goto out;

	*d = (struct dials){ .max = 200, .stop_at = 3 };
	ASSERT_EQ(in_cgroup(dials__child, d), 0, "child");
	fprintf(stderr, "  until 3 refusals: %d connected, %d refused, %d other errors\n", d->ok,
		d->refused, d->other);
	ASSERT_EQ(d->refused, 3, "refused connect()s");
	ASSERT_EQ(d->other, 0, "other errors");
	bh = bh_of(&w, w.dead_id);
	ASSERT_EQ(bh.fails, 3, "dead backend: one failure per refused socket");
	ASSERT_EQ(bh.reason, SLUICE_HEALTH_R_SOCK_REFUSED, "reason");
	ASSERT_TRUE(bh.flags & SLUICE_BH_F_EJECTED, "dead backend ejected");
	ASSERT_EQ(bh.ejections, 1, "ejections");
	ASSERT_EQ(hcount(&w, SLUICE_HCNT_FAIL), 3, "health_fail counter");
	ASSERT_EQ(hcount(&w, SLUICE_HCNT_SUCCESS), d->ok,
		  "health_success: every connect()ed socket");
	ASSERT_EQ(hcount(&w, SLUICE_HCNT_EJECT), 1, "health_eject counter");
	ring_buffer__consume(rb);
	ASSERT_EQ(ev_count, 1, "one event");
	ASSERT_EQ(ev_last.kind, SLUICE_HEALTH_EV_EJECTED, "event kind");
	ASSERT_EQ(ev_last.backend_id, w.dead_id, "event backend");
	ASSERT_EQ(ev_last.reason, SLUICE_HEALTH_R_SOCK_REFUSED, "event reason");

	/* the live backend's failures are zeroed by its next success */
	bh = bh_of(&w, w.live_id);
	ASSERT_EQ(bh.fails, 0, "live backend: no failures");
	bh.fails = 2;
	bpf_map_update_elem(w.bh_fd, &w.live_id, &bh, BPF_ANY);
	*d = (struct dials){ .max = 30 };
	ASSERT_EQ(in_cgroup(dials__child, d), 0, "child");
	ASSERT_EQ(d->ok, 30, "after the ejection every connect() reaches the live backend");
	ASSERT_EQ(hcount(&w, SLUICE_HCNT_FALLBACK) > 0, 1, "some picks fell back");
	ASSERT_EQ(bh_of(&w, w.live_id).fails, 0, "a success zeroed the live backend's failures");
	ASSERT_EQ(bh_of(&w, w.dead_id).fails, 3, "the ejected backend got nothing");
out:
	ring_buffer__free(rb);
	world_close(&w);
	if (lfd >= 0)
		close(lfd);
	if (d != MAP_FAILED)
		munmap(d, sizeof(*d));
}

/* SYNs to 192.0.2.1 leave through a veth whose peer has no address: they
 * vanish (the static neighbour entry spares the ARP wait). */
static bool blackhole_up(void)
{
	return ASSERT_OK(
		system("ip link add sluice-bh0 type veth peer name sluice-bh1 && "
		       "ip link set sluice-bh0 up && ip link set sluice-bh1 up && "
		       "ip addr add 192.0.2.254/24 dev sluice-bh0 && "
		       "ip neigh replace 192.0.2.1 lladdr 02:00:00:00:00:09 dev sluice-bh0"),
		"veth device");
}

/* Child: connect() (non-blocking) to the blackholed VIP, wait until the
 * parent saw the failure counted (it writes the pipe), then close. */
static int blackhole__child(void *arg)
{
	int *pipefd = arg;
	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(80) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	char c;

	inet_pton(AF_INET, VIP_BLACKHOLE, &vip.sin_addr);
	if (connect(fd, (struct sockaddr *)&vip, sizeof(vip)) == 0 || errno != EINPROGRESS)
		return 2;
	if (read(pipefd[0], &c, 1) != 1)
		return 3;
	close(fd); /* SYN_SENT -> CLOSE: the same failure, not counted again */
	return 0;
}

/* A backend that never answers: SOCK_TIMEOUT at the first RTO, once. */
static void test_syn_timeout(void)
{
	struct sluice_backend_health bh = { 0 };
	__u16 port = 80;
	__u32 id = 0;
	int pipefd[2] = { -1, -1 }, status, i;
	struct world w = { 0 };
	pid_t pid;

	if (!blackhole_up() || !world_open(&w))
		goto out;
	if (!svc_setup(&w, VIP_BLACKHOLE, BLACKHOLE_BE, &port, 1, &id) ||
	    !ASSERT_OK(pipe(pipefd), "pipe"))
		goto out;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(pipefd[1]);
		_exit(in_cgroup(blackhole__child, pipefd));
	}
	close(pipefd[0]);
	/* the first RTO of a SYN is 1 s; allow 5 */
	for (i = 0; i < 100 && !bh.fails; i++) {
		usleep(50000);
		bh = bh_of(&w, id);
	}
	ASSERT_EQ(bh.fails, 1, "a failure counted at the SYN's retransmission timeout");
	ASSERT_EQ(bh.reason, SLUICE_HEALTH_R_SOCK_TIMEOUT, "reason");
	if (write(pipefd[1], "x", 1) != 1)
		TEST_FAIL("pipe write");
	waitpid(pid, &status, 0);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child connected and closed");
	ASSERT_EQ(bh_of(&w, id).fails, 1,
		  "closing in SYN_SENT: the same failure, not counted again");
	ASSERT_EQ(hcount(&w, SLUICE_HCNT_FAIL), 1, "health_fail counter");
out:
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	world_close(&w);
	if (system("ip link del sluice-bh0 2>/dev/null"))
		TEST_FAIL("removing the veth device");
}

/* Child: connect() (non-blocking) to the blackholed VIP and give up at
 * once, as happy eyeballs or a dial timeout does. */
static int abort__child(void *arg)
{
	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(80) };
	int n = *(int *)arg;

	inet_pton(AF_INET, VIP_BLACKHOLE, &vip.sin_addr);
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

		if (connect(fd, (struct sockaddr *)&vip, sizeof(vip)) == 0 || errno != EINPROGRESS)
			return 2;
		close(fd); /* SYN_SENT -> CLOSE with sk_err 0: the client's doing */
	}
	return 0;
}

/* Clients that abandon their own connect()s before any answer (or RTO)
 * say nothing about the backend: no failure counted, no ejection. */
static void test_client_abort_not_counted(void)
{
	struct sluice_backend_health bh;
	__u16 port = 80;
	__u32 id = 0;
	int n = 5;
	struct world w = { 0 };

	if (!blackhole_up() || !world_open(&w))
		goto out;
	if (!svc_setup(&w, VIP_BLACKHOLE, BLACKHOLE_BE, &port, 1, &id))
		goto out;
	ASSERT_EQ(in_cgroup(abort__child, &n), 0, "child connected and closed 5 sockets");
	bh = bh_of(&w, id);
	ASSERT_EQ(bh.fails, 0, "no failure counted for the client's own aborts");
	ASSERT_FALSE(bh.flags & SLUICE_BH_F_EJECTED, "not ejected");
	ASSERT_EQ(hcount(&w, SLUICE_HCNT_FAIL), 0, "health_fail counter");
out:
	world_close(&w);
	if (system("ip link del sluice-bh0 2>/dev/null"))
		TEST_FAIL("removing the veth device");
}

/* Pins of an agent from before #14 (layout 3: no health maps, no health
 * sockops link): made here by removing those pins. The next open creates
 * and pins the new maps, keeps the old links (updated in place) and
 * attaches and pins the health sockops. The real thing (main's library,
 * then this one) was checked by hand the same way. */
static void test_upgrade_pins(void)
{
	static const char *const fresh[] = { "backend_health", "svc_health", "health_events",
					     "health_counters", "link_sock_health_ops" };
	struct sluice_sock_opts so = { .pin_dir = pin_dir };
	struct sluice_opts o = { .pin_dir = pin_dir };
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info), ids[4], cnt = 4;
	struct world w = { 0 };
	char path[256];
	int fd = -1;

	if (!ASSERT_OK(sluice__open(&w.s, &o), "open") ||
	    !ASSERT_OK(sluice_sock__open(&w.ss, w.s, &so), "sock open") ||
	    !ASSERT_OK(sluice_sock__attach_lb(w.ss, cgroup), "attach"))
		goto out;
	world_close(&w);
	memset(&w, 0, sizeof(w));
	for (size_t i = 0; i < ARRAY_SIZE(fresh); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, fresh[i]);
		fd = bpf_obj_get(path);
		if (fd >= 0 && i == ARRAY_SIZE(fresh) - 1)
			bpf_link_detach(fd);
		if (fd >= 0)
			close(fd);
		ASSERT_OK(unlink(path), path);
	}
	fd = open(cgroup, O_RDONLY | O_DIRECTORY);
	ASSERT_OK(bpf_prog_query(fd, BPF_CGROUP_SOCK_OPS, 0, NULL, ids, &cnt), "query");
	ASSERT_EQ(cnt, 0, "old pins: no health sockops");

	if (!ASSERT_OK(sluice__open(&w.s, &o), "open on old pins") ||
	    !ASSERT_OK(sluice_sock__open(&w.ss, w.s, &so), "sock open on old pins") ||
	    !ASSERT_OK(sluice_sock__attach_lb(w.ss, cgroup), "attach on old pins"))
		goto out;
	for (size_t i = 0; i < ARRAY_SIZE(fresh); i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, fresh[i]);
		ASSERT_OK(access(path, F_OK), path);
	}
	cnt = 4;
	ASSERT_OK(bpf_prog_query(fd, BPF_CGROUP_SOCK_OPS, 0, NULL, ids, &cnt), "query");
	ASSERT_EQ(cnt, 1, "health sockops attached");
	snprintf(path, sizeof(path), "%s/backend_health", pin_dir);
	close(fd);
	fd = bpf_obj_get(path);
	if (ASSERT_TRUE(fd >= 0, "pinned backend_health") &&
	    ASSERT_OK(bpf_obj_get_info_by_fd(sluice__map_fd(w.s, "backend_health"), &info, &len),
		      "map info")) {
		struct bpf_map_info pinned = { 0 };

		len = sizeof(pinned);
		bpf_obj_get_info_by_fd(fd, &pinned, &len);
		ASSERT_EQ(info.id, pinned.id, "the datapath uses the pinned backend_health");
	}
out:
	if (fd >= 0)
		close(fd);
	world_close(&w);
	sluice_sock__unpin(pin_dir);
	sluice__unpin(pin_dir);
}

static const struct test tests[] = {
	TEST(test_refused_ejects),
	TEST(test_syn_timeout),
	TEST(test_client_abort_not_counted),
	TEST(test_upgrade_pins),
};

int main(int argc, char **argv)
{
	if (!test__have_root("sock_health", "attaches cgroup programs"))
		return 0;
	if (unshare(CLONE_NEWNET) || !lo_up()) {
		printf("FAIL: sock_health/setup (private network namespace: %s)\n",
		       strerror(errno));
		return 1;
	}
	if (!setup_cgroup()) {
		printf("FAIL: sock_health/setup (no cgroup2 mount or cannot create %s)\n", cgroup);
		return 1;
	}
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/sluice-test-sock-health-%d", getpid());
	atexit(cleanup);
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("sock_health", tests, ARRAY_SIZE(tests), argc, argv);
}
