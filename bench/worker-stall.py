#!/usr/bin/env python3
# bench/worker-stall.py: how long a worker's event loop is held by a
# long prompt before the engine sees it. Against a running server (BASE,
# `make run`'s by default), three cases, each timed REPEAT times with the
# median and the largest printed:
#
#   tokenize 413   POST /v1/tokenize with a text of TEXT_KB kilobytes:
#                  the worker encodes it and answers 413 (too long for
#                  the context); the whole time is the worker's.
#   chat 413       the same text as one chat message: the template's
#                  render and the encoding, then the 413.
#   beside a word  one word of TEXT_KB kilobytes (random letters: the
#                  pre-tokenizer does not split it, so its byte-pair
#                  merges run over the whole of it) as a completion's
#                  prompt, and a GET /v1/models sent 50 ms after it:
#                  the GET's time is what the word costs the worker's
#                  other requests (run the server with one worker).
#                  Where slora_thread_pool is on the word is merged on
#                  a thread; with "off", on the event loop.
#   truncation     a Responses conversation of TURNS turns adding up to
#                  about TEXT_KB kilobytes with truncation "auto" and
#                  max_output_tokens 1, against the same prompt sent as
#                  the turns that truncation keeps (found from the
#                  first answer's input_tokens by asking the kept turns
#                  again): both reuse the prefix cache, so the
#                  difference is the worker's search for the turns to
#                  drop (renders and encodings).
#   conversation   a conversation of about TEXT_KB kilobytes in TURNS
#                  turns (the Conversations API; the server keeps
#                  responses): an item added, a page of items listed,
#                  an item removed, each read and written back whole by
#                  the worker; then a response in it too long for the
#                  context (413: the worker's time alone), against the
#                  same messages sent as input.
#   chain          (only where CASES names it) a chain of CHAIN_LINKS
#                  responses of 4096 short turns each (truncation
#                  "auto"; the server keeps responses, in a store of
#                  twice the chain at least), then a request continuing
#                  it whose tools are bad: its 400 comes right after the
#                  history's parse (the worker's time where
#                  slora_thread_pool is off), and a GET /v1/models sent
#                  5 ms after it, whose time is what the parse costs the
#                  worker's other requests (one worker); and the same
#                  for the chain's input tokens (parse, renders and
#                  encodings of truncation's tries).
#
# Standard library only. CASES (environment): a comma list of 413s,
# word, truncation, conversation, chain; all but chain by default.
#
#   python3 bench/worker-stall.py [BASE] [TEXT_KB] [TURNS] [REPEAT]
#       [CHAIN_LINKS]

import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
TEXT_KB = int(sys.argv[2]) if len(sys.argv) > 2 else 900
TURNS = int(sys.argv[3]) if len(sys.argv) > 3 else 400
REPEAT = int(sys.argv[4]) if len(sys.argv) > 4 else 5
CHAIN_LINKS = int(sys.argv[5]) if len(sys.argv) > 5 else 20
CASES = os.environ.get("CASES", "413s,word,truncation,conversation").split(",")

MODEL = json.load(urllib.request.urlopen(BASE + "/v1/models"))["data"][0]["id"]
rng = random.Random(1)


def words(n_bytes):
    out, n = [], 0
    while n < n_bytes:
        w = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                    for _ in range(rng.randint(2, 10)))
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:n_bytes]


