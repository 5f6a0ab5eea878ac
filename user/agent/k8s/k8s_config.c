// SPDX-License-Identifier: MIT
/*
 * k8s_config.c - where the API server is and how to authenticate: the
 * in-cluster service account, a kubeconfig file, or a plain server URL.
 *
 * Contract: everything is read and checked once at k8s__open() so that a
 * typo fails the agent's start with a message naming the file and field,
 * except the bearer token file, which is re-read for every request:
 * projected service account tokens are rotated by the kubelet (about
 * hourly) and an agent that cached the first one would fail after it
 * expires. Kubeconfig: the current-context's cluster (server,
 * certificate-authority[-data], insecure-skip-tls-verify) and user (token,
 * tokenFile, client-certificate[-data] + client-key[-data]); relative
 * paths are relative to the kubeconfig's directory; exec and auth-provider
 * plugins and basic auth are refused with a clear error.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "k8s_internal.h"
#include "yamljson.h"

#define KUBECONFIG_MAX (4u << 20)
#define TOKEN_MAX 16384

void k8s_conn__free(struct k8s_conn *c)
{
	free(c->server);
	free(c->token);
	free(c->token_file);
	free(c->ca_file);
	free(c->ca_pem);
	free(c->cert_file);
	free(c->key_file);
	free(c->cert_pem);
	free(c->key_pem);
	free(c->origin);
	memset(c, 0, sizeof(*c));
}

static int conn__dup(char **dst, const char *src)
{
	*dst = strdup(src);
	if (!*dst) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* A server URL without the trailing '/', checked for a scheme we speak. */
static int conn__set_server(struct k8s_conn *c, const char *url, const char *where)
{
	size_t len = strlen(url);

	if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7)) {
		sluice__set_err("%s: server \"%s\" is not an http:// or https:// URL", where, url);
		return -EINVAL;
	}
	while (len && url[len - 1] == '/')
		len--;
	c->server = strndup(url, len);
	if (!c->server) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int conn__check_readable(const char *path, const char *what)
{
	FILE *f = fopen(path, "r");

	if (!f) {
		int err = -errno;

		sluice__set_err("cannot read the %s %s: %s", what, path, strerror(errno));
		return err;
	}
	fclose(f);
	return 0;
}

int k8s_conn__token(const struct k8s_conn *c, char *buf, size_t len)
{
	char *text = NULL;
	size_t n = 0;
	int err;

	buf[0] = '\0';
	if (!c->token_file) {
		if (c->token)
			snprintf(buf, len, "%s", c->token);
		return 0;
	}
	err = yaml__read_file(c->token_file, TOKEN_MAX, &text, &n);
	if (err)
		return err;
	/* the file holds the token and maybe a newline */
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		text[--n] = '\0';
	if (!n || n >= len || strpbrk(text, "\r\n")) {
		sluice__set_err("token file %s: %s", c->token_file,
				!n       ? "empty" :
				n >= len ? "token too long" :
					   "more than one line");
		free(text);
		return -EINVAL;
	}
	memcpy(buf, text, n + 1);
	free(text);
	return 0;
}

int k8s_conn__in_cluster(struct k8s_conn *c, const char *host, const char *port, const char *sa_dir)
{
	char url[512], path[PATH_MAX];
	int err;

	memset(c, 0, sizeof(*c));
	if (!host || !*host || !port || !*port) {
		sluice__set_err("not running in a cluster: KUBERNETES_SERVICE_HOST/PORT are unset "
				"(give a kubeconfig or a server URL)");
		return -ENOENT;
	}
	/* an IPv6 service host needs brackets in a URL */
	snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		 port);
	err = conn__set_server(c, url, "in-cluster");
	snprintf(path, sizeof(path), "%s/token", sa_dir);
	if (!err)
		err = conn__check_readable(path, "service account token");
	if (!err)
		err = conn__dup(&c->token_file, path);
	snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
	if (!err)
		err = conn__check_readable(path, "service account CA");
	if (!err)
		err = conn__dup(&c->ca_file, path);
	if (!err)
		err = conn__dup(&c->origin, "in-cluster service account");
	if (err)
		k8s_conn__free(c);
	return err;
}

