// SPDX-License-Identifier: MIT
/*
 * metrics.c - writing a metrics snapshot in the Prometheus text format
 * 0.0.4 (collection is in metrics_collect.c).
 *
 * Contract (see metrics.h): pure function of the snapshot; every family
 * is written whole (HELP, TYPE, then its samples) in a fixed order, label
 * values are escaped (backslash, double quote, newline), fractional
 * values are printed from integers (microseconds) so they are exact.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

#define P "sluice_"

struct label {
	const char *name;
	const char *value;
};

#define LABELS_MAX 5

static void metrics__family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Writes go through the _unlocked stdio calls: a scrape's stream belongs
 * to one thread, and at 10k services x 10 backends the locked ones cost a
 * third of the writing (#16). */
static void metrics__put(FILE *out, const char *s)
{
	fwrite_unlocked(s, 1, strlen(s), out);
}

static void metrics__escaped(FILE *out, const char *v)
{
	for (;;) {
		size_t plain = strcspn(v, "\\\"\n");

		fwrite_unlocked(v, 1, plain, out);
		v += plain;
		if (!*v)
			return;
		metrics__put(out, *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : "\\n");
		v++;
	}
}

/* name{labels} value; labels with a NULL name are skipped. */
static void metrics__sample(FILE *out, const char *name, const char *suffix,
			    const struct label *labels, const char *value)
{
	bool first = true;

	metrics__put(out, name);
	metrics__put(out, suffix);
	for (int i = 0; i < LABELS_MAX && labels && labels[i].name; i++) {
		fputc_unlocked(first ? '{' : ',', out);
		metrics__put(out, labels[i].name);
		metrics__put(out, "=\"");
		metrics__escaped(out, labels[i].value);
		fputc_unlocked('"', out);
		first = false;
	}
	if (!first)
		fputc_unlocked('}', out);
	fputc_unlocked(' ', out);
	metrics__put(out, value);
	fputc_unlocked('\n', out);
}

/* v in decimal at the start of buf (returned). */
static const char *metrics__u64(char *buf, size_t len, __u64 v)
{
	char tmp[24], *p = tmp + sizeof(tmp);

	*--p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if ((size_t)(tmp + sizeof(tmp) - p) > len)
		return "";
	memcpy(buf, p, (size_t)(tmp + sizeof(tmp) - p));
	return buf;
}

/* v / per_unit as a decimal without float rounding: 123 us -> "0.000123". */
static const char *metrics__scaled(char *buf, size_t len, __u64 v, __u64 per_unit)
{
	__u64 whole = v / per_unit, frac = v % per_unit;
	int digits = 0;

	if (per_unit == 1 || !frac)
		return metrics__u64(buf, len, whole);
	for (__u64 u = per_unit; u > 1; u /= 10)
		digits++;
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	snprintf(buf, len, "%" PRIu64 ".%0*" PRIu64, (uint64_t)whole, digits, (uint64_t)frac);
	return buf;
}

static void metrics__u64_sample(FILE *out, const char *name, const struct label *labels, __u64 v)
{
	char buf[32];

	metrics__sample(out, name, "", labels, metrics__u64(buf, sizeof(buf), v));
}

static void metrics__header(const struct metrics_snapshot *m, FILE *out)
{
	char layout[16], buf[48];
	struct label l[LABELS_MAX] = { { "version", m->version }, { "layout", layout } };

	snprintf(layout, sizeof(layout), "%u", m->layout_version);
	metrics__family(out, P "build_info", "gauge",
			"Always 1; labels name the release and the map layout version.");
	metrics__sample(out, P "build_info", "", l, "1");
	metrics__family(out, P "agent_start_time_seconds", "gauge",
			"Start time of the agent since the Unix epoch, in seconds.");
	snprintf(buf, sizeof(buf), "%.3f", m->start_time);
	metrics__sample(out, P "agent_start_time_seconds", "", NULL, buf);
}

