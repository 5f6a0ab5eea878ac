// SPDX-License-Identifier: MIT
/*
 * test_desired_read.c - desired__from_file() and desired__from_string()
 * (what `meshctl apply -f` reads) take plain JSON one service's tree at a
 * time (jscan__plain() + desired__from_text()) and give exactly what the
 * libyaml reader gave before: the same verdict, the same message (file
 * name, path, line and column), the same model; and desired__write_plain()
 * writes the bytes the whole tree gave (the apply request). Hostile texts:
 * deep nesting, a 10 MB string, a file past the limit, every truncation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "desired.h"
#include "internal.h"
#include "jsonscan.h"
#include "test.h"
#include "yamljson.h"

/* The reader before #16's apply work: the whole text through yaml__load()
 * (libyaml, json-c for what libyaml cannot read) into one tree. */
static int old_parse(struct desired *d, const char *text, size_t len, const char *name)
{
	char msg[SLUICE_ERRMSG_LEN];
	struct json_object *root;
	int err;

	sluice__clear_err();
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

static char *plain_text(const struct desired *d)
{
	struct json_object *o = desired__to_json(d);
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));

	json_object_put(o);
	return s;
}

/* desired__write_plain() into memory (a memfd). */
static char *write_plain(const struct desired *d, size_t max, int *err)
{
	int fd = memfd_create("plain", 0);
	size_t written = 0;
	char *buf = NULL;
	off_t end;

	*err = desired__write_plain(d, fd, max, &written);
	end = lseek(fd, 0, SEEK_END);
	if (end >= 0 && (size_t)end == written && (buf = calloc(1, (size_t)end + 1)) &&
	    pread(fd, buf, (size_t)end, 0) != end) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	return buf;
}

static unsigned streamed; /* check_same() texts jscan__plain() vouched for */

/* The new reader against the old one, through a file named "f.json". */
static bool check_same(const char *text, size_t len, const char *what)
{
	char omsg[SLUICE_ERRMSG_LEN], path[] = "/tmp/sluice-dread-XXXXXX";
	struct desired a, b;
	bool same = true;
	int ea, eb, fd;

	fd = mkstemp(path);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
		ASSERT_TRUE(false, "temporary file");
		return false;
	}
	close(fd);
	eb = old_parse(&b, text, len, path);
	snprintf(omsg, sizeof(omsg), "%s", sluice__errmsg());
	streamed += !jscan__plain(text, len);
	ea = desired__from_file(&a, path);
	unlink(path);
	if (!ASSERT_EQ(ea, eb, what)) {
		same = false;
	} else if (eb && strcmp(sluice__errmsg(), omsg)) {
		ASSERT_TRUE(false, what);
		same = false;
	} else if (!eb) {
		char *ta = plain_text(&a), *tb = plain_text(&b);

		same = ASSERT_TRUE(ta && tb && !strcmp(ta, tb), what);
		free(ta);
		free(tb);
	}
	if (!same)
		fprintf(stderr, "    %s\n    new (%d): %s\n    old (%d): %s\n", what, ea,
			ea ? sluice__errmsg() : "ok", eb, eb ? omsg : "ok");
	desired__free(&a);
	desired__free(&b);
	return same;
}

static const char *const rich_json =
	"{\"nodeDenyFrom\": [\"198.51.100.0/24\", \"2001:db8::/32\"], \"services\": [\n"
	" {\"name\": \"web/1 \xc3\xa9 \xf0\x9f\x8c\x90\", \"vip\": \"10.96.0.10\", \"port\": 80, "
	"\"protocol\": \"tcp\",\r\n"
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

#define SVC "{\"vip\": \"10.0.0.1\", \"protocol\": \"tcp\", "

