// SPDX-License-Identifier: MIT
/*
 * src_range.c - source ranges in meshctl (#13): the --source-ranges
 * option of `service add` and `service set`, and how get shows them.
 *
 *   --source-ranges 10.0.0.0/8,192.168.1.0/24
 *   --source-ranges ""            (set: remove them, every client again)
 *
 * It becomes the desired state's "sourceRanges" list. Checked here first
 * (CIDR syntax, host bits, the VIP's family, at most 64) so a typo gets
 * its error at once; meshd checks the same rules again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice.h"

#include "meshctl.h"
#include "output.h"

int src_range__arg(const char *text, const struct sluice_addr *vip, struct json_object **out)
{
	char buf[SLUICE_CIDR_STRLEN];
	struct json_object *arr;
	struct sluice_cidr c;
	char *copy, *item, *save = NULL;
	int n = 0, rc;

	arr = out__xalloc(json_object_new_array());
	copy = strdup(text);
	if (!copy)
		return out__error("out of memory");
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		rc = sluice_cidr__parse(&c, item);
		if (rc < 0) {
			out__error("--source-ranges: %s", sluice__errmsg());
			goto fail;
		}
		if (rc > 0) {
			out__error("--source-ranges: \"%s\" has host bits set (the range is %s)",
				   item, sluice_cidr__str(&c, buf, sizeof(buf)));
			goto fail;
		}
		if (vip && c.addr.family != vip->family) {
			out__error("--source-ranges: \"%s\" is not of the VIP's family (%s)", item,
				   vip->family == SLUICE_AF_INET ? "IPv4" : "IPv6");
			goto fail;
		}
		if (++n > SLUICE_SRC_RANGES_PER_SVC) {
			out__error("--source-ranges: more than %d ranges",
				   SLUICE_SRC_RANGES_PER_SVC);
			goto fail;
		}
		json_object_array_add(arr, json_object_new_string(item));
	}
	if (!n && strspn(text, ",") != strlen(text)) {
		out__error("--source-ranges '%s': want CIDR[,CIDR...] or \"\"", text);
		goto fail;
	}
	free(copy);
	*out = arr;
	return 0;
fail:
	free(copy);
	json_object_put(arr);
	return -1;
}

const char *src_range__str(struct json_object *svc, char *buf, size_t len)
{
	struct json_object *r = js__get(svc, "sourceRanges");
	size_t used = 0;

	if (!js__len(r))
		return "any client";
	buf[0] = '\0';
	for (size_t i = 0; i < js__len(r) && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
				 json_object_get_string(js__idx(r, i)));

		if (w < 0)
			break;
		used += (size_t)w;
	}
	return buf;
}
