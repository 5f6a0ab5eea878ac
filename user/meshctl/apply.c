// SPDX-License-Identifier: MIT
/*
 * apply.c - `meshctl apply -f FILE [--dry-run]`: make meshd's services
 * exactly those of a declarative YAML or JSON file, like `kubectl apply`.
 *
 * Contract: the file is parsed and validated here with desired__from_file()
 * (or desired__from_string() for "-", stdin), so a bad file fails with the
 * offending field named before meshd is contacted; the validated state is
 * sent whole as {"op": "apply", "desired": ..., "dry_run": ...}. The
 * agent's change list is printed like a diff (+ add, ~ update, - delete);
 * for added and updated services the backend-level detail is worked out
 * here against the services meshd listed just before (best effort: it is
 * only shown, never sent). Ends with "applied ..." or "dry run: nothing
 * changed ...".
 *
 * Memory (#16): no step holds a tree of the whole state. A JSON file is
 * read one service's tree at a time (desired.c), the request is written
 * from the model one service at a time (desired__write_plain(), the same
 * bytes the tree gave), meshd's service list is read as it arrives into a
 * compact model (apply_have.c), and the change list stays text, parsed
 * one change at a time. What is held: the file's text while it is read,
 * the file's model, meshd's services' model, the answer's text. A YAML
 * file is still read as one tree (libyaml), as is the answer with -o json.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "desired.h"
#include "jsonscan.h"

#include "apply.h"
#include "client.h"
#include "meshctl.h"
#include "output.h"

#define STDIN_MAX SLUICE_API_MAX_MSG /* the largest message meshd takes anyway */

static int load_stdin(struct desired *d)
{
	size_t len = 0, cap = 65536, n;
	char *buf = out__xalloc(malloc(cap));
	char msg[1024];
	int err;

	while ((n = fread(buf + len, 1, cap - len, stdin)) > 0) {
		len += n;
		if (len == cap) {
			if (cap >= STDIN_MAX) {
				free(buf);
				return out__error("stdin: larger than %u bytes", STDIN_MAX);
			}
			cap *= 2;
			buf = out__xalloc(realloc(buf, cap));
		}
	}
	if (ferror(stdin)) {
		free(buf);
		return out__error("stdin: %s", strerror(errno));
	}
	err = desired__from_string(d, buf, len);
	free(buf);
	if (err) {
		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
		return out__error("stdin: %s", msg);
	}
	return 0;
}

#define LAZY_MAX (2u * SLUICE_MAX_SERVICES)

/* A list of JSON objects that is either a tree's array or, in a large
 * answer, ranges of its text (jscan): one element's tree at a time. */
struct lazy_list {
	struct json_object *arr; /* the tree's, or NULL */
	const char *text;
	struct jscan_range *v;
	size_t n;
};

/* list from member key of obj, a tree or a jscan__raw_new() placeholder;
 * rest (may be NULL): the placeholder's other members parsed, or obj.
 * -1 (nothing to free, no message) when obj's text is malformed. */
static int lazy__open(struct json_object *obj, const char *key, struct lazy_list *l,
		      struct json_object **rest)
{
	struct jscan_member *m = NULL;
	struct jscan_range r;
	char k[JSCAN_KEY_MAX + 1];
	size_t n, len;
	int err = 0;

	memset(l, 0, sizeof(*l));
	if (!jscan__raw_get(obj, &l->text, &len, &r)) {
		l->arr = js__get(obj, key);
		l->n = js__len(l->arr);
		if (rest)
			*rest = json_object_get(obj);
		return 0;
	}
	if (rest)
		*rest = out__xalloc(json_object_new_object());
	if (jscan__members(l->text, r, JSCAN_MAX_MEMBERS, &m, &n)) {
		if (rest) {
			json_object_put(*rest);
			*rest = NULL;
		}
		return -1;
	}
	for (size_t i = 0; !err && i < n; i++) {
		struct json_object *v;

		if (!jscan__plain_key(l->text, m, i, k))
			continue;
		if (!strcmp(k, key)) {
			/* bounded: meshd lists at most every service, and changes
			 * are at most the old and the new services */
			if (jscan__elements(l->text, m[i].val, LAZY_MAX, &l->v, &l->n) ||
			    l->n > LAZY_MAX)
				err = -1;
		} else if (rest) {
			if (jscan__parse(l->text, m[i].val, "answer", &v))
				err = -1;
			else
				json_object_object_add(*rest, k, v);
		}
	}
	free(m);
	if (err) {
		free(l->v);
		memset(l, 0, sizeof(*l));
		if (rest) {
			json_object_put(*rest);
			*rest = NULL;
		}
		return -1;
	}
	return 0;
}

