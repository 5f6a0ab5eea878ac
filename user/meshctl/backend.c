// SPDX-License-Identifier: MIT
/*
 * backend.c - `meshctl backend add|del|weight|drain|undrain`: edit one
 * backend of one service.
 *
 * Contract: SVC and BE are checked locally (format, same family) and sent
 * canonical as one API call (backend.add, backend.del, backend.weight,
 * backend.drain, backend.undrain). Each prints one line saying what
 * changed; undrain says the weight meshd gave back. `backend batch`
 * (backend_batch.c) sends many changes in one request.
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "meshctl.h"
#include "output.h"

/* Parse "SVC BE" into args {"service", "backend"}. */
static struct json_object *svc_be_args(char **pos, char *svc, size_t svc_len, char *be,
				       size_t be_len)
{
	struct sluice_addr vip, addr;
	struct json_object *args;
	__u16 port;

	if (args__svc(pos[0], &vip, svc, svc_len))
		return NULL;
	if (args__backend(pos[1], &vip, &addr, &port, be, be_len))
		return NULL;
	args = out__xalloc(json_object_new_object());
	json_object_object_add(args, "service", json_object_new_string(svc));
	json_object_object_add(args, "backend", json_object_new_string(be));
	return args;
}

/* The shared tail of every backend command: call, then JSON or one line. */
static int call_and_say(const char *op, struct json_object *args, const char *fmt, const char *be,
			const char *svc, unsigned long weight)
{
	struct json_object *data = NULL;

	if (client__call(op, args, &data))
		return -1;
	if (out__json_mode())
		out__json(data);
	else
		printf(fmt, be, svc, weight);
	json_object_put(data);
	return 0;
}

static int do_add(int argc, char **argv)
{
	const char *weight_text = NULL;
	const struct opt opts[] = {
		{ .name = "weight", .short_name = 'w', .value = &weight_text },
		{ NULL },
	};
	char *pos[2], svc[ARGS_SVC_LEN], be[SLUICE_ADDRPORT_STRLEN];
	unsigned long weight = 1;
	struct json_object *args;
	int npos;

	if (opts__parse(argc, argv, opts, pos, 2, &npos))
		return -1;
	if (npos < 2)
		return cmd__usage_error("missing %s", npos ? "BE" : "SVC and BE");
	if (weight_text && opts__uint(weight_text, 0, UINT16_MAX, "weight", &weight))
		return -1;
	args = svc_be_args(pos, svc, sizeof(svc), be, sizeof(be));
	if (!args)
		return -1;
	json_object_object_add(args, "weight", json_object_new_int((int)weight));
	return call_and_say("backend.add", args, "added backend %s to %s with weight %lu\n", be,
			    svc, weight);
}

static const struct help_item backend_add_opts[] = {
	{ "-w, --weight N", "share of new flows relative to the others, 0-65535 (default 1)" },
	{ NULL, NULL },
};

static const struct cmd backend_add_cmd = {
	.name = "add",
	.fn = do_add,
	.grammar = "SVC BE [--weight N]",
	.summary = "add a backend to a service",
	.args = (const struct help_item[]){ HELP_SVC, HELP_BE, { NULL, NULL } },
	.opts = backend_add_opts,
	.example = "meshctl backend add 10.96.0.10:80/tcp 10.0.1.4:8080 --weight 10",
};

/* SVC BE and nothing else: the request's arguments, or NULL (said). */
static struct json_object *svc_be_only(int argc, char **argv, char svc[ARGS_SVC_LEN],
				       char be[SLUICE_ADDRPORT_STRLEN])
{
	const struct opt opts[] = { { NULL } };
	char *pos[2];
	int npos;

	if (opts__parse(argc, argv, opts, pos, 2, &npos))
		return NULL;
	if (npos < 2) {
		cmd__usage_error("missing %s", npos ? "BE" : "SVC and BE");
		return NULL;
	}
	return svc_be_args(pos, svc, ARGS_SVC_LEN, be, SLUICE_ADDRPORT_STRLEN);
}

/* backend del / drain: SVC BE, one call, one line said. */
static int svc_be_call(int argc, char **argv, const char *op, const char *fmt)
{
	char svc[ARGS_SVC_LEN], be[SLUICE_ADDRPORT_STRLEN];
	struct json_object *args = svc_be_only(argc, argv, svc, be);

	if (!args)
		return -1;
	return call_and_say(op, args, fmt, be, svc, 0);
}

static int do_del(int argc, char **argv)
{
	return svc_be_call(argc, argv, "backend.del", "removed backend %s from %s\n");
}

static const struct cmd backend_del_cmd = {
	.name = "del",
	.fn = do_del,
	.grammar = "SVC BE",
	.summary = "remove a backend now (drain it first to let its connections finish)",
	.args = (const struct help_item[]){ HELP_SVC, HELP_BE, { NULL, NULL } },
	.example = "meshctl backend del 10.96.0.10:80/tcp 10.0.1.4:8080",
};

