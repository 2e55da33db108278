"""loadgen_report.py: turns request records into figures, tables, plots.

The figures are the paper's (S-LoRA benchmarks/run_exp.py): throughput =
completed requests / the run's wall time (which includes draining the
queue); SLO attainment = the share of *all* requests whose first token
came within the TTFT SLO, so an aborted (429) or failed request counts
as a miss; "satisfaction" = mean of 1 - (TTFT/SLO)^2 under the SLO, 0
otherwise; TTFT percentiles over the completed requests.  The one idea
to know: a record's outcome is one of ok, aborted (HTTP 429: the
server's early abort or overload answer) and error (anything else,
including a stream cut short), and every figure says over which of them
it is taken.
"""

import os

import numpy as np


def _pct(vals, q):
    return float(np.percentile(vals, q)) if len(vals) else None


def _mean(vals):
    return float(np.mean(vals)) if len(vals) else None


def summarize(recs, wall, slo_ttft):
    n = len(recs)
    ok = [r for r in recs if r["outcome"] == "ok"]
    aborted = [r for r in recs if r["outcome"] == "aborted"]
    errors = [r for r in recs if r["outcome"] == "error"]
    ttft = [r["ttft"] for r in ok if r["ttft"] is not None]
    e2e = [r["e2e"] for r in ok]
    itl = [x for r in ok for x in r["itl"]]
    lag = [r["sent"] - r["arrival"] for r in recs]
    met = [r for r in recs if r["slo_met"]]
    sat = [max(0.0, 1 - (r["ttft"] / slo_ttft) ** 2) if r["slo_met"]
           else 0.0 for r in recs]
    comp = sum(r["usage_completion_tokens"] or 0 for r in ok)
    prompt_off = [r for r in ok if r["usage_prompt_tokens"] is not None
                  and r["usage_prompt_tokens"] != r["prompt_tokens"]]
    short = [r for r in ok if r["usage_completion_tokens"] is not None
             and r["usage_completion_tokens"] < r["output_tokens"]]
    status = {}
    for r in recs:
        k = str(r["status"]) if r["status"] is not None else "none"
        status[k] = status.get(k, 0) + 1
    errs = {}
    for r in errors:
        errs[r["error"]] = errs.get(r["error"], 0) + 1

    return {
        "requests": n,
        "ok": len(ok),
        "aborted_429": len(aborted),
        "errors": len(errors),
        "status": status,
        "error_kinds": dict(sorted(errs.items(), key=lambda kv: -kv[1])[:5]),
        "wall_s": wall,
        "throughput_rps": len(ok) / wall if wall > 0 else 0.0,
        "goodput_rps": len(met) / wall if wall > 0 else 0.0,
        "completion_tokens_per_s": comp / wall if wall > 0 else 0.0,
        "slo_ttft_s": slo_ttft,
        "attainment": len(met) / n if n else 0.0,
        "satisfaction": float(np.mean(sat)) if n else 0.0,
        "ttft_mean_s": _mean(ttft),
        "ttft_p50_s": _pct(ttft, 50),
        "ttft_p90_s": _pct(ttft, 90),
        "ttft_p99_s": _pct(ttft, 99),
        "itl_p50_s": _pct(itl, 50),
        "itl_p99_s": _pct(itl, 99),
        "e2e_mean_s": _mean(e2e),
        "e2e_p50_s": _pct(e2e, 50),
        "e2e_p99_s": _pct(e2e, 99),
        "send_lag_p99_s": _pct(lag, 99),
        "send_lag_max_s": max(lag) if lag else None,
        "prompt_tokens_off": len(prompt_off),
        "short_outputs": len(short),
    }


def _ms(v):
    return "-" if v is None else "%.0f" % (v * 1000)


TABLE_COLS = ("label", "rate", "reqs", "ok", "429", "err", "attain",
              "req/s", "tok/s", "ttft p50 ms", "ttft p99 ms", "itl p50 ms",
              "e2e p50 ms")


