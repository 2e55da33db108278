#!/bin/bash
# bench/device-peers.sh: the two GPU peers (HF PEFT's mixed-adapter
# generate and a plain PyTorch decode step with CUDA graphs), run
# unchanged from .carry/t or .carry/a (bench/device-pack.sh puts them
# there), after our engine on PEFT's shape, and the ratio of the two;
# then the run's floor on this GPU (bench/floor.py: the most any engine
# could reach over PEFT here). Their JSON goes to $OUT. A call of its
# own: PEFT alone can take most of one.
#
#   [OURS=0] [TORCH=0] [LOOKUP=1] bash bench/device-peers.sh
#
# LOOKUP=1 runs ours a second time with prompt lookup (`slora bench
# --lookup 1`: every request drafts from its own tokens, the same greedy
# tokens in fewer steps where the output repeats), its ratio printed
# beside the plain one's; the floor and the bar are the plain run's (a
# draft taken is a token the floor's count reads the weights for).

set -u
. "$(dirname "$0")/device-lib.sh"
cd "$(dirname "$0")/.."
REPO=$PWD
export OUT=${OUT:-build/device-out}
mkdir -p "$OUT"

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -d .carry/t ] && A=.carry/t || A=.carry/a

# OURS=1 (the default): our engine first, on PEFT's shape and adapters
# (32 rank-16 adapters on q,k,v,o; batch 64, prompt 256, 128 new tokens,
# greedy), so the ratio the CUDA issue sets is measured in one call;
# TORCH=0 leaves torch_decode.py out to leave PEFT the time
if [ "${OURS:-1}" = 1 ]; then
    S=/tmp/slora
    device_engine_env $PWD/$A
    $S mkadapter --model random:llama-7b --out /tmp/peft-ad --count 32 \
        --rank 16 --targets q,k,v,o > /dev/null
    timeout 120 $S bench --model random:llama-7b --device cuda \
        --adapters /tmp/peft-ad --prompt-len 256 --gen 128 --single 0 \
        --step-tokens 4096 --batches 64 2>&1 | tee "$OUT/ours.log"
    if [ "${LOOKUP:-0}" = 1 ]; then
        timeout 120 $S bench --model random:llama-7b --device cuda \
            --adapters /tmp/peft-ad --prompt-len 256 --gen 128 --single 0 \
            --step-tokens 4096 --batches 64 --lookup 1 2>&1 \
            | tee "$OUT/ours-lookup.log"
    fi
fi

cd $A
if [ "${TORCH:-1}" = 1 ]; then
    PYTHONUNBUFFERED=1 timeout 150 python3 torch_decode.py \
        > "$OUT/torch_decode.log" 2>&1
    echo "torch_decode: rc=$?"
    tail -12 "$OUT/torch_decode.log"
fi
# PEFT's mixed batch of 64 alone takes 100-150 s, the whole script 230 s
# to over 300 s depending on the machine (bench/RESULTS.md, 12:42)
PYTHONUNBUFFERED=1 timeout 420 python3 peft_baseline.py > "$OUT/peft.log" 2>&1
echo "peft_baseline: rc=$?"
grep RESULT "$OUT/peft.log" | cut -c1-1500
cat "$OUT/peft.log" | grep -E "^\{'kind'"

# ours over PEFT's mixed batch of 64, overall tokens/s both
if [ -f "$OUT/ours.log" ]; then
    ours=$(awk '$1 == 64 && $2 == 32 { print $(NF - 1) }' "$OUT/ours.log")
    peft=$(grep -o \
           "'kind': 'peft_mixed', 'adapters': 32, 'bs': 64, 'tok_s': [0-9.]*" \
           "$OUT/peft.log" | awk '{ print $NF }')
    if [ -n "$ours" ] && [ -n "$peft" ]; then
        echo "ours $ours tokens/s over PEFT's mixed $peft:" \
             "$(python3 -c "print(round($ours / $peft, 1))")x"
    fi
fi
if [ -f "$OUT/ours-lookup.log" ] && [ -n "${peft:-}" ]; then
    look=$(awk '$1 == 64 && $2 == 32 { print $(NF - 1) }' \
           "$OUT/ours-lookup.log")
    [ -n "$look" ] && echo "ours with lookup $look tokens/s over PEFT's" \
        "mixed $peft: $(python3 -c "print(round($look / $peft, 1))")x"
fi
python3 "$REPO/bench/floor.py" ${ours:+--ours $ours} ${peft:+--peft $peft} \
    --json "$OUT/floor.json"
