// SPDX-License-Identifier: MIT
/*
 * test_desired_stream.c - the desired state read one service's tree at a
 * time (desired__from_text, jscan) and written one service at a time
 * (desired__write): the same bytes and the same verdicts as the whole-tree
 * paths, and hostile texts (deep nesting, truncation, huge numbers and
 * strings, too many services) refused in time linear in their size.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "desired.h"
#include "internal.h"
#include "jsonscan.h"
#include "test.h"
#include "yamljson.h"

static const char *const rich_json =
	"{\"nodeDenyFrom\": [\"198.51.100.0/24\", \"2001:db8::/32\"], \"services\": [\n"
	" {\"name\": \"we\\\"b/1 \\u00e9\", \"vip\": \"10.96.0.10\", \"port\": 80, \"protocol\": "
	"\"tcp\",\n"
	"  \"backends\": [{\"address\": \"10.0.1.2\", \"port\": 8080, \"weight\": 90},\n"
	"               {\"address\": \"10.0.1.3\", \"port\": 8080, \"weight\": 0, "
	"\"drainedWeight\": 7}],\n"
	"  \"outlierDetection\": {\"enabled\": true, \"consecutiveFailures\": 5},\n"
	"  \"sessionAffinity\": {\"type\": \"ClientIP\", \"timeoutSeconds\": 1800},\n"
	"  \"healthCheck\": {\"type\": \"http\", \"path\": \"/healthz\"},\n"
	"  \"sourceRanges\": [\"203.0.113.0/24\"],\n"
	"  \"allowFrom\": [\"10.0.0.0/8\"], \"denyFrom\": [\"10.66.0.0/16\"],\n"
	"  \"denyAction\": \"refuse\"},\n"
	" {\"vip\": \"fd00::10\", \"port\": 53, \"protocol\": \"udp\", \"source\": \"kubernetes\",\n"
	"  \"backends\": [{\"address\": \"fd00:1::2\", \"port\": 5353}]},\n"
	" {\"name\": \"empty\", \"vip\": \"10.96.0.11\", \"port\": 443, \"protocol\": \"tcp\"}\n"
	"]}\n";

/* The whole-tree reader: what desired__load_existing() did before. */
static int tree_parse(struct desired *d, const char *text, size_t len)
{
	struct json_object *root;
	int err;

	desired__init(d);
	err = yaml__parse_json(text, len, "t", &root);
	if (err)
		return err;
	err = desired__from_json(d, root);
	json_object_put(root);
	return err;
}

/* desired__write() into memory (a memfd). */
static char *write_text(const struct desired *d, size_t *len)
{
	int fd = memfd_create("stream", 0);
	char *buf = NULL;
	off_t end;

	if (fd < 0)
		return NULL;
	if (!desired__write(d, fd) && (end = lseek(fd, 0, SEEK_END)) >= 0 &&
	    (buf = calloc(1, (size_t)end + 1)) && pread(fd, buf, (size_t)end, 0) != end) {
		free(buf);
		buf = NULL;
	}
	*len = buf ? strlen(buf) : 0;
	close(fd);
	return buf;
}

