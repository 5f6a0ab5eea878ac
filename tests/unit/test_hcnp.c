// SPDX-License-Identifier: MIT
/*
 * test_hcnp.c - the healthCheckNodePort servers (user/agent/hcnp) on
 * loopback: kube-proxy's body byte for byte, 503 without a local endpoint
 * and 200 with one on any path, the headers (application/json, nosniff, no
 * gzip even when asked), serviceProxyHealthy false -> 503, servers started
 * and stopped by hcnp__sync(), a port in use reported once and served once
 * it is free again, and the cap on servers. No root needed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hcnp.h"
#include "test.h"

static char logbuf[65536];

static void on_log(bool error, const char *msg, void *ctx)
{
	size_t len = strlen(logbuf);

	(void)ctx;
	snprintf(logbuf + len, sizeof(logbuf) - len, "%s%s\n", error ? "E " : "I ", msg);
}

/* A port free right now on 127.0.0.1 (and a socket holding it if hold). */
static __u16 free_port(int *hold)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len)) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (hold) {
		listen(fd, 1);
		*hold = fd;
	} else {
		close(fd);
	}
	return ntohs(sa.sin_port);
}

/* One request; the whole answer into buf (the server runs meanwhile).
 * Returns the answer's length, -1 when the connection is refused. */
static int ask(struct hcnp *s, __u16 port, const char *req, char *buf, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	size_t got = 0;
	struct timespec t0, t;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (bool sent = false;;) {
		struct pollfd p = { .fd = fd, .events = sent ? POLLIN : POLLOUT };
		ssize_t n;

		hcnp__run(s);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 3)
			break;
		if (poll(&p, 1, 10) <= 0)
			continue;
		if (!sent) {
			if (p.revents & (POLLERR | POLLHUP)) {
				close(fd);
				return -1;
			}
			if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
				break;
			sent = true;
			continue;
		}
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == ECONNREFUSED) {
			close(fd);
			return -1;
		}
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	return (int)got;
}

static const char *body_of(const char *answer)
{
	const char *b = strstr(answer, "\r\n\r\n");

	return b ? b + 4 : "";
}

static const char KUBE_PROXY_BODY[] = "{\n"
				      "\t\"service\": {\n"
				      "\t\t\"namespace\": \"default\",\n"
				      "\t\t\"name\": \"web\"\n"
				      "\t},\n"
				      "\t\"localEndpoints\": 2,\n"
				      "\t\"serviceProxyHealthy\": true\n"
				      "}";

static void test_body(void)
{
	char buf[1024];
	int n;

	n = hcnp__body(buf, sizeof(buf), "default", "web", 2, true);
	ASSERT_EQ(n, (int)strlen(KUBE_PROXY_BODY), "length");
	ASSERT_TRUE(!strcmp(buf, KUBE_PROXY_BODY), "kube-proxy's body, byte for byte");
	hcnp__body(buf, sizeof(buf), "a\"b", "c\\d", 0, false);
	ASSERT_TRUE(strstr(buf, "\"a\\\"b\"") && strstr(buf, "\"c\\\\d\""), "quotes escaped");
	ASSERT_TRUE(strstr(buf, "\"serviceProxyHealthy\": false"), "unhealthy");
	ASSERT_EQ(hcnp__body(buf, 20, "default", "web", 2, true), -ENOSPC, "too small");
}

