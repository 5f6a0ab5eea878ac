/* SPDX-License-Identifier: MIT */
/*
 * api.h - the meshd API: one JSON request per connection on a Unix stream
 * socket (root only: mode 0600 and SO_PEERCRED uid 0), answered by one JSON
 * response, then the server closes the connection.
 *
 * Request:  {"op": "<op>", ...arguments}\n
 * Response: {"ok": true, "data": <value>}  or  {"ok": false, "error": "text"}
 *
 * Ops and arguments (SVC = "VIP:PORT/PROTO", e.g. "10.96.0.10:80/tcp" or
 * "[fd00::10]:80/udp"; BE = "ADDR:PORT"):
 *   status                              -> {"version", "layout_version", "started_at" (unix s),
 *                                           "uptime_seconds", "pin_dir", "state_file",
 *                                           "attachments": [{"ifname","ifindex","hook": "xdp"|"tc",
 *                                                            "mode": "native"|"generic"|"tc",
 *                                                            "prog_id"}],
 *                                           "maps": [{"name","entries","capacity"}],
 *                                           "counters": {name: n}, "drops": {reason: n}}
 *   service.list                        -> {"services": [SERVICE...]}
 *   service.get    {"service": SVC}     -> SERVICE
 *   service.add    {"service": SVC, "name"?: str, "backends"?: [{"address","port","weight"?}]}
 *                                           (error if it exists)
 *   service.del    {"service": SVC}
 *   backend.add    {"service": SVC, "backend": BE, "weight"?: n (default 1)}
 *   backend.del    {"service": SVC, "backend": BE}
 *   backend.weight {"service": SVC, "backend": BE, "weight": n}
 *   backend.drain  {"service": SVC, "backend": BE}      (weight 0)
 *   apply          {"desired": DESIRED, "dry_run"?: bool}
 *                                        -> {"changes": [{"action": "add"|"update"|"delete",
 *                                                         "service": SVC}], "applied": bool}
 *   conntrack.list {"service"?: SVC}    -> {"entries": [{"proto","client","service","backend",
 *                                                        "age_seconds","idle_seconds","tcp_flags"}]}
 *   conntrack.flush {"service"?: SVC}   -> {"deleted": n}
 *   uninstall                           -> detaches everything, removes pins, meshd exits
 * SERVICE = desired__service_to_json() plus "id", "stats": {"packets","bytes","flows","refused"}
 * and per backend "id", "state": "active"|"draining", "stats": {"packets","bytes","flows"}.
 * DESIRED = the desired.h JSON shape.
 */
#ifndef SLUICE_API_H
#define SLUICE_API_H

#include <json-c/json.h>

#define SLUICE_API_SOCKET_DEFAULT "/run/sluice/meshd.sock"
#define SLUICE_API_MAX_MSG (16u << 20) /* largest request or response */

/* Client: send req, wait for the response (timeout_ms), return it in *resp.
 * Errors (cannot connect, permission denied, malformed response) return a
 * negative errno with sluice__errmsg() saying what failed and where. */
int api__call(const char *sock_path, struct json_object *req, int timeout_ms,
	      struct json_object **resp);

/* Helpers for both sides. */
struct json_object *api__ok(struct json_object *data);
struct json_object *api__error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Read one whole JSON message (until EOF or newline) from fd; write one. */
int api__read_msg(int fd, int timeout_ms, struct json_object **msg);
int api__write_msg(int fd, struct json_object *msg);

#endif /* SLUICE_API_H */
