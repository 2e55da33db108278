# mk/cuda.mk: `make cuda` builds the CUDA backend, build/libslora_cuda.so
# (the CUDA twins of the kernels, cuBLASLt GEMMs, the backend proper and
# the few engine files it needs), which the engine dlopen()s for
# device=cuda, and the kernels' conformance test. `make` builds it when
# nvcc is found (CUDA_HOME, else the PATH); `make test` never needs it.
# It compiles on a machine without a GPU; the tests run on one
# (bench/device-kernels.sh, bench/device-engine.sh).
#
#   make cuda                   build/libslora_cuda.so, build/cuda/test_*
#                               (kernels, all-reduce, conversions)
#   make cuda-test              build, then run the conformance test
#
# The test binary links the CPU twins (kernels/*_cpu.c) compiled on their
# own into build/cuda/, so it needs libc and libm only, never OpenBLAS
# or the rest of libslora.a. cudart is linked statically.

CUDA_HOME     ?= /usr/local/cuda
NVCC          ?= $(firstword $(wildcard $(CUDA_HOME)/bin/nvcc) \
                   $(shell command -v nvcc 2>/dev/null) nvcc)
CUDA_ARCH     ?= -gencode arch=compute_90a,code=sm_90a
CUDA_FOUND    := $(filter-out nvcc,$(NVCC))
CUDA_BUILD    := $(BUILD)/cuda
NVCCFLAGS     ?= -O3 $(CUDA_ARCH) -std=c++17 -Ikernels \
                 -Werror all-warnings -Xptxas -warn-spills,-Werror \
                 -Xcompiler -fPIC,-Wall,-Wextra,-Wshadow,-Werror
CUDA_CPU_FLAGS = -std=gnu11 -O2 -fPIC -ffp-contract=off $(CFLAGS_W) -Ikernels

