// SPDX-License-Identifier: MIT
/*
 * journal.c - the state file's journal (see journal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "desired.h"
#include "sluice.h"

#include "journal.h"
#include "log.h"

static __u64 journal__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000;
}

void journal__init(struct journal *j, const char *state_path)
{
	memset(j, 0, sizeof(*j));
	j->fd = -1;
	snprintf(j->path, sizeof(j->path), "%s.journal", state_path ? state_path : "");
}

void journal__close(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
}

/* The header naming the state file as it is now; -ENOENT without one. */
static int journal__header(const char *state_path, char *buf, size_t len)
{
	struct stat sb;

	if (stat(state_path, &sb))
		return -errno;
	snprintf(buf, len,
		 "{\"sluiceJournal\":1,\"base\":{\"dev\":%llu,\"ino\":%llu,\"size\":%lld,"
		 "\"mtimeNs\":%lld}}\n",
		 (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino,
		 (long long)sb.st_size,
		 (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec);
	return 0;
}

static int journal__write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static void journal__fsync_dir(const char *path)
{
	char copy[4096];
	int fd;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd))
		pr_warn("journal %s: fsync of its directory: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* A new journal against the state file as it is now. */
static int journal__create(struct journal *j, const char *state_path)
{
	char hdr[256];
	struct stat sb;
	int err;

	/* no file (or none we can see) to journal against: saved whole */
	if (journal__header(state_path, hdr, sizeof(hdr)))
		return -ENOENT;
	j->fd = open(j->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		err = -errno;
		sluice__set_err("cannot create %s: %s", j->path, strerror(errno));
		return err;
	}
	err = journal__write_all(j->fd, hdr, strlen(hdr));
	if (!err && fsync(j->fd))
		err = -errno;
	if (err) {
		sluice__set_err("cannot write %s: %s", j->path, strerror(-err));
		journal__close(j);
		unlink(j->path);
		return err;
	}
	journal__fsync_dir(j->path);
	j->bytes = 0;
	j->records = 0;
	j->limit = JOURNAL_MIN_BYTES;
	if (!stat(state_path, &sb) && (__u64)sb.st_size > j->limit)
		j->limit = (__u64)sb.st_size;
	return 0;
}

int journal__write(struct journal *j, const char *state_path, const struct desired_service *svc)
{
	struct json_object *o;
	const char *text;
	off_t end;
	int err;

	if (j->fd < 0) {
		err = journal__create(j, state_path);
		if (err)
			return err;
	}
	o = desired__service_to_json(svc);
	if (!o) {
		sluice__set_err("out of memory writing %s", j->path);
		return -ENOMEM;
	}
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	end = lseek(j->fd, 0, SEEK_END);
	err = end < 0 ? -errno : 0;
	if (!err)
		err = journal__write_all(j->fd, text, strlen(text)) ?:
			      journal__write_all(j->fd, "\n", 1);
	if (!err) {
		if (!j->unsynced)
			j->sync_from = end;
		j->unsynced++;
		j->bytes += strlen(text) + 1;
		j->records++;
		j->last_ms = journal__now_ms();
	}
	json_object_put(o);
	if (!err)
		return 0;
	sluice__set_err("cannot write %s: %s", j->path, strerror(-err));
	/* Nothing of it may stay: a later record after a torn one would be
	 * lost at replay. When even that fails, the journal goes. */
	if (end < 0 || ftruncate(j->fd, end)) {
		journal__close(j);
		unlink(j->path);
		j->unsynced = 0;
	}
	return err;
}

int journal__sync(struct journal *j)
{
	int err = 0;

	if (j->fd < 0 || !j->unsynced)
		return 0;
	if (j->fail_sync) /* tests: the disk refused */
		err = j->fail_sync;
	else if (fdatasync(j->fd))
		err = -errno;
	if (!err) {
		j->unsynced = 0;
		j->syncs++;
		return 0;
	}
	sluice__set_err("cannot sync %s: %s", j->path, strerror(-err));
	journal__rewind(j);
	return err;
}

void journal__rewind(struct journal *j)
{
	if (j->fd < 0 || !j->unsynced)
		return;
	/* The records of the failed batch go: none was acknowledged. What
	 * fdatasync could not write may still reach the disk; cut off here,
	 * it cannot be replayed either. When the cut fails, the journal
	 * goes (the maps are put back to what the file said before it). */
	if (ftruncate(j->fd, j->sync_from) || fdatasync(j->fd)) {
		pr_warn("journal %s: cannot cut the failed records off: %s (removed)", j->path,
			strerror(errno));
		journal__close(j);
		unlink(j->path);
	}
	j->records = j->records >= j->unsynced ? j->records - j->unsynced : 0;
	j->unsynced = 0;
}

int journal__append(struct journal *j, const char *state_path, const struct desired_service *svc)
{
	return journal__write(j, state_path, svc) ?: journal__sync(j);
}

bool journal__due(const struct journal *j, bool idle)
{
	if (j->fd < 0 || !j->records)
		return false;
	if (!idle)
		return j->bytes >= j->limit;
	return journal__now_ms() - j->last_ms >= JOURNAL_IDLE_MS;
}

void journal__reset(struct journal *j)
{
	journal__close(j);
	if (unlink(j->path) && errno != ENOENT)
		pr_warn("journal %s: cannot remove it: %s (its base is no longer the state file: "
			"it is ignored at the next start)",
			j->path, strerror(errno));
	j->bytes = 0;
	j->records = 0;
	j->unsynced = 0;
}

/* One record onto d: the service with its key replaced. */
static int journal__apply_line(struct journal *j, struct desired *d, const char *line, __u32 no)
{
	struct json_object *svc = json_tokener_parse(line), *root, *arr;
	struct desired one;
	struct desired_service *cur;
	int err;

	root = json_object_new_object();
	arr = json_object_new_array();
	if (!svc || !root || !arr) {
		json_object_put(svc);
		json_object_put(root);
		json_object_put(arr);
		sluice__set_err("%s: line %u: not JSON", j->path, no);
		return -EINVAL;
	}
	json_object_array_add(arr, svc);
	json_object_object_add(root, "services", arr);
	err = desired__from_json(&one, root);
	json_object_put(root);
	if (err) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
		sluice__set_err("%s: line %u: %s", j->path, no, msg);
		return err;
	}
	cur = one.nservices == 1 ? desired__find(d, &one.services[0].vip, one.services[0].port,
						 one.services[0].proto) :
				   NULL;
	if (!cur) {
		desired__free(&one);
		sluice__set_err("%s: line %u: a service the state file does not have", j->path, no);
		return -EINVAL;
	}
	free(cur->backends);
	free(cur->src_ranges);
	*cur = one.services[0];
	free(one.services);
	return 0;
}

static int journal__read(const char *path, char **text, size_t *len)
{
	FILE *fp = fopen(path, "re");
	size_t cap = 0, n = 0, r;
	char *buf = NULL;

	if (!fp)
		return -errno;
	do {
		if (cap - n < 65536) {
			char *nb = realloc(buf, cap + (1u << 20) + 1);

			if (!nb) {
				free(buf);
				fclose(fp);
				return -ENOMEM;
			}
			buf = nb;
			cap += 1u << 20;
		}
		r = fread(buf + n, 1, cap - n, fp);
		n += r;
	} while (r);
	fclose(fp);
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

int journal__replay(struct journal *j, const char *state_path, struct desired *d, __u32 *n)
{
	char hdr[256], *text = NULL, *line, *nl;
	size_t len = 0;
	__u32 no = 1;
	int err;

	*n = 0;
	err = journal__read(j->path, &text, &len);
	if (err == -ENOENT)
		return 0;
	if (err) {
		sluice__set_err("cannot read %s: %s", j->path, strerror(-err));
		return err;
	}
	nl = memchr(text, '\n', len);
	if (journal__header(state_path, hdr, sizeof(hdr)) || !nl ||
	    strncmp(text, hdr, (size_t)(nl - text) + 1)) {
		/* Cut before its header was durable, or older than the file. */
		pr_info("journal %s: not of the state file as it is (left by a save that was "
			"interrupted, or cut short): ignored",
			j->path);
		free(text);
		journal__reset(j);
		return 0;
	}
	for (line = nl + 1; line < text + len; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(text + len - line));
		no++;
		if (!nl) {
			/* never acknowledged: its fdatasync did not return */
			pr_warn("journal %s: line %u cut short by a crash: dropped", j->path, no);
			break;
		}
		*nl = '\0';
		err = journal__apply_line(j, d, line, no);
		if (err)
			break;
		(*n)++;
	}
	free(text);
	return err;
}
