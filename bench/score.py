#!/usr/bin/env python3
# bench/score.py: what scoring a text costs against computing it. For
# prompts of some hundreds to a few thousand tokens (a passage repeated),
# the median time of: a completion of max_tokens 1 (the prompt computed,
# one logits row); the same prompt scored, echo with logprobs 1 and
# max_tokens 0 (a logits row for every position, each turned into the
# next token's log-probability and its likeliest alternative); and with
# logprobs 5. Each prompt is new to the prefix cache (a number leads it),
# so every run computes it whole. Standard library only (the device has
# no PyPI).
#
#   python3 bench/score.py http://127.0.0.1:8080 [model] [lengths] [reps]
#
# lengths: comma-separated words of the passage repeated (default
# 200,1000); the tokens each makes are printed.

import json
import statistics
import sys
import time
import urllib.request

BASE = sys.argv[1].rstrip("/")
MODEL = sys.argv[2] if len(sys.argv) > 2 else "base"
LENGTHS = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3
                            else "200,1000").split(",")]
REPS = int(sys.argv[4]) if len(sys.argv) > 4 else 3

PASSAGE = ("The lighthouse keeper climbed the narrow stairs every evening "
           "at dusk, carrying oil for the lamp and a log book in which she "
           "wrote the ships that passed, the weather and the state of the "
           "sea. ").split()
serial = [int(time.time() * 1000) % 100000]


def post(body):
    req = urllib.request.Request(BASE + "/v1/completions",
                                 json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    t0 = time.time()
    with urllib.request.urlopen(req, timeout=600) as r:
        ans = json.load(r)
    return ans, time.time() - t0


def prompt(words):
    serial[0] += 1
    text = " ".join(PASSAGE[i % len(PASSAGE)] for i in range(words))
    return f"{serial[0]}. {text}"


print(f"== scoring against computing, {MODEL}, {REPS} runs each, medians")
print(f"{'words':>6} {'tokens':>6} {'max_tokens 1':>13} {'echo lp 1':>10} "
      f"{'echo lp 5':>10} {'scored/s':>9} {'lp 1 / plain':>12}")
for words in LENGTHS:
    plain, lp1, lp5 = [], [], []
    n = 0
    for _ in range(REPS):
        ans, dt = post({"model": MODEL, "prompt": prompt(words),
                        "max_tokens": 1, "temperature": 0})
        n = ans["usage"]["prompt_tokens"]
        plain.append(dt)
        ans, dt = post({"model": MODEL, "prompt": prompt(words),
                        "echo": True, "logprobs": 1, "max_tokens": 0})
        scored = len(ans["choices"][0]["logprobs"]["token_logprobs"])
        assert scored == ans["usage"]["prompt_tokens"], scored
        lp1.append(dt)
        ans, dt = post({"model": MODEL, "prompt": prompt(words),
                        "echo": True, "logprobs": 5, "max_tokens": 0})
        lp5.append(dt)
    p, a, b = (statistics.median(x) * 1000 for x in (plain, lp1, lp5))
    print(f"{words:>6} {n:>6} {p:>10.1f} ms {a:>7.1f} ms {b:>7.1f} ms "
          f"{n / a * 1000:>9.0f} {a / p:>12.2f}")
