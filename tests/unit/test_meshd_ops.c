// SPDX-License-Identifier: MIT
/*
 * test_meshd_ops.c - the API op handlers (user/meshd/ops*.c) on the paths
 * that decide before the datapath is read: argument validation of service
 * and backend edits (each error names the argument, or the service by its
 * ref), not-found and already-there answers, and apply (dry run and
 * commit) with the maps a stand-in that holds a desired state. A refused
 * edit leaves maps and state file untouched. No root needed; no sluice
 * handle is opened, so answers that read the maps are not covered here
 * (tests/e2e/test_meshd.sh has them).
 */
#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "api.h"
#include "desired.h"
#include "meshd.h"
#include "ops.h"
#include "test.h"

static char dir[] = "/tmp/sluice-test-ops.XXXXXX";
static char path[PATH_MAX];

/* Maps holding a desired state; counts what was applied. */
struct fake_maps {
	struct desired held;
	int applies;
};

static int fake_read(void *ctx, struct desired *out)
{
	struct fake_maps *f = ctx;

	return desired__copy(out, &f->held);
}

static int fake_apply(void *ctx, const struct desired *old, const struct desired *next)
{
	struct fake_maps *f = ctx;

	(void)old;
	f->applies++;
	desired__free(&f->held);
	return desired__copy(&f->held, next);
}

static struct fake_maps maps;
static struct meshd m;

static const char *const web_json =
	"{\"services\": [{\"name\": \"web\", \"vip\": \"10.96.0.10\", \"port\": 80,"
	" \"protocol\": \"tcp\", \"backends\": [{\"address\": \"10.0.1.2\", \"port\": 8080}]}]}";

/* An agent whose state (file and maps) holds web_json. */
static bool setup(void)
{
	struct desired d;

	memset(&m, 0, sizeof(m));
	memset(&maps, 0, sizeof(maps));
	desired__init(&d);
	if (!ASSERT_OK(desired__from_string(&d, web_json, strlen(web_json)), "parse") ||
	    !ASSERT_OK(desired__save(&d, path), "save")) {
		desired__free(&d);
		return false;
	}
	desired__free(&d);
	if (!ASSERT_OK(state__load(&m.state, path), "load") ||
	    !ASSERT_OK(desired__copy(&maps.held, &m.state.desired), "maps"))
		return false;
	m.state.maps = (struct state_maps){ fake_read, fake_apply, &maps };
	return true;
}

static void teardown(void)
{
	state__free(&m.state);
	desired__free(&maps.held);
}

static struct json_object *req_of(const char *json)
{
	struct json_object *req = json_tokener_parse(json);

	if (!req)
		TEST_FAIL("bad test request %s", json);
	return req;
}

/* The handler's answer to json is an error containing want. */
static bool refused(ops__fn fn, const char *json, const char *want)
{
	struct json_object *req = req_of(json), *resp, *v;
	const char *msg = NULL;
	bool ok = false;

	if (!req)
		return false;
	resp = fn(&m, req);
	if (json_object_object_get_ex(resp, "ok", &v) && !json_object_get_boolean(v) &&
	    json_object_object_get_ex(resp, "error", &v))
		msg = json_object_get_string(v);
	if (msg && strstr(msg, want))
		ok = true;
	else
		TEST_FAIL("%s: answer %s lacks error \"%s\"", json,
			  json_object_to_json_string(resp), want);
	json_object_put(resp);
	json_object_put(req);
	return ok;
}

/* Nothing applied, the file and m.state.desired still web_json. */
static bool untouched(const char *what)
{
	struct desired d;
	bool ok;

	desired__init(&d);
	ok = ASSERT_EQ(maps.applies, 0, what) && ASSERT_OK(desired__load(&d, path), what) &&
	     ASSERT_EQ(d.nservices, 1, what) && ASSERT_EQ(d.services[0].nbackends, 1, what) &&
	     ASSERT_EQ(m.state.desired.nservices, 1, what) &&
	     ASSERT_EQ(m.state.desired.services[0].nbackends, 1, what);
	desired__free(&d);
	return ok;
}

