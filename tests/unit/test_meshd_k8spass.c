// SPDX-License-Identifier: MIT
/*
 * test_meshd_k8spass.c - how meshd commits the sets the Kubernetes sync
 * hands over (k8sint__commit_set(), #16): the first set and a set that
 * adds or removes a service are committed whole; a set that only changes
 * existing services is ONE pass over them (each applied alone, one
 * fdatasync for all), a refused service keeps its old version while the
 * others go on, a failed sync changes nothing; manual services are never
 * touched. The maps are the stand-in of fake_state.h; the state file and
 * its journal are real. No root.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "desired.h"
#include "k8sint.h"
#include "log.h"
#include "state.h"
#include "test.h"
#include "fake_state.h"

static char dir[] = "/tmp/sluice-test-k8spass.XXXXXX";

/* Two kubernetes services; b's backends as given (JSON). */
static bool kube_set(struct desired *d, unsigned a_weight, const char *b_backends)
{
	char json[1024];

	snprintf(json, sizeof(json),
		 "{\"services\": ["
		 "{\"name\": \"ns/a\", \"source\": \"kubernetes\", \"vip\": \"10.96.1.1\","
		 " \"port\": 80, \"protocol\": \"tcp\", \"backends\":"
		 " [{\"address\": \"10.1.0.2\", \"port\": 8080, \"weight\": %u},"
		 "  {\"address\": \"10.1.0.3\", \"port\": 8080}]},"
		 "{\"name\": \"ns/b\", \"source\": \"kubernetes\", \"vip\": \"fd00::b\","
		 " \"port\": 443, \"protocol\": \"tcp\", \"backends\": %s}]}",
		 a_weight, b_backends);
	return parse(d, json);
}

static const char *const b_one = "[{\"address\": \"fd00:2::2\", \"port\": 8443}]";
static const char *const b_two = "[{\"address\": \"fd00:2::2\", \"port\": 8443},"
				 " {\"address\": \"fd00:2::3\", \"port\": 8443}]";

/* A state of three manual services and the sync's first set committed. */
static bool setup(struct state *st, struct fake_maps *f, struct k8sint *ki, const char *name)
{
	struct desired kube;
	bool ok;

	memset(ki, 0, sizeof(*ki));
	if (!fake_state__setup(st, f, dir, name) || !kube_set(&kube, 1, b_one))
		return false;
	ki->cfg.state = st;
	k8sint__commit_set(ki, &kube, true);
	desired__free(&kube);
	ok = ASSERT_EQ(ki->commits, 1, "first set committed") &&
	     ASSERT_EQ(ki->whole_commits, 1, "the first set is a whole commit") &&
	     ASSERT_EQ(ki->passes, 0, "no pass for it") &&
	     ASSERT_EQ(st->desired.nservices, 5, "3 manual + 2 kubernetes services") &&
	     ASSERT_TRUE(same_state(&f->held, &st->desired), "the maps hold them") &&
	     ASSERT_TRUE(!ki->last_error[0], ki->last_error);
	ki->hc.healthy = true;
	return ok;
}

static void teardown(struct state *st, struct fake_maps *f)
{
	state__free(st);
	desired__free(&f->held);
}

/* The state the sync's set should leave: the manual services first (as
 * k8s__merge() orders them), then the set's. */
static bool expect(const struct state *st, const struct desired *kube, struct desired *want)
{
	struct desired manual = { .nservices = 3, .services = st->desired.services }, m;

	if (!ASSERT_OK(desired__copy(&m, &manual), "copy"))
		return false;
	desired__init(want);
	want->services = calloc(m.nservices + kube->nservices, sizeof(*want->services));
	if (!ASSERT_TRUE(want->services != NULL, "calloc")) {
		desired__free(&m);
		return false;
	}
	memcpy(want->services, m.services, m.nservices * sizeof(*m.services));
	want->nservices = m.nservices;
	free(m.services);
	for (__u32 i = 0; i < kube->nservices; i++) {
		struct desired one = { .nservices = 1, .services = &kube->services[i] }, c;

		if (!ASSERT_OK(desired__copy(&c, &one), "copy"))
			return false;
		want->services[want->nservices++] = c.services[0];
		free(c.services);
	}
	return true;
}

