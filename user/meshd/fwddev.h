/* SPDX-License-Identifier: MIT */
/*
 * fwddev.h - keeping the datapath's XDP redirect targets (fwd_devs) in step
 * with the links of the namespace (see fwddev.c for how a device is judged).
 */
#ifndef MESHD_FWDDEV_H
#define MESHD_FWDDEV_H

#include <stdbool.h>

#include "sluice.h"

/* Whether ifindex can take redirected XDP frames; why says how it was told. */
bool fwddev__capable(int ifindex, const char **why);
/* A link appeared or changed: add it to fwd_devs or remove it. */
void fwddev__link_up(struct sluice *sl, int ifindex, const char *ifname);
void fwddev__link_gone(struct sluice *sl, int ifindex);

#endif /* MESHD_FWDDEV_H */
