// SPDX-License-Identifier: MIT
/*
 * config.c - meshd's settings from flags and the --config YAML file
 * (see config.h).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/magic.h>

#include "api.h"
#include "k8s.h"
#include "metrics.h"
#include "sluice.h"
#include "yamljson.h"

#include "attach.h"
#include "config.h"
#include "config_opts.h"
#include "log.h"

#define CONFIG_MAX_BYTES (1u << 20)

struct config_settings {
	char *val[OPT__SETTINGS];
	char origin[OPT__SETTINGS][PATH_MAX + 32]; /* "--name" or "FILE: name" */
	char *config;
	bool cleanup;
	bool reload_programs;
};

static int config__set(struct config_settings *st, int id, const char *val, const char *origin)
{
	char *copy = strdup(val);

	if (!copy) {
		fprintf(stderr, "meshd: out of memory\n");
		return -ENOMEM;
	}
	free(st->val[id]);
	st->val[id] = copy;
	snprintf(st->origin[id], sizeof(st->origin[id]), "%s", origin);
	return 0;
}

static int config__parse_flags(int argc, char **argv, struct config_settings *st)
{
	struct option lopts[OPT__MAX + 1];
	char origin[64];
	int c;

	memset(lopts, 0, sizeof(lopts));
	for (int i = 0; i < OPT__MAX; i++) {
		lopts[i].name = config_opts[i].name;
		lopts[i].has_arg = config_opts[i].arg ? required_argument : no_argument;
		lopts[i].val = 256 + i;
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, "hV", lopts, NULL)) != -1) {
		int id = c - 256;

		if (c == 'h')
			id = OPT_HELP;
		else if (c == 'V')
			id = OPT_VERSION;
		if (c == '?' || c == ':' || id < 0 || id >= OPT__MAX) {
			fprintf(stderr, "meshd: %s option %s\n",
				optopt && optopt >= 256 ? "missing value for" : "unknown",
				argv[optind - 1]);
			fprintf(stderr, "Try 'meshd --help'.\n");
			return 2;
		}
		switch (id) {
		case OPT_HELP:
			config__usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("meshd %s (map layout %d)\n", SLUICE_VERSION, SLUICE_LAYOUT_VERSION);
			return 1;
		case OPT_CLEANUP:
			st->cleanup = true;
			break;
		case OPT_RELOAD_PROGRAMS:
			st->reload_programs = true;
			break;
		case OPT_NO_OUTLIER_DETECTION:
			if (config__set(st, OPT_OUTLIER_DETECTION, "off", "--no-outlier-detection"))
				return 2;
			break;
		case OPT_CONFIG:
			free(st->config);
			st->config = strdup(optarg);
			break;
		default:
			snprintf(origin, sizeof(origin), "--%s", config_opts[id].name);
			if (config__set(st, id, optarg, origin))
				return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "meshd: unexpected argument \"%s\"\nTry 'meshd --help'.\n",
			argv[optind]);
		return 2;
	}
	return 0;
}

/* One config value as the flag text: lists joined by ',', booleans on/off. */
static int config__value(struct json_object *v, int id, char *buf, size_t len)
{
	size_t off = 0;

	switch (json_object_get_type(v)) {
	case json_type_string:
		snprintf(buf, len, "%s", json_object_get_string(v));
		return 0;
	case json_type_boolean:
		if (id != OPT_FIB_FORWARD && id != OPT_TELEMETRY && id != OPT_SOCKET_LB &&
		    id != OPT_REDIRECT && id != OPT_KUBERNETES && id != OPT_OUTLIER_DETECTION &&
		    !(id == OPT_METRICS && !json_object_get_boolean(v)))
			return -EINVAL;
		snprintf(buf, len, "%s", json_object_get_boolean(v) ? "on" : "off");
		return 0;
	case json_type_int:
		if (id != OPT_TELEMETRY_INTERVAL)
			return -EINVAL;
		snprintf(buf, len, "%lld", (long long)json_object_get_int64(v));
		return 0;
	case json_type_array:
		if (id != OPT_INTERFACES && id != OPT_NODEPORT_ADDRESSES && id != OPT_SNAT_ADDRESS)
			return -EINVAL;
		buf[0] = '\0';
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct json_object *e = json_object_array_get_idx(v, i);

			if (!json_object_is_type(e, json_type_string))
				return -EINVAL;
			off += snprintf(buf + off, off < len ? len - off : 0, "%s%s", i ? "," : "",
					json_object_get_string(e));
		}
		return off < len ? 0 : -E2BIG;
	default:
		return -EINVAL;
	}
}