static void metrics__datapath(const struct metrics_snapshot *m, FILE *out)
{
	struct label l[LABELS_MAX] = { { "reason", NULL } };

	metrics__family(out, P "datapath_packets_total", "counter",
			"Packets seen by the XDP/tc datapath, by what it did with them.");
	for (int i = 0; i < SLUICE_CNT__MAX; i++) {
		l[0].value = sluice__counter_name(i);
		metrics__u64_sample(out, P "datapath_packets_total", l, m->counters[i]);
	}
	metrics__family(out, P "datapath_drops_total", "counter",
			"Packets dropped by the XDP/tc datapath, by reason.");
	for (int i = SLUICE_DROP_NONE + 1; i < SLUICE_DROP__MAX; i++) {
		l[0].value = sluice__drop_name(i);
		metrics__u64_sample(out, P "datapath_drops_total", l, m->drops[i]);
	}
}

struct svc_field {
	const char *name, *type, *help;
	size_t off; /* of a __u64 in struct metrics_service */
};

static const struct svc_field svc_fields[] = {
	{ P "service_backends", "gauge", "Backends of the service taking new flows.", 0 },
	{ P "service_packets_total", "counter",
	  "Packets of the service through the datapath, both directions.",
	  offsetof(struct metrics_service, stats.packets) },
	{ P "service_bytes_total", "counter",
	  "Bytes (frame length) of the service through the datapath, both directions.",
	  offsetof(struct metrics_service, stats.bytes) },
	{ P "service_flows_total", "counter", "New flows the datapath balanced for the service.",
	  offsetof(struct metrics_service, stats.flows) },
	{ P "service_refused_total", "counter",
	  "Packets answered with RST or ICMP unreachable: service without backends.",
	  offsetof(struct metrics_service, stats.refused) },
};

static void metrics__services(const struct metrics_snapshot *m, FILE *out)
{
	struct label l[LABELS_MAX] = { { "service", NULL } };

	for (size_t f = 0; f < sizeof(svc_fields) / sizeof(svc_fields[0]); f++) {
		const struct svc_field *sf = &svc_fields[f];

		metrics__family(out, sf->name, sf->type, sf->help);
		for (size_t i = 0; i < m->nservices; i++) {
			const struct metrics_service *s = &m->services[i];

			l[0].value = s->name;
			metrics__u64_sample(out, sf->name, l,
					    sf->off ? *(const __u64 *)((const char *)s + sf->off) :
						      s->backend_count);
		}
	}
}

/* Access policy (#15): denials per service and reason, never per client. */
static void metrics__policy(const struct metrics_snapshot *m, FILE *out)
{
	static const char *const reasons[] = {
#define X(name, str, help) str,
		SLUICE_POLICY_REASONS(X)
#undef X
	};
	struct label l[LABELS_MAX] = { { "service", NULL }, { "reason", NULL } };

	metrics__family(out, P "service_policy_denied_total", "counter",
			"New flows the access policy denied (dropped or refused), by reason.");
	for (size_t i = 0; i < m->nservices; i++) {
		l[0].value = m->services[i].name;
		for (int r = 0; r < SLUICE_POLICY_R__MAX; r++) {
			l[1].value = reasons[r];
			metrics__u64_sample(out, P "service_policy_denied_total", l,
					    m->services[i].policy.denied[r]);
		}
	}
}

static const struct svc_field be_fields[] = {
	{ P "backend_weight", "gauge", "Maglev weight of the backend; 0 means draining.", 0 },
	{ P "backend_packets_total", "counter",
	  "Packets to and from the backend through the datapath.",
	  offsetof(struct metrics_backend, stats.packets) },
	{ P "backend_bytes_total", "counter",
	  "Bytes (frame length) to and from the backend through the datapath.",
	  offsetof(struct metrics_backend, stats.bytes) },
	{ P "backend_flows_total", "counter", "New flows the datapath balanced to the backend.",
	  offsetof(struct metrics_backend, stats.flows) },
};

static void metrics__be_labels(const struct metrics_snapshot *m, const struct metrics_backend *b,
			       struct label *l)
{
	l[0] = (struct label){ "service", m->services[b->service].name };
	l[1] = (struct label){ "backend", b->addr };
}

