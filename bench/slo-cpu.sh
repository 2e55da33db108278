#!/usr/bin/env bash
# slo-cpu.sh: SLO attainment under bursty overload, one run per scheduling
# policy (FCFS, LCFS, SLO early abort), on the CPU, sized for CI.
#
# The paper's Figure 10 experiment, scaled down: one nginx with the slora
# module serves a small random Llama (4 layers, 256 wide, SmolLM2's
# tokenizer) and N_ADAPTERS adapters with S2's mixed ranks {64, 32, 16, 8};
# bench/loadgen replays the paper's synthetic workload (alpha 1, Gamma
# arrivals with cv = CV, lengths uniform in INPUT and OUTPUT) at RATE for
# DURATION seconds, the same trace (same seed) for every policy, with a
# first-token SLO of SLO_MS.  A fresh server is started for each policy;
# only the policy parameter of slora_engine changes between them.  The
# one idea to know: the load is an overload relative to this machine, so
# RATE defaults to OVERLOAD x the capacity measured first (a saturating
# burst under FCFS: completed requests / wall time, the paper's Table 3
# throughput); set RATE to compare runs across commits.
#
# Prints one table (attainment, throughput, TTFT p50/p99 per policy) and
# writes every run's results.json and the plots under OUT (default
# build/bench/slo-cpu/).  Figures only, no assertion.
#
# usage: bench/slo-cpu.sh   (environment, with defaults:
#   POLICIES="fcfs lcfs slo"  RATE=(measured)  OVERLOAD=1.5  CV=4
#   DURATION=40  SLO_MS=1500  N_ADAPTERS=20  INPUT=8,256  OUTPUT=8,128
#   THREADS=1  MAX_RUNNING=16  SEED=42  PORT=18179  OUT=build/bench/slo-cpu
#   POLICY_PARAM='schedule=%s'  SLO_PARAM='slo_ttft=%sms')
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/device-lib.sh       # device_nginx_conf and device_nginx_stop
ROOT=$PWD
POLICIES=${POLICIES:-"fcfs lcfs slo"}
RATE=${RATE:-}
OVERLOAD=${OVERLOAD:-1.5}
CV=${CV:-4}
DURATION=${DURATION:-40}
SLO_MS=${SLO_MS:-1500}
N_ADAPTERS=${N_ADAPTERS:-20}
INPUT=${INPUT:-8,256}
OUTPUT=${OUTPUT:-8,128}
THREADS=${THREADS:-1}
MAX_RUNNING=${MAX_RUNNING:-16}
SEED=${SEED:-42}
PORT=${PORT:-18179}
OUT=${OUT:-$ROOT/build/bench/slo-cpu}
# how slora_engine names a policy, and the SLO the slo policy aborts by
POLICY_PARAM=${POLICY_PARAM:-'schedule=%s'}
SLO_PARAM=${SLO_PARAM:-'slo_ttft=%sms'}
NGINX=${NGINX:-/usr/sbin/nginx}
LOADGEN=$ROOT/bench/loadgen
TOKENIZER=models/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL=$ROOT/t/data/gen/bench-slo-l4-h256.gguf
ADAPTERS=$ROOT/t/data/gen/bench-slo-adapters-$N_ADAPTERS
SLO_S=$(awk "BEGIN { print $SLO_MS / 1000 }")

make -s lib cli module fetch-model >/dev/null
mkdir -p "$OUT" t/data/gen

if [ ! -s "$MODEL" ]; then
    bin/slora mkmodel --out "$MODEL.tmp" --tokenizer "$TOKENIZER" \
        --layers 4 --hidden 256 --heads 4 --kv-heads 2 --ffn 512 \
        --ctx 2048 --seed 11 >/dev/null
    mv "$MODEL.tmp" "$MODEL"
fi

if [ ! -f "$ADAPTERS/.complete" ]; then
    rm -rf "$ADAPTERS"
    mkdir -p "$ADAPTERS"
    ranks=(64 32 16 8)
    for ((i = 0; i < N_ADAPTERS; i++)); do
        bin/slora mkadapter --model "$MODEL" \
            --out "$ADAPTERS/$(printf 'a%03d' "$i")" \
            --rank "${ranks[i % 4]}" --seed $((i + 1)) >/dev/null
    done
    touch "$ADAPTERS/.complete"
fi

pid=
engine=

stop_server() {
    [ -n "$pid" ] || return 0
    device_nginx_stop "$pid" "$engine"
    pid=
    engine=
}
trap stop_server EXIT

