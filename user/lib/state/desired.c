// SPDX-License-Identifier: MIT
/*
 * desired.c - the desired-state model: JSON (and YAML, via yamljson.h) into
 * struct desired and back, and its validation (see desired.h).
 *
 * Contract: parsing is strict - every unknown field, wrong type, malformed
 * address or out-of-range number is rejected - because a typo in a config
 * file must not silently become "no backends". Each error names the path
 * of the field ("services[1].backends[0].port") and the value found. The
 * semantic rules live in one place (desired__check_service and
 * desired__check_all) so a model parsed from text and one edited in code
 * by the agent obey exactly the same rules.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>

#include "desired.h"
#include "internal.h"
#include "yamljson.h"

#define PATH_LEN 96
#define VAL_LEN 64
/* A desired-state file is text a person wrote; 64 MiB is far beyond any. */
#define DESIRED_FILE_MAX (64u << 20)

static const char *const top_fields[] = { "services", NULL };
static const char *const svc_fields[] = { "name",   "vip",      "port", "protocol",
					  "source", "backends", NULL };
static const char *const be_fields[] = { "address", "port", "weight", NULL };

/* "path: message"; always -EINVAL, so callers can `return desired__err(...)`. */
static int desired__err(const char *path, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int desired__err(const char *path, const char *fmt, ...)
{
	char msg[SLUICE_ERRMSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sluice__set_err("%s: %s", path, msg);
	return -EINVAL;
}

/* Paths are short ("services[16383].backends[1023].address" is the
 * longest); through va_list so the compiler does not guess otherwise. */
static void desired__pathf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void desired__pathf(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, PATH_LEN, fmt, ap);
	va_end(ap);
}

/* A JSON value as the user wrote it, shortened for messages. */
static const char *desired__jtext(struct json_object *v, char *buf, size_t len)
{
	const char *s;
	size_t n;

	s = v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE) :
		"null";
	n = strlen(s);
	if (n < len)
		memcpy(buf, s, n + 1);
	else
		snprintf(buf, len, "%.*s...", (int)len - 4, s);
	return buf;
}

static const char *desired__jtype(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_boolean:
		return "boolean";
	case json_type_double:
		return "number";
	case json_type_int:
		return "integer";
	case json_type_string:
		return "string";
	case json_type_object:
		return "object";
	case json_type_array:
		return "list";
	default:
		return "null";
	}
}

static unsigned int desired__lev(const char *a, const char *b)
{
	unsigned int row[33], la = strlen(a), lb = strlen(b);

	if (la > 32 || lb > 32)
		return 99;
	for (unsigned int j = 0; j <= lb; j++)
		row[j] = j;
	for (unsigned int i = 1; i <= la; i++) {
		unsigned int diag = row[0], tmp;

		row[0] = i;
		for (unsigned int j = 1; j <= lb; j++) {
			unsigned int cost = (a[i - 1] | 0x20) != (b[j - 1] | 0x20);

			tmp = row[j];
			row[j] = diag + cost;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (tmp + 1 < row[j])
				row[j] = tmp + 1;
			diag = tmp;
		}
	}
	return row[lb];
}

/* The known field a typo most likely meant: close in spelling, or a
 * prefix of it ("addr" -> "address", "proto" -> "protocol"). */
static const char *desired__suggest(const char *key, const char *const *fields)
{
	const char *best = NULL;
	unsigned int best_d = 3, d;

	for (const char *const *f = fields; *f; f++) {
		d = desired__lev(key, *f);
		if (strlen(key) >= 3 && !strncasecmp(key, *f, strlen(key)))
			d = 1;
		if (d < best_d) {
			best_d = d;
			best = *f;
		}
	}
	return best;
}

static int desired__check_fields(struct json_object *obj, const char *path,
				 const char *const *fields, const char *what)
{
	struct json_object_iterator it = json_object_iter_begin(obj);
	struct json_object_iterator end = json_object_iter_end(obj);
	char fpath[PATH_LEN], list[128] = "";
	const char *hint;

	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *key = json_object_iter_peek_name(&it);
		bool known = false;

		for (const char *const *f = fields; *f && !known; f++)
			known = !strcmp(key, *f);
		if (known)
			continue;
		if (path)
			desired__pathf(fpath, "%s.%.40s", path, key);
		else
			desired__pathf(fpath, "%.40s", key);
		hint = desired__suggest(key, fields);
		if (hint)
			return desired__err(fpath, "unknown field (did you mean '%s'?)", hint);
		for (const char *const *f = fields; *f; f++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 f == fields ? "" : ", ", *f);
		return desired__err(fpath, "unknown field (%s has: %s)", what, list);
	}
	return 0;
}

