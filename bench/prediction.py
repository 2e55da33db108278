#!/usr/bin/env python3
"""prediction.py: what chat's `prediction` (OpenAI's predicted outputs)
saves, through a running slora server: each task is asked greedy
without a prediction, then with four: the answer itself, the answer
with an identifier renamed throughout (an edit that changes a token
every line or so), the answer with a paragraph inserted in its middle,
and an unrelated text. Every answer must be the one without a
prediction, or part from it only where bf16's drift can flip a
near-tie (the GPU's verify steps and decode steps compute the same
logits by different kernels): the run says per row where an answer
parts and by how much the token it parts at led the runner-up without
a prediction. The table gives the median
seconds of `rounds` runs, tokens/s, the speed-up against no
prediction, and the prediction tokens taken and rejected. Prints
figures, asserts nothing.

usage: prediction.py [BASE_URL] [MODEL] [ROUNDS]
       (http://127.0.0.1:8080/v1, base, 3)
"""

import json
import statistics
import sys
import time
import urllib.request

TASKS = [
    "Write a Python function that adds two numbers, with an example.",
    "Write a Python class for a bank account with deposit and withdraw.",
    "Write a short README for a command line tool that counts words.",
]


def ask(base, model, content, prediction=None):
    body = {"model": model, "temperature": 0, "max_tokens": 256,
            "messages": [{"role": "user", "content": content}]}
    if prediction is not None:
        body["prediction"] = {"type": "content", "content": prediction}
    req = urllib.request.Request(base + "/chat/completions",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        out = json.load(r)
    secs = time.perf_counter() - t
    d = out["usage"].get("completion_tokens_details") or {}
    return (out["choices"][0]["message"]["content"], secs,
            out["usage"]["completion_tokens"],
            d.get("accepted_prediction_tokens", 0),
            d.get("rejected_prediction_tokens", 0))


def margins(base, model, content):
    """The answer without a prediction, token by token, with each token's
    lead over the runner-up (log-probabilities; greedy, so the pick is
    the top one)."""
    body = {"model": model, "temperature": 0, "max_tokens": 256,
            "logprobs": True, "top_logprobs": 2,
            "messages": [{"role": "user", "content": content}]}
    req = urllib.request.Request(base + "/chat/completions",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        out = json.load(r)
    return [(e["token"], e["top_logprobs"][0]["logprob"]
             - e["top_logprobs"][1]["logprob"])
            for e in out["choices"][0]["logprobs"]["content"]]


def parting(want, got, toks):
    """Where got parts from want: the token of want it parts at and that
    token's lead over the runner-up, as "token k (lead m)"."""
    c = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b),
             min(len(want), len(got)))
    n = 0
    for k, (t, lead) in enumerate(toks):
        n += len(t)
        if n > c:
            return f"token {k} (lead {lead:.3f})"
    return f"at its end ({len(toks)} tokens)"


def renamed(text):
    """An identifier renamed throughout: the first word of 4+ letters that
    recurs, else every "the"."""
    words = [w.strip("():,.`*#") for w in text.split()]
    for w in words:
        if len(w) >= 4 and w.isidentifier() and words.count(w) >= 3:
            return text.replace(w, w + "_v2"), w
    return text.replace("the", "this"), "the"


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/v1"
    model = sys.argv[2] if len(sys.argv) > 2 else "base"
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3

    print("| task | prediction | tokens | s (median) | tokens/s | speed-up "
          "| taken | rejected | same answer |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")

    for k, task in enumerate(TASKS):
        want, _, _, _, _ = ask(base, model, task)
        edit, word = renamed(want)
        mid = len(want) // 2
        kinds = [("none", None), ("the answer", want),
                 (f"renamed {word}", edit),
                 ("a paragraph inserted",
                  want[:mid] + "\n\nNote: this part was added later.\n\n"
                  + want[mid:]),
                 ("unrelated", TASKS[(k + 1) % len(TASKS)] * 8)]
        plain = None

        toks = None

        for name, pred in kinds:
            runs = [ask(base, model, task, pred) for _ in range(rounds)]
            secs = statistics.median(r[1] for r in runs)
            n = runs[0][2]
            plain = plain or secs
            bad = next((r[0] for r in runs if r[0] != want), None)
            if bad is not None:
                toks = toks or margins(base, model, task)
            print(f"| {k + 1} | {name} | {n} | {secs:.3f} | "
                  f"{n / secs:.1f} | {plain / secs:.2f}x | {runs[0][3]} | "
                  f"{runs[0][4]} | "
                  + ("yes" if bad is None
                     else "parts at " + parting(want, bad, toks)) + " |")


if __name__ == "__main__":
    main()