static void test_same_as_old_reader(void)
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
		"{\"services\": [" SVC "\"port\": 99999}]}",
		"{\"services\": [" SVC "\"port\": 080}]}",
		"{\"services\": [" SVC "\"port\": 1e400}]}",
		"{\"services\": [" SVC "\"port\": 80.0}]}",
		"{\"services\": [" SVC "\"port\": 8e1}]}",
		"{\"services\": [" SVC "\"port\": 123456789012345678901234567890}]}",
		"{\"services\": [" SVC "\"port\": 1234567890123456789}]}",
		"{\"services\": [" SVC "\"port\": 123456789012345678}]}",
		"{\"services\": [" SVC "\"port\": -1}]}",
		"{\"services\": [" SVC "\"port\": -0}]}",
		"{\"services\": [" SVC "\"port\": true}]}",
		"{\"services\": [" SVC "\"port\": null}]}",
		"{\"services\": [" SVC "\"port\": \"80\"}]}",
		"{\"services\": [" SVC "\"port\": 80, \"port\": 81}]}",
		"{\"services\": [" SVC "\"port\": 80, \"backends\": [{\"address\": \"10.1.1.1\", "
		"\"port\": 1, \"port\": 2}]}]}",
		"{\"services\": [" SVC "\"port\": 80, \"name\": \"a\\tb\"}]}",
		"{\"services\": [" SVC "\"port\": 80, \"name\": \"a\\/b\"}]}",
		"{\"services\": [" SVC "\"port\": 80, \"name\": \"\\u00e9\"}]}",
		"{\"services\": [" SVC "\"port\": 80, \"name\": \"\xc3\xa9\"}]}",
		"{\"services\": [" SVC "\"port\": 80, \"name\": \"\xc0\xaf\"}]}",
		"{\"services\": [" SVC "\"port\": 80, \"name\": \"\xed\xa0\x80\"}]}",
		"{\"services\": [" SVC "\"port\": 80, \"name\": \"\xf4\x90\x80\x80\"}]}",
		"{\"services\": [" SVC "\"port\": 80, \"name\": \"\xe2\x82\"}]}",
		"{\"services\": [" SVC "\"port\": 80},\n\t" SVC "\"port\": 81}]}",
		"{\"services\": [" SVC "\"port\": 80}, " SVC "\"port\": 80}]}",
		"{\"services\": [" SVC "\"port\": 80}, 7]}",
		"{\"services\": [" SVC "\"port\": 80,}]}",
		"{\"services\": [{\"vip\": \"10.0.0.1\" \"port\": 1}]}",
		"{\"services\": [" SVC "\"port\": 80, \"bogus\": 1}]}",
		"{\"services\": [" SVC "\"port\": tcp}]}",
		"{\"services\": [" SVC "\"port\": truex}]}",
		"{\"services\": [], \"nodeDenyFrom\": [\"300.0.0.0/8\"]}",
		"{\"services\": []} trailing",
		"{\"services\": []}{}",
		"{\"services\": [\"\xff\"]}",
		"[]",
		"services: []",
		"services:\n  - vip: 10.0.0.1\n    port: 80\n    protocol: tcp\n",
		"services:\n  - vip: 10.0.0.1\n    port: 80\n    port: 81\n",
		"# nothing\n",
		"",
		"\xef\xbb\xbf{\"services\": []}",
		"{\"services\": [" SVC "\"port\": 80}]}\r\n",
	};

	streamed = 0;
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		char what[64];

		snprintf(what, sizeof(what), "text %zu", i);
		check_same(texts[i], strlen(texts[i]), what);
	}
	check_same(rich_json, strlen(rich_json), "rich state");
	/* plain, read one service at a time: 0-5, 8, 15-20, 26, 32, 33, 36,
	 * 39, 43 ("[]", then handed back), 50 and the rich state; not: the
	 * duplicate keys (6, 21, 22: libyaml names them), escapes, floats and
	 * 19+ digits, tabs, bad UTF-8, trailing text, YAML, a BOM */
	ASSERT_EQ(streamed, 21, "texts read one service at a time");
}

/* Every truncation of a valid file: the same error, line and column. */
static void test_truncated(void)
{
	size_t len = strlen(rich_json);
	unsigned bad = 0;

	for (size_t n = 0; n < len; n++)
		bad += !check_same(rich_json, n, "truncated");
	ASSERT_EQ(bad, 0, "every truncation: the old verdict and message");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* n services x 10 backends, as Python's json.dump writes them. */
static char *big_text(size_t n, size_t *len)
{
	size_t cap = n * 700 + 64, off = 0;
	char *t = malloc(cap);

	off += (size_t)snprintf(t, cap, "{\"services\": [");
	for (size_t i = 0; i < n; i++) {
		off += (size_t)snprintf(t + off, cap - off,
					"%s{\"vip\": \"10.%zu.%zu.%zu\", \"port\": 80, "
					"\"protocol\": \"tcp\", \"backends\": [",
					i ? ", " : "", 96 + i / 65536, i / 256 % 256, i % 256);
		for (size_t j = 0; j < 10; j++)
			off += (size_t)snprintf(
				t + off, cap - off,
				"%s{\"address\": \"10.200.%zu.%zu\", \"port\": 8080, "
				"\"weight\": 1}",
				j ? ", " : "", (i * 10 + j) / 250 % 250, (i * 10 + j) % 250 + 1);
		off += (size_t)snprintf(t + off, cap - off, "]}");
	}
	off += (size_t)snprintf(t + off, cap - off, "]}\n");
	*len = off;
	return t;
}

/*
 * Peak memory growth of a call, in kB. Without ASan: VmHWM, reset through
 * clear_refs. Under ASan (make unit-san) RSS says nothing about the code:
 * freed blocks sit in ASan's quarantine (up to 256 MB) and count as
 * resident, so there the peak of live heap bytes is tracked through the
 * sanitizer's malloc/free hooks instead (what the code holds at once).
 */
#if defined(__SANITIZE_ADDRESS__)
#define PEAK_BY_HOOKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PEAK_BY_HOOKS 1
#endif
#endif

#ifdef PEAK_BY_HOOKS
/* Declared here: gcc ships libasan without its interface headers. */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
					      void (*free_hook)(const volatile void *));