static int desired__want_object(struct json_object *v, const char *path)
{
	char val[VAL_LEN];

	if (json_object_is_type(v, json_type_object))
		return 0;
	return desired__err(path, "expected an object, got %s %s", desired__jtype(v),
			    desired__jtext(v, val, sizeof(val)));
}

/* The field's value; NULL when absent or null (json-c stores null as NULL). */
static struct json_object *desired__field(struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;

	json_object_object_get_ex(obj, key, &v);
	return v;
}

static int desired__get_int(struct json_object *v, const char *path, long long min, long long max,
			    long long *out)
{
	char val[VAL_LEN];
	long long x;
	double d;

	desired__jtext(v, val, sizeof(val));
	switch (json_object_get_type(v)) {
	case json_type_int:
		x = json_object_get_int64(v); /* clamps beyond int64: still out of range */
		break;
	case json_type_double:
		d = json_object_get_double(v);
		if (!isfinite(d) || floor(d) != d)
			return desired__err(path, "%s is not an integer", val);
		if (d < (double)min || d > (double)max)
			return desired__err(path, "%s is out of range %lld-%lld", val, min, max);
		x = (long long)d;
		break;
	default:
		return desired__err(path, "expected an integer %lld-%lld, got %s %s", min, max,
				    desired__jtype(v), val);
	}
	if (x < min || x > max)
		return desired__err(path, "%s is out of range %lld-%lld", val, min, max);
	*out = x;
	return 0;
}

static int desired__get_string(struct json_object *v, const char *path, const char *what,
			       const char **out)
{
	char val[VAL_LEN];

	if (!json_object_is_type(v, json_type_string))
		return desired__err(path, "expected %s, got %s %s", what, desired__jtype(v),
				    desired__jtext(v, val, sizeof(val)));
	*out = json_object_get_string(v);
	return 0;
}

static int desired__get_addr(struct json_object *v, const char *path, struct sluice_addr *a)
{
	char msg[SLUICE_ERRMSG_LEN];
	struct sluice_addr tmp;
	const char *s;
	__u16 port;
	int err;

	err = desired__get_string(v, path, "an IP address (string)", &s);
	if (err)
		return err;
	if (!sluice_addr__parse(a, s))
		return 0;
	snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
	/* "10.0.1.2:8080" is a natural thing to write; say where the port goes */
	if (!sluice_addr__parse_port(&tmp, &port, s))
		return desired__err(path, "%s (write the port in 'port')", msg);
	return desired__err(path, "%s", msg);
}

static void desired__path(char *buf, const char *base, const char *field)
{
	desired__pathf(buf, "%s.%s", base, field);
}

/* base.field, which must be there: an IP address ("missing (hint)"). */
static int desired__req_addr(struct json_object *o, const char *base, const char *field,
			     const char *hint, struct sluice_addr *out)
{
	char path[PATH_LEN];
	struct json_object *v = desired__field(o, field);

	desired__path(path, base, field);
	if (!v)
		return desired__err(path, "missing (%s)", hint);
	return desired__get_addr(v, path, out);
}

/* base.field, which must be there: a port 1-65535. */
static int desired__req_port(struct json_object *o, const char *base, const char *field, __u16 *out)
{
	char path[PATH_LEN];
	struct json_object *v = desired__field(o, field);
	long long x;
	int err;

	desired__path(path, base, field);
	if (!v)
		return desired__err(path, "missing (1-65535)");
	err = desired__get_int(v, path, 1, 65535, &x);
	if (!err)
		*out = (__u16)x;
	return err;
}

static const char *desired__family(__u8 family)
{
	return family == SLUICE_AF_INET ? "IPv4" : family == SLUICE_AF_INET6 ? "IPv6" : "unknown";
}

static bool desired__addr_unspec(const struct sluice_addr *a)
{
	if (a->family == SLUICE_AF_INET)
		return !a->addr[0];
	return !(a->addr[0] | a->addr[1] | a->addr[2] | a->addr[3]);
}

