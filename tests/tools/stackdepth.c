// SPDX-License-Identifier: MIT
/*
 * stackdepth - each function's stack frame in each program of a BPF
 * object, as the running kernel's verifier reports it, and the deepest
 * call chain counted as Debian 12's 6.1 counts it (every frame rounded
 * up to 32 bytes; more than 512 is refused there). For the kernel matrix
 * (scripts/kernels/run.sh) and for a quick check on the host.
 *
 * Usage: stackdepth OBJ...
 *
 * Per program: "PROG: main+f1+... = DEPTH as 6.1 counts (deepest chain:
 * a > b > c)" and one "  name frame" line per function. An object the
 * kernel refuses prints the verifier's last line per program. Exits 1
 * when an object does not load or a chain passes 512 as 6.1 counts.
 * The verifier's stack figures come from BPF_LOG_STATS (log level 4),
 * the functions and calls from the loaded program's func_info and
 * xlated instructions.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#define LOG_SIZE (1u << 20)
#define MAX_FUNCS 64
#define MAX_STACK 512u

struct prog_funcs {
	__u32 n;
	__u32 off[MAX_FUNCS];   /* first instruction */
	__u32 depth[MAX_FUNCS]; /* the verifier's frame */
	char name[MAX_FUNCS][64];
	__u64 calls[MAX_FUNCS]; /* bit j: calls function j */
};

static __u32 round32(__u32 d)
{
	return ((d ? d : 1) + 31) / 32 * 32;
}

static int func_at(const struct prog_funcs *f, __u32 insn)
{
	for (int i = (int)f->n - 1; i >= 0; i--)
		if (insn >= f->off[i])
			return i;
	return 0;
}

/* Deepest chain from @i as 6.1 counts it; @path gets its functions. */
static __u32 chain(const struct prog_funcs *f, int i, int level, int *path, int *len)
{
	int best[MAX_FUNCS], blen = 0;
	__u32 max = 0;

	if (level > 8) /* the kernel's own bound on call depth */
		return 0;
	for (int j = 0; j < (int)f->n; j++) {
		int p[MAX_FUNCS], plen = 0;
		__u32 d;

		if (!(f->calls[i] & (1ull << j)))
			continue;
		d = chain(f, j, level + 1, p, &plen);
		if (d > max) {
			max = d;
			memcpy(best, p, sizeof(int) * plen);
			blen = plen;
		}
	}
	path[0] = i;
	memcpy(path + 1, best, sizeof(int) * blen);
	*len = blen + 1;
	return round32(f->depth[i]) + max;
}

static int read_funcs(int fd, const char *log, struct prog_funcs *f)
{
	struct bpf_func_info fi[MAX_FUNCS] = {};
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), ninsn;
	struct bpf_insn *insns;
	const char *s = strstr(log, "stack depth ");
	struct btf *btf;
	bool jited;

	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.nr_func_info > MAX_FUNCS)
		return -1;
	f->n = info.nr_func_info;
	ninsn = info.xlated_prog_len / sizeof(*insns);
	insns = calloc(ninsn, sizeof(*insns));
	if (!insns)
		return -1;
	memset(&info, 0, sizeof(info));
	info.nr_func_info = f->n;
	info.func_info_rec_size = sizeof(fi[0]);
	info.func_info = (__u64)(unsigned long)fi;
	info.xlated_prog_len = ninsn * sizeof(*insns);
	info.xlated_prog_insns = (__u64)(unsigned long)insns;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		free(insns);
		return -1;
	}
	jited = info.jited_prog_len > 0;
	btf = btf__load_from_kernel_by_id(info.btf_id);
	for (__u32 i = 0; i < f->n; i++) {
		const struct btf_type *t = btf ? btf__type_by_id(btf, fi[i].type_id) : NULL;

		f->off[i] = fi[i].insn_off;
		snprintf(f->name[i], sizeof(f->name[i]), "%s",
			 t ? btf__name_by_offset(btf, t->name_off) : "?");
		/* "stack depth 336+80+0+...": one figure per function, in order */
		f->depth[i] = s ? (__u32)strtoul(s + (i ? 1 : 12), (char **)&s, 10) : 0;
	}
	btf__free(btf);
	/* A BPF-to-BPF call goes to pc + 1 + imm; once JITed, the kernel
	 * keeps that offset in off (imm then holds the callee's index). */
	for (__u32 pc = 0; pc < ninsn; pc++) {
		const struct bpf_insn *in = &insns[pc];

		if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL)
			f->calls[func_at(f, pc)] |=
				1ull << func_at(f, pc + 1 + (jited ? in->off : in->imm));
	}
	free(insns);
	return s ? 0 : -1;
}

static int report(struct bpf_program *prog, const char *log)
{
	struct prog_funcs f = {};
	int path[MAX_FUNCS], len = 0;
	__u32 total;

	if (read_funcs(bpf_program__fd(prog), log, &f)) {
		printf("%s: no stack figures (func_info or log missing)\n",
		       bpf_program__name(prog));
		return 1;
	}
	total = chain(&f, 0, 0, path, &len);
	printf("%s: %u as 6.1 counts (limit %u), deepest chain:", bpf_program__name(prog), total,
	       MAX_STACK);
	for (int i = 0; i < len; i++)
		printf("%s %s %u", i ? " >" : "", f.name[path[i]], f.depth[path[i]]);
	printf("\n");
	for (__u32 i = 0; i < f.n; i++)
		printf("  %-24s %u\n", f.name[i], f.depth[i]);
	return total > MAX_STACK;
}

static int object(const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct bpf_program *prog;
	char *logs[MAX_FUNCS] = {};
	int n = 0, err, bad = 0;

	if (!obj) {
		fprintf(stderr, "stackdepth: %s: open: %s\n", path, strerror(errno));
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		if (n == MAX_FUNCS || !(logs[n] = calloc(1, LOG_SIZE)))
			break;
		bpf_program__set_log_level(prog, 4);
		bpf_program__set_log_buf(prog, logs[n++], LOG_SIZE);
	}
	err = bpf_object__load(obj);
	n = 0;
	bpf_object__for_each_program(prog, obj) {
		const char *log = n < MAX_FUNCS && logs[n] ? logs[n] : "";

		n++;
		if (!bpf_program__autoload(prog))
			continue;
		if (err) {
			const char *last = strstr(log, "stack size") ?: log;

			printf("%s: refused: %.*s\n", bpf_program__name(prog),
			       (int)strcspn(last, "\n"), last);
			continue;
		}
		bad |= report(prog, log);
	}
	for (int i = 0; i < MAX_FUNCS; i++)
		free(logs[i]);
	bpf_object__close(obj);
	return err ? 1 : bad;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: stackdepth OBJ...\n");
		return 2;
	}
	libbpf_set_print(NULL);
	for (int i = 1; i < argc; i++)
		rc |= object(argv[i]);
	return rc;
}
