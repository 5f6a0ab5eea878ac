// SPDX-License-Identifier: MIT
/*
 * test_meshd_config.c - meshd's settings (user/meshd/config.c): the
 * defaults, flags, the --config YAML file and which wins, and every kind
 * of invalid value refused with a message naming the flag ("--xdp-mode")
 * or the file and key ("FILE: xdp_mode") it came from. No root needed.
 */
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "metrics.h"
#include "sluice.h"
#include "test.h"

/* Room for every message config.c prints (help text included). */
#define OUT_MAX 16384

static char out[OUT_MAX];
static char dir[] = "/tmp/sluice-test-config.XXXXXX";

/* config__parse() on "meshd" plus the args, ended by (char *)NULL (a bare
 * NULL may be an int in varargs); what it prints (stdout and stderr) is in
 * out. */
static int parse(struct meshd_config *cfg, ...)
{
	char *argv[32] = { "meshd" };
	int argc = 1, saved_out, saved_err, rc;
	FILE *tmp = tmpfile();
	const char *a;
	va_list ap;
	size_t n;

	va_start(ap, cfg);
	while ((a = va_arg(ap, const char *)) && argc < 31)
		argv[argc++] = (char *)a;
	va_end(ap);
	memset(cfg, 0, sizeof(*cfg));
	out[0] = '\0';
	if (!tmp)
		return -1;
	fflush(stdout);
	fflush(stderr);
	saved_out = dup(1);
	saved_err = dup(2);
	dup2(fileno(tmp), 1);
	dup2(fileno(tmp), 2);
	optind = 0; /* getopt starts over, as in a fresh process */
	rc = config__parse(argc, argv, cfg);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	rewind(tmp);
	n = fread(out, 1, sizeof(out) - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return rc;
}

static bool said(const char *what)
{
	if (strstr(out, what))
		return true;
	TEST_FAIL("output \"%s\" lacks \"%s\"", out, what);
	return false;
}

static bool str_is(const char *got, const char *want, const char *what)
{
	if (got && !strcmp(got, want))
		return true;
	TEST_FAIL("%s: got \"%s\", expected \"%s\"", what, got ? got : "(null)", want);
	return false;
}

/* A config file in the test's directory; its path in path. */
static void write_config(char *path, size_t len, const char *text)
{
	FILE *f;

	snprintf(path, len, "%s/meshd.yaml", dir);
	f = fopen(path, "w");
	if (!f) {
		TEST_FAIL("cannot write %s", path);
		return;
	}
	fputs(text, f);
	fclose(f);
}

static void test_defaults(void)
{
	struct meshd_config cfg;

	if (!ASSERT_EQ(parse(&cfg, (char *)NULL), 0, "no flags"))
		goto out;
	ASSERT_EQ(cfg.xdp_mode, ATTACH_XDP_NATIVE, "xdp mode");
	ASSERT_FALSE(cfg.fib_forward, "fib forward: auto, not forced on");
	ASSERT_FALSE(cfg.fwd_off, "fib forward: auto, not off");
	ASSERT_EQ(cfg.log_level, LOG_LEVEL_INFO, "log level");
	ASSERT_TRUE(cfg.telemetry, "telemetry");
	ASSERT_EQ(cfg.telemetry_interval, MESHD_TELEMETRY_INTERVAL_DEFAULT, "interval");
	ASSERT_TRUE(cfg.socket_lb, "socket lb");
	ASSERT_FALSE(cfg.redirect, "redirect");
	ASSERT_FALSE(cfg.kubernetes, "kubernetes");
	ASSERT_TRUE(cfg.kubeconfig == NULL, "kubeconfig");
	ASSERT_EQ(cfg.api_max_request, 32u << 20, "API request limit");
	ASSERT_FALSE(cfg.cleanup, "cleanup");
	ASSERT_TRUE(cfg.outlier_detection, "outlier detection on by default");
	ASSERT_EQ(cfg.state_missing, STATE_MISSING_REFUSE, "a missing state file is refused");
	str_is(cfg.interfaces, "", "interfaces");
	str_is(cfg.bpffs, MESHD_BPFFS_DEFAULT, "bpffs");
	str_is(cfg.state, MESHD_STATE_DEFAULT, "state");
	str_is(cfg.socket, SLUICE_API_SOCKET_DEFAULT, "socket");
	str_is(cfg.metrics, MESHD_METRICS_DEFAULT, "metrics");
out:
	config__free(&cfg);
}

static void test_flags(void)
{
	struct meshd_config cfg;

	if (!ASSERT_EQ(parse(&cfg, "--interfaces", "eth1,lb-*", "--xdp-mode", "generic",
			     "--fib-forward", "on", "--bpffs", "/tmp/pins//", "--state",
			     "/tmp/s.json", "--socket", "/tmp/api.sock", "--log-level", "debug",
			     "--metrics", "off", "--telemetry", "no", "--telemetry-interval", "0",
			     "--socket-lb", "false", "--redirect", "1", "--state-missing", "empty",
			     "--api-max-request", "64", "--cleanup", (char *)NULL),
		       0, "flags"))
		goto out;
	str_is(cfg.interfaces, "eth1,lb-*", "interfaces");
	ASSERT_EQ(cfg.xdp_mode, ATTACH_XDP_GENERIC, "xdp mode");
	ASSERT_TRUE(cfg.fib_forward, "fib forward");
	/* trailing slashes would make two spellings of one pin dir */
	str_is(cfg.bpffs, "/tmp/pins", "bpffs");
	str_is(cfg.state, "/tmp/s.json", "state");
	str_is(cfg.socket, "/tmp/api.sock", "socket");
	ASSERT_EQ(cfg.log_level, LOG_LEVEL_DEBUG, "log level");
	ASSERT_TRUE(cfg.metrics == NULL, "metrics off");
	ASSERT_FALSE(cfg.telemetry, "telemetry");
	ASSERT_EQ(cfg.telemetry_interval, 0, "interval");
	ASSERT_FALSE(cfg.socket_lb, "socket lb");
	ASSERT_TRUE(cfg.redirect, "redirect");
	ASSERT_EQ(cfg.state_missing, STATE_MISSING_EMPTY, "state missing");
	ASSERT_TRUE(cfg.cleanup, "cleanup");
	ASSERT_EQ(cfg.api_max_request, 64u << 20, "API request limit");
	ASSERT_TRUE(cfg.outlier_detection, "outlier detection");
out:
	config__free(&cfg);
}

/* Node-wide outlier detection off (#14): the switch, the setting, the
 * config file key. */
static void test_outlier_detection(void)
{
	char path[PATH_MAX];
	struct meshd_config cfg;

	if (ASSERT_EQ(parse(&cfg, "--no-outlier-detection", (char *)NULL), 0, "switch"))
		ASSERT_FALSE(cfg.outlier_detection, "--no-outlier-detection");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--outlier-detection", "off", (char *)NULL), 0, "setting"))
		ASSERT_FALSE(cfg.outlier_detection, "--outlier-detection off");
	config__free(&cfg);
	write_config(path, sizeof(path), "outlier_detection: false\n");
	if (ASSERT_EQ(parse(&cfg, "--config", path, (char *)NULL), 0, "file"))
		ASSERT_FALSE(cfg.outlier_detection, "outlier_detection: false");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--outlier-detection", "maybe", (char *)NULL), 2, "bad value"))
		said("--outlier-detection: \"maybe\" is not on or off");
	config__free(&cfg);
}

/* --policy-cut-netns (#15): cgroup by default, all by flag or file key. */
static void test_policy_cut_netns(void)
{
	char path[PATH_MAX];
	struct meshd_config cfg;

	if (ASSERT_EQ(parse(&cfg, (char *)NULL), 0, "default"))
		ASSERT_FALSE(cfg.policy_cut_all, "cgroup by default");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--policy-cut-netns", "all", (char *)NULL), 0, "flag"))
		ASSERT_TRUE(cfg.policy_cut_all, "--policy-cut-netns all");
	config__free(&cfg);
	write_config(path, sizeof(path), "policy_cut_netns: all\n");
	if (ASSERT_EQ(parse(&cfg, "--config", path, "--policy-cut-netns", "cgroup", (char *)NULL),
		      0, "file and flag"))
		ASSERT_FALSE(cfg.policy_cut_all, "the flag wins");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--config", path, (char *)NULL), 0, "file"))
		ASSERT_TRUE(cfg.policy_cut_all, "policy_cut_netns: all");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--policy-cut-netns", "pods", (char *)NULL), 2, "bad value"))
		said("--policy-cut-netns: \"pods\" is not cgroup or all");
	config__free(&cfg);
}

/* --metrics-backends (#16): auto by default, on/off by flag or file key. */
static void test_metrics_backends(void)
{
	char path[PATH_MAX];
	struct meshd_config cfg;

	if (ASSERT_EQ(parse(&cfg, (char *)NULL), 0, "default"))
		ASSERT_EQ(cfg.metrics_backends, METRICS_BACKENDS_AUTO, "auto by default");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--metrics-backends", "off", (char *)NULL), 0, "flag"))
		ASSERT_EQ(cfg.metrics_backends, METRICS_BACKENDS_OFF, "--metrics-backends off");
	config__free(&cfg);
	write_config(path, sizeof(path), "metrics_backends: \"on\"\n");
	if (ASSERT_EQ(parse(&cfg, "--config", path, (char *)NULL), 0, "file"))
		ASSERT_EQ(cfg.metrics_backends, METRICS_BACKENDS_ON, "metrics_backends: on");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--metrics-backends", "some", (char *)NULL), 2, "bad value"))
		said("--metrics-backends: \"some\" is not auto, on or off");
	config__free(&cfg);
}

/* Keys with '_' or '-', lists, YAML booleans and numbers; a flag beats
 * the file, the file beats the default. */
static void test_file_and_precedence(void)
{
	struct meshd_config cfg;
	char path[PATH_MAX];

	write_config(path, sizeof(path),
		     "interfaces: [eth1, \"lb-*\"]\n"
		     "xdp_mode: generic\n"
		     "fib-forward: true\n"
		     "telemetry_interval: 30\n"
		     "metrics: false\n"
		     "state: /tmp/from-file.json\n"
		     "state_missing: adopt\n"
		     "log_level: ~\n");
	if (!ASSERT_EQ(parse(&cfg, "--config", path, "--xdp-mode", "off", (char *)NULL), 0,
		       "parse"))
		goto out;
	str_is(cfg.interfaces, "eth1,lb-*", "interfaces from the file's list");
	ASSERT_EQ(cfg.xdp_mode, ATTACH_XDP_OFF, "the flag wins over the file");
	ASSERT_TRUE(cfg.fib_forward, "fib-forward from the file");
	ASSERT_EQ(cfg.telemetry_interval, 30, "interval from the file");
	ASSERT_TRUE(cfg.metrics == NULL, "metrics: false is off");
	str_is(cfg.state, "/tmp/from-file.json", "state from the file");
	ASSERT_EQ(cfg.state_missing, STATE_MISSING_ADOPT, "state-missing from the file");
	ASSERT_EQ(cfg.log_level, LOG_LEVEL_INFO, "a null key leaves the default");
	str_is(cfg.bpffs, MESHD_BPFFS_DEFAULT, "bpffs default");
out:
	config__free(&cfg);
}

/* --fib-forward auto|on|off: two booleans, never both */
static void test_fib_forward(void)
{
	static const struct {
		const char *v;
		bool on, off;
	} want[] = { { "auto", false, false }, { "on", true, false }, { "off", false, true } };
	struct meshd_config cfg;

	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		if (ASSERT_EQ(parse(&cfg, "--fib-forward", want[i].v, (char *)NULL), 0,
			      want[i].v)) {
			ASSERT_EQ(cfg.fib_forward, want[i].on, want[i].v);
			ASSERT_EQ(cfg.fwd_off, want[i].off, want[i].v);
		}
		config__free(&cfg);
	}
}