static int do_weight(int argc, char **argv)
{
	static const char *const missing[] = { "SVC, BE and N", "BE and N", "N" };
	const struct opt opts[] = { { NULL } };
	char *pos[3], svc[ARGS_SVC_LEN], be[SLUICE_ADDRPORT_STRLEN];
	struct json_object *args;
	unsigned long weight;
	int npos;

	if (opts__parse(argc, argv, opts, pos, 3, &npos))
		return -1;
	if (npos < 3)
		return cmd__usage_error("missing %s", missing[npos]);
	if (opts__uint(pos[2], 0, UINT16_MAX, "weight", &weight))
		return -1;
	args = svc_be_args(pos, svc, sizeof(svc), be, sizeof(be));
	if (!args)
		return -1;
	json_object_object_add(args, "weight", json_object_new_int((int)weight));
	return call_and_say("backend.weight", args,
			    weight ? "backend %s of %s now has weight %lu\n" :
				     "backend %s of %s now has weight %lu: draining\n",
			    be, svc, weight);
}

static const struct help_item backend_weight_args[] = {
	HELP_SVC,
	HELP_BE,
	{ "N", "the new weight, 0-65535; 0 drains the backend" },
	{ NULL, NULL },
};

static const struct cmd backend_weight_cmd = {
	.name = "weight",
	.fn = do_weight,
	.grammar = "SVC BE N",
	.summary = "change a backend's weight (its share of new flows)",
	.args = backend_weight_args,
	.example = "meshctl backend weight 10.96.0.10:80/tcp 10.0.1.3:8080 50",
};

static int do_drain(int argc, char **argv)
{
	return svc_be_call(argc, argv, "backend.drain",
			   "draining backend %s of %s: no new flows, existing ones keep it\n");
}

static const struct cmd backend_drain_cmd = {
	.name = "drain",
	.fn = do_drain,
	.grammar = "SVC BE",
	.summary = "stop sending new flows to a backend; its existing flows keep going",
	.args = (const struct help_item[]){ HELP_SVC, HELP_BE, { NULL, NULL } },
	.example = "meshctl backend drain 10.96.0.10:80/tcp 10.0.1.3:8080",
};

/* The weight BE has in the SERVICE answer (0 when it is not there). */
static unsigned long answer_weight(struct json_object *svc, const char *be)
{
	struct json_object *bes = js__get(svc, "backends");
	char ref[SLUICE_ADDRPORT_STRLEN + 8];

	for (size_t i = 0; i < js__len(bes); i++)
		if (!strcmp(js__backend_ref(js__idx(bes, i), ref, sizeof(ref)), be))
			return js__u64(js__idx(bes, i), "weight");
	return 0;
}

static int do_undrain(int argc, char **argv)
{
	char svc[ARGS_SVC_LEN], be[SLUICE_ADDRPORT_STRLEN];
	struct json_object *args = svc_be_only(argc, argv, svc, be), *data = NULL;

	if (!args)
		return -1;
	if (client__call("backend.undrain", args, &data))
		return -1;
	if (out__json_mode())
		out__json(data);
	else
		printf("backend %s of %s takes new flows again with weight %lu\n", be, svc,
		       answer_weight(data, be));
	json_object_put(data);
	return 0;
}

static const struct cmd backend_undrain_cmd = {
	.name = "undrain",
	.fn = do_undrain,
	.grammar = "SVC BE",
	.summary = "give a draining backend back its weight from before the drain",
	.args = (const struct help_item[]){ HELP_SVC, HELP_BE, { NULL, NULL } },
	.notes = "The weight before a drain (drain, or weight 0) is kept in meshd's desired\n"
		 "state, so it survives restarts; 1 when none was recorded (a backend added\n"
		 "with weight 0). A backend that is not draining is refused.",
	.example = "meshctl backend undrain 10.96.0.10:80/tcp 10.0.1.3:8080",
};

static const struct cmd *const backend_sub[] = {
	&backend_add_cmd,
	&backend_del_cmd,
	&backend_weight_cmd,
	&backend_drain_cmd,
	&backend_undrain_cmd,
	&backend_batch_cmd,
	NULL,
};

const struct cmd backend_cmd = {
	.name = "backend",
	.sub = backend_sub,
	.summary = "add, remove, reweight, drain and undrain backends",
	.args = (const struct help_item[]){ HELP_SVC, HELP_BE, { NULL, NULL } },
	.example = "meshctl backend add 10.96.0.10:80/tcp 10.0.1.4:8080 --weight 10\n"
		   "meshctl backend drain 10.96.0.10:80/tcp 10.0.1.2:8080",
};
