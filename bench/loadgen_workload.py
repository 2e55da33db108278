"""loadgen_workload.py: the requests a load run replays, and when.

Two sources.  `synthetic()` is the S-LoRA paper's workload, drawn the way
its benchmarks/trace.py (generate_requests) draws it, call for call on
numpy's legacy RandomState seeded with `seed` (42 by default): adapter
indices floor(n * power(alpha)), input and output lengths randint(lo, hi)
(hi excluded), then Gamma(1/cv^2, cv^2/R) gaps summed into arrival times,
floor(R * D) requests.  The one idea to know: the order of the draws is
part of the definition, so the same seed gives the paper's very trace;
alpha = 1 is uniform popularity and a smaller alpha skews traffic toward
the low indices.  `read_trace()` reads a CSV or JSONL file (arrival time,
tenant or adapter, prompt tokens, output tokens) instead.

`check_synthetic()` measures a generated workload against what was asked
(rate, cv, popularity law, length ranges) and lists what is off; the
generator's test runs it on the real generator and on broken ones.
"""

import csv
import json
import math

import numpy as np


class Request:
    """One request of a workload; times are seconds from the run's start."""

    __slots__ = ("idx", "arrival", "adapter", "tenant", "prompt_tokens",
                 "output_tokens")

    def __init__(self, idx, arrival, adapter, tenant, prompt_tokens,
                 output_tokens):
        self.idx = idx
        self.arrival = arrival
        self.adapter = adapter          # an index (synthetic) or a name
        self.tenant = tenant            # a name, or None
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens

    def as_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}


def synthetic(n_adapters, alpha, rate, cv, duration, input_range,
              output_range, seed=42, zipf=None):
    """The paper's trace.  n_adapters = 0 means the base model only (the
    paper's n = 0 runs): every request gets adapter None.  zipf = s draws
    the adapter with P(i) ~ 1/(i+1)^s instead (Punica's skewed case), in
    the same place of the draw order."""
    if rate <= 0 or duration <= 0 or cv <= 0:
        raise ValueError("rate, duration and cv must be > 0")
    if alpha <= 0:
        raise ValueError("alpha must be > 0")
    if not (0 < input_range[0] < input_range[1]):
        raise ValueError("input range must be 0 < lo < hi")
    if not (0 < output_range[0] < output_range[1]):
        raise ValueError("output range must be 0 < lo < hi")

    rs = np.random.RandomState(seed)
    total = int(rate * duration)
    n = max(n_adapters, 1)

    if zipf is None:
        probs = rs.power(alpha, total)
        ind = (probs * n).astype(int)
    else:
        w = 1.0 / np.arange(1, n + 1, dtype=float) ** zipf
        ind = rs.choice(n, total, p=w / w.sum())

    input_lens = rs.randint(input_range[0], input_range[1], total)
    output_lens = rs.randint(output_range[0], output_range[1], total)

    shape = 1 / (cv * cv)
    scale = cv * cv / rate
    intervals = rs.gamma(shape, scale, total)

    reqs = []
    tic = 0.0
    for i in range(total):
        tic += intervals[i]
        # power() can round up to exactly 1.0, which the paper's code
        # would index out of range with
        a = min(int(ind[i]), n - 1) if n_adapters > 0 else None
        reqs.append(Request(i, float(tic), a, None, int(input_lens[i]),
                            int(output_lens[i])))
    return reqs


# Column names a trace may use for each field (first match wins).
TRACE_FIELDS = {
    "arrival": ("arrival", "arrival_time", "timestamp", "time", "t",
                "req_time"),
    "tenant": ("tenant",),
    "adapter": ("adapter", "model", "lora", "adapter_dir"),
    "prompt_tokens": ("prompt_tokens", "input_tokens", "prompt_len",
                      "input_len"),
    "output_tokens": ("output_tokens", "max_tokens", "output_len",
                      "completion_tokens"),
}


