#!/usr/bin/env bash
# lookup-cpu.sh: what `slora_engine speculate=lookup` saves on the CPU,
# SmolLM2-135M-Instruct through nginx: bench/lookup.py's tasks asked of
# a server without it, then of one with it (a fresh nginx each, only
# that parameter differs), then the table. Figures only, no assertion.
#
# usage: bench/lookup-cpu.sh   (environment, with defaults:
#   ROUNDS=3  THREADS=2  PORT=18178  OUT=build/bench/lookup-cpu)
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/device-lib.sh       # device_nginx_conf, a server's nginx.conf
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
PORT=${PORT:-18178}
OUT=${OUT:-$ROOT/build/bench/lookup-cpu}
NGINX=${NGINX:-/usr/sbin/nginx}
MODEL=$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf

make -s lib cli module fetch-model >/dev/null
mkdir -p "$OUT"

pid=
stop_server() {
    [ -n "$pid" ] || return 0
    device_nginx_stop "$pid"
    pid=
}
trap stop_server EXIT

# serve MODE: nginx with speculate=MODE (lookup.py waits for its engine)
serve() {
    local prefix=$OUT/$1/server
    rm -rf "$prefix"
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
    device_nginx_conf "$prefix/conf/nginx.conf" \
        "$ROOT/build/nginx/objs/ngx_http_slora_module.so" 1024 <<EOF
    access_log off;
    slora_engine model=$MODEL device=cpu threads=$THREADS slots=64
                 max_running=16 max_ctx=2048 max_tokens=512
                 speculate=$1;
    server {
        listen 127.0.0.1:$PORT;
        location /v1/ { slora_api openai; slora_deadline 600s; }
        location = /status { slora_status; }
    }
EOF
    "$NGINX" -p "$prefix/" -c conf/nginx.conf -e logs/error.log \
        >"$prefix/logs/stderr.log" 2>&1 &
    pid=$!
}

for mode in off lookup; do
    serve $mode
    python3 bench/lookup.py run "http://127.0.0.1:$PORT" "$OUT/$mode.json" \
        base "$ROUNDS"
    stop_server
done

echo "lookup-cpu: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)," \
     "$(nproc) cores, threads=$THREADS, rounds $ROUNDS"
python3 bench/lookup.py compare "$OUT/off.json" "$OUT/lookup.json"
