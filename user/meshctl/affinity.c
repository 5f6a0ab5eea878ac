// SPDX-License-Identifier: MIT
/*
 * affinity.c - session affinity in meshctl (#14): the --affinity option
 * of `service add` and `service set`, and how list/get show it.
 *
 *   --affinity client-ip[:TIMEOUT]   TIMEOUT 1s-24h: 90, 90s, 30m, 3h, 1d
 *   --affinity none
 *
 * It becomes the desired state's "sessionAffinity" object (Kubernetes'
 * words: {"type": "ClientIP", "timeoutSeconds": N} or {"type": "None"}).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice.h"

#include "meshctl.h"
#include "output.h"

/* "90", "90s", "30m", "3h", "1d" -> seconds; 0 when malformed. */
static unsigned long affinity__seconds(const char *text)
{
	unsigned long long n, mult = 1;
	char *end;

	if (!*text || *text < '0' || *text > '9')
		return 0;
	n = strtoull(text, &end, 10);
	if (!strcmp(end, "") || !strcmp(end, "s"))
		mult = 1;
	else if (!strcmp(end, "m"))
		mult = 60;
	else if (!strcmp(end, "h"))
		mult = 3600;
	else if (!strcmp(end, "d"))
		mult = 86400;
	else
		return 0;
	if (n > SLUICE_AFFINITY_TIMEOUT_MAX || n * mult > SLUICE_AFFINITY_TIMEOUT_MAX)
		return SLUICE_AFFINITY_TIMEOUT_MAX + 1UL;
	return (unsigned long)(n * mult);
}

int affinity__arg(const char *text, struct json_object **out)
{
	unsigned long secs = SLUICE_AFFINITY_TIMEOUT_DEFAULT;
	struct json_object *o;
	const char *colon = strchr(text, ':');
	size_t kind = colon ? (size_t)(colon - text) : strlen(text);

	if (kind == 4 && !strncasecmp(text, "none", 4) && !colon) {
		o = out__xalloc(json_object_new_object());
		json_object_object_add(o, "type", json_object_new_string("None"));
		*out = o;
		return 0;
	}
	if (kind != 9 || strncasecmp(text, "client-ip", 9))
		return out__error("--affinity '%s': want client-ip[:TIMEOUT] or none", text);
	if (colon) {
		secs = affinity__seconds(colon + 1);
		if (!secs || secs > SLUICE_AFFINITY_TIMEOUT_MAX)
			return out__error("--affinity '%s': timeout '%s' is not 1s-24h (e.g. 90s, "
					  "30m, 3h; a number is seconds)",
					  text, colon + 1);
	}
	o = out__xalloc(json_object_new_object());
	json_object_object_add(o, "type", json_object_new_string("ClientIP"));
	json_object_object_add(o, "timeoutSeconds", json_object_new_int64((int64_t)secs));
	*out = o;
	return 0;
}

const char *affinity__str(struct json_object *svc, char *buf, size_t len)
{
	struct json_object *sa = js__get(svc, "sessionAffinity");
	uint64_t t = js__u64(sa, "timeoutSeconds");

	if (!sa || strcmp(js__str(sa, "type", "None"), "ClientIP"))
		return "none";
	if (t % 3600 == 0)
		snprintf(buf, len, "client-ip %lluh", (unsigned long long)(t / 3600));
	else if (t % 60 == 0)
		snprintf(buf, len, "client-ip %llum", (unsigned long long)(t / 60));
	else
		snprintf(buf, len, "client-ip %llus", (unsigned long long)t);
	return buf;
}
