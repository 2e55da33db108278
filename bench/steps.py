#!/usr/bin/env python3
"""bench/steps.py: where a serving run's engine time went, from the step
logs that $SLORA_STEP_LOG writes (engine/slora_engine_log.c): for each
log, the totals (steps, host and forward seconds, the device's part of
the forward, the steps that captured a decode graph and the forward's
time making GEMM plans where the log has them, the host's four parts),
then a line per window of the run (steps, host and forward seconds,
prefill tokens, the most running and waiting), then the steps with the
most host time.

    python3 bench/steps.py [--window S] [--top N] steps-nginx.csv ...

Two logs of one workload (bench/device-slo.sh writes steps-nginx.csv and
steps-replay.csv) compare line by line. Prints figures, asserts nothing.
"""

import argparse
import csv
import sys

PARTS = ("install_ms", "resolve_ms", "plan_ms", "warm_ms")


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not all(k in rows[0] for k in ("ms", "host_ms", "run_ms")):
        sys.exit(f"{path}: not a step log (no ms, host_ms, run_ms columns)")
    return rows


def num(row, key):
    v = row.get(key)
    return float(v) if v not in (None, "") else 0.0


def summary(path, rows, window, top):
    print(f"== {path}: {len(rows)} steps")
    if not rows:
        return
    host = sum(num(r, "host_ms") for r in rows) / 1e3
    run = sum(num(r, "run_ms") for r in rows) / 1e3
    span = (num(rows[-1], "ms") + num(rows[-1], "host_ms")
            + num(rows[-1], "run_ms") - num(rows[0], "ms")) / 1e3
    parts = [k for k in PARTS if k in rows[0]]
    device = sum(num(r, "device_ms") for r in rows) / 1e3
    captures = [r for r in rows if num(r, "captured") > 0]
    setups = [r for r in rows if num(r, "setup_ms") > 0]
    line = f"total: {span:.1f} s, host {host:.1f} s, forward {run:.1f} s"
    if device > 0:
        line += f" (device {device:.1f} s)"
    if captures:
        line += (f" ({len(captures)} steps captured a decode graph: "
                 f"forward "
                 f"{sum(num(r, 'run_ms') for r in captures) / 1e3:.1f} s)")
    if setups:
        line += (f" ({len(setups)} steps made GEMM plans: "
                 f"{sum(num(r, 'setup_ms') for r in setups) / 1e3:.3f} s)")
    rows_ms = sum(num(r, "rows_ms") for r in rows) / 1e3
    if rows_ms > 0:
        line += f" (rows worked out on the host: {rows_ms:.3f} s)"
    if parts:
        line += " (host: " + ", ".join(
            f"{k[:-3]} {sum(num(r, k) for r in rows) / 1e3:.1f} s"
            for k in parts) + ")"
    print(line)

    t0 = num(rows[0], "ms")
    wins = {}
    for r in rows:
        w = wins.setdefault(int((num(r, "ms") - t0) / (window * 1e3)),
                            [0, 0.0, 0.0, 0, 0, 0])
        w[0] += 1
        w[1] += num(r, "host_ms") / 1e3
        w[2] += num(r, "run_ms") / 1e3
        w[3] += int(num(r, "prefill"))
        w[4] = max(w[4], int(num(r, "running")))
        w[5] = max(w[5], int(num(r, "waiting")))
    print(f"{'from s':>7} {'steps':>6} {'host s':>7} {'fwd s':>7} "
          f"{'prefill':>8} {'running':>8} {'waiting':>8}")
    for k in sorted(wins):
        w = wins[k]
        print(f"{k * window:7.0f} {w[0]:6d} {w[1]:7.2f} {w[2]:7.2f} "
              f"{w[3]:8d} {w[4]:8d} {w[5]:8d}")

    print(f"the {top} steps with the most host time (ms):")
    for r in sorted(rows, key=lambda r: -num(r, "host_ms"))[:top]:
        detail = ", ".join(f"{k[:-3]} {num(r, k):.1f}" for k in parts)
        print(f"  at {(num(r, 'ms') - t0) / 1e3:8.2f} s: host "
              f"{num(r, 'host_ms'):8.1f}"
              + (f" ({detail})" if detail else "")
              + f", forward {num(r, 'run_ms'):.1f}, items {r.get('items')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--window", type=float, default=5.0,
                    help="seconds a line (5)")
    ap.add_argument("--top", type=int, default=5,
                    help="steps listed by host time (5)")
    ap.add_argument("logs", nargs="+")
    a = ap.parse_args()
    if a.window <= 0 or a.top < 0:
        sys.exit("--window must be > 0 and --top >= 0")
    for path in a.logs:
        summary(path, read(path), a.window, a.top)


if __name__ == "__main__":
    main()
