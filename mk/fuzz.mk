# mk/fuzz.mk: `make fuzz` builds every t/fuzz/fuzz_<name>.c as a libFuzzer
# harness and runs each for FUZZ_SECONDS (default 600).
#
# The engine is compiled again with clang into build-fuzz/ (instrumented
# with -fsanitize=fuzzer-no-link,address,undefined; the gcc libslora.a is
# not used). Each harness defines LLVMFuzzerTestOneInput and links against
# those objects. Its corpus is t/fuzz/corpus-<name>/ (git-ignored), seeded
# by tools/fuzz-seed from real files before the first run; crashes land in
# build-fuzz/ as crash-<name>-*.
#
#   make fuzz                   build and run every harness
#   make fuzz-build             build only
#   make fuzz-<name>            one harness (fuzz-gguf for t/fuzz/fuzz_gguf.c)
#   make fuzz-replay            every harness once over fresh seeds, then
#                               FUZZ_SMOKE_RUNS inputs mutated from them
#                               with a fixed seed (make test runs it)
#   FUZZ_FLAGS='-max_len=65536' more libFuzzer options

FUZZ_SECONDS  ?= 600
FUZZ_SMOKE_RUNS ?= 5000
FUZZ_FLAGS    ?=
FUZZ_CC       ?= clang
FUZZ_BUILD    := build-fuzz
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all \
                 -fno-omit-frame-pointer
FUZZ_CFLAGS    = -std=gnu11 -g -O1 -fPIC $(CFLAGS_W) \
                 $(FUZZ_SAN) \
                 -Iengine -Ikernels \
                 $(shell pkg-config --cflags libcjson libpcre2-8 openblas)

FUZZ_SRCS     := $(wildcard t/fuzz/fuzz_*.c)
FUZZ_NAMES    := $(patsubst t/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_BINS     := $(patsubst t/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRCS))
FUZZ_OBJS     := $(patsubst %.c,$(FUZZ_BUILD)/%.o, \
                     $(ENGINE_SRCS) $(KERNEL_SRCS))
FUZZ_LIB      := $(FUZZ_BUILD)/libslora.a

.PHONY: fuzz fuzz-build fuzz-replay clean-fuzz \
        $(addprefix fuzz-,$(FUZZ_NAMES))
.SECONDARY: $(FUZZ_OBJS)

fuzz: $(addprefix fuzz-,$(FUZZ_NAMES))

fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/%.o: %.c $(wildcard engine/*.h kernels/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_LIB): $(FUZZ_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: t/fuzz/fuzz_%.c $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) \
	    $(LDLIBS)

# The seeds come from bin/slora mkmodel/mkadapter and the reference's
# vocab files, hence cli and fetch-reference.
$(addprefix fuzz-,$(FUZZ_NAMES)): fuzz-%: $(FUZZ_BUILD)/fuzz_% \
                                   cli fetch-reference
	tools/fuzz-seed $* t/fuzz/corpus-$*
	$(FUZZ_BUILD)/fuzz_$* -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crash-$*- \
	    $(FUZZ_FLAGS) t/fuzz/corpus-$*

# Every harness once over seeds made afresh (build-fuzz/seeds-<name>/):
# the harness's oracles and the sanitizers on the real files fuzzing
# starts from. A harness that no longer agrees with the code then fails
# `make test`, not the next fuzzing session (a Responses oracle counting
# the echo's members once went stale so, unseen). Then FUZZ_SMOKE_RUNS
# inputs mutated from those seeds with libFuzzer's seed fixed (-seed=1):
# much the same inputs every run (coverage feedback keeps it from being
# exact: two runs of fuzz_request differed by 3 of 190 corpus entries),
# and a failure keeps its input as build-fuzz/crash-<name>-*, which
# replays it (a few minutes for all of them on two cores).
fuzz-replay: $(FUZZ_BINS) cli fetch-reference
	@for n in $(FUZZ_NAMES); do \
	    rm -rf $(FUZZ_BUILD)/seeds-$$n $(FUZZ_BUILD)/smoke-$$n; \
	    tools/fuzz-seed $$n $(FUZZ_BUILD)/seeds-$$n > /dev/null || exit 1; \
	    mkdir -p $(FUZZ_BUILD)/smoke-$$n; \
	    if $(FUZZ_BUILD)/fuzz_$$n -runs=0 $(FUZZ_BUILD)/seeds-$$n \
	        > $(FUZZ_BUILD)/replay-$$n.log 2>&1 \
	       && $(FUZZ_BUILD)/fuzz_$$n -seed=1 -runs=$(FUZZ_SMOKE_RUNS) \
	        -artifact_prefix=$(FUZZ_BUILD)/crash-$$n- \
	        $(FUZZ_BUILD)/smoke-$$n $(FUZZ_BUILD)/seeds-$$n \
	        >> $(FUZZ_BUILD)/replay-$$n.log 2>&1; \
	    then \
	        echo "fuzz-replay $$n: $$(ls $(FUZZ_BUILD)/seeds-$$n | wc -l)" \
	             "seeds and $(FUZZ_SMOKE_RUNS) mutated, ok"; \
	    else \
	        tail -40 $(FUZZ_BUILD)/replay-$$n.log; \
	        echo "fuzz-replay $$n: FAILED ($(FUZZ_BUILD)/replay-$$n.log)"; \
	        exit 1; \
	    fi; \
	done

clean-fuzz:
	rm -rf $(FUZZ_BUILD)

clean: clean-fuzz
