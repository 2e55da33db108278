#!/usr/bin/env python3
"""lookup.py: what `slora_engine speculate=lookup` (drafts from a
request's own prompt and output) saves, through running slora servers.

`lookup.py run URL FILE` asks each task greedy, one at a time, ROUNDS
times, then three tasks at once and all tasks twice over at once
(bursts of 3 and 2 x tasks), and writes the answers, the median
seconds, the bursts' tokens/s and the server's /status `lookup` counts \
per task to FILE
(JSON). Run it against a server without speculate, then one with it.
`lookup.py compare OFF LOOKUP` prints the table: per task the tokens,
seconds and tokens/s of both, the speed-up, the draft tokens taken and
rejected, and whether the answers are the same (or the token where
they part and by how much it led the runner-up without speculate: on a
GPU bf16 may flip a near-tie); then the bursts' tokens/s on both. \
Prints figures, asserts nothing.

usage: lookup.py run URL FILE [MODEL] [ROUNDS]   (URL as
           http://127.0.0.1:8080; base; 3)
       lookup.py compare OFF.json LOOKUP.json
"""

import json
import statistics
import sys
import threading
import time
import urllib.request

from prediction import margins, parting

CODE = """def total(items):
    x = 0
    for item in items:
        if item > 0:
            x = x + item
    return x


def average(items):
    if not items:
        return 0
    return total(items) / len(items)
"""

TEXT = ("The quick brown fox jumps over the lazy dog. It was a sunny day "
        "in the park, and the children were playing near the old oak "
        "tree. Their parents sat on the benches, talking about the "
        "weather and the news of the week.")

TASKS = [
    ("rename", "Rename the variable x to count in this Python code and "
     "return the whole code:\n\n" + CODE),
    ("docstrings", "Add a docstring to each function in this Python "
     "code:\n\n" + CODE),
    ("quote", "Repeat this text word for word, then say how many "
     "sentences it has:\n\n" + TEXT),
    ("hash", "Explain what a hash table is."),
    ("class", "Write a Python class for a bank account with deposit and "
     "withdraw."),
    ("colours", "Name three colours."),
]


def post(url, body):
    req = urllib.request.Request(url + "/v1/chat/completions",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


def lookup_counts(url):
    with urllib.request.urlopen(url + "/status", timeout=30) as r:
        s = json.load(r)
    lk = s.get("lookup") or {}
    return lk.get("accepted", 0), lk.get("rejected", 0)


def body(model, content):
    return {"model": model, "temperature": 0, "max_tokens": 256,
            "messages": [{"role": "user", "content": content}]}


def burst(url, model, contents):
    """All of contents at once: the tokens/s they make together."""
    got = []

    def one(content):
        j = post(url, body(model, content))
        got.append(j["usage"]["completion_tokens"])

    threads = [threading.Thread(target=one, args=(c,)) for c in contents]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    secs = time.perf_counter() - t
    return {"streams": len(threads), "tokens": sum(got), "secs": secs,
            "tokens_per_s": sum(got) / secs}


def ready(url):
    """Waits for the engine (up to 10 minutes: a random 7B is made)."""
    end = time.time() + 600
    while time.time() < end:
        try:
            with urllib.request.urlopen(url + "/status", timeout=30) as r:
                if json.load(r).get("engine", {}).get("ready"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    sys.exit("lookup.py: %s not ready in 600 s" % url)


def run(url, path, model, rounds):
    ready(url)
    out = {"url": url, "model": model, "tasks": {}}
    for name, content in TASKS:
        secs = []
        a0, r0 = lookup_counts(url)
        for _ in range(rounds):
            t = time.perf_counter()
            j = post(url, body(model, content))
            secs.append(time.perf_counter() - t)
        a1, r1 = lookup_counts(url)
        out["tasks"][name] = {
            "text": j["choices"][0]["message"]["content"],
            "tokens": j["usage"]["completion_tokens"],
            "secs": statistics.median(secs),
            "accepted": (a1 - a0) / rounds, "rejected": (r1 - r0) / rounds,
            "margins": margins(url + "/v1", model, content),
        }

    # bursts: the first three tasks at once, then every task twice
    out["bursts"] = [burst(url, model, [c for _, c in TASKS[:3]]),
                     burst(url, model, [c for _, c in TASKS] * 2)]

    with open(path, "w") as f:
        json.dump(out, f, indent=1)


def compare(off_path, on_path):
    off = json.load(open(off_path))
    on = json.load(open(on_path))
    print("| task | tokens | off s | lookup s | off tok/s | lookup tok/s "
          "| speed-up | drafts taken / rejected | answer |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, _ in TASKS:
        a, b = off["tasks"][name], on["tasks"][name]
        print("| %s | %d | %.3f | %.3f | %.1f | %.1f | %.2fx | %d / %d | %s |"
              % (name, b["tokens"], a["secs"], b["secs"],
                 a["tokens"] / a["secs"], b["tokens"] / b["secs"],
                 a["secs"] / b["secs"], b["accepted"], b["rejected"],
                 "same" if a["text"] == b["text"]
                 else "parts at " + parting(a["text"], b["text"],
                                            a["margins"])))
    print()
    for a, b in zip(off["bursts"], on["bursts"]):
        print("%d at once: off %.1f tokens/s, lookup %.1f tokens/s (%.2fx)"
              % (b["streams"], a["tokens_per_s"], b["tokens_per_s"],
                 b["tokens_per_s"] / a["tokens_per_s"]))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3],
            sys.argv[4] if len(sys.argv) > 4 else "base",
            int(sys.argv[5]) if len(sys.argv) > 5 else 3)
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
