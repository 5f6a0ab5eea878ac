# SPDX-License-Identifier: MIT
# Sluice build. `make` builds BPF objects, skeletons, the userspace library,
# programs and test binaries into build/. `make test`, `make demo` and
# `make bench` install missing Debian packages first. V=1 shows commands.
# SAN=1 builds userspace with ASan+UBSan into build/san; `make fuzz`,
# `make unit-san` and `make analyze` are the hardening habits (README).
.DELETE_ON_ERROR:
.SECONDARY:
.DEFAULT_GOAL := all

O       := build
# SAN=1: userspace with AddressSanitizer and UBSan, in a tree of its own so
# sanitized and plain objects never mix. FUZZ=1 (set by `make fuzz`): the
# same with libFuzzer's coverage hooks, built by clang.
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# A subdirectory of O even when O is given on the command line (hence
# override), absolute or not.
ifeq ($(FUZZ),1)
override O := $(O)/fuzz
CC      := $(or $(CLANG),clang)
SAN_CFLAGS := $(SAN_FLAGS) -fsanitize=fuzzer-no-link
else ifeq ($(SAN),1)
override O := $(O)/san
SAN_CFLAGS := $(SAN_FLAGS)
endif
CLANG   ?= clang
BPFTOOL ?= bpftool
CC      ?= gcc
AR      ?= ar

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# Userspace is two libraries: libsluice.a (user/lib/*/: everything that
# drives the datapath; meshctl links only this) and libsluice-agent.a
# (user/agent/*/: Kubernetes client and metrics exporter, which bring
# libcurl, libmicrohttpd and friends). Each library folder is an include
# directory; user/lib and meshctl objects do not see the agent's headers.
LIB_DIRS   := $(patsubst %/,%,$(sort $(dir $(wildcard user/lib/*/*.c))))
AGENT_DIRS := $(patsubst %/,%,$(sort $(dir $(wildcard user/agent/*/*.c))))
LIB_INC    := $(addprefix -I,$(LIB_DIRS))
AGENT_INC  := $(addprefix -I,$(AGENT_DIRS))
LIB_PKGS   := json-c yaml-0.1
AGENT_PKGS := libnl-3.0 libnl-route-3.0 libmicrohttpd libcurl
LIB_LDLIBS   := -lbpf -lelf -lz -lm $(shell pkg-config --libs $(LIB_PKGS) 2>/dev/null)
AGENT_LDLIBS := $(shell pkg-config --libs $(AGENT_PKGS) 2>/dev/null)

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) \
	-Wall -Werror -Wno-unused-function -Iinclude -Ibpf -I$(O)
# CFLAGS (optimisation, debug, extra warnings) may be set on the command
# line without losing the flags the build needs, which live apart.
CFLAGS     ?= -g -O2
BUILD_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -Iinclude -I$(O) $(XINC) -Itests/lib \
	$(shell pkg-config --cflags $(LIB_PKGS) $(AGENT_PKGS) 2>/dev/null)
XINC       = $(LIB_INC) $(AGENT_INC)
ALL_CFLAGS = $(BUILD_CFLAGS) $(SAN_CFLAGS) $(CFLAGS)

BPF_SRCS   := $(wildcard bpf/*.bpf.c bpf/bench/*.bpf.c)
BPF_OBJS   := $(addprefix $(O)/,$(notdir $(BPF_SRCS:.bpf.c=.bpf.o)))
SKELS      := $(BPF_OBJS:.bpf.o=.skel.h)

LIB_SRCS   := $(wildcard user/lib/*/*.c)
LIB_OBJS   := $(patsubst %.c,$(O)/%.o,$(LIB_SRCS))
LIB        := $(O)/libsluice.a
AGENT_SRCS := $(wildcard user/agent/*/*.c)
AGENT_OBJS := $(patsubst %.c,$(O)/%.o,$(AGENT_SRCS))
AGENT_LIB  := $(O)/libsluice-agent.a

# user/NAME/*.c -> build/NAME (programs: meshd, meshctl)
PROG_DIRS  := $(filter-out lib agent,$(notdir $(patsubst %/,%,$(wildcard user/*/))))
PROGS      := $(addprefix $(O)/,$(PROG_DIRS))
# Programs that link only libsluice.a.
LIB_ONLY_PROGS := meshctl

