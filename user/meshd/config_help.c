// SPDX-License-Identifier: MIT
/*
 * config_help.c - meshd's option table and its --help text (see
 * config_opts.h).
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "config_opts.h"

const struct config_opt config_opts[OPT__MAX] = {
	[OPT_INTERFACES] = { "interfaces", "LIST", "none",
			     "comma-separated interface names or fnmatch patterns to attach to, e.g. "
			     "\"eth1,lb-*\"; interfaces that appear later are attached then" },
	[OPT_XDP_MODE] = { "xdp-mode", "MODE", "native",
			   "native | generic | off (off: the tc program at tc ingress instead)" },
	[OPT_FIB_FORWARD] = { "fib-forward", "auto|on|off", "auto",
			      "after NAT the datapath forwards itself (FIB lookup + redirect). "
			      "auto: XDP redirects to the egress devices that can take XDP frames "
			      "(checked per device as links come and go; the log says why) and "
			      "hands the rest to the kernel, tc redirects to any; on: XDP "
			      "redirects to any egress (bridges, tunnels and veths whose peer runs "
			      "neither XDP nor GRO drop such frames); off: the kernel forwards" },
	[OPT_CGROUP] = { "cgroup", "PATH", "the cgroup2 mount in /proc/mounts",
			 "cgroup v2 directory whose processes' sockets the socket-level hooks "
			 "(socket LB, redirection, telemetry) see; the root covers the whole node; "
			 "must exist" },
	[OPT_BPFFS] = { "bpffs", "PATH", MESHD_BPFFS_DEFAULT,
			"pin directory for maps (bpffs is mounted on /sys/fs/bpf if it is not)" },
	[OPT_STATE] = { "state", "FILE", MESHD_STATE_DEFAULT,
			"desired-state file, written atomically on every change" },
	[OPT_SOCKET] = { "socket", "PATH", SLUICE_API_SOCKET_DEFAULT,
			 "API socket for meshctl (mode 0600, root only)" },
	[OPT_LOG_LEVEL] = { "log-level", "LEVEL", "info", "error | warn | info | debug" },
	[OPT_METRICS] = { "metrics", "ADDR", MESHD_METRICS_DEFAULT,
			  "serve Prometheus metrics at http://ADDR/metrics: HOST:PORT with a numeric "
			  "host, [V6]:PORT, :PORT for every address, or off" },
	[OPT_METRICS_BACKENDS] = { "metrics-backends", "auto|on|off", "auto",
				   "per-backend series (sluice_backend_*) in /metrics: auto writes "
				   "them while the node has at most 10000 backends (at 10k services x "
				   "10 they would be 53 MB of a 57 MB scrape), on always, off never; "
				   "services' series are always there" },
	[OPT_TELEMETRY] = { "telemetry", "on|off", "on",
			    "per-connection telemetry: a sockops program on --cgroup records every "
			    "TCP connection to or from a service (RTT, bytes, retransmits, "
			    "failures) for the metrics, `meshctl connections` and `meshctl top`; "
			    "off also detaches one an earlier meshd left" },
	[OPT_TELEMETRY_INTERVAL] = { "telemetry-interval", "SECONDS", "10",
				     "how often a long-lived connection reports its progress "
				     "before it closes (0: only at open and close)" },
	[OPT_SOCKET_LB] = { "socket-lb", "on|off", "on",
			    "socket-level load balancing: connect()/sendmsg() of processes in "
			    "--cgroup to a VIP go straight to a backend (no per-packet NAT, no "
			    "conntrack entry; getpeername()/recvfrom() show the VIP); off also "
			    "detaches one an earlier meshd left (the packet path still serves)" },
	[OPT_REDIRECT] = { "redirect", "on|off", "off",
			   "same-node redirection (opt-in): TCP connections whose both ends are "
			   "local sockets in --cgroup skip the TCP/IP stack (sockops + sk_msg); a "
			   "self-test must pass at start or it stays off (see below)" },
	[OPT_KUBERNETES] = { "kubernetes", "on|off", "off",
			     "sync services from the Kubernetes API (v1 Services and "
			     "EndpointSlices, list + watch); kubernetes services are then "
			     "read-only for meshctl; NODE_NAME names this node for traffic "
			     "policies Local" },
	[OPT_KUBECONFIG] = { "kubeconfig", "FILE", "in-cluster service account",
			     "kubeconfig for --kubernetes (its current-context)" },
	[OPT_NODEPORT_ADDRESSES] = { "nodeport-addresses", "CIDR[,CIDR]", "every address",
				     "with --kubernetes: the node addresses NodePorts are served "
				     "on, like kube-proxy's flag (e.g. 192.0.2.0/24,fd00::/64); "
				     "loopback and link-local addresses never serve them; "
				     "addresses that come and go are followed" },
	[OPT_SNAT_ADDRESS] = { "snat-address", "auto|none|ADDR[,ADDR]", "auto",
			       "the node address (one per family) that load-balancer and "
			       "external IPs of externalTrafficPolicy Cluster (and services "
			       "with \"snat\": \"node\") are source-NATed to; auto: with "
			       "--kubernetes, the lowest node address of each family inside "
			       "--nodeport-addresses, followed; none: such flows keep the "
			       "client's address" },
	[OPT_STATE_MISSING] = { "state-missing", "refuse|adopt|empty", "refuse",
				"what a start does when --state does not exist but the pinned maps "
				"hold services (a moved file, a typo, a wiped disk): refuse exits "
				"naming the file and the count; adopt keeps the maps' services and "
				"writes them to the file; empty deletes them (logged as a warning). "
				"Without services in the maps a missing file is a first start" },
	[OPT_API_MAX_REQUEST] = { "api-max-request", "MIB", "32",
				  "largest API request meshd reads, in MiB (1-128); a larger one "
				  "is refused with an error naming both sizes; a full-capacity "
				  "desired state is ~17 MiB (IPv4), ~26 MiB (IPv6)" },
	[OPT_OUTLIER_DETECTION] = { "outlier-detection", "on|off", "on",
				    "passive outlier detection (see below): the kernel ejects a "
				    "backend whose connection attempts fail in a row and picks "
				    "another for new flows; off turns it off for every service "
				    "(per service: outlierDetection in the desired state)" },
	[OPT_POLICY_CUT_NETNS] = { "policy-cut-netns", "cgroup|all", "cgroup",
				   "where a policy change looks for the sockets it cuts besides "
				   "meshd's own network namespace: those of the processes in "
				   "--cgroup (the socket LB's), or of every process (/proc; costs "
				   "~3 ms per namespace on the node, see the README). The cut runs "
				   "in the background: the change is answered at once" },
	[OPT_CONFIG] = { "config", "FILE", NULL,
			 "YAML config file whose keys are the long option names above; "
			 "flags win over it" },
	[OPT_NO_OUTLIER_DETECTION] = { "no-outlier-detection", NULL, NULL,
				       "the same as --outlier-detection off" },
	[OPT_CLEANUP] = { "cleanup", NULL, NULL,
			  "detach Sluice programs from every interface, remove the pins, exit "
			  "(drops conntrack)" },
	[OPT_RELOAD_PROGRAMS] = { "reload-programs", NULL, NULL,
				  "load the datapath programs (and swap them in place) even when "
				  "the ones pinned by the last start are exactly the ones this "
				  "start would load; without it a restart reuses them" },
	[OPT_HELP] = { "help", NULL, NULL, "show this help and exit" },
	[OPT_VERSION] = { "version", NULL, NULL, "print the version and exit" },
};

/* Print text from column `indent` on, wrapped at word boundaries. */
static void config__wrap(FILE *f, const char *text, int indent, int width)
{
	int col = indent;

	while (*text) {
		int word = strcspn(text, " ");

		if (col > indent && col + 1 + word > width) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", word, text);
		col += word;
		text += word;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

void config__usage(FILE *f)
{
	fprintf(f,
		"Usage: meshd [--config FILE] [--interfaces LIST] [--xdp-mode native|generic|off]\n"
		"             [--fib-forward auto|on|off] [--cgroup PATH] [--bpffs PATH] [--state FILE]\n"
		"             [--socket PATH] [--log-level LEVEL] [--metrics ADDR|off]\n"
		"             [--telemetry on|off] [--telemetry-interval SECONDS]\n"
		"             [--socket-lb on|off] [--redirect on|off]\n"
		"             [--kubernetes on|off] [--kubeconfig FILE] [--api-max-request MIB]\n"
		"             [--nodeport-addresses CIDR[,CIDR]] [--snat-address auto|none|ADDR[,ADDR]]\n"
		"             [--state-missing refuse|adopt|empty]\n"
		"             [--outlier-detection on|off | --no-outlier-detection]\n"
		"             [--policy-cut-netns cgroup|all] [--reload-programs] [--cleanup]\n"
		"             | --help | --version\n"
		"Sluice node agent: loads the L4 datapath, attaches it to interfaces, keeps the\n"
		"services of the desired state in its maps and serves meshctl.\n\nOptions:\n");
	for (int i = 0; i < OPT__MAX; i++) {
		const struct config_opt *o = &config_opts[i];
		char flag[48], text[512];

		snprintf(flag, sizeof(flag), "--%s%s%s", o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
		snprintf(text, sizeof(text), "%s%s%s%s", o->help, o->def ? " (default: " : "",
			 o->def ? o->def : "", o->def ? ")" : "");
		/* a flag wider than its column gets a line of its own */
		if (strlen(flag) > 22)
			fprintf(f, "  %s\n%25s", flag, "");
		else
			fprintf(f, "  %-22s ", flag);
		config__wrap(f, text, 25, 79);
	}
	fprintf(f,
		"\nSIGTERM/SIGINT end meshd leaving programs attached and maps pinned: a restart\n"
		"keeps every connection. Only --cleanup or `meshctl uninstall` removes them.\n"
		"A restart reuses the programs the last start pinned when they were loaded\n"
		"from the same object, config, versions, kernel and boot and use the pinned\n"
		"maps (no verifier run); otherwise it loads them and says why in its log and\n"
		"in `meshctl status`.\n"
		"Under systemd (meshd.service, Type=notify) meshd sends READY=1 to\n"
		"$NOTIFY_SOCKET once the datapath is attached and the API serves.\n"
		"\nSocket LB and redirection act on the sockets of processes in --cgroup (pass a\n"
		"child cgroup to limit them). Redirection is opt-in because of a kernel\n"
		"limitation: on 6.18 a blocking reader that half-closes (shutdown(SHUT_WR),\n"
		"then a blocking recv()) can get a spurious EAGAIN on a redirected socket\n"
		"(tcp_bpf_recvmsg); event-driven readers (poll + non-blocking recv) take it as\n"
		"\"no data yet\" and are not affected.\n"
		"\nTelemetry records the TCP connections that processes in --cgroup open to a\n"
		"service or accept as one of its backends: bytes, RTT, retransmits, duration,\n"
		"failures. `meshctl connections` lists them, `meshctl top` shows live rates,\n"
		"and GET /metrics exports them with the datapath counters in the Prometheus\n"
		"text format (gzip when the scraper asks). 9465 is Sluice's metrics port.\n"
		"\nOutlier detection: a backend whose connection attempts fail 3 times in a row\n"
		"(RST to the SYN, SYN unanswered, connect() refused or timed out) is ejected by\n"
		"the kernel for 30 s x ejections in a row (at most 300 s); new flows go to the\n"
		"next healthy backend, existing ones are left alone. At most 50%% of a\n"
		"service's backends are ejected, and below 50%% healthy health is ignored.\n"
		"Ejections are logged at info and kept across restarts (pinned maps).\n"
		"\nExamples:\n"
		"  meshd --interfaces 'eth1,lb-*' --xdp-mode generic\n"
		"  meshd --interfaces eth1 --metrics 127.0.0.1:9465 --telemetry-interval 30\n"
		"  meshd --interfaces eth1 --cgroup /sys/fs/cgroup/mesh --redirect on\n"
		"  meshd --config /etc/sluice/meshd.yaml --log-level debug\n"
		"  meshd --cleanup --bpffs /sys/fs/bpf/sluice\n");
}
