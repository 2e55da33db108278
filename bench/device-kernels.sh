#!/bin/bash
# bench/device-kernels.sh: the one command a device call runs for the
# CUDA kernels. Builds the kernels and their conformance tests
# (test_kernels_cuda, test_attention_cuda) with nvcc on the GPU machine
# (no make, no OpenBLAS: the CPU twins are compiled straight in), runs
# them (TAP, then the LoRA and attention timings), runs the first
# test again without timings under compute-sanitizer when it is there,
# and ends with a short table. Logs go to $OUT (or ./build/cuda-out).
#
#   bash bench/device-kernels.sh

set -u
cd "$(dirname "$0")/.."

OUT=${OUT:-build/cuda-out}
B=build/cuda
ARCH="-gencode arch=compute_90a,code=sm_90a"
NVFLAGS="-O3 $ARCH -std=c++17 -Ikernels -Xcompiler -fPIC,-Wall,-Wextra,-Werror"
mkdir -p "$OUT" "$B/cpu"

{
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem \
        --format=csv,noheader
    nvcc --version | tail -1
    git rev-parse --short HEAD 2>/dev/null
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

build() {
    local f
    for f in kernels/*.cu; do
        nvcc $NVFLAGS -Xptxas -v -c "$f" -o "$B/$(basename "${f%.cu}").o" \
            || return 1
    done
    for f in kernels/*_cpu.c; do
        cc -std=gnu11 -O2 -fPIC -fopenmp -Wall -Wextra -Werror \
            -Wno-unused-parameter -Ikernels -c "$f" \
            -o "$B/cpu/$(basename "${f%.c}").o" || return 1
    done
    nvcc $NVFLAGS -It/unit -c t/kernels/test_kernels_cuda.cu \
        -o "$B/test_kernels_cuda.o" || return 1
    nvcc $ARCH -o "$B/test_kernels_cuda" "$B/test_kernels_cuda.o" \
        $(ls "$B"/slora_*.o) "$B"/cpu/*.o -Xcompiler -fopenmp -lgomp -lm \
        || return 1
    nvcc $NVFLAGS -It/unit -c t/kernels/test_attention_cuda.cu \
        -o "$B/test_attention_cuda.o" || return 1
    nvcc $ARCH -o "$B/test_attention_cuda" "$B/test_attention_cuda.o" \
        $(ls "$B"/slora_*.o) "$B"/cpu/*.o -Xcompiler -fopenmp -lgomp -lm
}

t0=$(date +%s)
if ! build > "$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log"
    echo "BUILD FAILED"
    exit 1
fi
echo "build: $(( $(date +%s) - t0 )) s"
grep -E 'Function properties|spill|registers' "$OUT/build.log" \
    | grep -B1 -E '[1-9][0-9]* bytes spill' || true

OMP_NUM_THREADS=8 timeout 300 "$B/test_kernels_cuda" > "$OUT/test.log" 2>&1
rc=$?
OMP_NUM_THREADS=8 timeout 120 "$B/test_attention_cuda" \
    >> "$OUT/test.log" 2>&1
rc=$(( rc | $? ))
echo "test: rc=$rc, $(( $(date +%s) - t0 )) s"

san="not run"
if command -v compute-sanitizer > /dev/null; then
    OMP_NUM_THREADS=8 timeout 150 compute-sanitizer --tool memcheck \
        "$B/test_kernels_cuda" --no-bench > "$OUT/memcheck.log" 2>&1
    san="rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
fi

echo
echo "== failures"
grep -E '^not ok|^Bail|^#   Failed' "$OUT/test.log" | head -20
n_ok=$(grep -c '^ok' "$OUT/test.log")
n_bad=$(grep -c '^not ok' "$OUT/test.log")
echo "== $n_ok ok, $n_bad not ok; memcheck: $san"
sed -n '/^# conformance/,/^# LoRA decode/p' "$OUT/test.log" \
    | grep -v '^# LoRA decode' | head -30
sed -n '/^# LoRA decode/,$p' "$OUT/test.log" | grep -v '^1\.\.'
exit $rc
