// SPDX-License-Identifier: MIT
/*
 * test_meshd_server.c - meshd's API connections (user/meshd/server.c,
 * server_conn.c) with a stand-in op handler: a request read in pieces,
 * an answer written as the peer takes it, a buffer that grows with the
 * request, the size limit, eviction order (and a refused peer that must
 * not evict), request and answer deadlines, a whole request not expired
 * because a long op kept the server busy, queued answers flushed at exit,
 * a pause instead of a busy loop when accept() runs out of descriptors,
 * and answers to changes held until their batch is durable (group commit). Root: the server admits only uid 0 peers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "server.h"
#include "server_conn.h"
#include "test.h"

static char dir[] = "/tmp/sluice-test-server.XXXXXX";
static char path[100];

/* The stand-in handler: "echo" answers the request, "big" a string of
 * big_len bytes, "sleep" is a long op during which more of another
 * client's request arrives (rest_fd, rest). */
static struct {
	int calls;
	size_t big_len;
	int sleep_ms;
	int rest_fd;
	const char *rest;
} h;

/* Group commit's stand-in: "stage" requests wait for batch 7; the end
 * of a turn (sync) sees whether any answer left before it, then
 * releases the batch, as a failed fdatasync when fail is set. */
static struct {
	bool staged, fail;
	int syncs, held_at_sync, leaked;
	int fds[2];
} g;

static __u64 hold(void *ctx)
{
	bool staged = g.staged;

	(void)ctx;
	g.staged = false;
	return staged ? 7 : 0;
}

static void sync_turn(void *ctx)
{
	struct server *srv = ctx;
	char c;

	g.syncs++;
	g.held_at_sync = (int)srv->st.held;
	for (int i = 0; i < 2; i++)
		if (recv(g.fds[i], &c, 1, MSG_DONTWAIT | MSG_PEEK) > 0)
			g.leaked++;
	server__release(srv, 7, g.fail ? "cannot sync state.json.journal: No space left" : NULL);
}

static struct json_object *handler(void *ctx, struct json_object *req, int fd, int pid, bool *taken)
{
	struct json_object *v;
	const char *op = "";
	char *big;

	(void)ctx;
	(void)fd;
	(void)pid;
	*taken = false;
	h.calls++;
	if (json_object_object_get_ex(req, "op", &v))
		op = json_object_get_string(v);
	if (!strcmp(op, "big")) {
		big = malloc(h.big_len + 1);
		memset(big, 'x', h.big_len);
		big[h.big_len] = '\0';
		v = json_object_new_string(big);
		free(big);
		return api__ok(v);
	}
	if (!strcmp(op, "stage")) { /* a change into the open batch */
		g.staged = true;
		return api__ok(json_object_new_string("staged"));
	}
	if (!strcmp(op, "sleep")) {
		if (h.rest)
			send(h.rest_fd, h.rest, strlen(h.rest), MSG_NOSIGNAL);
		usleep(h.sleep_ms * 1000);
		return api__ok(json_object_new_string("slept"));
	}
	return api__ok(json_object_get(req));
}

static bool open_server(struct server *srv, struct server_opts o)
{
	memset(&h, 0, sizeof(h));
	o.handle = handler;
	return ASSERT_OK(server__open(srv, path, &o), "server__open");
}