static const struct bad_flag {
	const char *flag, *value, *message;
} bad_flags[] = {
	{ "--xdp-mode", "turbo", "--xdp-mode: \"turbo\" is not native, generic or off" },
	{ "--fib-forward", "maybe", "--fib-forward: \"maybe\" is not auto, on or off" },
	{ "--log-level", "loud", "--log-level: \"loud\" is not error, warn, info or debug" },
	{ "--telemetry", "2", "--telemetry: \"2\" is not on or off" },
	{ "--socket-lb", "yes please", "--socket-lb: \"yes please\" is not on or off" },
	{ "--redirect", "", "--redirect: \"\" is not on or off" },
	{ "--kubernetes", "enabled", "--kubernetes: \"enabled\" is not on or off" },
	{ "--state-missing", "ignore",
	  "--state-missing: \"ignore\" is not refuse, adopt or empty" },
	{ "--telemetry-interval", "86401", "--telemetry-interval: \"86401\" is not a number" },
	{ "--telemetry-interval", "-1", "--telemetry-interval: \"-1\" is not a number" },
	{ "--telemetry-interval", "10s", "--telemetry-interval: \"10s\" is not a number" },
	{ "--api-max-request", "0", "--api-max-request: \"0\" is not a number of MiB 1-128" },
	{ "--api-max-request", "129", "--api-max-request: \"129\" is not a number of MiB 1-128" },
	{ "--api-max-request", "32M", "--api-max-request: \"32M\" is not a number of MiB" },
	{ "--metrics", "localhost:9465", "--metrics: \"localhost:9465\" is not HOST:PORT" },
	{ "--metrics", "127.0.0.1", "--metrics: \"127.0.0.1\" is not HOST:PORT" },
	{ "--metrics", ":65536", "--metrics: \":65536\" is not HOST:PORT" },
	{ "--bpffs", "pins", "--bpffs: \"pins\" is not an absolute path" },
	{ "--state", "/", "--state: \"/\" is not an absolute path" },
	{ "--socket", "api.sock", "--socket: \"api.sock\" is not an absolute path" },
	{ "--cgroup", "/nonexistent/cgroup", "--cgroup: /nonexistent/cgroup is not a directory" },
	{ "--cgroup", "/", "--cgroup: / is not on a cgroup v2 filesystem" },
};