static void metrics__backends(const struct metrics_snapshot *m, FILE *out)
{
	struct label l[LABELS_MAX] = {};

	if (m->no_backend_series)
		return;
	for (size_t f = 0; f < sizeof(be_fields) / sizeof(be_fields[0]); f++) {
		const struct svc_field *bf = &be_fields[f];

		metrics__family(out, bf->name, bf->type, bf->help);
		for (size_t i = 0; i < m->nbackends; i++) {
			const struct metrics_backend *b = &m->backends[i];

			metrics__be_labels(m, b, l);
			metrics__u64_sample(out, bf->name, l,
					    bf->off ? *(const __u64 *)((const char *)b + bf->off) :
						      b->weight);
		}
	}
}

/* Passive outlier detection (#14): the kernel's decisions, and each
 * backend's state; ejections by reason only where there were any. */
static void metrics__health(const struct metrics_snapshot *m, FILE *out)
{
	struct label l[LABELS_MAX] = { { "reason", NULL } };

	metrics__family(out, P "datapath_health_total", "counter",
			"Outlier detection and affinity decisions of the datapath, by kind.");
	for (int i = 0; i < SLUICE_HCNT__MAX; i++) {
		l[0].value = sluice__health_counter_name(i);
		metrics__u64_sample(out, P "datapath_health_total", l, m->health[i]);
	}
	l[0] = (struct label){ "service", NULL };
	metrics__family(out, P "service_healthy_backends", "gauge",
			"Backends of the service taking new flows that are not ejected or "
			"unhealthy.");
	for (size_t i = 0; i < m->nservices; i++) {
		l[0].value = m->services[i].name;
		metrics__u64_sample(out, P "service_healthy_backends", l, m->services[i].healthy);
	}
	if (m->no_backend_series)
		return;
	metrics__family(
		out, P "backend_ejected", "gauge",
		"1 while the kernel keeps the backend ejected (its ejection time not over).");
	for (size_t i = 0; i < m->nbackends; i++) {
		metrics__be_labels(m, &m->backends[i], l);
		metrics__u64_sample(out, P "backend_ejected", l,
				    m->backends[i].health == SLUICE_BEH_EJECTED);
	}
	metrics__family(out, P "backend_consecutive_failures", "gauge",
			"Connection attempts to the backend that failed in a row.");
	for (size_t i = 0; i < m->nbackends; i++) {
		metrics__be_labels(m, &m->backends[i], l);
		metrics__u64_sample(out, P "backend_consecutive_failures", l, m->backends[i].fails);
	}
	metrics__family(out, P "backend_ejections_total", "counter",
			"Ejections of the backend by the kernel (agent's count since its start), "
			"by reason of the failure that caused them.");
	for (size_t i = 0; i < m->nbackends; i++) {
		metrics__be_labels(m, &m->backends[i], l);
		for (int r = 0; r < SLUICE_HEALTH_R__MAX; r++) {
			if (!m->backends[i].ejections[r])
				continue;
			l[2] = (struct label){ "reason", sluice__health_reason_name(r) };
			metrics__u64_sample(out, P "backend_ejections_total", l,
					    m->backends[i].ejections[r]);
		}
		l[2] = (struct label){};
	}
}

/* Connection counters, written per service and per backend. */
struct conn_field {
	const char *name; /* after sluice_ / sluice_backend_ */
	const char *help;
	size_t off; /* of a __u64 in struct telemetry_conn */
};

static const struct conn_field conn_fields[] = {
	{ "connections_opened_total", "TCP connections established",
	  offsetof(struct telemetry_conn, opened) },
	{ "connections_closed_total", "Established TCP connections closed, resets included",
	  offsetof(struct telemetry_conn, closed) },
	{ "connections_reset_total", "Established TCP connections reset by the peer",
	  offsetof(struct telemetry_conn, reset) },
	{ "connection_sent_bytes_total",
	  "Bytes sent on TCP connections and acknowledged by the peer",
	  offsetof(struct telemetry_conn, bytes_sent) },
	{ "connection_received_bytes_total", "Bytes received on TCP connections",
	  offsetof(struct telemetry_conn, bytes_received) },
	{ "connection_retransmits_total", "TCP segments retransmitted",
	  offsetof(struct telemetry_conn, retrans) },
	{ "connection_timeouts_total", "TCP retransmission timeouts, SYN included",
	  offsetof(struct telemetry_conn, rtos) },
};

