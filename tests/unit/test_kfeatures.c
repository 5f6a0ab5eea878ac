// SPDX-License-Identifier: MIT
/*
 * test_kfeatures.c - the kernel feature probes (user/lib/core/kfeatures.c)
 * against the kernel they run on. The oracle is the kernel's version (the
 * probes themselves never read it): what every supported kernel (5.15+)
 * has must be found, and each feature a later kernel brought must be found
 * exactly when the running kernel is that new. Run under
 * `make test-kernels` this checks the probes on 6.1 and 6.12 too.
 */
#include <stdlib.h>
#include <sys/utsname.h>

#include "kfeatures.h"
#include "test.h"

static int kernel_version(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return 0;
	return major * 1000 + minor;
}

static void test_names(void)
{
	for (int i = 0; i < SLUICE_FEAT__MAX; i++) {
		ASSERT_TRUE(sluice_feature__name(i)[0] && sluice_feature__what(i)[0] &&
				    sluice_feature__without(i)[0],
			    "name, what and without set");
		for (int j = 0; j < i; j++)
			ASSERT_TRUE(strcmp(sluice_feature__name(i), sluice_feature__name(j)),
				    "names unique");
	}
	ASSERT_TRUE(!strcmp(sluice_feature__name(SLUICE_FEAT__MAX), "?"), "out of range");
}

static void test_probes(void)
{
	/* introduced in: 0 = every supported kernel */
	static const int since[SLUICE_FEAT__MAX] = {
		[SLUICE_FEAT_KERN_CTX] = 6002,
		[SLUICE_FEAT_OUTER_READ_FAST] = 6007,
		[SLUICE_FEAT_SOCKMAP_LINK] = 6010,
	};
	struct sluice_features f;
	int kv = kernel_version();

	unsetenv("SLUICE_SWEEP_TABLES");
	if (!ASSERT_TRUE(kv >= 5015, "a kernel version to compare with"))
		return;
	ASSERT_OK(sluice__features(&f), "probe");
	for (int i = 0; i < SLUICE_FEAT__MAX; i++) {
		bool want = kv >= since[i];

		if (!ASSERT_EQ(f.has[i], want, sluice_feature__name(i)))
			fprintf(stderr, "    %s (%s) on %d.%d\n", sluice_feature__name(i),
				sluice_feature__what(i), kv / 1000, kv % 1000);
	}
	fprintf(stderr, "    one array-of-maps slot read: %.3f ms\n", f.outer_read_ns / 1e6);
	/* for make test-kernels' table (scripts/kernels/run.sh) */
	printf("# kfeatures missing:");
	for (int i = 0, n = 0; i < SLUICE_FEAT__MAX; i++)
		if (!f.has[i])
			printf("%s %s", n++ ? "," : "", sluice_feature__name(i));
	printf("\n");
	if (kv >= 6007)
		ASSERT_LE(f.outer_read_ns, 2000000, "the slot read did not wait");
	else
		ASSERT_GE(f.outer_read_ns, 2000000, "the slot read waited a grace period");
}

static void test_override(void)
{
	struct sluice_features f;

	setenv("SLUICE_SWEEP_TABLES", "0", 1);
	sluice__features(&f);
	ASSERT_FALSE(f.has[SLUICE_FEAT_OUTER_READ_FAST], "SLUICE_SWEEP_TABLES=0");
	setenv("SLUICE_SWEEP_TABLES", "1", 1);
	sluice__features(&f);
	ASSERT_TRUE(f.has[SLUICE_FEAT_OUTER_READ_FAST], "SLUICE_SWEEP_TABLES=1");
	unsetenv("SLUICE_SWEEP_TABLES");
}

static const struct test tests[] = {
	TEST(test_names),
	TEST(test_probes),
	TEST(test_override),
};

int main(int argc, char **argv)
{
	if (!test__have_root("kfeatures", "loads probe programs"))
		return 0;
	return test__run_all("kfeatures", tests, ARRAY_SIZE(tests), argc, argv);
}
