// SPDX-License-Identifier: MIT
/*
 * status.c - the agent-wide commands: `meshctl status`, `meshctl version`
 * and `meshctl uninstall`.
 *
 * Contract: status prints the agent's "status" answer (version, uptime,
 * attachments per interface and hook, map fill against capacity, datapath
 * counters and the drops that happened, the metrics address, telemetry's
 * attachment and record counts, the socket LB's and the redirect's
 * attachment, self-test and counters). version always prints meshctl's
 * own version and adds meshd's when it answers; an unreachable agent is
 * reported in the output and makes the exit status 1; a release skew is a
 * warning on stderr (and "warning" in the JSON), exit status 0. uninstall asks no question
 * (scripts run it) and prints what meshd did.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "meshctl.h"
#include "outlier.h"
#include "output.h"

static void print_attachments(struct json_object *atts)
{
	static const char *const cols[] = {
		"INTERFACE", ">IFINDEX", "HOOK", "MODE", ">PROG ID", NULL,
	};
	struct table *t;
	size_t i;

	if (!js__len(atts)) {
		printf("Attachments: none (no interface matches --interfaces)\n");
		return;
	}
	t = table__new(cols);
	for (i = 0; i < js__len(atts); i++) {
		struct json_object *a = js__idx(atts, i);

		table__cell(t, "%s", js__str(a, "ifname", "?"));
		table__cell(t, "%llu", (unsigned long long)js__u64(a, "ifindex"));
		table__cell(t, "%s", js__str(a, "hook", "?"));
		table__cell(t, "%s", js__str(a, "mode", "-"));
		table__cell(t, "%llu", (unsigned long long)js__u64(a, "prog_id"));
	}
	table__print(t);
	table__free(t);
}

static void print_maps(struct json_object *maps)
{
	static const char *const cols[] = { "MAP", ">ENTRIES", ">CAPACITY", ">FILL", NULL };
	struct table *t;
	char pct[OUT_NUM_LEN];
	size_t i;

	if (!js__len(maps))
		return;
	t = table__new(cols);
	for (i = 0; i < js__len(maps); i++) {
		struct json_object *m = js__idx(maps, i);
		uint64_t n = js__u64(m, "entries"), cap = js__u64(m, "capacity");

		table__cell(t, "%s", js__str(m, "name", "?"));
		table__cell(t, "%llu", (unsigned long long)n);
		table__cell(t, "%llu", (unsigned long long)cap);
		table__cell(t, "%s", out__percent(n, cap, pct, sizeof(pct)));
	}
	printf("\n");
	table__print(t);
	table__free(t);
}

/* {name: n} as a two-column table; only non-zero values when nonzero_only
 * (drops: a healthy node has none and the list is long). */
static void print_counts(struct json_object *obj, const char *header, bool nonzero_only,
			 const char *none)
{
	const char *cols[] = { header, ">PACKETS", NULL };
	struct json_object_iterator it, end;
	struct table *t;

	if (!obj || !json_object_is_type(obj, json_type_object))
		return;
	t = table__new(cols);
	it = json_object_iter_begin(obj);
	end = json_object_iter_end(obj);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		struct json_object *v = json_object_iter_peek_value(&it);
		uint64_t n = json_object_get_uint64(v);

		if (nonzero_only && !n)
			continue;
		table__cell(t, "%s", json_object_iter_peek_name(&it));
		table__cell(t, "%llu", (unsigned long long)n);
	}
	printf("\n");
	if (table__rows(t))
		table__print(t);
	else
		printf("%s\n", none);
	table__free(t);
}

/* "http://127.0.0.1:9465/metrics", "off" */
static void print_metrics(struct json_object *met)
{
	if (!met || !json_object_is_type(met, json_type_object)) {
		printf("Metrics:     off\n");
		return;
	}
	printf("Metrics:     %s (--metrics %s)\n", js__str(met, "url", "?"),
	       js__str(met, "address", "?"));
}

