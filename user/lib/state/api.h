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
 *                                           "counters": {name: n}, "drops": {reason: n},
 *                                           "metrics": {"address","port","url"} | null (off),
 *                                           "telemetry": {"enabled","running","cgroup",
 *                                                         "interval_seconds","error"?,
 *                                                         "followers","attached","cgroup_id",
 *                                                         "records_read","records_written",
 *                                                         "records_lost",...}}
 *   service.list                        -> {"services": [SERVICE...]}
 *   service.get    {"service": SVC}     -> SERVICE
 *   service.add    {"service": SVC, "name"?: str, "backends"?: [{"address","port","weight"?}],
 *                   "outlierDetection"?: {...} (desired.h),
 *                   "sessionAffinity"?: {"type": "ClientIP"|"None", "timeoutSeconds"?: n}}
 *                                       (error if it exists)
 *   service.set    {"service": SVC, "outlierDetection"?: {...} | null (all defaults),
 *                   "sessionAffinity"?: {...} | null (none)}
 *                                       -> SERVICE; the fields given change, a field
 *                                          given as null goes back to its default
 *   service.del    {"service": SVC}
 *   backend.add    {"service": SVC, "backend": BE, "weight"?: n (default 1)}
 *   backend.del    {"service": SVC, "backend": BE}
 *   backend.weight {"service": SVC, "backend": BE, "weight": n}
 *   backend.drain  {"service": SVC, "backend": BE}      (weight 0, the old one
 *                  kept as the backend's "drainedWeight")
 *   backend.undrain {"service": SVC, "backend": BE}     (weight drainedWeight, or 1)
 *   apply          {"desired": DESIRED, "dry_run"?: bool}
 *                                        -> {"changes": [{"action": "add"|"update"|"delete",
 *                                                         "service": SVC}], "applied": bool}
 *   conntrack.list {"service"?: SVC}    -> {"entries": [{"proto","client","service","backend",
 *                                                        "state","age_seconds","idle_seconds","tcp_flags"}]}
 *   conntrack.flush {"service"?: SVC}   -> {"deleted": n}
 *   uninstall                           -> {"detached": n, "pin_dir", "telemetry_cgroup"?}:
 *                                          detaches everything, removes pins, meshd exits
 *   connections.list {"limit"?: n (1-4096), "service"?: SVC, "events"?: bool}
 *                                       -> {"records": [RECORD...]}, oldest first: the newest
 *                                          record of each of the last `limit` connections
 *                                          ("events": true: every record, not one per connection)
 *   connections.follow {"service"?: SVC} -> {"following": true}; then the connection stays
 *                                          open and meshd writes one RECORD per line as they
 *                                          arrive. The client keeps its end open: closing it
 *                                          ends the stream. meshd closes a stream that falls
 *                                          1 MiB behind, and at exit.
 *   top                                 -> {"time_ms" (CLOCK_MONOTONIC), "uptime_seconds",
 *                                           "telemetry": bool, "records_read", "records_lost",
 *                                           "services": [{"service": SVC, "name", "id",
 *                                             "backends", "packets", "bytes", "flows", "refused",
 *                                             "connections": {"outbound"|"inbound": {"opened",
 *                                               "closed", "reset", "failed", "active",
 *                                               "bytes_sent", "bytes_received", "retransmits",
 *                                               "rtos", "rtt_us": {"le": [bucket bounds],
 *                                               "counts": [per bucket, above the last bound
 *                                               last], "count", "sum"}}}}]}
 *                                          (totals since meshd started: rates and windowed
 *                                          percentiles come from two calls)
 * SERVICE = desired__service_to_json() plus "id", "stats": {"packets","bytes","flows","refused"},
 * "health": {"healthy", "total" (backends with weight > 0), "outlier_detection": bool (on for
 * this service and the node), "ejected"} and per backend "id", "state": "active"|"draining",
 * "stats": {"packets","bytes","flows"}, "health": {"state": "healthy"|"ejected"|"probation"|
 * "unhealthy"|"draining", "consecutive_failures", "ejections", "last_failure_reason",
 * "last_failure_ms", "ejected_until_ms" (Unix ms; 0: none)}.
 * status also has "outlier_detection": {"enabled", "events" (read), "error"?, "ejected",
 * "reejected", "restored", "max_ejected" (events since meshd started)}.
 * DESIRED = the desired.h JSON shape.
 * RECORD = one connection telemetry record: {"time" (Unix s), "event": "open"|"update"|"close"|
 *   "fail", "state": "open"|"closed"|"failed", "service": SVC|null (gone), "name"?,
 *   "service_id", "backend": BE|null, "backend_id", "direction": "outbound" (a client here
 *   connected) | "inbound" (a backend here accepted), "client", "local", "remote" (ADDR:PORT),
 *   "duration_seconds", "bytes_sent" (acked by the peer), "bytes_received", "segs_out",
 *   "segs_in", "retransmits", "rtos", "srtt_us", "srtt_min_us", "reason" (why it failed or
 *   ended: "none", "refused", "timeout", "reset", ...), "cookie" (joins one socket's records)}
 */
#ifndef SLUICE_API_H
#define SLUICE_API_H

#include <json-c/json.h>

#define SLUICE_API_SOCKET_DEFAULT "/run/sluice/meshd.sock"
/* Largest request or response: a desired state at full capacity (327679
 * backends) is ~17 MB of JSON with IPv4 addresses, ~26 MB with IPv6, and
 * a service list with statistics about three times that. */
#define SLUICE_API_MAX_MSG (128u << 20)

/* Client: send req, wait for the response (timeout_ms), return it in *resp.
 * Errors (cannot connect, permission denied, malformed response) return a
 * negative errno with sluice__errmsg() saying what failed and where. */
int api__call(const char *sock_path, struct json_object *req, int timeout_ms,
	      struct json_object **resp);

/* api__call() with two options for large messages (#16: `meshctl apply`
 * of 30k services). write, when set, sends the request instead of req:
 * it writes the whole message but the newline to fd (blocking, bounded by
 * SO_SNDTIMEO) and returns 0 or a negative errno (-EMSGSIZE past
 * SLUICE_API_MAX_MSG, message set). lazy, when set, names a member of
 * the response that stays text when it is an object and the response is
 * 64 KiB or more (a jscan__raw_new() placeholder, see jsonscan.h). */
struct api_call {
	struct json_object *req;
	int (*write)(int fd, void *ctx);
	void *ctx;
	const char *lazy;
};

int api__call_ex(const char *sock_path, const struct api_call *call, int timeout_ms,
		 struct json_object **resp);

/* Helpers for both sides. */
struct json_object *api__ok(struct json_object *data);
struct json_object *api__error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Read one whole JSON message (until EOF or newline) from fd; write one. */
int api__read_msg(int fd, int timeout_ms, struct json_object **msg);
int api__write_msg(int fd, struct json_object *msg);

#endif /* SLUICE_API_H */
