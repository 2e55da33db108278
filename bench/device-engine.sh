#!/bin/bash
# bench/device-engine.sh: the CUDA backend on the GPU, over what
# bench/device-pack.sh carries.
#
#   bash bench/device-engine.sh bench      (.carry/t)
#   bash bench/device-engine.sh kernels    (.carry/t: the kernels' tests
#                                           alone, a short call)
#   bash bench/device-engine.sh conform    (after calls that carried
#                                           .carry/a, .carry/b and
#                                           .carry/c)
#   bash bench/device-engine.sh ab         (.carry/t from BASE=<commit>:
#                                           this build against that one;
#                                           or AB_ENV=VAR=value: against
#                                           itself under that setting)
#   bash bench/device-engine.sh scale      (.carry/a: S1 and S2, n = 5..2000;
#                                           NS="5 2000" RANKSETS=8 for less)
#   bash bench/device-engine.sh heads      (.carry/t: Mistral NeMo's shape,
#                                           a head size of its own; Llama
#                                           3.1's RoPE scaling; Qwen3)
#   bash bench/device-engine.sh heads-profile  (.carry/t: where NeMo's
#                                           decode step goes, op by op)
#   bash bench/device-engine.sh grouped    (.carry/t: decode attention for
#                                           groups of query heads, tensor
#                                           cores against CUDA cores)
#   bash bench/device-engine.sh attention-ab  (.carry/t from BASE=<commit>:
#                                           the decode attention of this
#                                           build against that one's)
#   bash bench/device-engine.sh kernel-times  (.carry/t: a decode step of
#                                           PEFT's shape kernel by kernel,
#                                           under ncu)
#   bash bench/device-engine.sh skew       (.carry/t: where a decode step
#                                           goes with one long context
#                                           among short ones)
#
# PROMPT=448 gives decode steps a mean context of 512, torch_decode.py's.
# bench: the arena written right after its allocation (test_arena_cuda),
# the kernels' conformance tests and LoRA timings (t/kernels,
# built here: test_kernels_cuda, test_attention_cuda, test_convert_cuda,
# test_sample_cuda, test_score_cuda, test_gemv_cuda), the base
# projections' speed
# (bench_gemm_cuda), greedy
# conformance with adapters on some projections only,
# then `slora bench --batches` on the Llama-7B shape
# (random bf16 weights), prompt 256, 128 new tokens, decode step time at
# batch 1, 16, 64, 256, base model and 32 rank-16 q,k,v,o adapters, a
# step budget of 4096 tokens; the same at prompt 448 (decode contexts of
# mean 512, torch_decode.py's), and again with libslora_cuda_base.so
# where the carry has one (device-pack.sh BASE=...: the same call times
# both builds), and once more with each setting of $AB; then at batch 1
# and 64 with the step
# profile on ($SLORA_CUDA_PROFILE, which launches op by op: no decode
# graphs); then the plain PyTorch peer (torch_decode.py) in the same call.
# conform: SmolLM2 joined from its three parts (device_smollm2);
# `slora conform` (the same greedy requests alone and batched on cuda and
# on the CPU's exact f32 path, with each choice's logit margin) with and
# without adapters of mixed ranks, and on a 2-layer slice of the Llama-7B
# shape.
# Then sampled requests, the device's draws against the host's on the
# same GPU; greedy requests with penalties (sampled on the host from the
# rows the GPU copies back) against the CPU; the log-probabilities of
# the GPU's rows against the CPU's; and one sampled chat.
# Logs go to $OUT; the end is a short summary.

set -u
. "$(dirname "$0")/device-lib.sh"
cd "$(dirname "$0")/.."
OUT=${OUT:-build/device-out}
C=.carry
A=$C/a                      # or everything but SmolLM2 in one: .carry/t
[ -d $C/t ] && A=$C/t
S=/tmp/slora
mkdir -p "$OUT"

# this script appends its steps' output to $OUT/engine.log and prints a
# summary: a caller that sends stdout to that same file (`> $OUT/engine.log`)
# would have the summary truncate the log under it
if [ "$(readlink -f /proc/$$/fd/1)" = "$(readlink -f "$OUT/engine.log")" ]; then
    echo "device-engine.sh: stdout is $OUT/engine.log, which the script" \
         "writes itself; send stdout elsewhere" >&2
    exit 2