/* What desired__save() wrote before: the whole tree, pretty. */
static char *tree_text(const struct desired *d)
{
	struct json_object *root = desired__to_json(d);
	const char *s = json_object_to_json_string_ext(
		root,
		JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = malloc(strlen(s) + 2);

	sprintf(out, "%s\n", s);
	json_object_put(root);
	return out;
}

static void check_write_same(const char *text, const char *what)
{
	struct desired d;
	char *a, *b;
	size_t len;

	if (!ASSERT_OK(tree_parse(&d, text, strlen(text)), what)) {
		fprintf(stderr, "    %s\n", sluice__errmsg());
		return;
	}
	a = write_text(&d, &len);
	b = tree_text(&d);
	if (ASSERT_TRUE(a && b, "texts")) {
		ASSERT_EQ(len, strlen(b), what);
		if (!ASSERT_TRUE(!strcmp(a, b), what))
			fprintf(stderr, "    streamed:\n%s\n    tree:\n%s\n", a, b);
	}
	free(a);
	free(b);
	desired__free(&d);
}

static void test_write_same_bytes(void)
{
	check_write_same(rich_json, "rich state");
	check_write_same("{\"services\": []}", "no services");
	check_write_same("{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 1, \"protocol\": "
			 "\"udp\"}]}",
			 "one service, no backends");
}

/* from_text and the tree reader agree: both read it (and write the same
 * bytes back) or both refuse it with the same message; or from_text hands
 * the text back (-EAGAIN) for the tree reader (duplicate keys, escaped
 * keys, json-c's leniencies such as a trailing comma, syntax errors). */
static unsigned handled; /* check_same() cases from_text read or refused itself */

static void check_same(const char *text, size_t len, const char *what)
{
	char tmsg[SLUICE_ERRMSG_LEN];
	struct desired a, b;
	int ea, eb;

	eb = tree_parse(&b, text, len);
	snprintf(tmsg, sizeof(tmsg), "%s", sluice__errmsg());
	ea = desired__from_text(&a, text, len, "t");
	if (ea == -EAGAIN) {
		ASSERT_EQ(a.nservices, 0, "nothing read");
		ASSERT_FALSE(sluice__errmsg()[0], "no message of its own");
	} else if (handled++, ASSERT_EQ(ea, eb, what)) {
		if (eb && !ASSERT_TRUE(!strcmp(sluice__errmsg(), tmsg), what))
			fprintf(stderr, "    stream: %s\n    tree:   %s\n", sluice__errmsg(), tmsg);
		if (!eb) {
			size_t la, lb;
			char *ta = write_text(&a, &la), *tb = write_text(&b, &lb);

			ASSERT_TRUE(ta && tb && la == lb && !memcmp(ta, tb, la), what);
			free(ta);
			free(tb);
		}
	}
	desired__free(&a);
	desired__free(&b);
}

static void test_same_verdicts(void)
{
	static const char *const texts[] = {
		"{\"services\": []}",
		"  {\"services\": [ ] , \"nodeDenyFrom\": null }  \n",
		"{}",
		"{\"services\": null}",
		"{\"services\": 5}",
		"{\"services\": [], \"servcies\": []}",
		"{\"services\": [], \"services\": []}",
		"{\"servi\\u0063es\": []}",
		"{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 99999, \"protocol\": \"tcp\"}]}",
		"{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 080, \"protocol\": \"tcp\"}]}",
		"{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 1e400, \"protocol\": \"tcp\"}]}",
		"{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": "
		"123456789012345678901234567890, \"protocol\": \"tcp\"}]}",
		"{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": -1, \"protocol\": \"tcp\"}]}",
		"{\"services\": [{\"vip\": \"10.0.0.\\u0000\", \"port\": 1, \"protocol\": \"tcp\"}]}",
		"{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 1, \"protocol\": \"tcp\"},\n"
		" {\"vip\": \"10.0.0.1\", \"port\": 1, \"protocol\": \"tcp\"}]}",
		"{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 1, \"protocol\": \"tcp\"}, 7]}",
		"{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 1, \"protocol\": \"tcp\",}]}",
		"{\"services\": [{\"vip\": \"10.0.0.1\" \"port\": 1}]}",
		"{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 1, \"protocol\": tcp}]}",
		"{\"services\": [], \"nodeDenyFrom\": [\"300.0.0.0/8\"]}",
		"{\"services\": []} trailing",
		"{\"services\": [\"\xff\"]}",
		"[]",
		"services: []",
		"",
	};

	handled = 0;
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		char what[64];

		snprintf(what, sizeof(what), "text %zu", i);
		check_same(texts[i], strlen(texts[i]), what);
	}
	check_same(rich_json, strlen(rich_json), "rich state");
	/* valid states and the services' own errors are its own, not handed
	 * back: 0, 1, 2 (missing), 5 (unknown field), 8 (range), 10, 11 (huge
	 * numbers), 12, 14 (duplicate service), 15 (not an object), 19, rich;
	 * a leading zero (9) and a NUL (13) are json text errors: handed back */
	ASSERT_EQ(handled, 12, "texts from_text reads or refuses itself");
}

/* A state of n services; service bad_port (if < n) has port 70000 (its
 * own error), bad_vip a VIP that is no address, bad_text a port written
 * "080" (a JSON text error: handed back to the tree reader). */
