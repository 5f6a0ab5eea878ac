// SPDX-License-Identifier: MIT
/*
 * log.c - the library's error text: one thread-local buffer per thread so
 * concurrent callers (agent API threads) never see each other's messages.
 */
#include <stdarg.h>
#include <stdio.h>

#include <bpf/libbpf.h>

#include "internal.h"

static __thread char errmsg[SLUICE_ERRMSG_LEN];

void sluice__set_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
}

void sluice__clear_err(void)
{
	errmsg[0] = '\0';
}

const char *sluice__errmsg(void)
{
	return errmsg;
}

int sluice__bpf_err(int err, const char *fmt, ...)
{
	char what[SLUICE_ERRMSG_LEN], buf[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	libbpf_strerror(err, buf, sizeof(buf));
	sluice__set_err("%s: %s", what, buf);
	return err;
}
