"""client_checks.py: what the t/python client scripts share. Each check
is recorded with check(), never asserted; run(main) calls the script's
main, turns an unexpected exception into one failed check, prints one
JSON line {"checks": [[name, ok, detail], ...]} for the calling .t file
(which makes each check a TAP test and sees a missing one) and exits 0
only when every check passed. WEATHER and CLOCK are the function-calling
tests' two tools, admits() what their parameters allow.
"""

import json
import sys

checks = []


def check(name, ok, detail=""):
    checks.append([name, bool(ok), str(detail)[:300]])
    return ok


def run(main):
    try:
        main()
    except Exception as e:  # an unexpected failure is one failed check
        check("client ran without an exception", False, repr(e))
    print(json.dumps({"checks": checks}))
    sys.exit(0 if all(c[1] for c in checks) else 1)


def call_steer(client):
    """A logit_bias that keeps a model from answering a call's result
    itself: the token where "<tool_response>" parts from "<tool_call>",
    read from the server's tokenizer, banned. SmolLM2-135M, shown earlier
    turns of a sentence then a call, writes the sentence and then
    <tool_response> with a result it made up; with the ban it writes
    <tool_call>, so "auto" runs its text-then-call path on a real model."""
    ids = [client.post("/tokenize", cast_to=object, body={"prompt": t})
           ["tokens"] for t in ("<tool_call>", "<tool_response>")]
    part = next(i for i, (a, b) in enumerate(zip(*ids)) if a != b)
    return {str(ids[1][part]): -100}


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 32},
        "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}
CLOCK = {"type": "function", "function": {
    "name": "get_time", "description": "The time in a timezone",
    "parameters": {"type": "object", "properties": {
        "timezone": {"type": "string", "maxLength": 32}},
        "required": ["timezone"], "additionalProperties": False}}}


def admits(name, args):
    """Whether args (JSON text) are what the parameters of WEATHER or
    CLOCK, the one named, admit."""
    try:
        a = json.loads(args)
    except ValueError:
        return False
    if name == "get_weather":
        return (isinstance(a.get("city"), str) and len(a["city"]) <= 32
                and set(a) <= {"city", "unit"}
                and a.get("unit", "celsius") in ("celsius", "fahrenheit"))
    return (name == "get_time" and set(a) == {"timezone"}
            and isinstance(a["timezone"], str))