static void test_serve(void)
{
	struct k8s_hc hc = { .ns = "default", .name = "web" };
	struct k8s_hc_set set = { .n = 1, .v = &hc };
	struct hcnp s;
	char buf[4096];
	int n;

	logbuf[0] = '\0';
	hc.port = free_port(NULL);
	if (!ASSERT_OK(hcnp__init(&s, &(struct hcnp_opts){ .host = "127.0.0.1", .log = on_log }),
		       "init"))
		return;
	ASSERT_EQ(hcnp__sync(&s, &set), 0, "started");
	ASSERT_EQ(hcnp__count(&s), 1, "one server");
	n = ask(&s, hc.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
		buf, sizeof(buf));
	ASSERT_TRUE(n > 0 && !strncmp(buf, "HTTP/1.1 503", 12), "no local endpoint: 503");
	ASSERT_TRUE(strcasestr(buf, "Content-Type: application/json\r\n"), "json");
	ASSERT_TRUE(strcasestr(buf, "X-Content-Type-Options: nosniff\r\n"), "nosniff");
	ASSERT_FALSE(strcasestr(buf, "Content-Encoding"), "never gzip");
	ASSERT_TRUE(strstr(body_of(buf), "\"localEndpoints\": 0,"), "count 0");
	/* the count changes in place: the same server answers 200 */
	hc.local_endpoints = 2;
	ASSERT_EQ(hcnp__sync(&s, &set), 0, "updated");
	n = ask(&s, hc.port, "GET /any/path?x=1 HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	ASSERT_TRUE(n > 0 && !strncmp(buf, "HTTP/1.", 7) && !strncmp(buf + 8, " 200 ", 5),
		    "any path, 2 local endpoints: 200");
	ASSERT_TRUE(!strcmp(body_of(buf), KUBE_PROXY_BODY), "body byte for byte");
	hcnp__set_healthy(&s, false);
	n = ask(&s, hc.port, "GET / HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	ASSERT_TRUE(n > 0 && strstr(buf, " 503 "), "proxy unhealthy: 503");
	ASSERT_TRUE(strstr(body_of(buf), "\"serviceProxyHealthy\": false"), "says so");
	hcnp__set_healthy(&s, true);
	/* the Service goes: the port closes */
	ASSERT_EQ(hcnp__sync(&s, &(struct k8s_hc_set){ 0 }), 0, "stopped");
	ASSERT_EQ(hcnp__count(&s), 0, "no server");
	ASSERT_EQ(ask(&s, hc.port, "GET / HTTP/1.0\r\n\r\n", buf, sizeof(buf)), -1, "refused");
	ASSERT_TRUE(strstr(logbuf, "serving on 127.0.0.1:") && strstr(logbuf, "stopped"),
		    "start and stop logged");
	hcnp__free(&s);
}

static void test_port_in_use(void)
{
	struct k8s_hc hc = { .ns = "default", .name = "busy" };
	struct k8s_hc_set set = { .n = 1, .v = &hc };
	struct hcnp s;
	char buf[4096];
	int hold = -1;

	logbuf[0] = '\0';
	hc.port = free_port(&hold);
	if (!ASSERT_OK(hcnp__init(&s, &(struct hcnp_opts){ .host = "127.0.0.1", .log = on_log }),
		       "init"))
		return;
	ASSERT_EQ(hcnp__sync(&s, &set), 1, "one port not served");
	ASSERT_TRUE(strstr(logbuf, "E healthCheckNodePort") && strstr(logbuf, "default/busy") &&
			    strstr(logbuf, "not served"),
		    "logged as an error naming the Service");
	logbuf[0] = '\0';
	ASSERT_EQ(hcnp__sync(&s, &set), 1, "still busy (the tick's retry)");
	ASSERT_TRUE(!strstr(logbuf, "not served"), "said once, not every retry");
	close(hold);
	ASSERT_EQ(hcnp__sync(&s, &set), 0, "served once free (the retry)");
	ASSERT_TRUE(ask(&s, hc.port, "GET / HTTP/1.0\r\n\r\n", buf, sizeof(buf)) > 0 &&
			    strstr(buf, " 503 "),
		    "answers");
	hcnp__free(&s);
}

/* More Services with a health port than HCNP_MAX_SERVERS: the rest are
 * refused (logged once), the descriptors stay bounded. */
static void test_max_servers(void)
{
	static struct k8s_hc v[HCNP_MAX_SERVERS + 2];
	struct k8s_hc_set set = { .n = ARRAY_SIZE(v), .v = v };
	struct hcnp s;

	logbuf[0] = '\0';
	for (__u32 i = 0; i < set.n; i++) {
		snprintf(v[i].ns, sizeof(v[i].ns), "ns");
		snprintf(v[i].name, sizeof(v[i].name), "svc%u", i);
		v[i].port = 20000 + i; /* sorted, distinct; a busy one just fails too */
	}
	if (!ASSERT_OK(hcnp__init(&s, &(struct hcnp_opts){ .host = "127.0.0.1", .log = on_log }),
		       "init"))
		return;
	ASSERT_LE(2, hcnp__sync(&s, &set), "at least the two over the cap not served");
	ASSERT_LE(hcnp__count(&s), HCNP_MAX_SERVERS, "at most the cap served");
	ASSERT_TRUE(strstr(logbuf, "more than 128 health ports"), "the cap is named");
	logbuf[0] = '\0';
	hcnp__sync(&s, &set);
	ASSERT_TRUE(!strstr(logbuf, "more than"), "said once");
	hcnp__free(&s);
}

static const struct test tests[] = {
	TEST(test_body),
	TEST(test_serve),
	TEST(test_port_in_use),
	TEST(test_max_servers),
};

int main(int argc, char **argv)
{
	return test__run_all("hcnp", tests, ARRAY_SIZE(tests), argc, argv);
}
