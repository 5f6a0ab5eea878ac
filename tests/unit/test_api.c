// SPDX-License-Identifier: MIT
/*
 * test_api.c - the meshd API wire format: message round trips over a
 * socketpair, size and time bounds, malformed input, and api__call()
 * against a one-shot server thread, including every connect error text a
 * user can meet (no meshd, stale socket, not root, no answer).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "api.h"
#include "jsonscan.h"
#include "sluice.h"
#include "test.h"

static bool has(const char *what)
{
	if (strstr(sluice__errmsg(), what))
		return true;
	TEST_FAIL("message \"%s\" lacks \"%s\"", sluice__errmsg(), what);
	return false;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *str_field(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static void test_msg_round_trip(void)
{
	struct json_object *req, *got = NULL;
	int sv[2];

	if (!ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair"))
		return;
	req = json_object_new_object();
	json_object_object_add(req, "op", json_object_new_string("service.add"));
	json_object_object_add(req, "service", json_object_new_string("10.0.0.1:80/tcp"));
	json_object_object_add(req, "name", json_object_new_string("line\nbreak / slash"));
	if (ASSERT_OK(api__write_msg(sv[0], req), sluice__errmsg()) &&
	    ASSERT_OK(api__read_msg(sv[1], 1000, &got), sluice__errmsg())) {
		ASSERT_TRUE(!strcmp(str_field(got, "op"), "service.add"), "op");
		ASSERT_TRUE(!strcmp(str_field(got, "name"), "line\nbreak / slash"),
			    "newline inside a string survives");
	}
	json_object_put(got);
	got = NULL;
	/* a message without the newline, ended by EOF */
	ASSERT_EQ(write(sv[0], "{\"op\": \"status\"}", 16), 16, "raw write");
	shutdown(sv[0], SHUT_WR);
	if (ASSERT_OK(api__read_msg(sv[1], 1000, &got), sluice__errmsg()))
		ASSERT_TRUE(!strcmp(str_field(got, "op"), "status"), "op at EOF");
	json_object_put(got);
	ASSERT_EQ(api__read_msg(sv[1], 1000, &got), -ENODATA, "EOF without a message");
	has("closed without a message");
	json_object_put(req);
	close(sv[0]);
	close(sv[1]);
}

static void test_api_ok_error(void)
{
	struct json_object *r, *v;

	r = api__ok(json_object_new_int(7));
	ASSERT_TRUE(json_object_object_get_ex(r, "ok", &v) && json_object_get_boolean(v), "ok");
	ASSERT_TRUE(json_object_object_get_ex(r, "data", &v) && json_object_get_int(v) == 7,
		    "data");
	json_object_put(r);
	r = api__ok(NULL);
	ASSERT_TRUE(json_object_object_get_ex(r, "data", &v) && !v, "data null");
	json_object_put(r);
	r = api__error("service %s does not exist", "10.0.0.1:80/tcp");
	ASSERT_TRUE(json_object_object_get_ex(r, "ok", &v) && !json_object_get_boolean(v),
		    "ok false");
	ASSERT_TRUE(!strcmp(str_field(r, "error"), "service 10.0.0.1:80/tcp does not exist"),
		    "error text");
	json_object_put(r);
}

static void test_malformed(void)
{
	static const char *const bad[] = { "{nope\n", "[1, 2]\n", "\"text\"\n", "{\"a\": 1} x\n" };
	struct json_object *got = NULL;
	int sv[2];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (!ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair"))
			return;
		ASSERT_EQ(write(sv[0], bad[i], strlen(bad[i])), (long long)strlen(bad[i]), "write");
		ASSERT_EQ(api__read_msg(sv[1], 1000, &got), -EBADMSG, bad[i]);
		ASSERT_TRUE(got == NULL, "no message");
		close(sv[0]);
		close(sv[1]);
	}
}