static int config__parse_file(struct config_settings *st)
{
	struct json_object *root = NULL;
	char *text = NULL, buf[4096], origin[PATH_MAX + 32];
	size_t len;
	int err;

	err = yaml__read_file(st->config, CONFIG_MAX_BYTES, &text, &len);
	if (!err)
		err = yaml__load(text, len, st->config, &root);
	free(text);
	if (err) {
		fprintf(stderr, "meshd: config %s: %s\n", st->config, sluice__errmsg());
		return 2;
	}
	if (!root)
		return 0; /* empty file */
	if (!json_object_is_type(root, json_type_object)) {
		fprintf(stderr, "meshd: config %s: want a mapping of option: value\n", st->config);
		json_object_put(root);
		return 2;
	}
	json_object_object_foreach(root, key, val)
	{
		char name[64];
		int id = -1;

		snprintf(name, sizeof(name), "%s", key);
		for (char *p = name; *p; p++)
			if (*p == '_')
				*p = '-';
		for (int i = 0; i < OPT__SETTINGS && id < 0; i++)
			if (!strcmp(name, config_opts[i].name))
				id = i;
		if (id < 0) {
			fprintf(stderr,
				"meshd: config %s: unknown key \"%s\" (known: interfaces, xdp-mode, "
				"fib-forward, cgroup, bpffs, state, socket, log-level, metrics, metrics-backends, "
				"telemetry, telemetry-interval, socket-lb, redirect, kubernetes, "
				"kubeconfig, nodeport-addresses, snat-address, state-missing, "
				"api-max-request, "
				"outlier-detection, policy-cut-netns)\n",
				st->config, key);
			err = 2;
			break;
		}
		if (json_object_is_type(val, json_type_null) || st->val[id])
			continue; /* unset, or a flag overrides it */
		if (config__value(val, id, buf, sizeof(buf))) {
			fprintf(stderr, "meshd: config %s: %s: %s is not a valid value\n",
				st->config, key, json_object_to_json_string(val));
			err = 2;
			break;
		}
		snprintf(origin, sizeof(origin), "%s: %s", st->config, key);
		if (config__set(st, id, buf, origin)) {
			err = 2;
			break;
		}
	}
	json_object_put(root);
	return err;
}

static int config__parse_bool(const char *text, bool *out)
{
	static const char *const yes[] = { "on", "true", "yes", "1" };
	static const char *const no[] = { "off", "false", "no", "0" };

	for (int i = 0; i < 4; i++) {
		if (!strcmp(text, yes[i]) || !strcmp(text, no[i])) {
			*out = !strcmp(text, yes[i]);
			return 0;
		}
	}
	return -EINVAL;
}

/* The first cgroup2 mount: the unified hierarchy, wherever the distro put it. */
static char *config__find_cgroup2(void)
{
	struct mntent *me;
	char *found = NULL;
	FILE *f = setmntent("/proc/mounts", "r");

	if (!f)
		return NULL;
	while (!found && (me = getmntent(f)))
		if (!strcmp(me->mnt_type, "cgroup2"))
			found = strdup(me->mnt_dir);
	endmntent(f);
	return found;
}

static int config__check_cgroup(const char *path, const char *origin)
{
	struct statfs sfs;
	struct stat st;

	if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "meshd: %s: %s is not a directory\n", origin, path);
		return 2;
	}
	if (statfs(path, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		fprintf(stderr, "meshd: %s: %s is not on a cgroup v2 filesystem\n", origin, path);
		return 2;
	}
	return 0;
}

/* The forms http.h binds: "HOST:PORT" with a numeric host, "[V6]:PORT",
 * ":PORT". Checked here so a typo stops meshd before anything is loaded. */
