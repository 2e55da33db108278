# slora: standalone build and test entry points.
#
#   make            the engine library, bin/slora, unit tests, nginx module
#   make test       every test (unit, kernels on the CPU, nginx t/*.t,
#                   part of them again on Debian 13's nginx)
#   make asan       the unit and nginx tests again under ASan + UBSan
#   make fuzz       libFuzzer harnesses (FUZZ_SECONDS each, under ASan)
#   make run        set up and start the server on the embedded default
#
# Every warning is an error. Outputs go to build/ (build-asan/ and
# build-asan-nginx/ for asan).

CC        ?= cc
BUILD     ?= build
OPT       ?= -O2
SAN       ?=
CFLAGS_W   = -Wall -Wextra -Wno-unused-parameter -Wshadow -Werror
# -ffp-contract=off: arithmetic as written, never fused into an fma, so
# the sampling's CPU twin gives the GPU's token (kernels/slora_sample.h)
CFLAGS    += -std=gnu11 -g $(OPT) -fPIC -ffp-contract=off $(CFLAGS_W) $(SAN) \
             -Iengine -Ikernels \
             $(shell pkg-config --cflags libcjson libpcre2-8 openblas)
LDLIBS    += $(shell pkg-config --libs libcjson libpcre2-8 openblas hiredis \
                                       libcrypto) \
             -lpthread -lm
LDFLAGS   += $(SAN)

ENGINE_SRCS  := $(filter-out engine/slora_cli%.c engine/slora_cuda%.c, \
                  $(wildcard engine/*.c))
KERNEL_SRCS  := $(wildcard kernels/*_cpu.c)
CLI_SRCS     := $(wildcard engine/slora_cli*.c)
UNIT_SRCS    := $(wildcard t/unit/*.c)

LIB_OBJS     := $(patsubst %.c,$(BUILD)/%.o,$(ENGINE_SRCS) $(KERNEL_SRCS))
KERNEL_OBJS  := $(patsubst %.c,$(BUILD)/%.o,$(KERNEL_SRCS))

# The CPU kernels' own flags, the same as the rest unless given: make
# asan's nginx tests build them plain and optimized (the unit tests run
# them sanitized), since a sanitized -O1 engine decodes some 9x slower
# and the tests' servers would refuse work they answer in time otherwise.
KERNEL_SAN   := $(SAN)
KERNEL_OPT   := $(OPT)
$(KERNEL_OBJS): override SAN = $(KERNEL_SAN)
$(KERNEL_OBJS): override OPT = $(KERNEL_OPT)
CLI_OBJS     := $(patsubst %.c,$(BUILD)/%.o,$(CLI_SRCS))
UNIT_BINS    := $(patsubst t/unit/%.c,$(BUILD)/t/unit/%,$(UNIT_SRCS))
LIB          := $(BUILD)/libslora.a
FAULTY_SO    := $(BUILD)/t/libslora_backend_faulty.so

.PHONY: all lib cli unit test unit-test asan fuzz clean run fetch fetch-model \
        fetch-reference

all: lib cli unit $(FAULTY_SO)

lib: $(LIB)
cli: bin/slora
unit: $(UNIT_BINS) $(FAULTY_SO)

$(BUILD)/%.o: %.c $(wildcard engine/*.h kernels/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

bin/slora: $(CLI_OBJS) $(LIB)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(LIB) $(LDLIBS)

# -MMD: what a test includes (test_sse.c the module's own .c files) is
# in build/t/unit/<test>.d, so editing any of it rebuilds the test
$(BUILD)/t/unit/%: t/unit/%.c $(wildcard t/unit/*.h) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -It/unit -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

-include $(UNIT_BINS:=.d)

# A backend that fails on cue, for t/device_faults.t (loaded by cuda_lib=)
# and test_engine's failed forwards (loaded by its path)
$(FAULTY_SO): t/backend/slora_backend_faulty.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -Wl,-Bsymbolic -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

unit-test: unit
	prove -e '' $(UNIT_BINS)

# The real model and the reference's vocab files (no reference build):
# both scripts check sha256 and do nothing when all is in place.
fetch: fetch-model fetch-reference

fetch-model:
	tools/fetch-model

fetch-reference:
	tools/fetch-reference

# prove t/ runs once t/ holds any .t file; adding one needs no edit here.
# Then the tests of what moved in nginx with Debian 13's nginx
# (mk/nginx-compat.mk), the AArch64 path of the quantized products
# under qemu (mk/arm64.mk), and every fuzzing harness once over its
# seeds (mk/fuzz.mk).
test: all fetch
	prove -e '' $(UNIT_BINS)
	$(if $(wildcard t/*.t),prove t/)
	$(MAKE) test-nginx-compat
	$(MAKE) test-arm64
	$(MAKE) fuzz-replay

# gcc's -fsanitize=undefined leaves out float-cast-overflow (a double
# past an int's range cast to it); clang's, which make fuzz uses, has it.
ASAN_SAN  := -fsanitize=address,undefined,float-cast-overflow \
             -fno-omit-frame-pointer -fno-sanitize-recover=all

# The unit tests, then the nginx tests with the module and the engine
# sanitized (build-asan-nginx/, the CPU kernels plain: above): Debian's
# nginx is not, so the tests preload the ASan runtime into it
# (t/lib/SloraTest.pm), and fail on any report a worker, the master or
# the engine process writes.
asan: all fetch
	$(MAKE) BUILD=build-asan OPT=-O1 SAN='$(ASAN_SAN)' unit
	ASAN_OPTIONS=detect_leaks=1 prove -e '' \
	    $(patsubst t/unit/%.c,build-asan/t/unit/%,$(UNIT_SRCS))
	$(MAKE) BUILD=build-asan-nginx OPT=-O1 SAN='$(ASAN_SAN)' \
	    KERNEL_SAN= KERNEL_OPT=-O2 module
	SLORA_MODULE=$(CURDIR)/build-asan-nginx/nginx/objs/ngx_http_slora_module.so \
	SLORA_NGINX_PRELOAD=$$($(CC) -print-file-name=libasan.so) prove t/

clean:
	rm -rf build build-asan build-asan-nginx bin

# Fragments of other concerns (the nginx module, fuzzing, ...) live in mk/,
# read in name order (nginx-compat.mk uses module.mk's names).
-include $(sort $(wildcard mk/*.mk))
