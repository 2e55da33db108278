#!/usr/bin/env python3
# bench/json-blanks.py: how much of constrained JSON answers is blanks.
# Against a running server (BASE), asks twelve prompts under JSON mode and
# under a JSON schema (CITY, as bench/chat-stream.py's), four sampled
# choices each (T=1, seeds fixed), max_tokens 160, and prints per kind:
# the answers, how many ran into max_tokens before they closed, the mean
# completion tokens, the mean share of blank bytes in the answers' text
# and the longest run of blanks. Standard library only.
#
#   python3 bench/json-blanks.py http://127.0.0.1:8080

import json
import sys
import urllib.request

from json_city import CITY

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
MODEL = json.load(urllib.request.urlopen(BASE + "/v1/models"))["data"][0]["id"]

PROMPTS = ["Describe a city in JSON.", "Hello!", "Give me a JSON object.",
           "What is the capital of France?", "List three fruits.",
           "Tell me about Tokyo.", "Write a short poem.",
           "Describe your favourite book.", "What time is it?",
           "Summarise the news.", "Plan a trip to Rome.",
           "Explain photosynthesis."]
FORMATS = {"json_object": {"type": "json_object"},
           "json_schema": {"type": "json_schema",
                           "json_schema": {"name": "city", "schema": CITY}}}


def ask(prompt, fmt, seed):
    body = json.dumps({"model": MODEL, "max_tokens": 160, "temperature": 1,
                       "seed": seed, "n": 4, "response_format": fmt,
                       "messages": [{"role": "user", "content": prompt}]})
    req = urllib.request.Request(BASE + "/v1/chat/completions",
                                 body.encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


def longest_blank_run(text):
    run = best = 0
    for ch in text:
        run = run + 1 if ch in " \t\r\n" else 0
        best = max(best, run)
    return best


for kind, fmt in FORMATS.items():
    n = cut = tokens = 0
    share = 0.0
    longest = 0
    for i, prompt in enumerate(PROMPTS):
        ans = ask(prompt, fmt, 100 + i)
        tokens += ans["usage"]["completion_tokens"]
        for c in ans["choices"]:
            text = c["message"]["content"] or ""
            n += 1
            cut += c["finish_reason"] == "length"
            share += (sum(ch in " \t\r\n" for ch in text) / len(text)
                      if text else 0)
            longest = max(longest, longest_blank_run(text))
    print(f"{kind}: {n} answers, {cut} cut by max_tokens, "
          f"{tokens / n:.1f} tokens an answer, blanks {100 * share / n:.1f}% "
          f"of the text, longest run {longest}")
