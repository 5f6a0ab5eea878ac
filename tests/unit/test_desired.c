// SPDX-License-Identifier: MIT
/*
 * test_desired.c - the desired-state model: JSON and YAML round trips, the
 * README example file, every validation rule (the message names the path
 * and the value), atomic save/load, diff, and apply against real maps
 * including the all-or-nothing rollback when a map fills up (needs root).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <bpf/bpf.h>

#include "desired.h"
#include "internal.h"
#include "lb_load.h"
#include "test.h"
#include "yamljson.h"

static const char *const web_json =
	"{\"services\": [\n"
	"  {\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"tcp\",\n"
	"   \"backends\": [{\"address\": \"10.0.1.2\", \"port\": 8080, \"weight\": 90},\n"
	"                {\"address\": \"10.0.1.3\", \"port\": 8080, \"weight\": 10}]},\n"
	"  {\"vip\": \"fd00::10\", \"port\": 53, \"protocol\": \"udp\", \"source\": \"kubernetes\",\n"
	"   \"backends\": [{\"address\": \"fd00:1::2\", \"port\": 5353}]},\n"
	"  {\"name\": \"empty\", \"vip\": \"10.96.0.11\", \"port\": 443, \"protocol\": \"tcp\"}\n"
	"]}\n";

static const char *const web_yaml = "# the same state as web_json\n"
				    "services:\n"
				    "  - name: web\n"
				    "    vip: 10.96.0.10\n"
				    "    port: 80\n"
				    "    protocol: tcp\n"
				    "    backends:\n"
				    "      - {address: 10.0.1.2, port: 8080, weight: 90}\n"
				    "      - address: 10.0.1.3\n"
				    "        port: 8080\n"
				    "        weight: 10\n"
				    "  - vip: \"fd00::10\"\n"
				    "    port: 53\n"
				    "    protocol: udp\n"
				    "    source: kubernetes\n"
				    "    backends:\n"
				    "      - address: fd00:1::2\n"
				    "        port: 5353\n"
				    "  - name: empty\n"
				    "    vip: 10.96.0.11\n"
				    "    port: 443\n"
				    "    protocol: tcp\n"
				    "    backends:\n";

static bool has(const char *what)
{
	if (strstr(sluice__errmsg(), what))
		return true;
	TEST_FAIL("message \"%s\" lacks \"%s\"", sluice__errmsg(), what);
	return false;
}

static bool same_service(const struct desired_service *a, const struct desired_service *b)
{
	if (strcmp(a->name, b->name) || strcmp(a->source, b->source) ||
	    !sluice_addr__eq(&a->vip, &b->vip) || a->port != b->port || a->proto != b->proto ||
	    a->nbackends != b->nbackends)
		return false;
	for (__u32 j = 0; j < a->nbackends; j++)
		if (!sluice_addr__eq(&a->backends[j].addr, &b->backends[j].addr) ||
		    a->backends[j].port != b->backends[j].port ||
		    a->backends[j].weight != b->backends[j].weight)
			return false;
	return true;
}

static bool same_state(const struct desired *a, const struct desired *b)
{
	if (a->nservices != b->nservices)
		return false;
	for (__u32 i = 0; i < a->nservices; i++)
		if (!same_service(&a->services[i], &b->services[i]))
			return false;
	return true;
}

static int parse(struct desired *d, const char *text)
{
	return desired__from_string(d, text, strlen(text));
}

static void check_web(const struct desired *d)
{
	char buf[DESIRED_SVC_REF_LEN];

	if (!ASSERT_EQ(d->nservices, 3, "services"))
		return;
	ASSERT_TRUE(!strcmp(d->services[0].name, "web"), "name");
	ASSERT_TRUE(!strcmp(d->services[0].source, "manual"), "source defaults to manual");
	ASSERT_TRUE(!strcmp(desired__svc_ref(&d->services[0], buf, sizeof(buf)),
			    "10.96.0.10:80/tcp"),
		    "svc ref");
	ASSERT_EQ(d->services[0].nbackends, 2, "web backends");
	ASSERT_EQ(d->services[0].backends[0].port, 8080, "backend port");
	ASSERT_EQ(d->services[0].backends[0].weight, 90, "weight 90");
	ASSERT_EQ(d->services[0].backends[1].weight, 10, "weight 10");
	ASSERT_EQ(d->services[1].vip.family, SLUICE_AF_INET6, "v6 vip");
	ASSERT_EQ(d->services[1].proto, IPPROTO_UDP, "udp");
	ASSERT_TRUE(!strcmp(d->services[1].source, "kubernetes"), "source kubernetes");
	ASSERT_TRUE(!strcmp(d->services[1].name, ""), "no name");
	ASSERT_EQ(d->services[1].backends[0].weight, 1, "weight defaults to 1");
	ASSERT_TRUE(!strcmp(desired__svc_ref(&d->services[1], buf, sizeof(buf)),
			    "[fd00::10]:53/udp"),
		    "v6 svc ref");
	ASSERT_EQ(d->services[2].nbackends, 0, "service without backends");
}

static void test_json_round_trip(void)
{
	struct desired a, b;
	struct json_object *j;

	if (!ASSERT_OK(parse(&a, web_json), sluice__errmsg()))
		return;
	check_web(&a);
	j = desired__to_json(&a);
	if (ASSERT_TRUE(j != NULL, "to_json")) {
		if (ASSERT_OK(desired__from_json(&b, j), sluice__errmsg())) {
			ASSERT_TRUE(same_state(&a, &b), "JSON round trip");
			desired__free(&b);
		}
		json_object_put(j);
	}
	ASSERT_OK(desired__validate(&a), "validate parsed state");
	desired__free(&a);
}

static void test_yaml_round_trip(void)
{
	struct desired a, b;
	struct json_object *j;

	if (!ASSERT_OK(parse(&a, web_yaml), sluice__errmsg()))
		return;
	check_web(&a);
	if (ASSERT_OK(parse(&b, web_json), "json")) {
		ASSERT_TRUE(same_state(&a, &b), "YAML == JSON");
		desired__free(&b);
	}
	/* JSON written by to_json reads back through the YAML path too */
	j = desired__to_json(&a);
	if (ASSERT_TRUE(j != NULL, "to_json")) {
		const char *text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY);

		if (ASSERT_OK(parse(&b, text), sluice__errmsg())) {
			ASSERT_TRUE(same_state(&a, &b), "YAML -> JSON -> model");
			desired__free(&b);
		}
		json_object_put(j);
	}
	desired__free(&a);
	/* YAML flow style starting with '{' is not JSON but still YAML */
	if (ASSERT_OK(parse(&a, "{services: [{vip: 10.0.0.1, port: 80, protocol: tcp}]}"),
		      sluice__errmsg())) {
		ASSERT_EQ(a.nservices, 1, "flow-style YAML");
		desired__free(&a);
	}
	ASSERT_OK(parse(&a, "services: []"), "no services");
	ASSERT_EQ(a.nservices, 0, "empty list");
	ASSERT_OK(parse(&a, "services:\n"), "services: null");
	ASSERT_EQ(a.nservices, 0, "null list");
}