static char *parts_text(size_t n, size_t bad_port, size_t bad_vip, size_t bad_text, size_t *len)
{
	size_t cap = 64 + n * 256, off = 0;
	char *t = malloc(cap);

	if (!t)
		return NULL;
	off += (size_t)snprintf(t + off, cap - off, "{\"services\": [\n");
	for (size_t i = 0; i < n; i++) {
		char vip[32], port[16];

		if (i == bad_vip)
			snprintf(vip, sizeof(vip), "10.%zu.%zu.300", i / 256 % 256, i % 256);
		else
			snprintf(vip, sizeof(vip), "10.%zu.%zu.1", i / 256 % 256, i % 256);
		snprintf(port, sizeof(port), "%s",
			 i == bad_port ? "70000" :
			 i == bad_text ? "080" :
					 "80");
		off += (size_t)snprintf(
			t + off, cap - off,
			"%s {\"vip\": \"%s\", \"port\": %s, \"protocol\": \"tcp\", "
			"\"backends\": [{\"address\": \"10.200.%zu.%zu\", \"port\": "
			"8080}, {\"address\": \"10.201.%zu.%zu\", \"port\": 8080}]}\n",
			i ? "," : "", vip, port, i / 250, i % 250 + 1, i / 250, i % 250 + 1);
	}
	off += (size_t)snprintf(t + off, cap - off, "]}\n");
	*len = off;
	return t;
}

/* A big state is parsed in parts on every CPU (desired__parse_services):
 * the result and the error are those of one pass in order, whatever part
 * an error is in - the lowest service index wins, as it would reading in
 * order. 4096 services are 2-4 parts on 2-4 CPUs (one on one CPU). */
static void test_parts(void)
{
	const size_t n = 4096, none = (size_t)-1;
	struct desired d;
	size_t len;
	char *t;
	int err;

	t = parts_text(n, none, none, none, &len);
	if (ASSERT_TRUE(t, "text")) {
		check_same(t, len, "4096 services");
		if (ASSERT_OK(desired__from_text(&d, t, len, "t"), sluice__errmsg()))
			ASSERT_EQ(d.nservices, n, "every service read");
		desired__free(&d);
	}
	free(t);
	t = parts_text(n, 3000, none, none, &len);
	if (ASSERT_TRUE(t, "text"))
		check_same(t, len, "an error in a later part");
	free(t);
	t = parts_text(n, 3000, 100, none, &len);
	if (ASSERT_TRUE(t, "text"))
		check_same(t, len, "errors in the first and a later part");
	free(t);
	/* a later part's text error does not hide an earlier service's own
	 * error (the tree reader reports the text error: not compared) */
	t = parts_text(n, none, 200, 3500, &len);
	if (ASSERT_TRUE(t, "text")) {
		err = desired__from_text(&d, t, len, "t");
		ASSERT_EQ(err, -EINVAL, "services[200]'s own error");
		ASSERT_TRUE(strstr(sluice__errmsg(), "services[200].vip") != NULL,
			    sluice__errmsg());
		desired__free(&d);
	}
	free(t);
	/* an earlier text error hands the text back, message unset, whatever
	 * a later part found */
	t = parts_text(n, 3500, none, 100, &len);
	if (ASSERT_TRUE(t, "text")) {
		err = desired__from_text(&d, t, len, "t");
		ASSERT_EQ(err, -EAGAIN, "handed back");
		ASSERT_FALSE(sluice__errmsg()[0], "no message of its own");
		ASSERT_EQ(d.nservices, 0, "nothing read");
		desired__free(&d);
	}
	free(t);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* n copies of open, then n of close, inside a service's name field. */
static char *nested(size_t n, const char *head, const char *tail)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *t = malloc(hl + 2 * n + tl + 1);

	memcpy(t, head, hl);
	memset(t + hl, '[', n);
	memset(t + hl + n, ']', n);
	memcpy(t + hl + 2 * n, tail, tl + 1);
	return t;
}

