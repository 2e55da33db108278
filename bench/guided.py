#!/usr/bin/env python3
"""guided.py: constrained answers through a running slora server, the
same requests on every backend, so that a GPU run's answers can be held
to the CPU's: a JSON schema, a regex, a choice, tools "required" and
"auto", a structural tag after a trigger made of the free answer's
first tokens (the trigger guard's path), and one with at_least_one and
stop_after_first (the answer one tag). Greedy, SmolLM2's chat.

`run` asks each request once and writes {name: {"ok", "text", "tokens"}}
to OUT
(ok: the answer is what the constraint admits, checked here by Python's
json and re; tokens: each token's text, its log-probability and the
GUIDED_TOP likeliest's there, 5 unless told (the server's most by
default), as the model gave them before the constraint);
`compare A B` prints each request's answers side by side, whether they
are the same text and, where not, the first token where they part and
the margin there on each side (the log-probability of its own token
less that of the other side's token; both are admitted there, the
answers the same before it): a GPU's bf16 may part from the CPU's at a
near-tie, a small margin on both sides; a large one on either side is
worth a look, a text not ok is a fault. Prints figures, asserts
nothing.

usage: guided.py run [BASE_URL] [OUT]    (http://127.0.0.1:8080/v1)
       guided.py compare A.json B.json
"""

import json
import os
import re
import sys
import urllib.request

# the alternatives each token's entry asks (GUIDED_TOP: up to the
# server's slora_engine top_logprobs=, 5 by default)
TOP = int(os.environ.get("GUIDED_TOP", "5"))

CITY = {"type": "object", "properties": {"city": {
    "type": "string", "maxLength": 16}}, "required": ["city"],
    "additionalProperties": False}
ASK = [{"role": "user", "content": "Name a city and describe it."}]
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "parameters": CITY}}]


def post(base, body):
    req = urllib.request.Request(base + "/chat/completions",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type":
                                          "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.load(r)


def chat(base, **kw):
    body = {"model": "base", "temperature": 0, "max_tokens": 64,
            "messages": ASK, "logprobs": True, "top_logprobs": TOP}
    body.update(kw)
    return post(base, body)["choices"][0]


def tokens(c):
    # [[text, logprob, {alternative: logprob}]] of a choice's tokens
    out = []
    for e in (c.get("logprobs") or {}).get("content") or []:
        out.append([e["token"], e["logprob"],
                    {t["token"]: t["logprob"]
                     for t in e.get("top_logprobs") or []}])
    return out


def answer(c, ok, text):
    return {"ok": ok, "text": text, "tokens": tokens(c)}


def city(text):
    try:
        v = json.loads(text)
    except ValueError:
        return False
    return isinstance(v, dict) and list(v) == ["city"] \
        and isinstance(v["city"], str) and len(v["city"]) <= 16


def tag_whole(text, begin):
    # every begin in text followed by a value CITY admits and "</t>"
    at = text.find(begin)
    seen = 0
    while at >= 0:
        end = text.find("</t>", at + len(begin))
        if end < 0 or not city(text[at + len(begin):end].strip()):
            return False
        seen += 1
        at = text.find(begin, end + 4)
    return seen > 0


def run(base, out):
    res = {}

    c = chat(base, response_format={"type": "json_schema", "json_schema": {
        "name": "city", "schema": CITY}})
    t = c["message"]["content"] or ""
    res["json_schema"] = answer(c, city(t), t)

    pat = "(Paris|Rome|Oslo) is [a-z]+( [a-z]+){0,5}\\."
    c = chat(base, structured_outputs={"regex": pat})
    t = c["message"]["content"] or ""
    res["regex"] = answer(c, re.fullmatch(pat, t) is not None, t)

    c = chat(base, structured_outputs={"choice": ["Paris", "Rome", "Oslo"]})
    t = c["message"]["content"] or ""
    res["choice"] = answer(c, t in ("Paris", "Rome", "Oslo"), t)

    for choice in ("required", "auto"):
        c = chat(base, tools=WEATHER, tool_choice=choice, messages=[
            {"role": "user", "content": "What is the weather in Paris?"}])
        calls = c["message"].get("tool_calls") or []
        t = json.dumps([[k["function"]["name"], k["function"]["arguments"]]
                        for k in calls]) + (c["message"]["content"] or "")
        ok = all(k["function"]["name"] == "get_weather"
                 and city(k["function"]["arguments"]) for k in calls)
        res["tools_" + choice] = answer(
            c, bool(ok and (calls or choice == "auto")), t)

    # the trigger: the free answer's first tokens, 4 bytes or more
    free = chat(base, logprobs=True)
    trig = ""
    for lp in free["logprobs"]["content"]:
        trig += lp["token"]
        if len(trig) >= 4:
            break
    tags = {"structures": [{"begin": trig + "<t>", "schema": CITY,
                            "end": "</t>"}], "triggers": [trig]}
    c = chat(base, structured_outputs={"structural_tag": json.dumps(tags)})
    t = c["message"]["content"] or ""
    res["tag_triggered"] = answer(c, t.startswith(trig + "<t>")
                                  and tag_whole(t, trig + "<t>"), t)

    c = chat(base, response_format={"type": "structural_tag", "format": {
        "type": "triggered_tags", "triggers": ["#"], "tags": [{
            "type": "tag", "begin": "#<t>", "content": {
                "type": "json_schema", "json_schema": CITY},
            "end": "</t>"}], "at_least_one": True,
        "stop_after_first": True}})
    t = c["message"]["content"] or ""
    res["tag_at_least_one"] = answer(c, t.startswith("#<t>")
                                     and t.endswith("</t>")
                                     and tag_whole(t, "#<t>"), t)

    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    for name, r in res.items():
        print(f"{name:18} {'ok ' if r['ok'] else 'BAD'} {r['text'][:100]!r}")


def margin(mine, other):
    # how much likelier this side found its token than the other side's:
    # ">x" where the other's is not among its likeliest asked
    if other[0] in mine[2]:
        return f"{mine[1] - mine[2][other[0]]:.3f}"
    return f">{mine[1] - min(mine[2].values(), default=mine[1]):.3f}"


def parting(ra, rb):
    # the first token where the two answers part: "k: a|b, margins m|m"
    ta, tb = ra.get("tokens") or [], rb.get("tokens") or []
    for k, (x, y) in enumerate(zip(ta, tb)):
        if x[0] != y[0]:
            return (f"token {k}: {x[0]!r} / {y[0]!r}, margins "
                    f"{margin(x, y)} / {margin(y, x)}")
    if len(ta) != len(tb):
        return f"token {min(len(ta), len(tb))}: one answer ends"
    return "no token parts (the logprobs do not cover the text)"


def compare(a_path, b_path):
    with open(a_path) as f:
        a = json.load(f)
    with open(b_path) as f:
        b = json.load(f)
    print(f"| request | {a_path} | {b_path} | same text | where they part |")
    print("|---|---|---|---|---|")
    for name in a:
        ra, rb = a[name], b.get(name, {"ok": False, "text": ""})
        same = ra["text"] == rb["text"]
        print(f"| {name} | {'ok' if ra['ok'] else 'BAD'} | "
              f"{'ok' if rb['ok'] else 'BAD'} | "
              f"{'yes' if same else 'no'} | "
              f"{'' if same else parting(ra, rb)} |")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "run":
        run(sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:8080/v1",
            sys.argv[3] if len(sys.argv) > 3 else "guided.json")
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