def _field(row, name):
    for k in TRACE_FIELDS[name]:
        if k in row and row[k] not in (None, ""):
            return row[k]
    return None


def _int_field(row, name, where):
    v = _field(row, name)
    if v is None:
        raise ValueError("%s: no %s (one of %s)"
                         % (where, name, ", ".join(TRACE_FIELDS[name])))
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError("%s: %s is not a number: %r" % (where, name, v))
    if not math.isfinite(f) or f != int(f) or f < 1:
        raise ValueError("%s: %s must be an integer >= 1: %r"
                         % (where, name, v))
    return int(f)


def read_trace(path):
    """Requests from a CSV (with a header line) or JSONL file, sorted by
    arrival and shifted so that the first arrives at 0."""
    rows = []
    with open(path, newline="") as f:
        head = f.read(1)
        f.seek(0)
        if head == "{" or path.endswith((".jsonl", ".json")):
            for ln, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except ValueError as e:
                    raise ValueError("%s:%d: bad JSON: %s" % (path, ln, e))
                if not isinstance(obj, dict):
                    raise ValueError("%s:%d: not a JSON object" % (path, ln))
                rows.append(("%s:%d" % (path, ln), obj))
        else:
            for ln, row in enumerate(csv.DictReader(f), 2):
                rows.append(("%s:%d" % (path, ln),
                             {k.strip(): (v.strip() if isinstance(v, str)
                                          else v)
                              for k, v in row.items() if k}))
    if not rows:
        raise ValueError("%s: no requests" % path)

    reqs = []
    for where, row in rows:
        t = _field(row, "arrival")
        if t is None:
            raise ValueError("%s: no arrival time (one of %s)"
                             % (where, ", ".join(TRACE_FIELDS["arrival"])))
        try:
            t = float(t)
        except (TypeError, ValueError):
            raise ValueError("%s: arrival is not a number: %r" % (where, t))
        if not math.isfinite(t):
            raise ValueError("%s: arrival is not finite" % where)
        tenant = _field(row, "tenant")
        adapter = _field(row, "adapter")
        reqs.append(Request(0, t, None if adapter is None else str(adapter),
                            None if tenant is None else str(tenant),
                            _int_field(row, "prompt_tokens", where),
                            _int_field(row, "output_tokens", where)))

    reqs.sort(key=lambda r: r.arrival)
    t0 = reqs[0].arrival
    for i, r in enumerate(reqs):
        r.idx = i
        r.arrival -= t0
    return reqs


def rescale(reqs, rate):
    """The trace's arrival times scaled so its mean rate is `rate` (the
    way S-LoRA replays its real trace at several rates)."""
    if len(reqs) < 2 or reqs[-1].arrival <= 0:
        raise ValueError("a trace needs two distinct arrival times to be "
                         "replayed at a rate")
    k = (len(reqs) - 1) / (reqs[-1].arrival * rate)
    return [Request(r.idx, r.arrival * k, r.adapter, r.tenant,
                    r.prompt_tokens, r.output_tokens) for r in reqs]


