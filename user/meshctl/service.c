// SPDX-License-Identifier: MIT
/*
 * service.c - `meshctl service add|set|del|list|get`.
 *
 * Contract: arguments are checked and put in canonical form locally, then
 * sent as one API call (service.add, service.set, service.del,
 * service.list, service.get). list and get print the agent's SERVICE
 * objects: as given with -o json, else as tables (bytes in human units).
 */
#include <stdio.h>
#include <string.h>

#include "desired.h"

#include "client.h"
#include "health.h"
#include "meshctl.h"
#include "outlier.h"
#include "output.h"

/* "3", or "3 (1 draining)" */
static void backends_cell(struct table *t, struct json_object *backends)
{
	size_t i, n = js__len(backends), draining = 0;

	for (i = 0; i < n; i++) {
		if (!js__u64(js__idx(backends, i), "weight"))
			draining++;
	}
	if (draining)
		table__cell(t, "%zu (%zu draining)", n, draining);
	else
		table__cell(t, "%zu", n);
}

static void print_services(struct json_object *services)
{
	static const char *const cols[] = {
		"SERVICE", "NAME",   ">ID",      "BACKENDS", "HEALTHY",  ">PACKETS",
		">BYTES",  ">FLOWS", ">REFUSED", "SOURCE",   "AFFINITY", NULL,
	};
	struct table *t = table__new(cols);
	char bytes[OUT_NUM_LEN], ref[ARGS_SVC_LEN], healthy[OUT_NUM_LEN], aff[32];
	size_t i;

	for (i = 0; i < js__len(services); i++) {
		struct json_object *svc = js__idx(services, i), *st = js__get(svc, "stats");

		table__cell(t, "%s", js__svc_ref(svc, ref, sizeof(ref)));
		table__cell(t, "%s", *js__str(svc, "name", "") ? js__str(svc, "name", "") : "-");
		table__cell(t, "%llu", (unsigned long long)js__u64(svc, "id"));
		backends_cell(t, js__get(svc, "backends"));
		table__cell(t, "%s", outlier__healthy_cell(svc, healthy, sizeof(healthy)));
		table__cell(t, "%llu", (unsigned long long)js__u64(st, "packets"));
		table__cell(t, "%s", out__bytes(js__u64(st, "bytes"), bytes, sizeof(bytes)));
		table__cell(t, "%llu", (unsigned long long)js__u64(st, "flows"));
		table__cell(t, "%llu", (unsigned long long)js__u64(st, "refused"));
		table__cell(t, "%s", js__str(svc, "source", "manual"));
		table__cell(t, "%s", affinity__str(svc, aff, sizeof(aff)));
	}
	table__print(t);
	table__free(t);
}

/* The weight Maglev gives a backend now: none when out by its probe. */
static uint64_t share_weight(struct json_object *b)
{
	return strcmp(js__str(b, "state", ""), "unhealthy") ? js__u64(b, "weight") : 0;
}

