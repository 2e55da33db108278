#!/usr/bin/env python3
"""bench/kernel-times.py: where a decode step's device time goes, kernel by
kernel, from an Nsight Compute CSV of every kernel a `slora bench` run
launched (`ncu --csv --metrics gpu__time_duration.sum`, each kernel timed
alone: bench/device-engine.sh kernel-times writes it).

The kernels are cut into steps at each argmax (a greedy step's last
kernel). A decode step is one with the decode attention and no prefill
attention; it is a LoRA step where a LoRA kernel ran in it. For the
decode steps of each kind: how many, their kernels' time summed (the
median step), and, kernel by kernel (the name up to its template
arguments), launches and microseconds a step. The median step is taken
among the steps of the most common kernel count, which at the run's
full batch are most of them. Against a step's time in a run without the
profiler (the bench's "full step", every request decoding), the sum says how
much of the step the kernels themselves take and how much is between
them (launch, ramp, drain: what fusing kernels would save). The decode
LoRA shrinks run beside the base GEMMs on a side stream in a real step,
so a LoRA step's sum counts them as if in line; their part is said.

    python3 bench/kernel-times.py ncu.csv [--step-ms BASE,LORA]

Prints figures, asserts nothing.
"""

import argparse
import csv
import re
import statistics
import sys


def short(name):
    """A kernel's name without its return type, template arguments and
    parameters: what tells two kernels apart in a table."""
    name = re.sub(r"^void ", "", name)
    depth = 0
    out = []
    for ch in name:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out).strip() or name[:60]


def read(path):
    """(name, microseconds) for each kernel, in launch order."""
    with open(path, newline="") as f:
        lines = [ln for ln in f if ln.startswith('"')]
    rows = csv.DictReader(lines)
    kernels = {}
    for r in rows:
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        ident = int(r["ID"])
        value = float(r["Metric Value"].replace(",", ""))
        unit = r.get("Metric Unit", "nsecond")
        scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0,
                 "msecond": 1e3, "ms": 1e3, "second": 1e6,
                 "s": 1e6}.get(unit)
        if scale is None:
            sys.exit(f"{path}: a duration in {unit!r}")
        kernels[ident] = (short(r["Kernel Name"]), value * scale)
    if not kernels:
        sys.exit(f"{path}: no gpu__time_duration.sum rows")
    return [kernels[i] for i in sorted(kernels)]


def steps(kernels):
    """The kernels cut after each argmax."""
    cur = []
    for k in kernels:
        cur.append(k)
        if "argmax" in k[0]:
            yield cur
            cur = []


def kind(step):
    """"lora" or "base" for a decode step, None for any other."""
    names = {k[0] for k in step}
    if any(n.startswith(("slora_pf_kernel", "slora_attn_kernel"))
           for n in names):
        return None
    if not any(n.startswith("slora_dec") for n in names):
        return None
    if any(n.startswith(("slora_gmv", "slora_gmm", "slora_lora"))
           for n in names):
        return "lora"
    return "base"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--step-ms", default="",
                    help="BASE,LORA: decode step times without the profiler")
    a = ap.parse_args()

    by = {"base": [], "lora": []}
    for st in steps(read(a.csv)):
        k = kind(st)
        if k is not None:
            by[k].append(st)

    ref = {}
    if a.step_ms:
        b, l = a.step_ms.split(",")
        ref = {"base": float(b), "lora": float(l)}

    for k, sts in by.items():
        if not sts:
            print(f"{k}: no decode steps")
            continue
        # the steps of the most common length: the full batch's
        n = statistics.mode(len(s) for s in sts)
        full = [s for s in sts if len(s) == n]
        sums = sorted(sum(t for _, t in s) for s in full)
        med = statistics.median(sums)
        line = (f"{k}: {len(full)} decode steps of {n} kernels; their "
                f"kernels' time summed {med / 1e3:.3f} ms a step (median; "
                f"{sums[0] / 1e3:.3f}-{sums[-1] / 1e3:.3f})")
        if k in ref:
            line += (f"; the step without the profiler {ref[k]:.3f} ms: "
                     f"{(ref[k] - med / 1e3):.3f} ms between kernels "
                     f"({100 * (1 - med / 1e3 / ref[k]):.1f}%)")
        print(line)
        side = statistics.median(sum(t for n, t in s
                                     if n.startswith("slora_gmv_shrink"))
                                 for s in full)
        if side > 0:
            print(f"  of which the decode LoRA shrinks {side / 1e3:.3f} ms, "
                  f"which the step runs beside the base GEMMs (on a side "
                  f"stream): the sum counts them as if in line")
        per = {}
        for s in full:
            for name, t in s:
                c = per.setdefault(name, [0, 0.0])
                c[0] += 1
                c[1] += t
        print(f"  {'kernel':<44} {'launches':>9} {'us a step':>10} "
              f"{'share':>6}")
        for name, (cnt, t) in sorted(per.items(), key=lambda x: -x[1][1]):
            print(f"  {name[:44]:<44} {cnt / len(full):9.1f} "
                  f"{t / len(full):10.1f} {100 * t / len(full) / med:5.1f}%")


if __name__ == "__main__":
    main()
