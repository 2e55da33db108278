#!/usr/bin/env python3
# bench/chat-stream.py: what a user of the server sees, on a device
# machine: waits until the engine behind BASE is ready (its /status), then
# streams three chat completions one by one, printing each answer, its
# token count, time to first token and tokens/s; asks one long prompt
# twice (the second takes the first's KV pages from the prefix cache:
# its cached tokens, both times and whether the answers are equal), then
# under vLLM's cache_salt (pages only within one salt); four
# sampled choices of one prompt in one request (n=4); a logit_bias that
# forces a token; vLLM's allowed_token_ids (greedy and sampled, each
# token checked), include_stop_str_in_output, bad_words and
# truncate_prompt_tokens; JSON mode (greedy, and
# four sampled choices: each
# parsed); a JSON schema (greedy, and four sampled choices: each checked
# for the schema's keys in order and their types); tool calls under
# tool_choice "required" (each checked against its function's
# parameters), guided_choice, guided_regex and a schema of patterns and
# formats (each answer checked here); a Responses API stream (its
# events, its text against chat's) and the same in the background
# (answered queued, polled to its end; streamed, dropped after 6 events
# and picked up again); the chat's answer as GET stream's bare text; a
# text scored with
# echo, and a greedy continuation scored back against generation's
# figures; vLLM's prompt_logprobs (ranks) and return_token_ids; then 16
# at once for the aggregate tokens/s. Standard library
# only (the device has no PyPI).
#
#   python3 bench/chat-stream.py http://127.0.0.1:18080 [max_tokens]

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from json_city import CITY

BASE = sys.argv[1].rstrip("/")
MAX_TOKENS = int(sys.argv[2]) if len(sys.argv) > 2 else 128
URL = BASE + "/v1/chat/completions"

t_wait = time.time()
for i in range(1800):
    try:
        st = json.load(urllib.request.urlopen(BASE + "/status", timeout=2))
        if st["engine"]["ready"]:
            break
    except Exception:
        pass
    time.sleep(0.5)
print(f"engine ready after {time.time() - t_wait:.0f} s")

MODEL = json.load(urllib.request.urlopen(BASE + "/v1/models"))["data"][0]["id"]
print(f"== {MODEL}")


def chat(msg, out):
    body = json.dumps({"model": MODEL,
                       "messages": [{"role": "user", "content": msg}],
                       "max_tokens": MAX_TOKENS, "temperature": 0,
                       "stream": True}).encode()
    req = urllib.request.Request(URL, body,
                                 {"Content-Type": "application/json"})
    t0 = time.time()
    first = None
    n = 0
    text = []
    with urllib.request.urlopen(req, timeout=600) as r:
        for line in r:
            line = line.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            for ch in ev.get("choices", []):
                piece = ch.get("delta", {}).get("content")
                if piece:
                    if first is None:
                        first = time.time()
                    n += 1
                    text.append(piece)
    t1 = time.time()
    out.append((msg, "".join(text), n, (first or t1) - t0,
                (n - 1) / (t1 - first) if first and n > 1 else 0.0))


for msg in ["What is the capital of France?",
            "Write a haiku about GPUs.",
            "Explain LoRA in one sentence."]:
    res = []
    chat(msg, res)
    m, text, n, ttft, tps = res[0]
    print(f"> {m}\n{text.strip()[:300]}\n[{n} tokens, first after "
          f"{ttft * 1000:.0f} ms, {tps:.0f} tokens/s]\n")

# the prefix cache: one long system prompt asked about twice, greedy; the
# second takes the first's KV pages and computes only the rest
SYSTEM = ("You answer questions for the staff of a small lending library. "
          "Be brief, polite and exact; say so when you do not know. "
          "The library opens at nine and closes at six, Monday to "
          "Saturday, and lends books for three weeks, films for one. ") * 4