static const struct refusal {
	ops__fn fn;
	const char *req, *error;
} refusals[] = {
	/* service arguments */
	{ ops__service_add, "{}", "service: missing, want \"VIP:PORT/PROTO\"" },
	{ ops__service_add, "{\"service\": 80}", "service: not a string" },
	{ ops__service_add, "{\"service\": \"10.96.0.10:80\"}", "service: " },
	{ ops__service_add, "{\"service\": \"10.96.0.999:80/tcp\"}", "service: " },
	{ ops__service_add, "{\"service\": \"10.96.0.10:80/tcp\"}",
	  "service 10.96.0.10:80/tcp already exists" },
	{ ops__service_add, "{\"service\": \"10.96.0.11:80/tcp\", \"name\": 7}",
	  "name: 7 is not a string" },
	/* the new service's own errors name it by its ref, not its index */
	{ ops__service_add,
	  "{\"service\": \"10.96.0.11:80/tcp\", \"backends\": [{\"address\": \"10.0.1.2\","
	  " \"port\": 70000}]}",
	  "10.96.0.11:80/tcp: backends[0].port: 70000" },
	{ ops__service_del, "{\"service\": \"10.96.0.11:80/tcp\"}",
	  "service 10.96.0.11:80/tcp not found" },
	{ ops__service_get, "{\"service\": \"[fd00::1]:53/udp\"}",
	  "service [fd00::1]:53/udp not found" },
	/* backend arguments */
	{ ops__backend_add, "{\"service\": \"10.96.0.10:80/tcp\"}", "backend: missing" },
	{ ops__backend_add, "{\"service\": \"10.96.0.10:80/tcp\", \"backend\": [1]}",
	  "backend: not a string" },
	{ ops__backend_add, "{\"service\": \"10.96.0.10:80/tcp\", \"backend\": \"10.0.1.3\"}",
	  "backend: " },
	{ ops__backend_add,
	  "{\"service\": \"10.96.0.10:80/tcp\", \"backend\": \"10.0.1.3:80\", \"weight\": \"9\"}",
	  "weight: \"9\" is not an integer" },
	{ ops__backend_add,
	  "{\"service\": \"10.96.0.10:80/tcp\", \"backend\": \"10.0.1.3:80\", \"weight\": 65536}",
	  "weight: 65536 is out of range 0-65535" },
	{ ops__backend_add,
	  "{\"service\": \"10.96.0.10:80/tcp\", \"backend\": \"10.0.1.3:80\", \"weight\": -1}",
	  "weight: -1 is out of range 0-65535" },
	{ ops__backend_add, "{\"service\": \"10.96.0.12:80/tcp\", \"backend\": \"10.0.1.3:80\"}",
	  "service 10.96.0.12:80/tcp not found" },
	{ ops__backend_add, "{\"service\": \"10.96.0.10:80/tcp\", \"backend\": \"10.0.1.2:8080\"}",
	  "backend 10.0.1.2:8080 is already in service 10.96.0.10:80/tcp" },
	{ ops__backend_del, "{\"service\": \"10.96.0.10:80/tcp\", \"backend\": \"10.0.1.9:8080\"}",
	  "backend 10.0.1.9:8080 is not in service 10.96.0.10:80/tcp" },
	{ ops__backend_weight,
	  "{\"service\": \"10.96.0.10:80/tcp\", \"backend\": \"10.0.1.2:8080\"}",
	  "weight: missing" },
	{ ops__backend_drain,
	  "{\"service\": \"10.96.0.10:80/tcp\", \"backend\": \"10.0.1.3:8080\"}",
	  "backend 10.0.1.3:8080 is not in service" },
	/* the last backend drained: every weight 0 is refused by the validation */
	{ ops__backend_drain,
	  "{\"service\": \"10.96.0.10:80/tcp\", \"backend\": \"10.0.1.2:8080\"}",
	  "10.96.0.10:80/tcp: backends: " },
	/* apply */
	{ ops__apply, "{}", "desired: missing" },
	{ ops__apply, "{\"desired\": {\"services\": []}, \"dry_run\": 1}",
	  "dry_run: 1 is not true or false" },
	{ ops__apply, "{\"desired\": {\"services\": [{\"vip\": \"10.96.0.10\"}]}}", "services[0]" },
	/* conntrack and telemetry ops refuse before reading anything */
	{ ops__conntrack_list, "{\"service\": \"nonsense\"}", "service: " },
	{ ops__conntrack_flush, "{\"service\": 1}", "service: not a string" },
	{ ops__connections_list, "{}", "telemetry is off (meshd --telemetry off)" },
	/* explain names the argument it cannot use before reading any map */
	{ ops__explain, "{\"client\": \"10.0.0.1:5\"}", "service: missing" },
	{ ops__explain, "{\"service\": \"10.96.0.10:80/tcp\"}",
	  "client: missing, want \"ADDR:PORT\" (or socketCookie)" },
	{ ops__explain, "{\"service\": \"10.96.0.10:80/tcp\", \"client\": 7}",
	  "client: not a string" },
	{ ops__explain, "{\"service\": \"10.96.0.10:80/tcp\", \"client\": \"10.0.0.1\"}",
	  "client: " },
	{ ops__explain, "{\"service\": \"10.96.0.10:80/tcp\", \"client\": \"10.0.0.1:0\"}",
	  "client: invalid port \"0\"" },
	{ ops__explain, "{\"service\": \"10.96.0.10:80/tcp\", \"socketCookie\": \"12x\"}",
	  "socketCookie: \"12x\" is not a decimal number" },
	{ ops__explain, "{\"service\": \"10.96.0.10:80/tcp\", \"socketCookie\": 12}",
	  "socketCookie: want a decimal number" },
	{ ops__explain,
	  "{\"service\": \"10.96.0.10:80/tcp\", \"socketCookie\": \"1\", \"netnsCookie\": \"-1\"}",
	  "netnsCookie: want a decimal number" },
	{ ops__explain,
	  "{\"service\": \"10.96.0.10:80/tcp\", \"socketCookie\": \"18446744073709551616\"}",
	  "socketCookie: \"18446744073709551616\" is not a decimal number" },
	{ ops__explain,
	  "{\"service\": \"10.96.0.10:80/tcp\", \"socketCookie\": \"1\", \"socketSource\": "
	  "\"10.0.0.1:x\"}",
	  "socketSource: \"10.0.0.1:x\": want ADDR or ADDR:PORT" },
	{ ops__explain,
	  "{\"service\": \"10.96.0.10:80/tcp\", \"socketCookie\": \"1\", \"routeSource\": 5}",
	  "routeSource: not a string" },
	/* access policy (#15): refused before any map is read */
	{ ops__policy_get, "{}", "service: missing" },
	{ ops__policy_get, "{\"service\": \"10.96.0.99:80/tcp\"}",
	  "service 10.96.0.99:80/tcp not found" },
	{ ops__policy_node_set, "{\"nodeDenyFrom\": \"10.0.0.0/8\"}",
	  "nodeDenyFrom: expected a list of CIDRs" },
	{ ops__policy_node_set, "{\"nodeDenyFrom\": [7]}", "nodeDenyFrom[0]: " },
	{ ops__policy_node_set, "{\"nodeDenyFrom\": [\"10.0.0.0/8\", \"10.1.0.0/16\"]}",
	  "nodeDenyFrom[1]: \"10.1.0.0/16\" lies inside nodeDenyFrom[0] \"10.0.0.0/8\"" },
	{ ops__service_set,
	  "{\"service\": \"10.96.0.10:80/tcp\", \"allowFrom\": {\"10.0.0.0/8\": 1}}",
	  "allowFrom: expected a list of CIDR" },
};