size_t __sanitizer_get_allocated_size(const volatile void *p);

static long long live_bytes, peak_bytes;
static int hooks_installed;

static void on_malloc(const volatile void *ptr, size_t size)
{
	long long now = __atomic_add_fetch(&live_bytes, (long long)size, __ATOMIC_RELAXED);
	long long peak = __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED);

	(void)ptr;
	while (now > peak && !__atomic_compare_exchange_n(&peak_bytes, &peak, now, 0,
							  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* Called before the block goes: its size is still known. Blocks from
 * before the reset count too, so live_bytes is growth, possibly negative. */
static void on_free(const volatile void *ptr)
{
	__atomic_sub_fetch(&live_bytes, (long long)__sanitizer_get_allocated_size(ptr),
			   __ATOMIC_RELAXED);
}

static const char *peak_measure = "live heap (ASan hooks)";

static void peak_reset(void)
{
	if (!hooks_installed)
		hooks_installed = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
	__atomic_store_n(&live_bytes, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&peak_bytes, 0, __ATOMIC_RELAXED);
}

/* -1 when the hooks could not be installed: the check then fails. */
static long peak_grown_kb(void)
{
	return hooks_installed ? (long)(__atomic_load_n(&peak_bytes, __ATOMIC_RELAXED) / 1024) : -1;
}
#else
static const char *peak_measure = "peak RSS (VmHWM)";
static long hwm_before = -1;

static long vm_hwm_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static void peak_reset(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, "5", 1) != 1)
			perror("clear_refs");
		close(fd);
	}
	hwm_before = vm_hwm_kb();
}

/* -1 when VmHWM cannot be read: the check then fails. */
static long peak_grown_kb(void)
{
	long now = vm_hwm_kb();

	return hwm_before > 0 && now > 0 ? now - hwm_before : -1;
}
#endif

/* 10k services x 10: the model plus one service's tree, not the whole
 * tree (~120 MB of json-c objects); the writer's bytes equal the tree's. */
static void test_big_bounded(void)
{
	size_t len, n = 10000;
	char *t = big_text(n, &len), *w, *p;
	long grown;
	struct desired d;
	int err;

	peak_reset();
	err = desired__from_string(&d, t, len);
	grown = peak_grown_kb();
	ASSERT_EQ(err, 0, sluice__errmsg());
	ASSERT_EQ(d.nservices, n, "every service");
	fprintf(stderr, "    10k services (%zu bytes): %s grew %ld kB\n", len, peak_measure, grown);
	ASSERT_TRUE(grown >= 0 && grown < 24 * 1024, "peak memory growth below 24 MB");
	free(t);

	w = write_plain(&d, SIZE_MAX, &err);
	p = plain_text(&d);
	ASSERT_EQ(err, 0, "written");
	ASSERT_TRUE(w && p && !strcmp(w, p), "write_plain: the tree's plain bytes");
	free(w);
	w = write_plain(&d, strlen(p) - 1, &err);
	ASSERT_EQ(err, -EMSGSIZE, "one byte short of the limit");
	free(w);
	w = write_plain(&d, strlen(p), &err);
	ASSERT_EQ(err, 0, "exactly at the limit");
	free(w);
	free(p);
	desired__free(&d);
}

