#!/bin/bash
# bench/device-tp.sh: tensor parallelism on the 2-GPU machine, over what
# `bash bench/device-pack.sh one` stages in .carry/t.
#
#   bash bench/device-tp.sh check     conformance and step times
#   bash bench/device-tp.sh ablate    the same steps without LoRA's sums,
#                                     through NCCL only, and profiled
#   bash bench/device-tp.sh serve     S2 workload, 13B through nginx
#   bash bench/device-tp.sh all       the three (check without t/kernels)
#   bash bench/device-tp.sh close     TP=2 over NCCL only, which must exit
#   bash bench/device-tp.sh fail      TP=2 whose rank 1 fails a step past
#                                     the ranks' meeting: the run must
#                                     stop at once, not hang (sharing the
#                                     GPU on one; over NCCL, then the
#                                     one-shot kernel, on two)
#   bash bench/device-tp.sh full      TP=2 (ranks sharing the GPU on
#                                     one) with 64 rank-64 adapters on
#                                     all seven projections, 20 GB of
#                                     them in a pool of 24: every step
#                                     must pass, adapters past the
#                                     pool's first half among them
#   bash bench/device-tp.sh seventy   the Llama-70B shape at TP=2, 4, 8
#                                     (those the machine's GPUs allow)
#   bash bench/device-tp.sh shared    TP=4 and 8 with ranks sharing the
#                                     GPUs there are: tokens, not speed
#                                     (TPS= the TPs; LOOKUP=1: the TP
#                                     side drafts, conform --lookup 1;
#                                     GEN= tokens a request, 32)
#
# check: the one-shot all-reduce's test and timings (t/kernels); `slora
# conform` of TP=2 against TP=1 on the Llama-7B shape with adapters of
# mixed ranks on all seven projections (5 requests x 32 tokens, alone
# and batched); decode step times at batch 1 and 64, base and with 32
# rank-16 q,k,v,o adapters, at TP=1 and TP=2.
# ablate: TP=2 again without LoRA's sums (SLORA_TP_LORA_COMM=0, the
# ablation), with every sum through NCCL (SLORA_TP_ALLREDUCE=nccl), and
# profiled op by op.
# serve: S2 (ranks 64/32/16/8 on q,k,v,o, n = 100) saturated at TP=1 and
# TP=2; then the Llama-13B shape at TP=2 served by nginx (SmolLM2's
# tokenizer from tok.gguf), with chat requests streamed.
# seventy: the Llama-70B shape (80 layers, hidden 8192, 64 heads over 8
# KV heads, FFN 28672, random weights, which the CUDA backend makes on
# each GPU, its shard only: no host copy, 70 GB of bf16 a GPU at TP=2)
# over the GPUs of the machine:
# greedy conformance of each TP against TP=1 on the shape cut to 8
# layers, which one GPU holds, with adapters of mixed ranks on all seven
# projections; decode step times at batch 1, 16 and 64 with 100 rank-16
# q,k,v,o adapters at each TP (one model load each, seconds now), for
# the scaling from 2 to 4 and 8 GPUs; then S2's ranks over 100 adapters
# saturated (TPS="2 4 8" by default, those the GPUs allow; S2RUN=0
# leaves S2 out, for a call short of device time).
# Logs under $OUT; the end of each mode is a short summary.

set -u
. "$(dirname "$0")/device-lib.sh"
cd "$(dirname "$0")/.."
OUT=${OUT:-build/device-out}
T=$PWD/.carry/t
S=/tmp/slora
mkdir -p "$OUT" /tmp/lib
MODE=${1:-check}
if [ "$MODE" = all ]; then            # the three in one call
    ALLREDUCE=0 bash "$0" check || exit 1
    bash "$0" ablate
    bash "$0" serve
    exit 0
fi

