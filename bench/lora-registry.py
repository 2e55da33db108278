#!/usr/bin/env python3
"""lora-registry.py: what vLLM's runtime adapter registration costs on a
running server (`make run`: SmolLM2 on the CPU, the folder catalog in
conf/adapters/), figures only, no assertion; bench/RESULTS.md has the
recorded run.

  - load_lora_adapter, one request after another, N names over three
    copies of conf/adapters/demo-r16 kept in conf/adapters/.bench/ (a
    hidden folder the scan leaves alone): each answer's time, client
    side (the engine reads and checks the folder, then loads it into
    host memory and the pool);
  - the engine killed with 0 and then with N registrations in the zone:
    the time from the kill to a new engine's /health 200, and the first
    chat of a registered name after it;
  - unload_lora_adapter of every name, likewise.

usage: bench/lora-registry.py [N]   (N: 1024, the zone's most; BASE:
       http://127.0.0.1:8080)
"""

import json
import os
import shutil
import signal
import statistics
import sys
import time
import urllib.error
import urllib.request

BASE = os.environ.get("BASE", "http://127.0.0.1:8080")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "conf", "adapters", ".bench")


def call(method, path, body=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            out = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        out = e.read()
        status = e.code
    return status, out, time.monotonic() - t0


def engine_pid():
    status, out, _ = call("GET", "/status")
    return json.loads(out)["engine"]["pid"] if status == 200 else None


def chat(model):
    return call("POST", "/v1/chat/completions",
                {"model": model, "max_tokens": 8, "temperature": 0,
                 "messages": [{"role": "user", "content": "Say hi"}]})


def restart():
    """Kills the engine; seconds until a new one answers /health 200."""
    old = engine_pid()
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    while True:
        pid = engine_pid()
        if pid and pid != old and call("GET", "/health")[0] == 200:
            return time.monotonic() - t0
        time.sleep(0.005)


def ms(xs):
    xs = sorted(xs)
    return "%.1f / %.1f / %.1f" % (1e3 * statistics.median(xs),
                                   1e3 * xs[int(0.9 * (len(xs) - 1))],
                                   1e3 * xs[-1])


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    src = os.path.join(ROOT, "conf", "adapters", "demo-r16")
    shutil.rmtree(BENCH, ignore_errors=True)
    folders = []
    for k in range(3):
        d = os.path.join(BENCH, "v%d" % k)
        shutil.copytree(src, d)
        folders.append(os.path.realpath(d))

    try:
        base_restart = restart()
        names = ["bench%04d" % i for i in range(n)]
        loads = []
        for i, name in enumerate(names):
            status, out, t = call("POST", "/v1/load_lora_adapter",
                                  {"lora_name": name,
                                   "lora_path": folders[i % 3]})
            if status != 200:
                sys.exit("load %s: %d %s" % (name, status, out[:200]))
            loads.append(t)

        full_restart = restart()
        status, out, first = chat(names[-1])
        if status != 200:
            sys.exit("chat after the restart: %d %s" % (status, out[:200]))

        unloads = []
        for name in names:
            status, out, t = call("POST", "/v1/unload_lora_adapter",
                                  {"lora_name": name})
            if status != 200:
                sys.exit("unload %s: %d %s" % (name, status, out[:200]))
            unloads.append(t)
    finally:
        shutil.rmtree(BENCH, ignore_errors=True)

    print("adapter: conf/adapters/demo-r16 (rank 16), %d names over 3 "
          "folders, %s" % (n, BASE))
    print("| what | figure |")
    print("|---|---|")
    print("| load_lora_adapter, ms (median / p90 / max) | %s |" % ms(loads))
    print("| unload_lora_adapter, ms (median / p90 / max) | %s |"
          % ms(unloads))
    print("| engine killed to /health 200, no registrations, s | %.2f |"
          % base_restart)
    print("| engine killed to /health 200, %d registrations, s | %.2f |"
          % (n, full_restart))
    print("| first chat of a registered name after it, ms | %.1f |"
          % (1e3 * first))


if __name__ == "__main__":
    main()