static void test_hostile(void)
{
	struct desired d;
	double t0;
	size_t n, len;
	char *t;

	/* 1M levels inside a service, and at the top level */
	t = nested(1u << 20, "{\"services\": [{\"name\": ", "}]}");
	t0 = now_s();
	ASSERT_EQ(desired__from_text(&d, t, strlen(t), "t"), -EAGAIN, "deep inside a service");
	ASSERT_EQ(tree_parse(&d, t, strlen(t)), -EINVAL, "tree: too deep");
	ASSERT_TRUE(strstr(sluice__errmsg(), "nested deeper than 64"), sluice__errmsg());
	ASSERT_LE(now_s() - t0, 2.0 * test__time_scale(), "both linear in the text");
	free(t);
	t = nested(1u << 20, "{\"x\": ", "}");
	ASSERT_EQ(desired__from_text(&d, t, strlen(t), "t"), -EAGAIN, "deep at the top");
	free(t);
	/* 64 levels are fine, 65 are not, as for the tree reader */
	t = nested(62, "{\"services\": [{\"name\": ", "}]}");
	check_same(t, strlen(t), "64 levels");
	free(t);
	t = nested(63, "{\"services\": [{\"name\": ", "}]}");
	ASSERT_EQ(desired__from_text(&d, t, strlen(t), "t"), -EAGAIN, "65 levels");
	free(t);

	/* a 10 MB string: a name (refused by length) and a top-level key */
	n = 10u << 20;
	t = malloc(n + 256);
	n = (size_t)sprintf(t, "{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 1, "
			       "\"protocol\": \"tcp\", \"name\": \"");
	memset(t + n, 'a', 10u << 20);
	strcpy(t + n + (10u << 20), "\"}]}");
	t0 = now_s();
	check_same(t, strlen(t), "10 MB name");
	ASSERT_TRUE(strstr(sluice__errmsg(), "services[0].name"), sluice__errmsg());
	t[0] = '{';
	memcpy(t + 1, "\"", 1);
	memset(t + 2, 'k', 1000);
	strcpy(t + 1002, "\": 1}");
	ASSERT_EQ(desired__from_text(&d, t, strlen(t), "t"), -EAGAIN, "long top-level key");
	ASSERT_LE(now_s() - t0, 3.0 * test__time_scale(), "10 MB strings");
	free(t);

	/* more services than the limit: counted, not stored, not parsed */
	n = SLUICE_MAX_SERVICES + 5;
	t = malloc(2 * n + 32);
	len = (size_t)sprintf(t, "{\"services\": [");
	for (size_t i = 0; i < n; i++) {
		if (i)
			t[len++] = ',';
		t[len++] = '1';
	}
	strcpy(t + len, "]}");
	check_same(t, strlen(t), "too many services");
	ASSERT_TRUE(strstr(sluice__errmsg(), "services exceed the limit"), sluice__errmsg());
	free(t);
}

/* A state cut anywhere is never read as a (smaller) state. */
static void test_truncated(void)
{
	size_t len = strlen(rich_json), ok = 0, end = (size_t)(strrchr(rich_json, '}') - rich_json);
	struct desired d;

	/* every cut before the closing brace */
	for (size_t cut = 0; cut <= end; cut++) {
		int err = desired__from_text(&d, rich_json, cut, "t");

		if (err == 0) {
			ok++;
			desired__free(&d);
		}
		/* the whole-tree reader then says what is wrong */
		if (err == -EAGAIN && tree_parse(&d, rich_json, cut) == 0) {
			ok++;
			desired__free(&d);
		}
	}
	ASSERT_EQ(ok, 0, "no prefix of the state reads as a state");
	ASSERT_OK(desired__from_text(&d, rich_json, len, "t"), "the whole text");
	ASSERT_EQ(d.nservices, 3, "three services");
	ASSERT_EQ(d.nnode_deny, 2, "two node deny prefixes");
	desired__free(&d);
}

/* The state file: streamed save, streamed load, round trip; a YAML file
 * and a broken JSON file still load / fail as before. */
static void test_file_round_trip(void)
{
	char dir[] = "/tmp/sluice-stream.XXXXXX", path[128];
	struct desired a, b;
	char *ta, *tb;
	size_t la, lb;
	FILE *f;

	if (!ASSERT_TRUE(mkdtemp(dir) != NULL, "mkdtemp"))
		return;
	snprintf(path, sizeof(path), "%s/state.json", dir);
	if (!ASSERT_OK(tree_parse(&a, rich_json, strlen(rich_json)), "parse"))
		goto out;
	ASSERT_OK(desired__save(&a, path), "save");
	if (ASSERT_OK(desired__load_existing(&b, path), sluice__errmsg())) {
		ta = write_text(&a, &la);
		tb = write_text(&b, &lb);
		ASSERT_TRUE(ta && tb && la == lb && !memcmp(ta, tb, la), "loaded == saved");
		free(ta);
		free(tb);
		desired__free(&b);
	}
	f = fopen(path, "w");
	fputs("services:\n  - vip: 10.0.0.1\n    port: 80\n    protocol: tcp\n", f);
	fclose(f);
	if (ASSERT_OK(desired__load_existing(&b, path), "a YAML state file")) {
		ASSERT_EQ(b.nservices, 1, "its service");
		desired__free(&b);
	}
	f = fopen(path, "w");
	fputs("{\"services\": [{\"vip\": \"10.0.0.1\", \"port\": 80,\n \"protocol\": \"tcp\"}]", f);
	fclose(f);
	ASSERT_EQ(desired__load_existing(&b, path), -EINVAL, "broken JSON");
	ASSERT_TRUE(strstr(sluice__errmsg(), "state.json:2:"), sluice__errmsg());
	desired__free(&a);
out:
	unlink(path);
	rmdir(dir);
}

