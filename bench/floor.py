"""bench/floor.py: the floor of the CUDA issue's run against HF PEFT (the
Llama-7B shape, 32 rank-16 adapters on q,k,v,o, batch 64, prompt 256, 128
new tokens, greedy) on the GPU it runs on, by DESIGN.md section 8: the
prompts' FLOPs over the measured bf16 GEMM rate, then every decode step's
bytes (the weights once, the KV of every sequence at its context, the
adapter rows in use) over the measured copy rate. The copy rate is
measured as ../shared/bench/torch_decode.py measures it (a 2 GiB copy,
read and write counted); the GEMM rate is torch's bf16 matmul at 8192^3.

    python3 bench/floor.py [--ours TOKENS_S] [--peft TOKENS_S] [--json F]

With PEFT's mixed-batch figure it prints the most any engine could reach
over it on this GPU (the floor's tokens/s over PEFT's), the bar's 80x as
seconds against the floor, and with ours, our run over the floor. Needs
torch and a GPU; prints figures, asserts nothing."""
import argparse, json, sys

H, L, FF, V = 4096, 32, 11008, 32000
BATCH, PROMPT, GEN = 64, 256, 128
ADAPTERS, RANK, TARGETS = 32, 16, 4         # q, k, v, o: in H, out H each
BAR = 80.0


def counts():
    """FLOPs of the prompts, bytes of each decode step (a list)."""
    layer = 4 * H * H + 3 * H * FF             # q,k,v,o; gate, up, down
    matmul = L * layer
    tokens = BATCH * PROMPT
    # the projections, causal attention (QK^T and PV, half the square),
    # LoRA's shrink and expand, and one row of logits a sequence
    flops = (2 * matmul * tokens
             + L * BATCH * 2 * 2 * (PROMPT * PROMPT // 2) * H
             + L * TARGETS * 2 * 2 * tokens * H * RANK
             + 2 * BATCH * H * V)
    weights = 2 * (matmul + H * V + L * 2 * H + H)   # the head, the norms
    rows = 2 * L * ADAPTERS * TARGETS * RANK * (H + H)
    kv_token = 2 * L * 2 * H                  # K and V, every layer, bf16
    steps = []
    for i in range(1, GEN):                   # the first token is a prompt's
        ctx = PROMPT + i
        steps.append(weights + BATCH * ctx * kv_token + rows)
    return flops, steps, weights, rows


def rates():
    import torch
    dt, dev = torch.bfloat16, "cuda"
    a = torch.empty(1 << 30, dtype=dt, device=dev).normal_()
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    s, e = torch.cuda.Event(True), torch.cuda.Event(True)
    torch.cuda.synchronize(); s.record()
    for _ in range(20):
        b.copy_(a)
    e.record(); torch.cuda.synchronize()
    copy = 2 * a.numel() * 2 / (s.elapsed_time(e) / 20 * 1e-3)
    del a, b
    n = 8192
    x = torch.randn(n, n, dtype=dt, device=dev)
    y = torch.randn(n, n, dtype=dt, device=dev)
    for _ in range(3):
        x @ y
    torch.cuda.synchronize(); s.record()
    for _ in range(20):
        x @ y
    e.record(); torch.cuda.synchronize()
    gemm = 2 * n ** 3 / (s.elapsed_time(e) / 20 * 1e-3)
    return copy, gemm, torch.cuda.get_device_name()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", type=float)
    ap.add_argument("--peft", type=float)
    ap.add_argument("--json")
    o = ap.parse_args()
    flops, steps, weights, rows = counts()
    copy, gemm, name = rates()
    prompts_s = flops / gemm
    decode_s = sum(steps) / copy
    floor = prompts_s + decode_s
    tokens = BATCH * GEN
    r = dict(device=name, copy_TBps=round(copy / 1e12, 3),
             gemm_TFLOPs=round(gemm / 1e12, 1), prompt_flops=flops,
             prompts_s=round(prompts_s, 4), decode_steps=len(steps),
             weights_GB=round(weights / 1e9, 2), rows_GB=round(rows / 1e9, 3),
             mean_step_GB=round(sum(steps) / len(steps) / 1e9, 2),
             decode_s=round(decode_s, 4), floor_s=round(floor, 4),
             floor_tokens_s=round(tokens / floor, 1))
    print(f"floor on {name}: copy {r['copy_TBps']} TB/s, GEMM "
          f"{r['gemm_TFLOPs']} TFLOP/s; prompts {flops:.3e} FLOP "
          f"{prompts_s:.3f} s + {len(steps)} decode steps of "
          f"{r['mean_step_GB']} GB on average {decode_s:.3f} s = "
          f"{floor:.3f} s, {r['floor_tokens_s']} tokens/s")
    if o.ours:
        r["ours_over_floor"] = round(tokens / o.ours / floor, 3)
        print(f"ours {o.ours} tokens/s: the run {tokens / o.ours:.3f} s, "
              f"{r['ours_over_floor']}x the floor")
    if o.peft:
        r["most_over_peft"] = round(tokens / floor / o.peft, 1)
        need = tokens / (BAR * o.peft)
        r["bar_over_floor"] = round(need / floor, 3)
        print(f"PEFT {o.peft} tokens/s: at the floor an engine reaches "
              f"{r['most_over_peft']}x it; {BAR:.0f}x needs the run in "
              f"{need:.3f} s, {r['bar_over_floor']}x the floor"
              + (" (below it: no engine can)" if need < floor else ""))
    if o.json:
        json.dump(r, open(o.json, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
