// SPDX-License-Identifier: MIT
/*
 * test_metrics_http.c - the /metrics HTTP server (user/agent/metrics/http.c)
 * under abusive peers: one trickling its headers a byte at a time is
 * closed at the request deadline (the idle timeout alone never fires for
 * it), one that never reads its answer is closed at the answer deadline,
 * and with the connection table full of idle peers a new scrape still gets
 * its answer (the one waiting longest gives way; libmicrohttpd alone would
 * refuse it at its limit). A handler can answer another status with its
 * body (503 from /readyz). No root needed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "test.h"

static size_t body_len = 100;

static int route_fn(void *ctx, FILE *out)
{
	(void)ctx;
	for (size_t i = 0; i < body_len; i++)
		fputc('x', out);
	return 0;
}

static const struct http_route route = { "/metrics", "text/plain", route_fn, NULL };

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool start(struct http **h, struct http_opts o)
{
	o.bind = "127.0.0.1:0";
	o.routes = &route;
	o.nroutes = 1;
	return ASSERT_OK(http__start(h, &o), "http__start");
}

static int client(struct http *h)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(http__port(h)) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void run_for(struct http *h, int ms)
{
	long long end = now_ms() + ms;

	do {
		http__run(h);
		usleep(2000);
	} while (now_ms() < end);
}

/* Has the server closed fd (EOF or reset, after any data)? */
static bool closed(int fd)
{
	char buf[65536];
	ssize_t r;

	while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		;
	return !r || (errno != EAGAIN && errno != EWOULDBLOCK);
}

/* GET path; the whole answer (headers and body) in buf, within ms. */
static void get(struct http *h, const char *path, int ms, char *buf, size_t len)
{
	long long end = now_ms() + ms;
	char req[256];
	size_t n = 0;
	ssize_t r;
	int fd = client(h);

	buf[0] = '\0';
	if (fd < 0)
		return;
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
	send(fd, req, strlen(req), MSG_NOSIGNAL);
	while (now_ms() < end && n < len - 1) {
		http__run(h);
		r = recv(fd, buf + n, len - 1 - n, MSG_DONTWAIT);
		if (r > 0)
			n += r;
		else if (!r || (errno != EAGAIN && errno != EINTR))
			break;
		else
			usleep(1000);
	}
	buf[n] = '\0';
	close(fd);
}

/* A GET /metrics; true when a 200 came back within ms. */
static bool scrape(struct http *h, int ms)
{
	char buf[4096];

	get(h, "/metrics", ms, buf, sizeof(buf));
	return !strncmp(buf, "HTTP/1.1 200", 12);
}

static int not_ready_fn(void *ctx, FILE *out)
{
	(void)ctx;
	fputs("[-]thing: not yet\n", out);
	return 503;
}

/* A handler's positive return is the status, its body still sent (the
 * /readyz contract); a 404 names the paths there are. */
static void test_status_from_handler(void)
{
	const struct http_route routes[] = {
		{ "/metrics", "text/plain", route_fn, NULL },
		{ "/readyz", "text/plain", not_ready_fn, NULL },
	};
	struct http *h;
	char buf[4096];

	if (!ASSERT_OK(http__start(&h, &(struct http_opts){ .bind = "127.0.0.1:0",
							    .routes = routes,
							    .nroutes = 2 }),
		       "http__start"))
		return;
	get(h, "/readyz", 2000, buf, sizeof(buf));
	ASSERT_TRUE(!strncmp(buf, "HTTP/1.1 503", 12), "GET /readyz answers 503");
	ASSERT_TRUE(strstr(buf, "\r\n\r\n[-]thing: not yet\n") != NULL, "with the handler's body");
	get(h, "/nope", 2000, buf, sizeof(buf));
	ASSERT_TRUE(!strncmp(buf, "HTTP/1.1 404", 12), "GET /nope answers 404");
	ASSERT_TRUE(strstr(buf, "404 not found: try /metrics, /readyz\n") != NULL,
		    "naming the paths");
	ASSERT_TRUE(scrape(h, 2000), "GET /metrics still 200");
	http__stop(h);
}

static void test_trickle_closed_at_deadline(void)
{
	struct http_stats st;
	struct http *h;
	int fd;

	if (!start(&h, (struct http_opts){ .request_ms = 300, .timeout_s = 10 }))
		return;
	fd = client(h);
	send(fd, "GET /metrics HTTP/1.1\r\n", 23, MSG_NOSIGNAL);
	/* a header byte every 50 ms: the 10 s idle timeout never fires */
	for (int i = 0; i < 20 && !closed(fd); i++) {
		send(fd, "X", 1, MSG_NOSIGNAL);
		run_for(h, 50);
	}
	run_for(h, 50);
	ASSERT_TRUE(closed(fd), "closed within 1 s");
	http__stats(h, &st);
	ASSERT_EQ(st.request_deadline, 1, "counted as request deadline");
	ASSERT_TRUE(scrape(h, 2000), "a scrape works");
	close(fd);
	http__stop(h);
}

static void test_unread_answer_closed(void)
{
	const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	struct http_stats st;
	struct http *h;
	int fd, small = 4096;

	if (!start(&h, (struct http_opts){ .answer_ms = 300 }))
		return;
	body_len = 32 << 20; /* far more than the socket buffers hold */
	fd = client(h);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	send(fd, req, strlen(req), MSG_NOSIGNAL);
	run_for(h, 1000);
	http__stats(h, &st);
	ASSERT_EQ(st.answer_deadline, 1, "closed: answer not taken");
	body_len = 100;
	run_for(h, 50);
	http__stats(h, &st);
	ASSERT_EQ(st.open, 0, "nothing open");
	close(fd);
	http__stop(h);
}

static void test_full_of_idle(void)
{
	struct http_stats st;
	struct http *h;
	int fds[100];

	if (!start(&h, (struct http_opts){ .max_conns = 8 }))
		return;
	for (int i = 0; i < 100; i++) {
		fds[i] = client(h);
		http__run(h);
	}
	run_for(h, 50);
	ASSERT_TRUE(scrape(h, 2000), "a scrape works with 100 idle connections");
	http__stats(h, &st);
	ASSERT_GE(st.evicted, 92, "the idle ones made room");
	ASSERT_LE(st.open, 8, "at most max_conns open");
	for (int i = 0; i < 100; i++)
		close(fds[i]);
	http__stop(h);
}

static const struct test tests[] = {
	TEST(test_trickle_closed_at_deadline),
	TEST(test_unread_answer_closed),
	TEST(test_full_of_idle),
	TEST(test_status_from_handler),
};

int main(int argc, char **argv)
{
	return test__run_all("metrics_http", tests, ARRAY_SIZE(tests), argc, argv);
}