static const enum sluice_telem_reason fail_reasons[] = {
	SLUICE_TELEM_REASON_REFUSED, SLUICE_TELEM_REASON_TIMEOUT, SLUICE_TELEM_REASON_UNREACHABLE,
	SLUICE_TELEM_REASON_ABORTED, SLUICE_TELEM_REASON_ERROR,
};

#define NFAIL (sizeof(fail_reasons) / sizeof(fail_reasons[0]))

static __u64 conn_get(const struct telemetry_conn *c, size_t off)
{
	return *(const __u64 *)((const char *)c + off);
}

/* One family over services (backend == false) or backends. */
static void metrics__conn_family(const struct metrics_snapshot *m, FILE *out,
				 const struct conn_field *cf, bool backend)
{
	struct label l[LABELS_MAX] = {};
	char name[96], help[160];
	int d;

	snprintf(name, sizeof(name), P "%s%s", backend ? "backend_" : "", cf->name);
	snprintf(help, sizeof(help), "%s, per %s and direction (connection telemetry).", cf->help,
		 backend ? "backend" : "service");
	metrics__family(out, name, "counter", help);
	for (size_t i = 0; i < (backend ? m->nbackends : m->nservices); i++) {
		const struct telemetry_conn *c;
		const bool *seen;

		if (backend) {
			if (!m->backends[i].has_telemetry)
				continue;
			metrics__be_labels(m, &m->backends[i], l);
			c = m->backends[i].tel.conn;
			seen = m->backends[i].tel.seen;
			d = 2;
		} else {
			if (!m->services[i].has_telemetry)
				continue;
			l[0] = (struct label){ "service", m->services[i].name };
			c = m->services[i].tel.conn;
			seen = m->services[i].tel.seen;
			d = 1;
		}
		for (int dir = 0; dir < SLUICE_TELEM_DIR__MAX; dir++) {
			if (!seen[dir])
				continue;
			l[d] = (struct label){ "direction", telemetry__dir_name(dir) };
			metrics__u64_sample(out, name, l, conn_get(&c[dir], cf->off));
		}
	}
}

static void metrics__fail_family(const struct metrics_snapshot *m, FILE *out, bool backend)
{
	const char *name = backend ? P "backend_connections_failed_total" :
				     P "connections_failed_total";
	struct label l[LABELS_MAX] = {};
	int d;

	metrics__family(
		out, name, "counter",
		backend ?
			"TCP connection attempts that never got established, per backend and reason." :
			"TCP connection attempts that never got established, per service and reason.");
	for (size_t i = 0; i < (backend ? m->nbackends : m->nservices); i++) {
		const struct telemetry_conn *c;

		if (backend) {
			if (!m->backends[i].has_telemetry ||
			    !m->backends[i].tel.seen[SLUICE_TELEM_OUTBOUND])
				continue;
			metrics__be_labels(m, &m->backends[i], l);
			c = &m->backends[i].tel.conn[SLUICE_TELEM_OUTBOUND];
			d = 2;
		} else {
			if (!m->services[i].has_telemetry ||
			    !m->services[i].tel.seen[SLUICE_TELEM_OUTBOUND])
				continue;
			l[0] = (struct label){ "service", m->services[i].name };
			c = &m->services[i].tel.conn[SLUICE_TELEM_OUTBOUND];
			d = 1;
		}
		/* only a connecting (outbound) socket can fail */
		l[d] = (struct label){ "direction", telemetry__dir_name(SLUICE_TELEM_OUTBOUND) };
		for (size_t r = 0; r < NFAIL; r++) {
			l[d + 1] =
				(struct label){ "reason", telemetry__reason_name(fail_reasons[r]) };
			metrics__u64_sample(out, name, l, c->failed[fail_reasons[r]]);
		}
	}
}

