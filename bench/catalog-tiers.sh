#!/usr/bin/env bash
# catalog-tiers.sh: what each adapter tier costs a request's first token,
# what prefetch buys, and how often each tier serves the workload of
# t/catalog_scale.t.  Figures only, no assertion; bench/RESULTS.md has
# the recorded run.
#
# It starts its own redis-server (a loopback port; adapters registered
# with `slora catalog register`, the tiny model's in db 0, SmolLM2's in
# db 1) and one nginx at a time (worker_processes 1, engine threads=1),
# and stops each by pid.  bench/catalog_client.pl is the client.  For the
# tiny model (t/lib/SloraTest.pm's) and SmolLM2-135M-Instruct Q4_1, with
# adapters of rank 8, 16 and 64 on q and v, and with `slora_adapters
# prefetch=on` and `prefetch=off`:
#   - TTFT, client side, median and p90 over ROUNDS x REPEAT x 2
#     adapters (each round starts fresh servers, prefetch on and off in
#     turn, so that a change in the machine's load hits both), of a
#     streaming completion (2-word prompt, 2 tokens: the prefill is
#     small beside the adapter's load) whose adapter is
#       first  never used (the catalog reads Redis, the weights disk),
#       cold   on disk only (unloaded through the admin API; the catalog
#              entry is cached; the file is in the OS page cache),
#       warm   in host memory only (evicted from the pool by loading
#              other adapters),
#       hot    in the pool;
#   - the same cold request while 3 streams of another adapter keep the
#     engine busy ("cold, busy"), and the longest gap between two tokens
#     of those streams around it ("stall"; "quiet": the same window
#     without a cold request);
#   - the tiny model under the point-A stream (2000 adapters, ranks 8 to
#     64, power-law alpha 0.3, Poisson 32 req/s, 400 requests, host_cache
#     2m, pool 1m): requests served from each tier, per /status.  The
#     stream is `bench/loadgen gen`'s trace for seed 42, the one
#     t/catalog_scale.t sends.
#
# usage: bench/catalog-tiers.sh   (environment: ROUNDS=3 REPEAT=3
#                                  PORT=18150 REDIS_PORT=18151
#                                  MODELS="tiny smol")
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
. bench/device-lib.sh       # device_nginx_conf, a server's nginx.conf
ROUNDS=${ROUNDS:-3}
REPEAT=${REPEAT:-3}
PORT=${PORT:-18150}
REDIS_PORT=${REDIS_PORT:-18151}
MODELS=${MODELS:-"tiny smol"}
NGINX=${NGINX:-/usr/sbin/nginx}
SMOL=$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf
PREFIX=$ROOT/build/bench/catalog-tiers
CLIENT=(perl "$ROOT/bench/catalog_client.pl")
WORDS=2
REDIS_PID=
NGINX_PID=

