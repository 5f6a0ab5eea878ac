// SPDX-License-Identifier: MIT
/*
 * yaml.c - YAML and JSON text into json-c trees (see yamljson.h). Scalars are
 * typed the way the YAML core schema would type them, but only for the
 * forms config files use; anything doubtful stays a string and the
 * validator that knows the field says what it expected.
 *
 * Aliases are expanded, with a node budget and a depth limit so a
 * self-referencing or exponentially aliased document ("billion laughs")
 * fails with an error instead of eating the agent's memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

#include <yaml.h>

#include "internal.h"
#include "yamljson.h"

#define YAML_MAX_DEPTH 64
/* Extra nodes aliases may add on top of the document's own. */
#define YAML_ALIAS_BUDGET 100000

struct yaml_conv {
	yaml_document_t *doc;
	const char *name;
	size_t budget; /* nodes left to convert */
};

static const char *yaml__name(const char *name)
{
	return name ? name : "<input>";
}

/* libyaml marks are 0-based; editors count from 1. */
static int yaml__node_err(const struct yaml_conv *c, const yaml_node_t *node, const char *msg)
{
	sluice__set_err("%s:%zu:%zu: %s", yaml__name(c->name), node->start_mark.line + 1,
			node->start_mark.column + 1, msg);
	return -EINVAL;
}

static bool yaml__is_int(const char *s, long long *v)
{
	const char *p = s;
	char *end;

	if (*p == '-' || *p == '+')
		p++;
	if (*p < '0' || *p > '9')
		return false;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return !errno && !*end;
}

/* Decimal floats only: strtod alone would also take "inf", "nan" and hex,
 * which YAML spells differently and config files never mean. */
static bool yaml__is_double(const char *s, double *v)
{
	bool digit = false;
	char *end;

	for (const char *p = s; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digit = true;
		else if (!strchr("+-.eE", *p))
			return false;
	}
	if (!digit)
		return false;
	errno = 0;
	*v = strtod(s, &end);
	return !*end && errno != ERANGE;
}

static struct json_object *yaml__scalar(const yaml_node_t *node)
{
	const char *s = (const char *)node->data.scalar.value;
	size_t len = node->data.scalar.length;
	long long iv;
	double dv;

	if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || strlen(s) != len)
		return json_object_new_string_len(s, (int)len);
	if (!len || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	    !strcmp(s, "NULL"))
		return NULL;
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return json_object_new_boolean(1);
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return json_object_new_boolean(0);
	if (yaml__is_int(s, &iv))
		return json_object_new_int64(iv);
	/* integers beyond int64 land here too: the validator reports them
	 * as out of range rather than as a type mismatch */
	if (yaml__is_double(s, &dv))
		return json_object_new_double(dv);
	return json_object_new_string_len(s, (int)len);
}

static int yaml__node(struct yaml_conv *c, yaml_node_t *node, int depth, struct json_object **out);

static int yaml__sequence(struct yaml_conv *c, yaml_node_t *node, int depth,
			  struct json_object **out)
{
	struct json_object *arr, *item;
	int err;

	arr = json_object_new_array();
	if (!arr)
		return -ENOMEM;
	for (yaml_node_item_t *it = node->data.sequence.items.start;
	     it < node->data.sequence.items.top; it++) {
		err = yaml__node(c, yaml_document_get_node(c->doc, *it), depth + 1, &item);
		if (err)
			goto fail;
		if (json_object_array_add(arr, item)) {
			json_object_put(item);
			err = -ENOMEM;
			goto fail;
		}
	}
	*out = arr;
	return 0;
fail:
	json_object_put(arr);
	return err;
}

static int yaml__mapping(struct yaml_conv *c, yaml_node_t *node, int depth,
			 struct json_object **out)
{
	struct json_object *obj, *val;
	char msg[160];
	int err;

	obj = json_object_new_object();
	if (!obj)
		return -ENOMEM;
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *key = yaml_document_get_node(c->doc, p->key);
		const char *k;

		if (!key || key->type != YAML_SCALAR_NODE) {
			err = yaml__node_err(c, key ? key : node, "mapping keys must be scalars");
			goto fail;
		}
		k = (const char *)key->data.scalar.value;
		if (json_object_object_get_ex(obj, k, NULL)) {
			/* json-c would silently keep the last one */
			snprintf(msg, sizeof(msg), "duplicate key \"%.64s\"", k);
			err = yaml__node_err(c, key, msg);
			goto fail;
		}
		err = yaml__node(c, yaml_document_get_node(c->doc, p->value), depth + 1, &val);
		if (err)
			goto fail;
		if (json_object_object_add(obj, k, val)) {
			json_object_put(val);
			err = -ENOMEM;
			goto fail;
		}
	}
	*out = obj;
	return 0;
fail:
	json_object_put(obj);
	return err;
}

static int yaml__node(struct yaml_conv *c, yaml_node_t *node, int depth, struct json_object **out)
{
	*out = NULL;
	if (!node)
		return 0;
	if (depth > YAML_MAX_DEPTH)
		return yaml__node_err(c, node, "nested too deeply (recursive alias?)");
	if (!c->budget--)
		return yaml__node_err(c, node, "document too large after expanding aliases");
	switch (node->type) {
	case YAML_SCALAR_NODE:
		*out = yaml__scalar(node);
		return 0;
	case YAML_SEQUENCE_NODE:
		return yaml__sequence(c, node, depth, out);
	case YAML_MAPPING_NODE:
		return yaml__mapping(c, node, depth, out);
	default:
		return 0;
	}
}

