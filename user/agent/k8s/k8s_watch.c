// SPDX-License-Identifier: MIT
/*
 * k8s_watch.c - one kind's request cycle: list (paged) then watch, with
 * the events applied to the kind's objects as they stream in.
 *
 * Contract (states in k8s_sync.h):
 *   IDLE --(next_at_ms)--> LIST (pages: limit/continue) --(last page)--> WATCH
 *   WATCH ends: 410 (HTTP status or ERROR event) -> LIST at once;
 *               clean end (server timeoutSeconds) -> WATCH again from the
 *               last resourceVersion;
 *               error, disconnect, malformed JSON -> IDLE for the backoff,
 *               then WATCH from the last resourceVersion (no relist).
 * A list replaces the kind's objects only when its last page is in; an
 * expired continue token (410) starts the list over. The backoff doubles
 * from backoff_min_ms to backoff_max_ms (+-25% jitter) and resets when a
 * list completes or a watch delivers anything. The bearer token is read
 * again for every request (rotation).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "k8s_sync.h"

/* --- scheduling --- */

/* The watch is idle until next_at_ms; k8s.c waits for it. */
static void watch__schedule(struct k8s_watch *w, unsigned int delay_ms)
{
	w->state = W_IDLE;
	w->next_at_ms = k8s__now_ms() + delay_ms;
}

/* After a failure: wait the current backoff (jittered), then double it. */
static void watch__backoff(struct k8s_watch *w)
{
	struct k8s *k = w->k;
	unsigned int d = w->backoff_ms;
	unsigned int jitter = d / 4;

	if (jitter)
		d = d - jitter + (unsigned int)rand_r(&k->seed) % (2 * jitter + 1);
	watch__schedule(w, d);
	w->backoff_ms = w->backoff_ms * 2 > k->opts.backoff_max_ms ? k->opts.backoff_max_ms :
								     w->backoff_ms * 2;
}

static void watch__backoff_reset(struct k8s_watch *w)
{
	w->backoff_ms = w->k->opts.backoff_min_ms;
}

/* --- requests --- */

static size_t watch__on_data(char *ptr, size_t size, size_t nmemb, void *ud);
static size_t watch__on_header(char *ptr, size_t size, size_t nmemb, void *ud);

static int watch__body_add(struct k8s_watch *w, const char *p, size_t len, size_t max)
{
	if (w->body_len + len > max)
		return -E2BIG;
	if (w->body_len + len + 1 > w->body_cap) {
		size_t cap = w->body_cap ? w->body_cap : 65536;
		char *n;

		while (cap < w->body_len + len + 1)
			cap *= 2;
		n = realloc(w->body, cap);
		if (!n)
			return -ENOMEM;
		w->body = n;
		w->body_cap = cap;
	}
	memcpy(w->body + w->body_len, p, len);
	w->body_len += len;
	w->body[w->body_len] = '\0';
	return 0;
}

/* A big list leaves a big buffer behind: give it back between lists. */
static void watch__body_trim(struct k8s_watch *w)
{
	if (w->body_cap <= (1u << 20))
		return;
	free(w->body);
	w->body = NULL;
	w->body_cap = w->body_len = 0;
}

