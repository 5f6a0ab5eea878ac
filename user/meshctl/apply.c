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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "desired.h"

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

/* The service object named ref in meshd's list, NULL if none. */
/* services by "VIP:PORT/PROTO": one pass, so finding each changed
 * service is a hash lookup, not a scan (10k changes, 10k services). Put
 * the result with json_object_put(). */
static struct json_object *index_svcs(struct json_object *services)
{
	struct json_object *ix = json_object_new_object();
	char buf[ARGS_SVC_LEN];

	for (size_t i = 0; ix && i < js__len(services); i++) {
		struct json_object *s = js__idx(services, i);

		json_object_object_add(ix, js__svc_ref(s, buf, sizeof(buf)), json_object_get(s));
	}
	return ix;
}

static struct json_object *find_svc(struct json_object *ix, const char *ref)
{
	struct json_object *s = NULL;

	return ix && json_object_object_get_ex(ix, ref, &s) ? s : NULL;
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

static void print_changes(struct json_object *data, struct json_object *desired,
			  struct json_object *current, bool dry_run)
{
	struct json_object *changes = js__get(data, "changes");
	struct json_object *want = index_svcs(js__get(desired, "services"));
	struct json_object *have = index_svcs(js__get(current, "services"));
	size_t i, n[3] = { 0 };

	for (i = 0; i < js__len(changes); i++) {
		struct json_object *c = js__idx(changes, i), *new_svc, *old_svc;
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
		new_svc = find_svc(want, ref);
		old_svc = find_svc(have, ref);
		name = js__str(new_svc ? new_svc : old_svc, "name", "");
		printf("%c %s%s%s%s\n", mark, ref, *name ? " (" : "", name, *name ? ")" : "");
		if (mark != '-' && new_svc && (current || mark == '+'))
			print_detail(mark == '+' ? NULL : old_svc, new_svc);
	}
	json_object_put(want);
	json_object_put(have);

	/* Services from Kubernetes are not the file's to delete: meshd keeps
	 * them, and says how many so the diff above does not mislead. */
	if (js__get(data, "kubernetes_kept") && js__u64(data, "kubernetes_kept"))
		printf("kept %llu kubernetes service%s (managed by Kubernetes, not by this file)\n",
		       (unsigned long long)js__u64(data, "kubernetes_kept"),
		       js__u64(data, "kubernetes_kept") == 1 ? "" : "s");
	if (!js__len(changes))
		printf("%s: the agent already has exactly this state\n",
		       dry_run ? "dry run: nothing changed" : "applied");
	else if (dry_run)
		printf("dry run: nothing changed (%zu to add, %zu to update, %zu to delete)\n",
		       n[0], n[1], n[2]);
	else if (json_object_get_boolean(js__get(data, "applied")))
		printf("applied: %zu added, %zu updated, %zu deleted\n", n[0], n[1], n[2]);
	else
		printf("not applied: meshd reported the changes but did not apply them\n");
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
	struct json_object *desired, *args, *current = NULL, *data = NULL;
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
	desired = out__xalloc(desired__to_json(&d));
	desired__free(&d);

	/* Only for the backend detail of the diff: an error here will show
	 * up again, properly reported, as the apply call's error. */
	if (!out__json_mode() && client__try("service.list", NULL, &current, err, sizeof(err)))
		current = NULL;

	args = out__xalloc(json_object_new_object());
	json_object_object_add(args, "desired", json_object_get(desired));
	json_object_object_add(args, "dry_run", json_object_new_boolean(dry_run));
	if (client__call("apply", args, &data))
		goto out;
	if (out__json_mode())
		out__json(data);
	else
		print_changes(data, desired, current, dry_run);
	ret = 0;
out:
	json_object_put(data);
	json_object_put(current);
	json_object_put(desired);
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
		"Changes print like a diff: + add, ~ update, - delete. FILE looks like:\n"
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
