# mk/arm64.mk: the quantized products' AArch64 path (NEON with dotprod,
# kernels/slora_qmatmul_arm_cpu.c) checked on this x86 machine: their
# unit test cross-compiled (static, from the few files it needs) and run
# under qemu-aarch64 with its CPU "max", which has dotprod, so every
# product and quantizer of the NEON path is compared with the portable
# C path's to the bit, and the run must show the NEON path was there.
#
#   make test-arm64   needs gcc-aarch64-linux-gnu and qemu-user (.ci/run
#                     installs both); make test runs it

ARM64_CC    ?= aarch64-linux-gnu-gcc
ARM64_QEMU  ?= qemu-aarch64
ARM64_DIR   := $(BUILD)/arm64
ARM64_TEST  := $(ARM64_DIR)/test_qmatmul
ARM64_SRCS  := t/unit/test_qmatmul.c $(wildcard kernels/slora_qmatmul*_cpu.c) \
               kernels/slora_convert_cpu.c engine/slora_tensor.c \
               engine/slora_core.c

.PHONY: test-arm64

$(ARM64_TEST): $(ARM64_SRCS) $(wildcard engine/*.h kernels/*.h t/unit/*.h)
	@mkdir -p $(dir $@)
	$(ARM64_CC) -std=gnu11 -g -O2 -ffp-contract=off $(CFLAGS_W) -static \
	    -Iengine -Ikernels -It/unit $(ARM64_SRCS) -lm -o $@

test-arm64: $(ARM64_TEST)
	prove -v --exec '$(ARM64_QEMU) -cpu max' $(ARM64_TEST) \
	    > $(ARM64_DIR)/test_qmatmul.log 2>&1 \
	    || { cat $(ARM64_DIR)/test_qmatmul.log; exit 1; }
	@n=$$(grep -c '^ok .* on NEON-dotprod == the C dot products' \
	          $(ARM64_DIR)/test_qmatmul.log); \
	tail -1 $(ARM64_DIR)/test_qmatmul.log; \
	echo "test-arm64: $$n products of the NEON path equal the C path's"; \
	[ "$$n" -gt 0 ] || { echo "test-arm64: the NEON path did not run"; \
	                     exit 1; }