def post(body):
    """One chat completion, not streamed: its answer, parsed."""
    req = urllib.request.Request(URL, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


def ask(question, salt=None):
    t0 = time.time()
    body = {"model": MODEL, "max_tokens": 32, "temperature": 0,
            "messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": question}]}
    if salt is not None:
        body["cache_salt"] = salt
    ans = post(body)
    u = ans["usage"]
    return (ans["choices"][0]["message"]["content"], u["prompt_tokens"],
            u.get("prompt_tokens_details", {}).get("cached_tokens"),
            time.time() - t0)


a = ask("When does the library open?")
b = ask("When does the library open?")
print(f"prefix cache: a {a[1]}-token prompt twice: cached {a[2]} then "
      f"{b[2]} tokens, answered in {a[3] * 1000:.0f} then "
      f"{b[3] * 1000:.0f} ms, the answers "
      + ("equal" if a[0] == b[0] else f"differ:\n  {a[0]!r}\n  {b[0]!r}"))

# vLLM's cache_salt: the same prompt's pages only for the same salt;
# salts new to the server (a round before this one cached its own)
run = f"{os.getpid()}-{time.time_ns()}"
c = ask("When does the library open?", f"salt-a-{run}")
d = ask("When does the library open?", f"salt-a-{run}")
e = ask("When does the library open?", f"salt-b-{run}")
print(f"cache_salt: cached {c[2]} for a salt's first, {d[2]} for its "
      f"second, {e[2]} for another salt's first: "
      + ("ok" if c[2] == 0 and d[2] and d[2] > 0 and e[2] == 0
         else "WRONG")
      + ("; the answers equal" if c[0] == d[0] == e[0] == a[0]
         else f"; the answers differ: {c[0]!r} {d[0]!r} {e[0]!r}"))

# n choices: four sampled answers to one prompt in one request, four
# engine requests that share the prompt's pages
t0 = time.time()
ans = post({"model": MODEL, "max_tokens": 48, "temperature": 0.8, "seed": 3,
            "n": 4,
            "messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user",
                          "content": "Suggest a film for tonight."}]})
u = ans["usage"]
print(f"n=4: {len(ans['choices'])} choices, {u['completion_tokens']} tokens"
      f" in {(time.time() - t0) * 1000:.0f} ms, "
      f"{u['prompt_tokens_details']['cached_tokens']} of "
      f"{u['prompt_tokens']} prompt tokens cached")
for c in ans["choices"]:
    print(f"  [{c['index']}] {c['message']['content'].strip()[:100]!r} "
          f"({c['finish_reason']})")

# logit_bias: +100 on one token (SmolLM2's " banana", 21285) makes a
# greedy answer that token over and over
ans = post({"model": MODEL, "max_tokens": 4, "temperature": 0,
            "ignore_eos": True, "logit_bias": {"21285": 100},
            "messages": [{"role": "user", "content": "Name a colour."}]})
print(f"logit_bias +100 on token 21285: "
      f"{ans['choices'][0]['message']['content']!r}")