static int desired__cmp_addr(const struct sluice_addr *a, const struct sluice_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	/* network order: memcmp sorts numerically */
	return memcmp(a->addr, b->addr, (a->family == SLUICE_AF_INET ? 1 : 4) * sizeof(__u32));
}

int desired__cmp_key(const struct desired_service *a, const struct desired_service *b)
{
	int c = desired__cmp_addr(&a->vip, &b->vip);

	if (c)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return a->proto < b->proto ? -1 : a->proto > b->proto;
}

struct desired_idx {
	const void *item;
	__u32 idx;
};

static int desired__cmp_svc_idx(const void *x, const void *y)
{
	const struct desired_idx *a = x, *b = y;
	int c = desired__cmp_key(a->item, b->item);

	return c ? c : (a->idx < b->idx ? -1 : a->idx > b->idx);
}

static int desired__cmp_be_idx(const void *x, const void *y)
{
	const struct desired_idx *a = x, *b = y;
	const struct desired_backend *p = a->item, *q = b->item;
	int c = desired__cmp_addr(&p->addr, &q->addr);

	if (c)
		return c;
	if (p->port != q->port)
		return p->port < q->port ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/*
 * Sort (item, index) pairs; equal neighbours are duplicates. Reports the
 * duplicate that comes first in the user's order: the smallest "later"
 * index, paired with its earlier twin. Returns 1 and sets *first and *dup
 * when there is a duplicate, 0 when all are distinct, -ENOMEM.
 */
static int desired__find_dup(const void *items, size_t size, __u32 n,
			     int (*cmp)(const void *, const void *), __u32 *first, __u32 *dup)
{
	struct desired_idx *v;
	bool found = false;

	if (n < 2)
		return 0;
	v = malloc(n * sizeof(*v));
	if (!v) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (__u32 i = 0; i < n; i++)
		v[i] = (struct desired_idx){ .item = (const char *)items + (size_t)i * size,
					     .idx = i };
	qsort(v, n, sizeof(*v), cmp);
	for (__u32 i = 1; i < n; i++) {
		struct desired_idx a = v[i - 1], b = v[i];

		/* compare keys only: make the indexes equal */
		a.idx = b.idx;
		if (cmp(&a, &b))
			continue;
		if (!found || v[i].idx < *dup) {
			/* the earliest twin of a run is the one sorted first */
			__u32 k = i - 1;

			while (k > 0) {
				struct desired_idx p = v[k - 1];

				p.idx = v[k].idx;
				if (cmp(&p, &v[k]))
					break;
				k--;
			}
			*first = v[k].idx;
			*dup = v[i].idx;
			found = true;
		}
	}
	free(v);
	return found;
}

static int desired__check_name(const struct desired_service *svc, const char *base)
{
	char path[PATH_LEN];
	size_t len = strnlen(svc->name, DESIRED_NAME_MAX);

	desired__path(path, base, "name");
	if (len == DESIRED_NAME_MAX)
		return desired__err(path, "\"%.24s...\" is longer than %d characters", svc->name,
				    DESIRED_NAME_MAX - 1);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)svc->name[i] < 0x20 || svc->name[i] == 0x7f)
			return desired__err(path, "\"%s\" contains a control character", svc->name);
	desired__path(path, base, "source");
	if (strnlen(svc->source, DESIRED_SOURCE_MAX) == DESIRED_SOURCE_MAX ||
	    (svc->source[0] && strcmp(svc->source, "manual") && strcmp(svc->source, "kubernetes")))
		return desired__err(path, "\"%.*s\" is not \"manual\" or \"kubernetes\"",
				    DESIRED_SOURCE_MAX, svc->source);
	return 0;
}