TLIB_SRCS  := $(wildcard tests/lib/*.c)
TLIB_OBJS  := $(patsubst %.c,$(O)/%.o,$(TLIB_SRCS))
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst %.c,$(O)/%,$(UNIT_SRCS))
DP_SRCS    := $(wildcard tests/datapath/*.c)
DP_OBJS    := $(patsubst %.c,$(O)/%.o,$(DP_SRCS))
DP_BIN     := $(O)/tests/datapath/datapath_test
TOOL_SRCS  := $(wildcard tests/tools/*.c)
TOOLS      := $(patsubst %.c,$(O)/%,$(TOOL_SRCS))
# tests/fuzz/fuzz_NAME.c: libFuzzer targets (build/fuzz/tests/fuzz/fuzz_NAME,
# `make fuzz`); the same files, with the entry point renamed fuzz_NAME, are
# linked into the unit suite test_fuzz_replay, which replays every corpus file.
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_BINS  := $(patsubst %.c,$(O)/%,$(FUZZ_SRCS))
FUZZ_REPLAY_OBJS := $(patsubst tests/fuzz/%.c,$(O)/tests/fuzz/replay/%.o,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 60
BENCH_SRCS := $(wildcard scripts/bench/*.c)
BENCH_BINS := $(patsubst %.c,$(O)/%,$(BENCH_SRCS))
ALL_LIBS   := $(AGENT_LIB) $(LIB)
ALL_LDLIBS  = $(AGENT_LDLIBS) $(LIB_LDLIBS)

.PHONY: all deps test test-kernels unit unit-san fuzz fuzz-bins analyze demo bench clean format format-check
# C sources clang-format checks (and `make format` rewrites): everything
# tracked by git, including tests and bench tools.
FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
CLANG_FORMAT ?= clang-format
all: $(SKELS) $(LIB) $(AGENT_LIB) $(PROGS) $(UNIT_BINS) $(if $(DP_SRCS),$(DP_BIN)) $(TOOLS) $(BENCH_BINS)

deps:
	$(Q)scripts/install-deps.sh

$(O)/vmlinux.h:
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

define bpf_rule
$(O)/$(notdir $(1:.bpf.c=.bpf.o)): $(1) $(O)/vmlinux.h
	$$(call msg,BPF,$$@)
	$$(Q)mkdir -p $$(@D)
	$$(Q)$$(CLANG) $$(BPF_CFLAGS) -MD -MP -MF $$@.d -c $$< -o $$@
endef
$(foreach src,$(BPF_SRCS),$(eval $(call bpf_rule,$(src))))

$(O)/%.skel.h: $(O)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(notdir $*)_bpf > $@

# Every userspace object may include any skeleton.
$(O)/%.o: %.c $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -MD -MP -c $< -o $@

# The datapath library and the CLI cannot include agent headers.
$(O)/user/lib/%.o $(O)/user/meshctl/%.o: XINC = $(LIB_INC)
# The traffic generator shares its header with bpf/bench/xdpgen.bpf.c.
$(O)/scripts/bench/%.o: XINC = $(LIB_INC) $(AGENT_INC) -Ibpf/bench

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

$(AGENT_LIB): $(AGENT_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

define prog_dir_rule
$(O)/$(1): $(patsubst %.c,$(O)/%.o,$(wildcard user/$(1)/*.c)) \
		$(if $(filter $(1),$(LIB_ONLY_PROGS)),$(LIB),$(ALL_LIBS))
	$$(call msg,LD,$$@)
	$$(Q)$$(CC) $$(ALL_CFLAGS) $$^ \
		$(if $(filter $(1),$(LIB_ONLY_PROGS)),$$(LIB_LDLIBS),$$(ALL_LDLIBS)) -o $$@
endef
$(foreach p,$(PROG_DIRS),$(eval $(call prog_dir_rule,$(p))))

# Loads of lb.bpf.o pass through tests/unit/lb_wrap.c: a suite may ask
# for test-sized ones (tests/lib/lb_load.h).
$(O)/tests/unit/%: $(O)/tests/unit/%.o $(O)/tests/unit/lb_wrap.o $(TLIB_OBJS) $(ALL_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(ALL_LDLIBS) -Wl,--wrap=bpf_object__load_skeleton -o $@

# test_sock refuses redir.bpf.o's load in one case (socket LB must not
# depend on redirection): its loads pass through a wrapper.
$(O)/tests/unit/test_sock: $(O)/tests/unit/test_sock.o $(TLIB_OBJS) $(ALL_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(ALL_LDLIBS) -Wl,--wrap=bpf_object__load_skeleton -o $@

# meshd's unit tests (tests/unit/test_meshd_*.c) link its modules without
# main.c and see its headers.
MESHD_OBJS := $(patsubst %.c,$(O)/%.o,$(filter-out user/meshd/main.c,$(wildcard user/meshd/*.c)))
MESHD_UNIT_BINS := $(filter $(O)/tests/unit/test_meshd_%,$(UNIT_BINS))
$(O)/tests/unit/test_meshd_%.o: XINC = $(LIB_INC) $(AGENT_INC) -Iuser/meshd
$(MESHD_UNIT_BINS): $(O)/tests/unit/test_meshd_%: $(O)/tests/unit/test_meshd_%.o $(MESHD_OBJS) \
		$(TLIB_OBJS) $(ALL_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(ALL_LDLIBS) -o $@

# meshctl's unit tests (tests/unit/test_meshctl_*.c) link the modules
# that print and parse, without main.c (they define g_opts themselves).
MESHCTL_UNIT_OBJS := $(addprefix $(O)/user/meshctl/,output.o args.o outlier.o)
MESHCTL_UNIT_BINS := $(filter $(O)/tests/unit/test_meshctl_%,$(UNIT_BINS))
$(O)/tests/unit/test_meshctl_%.o: XINC = $(LIB_INC) -Iuser/meshctl
$(MESHCTL_UNIT_BINS): $(O)/tests/unit/test_meshctl_%: $(O)/tests/unit/test_meshctl_%.o \
		$(MESHCTL_UNIT_OBJS) $(TLIB_OBJS) $(ALL_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(ALL_LDLIBS) -o $@

# Test-sized datapath loads (tests/datapath/dp_load.c).
$(DP_BIN): $(DP_OBJS) $(TLIB_OBJS) $(ALL_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(ALL_LDLIBS) -Wl,--wrap=bpf_object__load_skeleton -o $@

# Fixtures and corpora are found through the source tree's path, whatever
# the output directory or the current directory (tests/lib/test.h).
$(O)/tests/lib/test.o: XINC += -DSLUICE_SRC_DIR='"$(CURDIR)"'

# Fuzz targets see the agent's headers and tests/fuzz/fuzz.h.
$(O)/tests/fuzz/%.o $(O)/tests/fuzz/replay/%.o: XINC = $(LIB_INC) $(AGENT_INC) -Itests/fuzz
$(O)/tests/fuzz/replay/fuzz_%.o: tests/fuzz/fuzz_%.c $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) -DLLVMFuzzerTestOneInput=fuzz_$* -MD -MP -c $< -o $@
$(O)/tests/unit/test_fuzz_replay.o: XINC = $(LIB_INC) $(AGENT_INC) -Itests/fuzz \
	-DFUZZ_TARGETS='$(foreach n,$(FUZZ_NAMES),X($(n)))'
$(O)/tests/unit/test_fuzz_replay: $(O)/tests/unit/test_fuzz_replay.o $(FUZZ_REPLAY_OBJS) \
		$(TLIB_OBJS) $(ALL_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(ALL_LDLIBS) -o $@

$(O)/tests/fuzz/fuzz_%: $(O)/tests/fuzz/fuzz_%.o $(ALL_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer $^ $(ALL_LDLIBS) -o $@

$(O)/tests/tools/%: $(O)/tests/tools/%.o $(TLIB_OBJS) $(ALL_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(ALL_LDLIBS) -o $@

# lbtool loads lb.bpf.o without programs but for `attach` (lb_load.h).
$(O)/tests/tools/lbtool: $(O)/tests/tools/lbtool.o $(O)/tests/unit/lb_wrap.o $(TLIB_OBJS) $(ALL_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(ALL_LDLIBS) -Wl,--wrap=bpf_object__load_skeleton -o $@

$(O)/scripts/bench/%: $(O)/scripts/bench/%.o $(TLIB_OBJS) $(ALL_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ $(ALL_LDLIBS) -o $@

# tests/run.sh takes the binaries from $(O) (build/san with SAN=1, where
# it runs the unit and meshd e2e suites only).
RUN_ENV = SLUICE_BUILD=$(abspath $(O)) $(if $(filter 1,$(SAN)),SLUICE_SAN=1)

test: deps
	$(Q)$(MAKE) --no-print-directory all format-check analyze
	$(Q)$(RUN_ENV) tests/run.sh

# The kernel matrix (README "Kernel matrix"): the chosen suites on the host
# kernel and on Debian's 6.1 and 6.12 under qemu. Slow (TCG): not part of
# `make test`. KERNELS, KERNEL_SUITES, KERNEL_CACHE: see scripts/kernels/run.sh.
test-kernels: all
	$(Q)SLUICE_DEPS=kernels scripts/install-deps.sh
	$(Q)$(RUN_ENV) scripts/kernels/run.sh

# The unit suites alone; `make unit-san` runs them under ASan+UBSan (CI).
unit: $(UNIT_BINS)
	$(Q)$(RUN_ENV) SLUICE_SUITES=unit tests/run.sh

unit-san:
	$(Q)$(MAKE) --no-print-directory SAN=1 unit

# `make fuzz FUZZ_SECONDS=N`: every target for N seconds (clang, libFuzzer;
# SLUICE_DEPS=fuzz installs its runtime). A crash is copied into
# tests/fuzz/corpus/TARGET/, where test_fuzz_replay replays it from then on.
fuzz:
	$(Q)SLUICE_DEPS=fuzz scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory FUZZ=1 fuzz-bins
	$(Q)scripts/fuzz.sh $(abspath $(O)/fuzz) $(FUZZ_SECONDS) $(FUZZ_NAMES)

fuzz-bins: $(FUZZ_BINS)

# Static analysis with cppcheck: zero findings. A false positive is
# suppressed where it happens (// cppcheck-suppress ID, with the reason).
CPPCHECK ?= cppcheck
analyze:
	$(call msg,ANALYZE,user tests)
	$(Q)$(CPPCHECK) --quiet --error-exitcode=1 --inline-suppr --std=c11 \
		--enable=warning,portability,performance --suppress=missingIncludeSystem \
		-D__linux__ -D__CPPCHECK__ -DLIBBPF_OPTS\(...\)= -DDECLARE_LIBBPF_OPTS\(...\)= -Iinclude -Itests/lib \
		-DFUZZ_TARGETS='$(foreach n,$(FUZZ_NAMES),X($(n)))' user tests

# Headers are formatted as C: left alone, clang-format guesses some of them
# to be Objective-C, which the repo's .clang-format does not describe.
format:
	$(Q)for f in $(FORMAT_SRCS); do \
		$(CLANG_FORMAT) --style=file --assume-filename=$${f%.h}.c < $$f > $$f.fmt && \
		{ cmp -s $$f $$f.fmt || cp $$f.fmt $$f; }; rm -f $$f.fmt; done

format-check:
	$(call msg,FORMAT,check)
	$(Q)bad=0; for f in $(FORMAT_SRCS); do \
		$(CLANG_FORMAT) --style=file --assume-filename=$${f%.h}.c < $$f | \
		diff -u --label $$f --label "$$f (clang-format)" $$f - || bad=1; done; \
	[ $$bad -eq 0 ] || { echo "format-check: run 'make format' (clang-format, .clang-format)" >&2; exit 1; }

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh $(DEMO_ARGS)

# The multi-node cluster in namespaces (scripts/lib/cluster.sh), e.g.
# make demo-cluster DEMO_ARGS="--keep --nodes 3".
.PHONY: demo-cluster
demo-cluster: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo-cluster.sh $(DEMO_ARGS)

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/bench.sh

clean:
	$(call msg,CLEAN,$(O))
	$(Q)rm -rf $(O)

-include $(shell find $(O) -name '*.d' 2>/dev/null)

# `make install` / `make uninstall`, as a Debian package lays files out:
# meshd in sbin (a daemon only root runs), meshctl in bin (its --help and
# version work for anyone; talking to meshd needs root), man pages in
# section 8 generated from --help (scripts/gen-man.sh), bash completion,
# the systemd unit in lib/systemd/system under PREFIX, the example meshd
# config in SYSCONFDIR/sluice (never overwritten) and the example desired
# state in share/doc/sluice/examples. The BPF objects are embedded in the
# binaries (skeletons): nothing to install for them. DESTDIR stages.
PREFIX     ?= /usr/local
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
BINDIR     := $(PREFIX)/bin
SBINDIR    := $(PREFIX)/sbin
MAN8DIR    := $(PREFIX)/share/man/man8
COMPDIR    := $(PREFIX)/share/bash-completion/completions
UNITDIR    ?= $(PREFIX)/lib/systemd/system
EXAMPLEDIR := $(PREFIX)/share/doc/sluice/examples
MANS       := $(O)/man/meshd.8 $(O)/man/meshctl.8
INSTALL    ?= install

.PHONY: install uninstall man
man: $(MANS)

$(O)/man/%.8: $(O)/% scripts/gen-man.sh
	$(call msg,MAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)scripts/gen-man.sh $* $< > $@

install: $(O)/meshd $(O)/meshctl $(MANS)
	$(Q)$(INSTALL) -D -m 0755 $(O)/meshd $(DESTDIR)$(SBINDIR)/meshd
	$(Q)$(INSTALL) -D -m 0755 $(O)/meshctl $(DESTDIR)$(BINDIR)/meshctl
	$(Q)$(INSTALL) -D -m 0644 $(O)/man/meshd.8 $(DESTDIR)$(MAN8DIR)/meshd.8
	$(Q)$(INSTALL) -D -m 0644 $(O)/man/meshctl.8 $(DESTDIR)$(MAN8DIR)/meshctl.8
	$(Q)$(INSTALL) -D -m 0644 scripts/completion/meshctl.bash $(DESTDIR)$(COMPDIR)/meshctl
	$(Q)mkdir -p $(DESTDIR)$(UNITDIR)
	$(Q)sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		scripts/systemd/meshd.service.in > $(DESTDIR)$(UNITDIR)/meshd.service
	$(Q)$(INSTALL) -D -m 0644 scripts/examples/services.yaml $(DESTDIR)$(EXAMPLEDIR)/services.yaml
	$(Q)$(INSTALL) -D -m 0644 scripts/examples/meshd.yaml $(DESTDIR)$(EXAMPLEDIR)/meshd.yaml
	$(Q)[ -e $(DESTDIR)$(SYSCONFDIR)/sluice/meshd.yaml ] || \
		$(INSTALL) -D -m 0644 scripts/examples/meshd.yaml $(DESTDIR)$(SYSCONFDIR)/sluice/meshd.yaml
	@echo "installed under $(DESTDIR)$(PREFIX); start with: systemctl daemon-reload && systemctl enable --now meshd"

# The config in SYSCONFDIR is the operator's: left unless unchanged.
uninstall:
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/meshd $(DESTDIR)$(BINDIR)/meshctl \
		$(DESTDIR)$(MAN8DIR)/meshd.8 $(DESTDIR)$(MAN8DIR)/meshctl.8 \
		$(DESTDIR)$(COMPDIR)/meshctl $(DESTDIR)$(UNITDIR)/meshd.service \
		$(DESTDIR)$(EXAMPLEDIR)/services.yaml $(DESTDIR)$(EXAMPLEDIR)/meshd.yaml
	$(Q)-rmdir $(DESTDIR)$(EXAMPLEDIR) $(DESTDIR)$(PREFIX)/share/doc/sluice 2>/dev/null
	$(Q)if cmp -s scripts/examples/meshd.yaml $(DESTDIR)$(SYSCONFDIR)/sluice/meshd.yaml; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/sluice/meshd.yaml; \
		rmdir $(DESTDIR)$(SYSCONFDIR)/sluice 2>/dev/null || true; fi
