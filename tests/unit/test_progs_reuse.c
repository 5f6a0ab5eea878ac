// SPDX-License-Identifier: MIT
/*
 * test_progs_reuse.c - a restart reuses the pinned programs only when
 * they are exactly the ones it would load (#16, progs.c):
 * - SHA-256 against the FIPS 180-4 vectors;
 * - the record: another object (one byte), config, environment, format or
 *   digest is no match, each with its reason;
 * - against the kernel (root): a first open loads, a save pins, a second
 *   open with the same object and config reuses the very programs (ids)
 *   and they run; another config, another build id, a reload asked for, a
 *   missing program pin, a pin of another program, and a map made again
 *   (the programs would use a map that is no longer pinned) each load
 *   instead, and so does a record that lies about the config (the
 *   programs' own .rodata is compared); after that load and a save, the next open reuses again; the
 *   unpin removes the program pins and the record with the maps.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "internal.h"
#include "lb.skel.h"
#include "lb_load.h"
#include "sluice.h"
#include "test.h"

static void hex(const __u8 *d, char *out)
{
	for (int i = 0; i < SHA256_LEN; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void sha_of(const void *p, size_t len, char *out)
{
	struct sha256 c;
	__u8 d[SHA256_LEN];

	sha256__init(&c);
	sha256__update(&c, p, len);
	sha256__final(&c, d);
	hex(d, out);
}

static void test_sha256_vectors(void)
{
	char out[2 * SHA256_LEN + 1], *mil;
	struct sha256 c;
	__u8 d[SHA256_LEN];

	sha_of("", 0, out);
	ASSERT_TRUE(!strcmp(out,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
		    "empty");
	sha_of("abc", 3, out);
	ASSERT_TRUE(!strcmp(out,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
		    "abc");
	sha_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
	ASSERT_TRUE(!strcmp(out,
			    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
		    "448 bits");
	mil = malloc(1000000);
	if (!ASSERT_TRUE(mil != NULL, "malloc"))
		return;
	memset(mil, 'a', 1000000);
	sha_of(mil, 1000000, out);
	ASSERT_TRUE(!strcmp(out,
			    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
		    "a million a");
	/* the same bytes in uneven pieces */
	sha256__init(&c);
	for (size_t off = 0, n = 1; off < 1000000; off += n, n = n * 3 % 997 + 1)
		sha256__update(&c, mil + off, off + n > 1000000 ? 1000000 - off : n);
	sha256__final(&c, d);
	hex(d, out);
	ASSERT_TRUE(!strcmp(out,
			    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
		    "a million a in pieces");
	free(mil);
}

static bool why_has(const struct progs_record *old, const struct progs_record *now,
		    const char *word)
{
	char why[192] = "";
	bool match = progs__record_match(old, now, why, sizeof(why));

	if (match || !strstr(why, word)) {
		fprintf(stderr, "  match %d, why \"%s\", expected \"%s\"\n", match, why, word);
		return false;
	}
	return true;
}

static void test_record_match(void)
{
	struct progs_record base, r;
	size_t len = 0;
	const __u8 *obj = lb_bpf__elf_bytes(&len);
	__u8 *copy = malloc(len);
	char why[192] = "";

	if (!ASSERT_TRUE(copy && len > 1000, "object bytes")) {
		free(copy);
		return;
	}
	memcpy(copy, obj, len);
	progs__record_make(&base, obj, len, 0, "env A\n");
	progs__record_make(&r, copy, len, 0, "env A\n");
	ASSERT_TRUE(progs__record_match(&base, &r, why, sizeof(why)), "the same inputs match");
	/* one byte of the object, in its middle and at its end */
	copy[len / 2] ^= 1;
	progs__record_make(&r, copy, len, 0, "env A\n");
	ASSERT_TRUE(why_has(&base, &r, "BPF object differs"), "an object byte");
	copy[len / 2] ^= 1;
	progs__record_make(&r, copy, len - 1, 0, "env A\n");
	ASSERT_TRUE(why_has(&base, &r, "BPF object differs"), "a shorter object");
	progs__record_make(&r, copy, len, SLUICE_CFG_FIB_FORWARD, "env A\n");
	ASSERT_TRUE(why_has(&base, &r, "config differs"), "the config");
	progs__record_make(&r, copy, len, 0, "env B\n");
	ASSERT_TRUE(why_has(&base, &r, "environment differs"), "the environment");
	progs__record_make(&r, copy, len, 0, "env A\n");
	r.magic ^= 1;
	ASSERT_TRUE(why_has(&r, &base, "another format"), "the magic");
	progs__record_make(&r, copy, len, 0, "env A\n");
	r.version++;
	ASSERT_TRUE(why_has(&r, &base, "another format"), "the version");
	progs__record_make(&r, copy, len, 0, "env A\n");
	r.digest[5] ^= 0x80;
	ASSERT_TRUE(why_has(&r, &base, "digest"), "a corrupted digest");
	free(copy);
}

