// SPDX-License-Identifier: MIT
/*
 * desired_health.c - a service's active health check ("healthCheck") in
 * the desired state: JSON in and out, its rules, and the short text forms
 * that meshctl flags and Kubernetes annotations share (see desired.h).
 *
 * Contract: a parsed check has every default filled in, so the state file
 * and `meshctl service get` show what meshd really probes with. The rules
 * live in health__check() alone; each error names the field's path and
 * the value found.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "desired_internal.h"
#include "internal.h"

static const char *const hc_fields[] = {
	"type", "path", "port", "intervalMs", "timeoutMs", "healthyThreshold", "unhealthyThreshold",
	NULL
};

static const char *const hc_types[] = {
	[DESIRED_HC_NONE] = "none",
	[DESIRED_HC_TCP] = "tcp",
	[DESIRED_HC_HTTP] = "http",
};

bool desired__health_eq(const struct desired_health_check *a, const struct desired_health_check *b)
{
	if (!a->type || !b->type)
		return a->type == b->type;
	return a->type == b->type && a->healthy_threshold == b->healthy_threshold &&
	       a->unhealthy_threshold == b->unhealthy_threshold && a->port == b->port &&
	       a->interval_ms == b->interval_ms && a->timeout_ms == b->timeout_ms &&
	       !strncmp(a->path, b->path, sizeof(a->path));
}

void desired__health_defaults(struct desired_health_check *hc)
{
	if (!hc->interval_ms)
		hc->interval_ms = DESIRED_HC_INTERVAL_MS_DEFAULT;
	/* a short interval must not inherit a timeout longer than itself */
	if (!hc->timeout_ms)
		hc->timeout_ms = hc->interval_ms > 2 * DESIRED_HC_TIMEOUT_MS_DEFAULT ?
					 DESIRED_HC_TIMEOUT_MS_DEFAULT :
					 hc->interval_ms / 2;
	if (!hc->healthy_threshold)
		hc->healthy_threshold = DESIRED_HC_HEALTHY_DEFAULT;
	if (!hc->unhealthy_threshold)
		hc->unhealthy_threshold = DESIRED_HC_UNHEALTHY_DEFAULT;
	if (hc->type == DESIRED_HC_HTTP && !hc->path[0])
		snprintf(hc->path, sizeof(hc->path), "/");
}

/* A request target we send as is: "/" first, printable ASCII, no space
 * (it goes into the request line), bounded. */
static int health__check_path(const struct desired_health_check *hc, const char *path)
{
	size_t len = strnlen(hc->path, sizeof(hc->path));

	if (hc->type != DESIRED_HC_HTTP) {
		if (len)
			return desired__err(path, "\"%.40s\": a path is for type http only",
					    hc->path);
		return 0;
	}
	if (len == sizeof(hc->path))
		return desired__err(path, "longer than %zu characters", sizeof(hc->path) - 1);
	if (hc->path[0] != '/')
		return desired__err(path, "\"%s\" does not start with \"/\"", hc->path);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)hc->path[i] <= 0x20 || (unsigned char)hc->path[i] >= 0x7f)
			return desired__err(path,
					    "\"%s\" has a space or a non-printable character at "
					    "offset %zu (escape it as %%XX)",
					    hc->path, i);
	return 0;
}

/* base: "services[i].healthCheck" or what the text form came from. */
static int health__check(const struct desired_health_check *hc, __u8 proto, const char *base)
{
	char path[DESIRED_PATH_LEN];

	if (hc->type != DESIRED_HC_TCP && hc->type != DESIRED_HC_HTTP)
		return desired__err_at(base, "type", "%u is not tcp or http", hc->type);
	desired__path(path, base, "path");
	if (health__check_path(hc, path))
		return -EINVAL;
	if (proto == IPPROTO_UDP && !hc->port)
		return desired__err_at(base, "port",
				       "missing: a udp service's backends are probed over TCP, "
				       "give the TCP port to probe");
	if (hc->interval_ms < DESIRED_HC_INTERVAL_MS_MIN ||
	    hc->interval_ms > DESIRED_HC_INTERVAL_MS_MAX)
		return desired__err_at(base, "intervalMs", "%u is out of range %u-%u",
				       hc->interval_ms, DESIRED_HC_INTERVAL_MS_MIN,
				       DESIRED_HC_INTERVAL_MS_MAX);
	if (hc->timeout_ms < DESIRED_HC_TIMEOUT_MS_MIN || hc->timeout_ms >= hc->interval_ms)
		return desired__err_at(
			base, "timeoutMs",
			"%u is out of range: at least %u and shorter than intervalMs %u "
			"(one probe at a time per backend)",
			hc->timeout_ms, DESIRED_HC_TIMEOUT_MS_MIN, hc->interval_ms);
	if (!hc->healthy_threshold)
		return desired__err_at(base, "healthyThreshold", "0 is out of range 1-255");
	if (!hc->unhealthy_threshold)
		return desired__err_at(base, "unhealthyThreshold", "0 is out of range 1-255");
	return 0;
}

