"""test_loadgen.py: bench/loadgen's workload generator and trace files.

For fixed seeds, the synthetic workload must have what was asked: the
request count floor(R*D), the rate within 5%, the cv of the inter-arrival
gaps within 10%, adapter popularity following numpy's power(alpha) law
(empirical CDF within 0.02 of (k/n)^alpha, and decreasing deciles when
alpha < 1), lengths inside [lo, hi) reaching both ends with the middle as
their mean.  The one idea to know: the same checks are then run on
broken generators (the real one with one draw changed: exponential gaps,
a 10% faster clock, uniform or reversed popularity, an inclusive upper
bound, a lower bound never drawn) and each must be caught, so the checks
are shown to have teeth.  Trace files: a CSV written and read back is
the same workload, JSONL reads too, bad rows name their file and line,
rescaling hits the asked rate.

usage: test_loadgen.py  (prints one JSON line {"checks": [[name, ok,
detail], ...]}; exit 0 when every check passed; t/loadgen.t turns each
check into a TAP test)
"""

import json
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import loadgen_deps  # noqa: E402

loadgen_deps.ensure()

import numpy as np  # noqa: E402

import loadgen_client  # noqa: E402
import loadgen_workload as w  # noqa: E402

checks = []


def check(name, ok, detail=""):
    checks.append([name, bool(ok), str(detail)[:400]])
    return ok


# (n adapters, alpha, rate, cv, duration, input range, output range)
CONFIGS = [
    (100, 0.3, 10.0, 4.0, 4000, (8, 512), (8, 512)),
    (200, 1.0, 2.0, 1.0, 10000, (8, 512), (8, 512)),
    (2000, 0.1, 10.0, 2.0, 3000, (8, 512), (16, 128)),
    (5, 0.6, 6.0, 8.0, 20000, (32, 64), (8, 9)),
]


def run_checks(cfg, seed=42, **kw):
    reqs = w.synthetic(*cfg, seed=seed)
    return reqs, w.check_synthetic(reqs, *cfg, **kw)


for cfg in CONFIGS:
    reqs, bad = run_checks(cfg)
    d = w.describe(reqs)
    check("n=%d alpha=%g R=%g cv=%g D=%g: %d requests, rate %.3f, cv %.3f"
          % (cfg[:5] + (d["requests"], d["rate"], d["cv"])),
          not bad, "; ".join(bad))

# determinism: a seed is a trace
a = [r.as_dict() for r in w.synthetic(*CONFIGS[1], seed=7)]
b = [r.as_dict() for r in w.synthetic(*CONFIGS[1], seed=7)]
c = [r.as_dict() for r in w.synthetic(*CONFIGS[1], seed=8)]
check("the same seed gives the same trace", a == b)
check("another seed gives another trace", a != c)
check("arrival times increase",
      all(x["arrival"] < y["arrival"] for x, y in zip(a, a[1:])))

# n = 0: the base model only
r0 = w.synthetic(0, 1.0, 5.0, 1.0, 100, (8, 512), (8, 512))
check("n=0: no request names an adapter",
      len(r0) == 500 and all(r.adapter is None for r in r0))

# the draw order is the paper's: adapters, then input lengths, then output
# lengths, then gaps, each a whole vector from one RandomState
rs = np.random.RandomState(42)
p = rs.power(0.5, 300)
il = rs.randint(8, 512, 300)
ol = rs.randint(8, 512, 300)
gaps = rs.gamma(1 / 4.0, 4.0 / 3.0, 300)
r1 = w.synthetic(50, 0.5, 3.0, 2.0, 100, (8, 512), (8, 512))
check("draw order: adapters, inputs, outputs, gaps (numpy legacy stream)",
      [r.adapter for r in r1] == [int(x) for x in p * 50]
      and [r.prompt_tokens for r in r1] == list(il)
      and [r.output_tokens for r in r1] == list(ol)
      and np.allclose([r.arrival for r in r1], np.cumsum(gaps),
                      rtol=0, atol=1e-9))

# ---- broken generators must fail the checks ----

RealRS = np.random.RandomState


class ExpGaps(RealRS):
    def gamma(self, shape, scale, size=None):
        return self.exponential(shape * scale, size)


class FastClock(RealRS):
    def gamma(self, shape, scale, size=None):
        return RealRS.gamma(self, shape, scale / 1.1, size)


class UniformPop(RealRS):
    def power(self, a, size=None):
        return self.random_sample(size)


class ReversedPop(RealRS):
    def power(self, a, size=None):
        return 1 - RealRS.power(self, a, size)


class InvertedAlpha(RealRS):
    def power(self, a, size=None):
        return RealRS.power(self, 1 / a, size)


