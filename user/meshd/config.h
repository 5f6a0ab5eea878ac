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

struct meshd_config;

/* 0: run; 1: done (--help/--version printed), exit 0; 2: usage error
 * (printed), exit 2. cfg must be zeroed; free it with config__free(). */
int config__parse(int argc, char **argv, struct meshd_config *cfg);
void config__free(struct meshd_config *cfg);

#endif /* MESHD_CONFIG_H */
