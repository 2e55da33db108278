#!/usr/bin/env python3
"""stream-stall.py: what a stream whose client stalls costs its worker.

Sends one streamed chat of N choices x T tokens (ignore_eos, greedy) from
a client with a 4 KB receive buffer that reads nothing until the engine
has finished the answer (/status: nothing running), then reads it all.
Meanwhile it samples every worker's RssAnon (anonymous memory: what the
worker allocated, not the code or shared pages it touched) every 20 ms
and prints the peak over the value before, against a first stream of
the same shape read at once (the warm-up, which also pages in what a
first request touches); and the engine's slots the stalled stream still
held once the engine had finished it (/status slots.used).

usage: [MASTER_PID=pid] python3 bench/stream-stall.py URL [N [T]]
       (defaults 4, 1000; MASTER_PID: only that master's workers sampled)

The server's listen needs a small send buffer (`listen ... sndbuf=4k`),
or the kernel's own buffers take a stalled stream's bytes and the worker
never holds them: e.g. `make run`'s conf/nginx.conf with its listen line
so changed (bench/RESULTS.md, "A stream's memory in its worker").
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request


def workers():
    # $MASTER_PID (the server's master): its workers only, not those of
    # other nginx instances on the machine
    master = os.environ.get("MASTER_PID")
    out = subprocess.run(["pgrep", "-f"]
                         + (["-P", master] if master else [])
                         + ["nginx: worker process"],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def rss_anon(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def status(url):
    with urllib.request.urlopen(url + "/status", timeout=5) as r:
        return json.load(r)


def stream(url, n, t, stall):
    u = urllib.parse.urlparse(url)
    body = json.dumps({"model": "base", "stream": True, "n": n,
                       "max_tokens": t, "ignore_eos": True,
                       "temperature": 0,
                       "messages": [{"role": "user",
                                     "content": "Tell me a long story."}]})
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((u.hostname, u.port or 80))
    s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n"
               "Connection: close\r\n\r\n%s" % (len(body), body)).encode())
    held = 0
    if stall:
        time.sleep(0.5)
        while status(url)["requests"]["running"] > 0:
            time.sleep(0.1)
        time.sleep(0.2)
        held = status(url)["slots"]["used"]
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return data.count(b"\ndata: {") + data.startswith(b"data: {"), held


def measure(url, n, t, stall):
    ws = workers()
    before = {w: rss_anon(w) for w in ws}
    peak = dict(before)
    done = threading.Event()

    def sample():
        while not done.is_set():
            for w in ws:
                peak[w] = max(peak[w], rss_anon(w))
            time.sleep(0.02)

    th = threading.Thread(target=sample)
    th.start()
    t0 = time.time()
    events, held = stream(url, n, t, stall)
    secs = time.time() - t0
    done.set()
    th.join()
    grow = max(peak[w] - before[w] for w in ws)
    return events, grow, secs, held


def main():
    url = sys.argv[1].rstrip("/")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    t = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    for name, stall in (("read at once (warm-up)", False),
                        ("read at once", False),
                        ("stalled, then read", True)):
        events, grow, secs, held = measure(url, n, t, stall)
        print("%-24s %5d events in %6.1f s: worker RssAnon peak +%6d kB,"
              " %4d bytes an event%s"
              % (name, events, secs, grow, grow * 1024 // max(events, 1),
                 ", %d slots held once finished" % held if stall else ""))


if __name__ == "__main__":
    main()
