#!/bin/bash
# bench/device-slo.sh: the paper's serving experiment through nginx on the
# GPU: the Llama-7B shape (random bf16 weights, SmolLM2's tokenizer),
# S2's adapters (n = 1000, ranks 64/32/16/8 in turn on q, k, v, o, random
# weights made in memory), schedule=slo with the paper's 6 s SLO;
# bench/loadgen sends the paper's workload (alpha 1, cv 1, lengths in
# [8, 512)) at a sweep of rates and writes throughput and attainment
# against rate; then `slora replay` plays each rate's very trace (from
# `bench/loadgen gen`, same seed) against the engine alone, with the same
# scheduler, SLO, pool and host tier, the rates in the same order on one
# engine as the server saw them (what one rate leaves in the pool and
# the host tier is there for the next, on both paths): the difference is
# the cost of the HTTP path.
#
#   bash bench/device-slo.sh        (after bench/device-engine.sh's two
#                                    calls, with .carry/c carried)
#
# Environment (defaults): RATES="2,4,8,16" DURATION=60 N=1000
# MODEL=random:llama-7b,vocab=49152 DEVICE=cuda
# HOST_CACHE_MIB=65536 (the server and the engine-only runs both preload
# that much of the catalog into host memory, as the paper's runs); on a
# machine without a GPU, MODEL=random:smollm2-135m,layers=2 DEVICE=cpu
# RATES=2 DURATION=10 N=20 (and TOKENIZER, NGINX_BIN, MODULE,
# SLORA pointing at this tree's) runs the same path small: a check of
# the script, no figures.
# Results under $OUT: results.json per rate, rate-sweep.png,
# latency-cdf.png, nginx's error log, engine-only.txt (a report a rate).
# REPLAY_ONLY=1 runs the engine-only replays alone. Both paths' engines
# log their steps ($SLORA_STEP_LOG): steps-nginx.csv and
# steps-replay.csv, every rate in turn; `python3 bench/steps.py` on both
# says where each engine's time went, window by window.

set -u
. "$(dirname "$0")/device-lib.sh"
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/build/device-out}
C=$PWD/.carry
P=/tmp/ngx-slo
RATES=${RATES:-2,4,8,16}
DURATION=${DURATION:-60}
N=${N:-1000}
MODEL=${MODEL:-random:llama-7b,vocab=49152}
DEVICE=${DEVICE:-cuda}
HOST_CACHE_MIB=${HOST_CACHE_MIB:-65536}   # both preload what fits
ADAPTERS="random:n=$N,ranks=64+32+16+8,targets=q+k+v+o"
K=$C/c                      # nginx, its module and libraries
A=$C/a
if [ -d $C/t ]; then        # bench/device-pack.sh one
    K=$C/t
    A=$C/t
    TOKENIZER=${TOKENIZER:-$C/t/tok.gguf}
fi
TOKENIZER=${TOKENIZER:-/tmp/smollm2.gguf}
[ -d $K ] && { device_nginx_bins $K || exit 1; }
NGINX_BIN=${NGINX_BIN:-$K/nginx}
MODULE=${MODULE:-$K/ngx_http_slora_module.so}
SLORA=${SLORA:-/tmp/slora}           # bin/slora on a machine without a GPU
mkdir -p "$OUT" $P/conf $P/logs $P/tmp

