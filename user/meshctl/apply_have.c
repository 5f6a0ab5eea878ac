// SPDX-License-Identifier: MIT
/*
 * apply_have.c - the services meshd has before an apply, for the backend
 * lines of apply's diff (apply.c), read from `service.list` as it arrives:
 * one service's text and tree at a time, kept as a compact model.
 *
 * Contract: have__load() is best effort and silent: any failure (no
 * agent, a refusal, a malformed or oversized answer, the timeout) leaves
 * the list unknown, and the diff then shows no backend detail for
 * updates, as before. Bounds: SLUICE_API_MAX_MSG bytes in all, one
 * service's text at most HAVE_ELEM_MAX bytes, at most SLUICE_MAX_SERVICES
 * services, nesting at most HAVE_DEPTH_MAX, the text around the services
 * at most HAVE_OUTER_MAX bytes, and --timeout for the whole answer. Memory:
 * the model of meshd's services (what the backend lines need: name, key,
 * backends and weights), not the answer's text (with statistics, ~3 KB a
 * service: 90 MB at 30k) or its tree.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "api.h"
#include "desired.h"
#include "sluice.h"

#include "apply.h"
#include "meshctl.h"
#include "output.h"

#define HAVE_ELEM_MAX (8u << 20)
#define HAVE_OUTER_MAX (64u << 10)
#define HAVE_DEPTH_MAX 64
#define HAVE_KEY_MAX 16

struct buf {
	char *p;
	size_t len, cap, max;
};

static int buf__put(struct buf *b, char c)
{
	char *grown;

	if (b->len + 1 >= b->cap) {
		if (b->cap >= b->max)
			return -E2BIG;
		b->cap = b->cap ? 2 * b->cap : 4096;
		grown = realloc(b->p, b->cap);
		if (!grown)
			return -ENOMEM;
		b->p = grown;
	}
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
	return 0;
}

/* A JSON text's structure, a byte at a time: the members "data" then
 * "services" of the top object are followed, the elements of that array
 * handed out whole, everything else kept in outer. */
struct split {
	int depth;
	bool in_str, esc, key, capturing, done;
	char type[4];              /* '{' or '[' at depth 1..3 */
	bool want_key[4];          /* in an object, the next string is a key */
	char cur[4][HAVE_KEY_MAX]; /* the last key at depth 1..3 */
	size_t klen;
	struct buf elem, outer;
	struct have *h;
};

static bool split__in_list(const struct split *s)
{
	return s->depth == 3 && s->type[1] == '{' && !strcmp(s->cur[1], "data") &&
	       s->type[2] == '{' && !strcmp(s->cur[2], "services") && s->type[3] == '[';
}

/* One service of the list (NUL-terminated text) into h's model; 0 or a
 * negative errno. */
static int have__add(struct have *h, const char *text)
{
	struct json_object *o = json_tokener_parse(text), *bes;
	struct desired_service *svc, *grown;
	char ref[ARGS_SVC_LEN];
	int err = -EINVAL;

	if (!o || !json_object_is_type(o, json_type_object))
		goto out;
	if (h->d.nservices >= SLUICE_MAX_SERVICES) {
		err = -E2BIG;
		goto out;
	}
	if (h->d.nservices == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 256;
		grown = realloc(h->d.services, h->cap * sizeof(*grown));
		if (!grown) {
			err = -ENOMEM;
			goto out;
		}
		h->d.services = grown;
	}
	svc = &h->d.services[h->d.nservices];
	memset(svc, 0, sizeof(*svc));
	if (desired__parse_svc_ref(js__svc_ref(o, ref, sizeof(ref)), &svc->vip, &svc->port,
				   &svc->proto))
		goto out;
	snprintf(svc->name, sizeof(svc->name), "%s", js__str(o, "name", ""));
	bes = js__get(o, "backends");
	if (js__len(bes) > SLUICE_MAX_BACKENDS)
		goto out;
	if (js__len(bes)) {
		svc->backends = calloc(js__len(bes), sizeof(*svc->backends));
		if (!svc->backends) {
			err = -ENOMEM;
			goto out;
		}
	}
	h->d.nservices++; /* desired__free() frees its backends from here */
	for (size_t i = 0; i < js__len(bes); i++) {
		struct json_object *b = js__idx(bes, i);
		struct desired_backend *be = &svc->backends[svc->nbackends];
		uint64_t w = js__u64(b, "weight"), port = js__u64(b, "port");

		if (sluice_addr__parse(&be->addr, js__str(b, "address", "")) || port > 65535)
			goto out;
		be->port = (__u16)port;
		be->weight = w > 65535 ? 65535 : (__u16)w;
		svc->nbackends++;
	}
	err = 0;
out:
	json_object_put(o);
	return err;
}

