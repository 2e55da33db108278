#!/usr/bin/env python3
"""constraint-known.py: what a constraint the engine keeps compiled costs
the worker that takes its request. Against a running server (BASE, `make
run`'s by default, one worker): one request with a guided_regex of some
3 ms of compile (a salt, then `(.|\\n){0,600}`; bench/RESULTS.md), so
that the engine keeps it; then N requests of it one after another
(max_tokens 1). Printed: their median and 90th percentile times, the
CPU the nginx workers spent over them (utime + stime of every `nginx:
worker process`, from /proc) per request, and /status's constraints
before and after. Where the worker compiles each to check it, each
request costs a compile's CPU and a trip through the thread pool; where
it knows the engine keeps it, neither. Prints figures, asserts nothing.

usage: constraint-known.py [BASE] [N]   (http://127.0.0.1:8080, 40)
"""

import http.client
import json
import os
import random
import statistics
import sys
import time
import urllib.parse


def post(base, body):
    u = urllib.parse.urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=120)
    c.request("POST", "/v1/completions", json.dumps(body),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def status(base):
    u = urllib.parse.urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
    c.request("GET", "/status")
    j = json.loads(c.getresponse().read())
    c.close()
    return j["constraints"]


def workers_cpu():
    """Seconds of CPU (user + system) of every nginx worker process."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            if not cmd.startswith(b"nginx: worker process"):
                continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / tick


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    salt = random.randrange(1 << 30)
    body = {"model": "base", "prompt": "A text:", "max_tokens": 1,
            "guided_regex": f"#{salt}" + "(.|\\n){0,600}"}

    if post(base, body) != 200:
        sys.exit("constraint-known.py: the first request failed")
    time.sleep(0.5)

    before = status(base)
    cpu0 = workers_cpu()
    took = []
    for _ in range(n):
        t = time.monotonic()
        if post(base, body) != 200:
            sys.exit("constraint-known.py: a request failed")
        took.append(1000 * (time.monotonic() - t))
    cpu = workers_cpu() - cpu0
    after = status(base)

    took.sort()
    print(f"{n} requests of one kept regex: median "
          f"{statistics.median(took):.2f} ms, p90 "
          f"{took[int(0.9 * (n - 1))]:.2f} ms; workers' CPU "
          f"{1000 * cpu / n:.2f} ms a request")
    print(f"constraints before {json.dumps(before)}")
    print(f"constraints after  {json.dumps(after)}")


if __name__ == "__main__":
    main()
