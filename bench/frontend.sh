#!/usr/bin/env bash
# frontend.sh: what the nginx front end costs per streamed token, with the
# engine producing tokens as fast as a tiny model allows.
#
# One nginx (worker_processes 1) serves a 1-layer, 64-wide model with
# SmolLM2's tokenizer (so the worker detokenizes real tokens).  The worker
# has CPU 0 to itself; the engine process and bench/sse_client share CPU
# 1 (the client costs little; the engine, at this size, is bound by the
# 49152-wide output layer and sampling, so it sets the event rate).  The
# client keeps CONC streaming completions open (max_tokens MAX_TOKENS,
# each replaced when it ends) and counts the SSE events it receives.  For
# each CONC it prints, over a SECONDS window after WARMUP seconds:
#   - events/s received by the client;
#   - CPU used by the worker and by the engine (from /proc, % of one core),
#     and the worker's CPU microseconds per event: the front end's cost;
#   - slora_delivery_seconds from /metrics (the delta over the window):
#     the time from the engine publishing a token in the shared zone to the
#     worker having written its event to the socket, p50 and p99
#     (interpolated within the histogram's 1-2-3-5-7 buckets);
#   - the mean engine step (slora_engine_step_seconds).
# Figures only, no assertion; bench/RESULTS.md has the recorded run.
#
# usage: bench/frontend.sh   (environment: CONCS="16 64 128" SECONDS_=10
#                             WARMUP=3 MAX_TOKENS=3000 PORT=18190)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/device-lib.sh       # device_nginx_conf, a server's nginx.conf
CONCS=${CONCS:-"16 64 128"}
SECS=${SECONDS_:-10}
WARMUP=${WARMUP:-3}
MAX_TOKENS=${MAX_TOKENS:-3000}
PORT=${PORT:-18190}
NGINX=${NGINX:-/usr/sbin/nginx}
TOKENIZER=models/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL=t/data/gen/bench-frontend-l1-h64.gguf
PREFIX=$ROOT/build/bench/frontend
CLIENT=build/bench/sse_client

max_conc=0
for c in $CONCS; do
    [ "$c" -gt "$max_conc" ] && max_conc=$c
done

make -s lib cli module >/dev/null
mkdir -p build/bench t/data/gen
cc -std=gnu11 -O2 -Wall -Wextra -Wshadow -Werror -o "$CLIENT" \
    bench/sse_client.c

if [ ! -s "$MODEL" ]; then
    bin/slora mkmodel --out "$MODEL.tmp" --tokenizer "$TOKENIZER" \
        --layers 1 --hidden 64 --heads 4 --kv-heads 2 --ffn 64 \
        --ctx 4096 >/dev/null
    mv "$MODEL.tmp" "$MODEL"
fi

rm -rf "$PREFIX"
mkdir -p "$PREFIX/logs" "$PREFIX/conf" "$PREFIX/tmp"
# the prefix cache off unless PREFIX_CACHE=on: the figures are of
# prompts computed, as they were before it
NGINX_WORKERS=1 device_nginx_conf "$PREFIX/conf/nginx.conf" \
    "$ROOT/build/nginx/objs/ngx_http_slora_module.so" 4096 <<EOF
    access_log off;
    slora_engine model=$ROOT/$MODEL device=cpu threads=1
                 slots=$((max_conc + 8)) max_running=$((max_conc + 8))
                 max_batch_tokens=$((max_conc * 4 + 64))
                 max_ctx=4096 max_tokens=4000
                 prefix_cache=${PREFIX_CACHE:-off};
    server {
        listen 127.0.0.1:$PORT;
        location /v1/ { slora_api openai; }
        location = /metrics { slora_metrics; }
    }
EOF

taskset -c 0 "$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" \
    -e "$PREFIX/logs/error.log" &
NGINX_PID=$!
trap 'kill -QUIT $NGINX_PID 2>/dev/null; wait $NGINX_PID 2>/dev/null || true' \
    EXIT