/* The environment text changes with the build id and names the kernel. */
static void test_env(void)
{
	char a[512], b[512];

	progs__env(a, sizeof(a), "meshd 1");
	progs__env(b, sizeof(b), "meshd 2");
	ASSERT_TRUE(strcmp(a, b) != 0, "build ids differ");
	ASSERT_TRUE(strstr(a, "kernel ") && strstr(a, "boot ") && strstr(a, "libbpf "), a);
	ASSERT_TRUE(!strstr(a, "boot ?"), "the boot id is read");
}

static char pin_dir[PATH_MAX];

static struct sluice *open_with(__u32 cfg, const char *build, bool reuse)
{
	struct sluice_opts o = {
		.pin_dir = pin_dir, .cfg = cfg, .reuse_progs = reuse, .build_id = build
	};
	struct sluice *s = NULL;
	int err = sluice__open(&s, &o);

	if (err)
		TEST_FAIL("sluice__open: %d %s", err, sluice__errmsg());
	return err ? NULL : s;
}

static __u32 prog_id(int fd)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	return fd >= 0 && !bpf_obj_get_info_by_fd(fd, &info, &len) ? info.id : 0;
}

/* Open, expect reuse or not with a reason containing word; optionally
 * save; return the XDP program's id (0 on a failure). */
static __u32 cycle(__u32 cfg, const char *build, bool reuse, bool want, const char *word, bool save,
		   __u32 *tc_id)
{
	struct sluice *s = open_with(cfg, build, reuse);
	const char *why = "";
	__u32 id;

	if (!s)
		return 0;
	if (!ASSERT_EQ(sluice__progs_reused(s, &why), want, word) || !strstr(why, word))
		fprintf(stderr, "  reused %d, why \"%s\", expected \"%s\"\n",
			sluice__progs_reused(s, NULL), why, word);
	ASSERT_TRUE(strstr(why, word) != NULL, word);
	id = prog_id(sluice__prog_fd(s, SLUICE_PROG_XDP));
	if (tc_id)
		*tc_id = prog_id(sluice__prog_fd(s, SLUICE_PROG_TC));
	ASSERT_NEQ(id, 0, "the XDP program is there");
	if (save)
		ASSERT_OK(sluice__progs_save(s), sluice__errmsg());
	sluice__close(s);
	return id;
}

static int pin_path(char *buf, const char *name)
{
	return snprintf(buf, PATH_MAX, "%s/%s", pin_dir, name) >= PATH_MAX ? -1 : 0;
}

/* A reused XDP program runs: a frame too short for Ethernet passes. */
static void run_xdp(void)
{
	struct sluice *s = open_with(0, "test", true);
	__u8 pkt[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = pkt, .data_size_in = sizeof(pkt));

	if (!s)
		return;
	ASSERT_TRUE(sluice__progs_reused(s, NULL), "reused for the run");
	pkt[12] = 0x88, pkt[13] = 0xcc; /* LLDP: not the datapath's */
	if (ASSERT_OK(bpf_prog_test_run_opts(sluice__prog_fd(s, SLUICE_PROG_XDP), &t),
		      "test run of the reused program"))
		ASSERT_EQ(t.retval, XDP_PASS, "a frame that is not IP passes");
	sluice__close(s);
}