static void test_example_file(void)
{
	char path[PATH_MAX], buf[DESIRED_SVC_REF_LEN];
	struct desired d;

	if (!ASSERT_TRUE(test__repo_path(path, sizeof(path), "scripts/examples/services.yaml"),
			 "path"))
		return;
	if (!ASSERT_OK(desired__from_file(&d, path), sluice__errmsg()))
		return;
	if (ASSERT_EQ(d.nservices, 3, "three services")) {
		ASSERT_TRUE(!strcmp(desired__svc_ref(&d.services[0], buf, sizeof(buf)),
				    "10.96.0.10:80/tcp"),
			    "web");
		ASSERT_EQ(d.services[0].nbackends, 2, "web backends");
		ASSERT_EQ(d.services[0].backends[0].weight, 90, "stable weight");
		ASSERT_EQ(d.services[0].backends[1].weight, 10, "canary weight");
		ASSERT_EQ(d.services[1].proto, IPPROTO_UDP, "dns is udp");
		ASSERT_EQ(d.services[2].vip.family, SLUICE_AF_INET6, "third is IPv6");
		ASSERT_EQ(d.services[2].proto, IPPROTO_TCP, "third is tcp");
	}
	desired__free(&d);
	ASSERT_EQ(desired__from_file(&d, "/nonexistent/services.yaml"), -ENOENT, "missing file");
	ASSERT_TRUE(has("/nonexistent/services.yaml"), "missing file named");
}

struct reject_case {
	const char *text;
	const char *want[3];
};

#define SVC(extra) \
	"{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"tcp\"" extra "}]}"
#define BE(b) SVC(", \"backends\": [" b "]")

