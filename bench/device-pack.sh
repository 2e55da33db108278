#!/bin/bash
# bench/device-pack.sh: stages what a device call of the CUDA backend
# needs into the git-ignored .carry/, in four parts that each fit one
# call (64 MiB with the tree): .carry/a holds a static `slora`
# (OpenBLAS, PCRE2, hiredis and libcrypto linked in; cJSON beside it),
# libslora_cuda.so, both built here, the two peer scripts and the first
# part of the SmolLM2 model; .carry/b the second part; .carry/c the
# third; .carry/d nginx, the module and their libraries (with the tree
# at 26 MB they no longer fit beside the third part). The kernel tests
# travel in `one`'s .carry/t only.
#
#   bash bench/device-pack.sh [../shared/bench]
#   bash bench/device-pack.sh one [../shared/bench]
#
# `one` stages everything but SmolLM2's weights into .carry/t, small
# enough for one call: the static `slora`, libslora_cuda.so, the kernel
# tests, nginx with the module and its libraries (these three gzipped,
# as are `slora` and the tests; device_nginx_bins unpacks nginx and the
# module), the peers, and tok.gguf, a tiny model that lends random
# models SmolLM2's tokenizer. bench/device-tp.sh and bench/device-slo.sh
# run from it. BASE=<commit> adds that commit's libslora_cuda.so as
# libslora_cuda_base.so and its test_attention_cuda as
# test_attention_cuda_base (built in a scratch worktree), and
# device-engine.sh bench, ab and attention-ab time them in the same call:
# an A/B on one GPU. NGINX=0 leaves nginx, the module and their
# libraries out (some 16 MB), which a carry with BASE's library needs
# to fit a call.
#
# Then: run(carry [".carry/a"], "ls"), run(carry [".carry/b"], "ls"),
# run(carry [".carry/c"], "ls") and, while that machine is still warm,
# run(carry [".carry/d"], "bash bench/device-engine.sh conform; bash
# bench/device-nginx.sh"). A part left by a call stays on the machine
# for the next (it is ignored, so not replaced).

set -eu
cd "$(dirname "$0")/.."

# the C library's own, which the carried libraries leave out
SYS_LIBS='/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so'

# a call carries the tree (tracked files and untracked ones git does not
# ignore) and its carry folder, 64 MiB in all: say so here, before a
# device call is spent on the refusal. Sizes as the disk holds them
# (whole blocks), as the device tool counts them: by the files' bytes
# alone a carry 2 MB over passed here and was refused there.
tree_size() {
    { git ls-files -z; git ls-files -z --others --exclude-standard; } \
        | xargs -0 -r du -B1 -c -- 2>/dev/null | tail -1 | cut -f1
}

fits() {
    local tree carry
    tree=$(tree_size)
    for carry in "$@"; do
        if [ $((tree + $(du -sB1 "$carry" | cut -f1))) -gt $((64 << 20)) ]; then
            echo "device-pack.sh: $carry with the tree ($tree bytes)" \
                 "is over the 64 MiB a device call carries" \
                 "(NGINX=0 leaves nginx out)" >&2
            exit 1
        fi
    done
}

MODE=parts
if [ "${1:-}" = one ]; then
    MODE=one
    shift
fi
PEERS=${1:-../shared/bench}
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf

