// SPDX-License-Identifier: MIT
/*
 * k8s.c - the sync thread and the public API (k8s.h): drives both kinds'
 * request cycles (k8s_watch.c) through one curl multi handle, translates
 * the objects when they changed and hands whole sets to the owner.
 *
 * Contract: one thread, one multi handle, so the two watches can share a
 * connection (HTTP/2 over TLS) and the thread waits on both plus its
 * timers in one place (curl_multi_poll; k8s__close wakes it). Changes are
 * coalesced for debounce_ms after the first one (a rollout touches many
 * slices at once); a translation equal to the last published set is not
 * published. Nothing is published before both kinds are listed. The owner
 * only ever sees whole sets, through k8s__fd() and k8s__poll().
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "internal.h"
#include "k8s_sync.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_res;

static void sync__curl_init(void)
{
	curl_init_res = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void sync__on_done(struct k8s *k, CURL *e, CURLcode res)
{
	struct k8s_watch *w = NULL;

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&w);
	curl_multi_remove_handle(k->multi, e);
	if (w)
		k8s_watch__done(w, res);
}

/* --- publishing --- */

static void sync__on_warn(const char *msg, void *ctx)
{
	struct k8s *k = ctx;
	char **n;

	if (k->nwarns >= K8S_WARN_MAX)
		return;
	if (k->nwarns == k->capwarns) {
		__u32 cap = k->capwarns ? k->capwarns * 2 : 16;

		n = realloc(k->warns, cap * sizeof(*n));
		if (!n)
			return;
		k->warns = n;
		k->capwarns = cap;
	}
	k->warns[k->nwarns] = strdup(msg);
	if (k->warns[k->nwarns])
		k->nwarns++;
}

/* Translation runs on every change; say each problem once, not each time. */
static void sync__flush_warnings(struct k8s *k)
{
	for (__u32 i = 0; i < k->nwarns; i++) {
		bool seen = false;

		for (__u32 j = 0; j < k->nprev_warns && !seen; j++)
			seen = !strcmp(k->warns[i], k->prev_warns[j]);
		if (!seen)
			k8s__log(k, K8S_LOG_WARN, "%s", k->warns[i]);
	}
	for (__u32 j = 0; j < k->nprev_warns; j++)
		free(k->prev_warns[j]);
	free(k->prev_warns);
	k->prev_warns = k->warns;
	k->nprev_warns = k->nwarns;
	k->warns = NULL;
	k->nwarns = k->capwarns = 0;
}

/* The healthCheckNodePorts, handed over when they changed. */
static int sync__publish_hc(struct k8s *k, const struct k8s_xlate_opts *xo)
{
	struct k8s_hc_set hc = { 0 }, copy;
	int err;

	err = k8s__translate_hc(k->w[K8S_SERVICES].objs, k->w[K8S_SLICES].objs, xo, &hc);
	if (err)
		return err;
	if (k->published && k8s_hc_set__equal(&hc, &k->last_hc)) {
		k8s_hc_set__free(&hc);
		return 0;
	}
	err = k8s_hc_set__copy(&copy, &hc);
	if (err) {
		k8s_hc_set__free(&hc);
		sluice__set_err("out of memory");
		return err;
	}
	k8s_hc_set__free(&k->last_hc);
	k->last_hc = hc;
	pthread_mutex_lock(&k->lock);
	k8s_hc_set__free(&k->pending_hc);
	k->pending_hc = copy;
	k->have_pending_hc = true;
	pthread_mutex_unlock(&k->lock);
	eventfd_write(k->efd, 1);
	return 0;
}

/* Node addresses the owner handed over: translate again. */
static void sync__take_addrs(struct k8s *k)
{
	pthread_mutex_lock(&k->lock);
	if (k->addrs_changed) {
		free(k->node_addrs);
		k->node_addrs = k->new_addrs;
		k->nnode_addrs = k->nnew_addrs;
		k->new_addrs = NULL;
		k->nnew_addrs = 0;
		k->addrs_changed = false;
		k8s__mark_dirty(k);
	}
	pthread_mutex_unlock(&k->lock);
}

/* Returns how long until a publish is due (ms), or -1 when none is. */
static __u64 sync__cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (__u64)ts.tv_sec * 1000000 + (__u64)ts.tv_nsec / 1000;
}