/* The API's lazy request: "desired" stays text, the rest is a tree. */
static void test_lazy_request(void)
{
	static const char req[] = "{\"op\": \"apply\", \"desired\": {\"services\": []}, "
				  "\"dry_run\": true, \"n\": 5}";
	struct json_object *o, *v;
	struct jscan_range r;
	const char *text;
	struct desired d;
	bool taken;
	size_t len;
	char *buf;

	buf = strdup(req);
	if (!ASSERT_OK(jscan__parse_lazy(buf, strlen(buf), "desired", "request", &o, &taken),
		       "lazy parse"))
		return;
	ASSERT_TRUE(taken, "the text belongs to the tree");
	ASSERT_TRUE(json_object_object_get_ex(o, "dry_run", &v) && json_object_get_boolean(v),
		    "dry_run");
	ASSERT_TRUE(json_object_object_get_ex(o, "n", &v) && json_object_get_int(v) == 5,
		    "a number that ends its member");
	if (ASSERT_TRUE(json_object_object_get_ex(o, "desired", &v) &&
				jscan__raw_get(v, &text, &len, &r),
			"desired stays text")) {
		ASSERT_EQ(len, strlen(req), "whole length");
		ASSERT_TRUE(r.len == 16 && !memcmp(text + r.off, "{\"services\": []}", 16),
			    "its range");
		ASSERT_OK(desired__from_text(&d, text + r.off, r.len, "request"), "read");
		desired__free(&d);
	}
	ASSERT_FALSE(jscan__raw_get(o, &text, &len, &r), "not a placeholder");
	json_object_put(o); /* frees buf */

	static const char *const refused[] = {
		"{\"op\": \"apply\", \"op\": \"x\"}",
		"{\"o\\u0070\": \"apply\"}",
		"{\"op\": \"apply\", \"desired\": {\"services\": [}",
		"{\"op\": apply}",
		"[1]",
	};
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		buf = strdup(refused[i]);
		ASSERT_EQ(jscan__parse_lazy(buf, strlen(buf), "desired", "request", &o, &taken),
			  -EAGAIN, refused[i]);
		ASSERT_FALSE(taken, "left to the caller");
		free(buf);
	}
}

/* The restart's lookups (desired_index) find what desired__find() finds. */
static void test_index(void)
{
	struct desired_index ix;
	struct desired d = { 0 };
	struct sluice_addr a;
	__u32 n = 5000, bad = 0;

	d.services = calloc(n, sizeof(*d.services));
	if (!ASSERT_TRUE(d.services != NULL, "calloc"))
		return;
	for (__u32 i = 0; i < n; i++) {
		struct desired_service *s = &d.services[i];

		s->vip.family = i % 3 ? SLUICE_AF_INET : SLUICE_AF_INET6;
		s->vip.addr[0] = htonl(0x0a600000 + i / 7);
		if (s->vip.family == SLUICE_AF_INET6)
			s->vip.addr[3] = i;
		s->port = (__u16)(80 + i % 7);
		s->proto = i % 2 ? IPPROTO_UDP : IPPROTO_TCP;
	}
	d.services[n - 1] = d.services[10]; /* a duplicate: the first one wins */
	d.nservices = n;
	desired__index_init(&ix, &d);
	for (__u32 i = 0; i < n; i++) {
		const struct desired_service *s = &d.services[i];

		a = s->vip;
		if (a.family == SLUICE_AF_INET)
			a.addr[1] = a.addr[2] = 0xdeadbeef; /* IPv4 reads one word */
		bad += desired__index_find(&ix, &a, s->port, s->proto) !=
		       desired__find(&d, &s->vip, s->port, s->proto);
	}
	ASSERT_EQ(bad, 0, "same service as desired__find() for every key");
	a = d.services[0].vip;
	ASSERT_TRUE(!desired__index_find(&ix, &a, 9, IPPROTO_TCP), "an absent key");
	desired__index_free(&ix);
	free(d.services);
}

/* desired__find_cached(): one index kept while the state changes under
 * it (meshd's requests) finds what desired__find() finds after services
 * are moved, removed (the array shrinks: no slot past its end is read)
 * and added, and a key the state lacks. */