/* Element i, to be put by the caller; NULL if it does not parse. */
static struct json_object *lazy__get(const struct lazy_list *l, size_t i)
{
	struct json_object *o = NULL;

	if (l->arr)
		return json_object_get(js__idx(l->arr, i));
	return jscan__parse(l->text, l->v[i], "answer", &o) ? NULL : o;
}

static void lazy__close(struct lazy_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The file's service ref names, as JSON (put it), NULL if none. */
static struct json_object *want__find(const struct desired_index *ix, const char *ref)
{
	const struct desired_service *svc;
	struct sluice_addr vip;
	__u16 port;
	__u8 proto;

	if (desired__parse_svc_ref(ref, &vip, &port, &proto))
		return NULL;
	svc = desired__index_find(ix, &vip, port, proto);
	return svc ? desired__service_to_json(svc) : NULL;
}

static struct json_object *find_be(struct json_object *backends, const char *ref)
{
	char buf[SLUICE_ADDRPORT_STRLEN];
	size_t i;

	for (i = 0; i < js__len(backends); i++) {
		struct json_object *b = js__idx(backends, i);

		if (!strcmp(js__backend_ref(b, buf, sizeof(buf)), ref))
			return b;
	}
	return NULL;
}

/* Backend lines under a "+" or "~" service: what changes inside it. */
static void print_detail(struct json_object *old_svc, struct json_object *new_svc)
{
	struct json_object *old_be = js__get(old_svc, "backends");
	struct json_object *new_be = js__get(new_svc, "backends");
	const char *old_name = js__str(old_svc, "name", ""),
		   *new_name = js__str(new_svc, "name", "");
	char ref[SLUICE_ADDRPORT_STRLEN];
	size_t i;

	if (old_svc && strcmp(old_name, new_name))
		printf("    ~ name \"%s\" -> \"%s\"\n", old_name, new_name);
	for (i = 0; i < js__len(new_be); i++) {
		struct json_object *b = js__idx(new_be, i), *o;
		uint64_t w = js__u64(b, "weight");

		o = find_be(old_be, js__backend_ref(b, ref, sizeof(ref)));
		if (!o)
			printf("    + backend %s weight %llu%s\n", ref, (unsigned long long)w,
			       w ? "" : " (draining)");
		else if (js__u64(o, "weight") != w)
			printf("    ~ backend %s weight %llu -> %llu%s\n", ref,
			       (unsigned long long)js__u64(o, "weight"), (unsigned long long)w,
			       w ? "" : " (draining)");
	}
	for (i = 0; i < js__len(old_be); i++) {
		struct json_object *b = js__idx(old_be, i);

		if (!find_be(new_be, js__backend_ref(b, ref, sizeof(ref))))
			printf("    - backend %s\n", ref);
	}
}

/* data: the apply's answer (a tree or a placeholder of its text); d: the
 * file's services; h: meshd's before (apply_have.c). */
static int print_changes(struct json_object *data, const struct desired *d, const struct have *h,
			 bool dry_run)
{
	struct json_object *rest = NULL;
	struct desired_index want;
	struct lazy_list changes;
	size_t i, n[3] = { 0 };

	if (lazy__open(data, "changes", &changes, &rest))
		return out__error("malformed answer from meshd at %s: its \"changes\"",
				  g_opts.socket);
	desired__index_init(&want, d);
	for (i = 0; i < changes.n; i++) {
		struct json_object *c = lazy__get(&changes, i), *new_svc, *old_svc;
		const char *action = js__str(c, "action", "?");
		const char *ref = js__str(c, "service", "?");
		const char *name;
		char mark = '?';

		if (!strcmp(action, "add")) {
			mark = '+';
			n[0]++;
		} else if (!strcmp(action, "update")) {
			mark = '~';
			n[1]++;
		} else if (!strcmp(action, "delete")) {
			mark = '-';
			n[2]++;
		}
		new_svc = want__find(&want, ref);
		old_svc = have__find(h, ref);
		name = js__str(new_svc ? new_svc : old_svc, "name", "");
		printf("%c %s%s%s%s\n", mark, ref, *name ? " (" : "", name, *name ? ")" : "");
		if (mark != '-' && new_svc && (h->known || mark == '+'))
			print_detail(mark == '+' ? NULL : old_svc, new_svc);
		json_object_put(new_svc);
		json_object_put(old_svc);
		json_object_put(c);
	}
	desired__index_free(&want);

	/* Services from Kubernetes are not the file's to delete: meshd keeps
	 * them, and says how many so the diff above does not mislead. */
	if (js__get(rest, "kubernetes_kept") && js__u64(rest, "kubernetes_kept"))
		printf("kept %llu kubernetes service%s (managed by Kubernetes, not by this file)\n",
		       (unsigned long long)js__u64(rest, "kubernetes_kept"),
		       js__u64(rest, "kubernetes_kept") == 1 ? "" : "s");
	if (!changes.n)
		printf("%s: the agent already has exactly this state\n",
		       dry_run ? "dry run: nothing changed" : "applied");
	else if (dry_run)
		printf("dry run: nothing changed (%zu to add, %zu to update, %zu to delete)\n",
		       n[0], n[1], n[2]);
	else if (json_object_get_boolean(js__get(rest, "applied")))
		printf("applied: %zu added, %zu updated, %zu deleted\n", n[0], n[1], n[2]);
	else
		printf("not applied: meshd reported the changes but did not apply them\n");
	lazy__close(&changes);
	json_object_put(rest);
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct apply_req {
	const struct desired *d;
	bool dry_run;
};

/* The request's bytes as api__write_msg() sent them from the tree
 * {"op", "desired": desired__to_json(d), "dry_run"}, one service's tree
 * at a time (30k services as one tree: ~360 MB). */
static int write_request(int fd, void *ctx)
{
	static const char head[] = "{\"op\":\"apply\",\"desired\":";
	const struct apply_req *a = ctx;
	const char *tail = a->dry_run ? ",\"dry_run\":true}" : ",\"dry_run\":false}";
	size_t max = SLUICE_API_MAX_MSG - (sizeof(head) - 1) - strlen(tail);
	int err;

	err = write_all(fd, head, sizeof(head) - 1);
	if (!err)
		err = desired__write_plain(a->d, fd, max, NULL);
	if (err == -EMSGSIZE)
		sluice__set_err("the request exceeds the limit of %u bytes", SLUICE_API_MAX_MSG);
	if (!err)
		err = write_all(fd, tail, strlen(tail));
	return err;
}

static int do_apply(int argc, char **argv)
{
	const char *file = NULL;
	bool dry_run = false;
	const struct opt opts[] = {
		{ .name = "file", .short_name = 'f', .value = &file },
		{ .name = "dry-run", .flag = &dry_run },
		{ NULL },
	};
	struct json_object *data = NULL;
	struct apply_req a = { .dry_run = false };
	struct api_call how = { .write = write_request, .ctx = &a };
	struct have h = { .known = false };
	struct desired d;
	char err[1024];
	char *pos[1];
	int npos, ret = -1;

	if (opts__parse(argc, argv, opts, pos, 0, &npos))
		return -1;
	if (!file)
		return cmd__usage_error("missing -f FILE");
	desired__init(&d);
	if (!strcmp(file, "-")) {
		if (load_stdin(&d))
			return -1;
	} else if (desired__from_file(&d, file)) {
		return out__error("%s", sluice__errmsg());
	}
	a.d = &d;
	a.dry_run = dry_run;

	if (!out__json_mode())
		have__load(&h);
	/* -o json prints the answer whole; the diff reads it one change at a time */
	how.lazy = out__json_mode() ? NULL : "data";
	if (client__try_ex("apply", NULL, &how, &data, err, sizeof(err))) {
		out__error("%s", err);
		goto out;
	}
	if (out__json_mode()) {
		out__json(data);
		ret = 0;
	} else {
		ret = print_changes(data, &d, &h, dry_run);
	}
out:
	json_object_put(data);
	have__free(&h);
	desired__free(&d);
	return ret;
}

static const struct help_item apply_opts[] = {
	{ "-f, --file FILE", "the whole desired set of services; - reads stdin" },
	{ "--dry-run", "only show what would change" },
	{ NULL, NULL },
};

const struct cmd apply_cmd = {
	.name = "apply",
	.fn = do_apply,
	.grammar = "-f FILE [--dry-run]",
	.summary = "make the services exactly those of a file",
	.opts = apply_opts,
	.notes =
		"FILE is checked before meshd is contacted. Services missing from it are deleted.\n"
		"Changes print like a diff: + add, ~ update, - delete. A JSON FILE is read and\n"
		"sent one service at a time (30k services in tens of MB); YAML is read whole.\n"
		"FILE looks like:\n"
		"  services:\n"
		"    - name: web\n"
		"      vip: 10.96.0.10\n"
		"      port: 80\n"
		"      protocol: tcp\n"
		"      backends:\n"
		"        - { address: 10.0.1.2, port: 8080, weight: 90 }\n"
		"        - { address: 10.0.1.3, port: 8080, weight: 10 }",
	.example = "meshctl apply -f services.yaml --dry-run\n"
		   "meshctl apply -f services.yaml",
	.reads = true,
};
