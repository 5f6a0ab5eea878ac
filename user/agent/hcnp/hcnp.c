// SPDX-License-Identifier: MIT
/*
 * hcnp.c - the healthCheckNodePort servers (see hcnp.h).
 *
 * Each port is one http.h server (libmicrohttpd in external-epoll mode);
 * their epoll fds sit in one epoll fd of ours, so the agent's loop watches
 * one descriptor however many Services ask for a health port.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "hcnp.h"
#include "http.h"
#include "internal.h"

struct hcnp_server {
	struct hcnp *owner;
	struct http *h;
	struct http_route route;
	struct k8s_hc hc;
};

static void hcnp__log(const struct hcnp *s, bool error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void hcnp__log(const struct hcnp *s, bool error, const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (s->opts.log)
		s->opts.log(error, buf, s->opts.ctx);
	else
		fprintf(stderr, "%s\n", buf);
}

/* A JSON string as Go's %q writes a DNS name: quoted, '"' and '\' escaped
 * (names from the API server never hold anything else). */
static int json_str(char *buf, size_t len, const char *s)
{
	size_t o = 0;

	if (len < 3)
		return -ENOSPC;
	buf[o++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int n;

		if (c == '"' || c == '\\')
			n = snprintf(buf + o, len - o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			n = snprintf(buf + o, len - o, "\\x%02x", c);
		else
			n = snprintf(buf + o, len - o, "%c", c);
		if (n < 0 || (size_t)n >= len - o)
			return -ENOSPC;
		o += n;
	}
	if (o + 2 > len)
		return -ENOSPC;
	buf[o++] = '"';
	buf[o] = '\0';
	return (int)o;
}

int hcnp__body(char *buf, size_t len, const char *ns, const char *name, __u32 local_endpoints,
	       bool healthy)
{
	char qns[600], qname[600];
	int n;

	if (json_str(qns, sizeof(qns), ns) < 0 || json_str(qname, sizeof(qname), name) < 0)
		return -ENOSPC;
	n = snprintf(buf, len,
		     "{\n\t\"service\": {\n\t\t\"namespace\": %s,\n\t\t\"name\": %s\n\t},\n"
		     "\t\"localEndpoints\": %u,\n\t\"serviceProxyHealthy\": %s\n}",
		     qns, qname, local_endpoints, healthy ? "true" : "false");
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

static int hcnp__handle(void *ctx, FILE *out)
{
	struct hcnp_server *sv = ctx;
	bool healthy = sv->owner->healthy;
	char body[1536];
	int n;

	n = hcnp__body(body, sizeof(body), sv->hc.ns, sv->hc.name, sv->hc.local_endpoints, healthy);
	if (n < 0) {
		sluice__set_err("name too long");
		return n;
	}
	fwrite(body, 1, n, out);
	return sv->hc.local_endpoints && healthy ? 0 : 503;
}

int hcnp__init(struct hcnp *s, const struct hcnp_opts *opts)
{
	memset(s, 0, sizeof(*s));
	s->opts = *opts;
	s->healthy = true;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		sluice__set_err("healthCheckNodePort servers: epoll: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static void hcnp__stop_one(struct hcnp *s, struct hcnp_server *sv)
{
	if (sv->h) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, http__fd(sv->h), NULL);
		http__stop(sv->h);
	}
	free(sv);
}

void hcnp__free(struct hcnp *s)
{
	for (__u32 i = 0; i < s->n; i++)
		hcnp__stop_one(s, s->v[i]);
	free(s->v);
	free(s->failed);
	free(s->prev_failed);
	s->failed = s->prev_failed = NULL;
	if (s->epfd >= 0)
		close(s->epfd);
	s->v = NULL;
	s->n = 0;
	s->epfd = -1;
}

int hcnp__fd(const struct hcnp *s)
{
	return s->epfd;
}

static int hcnp__listen(struct hcnp_server *sv, const char *bind)
{
	return http__start(&sv->h, &(struct http_opts){ .bind = bind,
							.routes = &sv->route,
							.nroutes = 1,
							.max_conns = HCNP_MAX_CONNS,
							.margin = HCNP_CONN_MARGIN,
							.timeout_s = HCNP_IDLE_S,
							.request_ms = HCNP_REQUEST_MS,
							.nosniff = true,
							.no_gzip = true,
							.what = "healthCheckNodePort server" });
}

static bool hcnp__was_failing(const struct hcnp *s, __u16 port)
{
	for (__u32 i = 0; i < s->nprev_failed; i++)
		if (s->prev_failed[i] == port)
			return true;
	return false;
}

static void hcnp__note_failed(struct hcnp *s, __u16 port)
{
	__u16 *v = realloc(s->failed, (s->nfailed + 1) * sizeof(*v));

	if (!v)
		return; /* only the log line's dedup suffers */
	s->failed = v;
	s->failed[s->nfailed++] = port;
}

static struct hcnp_server *hcnp__start_one(struct hcnp *s, const struct k8s_hc *hc)
{
	struct epoll_event e = { .events = EPOLLIN };
	struct hcnp_server *sv = calloc(1, sizeof(*sv));
	char bind[96];
	int err;

	if (!sv) {
		hcnp__log(s, true, "healthCheckNodePort %u (%s/%s): out of memory", hc->port,
			  hc->ns, hc->name);
		return NULL;
	}
	sv->owner = s;
	sv->hc = *hc;
	sv->route = (struct http_route){
		.path = NULL, .content_type = "application/json", .fn = hcnp__handle, .ctx = sv
	};
	if (s->opts.host && *s->opts.host)
		snprintf(bind, sizeof(bind), strchr(s->opts.host, ':') ? "[%s]:%u" : "%s:%u",
			 s->opts.host, hc->port);
	else
		snprintf(bind, sizeof(bind), ":%u", hc->port);
	err = hcnp__listen(sv, bind);
	/* a node booted with ipv6.disable=1: every IPv4 address then */
	if (err == -EAFNOSUPPORT && bind[0] == ':') {
		snprintf(bind, sizeof(bind), "0.0.0.0:%u", hc->port);
		err = hcnp__listen(sv, bind);
	}
	if (!err) {
		e.data.ptr = sv;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, http__fd(sv->h), &e)) {
			err = -errno;
			sluice__set_err("epoll: %s", strerror(errno));
		}
	}
	if (err) {
		/* retried every tick: said once per port until it is served */
		if (!hcnp__was_failing(s, hc->port))
			hcnp__log(s, true, "healthCheckNodePort %u of Service %s/%s not served: %s",
				  hc->port, hc->ns, hc->name, sluice__errmsg());
		hcnp__note_failed(s, hc->port);
		if (sv->h)
			http__stop(sv->h);
		free(sv);
		return NULL;
	}
	hcnp__log(s, false, "healthCheckNodePort %u of Service %s/%s: serving on %s", hc->port,
		  hc->ns, hc->name, bind);
	return sv;
}