static void metrics__active(const struct metrics_snapshot *m, FILE *out)
{
	struct label l[LABELS_MAX] = {};

	metrics__family(
		out, P "connections_active", "gauge",
		"TCP connections open now that opened since the agent started, per service and direction.");
	for (size_t i = 0; i < m->nservices; i++) {
		const struct metrics_service *s = &m->services[i];

		if (!s->has_telemetry)
			continue;
		l[0] = (struct label){ "service", s->name };
		for (int dir = 0; dir < SLUICE_TELEM_DIR__MAX; dir++) {
			const struct telemetry_conn *c = &s->tel.conn[dir];

			if (!s->tel.seen[dir])
				continue;
			l[1] = (struct label){ "direction", telemetry__dir_name(dir) };
			metrics__u64_sample(out, P "connections_active", l,
					    c->opened > c->closed ? c->opened - c->closed : 0);
		}
	}
}

static const struct {
	enum telemetry_hist_kind kind;
	const char *name, *help;
} hist_families[] = {
	{ TELEMETRY_HIST_RTT, P "connection_rtt_seconds",
	  "Smoothed TCP round-trip time of a connection at close, per service and direction." },
	{ TELEMETRY_HIST_DURATION, P "connection_duration_seconds",
	  "Lifetime of a TCP connection from connect() or accept to close, per service and direction." },
	{ TELEMETRY_HIST_BYTES, P "connection_bytes",
	  "Bytes sent (acknowledged) plus received over a TCP connection, at close, per service and direction." },
};

static void metrics__hist(FILE *out, const char *name, const struct telemetry_hist_spec *spec,
			  const struct telemetry_hist *h, struct label *l, int d)
{
	char le[32], val[32];
	__u64 cum = 0;

	for (unsigned int b = 0; b <= spec->nbounds; b++) {
		cum += h->buckets[b];
		if (b < spec->nbounds)
			metrics__scaled(le, sizeof(le), spec->bounds[b], spec->per_unit);
		else
			snprintf(le, sizeof(le), "+Inf");
		l[d] = (struct label){ "le", le };
		metrics__sample(out, name, "_bucket", l, metrics__u64(val, sizeof(val), cum));
	}
	l[d] = (struct label){ NULL, NULL };
	metrics__sample(out, name, "_sum", l,
			metrics__scaled(val, sizeof(val), h->sum, spec->per_unit));
	metrics__sample(out, name, "_count", l, metrics__u64(val, sizeof(val), h->count));
}

static void metrics__histograms(const struct metrics_snapshot *m, FILE *out)
{
	for (size_t f = 0; f < sizeof(hist_families) / sizeof(hist_families[0]); f++) {
		const struct telemetry_hist_spec *spec =
			telemetry__hist_spec(hist_families[f].kind);

		metrics__family(out, hist_families[f].name, "histogram", hist_families[f].help);
		for (size_t i = 0; i < m->nservices; i++) {
			const struct metrics_service *s = &m->services[i];
			struct label l[LABELS_MAX] = { { "service", s->name } };

			if (!s->has_telemetry)
				continue;
			for (int dir = 0; dir < SLUICE_TELEM_DIR__MAX; dir++) {
				if (!s->tel.seen[dir])
					continue;
				l[1] = (struct label){ "direction", telemetry__dir_name(dir) };
				metrics__hist(out, hist_families[f].name, spec,
					      &s->tel.hist[dir][hist_families[f].kind], l, 2);
			}
		}
	}
}

static void metrics__telemetry(const struct metrics_snapshot *m, FILE *out)
{
	for (size_t f = 0; f < sizeof(conn_fields) / sizeof(conn_fields[0]); f++)
		metrics__conn_family(m, out, &conn_fields[f], false);
	metrics__fail_family(m, out, false);
	metrics__active(m, out);
	metrics__histograms(m, out);
	for (size_t f = 0;
	     !m->no_backend_series && f < sizeof(conn_fields) / sizeof(conn_fields[0]); f++)
		metrics__conn_family(m, out, &conn_fields[f], true);
	if (!m->no_backend_series)
		metrics__fail_family(m, out, true);
	for (unsigned int i = 0; i < TELEMETRY_COUNTERS; i++) {
		struct telemetry_counter c = telemetry__counter(&m->telemetry, i);
		char name[96];

		snprintf(name, sizeof(name), P "%s", c.metric);
		metrics__family(out, name, "counter", c.help);
		metrics__u64_sample(out, name, NULL, c.value);
	}
}

