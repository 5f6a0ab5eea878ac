// SPDX-License-Identifier: MIT
/*
 * healthtool - plays the kernel's part of passive outlier detection (#14)
 * on pinned maps, for the e2e tests of what meshd and meshctl make of it.
 *
 *   healthtool PIN_DIR eject BACKEND_ID SECONDS [--svc SVC_ID] [--reason R]
 *       backend_health[BACKEND_ID] as the kernel leaves it on an ejection
 *       (3 failures, ejected until now + SECONDS; 0: over, on probation);
 *       --svc also counts it in svc_health[SVC_ID].ejected
 *   healthtool PIN_DIR event KIND SVC_ID BACKEND_ID [SECONDS] [--reason R]
 *       one record into the health_events ring buffer, KIND ejected |
 *       reejected | restored | max_ejected. A ring buffer cannot be
 *       written from userspace, so a 20-instruction XDP program built
 *       here calls bpf_ringbuf_output() on the pinned map under
 *       BPF_PROG_TEST_RUN (bpf_ringbuf_output: kernel 5.8).
 *   healthtool PIN_DIR show-svc SVC_ID | show-be BACKEND_ID
 *       the entry as "field=value" words, for the tests to grep.
 *
 * Errors print "Error: ..." and exit 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>

#include "sluice.h"

static int err_out(const char *fmt, const char *arg, int err)
{
	fprintf(stderr, "Error: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "%s%s\n", err ? ": " : "", err ? strerror(-err) : "");
	return 1;
}

static int map_fd(const char *dir, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		err_out("cannot open the pinned map %s", path, -errno);
	return fd;
}

static __u64 now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (__u64)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int parse_reason(const char *text, __u8 *r)
{
	for (int i = 0; i < SLUICE_HEALTH_R__MAX; i++)
		if (!strcmp(text, sluice__health_reason_name(i))) {
			*r = (__u8)i;
			return 0;
		}
	return err_out("unknown reason \"%s\"", text, 0);
}

/* --svc N and --reason R, wherever they are; the rest stays in order. */
static int parse_opts(int *argc, char **argv, long *svc, __u8 *reason)
{
	int n = 0;

	for (int i = 0; i < *argc; i++) {
		if (!strcmp(argv[i], "--svc") && i + 1 < *argc) {
			*svc = strtol(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--reason") && i + 1 < *argc) {
			if (parse_reason(argv[++i], reason))
				return 1;
		} else {
			argv[n++] = argv[i];
		}
	}
	*argc = n;
	return 0;
}

static int do_eject(const char *dir, int argc, char **argv)
{
	struct sluice_backend_health bh = { .fails = 3,
					    .ejections = 1,
					    .flags = SLUICE_BH_F_EJECTED };
	struct sluice_svc_health sh;
	long svc = -1, secs;
	__u32 id, sid;
	int fd, sfd;

	bh.reason = SLUICE_HEALTH_R_RST;
	if (parse_opts(&argc, argv, &svc, &bh.reason))
		return 1;
	if (argc != 2)
		return err_out("usage: eject BACKEND_ID SECONDS [--svc SVC_ID] [--reason R]%s", "",
			       0);
	id = (__u32)strtoul(argv[0], NULL, 10);
	secs = strtol(argv[1], NULL, 10);
	bh.last_fail_ns = now_ns();
	bh.ejected_until_ns = secs > 0 ? now_ns() + (__u64)secs * 1000000000 : now_ns() - 1000;
	fd = map_fd(dir, "backend_health");
	if (fd < 0)
		return 1;
	if (bpf_map_update_elem(fd, &id, &bh, BPF_ANY))
		return err_out("writing backend_health[%s]", argv[0], -errno);
	if (svc < 0)
		return 0;
	sid = (__u32)svc;
	sfd = map_fd(dir, "svc_health");
	if (sfd < 0 || bpf_map_lookup_elem(sfd, &sid, &sh))
		return err_out("reading svc_health%s", "", -errno);
	sh.ejected++;
	if (bpf_map_update_elem(sfd, &sid, &sh, BPF_ANY))
		return err_out("writing svc_health%s", "", -errno);
	return 0;
}

/* The few instructions of the event program. */
static struct bpf_insn insn(__u8 code, __u8 dst, __u8 src, __s16 off, __s32 imm)
{
	return (struct bpf_insn){
		.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm
	};
}

/* XDP program: 32 bytes of ev on the stack, bpf_ringbuf_output(map). */
static int event_prog(int map, const struct sluice_health_event *ev)
{
	struct bpf_insn p[32];
	__u64 w[4];
	int n = 0;

	memcpy(w, ev, sizeof(w));
	for (int i = 0; i < 4; i++) {
		/* r1 = w[i] (ld_imm64: two slots); *(u64 *)(r10 - 32 + 8i) = r1 */
		p[n++] = insn(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, 0, 0, (__s32)(__u32)w[i]);
		p[n++] = insn(0, 0, 0, 0, (__s32)(__u32)(w[i] >> 32));
		p[n++] = insn(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, BPF_REG_1, -32 + 8 * i, 0);
	}
	p[n++] = insn(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, map);
	p[n++] = insn(0, 0, 0, 0, 0);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0);
	p[n++] = insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -32);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, 32);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, 0);
	p[n++] = insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_ringbuf_output);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS);
	p[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	return bpf_prog_load(BPF_PROG_TYPE_XDP, "health_event", "GPL", p, n, NULL);
}