/* Both kubernetes services change (a weight; an endpoint joins): one pass,
 * each service applied alone, ONE fdatasync, no whole commit; a restart
 * reads the new set. */
static void test_pass_one_sync(void)
{
	struct desired kube, want;
	struct fake_maps f;
	struct k8sint ki;
	struct state st;
	__u64 syncs;

	if (!setup(&st, &f, &ki, "pass.json"))
		goto out;
	if (!kube_set(&kube, 7, b_two))
		goto out;
	if (!expect(&st, &kube, &want))
		goto free_kube;
	syncs = st.journal.syncs;
	f.widest = 0;
	k8sint__commit_set(&ki, &kube, true);
	ASSERT_EQ(ki.commits, 2, "committed");
	ASSERT_EQ(ki.passes, 1, "as one pass");
	ASSERT_EQ(ki.pass_services, 2, "over the two changed services");
	ASSERT_EQ(ki.whole_commits, 1, "not a whole commit");
	ASSERT_EQ(ki.commit_errors, 0, "no error");
	ASSERT_EQ(f.widest, 1, "each apply given one service");
	ASSERT_EQ(st.journal.syncs, syncs + 1, "ONE fdatasync for the pass");
	ASSERT_TRUE(same_state(&st.desired, &want), "st->desired holds the set");
	ASSERT_TRUE(same_state(&f.held, &want), "the maps hold the set");
	durable_holds(st.path, &want, "restart after the pass");
	desired__free(&want);
free_kube:
	desired__free(&kube);
out:
	teardown(&st, &f);
}

/* One service of the set is refused (every weight 0): it keeps its old
 * version, the other is changed in the same pass; the error is told and
 * the healthCheckNodePorts say out of sync. */
static void test_pass_refused_one(void)
{
	struct desired kube, want;
	struct fake_maps f;
	struct k8sint ki;
	struct state st;

	if (!setup(&st, &f, &ki, "refused.json"))
		goto out;
	if (!kube_set(&kube, 4, b_one))
		goto out;
	kube.services[1].backends[0].weight = 0; /* the parser would refuse it */
	if (!expect(&st, &kube, &want))
		goto free_kube;
	/* b keeps its old version */
	want.services[4].backends[0].weight = 1;
	k8sint__commit_set(&ki, &kube, true);
	ASSERT_EQ(ki.passes, 1, "one pass");
	ASSERT_EQ(ki.pass_services, 1, "one service changed");
	ASSERT_EQ(ki.whole_commits, 1, "not a whole commit");
	ASSERT_EQ(ki.commit_errors, 1, "the refused one counted");
	ASSERT_TRUE(strstr(ki.last_error, "every weight is 0") != NULL, ki.last_error);
	ASSERT_FALSE(ki.hc.healthy, "serviceProxyHealthy false");
	ASSERT_EQ(st.desired.services[3].backends[0].weight, 4, "a changed");
	ASSERT_TRUE(same_state(&st.desired, &want), "b as before");
	ASSERT_TRUE(same_state(&f.held, &want), "the maps too");
	durable_holds(st.path, &want, "restart after the refused one");
	desired__free(&want);
free_kube:
	desired__free(&kube);
out:
	teardown(&st, &f);
}

/* The pass's fdatasync fails: nothing of it stays (maps, state), the
 * error is told; the next set works. */