def call(method, path, body=None):
    """(seconds, status, body) of one request; body, where given, sent as
    JSON."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            status, out = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, out = e.code, e.read()
    return time.perf_counter() - t0, status, out


def post(path, body):
    return call("POST", path, body)


def timed(label, path, body, want, method=None):
    times = []
    for _ in range(REPEAT):
        dt, status, out = (post(path, body) if method is None
                           else call(method, path))
        if status != want:
            sys.exit("%s: %d, not %d: %s" % (label, status, want, out[:300]))
        times.append(dt * 1000)
    print("%-34s %9.1f %9.1f" % (label, statistics.median(times), max(times)))
    return times, out


text = words(TEXT_KB * 1000)
print("server %s, model %s; a text of %d KB, %d turns, %d runs each"
      % (BASE, MODEL, TEXT_KB, TURNS, REPEAT))
print("%-34s %9s %9s" % ("case", "median ms", "max ms"))

if "413s" in CASES:
    timed("tokenize 413", "/v1/tokenize", {"model": MODEL, "prompt": text},
          413)
    timed("chat 413", "/v1/chat/completions",
          {"model": MODEL, "max_tokens": 1,
           "messages": [{"role": "user", "content": text}]}, 413)

if "word" in CASES:
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                   for _ in range(TEXT_KB * 1000))
    waits, bigs = [], []
    for _ in range(REPEAT):
        got = {}
        big = threading.Thread(target=lambda: got.update(big=post(
            "/v1/completions", {"model": MODEL, "prompt": word,
                                "max_tokens": 1})))
        big.start()
        time.sleep(0.05)
        dt, status, out = call("GET", "/v1/models")
        big.join()
        if status != 200 or got["big"][1] != 413:
            sys.exit("beside a word: %d and %d" % (status, got["big"][1]))
        waits.append(dt * 1000)
        bigs.append(got["big"][0] * 1000)
    print("%-34s %9.1f %9.1f" % ("a word of %d KB: 413" % TEXT_KB,
                                 statistics.median(bigs), max(bigs)))
    print("%-34s %9.1f %9.1f" % ("  GET /v1/models 50 ms after it",
                                 statistics.median(waits), max(waits)))

per = TEXT_KB * 1000 // TURNS
turns = []
for i in range(TURNS):
    turns.append({"role": "user", "content": "turn %d: %s" % (i, words(per))})
    if i < TURNS - 1:
        turns.append({"role": "assistant", "content": "noted %d" % i})

if "truncation" in CASES:
    body = {"model": MODEL, "input": turns, "max_output_tokens": 1,
            "temperature": 0, "truncation": "auto", "store": False}
    dt, status, out = post("/v1/responses", body)
    if status != 200:
        sys.exit("truncation: %d: %s" % (status, out[:300]))
    used = json.loads(out)["usage"]["input_tokens"]

    # the turns truncation kept: the shortest tail whose prompt is that long
    kept = None
    for k in range(1, TURNS + 1):
        tail = turns[len(turns) - (2 * k - 1):]
        _, st, o = post("/v1/responses", {"model": MODEL, "input": tail,
                                          "max_output_tokens": 1,
                                          "temperature": 0, "store": False})
        if st != 200 or json.loads(o)["usage"]["input_tokens"] >= used:
            kept = tail if st == 200 else None
            break
    if kept is None:
        sys.exit("truncation: no tail of the turns gives %d prompt tokens"
                 % used)
    print("truncation kept %d of %d turns (%d prompt tokens)"
          % ((len(kept) + 1) // 2, TURNS, used))

    t_auto, _ = timed("truncation auto, %d turns" % TURNS, "/v1/responses",
                      body, 200)
    t_kept, _ = timed("the kept turns alone", "/v1/responses",
                      {"model": MODEL, "input": kept, "max_output_tokens": 1,
                       "temperature": 0, "store": False}, 200)
    print("%-34s %9.1f" % ("truncation's own (median difference)",
                           statistics.median(t_auto)
                           - statistics.median(t_kept)))

if "conversation" in CASES:
    # the same turns as a conversation: made 20 items a call (the API's
    # most), then timed as the worker reads and writes it back
    dt, status, out = post("/v1/conversations", {"items": turns[:20]})
    if status != 200:
        sys.exit("conversation: %d: %s" % (status, out[:300]))
    cid = json.loads(out)["id"]
    for i in range(20, len(turns), 20):
        dt, status, out = post("/v1/conversations/%s/items" % cid,
                               {"items": turns[i:i + 20]})
        if status != 200:
            sys.exit("conversation items: %d: %s" % (status, out[:300]))
    print("conversation %s: %d items, about %d KB"
          % (cid, len(turns), TEXT_KB))
    timed("conversation: add an item", "/v1/conversations/%s/items" % cid,
          {"items": [{"role": "user", "content": "one more"}]}, 200)
    timed("conversation: list a page of 20",
          "/v1/conversations/%s/items" % cid,
          None, 200, method="GET")
    first = json.loads(call("GET",
                            "/v1/conversations/%s/items?order=asc&limit=%d"
                            % (cid, REPEAT))[2])["data"]
    times = []
    for it in first:
        dt, status, out = call("DELETE",
                               "/v1/conversations/%s/items/%s"
                               % (cid, it["id"]))
        if status != 200:
            sys.exit("conversation delete: %d: %s" % (status, out[:300]))
        times.append(dt * 1000)
    print("%-34s %9.1f %9.1f" % ("conversation: remove an item",
                                 statistics.median(times), max(times)))
    # a response in it, too long for the context: the worker reads the
    # conversation, renders and encodes it and answers 413, adding nothing
    timed("conversation: a response, 413", "/v1/responses",
          {"model": MODEL, "conversation": cid, "input": "and?",
           "max_output_tokens": 1, "temperature": 0, "store": False}, 413)
    timed("its items sent as input, 413", "/v1/responses",
          {"model": MODEL, "input": turns[REPEAT:] + [
              {"role": "user", "content": "one more"}] * REPEAT + [
              {"role": "user", "content": "and?"}],
           "max_output_tokens": 1, "temperature": 0, "store": False}, 413)
    call("DELETE", "/v1/conversations/%s" % cid)


def chain():
    prev, t0 = None, time.perf_counter()
    for k in range(CHAIN_LINKS):
        body = {"model": MODEL, "max_output_tokens": 1, "temperature": 0,
                "truncation": "auto",
                "input": [{"role": "user" if i % 2 == 0 else "assistant",
                           "content": "turn %d.%d: %s" % (k, i, words(60))}
                          for i in range(4096)]}
        if prev:
            body["previous_response_id"] = prev
        dt, status, out = post("/v1/responses", body)
        if status != 200:
            sys.exit("chain link %d: %d: %s" % (k, status, out[:300]))
        prev = json.loads(out)["id"]
    st = json.load(urllib.request.urlopen(BASE + "/status"))
    st = st.get("responses_store", {})
    print("a chain of %d links, %d KB stored (%.0f s to make)"
          % (CHAIN_LINKS, (st.get("size", 0) - st.get("free", 0)) // 1000,
             time.perf_counter() - t0))

    beside("continuing it, bad tools: 400", "/v1/responses",
           {"model": MODEL, "previous_response_id": prev, "input": "and?",
            "tools": "none"}, 400)
    beside("its input tokens", "/v1/responses/input_tokens",
           {"model": MODEL, "previous_response_id": prev, "input": "and?",
            "truncation": "auto"}, 200)


def beside(label, path, body, want):
    """body to path REPEAT times, each with a GET /v1/models 5 ms after
    it: the medians and largest of both."""
    waits, bigs = [], []
    for _ in range(REPEAT):
        got = {}
        big = threading.Thread(target=lambda: got.update(
            big=post(path, body)))
        big.start()
        time.sleep(0.005)
        dt, status, out = call("GET", "/v1/models")
        big.join()
        if status != 200 or got["big"][1] != want:
            sys.exit("%s: %d and %d" % (label, status, got["big"][1]))
        waits.append(dt * 1000)
        bigs.append(got["big"][0] * 1000)
    print("%-34s %9.1f %9.1f" % (label, statistics.median(bigs), max(bigs)))
    print("%-34s %9.1f %9.1f" % ("  GET /v1/models 5 ms after it",
                                 statistics.median(waits), max(waits)))


if "chain" in CASES:
    chain()
