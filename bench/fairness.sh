#!/usr/bin/env bash
# fairness.sh: what a quiet tenant's first token waits for while another
# tenant floods the server, under each admission policy.
#
# One nginx per (scenario, policy) on SmolLM2-135M-Instruct Q4_1, engine
# threads THREADS, the tenant taken from X-Tenant (slora_tenant
# $http_x_tenant). bench/fairness_client.pl first times quiet requests
# alone, one after another, then with FLOOD flood streams kept open (each
# replaced when it ends) and the quiet tenant again one request at a time,
# QUIET_GAP seconds apart at least (0: back to back; see that file for
# what is measured). Scenarios:
#   budget  16 running slots, 64 tokens a step: the flood's backlog is
#           prefill waiting for the token budget. The quiet tenant's
#           requests are the big ones (120-word prompt, 1 token), the
#           flood's small (40 words, 2 tokens);
#   heavy   the same requests, 2 running slots and 256 tokens a step: a
#           quiet request also waits for a slot to free (under fair, it
#           takes one from the flood by preemption);
#   light   2 slots, 64 tokens, both tiny (8 words; quiet 2 tokens, flood
#           12): the wait for a slot is all there is.
# The last column is the server's requests.preempted at the end (running
# requests put back to wait, for fair share or a dry pool).
# Figures only, no assertion.
#
# usage: bench/fairness.sh   (environment: POLICIES="fcfs fair"
#        SCENARIOS="budget heavy light" FLOOD=10 N_ALONE=3 N_QUIET=5
#        QUIET_GAP=0.5
#        THREADS=1 PORT=18191)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/device-lib.sh       # device_nginx_conf, a server's nginx.conf
POLICIES=${POLICIES:-"fcfs fair"}
SCENARIOS=${SCENARIOS:-"budget heavy light"}
FLOOD=${FLOOD:-10}
N_ALONE=${N_ALONE:-3}
N_QUIET=${N_QUIET:-5}
QUIET_GAP=${QUIET_GAP:-0.5}
THREADS=${THREADS:-1}
PORT=${PORT:-18191}
NGINX=${NGINX:-/usr/sbin/nginx}
MODEL=$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf
PREFIX=$ROOT/build/bench/fairness

make -s lib cli module >/dev/null
tools/fetch-model >/dev/null

NGINX_PID=
stop_nginx() {
    if [ -n "$NGINX_PID" ]; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        NGINX_PID=
    fi
}
trap stop_nginx EXIT

start_nginx() {    # policy max_batch_tokens max_running
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX/logs" "$PREFIX/conf" "$PREFIX/tmp"
    # the prefix cache off unless PREFIX_CACHE=on: the figures are of
    # prompts computed, as they were before it
    NGINX_WORKERS=1 device_nginx_conf "$PREFIX/conf/nginx.conf" \
        "$ROOT/build/nginx/objs/ngx_http_slora_module.so" 1024 <<EOF
    access_log off;
    slora_engine model=$MODEL device=cpu threads=$THREADS slots=64
                 max_running=$3 max_batch_tokens=$2 max_ctx=512
                 max_tokens=64 schedule=$1
                 prefix_cache=${PREFIX_CACHE:-off};
    slora_tenant \$http_x_tenant;
    server {
        listen 127.0.0.1:$PORT;
        location /v1/ { slora_api openai; }
        location = /status { slora_status; }
    }
EOF
    "$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" \
        -e "$PREFIX/logs/error.log" &
    NGINX_PID=$!

    for _ in $(seq 1 600); do
        if curl -sf "http://127.0.0.1:$PORT/status" 2>/dev/null \
           | grep -q '"ready":true'
        then
            return
        fi
        sleep 0.1
    done
    echo "nginx did not become ready; see $PREFIX/logs/error.log" >&2
    exit 1
}

echo "date: $(date -u +%Y-%m-%d)"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(
    git diff --quiet HEAD -- ngx_http_slora_module engine 2>/dev/null \
    || echo ' + working tree')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "engine: threads=$THREADS; flood: $FLOOD streams; quiet:" \
     "$N_ALONE alone, $N_QUIET under the flood"
echo

printf '| scenario | policy | prompt tokens quiet / flood | quiet TTFT alone'
printf ' (median) | under the flood (median) | ratio | flood requests'
printf ' ahead (median) | flood req/s | preempted |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'

for scenario in $SCENARIOS; do
    case $scenario in
        heavy) args="120 1 40 2"; budget=256; running=2 ;;
        light) args="8 2 8 12"; budget=64; running=2 ;;
        budget) args="120 1 40 2"; budget=64; running=16 ;;
        *) echo "unknown scenario $scenario" >&2; exit 1 ;;
    esac

    for policy in $POLICIES; do
        start_nginx "$policy" "$budget" "$running"
        # shellcheck disable=SC2086
        row=$(perl bench/fairness_client.pl "$PORT" "$FLOOD" "$N_ALONE" \
                  "$N_QUIET" $args "$QUIET_GAP")
        preempted=$(curl -sf "http://127.0.0.1:$PORT/status" \
                    | grep -o '"preempted":[0-9]*' | cut -d: -f2) || true
        stop_nginx
        echo "| $scenario: $running slots, $budget tokens | $policy $row" \
             "${preempted:-?} |"
    done
done

echo
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