for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null; then
        break
    fi
    sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null

worker=$(pgrep -P $NGINX_PID -f 'nginx: worker process')
engine=$(pgrep -P $NGINX_PID -f 'nginx: slora engine')
taskset -a -p -c 1 "$engine" >/dev/null

cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

echo "date: $(date -u +%Y-%m-%d)"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(
    git diff --quiet HEAD -- ngx_http_slora_module engine 2>/dev/null \
    || echo ' + working tree')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: 1 layer, hidden 64, ffn 64, SmolLM2 vocabulary (49152)"
echo

printf '| streams | events/s | worker CPU | engine CPU | worker us/event'
printf ' | delivery p50 | delivery p99 | engine step |\n'
printf '|---|---|---|---|---|---|---|---|\n'

hz=$(getconf CLK_TCK)

for conc in $CONCS; do
    taskset -c 1 "$CLIENT" "$PORT" "$conc" "$WARMUP" "$SECS" \
        "$MAX_TOKENS" > "$PREFIX/client.out" &
    client=$!
    sleep "$WARMUP"
    curl -sf "http://127.0.0.1:$PORT/metrics" > "$PREFIX/m0"
    w0=$(cpu_ticks "$worker")
    e0=$(cpu_ticks "$engine")
    sleep "$SECS"
    curl -sf "http://127.0.0.1:$PORT/metrics" > "$PREFIX/m1"
    w1=$(cpu_ticks "$worker")
    e1=$(cpu_ticks "$engine")
    wait $client

    python3 - "$PREFIX/m0" "$PREFIX/m1" "$PREFIX/client.out" "$conc" \
        "$SECS" "$hz" "$((w1 - w0))" "$((e1 - e0))" <<'EOF'
import re, sys

m0, m1, out, conc, secs, hz, wt, et = sys.argv[1:]
secs, hz, wt, et = float(secs), float(hz), float(wt), float(et)

def hist(path, name):
    b, s, c = [], 0.0, 0.0
    for line in open(path):
        m = re.match(name + r'_bucket\{le="([^"]+)"\} (\d+)', line)
        if m:
            le = float('inf') if m.group(1) == '+Inf' else float(m.group(1))
            b.append((le, float(m.group(2))))
        elif line.startswith(name + '_sum '):
            s = float(line.split()[1])
        elif line.startswith(name + '_count '):
            c = float(line.split()[1])
    return b, s, c

def delta(name):
    b0, s0, c0 = hist(m0, name)
    b1, s1, c1 = hist(m1, name)
    return [(le, n - b0[i][1]) for i, (le, n) in enumerate(b1)], \
        s1 - s0, c1 - c0

def quantile(b, q):
    total = b[-1][1]
    if total == 0:
        return float('nan')
    want, lo, prev = q * total, 0.0, 0.0
    for le, n in b:
        if n >= want:
            if le == float('inf'):
                return lo
            return lo + (le - lo) * (want - prev) / max(n - prev, 1e-9)
        lo, prev = le, n
    return lo

def us(x):
    return 'n/a' if x != x else ('%.0f us' % (x * 1e6) if x < 0.01
                                  else '%.1f ms' % (x * 1e3))

f = open(out).read().split()
events = float(f[f.index('events') + 1])
d, _, dc = delta('slora_delivery_seconds')
_, ss, sc = delta('slora_engine_step_seconds')
wcpu, ecpu = wt / hz / secs, et / hz / secs
print('| %s | %.0f | %.0f%% | %.0f%% | %.1f | %s | %s | %s |' % (
    conc, events / secs, 100 * wcpu, 100 * ecpu,
    (wt / hz) * 1e6 / max(events, 1), us(quantile(d, 0.5)),
    us(quantile(d, 0.99)), us(ss / sc) if sc else 'n/a'))
EOF
done

echo
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
