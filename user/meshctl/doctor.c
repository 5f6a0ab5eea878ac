// SPDX-License-Identifier: MIT
/*
 * doctor.c - meshctl doctor: checks and explains, one row per check with a
 * verdict (ok / warn / fail), what was found and, when not ok, what to do.
 *
 * Contract: the node's kernel features are checked here (they need no
 * agent); meshd's "doctor" op adds what only it knows (its pin dir, the
 * hooks of its interfaces, socket hooks, map fill, drift); the two
 * versions and clocks are compared here. An unreachable meshd is one
 * failing check ("meshd unreachable"), the local checks still run. Exit
 * status: 0 nothing failed (warnings allowed), 1 something failed, 2 the
 * doctor itself could not run (bad usage, out of memory), said on stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/utsname.h>

#include "client.h"
#include "doctor.h"
#include "kfeatures.h"
#include "meshctl.h"
#include "output.h"

/* Exit status of a doctor that could not run. */
#define DOCTOR_EXIT_CANNOT 2

/* The first line of a /proc or /sys file, newline cut; -errno. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int err = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		err = -EIO;
	else
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
	return err;
}

/* major * 1000 + minor of the running kernel, 0 unknown. */
static int kernel_version(char *release, size_t len)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u))
		return 0;
	snprintf(release, len, "%s", u.release);
	if (sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return 0;
	return major * 1000 + minor;
}

/* Features whose absence keeps the datapath object from loading. */
static bool feature_vital(enum sluice_feature f)
{
	return f == SLUICE_FEAT_PROG_TC || f == SLUICE_FEAT_MAP_LRU || f == SLUICE_FEAT_MAP_OUTER ||
	       f == SLUICE_FEAT_MAP_LPM || f == SLUICE_FEAT_COARSE_CLOCK;
}

/* The release is only advice (6.1 is the oldest tested); what the kernel
 * can do is probed (kfeatures.c), which needs root: the probes load BPF. */
static void check_kernel(struct json_object *arr, int kv, const char *release)
{
	enum doctor_status st = DOCTOR_OK;
	struct sluice_features f;
	char detail[1536];
	size_t off;
	int n = 0;

	if (kv && kv < 6001)
		doctor__add(arr, "kernel", DOCTOR_WARN,
			    "run 6.1 or newer (Debian 12's kernel is the oldest tested)",
			    "%s is older than the oldest kernel Sluice is tested on (6.1)",
			    release);
	if (geteuid()) {
		doctor__add(arr, "kernel features", DOCTOR_WARN,
			    "run meshctl doctor as root: the probes load BPF programs",
			    "%s: not probed (not root)", release);
		return;
	}
	sluice__features(&f);
	off = (size_t)snprintf(detail, sizeof(detail), "%s: without ", release);
	for (int i = 0; i < SLUICE_FEAT__MAX; i++) {
		if (f.has[i])
			continue;
		if (feature_vital(i))
			st = DOCTOR_FAIL;
		else if (st == DOCTOR_OK)
			st = DOCTOR_WARN;
		if (off < sizeof(detail))
			off += (size_t)snprintf(detail + off, sizeof(detail) - off, "%s%s (%s)",
						n++ ? "; " : "", sluice_feature__what(i),
						sluice_feature__without(i));
	}
	if (!n)
		doctor__add(arr, "kernel features", DOCTOR_OK, NULL,
			    "%s: all %d probed features present", release, SLUICE_FEAT__MAX);
	else
		doctor__add(arr, "kernel features", st,
			    st == DOCTOR_FAIL ? "the datapath cannot load on this kernel: run 6.1 "
						"or newer with its default BPF options" :
						"each is a degraded mode (meshctl status, Kernel)",
			    "%s", detail);
}

static void check_btf(struct json_object *arr)
{
	if (!access("/sys/kernel/btf/vmlinux", R_OK))
		doctor__add(arr, "BTF", DOCTOR_OK, NULL, "/sys/kernel/btf/vmlinux is there");
	else
		doctor__add(arr, "BTF", DOCTOR_FAIL,
			    "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (distribution "
			    "kernels are)",
			    "/sys/kernel/btf/vmlinux: %s: no CO-RE, telemetry cannot load",
			    strerror(errno));
}