static void test_index_cached(void)
{
	struct desired_index ix = { 0 };
	struct desired d = { 0 };
	__u32 n = 3000, bad = 0;

	d.services = calloc(n + 10, sizeof(*d.services));
	if (!ASSERT_TRUE(d.services != NULL, "calloc"))
		return;
	for (__u32 i = 0; i < n + 10; i++) {
		struct desired_service *s = &d.services[i];

		s->vip.family = SLUICE_AF_INET;
		s->vip.addr[0] = htonl(0x0a600000 + i);
		s->port = 80;
		s->proto = IPPROTO_TCP;
	}
	d.nservices = n;
	for (int round = 0; round < 4; round++) {
		struct desired_service *s, tmp;

		if (round == 1) { /* moved: a swap and a rotation */
			tmp = d.services[0];
			d.services[0] = d.services[n - 1];
			d.services[n - 1] = tmp;
		} else if (round == 2) { /* removed: the last 1000 */
			d.nservices = n - 1000;
		} else if (round == 3) { /* added: 10 new keys past the old end */
			d.services[d.nservices] = d.services[n + 5];
			d.nservices++;
		}
		for (__u32 i = 0; i < n + 10; i++) {
			struct sluice_addr a = { .family = SLUICE_AF_INET };

			a.addr[0] = htonl(0x0a600000 + i);
			s = desired__find_cached(&ix, &d, &a, 80, IPPROTO_TCP);
			bad += s != desired__find(&d, &a, 80, IPPROTO_TCP);
		}
		if (!ASSERT_EQ(bad, 0, "the same service as desired__find(), every key"))
			fprintf(stderr, "    round %d\n", round);
	}
	desired__index_free(&ix);
	free(d.services);
}

/* desired__validate_one()'s totals: a replacement with no more backends
 * than the service had skips the scan of every service, one with more is
 * still held to the node's total (SLUICE_MAX_BACKENDS - 1). */
static void test_validate_one_totals(void)
{
	__u32 per = 1024, limit = SLUICE_MAX_BACKENDS - 1, n = limit / per + 1;
	struct desired_backend *shared = calloc(per, sizeof(*shared));
	struct desired d = { 0 };
	struct desired_service svc;
	__u32 last;

	d.services = calloc(n, sizeof(*d.services));
	if (!ASSERT_TRUE(shared && d.services, "calloc"))
		goto out;
	for (__u32 j = 0; j < per; j++) {
		shared[j].addr.family = SLUICE_AF_INET;
		shared[j].addr.addr[0] = htonl(0x0a010000 + j);
		shared[j].port = 8080;
		shared[j].weight = 1;
	}
	/* n - 1 services of 1024, the last one short of the total by 10 */
	last = limit - (n - 1) * per - 10;
	for (__u32 i = 0; i < n; i++) {
		struct desired_service *s = &d.services[i];

		s->vip.family = SLUICE_AF_INET;
		s->vip.addr[0] = htonl(0x0a600000 + i);
		s->port = 80;
		s->proto = IPPROTO_TCP;
		s->backends = shared;
		s->nbackends = i + 1 < n ? per : last;
	}
	d.nservices = n;
	svc = d.services[n - 1];
	svc.backends[0].weight = 5; /* a weight change: the same count */
	ASSERT_OK(desired__validate_one(&d, n - 1, &svc), sluice__errmsg());
	svc.nbackends = last + 10; /* up to the total */
	ASSERT_OK(desired__validate_one(&d, n - 1, &svc), sluice__errmsg());
	svc.nbackends = last + 11; /* one past it */
	ASSERT_EQ(desired__validate_one(&d, n - 1, &svc), -EINVAL, "one past the total");
	ASSERT_TRUE(strstr(sluice__errmsg(), "backends in total exceed the limit") != NULL,
		    sluice__errmsg());
out:
	free(d.services);
	free(shared);
}

static const struct test tests[] = {
	TEST(test_index),
	TEST(test_index_cached),
	TEST(test_validate_one_totals),
	TEST(test_write_same_bytes),
	TEST(test_same_verdicts),
	TEST(test_hostile),
	TEST(test_truncated),
	TEST(test_file_round_trip),
	TEST(test_lazy_request),
	TEST(test_parts),
};

int main(int argc, char **argv)
{
	return test__run_all("desired_stream", tests, ARRAY_SIZE(tests), argc, argv);
}