# vLLM's allowed_token_ids (the ids of " yes no maybe", as the server
# tokenizes them), greedy and sampled, each token named by its id
# (return_tokens_as_token_ids) and checked to be one of them; and
# include_stop_str_in_output: the greedy answer up to the end of a stop
# string taken from it
req = urllib.request.Request(URL.replace("/chat/completions", "/tokenize"),
                             json.dumps({"prompt": " yes no maybe",
                                         "add_special_tokens": False})
                             .encode(), {"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=600) as r:
    allow = json.load(r)["tokens"]
for temp in (0, 1.5):
    ans = post({"model": MODEL, "max_tokens": 12, "temperature": temp,
                "seed": 3, "allowed_token_ids": allow, "logprobs": True,
                "return_tokens_as_token_ids": True,
                "messages": [{"role": "user", "content": "Is it raining?"}]})
    got = [int(e["token"].split(":")[1])
           for e in ans["choices"][0]["logprobs"]["content"]]
    print(f"allowed_token_ids {allow} T={temp}: {len(got)} tokens, "
          f"{'each one of them' if set(got) <= set(allow) else 'OTHERS'}: "
          f"{ans['choices'][0]['message']['content']!r}")
free = post({"model": MODEL, "max_tokens": 16, "temperature": 0,
             "messages": [{"role": "user", "content": "Name a colour."}]})
free = free["choices"][0]["message"]["content"]
stop = free[4:7]
inc = post({"model": MODEL, "max_tokens": 16, "temperature": 0,
            "stop": [stop], "include_stop_str_in_output": True,
            "messages": [{"role": "user", "content": "Name a colour."}]})
inc = inc["choices"][0]
want = free[:free.find(stop) + len(stop)] if stop else None
same = inc["message"]["content"] == want
print(f"include_stop_str_in_output {stop!r}: {inc['message']['content']!r} "
      f"({inc['finish_reason']}), "
      f"{'the answer to its end' if same else 'NOT ' + repr(want)}")

# vLLM's bad_words: the greedy answer's first word made a bad word, made
# into runs of tokens here as vLLM makes them (the word, and with a space
# before it where that starts with another token in as many tokens), and
# no run found in the answer's tokens (named by id); and
# truncate_prompt_tokens: a prompt cut to its last 8 tokens


def tokens(text):
    req = urllib.request.Request(
        URL.replace("/chat/completions", "/tokenize"),
        json.dumps({"prompt": text, "add_special_tokens": False}).encode(),
        {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)["tokens"]


words = free.split()
bad = words[0].strip(".,!?") if words else "the"
runs = [tokens(bad)]
spaced = tokens(" " + bad)
if spaced and spaced[0] != runs[0][0] and len(spaced) == len(runs[0]):
    runs.append(spaced)
nob = post({"model": MODEL, "max_tokens": 16, "temperature": 0,
            "bad_words": [bad], "logprobs": True,
            "return_tokens_as_token_ids": True,
            "messages": [{"role": "user", "content": "Name a colour."}]})
got = [int(e["token"].split(":")[1])
       for e in nob["choices"][0]["logprobs"]["content"]]
found = [r for r in runs
         if any(got[i:i + len(r)] == r for i in range(len(got)))]
print(f"bad_words [{bad!r}], runs {runs}: "
      f"{nob['choices'][0]['message']['content']!r}, "
      f"{'none of them in it' if not found else 'RUNS IN IT: ' + str(found)}")
cut = post({"model": MODEL, "max_tokens": 4, "temperature": 0,
            "truncate_prompt_tokens": 8,
            "messages": [{"role": "user", "content": "Name a colour."}]})
print(f"truncate_prompt_tokens 8: {cut['usage']['prompt_tokens']} prompt "
      f"tokens, {cut['choices'][0]['message']['content']!r}")

# JSON mode: response_format json_object, greedy and n=4 sampled; each
# answer parsed (a "length" one was cut by max_tokens before it closed)
for n, temp in ((1, 0), (4, 1.0)):
    t0 = time.time()
    ans = post({"model": MODEL, "max_tokens": 96, "temperature": temp,
                "seed": 5, "n": n,
                "response_format": {"type": "json_object"},
                "messages": [{"role": "user", "content":
                              "Reply in JSON: what are three fruits and "
                              "their colours?"}]})
    print(f"JSON mode n={n} T={temp}: {ans['usage']['completion_tokens']} "
          f"tokens in {(time.time() - t0) * 1000:.0f} ms")
    for c in ans["choices"]:
        try:
            kind = type(json.loads(c["message"]["content"])).__name__
        except ValueError:
            kind = "not whole"
        print(f"  [{c['index']}] {kind}, {c['finish_reason']}: "
              f"{' '.join(c['message']['content'].split())[:100]!r}")

# response_format json_schema: greedy and n=4 sampled; each answer
# checked for the schema's keys in its order and their types (a
# "length" one was cut by max_tokens before it closed)


def admits(text):
    try:
        o = json.loads(text)
    except ValueError:
        return "not whole"
    ok = (list(o) == list(CITY["properties"])
          and isinstance(o["name"], str) and len(o["name"]) <= 24
          and type(o["population"]) is int
          and isinstance(o["coastal"], bool)
          and o["size"] in ("small", "large")
          and 1 <= len(o["districts"]) <= 3
          and all(isinstance(d, str) and len(d) <= 16
                  for d in o["districts"]))
    return "admitted" if ok else "NOT ADMITTED"


for n, temp in ((1, 0), (4, 1.0)):
    t0 = time.time()
    ans = post({"model": MODEL, "max_tokens": 160, "temperature": temp,
                "seed": 5, "n": n,
                "response_format": {"type": "json_schema", "json_schema": {
                    "name": "city", "schema": CITY}},
                "messages": [{"role": "user", "content":
                              "Describe a city in JSON."}]})
    print(f"JSON schema n={n} T={temp}: {ans['usage']['completion_tokens']} "
          f"tokens in {(time.time() - t0) * 1000:.0f} ms")
    for c in ans["choices"]:
        print(f"  [{c['index']}] {admits(c['message']['content'])}, "
              f"{c['finish_reason']}: "
              f"{' '.join(c['message']['content'].split())[:100]!r}")

# tools: tool_choice "required" over two functions, greedy and n=4
# sampled; each answer checked to be calls (one or more) of them, each
# with arguments its parameters admit (a "length" one was cut first)
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "parameters": {
        "type": "object", "required": ["city"], "properties": {
            "city": {"type": "string", "maxLength": 32},
            "unit": {"enum": ["celsius", "fahrenheit"]}}}}},
         {"type": "function", "function": {
             "name": "get_time", "parameters": {
                 "type": "object", "required": ["timezone"],
                 "additionalProperties": False, "properties": {
                     "timezone": {"type": "string", "maxLength": 32}}}}}]