static void print_service(struct json_object *svc)
{
	static const char *const cols[] = {
		"BACKEND",      ">ID",        ">WEIGHT",  ">SHARE", "HEALTH", ">FAILS",
		"LAST FAILURE", ">EJECTIONS", ">PACKETS", ">BYTES", ">FLOWS", NULL,
	};
	struct json_object *st = js__get(svc, "stats"), *backends = js__get(svc, "backends"), *snat;
	char bytes[OUT_NUM_LEN], share[OUT_NUM_LEN], be[SLUICE_ADDRPORT_STRLEN];
	char ref[ARGS_SVC_LEN], state[48], aff[32];
	char ranges[SLUICE_SRC_RANGES_PER_SVC * (SLUICE_CIDR_STRLEN + 2)];
	const char *reason;
	uint64_t total = 0;
	struct table *t;
	size_t i;

	printf("Service:   %s\n", js__svc_ref(svc, ref, sizeof(ref)));
	printf("Name:      %s\n", *js__str(svc, "name", "") ? js__str(svc, "name", "") : "-");
	printf("ID:        %llu\n", (unsigned long long)js__u64(svc, "id"));
	if (js__u64(svc, "maglev_slots"))
		printf("Maglev:    %llu slots\n", (unsigned long long)js__u64(svc, "maglev_slots"));
	else
		printf("Maglev:    no table\n");
	printf("Source:    %s\n", js__str(svc, "source", "manual"));
	printf("Affinity:  %s\n", affinity__str(svc, aff, sizeof(aff)));
	printf("Ranges:    %s\n", src_range__str(svc, ranges, sizeof(ranges)));
	snat = js__get(svc, "snat");
	printf("NAT:       %s\n", json_object_is_type(snat, json_type_string) ?
					  "source (to the node's SNAT address) and destination" :
				  json_object_get_boolean(snat) ?
					  "source and destination (--snat)" :
					  "destination only");
	printf("Empty:     %s\n", json_object_get_boolean(js__get(svc, "dropWhenEmpty")) ?
					  "drop new connections" :
					  "refuse new connections");
	printf("Traffic:   %llu packets, %s, %llu flows, %llu refused\n",
	       (unsigned long long)js__u64(st, "packets"),
	       out__bytes(js__u64(st, "bytes"), bytes, sizeof(bytes)),
	       (unsigned long long)js__u64(st, "flows"),
	       (unsigned long long)js__u64(st, "refused"));
	outlier__print_settings(svc);
	if (!js__len(backends)) {
		printf("Backends:  none (new connections are refused)\n");
		return;
	}
	printf("\n");

	/* SHARE is what Maglev gives each backend of new flows: weight / sum. */
	for (i = 0; i < js__len(backends); i++)
		total += share_weight(js__idx(backends, i));
	t = table__new(cols);
	for (i = 0; i < js__len(backends); i++) {
		struct json_object *b = js__idx(backends, i), *bs = js__get(b, "stats");
		uint64_t w = js__u64(b, "weight");

		table__cell(t, "%s", js__backend_ref(b, be, sizeof(be)));
		table__cell(t, "%llu", (unsigned long long)js__u64(b, "id"));
		table__cell(t, "%llu", (unsigned long long)w);
		table__cell(t, "%s", out__percent(share_weight(b), total, share, sizeof(share)));
		table__cell(t, "%s", outlier__state_cell(b, state, sizeof(state)));
		table__cell(t, "%llu",
			    (unsigned long long)js__u64(js__get(b, "health"),
							"consecutive_failures"));
		reason = js__str(js__get(b, "health"), "last_failure_reason", "none");
		table__cell(t, "%s", strcmp(reason, "none") ? reason : "-");
		table__cell(t, "%llu",
			    (unsigned long long)js__u64(js__get(b, "health"), "ejections"));
		table__cell(t, "%llu", (unsigned long long)js__u64(bs, "packets"));
		table__cell(t, "%s", out__bytes(js__u64(bs, "bytes"), bytes, sizeof(bytes)));
		table__cell(t, "%llu", (unsigned long long)js__u64(bs, "flows"));
	}
	table__print(t);
	table__free(t);
	health__print(svc);
}

/* HELP_SVC in the width the --outlier-... terms leave (100 columns) */
#define HELP_SVC_SHORT                                                                          \
	{                                                                                       \
		"SVC", "the service: VIP:PORT/PROTO, e.g. 10.96.0.10:80/tcp, [fd00::10]:53/udp" \
	}

/* `--snat on|off` and the like: a JSON boolean in args[key]; -1 said. */
static int onoff_arg(struct json_object *args, const char *flag, const char *text, const char *key)
{
	if (!text)
		return 0;
	if (strcmp(text, "on") && strcmp(text, "off"))
		return out__error("--%s '%s': expected on or off", flag, text);
	json_object_object_add(args, key, json_object_new_boolean(!strcmp(text, "on")));
	return 1;
}

/* "BE" or "BE@WEIGHT" -> {"address", "port", "weight"} */
static int backend_arg(const char *text, const struct sluice_addr *vip, struct json_object *arr)
{
	char be[SLUICE_ADDRPORT_STRLEN * 2], canon[SLUICE_ADDRPORT_STRLEN];
	char addr[SLUICE_ADDR_STRLEN];
	unsigned long weight = 1;
	struct sluice_addr a;
	struct json_object *o;
	char *at;
	__u16 port;

	snprintf(be, sizeof(be), "%s", text);
	at = strrchr(be, '@');
	if (at) {
		*at = '\0';
		if (opts__uint(at + 1, 0, UINT16_MAX, "weight", &weight))
			return -1;
	}
	if (args__backend(be, vip, &a, &port, canon, sizeof(canon)))
		return -1;
	o = out__xalloc(json_object_new_object());
	json_object_object_add(o, "address",
			       json_object_new_string(sluice_addr__str(&a, addr, sizeof(addr))));
	json_object_object_add(o, "port", json_object_new_int(port));
	json_object_object_add(o, "weight", json_object_new_int((int)weight));
	json_object_array_add(arr, o);
	return 0;
}

