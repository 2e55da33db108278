#!/bin/bash
# bench/device-gemm.sh: the decode projections' kernels on a GPU, from
# .carry/t (bench/device-pack.sh one): test_gemv_cuda (both thin
# kernels against the CPU twin, then their timings by launch shape),
# bench_gemm_cuda at decode row counts three ways, and the engine's
# decode steps the same three ways on the 7B shape with and without
# adapters, alternated twice, and each way's greedy conformance against
# the CPU. The ways ($WAYS, each an environment):
# the build's own dispatch; the tensor-core kernel for none
# (SLORA_CUDA_MMA=0: the CUDA-core GEMV to 4 rows, cuBLASLt above, as
# before it); cuBLASLt alone (SLORA_CUDA_THIN=0). A way of several
# settings joins them with ':'. Logs to $OUT.
#
#   bash bench/device-gemm.sh [batches, default 1,16,64]

set -u
. "$(dirname "$0")/device-lib.sh"
cd "$(dirname "$0")/.."
export OUT=${OUT:-build/device-out}
mkdir -p "$OUT"
T=$PWD/.carry/t
B=${1:-1,16,64}
WAYS=${WAYS:-"SLORA_CUDA_MMA=1-64 SLORA_CUDA_MMA=0 SLORA_CUDA_THIN=0"}

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "tree $(git log -1 --format=%h 2>/dev/null)"
device_built_from "$T"
device_engine_env "$T"

for t in test_gemv_cuda bench_gemm_cuda; do
    gunzip -c "$T/$t.gz" > /tmp/$t && chmod +x /tmp/$t
done

timeout 120 /tmp/test_gemv_cuda > "$OUT/test_gemv.log" 2>&1
echo "== test_gemv_cuda: rc=$?, $(grep -c '^ok' "$OUT/test_gemv.log") ok," \
     "$(grep -c '^not ok' "$OUT/test_gemv.log") not ok"
grep -E '^not ok' "$OUT/test_gemv.log" | head -5
grep -E '^# (gemv mma|q,k,v|o |gate|down)' "$OUT/test_gemv.log" | tail -18

# builds of the kernel with other stages (test_gemv_cuda_s<variant>: other
# boxes of 64 k a stage, say), where the carry has them: timings alone
for v in "$T"/test_gemv_cuda_s*.gz; do
    [ -f "$v" ] || continue
    b=$(basename "$v" .gz)
    gunzip -c "$v" > /tmp/$b && chmod +x /tmp/$b
    echo "== $b: $(timeout 120 /tmp/$b | grep -c '^not ok') not ok"
    timeout 120 /tmp/$b | grep -E '^# (q,k,v|o |gate|down) .* r0 '
done

# a way as a file name the device tool brings back (no '=' or ':')
tag() { printf %s "$1" | tr -c 'A-Za-z0-9_.-' '_'; }

for way in $WAYS; do
    echo "== bench_gemm_cuda, $way"
    env ${way//:/ } timeout 60 /tmp/bench_gemm_cuda 1 4 8 16 32 64 \
        2>&1 | tee "$OUT/gemm-$(tag "$way").log" \
        | grep -E '^ +(q,k,v|o|gate|down)'
done

[ "${ENGINE:-1}" = 1 ] && /tmp/slora mkadapter --model random:llama-7b \
    --out /tmp/ad7 --count 32 --rank 16 --targets q,k,v,o > /dev/null
for round in $([ "${ENGINE:-1}" = 1 ] && echo 1 2); do
    for way in $WAYS; do
        echo "== bench 7b, round $round, $way"
        env ${way//:/ } timeout 120 /tmp/slora bench \
            --model random:llama-7b --device cuda --adapters /tmp/ad7 \
            --prompt-len 256 --gen 128 --single 0 --step-tokens 4096 \
            --batches "$B" 2>&1 | tee -a "$OUT/bench.log" | grep -E '^ +[0-9]'
    done
done

# each way against the CPU's exact path, adapters on some projections,
# on a 2-layer slice of the 7B shape (whose decode steps' shapes are the
# 7B's)
if [ "${ENGINE:-1}" = 1 ]; then
    /tmp/slora mkadapter --model random:llama-7b,layers=2 --out /tmp/ad7p \
        --count 4 --ranks 8,16,32,64 --targets q,v,up,down --scale 0.3 \
        > /dev/null
    for way in $WAYS; do
        echo "== conform 7b-2layer adapters on q,v,up,down, $way"
        env ${way//:/ } timeout 240 /tmp/slora conform \
            --model random:llama-7b,layers=2 --device cuda --threads 16 \
            --adapters /tmp/ad7p --requests 5 --gen 16 \
            > "$OUT/conform-$(tag "$way").log" 2>&1
        echo "rc=$?"
        grep -E "^ +[0-9]|EQUAL|PARTS|drift" "$OUT/conform-$(tag "$way").log"
    done
fi

# where ncu reads the counters: one q,k,v launch at 64 rows
if command -v ncu > /dev/null && [ "${NCU:-1}" = 1 ]; then
    echo "== ncu, q,k,v at 64 rows"
    timeout 120 ncu --clock-control none -k regex:ws_kernel -s 40 -c 1 \
        --section SpeedOfLight --section MemoryWorkloadAnalysis \
        --section WarpStateStats /tmp/bench_gemm_cuda 64 \
        > "$OUT/ncu.log" 2>&1
    ncu_re="Duration|DRAM Throughput|L2 Cache Throughput|Memory Throughput"
    ncu_re="$ncu_re|Stall|Warp Cycles|L1/TEX Hit|L2 Hit"
    grep -E "$ncu_re" "$OUT/ncu.log" | head -30
fi
