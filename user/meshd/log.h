/* SPDX-License-Identifier: MIT */
/*
 * log.h - meshd's leveled log: one line per event on stderr, prefixed with
 * a UTC timestamp and the level, so journald and `kubectl logs` read alike.
 *
 * Contract: messages below the configured level cost one comparison.
 * libbpf's own messages go through the same sink one level lower (its
 * warnings are our info), because most of them explain a failure meshd
 * reports itself at error level.
 */
#ifndef MESHD_LOG_H
#define MESHD_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* "error", "warn", "info", "debug"; returns -EINVAL for anything else. */
int log__parse_level(const char *text, enum log_level *level);
void log__set_level(enum log_level level);
/* Route libbpf's messages into this log. */
void log__hook_libbpf(void);
/* Mute libbpf around calls whose failure is an expected answer (probes). */
void log__libbpf_quiet(bool quiet);
void log__printf(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_err(...) log__printf(LOG_LEVEL_ERROR, __VA_ARGS__)
#define pr_warn(...) log__printf(LOG_LEVEL_WARN, __VA_ARGS__)
#define pr_info(...) log__printf(LOG_LEVEL_INFO, __VA_ARGS__)
#define pr_debug(...) log__printf(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif /* MESHD_LOG_H */
