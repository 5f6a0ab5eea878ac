// SPDX-License-Identifier: MIT
/*
 * health.c - the --health* options of `meshctl service add|set` and the
 * health check part of `service get`.
 *
 * Contract: the flags become one "healthCheck" object of the desired
 * JSON (desired.h), checked here as far as text goes (durations, CHECK,
 * thresholds) so a typo gets its error at once; the rules across fields
 * (timeout shorter than interval, a port for udp services) are meshd's,
 * whose error names the field. Unset flags take meshd's defaults.
 */
#include <stdio.h>
#include <string.h>

#include "desired.h"

#include "health.h"
#include "meshctl.h"
#include "output.h"

static bool health__any(const struct health_flags *h)
{
	return h->check || h->interval || h->timeout || h->port || h->thresholds;
}

int health__flags_json(const struct health_flags *h, bool allow_none, struct json_object **out)
{
	struct desired_health_check hc = { 0 };
	unsigned long port = 0;
	struct json_object *o;

	*out = NULL;
	if (!health__any(h))
		return 0;
	if (!h->check)
		return cmd__usage_error("--health-* options need --health CHECK (the check is "
					"given whole: tcp, http or http:/PATH)");
	if (!strcmp(h->check, "none")) {
		if (!allow_none)
			return cmd__usage_error("--health none: a new service has no check to "
						"remove; leave --health out");
		if (health__any(&(struct health_flags){ .interval = h->interval,
							.timeout = h->timeout,
							.port = h->port,
							.thresholds = h->thresholds }))
			return cmd__usage_error("--health none takes no other --health-* option");
		*out = NULL;
		return 1; /* JSON null: remove */
	}
	if (desired__health_parse_spec(&hc, h->check) ||
	    (h->interval && desired__parse_ms(h->interval, "--health-interval", &hc.interval_ms)) ||
	    (h->timeout && desired__parse_ms(h->timeout, "--health-timeout", &hc.timeout_ms)) ||
	    (h->thresholds && desired__health_parse_thresholds(&hc, h->thresholds)))
		return out__error("%s", sluice__errmsg());
	if (h->port && opts__uint(h->port, 1, 65535, "--health-port", &port))
		return -1;
	hc.port = (__u16)port;
	desired__health_defaults(&hc);
	o = desired__health_to_json(&hc);
	*out = out__xalloc(o);
	return 1;
}

/* "healthy", "unhealthy" ... for one backend; "-" when not probed. */
static void health__row(struct table *t, struct json_object *b)
{
	struct json_object *h = js__get(b, "probe"), *lat;
	char be[SLUICE_ADDRPORT_STRLEN], buf[OUT_NUM_LEN], last[32];

	table__cell(t, "%s", js__backend_ref(b, be, sizeof(be)));
	if (!h) {
		table__cell(t, "%s", js__u64(b, "weight") ? "-" : "not probed (draining)");
		for (int i = 0; i < 4; i++)
			table__cell(t, "-");
		return;
	}
	table__cell(t, "%s", js__str(h, "state", "unknown"));
	snprintf(last, sizeof(last), "%s", js__str(h, "lastResult", "-"));
	if (js__u64(h, "lastHttpStatus"))
		snprintf(last, sizeof(last), "%s %llu", js__str(h, "lastResult", "-"),
			 (unsigned long long)js__u64(h, "lastHttpStatus"));
	table__cell(t, "%s", last);
	lat = js__get(h, "latencyMs");
	table__cell(t, "%s",
		    lat ? out__seconds(json_object_get_double(lat) / 1000.0, buf, sizeof(buf)) :
			  "-");
	table__cell(t, "%llu/%llu", (unsigned long long)js__u64(h, "failsInARow"),
		    (unsigned long long)js__u64(h, "successesInARow"));
	table__cell(t, "%llu", (unsigned long long)js__u64(h, "probes"));
}

void health__print(struct json_object *svc)
{
	static const char *const cols[] = {
		"BACKEND", "PROBE", "LAST", ">LATENCY", ">FAILS/OKS", ">PROBES", NULL,
	};
	struct json_object *hc = js__get(svc, "healthCheck"), *bes = js__get(svc, "backends");
	struct desired_health_check c = { 0 };
	char text[256];
	struct table *t;

	if (!hc)
		return;
	desired__health_parse_spec(&c, js__str(hc, "type", "tcp"));
	if (c.type == DESIRED_HC_HTTP)
		snprintf(c.path, sizeof(c.path), "%s", js__str(hc, "path", "/"));
	c.port = (__u16)js__u64(hc, "port");
	c.interval_ms = (__u32)js__u64(hc, "intervalMs");
	c.timeout_ms = (__u32)js__u64(hc, "timeoutMs");
	c.healthy_threshold = (__u8)js__u64(hc, "healthyThreshold");
	c.unhealthy_threshold = (__u8)js__u64(hc, "unhealthyThreshold");
	printf("\nHealth:    %s\n", desired__health_str(&c, text, sizeof(text)));
	if (!js__len(bes))
		return;
	printf("\n");
	t = table__new(cols);
	for (size_t i = 0; i < js__len(bes); i++)
		health__row(t, js__idx(bes, i));
	table__print(t);
	table__free(t);
}
