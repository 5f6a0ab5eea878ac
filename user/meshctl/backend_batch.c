// SPDX-License-Identifier: MIT
/*
 * backend_batch.c - `meshctl backend batch [-f FILE]`: many backend
 * changes in one request (backend.batch, #16), made durable by meshd with
 * one fdatasync: the way one client sends a rolling update's steps.
 *
 * Contract: one change a line, "OP SVC BE [N]" with OP add (N: weight,
 * default 1), del, weight (N required), drain or undrain; blank lines and
 * lines starting with # are skipped. Every line is checked here first (a
 * bad one fails the command naming the line, nothing sent); at most
 * BATCH_MAX changes. meshd answers each change on its own: refused ones
 * are printed with their line, the rest applied; exit status 1 when any
 * was refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "meshctl.h"
#include "output.h"

#define BATCH_MAX 1024 /* meshd's STATE_GROUP_MAX */
#define BATCH_LINE_MAX 512

static const char *const batch_ops[] = { "add", "del", "weight", "drain", "undrain", NULL };

/* One line into a change object; -1 when it is wrong (said, with the line). */
static int batch__line(char *text, unsigned int no, struct json_object **out)
{
	char *tok[5], *save = NULL, svc[ARGS_SVC_LEN], be[SLUICE_ADDRPORT_STRLEN];
	struct sluice_addr vip, addr;
	unsigned long weight = 1;
	struct json_object *c;
	int n = 0, op = -1;
	__u16 port;

	for (char *t = strtok_r(text, " \t\r\n", &save); t && n < 5;
	     t = strtok_r(NULL, " \t\r\n", &save))
		tok[n++] = t;
	*out = NULL;
	if (!n || tok[0][0] == '#')
		return 0;
	for (int i = 0; batch_ops[i] && op < 0; i++)
		if (!strcmp(tok[0], batch_ops[i]))
			op = i;
	if (op < 0)
		return out__error("line %u: \"%s\" is not add, del, weight, drain or undrain", no,
				  tok[0]);
	if (n < 3 || n > (op == 0 || op == 2 ? 4 : 3) || (op == 2 && n < 4))
		return out__error("line %u: want \"%s SVC BE%s\"", no, tok[0],
				  op == 0 ? " [N]" :
				  op == 2 ? " N" :
					    "");
	if (args__svc(tok[1], &vip, svc, sizeof(svc)) ||
	    args__backend(tok[2], &vip, &addr, &port, be, sizeof(be)) ||
	    (n == 4 && opts__uint(tok[3], 0, UINT16_MAX, "weight", &weight))) {
		if (!out__json_mode())
			fprintf(stderr, "  (in line %u)\n", no);
		return -1;
	}
	c = out__xalloc(json_object_new_object());
	json_object_object_add(c, "op", json_object_new_string(batch_ops[op]));
	json_object_object_add(c, "service", json_object_new_string(svc));
	json_object_object_add(c, "backend", json_object_new_string(be));
	if (n == 4)
		json_object_object_add(c, "weight", json_object_new_int((int)weight));
	*out = c;
	return 0;
}

/* The changes of fp, with the line each came from; -1 said. */
static int batch__read(FILE *fp, struct json_object *changes, unsigned int *lines)
{
	char text[BATCH_LINE_MAX + 2];
	unsigned int no = 0;
	struct json_object *c;

	while (fgets(text, sizeof(text), fp)) {
		no++;
		if (!strchr(text, '\n') && !feof(fp))
			return out__error("line %u: longer than %d bytes", no, BATCH_LINE_MAX);
		if (batch__line(text, no, &c))
			return -1;
		if (!c)
			continue;
		if (json_object_array_length(changes) == BATCH_MAX)
			return out__error("line %u: more than %d changes in one batch", no,
					  BATCH_MAX);
		lines[json_object_array_length(changes)] = no;
		json_object_array_add(changes, c);
	}
	return 0;
}

static int do_batch(int argc, char **argv)
{
	const char *file = NULL;
	const struct opt opts[] = {
		{ .name = "file", .short_name = 'f', .value = &file },
		{ NULL },
	};
	struct json_object *changes, *args, *data = NULL, *results;
	unsigned int *lines;
	size_t refused = 0;
	char *pos[1];
	FILE *fp;
	int npos, err;

	if (opts__parse(argc, argv, opts, pos, 0, &npos))
		return -1;
	fp = !file || !strcmp(file, "-") ? stdin : fopen(file, "r");
	if (!fp)
		return out__error("cannot open %s: %s", file, strerror(errno));
	lines = out__xalloc(calloc(BATCH_MAX, sizeof(*lines)));
	changes = out__xalloc(json_object_new_array());
	err = batch__read(fp, changes, lines);
	if (fp != stdin)
		fclose(fp);
	if (!err && !json_object_array_length(changes))
		err = out__error("no changes in %s", file && strcmp(file, "-") ? file : "stdin");
	if (err) {
		json_object_put(changes);
		free(lines);
		return -1;
	}
	args = out__xalloc(json_object_new_object());
	json_object_object_add(args, "changes", changes);
	if (client__call("backend.batch", args, &data)) {
		free(lines);
		return -1;
	}
	results = js__get(data, "results");
	for (size_t i = 0; i < js__len(results); i++) {
		struct json_object *r = js__idx(results, i), *v;

		if (json_object_object_get_ex(r, "ok", &v) && json_object_get_boolean(v))
			continue;
		refused++;
		if (!out__json_mode())
			fprintf(stderr, "Error: line %u: %s\n", lines[i],
				json_object_object_get_ex(r, "error", &v) ?
					json_object_get_string(v) :
					"refused");
	}
	if (out__json_mode())
		out__json(data);
	else
		printf("applied %zu of %zu changes (one fdatasync)%s\n", js__len(results) - refused,
		       js__len(results), refused ? "; the refused ones are above" : "");
	json_object_put(data);
	free(lines);
	return refused ? -1 : 0;
}

static const struct help_item backend_batch_opts[] = {
	{ "-f, --file FILE", "the changes, one a line (default, or \"-\": stdin)" },
	{ NULL, NULL },
};

const struct cmd backend_batch_cmd = {
	.name = "batch",
	.fn = do_batch,
	.grammar = "[-f FILE]",
	.summary = "many backend changes in one request, made durable by one fdatasync",
	.opts = backend_batch_opts,
	.notes = "One change a line: \"add SVC BE [N]\", \"del SVC BE\", \"weight SVC BE N\",\n"
		 "\"drain SVC BE\", \"undrain SVC BE\"; # comments. At most 1024. Each change\n"
		 "gets its own verdict (a refused one does not stop the others); all applied\n"
		 "ones are on disk before the answer.",
	.example = "printf 'drain 10.96.0.10:80/tcp 10.0.1.2:8080\\nadd 10.96.0.10:80/tcp "
		   "10.0.1.9:8080\\n' |\n  meshctl backend batch",
};