static void metrics__sock(const struct metrics_snapshot *m, FILE *out)
{
	struct label l[LABELS_MAX] = { { "reason", NULL } };

	metrics__family(out, P "socket_lb_operations_total", "counter",
			"Socket-level load balancing operations (cgroup hooks), by kind.");
	for (int i = 0; i < SLUICE_SOCK_CNT__MAX; i++) {
		l[0].value = sluice_sock__counter_name(i);
		metrics__u64_sample(out, P "socket_lb_operations_total", l, m->sock.lb[i]);
	}
	metrics__family(out, P "redirected_messages_total", "counter",
			"Messages handed by sk_msg straight to the peer socket on this node.");
	metrics__u64_sample(out, P "redirected_messages_total", NULL,
			    m->sock.redir[SLUICE_REDIR_CNT_MSGS]);
	metrics__family(out, P "redirected_bytes_total", "counter",
			"Bytes handed by sk_msg straight to the peer socket on this node.");
	metrics__u64_sample(out, P "redirected_bytes_total", NULL,
			    m->sock.redir[SLUICE_REDIR_CNT_BYTES]);
	metrics__family(
		out, P "redirect_passed_messages_total", "counter",
		"Messages of redirect-map sockets that took the TCP/IP path (peer not in the map).");
	metrics__u64_sample(out, P "redirect_passed_messages_total", NULL,
			    m->sock.redir[SLUICE_REDIR_CNT_PASS]);
	metrics__family(out, P "redirect_sockets", "gauge",
			"Sockets in the same-node redirect map now (two per connection).");
	metrics__u64_sample(out, P "redirect_sockets", NULL, m->sock.redir_sockets);
}

static void metrics__maps(const struct metrics_snapshot *m, FILE *out)
{
	struct label l[LABELS_MAX] = { { "map", NULL } };

	metrics__family(out, P "map_entries", "gauge", "Entries in a BPF map now.");
	for (size_t i = 0; i < m->nmaps; i++) {
		l[0].value = m->maps[i].name;
		metrics__u64_sample(out, P "map_entries", l, m->maps[i].entries);
	}
	metrics__family(out, P "map_capacity", "gauge", "Maximum entries of a BPF map.");
	for (size_t i = 0; i < m->nmaps; i++) {
		l[0].value = m->maps[i].name;
		metrics__u64_sample(out, P "map_capacity", l, m->maps[i].capacity);
	}
	metrics__family(out, P "metrics_backend_series", "gauge",
			"1 when this scrape has the per-backend series (sluice_backend_*); 0 when "
			"meshd --metrics-backends is off, or auto with more than 10000 backends.");
	metrics__sample(out, P "metrics_backend_series", "", NULL,
			m->no_backend_series ? "0" : "1");
}

void metrics__service_info(FILE *out, const struct metrics_svc_info *info, size_t n)
{
	struct label l[LABELS_MAX] = {
		{ "service", NULL }, { "name", NULL }, { "namespace", NULL }, { "source", NULL }
	};
	char ns[256];

	if (!n)
		return;
	metrics__family(out, P "service_info", "gauge",
			"Always 1; names the service label: its name, Kubernetes namespace "
			"(\"\" for others) and source.");
	for (size_t i = 0; i < n; i++) {
		const char *slash = strchr(info[i].name, '/');

		ns[0] = '\0';
		if (slash && !strcmp(info[i].source, "kubernetes"))
			snprintf(ns, sizeof(ns), "%.*s", (int)(slash - info[i].name), info[i].name);
		l[0].value = info[i].service;
		l[1].value = info[i].name;
		l[2].value = ns;
		l[3].value = info[i].source;
		metrics__sample(out, P "service_info", "", l, "1");
	}
}

int metrics__write(const struct metrics_snapshot *m, FILE *out)
{
	metrics__header(m, out);
	metrics__datapath(m, out);
	metrics__services(m, out);
	metrics__policy(m, out);
	metrics__backends(m, out);
	metrics__health(m, out);
	if (m->has_telemetry)
		metrics__telemetry(m, out);
	if (m->has_sock)
		metrics__sock(m, out);
	metrics__maps(m, out);
	return ferror(out) ? -EIO : 0;
}