fi

MODE=${1:-bench}
PROMPT=${PROMPT:-256}       # prompt tokens of the speed runs
PROFILE=${PROFILE:-1}       # 0: no profiled runs
PEERS=${PEERS:-1}           # 0: bench without torch_decode.py
device_engine_env $PWD/$A

{
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
    echo "tree $(git rev-parse --short HEAD 2>/dev/null)"
    device_built_from $PWD/$A
    nproc
} | tee "$OUT/env.txt"

step() {
    local name=$1; shift
    local t0=$(date +%s)
    echo "== $name: $*" >> "$OUT/engine.log"
    timeout 240 "$@" >> "$OUT/engine.log" 2>&1
    local rc=$?
    echo "== $name: rc=$rc, $(( $(date +%s) - t0 )) s" \
        | tee -a "$OUT/engine.log"
    return $rc
}

# the carried test binaries named, unzipped into /tmp and made runnable
unpack() {
    local t
    for t in "$@"; do
        gunzip -c "$A/$t.gz" > "/tmp/$t" && chmod +x "/tmp/$t" || return 1
    done
}

# Qwen3's architecture on a tiny model (q and k heads RMS-normed before
# RoPE, heads of 128 over a hidden 512, 4 query heads a KV head)
mkmodel_qwen3() {
    $S mkmodel --out /tmp/q3.gguf --arch qwen3 --layers 2 --hidden 512 \
        --heads 8 --kv-heads 2 --head-dim 128 --ffn 1024 --vocab 4096 \
        --ctx 2048 --seed 7 > /dev/null
}

# greedy tokens on the GPU against the CPU's exact path, adapters of
# mixed ranks on every projection, on tiny models with groups of 3
# (SmolLM2-135M's heads), 4 (Qwen3's), 7 (Qwen2.5-7B's), 12 (Mistral
# Large 2's) and 16 (Llama 3.1 405B's on 8 GPUs) query heads a KV head,
# prompts of 300; then a 2-layer slice of NeMo's shape (groups of 4,
# heads of 128 over a hidden 5120)
conform_groups() {
    local m spec
    # name hidden heads kv-heads head-dim ffn seed
    for spec in "g3 576 9 3 64 1536 3" "g7 896 7 1 128 1024 4" \
                "g12 768 12 1 64 1536 5" "g16 1024 16 1 128 2048 6"; do
        set -- $spec
        $S mkmodel --out /tmp/$1.gguf --layers 2 --hidden $2 --heads $3 \
            --kv-heads $4 --head-dim $5 --ffn $6 --vocab 4096 --ctx 2048 \
            --seed $7 > /dev/null
    done
    mkmodel_qwen3
    for m in g3 g7 q3 g12 g16; do
        $S mkadapter --model /tmp/$m.gguf --out /tmp/ad$m --count 4 \
            --ranks 8,16,32,64 --targets q,k,v,o,gate,up,down --scale 0.3 \
            > /dev/null
        step "conform $m adapters" $S conform --model /tmp/$m.gguf \
            --device cuda --threads 16 --adapters /tmp/ad$m --requests 5 \
            --gen 32 --prompt-len 300
    done
    $S mkadapter --model random:mistral-nemo-12b,layers=2 --out /tmp/adn \
        --count 4 --ranks 8,16,32,64 --targets q,k,v,o,gate,up,down \
        --scale 0.3 > /dev/null
    step "conform nemo-2layer adapters" $S conform \
        --model random:mistral-nemo-12b,layers=2 --device cuda --threads 16 \
        --adapters /tmp/adn --requests 5 --gen 16
}

if [ "$MODE" = kernels ]; then
    # the kernels' conformance tests alone, for a call of little device
    # time: each kernel against its CPU twin
    unpack test_kernels_cuda test_attention_cuda test_convert_cuda \
        test_sample_cuda test_score_cuda test_gemv_cuda test_arena_cuda
    for t in arena kernels attention convert sample score gemv; do
        step "$t" /tmp/test_${t}_cuda
    done
    echo "kernels: $(grep -c '^ok' "$OUT/engine.log") ok," \
         "$(grep -c '^not ok' "$OUT/engine.log") not ok"
    grep '^not ok' "$OUT/engine.log" | head -5
    exit 0
