// SPDX-License-Identifier: MIT
/*
 * desired.c - the desired-state model (see desired.h): its life cycle,
 * text (YAML or JSON) in, JSON out, and the "VIP:PORT/PROTO" references
 * by which people and the API name a service.
 *
 * Contract: every way in goes through desired__from_json()
 * (desired_parse.c), which validates everything; an error read from a
 * file is prefixed with the file's name. On error *d is left empty.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desired_internal.h"
#include "internal.h"
#include "jsonscan.h"
#include "yamljson.h"

/* A desired-state file is text a person wrote; 64 MiB is far beyond any. */
#define DESIRED_FILE_MAX (64u << 20)

void desired__init(struct desired *d)
{
	memset(d, 0, sizeof(*d));
}

void desired__free(struct desired *d)
{
	for (__u32 i = 0; i < d->nservices; i++) {
		free(d->services[i].backends);
		free(d->services[i].src_ranges);
		free(d->services[i].rules);
	}
	free(d->services);
	free(d->node_deny);
	desired__init(d);
}

int desired__copy(struct desired *dst, const struct desired *src)
{
	struct desired tmp;

	desired__init(&tmp);
	if (src->nservices) {
		tmp.services = calloc(src->nservices, sizeof(*tmp.services));
		if (!tmp.services)
			goto nomem;
	}
	for (__u32 i = 0; i < src->nservices; i++) {
		const struct desired_service *s = &src->services[i];
		struct desired_service *t = &tmp.services[tmp.nservices];

		*t = *s;
		t->backends = NULL;
		t->src_ranges = NULL;
		t->rules = NULL;
		if (s->nbackends) {
			t->backends = malloc(s->nbackends * sizeof(*t->backends));
			if (!t->backends)
				goto nomem;
			memcpy(t->backends, s->backends, s->nbackends * sizeof(*t->backends));
		}
		tmp.nservices++; /* from here desired__free() owns its arrays */
		if (desired__src_ranges_dup(t, s) || desired__policy_dup(t, s))
			goto nomem;
	}
	if (desired__node_deny_dup(&tmp, src))
		goto nomem;
	*dst = tmp;
	return 0;
nomem:
	desired__free(&tmp);
	sluice__set_err("out of memory copying the desired state");
	return -ENOMEM;
}

/* Parse text; name (a file path or NULL) prefixes every error. */
static int desired__parse_text(struct desired *d, const char *text, size_t len, const char *name)
{
	char msg[SLUICE_ERRMSG_LEN];
	struct json_object *root;
	int err;

	desired__init(d);
	/* JSON both readers take alike: one service's tree at a time (a
	 * 30k-service file as one tree is ~360 MB); errors are the same */
	if (!jscan__plain(text, len)) {
		err = desired__from_text(d, text, len, name);
		if (err && err != -EAGAIN && name) {
			snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
			sluice__set_err("%s: %s", name, msg);
		}
		if (err != -EAGAIN)
			return err;
	}
	err = yaml__load(text, len, name, &root);
	if (err)
		return err;
	if (!root) {
		sluice__set_err("%s: empty document (write 'services: []' for no services)",
				name ? name : "<input>");
		return -EINVAL;
	}
	err = desired__from_json(d, root);
	json_object_put(root);
	if (err && name) {
		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
		sluice__set_err("%s: %s", name, msg);
	}
	return err;
}

int desired__from_string(struct desired *d, const char *text, size_t len)
{
	sluice__clear_err();
	return desired__parse_text(d, text, len, NULL);
}

int desired__from_file(struct desired *d, const char *path)
{
	size_t len;
	char *text;
	int err;

	sluice__clear_err();
	desired__init(d);
	err = yaml__read_file(path, DESIRED_FILE_MAX, &text, &len);
	if (err)
		return err;
	err = desired__parse_text(d, text, len, path);
	free(text);
	return err;
}

static void desired__add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (json_object_object_add(obj, key, val))
		json_object_put(val);
}

struct json_object *desired__service_to_json(const struct desired_service *svc)
{
	char buf[SLUICE_ADDR_STRLEN], pbuf[8];
	struct json_object *obj, *list, *be;