static int do_add(int argc, char **argv)
{
	const char *name = NULL, *affinity = NULL, *ranges = NULL;
	struct outlier_flags of = {};
	struct health_flags hf = { 0 };
	bool snat = false, drop_empty = false;
	const struct opt opts[] = {
		{ .name = "name", .value = &name },
		{ .name = "affinity", .value = &affinity },
		{ .name = "source-ranges", .value = &ranges },
		{ .name = "snat", .flag = &snat },
		{ .name = "drop-when-empty", .flag = &drop_empty },
		OUTLIER_OPTS(&of),
		HEALTH_OPTS(&hf),
		{ NULL },
	};
	struct json_object *args, *backends, *od, *data = NULL, *sa = NULL, *hc = NULL, *sr = NULL;
	/* one slot beyond the limit, so "too many backends" can be named */
	char *pos[SLUICE_MAX_SVC_BACKENDS + 2], svc[ARGS_SVC_LEN];
	struct sluice_addr vip;
	int npos, i;

	if (opts__parse(argc, argv, opts, pos, SLUICE_MAX_SVC_BACKENDS + 2, &npos))
		return -1;
	if (npos < 1)
		return cmd__usage_error("missing SVC");
	if (npos - 1 > SLUICE_MAX_SVC_BACKENDS)
		return out__error("more than %d backends: a service has at most %d",
				  SLUICE_MAX_SVC_BACKENDS, SLUICE_MAX_SVC_BACKENDS);
	if (args__svc(pos[0], &vip, svc, sizeof(svc)))
		return -1;
	if (name && strlen(name) >= DESIRED_NAME_MAX)
		return out__error("--name '%s' is too long: at most %d characters", name,
				  DESIRED_NAME_MAX - 1);
	if (ranges && src_range__arg(ranges, &vip, &sr))
		return -1;
	if (affinity && affinity__arg(affinity, &sa)) {
		json_object_put(sr);
		return -1;
	}
	if (outlier__flags_json(&of, &od)) {
		json_object_put(sa);
		json_object_put(sr);
		return -1;
	}
	if (health__flags_json(&hf, false, &hc) < 0) {
		json_object_put(sa);
		json_object_put(od);
		json_object_put(sr);
		return -1;
	}

	backends = out__xalloc(json_object_new_array());
	for (i = 1; i < npos; i++) {
		if (backend_arg(pos[i], &vip, backends)) {
			json_object_put(backends);
			json_object_put(sa);
			json_object_put(od);
			json_object_put(hc);
			json_object_put(sr);
			return -1;
		}
	}
	args = out__xalloc(json_object_new_object());
	json_object_object_add(args, "service", json_object_new_string(svc));
	if (name)
		json_object_object_add(args, "name", json_object_new_string(name));
	json_object_object_add(args, "backends", backends);
	if (od)
		json_object_object_add(args, "outlierDetection", od);
	if (sa)
		json_object_object_add(args, "sessionAffinity", sa);
	if (hc)
		json_object_object_add(args, "healthCheck", hc);
	if (snat)
		json_object_object_add(args, "snat", json_object_new_boolean(1));
	if (drop_empty)
		json_object_object_add(args, "dropWhenEmpty", json_object_new_boolean(1));
	if (sr)
		json_object_object_add(args, "sourceRanges", sr);
	if (client__call("service.add", args, &data))
		return -1;

	if (out__json_mode())
		out__json(data);
	else
		printf("added service %s with %d backend%s\n", svc, npos - 1, npos == 2 ? "" : "s");
	json_object_put(data);
	return 0;
}

static const struct help_item service_add_args[] = {
	HELP_SVC_SHORT,
	{ "BE[@WEIGHT]", "a backend ADDR:PORT, weight 1 unless @WEIGHT (0-65535, 0: draining)" },
	{ NULL, NULL },
};

