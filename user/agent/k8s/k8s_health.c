// SPDX-License-Identifier: MIT
/*
 * k8s_health.c - a Service's active health check from its annotations
 * (see k8s.h): sluice.io/health-check ("tcp", "http", "http:/PATH") and
 * the optional sluice.io/health-check-{interval,timeout,port,thresholds}.
 *
 * Contract: EndpointSlice readiness stays the primary signal (not-ready
 * endpoints never reach the desired state); the check only takes ready
 * ones out while they fail it. A bad annotation turns the check off for
 * that Service and is reported as a problem (logged by the sync), never a
 * refusal of the whole state. The rules that depend on the port
 * (a udp port needs health-check-port) are checked per service port when
 * the Service is translated.
 */
#include <stdio.h>
#include <string.h>

#include "k8s_internal.h"

/* One annotation's text into hc; the library's error text on failure. */
static int k8s_health__field(struct json_object *ann, const char *key,
			     struct desired_health_check *hc, bool *bad, bool *given)
{
	const char *v = k8s_json__str(ann, key, bad);
	unsigned long port;
	char *end;

	if (!v)
		return 0;
	*given = true;
	if (!strcmp(key, K8S_ANN_HEALTH))
		return desired__health_parse_spec(hc, v);
	if (!strcmp(key, K8S_ANN_HEALTH "-interval"))
		return desired__parse_ms(v, key, &hc->interval_ms);
	if (!strcmp(key, K8S_ANN_HEALTH "-timeout"))
		return desired__parse_ms(v, key, &hc->timeout_ms);
	if (!strcmp(key, K8S_ANN_HEALTH "-thresholds"))
		return desired__health_parse_thresholds(hc, v);
	port = strtoul(v, &end, 10);
	if (*v < '0' || *v > '9' || *end || !port || port > 65535) {
		sluice__set_err("%s \"%.20s\" is not a port 1-65535", key, v);
		return -1;
	}
	hc->port = (__u16)port;
	return 0;
}

int k8s_svc__parse_health(struct json_object *ann, struct desired_health_check *hc, char *problem,
			  size_t len)
{
	static const char *const keys[] = {
		K8S_ANN_HEALTH,         K8S_ANN_HEALTH "-interval",   K8S_ANN_HEALTH "-timeout",
		K8S_ANN_HEALTH "-port", K8S_ANN_HEALTH "-thresholds",
	};
	bool bad = false, given = false, others = false;

	memset(hc, 0, sizeof(*hc));
	problem[0] = '\0';
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++) {
		bool *seen = i ? &others : &given;

		if (k8s_health__field(ann, keys[i], hc, &bad, seen)) {
			snprintf(problem, len, "%s: health check off", sluice__errmsg());
			memset(hc, 0, sizeof(*hc));
			return 0;
		}
	}
	if (bad) {
		memset(hc, 0, sizeof(*hc));
		return -1; /* an annotation that is not a string: the object is bad */
	}
	if (!given) {
		if (others)
			snprintf(problem, len,
				 K8S_ANN_HEALTH "-* annotations without " K8S_ANN_HEALTH
						": no health check");
		memset(hc, 0, sizeof(*hc));
		return 0;
	}
	desired__health_defaults(hc);
	if (desired__health_validate(hc, 0, K8S_ANN_HEALTH)) {
		snprintf(problem, len, "%s: health check off", sluice__errmsg());
		memset(hc, 0, sizeof(*hc));
	}
	return 0;
}