static void test_bad_flags(void)
{
	struct meshd_config cfg;

	for (size_t i = 0; i < ARRAY_SIZE(bad_flags); i++) {
		const struct bad_flag *b = &bad_flags[i];

		if (ASSERT_EQ(parse(&cfg, b->flag, b->value, (char *)NULL), 2, b->flag))
			said(b->message);
		config__free(&cfg);
	}
}

static void test_bad_kubeconfig(void)
{
	struct meshd_config cfg;

	/* read only when the sync is on */
	ASSERT_EQ(parse(&cfg, "--kubeconfig", "/nonexistent/kubeconfig", (char *)NULL), 0,
		  "sync off");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--kubernetes", "on", "--kubeconfig", "/nonexistent/kubeconfig",
			    (char *)NULL),
		      2, "sync on"))
		said("--kubeconfig: cannot read /nonexistent/kubeconfig");
	config__free(&cfg);
}

/* --nodeport-addresses: a flag or a config key (string or list), checked at start. */
static void test_nodeport_addresses(void)
{
	struct meshd_config cfg;
	char path[PATH_MAX];

	if (ASSERT_EQ(parse(&cfg, (char *)NULL), 0, "unset"))
		ASSERT_TRUE(!cfg.nodeport_addresses, "unset: every address");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--nodeport-addresses", "192.0.2.0/24,fd00::/64", (char *)NULL),
		      0, "flag"))
		str_is(cfg.nodeport_addresses, "192.0.2.0/24,fd00::/64", "flag value");
	config__free(&cfg);
	write_config(path, sizeof(path), "nodeport_addresses: [10.0.0.0/8, \"fd00::/64\"]\n");
	if (ASSERT_EQ(parse(&cfg, "--config", path, (char *)NULL), 0, "file list"))
		str_is(cfg.nodeport_addresses, "10.0.0.0/8,fd00::/64", "file value");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--nodeport-addresses", "10.0.0.0/33", (char *)NULL), 2, "bad"))
		said("--nodeport-addresses: \"10.0.0.0/33\" is not a CIDR");
	config__free(&cfg);
	write_config(path, sizeof(path), "nodeport-addresses: 10.0.0.0/8,\n");
	if (ASSERT_EQ(parse(&cfg, "--config", path, (char *)NULL), 2, "bad in file"))
		said("nodeport-addresses: \"\" is not a CIDR");
	config__free(&cfg);
}

