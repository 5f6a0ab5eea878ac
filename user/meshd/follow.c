// SPDX-License-Identifier: MIT
/*
 * follow.c - connections.follow streams (see follow.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "follow.h"
#include "log.h"

/* Must run before follow__free(): a zeroed struct follow has fd 0s. */
int follow__init(struct follow *f)
{
	memset(f, 0, sizeof(*f));
	for (int i = 0; i < FOLLOW_MAX; i++)
		f->slots[i].fd = -1;
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (f->epfd < 0) {
		int err = -errno;

		pr_err("epoll for connection streams: %s", strerror(errno));
		return err;
	}
	return 0;
}

static void follow__drop(struct follow *f, struct follower *fl, const char *why)
{
	if (fl->fd < 0)
		return;
	pr_info("connections stream of pid %d ended: %s", fl->pid, why);
	epoll_ctl(f->epfd, EPOLL_CTL_DEL, fl->fd, NULL);
	close(fl->fd);
	free(fl->buf);
	memset(fl, 0, sizeof(*fl));
	fl->fd = -1;
	f->n--;
}

void follow__free(struct follow *f)
{
	for (int i = 0; i < FOLLOW_MAX; i++)
		follow__drop(f, &f->slots[i], "meshd is stopping");
	if (f->epfd >= 0)
		close(f->epfd);
	f->epfd = -1;
}

int follow__fd(const struct follow *f)
{
	return f->epfd;
}

size_t follow__count(const struct follow *f)
{
	return f->n;
}

static int follow__watch(struct follow *f, struct follower *fl, int op, bool out)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0),
		.data.u32 = (__u32)(fl - f->slots),
	};

	return epoll_ctl(f->epfd, op, fl->fd, &ev) ? -errno : 0;
}

int follow__add(struct follow *f, int fd, int pid, const char *service)
{
	struct follower *fl = NULL;
	int err;

	for (int i = 0; i < FOLLOW_MAX && !fl; i++)
		if (f->slots[i].fd < 0)
			fl = &f->slots[i];
	if (!fl)
		return -EMFILE;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
		return -errno;
	fl->fd = fd;
	fl->pid = pid;
	snprintf(fl->service, sizeof(fl->service), "%s", service ? service : "");
	err = follow__watch(f, fl, EPOLL_CTL_ADD, false);
	if (err) {
		fl->fd = -1;
		return err;
	}
	f->n++;
	pr_info("connections stream for pid %d%s%s", pid, service ? " of " : "",
		service ? service : "");
	return 0;
}

static bool follow__match(const struct follower *fl, const char *service)
{
	return fl->fd >= 0 && (!fl->service[0] || (service && !strcmp(fl->service, service)));
}

bool follow__wants(const struct follow *f, const char *service)
{
	for (int i = 0; i < FOLLOW_MAX; i++)
		if (follow__match(&f->slots[i], service))
			return true;
	return false;
}

/* Send what the socket takes now; watch for room when something is left. */
static void follow__flush(struct follow *f, struct follower *fl)
{
	size_t off = 0;
	ssize_t n;

	while (off < fl->len) {
		n = send(fl->fd, fl->buf + off, fl->len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			follow__drop(f, fl, n < 0 ? strerror(errno) : "closed");
			return;
		}
		off += (size_t)n;
	}
	memmove(fl->buf, fl->buf + off, fl->len - off);
	fl->len -= off;
	if (follow__watch(f, fl, EPOLL_CTL_MOD, fl->len > 0))
		follow__drop(f, fl, "epoll failed");
}

static int follow__append(struct follower *fl, const char *line, size_t len)
{
	if (fl->len + len + 1 > FOLLOW_BUF_MAX)
		return -ENOBUFS;
	if (fl->len + len + 1 > fl->cap) {
		size_t cap = fl->cap ? fl->cap : 4096;
		char *grown;

		while (cap < fl->len + len + 1)
			cap *= 2;
		grown = realloc(fl->buf, cap);
		if (!grown)
			return -ENOMEM;
		fl->buf = grown;
		fl->cap = cap;
	}
	memcpy(fl->buf + fl->len, line, len);
	fl->buf[fl->len + len] = '\n';
	fl->len += len + 1;
	return 0;
}

void follow__send(struct follow *f, const char *service, const char *line)
{
	size_t len = strlen(line);

	for (int i = 0; i < FOLLOW_MAX; i++) {
		struct follower *fl = &f->slots[i];
		char why[96];
		int err;

		if (!follow__match(fl, service))
			continue;
		err = follow__append(fl, line, len);
		if (err) {
			snprintf(why, sizeof(why), "%s",
				 err == -ENOBUFS ? "it fell more than 1 MiB behind" :
						   "out of memory");
			follow__drop(f, fl, why);
			continue;
		}
		follow__flush(f, fl);
	}
}

void follow__run(struct follow *f)
{
	struct epoll_event evs[FOLLOW_MAX];
	char scratch[512];
	int n;

	n = epoll_wait(f->epfd, evs, FOLLOW_MAX, 0);
	for (int i = 0; i < n; i++) {
		struct follower *fl = &f->slots[evs[i].data.u32 % FOLLOW_MAX];
		ssize_t got;

		if (fl->fd < 0)
			continue;
		if (evs[i].events & EPOLLOUT)
			follow__flush(f, fl);
		if (fl->fd < 0)
			continue;
		if (evs[i].events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
			follow__drop(f, fl, "the client went away");
			continue;
		}
		if (!(evs[i].events & EPOLLIN))
			continue;
		/* Anything the client sends is ignored; EOF means it is gone. */
		got = recv(fl->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
			follow__drop(f, fl, "the client went away");
	}
}