static int config__check_metrics(const char *text, const char *origin)
{
	const char *addr = text, *colon = strrchr(text, ':');
	char host[INET6_ADDRSTRLEN + 2];
	unsigned char buf[sizeof(struct in6_addr)];
	size_t hlen = colon ? (size_t)(colon - addr) : 0;
	unsigned long port;
	char *end;

	if (!colon || !isdigit((unsigned char)colon[1]))
		goto bad;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port > 65535)
		goto bad;
	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		addr++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		goto bad;
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	if (!hlen || inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1)
		return 0;
bad:
	fprintf(stderr,
		"meshd: %s: \"%s\" is not HOST:PORT with a numeric host (127.0.0.1:9465), "
		"[V6]:PORT, :PORT or off\n",
		origin, text);
	return 2;
}

static char *config__dup_or(const char *val, const char *def)
{
	return strdup(val ? val : def);
}

/* An on|off setting: def when unset. */
static int config__settle_bool(const struct config_settings *st, int id, bool def, bool *out)
{
	*out = def;
	if (st->val[id] && config__parse_bool(st->val[id], out)) {
		fprintf(stderr, "meshd: %s: \"%s\" is not on or off\n", st->origin[id],
			st->val[id]);
		return 2;
	}
	return 0;
}

const char *config__fwd_mode(const struct meshd_config *cfg)
{
	if (cfg->fib_forward)
		return "on";
	return cfg->fwd_off ? "off" : "auto";
}

__u32 config__datapath_cfg(const struct meshd_config *cfg)
{
	return (cfg->fib_forward ? SLUICE_CFG_FIB_FORWARD : 0) |
	       (cfg->fwd_off ? SLUICE_CFG_FWD_OFF : 0);
}

/* The modes and switches, in the order their errors are reported. */
static int config__settle_switches(const struct config_settings *st, struct meshd_config *cfg)
{
	char *const *v = st->val;

	cfg->xdp_mode = ATTACH_XDP_NATIVE;
	if (v[OPT_XDP_MODE] && attach__parse_mode(v[OPT_XDP_MODE], &cfg->xdp_mode)) {
		fprintf(stderr, "meshd: %s: \"%s\" is not native, generic or off\n",
			st->origin[OPT_XDP_MODE], v[OPT_XDP_MODE]);
		return 2;
	}
	/* auto (XDP redirects per capable egress), on (to any), off (never) */
	cfg->fib_forward = false;
	cfg->fwd_off = false;
	if (v[OPT_FIB_FORWARD] && strcmp(v[OPT_FIB_FORWARD], "auto") &&
	    config__parse_bool(v[OPT_FIB_FORWARD], &cfg->fib_forward)) {
		fprintf(stderr, "meshd: %s: \"%s\" is not auto, on or off\n",
			st->origin[OPT_FIB_FORWARD], v[OPT_FIB_FORWARD]);
		return 2;
	}
	cfg->fwd_off = v[OPT_FIB_FORWARD] && strcmp(v[OPT_FIB_FORWARD], "auto") &&
		       !cfg->fib_forward;
	cfg->log_level = LOG_LEVEL_INFO;
	if (v[OPT_LOG_LEVEL] && log__parse_level(v[OPT_LOG_LEVEL], &cfg->log_level)) {
		fprintf(stderr, "meshd: %s: \"%s\" is not error, warn, info or debug\n",
			st->origin[OPT_LOG_LEVEL], v[OPT_LOG_LEVEL]);
		return 2;
	}
	cfg->state_missing = STATE_MISSING_REFUSE;
	if (v[OPT_STATE_MISSING] &&
	    state__parse_missing(v[OPT_STATE_MISSING], &cfg->state_missing)) {
		fprintf(stderr, "meshd: %s: \"%s\" is not refuse, adopt or empty\n",
			st->origin[OPT_STATE_MISSING], v[OPT_STATE_MISSING]);
		return 2;
	}
	cfg->policy_cut_all = v[OPT_POLICY_CUT_NETNS] && !strcmp(v[OPT_POLICY_CUT_NETNS], "all");
	if (v[OPT_POLICY_CUT_NETNS] && !cfg->policy_cut_all &&
	    strcmp(v[OPT_POLICY_CUT_NETNS], "cgroup")) {
		fprintf(stderr, "meshd: %s: \"%s\" is not cgroup or all\n",
			st->origin[OPT_POLICY_CUT_NETNS], v[OPT_POLICY_CUT_NETNS]);
		return 2;
	}
	if (v[OPT_METRICS_BACKENDS]) {
		enum metrics_backends b;

		if (metrics__parse_backends(v[OPT_METRICS_BACKENDS], &b)) {
			fprintf(stderr, "meshd: %s: \"%s\" is not auto, on or off\n",
				st->origin[OPT_METRICS_BACKENDS], v[OPT_METRICS_BACKENDS]);
			return 2;
		}
		cfg->metrics_backends = b;
	}
	if (config__settle_bool(st, OPT_TELEMETRY, true, &cfg->telemetry) ||
	    config__settle_bool(st, OPT_SOCKET_LB, true, &cfg->socket_lb) ||
	    config__settle_bool(st, OPT_REDIRECT, false, &cfg->redirect) ||
	    config__settle_bool(st, OPT_KUBERNETES, false, &cfg->kubernetes) ||
	    config__settle_bool(st, OPT_OUTLIER_DETECTION, true, &cfg->outlier_detection))
		return 2;
	return 0;
}