static int desired__check_backend(const struct desired_service *svc, __u32 j, const char *base)
{
	const struct desired_backend *b = &svc->backends[j];
	char path[PATH_LEN], a[SLUICE_ADDR_STRLEN], v[SLUICE_ADDR_STRLEN];
	char ap[SLUICE_ADDRPORT_STRLEN];

	desired__pathf(path, "%s.backends[%u].address", base, j);
	if (b->addr.family != svc->vip.family)
		return desired__err(
			path,
			"%s is %s but the vip %s is %s (a service's backends share its family)",
			sluice_addr__str(&b->addr, a, sizeof(a)), desired__family(b->addr.family),
			sluice_addr__str(&svc->vip, v, sizeof(v)),
			desired__family(svc->vip.family));
	if (desired__addr_unspec(&b->addr))
		return desired__err(path, "%s is the unspecified address",
				    sluice_addr__str(&b->addr, a, sizeof(a)));
	desired__pathf(path, "%s.backends[%u].port", base, j);
	if (!b->port)
		return desired__err(path, "0 is out of range 1-65535");
	desired__pathf(path, "%s.backends[%u]", base, j);
	if (b->port == svc->port && sluice_addr__eq(&b->addr, &svc->vip))
		return desired__err(path, "%s is the service's own address",
				    sluice_addr__str_port(&b->addr, b->port, ap, sizeof(ap)));
	return 0;
}

/* Every rule about one service; base is "services[i]". */
static int desired__check_service(const struct desired_service *svc, __u32 i)
{
	char base[PATH_LEN], path[PATH_LEN], a[SLUICE_ADDRPORT_STRLEN];
	__u32 first, dup, active = 0;
	int err;

	desired__pathf(base, "services[%u]", i);
	err = desired__check_name(svc, base);
	if (err)
		return err;
	desired__path(path, base, "vip");
	if (svc->vip.family != SLUICE_AF_INET && svc->vip.family != SLUICE_AF_INET6)
		return desired__err(path, "address family %u is not IPv4 or IPv6", svc->vip.family);
	if (desired__addr_unspec(&svc->vip))
		return desired__err(path, "%s is the unspecified address",
				    sluice_addr__str(&svc->vip, a, sizeof(a)));
	desired__path(path, base, "port");
	if (!svc->port)
		return desired__err(path, "0 is out of range 1-65535");
	desired__path(path, base, "protocol");
	if (svc->proto != IPPROTO_TCP && svc->proto != IPPROTO_UDP)
		return desired__err(path, "%u is not tcp or udp", svc->proto);
	desired__path(path, base, "backends");
	if (svc->nbackends > SLUICE_MAX_SVC_BACKENDS)
		return desired__err(path, "%u backends exceed the limit of %u per service",
				    svc->nbackends, SLUICE_MAX_SVC_BACKENDS);
	if (svc->nbackends && !svc->backends)
		return desired__err(path, "%u backends but no array", svc->nbackends);
	for (__u32 j = 0; j < svc->nbackends; j++) {
		err = desired__check_backend(svc, j, base);
		if (err)
			return err;
		active += svc->backends[j].weight != 0;
	}
	if (svc->nbackends && !active)
		return desired__err(path,
				    "every weight is 0 (at least one backend needs weight > 0; "
				    "to refuse connections, list no backends)");
	err = desired__find_dup(svc->backends, sizeof(*svc->backends), svc->nbackends,
				desired__cmp_be_idx, &first, &dup);
	if (err < 0)
		return err;
	if (err) {
		const struct desired_backend *b = &svc->backends[dup];

		desired__pathf(path, "%s.backends[%u]", base, dup);
		return desired__err(path, "%s is a duplicate of backends[%u]",
				    sluice_addr__str_port(&b->addr, b->port, a, sizeof(a)), first);
	}
	return 0;
}

/* Rules across services; each service already passed its own check. */
static int desired__check_all(const struct desired *d)
{
	char ref[DESIRED_SVC_REF_LEN], path[PATH_LEN];
	__u64 total = 0;
	__u32 first, dup;
	int err;

	if (d->nservices > SLUICE_MAX_SERVICES - 1)
		return desired__err("services", "%u services exceed the limit of %u", d->nservices,
				    SLUICE_MAX_SERVICES - 1);
	for (__u32 i = 0; i < d->nservices; i++)
		total += d->services[i].nbackends;
	if (total > SLUICE_MAX_BACKENDS - 1)
		return desired__err("services", "%llu backends in total exceed the limit of %u",
				    (unsigned long long)total, SLUICE_MAX_BACKENDS - 1);
	err = desired__find_dup(d->services, sizeof(*d->services), d->nservices,
				desired__cmp_svc_idx, &first, &dup);
	if (err < 0)
		return err;
	if (err) {
		desired__pathf(path, "services[%u]", dup);
		return desired__err(path, "%s is a duplicate of services[%u]",
				    desired__svc_ref(&d->services[dup], ref, sizeof(ref)), first);
	}
	return 0;
}

