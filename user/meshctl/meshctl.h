/* SPDX-License-Identifier: MIT */
/*
 * meshctl.h - what the meshctl modules share: the global options, the
 * command tables and the argument helpers.
 *
 * Contract: every top-level command is one struct cmd defined next to its
 * code; an object (service, backend, conntrack) holds a NULL-terminated
 * table of its commands in .sub. main.c dispatches through these tables
 * with unambiguous-prefix matching at every level and prints help from
 * them, so a command cannot exist without its help text. A command
 * function gets the arguments after its own name and returns 0, or -1
 * after reporting the error exactly once with out__error().
 */
#ifndef MESHCTL_H
#define MESHCTL_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice.h"

/* The release string; the lead may move it into sluice.h so meshd and
 * meshctl share one. */

#define MESHCTL_TIMEOUT_MS_DEFAULT 10000
#define MESHCTL_PATH_MAX 128

enum out_format {
	OUT_TABLE,
	OUT_JSON,
};

struct meshctl_opts {
	enum out_format format;
	const char *socket;
	int timeout_ms;
	/* "meshctl service add" while dispatching: names the command in
	 * errors and help */
	char path[MESHCTL_PATH_MAX];
};

extern struct meshctl_opts g_opts;

/* One line of help: an argument or option and what it means. */
struct help_item {
	const char *term;
	const char *text;
};

struct cmd;
typedef int (*cmd_fn)(int argc, char **argv);

struct cmd {
	const char *name;
	cmd_fn fn;                    /* leaf command */
	const struct cmd *const *sub; /* object: its commands, NULL-terminated */
	const char *grammar;          /* what follows the command path in usage */
	const char *summary;          /* one line */
	const struct help_item *args; /* positional arguments, {NULL} ended */
	const struct help_item *opts; /* command options, {NULL} ended */
	const char *notes;            /* optional paragraph printed before the example */
	const char *example;          /* one or more lines, each a full command */
	bool reads;                   /* a read command: -o json prints its view */
	bool exact;                   /* destructive: no abbreviation accepted */
	/* Abbreviations shorter than this are not this command's: a command
	 * added later keeps the older one's prefixes working ("con" stays
	 * conntrack, connections needs "conne"). 0: any prefix. */
	unsigned int min_prefix;
};

/* The top-level commands, each defined next to its code. */
extern const struct cmd service_cmd;
extern const struct cmd backend_cmd;
extern const struct cmd backend_batch_cmd; /* backend_batch.c */
extern const struct cmd apply_cmd;
extern const struct cmd conntrack_cmd;
extern const struct cmd status_cmd;
extern const struct cmd version_cmd;
extern const struct cmd uninstall_cmd;
extern const struct cmd connections_cmd;
extern const struct cmd top_cmd;
extern const struct cmd doctor_cmd;
extern const struct cmd explain_cmd;
extern const struct cmd policy_cmd;

/* Help items shared by several commands. */
#define HELP_SVC                                                                                  \
	{                                                                                         \
		"SVC", "the service: VIP:PORT/PROTO, e.g. 10.96.0.10:80/tcp or [fd00::10]:53/udp" \
	}
#define HELP_BE                                                                      \
	{                                                                            \
		"BE", "a backend: ADDR:PORT, e.g. 10.0.1.2:8080 or [fd00::1:2]:8080" \
	}

/*
 * Command options. opts__parse() walks argv: options (long names may be
 * abbreviated to an unambiguous prefix, "--name=x" and "--name x" both
 * work, "--" ends options) fill their target, everything else is collected
 * in order into pos[] (at most max_pos, else an error). Errors are reported.
 */
struct opt {
	const char *name;   /* long name without "--" */
	char short_name;    /* 0: none */
	const char **value; /* option takes an argument */
	bool *flag;         /* or is a flag */
};

int opts__parse(int argc, char **argv, const struct opt *opts, char **pos, int max_pos, int *npos);
/* Parse a decimal number in [min, max]; what names it in the error. */
int opts__uint(const char *text, unsigned long min, unsigned long max, const char *what,
	       unsigned long *out);
/* Report a usage error naming the command, with a pointer to its help. */
int cmd__usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Service and backend references, checked here before meshd is asked so a
 * typo gets its error at once, and sent in canonical form.
 * args__svc: "10.96.0.10:80/TCP" -> "10.96.0.10:80/tcp" in canon.
 * args__backend: "ADDR:PORT", of the VIP's family when vip is not NULL.
 */
#define ARGS_SVC_LEN 80
int args__svc(const char *text, struct sluice_addr *vip, char *canon, size_t len);
int args__backend(const char *text, const struct sluice_addr *vip, struct sluice_addr *addr,
		  __u16 *port, char *canon, size_t len);

/* affinity.c (#14): --affinity client-ip[:TIMEOUT]|none into a
 * "sessionAffinity" object (*out), or an error printed and -1; and the
 * short form list/get show ("client-ip 3h", "none"). */
struct json_object;
int affinity__arg(const char *text, struct json_object **out);
const char *affinity__str(struct json_object *svc, char *buf, size_t len);
/* client-ip: a client's new connections go to the backend it used last,
 * while that one is usable and the client was not idle for TIMEOUT. */
#define AFFINITY_HELP                                                                    \
	{                                                                                \
		"--affinity MODE",                                                       \
			"client-ip[:TIMEOUT] (1s-24h: 90s, 30m, 3h; default 3h) or none" \
	}

/* src_range.c (#13): --source-ranges CIDR[,CIDR...] ("" for none) into
 * a "sourceRanges" list (*out), or an error printed and -1 (vip: the
 * family every range must have, NULL: unknown); and what get shows. */
int src_range__arg(const char *text, const struct sluice_addr *vip, struct json_object **out);
const char *src_range__str(struct json_object *svc, char *buf, size_t len);
#define SRC_RANGE_HELP                                                                         \
	{                                                                                      \
		"--source-ranges CIDRS",                                                       \
			"only these clients (10.0.0.0/8,...; at most 64; \"\": any) on XDP/tc" \
	}

#endif /* MESHCTL_H */