CUDA_SRCS     := $(wildcard kernels/*.cu)
CUDA_OBJS     := $(patsubst kernels/%.cu,$(CUDA_BUILD)/%.o,$(CUDA_SRCS))
CUDA_CPU_OBJS := $(patsubst kernels/%.c,$(CUDA_BUILD)/cpu/%.o,\
                   $(wildcard kernels/*_cpu.c))
CUDA_TEST     := $(CUDA_BUILD)/test_kernels_cuda
CUDA_SO       := $(BUILD)/libslora_cuda.so

# The backend's C files (cuda_runtime.h, cublasLt.h) and the engine files
# the .so carries its own copy of, bound to itself (-Bsymbolic).
CUDA_C_SRCS   := $(wildcard engine/slora_cuda*.c) engine/slora_batch.c \
                 engine/slora_core.c engine/slora_proj.c engine/slora_spares.c \
                 engine/slora_model_keys.c engine/slora_meet.c
CUDA_C_OBJS   := $(patsubst engine/%.c,$(CUDA_BUILD)/engine/%.o,\
                   $(filter $(wildcard engine/*.c),$(CUDA_C_SRCS)))
CUDA_CFLAGS    = -std=gnu11 -g -O2 -fPIC $(CFLAGS_W) -Iengine -Ikernels \
                 -I$(CUDA_HOME)/include

.PHONY: cuda cuda-test

ifneq ($(CUDA_FOUND),)
all: cuda
endif

cuda: $(CUDA_SO) $(CUDA_TEST) $(CUDA_BUILD)/test_arena_cuda

# the backend's arena against the writes right after its allocation: C
# against libslora.a, the backend loaded as the engine loads it (run by
# bench/device-engine.sh, from a static build bench/device-pack.sh makes)
$(CUDA_BUILD)/test_arena_cuda: t/kernels/test_arena_cuda.c t/unit/tap.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -It/unit -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS) -ldl

$(CUDA_BUILD)/engine/%.o: engine/%.c $(wildcard engine/*.h kernels/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_CFLAGS) -c $< -o $@

$(CUDA_SO): $(CUDA_OBJS) $(CUDA_C_OBJS) $(CUDA_BUILD)/cpu/slora_rope_cpu.o \
        $(CUDA_BUILD)/cpu/slora_convert_cpu.o
	$(NVCC) $(CUDA_ARCH) -shared -o $@ $^ -Xlinker -Bsymbolic \
	    -Xlinker --no-undefined -lcublasLt -lpthread -ldl -lm

$(CUDA_BUILD)/%.o: kernels/%.cu kernels/slora_cuda.cuh $(wildcard kernels/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(CUDA_BUILD)/cpu/%.o: kernels/%.c $(wildcard kernels/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_CPU_FLAGS) -c $< -o $@

# every test binary's own object, from t/kernels/<name>.cu
$(CUDA_BUILD)/test_%_cuda.o: t/kernels/test_%_cuda.cu t/unit/tap.h \
        t/kernels/cuda_test.h $(wildcard kernels/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -It/unit -c $< -o $@

$(CUDA_TEST): $(CUDA_BUILD)/test_kernels_cuda.o $(CUDA_OBJS) $(CUDA_CPU_OBJS)
	$(NVCC) $(CUDA_ARCH) -o $@ $^ -lm -lstdc++

cuda-test: $(CUDA_TEST)
	$(CUDA_TEST)

# The attention family's own test (kernels/slora_attention*, and RoPE
# with the KV store in one launch): against the CPU twins, then the
# prefill kernel's speed.
CUDA_AT_TEST  := $(CUDA_BUILD)/test_attention_cuda

cuda: $(CUDA_AT_TEST)

$(CUDA_AT_TEST): $(CUDA_BUILD)/test_attention_cuda.o \
        $(CUDA_BUILD)/slora_attention.o \
        $(CUDA_BUILD)/slora_attention_decode.o \
        $(CUDA_BUILD)/slora_attention_prefill.o $(CUDA_BUILD)/slora_rope.o \
        $(CUDA_BUILD)/slora_random.o \
        $(CUDA_BUILD)/cpu/slora_attention_cpu.o \
        $(CUDA_BUILD)/cpu/slora_attention_x86_cpu.o \
        $(CUDA_BUILD)/cpu/slora_qmatmul_cpu.o \
        $(CUDA_BUILD)/cpu/slora_qmatmul_x86_cpu.o \
        $(CUDA_BUILD)/cpu/slora_rope_cpu.o \
        $(CUDA_BUILD)/cpu/slora_convert_cpu.o
	$(NVCC) $(CUDA_ARCH) -o $@ $^ -lm -lstdc++

# The all-reduce's own test (kernels/slora_allreduce.*): ranks emulated on
# one GPU, then one rank per GPU when there are two or more; --bench adds
# the timings. It needs only its family and the bf16 rounding's twin.
CUDA_AR_TEST  := $(CUDA_BUILD)/test_allreduce_cuda

cuda: $(CUDA_AR_TEST)

$(CUDA_AR_TEST): $(CUDA_BUILD)/test_allreduce_cuda.o \
        $(CUDA_BUILD)/slora_allreduce.o \
        $(CUDA_BUILD)/cpu/slora_allreduce_cpu.o \
        $(CUDA_BUILD)/cpu/slora_convert_cpu.o
	$(NVCC) $(CUDA_ARCH) -o $@ $^ -lm -lstdc++

# The draw's own test (kernels/slora_sample.*): the GPU's token against
# the CPU twin's, row by row, and the greedy argmax's it draws over.
CUDA_SM_TEST  := $(CUDA_BUILD)/test_sample_cuda

cuda: $(CUDA_SM_TEST)

$(CUDA_SM_TEST): $(CUDA_BUILD)/test_sample_cuda.o \
        $(CUDA_BUILD)/slora_sample.o $(CUDA_BUILD)/cpu/slora_sample_cpu.o \
        $(CUDA_BUILD)/cpu/slora_sample_x86_cpu.o \
        $(CUDA_BUILD)/slora_argmax.o $(CUDA_BUILD)/cpu/slora_argmax_cpu.o \
        $(CUDA_BUILD)/cpu/slora_qmatmul_cpu.o \
        $(CUDA_BUILD)/cpu/slora_qmatmul_x86_cpu.o \
        $(CUDA_BUILD)/cpu/slora_convert_cpu.o
	$(NVCC) $(CUDA_ARCH) -o $@ $^ -lm -lstdc++

# The scores' own test (kernels/slora_score.*): a row's token
# log-probability and likeliest ids on the GPU against the CPU twin's.
CUDA_SC_TEST  := $(CUDA_BUILD)/test_score_cuda

cuda: $(CUDA_SC_TEST)

$(CUDA_SC_TEST): $(CUDA_BUILD)/test_score_cuda.o \
        $(CUDA_BUILD)/slora_score.o $(CUDA_BUILD)/cpu/slora_score_cpu.o \
        $(CUDA_BUILD)/cpu/slora_sample_cpu.o \
        $(CUDA_BUILD)/cpu/slora_sample_x86_cpu.o \
        $(CUDA_BUILD)/cpu/slora_argmax_cpu.o \
        $(CUDA_BUILD)/cpu/slora_qmatmul_cpu.o \
        $(CUDA_BUILD)/cpu/slora_qmatmul_x86_cpu.o \
        $(CUDA_BUILD)/cpu/slora_convert_cpu.o
	$(NVCC) $(CUDA_ARCH) -o $@ $^ -lm -lstdc++

# The thin projections' own test (kernels/slora_gemv.*): against the CPU
# twin (and the fused MLP form against the GEMM and SiLU-and-mul), then
# the read rate of every launch shape.
CUDA_GV_TEST  := $(CUDA_BUILD)/test_gemv_cuda

cuda: $(CUDA_GV_TEST)

$(CUDA_GV_TEST): $(CUDA_BUILD)/test_gemv_cuda.o \
        $(CUDA_BUILD)/slora_gemv.o $(CUDA_BUILD)/slora_gemv_mma.o \
        $(CUDA_BUILD)/slora_act.o $(CUDA_BUILD)/cpu/slora_gemv_cpu.o \
        $(CUDA_BUILD)/cpu/slora_act_cpu.o \
        $(CUDA_BUILD)/cpu/slora_act_x86_cpu.o \
        $(CUDA_BUILD)/cpu/slora_qmatmul_cpu.o \
        $(CUDA_BUILD)/cpu/slora_qmatmul_x86_cpu.o \
        $(CUDA_BUILD)/cpu/slora_convert_cpu.o
	$(NVCC) $(CUDA_ARCH) -o $@ $^ -lm -lstdc++

# The conversions' own test (kernels/slora_convert.*): bit for bit
# against the CPU's rounding, and the scattering of an adapter's pages;
# and a random model's weights made on the device (kernels/slora_random.*).
CUDA_CV_TEST  := $(CUDA_BUILD)/test_convert_cuda

cuda: $(CUDA_CV_TEST)

$(CUDA_CV_TEST): $(CUDA_BUILD)/test_convert_cuda.o \
        $(CUDA_BUILD)/slora_convert.o $(CUDA_BUILD)/cpu/slora_convert_cpu.o \
        $(CUDA_BUILD)/slora_random.o $(CUDA_BUILD)/cpu/slora_random_cpu.o
	$(NVCC) $(CUDA_ARCH) -o $@ $^ -lm -lstdc++

# The base projections' speed (bench/bench_gemm_cuda.c): the backend's
# own GEMM front at the 7B shape, decode and prefill row counts.
CUDA_GEMM_BENCH := $(CUDA_BUILD)/bench_gemm_cuda

cuda: $(CUDA_GEMM_BENCH)

$(CUDA_BUILD)/bench_gemm_cuda.o: bench/bench_gemm_cuda.c \
        engine/slora_cuda_gemm.h engine/slora_core.h
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_CFLAGS) -c $< -o $@

$(CUDA_GEMM_BENCH): $(CUDA_BUILD)/bench_gemm_cuda.o \
        $(CUDA_BUILD)/engine/slora_cuda_gemm.o \
        $(CUDA_BUILD)/engine/slora_core.o $(CUDA_BUILD)/slora_gemv.o \
        $(CUDA_BUILD)/slora_gemv_mma.o
	$(NVCC) $(CUDA_ARCH) -o $@ $^ -lcublasLt -lpthread -lm