	obj = json_object_new_object();
	list = json_object_new_array();
	if (!obj || !list) {
		json_object_put(obj);
		json_object_put(list);
		return NULL;
	}
	if (svc->name[0])
		desired__add(obj, "name", json_object_new_string(svc->name));
	desired__add(obj, "vip",
		     json_object_new_string(sluice_addr__str(&svc->vip, buf, sizeof(buf))));
	desired__add(obj, "port", json_object_new_int(svc->port));
	desired__add(obj, "protocol",
		     json_object_new_string(sluice_proto__str(svc->proto, pbuf, sizeof(pbuf))));
	desired__add(obj, "source",
		     json_object_new_string(svc->source[0] ? svc->source : "manual"));
	for (__u32 j = 0; j < svc->nbackends; j++) {
		const struct desired_backend *b = &svc->backends[j];

		be = json_object_new_object();
		if (!be)
			break;
		desired__add(be, "address",
			     json_object_new_string(sluice_addr__str(&b->addr, buf, sizeof(buf))));
		desired__add(be, "port", json_object_new_int(b->port));
		desired__add(be, "weight", json_object_new_int(b->weight));
		if (b->drained_weight)
			desired__add(be, "drainedWeight", json_object_new_int(b->drained_weight));
		if (json_object_array_add(list, be))
			json_object_put(be);
	}
	desired__add(obj, "backends", list);
	be = desired__outlier_to_json(&svc->outlier);
	if (be)
		desired__add(obj, "outlierDetection", be);
	be = desired__affinity_to_json(svc->affinity_timeout_s);
	if (be)
		desired__add(obj, "sessionAffinity", be);
	if (svc->health.type)
		desired__add(obj, "healthCheck", desired__health_to_json(&svc->health));
	be = desired__src_ranges_to_json(svc);
	if (be)
		desired__add(obj, "sourceRanges", be);
	if (svc->snat)
		desired__add(obj, "snat",
			     svc->snat_node ? json_object_new_string("node") :
					      json_object_new_boolean(1));
	if (svc->drop_empty)
		desired__add(obj, "dropWhenEmpty", json_object_new_boolean(1));
	desired__policy_to_json(svc, obj);
	return obj;
}

struct json_object *desired__to_json(const struct desired *d)
{
	struct json_object *root, *list;

	root = json_object_new_object();
	list = json_object_new_array();
	if (!root || !list) {
		json_object_put(root);
		json_object_put(list);
		return NULL;
	}
	for (__u32 i = 0; i < d->nservices; i++) {
		struct json_object *svc = desired__service_to_json(&d->services[i]);

		if (!svc || json_object_array_add(list, svc)) {
			json_object_put(svc);
			json_object_put(list);
			json_object_put(root);
			return NULL;
		}
	}
	desired__add(root, "services", list);
	list = desired__node_deny_to_json(d);
	if (list)
		desired__add(root, "nodeDenyFrom", list);
	return root;
}

int desired__parse_svc_ref(const char *text, struct sluice_addr *vip, __u16 *port, __u8 *proto)
{
	char buf[SLUICE_ADDRPORT_STRLEN + 16], msg[SLUICE_ERRMSG_LEN];
	struct sluice_addr a;
	const char *slash;
	__u16 p;
	__u8 pr;

	sluice__clear_err();
	if (!text || !*text) {
		sluice__set_err(
			"service is empty (expected VIP:PORT/PROTO, e.g. 10.96.0.10:80/tcp)");
		return -EINVAL;
	}
	slash = strrchr(text, '/');
	if (!slash || (size_t)(slash - text) >= sizeof(buf)) {
		sluice__set_err("invalid service \"%.80s\": expected VIP:PORT/PROTO, e.g. "
				"10.96.0.10:80/tcp or [fd00::10]:53/udp",
				text);
		return -EINVAL;
	}
	memcpy(buf, text, (size_t)(slash - text));
	buf[slash - text] = '\0';
	if (sluice_addr__parse_port(&a, &p, buf) || sluice_proto__parse(&pr, slash + 1)) {
		snprintf(msg, sizeof(msg), "%s", sluice__errmsg());
		sluice__set_err("invalid service \"%.80s\": %s", text, msg);
		return -EINVAL;
	}
	*vip = a;
	*port = p;
	*proto = pr;
	return 0;
}