make -s lib cli module >/dev/null
mkdir -p "$PREFIX/redis" t/data/gen
rm -f "$PREFIX"/*.json

# ---- data: made once, reused ----

TINY=$(perl -It/lib -MSloraTest -e 'print tiny_model()')
TINY_SET=$(perl -It/lib -MSloraAdapterSet=make_adapter_set,shape_model -e '
    print make_adapter_set($ARGV[0], shape_model(), 2000, [8, 16, 32, 64])' \
    "$ROOT/t/data/gen/catalog-scale-2000-r8-16-32-64")
SMOL_SET=$(perl -It/lib -MSloraAdapterSet=make_adapter_set -e '
    print make_adapter_set($ARGV[0], $ARGV[1], 24, [8, 16, 64])' \
    "$ROOT/t/data/gen/bench-catalog-smollm2-r8-16-64" "$SMOL")

# ---- redis-server and nginx, by pid ----

stop_nginx() {
    if [ -n "$NGINX_PID" ]; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        NGINX_PID=
    fi
}

cleanup() {
    stop_nginx
    if [ -n "$REDIS_PID" ]; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$PREFIX/redis" --daemonize no \
    --logfile "$PREFIX/redis/redis.log" &
REDIS_PID=$!
for _ in $(seq 1 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -p "$REDIS_PORT" flushall >/dev/null
bin/slora catalog --redis "redis://127.0.0.1:$REDIS_PORT/0" register \
    "$TINY_SET" >/dev/null
bin/slora catalog --redis "redis://127.0.0.1:$REDIS_PORT/1" register \
    "$SMOL_SET" >/dev/null

# start_nginx MODEL ADAPTER_DIR DB POOL HOST_CACHE PREFETCH MAX_RUNNING
start_nginx() {
    local p=$PREFIX/nginx
    rm -rf "$p"
    mkdir -p "$p/conf" "$p/logs" "$p/tmp"
    # the prefix cache off unless PREFIX_CACHE=on: the figures are of
    # prompts computed, as they were before it
    NGINX_WORKERS=1 device_nginx_conf "$p/conf/nginx.conf" \
        "$ROOT/build/nginx/objs/ngx_http_slora_module.so" 1024 <<EOF
    access_log off;
    slora_engine model=$1 device=cpu threads=1 slots=128 max_running=$7
                 max_ctx=512 max_tokens=256 pool=$4
                 prefix_cache=${PREFIX_CACHE:-off};
    slora_adapters dir=$2 host_cache=$5 prefetch=$6;
    slora_catalog redis://127.0.0.1:$REDIS_PORT/$3 roots=$2;
    server {
        listen 127.0.0.1:$PORT;
        location /v1/ { slora_api openai; }
        location /admin/ { slora_admin; }
        location = /status { slora_status; }
    }
EOF
    "$NGINX" -p "$p/" -c "$p/conf/nginx.conf" -e "$p/logs/error.log" &
    NGINX_PID=$!
    for _ in $(seq 1 600); do
        if curl -sf "http://127.0.0.1:$PORT/status" 2>/dev/null \
            | grep -q '"ready":true'
        then
            return 0
        fi
        sleep 0.1
    done
    echo "nginx did not become ready:" >&2
    tail -20 "$p/logs/error.log" >&2
    exit 1
}

names() {
    perl -e 'print join(",", map { sprintf("ad%04d", $_) } @ARGV)' "$@"
}

echo "date: $(date -u +%Y-%m-%d)"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(
    git diff --quiet HEAD -- ngx_http_slora_module engine 2>/dev/null \
    || echo ' + working tree')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ---- TTFT per tier ----

for model in $MODELS; do
    if [ "$model" = tiny ]; then
        m=$TINY; dir=$TINY_SET; db=0; pool=1m; host=64m
        # ranks round robin 8, 16, 32, 64: targets and rank-64 fillers
        r8=$(names 1000 1004); r16=$(names 1001 1005)
        r64=$(names 1003 1007); hot=$(names 100)
        fill=$(names $(seq 1011 4 1059)); bg_tokens=200
    else
        m=$SMOL; dir=$SMOL_SET; db=1; pool=48m; host=512m
        # ranks round robin 8, 16, 64
        r8=$(names 0 3); r16=$(names 1 4); r64=$(names 2 5); hot=$(names 6)
        fill=$(names $(seq 7 23)); bg_tokens=64
    fi

    for round in $(seq 1 "$ROUNDS"); do
        for pf in on off; do
            start_nginx "$m" "$dir" "$db" "$pool" "$host" "$pf" 8
            for rank in 8 16 64; do
                eval "targets=\$r$rank"
                "${CLIENT[@]}" tiers "$PORT" /admin "$targets" "$fill" \
                    "$REPEAT" "$WORDS" \
                    > "$PREFIX/tiers-$model-r$rank-$pf-$round.json"
                "${CLIENT[@]}" busy "$PORT" /admin "$hot" 3 "$bg_tokens" \
                    "$targets" "$REPEAT" "$WORDS" \
                    > "$PREFIX/busy-$model-r$rank-$pf-$round.json"
            done
            stop_nginx
        done
    done
done

# ---- hit rate per tier under the point-A stream ----

for round in $(seq 1 "$ROUNDS"); do
    for pf in on off; do
        start_nginx "$TINY" "$TINY_SET" 0 1m 2m "$pf" 16
        "${CLIENT[@]}" stream "$PORT" 2000 0.3 32 400 42 4 40 4 16 \
            > "$PREFIX/stream-$pf-$round.json"
        stop_nginx
    done
done

python3 - "$PREFIX" "$MODELS" <<'EOF'
import glob, json, os, sys

d, models = sys.argv[1], sys.argv[2].split()

def pooled(prefix):
    # the samples of every round, kind by kind
    out = {}
    for p in sorted(glob.glob(os.path.join(d, prefix + '-*.json'))):
        for k, v in json.load(open(p)).items():
            out.setdefault(k, []).extend(v)
    return out

def stats(v):
    v = sorted(v)
    if not v:
        return {'n': 0}
    return {'n': len(v), 'p50': v[len(v) // 2],
            'p90': v[min(len(v) - 1, int(len(v) * 0.9))]}

def ms(s):
    if isinstance(s, list):
        s = stats(s)
    return '%.1f / %.1f' % (s['p50'], s['p90']) if s and s['n'] else 'n/a'

print('TTFT in ms, p50 / p90 (client side; 2-word prompt, stream);'
      ' "stall": the longest gap between two tokens of the background'
      ' streams around a cold request, "quiet": without one:')
print()
print('| model | rank | prefetch | first | cold (disk) | warm (host) |'
      ' hot (pool) | cold - hot | cold, busy | stall, busy | quiet |')
print('|---|---|---|---|---|---|---|---|---|---|---|')
for m in models:
    for r in (8, 16, 64):
        for pf in ('on', 'off'):
            t = pooled('tiers-%s-r%d-%s' % (m, r, pf))
            b = pooled('busy-%s-r%d-%s' % (m, r, pf))
            if not t.get('cold') or not b.get('cold'):
                continue
            c, h = stats(t['cold']), stats(t['hot'])
            print('| %s | %d | %s | %s | %s | %s | %s | %.1f | %s | %s | %s |'
                  % ('tiny' if m == 'tiny' else 'SmolLM2-135M', r, pf,
                     ms(t['first']), ms(c), ms(t['warm']), ms(h),
                     c['p50'] - h['p50'], ms(b['cold']), ms(b['stall']),
                     ms(b['quiet'])))

print()
print('The point-A stream (tiny model, 2000 adapters, 400 requests; counts'
      ' per run, the mean over the rounds; TTFT pooled):')
print()
print('| prefetch | 200s | pool | host | disk | prefetched |'
      ' host evictions | pool evictions | host peak / budget |'
      ' TTFT p50 / p90 |')
print('|---|---|---|---|---|---|---|---|---|---|')
for pf in ('on', 'off'):
    runs = [json.load(open(p)) for p in
            sorted(glob.glob(os.path.join(d, 'stream-%s-*.json' % pf)))]
    if not runs:
        continue
    s = {k: sum(r[k] for r in runs) / len(runs)
         for k in runs[0] if k != 'ttft'}
    s['ttft'] = [x for r in runs for x in r['ttft']]
    n = s['pool'] + s['host'] + s['disk']
    pct = lambda x: '%.0f (%.0f%%)' % (x, 100.0 * x / n) if n else str(x)
    print('| %s | %.0f/%.0f | %s | %s | %s | %.0f | %.0f | %.0f |'
          ' %.0f / %.0f | %s |' % (
              pf, s['ok'], s['requests'], pct(s['pool']), pct(s['host']),
              pct(s['disk']), s['prefetched'], s['host_evictions'],
              s['pool_evictions'], s['host_peak'], s['host_budget'],
              ms(s['ttft'])))
EOF

echo
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