/* --snat-address: auto (default), none, or one address per family. */
static void test_snat_address(void)
{
	struct meshd_config cfg;
	char path[PATH_MAX], a[SLUICE_ADDR_STRLEN];

	if (ASSERT_EQ(parse(&cfg, (char *)NULL), 0, "unset"))
		ASSERT_TRUE(cfg.snat.follow && !cfg.snat.want[0].family && !cfg.snat.want[1].family,
			    "unset: auto, no address given");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--snat-address", "none", (char *)NULL), 0, "none"))
		ASSERT_TRUE(!cfg.snat.follow && !cfg.snat.want[0].family, "none: nothing");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--snat-address", "2001:db8::5,192.0.2.5", (char *)NULL), 0,
		      "both families")) {
		ASSERT_FALSE(cfg.snat.follow, "given: not followed");
		str_is(sluice_addr__str(&cfg.snat.want[0], a, sizeof(a)), "192.0.2.5", "IPv4");
		str_is(sluice_addr__str(&cfg.snat.want[1], a, sizeof(a)), "2001:db8::5", "IPv6");
	}
	config__free(&cfg);
	write_config(path, sizeof(path), "snat-address: [192.0.2.6]\n");
	if (ASSERT_EQ(parse(&cfg, "--config", path, (char *)NULL), 0, "file list"))
		str_is(sluice_addr__str(&cfg.snat.want[0], a, sizeof(a)), "192.0.2.6", "file");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--snat-address", "192.0.2.5,192.0.2.6", (char *)NULL), 2,
		      "two IPv4"))
		said("--snat-address: two IPv4 addresses: one per family");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--snat-address", "0.0.0.0", (char *)NULL), 2, "unspecified"))
		said("--snat-address: \"0.0.0.0\" is not an IPv4 or IPv6 address");
	config__free(&cfg);
	if (ASSERT_EQ(parse(&cfg, "--snat-address", "node1", (char *)NULL), 2, "a name"))
		said("--snat-address: \"node1\" is not");
	config__free(&cfg);
}