/* --nodeport-addresses: checked here, used by nodeaddr.c. */
static int config__settle_nodeport(const struct config_settings *st, struct meshd_config *cfg)
{
	const char *text = st->val[OPT_NODEPORT_ADDRESSES];
	struct k8s_cidr *c = NULL;
	__u32 n = 0;

	if (!text)
		return 0;
	if (k8s_cidrs__parse(text, &c, &n)) {
		fprintf(stderr, "meshd: %s: %s\n", st->origin[OPT_NODEPORT_ADDRESSES],
			sluice__errmsg());
		return 2;
	}
	free(c);
	if (!(cfg->nodeport_addresses = strdup(text))) {
		fprintf(stderr, "meshd: out of memory\n");
		return 2;
	}
	return 0;
}

static int config__settle_kubeconfig(const struct config_settings *st, struct meshd_config *cfg)
{
	const char *path = st->val[OPT_KUBECONFIG];

	/* Checked here so a typo stops meshd before the datapath is touched. */
	if (cfg->kubernetes && path && access(path, R_OK)) {
		fprintf(stderr, "meshd: %s: cannot read %s: %s\n", st->origin[OPT_KUBECONFIG], path,
			strerror(errno));
		return 2;
	}
	if (path && !(cfg->kubeconfig = strdup(path))) {
		fprintf(stderr, "meshd: out of memory\n");
		return 2;
	}
	return config__settle_nodeport(st, cfg) ?:
		       snataddr__parse(&cfg->snat, st->val[OPT_SNAT_ADDRESS],
				       st->origin[OPT_SNAT_ADDRESS]);
}

static int config__settle_interval(const struct config_settings *st, struct meshd_config *cfg)
{
	const char *text = st->val[OPT_TELEMETRY_INTERVAL];
	unsigned long n;
	char *end;

	cfg->telemetry_interval = MESHD_TELEMETRY_INTERVAL_DEFAULT;
	if (!text)
		return 0;
	errno = 0;
	n = strtoul(text, &end, 10);
	if (!isdigit((unsigned char)text[0]) || errno || *end || n > MESHD_TELEMETRY_INTERVAL_MAX) {
		fprintf(stderr, "meshd: %s: \"%s\" is not a number of seconds 0-%d\n",
			st->origin[OPT_TELEMETRY_INTERVAL], text, MESHD_TELEMETRY_INTERVAL_MAX);
		return 2;
	}
	cfg->telemetry_interval = n;
	return 0;
}

static int config__settle_max_request(const struct config_settings *st, struct meshd_config *cfg)
{
	const char *text = st->val[OPT_API_MAX_REQUEST];
	unsigned long n = MESHD_API_MAX_REQUEST_MIB_DEFAULT;
	char *end;

	if (text) {
		errno = 0;
		n = strtoul(text, &end, 10);
		if (!isdigit((unsigned char)text[0]) || errno || *end || !n ||
		    n > MESHD_API_MAX_REQUEST_MIB_MAX) {
			fprintf(stderr, "meshd: %s: \"%s\" is not a number of MiB 1-%d\n",
				st->origin[OPT_API_MAX_REQUEST], text,
				MESHD_API_MAX_REQUEST_MIB_MAX);
			return 2;
		}
	}
	cfg->api_max_request = (size_t)n << 20;
	return 0;
}

