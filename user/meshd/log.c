// SPDX-License-Identifier: MIT
/*
 * log.c - timestamped, leveled lines on stderr (see log.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "log.h"

static enum log_level log_level = LOG_LEVEL_INFO;
static bool libbpf_quiet;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

int log__parse_level(const char *text, enum log_level *level)
{
	for (unsigned int i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (!strcmp(text, level_names[i])) {
			*level = i;
			return 0;
		}
	}
	return -EINVAL;
}

void log__set_level(enum log_level level)
{
	log_level = level;
}

static bool log__enabled(enum log_level level)
{
	return level <= log_level;
}

static void log__vprintf(enum log_level level, const char *fmt, va_list ap)
{
	char ts[32], line[2048];
	struct timespec now;
	struct tm tm;
	size_t len;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	vsnprintf(line, sizeof(line), fmt, ap);
	/* libbpf ends its messages with a newline, ours do not: one line each. */
	len = strlen(line);
	while (len && line[len - 1] == '\n')
		line[--len] = '\0';
	/* One fprintf per line so concurrent writers never interleave mid-line. */
	fprintf(stderr, "%s.%03ldZ %-5s %s\n", ts, now.tv_nsec / 1000000, level_names[level], line);
}

void log__printf(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log__enabled(level))
		return;
	va_start(ap, fmt);
	log__vprintf(level, fmt, ap);
	va_end(ap);
}

static int log__libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum log_level ours;

	if (libbpf_quiet)
		return 0;
	switch (level) {
	case LIBBPF_WARN:
		ours = LOG_LEVEL_INFO;
		break;
	case LIBBPF_INFO:
		ours = LOG_LEVEL_DEBUG;
		break;
	default:
		/* libbpf debug is verifier logs and relocations: noise for
		 * an agent, bpftool/veristat are the tools for that. */
		return 0;
	}
	if (!log__enabled(ours))
		return 0;
	log__vprintf(ours, fmt, ap);
	return 0;
}

void log__hook_libbpf(void)
{
	libbpf_set_print(log__libbpf);
}

void log__libbpf_quiet(bool quiet)
{
	libbpf_quiet = quiet;
}
