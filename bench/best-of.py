#!/usr/bin/env python3
# bench/best-of.py: a completion's best_of on a running server, against
# the ranking the same candidates give by hand. For each seed: n=4 with
# logprobs and return_token_ids (best_of's candidates, the same draws:
# both take the host's picks), each stop id's log-probability scored as
# a prompt (vLLM's prompt_logprobs of the candidate's ids), the
# candidates' means a token (their tokens alone, and their stop ids
# counted), then best_of=4. Prints each candidate, which one each
# ranking puts first, best_of's answer, whether it is the ranking's
# first, and the two requests' times. Asserts nothing. Standard library
# only.
#
#   python3 bench/best-of.py http://127.0.0.1:8080 [seeds]

import json
import sys
import time
import urllib.request

BASE = sys.argv[1].rstrip("/")
SEEDS = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2
                          else "7,18,24").split(",")]
ASK = "Say hi in three words"


def post(path, body):
    req = urllib.request.Request(BASE + path, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    t0 = time.time()
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r), time.time() - t0


def stop_logprob(prompt, ids):
    """The last id's log-probability after the rest, scored as a prompt."""
    ans, _ = post("/v1/completions",
                  {"model": "base", "prompt": prompt + ids, "max_tokens": 1,
                   "prompt_logprobs": 0})
    return ans["choices"][0]["prompt_logprobs"][-1][str(ids[-1])]["logprob"]


def main():
    prompt = post("/v1/tokenize",
                  {"model": "base",
                   "messages": [{"role": "user", "content": ASK}]})[0]
    prompt = prompt["tokens"]
    same = 0
    for seed in SEEDS:
        ask = {"model": "base", "prompt": prompt, "max_tokens": 24,
               "temperature": 1.0, "seed": seed}
        four, t_four = post("/v1/completions",
                            dict(ask, n=4, logprobs=0,
                                 return_token_ids=True))
        rows = []
        for c in sorted(four["choices"], key=lambda c: c["index"]):
            lp = c["logprobs"]["token_logprobs"]
            ids = c["token_ids"]
            stop = None
            if c["finish_reason"] == "stop" and len(ids) == len(lp) + 1:
                stop = stop_logprob(prompt, ids)
            alone = sum(lp) / len(lp) if lp else float("-inf")
            both = ((sum(lp) + stop) / (len(lp) + 1) if stop is not None
                    else alone)
            rows.append((c["text"], len(lp), stop, alone, both))
        best, t_best = post("/v1/completions", dict(ask, best_of=4))
        text = best["choices"][0]["text"]
        by_alone = max(range(4), key=lambda i: rows[i][3])
        by_both = max(range(4), key=lambda i: rows[i][4])
        same += text == rows[by_both][0]
        print(f"seed {seed}: n=4 {t_four:.3f} s, best_of=4 {t_best:.3f} s")
        for i, (t, n, stop, alone, both) in enumerate(rows):
            s = "-" if stop is None else f"{stop:.3f}"
            print(f"  {i}: {n:2d} tokens, stop {s:>7}, mean {alone:.3f},"
                  f" with stop {both:.3f}  {t[:40]!r}")
        print(f"  first by tokens alone {by_alone}, with stop ids "
              f"{by_both}; best_of's answer {text[:40]!r}: "
              + ("the first with stop ids" if text == rows[by_both][0]
                 else "ANOTHER"))
    print(f"best_of's answer the ranking's first: {same} of {len(SEEDS)}")


main()
