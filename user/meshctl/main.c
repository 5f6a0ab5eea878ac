// SPDX-License-Identifier: MIT
/*
 * main.c - meshctl: the command-line interface to meshd.
 *
 * Contract: `meshctl [OPTIONS] COMMAND [ARGS]...`. Global options
 * (-o/--output, -j/--json, -s/--socket, --timeout) may appear anywhere
 * before a "--", so `meshctl service list -o json` works like
 * `meshctl -o json service list`. Commands are looked up in the tables of
 * meshctl.h by unambiguous prefix at every level; an ambiguous prefix lists
 * what it could mean; destructive top-level commands must be spelled out.
 * `-h`, `--help` or `help` at any level prints that level's help (usage
 * grammar, one line per command or option, an example) on stdout. Exit
 * status: 0 on success, 1 on any error.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

#include "meshctl.h"
#include "output.h"

struct meshctl_opts g_opts = {
	.format = OUT_TABLE,
	.timeout_ms = MESHCTL_TIMEOUT_MS_DEFAULT,
	.path = "meshctl",
};

#define HELP_TERM_MAX 30 /* longer terms put their text on the next line */

static const struct help_item global_opts[] = {
	{ "-o, --output table|json", "tables (default) or JSON, errors included" },
	{ "-j, --json", "same as -o json" },
	{ "-s, --socket PATH",
	  "API socket (default: $SLUICE_SOCKET or " SLUICE_API_SOCKET_DEFAULT ")" },
	{ "--timeout MS", "how long to wait for meshd (default: 10000)" },
	{ "-h, --help", "help, at every level: meshctl service add -h" },
	{ "-V, --version", "meshctl's version ('meshctl version' asks meshd too)" },
	{ NULL, NULL },
};

static const struct cmd *const top_cmds[] = {
	&service_cmd, &backend_cmd,   &apply_cmd,   &conntrack_cmd, &connections_cmd,
	&top_cmd,     &status_cmd,    &version_cmd, &doctor_cmd,    &explain_cmd,
	&policy_cmd,  &uninstall_cmd, NULL,
};

static const struct cmd meshctl_cmd = {
	.name = "meshctl",
	.sub = top_cmds,
	.grammar = "[OPTIONS] COMMAND [ARGS]...",
	.summary = "drive meshd, the Sluice agent of this node",
	.opts = global_opts,
	.example = "meshctl service add 10.96.0.10:80/tcp 10.0.1.2:8080@90 10.0.1.3:8080@10\n"
		   "meshctl backend drain 10.96.0.10:80/tcp 10.0.1.3:8080\n"
		   "meshctl apply -f services.yaml --dry-run\n"
		   "meshctl connections --follow\n"
		   "meshctl serv li -o json",
};

static bool is_help(const char *a)
{
	return !strcmp(a, "-h") || !strcmp(a, "--help");
}

/* "add|del|list|get": the grammar of an object's command slot. */
static void sub_names(const struct cmd *c, char *buf, size_t len)
{
	const struct cmd *const *s;
	size_t n = 0;

	buf[0] = '\0';
	for (s = c->sub; *s && n < len; s++)
		n += snprintf(buf + n, len - n, "%s%s", s == c->sub ? "" : "|", (*s)->name);
}

static void help__item(FILE *f, const char *term, const char *text, int width)
{
	if ((int)strlen(term) > width)
		fprintf(f, "  %s\n  %*s  %s\n", term, width, "", text);
	else
		fprintf(f, "  %-*s  %s\n", width, term, text);
}

static int help__width(const struct help_item *items, int width)
{
	for (; items && items->term; items++) {
		int w = strlen(items->term);

		if (w > width && w <= HELP_TERM_MAX)
			width = w;
	}
	return width;
}

static void help__section(FILE *f, const char *title, const struct help_item *items, int width)
{
	if (!items || !items->term)
		return;
	fprintf(f, "\n%s:\n", title);
	for (; items->term; items++)
		help__item(f, items->term, items->text, width);
}

/* The term of a command in its parent's list: "add SVC ...", "service add|del|...". */
static void cmd__term(const struct cmd *c, char *buf, size_t len)
{
	char names[128];

	if (c->sub) {
		sub_names(c, names, sizeof(names));
		snprintf(buf, len, "%s %s", c->name, names);
	} else {
		snprintf(buf, len, "%s%s%s", c->name, *c->grammar ? " " : "", c->grammar);
	}
}

/* Usage, description, commands, arguments, options, notes, example: one
 * layout for every level, so help reads the same wherever it is asked. */
