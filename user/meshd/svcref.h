/* SPDX-License-Identifier: MIT */
/*
 * svcref.h - the spelling of a service key ("10.96.0.10:80/tcp") for the
 * keys that are not a struct desired_service: map keys, conntrack entries,
 * parsed API arguments.
 *
 * Contract: the same text desired__svc_ref() gives, so a service named by
 * the maps, by conntrack and by the desired state compares equal.
 */
#ifndef MESHD_SVCREF_H
#define MESHD_SVCREF_H

#include <stddef.h>

#include "desired.h"

static inline char *svcref__str(const struct sluice_addr *vip, __u16 port, __u8 proto, char *buf,
				size_t len)
{
	const struct desired_service key = { .vip = *vip, .port = port, .proto = proto };

	return desired__svc_ref(&key, buf, len);
}

#endif /* MESHD_SVCREF_H */