class InclusiveHigh(RealRS):
    def randint(self, lo, hi=None, size=None, dtype=int):
        return RealRS.randint(self, lo, hi + 1, size)


class NoLowEnd(RealRS):
    def randint(self, lo, hi=None, size=None, dtype=int):
        return RealRS.randint(self, lo + 1, hi, size)


MUTANTS = [
    (ExpGaps, CONFIGS[0], "cv of inter-arrival"),
    (FastClock, CONFIGS[1], "rate"),
    (UniformPop, CONFIGS[0], "popularity"),
    (ReversedPop, CONFIGS[2], "popularity"),
    (InvertedAlpha, CONFIGS[0], "popularity"),
    (InclusiveHigh, CONFIGS[1], "outside"),
    (NoLowEnd, CONFIGS[1], "never reach"),
]

for cls, cfg, want in MUTANTS:
    np.random.RandomState = cls
    try:
        _, bad = run_checks(cfg)
    finally:
        np.random.RandomState = RealRS
    check("a broken generator (%s) is caught: %s" % (cls.__name__, want),
          any(want in b for b in bad), "; ".join(bad) or "not caught")

# ---- trace files ----

tmp = tempfile.mkdtemp(prefix="loadgen-test-")
reqs = w.synthetic(20, 0.5, 4.0, 2.0, 50, (8, 100), (8, 50))
path = os.path.join(tmp, "t.csv")
w.write_trace(reqs, path, names=lambda i: "a%02d" % i)
back = w.read_trace(path)
check("a CSV trace reads back as the same workload",
      len(back) == len(reqs)
      and all(abs(x.arrival - (y.arrival - reqs[0].arrival)) < 2e-6
              and x.adapter == "a%02d" % y.adapter
              and x.prompt_tokens == y.prompt_tokens
              and x.output_tokens == y.output_tokens
              for x, y in zip(back, reqs)))

jl = os.path.join(tmp, "t.jsonl")
with open(jl, "w") as f:
    f.write('{"timestamp": 12.5, "tenant": "acme", "prompt_tokens": 30, '
            '"max_tokens": 7}\n')
    f.write('\n{"timestamp": 10.0, "model": "a3", "input_len": 9, '
            '"output_len": 100}\n')
jr = w.read_trace(jl)
check("a JSONL trace: sorted, shifted to 0, field aliases",
      [(r.arrival, r.tenant, r.adapter, r.prompt_tokens, r.output_tokens)
       for r in jr] == [(0.0, None, "a3", 9, 100),
                        (2.5, "acme", None, 30, 7)],
      [r.as_dict() for r in jr])

bad_csv = os.path.join(tmp, "bad.csv")
with open(bad_csv, "w") as f:
    f.write("arrival,adapter,prompt_tokens,output_tokens\n0,a,5,5\n"
            "1,a,,5\n")
try:
    w.read_trace(bad_csv)
    check("a row without prompt tokens is refused", False, "accepted")
except ValueError as e:
    check("a row without prompt tokens is refused, naming file:line",
          "bad.csv:3" in str(e) and "prompt_tokens" in str(e), e)

for text, what in (("arrival,adapter,prompt_tokens,output_tokens\n"
                    "x,a,5,5\n", "arrival"),
                   ("arrival,adapter,prompt_tokens,output_tokens\n"
                    "0,a,5,2.5\n", "output_tokens"),
                   ("arrival,adapter,prompt_tokens,output_tokens\n"
                    "0,a,0,5\n", "prompt_tokens")):
    with open(bad_csv, "w") as f:
        f.write(text)
    try:
        w.read_trace(bad_csv)
        check("a bad %s is refused" % what, False, "accepted")
    except ValueError as e:
        check("a bad %s is refused, naming file:line" % what,
              what in str(e) and "bad.csv:2" in str(e), e)

sc = w.rescale(back, 10.0)
span = sc[-1].arrival
check("rescale: the trace replays at the asked mean rate",
      abs((len(sc) - 1) / span - 10.0) < 1e-9, (len(sc) - 1) / span)

# ---- prompts: n tokens from the measured a + b*k ----

cal = loadgen_client.Calibration("Hello", 1, 1, True, {})
check("a prompt of n tokens with a BOS: n - 1 words",
      cal.prompt(10) == " ".join(["Hello"] * 9))
cal = loadgen_client.Calibration("Hello", 0, 1, True, {})
check("... without: n words", cal.words_for(8) == 8)

shutil.rmtree(tmp)
print(json.dumps({"checks": checks}))
sys.exit(0 if all(c[1] for c in checks) else 1)