/* A node list one prefix over SLUICE_POLICY_NODE_RULES (~2.6 MB of JSON):
 * refused by its length before any prefix is parsed or any map read. */
static void test_policy_node_oversized(void)
{
	size_t n = SLUICE_POLICY_NODE_RULES + 1, len = 32 + n * 20, off;
	char *req = malloc(len), want[96];

	if (!ASSERT_TRUE(req != NULL, "malloc") || !setup()) {
		free(req);
		return;
	}
	off = (size_t)snprintf(req, len, "{\"nodeDenyFrom\": [");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(req + off, len - off, "%s\"10.%zu.%zu.%zu/32\"",
					i ? "," : "", i >> 16 & 255, i >> 8 & 255, i & 255);
	snprintf(req + off, len - off, "]}");
	snprintf(want, sizeof(want), "nodeDenyFrom: %zu rules exceed the limit of %u", n,
		 SLUICE_POLICY_NODE_RULES);
	if (refused(ops__policy_node_set, req, want))
		untouched("oversized nodeDenyFrom");
	teardown();
	free(req);
}

static void test_refusals(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(refusals); i++) {
		const struct refusal *r = &refusals[i];

		if (!setup())
			return;
		if (refused(r->fn, r->req, r->error))
			untouched(r->req);
		teardown();
	}
}

static struct json_object *answer_data(struct json_object *resp)
{
	struct json_object *v;

	if (!json_object_object_get_ex(resp, "ok", &v) || !json_object_get_boolean(v) ||
	    !json_object_object_get_ex(resp, "data", &v)) {
		TEST_FAIL("not ok: %s", json_object_to_json_string(resp));
		return NULL;
	}
	return v;
}

static const char *const apply_req =
	"{\"desired\": {\"services\": [{\"vip\": \"10.96.0.20\", \"port\": 53, \"protocol\": "
	"\"udp\", \"backends\": [{\"address\": \"10.0.2.2\", \"port\": 53}]}]}%s}";