static void check_cgroup2(struct json_object *arr)
{
	char dev[256], dir[1024], type[64], line[2048];
	FILE *f = fopen("/proc/mounts", "re");
	bool found = false;

	while (f && !found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%255s %1023s %63s", dev, dir, type) == 3 &&
			!strcmp(type, "cgroup2");
	if (f)
		fclose(f);
	if (found)
		doctor__add(arr, "cgroup2", DOCTOR_OK, NULL, "mounted at %s", dir);
	else
		doctor__add(
			arr, "cgroup2", DOCTOR_WARN,
			"mount -t cgroup2 none /sys/fs/cgroup (or boot with cgroup v2)",
			"no cgroup2 mount in /proc/mounts: no socket LB, redirect or telemetry");
}

static void check_jit(struct json_object *arr)
{
	char v[32];
	int err = read_line("/proc/sys/net/core/bpf_jit_enable", v, sizeof(v));

	if (err)
		doctor__add(arr, "BPF JIT", DOCTOR_WARN, "check CONFIG_BPF_JIT",
			    "/proc/sys/net/core/bpf_jit_enable: %s", strerror(-err));
	else if (!strcmp(v, "0"))
		doctor__add(arr, "BPF JIT", DOCTOR_WARN, "sysctl -w net.core.bpf_jit_enable=1",
			    "off: programs run in the interpreter, several times slower");
	else
		doctor__add(arr, "BPF JIT", DOCTOR_OK, NULL, "on (bpf_jit_enable=%s)", v);
}

static void check_memlock(struct json_object *arr, int kv)
{
	struct rlimit rl;

	if (kv >= 5011) {
		doctor__add(arr, "memlock", DOCTOR_OK, NULL,
			    "not needed: the kernel charges BPF memory to the cgroup (5.11+)");
		return;
	}
	if (getrlimit(RLIMIT_MEMLOCK, &rl)) {
		doctor__add(arr, "memlock", DOCTOR_WARN, NULL, "getrlimit: %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (256ULL << 20))
		doctor__add(arr, "memlock", DOCTOR_OK, NULL, "RLIMIT_MEMLOCK is high enough");
	else
		doctor__add(
			arr, "memlock", DOCTOR_FAIL,
			"LimitMEMLOCK=infinity in meshd's unit, or ulimit -l unlimited",
			"RLIMIT_MEMLOCK %llu KiB: maps may fail to load on this pre-5.11 kernel",
			(unsigned long long)rl.rlim_cur >> 10);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void check_versions(struct json_object *arr, struct json_object *data, double mid)
{
	const char *theirs = js__str(data, "version", "?");
	uint64_t layout = js__u64(data, "layout_version");
	struct json_object *t = js__get(data, "time");
	double when = t ? json_object_get_double(t) : 0;

	if (!strcmp(theirs, SLUICE_VERSION) && layout == SLUICE_LAYOUT_VERSION)
		doctor__add(arr, "versions", DOCTOR_OK, NULL, "meshctl and meshd are both %s",
			    theirs);
	else
		doctor__add(arr, "versions", DOCTOR_WARN, "use the meshctl of meshd's release",
			    "meshctl %s (layout %d), meshd %s (layout %llu)", SLUICE_VERSION,
			    SLUICE_LAYOUT_VERSION, theirs, (unsigned long long)layout);
	if (!t)
		return;
	if (doctor__clock(mid, when) == DOCTOR_OK)
		doctor__add(arr, "clock", DOCTOR_OK, NULL, "meshd's clock is %+.3fs from meshctl's",
			    when - mid);
	else
		doctor__add(arr, "clock", DOCTOR_WARN,
			    "sync both clocks (NTP); same host: check meshd's time namespace",
			    "meshd's clock is %+.1fs from meshctl's: logs and ages disagree",
			    when - mid);
}

/* meshd's checks after the local ones; unreachable is a failing check. */
static void check_agent(struct json_object *arr)
{
	struct json_object *data = NULL, *theirs;
	double before = now_s(), mid;
	char err[1024];

	if (client__try("doctor", NULL, &data, err, sizeof(err))) {
		/* an agent of an earlier release answers, but has no such op */
		if (strstr(err, "unknown op") &&
		    !client__try("status", NULL, &data, err, sizeof(err))) {
			doctor__add(arr, "agent", DOCTOR_FAIL, "upgrade meshd to meshctl's release",
				    "meshd %s answers but has no doctor op: its checks did not run",
				    js__str(data, "version", "?"));
			check_versions(arr, data, before);
			json_object_put(data);
			return;
		}
		doctor__add(arr, "agent", DOCTOR_FAIL,
			    "start meshd (systemctl start meshd), or point -s/$SLUICE_SOCKET at "
			    "its socket",
			    "meshd unreachable: %s", err);
		return;
	}
	mid = (before + now_s()) / 2;
	doctor__add(arr, "agent", DOCTOR_OK, NULL, "meshd answers (pin dir %s, XDP mode %s)",
		    js__str(data, "pin_dir", "?"), js__str(data, "xdp_mode", "?"));
	check_versions(arr, data, mid);
	theirs = js__get(data, "checks");
	for (size_t i = 0; i < js__len(theirs); i++)
		json_object_array_add(arr, json_object_get(js__idx(theirs, i)));
	json_object_put(data);
}

/* The worst verdict; an unknown status word (a newer meshd) counts as fail. */
static enum doctor_status checks__worst(struct json_object *arr, unsigned int count[3])
{
	enum doctor_status worst = DOCTOR_OK;

	for (size_t i = 0; i < js__len(arr); i++) {
		int st = doctor__status_parse(js__str(js__idx(arr, i), "status", ""));

		st = st < 0 ? DOCTOR_FAIL : st;
		count[st]++;
		worst = doctor__worst(worst, st);
	}
	return worst;
}

static void checks__print(struct json_object *arr, const unsigned int count[3])
{
	static const char *const cols[] = { "CHECK", "STATUS", "DETAIL", NULL };
	struct table *t = table__new(cols);
	bool todo = false;

	for (size_t i = 0; i < js__len(arr); i++) {
		struct json_object *c = js__idx(arr, i);

		table__cell(t, "%s", js__str(c, "name", "?"));
		table__cell(t, "%s", js__str(c, "status", "?"));
		table__cell(t, "%s", js__str(c, "detail", ""));
	}
	table__print(t);
	table__free(t);
	for (size_t i = 0; i < js__len(arr); i++) {
		struct json_object *c = js__idx(arr, i);
		const char *hint = js__str(c, "hint", NULL);

		if (!hint || !strcmp(js__str(c, "status", "ok"), "ok"))
			continue;
		if (!todo)
			printf("\nWhat to do:\n");
		todo = true;
		printf("  %s: %s\n", js__str(c, "name", "?"), hint);
	}
	printf("\n%zu checks: %u ok, %u warn, %u fail\n", js__len(arr), count[DOCTOR_OK],
	       count[DOCTOR_WARN], count[DOCTOR_FAIL]);
}

static int do_doctor(int argc, char **argv)
{
	const struct opt opts[] = { { NULL } };
	struct json_object *arr, *out;
	unsigned int count[3] = {};
	enum doctor_status worst;
	char release[128] = "?";
	char *pos[1];
	int npos, kv;

	if (opts__parse(argc, argv, opts, pos, 0, &npos))
		return DOCTOR_EXIT_CANNOT;
	arr = out__xalloc(json_object_new_array());
	kv = kernel_version(release, sizeof(release));
	check_kernel(arr, kv, release);
	check_btf(arr);
	check_cgroup2(arr);
	check_jit(arr);
	check_memlock(arr, kv);
	check_agent(arr);
	worst = checks__worst(arr, count);
	if (out__json_mode()) {
		out = out__xalloc(json_object_new_object());
		json_object_object_add(out, "checks", arr);
		json_object_object_add(out, "ok", json_object_new_boolean(worst != DOCTOR_FAIL));
		out__json(out);
		json_object_put(out);
	} else {
		checks__print(arr, count);
		json_object_put(arr);
	}
	return worst == DOCTOR_FAIL ? 1 : 0;
}

const struct cmd doctor_cmd = {
	.name = "doctor",
	.fn = do_doctor,
	.grammar = "",
	.summary = "check this node and meshd, explain what is wrong and what to do",
	.notes = "Checks, each ok, warn or fail (exit 0: nothing failed, 1: something failed,\n"
		 "2: the doctor could not run):\n"
		 "  kernel features  probed (as root): each missing one and what Sluice does\n"
		 "            without it; fail when the datapath cannot load; warn on a\n"
		 "            kernel older than 6.1 (the oldest tested)\n"
		 "  BTF       /sys/kernel/btf/vmlinux (CO-RE, telemetry); fail without\n"
		 "  cgroup2   mounted (socket LB, redirect, telemetry need it); warn without\n"
		 "  BPF JIT   net.core.bpf_jit_enable; warn when off (interpreter: slow)\n"
		 "  memlock   RLIMIT_MEMLOCK, only before 5.11 (later kernels use the cgroup)\n"
		 "  agent     meshd answers on its socket; fail: \"meshd unreachable\"\n"
		 "  versions  meshctl's release vs meshd's; warn on a skew\n"
		 "  clock     meshd's clock vs meshctl's; warn when more than 2 s apart\n"
		 "  bpffs     meshd's pin dir is on a bpf filesystem (else pins die with it)\n"
		 "  iface X   each interface of --interfaces: our program on its XDP (or tc)\n"
		 "            hook; generic XDP warns (slow), a FOREIGN program fails (named\n"
		 "            with its id), no program fails, a down interface warns\n"
		 "  socket hooks  --cgroup exists and holds our connect/sockops programs\n"
		 "            (and the redirect's sockops + sk_msg when --redirect is on)\n"
		 "  map NAME  entries vs capacity: warn from 80%, fail from 95%; conntrack\n"
		 "            and the other LRU maps as the last /metrics scrape counted them\n"
		 "  drift     meshd's desired state vs the maps: services, backends, weights\n"
		 "            missing or extra fail, the first few named",
	.example = "meshctl doctor\n"
		   "meshctl doctor -o json | jq '.checks[] | select(.status != \"ok\")'",
	.reads = true,
};
