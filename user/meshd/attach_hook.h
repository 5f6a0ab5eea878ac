/* SPDX-License-Identifier: MIT */
/*
 * attach_hook.h - between attach.c (which interfaces) and attach_hook.c
 * (our program on one interface's hook).
 *
 * Contract: both leave the outcome in the entry: state ATTACH_ATTACHED
 * with prog_id, or ATTACH_REFUSED / ATTACH_FAILED with err (logged when
 * it changes). After a mode change the hook of the other mode is cleared
 * of our program, which would otherwise NAT the packets twice.
 */
#ifndef MESHD_ATTACH_HOOK_H
#define MESHD_ATTACH_HOOK_H

#include <stddef.h>
#include <linux/types.h>

struct attach;
struct attach_entry;

/* Attach to e's hook in a->mode, never over a foreign program. */
void attach__try(struct attach *a, struct attach_entry *e);
/* Our program still on e's hook? If someone replaced or detached it, try again. */
void attach__verify(struct attach *a, struct attach_entry *e);

/* Also for the doctor op (ops_doctor.c): the program in our tc ingress
 * slot (0, or -errno: none there, no clsact qdisc) and a program's name
 * ("" when it is gone). */
int attach__tc_query(int ifindex, __u32 *prog_id);
void attach__prog_name(__u32 id, char *buf, size_t len);

#endif /* MESHD_ATTACH_HOOK_H */
