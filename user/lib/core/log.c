// SPDX-License-Identifier: MIT
/*
 * log.c - the library's error text: one thread-local buffer per thread so
 * concurrent callers (agent API threads) never see each other's messages.
 */
#include <stdarg.h>
#include <stdio.h>

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