static const struct k8s_hc *set__find(const struct k8s_hc_set *set, __u16 port)
{
	for (__u32 i = 0; i < set->n; i++)
		if (set->v[i].port == port)
			return &set->v[i];
	return NULL;
}

int hcnp__sync(struct hcnp *s, const struct k8s_hc_set *set)
{
	struct hcnp_server **v = calloc(set->n + 1, sizeof(*v));
	__u32 m = 0;
	int failed = 0;

	if (!v) {
		hcnp__log(s, true, "healthCheckNodePort servers: out of memory");
		return (int)set->n;
	}
	/* keep (and update) the servers whose port stays, stop the others */
	for (__u32 i = 0; i < s->n; i++) {
		const struct k8s_hc *hc = set__find(set, s->v[i]->hc.port);

		if (!hc) {
			hcnp__log(s, false, "healthCheckNodePort %u of Service %s/%s: stopped",
				  s->v[i]->hc.port, s->v[i]->hc.ns, s->v[i]->hc.name);
			hcnp__stop_one(s, s->v[i]);
			continue;
		}
		s->v[i]->hc = *hc;
		v[m++] = s->v[i];
	}
	free(s->v);
	s->v = v;
	s->n = m;
	free(s->prev_failed);
	s->prev_failed = s->failed;
	s->nprev_failed = s->nfailed;
	s->failed = NULL;
	s->nfailed = 0;
	for (__u32 i = 0; i < set->n; i++) {
		bool have = false;

		for (__u32 j = 0; j < s->n && !have; j++)
			have = s->v[j]->hc.port == set->v[i].port;
		if (have)
			continue;
		if (s->n >= HCNP_MAX_SERVERS) {
			if (!hcnp__was_failing(s, set->v[i].port))
				hcnp__log(
					s, true,
					"healthCheckNodePort %u of Service %s/%s not served: more "
					"than %u health ports",
					set->v[i].port, set->v[i].ns, set->v[i].name,
					HCNP_MAX_SERVERS);
			hcnp__note_failed(s, set->v[i].port);
			failed++;
			continue;
		}
		s->v[s->n] = hcnp__start_one(s, &set->v[i]);
		if (s->v[s->n])
			s->n++;
		else
			failed++;
	}
	return failed;
}

void hcnp__set_healthy(struct hcnp *s, bool healthy)
{
	s->healthy = healthy;
}

void hcnp__run(struct hcnp *s)
{
	struct epoll_event evs[16];

	/* only to learn nothing is pending; every server runs for its deadlines */
	if (s->n)
		epoll_wait(s->epfd, evs, 16, 0);
	for (__u32 i = 0; i < s->n; i++)
		http__run(s->v[i]->h);
}

int hcnp__timeout_ms(const struct hcnp *s)
{
	int ms = -1;

	for (__u32 i = 0; i < s->n; i++) {
		int t = http__timeout_ms(s->v[i]->h);

		if (t >= 0 && (ms < 0 || t < ms))
			ms = t;
	}
	return ms;
}

__u32 hcnp__count(const struct hcnp *s)
{
	return s->n;
}