static const struct help_item service_add_opts[] = {
	{ "--name NAME", "a label shown by list and get (at most 63 characters)" },
	{ "--snat", "source NAT: clients appear as VIP:61000-65535 (answers return here)" },
	{ "--drop-when-empty", "without a usable backend drop packets instead of refusing" },
	AFFINITY_HELP,
	SRC_RANGE_HELP,
	OUTLIER_HELP,
	HEALTH_HELP,
	{ NULL, NULL },
};

static const struct cmd service_add_cmd = {
	.name = "add",
	.fn = do_add,
	.grammar = "SVC [BE[@WEIGHT]...] [--name NAME] [OPTIONS]",
	.summary = "create a service, optionally with its backends and a health check",
	.args = service_add_args,
	.opts = service_add_opts,
	.notes = "Outlier detection is on by default: a backend whose connection attempts fail 3\n"
		 "times in a row (RST to the SYN, SYN unanswered, connect() refused or timed\n"
		 "out) gets no new connections for 30s x its ejections in a row (at most 5m);\n"
		 "then the next attempt decides: an answer brings it back, a failure ejects it\n"
		 "again. Existing connections are never touched. `service get` shows it.\n"
		 "--source-ranges admits new connections only from clients inside the ranges\n"
		 "(others are dropped unanswered, counted as drop reason source_range). It is\n"
		 "checked on the XDP/tc path, i.e. for clients from outside the node; local\n"
		 "clients on the socket path are not checked.",
	.example =
		"meshctl service add 10.96.0.10:80/tcp 10.0.1.2:8080@90 10.0.1.3:8080@10 --name web\n"
		"meshctl service add 10.96.0.11:80/tcp 10.0.1.4:8080 --outlier-failures 5\n"
		"meshctl service add 10.96.0.10:80/tcp 10.0.1.2:8080 10.0.1.3:8080 --health http:/healthz\n"
		"meshctl service add 10.96.0.12:443/tcp 10.0.1.5:8443 --source-ranges 203.0.113.0/24\n"
		"meshctl service add 192.168.1.5:30080/tcp 10.244.2.7:8080 --snat",
};

/* The JSON args of `service set` from its flags; 1: something to set, 0:
 * nothing, -1: a bad flag (said). */
static int set_args(struct json_object *args, const char *name, const char *affinity,
		    const char *ranges, const struct sluice_addr *vip, struct outlier_flags *of,
		    struct health_flags *hf)
{
	struct json_object *od = NULL, *sa = NULL, *hc = NULL, *sr = NULL;
	int has_hc;

	if (ranges && src_range__arg(ranges, vip, &sr))
		return -1;
	if (sr) /* [] removes them: every client again */
		json_object_object_add(args, "sourceRanges", sr);
	if (outlier__flags_json(of, &od))
		return -1;
	if (affinity && affinity__arg(affinity, &sa)) {
		json_object_put(od);
		return -1;
	}
	has_hc = health__flags_json(hf, true, &hc);
	if (has_hc < 0) {
		json_object_put(od);
		json_object_put(sa);
		return -1;
	}
	if (name)
		json_object_object_add(args, "name", json_object_new_string(name));
	/* --outlier-defaults: null, every setting back to its default */
	if (od)
		json_object_object_add(args, "outlierDetection", of->defaults ? NULL : od);
	if (od && of->defaults)
		json_object_put(od);
	if (sa)
		json_object_object_add(args, "sessionAffinity", sa);
	if (has_hc)
		json_object_object_add(args, "healthCheck", hc); /* NULL: JSON null, removed */
	return name || od || sa || has_hc || sr;
}

/* `service set SVC ...`: only the settings given change (backends are
 * edited with `backend`). */
