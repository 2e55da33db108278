# mk/cuda.mk: `make cuda` builds the CUDA twins of the kernels and their
# conformance test; nothing else in the tree depends on it, so `make` and
# `make test` stay CUDA-free. It compiles on a machine without a GPU;
# the test runs on one (bench/device-kernels.sh).
#
#   make cuda                   build/cuda/*.o and build/cuda/test_kernels_cuda
#   make cuda-test              build, then run the conformance test
#
# The test binary links the CPU twins (kernels/*_cpu.c) compiled on their
# own into build/cuda/, so it needs libc and libm only, never OpenBLAS
# or the rest of libslora.a. cudart is linked statically.

NVCC          ?= nvcc
CUDA_ARCH     ?= -gencode arch=compute_90a,code=sm_90a
CUDA_BUILD    := $(BUILD)/cuda
NVCCFLAGS     ?= -O3 $(CUDA_ARCH) -std=c++17 -Ikernels \
                 -Xcompiler -fPIC,-Wall,-Wextra,-Wshadow,-Werror
CUDA_CPU_FLAGS = -std=gnu11 -O2 -fPIC $(CFLAGS_W) -Ikernels

CUDA_SRCS     := $(wildcard kernels/*.cu)
CUDA_OBJS     := $(patsubst kernels/%.cu,$(CUDA_BUILD)/%.o,$(CUDA_SRCS))
CUDA_CPU_OBJS := $(patsubst kernels/%.c,$(CUDA_BUILD)/cpu/%.o,\
                   $(wildcard kernels/*_cpu.c))
CUDA_TEST     := $(CUDA_BUILD)/test_kernels_cuda

.PHONY: cuda cuda-test

cuda: $(CUDA_OBJS) $(CUDA_TEST)

$(CUDA_BUILD)/%.o: kernels/%.cu kernels/slora_cuda.cuh $(wildcard kernels/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(CUDA_BUILD)/cpu/%.o: kernels/%.c $(wildcard kernels/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_CPU_FLAGS) -c $< -o $@

$(CUDA_BUILD)/test_kernels_cuda.o: t/kernels/test_kernels_cuda.cu \
        t/unit/tap.h $(wildcard kernels/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -It/unit -c $< -o $@

$(CUDA_TEST): $(CUDA_BUILD)/test_kernels_cuda.o $(CUDA_OBJS) $(CUDA_CPU_OBJS)
	$(NVCC) $(CUDA_ARCH) -o $@ $^ -lm -lstdc++

cuda-test: $(CUDA_TEST)
	$(CUDA_TEST)