static void test_read_timeout(void)
{
	struct json_object *got = NULL;
	long long t0;
	int sv[2];

	if (!ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair"))
		return;
	/* half a message, then silence: one deadline covers the whole read */
	ASSERT_EQ(write(sv[0], "{\"op\":", 6), 6, "partial write");
	t0 = now_ms();
	ASSERT_EQ(api__read_msg(sv[1], 150, &got), -ETIMEDOUT, "timeout");
	ASSERT_GE(now_ms() - t0, 140, "waited the timeout");
	ASSERT_LE(now_ms() - t0, 2000, "not much longer");
	has("timed out");
	close(sv[0]);
	close(sv[1]);
}

static void *flood(void *arg)
{
	static char chunk[65536];
	int fd = *(int *)arg;
	size_t sent = 0;

	memset(chunk, 'x', sizeof(chunk));
	while (sent < SLUICE_API_MAX_MSG + 4 * sizeof(chunk)) {
		ssize_t n = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);

		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	return NULL;
}

static void test_oversize(void)
{
	struct json_object *got = NULL, *big;
	pthread_t t;
	char *text;
	int sv[2];

	if (!ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair"))
		return;
	if (ASSERT_OK(pthread_create(&t, NULL, flood, &sv[0]), "thread")) {
		ASSERT_EQ(api__read_msg(sv[1], 10000 * test__time_scale(), &got), -EMSGSIZE,
			  "oversize read");
		has("larger than the limit");
		close(sv[1]); /* unblocks the writer */
		pthread_join(t, NULL);
	}
	close(sv[0]);
	/* and the sender refuses to produce one */
	text = malloc(SLUICE_API_MAX_MSG + 1);
	if (!ASSERT_TRUE(text != NULL, "malloc"))
		return;
	memset(text, 'y', SLUICE_API_MAX_MSG);
	text[SLUICE_API_MAX_MSG] = '\0';
	big = json_object_new_object();
	json_object_object_add(big, "blob", json_object_new_string(text));
	free(text);
	if (ASSERT_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair")) {
		ASSERT_EQ(api__write_msg(sv[0], big), -EMSGSIZE, "oversize write");
		has("exceeds the limit");
		close(sv[0]);
		close(sv[1]);
	}
	json_object_put(big);
}

enum srv_mode {
	SRV_ECHO,
	SRV_ERROR,
	SRV_SILENT,
	SRV_CLOSE,
	SRV_MALFORMED,
	SRV_BIG /* echoes the op and the request's size, padded past 64 KiB */
};

struct server {
	char path[108];
	int lfd;
	enum srv_mode mode;
	pthread_t thread;
};

static void *server_main(void *arg)
{
	struct server *srv = arg;
	struct json_object *req = NULL, *resp, *data;
	struct pollfd p;
	char buf[256];
	int fd;

	fd = accept(srv->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	switch (srv->mode) {
	case SRV_ECHO:
		if (!api__read_msg(fd, 2000, &req)) {
			data = json_object_new_object();
			json_object_object_add(data, "echo",
					       json_object_new_string(str_field(req, "op")));
			resp = api__ok(data);
			api__write_msg(fd, resp);
			json_object_put(resp);
		}
		break;
	case SRV_ERROR:
		if (!api__read_msg(fd, 2000, &req)) {
			resp = api__error("permission denied: uid %d is not root", 1000);
			api__write_msg(fd, resp);
			json_object_put(resp);
		}
		break;
	case SRV_SILENT:
		/* read the request, then keep the client waiting */
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		while (poll(&p, 1, 3000) > 0 && read(fd, buf, sizeof(buf)) > 0)
			;
		usleep(500000);
		break;
	case SRV_CLOSE:
		break;
	case SRV_MALFORMED:
		if (!api__read_msg(fd, 2000, &req))
			ASSERT_EQ(write(fd, "{\"answer\": 42}\n", 15), 15, "server write");
		break;
	case SRV_BIG:
		if (!api__read_msg(fd, 2000, &req)) {
			char *pad = malloc(70001);

			memset(pad, 'p', 70000);
			pad[70000] = '\0';
			data = json_object_new_object();
			json_object_object_add(data, "echo",
					       json_object_new_string(str_field(req, "op")));
			json_object_object_add(
				data, "x_len",
				json_object_new_int64((int64_t)strlen(str_field(req, "x"))));
			json_object_object_add(data, "pad", json_object_new_string(pad));
			free(pad);
			resp = api__ok(data);
			api__write_msg(fd, resp);
			json_object_put(resp);
		}
		break;
	}
	json_object_put(req);
	close(fd);
	return NULL;
}

static bool server_start(struct server *srv, enum srv_mode mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(srv->path, sizeof(srv->path), "/tmp/sluice-api-test.%d.sock", (int)getpid());
	unlink(srv->path);
	srv->mode = mode;
	srv->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!ASSERT_TRUE(srv->lfd >= 0, "socket"))
		return false;
	strcpy(sa.sun_path, srv->path);
	if (!ASSERT_OK(bind(srv->lfd, (struct sockaddr *)&sa, sizeof(sa)), "bind") ||
	    !ASSERT_OK(listen(srv->lfd, 4), "listen") ||
	    !ASSERT_OK(pthread_create(&srv->thread, NULL, server_main, srv), "thread")) {
		close(srv->lfd);
		unlink(srv->path);
		return false;
	}
	return true;
}

static void server_stop(struct server *srv)
{
	pthread_join(srv->thread, NULL);
	close(srv->lfd);
	unlink(srv->path);
}

static struct json_object *req_op(const char *op)
{
	struct json_object *req = json_object_new_object();

	json_object_object_add(req, "op", json_object_new_string(op));
	return req;
}

static void test_call(void)
{
	struct json_object *req = req_op("status"), *resp = NULL, *data;
	struct server srv = { 0 };

	if (server_start(&srv, SRV_ECHO)) {
		if (ASSERT_OK(api__call(srv.path, req, 2000, &resp), sluice__errmsg()) &&
		    ASSERT_TRUE(json_object_object_get_ex(resp, "data", &data), "data"))
			ASSERT_TRUE(!strcmp(str_field(data, "echo"), "status"), "echoed op");
		json_object_put(resp);
		resp = NULL;
		server_stop(&srv);
	}
	/* an {"ok": false} answer is a successful call */
	if (server_start(&srv, SRV_ERROR)) {
		if (ASSERT_OK(api__call(srv.path, req, 2000, &resp), sluice__errmsg()))
			ASSERT_TRUE(!strcmp(str_field(resp, "error"),
					    "permission denied: uid 1000 is not root"),
				    "error");
		json_object_put(resp);
		server_stop(&srv);
	}
	json_object_put(req);
}

/* api__call_ex(): a request its writer streams (100 KB), an answer whose
 * "data" stays text (lazy), a writer's -EMSGSIZE reported as such. */
static int write_big(int fd, void *ctx)
{
	static const char head[] = "{\"op\":\"status\",\"x\":\"", tail[] = "\"}";
	char chunk[1000];
	int err;

	if (ctx) {
		sluice__set_err("the request exceeds the limit");
		return -EMSGSIZE;
	}
	memset(chunk, 'y', sizeof(chunk));
	err = write(fd, head, sizeof(head) - 1) == sizeof(head) - 1 ? 0 : -EIO;
	for (int i = 0; i < 100 && !err; i++)
		err = write(fd, chunk, sizeof(chunk)) == sizeof(chunk) ? 0 : -EIO;
	if (!err && write(fd, tail, sizeof(tail) - 1) != sizeof(tail) - 1)
		err = -EIO;
	return err;
}

static void test_call_ex(void)
{
	struct api_call call = { .write = write_big, .lazy = "data" };
	struct json_object *resp = NULL, *data, *tree = NULL;
	struct server srv = { 0 };
	struct jscan_range r;
	const char *text;
	size_t len;

	if (server_start(&srv, SRV_BIG)) {
		if (ASSERT_OK(api__call_ex(srv.path, &call, 2000, &resp), sluice__errmsg()) &&
		    ASSERT_TRUE(json_object_object_get_ex(resp, "data", &data), "data") &&
		    ASSERT_TRUE(jscan__raw_get(data, &text, &len, &r), "data kept as text") &&
		    ASSERT_OK(jscan__parse(text, r, "data", &tree), "its text parses")) {
			ASSERT_TRUE(!strcmp(str_field(tree, "echo"), "status"), "the op arrived");
			ASSERT_TRUE(!strcmp(str_field(tree, "x_len"), "100000"),
				    "the whole request arrived");
		}
		json_object_put(tree);
		json_object_put(resp);
		resp = NULL;
		server_stop(&srv);
	}
	call.ctx = &call; /* the writer refuses: past the limit */
	if (server_start(&srv, SRV_CLOSE)) {
		ASSERT_EQ(api__call_ex(srv.path, &call, 2000, &resp), -EMSGSIZE, "-EMSGSIZE");
		ASSERT_TRUE(strstr(sluice__errmsg(), "exceeds the limit") != NULL,
			    sluice__errmsg());
		server_stop(&srv);
	}
}

static void test_call_errors(void)
{
	struct json_object *req = req_op("status"), *resp = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct server srv = { 0 };
	char path[108], want[200];
	long long t0;
	int fd;

	snprintf(path, sizeof(path), "/tmp/sluice-api-none.%d.sock", (int)getpid());
	ASSERT_EQ(api__call(path, req, 1000, &resp), -ENOENT, "no socket");
	snprintf(want, sizeof(want),
		 "cannot connect to meshd at %s: No such file or directory (is meshd running?)",
		 path);
	has(want);

	/* a socket file left behind by a dead meshd */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, path);
	if (ASSERT_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), "bind")) {
		close(fd);
		ASSERT_EQ(api__call(path, req, 1000, &resp), -ECONNREFUSED, "stale socket");
		has("Connection refused (is meshd running?)");
		unlink(path);
	} else {
		close(fd);
	}

	if (server_start(&srv, SRV_SILENT)) {
		t0 = now_ms();
		ASSERT_EQ(api__call(srv.path, req, 200, &resp), -ETIMEDOUT, "no answer");
		has("timed out after 200 ms waiting for meshd at /tmp/sluice-api-test.");
		ASSERT_LE(now_ms() - t0, 2000, "bounded by the timeout");
		server_stop(&srv);
	}
	if (server_start(&srv, SRV_CLOSE)) {
		ASSERT_NEQ(api__call(srv.path, req, 2000, &resp), 0, "closed without answer");
		/* EOF, a reset or EPIPE, depending on timing: one message */
		has("closed the connection without an answer");
		server_stop(&srv);
	}
	if (server_start(&srv, SRV_MALFORMED)) {
		ASSERT_EQ(api__call(srv.path, req, 2000, &resp), -EBADMSG, "malformed response");
		has("malformed response from meshd");
		ASSERT_TRUE(resp == NULL, "no response object");
		server_stop(&srv);
	}
	json_object_put(req);
}