static void watch__set_tls(struct k8s *k, CURL *e)
{
	const struct k8s_conn *c = &k->conn;

	if (c->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	if (c->ca_pem) {
		struct curl_blob b = { c->ca_pem, c->ca_len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	}
	if (c->cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (c->cert_pem) {
		struct curl_blob b = { c->cert_pem, c->cert_len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (c->key_file)
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
	if (c->key_pem) {
		struct curl_blob b = { c->key_pem, c->key_len, CURL_BLOB_NOCOPY };

		curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	}
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->insecure ? 0L : 2L);
}

static int watch__url(struct k8s_watch *w, char *url, size_t len, unsigned int *timeout_s)
{
	struct k8s *k = w->k;
	int n;

	if (w->state == W_LIST) {
		char *esc = NULL;

		if (w->cont) {
			esc = curl_easy_escape(w->easy, w->cont, 0);
			if (!esc)
				return -ENOMEM;
		}
		n = snprintf(url, len, "%s%s?limit=%u%s%s", k->conn.server, w->path,
			     k->opts.page_size, esc ? "&continue=" : "", esc ? esc : "");
		curl_free(esc);
	} else {
		char *esc = curl_easy_escape(w->easy, w->rv, 0);

		if (!esc)
			return -ENOMEM;
		/* a server-side timeout like client-go's (5-10 min, spread out) so
		 * watches end cleanly and a dead proxy in between is noticed */
		*timeout_s = k->opts.watch_timeout_s ? k->opts.watch_timeout_s :
						       300 + (unsigned int)rand_r(&k->seed) % 300;
		n = snprintf(
			url, len,
			"%s%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%u",
			k->conn.server, w->path, esc, *timeout_s);
		curl_free(esc);
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void k8s_watch__start(struct k8s_watch *w)
{
	struct k8s *k = w->k;
	char token[K8S_TOKEN_MAX], auth[K8S_TOKEN_MAX + 32], url[4096];
	unsigned int timeout_s = 0;
	int err;

	w->state = (w->need_list || !w->rv) ? W_LIST : W_WATCH;
	err = k8s_conn__token(&k->conn, token, sizeof(token));
	if (err) {
		k8s__sync_error(k, "%s: %s", w->label, sluice__errmsg());
		watch__backoff(w);
		return;
	}
	curl_easy_reset(w->easy);
	err = watch__url(w, url, sizeof(url), &timeout_s);
	if (err) {
		k8s__sync_error(k, "%s: cannot build the request URL (%s)", w->label,
				strerror(-err));
		watch__backoff(w);
		return;
	}
	if (w->state == W_LIST && !w->cont && !w->staging) {
		w->staging = k8s_objs__new(w->kind);
		if (!w->staging) {
			k8s__sync_error(k, "%s: out of memory", w->label);
			watch__backoff(w);
			return;
		}
	}
	curl_slist_free_all(w->hdrs);
	w->hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		w->hdrs = curl_slist_append(w->hdrs, auth);
	}
	w->status = 0;
	w->body_len = 0;
	w->got_data = false;
	w->abort = ABORT_NONE;
	w->errbuf[0] = '\0';
	k8s_stream__reset(&w->stream);
	w->started_ms = k8s__now_ms();

	curl_easy_setopt(w->easy, CURLOPT_URL, url);
	curl_easy_setopt(w->easy, CURLOPT_PRIVATE, w);
	curl_easy_setopt(w->easy, CURLOPT_HTTPHEADER, w->hdrs);
	curl_easy_setopt(w->easy, CURLOPT_USERAGENT, "sluice-meshd/" SLUICE_VERSION);
	curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, watch__on_data);
	curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->easy, CURLOPT_HEADERFUNCTION, watch__on_header);
	curl_easy_setopt(w->easy, CURLOPT_HEADERDATA, w);
	curl_easy_setopt(w->easy, CURLOPT_ERRORBUFFER, w->errbuf);
	curl_easy_setopt(w->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(w->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(w->easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(w->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)K8S_CONNECT_TIMEOUT_MS);
	/* keepalive finds a peer that vanished without a FIN (node partition) */
	curl_easy_setopt(w->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(w->easy, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(w->easy, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(w->easy, CURLOPT_TIMEOUT_MS,
			 w->state == W_LIST ? (long)K8S_LIST_TIMEOUT_MS :
					      (long)(timeout_s + 30) * 1000);
	watch__set_tls(k, w->easy);
	k8s__log(k, K8S_LOG_DEBUG, "%s: GET %s", w->label, url + strlen(k->conn.server));
	if (curl_multi_add_handle(k->multi, w->easy) != CURLM_OK) {
		k8s__sync_error(k, "%s: cannot start the request", w->label);
		watch__backoff(w);
	}
}

/* --- watch events --- */

static int watch__on_event(struct json_object *ev, void *ctx)
{
	struct k8s_watch *w = ctx;
	struct k8s *k = w->k;
	struct json_object *obj;
	enum k8s_ev_type type;
	const char *rv;
	int code, err;

	err = k8s_event__decode(ev, &type, &obj, &rv, &code);
	if (err) {
		k8s__sync_error(k, "%s watch: %s", w->label, sluice__errmsg());
		return 0; /* the stream itself is fine: skip this event */
	}
	switch (type) {
	case K8S_EV_ADDED:
	case K8S_EV_MODIFIED:
	case K8S_EV_DELETED:
		err = type == K8S_EV_DELETED ? k8s_objs__del_json(w->objs, obj) :
					       k8s_objs__put_json(w->objs, obj);
		if (err) {
			/* rv stays: later events move it on, a relist fixes the object */
			k8s__sync_error(k, "%s watch: %s", w->label, sluice__errmsg());
			return 0;
		}
		k8s__mark_dirty(k);
		k8s__count(k, &k->st.events);
		break;
	case K8S_EV_BOOKMARK:
		break;
	case K8S_EV_ERROR:
		k8s_status__text(obj, w->abort_text, sizeof(w->abort_text), &code);
		w->abort = code == 410 ? ABORT_GONE : ABORT_ERROR;
		return -ECANCELED;
	}
	if (k8s__set_str(&w->rv, rv))
		return -ENOMEM;
	if (!w->got_data)
		watch__backoff_reset(w);
	w->got_data = true;
	k8s__touch(k, true);
	return 0;
}

/* The response status is known: a watch that got 200 is connected (a quiet
 * watch may send no byte for minutes, so this is decided on the headers). */
static void watch__got_status(struct k8s_watch *w)
{
	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &w->status);
	if (w->state == W_WATCH && w->status == 200) {
		pthread_mutex_lock(&w->k->lock);
		w->k->st.connected[w->kind] = true;
		pthread_mutex_unlock(&w->k->lock);
	}
}

static size_t watch__on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct k8s_watch *w = ud;
	size_t len = size * nmemb;

	/* the blank line ends the headers (of the final response) */
	if (!w->status && (len == 2 && ptr[0] == '\r' && ptr[1] == '\n'))
		watch__got_status(w);
	return len;
}

static size_t watch__on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct k8s_watch *w = ud;
	size_t len = size * nmemb;
	int err;

	if (!w->status)
		watch__got_status(w);
	if (w->state == W_LIST || w->status != 200) {
		size_t max = w->status == 200 ? K8S_LIST_BODY_MAX : K8S_ERR_BODY_MAX;

		err = watch__body_add(w, ptr, len, max);
		if (err && w->status != 200)
			return len; /* an error body is only for the message: keep its start */
		if (err) {
			w->abort = ABORT_TOO_BIG;
			return 0;
		}
		return len;
	}
	err = k8s_stream__feed(&w->stream, ptr, len, watch__on_event, w);
	if (err == -ECANCELED)
		return 0;
	if (err) {
		w->abort = ABORT_MALFORMED;
		snprintf(w->abort_text, sizeof(w->abort_text), "%s", sluice__errmsg());
		return 0; /* stops the transfer */
	}
	return len;
}

/* --- completions --- */

/* "code 403 Forbidden: ..." from a Status body, else the start of the body. */
static void watch__http_error(struct k8s_watch *w, const char *what)
{
	struct json_object *st = w->body_len ? json_tokener_parse(w->body) : NULL;
	char text[300];
	int code;

	if (st && json_object_is_type(st, json_type_object)) {
		k8s_status__text(st, text, sizeof(text), &code);
	} else {
		snprintf(text, sizeof(text), "%.200s", w->body_len ? w->body : "(empty body)");
		for (char *p = text; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}
	json_object_put(st);
	k8s__sync_error(w->k, "%s %s: HTTP %ld: %s", what, w->label, w->status, text);
}

static void watch__curl_error(struct k8s_watch *w, const char *what, CURLcode res)
{
	k8s__sync_error(w->k, "%s %s: %s%s%s", what, w->label, curl_easy_strerror(res),
			w->errbuf[0] ? ": " : "", w->errbuf);
}

/* Staging -> objects, then watch from the list's resourceVersion. */
static void watch__list_finish(struct k8s_watch *w, const char *rv)
{
	struct k8s *k = w->k;

	if (k8s__set_str(&w->rv, rv)) {
		k8s__sync_error(k, "%s: out of memory", w->label);
		watch__backoff(w);
		return;
	}
	k8s_objs__free(w->objs);
	w->objs = w->staging;
	w->staging = NULL;
	if (w->listed)
		k8s__count(k, &k->st.relists);
	w->listed = true;
	w->need_list = false;
	k8s__mark_dirty(k);
	pthread_mutex_lock(&k->lock);
	if (w->kind == K8S_SERVICES)
		k->st.services = k8s_objs__count(w->objs);
	else
		k->st.endpointslices = k8s_objs__count(w->objs);
	pthread_mutex_unlock(&k->lock);
	k8s__touch(k, true);
	watch__backoff_reset(w);
	k8s__log(k, K8S_LOG_INFO, "%s listed: %u objects at resourceVersion %s", w->label,
		 k8s_objs__count(w->objs), rv);
	watch__schedule(w, 0);
}

static void watch__list_restart(struct k8s_watch *w)
{
	k8s_objs__free(w->staging);
	w->staging = NULL;
	k8s__set_str(&w->cont, NULL);
}

static void watch__list_done(struct k8s_watch *w, CURLcode res)
{
	struct k8s *k = w->k;
	struct json_object *root = NULL, *meta, *items, *kind, *v;
	const char *rv = NULL, *cont = NULL;
	size_t n;

	if (w->abort == ABORT_TOO_BIG) {
		k8s__sync_error(k, "list %s: response larger than %u bytes", w->label,
				K8S_LIST_BODY_MAX);
		goto fail;
	}
	if (res != CURLE_OK) {
		watch__curl_error(w, "list", res);
		goto fail;
	}
	if (w->status == 410 && w->cont) {
		/* the continue token outlived the server's history: start over */
		k8s__log(k, K8S_LOG_INFO, "list %s: continue token expired (410); listing again",
			 w->label);
		watch__list_restart(w);
		watch__schedule(w, 0);
		return;
	}
	if (w->status != 200) {
		watch__http_error(w, "list");
		goto fail;
	}
	root = w->body_len ? json_tokener_parse(w->body) : NULL;
	if (!root || !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "kind", &kind) ||
	    !json_object_is_type(kind, json_type_string) ||
	    strcmp(json_object_get_string(kind), w->list_kind)) {
		k8s__sync_error(k, "list %s: the response is not a %s: %.120s", w->label,
				w->list_kind, w->body_len ? w->body : "(empty)");
		goto fail;
	}
	if (json_object_object_get_ex(root, "metadata", &meta)) {
		if (json_object_object_get_ex(meta, "resourceVersion", &v) &&
		    json_object_is_type(v, json_type_string))
			rv = json_object_get_string(v);
		if (json_object_object_get_ex(meta, "continue", &v) &&
		    json_object_is_type(v, json_type_string) && *json_object_get_string(v))
			cont = json_object_get_string(v);
	}
	if (!rv || !*rv) {
		k8s__sync_error(k, "list %s: no metadata.resourceVersion", w->label);
		goto fail;
	}
	if (json_object_object_get_ex(root, "items", &items) &&
	    !json_object_is_type(items, json_type_null) &&
	    !json_object_is_type(items, json_type_array)) {
		k8s__sync_error(k, "list %s: items is not an array", w->label);
		goto fail;
	}
	n = items && json_object_is_type(items, json_type_array) ? json_object_array_length(items) :
								   0;
	for (size_t i = 0; i < n; i++) {
		/* one bad object must not stop the node from serving the rest */
		if (k8s_objs__put_json(w->staging, json_object_array_get_idx(items, i)))
			k8s__sync_error(k, "list %s: %s", w->label, sluice__errmsg());
	}
	if (cont) {
		if (k8s__set_str(&w->cont, cont)) {
			k8s__sync_error(k, "%s: out of memory", w->label);
			goto fail;
		}
		watch__schedule(w, 0);
	} else {
		k8s__set_str(&w->cont, NULL);
		watch__list_finish(w, rv);
	}
	json_object_put(root);
	watch__body_trim(w);
	return;
fail:
	json_object_put(root);
	watch__body_trim(w);
	watch__list_restart(w);
	watch__backoff(w);
}

static void watch__watch_done(struct k8s_watch *w, CURLcode res)
{
	struct k8s *k = w->k;
	bool quick = k8s__now_ms() - w->started_ms < 1000;

	pthread_mutex_lock(&k->lock);
	k->st.connected[w->kind] = false;
	k->st.watch_restarts++;
	pthread_mutex_unlock(&k->lock);
	if (w->abort == ABORT_GONE || w->status == 410) {
		k8s__log(k, K8S_LOG_INFO,
			 "watch %s: resourceVersion %s is gone (410); listing again", w->label,
			 w->rv);
		w->need_list = true;
		/* at once, unless the version was refused at once (right after a
		 * list, or after an outage): never a tight list/410 loop */
		watch__schedule(w, quick && !w->got_data ? k->opts.backoff_min_ms : 0);
		return;
	}
	if (w->abort == ABORT_MALFORMED || w->abort == ABORT_ERROR) {
		k8s__sync_error(k, "watch %s: %s; resuming from resourceVersion %s", w->label,
				w->abort_text, w->rv);
		watch__backoff(w);
		return;
	}
	if (w->status && w->status != 200) {
		watch__http_error(w, "watch");
		watch__backoff(w);
		return;
	}
	if (res != CURLE_OK) {
		if (!w->status) {
			/* nothing came back at all: the server is unreachable */
			watch__curl_error(w, "watch", res);
		} else {
			k8s__log(k, K8S_LOG_WARN,
				 "watch %s interrupted: %s; resuming from resourceVersion %s",
				 w->label, curl_easy_strerror(res), w->rv);
		}
		watch__backoff(w);
		return;
	}
	/* the server ended the watch (timeoutSeconds): go on where it stopped,
	 * unless it keeps ending at once (then back off) */
	k8s__log(k, K8S_LOG_DEBUG, "watch %s ended; resuming from resourceVersion %s", w->label,
		 w->rv);
	if (quick && !w->got_data)
		watch__backoff(w);
	else
		watch__schedule(w, 0);
}

/* A request finished: which kind of request decides what comes next. */
void k8s_watch__done(struct k8s_watch *w, CURLcode res)
{
	if (!w->status)
		curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &w->status);
	if (w->state == W_LIST)
		watch__list_done(w, res);
	else
		watch__watch_done(w, res);
}

static const struct {
	const char *path, *list_kind, *label;
} k8s_kinds[K8S__KINDS] = {
	[K8S_SERVICES] = { "/api/v1/services", "ServiceList", "Services" },
	[K8S_SLICES] = { "/apis/discovery.k8s.io/v1/endpointslices", "EndpointSliceList",
			 "EndpointSlices" },
};

int k8s_watch__init(struct k8s_watch *w, struct k8s *k, enum k8s_kind kind)
{
	w->k = k;
	w->kind = kind;
	w->path = k8s_kinds[kind].path;
	w->list_kind = k8s_kinds[kind].list_kind;
	w->label = k8s_kinds[kind].label;
	w->need_list = true;
	w->backoff_ms = k->opts.backoff_min_ms;
	w->objs = k8s_objs__new(kind);
	w->easy = curl_easy_init();
	if (k8s_stream__init(&w->stream, K8S_EVENT_MAX) || !w->objs || !w->easy) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	watch__schedule(w, 0);
	return 0;
}

void k8s_watch__free(struct k8s_watch *w, CURLM *multi)
{
	if (w->easy) {
		if (multi)
			curl_multi_remove_handle(multi, w->easy);
		curl_easy_cleanup(w->easy);
	}
	curl_slist_free_all(w->hdrs);
	k8s_objs__free(w->objs);
	k8s_objs__free(w->staging);
	k8s_stream__free(&w->stream);
	free(w->rv);
	free(w->cont);
	free(w->body);
}