def call_ok(m):
    calls = m.get("tool_calls") or []
    if not calls or m.get("content") is not None:
        return "NOT A CALL"
    for c in calls:
        f = c["function"]
        try:
            a = json.loads(f["arguments"])
        except ValueError:
            return "not whole"
        if f["name"] == "get_weather":
            ok = (isinstance(a.get("city"), str)
                  and set(a) <= {"city", "unit"}
                  and a.get("unit", "celsius") in ("celsius", "fahrenheit"))
        else:
            ok = (f["name"] == "get_time" and set(a) == {"timezone"}
                  and isinstance(a["timezone"], str))
        if not ok:
            return "NOT ADMITTED"
    return "admitted" if len(calls) == 1 else f"{len(calls)} admitted"


for n, temp in ((1, 0), (4, 1.0)):
    t0 = time.time()
    ans = post({"model": MODEL, "max_tokens": 64, "temperature": temp,
                "seed": 5, "n": n, "tools": TOOLS,
                "tool_choice": "required",
                "messages": [{"role": "user", "content":
                              "What is the weather in Lisbon?"}]})
    print(f"tools required n={n} T={temp}: "
          f"{ans['usage']['completion_tokens']} tokens in "
          f"{(time.time() - t0) * 1000:.0f} ms")
    for c in ans["choices"]:
        m = c["message"]
        f = (m.get("tool_calls") or [{}])[0].get("function", {})
        args = " ".join(str(f.get("arguments")).split())[:80]
        print(f"  [{c['index']}] {call_ok(m)}, {c['finish_reason']}: "
              f"{f.get('name')}({args})")

# guided_choice: n=4 sampled answers, each one of the texts
TEXTS = ["positive", "negative", "neutral"]
ans = post({"model": MODEL, "max_tokens": 8, "temperature": 1.0, "seed": 5,
            "n": 4, "guided_choice": TEXTS,
            "messages": [{"role": "user", "content": "Sentiment of \"The "
                          "food was cold.\"?"}]})
got = [c["message"]["content"] for c in ans["choices"]]
print(f"guided_choice n=4 T=1.0: {got}, "
      + ("each one of the texts" if all(g in TEXTS for g in got)
         else "NOT ALL TEXTS"))