[ -x $S ] || { gunzip -c $T/slora.gz > $S && chmod +x $S; }
device_nginx_bins $T || exit 1
for f in $T/lib/*.gz; do
    [ -f "/tmp/lib/$(basename "$f" .gz)" ] \
        || gunzip -c "$f" > "/tmp/lib/$(basename "$f" .gz)"
done

py_lib() {
    local py="import nvidia.$1, os; "
    py=$py"print(os.path.dirname(nvidia.$1.__file__) + '/lib')"
    python3 -c "$py" 2>/dev/null
}
export LD_LIBRARY_PATH=$(py_lib cublas):$(py_lib nccl):${LD_LIBRARY_PATH:-}
export LD_LIBRARY_PATH=$T:/usr/local/cuda/lib64:$LD_LIBRARY_PATH
export SLORA_CUDA_LIB=$T/libslora_cuda.so
export NCCL_NVLS_ENABLE=0

{
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
    nvidia-smi topo -m 2>/dev/null | head -4
    echo "tree $(git rev-parse --short HEAD 2>/dev/null)"
    device_built_from $T
    nproc
    ls $(py_lib nccl) 2>/dev/null | head -2
} | tee "$OUT/env.txt"

step() {
    local name=$1; shift
    local t0=$(date +%s)
    echo "== $name: $*" >> "$OUT/tp.log"
    timeout ${STEP_TIMEOUT:-90} "$@" >> "$OUT/tp.log" 2>&1
    local rc=$?
    echo "== $name: rc=$rc, $(( $(date +%s) - t0 )) s" | tee -a "$OUT/tp.log"
    return $rc
}

# the lines of `slora conform` that give its requests' verdicts
VERDICTS='^(request|[0-9a-z]+ on|ALL|PARTS| +[0-9]+ +(none|yes))'

M7=random:llama-7b
MIX="random:n=4,ranks=8+16+32+64,targets=q+k+v+o+gate+up+down,scale=0.3"
S16="random:n=32,ranks=16,targets=q+k+v+o"

if [ "$MODE" = check ]; then
    if [ "${ALLREDUCE:-1}" = 1 ]; then
        gunzip -c $T/test_allreduce_cuda.gz > /tmp/test_allreduce_cuda
        chmod +x /tmp/test_allreduce_cuda
        step "allreduce" /tmp/test_allreduce_cuda --bench
        echo "allreduce: $(grep -c '^ok' "$OUT/tp.log") ok," \
             "$(grep -c '^not ok' "$OUT/tp.log") not ok"
        grep '^not ok' "$OUT/tp.log" | head -5
    fi

    for tp in 2 1; do
        if ! step "steps tp$tp" $S bench --model $M7 --device cuda --tp $tp \
            --adapters "$S16" --prompt-len 256 --gen 128 --single 0 \
            --step-tokens 4096 --batches 1,64 && [ $tp = 2 ]; then
            tail -20 "$OUT/tp.log"
            exit 1
        fi
    done

    STEP_TIMEOUT=150 step "conform 7b tp2 vs tp1" $S conform --model $M7 \
        --device cuda --tp 2 --ref cuda --ref-tp 1 --adapters "$MIX" \
        --requests 5 --gen 32

    echo
    grep -E "$VERDICTS|margin|drift" "$OUT/tp.log" | head -20
    grep -E "^== steps|^ *batch|^ +(1|64) " "$OUT/tp.log"
    grep -i -E "^ *[0-9]+ (KB|MB)|bytes" "$OUT/tp.log" | head -12
    exit 0
fi

if [ "$MODE" = close ]; then            # an engine over NCCL exits
    step "steps tp2 NCCL only" env SLORA_TP_ALLREDUCE=nccl $S bench \
        --model $M7 --device cuda --tp 2 --adapters "$S16" --prompt-len 256 \
        --gen 64 --single 0 --step-tokens 4096 --batches 1
    exit $?
fi

if [ "$MODE" = full ]; then             # adapters in every page of the pool
    [ "$(nvidia-smi -L | wc -l)" -ge 2 ] || export SLORA_TP_SHARE_GPUS=1
    A64="random:n=64,ranks=64,targets=q+k+v+o+gate+up+down"
    bad=0
    for tp in 1 2; do
        STEP_TIMEOUT=300 step "tp$tp adapters over the whole pool" $S bench \
            --model $M7 --device cuda --tp $tp --adapters "$A64" \
            --preload 1 --pool 24576 --requests 64 --concurrency 16 \
            --prompt-len 64 --gen 16 --single 0 --batches 16 || bad=1
    done
    grep -E "^== tp|outside the arena|failed" "$OUT/tp.log" | head -12
    exit $bad
fi

if [ "$MODE" = fail ]; then             # a rank's failure stops its peers
    GPUS=$(nvidia-smi -L | wc -l)
    hows="shared"
    [ "$GPUS" -ge 2 ] && hows="nccl one-shot"
    bad=0
    for how in $hows; do
        t0=$(date +%s)
        STEP_TIMEOUT=120 step "tp2 rank 1 fails step 3 ($how)" env \
            SLORA_CUDA_TP_FAIL=1:3 \
            $([ $how = shared ] && echo SLORA_TP_SHARE_GPUS=1) \
            $([ $how = nccl ] && echo SLORA_TP_ALLREDUCE=nccl) \
            $S bench --model $M7 --device cuda --tp 2 --adapters "$S16" \
            --prompt-len 2048 --gen 16 --single 0 --step-tokens 8192 \
            --batches 8
        rc=$?
        secs=$(( $(date +%s) - t0 ))
        # a step failed and the run stopped (1), within seconds, not
        # when the timeout killed it (124)
        if [ $rc = 1 ] && [ $secs -lt 60 ]; then
            echo "fail $how: stopped in $secs s: ok"
        else
            echo "fail $how: rc=$rc after $secs s: NOT OK"
            bad=1
        fi
    done
    grep -E "failed on cue|middle of the step|a step failed" "$OUT/tp.log" \
        | head -12
    exit $bad
fi

if [ "$MODE" = ablate ]; then
    step "steps tp2 no LoRA sums" env SLORA_TP_LORA_COMM=0 $S bench \
        --model $M7 --device cuda --tp 2 --adapters "$S16" --prompt-len 256 \
        --gen 128 --single 0 --step-tokens 4096 --batches 1,64
    step "steps tp2 NCCL only" env SLORA_TP_ALLREDUCE=nccl $S bench \
        --model $M7 --device cuda --tp 2 --adapters "$S16" --prompt-len 256 \
        --gen 128 --single 0 --step-tokens 4096 --batches 1,64
    for b in 1 64; do
        step "profile tp2 batch $b" env SLORA_CUDA_PROFILE=1 $S bench \
            --model $M7 --device cuda --tp 2 --adapters "$S16" \
            --prompt-len 256 --gen 64 --single 0 --step-tokens 4096 \
            --batches $b
    done

    echo
    grep -E "^== steps|^ *batch|^ +(1|64) " "$OUT/tp.log"
    grep -E "^== profile|^cuda profile|all-reduce|LoRA|GEMM|attention" \
        "$OUT/tp.log" | head -40
    exit 0
fi

if [ "$MODE" = serve ]; then
    S2="random:n=100,ranks=64+32+16+8,targets=q+k+v+o"
    for tp in 1 2; do
        step "S2 tp$tp" $S bench --model $M7 --device cuda --tp $tp \
            --adapters "$S2" --prompt-len 256 --gen 128 --single 0 \
            --step-tokens 4096 --requests 512 --concurrency 256
    done
    grep -E "^== S2|^batched|^steps|^decode-only" "$OUT/tp.log"

    P=/tmp/ngx-tp
    mkdir -p $P/conf $P/logs $P/tmp
device_nginx_conf $P/conf/nginx.conf $T/ngx_http_slora_module.so 1024 <<CONF
    access_log off;
    slora_engine model=random:llama-13b,vocab=49152 tokenizer=$T/tok.gguf
                 device=cuda tensor_parallel=2 cuda_lib=$T/libslora_cuda.so
                 max_running=64 max_batch_tokens=4096 max_ctx=2048;
    slora_adapters dir=random:n=200,ranks=64+32+16+8,targets=q+k+v+o
                   host_cache=16g;
    server {
        listen 127.0.0.1:18091;
        location /v1/ { slora_api openai; }
        location = /status { slora_status; }
    }
CONF
    LD_LIBRARY_PATH=/tmp/lib:$LD_LIBRARY_PATH $T/nginx -p $P \
        -e logs/error.log -c conf/nginx.conf &
    pid=$!
    timeout 150 python3 bench/chat-stream.py http://127.0.0.1:18091 2>&1 \
        | tee "$OUT/tp-chat.txt"
    curl -s http://127.0.0.1:18091/status | head -c 1500 > "$OUT/tp-status.json"
    kill -QUIT $pid
    wait $pid
    cp $P/logs/error.log "$OUT/nginx-tp-error.log"
    grep -E "tensor parallel|emerg|alert|crit" $P/logs/error.log | head -5
    exit 0
fi

if [ "$MODE" = seventy ]; then
    M70=random:llama-70b
    GPUS=$(nvidia-smi -L | wc -l)
    A16="random:n=100,ranks=16,targets=q+k+v+o"
    S2="random:n=100,ranks=64+32+16+8,targets=q+k+v+o"
    tps=
    for tp in ${TPS:-2 4 8}; do
        [ "$tp" -le "$GPUS" ] && tps="$tps $tp"
    done
    [ -n "$tps" ] || { echo "seventy: $GPUS GPU(s), TP=2 needs 2"; exit 1; }

    for tp in $tps; do
        STEP_TIMEOUT=240 step "conform 70b-8layer tp$tp vs tp1" $S conform \
            --model $M70,layers=8 --device cuda --tp $tp --ref cuda \
            --ref-tp 1 --adapters "$MIX" --requests 5 --gen 32
    done
    for tp in $tps; do
        STEP_TIMEOUT=420 step "steps 70b tp$tp" $S bench --model $M70 \
            --device cuda --tp $tp --adapters "$A16" --prompt-len 256 \
            --gen 64 --single 0 --step-tokens 4096 --batches 1,16,64
    done
    for tp in $([ "${S2RUN:-1}" = 1 ] && echo $tps); do
        STEP_TIMEOUT=420 step "S2 70b tp$tp" $S bench --model $M70 \
            --device cuda --tp $tp --adapters "$S2" --prompt-len 256 \
            --gen 128 --single 0 --step-tokens 4096 --requests 512 \
            --concurrency 256 --preload 1
    done

    echo
    grep -E "$VERDICTS|margin|drift" "$OUT/tp.log" | head -30
    grep -E "^== (steps|S2)|^ *batch|^ +(1|16|64) |^batched|^decode-only" \
        "$OUT/tp.log"
    exit 0
fi

if [ "$MODE" = shared ]; then
    # TP=4 and 8 on the GPUs there are, ranks sharing them
    # (SLORA_TP_SHARE_GPUS=1): the split's tokens against TP=1 and TP=2
    # on the 70B shape cut to 8 layers, which one GPU holds. No speed:
    # ranks on one GPU take turns on it
    export SLORA_TP_SHARE_GPUS=1
    for tp in ${TPS:-4 8}; do
        for ref in 1 2; do
            STEP_TIMEOUT=300 step \
                "conform 70b-8layer tp$tp (shared) vs tp$ref" \
                $S conform --model random:llama-70b,layers=8 --device cuda \
                --tp $tp --ref cuda --ref-tp $ref --adapters "$MIX" \
                --requests 5 --gen ${GEN:-32} ${LOOKUP:+--lookup 1}
        done
    done

    echo
    grep -E "^== conform|tensor parallel|$VERDICTS|drift|^lookup" \
        "$OUT/tp.log" | head -80
    exit 0
fi

echo "usage: bench/device-tp.sh" \
     "check|ablate|serve|all|close|full|fail|seventy|shared"
exit 1
