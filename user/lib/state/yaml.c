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
 *
 * Every string in the resulting tree is then checked (yaml__check_tree):
 * a NUL would silently cut a name short once read as a C string, and
 * invalid UTF-8 would be stored and later printed raw.
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

#define YAML_MAX_DEPTH YAMLJSON_MAX_DEPTH
_Static_assert(YAML_MAX_DEPTH == 64, "the messages below say 64 levels");
/* Longest field path quoted in an error ("services[1].backends[0].port"). */
#define YAML_PATH_LEN 128
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

/* "080" is 80 in YAML 1.2 and 64 in YAML 1.1 (octal): neither guess is
 * safe for a port, so such numbers stay strings for the validator. */
static bool yaml__has_leading_zero(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	return s[0] == '0' && s[1] >= '0' && s[1] <= '9';
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
	if (yaml__has_leading_zero(s))
		return json_object_new_string_len(s, (int)len);
	if (yaml__is_int(s, &iv))
		return json_object_new_int64(iv);
	/* integers beyond int64 land here too: the validator reports them
	 * as out of range rather than as a type mismatch */
	/* keep the text as written, so errors quote "1e2", not "100.0" */
	if (yaml__is_double(s, &dv))
		return json_object_new_double_s(dv, s);
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
		if (strlen(k) != key->data.scalar.length) {
			err = yaml__node_err(c, key, "a key contains a NUL character (\\u0000)");
			goto fail;
		}
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
	/* deeper than the text itself only through aliases */
	if (node->type != YAML_SCALAR_NODE && depth >= YAML_MAX_DEPTH)
		return yaml__node_err(c, node,
				      "nested deeper than 64 levels after expanding aliases "
				      "(recursive alias?)");
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

static int yaml__depth_err(const char *name, size_t line, size_t col)
{
	sluice__set_err("%s:%zu:%zu: nested deeper than %d levels (the limit for YAML and JSON "
			"input)",
			yaml__name(name), line + 1, col + 1, YAML_MAX_DEPTH);
	return -EINVAL;
}

/*
 * libyaml's scanner does work for every open nesting level on every token,
 * so a deeply nested text costs quadratic time inside yaml_parser_load(),
 * before the converter could see the depth. Walk the events first and stop
 * at the limit: the scanner then never holds more than the limit's levels.
 */
static int yaml__check_depth(const char *text, size_t len, const char *name, bool *syntax)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	int depth = 0, err = 0;
	bool done = false;

	if (!yaml_parser_initialize(&parser)) {
		sluice__set_err("%s: out of memory parsing YAML", yaml__name(name));
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && !err) {
		if (!yaml_parser_parse(&parser, &ev)) {
			err = yaml__parser_err(&parser, name);
			*syntax = true;
			break;
		}
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
			if (++depth > YAML_MAX_DEPTH)
				err = yaml__depth_err(name, ev.start_mark.line,
						      ev.start_mark.column);
		} else if (ev.type == YAML_SEQUENCE_END_EVENT ||
			   ev.type == YAML_MAPPING_END_EVENT) {
			depth--;
		} else if (ev.type == YAML_STREAM_END_EVENT) {
			done = true;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return err;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, at most
 * U+10FFFF. Returns the offset of the first bad byte, or len. */
static size_t yaml__utf8_bad(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		unsigned int n, cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return i;
		}
		if (len - i <= n)
			return i;
		for (unsigned int k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return len;
}

static int yaml__check_str(const char *s, size_t len, const char *name, const char *path,
			   const char *what)
{
	size_t bad;

	if (strlen(s) != len) {
		sluice__set_err("%s: %s: %s contains a NUL character (\\u0000)", yaml__name(name),
				*path ? path : "top level", what);
		return -EINVAL;
	}
	bad = yaml__utf8_bad((const unsigned char *)s, len);
	if (bad != len) {
		sluice__set_err("%s: %s: %s is not valid UTF-8 (bad byte 0x%02x at offset %zu)",
				yaml__name(name), *path ? path : "top level", what,
				(unsigned char)s[bad], bad);
		return -EINVAL;
	}
	return 0;
}

/* path holds the place of o ("services[1].name"); pos is its length. */
static int yaml__check_node(struct json_object *o, const char *name, char *path, size_t pos)
{
	int err = 0;

	switch (json_object_get_type(o)) {
	case json_type_string:
		return yaml__check_str(json_object_get_string(o),
				       (size_t)json_object_get_string_len(o), name, path,
				       "the string");
	case json_type_array:
		for (size_t i = 0; !err && i < json_object_array_length(o); i++) {
			snprintf(path + pos, YAML_PATH_LEN - pos, "[%zu]", i);
			err = yaml__check_node(json_object_array_get_idx(o, i), name, path,
					       strlen(path));
		}
		break;
	case json_type_object: {
		json_object_object_foreach(o, key, val)
		{
			path[pos] = '\0';
			err = yaml__check_str(key, strlen(key), name, path, "a key");
			if (err)
				break;
			snprintf(path + pos, YAML_PATH_LEN - pos, "%s%s", pos ? "." : "", key);
			err = yaml__check_node(val, name, path, strlen(path));
			if (err)
				break;
		}
		break;
	}
	default:
		break;
	}
	path[pos] = '\0';
	return err;
}

static int yaml__check_tree(struct json_object *root, const char *name)
{
	char path[YAML_PATH_LEN] = "";

	return yaml__check_node(root, name, path, 0);
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
	err = yaml__check_depth(text, len, name, syntax);
	if (err)
		return err;
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
	if (!err)
		err = yaml__check_tree(*out, name);
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

/* Line and column (1-based) of text[off]. */
static void yaml__text_pos(const char *text, size_t off, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int yaml__json_text_err(const char *text, size_t off, const char *name, const char *msg)
{
	size_t line, col;

	yaml__text_pos(text, off, &line, &col);
	sluice__set_err("%s:%zu:%zu: %s", yaml__name(name), line, col, msg);
	return -EINVAL;
}

/*
 * What json-c accepts but the tree cannot show: a \u0000 escape in a key
 * (json-c cuts the key there; values are caught by yaml__check_tree with
 * their path) and numbers with leading zeros ("080", invalid JSON, which
 * json-c reads as 80). Runs on text json-c has parsed, so strings and
 * escapes are well formed.
 */
static int yaml__json_scan(const char *text, size_t len, const char *name)
{
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (in_str) {
			if (c == '"') {
				in_str = false;
			} else if (c == '\\' && i + 1 < len) {
				if (text[i + 1] == 'u' && len - i >= 6 &&
				    !strncmp(text + i + 2, "0000", 4))
					return yaml__json_text_err(
						text, i, name,
						"a key contains a NUL character (\\u0000)");
				i++;
			}
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if ((c == '-' || (c >= '0' && c <= '9')) &&
			   (!i || !strchr("0123456789.eE+-", text[i - 1]))) {
			size_t d = i + (c == '-');

			if (d + 1 < len && text[d] == '0' && text[d + 1] >= '0' &&
			    text[d + 1] <= '9')
				return yaml__json_text_err(text, i, name,
							   "number with a leading zero: write a "
							   "plain decimal integer");
		}
	}
	return 0;
}

int yaml__parse_json(const char *text, size_t len, const char *name, struct json_object **out)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	struct json_object *obj;
	size_t end, line, col;
	int err;

	*out = NULL;
	if (len > (size_t)INT32_MAX) {
		sluice__set_err("%s: JSON text of %zu bytes is too large", yaml__name(name), len);
		return -EFBIG;
	}
	tok = json_tokener_new_ex(YAML_MAX_DEPTH);
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
		err = yaml__check_tree(obj, name);
		if (!err)
			err = yaml__json_scan(text, len, name);
		if (err) {
			json_object_put(obj);
			return err;
		}
		*out = obj;
		return 0;
	}
	yaml__text_pos(text, end < len ? end : len, &line, &col);
	if (jerr == json_tokener_error_depth)
		return yaml__depth_err(name, line - 1, col - 1);
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
	buf = malloc(cap);
	if (!buf) {
		sluice__set_err("cannot read %s: out of memory", path);
		err = -ENOMEM;
		goto fail;
	}
	for (;;) {
		if (n + 1 >= cap) {
			cap *= 2;
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