static const struct reject_case rejects[] = {
	/* unknown fields, with a suggestion when one is close */
	{ "services:\n  - vip: 10.0.0.1\n    port: 80\n    protocol: tcp\n"
	  "  - vip: 10.0.0.2\n    port: 80\n    protocol: tcp\n    backend: []\n",
	  { "services[1].backend: unknown field (did you mean 'backends'?)" } },
	{ "servics: []", { "servics: unknown field (did you mean 'services'?)" } },
	{ BE("{\"addr\": \"10.0.0.1\", \"port\": 80}"),
	  { "services[0].backends[0].addr: unknown field (did you mean 'address'?)" } },
	{ SVC(", \"zzz\": 1"), { "services[0].zzz: unknown field", "vip, port, protocol" } },
	{ "{\"services\": [{\"ip\": \"10.0.0.1\"}]}", { "services[0].ip", "did you mean 'vip'" } },
	{ BE("{\"address\": \"10.0.0.1\", \"port\": 80, \"weigth\": 2}"),
	  { "services[0].backends[0].weigth", "did you mean 'weight'" } },
	/* ports */
	{ "{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 0, \"protocol\": \"tcp\"}]}",
	  { "services[0].port: 0 is out of range 1-65535" } },
	{ "{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 65536, \"protocol\": \"tcp\"}]}",
	  { "services[0].port: 65536 is out of range 1-65535" } },
	{ "{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": -1, \"protocol\": \"tcp\"}]}",
	  { "services[0].port: -1 is out of range" } },
	{ "{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": \"80\", \"protocol\": \"tcp\"}]}",
	  { "services[0].port: expected an integer 1-65535, got string \"80\"" } },
	{ "{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 80.5, \"protocol\": \"tcp\"}]}",
	  { "services[0].port: 80.5 is not a plain decimal integer" } },
	/* integers only, as plain decimals, in JSON and in YAML */
	{ "{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 80.0, \"protocol\": \"tcp\"}]}",
	  { "services[0].port: 80.0 is not a plain decimal integer (no fraction or exponent)" } },
	{ "{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 1e2, \"protocol\": \"tcp\"}]}",
	  { "services[0].port: 1e2 is not a plain decimal integer (no fraction or exponent)" } },
	{ "{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 080, \"protocol\": \"tcp\"}]}",
	  { "services[0].port: \"080\" is not a plain decimal integer (no leading zero)" } },
	{ "services:\n  - vip: 10.96.0.10\n    port: 1e2\n    protocol: tcp\n",
	  { "services[0].port: 1e2 is not a plain decimal integer (no fraction or exponent)" } },
	{ "services:\n  - vip: 10.96.0.10\n    port: 80.0\n    protocol: tcp\n",
	  { "services[0].port: 80.0 is not a plain decimal integer" } },
	{ "services:\n  - vip: 10.96.0.10\n    port: 080\n    protocol: tcp\n",
	  { "services[0].port: \"080\" is not a plain decimal integer (no leading zero)" } },
	{ BE("{\"address\": \"10.0.0.1\", \"port\": 8.08e3}"),
	  { "services[0].backends[0].port: 8.08e3 is not a plain decimal integer" } },
	{ BE("{\"address\": \"10.0.0.1\", \"port\": 80, \"weight\": 010}"),
	  { "services[0].backends[0].weight: \"010\" is not a plain decimal integer" } },
	{ "services:\n  - vip: 10.96.0.10\n    port: 99999999999999999999\n    protocol: tcp\n",
	  { "services[0].port:", "out of range 1-65535" } },
	{ "services:\n  - vip: 10.96.0.10\n    port: \"80\"\n    protocol: tcp\n",
	  { "services[0].port: expected an integer", "string \"80\"" } },
	{ "services:\n  - vip: 10.96.0.10\n    port: true\n    protocol: tcp\n",
	  { "services[0].port: expected an integer", "boolean true" } },
	{ BE("{\"address\": \"10.0.0.1\", \"port\": 70000}"),
	  { "services[0].backends[0].port: 70000 is out of range 1-65535" } },
	{ BE("{\"address\": \"10.0.0.1\", \"port\": 0}"),
	  { "services[0].backends[0].port: 0 is out of range 1-65535" } },
	/* weights */
	{ BE("{\"address\": \"10.0.0.1\", \"port\": 80, \"weight\": 65536}"),
	  { "services[0].backends[0].weight: 65536 is out of range 0-65535" } },
	{ BE("{\"address\": \"10.0.0.1\", \"port\": 80, \"weight\": -1}"),
	  { "services[0].backends[0].weight: -1 is out of range 0-65535" } },
	{ BE("{\"address\": \"10.0.0.1\", \"port\": 80, \"weight\": 0},"
	     "{\"address\": \"10.0.0.2\", \"port\": 80, \"weight\": 0}"),
	  { "services[0].backends: every weight is 0" } },
	/* addresses and families */
	{ "{\"services\": [{\"vip\": \"10.0.0.300\", \"port\": 80, \"protocol\": \"tcp\"}]}",
	  { "services[0].vip: invalid address \"10.0.0.300\"" } },
	{ "{\"services\": [{\"vip\": 10, \"port\": 80, \"protocol\": \"tcp\"}]}",
	  { "services[0].vip: expected an IP address (string), got integer 10" } },
	{ "{\"services\": [{\"vip\": \"0.0.0.0\", \"port\": 80, \"protocol\": \"tcp\"}]}",
	  { "services[0].vip: 0.0.0.0 is the unspecified address" } },
	{ BE("{\"address\": \"10.0.1.2:8080\", \"port\": 8080}"),
	  { "services[0].backends[0].address: invalid address \"10.0.1.2:8080\"",
	    "write the port in 'port'" } },
	{ BE("{\"address\": \"10.0.0.1\", \"port\": 80},{\"address\": \"fd00::2\", \"port\": 80}"),
	  { "services[0].backends[1].address: fd00::2 is IPv6 but the vip 10.96.0.10 is IPv4" } },
	{ BE("{\"address\": \"10.96.0.10\", \"port\": 80}"),
	  { "services[0].backends[0]: 10.96.0.10:80 is the service's own address" } },
	/* protocol, source, name */
	{ "{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": \"sctp\"}]}",
	  { "services[0].protocol: invalid protocol \"sctp\"" } },
	{ "{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 80}]}",
	  { "services[0].protocol: missing" } },
	{ SVC(", \"source\": \"foo\""), { "services[0].source: \"foo\" is not \"manual\"" } },
	{ SVC(", \"name\": \"a123456789b123456789c123456789d123456789e123456789f123456789g1234\""),
	  { "services[0].name: \"a123456789", "longer than 63 characters" } },
	{ SVC(", \"name\": \"tab\\there\""), { "services[0].name:", "control character" } },
	{ SVC(", \"name\": 5"), { "services[0].name: expected a string, got integer 5" } },
	/* missing fields */
	{ "{\"services\": [{\"port\": 80, \"protocol\": \"tcp\"}]}",
	  { "services[0].vip: missing" } },
	{ "{\"services\": [{\"vip\": \"10.0.0.1\", \"protocol\": \"tcp\"}]}",
	  { "services[0].port: missing" } },
	{ BE("{\"port\": 80}"), { "services[0].backends[0].address: missing" } },
	{ BE("{\"address\": \"10.0.0.1\"}"), { "services[0].backends[0].port: missing" } },
	/* duplicates */
	{ "services:\n"
	  "  - {vip: 10.96.0.10, port: 80, protocol: tcp}\n"
	  "  - {vip: 10.96.0.10, port: 80, protocol: udp}\n"
	  "  - {vip: 10.96.0.10, port: 80, protocol: tcp}\n",
	  { "services[2]: 10.96.0.10:80/tcp is a duplicate of services[0]" } },
	{ BE("{\"address\": \"10.0.0.1\", \"port\": 80},{\"address\": \"10.0.0.1\", \"port\": 81},"
	     "{\"address\": \"10.0.0.1\", \"port\": 80}"),
	  { "services[0].backends[2]: 10.0.0.1:80 is a duplicate of backends[0]" } },
	/* shapes */
	{ "[1, 2]", { "top level: expected an object", "[1,2]" } },
	{ "{}", { "services: missing" } },
	{ "{\"services\": {}}", { "services: expected a list of services, got object" } },
	{ "{\"services\": [\"web\"]}", { "services[0]: expected an object, got string \"web\"" } },
	{ SVC(", \"backends\": 3"), { "services[0].backends: expected a list of backends" } },
	{ "", { "empty document" } },
	{ "# only a comment\n", { "empty document" } },
	/* syntax */
	{ "services:\n  - vip: [\n", { "<input>:" } },
	{ "services:\n  - vip: 10.0.0.1\n    port: 80\n    port: 81\n",
	  { "<input>:4:5:", "duplicate key \"port\"" } },
	{ "{\"services\": [}", { "<input>:1:15: invalid JSON" } },
	{ "services: []\n---\nservices: []\n", { "second YAML document" } },
	{ "a: &x [*x]\n",
	  { "<input>:1:", "nested deeper than 64 levels after expanding aliases" } },
	/* strings: no NUL, valid UTF-8, in JSON and in YAML */
	{ SVC(", \"name\": \"web\\u0000evil\""),
	  { "<input>: services[0].name: the string contains a NUL character (\\u0000)" } },
	{ "services:\n  - {vip: 10.96.0.10, port: 80, protocol: tcp, name: \"web\\0evil\"}\n",
	  { "<input>: services[0].name: the string contains a NUL character" } },
	{ SVC(", \"name\": \"caf\xc3\""),
	  { "<input>: services[0].name: the string is not valid UTF-8 (bad byte 0xc3 at offset 3)" } },
	{ SVC(", \"name\": \"\xed\xa0\x80\""),
	  { "services[0].name: the string is not valid UTF-8 (bad byte 0xed at offset 0)" } },
	{ SVC(", \"name\": \"\xc0\xaf\""), { "services[0].name: the string is not valid UTF-8" } },
	{ SVC(", \"x\\u0000y\": 1"), { "<input>:1:", "a key contains a NUL character (\\u0000)" } },
	{ SVC(", \"n\xffme\": 1"), { "<input>: services[0]: a key is not valid UTF-8" } },
	{ "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	  "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	  "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	  "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	  "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
	  { "too large after expanding aliases" } },
};