static void test_write_plain_same(void)
{
	struct desired d;
	char *w, *p;
	int err;

	ASSERT_EQ(desired__from_string(&d, rich_json, strlen(rich_json)), 0, sluice__errmsg());
	w = write_plain(&d, SIZE_MAX, &err);
	p = plain_text(&d);
	ASSERT_TRUE(w && p && !strcmp(w, p), "rich: the tree's plain bytes");
	ASSERT_TRUE(w && !strchr(w, '\n'), "one line");
	free(w);
	free(p);
	desired__free(&d);
	desired__init(&d);
	w = write_plain(&d, SIZE_MAX, &err);
	ASSERT_TRUE(w && !strcmp(w, "{\"services\":[]}"), "empty state");
	free(w);
}

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
	char path[] = "/tmp/sluice-dread-XXXXXX";
	struct desired d;
	size_t big = 10u << 20;
	double t0;
	char *t;
	int fd;

	t = nested(1u << 20, "{\"services\": [{\"name\": ", "}]}");
	t0 = now_s();
	ASSERT_TRUE(jscan__plain(t, strlen(t)), "1M levels: not plain");
	ASSERT_EQ(desired__from_string(&d, t, strlen(t)), -EINVAL, "1M levels refused");
	ASSERT_TRUE(strstr(sluice__errmsg(), "deeper than 64"), sluice__errmsg());
	check_same(t, strlen(t), "1M levels");
	ASSERT_LE(now_s() - t0, 4.0 * test__time_scale(), "linear in the text");
	free(t);

	/* a 10 MB name: plain, refused by the field's rule, in linear time */
	t = malloc(big + 128);
	fd = snprintf(t, 128, "{\"services\": [" SVC "\"port\": 80, \"name\": \"");
	memset(t + fd, 'a', big);
	strcpy(t + fd + big, "\"}]}");
	t0 = now_s();
	ASSERT_EQ(jscan__plain(t, strlen(t)), 0, "10 MB string: plain");
	ASSERT_EQ(desired__from_string(&d, t, strlen(t)), -EINVAL, "10 MB name refused");
	ASSERT_TRUE(strstr(sluice__errmsg(), "services[0].name"), sluice__errmsg());
	check_same(t, strlen(t), "10 MB name");
	ASSERT_LE(now_s() - t0, 4.0 * test__time_scale(), "linear in the text");
	free(t);

	/* 65 members in one object: past the plain walk's key list */
	t = malloc(65 * 16 + 64);
	fd = snprintf(t, 64, "{\"services\": [], \"x\": {");
	for (int i = 0; i < 65; i++)
		fd += snprintf(t + fd, 16, "%s\"k%d\": 1", i ? ", " : "", i);
	strcpy(t + fd, "}}");
	ASSERT_TRUE(jscan__plain(t, strlen(t)), "65 members: not plain");
	check_same(t, strlen(t), "65 members");
	free(t);

	/* a file past the reader's 64 MiB */
	fd = mkstemp(path);
	ASSERT_TRUE(fd >= 0 && !ftruncate(fd, (64 << 20) + 1), "sparse file");
	close(fd);
	ASSERT_TRUE(desired__from_file(&d, path) < 0, "64 MiB + 1 refused");
	ASSERT_TRUE(strstr(sluice__errmsg(), "larger than"), sluice__errmsg());
	unlink(path);
}

/* An error in a file names it, the line and the column, as before. */
static void test_errors_named(void)
{
	static const char *const dup = "{\"services\": [\n" SVC "\"port\": 80, \"port\": 81}]}";
	static const char *const range = "{\"services\": [\n" SVC "\"port\": 70000}]}";
	char path[] = "/tmp/sluice-dread-XXXXXX", want[128];
	struct desired d;
	int fd;

	fd = mkstemp(path);
	ASSERT_TRUE(fd >= 0 && write(fd, dup, strlen(dup)) == (ssize_t)strlen(dup), "file");
	close(fd);
	ASSERT_EQ(desired__from_file(&d, path), -EINVAL, "duplicate key refused");
	snprintf(want, sizeof(want), "%s:2:", path);
	ASSERT_TRUE(!strncmp(sluice__errmsg(), want, strlen(want)) &&
			    strstr(sluice__errmsg(), "duplicate key \"port\""),
		    sluice__errmsg());
	fd = open(path, O_WRONLY | O_TRUNC);
	ASSERT_TRUE(fd >= 0 && write(fd, range, strlen(range)) == (ssize_t)strlen(range), "file");
	close(fd);
	ASSERT_EQ(desired__from_file(&d, path), -EINVAL, "out of range refused");
	snprintf(want, sizeof(want), "%s: services[0].port: 70000 is out of range", path);
	ASSERT_TRUE(!strncmp(sluice__errmsg(), want, strlen(want)), sluice__errmsg());
	unlink(path);
}

static const struct test tests[] = {
	TEST(test_same_as_old_reader), TEST(test_truncated), TEST(test_big_bounded),
	TEST(test_write_plain_same),   TEST(test_hostile),   TEST(test_errors_named),
};

int main(int argc, char **argv)
{
	return test__run_all("desired_read", tests, ARRAY_SIZE(tests), argc, argv);
}