def table_rows(doc):
    rows = []
    for run in doc["runs"]:
        s = run["summary"]
        rows.append((doc.get("label") or "-", "%g" % run["rate"],
                     str(s["requests"]), str(s["ok"]),
                     str(s["aborted_429"]), str(s["errors"]),
                     "%.1f%%" % (100 * s["attainment"]),
                     "%.2f" % s["throughput_rps"],
                     "%.0f" % s["completion_tokens_per_s"],
                     _ms(s["ttft_p50_s"]), _ms(s["ttft_p99_s"]),
                     _ms(s["itl_p50_s"]), _ms(s["e2e_p50_s"])))
    return rows


def format_table(rows, markdown=False):
    cols = [TABLE_COLS] + list(rows)
    if markdown:
        out = ["| " + " | ".join(TABLE_COLS) + " |",
               "|" + "|".join("---" for _ in TABLE_COLS) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    w = [max(len(r[i]) for r in cols) for i in range(len(TABLE_COLS))]
    return "\n".join("  ".join(c.rjust(w[i]) if i else c.ljust(w[i])
                               for i, c in enumerate(r)) for r in cols)


def _cdf(ax, vals, label):
    if not vals:
        return
    v = np.sort(np.asarray(vals))
    ax.plot(v, np.arange(1, len(v) + 1) / len(v), label=label)


def plot_cdfs(docs, path):
    """TTFT, inter-token and end-to-end latency CDFs, one line per run
    (label and rate) of every results document."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    slo = None
    for doc in docs:
        for run in doc["runs"]:
            ok = [r for r in run["requests"] if r["outcome"] == "ok"]
            name = "%s R=%g" % (doc.get("label") or "", run["rate"])
            _cdf(axes[0], [r["ttft"] for r in ok if r["ttft"] is not None],
                 name.strip())
            _cdf(axes[1], [x for r in ok for x in r["itl"]], name.strip())
            _cdf(axes[2], [r["e2e"] for r in ok], name.strip())
            slo = run["summary"]["slo_ttft_s"]
    if slo is not None:
        axes[0].axvline(slo, color="grey", linestyle="--", linewidth=1)
    for ax, t in zip(axes, ("time to first token (s)",
                            "inter-token latency (s)",
                            "end-to-end latency (s)")):
        ax.set_xlabel(t)
        ax.set_ylabel("share of completed requests")
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.set_xscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle("latency CDFs (completed requests; TTFT SLO dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(docs, path):
    """Throughput and SLO attainment against the request rate."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for doc in docs:
        rates = [run["rate"] for run in doc["runs"]]
        s = [run["summary"] for run in doc["runs"]]
        name = doc.get("label") or "run"
        a1.plot(rates, [x["throughput_rps"] for x in s], "o-", label=name)
        a2.plot(rates, [100 * x["attainment"] for x in s], "o-",
                label=name)
    lo = min(r["rate"] for d in docs for r in d["runs"])
    hi = max(r["rate"] for d in docs for r in d["runs"])
    a1.plot([lo, hi], [lo, hi], color="grey", linestyle=":", linewidth=1,
            label="offered")
    a1.set_xlabel("request rate (req/s)")
    a1.set_ylabel("throughput (completed req/s)")
    a2.set_xlabel("request rate (req/s)")
    a2.set_ylabel("SLO attainment (%)")
    a2.set_ylim(0, 105)
    for ax in (a1, a2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(docs, out_dir):
    """latency-cdf.png, and rate-sweep.png when a document swept rates;
    returns the paths written."""
    paths = [os.path.join(out_dir, "latency-cdf.png")]
    plot_cdfs(docs, paths[0])
    if any(len(d["runs"]) > 1 for d in docs):
        paths.append(os.path.join(out_dir, "rate-sweep.png"))
        plot_sweep(docs, paths[1])
    return paths