static void test_rejects(void)
{
	struct desired d;

	for (size_t i = 0; i < ARRAY_SIZE(rejects); i++) {
		const struct reject_case *c = &rejects[i];
		int err = parse(&d, c->text);

		if (!ASSERT_EQ(err, -EINVAL, c->text)) {
			desired__free(&d);
			continue;
		}
		ASSERT_EQ(d.nservices, 0, "left empty");
		for (int k = 0; k < 3 && c->want[k]; k++)
			if (!has(c->want[k]))
				fprintf(stderr, "    input: %s\n", c->text);
	}
}

/* n nested lists, "[[...]]", or in YAML block style "- - - ... x" */
static char *nested(int n, bool block)
{
	char *s = malloc((size_t)n * 2 + 4), *p = s;

	if (!s)
		return NULL;
	for (int i = 0; i < n; i++) {
		*p++ = block ? '-' : '[';
		if (block)
			*p++ = ' ';
	}
	if (block)
		*p++ = 'x';
	for (int i = 0; !block && i < n; i++)
		*p++ = ']';
	*p = '\0';
	return s;
}

/* Nesting depth: 64 levels read, 65 refused with the limit named, by the
 * YAML reader, the JSON reader and the JSON-through-libyaml path alike. A
 * 100000-level text is refused too (it used to take a minute). */
static void test_depth_limit(void)
{
	int (*readers[])(const char *, size_t, const char *,
			 struct json_object **) = { yaml__parse, yaml__parse_json, yaml__load };
	const char *const names[] = { "yaml", "json", "load" };
	struct json_object *o;
	char what[64];

	for (int r = 0; r < 3; r++) {
		for (int n = YAMLJSON_MAX_DEPTH - 1; n <= YAMLJSON_MAX_DEPTH + 1; n++) {
			char *t = nested(n, false);

			if (!t)
				return;
			snprintf(what, sizeof(what), "%s: %d levels", names[r], n);
			if (n <= YAMLJSON_MAX_DEPTH) {
				ASSERT_OK(readers[r](t, strlen(t), "f", &o), what);
				json_object_put(o);
			} else if (ASSERT_EQ(readers[r](t, strlen(t), "f", &o), -EINVAL, what)) {
				ASSERT_TRUE(o == NULL, "nothing returned");
				has("f:1:");
				has("nested deeper than 64 levels (the limit for YAML and JSON input)");
			}
			free(t);
		}
	}
	for (int n = YAMLJSON_MAX_DEPTH; n <= YAMLJSON_MAX_DEPTH + 1; n++) {
		char *t = nested(n, true);

		if (!t)
			return;
		snprintf(what, sizeof(what), "YAML block: %d levels", n);
		if (n <= YAMLJSON_MAX_DEPTH) {
			ASSERT_OK(yaml__parse(t, strlen(t), "f", &o), what);
			json_object_put(o);
		} else if (ASSERT_EQ(yaml__parse(t, strlen(t), "f", &o), -EINVAL, what)) {
			has("nested deeper than 64 levels");
		}
		free(t);
	}
	for (int r = 0; r < 3; r++) {
		char *t = nested(100000, false);

		if (!t)
			return;
		ASSERT_EQ(readers[r](t, strlen(t), "deep", &o), -EINVAL, names[r]);
		has("deep:1:");
		has("nested deeper than 64 levels");
		free(t);
	}
}

/* The strict JSON reader (API messages, the state file) checks strings
 * and numbers as the YAML path does. */
static void test_json_reader(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "{\"a\": [\"x\", \"b\\u0000c\"]}",
		  "m: a[1]: the string contains a NUL character (\\u0000)" },
		{ "{\"a\\u0000b\": 1}", "m:1:4: a key contains a NUL character (\\u0000)" },
		{ "{\"a\": {\"b\": \"\xff\"}}",
		  "m: a.b: the string is not valid UTF-8 (bad byte 0xff at offset 0)" },
		{ "{\"port\": 080}", "m:1:10: number with a leading zero" },
		{ "[1, -007]", "m:1:5: number with a leading zero" },
		{ "{\"\xe2\x82\": 1}", "m: top level: a key is not valid UTF-8" },
	};
	const char *ok = "[0, -0, 0.5, 1e-05, 10, \"\\u00e9\\t\", \"\xc3\xa9\"]";
	struct json_object *o;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		if (ASSERT_EQ(yaml__parse_json(cases[i].text, strlen(cases[i].text), "m", &o),
			      -EINVAL, cases[i].text))
			has(cases[i].want);
		else
			json_object_put(o);
	}
	/* what stays accepted: 0, fractions, exponents, escapes, UTF-8 */
	ASSERT_OK(yaml__parse_json(ok, strlen(ok), "m", &o), sluice__errmsg());
	json_object_put(o);
}