static void print_telemetry(struct json_object *tel)
{
	const char *cgroup = js__str(tel, "cgroup", "?");

	if (!tel) /* an older meshd */
		return;
	if (!js__u64(tel, "enabled")) {
		printf("Telemetry:   off\n");
		return;
	}
	if (!js__u64(tel, "running")) {
		printf("Telemetry:   unavailable: %s\n", js__str(tel, "error", "not started"));
		return;
	}
	printf("Telemetry:   %s cgroup %s (id %llu), reports every %llus\n",
	       js__u64(tel, "attached") ? "attached to" : "NOT attached to", cgroup,
	       (unsigned long long)js__u64(tel, "cgroup_id"),
	       (unsigned long long)js__u64(tel, "interval_seconds"));
	printf("             records read %llu, lost %llu (ring buffer full), sockets tracked "
	       "%llu, streams %llu\n",
	       (unsigned long long)js__u64(tel, "records_read"),
	       (unsigned long long)js__u64(tel, "records_lost"),
	       (unsigned long long)js__u64(tel, "sockets_tracked"),
	       (unsigned long long)js__u64(tel, "followers"));
}

static uint64_t sock_counter(struct json_object *o, const char *name)
{
	return js__u64(js__get(o, "counters"), name);
}

/* "Socket LB:   on cgroup X (id N), connect 12, sendmsg 3, ..." */
static void print_socket_lb(struct json_object *lb)
{
	if (!lb) /* an older meshd */
		return;
	if (!js__u64(lb, "enabled")) {
		printf("Socket LB:   off (--socket-lb off)%s%s\n",
		       js__str(lb, "error", NULL) ? ": " : "", js__str(lb, "error", ""));
		return;
	}
	if (!js__u64(lb, "running")) {
		printf("Socket LB:   unavailable: %s\n", js__str(lb, "error", "not started"));
		return;
	}
	printf("Socket LB:   %s cgroup %s (id %llu)\n",
	       js__u64(lb, "attached") ? "attached to" : "NOT attached to",
	       js__str(lb, "cgroup", "?"), (unsigned long long)js__u64(lb, "cgroup_id"));
	printf("             connects %llu, datagrams %llu, replies from the VIP %llu, "
	       "refused %llu\n",
	       (unsigned long long)sock_counter(lb, "connect"),
	       (unsigned long long)sock_counter(lb, "sendmsg"),
	       (unsigned long long)sock_counter(lb, "recvmsg_revnat"),
	       (unsigned long long)sock_counter(lb, "refused"));
}

static void print_redirect(struct json_object *rd)
{
	if (!rd)
		return;
	if (!js__u64(rd, "enabled")) {
		if (js__str(rd, "unavailable", NULL))
			printf("Redirect:    off, and unavailable on this kernel: %s\n",
			       js__str(rd, "unavailable", ""));
		else
			printf("Redirect:    off (opt-in: --redirect on)%s%s\n",
			       js__str(rd, "error", NULL) ? ": " : "", js__str(rd, "error", ""));
		return;
	}
	if (!js__u64(rd, "running")) {
		printf("Redirect:    off (%s)\n", js__str(rd, "error", "not started"));
		return;
	}
	printf("Redirect:    %s cgroup %s (id %llu), self-test %s\n",
	       js__u64(rd, "attached") ? "attached to" : "NOT attached to",
	       js__str(rd, "cgroup", "?"), (unsigned long long)js__u64(rd, "cgroup_id"),
	       js__str(rd, "selftest", "?"));
	printf("             %llu connection%s redirected, %llu messages / %llu bytes "
	       "redirected, %llu passed\n",
	       (unsigned long long)js__u64(rd, "connections"),
	       js__u64(rd, "connections") == 1 ? "" : "s",
	       (unsigned long long)sock_counter(rd, "redirected_msgs"),
	       (unsigned long long)sock_counter(rd, "redirected_bytes"),
	       (unsigned long long)sock_counter(rd, "passed_msgs"));
}

/* Where NodePorts are served and how many healthCheckNodePorts answer
 * (absent from an older meshd: nothing printed). */
