#!/usr/bin/env python3
"""constraint-stall.py: what new constraints cost the requests an engine
is already running. Against a running server (BASE, `make run`'s by
default): one greedy completion streams MAX_TOKENS tokens while, from
its 40th token on, BURST requests each with a guided_regex never sent
before (`(\\w|.){1,N}`, some 3 ms of compile each on this machine,
bench/RESULTS.md) go one after another (max_tokens 1); then the same
stream alone. Printed: the stream's time from its 40th token to its
last, with the burst and alone. Where the engine compiles each new
regex on its step loop the stream waits out every compile, some BURST
times 3 ms more than the burst's own steps cost it; where the compile
thread does them, only those steps. (Its gaps token by token are not
used: the worker sends tokens that came while it answered the burst
together.) Prints figures, asserts nothing.

usage: constraint-stall.py [BASE] [BURST] [MAX_TOKENS]
       (http://127.0.0.1:8080, 40, 300)
"""

import http.client
import json
import random
import sys
import threading
import time
import urllib.parse


def post(base, path, body, stream=False):
    u = urllib.parse.urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=120)
    c.request("POST", path, json.dumps(body),
              {"Content-Type": "application/json"})
    return c, c.getresponse()


def stream_times(base, max_tokens, times, started):
    """Each SSE token's arrival time into times."""
    c, r = post(base, "/v1/completions",
                {"model": "base", "prompt": "Once upon a time",
                 "max_tokens": max_tokens, "temperature": 0,
                 "ignore_eos": True, "stream": True})
    buf = b""
    while True:
        chunk = r.read1(4096)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            if ev.startswith(b"data: {"):
                times.append(time.monotonic())
                if len(times) == 40:
                    started.set()
    c.close()


def burst(base, n, salt, done):
    for k in range(n):
        c, r = post(base, "/v1/completions",
                    {"model": "base", "prompt": "x", "max_tokens": 1,
                     "guided_regex": "(\\w|.){1,%d}" % (200 + salt + k)})
        r.read()
        c.close()
    done.append(time.monotonic())


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    max_tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    salt = random.randrange(0, 150)

    times, done = [], []
    started = threading.Event()
    t = threading.Thread(target=stream_times,
                         args=(base, max_tokens, times, started))
    t.start()
    started.wait(60)
    t0 = time.monotonic()
    burst(base, n, salt, done)
    t.join()
    with_burst = times[-1] - times[39]

    alone = []
    stream_times(base, max_tokens, alone, threading.Event())
    by_itself = alone[-1] - alone[39]

    print("burst of %d new regexes: %.0f ms; the stream's last %d tokens:"
          " %.0f ms beside it, %.0f ms alone, +%.0f ms"
          % (n, 1000 * (done[0] - t0), len(times) - 40, 1000 * with_burst,
             1000 * by_itself, 1000 * (with_burst - by_itself)))


if __name__ == "__main__":
    main()