static void test_too_many_backends(void)
{
	size_t cap = 64 * (SLUICE_MAX_SVC_BACKENDS + 2);
	char *text = malloc(cap);
	size_t len;
	struct desired d;

	if (!ASSERT_TRUE(text != NULL, "malloc"))
		return;
	len = (size_t)snprintf(text, cap,
			       "{\"services\": [{\"vip\": \"10.96.0.10\", \"port\": 80, "
			       "\"protocol\": \"tcp\", \"backends\": [");
	for (int i = 0; i <= SLUICE_MAX_SVC_BACKENDS; i++)
		len += (size_t)snprintf(text + len, cap - len,
					"%s{\"address\": \"10.1.%d.%d\", \"port\": 80}",
					i ? "," : "", i / 256, i % 256);
	snprintf(text + len, cap - len, "]}]}");
	ASSERT_EQ(parse(&d, text), -EINVAL, "1025 backends");
	has("services[0].backends: 1025 backends exceed the limit of 1024 per service");
	/* exactly the limit is fine */
	len = strlen(text);
	memmove(strstr(text, "{\"address\": \"10.1.4.0\"") - 1, "]}]}", 5);
	if (ASSERT_OK(parse(&d, text), sluice__errmsg())) {
		ASSERT_EQ(d.services[0].nbackends, SLUICE_MAX_SVC_BACKENDS, "1024 backends");
		desired__free(&d);
	}
	(void)len;
	free(text);
}

static void test_validate_model(void)
{
	struct desired_backend be[2] = {
		{ .port = 8080, .weight = 1 },
		{ .port = 8080, .weight = 1 },
	};
	struct desired_service svc = {
		.port = 80, .proto = IPPROTO_TCP, .nbackends = 2, .backends = be
	};
	struct desired_service two[2];
	struct desired d = { .nservices = 1, .services = &svc };

	sluice_addr__parse(&svc.vip, "10.96.0.10");
	sluice_addr__parse(&be[0].addr, "10.0.0.1");
	sluice_addr__parse(&be[1].addr, "10.0.0.2");
	ASSERT_OK(desired__validate(&d), "valid model (empty source means manual)");

	svc.port = 0;
	ASSERT_EQ(desired__validate(&d), -EINVAL, "port 0");
	has("services[0].port: 0 is out of range 1-65535");
	svc.port = 80;

	svc.proto = 1;
	ASSERT_EQ(desired__validate(&d), -EINVAL, "icmp");
	has("services[0].protocol: 1 is not tcp or udp");
	svc.proto = IPPROTO_TCP;

	be[1].addr = be[0].addr;
	ASSERT_EQ(desired__validate(&d), -EINVAL, "duplicate backend");
	has("services[0].backends[1]: 10.0.0.1:8080 is a duplicate of backends[0]");
	sluice_addr__parse(&be[1].addr, "fd00::2");
	ASSERT_EQ(desired__validate(&d), -EINVAL, "mixed family");
	has("services[0].backends[1].address: fd00::2 is IPv6");
	sluice_addr__parse(&be[1].addr, "10.0.0.2");

	be[0].weight = be[1].weight = 0;
	ASSERT_EQ(desired__validate(&d), -EINVAL, "all drained");
	has("every weight is 0");
	be[0].weight = 1;
	ASSERT_OK(desired__validate(&d), "one drained backend is fine");

	snprintf(svc.source, sizeof(svc.source), "helm");
	ASSERT_EQ(desired__validate(&d), -EINVAL, "bad source");
	has("services[0].source: \"helm\"");
	svc.source[0] = '\0';

	two[0] = svc;
	two[1] = svc;
	d.services = two;
	d.nservices = 2;
	ASSERT_EQ(desired__validate(&d), -EINVAL, "duplicate service");
	has("services[1]: 10.96.0.10:80/tcp is a duplicate of services[0]");
	two[1].proto = IPPROTO_UDP;
	ASSERT_OK(desired__validate(&d), "same VIP:port, other protocol");
	ASSERT_TRUE(desired__find(&d, &svc.vip, 80, IPPROTO_UDP) == &two[1], "find udp");
	ASSERT_TRUE(desired__find(&d, &svc.vip, 81, IPPROTO_UDP) == NULL, "find missing");
}

static void test_svc_ref(void)
{
	struct desired_service svc = {};
	char buf[DESIRED_SVC_REF_LEN];

	if (ASSERT_OK(desired__parse_svc_ref("10.96.0.10:80/tcp", &svc.vip, &svc.port, &svc.proto),
		      "v4")) {
		ASSERT_EQ(svc.port, 80, "port");
		ASSERT_EQ(svc.proto, IPPROTO_TCP, "tcp");
		ASSERT_TRUE(!strcmp(desired__svc_ref(&svc, buf, sizeof(buf)), "10.96.0.10:80/tcp"),
			    "format v4");
	}
	if (ASSERT_OK(desired__parse_svc_ref("[fd00::10]:53/udp", &svc.vip, &svc.port, &svc.proto),
		      "v6")) {
		ASSERT_EQ(svc.vip.family, SLUICE_AF_INET6, "family");
		ASSERT_TRUE(!strcmp(desired__svc_ref(&svc, buf, sizeof(buf)), "[fd00::10]:53/udp"),
			    "format v6");
	}
	ASSERT_EQ(desired__parse_svc_ref("10.0.0.1:80", &svc.vip, &svc.port, &svc.proto), -EINVAL,
		  "no proto");
	has("invalid service \"10.0.0.1:80\": expected VIP:PORT/PROTO");
	ASSERT_EQ(desired__parse_svc_ref("10.0.0.1/tcp", &svc.vip, &svc.port, &svc.proto), -EINVAL,
		  "no port");
	has("invalid service \"10.0.0.1/tcp\"");
	ASSERT_EQ(desired__parse_svc_ref("10.0.0.1:80/sctp", &svc.vip, &svc.port, &svc.proto),
		  -EINVAL, "sctp");
	has("sctp");
	ASSERT_EQ(desired__parse_svc_ref("10.0.0.1:0/tcp", &svc.vip, &svc.port, &svc.proto),
		  -EINVAL, "port 0");
	ASSERT_EQ(desired__parse_svc_ref("", &svc.vip, &svc.port, &svc.proto), -EINVAL, "empty");
}