static void print_node_ports(struct json_object *k)
{
	struct json_object *a = js__get(k, "node_addresses");
	size_t n = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;

	if (!a)
		return;
	printf("             NodePorts on: ");
	for (size_t i = 0; i < n; i++)
		printf("%s%s", i ? ", " : "",
		       json_object_get_string(json_object_array_get_idx(a, i)));
	printf("%s; healthCheckNodePorts served: %llu\n", n ? "" : "no address",
	       (unsigned long long)js__u64(k, "health_check_node_ports"));
}

/* The Kubernetes sync; null (or absent) when --kubernetes off. */
static void print_kubernetes(struct json_object *k)
{
	time_t last = (time_t)js__u64(k, "last_sync"), now = time(NULL);
	struct json_object *conn = js__get(k, "connected");
	char age[OUT_NUM_LEN];
	const char *err;

	if (!k || !json_object_is_type(k, json_type_object)) {
		printf("Kubernetes:  off\n");
		return;
	}
	if (last)
		out__duration(now > last ? now - last : 0, age, sizeof(age));
	printf("Kubernetes:  %s, last sync %s%s, %llu kubernetes services (%llu Services, "
	       "%llu EndpointSlices)\n",
	       js__u64(k, "synced") ? "synced" :
				      "NOT synced yet (the state file's services are kept)",
	       last ? age : "never", last ? " ago" : "",
	       (unsigned long long)js__u64(k, "kube_services"),
	       (unsigned long long)js__u64(k, "services"),
	       (unsigned long long)js__u64(k, "endpointslices"));
	printf("             watches: Services %s, EndpointSlices %s; watch restarts %llu, "
	       "relists %llu, sync errors %llu, commit errors %llu\n",
	       js__u64(conn, "services") ? "up" : "down",
	       js__u64(conn, "endpointslices") ? "up" : "down",
	       (unsigned long long)js__u64(k, "watch_restarts"),
	       (unsigned long long)js__u64(k, "relists"),
	       (unsigned long long)js__u64(k, "sync_errors"),
	       (unsigned long long)js__u64(k, "commit_errors"));
	print_node_ports(k);
	err = js__str(k, "commit_error", "");
	if (!*err)
		err = js__str(k, "last_error", "");
	if (*err)
		printf("             last error: %s\n", err);
}

/* The kernel's probed features (absent from an older meshd: nothing). */
static void print_kernel(struct json_object *k)
{
	struct json_object *missing = js__get(k, "missing");

	if (!k)
		return;
	if (!js__len(missing)) {
		printf("Kernel:      %s, every probed feature present\n",
		       js__str(k, "release", "?"));
		return;
	}
	printf("Kernel:      %s, without:\n", js__str(k, "release", "?"));
	for (size_t i = 0; i < js__len(missing); i++) {
		struct json_object *m = js__idx(missing, i);

		printf("             %s: %s\n", js__str(m, "what", "?"),
		       js__str(m, "without", "?"));
	}
}

static void print_kmem(struct json_object *k)
{
	char all[OUT_NUM_LEN], mg[OUT_NUM_LEN];

	if (!k)
		return;
	printf("Kernel mem:  %s in %llu maps (Maglev tables: %llu, %s)\n",
	       out__bytes(js__u64(k, "bytes"), all, sizeof(all)),
	       (unsigned long long)js__u64(k, "maps"),
	       (unsigned long long)js__u64(k, "maglev_tables"),
	       out__bytes(js__u64(k, "maglev_bytes"), mg, sizeof(mg)));
}

/* #16: whether this start reused the pinned programs, and why (absent
 * from an older meshd). */
static void print_programs(struct json_object *p)
{
	if (!p)
		return;
	printf("Programs:    %s (%s)\n",
	       json_object_get_boolean(js__get(p, "reused")) ? "reused" : "loaded",
	       js__str(p, "reason", "?"));
}

