#!/bin/bash
# bench/device-nginx.sh: the server itself on the GPU: Debian's nginx with
# ngx_http_slora_module and device=cuda, serving SmolLM2 (joined from
# the three parts bench/device-pack.sh carries in .carry/a, b and c, left
# on the machine by the calls before), then the Llama-7B shape with random
# weights and SmolLM2's tokenizer: three streamed chat completions and a
# burst of 16 at once on each, printed with their tokens/s, and each
# run's step log summed up (bench/steps.py: among the rest, the steps
# that captured a decode graph; the logs go to $OUT). Run after
# those calls, with .carry/d (nginx, the module and the libraries they
# need, gzipped) carried. Or with .carry/t (bench/device-pack.sh one) on
# a machine without .carry/d: the 7B shape only, with tok.gguf's
# tokenizer (SmolLM2's).
#
# SCORE=1 then times scoring texts (bench/score.py: echo with logprobs
# against a plain completion of the same prompt); PREDICTION=1 what
# chat's prediction saves (bench/prediction.py: the answer the same,
# asked without and with four predictions). LOOKUP=1 runs each model
# twice, without and with `speculate=lookup` (LOOKUP_REQUESTS=N: its
# speculate_requests), bench/lookup.py's tasks on each (instead of the
# chats), then its table.
#
# GUIDED=1 then asks SmolLM2 bench/guided.py's constrained requests (a
# schema, a regex, a choice, tools, structural tags) with each token's
# 20 likeliest (the server's top_logprobs=20), their answers in
# $OUT/guided-smollm2.json for `guided.py compare` against the CPU's.
#
# BEST_OF=1 then asks SmolLM2 a completion's best_of against the
# ranking of the same candidates by hand (bench/best-of.py: n=4 with
# logprobs, each stop id scored as a prompt).
#
# DAEMON=1 runs nginx as Debian's systemd unit does (daemon on, the
# master from the pid file) with the CUDA backend beside the module, as
# `make install` lays them out, and no cuda_lib=: the engine finds it
# there; /health is asked before and after.
#
# LORA=1 serves two generated adapter folders beside each model (rank
# 16 and 32 on q, k, v, o) with vLLM's load_lora_adapter and
# unload_lora_adapter, and runs bench/lora-runtime.py instead of the
# chats: a name registered to one folder, swapped to the other, asked
# alone and in a batch, each against the folder's own tokens.
#
# ROUNDS=2 runs the chats twice a server, so the second round's burst
# meets warm kernels and plans; TAG names this run's step logs and error
# logs in $OUT (steps-<model><TAG>.csv), for A/B runs in one call. The
# prefix cache is on, as the server's default: a second round's prompts
# take their KV pages from it; PREFIX_CACHE=off computes every prompt.

set -u
. "$(dirname "$0")/device-lib.sh"
cd "$(dirname "$0")/.."
OUT=${OUT:-build/device-out}
C=$PWD/.carry
P=/tmp/ngx
mkdir -p "$OUT" $P/conf $P/logs $P/tmp
OUT=$(readlink -f "$OUT")   # the step log path the engine opens: absolute

K=$C/d                      # nginx, its module and libraries
A=$C/a                      # libslora_cuda.so
# .carry/d wins where both are on the machine (a call with .carry/t
# before leaves it there): SmolLM2 is the run that needs its parts
if [ -d $C/d ]; then
    [ -f /tmp/smollm2.gguf ] || device_smollm2 /tmp/smollm2.gguf || exit 1
else
    K=$C/t
    A=$C/t
fi

device_nginx_bins $K || exit 1