/* Only root may connect: the socket is 0600 and owned by root. */
static void test_call_not_root(void)
{
	struct json_object *req = req_op("status"), *resp = NULL;
	struct server srv = { 0 };
	int status, pfd[2];
	char msg[512] = "";
	ssize_t n;
	pid_t pid;

	if (geteuid() != 0) {
		printf("  (skipped: needs root)\n");
		json_object_put(req);
		return;
	}
	if (!ASSERT_OK(pipe(pfd), "pipe") || !server_start(&srv, SRV_SILENT)) {
		json_object_put(req);
		return;
	}
	chmod(srv.path, 0600);
	pid = fork();
	if (pid == 0) {
		int err;

		close(pfd[0]);
		if (setgid(65534) || setuid(65534))
			_exit(2);
		err = api__call(srv.path, req, 1000, &resp);
		n = write(pfd[1], sluice__errmsg(), strlen(sluice__errmsg()));
		(void)n;
		_exit(err == -EACCES ? 0 : 1);
	}
	close(pfd[1]);
	n = read(pfd[0], msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	waitpid(pid, &status, 0);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child got EACCES");
	if (!ASSERT_TRUE(strstr(msg, "permission denied connecting to /tmp/sluice-api-test.") &&
				 strstr(msg, "(meshctl needs root)"),
			 "message"))
		fprintf(stderr, "    got: %s\n", msg);
	/* the silent server is still waiting in accept(): let it go */
	{
		struct json_object *r = NULL;

		api__call(srv.path, req, 50, &r);
	}
	server_stop(&srv);
	json_object_put(req);
}

static const struct test tests[] = {
	TEST(test_msg_round_trip), TEST(test_api_ok_error),  TEST(test_malformed),
	TEST(test_read_timeout),   TEST(test_oversize),      TEST(test_call),
	TEST(test_call_errors),    TEST(test_call_not_root), TEST(test_call_ex),
};

int main(int argc, char **argv)
{
	return test__run_all("api", tests, ARRAY_SIZE(tests), argc, argv);
}