int desired__check_health(const struct desired_service *svc, const char *base)
{
	char path[DESIRED_PATH_LEN];

	if (svc->health.type == DESIRED_HC_NONE)
		return 0;
	desired__path(path, base, "healthCheck");
	return health__check(&svc->health, svc->proto, path);
}

int desired__health_validate(const struct desired_health_check *hc, __u8 proto, const char *what)
{
	return health__check(hc, proto, what);
}

/* healthCheck.type and .path. */
static int health__parse_type(struct json_object *o, const char *base,
			      struct desired_health_check *hc)
{
	char path[DESIRED_PATH_LEN];
	struct json_object *v;
	const char *s;
	int err;

	desired__path(path, base, "type");
	v = desired__field(o, "type");
	if (!v)
		return desired__err(path, "missing (tcp or http)");
	err = desired__get_string(v, path, "\"tcp\" or \"http\"", &s);
	if (err)
		return err;
	if (!strcmp(s, "tcp"))
		hc->type = DESIRED_HC_TCP;
	else if (!strcmp(s, "http"))
		hc->type = DESIRED_HC_HTTP;
	else
		return desired__err(path, "\"%.40s\" is not \"tcp\" or \"http\"", s);
	desired__path(path, base, "path");
	v = desired__field(o, "path");
	if (!v)
		return 0;
	err = desired__get_string(v, path, "a string (\"/healthz\")", &s);
	if (err)
		return err;
	if (strlen(s) >= sizeof(hc->path))
		return desired__err(path, "\"%.24s...\" is longer than %zu characters", s,
				    sizeof(hc->path) - 1);
	if (hc->type != DESIRED_HC_HTTP)
		return desired__err(path, "\"%.40s\": a path is for type http only", s);
	snprintf(hc->path, sizeof(hc->path), "%s", s);
	return 0;
}

/* The numbers; range errors beyond the types' here, the rest in the check. */
static int health__parse_nums(struct json_object *o, const char *base,
			      struct desired_health_check *hc)
{
	static const struct {
		const char *name;
		long long min, max;
	} nums[] = {
		{ "port", 1, 65535 },
		{ "intervalMs", DESIRED_HC_INTERVAL_MS_MIN, DESIRED_HC_INTERVAL_MS_MAX },
		{ "timeoutMs", DESIRED_HC_TIMEOUT_MS_MIN, DESIRED_HC_INTERVAL_MS_MAX - 1 },
		{ "healthyThreshold", 1, 255 },
		{ "unhealthyThreshold", 1, 255 },
	};
	char path[DESIRED_PATH_LEN];
	long long x[5] = { 0 };
	int err;

	for (size_t i = 0; i < sizeof(nums) / sizeof(*nums); i++) {
		struct json_object *v = desired__field(o, nums[i].name);

		if (!v)
			continue;
		desired__path(path, base, nums[i].name);
		err = desired__get_int(v, path, nums[i].min, nums[i].max, &x[i]);
		if (err)
			return err;
	}
	hc->port = (__u16)x[0];
	hc->interval_ms = (__u32)x[1];
	hc->timeout_ms = (__u32)x[2];
	hc->healthy_threshold = (__u8)x[3];
	hc->unhealthy_threshold = (__u8)x[4];
	return 0;
}