/* --- kubeconfig --- */

/* A scalar as text: the YAML reader turns an all-digit token into an int. */
static const char *kc_str(struct json_object *o, const char *key)
{
	struct json_object *v = k8s_json__get(o, key);

	if (!v || json_object_is_type(v, json_type_object) ||
	    json_object_is_type(v, json_type_array))
		return NULL;
	return json_object_get_string(v);
}

/* The "name: X" entry of list `key`, returning its `inner` object. */
static struct json_object *kc_named(struct json_object *root, const char *key, const char *inner,
				    const char *name)
{
	struct json_object *list = k8s_json__get(root, key);
	size_t n;

	if (!list || !json_object_is_type(list, json_type_array))
		return NULL;
	n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(list, i);
		const char *ename = kc_str(e, "name");

		if (ename && !strcmp(ename, name))
			return k8s_json__get(e, inner);
	}
	return NULL;
}

/* A path from the kubeconfig, made absolute against its directory. */
static int kc_path(char **dst, const char *dir, const char *p)
{
	size_t len = strlen(dir) + strlen(p) + 2;

	if (p[0] == '/')
		return conn__dup(dst, p);
	*dst = malloc(len);
	if (!*dst) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	snprintf(*dst, len, "%s/%s", dir, p);
	return 0;
}

/* base64 "*-data" or a file path, whichever the kubeconfig has. */
static int kc_pem(struct json_object *o, const char *file_key, const char *data_key,
		  const char *dir, const char *where, char **file, char **pem, size_t *len)
{
	const char *data = kc_str(o, data_key);
	const char *path = kc_str(o, file_key);
	int err;

	if (data) {
		err = k8s__base64_decode(data, pem, len);
		if (err)
			sluice__set_err("%s: %s is not valid base64", where, data_key);
		return err;
	}
	if (!path)
		return 0;
	err = kc_path(file, dir, path);
	if (!err)
		err = conn__check_readable(*file, file_key);
	return err;
}

static int kc_user(struct k8s_conn *c, struct json_object *user, const char *dir, const char *where)
{
	static const char *const unsupported[] = { "exec", "auth-provider", "username",
						   "password" };
	const char *token = kc_str(user, "token");
	const char *token_file = kc_str(user, "tokenFile");
	int err = 0;

	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		if (k8s_json__get(user, unsupported[i])) {
			sluice__set_err("%s: user.%s is not supported (use a token, tokenFile or "
					"a client certificate, e.g. a service account's token)",
					where, unsupported[i]);
			return -ENOTSUP;
		}
	}
	if (token)
		err = conn__dup(&c->token, token);
	else if (token_file) {
		err = kc_path(&c->token_file, dir, token_file);
		if (!err)
			err = conn__check_readable(c->token_file, "tokenFile");
	}
	if (!err)
		err = kc_pem(user, "client-certificate", "client-certificate-data", dir, where,
			     &c->cert_file, &c->cert_pem, &c->cert_len);
	if (!err)
		err = kc_pem(user, "client-key", "client-key-data", dir, where, &c->key_file,
			     &c->key_pem, &c->key_len);
	if (!err && !(c->cert_file || c->cert_pem) != !(c->key_file || c->key_pem)) {
		sluice__set_err("%s: a client certificate needs both the certificate and the key",
				where);
		err = -EINVAL;
	}
	return err;
}