static int count_entries(const char *dir)
{
	struct dirent *e;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_save_load(void)
{
	char dir[] = "/tmp/sluice-desired.XXXXXX", sub[128], path[160], bad[200];
	struct desired a, b, c;
	struct json_object *j;
	FILE *f;

	if (!ASSERT_TRUE(mkdtemp(dir) != NULL, "mkdtemp"))
		return;
	snprintf(sub, sizeof(sub), "%s/var/lib/sluice", dir);
	snprintf(path, sizeof(path), "%s/state.json", sub);
	if (!ASSERT_OK(parse(&a, web_json), "parse"))
		goto out;
	ASSERT_OK(desired__load(&b, path), "missing file loads");
	ASSERT_EQ(b.nservices, 0, "as the empty state");
	if (!ASSERT_OK(desired__save(&a, path), sluice__errmsg()))
		goto free_a;
	ASSERT_EQ(count_entries(sub), 1, "only state.json, no temp file left");
	if (ASSERT_OK(desired__load(&b, path), sluice__errmsg())) {
		ASSERT_TRUE(same_state(&a, &b), "loaded == saved");
		desired__free(&b);
	}
	j = json_object_from_file(path);
	ASSERT_TRUE(j && json_object_is_type(j, json_type_object), "file is plain JSON");
	json_object_put(j);
	/* overwrite with a smaller state */
	if (ASSERT_OK(parse(&c, "services: []"), "empty")) {
		ASSERT_OK(desired__save(&c, path), "overwrite");
		ASSERT_OK(desired__load(&b, path), "reload");
		ASSERT_EQ(b.nservices, 0, "overwritten");
		desired__free(&b);
	}
	ASSERT_EQ(count_entries(sub), 1, "still one file");
	/* corrupt file */
	f = fopen(path, "w");
	if (f) {
		fputs("{\"services\": [", f);
		fclose(f);
	}
	ASSERT_EQ(desired__load(&b, path), -EINVAL, "corrupt file");
	has(path);
	has("cannot load the state file");
	f = fopen(path, "w");
	if (f) {
		fputs("{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 0, \"protocol\": \"tcp\"}]}",
		      f);
		fclose(f);
	}
	ASSERT_EQ(desired__load(&b, path), -EINVAL, "invalid content");
	has(path);
	has("services[0].port: 0");
	/* a regular file where a directory should be */
	snprintf(bad, sizeof(bad), "%s/state.json/x/state.json", sub);
	ASSERT_NEQ(desired__save(&a, bad), 0, "save under a file");
	has("cannot create directory");
	unlink(path);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/var/lib", dir);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/var", dir);
	rmdir(sub);
free_a:
	desired__free(&a);
out:
	ASSERT_OK(rmdir(dir) ? -errno : 0, "temp dir cleaned");
}

struct diff_rec {
	char text[16][80];
	int n;
};

static void diff_cb(enum desired_change ch, const struct desired_service *o,
		    const struct desired_service *n, void *ctx)
{
	static const char *const names[] = { "add", "update", "delete" };
	struct diff_rec *r = ctx;
	char buf[DESIRED_SVC_REF_LEN];

	if (r->n < 16)
		snprintf(r->text[r->n++], sizeof(r->text[0]), "%s %s", names[ch],
			 desired__svc_ref(o ? o : n, buf, sizeof(buf)));
}

static void test_diff(void)
{
	static const char *const old_text =
		"services:\n"
		"  - {name: a, vip: 10.0.0.1, port: 80, protocol: tcp, backends: ["
		"{address: 10.1.0.1, port: 80}, {address: 10.1.0.2, port: 80, weight: 3}]}\n"
		"  - {name: b, vip: 10.0.0.2, port: 80, protocol: tcp, backends: ["
		"{address: 10.1.0.1, port: 80}]}\n"
		"  - {name: c, vip: 10.0.0.3, port: 80, protocol: tcp}\n"
		"  - {name: e, vip: 10.0.0.5, port: 80, protocol: tcp}\n";
	static const char *const new_text =
		"services:\n"
		"  - {name: d, vip: 10.0.0.4, port: 80, protocol: tcp}\n"
		"  - {name: c2, vip: 10.0.0.3, port: 80, protocol: tcp}\n"
		"  - {name: b, vip: 10.0.0.2, port: 80, protocol: tcp, backends: ["
		"{address: 10.1.0.1, port: 80, weight: 2}]}\n"
		"  - {name: a, vip: 10.0.0.1, port: 80, protocol: tcp, backends: ["
		"{address: 10.1.0.2, port: 80, weight: 3}, {address: 10.1.0.1, port: 80}]}\n";
	struct diff_rec r = {};
	struct desired o, n;

	if (!ASSERT_OK(parse(&o, old_text), sluice__errmsg()))
		return;
	if (!ASSERT_OK(parse(&n, new_text), sluice__errmsg())) {
		desired__free(&o);
		return;
	}
	desired__diff(&o, &n, diff_cb, &r);
	if (ASSERT_EQ(r.n, 4, "changes")) {
		/* key order; a's backends only moved around: no change */
		ASSERT_TRUE(!strcmp(r.text[0], "update 10.0.0.2:80/tcp"), r.text[0]);
		ASSERT_TRUE(!strcmp(r.text[1], "update 10.0.0.3:80/tcp"), r.text[1]);
		ASSERT_TRUE(!strcmp(r.text[2], "add 10.0.0.4:80/tcp"), r.text[2]);
		ASSERT_TRUE(!strcmp(r.text[3], "delete 10.0.0.5:80/tcp"), r.text[3]);
	}
	memset(&r, 0, sizeof(r));
	desired__diff(&n, &n, diff_cb, &r);
	ASSERT_EQ(r.n, 0, "no change against itself");
	desired__free(&o);
	desired__free(&n);
}

static struct sluice *open_maps(void)
{
	struct sluice_opts opts = {};
	struct sluice *s = NULL;

	if (!ASSERT_OK(sluice__open(&s, &opts), sluice__errmsg()))
		return NULL;
	return s;
}