int desired__parse_health(struct json_object *v, const char *sbase, struct desired_service *svc)
{
	struct desired_health_check *hc = &svc->health;
	char base[DESIRED_PATH_LEN];
	int err;

	memset(hc, 0, sizeof(*hc));
	if (!v)
		return 0;
	desired__path(base, sbase, "healthCheck");
	err = desired__want_object(v, base);
	if (!err)
		err = desired__check_fields(v, base, hc_fields, "a healthCheck");
	if (!err)
		err = health__parse_type(v, base, hc);
	if (!err)
		err = health__parse_nums(v, base, hc);
	if (err)
		return err;
	desired__health_defaults(hc);
	return 0;
}

struct json_object *desired__health_to_json(const struct desired_health_check *hc)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "type", json_object_new_string(hc_types[hc->type % 3]));
	if (hc->type == DESIRED_HC_HTTP)
		json_object_object_add(o, "path", json_object_new_string(hc->path));
	if (hc->port)
		json_object_object_add(o, "port", json_object_new_int(hc->port));
	json_object_object_add(o, "intervalMs", json_object_new_int64(hc->interval_ms));
	json_object_object_add(o, "timeoutMs", json_object_new_int64(hc->timeout_ms));
	json_object_object_add(o, "healthyThreshold", json_object_new_int(hc->healthy_threshold));
	json_object_object_add(o, "unhealthyThreshold",
			       json_object_new_int(hc->unhealthy_threshold));
	return o;
}

int desired__health_parse_spec(struct desired_health_check *hc, const char *text)
{
	const char *colon = strchr(text, ':');
	size_t tlen = colon ? (size_t)(colon - text) : strlen(text);

	if (tlen == 3 && !strncmp(text, "tcp", 3) && !colon) {
		hc->type = DESIRED_HC_TCP;
		hc->path[0] = '\0';
		return 0;
	}
	if (tlen == 4 && !strncmp(text, "http", 4)) {
		hc->type = DESIRED_HC_HTTP;
		if (colon && strlen(colon + 1) >= sizeof(hc->path)) {
			sluice__set_err(
				"health check \"%.24s...\": path longer than %zu characters", text,
				sizeof(hc->path) - 1);
			return -EINVAL;
		}
		snprintf(hc->path, sizeof(hc->path), "%s", colon ? colon + 1 : "/");
		return 0;
	}
	sluice__set_err("health check \"%.40s\": want tcp, http or http:/PATH (e.g. http:/healthz)",
			text);
	return -EINVAL;
}

int desired__parse_ms(const char *text, const char *what, __u32 *ms)
{
	static const struct {
		const char *unit;
		unsigned long long mult;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "", 1 } };
	unsigned long long v;
	char *end;

	errno = 0;
	v = isdigit((unsigned char)text[0]) ? strtoull(text, &end, 10) : 0;
	if (!isdigit((unsigned char)text[0]) || errno)
		goto bad;
	for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++) {
		if (strcmp(end, units[i].unit))
			continue;
		if (v > UINT32_MAX / units[i].mult)
			goto bad;
		*ms = (__u32)(v * units[i].mult);
		return 0;
	}
bad:
	sluice__set_err("%s \"%.40s\": want a duration such as 500ms, 2s or 1m", what, text);
	return -EINVAL;
}

int desired__health_parse_thresholds(struct desired_health_check *hc, const char *text)
{
	unsigned int up, down;
	char tail;

	if (sscanf(text, "%u/%u%c", &up, &down, &tail) != 2 || !up || !down || up > 255 ||
	    down > 255) {
		sluice__set_err("thresholds \"%.40s\": want HEALTHY/UNHEALTHY, two numbers 1-255 "
				"(e.g. 2/3: back after 2 good probes, out after 3 failed ones)",
				text);
		return -EINVAL;
	}
	hc->healthy_threshold = (__u8)up;
	hc->unhealthy_threshold = (__u8)down;
	return 0;
}

char *desired__health_str(const struct desired_health_check *hc, char *buf, size_t len)
{
	char port[16] = "";

	if (!hc->type) {
		snprintf(buf, len, "none");
		return buf;
	}
	if (hc->port)
		snprintf(port, sizeof(port), ", port %u", hc->port);
	snprintf(buf, len, "%s%s%s every %ums, timeout %ums, %u up/%u down%s",
		 hc_types[hc->type % 3], hc->type == DESIRED_HC_HTTP ? ":" : "",
		 hc->type == DESIRED_HC_HTTP ? hc->path : "", hc->interval_ms, hc->timeout_ms,
		 hc->healthy_threshold, hc->unhealthy_threshold, port);
	return buf;
}
