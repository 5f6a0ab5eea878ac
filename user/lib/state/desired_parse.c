// SPDX-License-Identifier: MIT
/*
 * desired_parse.c - a JSON tree (from JSON or YAML text) into struct
 * desired (see desired.h for the shape).
 *
 * Contract: parsing is strict - every unknown field, wrong type, malformed
 * address or out-of-range number is rejected - because a typo in a config
 * file must not silently become "no backends". Each error names the path
 * of the field ("services[1].backends[0].port") and the value found; an
 * unknown field also names the known one it most likely meant. Each
 * service is checked by the rules of desired_check.c as soon as it is
 * parsed, and all of them together at the end.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "desired_internal.h"
#include "internal.h"

#define VAL_LEN 64

static const char *const top_fields[] = { "services", "nodeDenyFrom", NULL };
static const char *const svc_fields[] = { "name",
					  "vip",
					  "port",
					  "protocol",
					  "source",
					  "backends",
					  "outlierDetection",
					  "sessionAffinity",
					  "healthCheck",
					  "sourceRanges",
					  "snat",
					  "dropWhenEmpty",
					  "allowFrom",
					  "denyFrom",
					  "denyAction",
					  NULL };
static const char *const be_fields[] = { "address", "port", "weight", "drainedWeight", NULL };

/* A JSON value as the user wrote it, shortened for messages. */
const char *desired__jtext(struct json_object *v, char *buf, size_t len)
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

const char *desired__jtype(struct json_object *v)
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

int desired__check_fields(struct json_object *obj, const char *path, const char *const *fields,
			  const char *what)
{
	struct json_object_iterator it = json_object_iter_begin(obj);
	struct json_object_iterator end = json_object_iter_end(obj);
	char fpath[DESIRED_PATH_LEN], list[128] = "";
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

int desired__want_object(struct json_object *v, const char *path)
{
	char val[VAL_LEN];

	if (json_object_is_type(v, json_type_object))
		return 0;
	return desired__err(path, "expected an object, got %s %s", desired__jtype(v),
			    desired__jtext(v, val, sizeof(val)));
}

/* An optional boolean field: absent or null is false. */
int desired__opt_bool(struct json_object *obj, const char *base, const char *key, bool *out)
{
	struct json_object *v = desired__field(obj, key);
	char path[DESIRED_PATH_LEN], val[VAL_LEN];

	*out = false;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_boolean)) {
		desired__path(path, base, key);
		return desired__err(path, "expected true or false, got %s %s", desired__jtype(v),
				    desired__jtext(v, val, sizeof(val)));
	}
	*out = json_object_get_boolean(v);
	return 0;
}

/* "snat": true (to the VIP), false, or "node" (to the node's SNAT address). */
static int desired__parse_snat(struct json_object *obj, const char *base,
			       struct desired_service *svc)
{
	struct json_object *v = desired__field(obj, "snat");
	char path[DESIRED_PATH_LEN], val[VAL_LEN];

	svc->snat_node = false;
	if (v && json_object_is_type(v, json_type_string)) {
		if (strcmp(json_object_get_string(v), "node")) {
			desired__path(path, base, "snat");
			return desired__err(path, "expected true, false or \"node\", got %s",
					    desired__jtext(v, val, sizeof(val)));
		}
		svc->snat = svc->snat_node = true;
		return 0;
	}
	return desired__opt_bool(obj, base, "snat", &svc->snat);
}

/* The field's value; NULL when absent or null (json-c stores null as NULL). */
struct json_object *desired__field(struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;

	json_object_object_get_ex(obj, key, &v);
	return v;
}