/* The maps read back in key order equal `want` up to labels and order. */
static bool maps_hold(struct sluice *s, const struct desired *want)
{
	struct desired got;
	bool ok = true;
	struct diff_rec r = {};
	struct desired norm;

	if (!ASSERT_OK(desired__from_maps(s, &got), sluice__errmsg()))
		return false;
	/* labels are not in the maps: compare with them stripped */
	if (desired__copy(&norm, want))
		return false;
	for (__u32 i = 0; i < norm.nservices; i++) {
		norm.services[i].name[0] = '\0';
		snprintf(norm.services[i].source, sizeof(norm.services[i].source), "manual");
	}
	desired__diff(&got, &norm, diff_cb, &r);
	if (r.n) {
		ok = false;
		for (int i = 0; i < r.n; i++)
			TEST_FAIL("maps differ: %s", r.text[i]);
	}
	desired__free(&norm);
	desired__free(&got);
	return ok;
}

static void test_apply(void)
{
	struct desired empty = {}, a, b;
	struct sluice_svc_key *keys = NULL;
	struct sluice *s;
	__u32 n = 0;

	s = open_maps();
	if (!s)
		return;
	if (!ASSERT_OK(parse(&a, web_json), "parse a"))
		goto out;
	if (!ASSERT_OK(parse(&b,
			     "services:\n"
			     "  - name: web\n    vip: 10.96.0.10\n    port: 80\n    protocol: tcp\n"
			     "    backends:\n"
			     "      - {address: 10.0.1.2, port: 8080, weight: 0}\n"
			     "      - {address: 10.0.1.4, port: 8080, weight: 5}\n"
			     "  - {name: empty, vip: 10.96.0.11, port: 443, protocol: tcp}\n"
			     "  - {vip: 10.96.0.12, port: 443, protocol: udp, backends: "
			     "[{address: 10.0.1.9, port: 53}]}\n"),
		       "parse b"))
		goto free_a;
	if (!ASSERT_OK(desired__apply(s, &empty, &a), sluice__errmsg()))
		goto free_b;
	maps_hold(s, &a);
	if (ASSERT_OK(sluice__service_list(s, &keys, &n), sluice__errmsg()))
		ASSERT_EQ(n, 3, "three services listed, markers skipped");
	free(keys);
	if (ASSERT_OK(desired__apply(s, &a, &b), sluice__errmsg()))
		maps_hold(s, &b);
	ASSERT_OK(desired__apply(s, &b, &b), "nothing to do");
	maps_hold(s, &b);
	/* reconciliation: old read back from the maps */
	{
		struct desired cur;

		if (ASSERT_OK(desired__from_maps(s, &cur), "from_maps")) {
			ASSERT_OK(desired__apply(s, &cur, &a), sluice__errmsg());
			maps_hold(s, &a);
			desired__free(&cur);
		}
	}
	ASSERT_OK(desired__apply(s, &a, &empty), "delete all");
	maps_hold(s, &empty);
	/* an invalid new state is rejected before any map is written */
	b.services[0].backends[1].port = 0;
	ASSERT_EQ(desired__apply(s, &empty, &b), -EINVAL, "invalid new state");
	has("services[0].backends[1].port: 0");
	maps_hold(s, &empty);
free_b:
	desired__free(&b);
free_a:
	desired__free(&a);
out:
	sluice__close(s);
}

/* backend_addrs as (key, refs) pairs, in the map's order, into buf
 * (room for cap); returns the count. */
static __u32 addrs_dump(struct sluice *s, struct sluice_backend_addr_key *keys, __u32 *refs,
			__u32 cap)
{
	int fd = s->fds[SLUICE_MAP_BACKEND_ADDRS];
	struct sluice_backend_addr_key k, *prev = NULL;
	__u32 n = 0;

	while (n < cap && !bpf_map_get_next_key(fd, prev, &k)) {
		keys[n] = k;
		if (!bpf_map_lookup_elem(fd, &k, &refs[n]))
			n++;
		prev = &keys[n ? n - 1 : 0];
	}
	return n;
}

/* With a backends map of room entries: state ta applied, then tb
 * refused while adding 10.0.0.3 ("map full"). The maps hold ta again, and
 * every address of the reply filter is counted as before; the `lingering`
 * new ones stay at 0 (an address is never deleted: svc_addrs.c). */
static void apply_refused(const char *ta, const char *tb, __u32 room, __u32 lingering)
{
	static struct sluice_backend_addr_key k0[64], k1[64];
	static __u32 r0[64], r1[64];
	struct desired empty = {}, a, b;
	__u32 n0, n1;
	struct sluice *s;
	int small, real;

	s = open_maps();
	if (!s)
		return;
	real = s->fds[SLUICE_MAP_BACKENDS];
	small = bpf_map_create(BPF_MAP_TYPE_HASH, "small_be", sizeof(__u32),
			       sizeof(struct sluice_backend), room, NULL);
	if (!ASSERT_TRUE(small >= 0, "create small backends map"))
		goto out;
	s->fds[SLUICE_MAP_BACKENDS] = small;
	if (!ASSERT_OK(parse(&a, ta), "parse a"))
		goto restore;
	if (!ASSERT_OK(parse(&b, tb), "parse b"))
		goto free_a;
	if (!ASSERT_OK(desired__apply(s, &empty, &a), sluice__errmsg()))
		goto free_b;
	n0 = addrs_dump(s, k0, r0, 64);
	ASSERT_EQ(desired__apply(s, &a, &b), -E2BIG, "map full");
	has("adding 10.0.0.3:80/tcp: ");
	has("backends map");
	maps_hold(s, &a);
	n1 = addrs_dump(s, k1, r1, 64);
	ASSERT_EQ(n1, n0 + lingering, "backend_addrs entries: the new ones linger");
	for (__u32 i = 0; i < n1; i++) {
		__u32 want = 0;

		for (__u32 j = 0; j < n0; j++)
			if (!memcmp(&k0[j], &k1[i], sizeof(k0[j])))
				want = r0[j];
		if (!ASSERT_EQ(r1[i], want, "backend_addrs count as before"))
			break;
	}
free_b:
	desired__free(&b);
free_a:
	desired__free(&a);
restore:
	s->fds[SLUICE_MAP_BACKENDS] = real;
	close(small);
out:
	sluice__close(s);
}

