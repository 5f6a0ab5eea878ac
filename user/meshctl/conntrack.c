// SPDX-License-Identifier: MIT
/*
 * conntrack.c - `meshctl conntrack list|flush [SVC]`: the flows the
 * datapath tracks, all of them or one service's.
 *
 * Contract: one API call each (conntrack.list, conntrack.flush); list
 * prints one row per flow with its state (confirmed: in the conntrack map;
 * new: in ct_new, nobody answered yet), ages as durations and the TCP flags
 * seen by name; flush empties both maps; -o json prints the agent's answer
 * unchanged.
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "meshctl.h"
#include "output.h"

/* Optional SVC -> args {"service": SVC}, or NULL args for "all". */
static int svc_filter(int argc, char **argv, struct json_object **args, char *svc, size_t len)
{
	const struct opt opts[] = { { NULL } };
	char *pos[1];
	int npos;

	*args = NULL;
	svc[0] = '\0';
	if (opts__parse(argc, argv, opts, pos, 1, &npos))
		return -1;
	if (!npos)
		return 0;
	if (args__svc(pos[0], NULL, svc, len))
		return -1;
	*args = out__xalloc(json_object_new_object());
	json_object_object_add(*args, "service", json_object_new_string(svc));
	return 0;
}

/* tcp_flags: meshd sends "SYN,ACK,FIN"; a number (the raw union of flags
 * seen) is spelled the same way, so either agent prints alike. */
static const char *flags_str(struct json_object *entry, char *buf, size_t len)
{
	static const char *const names[] = {
		"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"
	};
	struct json_object *v = js__get(entry, "tcp_flags");
	unsigned int flags, i;
	size_t n = 0;

	if (!v || json_object_is_type(v, json_type_null))
		return "-";
	if (!json_object_is_type(v, json_type_int))
		return *json_object_get_string(v) ? json_object_get_string(v) : "-";
	flags = json_object_get_int(v);
	buf[0] = '\0';
	for (i = 0; i < 8 && n < len; i++) {
		if (flags & (1u << i))
			n += snprintf(buf + n, len - n, "%s%s", n ? "," : "", names[i]);
	}
	return n ? buf : "-";
}

static void print_entries(struct json_object *entries)
{
	static const char *const cols[] = {
		"PROTO", "CLIENT", "SERVICE", "BACKEND", "STATE", ">AGE", ">IDLE", "FLAGS", NULL,
	};
	char age[OUT_NUM_LEN], idle[OUT_NUM_LEN], flags[48];
	struct table *t = table__new(cols);
	size_t i;

	for (i = 0; i < js__len(entries); i++) {
		struct json_object *e = js__idx(entries, i);

		table__cell(t, "%s", js__str(e, "proto", "?"));
		table__cell(t, "%s", js__str(e, "client", "?"));
		table__cell(t, "%s", js__str(e, "service", "?"));
		table__cell(t, "%s", js__str(e, "backend", "?"));
		table__cell(t, "%s", js__str(e, "state", "-"));
		table__cell(t, "%s", out__duration(js__u64(e, "age_seconds"), age, sizeof(age)));
		table__cell(t, "%s", out__duration(js__u64(e, "idle_seconds"), idle, sizeof(idle)));
		table__cell(t, "%s", flags_str(e, flags, sizeof(flags)));
	}
	table__print(t);
	table__free(t);
}

static int do_list(int argc, char **argv)
{
	struct json_object *args, *data = NULL;
	char svc[ARGS_SVC_LEN];

	if (svc_filter(argc, argv, &args, svc, sizeof(svc)))
		return -1;
	if (client__call("conntrack.list", args, &data))
		return -1;
	if (out__json_mode()) {
		out__json(data);
	} else {
		print_entries(js__get(data, "entries"));
		/* on stderr: the table stays clean for grep and wc */
		if (js__u64(data, "truncated"))
			fprintf(stderr, "(%zu of %llu flows shown: meshd caps the list)\n",
				js__len(js__get(data, "entries")),
				(unsigned long long)js__u64(data, "total"));
	}
	json_object_put(data);
	return 0;
}

static const struct help_item conntrack_list_args[] = {
	{ "SVC", "only the flows of this service (VIP:PORT/PROTO); default: all" },
	{ NULL, NULL },
};

static const struct cmd conntrack_list_cmd = {
	.name = "list",
	.fn = do_list,
	.grammar = "[SVC]",
	.summary = "list tracked flows: client, service, backend, state, age, idle time, TCP flags",
	.args = conntrack_list_args,
	.notes = "One row per flow (client to service). STATE: confirmed (handshake completed or\n"
		 "UDP answered), new (nobody answered yet: short timeouts, swept by meshd).\n"
		 "FLAGS: the TCP flags the client sent so far.",
	.example = "meshctl conntrack list 10.96.0.10:80/tcp",
	.reads = true,
};

static int do_flush(int argc, char **argv)
{
	struct json_object *args, *data = NULL;
	char svc[ARGS_SVC_LEN];
	uint64_t n;

	if (svc_filter(argc, argv, &args, svc, sizeof(svc)))
		return -1;
	if (client__call("conntrack.flush", args, &data))
		return -1;
	if (out__json_mode()) {
		out__json(data);
	} else {
		n = js__u64(data, "deleted");
		printf("flushed %llu flow%s%s%s (%llu conntrack entries)\n", (unsigned long long)n,
		       n == 1 ? "" : "s", *svc ? " of " : "", svc,
		       (unsigned long long)js__u64(data, "entries_deleted"));
	}
	json_object_put(data);
	return 0;
}

static const struct help_item conntrack_flush_args[] = {
	{ "SVC", "only the flows of this service (VIP:PORT/PROTO); default: all" },
	{ NULL, NULL },
};

static const struct cmd conntrack_flush_cmd = {
	.name = "flush",
	.fn = do_flush,
	.grammar = "[SVC]",
	.summary = "forget tracked flows, confirmed and new; new connections are balanced afresh",
	.notes = "Only a SYN (or a first datagram) creates state: a flushed TCP connection's next\n"
		 "packets still reach the Maglev pick, but its backend's replies are no longer\n"
		 "rewritten to the VIP, so such connections end.",
	.args = conntrack_flush_args,
	.example = "meshctl conntrack flush 10.96.0.10:80/tcp",
};

const struct cmd conntrack_cmd = {
	.name = "conntrack",
	.sub = (const struct cmd *const[]){ &conntrack_list_cmd, &conntrack_flush_cmd, NULL },
	.summary = "list and flush tracked flows",
	.example = "meshctl conntrack list\n"
		   "meshctl conntrack flush 10.96.0.10:80/tcp",
};
