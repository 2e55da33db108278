#!/usr/bin/env python3
"""lora-stall.py: what a run-time adapter registration costs the streams
already running on a server (`make run`: SmolLM2 on the CPU, the folder
catalog in conf/adapters/), figures only, no assertion; bench/RESULTS.md
has the recorded runs.

One streamed chat of the base model (greedy, 400 tokens, its end of
text ignored) runs while vLLM's load_lora_adapter registers ADAPTER (a
folder under conf/adapters/, made beforehand, e.g. `bin/slora mkadapter
--model models/SmolLM2-135M-Instruct.Q4_1.gguf --rank 64 --targets
q,k,v,o,gate,up,down --out conf/adapters/.bench/big`: 75 MB) under
fresh names, one after another, ROUNDS times. Printed: the stream's
token gaps (median, p99 and the largest) while no registration was out
and while one was, and each registration's time, client side. A
registration whose folder the engine's thread reads itself stalls every
stream for as long as the read takes.

usage: bench/lora-stall.py ADAPTER [ROUNDS]   (ADAPTER: a folder's path;
       ROUNDS: 5; BASE: http://127.0.0.1:8080)
"""

import json
import os
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request

BASE = os.environ.get("BASE", "http://127.0.0.1:8080")


def call(path, body):
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(),
                                 method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def stream(arrivals, first):
    """Reads a streamed chat, an arrival time for each event with
    content; sets first once tokens flow."""
    body = {"model": "base", "stream": True, "max_tokens": 400,
            "temperature": 0, "ignore_eos": True,
            "messages": [{"role": "user",
                          "content": "Tell me a long story about a ship."}]}
    req = urllib.request.Request(BASE + "/v1/chat/completions",
                                 data=json.dumps(body).encode(),
                                 method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        for line in r:
            if not line.startswith(b"data: {"):
                continue
            arrivals.append(time.monotonic())
            if len(arrivals) == 20:
                first.set()


def summary(gaps):
    if not gaps:
        return "none"
    gaps = sorted(gaps)
    p99 = gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))]
    return "%4d gaps, median %6.1f ms, p99 %6.1f ms, largest %6.1f ms" % (
        len(gaps), statistics.median(gaps) * 1e3, p99 * 1e3,
        gaps[-1] * 1e3)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    folder = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5

    arrivals, first = [], threading.Event()
    reader = threading.Thread(target=stream, args=(arrivals, first))
    reader.start()
    if not first.wait(120):
        sys.exit("lora-stall.py: the stream did not start")

    windows, names = [], []
    for k in range(rounds):
        time.sleep(0.3)
        name = "stall-%d-%d" % (os.getpid(), k)
        t0 = time.monotonic()
        status, out = call("/v1/load_lora_adapter",
                           {"lora_name": name, "lora_path": folder})
        t1 = time.monotonic()
        if status != 200:
            sys.exit("lora-stall.py: load_lora_adapter: %d %s"
                     % (status, out[:200]))
        names.append(name)
        windows.append((t0, t1))
        print("registration %d: %.1f ms" % (k + 1, (t1 - t0) * 1e3))
    reader.join()

    for name in names:
        call("/v1/unload_lora_adapter", {"lora_name": name})

    quiet, during = [], []
    for a, b in zip(arrivals, arrivals[1:]):
        # a gap belongs to a registration if it overlaps its window
        out = any(b > t0 and a < t1 for t0, t1 in windows)
        (during if out else quiet).append(b - a)
    print("tokens streamed: %d" % len(arrivals))
    print("no registration out:  " + summary(quiet))
    print("a registration out:   " + summary(during))


if __name__ == "__main__":
    main()