/* Feed one byte; 0, 1 when the message ended, or a negative errno. */
static int split__byte(struct split *s, char c)
{
	bool in_list = !s->in_str && split__in_list(s);
	int err = 0;

	if (!s->capturing && in_list && !strchr(" \t\r\n,]", c)) {
		if (c != '{')
			return -EINVAL; /* a service is an object */
		s->capturing = true;
		s->elem.len = 0;
	}
	if (s->in_str) {
		if (s->esc)
			s->esc = false;
		else if (c == '\\')
			s->esc = true;
		else if (c == '"')
			s->in_str = s->key = false;
		else if (s->key && s->klen + 1 < HAVE_KEY_MAX)
			s->cur[s->depth][s->klen++] = c;
	} else {
		switch (c) {
		case '"':
			s->in_str = true;
			if (s->depth >= 1 && s->depth <= 3 && s->want_key[s->depth]) {
				s->key = true;
				s->klen = 0;
				memset(s->cur[s->depth], 0, HAVE_KEY_MAX);
				s->want_key[s->depth] = false;
			}
			break;
		case ',':
			if (s->depth >= 1 && s->depth <= 3 && s->type[s->depth] == '{')
				s->want_key[s->depth] = true;
			break;
		case '{':
		case '[':
			if (++s->depth > HAVE_DEPTH_MAX)
				return -EINVAL;
			if (s->depth <= 3) {
				s->type[s->depth] = c;
				s->want_key[s->depth] = c == '{';
				memset(s->cur[s->depth], 0, HAVE_KEY_MAX);
			}
			break;
		case '}':
		case ']':
			if (--s->depth < 0)
				return -EINVAL;
			break;
		case '\n':
			if (!s->depth)
				return 1;
			break;
		default:
			break;
		}
	}
	if (s->capturing) {
		err = buf__put(&s->elem, c);
		if (!err && !s->in_str && s->depth == 3) {
			s->capturing = false;
			err = have__add(s->h, s->elem.p);
		}
	} else if (!(in_list && c == ',')) {
		err = buf__put(&s->outer, c);
	}
	return err;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The answer's text around the services: {"ok": true, "data": {...}}. */
static bool have__ok(const struct split *s)
{
	struct json_object *o = s->outer.p ? json_tokener_parse(s->outer.p) : NULL;
	bool ok = json_object_get_boolean(js__get(o, "ok")) &&
		  json_object_is_type(js__get(js__get(o, "data"), "services"), json_type_array);

	json_object_put(o);
	return ok;
}

static int have__read(struct have *h, int fd)
{
	struct split s = { .h = h };
	long long deadline = g_opts.timeout_ms > 0 ? now_ms() + g_opts.timeout_ms : -1;
	size_t total = 0;
	char chunk[65536];
	int err = 0;

	s.elem.max = HAVE_ELEM_MAX;
	s.outer.max = HAVE_OUTER_MAX;
	while (!err) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline < 0 ? -1 : deadline - now_ms();
		ssize_t n;

		if (deadline >= 0 && left <= 0) {
			err = -ETIMEDOUT;
			break;
		}
		if (poll(&p, 1, left > 1000000 ? 1000000 : (int)left) < 0 && errno != EINTR) {
			err = -errno;
			break;
		}
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			err = n ? -errno : -ENODATA;
			break;
		}
		if ((total += (size_t)n) > SLUICE_API_MAX_MSG) {
			err = -EMSGSIZE;
			break;
		}
		for (ssize_t i = 0; i < n && !err; i++)
			err = split__byte(&s, chunk[i]);
	}
	if (err == 1)
		err = have__ok(&s) ? 0 : -EBADMSG;
	free(s.elem.p);
	free(s.outer.p);
	return err;
}

void have__load(struct have *h)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char req[] = "{\"op\":\"service.list\"}\n";
	int fd;

	memset(h, 0, sizeof(*h));
	desired__init(&h->d);
	if (strlen(g_opts.socket) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, g_opts.socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1) &&
	    !shutdown(fd, SHUT_WR) && !have__read(h, fd)) {
		h->known = true;
		desired__index_init(&h->ix, &h->d);
	} else {
		desired__free(&h->d);
		desired__init(&h->d);
	}
	close(fd);
}

struct json_object *have__find(const struct have *h, const char *ref)
{
	const struct desired_service *svc;
	struct sluice_addr vip;
	__u16 port;
	__u8 proto;

	if (!h->known || desired__parse_svc_ref(ref, &vip, &port, &proto))
		return NULL;
	svc = desired__index_find(&h->ix, &vip, port, proto);
	return svc ? desired__service_to_json(svc) : NULL;
}

void have__free(struct have *h)
{
	if (h->known)
		desired__index_free(&h->ix);
	desired__free(&h->d);
	memset(h, 0, sizeof(*h));
}