static void print_status(struct json_object *st)
{
	char up[OUT_NUM_LEN], since[64] = "?";
	time_t started = (time_t)js__u64(st, "started_at");
	struct tm tm;

	if (started && localtime_r(&started, &tm))
		strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S %Z", &tm);
	printf("Agent:       meshd %s, layout version %llu\n", js__str(st, "version", "?"),
	       (unsigned long long)js__u64(st, "layout_version"));
	printf("Uptime:      %s (since %s)\n",
	       out__duration(js__u64(st, "uptime_seconds"), up, sizeof(up)), since);
	printf("Pin dir:     %s\n", js__str(st, "pin_dir", "?"));
	print_programs(js__get(st, "programs"));
	printf("State file:  %s\n", js__str(st, "state_file", "?"));
	printf("Socket:      %s\n", g_opts.socket);
	print_kernel(js__get(st, "kernel"));
	print_kmem(js__get(st, "kernel_memory"));
	print_metrics(js__get(st, "metrics"));
	print_telemetry(js__get(st, "telemetry"));
	print_socket_lb(js__get(st, "socket_lb"));
	print_redirect(js__get(st, "redirect"));
	print_kubernetes(js__get(st, "kubernetes"));
	outlier__print_status(js__get(st, "outlier_detection"));
	printf("\n");
	print_attachments(js__get(st, "attachments"));
	print_maps(js__get(st, "maps"));
	print_counts(js__get(st, "counters"), "COUNTER", false, "Counters: none");
	print_counts(js__get(st, "drops"), "DROP REASON", true, "Drops: none");
}

static int do_status(int argc, char **argv)
{
	const struct opt opts[] = { { NULL } };
	struct json_object *data = NULL;
	char *pos[1];
	int npos;

	if (opts__parse(argc, argv, opts, pos, 0, &npos))
		return -1;
	if (client__call("status", NULL, &data))
		return -1;
	if (out__json_mode())
		out__json(data);
	else
		print_status(data);
	json_object_put(data);
	return 0;
}

const struct cmd status_cmd = {
	.name = "status",
	.fn = do_status,
	.grammar = "",
	.summary = "uptime, attachments, maps, counters, metrics, socket hooks",
	.example = "meshctl status",
	.reads = true,
};

/* A release skew between meshctl and meshd: said on stderr, not fatal
 * (the API is compatible within a layout version), and in the JSON. */
static const char *version_skew(struct json_object *agent, char *buf, size_t len)
{
	const char *theirs = js__str(agent, "version", "?");

	if (!strcmp(theirs, SLUICE_VERSION))
		return NULL;
	snprintf(buf, len, "meshctl %s talks to meshd %s: use the meshctl of meshd's release",
		 SLUICE_VERSION, theirs);
	return buf;
}

static int do_version(int argc, char **argv)
{
	const struct opt opts[] = { { NULL } };
	struct json_object *data = NULL, *out, *mine, *agent = NULL;
	const char *skew = NULL;
	char err[1024], skewbuf[256];
	bool reached = false;
	uint64_t layout = 0;
	char *pos[1];
	int npos;

	if (opts__parse(argc, argv, opts, pos, 0, &npos))
		return -1;
	/* meshctl's own version is printed either way; an unreachable meshd
	 * makes the exit status 1, so scripts can tell. */
	if (!client__try("status", NULL, &data, err, sizeof(err))) {
		reached = true;
		layout = js__u64(data, "layout_version");
		agent = out__xalloc(json_object_new_object());
		json_object_object_add(agent, "version",
				       json_object_new_string(js__str(data, "version", "?")));
		json_object_object_add(agent, "layout_version", json_object_new_uint64(layout));
		skew = version_skew(agent, skewbuf, sizeof(skewbuf));
	}

	if (out__json_mode()) {
		out = out__xalloc(json_object_new_object());
		mine = out__xalloc(json_object_new_object());
		json_object_object_add(mine, "version", json_object_new_string(SLUICE_VERSION));
		json_object_object_add(mine, "layout_version",
				       json_object_new_int(SLUICE_LAYOUT_VERSION));
		json_object_object_add(out, "meshctl", mine);
		json_object_object_add(out, "meshd", agent);
		if (!agent)
			json_object_object_add(out, "meshd_error", json_object_new_string(err));
		if (skew)
			json_object_object_add(out, "warning", json_object_new_string(skew));
		out__json(out);
		json_object_put(out);
	} else {
		printf("meshctl  %s (layout version %d)\n", SLUICE_VERSION, SLUICE_LAYOUT_VERSION);
		if (agent)
			printf("meshd    %s (layout version %llu)%s\n",
			       js__str(data, "version", "?"), (unsigned long long)layout,
			       layout != SLUICE_LAYOUT_VERSION ? ": differs from meshctl's" : "");
		else
			printf("meshd    unknown: %s\n", err);
		if (skew)
			fprintf(stderr, "Warning: %s\n", skew);
		json_object_put(agent);
	}
	json_object_put(data);
	return reached ? 0 : -1;
}