/* [+-]digits: a number as written, possibly kept as a string or double. */
static bool desired__is_digits(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* "080": the YAML reader keeps these as strings (see yamljson.h). */
static bool desired__is_zero_padded(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	return s[0] == '0' && desired__is_digits(s + 1);
}

/*
 * Integers only, as plain decimals: 1e2, 80.0 and 080 all mean 80 to some
 * reader and something else (or an error) to another, so each is refused
 * with the field and the text as written.
 */
int desired__get_int(struct json_object *v, const char *path, long long min, long long max,
		     long long *out)
{
	char val[VAL_LEN];
	long long x;

	/* the common case without the value's text (a state of 30k services
	 * reads 600k integers) */
	if (json_object_is_type(v, json_type_int)) {
		x = json_object_get_int64(v);
		if (x >= min && x <= max) {
			*out = x;
			return 0;
		}
	}
	desired__jtext(v, val, sizeof(val));
	switch (json_object_get_type(v)) {
	case json_type_int:
		x = json_object_get_int64(v); /* clamps beyond int64: still out of range */
		break;
	case json_type_double:
		/* digits beyond int64 (the YAML reader makes them doubles) */
		if (desired__is_digits(val))
			return desired__err(path, "%s is out of range %lld-%lld", val, min, max);
		return desired__err(path,
				    "%s is not a plain decimal integer (no fraction or exponent): "
				    "expected an integer %lld-%lld",
				    val, min, max);
	case json_type_string:
		if (desired__is_zero_padded(json_object_get_string(v)))
			return desired__err(path,
					    "%s is not a plain decimal integer (no leading zero): "
					    "expected an integer %lld-%lld",
					    val, min, max);
		/* fall through */
	default:
		return desired__err(path, "expected an integer %lld-%lld, got %s %s", min, max,
				    desired__jtype(v), val);
	}
	if (x < min || x > max)
		return desired__err(path, "%s is out of range %lld-%lld", val, min, max);
	*out = x;
	return 0;
}

int desired__get_string(struct json_object *v, const char *path, const char *what, const char **out)
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

/* base.field, which must be there: an IP address ("missing (hint)"). */
static int desired__req_addr(struct json_object *o, const char *base, const char *field,
			     const char *hint, struct sluice_addr *out)
{
	char path[DESIRED_PATH_LEN];
	struct json_object *v = desired__field(o, field);

	desired__path(path, base, field);
	if (!v)
		return desired__err(path, "missing (%s)", hint);
	return desired__get_addr(v, path, out);
}

/* base.field, which must be there: a port 1-65535. */
static int desired__req_port(struct json_object *o, const char *base, const char *field, __u16 *out)
{
	char path[DESIRED_PATH_LEN];
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

static int desired__parse_backend(struct json_object *o, const char *base,
				  struct desired_backend *b)
{
	char path[DESIRED_PATH_LEN];
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
	/* Only a draining backend remembers a weight to go back to. */
	desired__path(path, base, "drainedWeight");
	v = desired__field(o, "drainedWeight");
	if (!v)
		return 0;
	err = desired__get_int(v, path, 1, 65535, &x);
	if (err)
		return err;
	if (b->weight)
		return desired__err(path,
				    "only a draining backend (weight 0) has one, this one has "
				    "weight %u",
				    b->weight);
	b->drained_weight = (__u16)x;
	return 0;
}

static int desired__parse_backends(struct json_object *v, const char *base,
				   struct desired_service *svc)
{
	char path[DESIRED_PATH_LEN], bpath[DESIRED_PATH_LEN], val[VAL_LEN];
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
	char base[DESIRED_PATH_LEN], path[DESIRED_PATH_LEN], val[VAL_LEN], msg[SLUICE_ERRMSG_LEN];
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
	if (!err)
		err = desired__parse_outlier(desired__field(o, "outlierDetection"), base,
					     &svc->outlier);
	if (!err)
		err = desired__parse_affinity(desired__field(o, "sessionAffinity"), base,
					      &svc->affinity_timeout_s);
	if (!err)
		err = desired__parse_health(desired__field(o, "healthCheck"), base, svc);
	if (!err)
		err = desired__parse_src_ranges(desired__field(o, "sourceRanges"), base, svc);
	if (!err)
		err = desired__parse_snat(o, base, svc);
	if (!err)
		err = desired__opt_bool(o, base, "dropWhenEmpty", &svc->drop_empty);
	if (!err)
		err = desired__parse_policy(o, base, svc);
	if (err)
		return err;
	return desired__check_service(svc, i);
}

/* Services from..to-1 of src into svcs[], in order; the first error ends
 * the part, with the message it set in msg. */
struct desired_part {
	const struct desired_svc_src *src;
	struct desired_service *svcs;
	size_t from, to;
	int err;
	char msg[SLUICE_ERRMSG_LEN];
};

static void desired__parse_part(struct desired_part *p)
{
	struct json_object *o;

	for (size_t i = p->from; i < p->to; i++) {
		p->err = p->src->get(p->src->ctx, i, &o);
		if (!p->err) {
			p->err = desired__parse_service(o, (__u32)i, &p->svcs[i]);
			if (p->src->put)
				p->src->put(p->src->ctx, o);
		}
		if (p->err) {
			snprintf(p->msg, sizeof(p->msg), "%s", sluice__errmsg());
			return;
		}
	}
}

static void *desired__part_thread(void *arg)
{
	sluice__clear_err(); /* this thread's own message */
	desired__parse_part(arg);
	return NULL;
}

/* Big states are parsed on every online CPU (at most PARSE_THREADS_MAX),
 * PARSE_PART_MIN services a part at least: at 30k services x 10 backends
 * the parse is most of meshd's restart (#16). Parts run in order inside,
 * and the error kept is the one of the lowest index, so the result and
 * the message are those of one pass in order. */
#define PARSE_THREADS_MAX 8
#define PARSE_PART_MIN 1024

static int desired__parse_services(const struct desired_svc_src *src, struct desired_service *svcs)
{
	struct desired_part one = { .src = src, .svcs = svcs, .to = src->n }, *parts = &one;
	pthread_t tid[PARSE_THREADS_MAX];
	bool started[PARSE_THREADS_MAX] = {};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t np = src->parallel ? src->n / PARSE_PART_MIN : 1, per;
	int err = 0;

	if (cpus > 0 && np > (size_t)cpus)
		np = (size_t)cpus;
	if (np > PARSE_THREADS_MAX)
		np = PARSE_THREADS_MAX;
	if (np < 2 || !(parts = calloc(np, sizeof(*parts)))) {
		np = 1; /* no memory for parts: one pass does it */
		parts = &one;
	}
	per = (src->n + np - 1) / np;
	for (size_t i = 0; i < np; i++) {
		parts[i] = (struct desired_part){ .src = src, .svcs = svcs };
		parts[i].from = i * per < src->n ? i * per : src->n;
		parts[i].to = parts[i].from + per < src->n ? parts[i].from + per : src->n;
	}
	/* part 0 here; a thread that cannot start runs its part here too */
	for (size_t i = 1; i < np; i++)
		started[i] = !pthread_create(&tid[i], NULL, desired__part_thread, &parts[i]);
	for (size_t i = 0; i < np; i++) {
		if (started[i])
			pthread_join(tid[i], NULL);
		else
			desired__parse_part(&parts[i]);
	}
	for (size_t i = 0; i < np && !err; i++) {
		err = parts[i].err;
		if (err)
			sluice__set_err("%s", parts[i].msg);
	}
	if (parts != &one)
		free(parts);
	return err;
}

static int desired__tree_get(void *ctx, size_t i, struct json_object **o)
{
	*o = json_object_array_get_idx(ctx, i);
	return 0;
}

int desired__from_json(struct desired *d, struct json_object *root)
{
	return desired__from_src(d, root, NULL);
}

int desired__from_src(struct desired *d, struct json_object *root,
		      const struct desired_svc_src *from)
{
	struct desired_svc_src src;
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
	if (!from) {
		if (!list)
			return 0; /* "services:" with nothing under it */
		if (!json_object_is_type(list, json_type_array))
			return desired__err("services", "expected a list of services, got %s %s",
					    desired__jtype(list),
					    desired__jtext(list, val, sizeof(val)));
		/* one tree: parts would share its reference counts */
		src = (struct desired_svc_src){ .n = json_object_array_length(list),
						.get = desired__tree_get,
						.ctx = list };
		from = &src;
	}
	n = from->n;
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
	/* counted before parsing so desired__free() sees every backend
	 * array, a half-parsed service's included (the rest are zero) */
	tmp.nservices = (__u32)n;
	err = desired__parse_services(from, tmp.services);
	if (err)
		goto fail;
	err = desired__check_all(&tmp);
	if (!err)
		err = desired__parse_node_deny(desired__field(root, "nodeDenyFrom"), &tmp);
	if (err)
		goto fail;
	*d = tmp;
	return 0;
fail:
	desired__free(&tmp);
	return err;
}