def write_trace(reqs, path, names=None):
    """Writes requests as a CSV trace read_trace() reads back."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arrival", "tenant", "adapter", "prompt_tokens",
                    "output_tokens"])
        for r in reqs:
            a = r.adapter
            if names is not None and isinstance(a, int):
                a = names(a)
            w.writerow(["%.6f" % r.arrival, r.tenant or "",
                        "" if a is None else a, r.prompt_tokens,
                        r.output_tokens])


def describe(reqs):
    """A few numbers that say what a workload is."""
    t = np.array([r.arrival for r in reqs])
    gaps = np.diff(np.concatenate(([0.0], t)))
    p = np.array([r.prompt_tokens for r in reqs])
    o = np.array([r.output_tokens for r in reqs])
    ad = [r.adapter for r in reqs]
    mean_gap = float(gaps.mean()) if len(gaps) else 0.0
    return {
        "requests": len(reqs),
        "span_s": float(t[-1]) if len(t) else 0.0,
        "rate": 1.0 / mean_gap if mean_gap > 0 else 0.0,
        "cv": float(gaps.std() / mean_gap) if mean_gap > 0 else 0.0,
        "adapters": len(set(ad)),
        "prompt_tokens": [int(p.min()), float(p.mean()), int(p.max())],
        "output_tokens": [int(o.min()), float(o.mean()), int(o.max())],
    }


def check_synthetic(reqs, n_adapters, alpha, rate, cv, duration,
                    input_range, output_range, rate_tol=0.05, cv_tol=0.10,
                    cdf_tol=0.02):
    """What is off in a synthetic workload against what was asked; an
    empty list when it has the requested properties.  The tolerances are
    for tens of thousands of requests."""
    bad = []
    total = int(rate * duration)
    if len(reqs) != total:
        bad.append("%d requests, not floor(R*D) = %d" % (len(reqs), total))
    if not reqs:
        return bad

    t = np.array([r.arrival for r in reqs])
    gaps = np.diff(np.concatenate(([0.0], t)))
    if (gaps < 0).any():
        bad.append("arrival times go backwards")
    got_rate = len(t) / t[-1]
    if abs(got_rate / rate - 1) > rate_tol:
        bad.append("rate %.4f, asked %.4f (more than %.0f%% off)"
                   % (got_rate, rate, rate_tol * 100))
    got_cv = gaps.std() / gaps.mean()
    if abs(got_cv / cv - 1) > cv_tol:
        bad.append("cv of inter-arrival gaps %.3f, asked %.3f (more than "
                   "%.0f%% off)" % (got_cv, cv, cv_tol * 100))

    for name, rng, vals in (
            ("input", input_range, [r.prompt_tokens for r in reqs]),
            ("output", output_range, [r.output_tokens for r in reqs])):
        v = np.array(vals)
        lo, hi = rng
        if v.min() < lo or v.max() >= hi:
            bad.append("%s lengths span [%d, %d], outside [%d, %d)"
                       % (name, v.min(), v.max(), lo, hi))
        # uniform on the integers lo..hi-1: both ends are reached and
        # the mean is the middle
        if len(v) >= 20 * (hi - lo) and (v.min() != lo or v.max() != hi - 1):
            bad.append("%s lengths never reach an end of [%d, %d)"
                       % (name, lo, hi))
        mid = (lo + hi - 1) / 2
        sd = (hi - lo) / math.sqrt(12)
        if abs(v.mean() - mid) > 5 * sd / math.sqrt(len(v)):
            bad.append("%s lengths average %.2f, not the middle %.2f of "
                       "a uniform draw" % (name, v.mean(), mid))

    if n_adapters > 0:
        idx = np.array([r.adapter for r in reqs])
        if idx.min() < 0 or idx.max() >= n_adapters:
            bad.append("adapter index outside [0, %d)" % n_adapters)
        # P(index < k) = (k/n)^alpha for numpy's power(alpha), so the
        # empirical CDF at every k must follow that curve
        counts = np.bincount(idx, minlength=n_adapters)
        cdf = np.cumsum(counts) / len(idx)
        k = np.arange(1, n_adapters + 1)
        want = (k / n_adapters) ** alpha
        dev = np.abs(cdf - want)
        worst = int(dev.argmax())
        if dev[worst] > cdf_tol:
            bad.append("popularity CDF at adapter %d is %.4f, the power "
                       "law (k/n)^alpha gives %.4f" % (worst, cdf[worst],
                                                       want[worst]))
        # and a skewed law ranks the adapters: each tenth of the index
        # range is less popular than the one before
        if alpha < 1 and n_adapters >= 10:
            deciles = [counts[i * n_adapters // 10:
                              (i + 1) * n_adapters // 10].sum()
                       for i in range(10)]
            if any(a <= b for a, b in zip(deciles, deciles[1:])):
                bad.append("popularity is not decreasing over the index "
                           "range: %s" % deciles)
    return bad
