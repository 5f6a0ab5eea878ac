/* SPDX-License-Identifier: MIT */
/*
 * pin.h - the pin directory on bpffs: mounting bpffs, one meshd per pin
 * directory, and the layout-version map.
 *
 * Contract: "layout" is a one-element array map pinned next to the datapath
 * maps holding SLUICE_LAYOUT_VERSION. pin__check_layout() runs before any
 * map is opened and refuses a directory whose maps carry another version
 * (or none): a restarted meshd reuses maps only of its own layout and never
 * silently recreates them (that would drop conntrack).
 */
#ifndef MESHD_PIN_H
#define MESHD_PIN_H

#include <stdbool.h>
#include <linux/types.h>

struct sluice;

#define PIN_LAYOUT_NAME "layout"

/* Mount bpffs on /sys/fs/bpf if dir is below it and nothing is mounted there. */
int pin__mount_bpffs(const char *dir);
/* Create dir (0700) and take an exclusive lock on it for this process's
 * life: a second meshd on the same pins is refused. Returns the fd, or
 * -EBUSY (not logged) when another process holds the lock. */
int pin__lock(const char *dir);
/* Like pin__lock() but never creates dir: 0 if dir does not exist. */
int pin__lock_existing(const char *dir);
/* Anything pinned in dir besides the layout map? */
bool pin__has_maps(const char *dir);
int pin__check_layout(const char *dir);
/* Services (VIP markers not counted) in dir's pinned services map; 0
 * when there is none. Read before the datapath is loaded. */
int pin__count_services(const char *dir, __u32 *n);
/* Pin the layout map (after the datapath maps are pinned). */
int pin__write_layout(const char *dir);
/* Remove the layout map, the telemetry pins (detaching its link) and
 * every datapath pin, then the directory. */
int pin__remove(const char *dir);
/* meshd --cleanup: detach every program meshd attached and remove the
 * pins under bpffs, refused while a meshd runs on it. Returns the exit
 * status (0 or 1), having said what happened. */
int pin__cleanup(const char *bpffs);

/* #16: meshd's version, part of the program record (the object's bytes and
 * the .rodata the programs hold are compared as well). */
#define PIN_BUILD_ID "meshd " SLUICE_VERSION
/* One line: whether this start reused the pinned programs or loaded them,
 * and why. */
void pin__log_progs(struct sluice *sl);
/* After the first attach: pin loaded programs with their record, so the
 * next start of the same build and config reuses them. Never fatal:
 * without a record the next start loads, as before. */
void pin__save_progs(struct sluice *sl, const char *dir);

#endif /* MESHD_PIN_H */