int desired__validate(const struct desired *d)
{
	int err;

	sluice__clear_err();
	if (d->nservices && !d->services)
		return desired__err("services", "%u services but no array", d->nservices);
	for (__u32 i = 0; i < d->nservices; i++) {
		err = desired__check_service(&d->services[i], i);
		if (err)
			return err;
	}
	return desired__check_all(d);
}

void desired__init(struct desired *d)
{
	memset(d, 0, sizeof(*d));
}

void desired__free(struct desired *d)
{
	for (__u32 i = 0; i < d->nservices; i++)
		free(d->services[i].backends);
	free(d->services);
	desired__init(d);
}

int desired__copy(struct desired *dst, const struct desired *src)
{
	struct desired tmp;

	desired__init(&tmp);
	if (src->nservices) {
		tmp.services = calloc(src->nservices, sizeof(*tmp.services));
		if (!tmp.services)
			goto nomem;
	}
	for (__u32 i = 0; i < src->nservices; i++) {
		const struct desired_service *s = &src->services[i];
		struct desired_service *t = &tmp.services[tmp.nservices];

		*t = *s;
		t->backends = NULL;
		if (s->nbackends) {
			t->backends = malloc(s->nbackends * sizeof(*t->backends));
			if (!t->backends)
				goto nomem;
			memcpy(t->backends, s->backends, s->nbackends * sizeof(*t->backends));
		}
		tmp.nservices++;
	}
	*dst = tmp;
	return 0;
nomem:
	desired__free(&tmp);
	sluice__set_err("out of memory copying the desired state");
	return -ENOMEM;
}

static int desired__parse_backend(struct json_object *o, const char *base,
				  struct desired_backend *b)
{
	char path[PATH_LEN];
	struct json_object *v;
	long long x;
	int err;

	err = desired__want_object(o, base);
	if (!err)
		err = desired__check_fields(o, base, be_fields, "a backend");
	if (err)
		return err;
	err = desired__req_addr(o, base, "address", "the backend's IP address", &b->addr);
	if (!err)
		err = desired__req_port(o, base, "port", &b->port);
	if (err)
		return err;
	b->weight = 1;
	desired__path(path, base, "weight");
	v = desired__field(o, "weight");
	if (v) {
		err = desired__get_int(v, path, 0, 65535, &x);
		if (err)
			return err;
		b->weight = (__u16)x;
	}
	return 0;
}

static int desired__parse_backends(struct json_object *v, const char *base,
				   struct desired_service *svc)
{
	char path[PATH_LEN], bpath[PATH_LEN], val[VAL_LEN];
	size_t n;
	int err;

	desired__path(path, base, "backends");
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_array))
		return desired__err(path, "expected a list of backends, got %s %s",
				    desired__jtype(v), desired__jtext(v, val, sizeof(val)));
	n = json_object_array_length(v);
	if (n > SLUICE_MAX_SVC_BACKENDS)
		return desired__err(path, "%zu backends exceed the limit of %u per service", n,
				    SLUICE_MAX_SVC_BACKENDS);
	if (!n)
		return 0;
	svc->backends = calloc(n, sizeof(*svc->backends));
	if (!svc->backends) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (size_t j = 0; j < n; j++) {
		desired__pathf(bpath, "%s[%zu]", path, j);
		err = desired__parse_backend(json_object_array_get_idx(v, j), bpath,
					     &svc->backends[j]);
		if (err)
			return err;
		svc->nbackends++;
	}
	return 0;
}