static int client(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void say(int fd, const char *text)
{
	send(fd, text, strlen(text), MSG_NOSIGNAL);
}

/* server__run() for ms. */
static void run_for(struct server *srv, int ms)
{
	long long end = server__now_ms() + ms;

	do {
		server__run(srv);
		usleep(2000);
	} while (server__now_ms() < end);
}

/* What fd receives until EOF (server__run() meanwhile), NUL-terminated;
 * NULL when nothing came within ms. *len: bytes read. */
static char *answer(struct server *srv, int fd, int ms, size_t *len)
{
	long long end = server__now_ms() + ms;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1), *grown;
	ssize_t r;

	if (!buf)
		return NULL;
	for (;;) {
		server__run(srv);
		r = recv(fd, buf + n, cap - n, MSG_DONTWAIT);
		if (r > 0) {
			n += r;
			if (n < cap)
				continue;
			grown = realloc(buf, (cap *= 2) + 1);
			if (!grown) {
				free(buf);
				return NULL;
			}
			buf = grown;
			continue;
		}
		if (!r || (errno != EAGAIN && errno != EINTR) || server__now_ms() > end)
			break;
		usleep(1000);
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	if (!r || n)
		return buf;
	free(buf);
	return NULL;
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

static void test_partial_read(void)
{
	struct server srv;
	char *got;
	int fd;

	if (!open_server(&srv, (struct server_opts){ 0 }))
		return;
	fd = client();
	say(fd, "{\"op\":");
	run_for(&srv, 20);
	say(fd, "\"echo\",\"x\"");
	run_for(&srv, 20);
	ASSERT_EQ(h.calls, 0, "no op before the request is whole");
	ASSERT_EQ(srv.st.open, 1, "the connection waits");
	say(fd, ":1}\n");
	got = answer(&srv, fd, 2000, NULL);
	ASSERT_EQ(h.calls, 1, "one op");
	ASSERT_TRUE(got && strstr(got, "\"x\":1") && got[strlen(got) - 1] == '\n',
		    "the answer holds the whole request, ends with a newline");
	ASSERT_EQ(srv.st.closed[SERVER_CLOSE_ANSWERED], 1, "closed as answered");
	free(got);
	close(fd);
	server__close(&srv);
}

/* A request ending at EOF (no newline) is whole too. */
static void test_request_at_eof(void)
{
	struct server srv;
	char *got;
	int fd;

	if (!open_server(&srv, (struct server_opts){ 0 }))
		return;
	fd = client();
	say(fd, "{\"op\":\"echo\"}");
	shutdown(fd, SHUT_WR);
	got = answer(&srv, fd, 2000, NULL);
	ASSERT_TRUE(got && strstr(got, "\"ok\":true"), "answered");
	free(got);
	close(fd);
	server__close(&srv);
}

static struct server_conn *the_conn(struct server *srv)
{
	for (size_t i = 0; i < srv->o.max_conns; i++)
		if (srv->conns[i].state != CONN_FREE)
			return &srv->conns[i];
	return NULL;
}

/* The buffer starts small and doubles as the request comes, not the
 * limit up front; a request of exactly the limit is read. */
static void test_buffer_growth(void)
{
	size_t limit = 64 << 10, body;
	struct server_conn *c;
	struct server srv;
	char *req, *got;
	int fd;

	if (!open_server(&srv, (struct server_opts){ .max_request = limit }))
		return;
	fd = client();
	say(fd, "{\"op\":\"echo\",\"pad\":\"");
	run_for(&srv, 20);
	c = the_conn(&srv);
	if (!ASSERT_TRUE(c, "connection open"))
		goto out;
	ASSERT_EQ(c->cap, SERVER_BUF_MIN, "a small request: the smallest buffer");
	req = malloc(limit);
	memset(req, 'a', 5000);
	req[5000] = '\0';
	say(fd, req);
	run_for(&srv, 20);
	ASSERT_EQ(c->cap, 2 * SERVER_BUF_MIN, "5 KiB more: doubled once");
	/* the rest: exactly the limit with its closing, then the newline */
	body = limit - strlen("{\"op\":\"echo\",\"pad\":\"") - 5000 - strlen("\"}");
	memset(req, 'a', body);
	strcpy(req + body, "\"}\n");
	say(fd, req);
	got = answer(&srv, fd, 5000, NULL);
	ASSERT_TRUE(got && strstr(got, "\"ok\":true"), "a request of exactly the limit is served");
	ASSERT_EQ(srv.st.too_large, 0, "not too large");
	free(got);
	free(req);
out:
	close(fd);
	server__close(&srv);
}

static void test_too_large(void)
{
	size_t limit = 64 << 10;
	struct server srv;
	char *req, *got;
	int fd;

	if (!open_server(&srv, (struct server_opts){ .max_request = limit }))
		return;
	fd = client();
	req = malloc(limit + 64);
	memset(req, 'a', limit + 62);
	memcpy(req, "{\"op\":\"echo\",\"pad\":\"", 20);
	strcpy(req + limit + 60, "\"}\n");
	/* the whole of it, while the server reads: it must not answer
	 * before the rest is read, or our send fails and hides the error */
	for (size_t off = 0; off < limit + 63; off += 8192) {
		size_t n = limit + 63 - off < 8192 ? limit + 63 - off : 8192;

		send(fd, req + off, n, MSG_NOSIGNAL);
		server__run(&srv);
	}
	got = answer(&srv, fd, 2000, NULL);
	ASSERT_TRUE(got && strstr(got, "exceeds meshd's limit of 65536 bytes"),
		    "the error names the limit");
	if (got && !strstr(got, "65536"))
		TEST_FAIL("answer: %.200s", got);
	ASSERT_EQ(h.calls, 0, "no op ran");
	ASSERT_EQ(srv.st.too_large, 1, "counted");
	free(got);
	free(req);
	close(fd);
	server__close(&srv);
}

/* An answer much larger than the socket buffer goes out as the peer
 * reads, without the server waiting for it. */
static void test_partial_write(void)
{
	struct server srv;
	long long t0;
	size_t len;
	char *got;
	int fd;

	if (!open_server(&srv, (struct server_opts){ 0 }))
		return;
	h.big_len = 4 << 20;
	fd = client();
	say(fd, "{\"op\":\"big\"}\n");
	t0 = server__now_ms();
	server__run(&srv);
	ASSERT_LE(server__now_ms() - t0, 1000, "server__run() does not wait for the reader");
	ASSERT_EQ(srv.st.open, 1, "the answer is pending");
	got = answer(&srv, fd, 10000, &len);
	ASSERT_EQ(len, h.big_len + strlen("{\"ok\":true,\"data\":\"\"}\n"), "every byte arrived");
	ASSERT_TRUE(got && got[len - 1] == '\n', "newline last");
	ASSERT_EQ(srv.st.closed[SERVER_CLOSE_ANSWERED], 1, "answered");
	free(got);
	close(fd);
	server__close(&srv);
}

/* Full: a root peer evicts the connection idle longest. */
static void test_eviction_order(void)
{
	struct server srv;
	int a, b, c, d;

	if (!open_server(&srv, (struct server_opts){ .max_conns = 3 }))
		return;
	a = client();
	run_for(&srv, 20);
	b = client();
	run_for(&srv, 20);
	c = client();
	run_for(&srv, 20);
	say(a, "{"); /* a was first, but is not idle any more */
	run_for(&srv, 20);
	d = client();
	run_for(&srv, 20);
	ASSERT_TRUE(closed(b), "b, idle longest, evicted");
	ASSERT_FALSE(closed(a), "a kept");
	ASSERT_FALSE(closed(c), "c kept");
	ASSERT_FALSE(closed(d), "d served");
	ASSERT_EQ(srv.st.closed[SERVER_CLOSE_EVICTED], 1, "one eviction");
	ASSERT_EQ(srv.st.open, 3, "three open");
	close(a);
	close(b);
	close(c);
	close(d);
	server__close(&srv);
}

/* A non-root peer (the socket file's mode loosened) never evicts. */
static void test_refused_does_not_evict(void)
{
	struct server srv;
	int a, b, status;
	pid_t pid;

	if (!open_server(&srv, (struct server_opts){ .max_conns = 2 }))
		return;
	chmod(path, 0666);
	chmod(dir, 0755);
	a = client();
	b = client();
	run_for(&srv, 20);
	pid = fork();
	if (!pid) {
		int fd;

		if (setgid(65534) || setuid(65534))
			_exit(2);
		fd = client();
		if (fd < 0)
			_exit(3);
		say(fd, "{\"op\":\"echo\"}\n");
		_exit(0);
	}
	run_for(&srv, 300);
	waitpid(pid, &status, 0);
	ASSERT_EQ(WEXITSTATUS(status), 0, "the non-root peer connected");
	run_for(&srv, 50);
	ASSERT_FALSE(closed(a), "a kept");
	ASSERT_FALSE(closed(b), "b kept");
	ASSERT_EQ(srv.st.closed[SERVER_CLOSE_EVICTED], 0, "no eviction");
	ASSERT_EQ(srv.st.closed[SERVER_CLOSE_FULL], 1, "the refused peer closed: full");
	ASSERT_EQ(h.calls, 0, "no op ran for it");
	close(a);
	close(b);
	server__close(&srv);
}

static void test_request_deadline(void)
{
	struct server srv;
	int stuck, ok;
	char *got;

	/* margins for a loaded machine: checked at 100 ms of 600 */
	if (!open_server(&srv, (struct server_opts){ .request_ms = 600 }))
		return;
	stuck = client();
	say(stuck, "{\"op\":\"sta");
	run_for(&srv, 100);
	ASSERT_FALSE(closed(stuck), "still within its deadline");
	ok = client();
	say(ok, "{\"op\":\"echo\"}\n");
	got = answer(&srv, ok, 2000, NULL);
	ASSERT_TRUE(got && strstr(got, "\"ok\":true"), "another client is served meanwhile");
	free(got);
	ASSERT_LE(server__timeout_ms(&srv), 600, "the loop wakes for the deadline");
	run_for(&srv, 700);
	ASSERT_TRUE(closed(stuck), "closed past its deadline");
	ASSERT_EQ(srv.st.closed[SERVER_CLOSE_DEADLINE], 1, "counted as deadline");
	ASSERT_EQ(server__timeout_ms(&srv), -1, "nothing left to wait for");
	close(stuck);
	close(ok);
	server__close(&srv);
}

/* A request completed while a long op ran is past its deadline when the
 * server looks again: it is served, not expired. */
static void test_complete_after_long_op(void)
{
	struct server srv;
	int slow, late;
	char *got;

	if (!open_server(&srv, (struct server_opts){ .request_ms = 200 }))
		return;
	late = client();
	slow = client();
	say(late, "{\"op\":");
	run_for(&srv, 20);
	h.sleep_ms = 400;
	h.rest_fd = late;
	h.rest = "\"echo\",\"late\":1}\n";
	say(slow, "{\"op\":\"sleep\"}\n");
	server__run(&srv); /* runs the long op; late's rest arrives meanwhile */
	ASSERT_EQ(h.calls, 2, "the long op, then the late request");
	got = answer(&srv, late, 2000, NULL);
	ASSERT_TRUE(got && strstr(got, "\"late\":1"), "the late request is answered");
	ASSERT_EQ(srv.st.closed[SERVER_CLOSE_DEADLINE], 0, "nothing expired");
	free(got);
	close(slow);
	close(late);
	server__close(&srv);
}

static void test_answer_deadline(void)
{
	struct server srv;
	int fd;

	if (!open_server(&srv, (struct server_opts){ .answer_ms = 600 }))
		return;
	h.big_len = 4 << 20;
	fd = client();
	say(fd, "{\"op\":\"big\"}\n");
	run_for(&srv, 100);
	ASSERT_EQ(srv.st.open, 1, "answer pending");
	run_for(&srv, 700);
	ASSERT_EQ(srv.st.closed[SERVER_CLOSE_ANSWER_DEADLINE], 1, "closed: answer not taken");
	ASSERT_TRUE(closed(fd), "the peer sees the end");
	close(fd);
	server__close(&srv);
}

static void *reader(void *arg)
{
	size_t *total = arg;
	char buf[65536];
	int fd = (int)*total;
	ssize_t r;

	*total = 0;
	usleep(100 * 1000); /* the flush starts first */
	while ((r = recv(fd, buf, sizeof(buf), 0)) > 0)
		*total += r;
	return NULL;
}

/* At exit a queued answer still reaches its peer. */
static void test_flush(void)
{
	struct server srv;
	pthread_t t;
	size_t total;
	int fd;

	if (!open_server(&srv, (struct server_opts){ 0 }))
		return;
	h.big_len = 4 << 20;
	fd = client();
	say(fd, "{\"op\":\"big\"}\n");
	server__run(&srv);
	ASSERT_EQ(srv.st.open, 1, "answer pending");
	total = (size_t)fd;
	pthread_create(&t, NULL, reader, &total);
	server__flush(&srv, 5000 * test__time_scale());
	server__close(&srv);
	pthread_join(t, NULL);
	ASSERT_EQ(total, h.big_len + strlen("{\"ok\":true,\"data\":\"\"}\n"), "all of it arrived");
	ASSERT_EQ(srv.st.closed[SERVER_CLOSE_ANSWERED], 1, "answered");
	close(fd);
}

/* Two changes read in one turn are answered only after that turn's
 * batch ended (nothing reached a client before the sync), each with its
 * own answer; a request that changed nothing is answered at once; a
 * failed batch answers every one of its changes with the cause. */
static void test_held_until_sync(void)
{
	for (int fail = 0; fail < 2; fail++) {
		struct server_opts o = { .hold = hold, .sync = sync_turn };
		struct server srv;
		char *a[2];
		int echo;

		memset(&g, 0, sizeof(g));
		g.fail = fail;
		o.ctx = &srv;
		if (!open_server(&srv, o))
			return;
		g.fds[0] = client();
		g.fds[1] = client();
		echo = client();
		say(g.fds[0], "{\"op\":\"stage\",\"n\":0}\n");
		say(g.fds[1], "{\"op\":\"stage\",\"n\":1}\n");
		say(echo, "{\"op\":\"echo\"}\n");
		usleep(20000); /* all three requests there before the turn */
		server__run(&srv);
		ASSERT_EQ(g.syncs, 1, "one sync for the turn");
		ASSERT_EQ(g.held_at_sync, 2, "both changes held");
		ASSERT_EQ(g.leaked, 0, "no answer before the sync");
		for (int i = 0; i < 2; i++) {
			a[i] = answer(&srv, g.fds[i], 2000, NULL);
			if (!ASSERT_TRUE(a[i] != NULL, "answered after the sync"))
				continue;
			ASSERT_TRUE(strstr(a[i], fail ? "not saved: cannot sync" : "\"staged\"") !=
					    NULL,
				    a[i]);
			free(a[i]);
		}
		a[0] = answer(&srv, echo, 2000, NULL);
		ASSERT_TRUE(a[0] && strstr(a[0], "\"echo\""), "the read-only request answered");
		free(a[0]);
		ASSERT_EQ(srv.st.closed[SERVER_CLOSE_ANSWERED], 3, "three answered");
		close(g.fds[0]);
		close(g.fds[1]);
		close(echo);
		server__close(&srv);
	}
}

/* Out of descriptors: accepting pauses (the listening socket stays
 * readable, retrying at once would spin the loop), then resumes. */
static void test_accept_emfile(void)
{
	struct rlimit saved, low;
	struct server srv;
	int fd, lowest;
	char *got;

	if (!open_server(&srv, (struct server_opts){ 0 }))
		return;
	fd = client();
	say(fd, "{\"op\":\"echo\"}\n");
	getrlimit(RLIMIT_NOFILE, &saved);
	lowest = dup(0); /* every descriptor below it is taken */
	close(lowest);
	low = saved;
	low.rlim_cur = lowest;
	setrlimit(RLIMIT_NOFILE, &low);
	for (int i = 0; i < 20; i++)
		server__run(&srv);
	setrlimit(RLIMIT_NOFILE, &saved);
	/* without the pause every run fails once; a run delayed past the
	 * 100 ms pause (a loaded machine, sanitizers) may retry once more */
	ASSERT_TRUE(srv.st.accept_errors >= 1 && srv.st.accept_errors <= 5,
		    "a failed accept, then a pause, not a retry per run");
	ASSERT_LE(server__timeout_ms(&srv), 100, "the loop wakes when the pause ends");
	got = answer(&srv, fd, 2000, NULL);
	ASSERT_TRUE(got && strstr(got, "\"ok\":true"), "accepted and served after the pause");
	free(got);
	close(fd);
	server__close(&srv);
}

static const struct test tests[] = {
	TEST_ROOT(test_partial_read),
	TEST_ROOT(test_request_at_eof),
	TEST_ROOT(test_buffer_growth),
	TEST_ROOT(test_too_large),
	TEST_ROOT(test_partial_write),
	TEST_ROOT(test_eviction_order),
	TEST_ROOT(test_refused_does_not_evict),
	TEST_ROOT(test_request_deadline),
	TEST_ROOT(test_complete_after_long_op),
	TEST_ROOT(test_answer_deadline),
	TEST_ROOT(test_flush),
	TEST_ROOT(test_accept_emfile),
	TEST_ROOT(test_held_until_sync),
};

int main(int argc, char **argv)
{
	int rc;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%.80s/meshd.sock", dir);
	rc = test__run_all("meshd_server", tests, ARRAY_SIZE(tests), argc, argv);
	unlink(path);
	rmdir(dir);
	return rc;
}