fi

if [ "$MODE" = bench ]; then
    unpack test_kernels_cuda test_attention_cuda test_convert_cuda \
        test_sample_cuda test_score_cuda test_gemv_cuda bench_gemm_cuda \
        test_arena_cuda
    step "arena" /tmp/test_arena_cuda
    if [ -f $A/libslora_cuda_base.so ]; then
        # the same test against BASE's backend: what it finds there
        step "arena (BASE's backend)" env \
            SLORA_CUDA_LIB=$PWD/$A/libslora_cuda_base.so /tmp/test_arena_cuda
    fi
    step "kernels" /tmp/test_kernels_cuda
    step "attention" /tmp/test_attention_cuda
    step "conversions" /tmp/test_convert_cuda
    step "sampling" /tmp/test_sample_cuda
    step "scores" /tmp/test_score_cuda
    step "gemv" /tmp/test_gemv_cuda
    step "gemm" /tmp/bench_gemm_cuda
    echo "kernels: $(grep -c '^ok' "$OUT/engine.log") ok," \
         "$(grep -c '^not ok' "$OUT/engine.log") not ok"
    grep '^not ok' "$OUT/engine.log" | head -5
    # the same prompt's LoRA rows must be the same bits run after run:
    # sampled requests with adapters, the device's draws against the
    # host's over the same GPU's logits, on a 2-layer slice of the 7B
    # shape (prompts long enough for the shrink's split over K)
    $S mkadapter --model random:llama-7b,layers=2 --out /tmp/ad7s \
        --count 4 --ranks 8,16,32,64 --targets q,k,v,o,gate,up,down \
        --scale 0.3 > /dev/null
    step "conform 7b-2layer sampled adapters" $S conform \
        --model random:llama-7b,layers=2 --device cuda --ref cuda \
        --adapters /tmp/ad7s --requests 5 --gen 32 --sample 0.8
    # adapters on some projections only: the step launches LoRA for the
    # calls that have one (q and v of q,k,v; up of gate,up; down), none
    # for o, and must still match the CPU's exact path
    $S mkadapter --model random:llama-7b,layers=2 --out /tmp/ad7p \
        --count 4 --ranks 8,16,32,64 --targets q,v,up,down --scale 0.3 \
        > /dev/null
    step "conform 7b-2layer adapters on q,v,up,down" $S conform \
        --model random:llama-7b,layers=2 --device cuda --threads 16 \
        --adapters /tmp/ad7p --requests 5 --gen 16
    $S mkadapter --model random:llama-7b --out /tmp/ad7 --count 32 \
        --rank 16 --targets q,k,v,o > /dev/null
    step "bench 7b" $S bench --model random:llama-7b --device cuda \
        --adapters /tmp/ad7 --prompt-len $PROMPT --gen 128 --single 0 \
        --step-tokens 4096 --batches 1,16,64,256
    step "bench 7b ctx512" $S bench --model random:llama-7b --device cuda \
        --adapters /tmp/ad7 --prompt-len 448 --gen 128 --single 0 \
        --step-tokens 4096 --batches 1,16,64,256
    if [ -f $A/libslora_cuda_base.so ]; then
        step "bench 7b ctx512 base-lib" env \
            SLORA_CUDA_LIB=$PWD/$A/libslora_cuda_base.so $S bench \
            --model random:llama-7b --device cuda --adapters /tmp/ad7 \
            --prompt-len 448 --gen 128 --single 0 --step-tokens 4096 \
            --batches 1,16,64,256
    fi
    # AB="SLORA_CUDA_PDL=0 SLORA_CUDA_THIN=0": the same run once with each
    # setting, an A/B of a build's own switches in one call; a setting of
    # several variables joins them with commas (A=1,B=2)
    for ab in ${AB:-}; do
        step "bench 7b ctx512 $ab" env ${ab//,/ } $S bench \
            --model random:llama-7b --device cuda --adapters /tmp/ad7 \
            --prompt-len 448 --gen 128 --single 0 --step-tokens 4096 \
            --batches 1,16,64,256
    done
    for b in $([ "$PROFILE" = 1 ] && echo 1 64); do
        step "profile 7b batch $b" env SLORA_CUDA_PROFILE=1 $S bench \
            --model random:llama-7b --device cuda --adapters /tmp/ad7 \
            --prompt-len 256 --gen 128 --single 0 --step-tokens 4096 \
            --batches $b
    done
    if [ "$PEERS" = 1 ] && [ -f $A/torch_decode.py ]; then
        (cd $A && PYTHONUNBUFFERED=1 OUT=$OUT timeout 200 \
            python3 torch_decode.py) > "$OUT/torch_decode.log" 2>&1
        echo "torch_decode: rc=$?"
    fi
    echo
    grep -E "against|the drift|ALL EQUAL|PARTS|INERT|^adapters on" \
        "$OUT/engine.log"
    sed -n '/^# proj/,/^==/p' "$OUT/engine.log"
    sed -n '/^ *batch/,/^==/p' "$OUT/engine.log"
    grep -A13 "^cuda profile" "$OUT/engine.log"
    tail -9 "$OUT/torch_decode.log" 2>/dev/null
    exit 0
fi

if [ "$MODE" = ab ]; then
    # this build against libslora_cuda_base.so (device-pack.sh BASE=...),
    # alternated ROUNDS times at prompt AB_PROMPT (256: PEFT's shape), so
    # that a drift of the machine falls on both: decode step times, base
    # and with 32 rank-16 q,k,v,o adapters, at batch AB_BATCHES (1, 16
    # and 64), on AB_MODEL (llama-7b; a random:NAME shape); AB_LONG=L
    # gives each run's first request a prompt of L (one long context
    # among short ones). AB_ENV=VAR=value (several joined by commas)
    # makes "base" this build under that setting: a switch's A/B.
    M=${AB_MODEL:-llama-7b}
    BASE_ENV=SLORA_CUDA_LIB=$PWD/$A/libslora_cuda_base.so
    [ -n "${AB_ENV:-}" ] && BASE_ENV=${AB_ENV//,/ }
    $S mkadapter --model random:$M --out /tmp/ad-$M --count 32 \
        --rank 16 --targets q,k,v,o > /dev/null
    for i in $(seq ${ROUNDS:-3}); do
        for lib in base this; do
            step "ab $lib $i" env $([ $lib = base ] && echo $BASE_ENV) \
                $S bench --model random:$M --device cuda \
                --adapters /tmp/ad-$M --prompt-len ${AB_PROMPT:-256} \
                --gen 128 --single 0 --step-tokens 4096 \
                --batches ${AB_BATCHES:-1,16,64} \
                --long-prompt ${AB_LONG:-0}
        done
    done
    awk '/^== ab .*: env/ { run = $3 " " $4 } /^ +[0-9]+ +(0|32) / \
        { print run, $0 }' "$OUT/engine.log"
    exit 0
fi

if [ "$MODE" = skew ]; then
    # where a decode step goes when one context is long among short ones,
    # with adapters and without: the 7B shape, SKEW_BATCH (64) requests
    # all in flight, the first one's prompt each of SKEW_LONGS ("4096 0":
    # then even prompts, 256), the others 256, with SKEW_ADAPTERS ("0
    # 32") rank-16 q,k,v,o adapters, once under each setting of
    # SKEW_ENVS (graphed; op by op with the profile, $SLORA_CUDA_PROFILE;
    # graphs off; a setting of several variables joins them with commas),
    # each run's step log ($SLORA_STEP_LOG: which steps captured a graph,
    # each step's device time) in $OUT/steps-skew-LONG-ADAPTERS-I.csv,
    # I the setting's place in the list
    B=${SKEW_BATCH:-64}
    $S mkadapter --model random:llama-7b --out /tmp/ad7 --count 32 \
        --rank 16 --targets q,k,v,o > /dev/null
    for long in ${SKEW_LONGS:-4096 0}; do
        for ad in ${SKEW_ADAPTERS:-0 32}; do
            i=0
            for env in ${SKEW_ENVS:-SLORA_CUDA_GRAPHS=1 SLORA_CUDA_PROFILE=1 \
                                    SLORA_CUDA_GRAPHS=0}; do
                i=$((i + 1))
                step "skew long $long adapters $ad $env" env ${env//,/ } \
                    SLORA_STEP_LOG=$OUT/steps-skew-$long-$ad-$i.csv \
                    $S bench --model random:llama-7b --device cuda \
                    $([ $ad = 0 ] || echo --adapters /tmp/ad7) \
                    --prompt-len 256 --gen 128 --single 0 \
                    --step-tokens 4096 --requests $B --concurrency $B \
                    --long-prompt $long
            done
        done
    done
    grep -E "^== skew.*: env|^decode-only|^cuda profile|^  [a-z]|decode graph" \
        "$OUT/engine.log" | head -300
    exit 0
fi

if [ "$MODE" = kernel-times ]; then
    # where a decode step of PEFT's shape goes, kernel by kernel: the 7B
    # shape, 32 rank-16 q,k,v,o adapters, batch 64, prompt 256, 16 new
    # tokens, once as it runs (the full step's time: all 64 decoding)
    # and once under Nsight Compute, every kernel timed alone
    # (gpu__time_duration, no cache flush, clocks left alone), then
    # bench/kernel-times.py: the kernels' sum against the step, and the
    # kernels by their share.
    # Needs a machine where ncu reads the GPU's counters (Firecracker;
    # not gVisor: KINDS.md)
    $S mkadapter --model random:llama-7b --out /tmp/ad7 --count 32 \
        --rank 16 --targets q,k,v,o > /dev/null
    KT="$S bench --model random:llama-7b --device cuda --adapters /tmp/ad7
        --prompt-len 256 --gen 16 --single 0 --step-tokens 4096
        --batches 64"
    step "kernel-times plain" $KT
    NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu \
          /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
    step "kernel-times ncu" ${NCU:-ncu} --csv --metrics gpu__time_duration.sum \
        --cache-control none --clock-control none --graph-profiling node \
        --log-file "$OUT/ncu.csv" $KT
    ms=$(awk '/^== kernel-times plain: \// { on = 1 }
              /^== kernel-times plain: rc/ { on = 0 }
              on && $1 == 64 { printf "%s%s", sep, $9; sep = "," }' \
             "$OUT/engine.log")
    grep -E "^== kernel-times|^ +64 " "$OUT/engine.log"
    python3 bench/kernel-times.py "$OUT/ncu.csv" --step-ms "$ms" \
        | tee "$OUT/kernel-times.txt"
    exit 0
fi

if [ "$MODE" = heads-profile ]; then
    # where Mistral NeMo's decode step goes: the step profile
    # ($SLORA_CUDA_PROFILE, op by op, no decode graphs) at batch 1 and 64
    # with 32 rank-16 q,k,v,o adapters, beside the Llama-7B shape's at 64
    NEMO=random:mistral-nemo-12b
    $S mkadapter --model $NEMO --out /tmp/adn32 --count 32 --rank 16 \
        --targets q,k,v,o > /dev/null
    $S mkadapter --model random:llama-7b --out /tmp/ad7 --count 32 \
        --rank 16 --targets q,k,v,o > /dev/null
    for b in 1 64; do
        step "profile nemo-12b batch $b" env SLORA_CUDA_PROFILE=1 $S bench \
            --model $NEMO --device cuda --adapters /tmp/adn32 \
            --prompt-len 256 --gen 128 --single 0 --step-tokens 4096 \
            --batches $b
    done
    step "profile 7b batch 64" env SLORA_CUDA_PROFILE=1 $S bench \
        --model random:llama-7b --device cuda --adapters /tmp/ad7 \
        --prompt-len 256 --gen 128 --single 0 --step-tokens 4096 \
        --batches 64
    grep -E "^== |^batch|decode step|^# " "$OUT/engine.log" | head -120
    exit 0
fi

if [ "$MODE" = grouped ]; then
    # the decode attention kernel for groups of query heads a KV head:
    # the tensor-core kernel against the CUDA-core one
    # ($SLORA_CUDA_DECODE_MMA=0) in one call: the kernel tests and their
    # timings under each, greedy tokens against the CPU's exact path on
    # models with groups of 3 (SmolLM2-135M's heads), 4 (Qwen3's, NeMo's),
    # 7 (Qwen2.5-7B's), 12 (Mistral Large 2's) and 16 (Llama 3.1 405B's
    # on 8 GPUs), then NeMo's whole decode step with 32 rank-16 q,k,v,o
    # adapters, the two kernels alternated twice (BENCH=0: not)
    NEMO=random:mistral-nemo-12b
    unpack test_attention_cuda
    step "attention" /tmp/test_attention_cuda
    step "attention cuda-cores" env SLORA_CUDA_DECODE_MMA=0 \
        /tmp/test_attention_cuda
    conform_groups
    $S mkadapter --model $NEMO --out /tmp/adn32 --count 32 --rank 16 \
        --targets q,k,v,o > /dev/null
    for i in $([ "${BENCH:-1}" = 0 ] || echo 1 2); do
        for k in mma cores; do
            step "bench nemo-12b $k $i" env \
                SLORA_CUDA_DECODE_MMA=$([ $k = mma ] && echo 1 || echo 0) \
                $S bench --model $NEMO --device cuda --adapters /tmp/adn32 \
                --prompt-len ${PROMPT} --gen 128 --single 0 \
                --step-tokens 4096 --batches 1,16,64,256
        done
    done
    grep -E "^== |^not ok|^# (decode|prefill)|^# +[0-9]+ x|decode step" \
        "$OUT/engine.log" | head -150
    awk '/^== bench .*: env/ { run = $4 " " $5 } /^ +[0-9]+ +(0|32) / \
        { print run, $0 }' "$OUT/engine.log"
    exit 0
fi

if [ "$MODE" = attention-ab ]; then
    # the decode attention of this build against BASE's (device-pack.sh
    # BASE=...: test_attention_cuda_base and libslora_cuda_base.so) in
    # one call: the kernel tests and timings of the two alternated twice,
    # this build's under the CUDA-core path and ATT_ENVS too; greedy
    # tokens against the CPU (conform_groups, and the 7B shape's 2-layer
    # slice: one query head a KV head; CONFORM=0: not); then the 7B
    # shape's and NeMo's decode steps
    # with 32 rank-16 q,k,v,o adapters, the two builds alternated twice
    # (BENCH=0: not)
    unpack test_attention_cuda test_attention_cuda_base
    for i in 1 2; do
        step "attention base $i" /tmp/test_attention_cuda_base
        step "attention this $i" /tmp/test_attention_cuda
    done
    step "attention this cuda-cores" env SLORA_CUDA_DECODE_MMA=0 \
        /tmp/test_attention_cuda
    # ATT_ENVS: this build's tests again under each setting (several
    # variables joined with commas)
    for env in ${ATT_ENVS:-}; do
        step "attention this $env" env ${env//,/ } /tmp/test_attention_cuda
    done
    if [ "${CONFORM:-1}" = 1 ]; then
        conform_groups
        $S mkadapter --model random:llama-7b,layers=2 --out /tmp/ad7a \
            --count 4 --ranks 8,16,32,64 --targets q,k,v,o,gate,up,down \
            --scale 0.3 > /dev/null
        step "conform 7b-2layer adapters" $S conform \
            --model random:llama-7b,layers=2 --device cuda --threads 16 \
            --adapters /tmp/ad7a --requests 5 --gen 16 --prompt-len 600
    fi
    for m in llama-7b mistral-nemo-12b; do
        $S mkadapter --model random:$m --out /tmp/ad-$m --count 32 \
            --rank 16 --targets q,k,v,o > /dev/null
    done
    for i in $([ "${BENCH:-1}" = 0 ] || echo 1 2); do
        for m in llama-7b mistral-nemo-12b; do
            for lib in base this; do
                step "ab $m $lib $i" env $([ $lib = base ] \
                    && echo SLORA_CUDA_LIB=$PWD/$A/libslora_cuda_base.so) \
                    $S bench --model random:$m --device cuda \
                    --adapters /tmp/ad-$m --prompt-len ${PROMPT} --gen 128 \
                    --single 0 --step-tokens 4096 --batches 1,16,64,256
            done
        done
    done
    grep -E "^== |^not ok|^# (decode|prefill)|^# +[0-9]+ x|decode step" \
        "$OUT/engine.log" | head -250
    awk '/^== ab .*: env/ { run = $3 " " $4 " " $5 } /^ +[0-9]+ +(0|32) / \
        { print run, $0 }' "$OUT/engine.log"
    exit 0
fi

if [ "$MODE" = heads ]; then
    # a head size of its own (Mistral NeMo's shape: 32 heads of 128 over a
    # hidden size of 5120, 8 KV heads): q and the attention 4096 wide, o
    # reading 4096; greedy tokens on the GPU against the CPU's exact f32
    # path on a 2-layer slice, base and with adapters of mixed ranks on
    # every projection, then at TP=2 (two ranks sharing the GPU); then the
    # whole shape's decode steps with 32 rank-16 q,k,v,o adapters
    NEMO=random:mistral-nemo-12b
    unpack test_kernels_cuda
    step "kernels" /tmp/test_kernels_cuda
    grep -E '^not ok|head_rmsnorm' "$OUT/engine.log" | head -8
    # Qwen3's architecture (q and k heads RMS-normed before RoPE, heads of
    # 128 over a hidden 512): base, adapters on every projection, TP=2
    mkmodel_qwen3
    $S mkadapter --model /tmp/q3.gguf --out /tmp/adq3 --count 4 \
        --ranks 8,16,32,64 --targets q,k,v,o,gate,up,down --scale 0.3 \
        > /dev/null
    step "conform qwen3" $S conform --model /tmp/q3.gguf --device cuda \
        --threads 16 --requests 5 --gen 32 --prompt-len 64
    step "conform qwen3 adapters" $S conform --model /tmp/q3.gguf \
        --device cuda --threads 16 --adapters /tmp/adq3 --requests 5 \
        --gen 32 --prompt-len 64
    step "conform qwen3 adapters tp2" env SLORA_TP_SHARE_GPUS=1 $S conform \
        --model /tmp/q3.gguf --device cuda --tp 2 --threads 16 \
        --adapters /tmp/adq3 --requests 5 --gen 32 --prompt-len 64
    $S mkadapter --model $NEMO,layers=2 --out /tmp/adn --count 4 \
        --ranks 8,16,32,64 --targets q,k,v,o,gate,up,down --scale 0.3 \
        > /dev/null
    step "conform nemo-2layer base" $S conform --model $NEMO,layers=2 \
        --device cuda --threads 16 --requests 5 --gen 16
    step "conform nemo-2layer adapters" $S conform --model $NEMO,layers=2 \
        --device cuda --threads 16 --adapters /tmp/adn --requests 5 --gen 16
    step "conform nemo-2layer adapters tp2" env SLORA_TP_SHARE_GPUS=1 \
        $S conform --model $NEMO,layers=2 --device cuda --tp 2 \
        --threads 16 --adapters /tmp/adn --requests 5 --gen 16
    # Llama 3.1's RoPE scaling (rope_freqs): the GPU's angle table with
    # the divisors against the CPU's turns, prompts of 300 positions
    # past an original context of 256, heads of 128 over a hidden 256
    $S mkmodel --out /tmp/r3.gguf --layers 2 --hidden 256 --heads 4 \
        --kv-heads 2 --head-dim 128 --ffn 512 --vocab 4096 --ctx 2048 \
        --rope-llama3 256 --seed 5 > /dev/null
    step "conform rope-llama3" $S conform --model /tmp/r3.gguf \
        --device cuda --threads 16 --requests 5 --gen 32 --prompt-len 300
    $S mkadapter --model $NEMO --out /tmp/adn32 --count 32 --rank 16 \
        --targets q,k,v,o > /dev/null
    step "bench nemo-12b" $S bench --model $NEMO --device cuda \
        --adapters /tmp/adn32 --prompt-len 256 --gen 128 --single 0 \
        --step-tokens 4096 --batches 1,16,64
    grep -E "^== |^conform|tokens equal|differ|^batch|decode step" \
        "$OUT/engine.log" | head -60
    exit 0
fi

if [ "$MODE" = scale ]; then
    # S1 (rank 8 on q,k,v,o) at n = 5 .. 2000 adapters, made in memory
    # (random:n=...): saturated throughput, 256 requests in flight, each
    # adapter in turn; then S2's mixed ranks. As in the paper, adapters
    # are in host memory first (--preload): 2000 S1 images are 34 GB of
    # bf16 (the CUDA backend's host tier) beside the model's 27 GB of
    # f32, so HOST_CACHE_MIB (72 GiB) holds them all on the 128 GiB
    # machine, and S2's 2000 (126 GB) in part
    for ranks in ${RANKSETS:-8 64+32+16+8}; do
        for n in ${NS:-5 100 1000 2000}; do
            step "scale n=$n ranks=$ranks" $S bench --model random:llama-7b \
                --device cuda --prompt-len $PROMPT --gen 128 --single 0 \
                --step-tokens 4096 --requests 512 --concurrency 256 \
                --preload 1 --host-cache ${HOST_CACHE_MIB:-73728} \
                --adapters "random:n=$n,ranks=$ranks,targets=q+k+v+o"
        done
    done
    grep -E "^== scale|^batched|^preload" "$OUT/engine.log"
    exit 0
fi

device_smollm2 /tmp/smollm2.gguf || exit 1

$S mkadapter --model /tmp/smollm2.gguf --out /tmp/sad --count 4 \
    --ranks 8,16,32,64 --targets q,k,v,o,gate,up,down --scale 0.3 > /dev/null
$S mkadapter --model random:llama-7b,layers=2 --out /tmp/ad7s --count 4 \
    --rank 16 --targets q,k,v,o > /dev/null

step "conform smollm2 base" $S conform --model /tmp/smollm2.gguf \
    --device cuda --threads 16 --requests 5 --gen 32
step "conform smollm2 adapters" $S conform --model /tmp/smollm2.gguf \
    --device cuda --threads 16 --adapters /tmp/sad --requests 5 --gen 32
step "conform 7b-2layer adapters" $S conform \
    --model random:llama-7b,layers=2 --device cuda --threads 16 \
    --adapters /tmp/ad7s --requests 5 --gen 16
# sampled: drawn on the device against the host's draws over the same
# logits (the reference on the same GPU brings every row's logits back)
step "conform smollm2 sampled" $S conform --model /tmp/smollm2.gguf \
    --device cuda --ref cuda --requests 5 --gen 32 --sample 0.8
step "conform smollm2 sampled adapters" $S conform \
    --model /tmp/smollm2.gguf --device cuda --ref cuda --adapters /tmp/sad \
    --requests 5 --gen 32 --sample 0.8
# penalties: every request sampled on the host from the logits row the
# GPU copies back, greedy after OpenAI's and the repetition penalties
step "conform smollm2 penalties adapters" $S conform \
    --model /tmp/smollm2.gguf --device cuda --threads 16 --adapters /tmp/sad \
    --requests 5 --gen 32 --penalties 1,0.5,1.2
# log-probabilities from the GPU's rows against the CPU's exact ones
step "conform smollm2 logprobs adapters" $S conform \
    --model /tmp/smollm2.gguf --device cuda --threads 16 --adapters /tmp/sad \
    --requests 5 --gen 32 --logprobs 1
step "generate smollm2 sampled" $S generate --model /tmp/smollm2.gguf \
    --device cuda --chat "Write a haiku about nginx." --temperature 0.8 \
    --top-p 0.95 --seed 3 --max-tokens 48

echo
summary="^ +[0-9]+ +(none|yes)|against|the drift|ALL EQUAL|PARTS|INERT"
grep -E "$summary|^adapters on|error|failed" "$OUT/engine.log" | head -80
sed -n '/^== generate smollm2 sampled:/,/^== generate/p' "$OUT/engine.log"