static int desired__parse_service(struct json_object *o, __u32 i, struct desired_service *svc)
{
	char base[PATH_LEN], path[PATH_LEN], val[VAL_LEN], msg[SLUICE_ERRMSG_LEN];
	struct json_object *v;
	const char *s;
	int err;

	desired__pathf(base, "services[%u]", i);
	err = desired__want_object(o, base);
	if (!err)
		err = desired__check_fields(o, base, svc_fields, "a service");
	if (err)
		return err;

	desired__path(path, base, "name");
	v = desired__field(o, "name");
	if (v) {
		err = desired__get_string(v, path, "a string", &s);
		if (err)
			return err;
		if (strlen(s) >= DESIRED_NAME_MAX)
			return desired__err(path, "%s is longer than %d characters",
					    desired__jtext(v, val, sizeof(val)),
					    DESIRED_NAME_MAX - 1);
		snprintf(svc->name, sizeof(svc->name), "%s", s);
	}

	err = desired__req_addr(o, base, "vip", "the service's virtual IP address", &svc->vip);
	if (!err)
		err = desired__req_port(o, base, "port", &svc->port);
	if (err)
		return err;

	desired__path(path, base, "protocol");
	v = desired__field(o, "protocol");
	if (!v)
		return desired__err(path, "missing (tcp or udp)");
	err = desired__get_string(v, path, "\"tcp\" or \"udp\"", &s);
	if (err)
		return err;
	if (sluice_proto__parse(&svc->proto, s)) {
		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
		return desired__err(path, "%s", msg);
	}

	desired__path(path, base, "source");
	v = desired__field(o, "source");
	snprintf(svc->source, sizeof(svc->source), "manual");
	if (v) {
		err = desired__get_string(v, path, "\"manual\" or \"kubernetes\"", &s);
		if (err)
			return err;
		if (strcmp(s, "manual") && strcmp(s, "kubernetes"))
			return desired__err(path, "%s is not \"manual\" or \"kubernetes\"",
					    desired__jtext(v, val, sizeof(val)));
		snprintf(svc->source, sizeof(svc->source), "%s", s);
	}

	err = desired__parse_backends(desired__field(o, "backends"), base, svc);
	if (err)
		return err;
	return desired__check_service(svc, i);
}

int desired__from_json(struct desired *d, struct json_object *root)
{
	struct json_object *list;
	char val[VAL_LEN];
	struct desired tmp;
	size_t n;
	int err;

	sluice__clear_err();
	desired__init(d);
	desired__init(&tmp);
	if (!json_object_is_type(root, json_type_object))
		return desired__err("top level", "expected an object with 'services', got %s %s",
				    desired__jtype(root), desired__jtext(root, val, sizeof(val)));
	err = desired__check_fields(root, NULL, top_fields, "the top level");
	if (err)
		return err;
	if (!json_object_object_get_ex(root, "services", &list))
		return desired__err("services", "missing (write 'services: []' for no services)");
	if (!list)
		return 0; /* "services:" with nothing under it */
	if (!json_object_is_type(list, json_type_array))
		return desired__err("services", "expected a list of services, got %s %s",
				    desired__jtype(list), desired__jtext(list, val, sizeof(val)));
	n = json_object_array_length(list);
	if (n > SLUICE_MAX_SERVICES - 1)
		return desired__err("services", "%zu services exceed the limit of %u", n,
				    SLUICE_MAX_SERVICES - 1);
	if (n) {
		tmp.services = calloc(n, sizeof(*tmp.services));
		if (!tmp.services) {
			sluice__set_err("out of memory");
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < n; i++) {
		/* counted before parsing so desired__free() sees its backends */
		tmp.nservices++;
		err = desired__parse_service(json_object_array_get_idx(list, i), (__u32)i,
					     &tmp.services[i]);
		if (err)
			goto fail;
	}
	err = desired__check_all(&tmp);
	if (err)
		goto fail;
	*d = tmp;
	return 0;
fail:
	desired__free(&tmp);
	return err;
}

/* Parse text; name (a file path or NULL) prefixes every error. */
static int desired__parse_text(struct desired *d, const char *text, size_t len, const char *name)
{
	char msg[SLUICE_ERRMSG_LEN];
	struct json_object *root;
	int err;

	desired__init(d);
	err = yaml__load(text, len, name, &root);
	if (err)
		return err;
	if (!root) {
		sluice__set_err("%s: empty document (write 'services: []' for no services)",
				name ? name : "<input>");
		return -EINVAL;
	}
	err = desired__from_json(d, root);
	json_object_put(root);
	if (err && name) {
		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
		sluice__set_err("%s: %s", name, msg);
	}
	return err;
}

int desired__from_string(struct desired *d, const char *text, size_t len)
{
	sluice__clear_err();
	return desired__parse_text(d, text, len, NULL);
}

int desired__from_file(struct desired *d, const char *path)
{
	size_t len;
	char *text;
	int err;

	sluice__clear_err();
	desired__init(d);
	err = yaml__read_file(path, DESIRED_FILE_MAX, &text, &len);
	if (err)
		return err;
	err = desired__parse_text(d, text, len, path);
	free(text);
	return err;
}

static void desired__add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (json_object_object_add(obj, key, val))
		json_object_put(val);
}

