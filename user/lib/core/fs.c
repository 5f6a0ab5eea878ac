// SPDX-License-Identifier: MIT
/*
 * fs.c - files and paths for the library and its agents: creating a
 * directory tree, joining a directory and a name, writing a whole buffer.
 *
 * Contract: each returns 0 or a negative errno; the path-making ones set
 * the error text naming the path, sluice__write_all() leaves the text to
 * its caller, who knows what is being written.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

int sluice__mkdir_p(const char *dir, mode_t mode)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);
	int err;

	if (!len || len >= sizeof(path)) {
		sluice__set_err("directory \"%.64s\": empty or too long a path", dir);
		return -ENAMETOOLONG;
	}
	memcpy(path, dir, len + 1);
	/* every prefix ending before a '/', then the whole path */
	for (char *p = path + 1;; p++) {
		char c = *p;

		if (c != '/' && c)
			continue;
		*p = '\0';
		if (mkdir(path, mode) && errno != EEXIST) {
			err = -errno;
			sluice__set_err("cannot create directory %s: %s", path, strerror(errno));
			return err;
		}
		*p = c;
		if (!c)
			return 0;
	}
}

int sluice__path_join(char *buf, size_t len, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, len, "%s/%s", dir, name) >= len) {
		sluice__set_err("path %s/%s is too long", dir, name);
		return -ENAMETOOLONG;
	}
	return 0;
}

int sluice__write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		/* MSG_NOSIGNAL: a peer that hung up is an error, not SIGPIPE */
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, p, len); /* files, and pipes in tests */
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
