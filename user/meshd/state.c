// SPDX-License-Identifier: MIT
/*
 * state.c - desired state: load, reconcile at start, commit (see state.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "desired.h"
#include "sluice.h"

#include "log.h"
#include "meshd.h"
#include "state.h"
#include "telem.h"

int state__load(const char *path, struct desired *d)
{
	int err;

	desired__init(d);
	err = desired__load(d, path);
	if (err)
		pr_err("%s", sluice__errmsg()); /* names the file */
	return err;
}

static bool state__backends_same(const struct desired_service *a, const struct desired_service *b)
{
	if (a->nbackends != b->nbackends)
		return false;
	for (__u32 i = 0; i < a->nbackends; i++) {
		bool found = false;

		for (__u32 j = 0; j < b->nbackends && !found; j++)
			found = a->backends[i].port == b->backends[j].port &&
				a->backends[i].weight == b->backends[j].weight &&
				sluice_addr__eq(&a->backends[i].addr, &b->backends[j].addr);
		if (!found)
			return false;
	}
	return true;
}

/* "10.0.1.2:8080@90 10.0.2.2:8080@10", cut short with "..." */
static const char *state__backends_str(const struct desired_service *svc, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	if (!svc->nbackends) {
		snprintf(buf, len, "none");
		return buf;
	}
	for (__u32 i = 0; i < svc->nbackends; i++) {
		char abuf[SLUICE_ADDRPORT_STRLEN];
		int w;

		w = snprintf(buf + off, len - off, "%s%s@%u", i ? " " : "",
			     sluice_addr__str_port(&svc->backends[i].addr, svc->backends[i].port,
						   abuf, sizeof(abuf)),
			     svc->backends[i].weight);
		if (w < 0 || (size_t)w >= len - off) {
			snprintf(buf + (len > 4 ? len - 4 : 0), len > 4 ? 4 : len, "...");
			break;
		}
		off += w;
	}
	return buf;
}

static void state__log_change(enum desired_change change, const struct desired_service *old_svc,
			      const struct desired_service *new_svc, void *ctx)
{
	const struct desired_service *svc = new_svc ? new_svc : old_svc;
	static const char *const verbs[] = {
		[DESIRED_ADD] = "added",
		[DESIRED_UPDATE] = "updated",
		[DESIRED_DELETE] = "deleted",
	};
	char ref[SLUICE_ADDRPORT_STRLEN + 8], bes[512];

	(void)ctx;
	sluice_svc__str(&svc->vip, svc->port, svc->proto, ref, sizeof(ref));
	if (change == DESIRED_DELETE)
		pr_info("service %s%s%s%s deleted", ref, svc->name[0] ? " (" : "", svc->name,
			svc->name[0] ? ")" : "");
	else
		pr_info("service %s%s%s%s %s: backends %s", ref, svc->name[0] ? " (" : "",
			svc->name, svc->name[0] ? ")" : "", verbs[change],
			state__backends_str(svc, bes, sizeof(bes)));
}

int state__reconcile(struct meshd *m)
{
	__u32 added = 0, changed = 0, same = 0, deleted = 0;
	struct desired inmaps;
	int err;

	err = desired__from_maps(m->sl, &inmaps);
	if (err) {
		pr_err("reading back the services in the maps: %s", sluice__errmsg());
		return err;
	}
	/* Log what really changes in the datapath; names live in the file only. */
	for (__u32 i = 0; i < m->desired.nservices; i++) {
		const struct desired_service *want = &m->desired.services[i];
		const struct desired_service *have =
			desired__find(&inmaps, &want->vip, want->port, want->proto);

		if (!have) {
			state__log_change(DESIRED_ADD, NULL, want, NULL);
			added++;
		} else if (!state__backends_same(have, want)) {
			state__log_change(DESIRED_UPDATE, have, want, NULL);
			changed++;
		} else {
			same++;
		}
	}
	for (__u32 i = 0; i < inmaps.nservices; i++) {
		const struct desired_service *have = &inmaps.services[i];

		if (!desired__find(&m->desired, &have->vip, have->port, have->proto)) {
			state__log_change(DESIRED_DELETE, have, NULL, NULL);
			deleted++;
		}
	}
	/* Unchanged services are set again too: idempotent, moves no flow. */
	err = desired__apply(m->sl, &inmaps, &m->desired);
	if (err)
		pr_err("reconciling the maps to %s: %s", m->cfg.state, sluice__errmsg());
	else
		pr_info("reconciled %u services from %s: %u added, %u changed, %u deleted, %u unchanged",
			m->desired.nservices, m->cfg.state, added, changed, deleted, same);
	desired__free(&inmaps);
	return err;
}

int state__commit(struct meshd *m, struct desired *next, char *errbuf, size_t errlen)
{
	int err, rerr;

	err = desired__validate(next);
	if (err) {
		snprintf(errbuf, errlen, "%s", sluice__errmsg());
		return err;
	}
	err = desired__apply(m->sl, &m->desired, next);
	if (err) {
		snprintf(errbuf, errlen, "%s", sluice__errmsg());
		/* rolled back, but a rollback may hand out other backend ids */
		telem__changed(m);
		return err;
	}
	err = desired__save(next, m->cfg.state);
	/* The maps changed (and maybe changed back): ids may have moved. */
	telem__changed(m);
	if (err) {
		int off = snprintf(errbuf, errlen, "%s", sluice__errmsg());

		if (off < 0 || (size_t)off >= errlen)
			off = errlen ? errlen - 1 : 0;
		rerr = desired__apply(m->sl, next, &m->desired);
		telem__changed(m);
		if (rerr)
			snprintf(errbuf + off, errlen - off,
				 "; putting the maps back failed too: %s", sluice__errmsg());
		else
			snprintf(errbuf + off, errlen - off, " (nothing was changed)");
		pr_err("%s", errbuf);
		return err;
	}
	desired__diff(&m->desired, next, state__log_change, NULL);
	desired__free(&m->desired);
	m->desired = *next;
	desired__init(next);
	return 0;
}
