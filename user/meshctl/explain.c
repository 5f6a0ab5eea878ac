// SPDX-License-Identifier: MIT
/*
 * explain.c - `meshctl explain CLIENT:PORT SVC` (#15): why a connection
 * was refused or sent where it went, as the datapath decides it now.
 *
 * Contract: one API call ("explain"); meshd walks the live maps
 * (sluice__explain(), read-only) and answers with the verdict and a trace,
 * one step per decision in the kernel's order; the table view prints the
 * trace, -o json the agent's answer unchanged. `--socket-cookie N` asks
 * for the socket LB of a local socket instead (its SO_COOKIE is its flow
 * hash; `--netns-cookie` its affinity client), with no CLIENT needed;
 * `--socket-src` is its local address (the client the socket LB checks
 * the access policy with), `--route-src` the source its packets carry
 * when the socket LB leaves it to the packet path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "meshctl.h"
#include "output.h"

static int explain__cookie(const char *text, const char *opt, struct json_object *args,
			   const char *key)
{
	unsigned long v;

	if (!text)
		return 0;
	if (opts__uint(text, 1, ~0UL, opt, &v))
		return -1;
	json_object_object_add(args, key, json_object_new_string(text));
	return 0;
}

static void explain__print(struct json_object *data)
{
	struct json_object *trace = js__get(data, "trace");

	if (js__get(data, "client"))
		printf("%s %s (packet path)\n", js__str(data, "client", "?"),
		       js__str(data, "service", "?"));
	else
		printf("local socket %s-> %s (socket path)\n",
		       js__get(data, "socket_source") ? js__str(data, "socket_source", "?") :
							"(not bound) ",
		       js__str(data, "service", "?"));
	for (size_t i = 0; i < js__len(trace); i++) {
		struct json_object *st = js__idx(trace, i);

		printf("  %-10s %s\n", js__str(st, "step", "?"), js__str(st, "text", ""));
	}
}

static int do_explain(int argc, char **argv)
{
	const char *sock = NULL, *netns = NULL, *src = NULL, *route = NULL;
	const struct opt opts[] = {
		{ "socket-cookie", 0, &sock, NULL },
		{ "netns-cookie", 0, &netns, NULL },
		{ "socket-src", 0, &src, NULL },
		{ "route-src", 0, &route, NULL },
		{ NULL },
	};
	struct json_object *args, *data = NULL;
	struct sluice_addr vip, client;
	char svc[ARGS_SVC_LEN], buf[SLUICE_ADDRPORT_STRLEN];
	char *pos[2];
	int npos;
	__u16 port;

	if (opts__parse(argc, argv, opts, pos, 2, &npos))
		return -1;
	if (npos != (sock ? 1 : 2))
		return cmd__usage_error(sock ? "want SVC after --socket-cookie" :
					       "want CLIENT:PORT and SVC");
	if (!sock && (src || route))
		return cmd__usage_error("--socket-src and --route-src go with --socket-cookie");
	if (args__svc(pos[npos - 1], &vip, svc, sizeof(svc)))
		return -1;
	args = out__xalloc(json_object_new_object());
	json_object_object_add(args, "service", json_object_new_string(svc));
	if (!sock) {
		if (sluice_addr__parse_port(&client, &port, pos[0]) || !port) {
			json_object_put(args);
			return out__error("client '%s': want ADDR:PORT, e.g. 192.0.2.7:41234 or "
					  "[fd00::7]:41234",
					  pos[0]);
		}
		if (client.family != vip.family) {
			json_object_put(args);
			return out__error("client '%s' is not of the service's address family",
					  pos[0]);
		}
		json_object_object_add(args, "client",
				       json_object_new_string(sluice_addr__str_port(
					       &client, port, buf, sizeof(buf))));
	}
	if (explain__cookie(sock, "--socket-cookie", args, "socketCookie") ||
	    explain__cookie(netns, "--netns-cookie", args, "netnsCookie")) {
		json_object_put(args);
		return -1;
	}
	/* checked by meshd, which names the bad one */
	if (src)
		json_object_object_add(args, "socketSource", json_object_new_string(src));
	if (route)
		json_object_object_add(args, "routeSource", json_object_new_string(route));
	if (client__call("explain", args, &data))
		return -1;
	if (out__json_mode())
		out__json(data);
	else
		explain__print(data);
	json_object_put(data);
	return 0;
}

static const struct help_item explain_args[] = {
	{ "CLIENT:PORT", "the client as the node sees it: 192.0.2.7:41234, [fd00::7]:41234" },
	HELP_SVC,
	{ NULL, NULL },
};

static const struct help_item explain_opts[] = {
	{ "--socket-cookie N", "a local socket (socket LB) instead of CLIENT: its SO_COOKIE" },
	{ "--netns-cookie N", "with --socket-cookie: its SO_NETNS_COOKIE (the affinity client)" },
	{ "--socket-src ADDR[:PORT]",
	  "with --socket-cookie: its getsockname(); omitted: not bound" },
	{ "--route-src ADDR[:PORT]", "with --socket-cookie: its packets' source, if deferred" },
	{ NULL, NULL },
};

const struct cmd explain_cmd = {
	.name = "explain",
	.fn = do_explain,
	.grammar = "CLIENT:PORT SVC | --socket-cookie N [SOCKET OPTIONS] SVC",
	.summary = "why a flow goes to its backend or is refused, from the live maps",
	.args = explain_args,
	.opts = explain_opts,
	.notes = "Walks the live maps as the XDP/tc new-flow path does, read-only: service,\n"
		 "conntrack (an existing flow keeps its backend), policy (source ranges: the\n"
		 "rule that decided; access policy: the list that decided and, when an exact-\n"
		 "match lookup found it, the entry: policy_hash / policy_nhost PREFIX, lookup N),\n"
		 "drop-when-empty / refusal, affinity entry, Maglev hash\n"
		 "and slot, ejection fallback, backend and its health, source NAT. TCP is\n"
		 "explained as a SYN: a new connection, or the next SYN on that tuple. A\n"
		 "verdict is of this moment: a change, a race or the packet itself may differ.\n"
		 "--socket-cookie answers for the socket LB meshd runs: none attached, or UDP\n"
		 "or an empty service it is loaded to leave alone, is 'proceed' (the packet\n"
		 "path decides). Where an access policy applies (the service's rules or a\n"
		 "node-wide deny of its family) the socket LB checks the socket's local\n"
		 "address and port (--socket-src): a denied one is 'deny' (connect()/\n"
		 "sendmsg() fail with EPERM); a socket not bound (or bound to the wildcard,\n"
		 "or without a port a matching rule needs) is 'deferred' to the packet path,\n"
		 "whose check of --route-src is then shown.",
	.example =
		"meshctl explain 192.0.2.7:41234 10.96.0.10:80/tcp\n"
		"meshctl explain --socket-cookie 4107 10.96.0.10:80/tcp -o json\n"
		"meshctl explain --socket-cookie 4107 --socket-src 10.0.3.7:40112 10.96.0.10:80/tcp\n"
		"meshctl explain --socket-cookie 4108 --route-src 10.0.3.7 10.96.0.10:80/tcp",
	.reads = true,
};
