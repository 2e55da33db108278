#!/usr/bin/env python3
# bench/n-choices.py: what n choices of one chat cost against one, on a
# running server: each round sends a chat with a system prompt of its
# own (some 460 tokens behind a fresh tag, so no earlier request left it
# in the prefix cache), sampled at temperature 0.8, max_tokens 16 with
# ignore_eos, first with n = 1, then with n = N; prints the times, their
# ratio and the usage. With the prefix cache the N choices compute the
# prompt once; without it (slora_engine prefix_cache=off) each computes
# it. Standard library only.
#
#   python3 bench/n-choices.py http://127.0.0.1:8080 [N [rounds]]

import json
import sys
import time
import urllib.request

BASE = sys.argv[1].rstrip("/")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 8
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
URL = BASE + "/v1/chat/completions"

SYSTEM = ("You answer questions about the city library. Be brief, polite "
          "and exact; say so when you do not know. The library opens at "
          "nine and closes at six, Monday to Saturday, and lends books "
          "for three weeks, films for one. ") * 6


def chat(tag, n):
    body = {"model": "base", "max_tokens": 16, "ignore_eos": True,
            "temperature": 0.8, "n": n,
            "messages": [{"role": "system", "content": f"[{tag}] " + SYSTEM},
                         {"role": "user", "content": "When do you open?"}]}
    req = urllib.request.Request(URL, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    t0 = time.time()
    with urllib.request.urlopen(req, timeout=600) as r:
        ans = json.load(r)
    return time.time() - t0, ans["usage"]


print(f"{'round':>5} {'n = 1':>9} {'n = ' + str(N):>9} {'ratio':>6}  usage")
stamp = int(time.time() * 1000)
for k in range(ROUNDS):
    t1, u1 = chat(f"{stamp}-{k}-a", 1)
    tn, un = chat(f"{stamp}-{k}-b", N)
    print(f"{k:>5} {t1:>8.2f}s {tn:>8.2f}s {tn / t1:>6.2f}  "
          f"prompt {un['prompt_tokens']}, cached "
          f"{un['prompt_tokens_details']['cached_tokens']}, completion "
          f"{u1['completion_tokens']} and {un['completion_tokens']}")
