#!/bin/bash
# bench/device-peers.sh: the two GPU peers (HF PEFT's mixed-adapter
# generate and a plain PyTorch decode step with CUDA graphs), run
# unchanged from .carry/t or .carry/a (bench/device-pack.sh puts them
# there); their JSON goes to $OUT. A call of its own: PEFT alone can
# take most of one.

set -u
cd "$(dirname "$0")/.."
export OUT=${OUT:-build/device-out}
mkdir -p "$OUT"

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -d .carry/t ] && cd .carry/t || cd .carry/a
PYTHONUNBUFFERED=1 timeout 150 python3 torch_decode.py > "$OUT/torch_decode.log" 2>&1
echo "torch_decode: rc=$?"
tail -12 "$OUT/torch_decode.log"
# PEFT's mixed batch of 64 alone takes 100-150 s, the whole script 230 s
# to over 300 s depending on the machine (bench/RESULTS.md, 12:42)
PYTHONUNBUFFERED=1 timeout 420 python3 peft_baseline.py > "$OUT/peft.log" 2>&1
echo "peft_baseline: rc=$?"
grep RESULT "$OUT/peft.log" | cut -c1-1500