if [ "$DEVICE" = cuda ]; then
    [ -f "$TOKENIZER" ] || device_smollm2 "$TOKENIZER" || exit 1
    [ -x "$SLORA" ] || { gunzip -c $A/slora.gz > "$SLORA"; chmod +x "$SLORA"; }
    mkdir -p /tmp/lib
    for f in $K/lib/*.gz; do
        [ -f "$f" ] && gunzip -c "$f" > "/tmp/lib/$(basename "$f" .gz)"
    done
    LIBS=$K/lib:/tmp/lib:$A:/usr/local/cuda/lib64:$(device_cublas_dir)
    GPU="device=cuda cuda_lib=$A/libslora_cuda.so"
    export LOADGEN_DEPS=system           # no route to PyPI there
else
    LIBS=
    GPU="device=cpu threads=2"
fi

# the engine process runs as nginx's user, who may not reach $OUT
STEPS=$P/steps-nginx.csv
# the prefix cache off unless PREFIX_CACHE=on: the figures are of
# prompts computed, as they were before it
device_nginx_conf $P/conf/nginx.conf $MODULE 4096 \
    "env SLORA_STEP_LOG=$STEPS;" <<CONF
    access_log off;
    slora_engine model=$MODEL tokenizer=$TOKENIZER $GPU slots=4096
                 max_running=256 max_batch_tokens=4096 max_ctx=1100
                 max_tokens=600 schedule=slo slo_ttft=6s
                 prefix_cache=${PREFIX_CACHE:-off};
    slora_adapters dir=$ADAPTERS host_cache=${HOST_CACHE_MIB}m preload=on;
    server {
        listen 127.0.0.1:18090 backlog=4096;
        location /v1/ { slora_api openai; }
        location = /status { slora_status; }
    }
CONF

if [ "${REPLAY_ONLY:-0}" != 1 ]; then
    rm -f $STEPS && touch $STEPS && chmod 666 $STEPS
    LD_LIBRARY_PATH=$LIBS $NGINX_BIN -p $P -e logs/error.log \
        -c conf/nginx.conf &
    pid=$!

    NGINX_PID=$pid python3 - <<'PY' || { wait $pid; exit 1; }
import json, os, sys, time, urllib.request
# the engine is ready once the model is loaded and the host tier filled;
# an nginx that exits (a bad configuration) ends the wait at once
for i in range(1200):
    try:
        with open("/proc/%s/stat" % os.environ["NGINX_PID"]) as f:
            gone = f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        gone = True
    if gone:
        sys.exit("nginx exited before it was ready")
    try:
        st = json.load(urllib.request.urlopen("http://127.0.0.1:18090/status",
                                              timeout=2))
        if st["engine"]["ready"]:
            break
    except Exception:
        pass
    time.sleep(0.5)
PY

    python3 bench/loadgen run --url http://127.0.0.1:18090 -n "$N" --alpha 1 \
        --cv 1 --rates "$RATES" --duration "$DURATION" --input-range 8,512 \
        --output-range 8,512 --seed 42 --adapter-names 'r{i:04d}' \
        --slo-ttft 6 --out "$OUT/slo" -q
    echo "loadgen: rc=$?"

    kill -QUIT $pid
    wait $pid
    cp $P/logs/error.log "$OUT/nginx-slo-error.log"
    cp $STEPS "$OUT/steps-nginx.csv"
fi

# the engine alone: each rate's trace, in the server's order, on one
# engine with the server's scheduler and limits
traces=()
for rate in ${RATES//,/ }; do
    python3 bench/loadgen gen -n "$N" --alpha 1 --cv 1 --rate "$rate" \
        --duration "$DURATION" --input-range 8,512 --output-range 8,512 \
        --seed 42 --adapter-names 'r{i:04d}' --out "$P/trace-$rate.csv" \
        > /dev/null
    traces+=(--trace "$P/trace-$rate.csv")
done
rm -f "$OUT/steps-replay.csv"
LD_LIBRARY_PATH=$LIBS SLORA_CUDA_LIB=$A/libslora_cuda.so \
    SLORA_STEP_LOG=$OUT/steps-replay.csv $SLORA replay \
    --model "$MODEL" --device "${DEVICE%% *}" --adapters "$ADAPTERS" \
    "${traces[@]}" --schedule slo --slo-ttft 6 \
    --max-running 256 --step-tokens 4096 --max-ctx 1100 \
    --preload 1 --host-cache $HOST_CACHE_MIB 2>&1 \
    | tee "$OUT/engine-only.txt"

[ -f "$OUT/slo/results.json" ] \
    && python3 bench/loadgen table --markdown "$OUT/slo/results.json"