static int do_set(int argc, char **argv)
{
	const char *name = NULL, *affinity = NULL, *ranges = NULL, *snat = NULL, *drop_empty = NULL;
	struct outlier_flags of = {};
	struct health_flags hf = { 0 };
	const struct opt opts[] = {
		{ .name = "name", .value = &name },
		{ .name = "affinity", .value = &affinity },
		{ .name = "source-ranges", .value = &ranges },
		{ .name = "snat", .value = &snat },
		{ .name = "drop-when-empty", .value = &drop_empty },
		OUTLIER_OPTS(&of),
		{ .name = "outlier-defaults", .flag = &of.defaults },
		HEALTH_OPTS(&hf),
		{ NULL },
	};
	struct json_object *args, *data = NULL;
	char *pos[1], svc[ARGS_SVC_LEN];
	struct sluice_addr vip;
	int npos, set;

	if (opts__parse(argc, argv, opts, pos, 1, &npos))
		return -1;
	if (npos < 1)
		return cmd__usage_error("missing SVC");
	if (args__svc(pos[0], &vip, svc, sizeof(svc)))
		return -1;
	args = out__xalloc(json_object_new_object());
	json_object_object_add(args, "service", json_object_new_string(svc));
	set = onoff_arg(args, "snat", snat, "snat");
	if (set >= 0)
		set |= onoff_arg(args, "drop-when-empty", drop_empty, "dropWhenEmpty");
	if (set >= 0)
		set |= set_args(args, name, affinity, ranges, &vip, &of, &hf);
	if (set <= 0) {
		json_object_put(args);
		return set < 0 ? -1 :
				 cmd__usage_error(
					 "nothing to set: give --name, --affinity, --snat, "
					 "--drop-when-empty, --source-ranges, an --outlier-... "
					 "option or --health");
	}
	if (client__call("service.set", args, &data))
		return -1;
	if (out__json_mode()) {
		out__json(data);
	} else {
		printf("service %s updated\n", svc);
		if (affinity)
			printf("Affinity:  %s\n", affinity);
		if (ranges)
			printf("Ranges:    %s\n", *ranges ? ranges : "any client");
		if (json_object_object_get_ex(args, "outlierDetection", NULL))
			outlier__print_settings(data);
	}
	json_object_put(data);
	return 0;
}

static const struct help_item service_set_opts[] = {
	{ "--name NAME", "a new label (at most 63 characters)" },
	{ "--snat on|off", "source NAT of new connections to VIP:61000-65535" },
	{ "--drop-when-empty on|off", "without a usable backend drop instead of refusing" },
	AFFINITY_HELP,
	SRC_RANGE_HELP,
	OUTLIER_HELP,
	{ "--outlier-defaults", "every outlier setting back to its default" },
	HEALTH_HELP,
	{ "--health none", "stop probing; backends taken out by probes return at once" },
	{ NULL, NULL },
};

static const struct cmd service_set_cmd = {
	.name = "set",
	.fn = do_set,
	.grammar = "SVC [--name NAME] [--snat on|off] [--source-ranges CIDRS] [OPTIONS]",
	.summary =
		"change a service's label, NAT, affinity, source ranges, outlier or health check",
	.args = (const struct help_item[]){ HELP_SVC_SHORT, { NULL, NULL } },
	.opts = service_set_opts,
	.notes = "Turning outlier detection off for a service ends its backends' ejections at\n"
		 "once; meshd --outlier-detection off turns it off for every service.\n"
		 "A backend failing U health probes in a row leaves the Maglev table: no new\n"
		 "connections, open ones continue, as with draining; H passes in a row bring it\n"
		 "back. Probes never revive a backend you drained or removed. When every backend\n"
		 "fails, all stay in the table (panic) rather than refuse every connection.\n"
		 "--health replaces the whole check: flags left out take their defaults.\n"
		 "--source-ranges replaces the list (\"\" removes it); new connections follow it\n"
		 "at once, established ones are left alone.",
	.example =
		"meshctl service set 10.96.0.10:80/tcp --affinity client-ip:30m\n"
		"meshctl service set 10.96.0.10:80/tcp --outlier-failures 5 "
		"--outlier-max-ejection 2m\n"
		"meshctl service set 10.96.0.10:80/tcp --no-outlier-detection\n"
		"meshctl service set 10.96.0.10:80/tcp --health http:/ok --health-thresholds 1/2\n"
		"meshctl service set 10.96.0.10:80/tcp --health none\n"
		"meshctl service set 10.96.0.10:80/tcp --source-ranges 10.0.0.0/8,192.168.0.0/16\n"
		"meshctl service set 10.96.0.10:80/tcp --source-ranges \"\"",
};

/* The commands whose only argument is SVC: call op with {"service": SVC}
 * (canonical form in svc) and return its answer in *data. */
