/* SPDX-License-Identifier: MIT */
/*
 * notify.h - readiness for systemd (Type=notify) without libsystemd.
 *
 * Contract: notify__send() writes one datagram ("READY=1", "STOPPING=1",
 * "STATUS=...", newline-separated) to the socket named by $NOTIFY_SOCKET
 * (a path, or "@name" for the abstract namespace) and returns 0, or 0
 * without doing anything when the variable is unset (not run by systemd);
 * a negative errno when it is set but the send fails (logged by the
 * caller, never fatal: the datapath does not depend on it).
 */
#ifndef MESHD_NOTIFY_H
#define MESHD_NOTIFY_H

int notify__send(const char *state);

#endif /* MESHD_NOTIFY_H */