static void help__print(const struct cmd *c, FILE *f)
{
	static const struct help_item leaf_opts[] = {
		{ "-o, --output table|json", "print a table (default) or JSON" },
		{ "-h, --help", "show this help" },
		{ NULL, NULL },
	};
	const struct help_item *extra = leaf_opts + (c->reads ? 0 : 1);
	struct help_item cmds[16] = { { NULL, NULL } };
	char terms[16][160], names[128];
	const struct cmd *const *s;
	const char *line;
	int width, i = 0;
	size_t n;

	if (c == &meshctl_cmd) {
		fprintf(f, "Usage: %s %s\n", g_opts.path, c->grammar);
	} else if (c->sub) {
		sub_names(c, names, sizeof(names));
		fprintf(f, "Usage: %s {%s} [ARGS]...\n", g_opts.path, names);
	} else {
		fprintf(f, "Usage: %s%s%s\n", g_opts.path, *c->grammar ? " " : "", c->grammar);
	}
	/* summaries are written as list items; as a paragraph they get a
	 * capital and a full stop */
	fprintf(f, "\n%c%s.\n", toupper((unsigned char)c->summary[0]), c->summary + 1);

	for (s = c->sub; s && *s && i < 15; s++, i++) {
		cmd__term(*s, terms[i], sizeof(terms[i]));
		cmds[i] = (struct help_item){ terms[i], (*s)->summary };
	}
	width = help__width(cmds,
			    help__width(c->args, help__width(c->opts, help__width(extra, 0))));
	help__section(f, "Commands", cmds, width);
	help__section(f, "Arguments", c->args, width);
	fprintf(f, "\nOptions:\n");
	for (const struct help_item *o = c->opts; o && o->term; o++)
		help__item(f, o->term, o->text, width);
	/* the top level documents -h among its global options */
	for (const struct help_item *o = extra; c != &meshctl_cmd && o->term; o++)
		help__item(f, o->term, o->text, width);

	fprintf(f, "\n");
	if (c->notes)
		fprintf(f, "%s\n\n", c->notes);
	if (c == &meshctl_cmd)
		fprintf(f,
			"Options go before or after the command. Commands can be abbreviated "
			"to any\nunambiguous prefix, as in \"meshctl serv li\"; uninstall must be "
			"spelled out.\n");
	else if (c->sub)
		fprintf(f, "Run '%s COMMAND --help' for the details of a command.\n", g_opts.path);
	else
		fprintf(f, "Global options (-s, --timeout, -o): see 'meshctl --help'.\n");

	fprintf(f, "\nExample%s:\n", strchr(c->example, '\n') ? "s" : "");
	for (line = c->example; *line; line += n + (line[n] == '\n')) {
		n = strcspn(line, "\n");
		fprintf(f, "  %.*s\n", (int)n, line);
	}
}

/* The command `word` names in table: exact name, else the one command it
 * is a prefix of. Reports unknown, ambiguous and abbreviated-but-exact. */
static const struct cmd *cmd__find(const struct cmd *parent, const char *word)
{
	const struct cmd *const *s, *found = NULL;
	char cands[256] = "", all[256];
	int n = 0;

	for (s = parent->sub; *s; s++) {
		/* cppcheck reads the returned pointer as a repeated condition */
		if (!strcmp((*s)->name, word))
			// cppcheck-suppress identicalInnerCondition
			return *s;
	}
	for (s = parent->sub; *s; s++) {
		if (strncmp((*s)->name, word, strlen(word)) || strlen(word) < (*s)->min_prefix)
			continue;
		found = *s;
		n++;
		snprintf(cands + strlen(cands), sizeof(cands) - strlen(cands), "%s%s",
			 n > 1 ? ", " : "", (*s)->name);
	}
	if (n == 1 && !found->exact)
		return found;

	sub_names(parent, all, sizeof(all));
	if (n > 1)
		out__error("ambiguous command '%s' for '%s': could be %s", word, g_opts.path,
			   cands);
	else if (n == 1)
		out__error("'%s' would be '%s %s', which must be spelled out in full", word,
			   g_opts.path, found->name);
	else
		out__error("unknown command '%s' for '%s' (expected %s); see '%s --help'", word,
			   g_opts.path, all, g_opts.path);
	return NULL;
}

static void path__push(const char *name)
{
	size_t n = strlen(g_opts.path);

	snprintf(g_opts.path + n, sizeof(g_opts.path) - n, " %s", name);
}