/* The metrics address, the absolute paths and the cgroup directory. */
static int config__check_places(const struct config_settings *st)
{
	char *const *v = st->val;

	if (v[OPT_METRICS] && strcmp(v[OPT_METRICS], "off") &&
	    config__check_metrics(v[OPT_METRICS], st->origin[OPT_METRICS]))
		return 2;
	for (int i = OPT_BPFFS; i <= OPT_SOCKET; i++) {
		if (v[i] && (v[i][0] != '/' || v[i][1] == '\0')) {
			fprintf(stderr, "meshd: %s: \"%s\" is not an absolute path\n",
				st->origin[i], v[i]);
			return 2;
		}
	}
	if (v[OPT_CGROUP] && config__check_cgroup(v[OPT_CGROUP], st->origin[OPT_CGROUP]))
		return 2;
	return 0;
}

/* The strings, defaults filled in (validated by config__check_places()). */
static int config__settle_strings(const struct config_settings *st, struct meshd_config *cfg)
{
	char *const *v = st->val;
	bool metrics_off = v[OPT_METRICS] && !strcmp(v[OPT_METRICS], "off");

	if (v[OPT_CGROUP])
		cfg->cgroup = strdup(v[OPT_CGROUP]);
	else if (!st->cleanup)
		cfg->cgroup = config__find_cgroup2();
	cfg->interfaces = config__dup_or(v[OPT_INTERFACES], "");
	cfg->bpffs = config__dup_or(v[OPT_BPFFS], MESHD_BPFFS_DEFAULT);
	cfg->state = config__dup_or(v[OPT_STATE], MESHD_STATE_DEFAULT);
	cfg->socket = config__dup_or(v[OPT_SOCKET], SLUICE_API_SOCKET_DEFAULT);
	cfg->cleanup = st->cleanup;
	cfg->reload_programs = st->reload_programs;
	if (!metrics_off)
		cfg->metrics = config__dup_or(v[OPT_METRICS], MESHD_METRICS_DEFAULT);
	if (!cfg->interfaces || !cfg->bpffs || !cfg->state || !cfg->socket ||
	    (!cfg->metrics && !metrics_off)) {
		fprintf(stderr, "meshd: out of memory\n");
		return 2;
	}
	/* Trailing slashes would make two spellings of one pin dir. */
	for (size_t n = strlen(cfg->bpffs); n > 1 && cfg->bpffs[n - 1] == '/'; n--)
		cfg->bpffs[n - 1] = '\0';
	return 0;
}

/* Typed, validated config from the merged settings. */
static int config__settle(const struct config_settings *st, struct meshd_config *cfg)
{
	if (config__settle_switches(st, cfg) || config__settle_kubeconfig(st, cfg) ||
	    config__settle_interval(st, cfg) || config__settle_max_request(st, cfg) ||
	    config__check_places(st) || config__settle_strings(st, cfg))
		return 2;
	return 0;
}

/* 0: run; 1: done (help/version), exit 0; 2: usage error. */
int config__parse(int argc, char **argv, struct meshd_config *cfg)
{
	struct config_settings st;
	int rc;

	memset(&st, 0, sizeof(st));
	rc = config__parse_flags(argc, argv, &st);
	if (!rc && st.config)
		rc = config__parse_file(&st);
	if (!rc)
		rc = config__settle(&st, cfg);
	for (int i = 0; i < OPT__SETTINGS; i++)
		free(st.val[i]);
	free(st.config);
	return rc;
}

void config__free(struct meshd_config *cfg)
{
	free(cfg->interfaces);
	free(cfg->cgroup);
	free(cfg->bpffs);
	free(cfg->state);
	free(cfg->socket);
	free(cfg->metrics);
	free(cfg->kubeconfig);
	free(cfg->nodeport_addresses);
}