struct json_object *desired__service_to_json(const struct desired_service *svc)
{
	char buf[SLUICE_ADDR_STRLEN], pbuf[8];
	struct json_object *obj, *list, *be;

	obj = json_object_new_object();
	list = json_object_new_array();
	if (!obj || !list) {
		json_object_put(obj);
		json_object_put(list);
		return NULL;
	}
	if (svc->name[0])
		desired__add(obj, "name", json_object_new_string(svc->name));
	desired__add(obj, "vip",
		     json_object_new_string(sluice_addr__str(&svc->vip, buf, sizeof(buf))));
	desired__add(obj, "port", json_object_new_int(svc->port));
	desired__add(obj, "protocol",
		     json_object_new_string(sluice_proto__str(svc->proto, pbuf, sizeof(pbuf))));
	desired__add(obj, "source",
		     json_object_new_string(svc->source[0] ? svc->source : "manual"));
	for (__u32 j = 0; j < svc->nbackends; j++) {
		const struct desired_backend *b = &svc->backends[j];

		be = json_object_new_object();
		if (!be)
			break;
		desired__add(be, "address",
			     json_object_new_string(sluice_addr__str(&b->addr, buf, sizeof(buf))));
		desired__add(be, "port", json_object_new_int(b->port));
		desired__add(be, "weight", json_object_new_int(b->weight));
		if (json_object_array_add(list, be))
			json_object_put(be);
	}
	desired__add(obj, "backends", list);
	return obj;
}

struct json_object *desired__to_json(const struct desired *d)
{
	struct json_object *root, *list;

	root = json_object_new_object();
	list = json_object_new_array();
	if (!root || !list) {
		json_object_put(root);
		json_object_put(list);
		return NULL;
	}
	for (__u32 i = 0; i < d->nservices; i++) {
		struct json_object *svc = desired__service_to_json(&d->services[i]);

		if (!svc || json_object_array_add(list, svc)) {
			json_object_put(svc);
			json_object_put(list);
			json_object_put(root);
			return NULL;
		}
	}
	desired__add(root, "services", list);
	return root;
}

int desired__parse_svc_ref(const char *text, struct sluice_addr *vip, __u16 *port, __u8 *proto)
{
	char buf[SLUICE_ADDRPORT_STRLEN + 16], msg[SLUICE_ERRMSG_LEN];
	struct sluice_addr a;
	const char *slash;
	__u16 p;
	__u8 pr;

	sluice__clear_err();
	if (!text || !*text) {
		sluice__set_err(
			"service is empty (expected VIP:PORT/PROTO, e.g. 10.96.0.10:80/tcp)");
		return -EINVAL;
	}
	slash = strrchr(text, '/');
	if (!slash || (size_t)(slash - text) >= sizeof(buf)) {
		sluice__set_err("invalid service \"%.80s\": expected VIP:PORT/PROTO, e.g. "
				"10.96.0.10:80/tcp or [fd00::10]:53/udp",
				text);
		return -EINVAL;
	}
	memcpy(buf, text, (size_t)(slash - text));
	buf[slash - text] = '\0';
	if (sluice_addr__parse_port(&a, &p, buf) || sluice_proto__parse(&pr, slash + 1)) {
		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
		sluice__set_err("invalid service \"%.80s\": %s", text, msg);
		return -EINVAL;
	}
	*vip = a;
	*port = p;
	*proto = pr;
	return 0;
}

char *desired__svc_ref(const struct desired_service *svc, char *buf, size_t len)
{
	return sluice_svc__str(&svc->vip, svc->port, svc->proto, buf, len);
}

struct desired_service *desired__find(const struct desired *d, const struct sluice_addr *vip,
				      __u16 port, __u8 proto)
{
	for (__u32 i = 0; i < d->nservices; i++) {
		struct desired_service *s = &d->services[i];

		if (s->port == port && s->proto == proto && sluice_addr__eq(&s->vip, vip))
			return s;
	}
	return NULL;
}