static void test_reuse_cycle(void)
{
	char path[PATH_MAX];
	struct progs_record now;
	__u32 id1, id2, tc1, tc2, id;
	size_t len = 0;
	const void *obj = lb_bpf__elf_bytes(&len);
	char env[512], why[192];
	int fds[2], fd;
	__u8 *copy;

	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/test-restart-%d", (int)getpid());
	id1 = cycle(0, "test", true, false, "no program record", true, &tc1);
	id2 = cycle(0, "test", true, true, "record matches", false, &tc2);
	ASSERT_EQ(id2, id1, "the very XDP program is reused");
	ASSERT_EQ(tc2, tc1, "the very tc program is reused");
	run_xdp();
	/* each of these loads; none saves, so the record stays the first one */
	id = cycle(SLUICE_CFG_FIB_FORWARD, "test", true, false, "config differs", false, NULL);
	ASSERT_NEQ(id, id1, "another config: a program of its own");
	id = cycle(0, "another build", true, false, "environment differs", false, NULL);
	ASSERT_NEQ(id, id1, "another build id: loaded");
	id = cycle(0, "test", false, false, "reload was asked", false, NULL);
	ASSERT_NEQ(id, id1, "a reload asked for: loaded");
	/* another object against the pinned record (the embedded one cannot
	 * change in a test): progs__find refuses before opening anything */
	copy = malloc(len);
	if (ASSERT_TRUE(copy != NULL, "malloc")) {
		memcpy(copy, obj, len);
		copy[len - 100] ^= 0x10;
		progs__env(env, sizeof(env), "test");
		progs__record_make(&now, copy, len, 0, env);
		ASSERT_EQ(progs__find(pin_dir, &now, fds, why, sizeof(why)), 0, "another object");
		ASSERT_TRUE(strstr(why, "BPF object differs") != NULL, why);
		ASSERT_EQ(fds[0], -1, "no fd kept");
		free(copy);
	}
	/* still the first record: reused */
	ASSERT_EQ(cycle(0, "test", true, true, "record matches", false, NULL), id1,
		  "still reused after the loads that saved nothing");

	/* a program pin missing */
	if (!pin_path(path, PROGS_PIN_TC))
		ASSERT_OK(unlink(path) ? -errno : 0, "unlink the tc program's pin");
	id = cycle(0, "test", true, false, "prog_tc_lb cannot be opened", true, NULL);
	ASSERT_NEQ(id, id1, "a missing pin: loaded");
	id1 = cycle(0, "test", true, true, "record matches", false, NULL);
	ASSERT_EQ(id1, id, "after its save: reused");

	/* a pin of another program under the recorded name */
	fd = -1;
	if (!pin_path(path, PROGS_PIN_XDP)) {
		char tc_path[PATH_MAX];

		ASSERT_OK(unlink(path) ? -errno : 0, "unlink the XDP program's pin");
		if (!pin_path(tc_path, PROGS_PIN_TC))
			fd = bpf_obj_get(tc_path);
		if (ASSERT_TRUE(fd >= 0, "open the tc pin"))
			ASSERT_OK(bpf_obj_pin(fd, path), "pin tc_lb as prog_xdp_lb");
		if (fd >= 0)
			close(fd);
	}
	id = cycle(0, "test", true, false, "is not the recorded one", true, NULL);
	ASSERT_EQ(cycle(0, "test", true, true, "record matches", false, NULL), id,
		  "after its save: reused");

	/* a map made again: the pinned programs use the old counters map */
	if (!pin_path(path, "counters"))
		ASSERT_OK(unlink(path) ? -errno : 0, "unlink the counters pin");
	id1 = cycle(0, "test", true, false, "not pinned in the pin dir", true, NULL);
	ASSERT_NEQ(id1, id, "a map made again: loaded");
	ASSERT_EQ(cycle(0, "test", true, true, "record matches", false, NULL), id1,
		  "after its save: reused");

	/* a record that lies about the config (cfg 0 for programs loaded with
	 * fib forward on): the programs' own .rodata refuses them */
	cycle(SLUICE_CFG_FIB_FORWARD, "test", true, false, "config differs", true, NULL);
	progs__env(env, sizeof(env), "test");
	progs__record_make(&now, obj, len, 0, env);
	fds[0] = pin_path(path, PROGS_PIN_XDP) ? -1 : bpf_obj_get(path);
	fds[1] = pin_path(path, PROGS_PIN_TC) ? -1 : bpf_obj_get(path);
	if (ASSERT_TRUE(fds[0] >= 0 && fds[1] >= 0, "open the program pins"))
		ASSERT_OK(progs__pin(pin_dir, &now, fds), sluice__errmsg());
	for (int p = 0; p < 2; p++)
		if (fds[p] >= 0)
			close(fds[p]);
	cycle(0, "test", true, false, "holds a .rodata (config) other", false, NULL);

	ASSERT_OK(sluice__unpin(pin_dir), sluice__errmsg());
	ASSERT_TRUE(access(pin_dir, F_OK) != 0, "the pin dir is gone (program pins too)");
}

static const struct test tests[] = {
	TEST(test_sha256_vectors),
	TEST(test_record_match),
	TEST(test_env),
	TEST_ROOT(test_reuse_cycle),
};

int main(int argc, char **argv)
{
	int rc;

	/* programs load (they are what is reused); the maps test-sized */
	test__lb_load = TEST_LB_SMALL_MAPS;
	rc = test__run_all("progs_reuse", tests, ARRAY_SIZE(tests), argc, argv);
	if (pin_dir[0] && !access(pin_dir, F_OK)) {
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", pin_dir);
		if (system(cmd))
			fprintf(stderr, "removing %s failed\n", pin_dir);
	}
	return rc;
}
