/* SPDX-License-Identifier: MIT */
/*
 * k8s_sync.h - private to k8s.c (the thread, publishing, the public API),
 * k8s_watch.c (one kind's list/watch requests) and k8s_util.c (what both
 * use): their shared state.
 *
 * Contract: everything in struct k8s_watch and the thread-side fields of
 * struct k8s belong to the sync thread; the fields under `lock` are what
 * the owner's thread reads (k8s__poll, k8s__stats).
 */
#ifndef SLUICE_K8S_SYNC_H
#define SLUICE_K8S_SYNC_H

#include <pthread.h>
#include <curl/curl.h>

#include "k8s_internal.h"

#define K8S_LIST_BODY_MAX (512u << 20) /* one list page (limit 500) is far below */
#define K8S_EVENT_MAX (64u << 20)
#define K8S_ERR_BODY_MAX 4096
#define K8S_TOKEN_MAX 16384
#define K8S_CONNECT_TIMEOUT_MS 5000
#define K8S_LIST_TIMEOUT_MS 120000
#define K8S_WARN_MAX 1000

enum w_state {
	W_IDLE,
	W_LIST,
	W_WATCH
};
enum w_abort {
	ABORT_NONE,
	ABORT_GONE,
	ABORT_MALFORMED,
	ABORT_ERROR,
	ABORT_TOO_BIG
};

struct k8s_watch {
	struct k8s *k;
	enum k8s_kind kind;
	const char *path;      /* collection URL path */
	const char *list_kind; /* "ServiceList" */
	const char *label;     /* "Services" for messages */
	enum w_state state;
	CURL *easy;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	char *rv;   /* last resourceVersion seen */
	char *cont; /* continue token of the list in progress */
	bool listed;
	bool need_list;
	struct k8s_objs *objs;
	struct k8s_objs *staging; /* the list in progress */
	long status;
	char *body;
	size_t body_len, body_cap;
	struct k8s_stream stream;
	bool got_data;
	enum w_abort abort;
	char abort_text[256];
	unsigned int backoff_ms;
	__u64 next_at_ms;
	__u64 started_ms;
};

struct k8s {
	struct k8s_opts opts;
	char *node_name, *proxy_name;
	struct k8s_conn conn;
	CURLM *multi;
	int efd;
	pthread_t thread;
	bool thread_started;
	volatile int stop;
	unsigned int seed;
	struct k8s_watch w[K8S__KINDS];
	/* thread side */
	struct desired last; /* last published set */
	bool published;
	bool dirty;
	__u64 dirty_at_ms;
	char **warns;
	__u32 nwarns, capwarns;
	char **prev_warns;
	__u32 nprev_warns;
	struct sluice_addr *node_addrs; /* what the translation uses */
	__u32 nnode_addrs;
	struct k8s_hc_set last_hc; /* last published healthCheckNodePorts */
	/* shared with the owner, under lock */
	pthread_mutex_t lock;
	struct desired pending;
	bool have_pending;
	struct k8s_hc_set pending_hc;
	bool have_pending_hc;
	struct sluice_addr *new_addrs; /* k8s__set_node_addrs(), for the thread */
	__u32 nnew_addrs;
	bool addrs_changed;
	struct k8s_stats st;
};

/* k8s_util.c */
__u64 k8s__now_ms(void);
void k8s__log(struct k8s *k, enum k8s_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A failure worth counting: stats, last_error and an error line. */
void k8s__sync_error(struct k8s *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Data came from the server (ok: and clears last_error). */
void k8s__touch(struct k8s *k, bool ok);
void k8s__count(struct k8s *k, __u64 *counter);
/* The objects changed: publish after the debounce. */
void k8s__mark_dirty(struct k8s *k);
int k8s__set_str(char **dst, const char *src);

/* k8s_watch.c: one kind's request cycle (states in its contract comment). */
int k8s_watch__init(struct k8s_watch *w, struct k8s *k, enum k8s_kind kind);
void k8s_watch__free(struct k8s_watch *w, CURLM *multi);
/* Starts the list or watch request that is due (state W_IDLE). */
void k8s_watch__start(struct k8s_watch *w);
/* A request of this kind finished (curl removed it from the multi handle). */
void k8s_watch__done(struct k8s_watch *w, CURLcode res);

#endif /* SLUICE_K8S_SYNC_H */