/* The counts of the objects and the CPU time of a translation since t0. */
static void sync__count_cpu(struct k8s *k, __u64 t0)
{
	__u64 us = sync__cpu_us() - t0;

	pthread_mutex_lock(&k->lock);
	k->st.services = k8s_objs__count(k->w[K8S_SERVICES].objs);
	k->st.endpointslices = k8s_objs__count(k->w[K8S_SLICES].objs);
	k->st.translate_cpu_us += us;
	k->st.last_translate_cpu_us = us;
	pthread_mutex_unlock(&k->lock);
}

static long sync__publish(struct k8s *k)
{
	struct k8s_xlate_opts xo = { .node_name = k->node_name,
				     .proxy_name = k->proxy_name,
				     .node_addrs = k->node_addrs,
				     .nnode_addrs = k->nnode_addrs,
				     .warn = sync__on_warn,
				     .ctx = k };
	struct desired d, copy;
	__u64 now = k8s__now_ms(), t0;
	int err;

	if (!k->dirty || !k->w[K8S_SERVICES].listed || !k->w[K8S_SLICES].listed)
		return -1;
	/* coalesce a burst (a rollout changes many slices within ms) */
	if (k->published && now < k->dirty_at_ms + k->opts.debounce_ms)
		return k->dirty_at_ms + k->opts.debounce_ms - now;
	k->dirty = false;
	k->dirty_at_ms = 0;
	t0 = sync__cpu_us();
	desired__init(&d);
	err = k8s__translate(k->w[K8S_SERVICES].objs, k->w[K8S_SLICES].objs, &xo, &d);
	if (!err)
		err = sync__publish_hc(k, &xo);
	sync__flush_warnings(k);
	if (err) {
		desired__free(&d);
		k8s__sync_error(k, "%s", sluice__errmsg());
		return -1;
	}
	if (k->published && k8s__desired_equal(&d, &k->last)) {
		desired__free(&d);
		sync__count_cpu(k, t0);
		return -1;
	}
	/* the translation promises validity; check, as a bug here would stop all updates */
	err = desired__validate(&d);
	if (!err)
		err = desired__copy(&copy, &d);
	sync__count_cpu(k, t0);
	if (err) {
		k8s__sync_error(k, "translated Kubernetes services are not valid: %s",
				sluice__errmsg());
		desired__free(&d);
		return -1;
	}
	desired__free(&k->last);
	k->last = d;
	pthread_mutex_lock(&k->lock);
	desired__free(&k->pending);
	k->pending = copy;
	k->have_pending = true;
	k->st.synced = true;
	k->st.publishes++;
	k->st.kube_services = d.nservices;
	k->st.last_change = time(NULL);
	pthread_mutex_unlock(&k->lock);
	if (!k->published)
		k8s__log(k, K8S_LOG_INFO,
			 "first full sync: %u services from %u Services and %u "
			 "EndpointSlices",
			 d.nservices, k8s_objs__count(k->w[K8S_SERVICES].objs),
			 k8s_objs__count(k->w[K8S_SLICES].objs));
	k->published = true;
	eventfd_write(k->efd, 1);
	return -1;
}

/* --- the thread --- */