const struct cmd version_cmd = {
	.name = "version",
	.fn = do_version,
	.grammar = "",
	.summary = "versions of meshctl and meshd",
	.notes = "Exits 1 when meshd cannot be reached (meshctl's version is printed anyway).\n"
		 "A meshd of another release gets a warning on stderr (\"warning\" with -o json).",
	.example = "meshctl version -o json",
	.reads = true,
};

/*
 * Say what was done. meshd answers uninstall with an error unless every
 * program was detached and the pins removed, so success means all of what
 * the status taken just before showed is gone; fields meshd may add to its
 * answer ("detached": count or list, "pin_dir") take precedence.
 */
static void print_uninstall(struct json_object *data, struct json_object *before)
{
	struct json_object *det = js__get(data, "detached");
	struct json_object *atts = js__get(before, "attachments");
	const char *pin_dir = js__str(data, "pin_dir", js__str(before, "pin_dir", NULL));
	size_t i;

	if (det && json_object_is_type(det, json_type_int)) {
		printf("detached %llu program%s\n", (unsigned long long)js__u64(data, "detached"),
		       js__u64(data, "detached") == 1 ? "" : "s");
	} else if (det || atts) {
		if (det)
			atts = det;
		for (i = 0; i < js__len(atts); i++) {
			struct json_object *a = js__idx(atts, i);

			printf("detached %s from %s\n", js__str(a, "hook", "program"),
			       js__str(a, "ifname", "?"));
		}
	}
	if (!det && !js__len(atts))
		printf("detached Sluice programs from every interface\n");
	if (js__str(data, "telemetry_cgroup", NULL))
		printf("detached telemetry from cgroup %s\n",
		       js__str(data, "telemetry_cgroup", "?"));
	if (js__str(data, "socket_cgroup", NULL))
		printf("detached socket LB/redirect from cgroup %s\n",
		       js__str(data, "socket_cgroup", "?"));
	if (pin_dir)
		printf("removed the pinned maps in %s\n", pin_dir);
	else
		printf("removed the pinned maps\n");
	printf("meshd stopped\n");
}

static int do_uninstall(int argc, char **argv)
{
	const struct opt opts[] = { { NULL } };
	struct json_object *data = NULL, *before = NULL;
	char err[1024];
	char *pos[1];
	int npos;

	if (opts__parse(argc, argv, opts, pos, 0, &npos))
		return -1;
	/* Only to name what goes away; uninstall itself reports failures. */
	if (!out__json_mode() && client__try("status", NULL, &before, err, sizeof(err)))
		before = NULL;
	if (client__call("uninstall", NULL, &data)) {
		json_object_put(before);
		return -1;
	}
	if (out__json_mode())
		out__json(data);
	else
		print_uninstall(data, before);
	json_object_put(data);
	json_object_put(before);
	return 0;
}

const struct cmd uninstall_cmd = {
	.name = "uninstall",
	.fn = do_uninstall,
	.grammar = "",
	.summary = "detach everything, remove the pins, stop meshd",
	.notes = "Asks no question: it is meant for scripts. Established connections through\n"
		 "Sluice break. If meshd is not running, 'meshd --cleanup' does the same.",
	.example = "meshctl uninstall",
	.exact = true,
};