static void test_pass_sync_fails(void)
{
	struct desired kube, before, inmaps;
	struct fake_maps f;
	struct k8sint ki;
	struct state st;

	if (!setup(&st, &f, &ki, "fails.json"))
		goto out;
	if (!kube_set(&kube, 9, b_two))
		goto out;
	desired__copy(&before, &st.desired);
	desired__copy(&inmaps, &f.held);
	st.journal.fail_sync = -EIO;
	k8sint__commit_set(&ki, &kube, true);
	ASSERT_EQ(ki.commits, 1, "not committed");
	ASSERT_EQ(ki.commit_errors, 1, "counted");
	ASSERT_TRUE(strstr(ki.last_error, "Input/output error") != NULL, ki.last_error);
	ASSERT_FALSE(ki.hc.healthy, "serviceProxyHealthy false");
	ASSERT_TRUE(same_state(&st.desired, &before), "st->desired as before");
	ASSERT_TRUE(same_state(&f.held, &inmaps), "the maps as before");
	st.journal.fail_sync = 0;
	k8sint__commit_set(&ki, &kube, true);
	ASSERT_EQ(ki.commits, 2, "the same set again: committed");
	ASSERT_TRUE(!ki.last_error[0], ki.last_error);
	ASSERT_TRUE(ki.hc.healthy, "healthy again");
	ASSERT_EQ(st.desired.services[3].backends[0].weight, 9, "a changed");
	desired__free(&before);
	desired__free(&inmaps);
	desired__free(&kube);
out:
	teardown(&st, &f);
}

/* A set that adds or removes a service is committed whole; manual
 * services stay, and one of them wins a clash with a kubernetes one. */
static void test_add_remove_whole(void)
{
	struct desired kube, want;
	struct fake_maps f;
	struct k8sint ki;
	struct state st;
	const char *const add =
		"{\"services\": ["
		"{\"name\": \"ns/a\", \"source\": \"kubernetes\", \"vip\": \"10.96.1.1\","
		" \"port\": 80, \"protocol\": \"tcp\", \"backends\":"
		" [{\"address\": \"10.1.0.2\", \"port\": 8080}, {\"address\": \"10.1.0.3\", \"port\": 8080}]},"
		"{\"name\": \"ns/c\", \"source\": \"kubernetes\", \"vip\": \"10.96.1.3\","
		" \"port\": 80, \"protocol\": \"udp\", \"backends\":"
		" [{\"address\": \"10.1.0.9\", \"port\": 53}]},"
		"{\"name\": \"ns/web\", \"source\": \"kubernetes\", \"vip\": \"10.96.0.10\","
		" \"port\": 80, \"protocol\": \"tcp\", \"backends\":"
		" [{\"address\": \"10.1.0.7\", \"port\": 80}]}]}";

	if (!setup(&st, &f, &ki, "whole.json"))
		goto out;
	if (!parse(&kube, add))
		goto out;
	/* b removed, c added, web clashes with the manual one (left out) */
	kube.nservices = 2;
	if (!expect(&st, &kube, &want))
		goto free_kube;
	kube.nservices = 3;
	k8sint__commit_set(&ki, &kube, true);
	ASSERT_EQ(ki.commits, 2, "committed");
	ASSERT_EQ(ki.whole_commits, 2, "whole");
	ASSERT_EQ(ki.passes, 0, "no pass");
	ASSERT_EQ(ki.clashes, 1, "the manual web wins its clash");
	ASSERT_EQ(st.desired.nservices, 5, "3 manual + a + c");
	ASSERT_TRUE(same_state(&st.desired, &want), "st->desired");
	ASSERT_TRUE(same_state(&f.held, &want), "the maps");
	ASSERT_EQ(st.desired.services[0].backends[0].port, 8080, "the manual web kept");
	durable_holds(st.path, &want, "restart after the whole commit");
	desired__free(&want);
free_kube:
	desired__free(&kube);
out:
	teardown(&st, &f);
}

static const struct test tests[] = {
	TEST(test_pass_one_sync),
	TEST(test_pass_refused_one),
	TEST(test_pass_sync_fails),
	TEST(test_add_remove_whole),
};

int main(int argc, char **argv)
{
	return fake_state__main("meshd_k8spass", dir, tests, ARRAY_SIZE(tests), argc, argv);
}