int k8s_conn__from_kubeconfig(struct k8s_conn *c, const char *path)
{
	struct json_object *root = NULL, *ctx, *cluster, *user;
	char dir[PATH_MAX], where[PATH_MAX + 64], *text = NULL, *slash;
	const char *cur, *cname, *uname, *server, *insecure;
	size_t len;
	int err;

	memset(c, 0, sizeof(*c));
	err = yaml__read_file(path, KUBECONFIG_MAX, &text, &len);
	if (!err)
		err = yaml__parse(text, len, path, &root);
	free(text);
	if (err)
		return err;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	err = -EINVAL;
	cur = kc_str(root, "current-context");
	if (!cur || !*cur) {
		sluice__set_err("kubeconfig %s: no current-context", path);
		goto out;
	}
	snprintf(where, sizeof(where), "kubeconfig %s (context %s)", path, cur);
	ctx = kc_named(root, "contexts", "context", cur);
	cname = kc_str(ctx, "cluster");
	uname = kc_str(ctx, "user");
	if (!ctx || !cname) {
		sluice__set_err("%s: the context or its cluster is not defined", where);
		goto out;
	}
	cluster = kc_named(root, "clusters", "cluster", cname);
	server = kc_str(cluster, "server");
	if (!cluster || !server) {
		sluice__set_err("%s: cluster \"%s\" has no server", where, cname);
		goto out;
	}
	err = conn__set_server(c, server, where);
	if (err)
		goto out;
	insecure = kc_str(cluster, "insecure-skip-tls-verify");
	c->insecure = insecure && !strcmp(insecure, "true");
	err = kc_pem(cluster, "certificate-authority", "certificate-authority-data", dir, where,
		     &c->ca_file, &c->ca_pem, &c->ca_len);
	if (err)
		goto out;
	if (uname) {
		user = kc_named(root, "users", "user", uname);
		if (!user) {
			sluice__set_err("%s: user \"%s\" is not defined", where, uname);
			err = -EINVAL;
			goto out;
		}
		err = kc_user(c, user, dir, where);
		if (err)
			goto out;
	}
	err = conn__dup(&c->origin, where);
out:
	json_object_put(root);
	if (err)
		k8s_conn__free(c);
	return err;
}

int k8s_conn__from_opts(struct k8s_conn *c, const struct k8s_opts *o)
{
	int err;

	sluice__clear_err();
	memset(c, 0, sizeof(*c));
	if (o->kubeconfig)
		return k8s_conn__from_kubeconfig(c, o->kubeconfig);
	if (!o->server)
		return k8s_conn__in_cluster(c, getenv("KUBERNETES_SERVICE_HOST"),
					    getenv("KUBERNETES_SERVICE_PORT"), K8S_SA_DIR);
	err = conn__set_server(c, o->server, "server");
	if (!err && o->token_file) {
		err = conn__check_readable(o->token_file, "token file");
		if (!err)
			err = conn__dup(&c->token_file, o->token_file);
	}
	if (!err && o->ca_file) {
		err = conn__check_readable(o->ca_file, "CA file");
		if (!err)
			err = conn__dup(&c->ca_file, o->ca_file);
	}
	if (!err)
		err = conn__dup(&c->origin, o->server);
	if (err)
		k8s_conn__free(c);
	return err;
}

static int b64_val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

int k8s__base64_decode(const char *text, char **out, size_t *len)
{
	size_t cap = strlen(text) / 4 * 3 + 4, n = 0;
	unsigned int acc = 0, bits = 0;
	bool pad = false;
	char *buf = malloc(cap + 1);

	if (!buf) {
		sluice__set_err("out of memory");
		return -ENOMEM;
	}
	for (const char *p = text; *p; p++) {
		int v;

		if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
			continue;
		if (*p == '=') {
			pad = true;
			continue;
		}
		v = b64_val(*p);
		if (v < 0 || pad)
			goto bad;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (acc >> bits) & 0xff;
		}
	}
	/* 6 or more leftover bits mean a truncated quantum */
	if (bits >= 6 || !n)
		goto bad;
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
bad:
	free(buf);
	sluice__set_err("invalid base64");
	return -EINVAL;
}