/* `meshctl help service add`: the help of the command the words name. */
static int cmd__help(const struct cmd *c, int argc, char **argv)
{
	int i;

	for (i = 0; i < argc && c->sub; i++) {
		c = cmd__find(c, argv[i]);
		if (!c)
			return -1;
		path__push(c->name);
	}
	help__print(c, stdout);
	return 0;
}

/* Run c with the words after its name. */
static int cmd__run(const struct cmd *c, int argc, char **argv)
{
	const struct cmd *sc;
	char names[128];
	int i;

	if (!c->sub) {
		for (i = 0; i < argc && strcmp(argv[i], "--"); i++) {
			if (is_help(argv[i])) {
				help__print(c, stdout);
				return 0;
			}
		}
		return c->fn(argc, argv);
	}

	if (!argc) {
		if (out__json_mode()) {
			sub_names(c, names, sizeof(names));
			return out__error("missing command for '%s' (expected %s); see '%s --help'",
					  g_opts.path, names, g_opts.path);
		}
		/* A bare object is usually someone exploring: show the way. */
		help__print(c, stderr);
		return -1;
	}
	if (is_help(argv[0]))
		return cmd__help(c, 0, NULL);
	if (!strcmp(argv[0], "help"))
		return cmd__help(c, argc - 1, argv + 1);
	if (argv[0][0] == '-' && argv[0][1])
		return out__error("unknown option '%s' for '%s'; see '%s --help'", argv[0],
				  g_opts.path, g_opts.path);
	sc = cmd__find(c, argv[0]);
	if (!sc)
		return -1;
	path__push(sc->name);
	return cmd__run(sc, argc - 1, argv + 1);
}

/* "-oVAL", "-o VAL", "--output=VAL", "--output VAL": *i moves past VAL. */
static const char *global__value(int argc, char **argv, int *i, char short_name,
				 const char *long_name, bool *matched)
{
	const char *a = argv[*i];
	size_t n = strlen(long_name);

	*matched = false;
	if (a[0] == '-' && a[1] == short_name && short_name) {
		*matched = true;
		if (a[2])
			return a + 2;
	} else if (!strncmp(a, "--", 2) && !strncmp(a + 2, long_name, n) &&
		   (a[2 + n] == '\0' || a[2 + n] == '=')) {
		*matched = true;
		if (a[2 + n] == '=')
			return a + 3 + n;
	} else {
		return NULL;
	}
	if (*i + 1 >= argc) {
		out__error("option --%s needs a value; see 'meshctl --help'", long_name);
		return NULL;
	}
	return argv[++*i];
}

/* Take the global options out of argv wherever they are, before "--". */
static int global__parse(int *argc, char **argv)
{
	const char *output = NULL, *socket = NULL, *timeout = NULL, *v;
	int i, out = 1;
	bool m;

	for (i = 1; i < *argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!strcmp(a, "-j") || !strcmp(a, "--json")) {
			output = "json";
			continue;
		}
		v = global__value(*argc, argv, &i, 'o', "output", &m);
		if (m && !v)
			return -1;
		if (m) {
			output = v;
			/* later errors of this run already speak JSON */
			g_opts.format = !strcmp(v, "json") ? OUT_JSON : OUT_TABLE;
			continue;
		}
		v = global__value(*argc, argv, &i, 's', "socket", &m);
		if (m && !v)
			return -1;
		if (m) {
			socket = v;
			continue;
		}
		v = global__value(*argc, argv, &i, 0, "timeout", &m);
		if (m && !v)
			return -1;
		if (m) {
			timeout = v;
			continue;
		}
		argv[out++] = argv[i];
	}
	*argc = out;
	argv[out] = NULL;

	if (output && !strcmp(output, "json"))
		g_opts.format = OUT_JSON;
	else if (output && strcmp(output, "table"))
		return out__error("invalid output format '%s': expected table or json", output);
	if (!socket)
		socket = getenv("SLUICE_SOCKET");
	g_opts.socket = socket && *socket ? socket : SLUICE_API_SOCKET_DEFAULT;
	if (timeout) {
		unsigned long ms;

		if (opts__uint(timeout, 1, 3600000, "--timeout", &ms))
			return -1;
		g_opts.timeout_ms = (int)ms;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int rc;

	if (global__parse(&argc, argv))
		return 1;
	if (argc > 1 && (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))) {
		printf("meshctl %s\n", SLUICE_VERSION);
		return 0;
	}
	/* a command may say more than failed: doctor's 2 is "could not run" */
	rc = cmd__run(&meshctl_cmd, argc - 1, argv + 1);
	return rc < 0 ? 1 : rc;
}
