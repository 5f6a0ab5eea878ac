/* SPDX-License-Identifier: MIT */
/*
 * journal.h - the state file's journal (#16): one service changed is made
 * durable by appending that service, whole, to STATE.journal (one JSON line,
 * fdatasync) instead of rewriting the whole state file (5 MB at 10k
 * services x 10); the journal is folded into the state file (compacted: a
 * full save, then the journal removed) when it grows past the state file's
 * size, when changes have stopped for JOURNAL_IDLE_MS (checked on meshd's
 * tick), at a clean exit, and at the next start after it is replayed.
 *
 * Format: a header line {"sluiceJournal": 1, "base": {"dev", "ino", "size",
 * "mtimeNs"}} naming the state file it applies to, then one service per
 * line as desired__service_to_json() writes it. A record replaces the
 * service with its key, so replaying one twice changes nothing.
 *
 * Crash safety: a record is acknowledged only after its fdatasync; a last
 * line cut short by a crash was never acknowledged and is dropped at
 * replay. Group commit (state.h): several records are written, then one
 * fdatasync makes them all durable; if it fails they are cut off again
 * (journal__rewind()) and none is acknowledged. A full save writes a new state file (a new inode, rename) before
 * the journal is removed: a crash in between leaves a journal whose base
 * is not the state file, which the replay ignores (the file has all of it).
 */
#ifndef MESHD_JOURNAL_H
#define MESHD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

#include "desired.h"

#define JOURNAL_IDLE_MS 1000
/* Compacted at the latest when the records reach this many bytes, or the
 * state file's size when that is larger. */
#define JOURNAL_MIN_BYTES (1u << 20)

struct journal {
	char path[4096]; /* STATE.journal */
	int fd;          /* open for appends; -1: none yet */
	__u64 bytes;     /* records' bytes appended */
	__u64 limit;     /* compact past this */
	__u32 records;
	__u64 last_ms;   /* CLOCK_MONOTONIC ms of the last append */
	__u32 unsynced;  /* records written since the last fdatasync */
	off_t sync_from; /* where the first of them starts */
	__u64 syncs;     /* fdatasyncs of records done */
	int fail_sync;   /* tests: journal__sync() fails with this (-EIO) */
};

void journal__init(struct journal *j, const char *state_path);
void journal__close(struct journal *j);
/* Replay STATE.journal onto d (the state file just loaded from
 * state_path): *n records applied (0: no journal, or a stale one, removed).
 * A record that does not parse or names no service is -EINVAL, the text
 * naming the journal and the line. */
int journal__replay(struct journal *j, const char *state_path, struct desired *d, __u32 *n);
/* Append svc durably; the journal is created (header, fsync, directory
 * fsync) at the first. On error nothing of the record stays (truncated
 * back) and the text is in sluice__errmsg(); -ENOENT: no state file to
 * journal against (save it whole). */
int journal__append(struct journal *j, const char *state_path, const struct desired_service *svc);
/* journal__append() in two steps, for group commit: write the record
 * (not yet durable; a failed write leaves nothing of it), then one
 * journal__sync() for every record written since the last. A failed sync
 * cuts those records off (journal__rewind()) and says why in
 * sluice__errmsg(). */
int journal__write(struct journal *j, const char *state_path, const struct desired_service *svc);
int journal__sync(struct journal *j);
/* Cut off the records written since the last sync (a batch given up). */
void journal__rewind(struct journal *j);
/* Whether the journal should be folded in now: (idle) no append for
 * JOURNAL_IDLE_MS, or (!idle) its records reached the limit. */
bool journal__due(const struct journal *j, bool idle);
/* After a full save: remove the journal (its records are in the file). */
void journal__reset(struct journal *j);

#endif /* MESHD_JOURNAL_H */