static void *sync__thread(void *arg)
{
	struct k8s *k = arg;
	sigset_t all;

	/* Signals are the owner's business. And with CURLOPT_NOSIGNAL (needed
	 * in threads) a TLS write to a closed peer raises SIGPIPE in this
	 * thread: blocked, it stays pending and the write just fails. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);

	while (!k->stop) {
		long timeout = 1000, due;
		struct CURLMsg *msg;
		int running, q;
		__u64 now = k8s__now_ms();

		for (int i = 0; i < K8S__KINDS; i++)
			if (k->w[i].state == W_IDLE && now >= k->w[i].next_at_ms)
				k8s_watch__start(&k->w[i]);
		sync__take_addrs(k);
		curl_multi_perform(k->multi, &running);
		while ((msg = curl_multi_info_read(k->multi, &q)))
			if (msg->msg == CURLMSG_DONE)
				sync__on_done(k, msg->easy_handle, msg->data.result);
		due = sync__publish(k);
		now = k8s__now_ms();
		if (due >= 0 && due < timeout)
			timeout = due;
		for (int i = 0; i < K8S__KINDS; i++) {
			if (k->w[i].state != W_IDLE)
				continue;
			due = k->w[i].next_at_ms > now ? (long)(k->w[i].next_at_ms - now) : 0;
			if (due < timeout)
				timeout = due;
		}
		if (timeout > 0)
			curl_multi_poll(k->multi, NULL, 0, timeout, NULL);
	}
	return NULL;
}

/* --- public --- */

int k8s__open(const struct k8s_opts *opts, struct k8s **out)
{
	struct k8s *k;
	int err;

	sluice__clear_err();
	pthread_once(&curl_once, sync__curl_init);
	if (curl_init_res != CURLE_OK) {
		sluice__set_err("libcurl initialisation failed: %s",
				curl_easy_strerror(curl_init_res));
		return -EIO;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	k->efd = -1;
	pthread_mutex_init(&k->lock, NULL);
	desired__init(&k->pending);
	desired__init(&k->last);
	k->opts = *opts;
	if (!k->opts.backoff_min_ms)
		k->opts.backoff_min_ms = 500;
	if (!k->opts.backoff_max_ms)
		k->opts.backoff_max_ms = 30000;
	if (k->opts.backoff_max_ms < k->opts.backoff_min_ms)
		k->opts.backoff_max_ms = k->opts.backoff_min_ms;
	if (!k->opts.page_size)
		k->opts.page_size = 500;
	if (!k->opts.debounce_ms)
		k->opts.debounce_ms = 100;
	k->seed = (unsigned int)time(NULL) ^ (unsigned int)getpid();
	err = k8s__set_str(&k->node_name, opts->node_name);
	if (!err)
		err = k8s__set_str(&k->proxy_name, opts->proxy_name);
	if (!err && opts->nnode_addrs) {
		k->node_addrs = malloc(opts->nnode_addrs * sizeof(*k->node_addrs));
		if (k->node_addrs) {
			memcpy(k->node_addrs, opts->node_addrs,
			       opts->nnode_addrs * sizeof(*k->node_addrs));
			k->nnode_addrs = opts->nnode_addrs;
		} else {
			err = -ENOMEM;
		}
	}
	k->opts.node_addrs = NULL;
	k->opts.nnode_addrs = 0;
	if (err) {
		sluice__set_err("out of memory");
		goto fail;
	}
	k->opts.node_name = k->opts.proxy_name = NULL;
	k->opts.kubeconfig = k->opts.server = k->opts.token_file = k->opts.ca_file = NULL;
	err = k8s_conn__from_opts(&k->conn, opts);
	if (err)
		goto fail;
	k->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	k->multi = curl_multi_init();
	if (k->efd < 0 || !k->multi) {
		err = k->efd < 0 ? -errno : -ENOMEM;
		sluice__set_err("cannot set up the Kubernetes client: %s", strerror(-err));
		goto fail;
	}
	for (int i = 0; i < K8S__KINDS; i++) {
		err = k8s_watch__init(&k->w[i], k, i);
		if (err)
			goto fail;
	}
	if (k->conn.insecure)
		k8s__log(k, K8S_LOG_WARN,
			 "%s: insecure-skip-tls-verify is set: the API server's "
			 "certificate is not checked",
			 k->conn.origin);
	k8s__log(k, K8S_LOG_INFO, "syncing Services and EndpointSlices from %s (%s)",
		 k->conn.server, k->conn.origin);
	err = -pthread_create(&k->thread, NULL, sync__thread, k);
	if (err) {
		sluice__set_err("cannot start the Kubernetes sync thread: %s", strerror(-err));
		goto fail;
	}
	k->thread_started = true;
	*out = k;
	return 0;
fail:
	k8s__close(k);
	return err;
}

int k8s__fd(const struct k8s *k)
{
	return k->efd;
}

int k8s__poll(struct k8s *k)
{
	struct k8s_hc_set hc;
	struct desired d;
	bool have, have_hc;
	eventfd_t v;

	eventfd_read(k->efd, &v);
	pthread_mutex_lock(&k->lock);
	have = k->have_pending;
	d = k->pending;
	desired__init(&k->pending);
	k->have_pending = false;
	have_hc = k->have_pending_hc;
	hc = k->pending_hc;
	k->pending_hc = (struct k8s_hc_set){ 0 };
	k->have_pending_hc = false;
	pthread_mutex_unlock(&k->lock);
	if (have && k->opts.on_state)
		k->opts.on_state(&d, true, k->opts.ctx);
	/* after the services: a probe says 200 only once they are in the maps */
	if (have_hc && k->opts.on_health)
		k->opts.on_health(&hc, k->opts.ctx);
	desired__free(&d);
	k8s_hc_set__free(&hc);
	return have || have_hc;
}

int k8s__set_node_addrs(struct k8s *k, const struct sluice_addr *addrs, __u32 n)
{
	struct sluice_addr *v = NULL;

	if (n) {
		v = malloc(n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memcpy(v, addrs, n * sizeof(*v));
	}
	pthread_mutex_lock(&k->lock);
	free(k->new_addrs);
	k->new_addrs = v;
	k->nnew_addrs = n;
	k->addrs_changed = true;
	pthread_mutex_unlock(&k->lock);
	curl_multi_wakeup(k->multi);
	return 0;
}

void k8s__stats(struct k8s *k, struct k8s_stats *st)
{
	pthread_mutex_lock(&k->lock);
	*st = k->st;
	pthread_mutex_unlock(&k->lock);
}

struct json_object *k8s__stats_to_json(const struct k8s_stats *st)
{
	struct json_object *o = json_object_new_object(), *c = json_object_new_object();

	if (!o || !c) {
		json_object_put(o);
		json_object_put(c);
		return NULL;
	}
	json_object_object_add(c, "services", json_object_new_boolean(st->connected[K8S_SERVICES]));
	json_object_object_add(c, "endpointslices",
			       json_object_new_boolean(st->connected[K8S_SLICES]));
	json_object_object_add(o, "synced", json_object_new_boolean(st->synced));
	json_object_object_add(o, "connected", c);
	json_object_object_add(o, "watch_restarts", json_object_new_uint64(st->watch_restarts));
	json_object_object_add(o, "relists", json_object_new_uint64(st->relists));
	json_object_object_add(o, "sync_errors", json_object_new_uint64(st->sync_errors));
	json_object_object_add(o, "events", json_object_new_uint64(st->events));
	json_object_object_add(o, "publishes", json_object_new_uint64(st->publishes));
	json_object_object_add(o, "translate_cpu_us", json_object_new_uint64(st->translate_cpu_us));
	json_object_object_add(o, "last_translate_cpu_us",
			       json_object_new_uint64(st->last_translate_cpu_us));
	json_object_object_add(o, "last_sync", json_object_new_int64(st->last_sync));
	json_object_object_add(o, "last_change", json_object_new_int64(st->last_change));
	json_object_object_add(o, "services", json_object_new_int64(st->services));
	json_object_object_add(o, "endpointslices", json_object_new_int64(st->endpointslices));
	json_object_object_add(o, "kube_services", json_object_new_int64(st->kube_services));
	json_object_object_add(o, "last_error", json_object_new_string(st->last_error));
	return o;
}

void k8s__close(struct k8s *k)
{
	if (!k)
		return;
	if (k->thread_started) {
		k->stop = 1;
		curl_multi_wakeup(k->multi);
		pthread_join(k->thread, NULL);
	}
	for (int i = 0; i < K8S__KINDS; i++)
		k8s_watch__free(&k->w[i], k->multi);
	if (k->multi)
		curl_multi_cleanup(k->multi);
	if (k->efd >= 0)
		close(k->efd);
	for (__u32 i = 0; i < k->nwarns; i++)
		free(k->warns[i]);
	for (__u32 i = 0; i < k->nprev_warns; i++)
		free(k->prev_warns[i]);
	free(k->warns);
	free(k->prev_warns);
	desired__free(&k->pending);
	desired__free(&k->last);
	k8s_hc_set__free(&k->pending_hc);
	k8s_hc_set__free(&k->last_hc);
	free(k->node_addrs);
	free(k->new_addrs);
	k8s_conn__free(&k->conn);
	free(k->node_name);
	free(k->proxy_name);
	pthread_mutex_destroy(&k->lock);
	free(k);
}