static int parse_kind(const char *text, __u8 *kind)
{
	for (__u8 k = SLUICE_HEALTH_EV_EJECTED; k <= SLUICE_HEALTH_EV_MAX_EJECTED; k++)
		if (!strcmp(text, sluice__health_event_name(k))) {
			*kind = k;
			return 0;
		}
	return err_out("unknown event kind \"%s\" (ejected, reejected, restored, max_ejected)",
		       text, 0);
}

static int do_event(const char *dir, int argc, char **argv)
{
	struct sluice_health_event ev = { .fails = 3, .ejections = 1 };
	char pkt[64] = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = pkt, .data_size_in = sizeof(pkt));
	long unused = -1;
	int map, prog;

	ev.reason = SLUICE_HEALTH_R_RST;
	if (parse_opts(&argc, argv, &unused, &ev.reason))
		return 1;
	if (argc < 3 || argc > 4)
		return err_out("usage: event KIND SVC_ID BACKEND_ID [SECONDS] [--reason R]%s", "",
			       0);
	if (parse_kind(argv[0], &ev.kind))
		return 1;
	ev.svc_id = (__u32)strtoul(argv[1], NULL, 10);
	ev.backend_id = (__u32)strtoul(argv[2], NULL, 10);
	ev.ts_ns = now_ns();
	if (argc == 4)
		ev.ejected_until_ns = now_ns() + strtoull(argv[3], NULL, 10) * 1000000000ull;
	map = map_fd(dir, "health_events");
	if (map < 0)
		return 1;
	prog = event_prog(map, &ev);
	if (prog < 0)
		return err_out("loading the event program%s", "", prog);
	if (bpf_prog_test_run_opts(prog, &run))
		return err_out("running the event program%s", "", -errno);
	return 0;
}

static int do_show(const char *dir, const char *what, const char *id_text)
{
	__u32 id = (__u32)strtoul(id_text, NULL, 10);
	struct sluice_backend_health bh;
	struct sluice_svc_health sh;
	bool svc = !strcmp(what, "show-svc");
	int fd = map_fd(dir, svc ? "svc_health" : "backend_health");

	if (fd < 0 || bpf_map_lookup_elem(fd, &id, svc ? (void *)&sh : (void *)&bh))
		return err_out("reading entry %s", id_text, -errno);
	if (svc)
		printf("threshold=%u ejected=%u backends=%u max_ejected_pct=%u panic_pct=%u "
		       "base_ms=%u max_ms=%u\n",
		       sh.threshold, sh.ejected, sh.backends, sh.max_ejected_pct, sh.panic_pct,
		       sh.base_ms, sh.max_ms);
	else
		printf("flags=%u fails=%u ejections=%u reason=%s\n", bh.flags, bh.fails,
		       bh.ejections, sluice__health_reason_name(bh.reason));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: healthtool PIN_DIR eject|event|show-svc|show-be ...\n");
		return 2;
	}
	if (!strcmp(argv[2], "eject"))
		return do_eject(argv[1], argc - 3, argv + 3);
	if (!strcmp(argv[2], "event"))
		return do_event(argv[1], argc - 3, argv + 3);
	if ((!strcmp(argv[2], "show-svc") || !strcmp(argv[2], "show-be")) && argc == 4)
		return do_show(argv[1], argv[2], argv[3]);
	return err_out("unknown command \"%s\"", argv[2], 0);
}
