#!/usr/bin/env bash
# cpu-vs-llamacpp.sh: CPU decode and prompt speed of slora against
# llama.cpp, on SmolLM2-135M-Instruct Q4_1 with the same number of threads.
#
# 1. llama.cpp: `llama-bench -p 0 -n GEN -t THREADS -r 1` (token
#    generation only), then `-p PROMPT -n 0` (a prompt's processing
#    only), from the reference build under ref/build.
# 2. slora, base model: `slora bench` with a 1-token prompt, so its single
#    stream is decode too; then REQUESTS requests with CONCURRENCY in
#    flight.
# 3. slora, N_ADAPTERS random rank-RANK adapters (q,k,v,o) written by
#    `slora mkadapter`, used round robin by the same batched run.
# 4. slora, prompts of PROMPT tokens one at a time, one token generated
#    each: its tokens/s with prompts, against llama.cpp's pp figure.
# Each measurement is repeated REPEAT times (3).  It prints one table:
# median and best tokens/s, and the ratio of each row to its peer
# (llama.cpp for the single stream, slora's own single stream for the
# batched runs).  Figures only, no assertion; copy them to bench/RESULTS.md
# with the lines printed above the table.  The load averages printed before
# and after say whether other work shared the cores: on a loaded machine
# both peers slow down, OpenMP's barriers more than most.
#
# usage: bench/cpu-vs-llamacpp.sh      (environment: THREADS GEN REQUESTS
#                                        CONCURRENCY N_ADAPTERS RANK REPEAT
#                                        PROMPT)
set -euo pipefail

cd "$(dirname "$0")/.."
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
THREADS=${THREADS:-2}
GEN=${GEN:-64}
REQUESTS=${REQUESTS:-16}
CONCURRENCY=${CONCURRENCY:-16}
N_ADAPTERS=${N_ADAPTERS:-8}
RANK=${RANK:-8}
REPEAT=${REPEAT:-3}
PROMPT=${PROMPT:-512}
LLAMA_BENCH=${LLAMA_BENCH:-ref/build/bin/llama-bench}
SLORA=${SLORA:-bin/slora}

for f in "$MODEL" "$LLAMA_BENCH" "$SLORA"; do
    if [ ! -e "$f" ]; then
        echo "cpu-vs-llamacpp: $f missing (tools/fetch-model," \
             "tools/fetch-reference --build, make)" >&2
        exit 1
    fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo none)" \
     "$(git diff --quiet HEAD -- engine kernels 2>/dev/null || echo '(dirty)')"
echo "model:   $MODEL; threads $THREADS; $GEN tokens generated per request"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at start"
echo

# REPEAT rounds of: llama.cpp, slora base, slora with adapters; rounds
# rather than one peer after the other, so a burst of other work on the
# machine hits all three alike.
common="--model $MODEL --threads $THREADS --prompt-len 1 --gen $GEN
        --requests $REQUESTS --concurrency $CONCURRENCY"

mkdir -p "$tmp/adapters"
for i in $(seq 1 "$N_ADAPTERS"); do
    "$SLORA" mkadapter --model "$MODEL" --out "$tmp/adapters/a$i" \
        --rank "$RANK" --targets q,k,v,o --seed "$i" > /dev/null
done

for run in $(seq 1 "$REPEAT"); do
    echo "+ $LLAMA_BENCH -m $MODEL -t $THREADS -p 0 -n $GEN -r 1 -o jsonl"
    "$LLAMA_BENCH" -m "$MODEL" -t "$THREADS" -p 0 -n "$GEN" -r 1 \
        -o jsonl 2> "$tmp/llama.err" > "$tmp/llama.jsonl"
    python3 -c '
import json, sys
print("%.2f" % json.loads(open(sys.argv[1]).readline())["avg_ts"])' \
        "$tmp/llama.jsonl" | tee -a "$tmp/llama.single"

    echo "+ $LLAMA_BENCH -m $MODEL -t $THREADS -p $PROMPT -n 0 -r 1 -o jsonl"
    "$LLAMA_BENCH" -m "$MODEL" -t "$THREADS" -p "$PROMPT" -n 0 -r 1 \
        -o jsonl 2> "$tmp/llama.err" > "$tmp/llama.jsonl"
    python3 -c '