static int yaml__parser_err(const yaml_parser_t *p, const char *name)
{
	const char *problem = p->problem ? p->problem : "malformed YAML";

	if (p->error == YAML_MEMORY_ERROR) {
		sluice__set_err("%s: out of memory parsing YAML", yaml__name(name));
		return -ENOMEM;
	}
	if (p->context)
		sluice__set_err("%s:%zu:%zu: %s (%s at line %zu)", yaml__name(name),
				p->problem_mark.line + 1, p->problem_mark.column + 1, problem,
				p->context, p->context_mark.line + 1);
	else
		sluice__set_err("%s:%zu:%zu: %s", yaml__name(name), p->problem_mark.line + 1,
				p->problem_mark.column + 1, problem);
	return -EINVAL;
}

/* *syntax tells a libyaml parse error from a conversion error (duplicate
 * key, alias bomb): only the former may be retried as strict JSON. */
static int yaml__parse_ex(const char *text, size_t len, const char *name, struct json_object **out,
			  bool *syntax)
{
	yaml_document_t doc, next;
	yaml_parser_t parser;
	struct yaml_conv c = { .doc = &doc, .name = name };
	yaml_node_t *root, *next_root;
	int err;

	*out = NULL;
	*syntax = false;
	if (!yaml_parser_initialize(&parser)) {
		sluice__set_err("%s: out of memory parsing YAML", yaml__name(name));
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		err = yaml__parser_err(&parser, name);
		*syntax = true;
		yaml_parser_delete(&parser);
		return err;
	}
	root = yaml_document_get_root_node(&doc);
	c.budget = (size_t)(doc.nodes.top - doc.nodes.start) + YAML_ALIAS_BUDGET;
	err = yaml__node(&c, root, 0, out);
	if (err == -ENOMEM)
		sluice__set_err("%s: out of memory converting YAML", yaml__name(name));
	/* A second document would be silently ignored otherwise. */
	if (!err && root) {
		if (!yaml_parser_load(&parser, &next)) {
			err = yaml__parser_err(&parser, name);
			*syntax = true;
		} else {
			next_root = yaml_document_get_root_node(&next);
			if (next_root) {
				sluice__set_err(
					"%s:%zu: a second YAML document; put everything in one",
					yaml__name(name), next_root->start_mark.line + 1);
				err = -EINVAL;
			}
			yaml_document_delete(&next);
		}
	}
	if (err) {
		json_object_put(*out);
		*out = NULL;
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return err;
}

int yaml__parse(const char *text, size_t len, const char *name, struct json_object **out)
{
	bool syntax;

	return yaml__parse_ex(text, len, name, out, &syntax);
}

int yaml__parse_json(const char *text, size_t len, const char *name, struct json_object **out)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	struct json_object *obj;
	size_t end, line = 1, col = 1;

	*out = NULL;
	if (len > (size_t)INT32_MAX) {
		sluice__set_err("%s: JSON text of %zu bytes is too large", yaml__name(name), len);
		return -EFBIG;
	}
	tok = json_tokener_new();
	if (!tok) {
		sluice__set_err("%s: out of memory parsing JSON", yaml__name(name));
		return -ENOMEM;
	}
	obj = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	/* json-c waits for more input on a truncated text */
	if (jerr == json_tokener_continue)
		jerr = json_tokener_error_parse_eof;
	if (jerr == json_tokener_success)
		while (end < len && strchr(" \t\r\n", text[end]))
			end++;
	if (jerr == json_tokener_success && end < len && text[end] != '\0') {
		json_object_put(obj);
		obj = NULL;
		jerr = json_tokener_error_parse_unexpected;
	}
	json_tokener_free(tok);
	if (jerr == json_tokener_success) {
		*out = obj;
		return 0;
	}
	for (size_t i = 0; i < end && i < len; i++) {
		if (text[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	sluice__set_err("%s:%zu:%zu: invalid JSON: %s", yaml__name(name), line, col,
			json_tokener_error_desc(jerr));
	return -EINVAL;
}

int yaml__load(const char *text, size_t len, const char *name, struct json_object **out)
{
	bool syntax;
	size_t i = 0;
	int err;

	while (i < len && strchr(" \t\r\n", text[i]))
		i++;
	if (i == len || (text[i] != '{' && text[i] != '['))
		return yaml__parse(text, len, name, out);
	/* JSON through libyaml first: it reports duplicate keys, which
	 * json-c silently collapses. JSON that libyaml cannot read (tabs,
	 * some escapes) goes to json-c, whose syntax errors are clearer. */
	err = yaml__parse_ex(text, len, name, out, &syntax);
	if (!err || !syntax)
		return err;
	return yaml__parse_json(text, len, name, out);
}

int yaml__read_file(const char *path, size_t max_len, char **text, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = NULL, *grown;
	ssize_t r;
	int fd, err;

	*text = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		sluice__set_err("cannot open %s: %s", path, strerror(errno));
		return err;
	}
	for (;;) {
		if (n + 1 >= cap || !buf) {
			cap = buf ? cap * 2 : cap;
			grown = realloc(buf, cap);
			if (!grown) {
				sluice__set_err("cannot read %s: out of memory", path);
				err = -ENOMEM;
				goto fail;
			}
			buf = grown;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			sluice__set_err("cannot read %s: %s", path, strerror(errno));
			goto fail;
		}
		if (!r)
			break;
		n += (size_t)r;
		if (n > max_len) {
			sluice__set_err("cannot read %s: larger than %zu bytes", path, max_len);
			err = -EFBIG;
			goto fail;
		}
	}
	close(fd);
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
fail:
	close(fd);
	free(buf);
	return err;
}
