/* SPDX-License-Identifier: MIT */
/*
 * attach.h - which interfaces carry the datapath, and attaching to them.
 *
 * Contract: an interface whose name matches one of the configured patterns
 * (fnmatch globs or plain names) gets xdp_lb (native or generic XDP) or,
 * with XDP off, tc_lb at tc ingress. A program of ours already there (from
 * an earlier meshd) is replaced in one netlink call, so no packet misses
 * the datapath; anyone else's XDP program or tc filter in our slot is never
 * replaced: the interface is refused with an error naming the program. The
 * list of attachments is what `status` reports. Nothing is detached when
 * meshd exits; only attach__cleanup() detaches (and only Sluice programs).
 */
#ifndef MESHD_ATTACH_H
#define MESHD_ATTACH_H

#include <stdbool.h>
#include <net/if.h>
#include <json-c/json.h>
#include <linux/types.h>

struct netlink_ops;
struct sluice;

enum attach_xdp_mode {
	ATTACH_XDP_NATIVE,
	ATTACH_XDP_GENERIC,
	ATTACH_XDP_OFF, /* tc ingress instead */
};

enum attach_state {
	ATTACH_ATTACHED,
	ATTACH_REFUSED, /* a foreign program holds the hook */
	ATTACH_FAILED,  /* the kernel said no; retried on the next link event */
};

struct attach_entry {
	char ifname[IF_NAMESIZE];
	int ifindex;
	enum attach_state state;
	__u32 prog_id;
	bool seen;     /* mark of attach__sync_begin/end */
	char err[256]; /* last refusal or failure, logged when it changes */
};

struct attach {
	struct sluice *sl;
	enum attach_xdp_mode mode;
	char **patterns;
	int npatterns;
	struct attach_entry *list;
	int n, cap;
	bool fwd_auto; /* keep fwd_devs in step with every link (fwddev.c) */
};

/* "native" | "generic" | "off" */
int attach__parse_mode(const char *text, enum attach_xdp_mode *mode);
const char *attach__mode_name(enum attach_xdp_mode mode);

/* interfaces: comma-separated names or patterns, may be NULL/empty. */
int attach__init(struct attach *a, struct sluice *sl, enum attach_xdp_mode mode,
		 const char *interfaces);
void attach__free(struct attach *a);

/* The link events of netlink.h, for netlink__open(): a link that appears
 * and matches is attached; a deleted one (the kernel dropped its
 * programs) is forgotten, and so is one a full list no longer has. */
void attach__link_ops(struct attach *a, struct netlink_ops *ops);
/* Re-check every attachment (someone may have detached or replaced our
 * program without a link event) and retry the refused and failed ones. */
void attach__check_all(struct attach *a);
/* Log the plainly named interfaces that are not there (yet). */
void attach__log_waiting(const struct attach *a);

/* Interfaces that carry our program now. */
int attach__count(const struct attach *a);
/* [{"ifname","ifindex","hook","mode","prog_id"}] of the attached ones. */
struct json_object *attach__to_json(const struct attach *a);
/* [{"ifname","ifindex","error"}] of matching interfaces left unattached. */
struct json_object *attach__errors_json(const struct attach *a);

/* Detach Sluice's programs (by name) from every interface of this network
 * namespace. Returns the number detached or a negative errno. */
int attach__cleanup(void);

#endif /* MESHD_ATTACH_H */
