#!/bin/bash
# bench/device-nginx.sh: the server itself on the GPU: Debian's nginx with
# ngx_http_slora_module and device=cuda, serving SmolLM2 (reassembled from
# the parts bench/device-pack.sh carries, left on the machine by the two
# calls of bench/device-engine.sh), then the Llama-7B shape with random
# weights and SmolLM2's tokenizer: three streamed chat completions and a
# burst of 16 at once on each, printed with their tokens/s, and each
# run's step log summed up (bench/steps.py: among the rest, the steps
# that captured a decode graph; the logs go to $OUT). Run after
# those calls, with .carry/c (nginx, the module and the libraries they
# need, staged by bench/device-pack.sh) carried.

set -u
. "$(dirname "$0")/device-lib.sh"
cd "$(dirname "$0")/.."
OUT=${OUT:-build/device-out}
C=$PWD/.carry
P=/tmp/ngx
mkdir -p "$OUT" $P/conf $P/logs $P/tmp
OUT=$(readlink -f "$OUT")   # the step log path the engine opens: absolute

if [ ! -f /tmp/smollm2.gguf ]; then
    cat $C/a/model.0 $C/b/model.1 > /tmp/smollm2.gguf || exit 1
fi

# for nginx only: python3 and curl keep the image's own libraries
LIBS=$C/c/lib:/usr/local/cuda/lib64:$(device_cublas_dir)

serve() {
rm -f "$OUT/steps-$3.csv"
device_nginx_conf $P/conf/nginx.conf $C/c/ngx_http_slora_module.so 1024 \
    "user root;
env SLORA_STEP_LOG=$OUT/steps-$3.csv;" <<CONF
    access_log logs/access.log;
    slora_engine model=$1 $2 device=cuda
                 cuda_lib=$C/a/libslora_cuda.so slots=64 max_running=32
                 max_ctx=2048 max_tokens=512;
    server {
        listen 127.0.0.1:18080;
        location /v1/ { slora_api openai; }
        location = /status { slora_status; }
    }
CONF

LD_LIBRARY_PATH=$LIBS $C/c/nginx -p $P -e logs/error.log -c conf/nginx.conf &
pid=$!

python3 bench/chat-stream.py http://127.0.0.1:18080

    kill -QUIT $pid
    wait $pid
    grep -E "ready|emerg|alert|crit" $P/logs/error.log | head -5
    python3 bench/steps.py "$OUT/steps-$3.csv" | grep -E "^(==|total)"
    cp $P/logs/error.log "$OUT/nginx-error-$3.log"
    rm -f $P/logs/*
}

serve /tmp/smollm2.gguf "" smollm2
serve random:llama-7b,vocab=49152 tokenizer=/tmp/smollm2.gguf llama-7b