static const struct bad_file {
	const char *yaml, *message; /* message after "FILE: " */
} bad_files[] = {
	{ "xdp_mode: turbo\n", "xdp_mode: \"turbo\" is not native, generic or off" },
	{ "state-missing: keep\n", "state-missing: \"keep\" is not refuse, adopt or empty" },
	{ "telemetry-interval: 99999999\n", "telemetry-interval: \"99999999\" is not a number" },
	{ "bpffs: relative/dir\n", "bpffs: \"relative/dir\" is not an absolute path" },
	{ "telemetry: [on]\n", "telemetry: [ \"on\" ] is not a valid value" },
	{ "state: true\n", "state: true is not a valid value" },
	{ "xdp-mode: 1\n", "xdp-mode: 1 is not a valid value" },
	{ "interfaces: [eth0, [eth1]]\n", "interfaces: [ \"eth0\", [ \"eth1\" ] ] is not a valid" },
	{ "colour: blue\n", "unknown key \"colour\"" },
	{ "cleanup: true\n", "unknown key \"cleanup\"" },
	{ "- interfaces\n", "want a mapping of option: value" },
};

static void test_bad_file(void)
{
	struct meshd_config cfg;
	char path[PATH_MAX], want[PATH_MAX + 128];

	for (size_t i = 0; i < ARRAY_SIZE(bad_files); i++) {
		const struct bad_file *b = &bad_files[i];

		write_config(path, sizeof(path), b->yaml);
		snprintf(want, sizeof(want), "%s: %s", path, b->message);
		if (ASSERT_EQ(parse(&cfg, "--config", path, (char *)NULL), 2, b->yaml))
			said(want);
		config__free(&cfg);
	}
	if (ASSERT_EQ(parse(&cfg, "--config", "/nonexistent/meshd.yaml", (char *)NULL), 2,
		      "no file"))
		said("config /nonexistent/meshd.yaml");
	config__free(&cfg);
}

static const struct usage_case {
	const char *arg, *arg2; /* arg2 may be NULL */
	int rc;
	const char *message;
} usage_cases[] = {
	{ "--bogus", NULL, 2, "unknown option --bogus" },
	{ "--state", NULL, 2, "missing value for option --state" },
	{ "stray", NULL, 2, "unexpected argument \"stray\"" },
	{ "--interfaces", "eth0", 0, "" },
	{ "--help", NULL, 1, "Usage: meshd" },
	{ "-h", NULL, 1, "--telemetry-interval SECONDS" },
	{ "--help", NULL, 1, "--state-missing refuse|adopt|empty" },
	{ "--help", NULL, 1, "--no-outlier-detection the same as --outlier-detection off" },
	{ "--help", NULL, 1, "--policy-cut-netns cgroup|all" },
	{ "-V", NULL, 1, "meshd " SLUICE_VERSION },
};

static void test_usage(void)
{
	struct meshd_config cfg;

	for (size_t i = 0; i < ARRAY_SIZE(usage_cases); i++) {
		const struct usage_case *u = &usage_cases[i];

		if (ASSERT_EQ(parse(&cfg, u->arg, u->arg2, (char *)NULL), u->rc, u->arg))
			said(u->message);
		config__free(&cfg);
	}
}

static const struct test tests[] = {
	TEST(test_defaults),
	TEST(test_flags),
	TEST(test_file_and_precedence),
	TEST(test_bad_flags),
	TEST(test_fib_forward),
	TEST(test_bad_kubeconfig),
	TEST(test_bad_file),
	TEST(test_usage),
	TEST(test_outlier_detection),
	TEST(test_metrics_backends),
	TEST(test_policy_cut_netns),
	TEST(test_nodeport_addresses),
	TEST(test_snat_address),
};

int main(int argc, char **argv)
{
	int rc;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	rc = test__run_all("meshd_config", tests, ARRAY_SIZE(tests), argc, argv);
	snprintf(out, sizeof(out), "%s/meshd.yaml", dir);
	unlink(out);
	rmdir(dir);
	return rc;
}