# guided_regex: n=4 sampled answers, each a whole match (the number
# form may end on the model's end of text, the date where it is whole);
# a schema of patterns and formats, each string checked here
import re

for rx, ask in ((r"[0-9]+", "How many legs does a spider have? Answer "
                 "with a number."),
                (r"\d{4}-\d{2}-\d{2}", "Give a date in ISO format.")):
    ans = post({"model": MODEL, "max_tokens": 16, "temperature": 0.7,
                "seed": 7, "n": 4, "guided_regex": rx,
                "messages": [{"role": "user", "content": ask}]})
    got = [(c["message"]["content"], c["finish_reason"])
           for c in ans["choices"]]
    whole = [re.fullmatch(rx, g) is not None for g, _ in got]
    stops = sum(f == "stop" for _, f in got)
    print(f"guided_regex {rx} n=4 T=0.7: {got}, "
          + ("each a match" if all(whole) else "NOT ALL MATCHES")
          + f", {stops} of 4 ended by the model or the match")

CHECKS = {"zip": r"\d{5}(-\d{4})?", "day": r"\d{4}-\d{2}-\d{2}",
          "id": r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"}
PSCHEMA = {"type": "object", "properties": {
    "zip": {"type": "string", "pattern": "^" + CHECKS["zip"] + "$"},
    "day": {"type": "string", "format": "date"},
    "id": {"type": "string", "format": "uuid"}},
    "required": ["zip", "day", "id"]}
ans = post({"model": MODEL, "max_tokens": 96, "temperature": 1.0, "seed": 3,
            "n": 4, "response_format": {"type": "json_schema", "json_schema":
                                        {"name": "p", "schema": PSCHEMA}},
            "messages": [{"role": "user", "content": "A zip code, a day "
                          "and an id as JSON."}]})
bad = []
for c in ans["choices"]:
    try:
        doc = json.loads(c["message"]["content"])
        if not all(re.fullmatch(rx, doc[k]) for k, rx in CHECKS.items()):
            bad.append(doc)
    except (ValueError, KeyError, TypeError):
        bad.append((c["finish_reason"], c["message"]["content"]))
print(f"patterns and formats n=4 T=1.0: {len(ans['choices']) - len(bad)} "
      f"of 4 parse with every string matching"
      + ("" if not bad else f"; not: {bad}"))

# the Responses API: a greedy streamed response, its named events
# counted, its text against the chat's greedy answer to the same question
RURL = URL.replace("/chat/completions", "/responses")
Q = "What is the capital of France?"
req = urllib.request.Request(RURL, json.dumps({
    "model": MODEL, "input": Q, "max_output_tokens": 48, "temperature": 0,
    "stream": True}).encode(), {"Content-Type": "application/json"})
t0 = time.time()
kinds, deltas, last = {}, [], None
with urllib.request.urlopen(req, timeout=600) as r:
    for line in r:
        line = line.decode().strip()
        if line.startswith("data: "):
            ev = json.loads(line[6:])
            kinds[ev["type"]] = kinds.get(ev["type"], 0) + 1
            if ev["type"] == "response.output_text.delta":
                deltas.append(ev["delta"])
            last = ev
dt = time.time() - t0
want = post({"model": MODEL, "max_tokens": 48, "temperature": 0,
             "messages": [{"role": "user", "content": Q}]})
text = "".join(deltas)
print(f"responses stream: {sum(kinds.values())} events "
      f"({kinds.get('response.output_text.delta', 0)} deltas), last "
      f"{last['type'] if last else None} in {dt * 1000:.0f} ms: "
      f"{text.strip()[:80]!r}, "
      + ("the chat's answer" if text == want["choices"][0]["message"]
         ["content"] else "NOT the chat's answer"))

# background: the same question answered "queued" at once, polled to its
# end; its text against the stream's (where the server keeps responses)
req = urllib.request.Request(RURL, json.dumps({
    "model": MODEL, "input": Q, "max_output_tokens": 48, "temperature": 0,
    "background": True}).encode(), {"Content-Type": "application/json"})
t0 = time.time()
try:
    with urllib.request.urlopen(req, timeout=600) as r:
        bg = json.load(r)
    t_answer = time.time() - t0
    first = bg["status"]
    while bg["status"] in ("queued", "in_progress"):
        time.sleep(0.01)
        bg = json.load(urllib.request.urlopen(RURL + "/" + bg["id"],
                                              timeout=60))
    dt = time.time() - t0
    btext = "".join(p["text"] for o in bg["output"] if o["type"] == "message"
                    for p in o["content"])
    print(f"responses background: {first} in {t_answer * 1000:.1f} ms, "
          f"{bg['status']} in {dt * 1000:.0f} ms: "
          + ("the stream's text" if btext == text else
             f"NOT the stream's text: {btext[:80]!r}"))
except urllib.error.HTTPError as e:
    print(f"responses background: {e.code} {e.read()[:200]!r}")

# a background stream dropped after 6 events and picked up again (GET
# ?stream=true&starting_after=N): the rest to its end, the stream's text
req = urllib.request.Request(RURL, json.dumps({
    "model": MODEL, "input": Q, "max_output_tokens": 48, "temperature": 0,
    "background": True, "stream": True}).encode(),
    {"Content-Type": "application/json"})


def sse_events(lines, limit=None):
    out = []
    for line in lines:
        line = line.decode().strip()
        if line.startswith("data: "):
            out.append(json.loads(line[6:]))
            if limit and len(out) == limit:
                break
    return out


try:
    with urllib.request.urlopen(req, timeout=600) as r:
        got = sse_events(r, 6)
    rid, k = got[0]["response"]["id"], got[-1]["sequence_number"]
    t0 = time.time()
    with urllib.request.urlopen(f"{RURL}/{rid}?stream=true&starting_after="
                                f"{k}", timeout=600) as r:
        rest = sse_events(r)
    dt = time.time() - t0
    rtext = "".join(e["delta"] for e in got + rest
                    if e["type"] == "response.output_text.delta")
    print(f"responses background stream: dropped after event {k}, picked "
          f"up from {rest[0]['sequence_number'] if rest else None}: "
          f"{len(rest)} events, last {rest[-1]['type'] if rest else None} "
          f"in {dt * 1000:.0f} ms: "
          + ("the stream's text" if rtext == text else
             f"NOT the stream's text: {rtext[:80]!r}"))
except urllib.error.HTTPError as e:
    print(f"responses background stream: {e.code} {e.read()[:200]!r}")

# GET stream format=text: the chat's answer as bare text
t0 = time.time()
with urllib.request.urlopen(
        BASE + "/v1/stream?chat=1&max_tokens=48&temperature=0&format=text"
        + "&model=" + urllib.parse.quote(MODEL)
        + "&prompt=" + urllib.parse.quote(Q), timeout=600) as r:
    ctype = r.headers.get("Content-Type")
    body = r.read().decode()
dt = time.time() - t0
print(f"bare-text stream ({ctype}): {len(body)} characters in "
      f"{dt * 1000:.0f} ms: {body.strip()[:80]!r}, "
      + ("the chat's answer" if body == want["choices"][0]["message"]
         ["content"] + "\n" else "NOT the chat's answer"))

# echo: a text scored by the model (a completion of max_tokens 0 with
# echo and logprobs), and a greedy continuation's figures as generating
# it gave them against those of the same tokens scored as a prompt
CURL = URL.replace("/chat/completions", "/completions")


def complete(body):
    req = urllib.request.Request(CURL, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


TEXT = "The library lends books for three weeks and films for one week."
t0 = time.time()
sc = complete({"model": MODEL, "prompt": TEXT + " " + TEXT, "echo": True,
               "logprobs": 1, "max_tokens": 0})
lp = sc["choices"][0]["logprobs"]["token_logprobs"]
half = len(lp) // 2
print(f"echo: {len(lp)} prompt tokens scored in "
      f"{(time.time() - t0) * 1000:.0f} ms, the text "
      f"{sum(lp[1:half]):.2f} then repeated {sum(lp[half + 1:]):.2f}, "
      f"{sc['choices'][0]['finish_reason']}")
gen = complete({"model": MODEL, "prompt": TEXT, "temperature": 0,
                "max_tokens": 12, "logprobs": 1, "echo": True})
g = gen["choices"][0]
n_p = gen["usage"]["prompt_tokens"]
back = complete({"model": MODEL, "prompt": g["text"], "echo": True,
                 "logprobs": 1, "max_tokens": 0})
b_lp = back["choices"][0]["logprobs"]
same = b_lp["tokens"] == g["logprobs"]["tokens"]
gap = max(abs(x - y) for x, y in zip(b_lp["token_logprobs"][n_p:],
                                     g["logprobs"]["token_logprobs"][n_p:]))
print(f"echo: a greedy continuation of {len(g['logprobs']['tokens']) - n_p} "
      f"tokens scored back: "
      + (f"its figures within {gap:.4f} of generation's" if same
         else "retokenized otherwise, not compared"))

# vLLM's prompt_logprobs on the device's score kernel: each entry keyed
# by the prompt's token, its figure echo's, its rank 1 + the alternatives
# likelier than it (past both where neither is less likely)
pl = complete({"model": MODEL, "prompt": TEXT, "echo": True, "logprobs": 2,
               "prompt_logprobs": 2, "max_tokens": 0})
pc = pl["choices"][0]
ids = [int(t.split(":")[1]) for t in complete(
    {"model": MODEL, "prompt": TEXT, "echo": True, "logprobs": 0,
     "max_tokens": 0, "return_tokens_as_token_ids": True}
)["choices"][0]["logprobs"]["tokens"]]
ok = ranks = 0
for i, e in enumerate(pc["prompt_logprobs"][1:], 1):
    t = e.get(str(ids[i])) if e else None
    if t is None:
        continue
    more = sum(1 for k, v in e.items()
               if k != str(ids[i]) and v["logprob"] > t["logprob"])
    ok += (abs(t["logprob"] - pc["logprobs"]["token_logprobs"][i]) < 1e-6
           and (t["rank"] == more + 1 if more < 2 else t["rank"] > 2))
    ranks += t["rank"] > 1
print(f"prompt_logprobs 2: {ok} of {len(ids) - 1} entries keyed by the "
      f"prompt's ids with echo's figures and ranks in order "
      f"({ranks} past the first)")

# vLLM's return_token_ids: the answer's ids, the stop id last where one
# ended it, detokenize to its text
ri = post({"model": MODEL, "max_tokens": 24, "temperature": 0,
           "return_token_ids": True,
           "messages": [{"role": "user", "content": "Name a colour."}]})
rc = ri["choices"][0]
rids = rc["token_ids"]
text_ids = rids[:-1] if rc["finish_reason"] == "stop" else rids
req = urllib.request.Request(
    URL.replace("/chat/completions", "/detokenize"),
    json.dumps({"tokens": text_ids}).encode(),
    {"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=600) as r:
    back = json.load(r)["prompt"]
print(f"return_token_ids: {len(ri['prompt_token_ids'])} prompt ids, "
      f"{len(rids)} answer ids ({rc['finish_reason']}): "
      + ("they detokenize to the text" if back == rc["message"]["content"]
         else f"NOT THE TEXT: {back!r}"))

res = []
th = [threading.Thread(target=chat, args=(f"Count from 1 to {k + 20}.", res))
      for k in range(16)]
t0 = time.time()
for t in th:
    t.start()
for t in th:
    t.join()
dt = time.time() - t0
tot = sum(r[2] for r in res)
print(f"16 concurrent streams: {tot} tokens in {dt:.2f} s = {tot / dt:.0f} "
      f"tokens/s; median first token "
      f"{sorted(r[3] for r in res)[len(res) // 2] * 1000:.0f} ms")