static int svc_only_call(int argc, char **argv, const char *op, char *svc, size_t len,
			 struct json_object **data)
{
	const struct opt opts[] = { { NULL } };
	struct json_object *args;
	char *pos[1];
	int npos;

	if (opts__parse(argc, argv, opts, pos, 1, &npos))
		return -1;
	if (npos < 1)
		return cmd__usage_error("missing SVC");
	if (args__svc(pos[0], NULL, svc, len))
		return -1;
	args = out__xalloc(json_object_new_object());
	json_object_object_add(args, "service", json_object_new_string(svc));
	return client__call(op, args, data);
}

static int do_del(int argc, char **argv)
{
	struct json_object *data = NULL;
	char svc[ARGS_SVC_LEN];

	if (svc_only_call(argc, argv, "service.del", svc, sizeof(svc), &data))
		return -1;
	if (out__json_mode())
		out__json(data);
	else
		printf("deleted service %s\n", svc);
	json_object_put(data);
	return 0;
}

static const struct cmd service_del_cmd = {
	.name = "del",
	.fn = do_del,
	.grammar = "SVC",
	.summary = "delete a service; its clients get refused from then on",
	.args = (const struct help_item[]){ HELP_SVC, { NULL, NULL } },
	.example = "meshctl service del 10.96.0.10:80/tcp",
};

static int do_list(int argc, char **argv)
{
	const struct opt opts[] = { { NULL } };
	struct json_object *data = NULL;
	char *pos[1];
	int npos;

	if (opts__parse(argc, argv, opts, pos, 0, &npos))
		return -1;
	if (client__call("service.list", NULL, &data))
		return -1;
	if (out__json_mode()) {
		out__json(data);
	} else {
		print_services(js__get(data, "services"));
		/* stderr: stdout stays a table for scripts that parse it */
		if (!js__len(js__get(data, "services")))
			fprintf(stderr, "no services yet: add one with 'meshctl service add' or "
					"'meshctl apply -f FILE'\n");
	}
	json_object_put(data);
	return 0;
}

static const struct cmd service_list_cmd = {
	.name = "list",
	.fn = do_list,
	.grammar = "",
	.summary = "list services with their backends and traffic",
	.notes = "HEALTHY: backends taking new flows that are neither ejected by outlier\n"
		 "detection nor unhealthy, of those with weight > 0; \"(off)\": outlier\n"
		 "detection is off for the service or the node.",
	.example = "meshctl service list -o json",
	.reads = true,
};

static int do_get(int argc, char **argv)
{
	struct json_object *data = NULL;
	char svc[ARGS_SVC_LEN];

	if (svc_only_call(argc, argv, "service.get", svc, sizeof(svc), &data))
		return -1;
	if (out__json_mode())
		out__json(data);
	else
		print_service(data);
	json_object_put(data);
	return 0;
}

static const struct cmd service_get_cmd = {
	.name = "get",
	.fn = do_get,
	.grammar = "SVC",
	.summary = "show one service: its backends, weights, shares, health, traffic and health "
		   "checks",
	.notes = "HEALTH: healthy; ejected until T (FAILS connection attempts failed in a row:\n"
		 "new flows go to other backends until T); probation (the ejection is over:\n"
		 "the next attempt decides); unhealthy (failed its active health check);\n"
		 "draining (weight 0). LAST FAILURE: rst or syn_timeout (packet path),\n"
		 "sock_refused, sock_timeout or sock_error (socket LB), probe. EJECTIONS: in a\n"
		 "row, the multiplier of the ejection time.",
	.args = (const struct help_item[]){ HELP_SVC, { NULL, NULL } },
	.example = "meshctl service get 10.96.0.10:80/tcp",
	.reads = true,
};

static const struct cmd *const service_sub[] = {
	&service_add_cmd,  &service_set_cmd, &service_del_cmd,
	&service_list_cmd, &service_get_cmd, NULL,
};

const struct cmd service_cmd = {
	.name = "service",
	.sub = service_sub,
	.summary = "create, delete, list and inspect services",
	.args = (const struct help_item[]){ HELP_SVC, { NULL, NULL } },
	.example = "meshctl service add 10.96.0.10:80/tcp 10.0.1.2:8080 10.0.1.3:8080 --name web\n"
		   "meshctl service list",
};