if [ $MODE = one ]; then
    make -j2 lib cli cuda module > /dev/null
    T=.carry/t
    rm -rf $T
    mkdir -p $T/lib
    cc -o $T/slora build/engine/slora_cli*.o build/libslora.a \
        -Wl,-Bstatic -lopenblas -lpcre2-8 -lhiredis -lcrypto -Wl,-Bdynamic \
        -lcjson -lpthread -lm -ldl
    strip $T/slora
    gzip -9 $T/slora
    cp build/libslora_cuda.so $T/
    if [ -n "${BASE:-}" ]; then
        W=$(mktemp -d /tmp/slora-base.XXXXXX)
        git worktree add -q --detach "$W" "$BASE"
        make -C "$W" -j2 cuda > /dev/null
        cp "$W/build/libslora_cuda.so" $T/libslora_cuda_base.so
        gzip -9 -c "$W/build/cuda/test_attention_cuda" \
            > $T/test_attention_cuda_base.gz
        git worktree remove --force "$W"
    fi
    for t in test_kernels_cuda test_attention_cuda test_allreduce_cuda \
             test_convert_cuda test_sample_cuda test_score_cuda \
             test_gemv_cuda bench_gemm_cuda; do
        gzip -9 -c build/cuda/$t > $T/$t.gz
    done
    # the arena test links the engine as slora does (static libraries)
    cc -std=gnu11 -O2 -Iengine -Ikernels -It/unit -I/usr/include/cjson \
        -o $T/test_arena_cuda t/kernels/test_arena_cuda.c build/libslora.a \
        -Wl,-Bstatic -lopenblas -lpcre2-8 -lhiredis -lcrypto -Wl,-Bdynamic \
        -lcjson -lpthread -lm -ldl
    strip $T/test_arena_cuda
    gzip -9 $T/test_arena_cuda
    cp "$(readlink -f /lib/x86_64-linux-gnu/libcjson.so.1)" $T/libcjson.so.1
    cp "$PEERS"/peft_baseline.py "$PEERS"/torch_decode.py $T/
    bin/slora mkmodel --out $T/tok.gguf --tokenizer "$MODEL" --layers 1 \
        --hidden 8 --heads 1 --kv-heads 1 --ffn 8 --dtype f16 --tied 1 \
        > /dev/null
    # gzipped too (device_nginx_bins unpacks them): plain, the folder and
    # the tree passed the 64 MiB a call carries
    if [ "${NGINX:-1}" != 0 ]; then
        gzip -9 -c /usr/sbin/nginx > $T/nginx.gz
        gzip -9 -c build/nginx/objs/ngx_http_slora_module.so \
            > $T/ngx_http_slora_module.so.gz
        for lib in $( (ldd /usr/sbin/nginx;
                       ldd build/nginx/objs/ngx_http_slora_module.so) \
                      | awk '/=> \// { print $3 }' | sort -u \
                      | grep -v -E "$SYS_LIBS"); do
            gzip -9 -c "$(readlink -f "$lib")" > "$T/lib/$(basename "$lib").gz"
        done
    fi
    git describe --always --dirty --abbrev=7 > $T/built-from
    [ -n "${BASE:-}" ] && echo "(base library: $BASE)" >> $T/built-from
    du -sh $T
    fits $T
    exit 0
fi

make -j2 lib cli cuda module > /dev/null
rm -rf .carry/a .carry/b .carry/c .carry/d
mkdir -p .carry/a .carry/b .carry/c .carry/d/lib

cc -o .carry/a/slora build/engine/slora_cli*.o build/libslora.a \
    -Wl,-Bstatic -lopenblas -lpcre2-8 -lhiredis -lcrypto -Wl,-Bdynamic \
    -lcjson -lpthread -lm -ldl
strip .carry/a/slora
gzip -9 .carry/a/slora
cp build/libslora_cuda.so .carry/a/
git describe --always --dirty --abbrev=7 > .carry/a/built-from
cp "$(readlink -f /lib/x86_64-linux-gnu/libcjson.so.1)" .carry/a/libcjson.so.1
sha256sum "$MODEL" | cut -d' ' -f1 > .carry/a/model.sha256
cp "$PEERS"/peft_baseline.py "$PEERS"/torch_decode.py .carry/a/

# .carry/d: nginx, the module, and every library they load that a bare
# CUDA image may lack, gzipped (bench/device-nginx.sh unpacks them)
gzip -9 -c /usr/sbin/nginx > .carry/d/nginx.gz
gzip -9 -c build/nginx/objs/ngx_http_slora_module.so \
    > .carry/d/ngx_http_slora_module.so.gz
for lib in $( (ldd /usr/sbin/nginx;
               ldd build/nginx/objs/ngx_http_slora_module.so) \
              | awk '/=> \// { print $3 }' | sort -u \
              | grep -v -E "$SYS_LIBS"); do
    gzip -9 -c "$(readlink -f "$lib")" > ".carry/d/lib/$(basename "$lib").gz"
done

# SmolLM2 gzipped, in three parts: a and b filled to what a call carries
# less 1 MiB of room, c the rest (each, with the tree, must stay under
# the 64 MiB; three equal parts of the plain model came to 68.9 MB with
# the tree, in blocks); device-lib.sh's device_smollm2 joins and unpacks
# them
gzip -1 -c "$MODEL" > .carry/model.gz
SIZE=$(stat -c %s .carry/model.gz)
ROOM=$(( (63 << 20) - $(tree_size) ))
A_PART=$(( ROOM - $(du -sB1 .carry/a | cut -f1) - 4096 ))
B_PART=$(( ROOM - 4096 ))
head -c $A_PART .carry/model.gz > .carry/a/model.0
tail -c +$((A_PART + 1)) .carry/model.gz | head -c $B_PART > .carry/b/model.1
tail -c +$((A_PART + B_PART + 1)) .carry/model.gz > .carry/c/model.2
rm .carry/model.gz
cat .carry/a/model.0 .carry/b/model.1 .carry/c/model.2 | gunzip | sha256sum \
    | cut -d' ' -f1 | cmp -s - .carry/a/model.sha256 \
    || { echo "device-pack.sh: SmolLM2's parts do not join" >&2; exit 1; }

du -sh .carry/a .carry/b .carry/c .carry/d
fits .carry/a .carry/b .carry/c .carry/d