# the libraries travel gzipped; for nginx only: python3 and curl keep
# the image's own
mkdir -p /tmp/lib
for f in $K/lib/*.gz; do
    gunzip -c "$f" > "/tmp/lib/$(basename "$f" .gz)"
done
LIBS=/tmp/lib:/usr/local/cuda/lib64:$(device_cublas_dir)

ROUNDS=${ROUNDS:-1}
TAG=${TAG:-}

# GUIDED=1: each token's 20 likeliest (the server's top_logprobs=20), so
# that guided.py finds the other side's token among them
GUIDED_TOP_CONF=
[ "${GUIDED:-0}" = 0 ] || { GUIDED_TOP_CONF=top_logprobs=20; \
                            export GUIDED_TOP=20; }

serve() {
# LOOKUP_REQUESTS=N: the lookup server's speculate_requests
SPECULATE_REQUESTS=
[ "${SPECULATE:-off}" = lookup ] && [ -n "${LOOKUP_REQUESTS:-}" ] \
    && SPECULATE_REQUESTS=speculate_requests=$LOOKUP_REQUESTS
rm -f "$OUT/steps-$3$TAG.csv"
CUDA_LIB=cuda_lib=$A/libslora_cuda.so
NGINX_DAEMON=off
ADAPTERS=
ADMIN=
if [ "${LORA:-0}" != 0 ]; then
    [ -x /tmp/slora ] || { gunzip -c $A/slora.gz > /tmp/slora \
                           && chmod +x /tmp/slora; } || exit 1
    rm -rf /tmp/adsrv-$3
    LD_LIBRARY_PATH=$LIBS:$A /tmp/slora mkadapter \
        --model "${MKADAPTER_MODEL:-$1}" \
        --out /tmp/adsrv-$3 --count 2 --ranks 16,32 --targets q,k,v,o \
        > /dev/null || exit 1
    ADAPTERS="slora_adapters dir=/tmp/adsrv-$3;"
    ADMIN="location = /v1/load_lora_adapter { slora_admin; }
        location = /v1/unload_lora_adapter { slora_admin; }"
fi
if [ "${DAEMON:-0}" != 0 ]; then
    [ -f $K/libslora_cuda.so ] || cp $A/libslora_cuda.so $K/
    CUDA_LIB=
    NGINX_DAEMON=on
fi
NGINX_DAEMON=$NGINX_DAEMON \
device_nginx_conf $P/conf/nginx.conf $K/ngx_http_slora_module.so 1024 \
    "user root;
env SLORA_STEP_LOG=$OUT/steps-$3$TAG.csv;" <<CONF
    access_log logs/access.log;
    slora_engine model=$1 $2 device=cuda
                 $CUDA_LIB slots=64 max_running=32
                 max_ctx=2048 max_tokens=512
                 prefix_cache=${PREFIX_CACHE:-on}
                 speculate=${SPECULATE:-off} $SPECULATE_REQUESTS
                 $GUIDED_TOP_CONF;
    slora_responses_store 16m;
    $ADAPTERS
    server {
        listen 127.0.0.1:18080;
        location /v1/ { slora_api openai; }
        $ADMIN
        location = /status { slora_status; }
        location = /health { slora_health; }
    }
CONF

if [ "$NGINX_DAEMON" = on ]; then
    LD_LIBRARY_PATH=$LIBS $K/nginx -p $P -e logs/error.log \
        -c conf/nginx.conf
    echo "nginx -g daemon on: returned $?; master $(cat $P/logs/nginx.pid)"
    pid=$(cat $P/logs/nginx.pid)
    echo "health at start: $(curl -s http://127.0.0.1:18080/health)"
    ps -o pid,ppid,cmd --ppid "$pid"
else
    LD_LIBRARY_PATH=$LIBS $K/nginx -p $P -e logs/error.log \
        -c conf/nginx.conf &
    pid=$!
fi

if [ "${LORA:-0}" != 0 ]; then
    python3 bench/lora-runtime.py http://127.0.0.1:18080 /v1/ \
        /tmp/adsrv-$3 a0000 a0001
elif [ "${LOOKUP:-0}" != 0 ]; then
    python3 bench/lookup.py run http://127.0.0.1:18080 \
        "$OUT/lookup-$3-${SPECULATE:-off}.json" base 3
else
    for round in $(seq "$ROUNDS"); do
        [ "$ROUNDS" = 1 ] || echo "-- round $round"
        python3 bench/chat-stream.py http://127.0.0.1:18080
    done
fi
# SCORE=1: what scoring a text (echo) costs against computing it
[ "${SCORE:-0}" = 0 ] || python3 bench/score.py http://127.0.0.1:18080 base \
    "${SCORE_WORDS:-250,1500}" 3
# PREDICTION=1: what a prediction of the answer saves
[ "${PREDICTION:-0}" = 0 ] \
    || python3 bench/prediction.py http://127.0.0.1:18080/v1 base 3
# GUIDED=1: SmolLM2's constrained answers (bench/guided.py), to hold to
# the CPU backend's
[ "${GUIDED:-0}" = 0 ] || [ "$3" != smollm2 ] \
    || python3 bench/guided.py run http://127.0.0.1:18080/v1 \
           "$OUT/guided-$3$TAG.json"

# BEST_OF=1: best_of's answer against the candidates' ranking by hand
[ "${BEST_OF:-0}" = 0 ] || [ "$3" != smollm2 ] \
    || python3 bench/best-of.py http://127.0.0.1:18080

    [ "$NGINX_DAEMON" = off ] \
        || echo "health after: $(curl -s http://127.0.0.1:18080/health)"
    kill -QUIT $pid
    if [ "$NGINX_DAEMON" = on ]; then
        while kill -0 $pid 2>/dev/null; do sleep 0.1; done
    else
        wait $pid
    fi
    grep -E "ready|emerg|alert|crit" $P/logs/error.log | head -5
    python3 bench/steps.py "$OUT/steps-$3$TAG.csv" | grep -E "^(==|total)"
    cp $P/logs/error.log "$OUT/nginx-error-$3$TAG.log"
    rm -f $P/logs/*
}

if [ "${LOOKUP:-0}" != 0 ] && [ "$K" = "$C/d" ]; then
    for SPECULATE in off lookup; do
        serve /tmp/smollm2.gguf "" smollm2
    done
    python3 bench/lookup.py compare "$OUT/lookup-smollm2-off.json" \
        "$OUT/lookup-smollm2-lookup.json"
    for SPECULATE in off lookup; do
        serve random:llama-7b,vocab=49152 tokenizer=/tmp/smollm2.gguf \
            llama-7b
    done
    python3 bench/lookup.py compare "$OUT/lookup-llama-7b-off.json" \
        "$OUT/lookup-llama-7b-lookup.json"
elif [ "$K" = "$C/t" ]; then
    MKADAPTER_MODEL=random:llama-7b \
    serve random:llama-7b,vocab=49152 tokenizer=$C/t/tok.gguf llama-7b
else
    serve /tmp/smollm2.gguf "" smollm2
    MKADAPTER_MODEL=random:llama-7b \
    serve random:llama-7b,vocab=49152 tokenizer=/tmp/smollm2.gguf llama-7b
fi