char *desired__svc_ref(const struct desired_service *svc, char *buf, size_t len)
{
	return sluice_svc__str(&svc->vip, svc->port, svc->proto, buf, len);
}

struct desired_service *desired__find(const struct desired *d, const struct sluice_addr *vip,
				      __u16 port, __u8 proto)
{
	for (__u32 i = 0; i < d->nservices; i++) {
		struct desired_service *s = &d->services[i];

		if (s->port == port && s->proto == proto && sluice_addr__eq(&s->vip, vip))
			return s;
	}
	return NULL;
}

static __u32 desired__key_hash(const struct sluice_addr *vip, __u16 port, __u8 proto)
{
	/* sluice_addr__eq() reads one word of an IPv4 address */
	__u32 n = vip->family == SLUICE_AF_INET ? 1 : 4;
	__u64 h = 0x9e3779b97f4a7c15ull ^ ((__u64)vip->family << 24 | (__u64)proto << 16 | port);

	for (__u32 i = 0; i < n; i++) {
		h ^= vip->addr[i];
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 33;
	}
	h *= 0xc4ceb9fe1a85ec53ull;
	return (__u32)(h ^ (h >> 29));
}

void desired__index_init(struct desired_index *ix, const struct desired *d)
{
	__u32 cap = 16;

	memset(ix, 0, sizeof(*ix));
	ix->d = d;
	while (cap < 2 * (__u64)d->nservices && cap < (1u << 31))
		cap <<= 1;
	ix->slot = calloc(cap, sizeof(*ix->slot));
	if (!ix->slot)
		return;
	ix->mask = cap - 1;
	for (__u32 i = 0; i < d->nservices; i++) {
		const struct desired_service *s = &d->services[i];
		__u32 h = desired__key_hash(&s->vip, s->port, s->proto) & ix->mask;

		while (ix->slot[h])
			h = (h + 1) & ix->mask;
		ix->slot[h] = i + 1;
	}
}

struct desired_service *desired__index_find(const struct desired_index *ix,
					    const struct sluice_addr *vip, __u16 port, __u8 proto)
{
	__u32 h;

	if (!ix->slot)
		return desired__find(ix->d, vip, port, proto);
	for (h = desired__key_hash(vip, port, proto) & ix->mask; ix->slot[h];
	     h = (h + 1) & ix->mask) {
		struct desired_service *s = &ix->d->services[ix->slot[h] - 1];

		/* the first of duplicates, as desired__find() */
		if (s->port == port && s->proto == proto && sluice_addr__eq(&s->vip, vip))
			return s;
	}
	return NULL;
}

/* ix's entry of the key in d, each slot checked against d (ix may be
 * older than d: a slot past its end, or holding another key, is passed). */
static struct desired_service *desired__index_checked(const struct desired_index *ix,
						      const struct desired *d,
						      const struct sluice_addr *vip, __u16 port,
						      __u8 proto)
{
	for (__u32 h = desired__key_hash(vip, port, proto) & ix->mask; ix->slot[h];
	     h = (h + 1) & ix->mask) {
		__u32 i = ix->slot[h] - 1;
		struct desired_service *s = i < d->nservices ? &d->services[i] : NULL;

		if (s && s->port == port && s->proto == proto && sluice_addr__eq(&s->vip, vip))
			return s;
	}
	return NULL;
}

struct desired_service *desired__find_cached(struct desired_index *ix, const struct desired *d,
					     const struct sluice_addr *vip, __u16 port, __u8 proto)
{
	struct desired_service *s;

	if (ix->d == d && ix->slot) {
		s = desired__index_checked(ix, d, vip, port, proto);
		if (s)
			return s;
		/* a key d lacks (a request for no service) costs the scan it
		 * always did, not a rebuild; one d has, the rebuild it needs */
		s = desired__find(d, vip, port, proto);
		if (!s)
			return NULL;
	}
	desired__index_free(ix);
	desired__index_init(ix, d);
	if (!ix->slot)
		return desired__find(d, vip, port, proto);
	return desired__index_checked(ix, d, vip, port, proto);
}

void desired__index_free(struct desired_index *ix)
{
	free(ix->slot);
	memset(ix, 0, sizeof(*ix));
}
