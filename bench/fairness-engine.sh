#!/bin/bash
# bench/fairness-engine.sh: bench/fairness.sh's light scenario against
# the engine alone (`slora replay`), so that what the scheduler does is
# seen apart from HTTP and from the cores nginx's workers and the client
# take: a quiet tenant's short requests (8 prompt tokens, 2 out, one
# every 0.5 s) alone, then beside a flood tenant's (8 prompt tokens, 12
# out, 20 a second for 10 s, far more than 2 running slots serve), under
# each policy; the quiet tenant's time to first token from each run.
# Figures only, no assertion.
#
# usage: bench/fairness-engine.sh   (environment: POLICIES="fcfs fair"
#        MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf THREADS=1)
set -euo pipefail

cd "$(dirname "$0")/.."
POLICIES=${POLICIES:-"fcfs fair"}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
THREADS=${THREADS:-1}
T=$(mktemp -d /tmp/slora-fair-engine-XXXXXX)
trap 'rm -rf "$T"' EXIT

python3 - "$T" <<'PY'
import sys
quiet = [(0.5 + 0.5 * k, "quiet", 8, 2) for k in range(20)]
flood = [(0.05 * k, "flood", 8, 12) for k in range(200)]
for name, rows in (("alone", quiet), ("flood", quiet + flood)):
    with open("%s/%s.csv" % (sys.argv[1], name), "w") as f:
        f.write("arrival,tenant,adapter,prompt_tokens,output_tokens\n")
        for a, t, p, o in sorted(rows):
            f.write("%.3f,%s,,%d,%d\n" % (a, t, p, o))
PY

printf '| policy | quiet TTFT alone p50 / p99 '
printf '| beside the flood p50 / p99 | ratio of medians |\n|---|---|---|---|\n'
for policy in $POLICIES; do
    for run in alone flood; do
        bin/slora replay --model "$MODEL" --trace "$T/$run.csv" \
            --threads "$THREADS" --max-running 2 --step-tokens 64 \
            --schedule "$policy" > "$T/$policy-$run.txt"
    done
    # "tenant quiet: N requests, N ok; ttft p50 X ms, p99 Y ms"
    a=$(awk '/^tenant quiet/ { print $9, $12 }' "$T/$policy-alone.txt")
    f=$(awk '/^tenant quiet/ { print $9, $12 }' "$T/$policy-flood.txt")
    echo "$policy $a $f" | awk '{
        printf "| %s | %s / %s ms | %s / %s ms | %.1fx |\n",
               $1, $2, $3, $4, $5, $4 / $2 }'
done