import json, sys
print("%.2f" % json.loads(open(sys.argv[1]).readline())["avg_ts"])' \
        "$tmp/llama.jsonl" | tee -a "$tmp/llama.prompt"

    for kind in base lora; do
        extra=
        if [ "$kind" = lora ]; then
            extra="--adapters $tmp/adapters"
        fi
        echo "+ $SLORA bench $(echo $common) ${extra:+--adapters DIR}"
        # shellcheck disable=SC2086
        "$SLORA" bench $common $extra > "$tmp/out"
        cat "$tmp/out"
        sed -n 's/^single stream: .*: \([0-9.]*\) tokens\/s.*/\1/p' \
            "$tmp/out" >> "$tmp/$kind.single"
        sed -n 's/^batched: .*: \([0-9.]*\) tokens\/s generated.*/\1/p' \
            "$tmp/out" >> "$tmp/$kind.batched"
    done

    echo "+ $SLORA bench --model $MODEL --threads $THREADS" \
         "--prompt-len $PROMPT --gen 1 --requests 2 --concurrency 1 --single 0"
    "$SLORA" bench --model "$MODEL" --threads "$THREADS" \
        --prompt-len "$PROMPT" --gen 1 --requests 2 --concurrency 1 \
        --single 0 > "$tmp/out"
    cat "$tmp/out"
    sed -n 's/^batched: .*, \([0-9.]*\) tokens\/s with prompts.*/\1/p' \
        "$tmp/out" >> "$tmp/base.prompt"
done

echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end"
echo
python3 - "$tmp" "$THREADS" "$GEN" "$REQUESTS" "$CONCURRENCY" \
    "$N_ADAPTERS" "$RANK" "$REPEAT" "$PROMPT" <<'PY'
import statistics, sys
tmp, t, gen, req, conc, nad, rank, rep, prompt = sys.argv[1:10]


def figs(name):
    v = [float(x) for x in open("%s/%s" % (tmp, name)).read().split()]
    return statistics.median(v), max(v)


llama = figs("llama.single")
s_base = figs("base.single")
s_lora = figs("lora.single")
b_base = figs("base.batched")
b_lora = figs("lora.batched")
p_llama = figs("llama.prompt")
p_base = figs("base.prompt")


def ratio(a, b):
    return "%.2f / %.2f" % (a[0] / b[0], a[1] / b[1])


rows = [
    ("llama.cpp llama-bench tg%s, 1 stream" % gen, llama, "1.00 (peer)"),
    ("slora, 1 stream, base model", s_base,
     ratio(s_base, llama) + " of llama.cpp"),
    ("slora, 1 stream, 1 adapter (rank %s)" % rank, s_lora,
     ratio(s_lora, s_base) + " of slora base"),
    ("slora, %s requests, %s in flight, base" % (req, conc), b_base,
     ratio(b_base, s_base) + " x slora 1 stream"),
    ("slora, %s requests, %s in flight, %s adapters" % (req, conc, nad),
     b_lora, ratio(b_lora, s_base) + " x slora 1 stream"),
]
print("| run (%s threads, %s runs each) | decode tokens/s, median / best "
      "| ratio, median / best |" % (t, rep))
print("|---|---|---|")
for name, f, r in rows:
    print("| %s | %.1f / %.1f | %s |" % (name, f[0], f[1], r))
print()
print("| run (%s threads, %s runs each) | prompt tokens/s, median / best "
      "| ratio, median / best |" % (t, rep))
print("|---|---|---|")
print("| llama.cpp llama-bench pp%s | %.1f / %.1f | 1.00 (peer) |"
      % (prompt, p_llama[0], p_llama[1]))
print("| slora, %s-token prompts one at a time (+1 token) | %.1f / %.1f "
      "| %s of llama.cpp |" % (prompt, p_base[0], p_base[1],
                               ratio(p_base, p_llama)))
PY
