/* SPDX-License-Identifier: MIT */
/*
 * config.h - meshd's settings: command-line flags and an optional YAML
 * config file (--config) whose keys are the long flag names ("xdp-mode"
 * or "xdp_mode"). Flags win over the file; the file over the defaults.
 *
 * Contract: everything is validated here (modes, levels, absolute paths,
 * the cgroup v2 directory), with messages naming where a value came from
 * ("--xdp-mode" or "FILE: xdp-mode"), before meshd touches anything.
 */
#ifndef MESHD_CONFIG_H
#define MESHD_CONFIG_H

#include <stdbool.h>

#include "attach.h"
#include "log.h"
#include "snataddr.h"
#include "state.h"

#define MESHD_BPFFS_DEFAULT "/sys/fs/bpf/sluice"
#define MESHD_STATE_DEFAULT "/var/lib/sluice/state.json"
#define MESHD_METRICS_DEFAULT ":9465" /* HTTP_DEFAULT_BIND of http.h */
#define MESHD_TELEMETRY_INTERVAL_DEFAULT 10
#define MESHD_TELEMETRY_INTERVAL_MAX 86400
#define MESHD_API_MAX_REQUEST_MIB_DEFAULT 32
#define MESHD_API_MAX_REQUEST_MIB_MAX 128 /* SLUICE_API_MAX_MSG: what meshctl sends */

struct meshd_config {
	char *interfaces; /* comma-separated names / fnmatch patterns */
	enum attach_xdp_mode xdp_mode;
	bool fib_forward; /* --fib-forward on: XDP redirects to any egress */
	bool fwd_off;     /* --fib-forward off: XDP and tc leave forwarding to the kernel */
	char *cgroup;
	char *bpffs;
	char *state;
	char *socket;
	enum log_level log_level;
	char *metrics;        /* bind address of /metrics; NULL: off */
	bool socket_lb;       /* connect()/sendmsg() hooks on --cgroup */
	bool redirect;        /* sockops + sk_msg same-node redirection (opt-in) */
	int metrics_backends; /* enum metrics_backends (--metrics-backends) */
	bool telemetry;
	unsigned int telemetry_interval; /* seconds; 0: records at open and close only */
	bool kubernetes;                 /* sync Services/EndpointSlices (k8sint.h) */
	char *kubeconfig;                /* NULL: in-cluster service account */
	char *nodeport_addresses;        /* CIDR list; NULL: every node address */
	struct snataddr snat;            /* --snat-address (snataddr.h) */
	enum state_missing state_missing;
	size_t api_max_request; /* bytes */
	bool outlier_detection; /* node-wide passive outlier detection (#14) */
	bool policy_cut_all;    /* a policy cut visits every process's netns (#15) */
	bool cleanup;
	bool reload_programs; /* #16: load the programs even if the pinned ones match */
};

/* 0: run; 1: done (--help/--version printed), exit 0; 2: usage error
 * (printed), exit 2. cfg must be zeroed; free it with config__free(). */
int config__parse(int argc, char **argv, struct meshd_config *cfg);
void config__free(struct meshd_config *cfg);

/* --fib-forward as text: "auto", "on" or "off". */
const char *config__fwd_mode(const struct meshd_config *cfg);
/* The datapath's rodata knobs (SLUICE_CFG_*) the config asks for. */
__u32 config__datapath_cfg(const struct meshd_config *cfg);

#endif /* MESHD_CONFIG_H */
