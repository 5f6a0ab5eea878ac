# SPDX-License-Identifier: MIT
# Sluice build. `make` builds BPF objects, skeletons, the userspace library,
# programs and test binaries into build/. `make test`, `make demo` and
# `make bench` install missing Debian packages first. V=1 shows commands.
.DELETE_ON_ERROR:
.SECONDARY:
.DEFAULT_GOAL := all

O       := build
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

INCLUDES   := -Iinclude -I$(O) -Iuser/lib
BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) \
	-Wall -Werror -Wno-unused-function -Iinclude -Ibpf -I$(O)
CFLAGS     ?= -g -O2
CFLAGS     += -std=gnu11 -Wall -Wextra -Werror $(INCLUDES) -Itests/lib
PKGS       := json-c yaml-0.1 libnl-3.0 libnl-route-3.0 libmicrohttpd libcurl
CFLAGS     += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS     := -lbpf -lelf -lz -lm $(shell pkg-config --libs $(PKGS) 2>/dev/null)

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(O)/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(O)/%.skel.h,$(BPF_SRCS))

LIB_SRCS   := $(wildcard user/lib/*.c)
LIB_OBJS   := $(patsubst %.c,$(O)/%.o,$(LIB_SRCS))
LIB        := $(O)/libsluice.a

# user/NAME.c or user/NAME/*.c (not user/lib) -> build/NAME
PROG_SRCS  := $(wildcard user/*.c)
PROG_DIRS  := $(filter-out lib,$(notdir $(patsubst %/,%,$(wildcard user/*/))))
PROGS      := $(patsubst user/%.c,$(O)/%,$(PROG_SRCS)) $(addprefix $(O)/,$(PROG_DIRS))

TLIB_SRCS  := $(wildcard tests/lib/*.c)
TLIB_OBJS  := $(patsubst %.c,$(O)/%.o,$(TLIB_SRCS))
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst %.c,$(O)/%,$(UNIT_SRCS))
DP_SRCS    := $(wildcard tests/datapath/*.c)
DP_OBJS    := $(patsubst %.c,$(O)/%.o,$(DP_SRCS))
DP_BIN     := $(O)/tests/datapath/datapath_test
TOOL_SRCS  := $(wildcard tests/tools/*.c)
TOOLS      := $(patsubst %.c,$(O)/%,$(TOOL_SRCS))
BENCH_SRCS := $(wildcard scripts/bench/*.c)
BENCH_BINS := $(patsubst %.c,$(O)/%,$(BENCH_SRCS))

.PHONY: all deps test demo bench clean
all: $(SKELS) $(LIB) $(PROGS) $(UNIT_BINS) $(if $(DP_SRCS),$(DP_BIN)) $(TOOLS) $(BENCH_BINS)

deps:
	$(Q)scripts/install-deps.sh

$(O)/vmlinux.h:
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(O)/%.bpf.o: bpf/%.bpf.c $(O)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MD -MP -MF $@.d -c $< -o $@

$(O)/%.skel.h: $(O)/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(notdir $*)_bpf > $@

# Every userspace object may include any skeleton.
$(O)/%.o: %.c $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -MD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)$(AR) rcs $@ $^

$(O)/%: $(O)/user/%.o $(LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

define prog_dir_rule
$(O)/$(1): $(patsubst %.c,$(O)/%.o,$(wildcard user/$(1)/*.c)) $(LIB)
	$$(call msg,LD,$$@)
	$$(Q)$$(CC) $$(CFLAGS) $$^ $$(LDLIBS) -o $$@
endef
$(foreach p,$(PROG_DIRS),$(eval $(call prog_dir_rule,$(p))))

$(O)/tests/unit/%: $(O)/tests/unit/%.o $(TLIB_OBJS) $(LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(DP_BIN): $(DP_OBJS) $(TLIB_OBJS) $(LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(O)/tests/tools/%: $(O)/tests/tools/%.o $(TLIB_OBJS) $(LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(O)/scripts/bench/%: $(O)/scripts/bench/%.o $(TLIB_OBJS) $(LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/run.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/bench.sh

clean:
	$(call msg,CLEAN,$(O))
	$(Q)rm -rf $(O)

-include $(shell find $(O) -name '*.d' 2>/dev/null)