# start_server POLICY: a fresh prefix and nginx for that policy
start_server() {
    local policy=$1 prefix=$OUT/$1/server params
    # shellcheck disable=SC2059
    params=$(printf "$POLICY_PARAM" "$policy")
    if [ "$policy" = slo ]; then
        # shellcheck disable=SC2059
        params="$params $(printf "$SLO_PARAM" "$SLO_MS")"
    fi
    rm -rf "$prefix"
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
    # the prefix cache off unless PREFIX_CACHE=on: the figures are of
    # prompts computed, as they were before it
    NGINX_WORKERS=1 device_nginx_conf "$prefix/conf/nginx.conf" \
        "$ROOT/build/nginx/objs/ngx_http_slora_module.so" 4096 <<EOF
    access_log off;
    slora_engine model=$MODEL device=cpu threads=$THREADS slots=1024
                 max_running=$MAX_RUNNING max_ctx=2048 max_tokens=1024
                 prefix_cache=${PREFIX_CACHE:-off} $params;
    slora_adapters dir=$ADAPTERS;
    server {
        listen 127.0.0.1:$PORT;
        location /v1/ { slora_api openai; slora_deadline 600s; }
        location = /status { slora_status; }
    }
EOF
    "$NGINX" -p "$prefix/" -c "$prefix/conf/nginx.conf" \
        -e "$prefix/logs/error.log" >"$prefix/logs/stderr.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "slo-cpu: nginx ($policy) exited:" >&2
            tail -5 "$prefix/logs/error.log" "$prefix/logs/stderr.log" >&2
            exit 1
        fi
        st=$(curl -s "http://127.0.0.1:$PORT/status" || true)
        if echo "$st" | grep -q '"ready":true'; then
            engine=$(echo "$st" \
                     | sed -n 's/.*"engine":{"pid":\([0-9]*\).*/\1/p')
            return 0
        fi
        sleep 0.1
    done
    echo "slo-cpu: nginx ($policy) not ready in 60 s" >&2
    exit 1
}

run_policy() {
    local policy=$1
    "$LOADGEN" run --url "http://127.0.0.1:$PORT" --label "$policy" \
        -n "$N_ADAPTERS" --alpha 1 --rate "$RATE" --cv "$CV" \
        --duration "$DURATION" --input-range "$INPUT" \
        --output-range "$OUTPUT" --seed "$SEED" --slo-ttft "$SLO_S" \
        --out "$OUT/$policy" >"$OUT/$policy/loadgen.txt"
}

if [ -z "$RATE" ]; then
    first=${POLICIES%% *}
    start_server "$first"
    mkdir -p "$OUT/capacity"
    "$LOADGEN" run --url "http://127.0.0.1:$PORT" --label capacity \
        -n "$N_ADAPTERS" --rate 1000 --duration 0.06 \
        --input-range "$INPUT" --output-range "$OUTPUT" --seed "$SEED" \
        --no-plots -q --out "$OUT/capacity" >"$OUT/capacity/loadgen.txt"
    cap=$(python3 -c 'import json, sys
doc = json.load(open(sys.argv[1]))
print("%.3f" % doc["runs"][0]["summary"]["throughput_rps"])' \
        "$OUT/capacity/results.json")
    RATE=$(awk "BEGIN { printf \"%.2f\", $cap * $OVERLOAD }")
    echo "capacity: $cap req/s (60 requests at once, $first);" \
         "rate $RATE req/s (x$OVERLOAD)"
    stop_server
fi

for policy in $POLICIES; do
    mkdir -p "$OUT/$policy"
    start_server "$policy"
    run_policy "$policy"
    stop_server
done

echo
dirty=
git diff --quiet HEAD -- engine kernels ngx_http_slora_module || dirty=+dirty
echo "slo-cpu: commit $(git rev-parse --short HEAD)$dirty, $(nproc) cores," \
     "$(uname -m), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "model: 4 layers x 256 (SmolLM2 tokenizer), $N_ADAPTERS adapters," \
     "ranks 64/32/16/8; threads=$THREADS max_running=$MAX_RUNNING"
echo "workload: $RATE req/s, cv $CV, $DURATION s, seed $SEED, input" \
     "[$INPUT), output [$OUTPUT); TTFT SLO $SLO_MS ms"
echo
results=()
for policy in $POLICIES; do
    results+=("$OUT/$policy/results.json")
done
"$LOADGEN" table "${results[@]}" --markdown --plot "$OUT/compare"