/* Room for 4: delete 10.0.0.9, update 10.0.0.1, add 10.0.0.2 (4
 * backends), then 10.0.0.3 needs a 5th and 6th: its batched write is
 * refused at its first entry, after an update and an add happened. */
static void test_apply_rollback(void)
{
	apply_refused("services:\n"
		      "  - {vip: 10.0.0.1, port: 80, protocol: tcp, backends: ["
		      "{address: 10.1.0.1, port: 80}, {address: 10.1.0.2, port: 80}]}\n"
		      "  - {vip: 10.0.0.9, port: 80, protocol: tcp, backends: []}\n",
		      "services:\n"
		      "  - {vip: 10.0.0.1, port: 80, protocol: tcp, backends: ["
		      "{address: 10.1.0.1, port: 80, weight: 7}, "
		      "{address: 10.1.0.2, port: 80, weight: 3}]}\n"
		      "  - {vip: 10.0.0.2, port: 80, protocol: tcp, backends: ["
		      "{address: 10.1.0.3, port: 80}]}\n"
		      "  - {vip: 10.0.0.3, port: 80, protocol: tcp, backends: ["
		      "{address: 10.1.0.4, port: 80}, {address: 10.1.0.5, port: 80}]}\n",
		      4, 3);
}

/* Room for 4: 10.0.0.3 needs three new entries and only two fit, so its
 * batched write stops part way (two written, the third refused): those
 * two are undone with the rest. */
static void test_apply_rollback_partial(void)
{
	apply_refused("services:\n"
		      "  - {vip: 10.0.0.1, port: 80, protocol: tcp, backends: ["
		      "{address: 10.1.0.1, port: 80}, {address: 10.1.0.2, port: 80}]}\n",
		      "services:\n"
		      "  - {vip: 10.0.0.1, port: 80, protocol: tcp, backends: ["
		      "{address: 10.1.0.1, port: 80, weight: 7}, "
		      "{address: 10.1.0.2, port: 80}]}\n"
		      "  - {vip: 10.0.0.3, port: 80, protocol: tcp, backends: ["
		      "{address: 10.1.0.4, port: 80}, {address: 10.1.0.5, port: 80}, "
		      "{address: 10.1.0.6, port: 80}]}\n",
		      4, 3);
}

/* N services of one backend each (gen 0), or (gen 1) each backend moved
 * to a new address and the services from SLUICE_SET_GROUP on given ten. */
static char *many_state(__u32 n, int gen)
{
	size_t cap = (size_t)n * 400 + 64, len = 0;
	char *t = malloc(cap);

	if (!t)
		return NULL;
	len += snprintf(t + len, cap - len, "services:\n");
	for (__u32 i = 0; i < n; i++) {
		__u32 nb = gen && i >= SLUICE_SET_GROUP ? 10 : 1;

		len += snprintf(t + len, cap - len,
				"  - {vip: 10.0.%u.%u, port: 80, protocol: tcp, backends: [",
				i / 250, i % 250 + 1);
		for (__u32 j = 0; j < nb; j++)
			len += snprintf(t + len, cap - len, "%s{address: 10.%u.%u.%u, port: 80}",
					j ? ", " : "", 1u + (unsigned int)gen, i % 250, j + 1);
		len += snprintf(t + len, cap - len, "]}\n");
	}
	return t;
}

/* An apply that fails in its second group of services is undone whole,
 * the first group's changes too (in batches, not service by service). */
static void test_apply_rollback_groups(void)
{
	struct desired a, b;
	struct sluice *s;
	char *ta = NULL, *tb = NULL;
	int small, real;

	s = open_maps();
	if (!s)
		return;
	real = s->fds[SLUICE_MAP_BACKENDS];
	/* a: 300 backends; b needs 256 new ones before the first group's old
	 * ones go, then 440 for the second group: more than 600 */
	small = bpf_map_create(BPF_MAP_TYPE_HASH, "small_be", sizeof(__u32),
			       sizeof(struct sluice_backend), 600, NULL);
	if (!ASSERT_TRUE(small >= 0, "create small backends map"))
		goto out;
	s->fds[SLUICE_MAP_BACKENDS] = small;
	ta = many_state(SLUICE_SET_GROUP + 44, 0);
	tb = many_state(SLUICE_SET_GROUP + 44, 1);
	if (!ASSERT_TRUE(ta && tb, "alloc") || !ASSERT_OK(parse(&a, ta), sluice__errmsg()))
		goto restore;
	if (!ASSERT_OK(parse(&b, tb), sluice__errmsg()))
		goto free_a;
	if (!ASSERT_OK(desired__apply(s, NULL, &a), sluice__errmsg()))
		goto free_b;
	ASSERT_EQ(desired__apply(s, &a, &b), -E2BIG, "map full in the second group");
	has("updating 10.0.1."); /* a service of the second group */
	has("backends map");
	maps_hold(s, &a);
free_b:
	desired__free(&b);
free_a:
	desired__free(&a);
restore:
	s->fds[SLUICE_MAP_BACKENDS] = real;
	close(small);
out:
	free(ta);
	free(tb);
	sluice__close(s);
}

static const struct test tests[] = {
	TEST(test_json_round_trip),
	TEST(test_yaml_round_trip),
	TEST(test_example_file),
	TEST(test_rejects),
	TEST(test_depth_limit),
	TEST(test_json_reader),
	TEST(test_too_many_backends),
	TEST(test_validate_model),
	TEST(test_svc_ref),
	TEST(test_save_load),
	TEST(test_diff),
	TEST_ROOT(test_apply),
	TEST_ROOT(test_apply_rollback),
	TEST_ROOT(test_apply_rollback_partial),
	TEST_ROOT(test_apply_rollback_groups),
};

int main(int argc, char **argv)
{
	/* maps only, a few services: test-sized loads (lb_load.h) */
	test__lb_load = TEST_LB_SMALL_MAPS | TEST_LB_NO_PROGS;
	return test__run_all("desired", tests, ARRAY_SIZE(tests), argc, argv);
}