/* What apply answers: one change per service, in diff order. */
static bool changes_are(struct json_object *data, const char *want)
{
	struct json_object *v;

	if (!json_object_object_get_ex(data, "changes", &v))
		return ASSERT_TRUE(false, "changes");
	if (!strcmp(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE),
		    want))
		return true;
	TEST_FAIL("changes %s, expected %s", json_object_to_json_string(v), want);
	return false;
}

/* apply of apply_req (with extra arguments) answers the changes in want
 * and whether it applied them. */
static void apply_answers(const char *extra, const char *want, bool applied)
{
	struct json_object *req, *resp, *data, *v;
	char text[512];

	snprintf(text, sizeof(text), apply_req, extra);
	req = req_of(text);
	resp = ops__apply(&m, req);
	data = answer_data(resp);
	if (data && changes_are(data, want) && json_object_object_get_ex(data, "applied", &v))
		ASSERT_EQ(json_object_get_boolean(v), applied, "applied");
	json_object_put(resp);
	json_object_put(req);
}

static void test_apply(void)
{
	static const char *const want =
		"[{\"action\":\"delete\",\"service\":\"10.96.0.10:80/tcp\"},"
		"{\"action\":\"add\",\"service\":\"10.96.0.20:53/udp\"}]";
	struct desired d;

	if (!setup())
		return;
	apply_answers(", \"dry_run\": true", want, false);
	untouched("a dry run applies nothing");
	apply_answers("", want, true);
	ASSERT_EQ(maps.applies, 1, "one apply");
	ASSERT_EQ(m.state.desired.nservices, 1, "state");
	desired__init(&d);
	if (ASSERT_OK(desired__load(&d, path), "reload") && ASSERT_EQ(d.nservices, 1, "file"))
		ASSERT_EQ(d.services[0].port, 53, "the file holds the applied state");
	desired__free(&d);
	teardown();
}

/* The answer's "changes" is text written from meshd's list of changes
 * (#16: not a tree of objects); serialized, it is what json-c writes for
 * the tree of the same changes, for each flag set that spells spacing and
 * escaping, and for no changes at all. */
static void changes_as_tree(const char *extra, const char *const *svcs, const char *const *acts,
			    int n)
{
	static const int flag_sets[] = {
		JSON_C_TO_STRING_PLAIN,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		JSON_C_TO_STRING_SPACED,
		JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE,
	};
	struct json_object *req, *resp, *data, *got, *tree = json_object_new_array();
	char text[512], want[1024];

	for (int i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "action", json_object_new_string(acts[i]));
		json_object_object_add(o, "service", json_object_new_string(svcs[i]));
		json_object_array_add(tree, o);
	}
	snprintf(text, sizeof(text), apply_req, extra);
	req = req_of(text);
	resp = ops__apply(&m, req);
	data = answer_data(resp);
	if (data && ASSERT_TRUE(json_object_object_get_ex(data, "changes", &got), "changes")) {
		for (size_t f = 0; f < sizeof(flag_sets) / sizeof(flag_sets[0]); f++) {
			snprintf(want, sizeof(want), "%s",
				 json_object_to_json_string_ext(tree, flag_sets[f]));
			if (!ASSERT_TRUE(!strcmp(json_object_to_json_string_ext(got, flag_sets[f]),
						 want),
					 "changes as json-c writes the tree")) {
				fprintf(stderr, "    flags %d: got %s\n    expected %s\n",
					flag_sets[f],
					json_object_to_json_string_ext(got, flag_sets[f]), want);
				break;
			}
		}
	}
	json_object_put(resp);
	json_object_put(req);
	json_object_put(tree);
}

static void test_apply_changes_text(void)
{
	static const char *const svcs[] = { "10.96.0.10:80/tcp", "10.96.0.20:53/udp" };
	static const char *const acts[] = { "delete", "add" };

	if (!setup())
		return;
	changes_as_tree(", \"dry_run\": true", svcs, acts, 2);
	changes_as_tree("", svcs, acts, 2);
	changes_as_tree("", svcs, acts, 0); /* the same state again: none */
	teardown();
}

static const struct test tests[] = {
	TEST(test_refusals),
	TEST(test_policy_node_oversized),
	TEST(test_apply),
	TEST(test_apply_changes_text),
};

int main(int argc, char **argv)
{
	int rc;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/state.json", dir);
	/* commits log each change at info: only errors here */
	log__set_level(LOG_LEVEL_ERROR);
	rc = test__run_all("meshd_ops", tests, ARRAY_SIZE(tests), argc, argv);
	unlink(path);
	rmdir(dir);
	return rc;
}
