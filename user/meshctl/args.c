// SPDX-License-Identifier: MIT
/*
 * args.c - command options and argument checks shared by every command.
 *
 * Contract: see meshctl.h. Every error names the command and points at its
 * --help, because the person who mistyped is looking at that command.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desired.h"

#include "meshctl.h"
#include "output.h"

int cmd__usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return out__error("%s; see '%s --help'", msg, g_opts.path);
}

/* The option named by "--name..." (len chars): exact name, else the only
 * option it is a prefix of. */
static const struct opt *opt__find_long(const struct opt *opts, const char *name, size_t len)
{
	const struct opt *o, *found = NULL;
	char cands[256] = "";
	int n = 0;

	for (o = opts; o && o->name; o++) {
		if (strlen(o->name) == len && !strncmp(o->name, name, len))
			return o;
	}
	for (o = opts; o && o->name; o++) {
		if (strncmp(o->name, name, len))
			continue;
		found = o;
		n++;
		snprintf(cands + strlen(cands), sizeof(cands) - strlen(cands), "%s--%s",
			 n > 1 ? ", " : "", o->name);
	}
	if (n == 1)
		return found;
	if (n > 1)
		cmd__usage_error("ambiguous option '--%.*s': could be %s", (int)len, name, cands);
	else
		cmd__usage_error("unknown option '--%.*s'", (int)len, name);
	return NULL;
}

static const struct opt *opt__find_short(const struct opt *opts, char c)
{
	const struct opt *o;

	for (o = opts; o && o->name; o++) {
		if (o->short_name && o->short_name == c)
			return o;
	}
	cmd__usage_error("unknown option '-%c'", c);
	return NULL;
}

int opts__parse(int argc, char **argv, const struct opt *opts, char **pos, int max_pos, int *npos)
{
	bool only_pos = false;
	int i;

	*npos = 0;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		const struct opt *o;

		if (!only_pos && !strcmp(a, "--")) {
			only_pos = true;
			continue;
		}
		/* "-" is stdin and "-1" a (bad) number: both are arguments,
		 * so their own check can say what is wrong with them. */
		if (only_pos || a[0] != '-' || !a[1] || isdigit((unsigned char)a[1])) {
			if (*npos >= max_pos)
				return cmd__usage_error("unexpected argument '%s'", a);
			pos[(*npos)++] = argv[i];
			continue;
		}
		if (a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');

			o = opt__find_long(opts, name, eq ? (size_t)(eq - name) : strlen(name));
			if (!o)
				return -1;
			if (eq)
				val = eq + 1;
			if (eq && !o->value)
				return cmd__usage_error("option --%s takes no value", o->name);
		} else {
			o = opt__find_short(opts, a[1]);
			if (!o)
				return -1;
			if (a[2] && !o->value)
				return cmd__usage_error("option -%c takes no value", a[1]);
			if (a[2])
				val = a + 2;
		}
		if (!o->value) {
			*o->flag = true;
			continue;
		}
		if (!val) {
			if (i + 1 >= argc)
				return cmd__usage_error("option --%s needs a value", o->name);
			val = argv[++i];
		}
		*o->value = val;
	}
	return 0;
}

int opts__uint(const char *text, unsigned long min, unsigned long max, const char *what,
	       unsigned long *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	/* strtoul takes "-1" and " 7"; a count or a weight must be digits. */
	if (!isdigit((unsigned char)text[0]))
		goto bad;
	v = strtoul(text, &end, 10);
	if (errno || *end || v < min || v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	return out__error("invalid %s '%s': expected a number %lu-%lu", what, text, min, max);
}

int args__svc(const char *text, struct sluice_addr *vip, char *canon, size_t len)
{
	struct desired_service svc = { 0 };

	if (desired__parse_svc_ref(text, &svc.vip, &svc.port, &svc.proto) < 0)
		return out__error("%s", sluice__errmsg());
	desired__svc_ref(&svc, canon, len);
	if (vip)
		*vip = svc.vip;
	return 0;
}

int args__backend(const char *text, const struct sluice_addr *vip, struct sluice_addr *addr,
		  __u16 *port, char *canon, size_t len)
{
	if (sluice_addr__parse_port(addr, port, text) < 0)
		return out__error("backend: %s", sluice__errmsg());
	if (vip && vip->family != addr->family)
		return out__error("backend %s is %s but the service VIP is %s: a service "
				  "cannot mix families",
				  text, addr->family == SLUICE_AF_INET ? "IPv4" : "IPv6",
				  vip->family == SLUICE_AF_INET ? "IPv4" : "IPv6");
	sluice_addr__str_port(addr, *port, canon, len);
	return 0;
}
