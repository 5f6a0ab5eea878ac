/* SPDX-License-Identifier: MIT */
/*
 * config_opts.h - meshd's options, shared by the parser (config.c) and the
 * help text (config_help.c).
 *
 * Contract: one table names every option once: its flag, its config-file
 * key (the same name; '_' may stand for '-'), its argument and default as
 * --help shows them.
 */
#ifndef MESHD_CONFIG_OPTS_H
#define MESHD_CONFIG_OPTS_H

#include <stdio.h>

/* The settings that are both flags and config-file keys come first. */
enum config_opt_id {
	OPT_INTERFACES,
	OPT_XDP_MODE,
	OPT_FIB_FORWARD,
	OPT_CGROUP,
	OPT_BPFFS,
	OPT_STATE,
	OPT_SOCKET,
	OPT_LOG_LEVEL,
	OPT_METRICS,
	OPT_METRICS_BACKENDS,
	OPT_TELEMETRY,
	OPT_TELEMETRY_INTERVAL,
	OPT_SOCKET_LB,
	OPT_REDIRECT,
	OPT_KUBERNETES,
	OPT_KUBECONFIG,
	OPT_NODEPORT_ADDRESSES,
	OPT_SNAT_ADDRESS,
	OPT_STATE_MISSING,
	OPT_API_MAX_REQUEST,
	OPT_OUTLIER_DETECTION,
	OPT_POLICY_CUT_NETNS,
	OPT__SETTINGS,
	OPT_CONFIG = OPT__SETTINGS,
	OPT_NO_OUTLIER_DETECTION, /* = --outlier-detection off */
	OPT_CLEANUP,
	OPT_RELOAD_PROGRAMS, /* #16: no reuse of the pinned programs */
	OPT_HELP,
	OPT_VERSION,
	OPT__MAX,
};

struct config_opt {
	const char *name;
	const char *arg; /* NULL: a switch */
	const char *def; /* shown as the default, NULL: none shown */
	const char *help;
};

extern const struct config_opt config_opts[OPT__MAX];

/* --help: the grammar, every option with its default, and examples. */
void config__usage(FILE *f);

#endif /* MESHD_CONFIG_OPTS_H */
