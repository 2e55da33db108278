"""openai_client.py: drives a slora server with the official `openai`
Python package, the way a user's program would.

usage: openai_client.py BASE_URL ADAPTER [IDS]

IDS: "The capital of France is" as the server's tokenizer gives it,
comma-separated (`slora tokenize`), for the prompt of token ids.

It lists the models, runs chat and text completions, streamed and not,
on the base model and on ADAPTER, with one choice and with n, several
prompts and token ids, in JSON mode, under a JSON schema and vLLM's
guided_choice, with tools (function calling), and checks that the client
parses every answer and reads each answer's request id (the server's
X-Request-Id, errors' too).  The one idea to know: each check is recorded,
never asserted here; the script prints one JSON line
{"checks": [[name, ok, detail], ...]} and exits 0 when every check
passed, so the calling .t file turns each into a TAP test and a missing
check is visible.
"""

import json
import re
import sys

import openai

from client_checks import CLOCK, WEATHER, admits, call_steer, check, run

# nginx's $request_id, as X-Request-Id gives it
REQ_ID = re.compile(r"[0-9a-f]{32}")


def usage_ok(u, need_text=True):
    """Counts that add up, and the prompt's tokens the prefix cache gave
    (prompt_tokens_details.cached_tokens): some or none, never all."""
    return (u is not None and u.prompt_tokens > 0
            and (u.completion_tokens > 0 or not need_text)
            and u.total_tokens == u.prompt_tokens + u.completion_tokens
            and u.prompt_tokens_details is not None
            and isinstance(u.prompt_tokens_details.cached_tokens, int)
            and 0 <= u.prompt_tokens_details.cached_tokens < u.prompt_tokens)


def chat_pair(client, model, prompt, max_tokens, need_text=True):
    """Chat, not streamed then streamed (include_usage); compares them.
    A random adapter may end the answer at once: need_text=False then."""
    msgs = [{"role": "user", "content": prompt}]
    r = client.chat.completions.create(model=model, messages=msgs,
                                       max_tokens=max_tokens, temperature=0)
    c = r.choices[0]
    text = c.message.content or ""
    check(f"chat {model}: object", r.object == "chat.completion", r.object)
    check(f"chat {model}: model echoed", r.model == model, r.model)
    check(f"chat {model}: role assistant", c.message.role == "assistant",
          c.message.role)
    if need_text:
        check(f"chat {model}: text non-empty", text.strip() != "",
              repr(text))
    check(f"chat {model}: finish_reason",
          c.finish_reason in ("stop", "length"), c.finish_reason)
    check(f"chat {model}: usage", usage_ok(r.usage, need_text), r.usage)
    check(f"chat {model}: request id", REQ_ID.fullmatch(r._request_id or "")
          is not None, r._request_id)
    if c.finish_reason == "length":
        check(f"chat {model}: length means max_tokens",
              r.usage.completion_tokens == max_tokens, r.usage)

    stream = client.chat.completions.create(
        model=model, messages=msgs, max_tokens=max_tokens, temperature=0,
        stream=True, stream_options={"include_usage": True})
    check(f"chat stream {model}: request id, another",
          REQ_ID.fullmatch(stream.response.headers.get("x-request-id", ""))
          is not None and stream.response.headers.get("x-request-id")
          != r._request_id, stream.response.headers.get("x-request-id"))
    parts, finishes, usage, ids, roles = [], [], None, set(), []
    for chunk in stream:
        ids.add(chunk.id)
        check_obj = chunk.object == "chat.completion.chunk"
        if not check_obj:
            check(f"chat stream {model}: chunk object", False, chunk.object)
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            if ch.delta.role:
                roles.append(ch.delta.role)
            if ch.delta.content:
                parts.append(ch.delta.content)
            if ch.finish_reason:
                finishes.append(ch.finish_reason)
    stext = "".join(parts)
    check(f"chat stream {model}: one id", len(ids) == 1, ids)
    check(f"chat stream {model}: role assistant once",
          roles == ["assistant"], roles)
    check(f"chat stream {model}: text equals the non-streamed text",
          stext == text, f"{stext!r} vs {text!r}")
    check(f"chat stream {model}: one finish_reason, the same",
          finishes == [c.finish_reason], finishes)
    check(f"chat stream {model}: usage equals the non-streamed usage",
          usage_ok(usage, need_text)
          and usage.prompt_tokens == r.usage.prompt_tokens
          and usage.completion_tokens == r.usage.completion_tokens, usage)
    return text


def chat_and_stream(client, kw):
    """One chat request, whole and then streamed: the whole answer's
    choice and the stream's content pieces."""
    c = client.chat.completions.create(**kw).choices[0]
    parts = [ch.choices[0].delta.content or ""
             for ch in client.chat.completions.create(stream=True, **kw)
             if ch.choices]
    return c, parts


def text_pair(client, model, prompt, max_tokens):
    """Text completion, not streamed then streamed; compares them."""
    r = client.completions.create(model=model, prompt=prompt,
                                  max_tokens=max_tokens, temperature=0)
    c = r.choices[0]
    check(f"completion {model}: object", r.object == "text_completion",
          r.object)
    check(f"completion {model}: text non-empty", c.text.strip() != "",
          repr(c.text))
    check(f"completion {model}: finish_reason",
          c.finish_reason in ("stop", "length"), c.finish_reason)
    check(f"completion {model}: usage", usage_ok(r.usage), r.usage)

    parts, finishes, usage = [], [], None
    for chunk in client.completions.create(
            model=model, prompt=prompt, max_tokens=max_tokens,
            temperature=0, stream=True,
            stream_options={"include_usage": True}):
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            parts.append(ch.text or "")
            if ch.finish_reason:
                finishes.append(ch.finish_reason)
    stext = "".join(parts)
    check(f"completion stream {model}: text equals the non-streamed text",
          stext == c.text, f"{stext!r} vs {c.text!r}")
    check(f"completion stream {model}: one finish_reason, the same",
          finishes == [c.finish_reason], finishes)
    check(f"completion stream {model}: usage equals the non-streamed usage",
          usage_ok(usage)
          and usage.completion_tokens == r.usage.completion_tokens
          and usage.prompt_tokens == r.usage.prompt_tokens, usage)


def logprobs(client, model):
    """Log-probabilities as the client parses them: chat's content
    entries with their alternatives, a completion's lists."""
    r = client.chat.completions.create(
        model=model, max_tokens=12, temperature=0, logprobs=True,
        top_logprobs=2,
        messages=[{"role": "user", "content": "Count to five."}])
    c = r.choices[0]
    entries = c.logprobs.content if c.logprobs else []
    check("chat logprobs: one entry a token, two alternatives each",
          len(entries) == r.usage.completion_tokens
          and all(len(e.top_logprobs) == 2 and e.logprob <= 0
                  for e in entries), c.logprobs)
    check("chat logprobs: the entries' tokens make the text",
          "".join(e.token for e in entries) == (c.message.content or ""),
          [e.token for e in entries])
    r = client.completions.create(model=model, prompt="One, two,",
                                  max_tokens=8, temperature=0, logprobs=1)
    lp = r.choices[0].logprobs
    check("completion logprobs: tokens, figures, alternatives, offsets",
          lp is not None and len(lp.tokens) == r.usage.completion_tokens
          and len(lp.token_logprobs) == len(lp.tokens)
          and len(lp.top_logprobs) == len(lp.tokens)
          and len(lp.text_offset) == len(lp.tokens)
          and "".join(lp.tokens) == r.choices[0].text, lp)


def stream_choices(stream):
    """A stream's text, roles and finish_reasons by choice index, its ids
    and its usage."""
    texts, roles, finishes, ids, usage = {}, {}, {}, set(), None
    for chunk in stream:
        ids.add(chunk.id)
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            texts.setdefault(ch.index, "")
            if getattr(ch, "delta", None) is not None:
                if ch.delta.role:
                    roles.setdefault(ch.index, []).append(ch.delta.role)
                texts[ch.index] += ch.delta.content or ""
            else:
                texts[ch.index] += ch.text or ""
            if ch.finish_reason:
                finishes.setdefault(ch.index, []).append(ch.finish_reason)
    return texts, roles, finishes, ids, usage


def choices(client, model):
    """n choices. Sampled with a seed, each choice is a draw of its own
    (choice i of seed s is the answer n=1 gives with seed s + i); usage
    counts the prompt once and every choice's tokens; a stream carries
    each choice's text under its index, the body's text. Greedy, every
    choice is the n=1 answer. best_of returns the likeliest candidate
    and cannot stream."""
    kw = dict(model=model, max_tokens=16, temperature=1.0, seed=11,
              messages=[{"role": "user",
                         "content": "Write a line about the sea."}])
    r = client.chat.completions.create(n=3, logprobs=True, **kw)
    idx = [c.index for c in r.choices]
    check("n=3: three choices, indexes 0, 1, 2", idx == [0, 1, 2], idx)
    texts = {c.index: c.message.content or "" for c in r.choices}
    check("n=3: three different draws", len(set(texts.values())) == 3,
          texts)
    ntok = [len(c.logprobs.content) if c.logprobs else -1
            for c in r.choices]
    # a choice that the model's stop token ended has it counted, as
    # OpenAI and vLLM count it, though its text and logprobs leave it out
    stopped = sum(c.finish_reason == "stop" for c in r.choices)
    check("n=3: usage counts the prompt once and every choice's tokens",
          usage_ok(r.usage)
          and r.usage.completion_tokens == sum(ntok) + stopped
          and min(ntok) > 0, f"{r.usage} {ntok} {stopped}")
    for i in (0, 2):
        one = client.chat.completions.create(**{**kw, "seed": 11 + i})
        check(f"n=3: choice {i} is n=1's answer with seed 11 + {i}",
              (one.choices[0].message.content or "") == texts[i]
              and one.choices[0].finish_reason
              == r.choices[i].finish_reason,
              f"{one.choices[0].message.content!r} vs {texts[i]!r}")

    stexts, roles, finishes, ids, usage = stream_choices(
        client.chat.completions.create(
            n=3, stream=True, stream_options={"include_usage": True}, **kw))
    check("n=3 stream: one id, each choice's text the body's",
          len(ids) == 1 and stexts == texts, f"{stexts} vs {texts}")
    check("n=3 stream: role once a choice, one finish_reason a choice, "
          "the body's",
          roles == {i: ["assistant"] for i in range(3)}
          and finishes == {c.index: [c.finish_reason] for c in r.choices},
          f"{roles} {finishes}")
    check("n=3 stream: usage equals the body's",
          usage is not None
          and usage.completion_tokens == r.usage.completion_tokens
          and usage.prompt_tokens == r.usage.prompt_tokens, usage)

    g = dict(model=model, prompt="The capital of France is", max_tokens=8,
             temperature=0)
    one = client.completions.create(**g)
    r = client.completions.create(n=2, **g)
    check("completion n=2 greedy: both choices are the n=1 text",
          [c.index for c in r.choices] == [0, 1]
          and all(c.text == one.choices[0].text for c in r.choices)
          and r.usage.completion_tokens == 2 * one.usage.completion_tokens,
          f"{[c.text for c in r.choices]} vs {one.choices[0].text!r}")
    stexts, _, finishes, _, _ = stream_choices(
        client.completions.create(n=2, stream=True, **g))
    check("completion n=2 stream: each choice's text under its index",
          stexts == {0: one.choices[0].text, 1: one.choices[0].text}
          and finishes == {0: [one.choices[0].finish_reason],
                           1: [one.choices[0].finish_reason]},
          f"{stexts} {finishes}")

    # best_of, the client's own parameter: the likeliest of the
    # candidates n=4 gives with the same seed (asked with logprobs, as
    # best_of reads them), by the mean log-probability of their tokens
    b = dict(model=model, prompt="Once upon a time", max_tokens=12,
             temperature=1.5, seed=5)
    cands = client.completions.create(n=4, logprobs=0, **b)
    best = max(cands.choices, key=lambda c: sum(c.logprobs.token_logprobs)
               / max(1, len(c.logprobs.token_logprobs)))
    r = client.completions.create(best_of=4, **b)
    check("completion best_of=4: the likeliest of n=4's candidates, "
          "usage counting all four",
          [c.index for c in r.choices] == [0]
          and r.choices[0].text == best.text
          and best.index != 0
          and r.usage.completion_tokens == cands.usage.completion_tokens,
          f"{r.choices[0].text!r} vs {best.text!r} (candidate "
          f"{best.index})")
    try:
        client.completions.create(best_of=4, stream=True, **b)
        check("completion best_of=4 stream raises BadRequestError", False,
              "no error")
    except openai.BadRequestError as e:
        check("completion best_of=4 stream raises BadRequestError",
              "best_of" in str(e), str(e))


def prompts(client):
    """A completion of two prompts with n=2: four choices, prompt k's at
    indexes 2k and 2k + 1, each (greedy) the prompt's own answer; usage
    counts both prompts. A prompt of token ids answers as its text."""
    a, b = "The capital of France is", "Water boils at"
    one = {}
    for p in (a, b):
        r = client.completions.create(model="base", prompt=p, max_tokens=8,
                                      temperature=0)
        one[p] = (r.choices[0].text, r.usage.prompt_tokens,
                  r.usage.completion_tokens)
    r = client.completions.create(model="base", prompt=[a, b], n=2,
                                  max_tokens=8, temperature=0)
    got = sorted((c.index, c.text) for c in r.choices)
    want = [(0, one[a][0]), (1, one[a][0]), (2, one[b][0]), (3, one[b][0])]
    check("prompts: two prompts, n=2: four choices, each its prompt's "
          "answer", got == want, got)
    check("prompts: usage counts both prompts and the four choices",
          r.usage.prompt_tokens == one[a][1] + one[b][1]
          and r.usage.completion_tokens == 2 * (one[a][2] + one[b][2]),
          r.usage)

    parts = {}
    for chunk in client.completions.create(model="base", prompt=[a, b],
                                           max_tokens=8, temperature=0,
                                           stream=True):
        for ch in chunk.choices:
            parts[ch.index] = parts.get(ch.index, "") + (ch.text or "")
    check("prompts stream: each prompt's text under its index",
          parts == {0: one[a][0], 1: one[b][0]}, parts)

    ids = [int(x) for x in sys.argv[3].split(",")] if len(sys.argv) > 3 \
        else []
    r = client.completions.create(model="base", prompt=ids, max_tokens=8,
                                  temperature=0)
    check("prompts: token ids answer as their text",
          r.choices[0].text == one[a][0]
          and r.usage.prompt_tokens == len(ids), (ids, r.choices[0].text))


def json_mode(client):
    """response_format json_object: the answer is one JSON object, the
    same streamed; where the same question without it is prose. Sampled
    choices are objects too, or cut by max_tokens."""
    msgs = [{"role": "user", "content":
             "Reply in JSON: what are three fruits and their colours?"}]
    fmt = {"type": "json_object"}
    r = client.chat.completions.create(model="base", messages=msgs,
                                       max_tokens=120, temperature=0,
                                       response_format=fmt)
    text = r.choices[0].message.content or ""
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    check("json mode: the answer is a JSON object", isinstance(obj, dict),
          repr(text))
    check("json mode: finish_reason stop as it closes",
          r.choices[0].finish_reason == "stop", r.choices[0].finish_reason)

    plain = client.chat.completions.create(model="base", messages=msgs,
                                           max_tokens=40, temperature=0)
    ptext = plain.choices[0].message.content or ""
    try:
        pobj = json.loads(ptext)
    except ValueError:
        pobj = None
    check("json mode: without it the answer is not one",
          not isinstance(pobj, dict), repr(ptext))

    stream = client.chat.completions.create(model="base", messages=msgs,
                                            max_tokens=120, temperature=0,
                                            response_format=fmt, stream=True)
    parts = [ch.choices[0].delta.content or "" for ch in stream
             if ch.choices]
    check("json mode stream: the text equals the non-streamed text",
          "".join(parts) == text, repr("".join(parts)))

    r = client.chat.completions.create(model="base", messages=msgs,
                                       max_tokens=60, temperature=1, seed=5,
                                       n=3, response_format=fmt)
    bad = []
    for c in r.choices:
        try:
            whole = isinstance(json.loads(c.message.content), dict)
        except ValueError:
            whole = False
        if not (whole and c.finish_reason == "stop"
                or not whole and c.finish_reason == "length"):
            bad.append((c.finish_reason, c.message.content))
    check("json mode n=3 sampled: each an object, or cut at max_tokens",
          not bad and len(r.choices) == 3, bad)


def json_blanks(client):
    """A schema's answer to a greeting: SmolLM2 filled its tokens with runs
    of line breaks until max_tokens cut the object (32 blanks a run were
    allowed, all of them line breaks); with a printer's blanks (one line
    break between two tokens at most), and the answer's text held to 80
    characters (after its default system message SmolLM2 answers "A: A:
    A: ..." until cut), each answer is a whole object."""
    sch = {"type": "object", "required": ["answer", "mood"],
           "properties": {"answer": {"type": "string", "maxLength": 80},
                          "mood": {"enum": ["happy", "sad"]}}}
    got = []
    for ask in ("Hello", "Hi!", "Thanks, bye."):
        c = client.chat.completions.create(
            model="base", messages=[{"role": "user", "content": ask}],
            max_tokens=120, temperature=0,
            response_format={"type": "json_schema", "json_schema": {
                "name": "reply", "schema": sch}}).choices[0]
        try:
            whole = set(json.loads(c.message.content)) == {"answer", "mood"}
        except ValueError:
            whole = False
        got.append((c.finish_reason, whole, c.message.content))
    check("json schema, three greetings: each a whole object, finish stop, "
          "no run of three line breaks",
          all(f == "stop" and w and "\n\n\n" not in t for f, w, t in got),
          got)


def json_schema(client):
    """response_format json_schema, as the client's parse() sends it from
    a pydantic model (strict: every field required, no other): the
    client validates the answer into the model, whose keys come in the
    model's order; streamed, the same text as not; a schema the server
    cannot enforce raises BadRequestError naming it; fields with
    patterns or formats come back as the client's own validation of them
    admits."""
    from typing import Annotated, List, Literal, Optional

    import pydantic

    class City(pydantic.BaseModel):
        name: str = pydantic.Field(max_length=24)
        country: str = pydantic.Field(max_length=24)
        population: int = pydantic.Field(ge=0, le=40000000)
        coastal: bool
        rating: float = pydantic.Field(ge=0, le=5)
        size: Literal["small", "large"]
        districts: List[Annotated[str, pydantic.Field(max_length=16)]] = \
            pydantic.Field(min_length=1, max_length=3)
        mayor: Optional[Annotated[str, pydantic.Field(max_length=24)]]

    msgs = [{"role": "user", "content": "Describe a city in JSON."}]
    r = client.chat.completions.parse(model="base", messages=msgs,
                                      max_tokens=256, temperature=0,
                                      response_format=City)
    c = r.choices[0]
    check("json schema: the client validates the answer into its model",
          isinstance(c.message.parsed, City) and c.finish_reason == "stop",
          c.message.content)
    keys = list(json.loads(c.message.content or "{}").keys())
    check("json schema: the keys in the model's order",
          keys == list(City.model_fields), keys)

    fmt = {"type": "json_schema", "json_schema": {
        "name": "City", "schema": City.model_json_schema()}}
    whole = client.chat.completions.create(model="base", messages=msgs,
                                           max_tokens=256, temperature=0,
                                           response_format=fmt)
    stream = client.chat.completions.create(model="base", messages=msgs,
                                            max_tokens=256, temperature=0,
                                            response_format=fmt, stream=True)
    parts = [ch.choices[0].delta.content or "" for ch in stream
             if ch.choices]
    text = whole.choices[0].message.content or ""
    check("json schema stream: the text equals the non-streamed text, "
          "which the model validates",
          "".join(parts) == text
          and isinstance(City.model_validate_json(text), City),
          repr("".join(parts)))

    class Contact(pydantic.BaseModel):
        phone: str = pydantic.Field(pattern=r"^\+?[1-9]\d{6,11}$")
        zip: str = pydantic.Field(pattern=r"^\d{5}(-\d{4})?$")
        handle: str = pydantic.Field(pattern=r"^@[a-z_]{3,12}$",
                                     max_length=10)

    asks = [{"role": "user", "content": "A contact for Ada in JSON."}]
    r = client.chat.completions.parse(model="base", messages=asks,
                                      max_tokens=128, temperature=0,
                                      response_format=Contact)
    c = r.choices[0]
    check("json schema with patterns: the client validates each field "
          "against its pattern", isinstance(c.message.parsed, Contact)
          and c.finish_reason == "stop", c.message.content)

    import datetime
    import ipaddress
    import uuid

    class Event(pydantic.BaseModel):
        day: datetime.date
        starts: datetime.datetime
        ticket: uuid.UUID
        server: ipaddress.IPv4Address

    asks = [{"role": "user", "content": "A concert in JSON: its day, its "
             "start, a ticket id and a server address."}]
    r = client.chat.completions.parse(model="base", messages=asks,
                                      max_tokens=160, temperature=0,
                                      response_format=Event)
    c = r.choices[0]
    check("json schema with formats: the client validates a date, a "
          "date-time, a UUID and an IPv4 address",
          isinstance(c.message.parsed, Event) and c.finish_reason == "stop",
          c.message.content)

    twice = {"type": "json_schema", "json_schema": {
        "name": "Twice", "schema": {"type": "object", "properties": {
            "word": {"type": "string", "pattern": r"^(\w+) \1$"}}}}}
    try:
        client.chat.completions.create(model="base", messages=msgs,
                                       max_tokens=8, response_format=twice)
        check("json schema with a back reference raises BadRequestError "
              "naming it", False, "no exception")
    except openai.BadRequestError as e:
        msg = (e.body or {}).get("message", "") \
            if isinstance(e.body, dict) else ""
        check("json schema with a back reference raises BadRequestError "
              "naming it", e.status_code == 400 and "pattern" in msg
              and "back references" in msg, e.body)


def sentiment(client, label, extra):
    """A review's sentiment asked under extra(texts), extra_body's choice
    of those texts: the answer one of them, finish stop, the stream the
    same. Returns the messages asked."""
    texts = ["positive", "negative", "neutral"]
    msgs = [{"role": "user", "content": "Is this review positive, "
             "negative or neutral? \"Cold food, rude waiter.\""}]
    kw = dict(model="base", messages=msgs, max_tokens=16, temperature=0,
              extra_body=extra(texts))
    c, parts = chat_and_stream(client, kw)
    check(label, c.message.content in texts and c.finish_reason == "stop"
          and "".join(parts) == c.message.content,
          (c.message.content, c.finish_reason, parts))
    return msgs


def guided_choice(client):
    """vLLM's guided_choice, sent as the client's extra_body: the answer
    is one of the texts as they are, on chat (streamed the same) and on
    completions (each of n sampled choices)."""
    sentiment(client, "guided_choice: the answer is one of the texts, "
              "finish stop; streamed the same",
              lambda texts: {"guided_choice": texts})
    r = client.completions.create(model="base", prompt="My favourite "
                                  "colour is", max_tokens=8, n=3,
                                  temperature=1.2, seed=5,
                                  extra_body={"guided_choice": [
                                      " red", " green", " blue and gold"]})
    got = [ch.text for ch in r.choices]
    check("guided_choice: completions, 3 sampled choices, each a text",
          len(got) == 3 and all(t in (" red", " green", " blue and gold")
                                for t in got)
          and all(ch.finish_reason == "stop" for ch in r.choices), got)


def guided_regex(client):
    """vLLM's guided_regex, sent as the client's extra_body: the answer is
    a text the expression matches whole (Python's re.fullmatch agrees),
    ending stop, the stream the same text; on completions, n sampled
    choices each one."""
    import re

    date = r"\d{4}-\d{2}-\d{2}"
    msgs = [{"role": "user", "content": "When did the Apollo 11 landing "
             "happen? Give the date."}]
    kw = dict(model="base", messages=msgs, max_tokens=16, temperature=0,
              extra_body={"guided_regex": date})
    c, parts = chat_and_stream(client, kw)
    check("guided_regex: the answer matches it whole, finish stop; "
          "streamed the same",
          re.fullmatch(date, c.message.content or "") is not None
          and c.finish_reason == "stop"
          and "".join(parts) == c.message.content,
          (c.message.content, c.finish_reason, parts))
    verdict = r"(yes|no)\. [A-Z][a-z ]{3,30}\."
    r = client.completions.create(model="base", prompt="Q: Do fish swim? "
                                  "A:", max_tokens=24, n=3,
                                  temperature=1.0, seed=5,
                                  extra_body={"guided_regex": " " + verdict})
    got = [ch.text for ch in r.choices]
    check("guided_regex: completions, 3 sampled choices, each a match",
          len(got) == 3 and all(re.fullmatch(" " + verdict, t) for t in got)
          and all(ch.finish_reason == "stop" for ch in r.choices), got)


def structured_outputs(client):
    """vLLM's structured_outputs, its newer spelling of guided decoding:
    a choice, a regular expression, a schema the client's model
    validates, JSON mode, vLLM's SQL grammar (and as guided_grammar); a
    grammar whose rule reaches itself refused, naming the field."""
    import pydantic

    msgs = sentiment(client, "structured_outputs choice: one of the "
                     "texts, finish stop; streamed the same",
                     lambda texts: {"structured_outputs": {"choice": texts}})
    date = r"\d{4}-\d{2}-\d{2}"
    r = client.completions.create(model="base", prompt="Apollo 11 landed"
                                  " on", max_tokens=16, n=2,
                                  temperature=1.0, seed=3,
                                  extra_body={"structured_outputs":
                                              {"regex": " " + date}})
    got = [ch.text for ch in r.choices]
    check("structured_outputs regex: completions, 2 sampled choices, each "
          "a match", len(got) == 2
          and all(re.fullmatch(" " + date, t) for t in got)
          and all(ch.finish_reason == "stop" for ch in r.choices), got)

    class City(pydantic.BaseModel):
        name: str
        country: str

    schema = City.model_json_schema()
    c = client.chat.completions.create(
        model="base", max_tokens=64, temperature=0,
        messages=[{"role": "user", "content": "Name a city in France as "
                   "JSON."}],
        extra_body={"structured_outputs": {
            "json": schema, "disable_additional_properties": True}})
    text = c.choices[0].message.content or ""
    try:
        city = City.model_validate_json(text)
        valid = (set(json.loads(text)) == {"name", "country"}
                 and c.choices[0].finish_reason == "stop")
    except (pydantic.ValidationError, ValueError):
        city, valid = None, False
    check("structured_outputs json: the client validates the answer into "
          "its model, its keys the model's alone", valid, text)
    ask = [{"role": "user", "content":
            "Reply in JSON: what are three fruits and their colours?"}]
    c = client.chat.completions.create(
        model="base", max_tokens=120, temperature=0, messages=ask,
        extra_body={"structured_outputs": {"json_object": True}})
    text = c.choices[0].message.content or ""
    fmt = client.chat.completions.create(
        model="base", max_tokens=120, temperature=0, messages=ask,
        response_format={"type": "json_object"})
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    check("structured_outputs json_object: a JSON object, finish stop, "
          "response_format json_object's answer", isinstance(obj, dict)
          and c.choices[0].finish_reason == "stop"
          and text == fmt.choices[0].message.content,
          (text, c.choices[0].finish_reason, fmt.choices[0].message.content))

    def blanks(t):
        """the blanks of a JSON text outside its strings"""
        n, quoted, escaped = 0, False, False
        for ch in t:
            if escaped:
                escaped = False
            elif quoted and ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = not quoted
            elif not quoted and ch in " \t\r\n":
                n += 1
        return n

    # the city's schema, its strings bounded so that the answer ends
    short = {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 24},
        "country": {"type": "string", "maxLength": 24}},
        "required": ["name", "country"]}
    ask = [{"role": "user", "content": "Name a city in France as JSON."}]
    answers = []
    for tight in (False, True):
        c = client.chat.completions.create(
            model="base", max_tokens=64, temperature=0, messages=ask,
            extra_body={"structured_outputs": {
                "json": short, "disable_any_whitespace": tight}})
        answers.append(c.choices[0].message.content or "")
    try:
        tobj = City.model_validate_json(answers[1])
    except (pydantic.ValidationError, ValueError):
        tobj = None
    check("structured_outputs disable_any_whitespace: the schema's object "
          "with no blank outside its strings, where the same answer without "
          "it has some", tobj is not None and blanks(answers[1]) == 0
          and blanks(answers[0]) > 0, answers)
    # vLLM's documented grammar, its SQL statement's shape
    sql = ("root ::= select_statement\n"
           "select_statement ::= \"SELECT \" column \" from \" table "
           "\" where \" condition\n"
           "column ::= \"col_1 \" | \"col_2 \"\n"
           "table ::= \"table_1 \" | \"table_2 \"\n"
           "condition ::= column \"= \" number\n"
           "number ::= \"1 \" | \"2 \"\n")
    sql_re = (r"SELECT (col_1|col_2)  from (table_1|table_2)  where "
              r"(col_1|col_2) = (1|2) ")
    c = client.chat.completions.create(
        model="base", max_tokens=32, temperature=0,
        messages=[{"role": "user", "content": "Generate an SQL query to "
                   "show the 'username' and 'email' from the 'users' "
                   "table."}],
        extra_body={"structured_outputs": {"grammar": sql}})
    text = c.choices[0].message.content or ""
    check("structured_outputs grammar: vLLM's SQL grammar's statement, "
          "finish stop", re.fullmatch(sql_re, text) is not None
          and c.choices[0].finish_reason == "stop", text)
    r = client.completions.create(
        model="base", prompt="A query:", max_tokens=32, n=2,
        temperature=1.0, seed=5, extra_body={"guided_grammar": sql})
    got = [ch.text for ch in r.choices]
    check("guided_grammar: completions, 2 sampled choices, each a "
          "statement of the grammar", len(got) == 2
          and all(re.fullmatch(sql_re, t) for t in got)
          and all(ch.finish_reason == "stop" for ch in r.choices), got)
    # llama.cpp's JSON grammar: its rules reach themselves
    json_gbnf = r"""root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws ::= | " " | "\n" [ \t]{0,20}
"""
    c = client.chat.completions.create(
        model="base", max_tokens=48, temperature=0,
        messages=[{"role": "user", "content": "Name a city in France as "
                   "JSON."}],
        extra_body={"structured_outputs": {"grammar": json_gbnf}})
    text = c.choices[0].message.content or ""
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    check("structured_outputs grammar whose rules reach themselves "
          "(llama.cpp's JSON grammar): a JSON object, finish stop",
          isinstance(obj, dict) and len(obj) > 0
          and c.choices[0].finish_reason == "stop", text)
    try:
        client.chat.completions.create(
            model="base", messages=msgs, max_tokens=4,
            extra_body={"structured_outputs": {
                "grammar": "root ::= e\ne ::= e \"+\" \"1\" | \"1\""}})
        check("structured_outputs grammar left-recursive raises "
              "BadRequestError naming the field and the way", False,
              "no error")
    except openai.BadRequestError as e:
        check("structured_outputs grammar left-recursive raises "
              "BadRequestError naming the field and the way",
              e.status_code == 400
              and "structured_outputs.grammar" in str(e.body)
              and "(e -> e): left recursion" in str(e.body), e.body)


def structural_tags(client):
    """vLLM's structural tags: one tag as the whole answer (xgrammar's
    format "tag"), and, in vLLM's earlier shape, a tag after its trigger
    in free text: the trigger made of the free greedy answer's first
    tokens, so the tagged answer comes to it where the free one does and
    the tag follows it; streamed the same; xgrammar's triggered_tags with
    stop_after_first ending the answer at that tag's end, and with
    at_least_one beginning it with a tag; one tag with
    disable_any_whitespace, compact; a format not served refused."""
    schema = {"type": "object", "properties": {"city": {
        "type": "string", "maxLength": 16}}, "required": ["city"]}
    ask = [{"role": "user", "content": "Name a city and describe it."}]

    def tag_json(text, begin):
        # the JSON between begin and "</t>", or None
        at = text.find(begin)
        end = text.find("</t>", at + len(begin)) if at >= 0 else -1
        if at < 0 or end < 0:
            return None
        try:
            obj = json.loads(text[at + len(begin):end])
        except ValueError:
            return None
        return obj if isinstance(obj, dict) \
            and isinstance(obj.get("city"), str) and len(obj) == 1 else None

    c = client.chat.completions.create(
        model="base", max_tokens=48, temperature=0, messages=ask,
        response_format={"type": "structural_tag", "format": {
            "type": "tag", "begin": "<t>", "content": {
                "type": "json_schema", "json_schema": schema},
            "end": "</t>"}})
    text = c.choices[0].message.content or ""
    check("structural_tag, one tag: the answer its begin, an object its "
          "schema admits, its end; finish stop",
          text.startswith("<t>") and text.endswith("</t>")
          and tag_json(text, "<t>") is not None
          and c.choices[0].finish_reason == "stop", text)
    free = client.chat.completions.create(
        model="base", max_tokens=48, temperature=0, messages=ask,
        logprobs=True)
    trigger = ""
    for lp in free.choices[0].logprobs.content:
        trigger += lp.token
        if len(trigger) >= 4:
            break
    tags = {"structures": [{"begin": trigger + "<t>", "schema": schema,
                            "end": "</t>"}], "triggers": [trigger]}
    c = client.chat.completions.create(
        model="base", max_tokens=48, temperature=0, messages=ask,
        extra_body={"structured_outputs": {
            "structural_tag": json.dumps(tags)}})
    text = c.choices[0].message.content or ""
    check("structural_tag after its trigger: the answer comes to the "
          "trigger as the free one does, then the tag whole",
          trigger.isascii() and len(trigger) >= 4 and text.startswith(
              trigger + "<t>")
          and (free.choices[0].message.content or "").startswith(trigger)
          and tag_json(text, trigger + "<t>") is not None,
          [trigger, text])
    parts = []
    for ch in client.chat.completions.create(
            model="base", max_tokens=48, temperature=0, messages=ask,
            stream=True, extra_body={"structured_outputs": {
                "structural_tag": json.dumps(tags)}}):
        for d in ch.choices:
            parts.append(d.delta.content or "")
    check("structural_tag after its trigger, streamed: the same text",
          "".join(parts) == text, ["".join(parts), text])
    c = client.chat.completions.create(
        model="base", max_tokens=96, temperature=0, messages=ask,
        response_format={"type": "structural_tag", "format": {
            "type": "triggered_tags", "triggers": [trigger],
            "tags": [{"type": "tag", "begin": trigger + "<t>", "content": {
                "type": "json_schema", "json_schema": schema},
                "end": "</t>"}], "stop_after_first": True}})
    first = c.choices[0].message.content or ""
    check("structural_tag of triggered_tags, stop_after_first: the answer "
          "ends with the first tag's end, finish stop",
          first == text[:text.find("</t>") + 4]
          and c.choices[0].finish_reason == "stop", [first, text])
    c = client.chat.completions.create(
        model="base", max_tokens=96, temperature=0, messages=ask,
        response_format={"type": "structural_tag", "format": {
            "type": "triggered_tags", "triggers": ["#"],
            "tags": [{"type": "tag", "begin": "#<t>", "content": {
                "type": "json_schema", "json_schema": schema},
                "end": "</t>"}], "at_least_one": True,
            "stop_after_first": True}})
    least = c.choices[0].message.content or ""
    check("structural_tag of triggered_tags, at_least_one: the answer "
          "begins with a tag where the free one holds no trigger, the "
          "whole answer with stop_after_first, finish stop",
          "#" not in (free.choices[0].message.content or "")
          and least.startswith("#<t>") and least.endswith("</t>")
          and tag_json(least, "#<t>") is not None
          and c.choices[0].finish_reason == "stop", least)
    one = {"format": {"type": "tag", "begin": "<t>", "content": {
        "type": "json_schema", "json_schema": schema}, "end": "</t>"}}
    c = client.chat.completions.create(
        model="base", max_tokens=48, temperature=0, messages=ask,
        extra_body={"structured_outputs": {
            "structural_tag": json.dumps(one),
            "disable_any_whitespace": True}})
    text = c.choices[0].message.content or ""
    check("structural_tag with disable_any_whitespace: the tag with no "
          "blank outside its strings",
          text.startswith('<t>{"city":"') and text.endswith('"}</t>')
          and tag_json(text, "<t>") is not None, text)
    try:
        client.chat.completions.create(
            model="base", messages=ask, max_tokens=4,
            response_format={"type": "structural_tag", "format": {
                "type": "triggered_tags", "triggers": ["<a"],
                "tags": [{"type": "tag", "begin": "<b>", "content": {
                    "type": "json_schema", "json_schema": {}},
                    "end": "</b>"}]}})
        check("structural_tag whose tag begins with no trigger raises "
              "BadRequestError naming the tag as written", False,
              "no error")
    except openai.BadRequestError as e:
        check("structural_tag whose tag begins with no trigger raises "
              "BadRequestError naming the tag as written",
              e.status_code == 400 and e.body.get("message")
              == "response_format: format.tags[0].begin does not begin "
                 "with a trigger: every tag's does", e.body)
    try:
        client.chat.completions.create(
            model="base", messages=ask, max_tokens=4,
            response_format={"type": "structural_tag", "format": {
                "type": "any_text"}})
        check("structural_tag of a format not served raises "
              "BadRequestError naming it", False, "no error")
    except openai.BadRequestError as e:
        check("structural_tag of a format not served raises "
              "BadRequestError naming it", e.status_code == 400
              and "any_text" in str(e.body)
              and e.body.get("param") == "response_format", e.body)


def tools(client, adapter):
    """Function calling: a named function and tool_choice "required" give
    a call whose arguments its parameters admit (the stream the same call
    in pieces); "required" asked for two things gives two calls, or one
    with parallel_tool_calls false; the client's pydantic_function_tool and
    parse() get the arguments as the model; with "auto" SmolLM2-135M answers
    in text, and, shown earlier turns of a sentence then a call
    (call_steer), the sentence as content and then the call, on the base and
    the adapter; a call and its result sent back are rendered into the
    prompt and answered; parameters the server cannot enforce are a 400."""
    import pydantic

    class GetWeather(pydantic.BaseModel):
        city: str = pydantic.Field(max_length=32)
        unit: str = pydantic.Field(json_schema_extra={
            "enum": ["celsius", "fahrenheit"]})

    weather, clock = WEATHER, CLOCK

    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = client.chat.completions.create(
        model="base", messages=ask, max_tokens=64, temperature=0,
        tools=[weather, clock],
        tool_choice={"type": "function", "function": {"name": "get_time"}})
    c = r.choices[0]
    calls = c.message.tool_calls or []
    check("tools named: a call of that function, content null, finish stop",
          len(calls) == 1 and calls[0].type == "function"
          and calls[0].function.name == "get_time"
          and calls[0].id.startswith("call_") and c.message.content is None
          and c.finish_reason == "stop", c.message)
    check("tools named: its arguments are what its parameters admit",
          calls and admits("get_time", calls[0].function.arguments),
          calls and calls[0].function.arguments)

    ask = [{"role": "user", "content": "What time is it in Tokyo?"}]
    kw = dict(model="base", messages=ask, max_tokens=64, temperature=0,
              tools=[weather, clock], tool_choice="required")
    r = client.chat.completions.create(**kw)
    c = r.choices[0]
    calls = c.message.tool_calls or []
    check("tools required: a call of one of them, finish tool_calls",
          len(calls) == 1 and calls[0].function.name in ("get_weather",
                                                         "get_time")
          and c.message.content is None and c.finish_reason == "tool_calls",
          c.message)
    check("tools required: its arguments are what that one's parameters "
          "admit", calls and admits(calls[0].function.name,
                                    calls[0].function.arguments),
          calls and calls[0].function.arguments)

    ids, names, args, finish, text = set(), [], "", [], ""
    for chunk in client.chat.completions.create(stream=True, **kw):
        if not chunk.choices:
            continue
        d = chunk.choices[0].delta
        text += d.content or ""
        for tc in d.tool_calls or []:
            if tc.id:
                ids.add((tc.index, tc.id, tc.type))
            if tc.function and tc.function.name:
                names.append(tc.function.name)
            if tc.function and tc.function.arguments:
                args += tc.function.arguments
        if chunk.choices[0].finish_reason:
            finish.append(chunk.choices[0].finish_reason)
    check("tools required stream: one call, id, type and name once, the "
          "arguments and finish the non-streamed ones",
          calls and len(ids) == 1 and list(ids)[0][0] == 0
          and list(ids)[0][2] == "function"
          and names == [calls[0].function.name]
          and args == calls[0].function.arguments
          and finish == ["tool_calls"] and text == "",
          (ids, names, args, finish, text))

    kw = dict(kw, n=2, temperature=1.0, seed=3)
    body = client.chat.completions.create(**kw)
    got = {}
    for chunk in client.chat.completions.create(stream=True, **kw):
        for c in chunk.choices:
            g = got.setdefault(c.index, {"calls": {}, "finish": None})
            for tc in c.delta.tool_calls or []:
                call = g["calls"].setdefault(tc.index, ["", ""])
                call[0] += (tc.function and tc.function.name) or ""
                call[1] += (tc.function and tc.function.arguments) or ""
            g["finish"] = c.finish_reason or g["finish"]
    want = {c.index: {"calls": {i: [t.function.name, t.function.arguments]
                                for i, t in enumerate(c.message.tool_calls)},
                      "finish": c.finish_reason}
            for c in body.choices if c.message.tool_calls}
    check("tools required n=2 stream: each choice's calls under its index, "
          "the body's", len(want) == 2 and got == want, (got, want))

    # (a system message of its own: after its default one SmolLM2 makes
    # one call)
    ask = [{"role": "system", "content": "You are a helpful assistant."},
           {"role": "user",
            "content": "Get the weather in Paris, and the time in Tokyo."}]
    kw = dict(model="base", messages=ask, max_tokens=96, temperature=0,
              tools=[weather, clock], tool_choice="required")
    c = client.chat.completions.create(**kw).choices[0]
    calls = c.message.tool_calls or []
    check("tools required, two asked: two calls (get_weather, get_time), "
          "each admitted, ids distinct, finish tool_calls",
          [t.function.name for t in calls] == ["get_weather", "get_time"]
          and all(admits(t.function.name, t.function.arguments)
                  for t in calls)
          and len({t.id for t in calls}) == 2
          and c.finish_reason == "tool_calls", c.message)
    got = {}
    for chunk in client.chat.completions.create(stream=True, **kw):
        for tc in (chunk.choices[0].delta.tool_calls or []
                   if chunk.choices else []):
            g = got.setdefault(tc.index, ["", ""])
            g[0] += (tc.function and tc.function.name) or ""
            g[1] += (tc.function and tc.function.arguments) or ""
    check("tools required, two asked, streamed: the same calls under "
          "indexes 0 and 1",
          got == {i: [t.function.name, t.function.arguments]
                  for i, t in enumerate(calls)}, (got, calls))
    c = client.chat.completions.create(parallel_tool_calls=False,
                                       **kw).choices[0]
    check("tools required, two asked, parallel_tool_calls false: one call",
          len(c.message.tool_calls or []) == 1
          and admits(c.message.tool_calls[0].function.name,
                     c.message.tool_calls[0].function.arguments)
          and c.finish_reason == "tool_calls", c.message)


    r = client.chat.completions.parse(
        model="base", messages=[{"role": "user",
                                 "content": "Weather in Rome, celsius?"}],
        max_tokens=64, temperature=0,
        tools=[openai.pydantic_function_tool(GetWeather)],
        tool_choice="required")
    calls = r.choices[0].message.tool_calls or []
    check("tools parse(): pydantic_function_tool's arguments parsed into "
          "its model",
          len(calls) == 1 and calls[0].function.name == "GetWeather"
          and isinstance(calls[0].function.parsed_arguments, GetWeather),
          calls)

    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    kw = dict(model="base", messages=ask, max_tokens=48, temperature=0,
              tools=[weather, clock])
    c, parts = chat_and_stream(client, kw)
    check("tools auto: the model chose text; the stream's text is the same",
          c.message.tool_calls is None and (c.message.content or "") != ""
          and "".join(parts) == c.message.content
          and c.finish_reason in ("stop", "length"),
          (c.message, "".join(parts)))

    # "auto" when the model writes a sentence and then a call: the
    # sentence is the content, the call a call, streamed the same
    def shot(city):
        return [{"role": "user",
                 "content": f"What is the weather in {city}?"},
                {"role": "assistant", "content": "One moment.",
                 "tool_calls": [{"id": "call_" + city, "type": "function",
                                 "function": {"name": "get_weather",
                                              "arguments": json.dumps(
                                                  {"city": city})}}]},
                {"role": "tool", "tool_call_id": "call_" + city,
                 "content": "sunny"},
                {"role": "assistant", "content": f"It is sunny in {city}."}]

    for model in ("base", adapter):
        kw = dict(model=model, messages=shot("Paris") + shot("London") + [
            {"role": "user", "content": "What is the weather in Rome?"}],
            max_tokens=48, temperature=0, tools=[weather, clock],
            logit_bias=call_steer(client))
        c = client.chat.completions.create(**kw).choices[0]
        calls = c.message.tool_calls or []
        check(f"tools auto {model}, text then a call: the text the content, "
              "the call a call, finish tool_calls",
              (c.message.content or "").strip() != ""
              and "<tool" not in c.message.content and len(calls) == 1
              and calls[0].function.name == "get_weather"
              and admits("get_weather", calls[0].function.arguments)
              and c.finish_reason == "tool_calls", c.message)
        got = {"text": "", "calls": {}, "finish": []}
        for chunk in client.chat.completions.create(stream=True, **kw):
            if not chunk.choices:
                continue
            d = chunk.choices[0].delta
            got["text"] += d.content or ""
            for tc in d.tool_calls or []:
                g = got["calls"].setdefault(tc.index, ["", "", ""])
                g[0] += tc.id or ""
                g[1] += (tc.function and tc.function.name) or ""
                g[2] += (tc.function and tc.function.arguments) or ""
            if chunk.choices[0].finish_reason:
                got["finish"].append(chunk.choices[0].finish_reason)
        want = {"text": c.message.content or "",
                "calls": {i: [got["calls"].get(i, [""])[0],
                              t.function.name, t.function.arguments]
                          for i, t in enumerate(calls)},
                "finish": ["tool_calls"]}
        check(f"tools auto {model}, text then a call, streamed: the same "
              "text, then the same call under index 0",
              calls and got == want
              and all(g[0].startswith("call_")
                      for g in got["calls"].values()), (got, want))

    first = client.chat.completions.create(
        model="base", messages=ask, max_tokens=64, temperature=0,
        tools=[weather, clock], tool_choice="required")
    msg = first.choices[0].message
    conv = ask + [msg.model_dump(exclude_none=True)] + [
        {"role": "tool", "tool_call_id": tc.id,
         "content": json.dumps({"temperature_c": 14, "sky": "rain"})}
        for tc in msg.tool_calls or []]
    r = client.chat.completions.create(model="base", messages=conv,
                                       max_tokens=32, temperature=0,
                                       tools=[weather, clock],
                                       tool_choice="none")
    c = r.choices[0]
    check("tools conversation: the call and its result go back, a text "
          "answer", msg.tool_calls and c.message.tool_calls is None
          and (c.message.content or "") != ""
          and c.finish_reason in ("stop", "length"), c.message)
    plain = client.chat.completions.create(model="base", messages=ask,
                                           max_tokens=1, tools=[weather,
                                                                clock],
                                           tool_choice="none")
    check("tools conversation: the call and the result are in the prompt",
          r.usage.prompt_tokens > plain.usage.prompt_tokens + 40,
          (r.usage.prompt_tokens, plain.usage.prompt_tokens))

    bad = {"type": "function", "function": {
        "name": "send", "parameters": {"type": "object", "properties": {
            "to": {"type": "string", "pattern": "^(?=.*@)"}}}}}
    try:
        client.chat.completions.create(model="base", messages=ask,
                                       max_tokens=8, tools=[bad],
                                       tool_choice="required")
        check("tools required with a lookahead raises BadRequestError "
              "naming it", False, "no exception")
    except openai.BadRequestError as e:
        msg = (e.body or {}).get("message", "") \
            if isinstance(e.body, dict) else ""
        check("tools required with a lookahead raises BadRequestError "
              "naming it", e.status_code == 400 and "pattern" in msg
              and "lookahead" in msg and "tools[0]" in msg, e.body)


def prefill(client, model):
    """vLLM's continue_final_message: an assistant message holding the
    first tokens of the greedy answer, continued, gives the rest of that
    answer, its prompt longer by exactly those tokens; with vLLM's echo
    the content is the prefill and that rest, and streamed the prefill
    comes as a chunk of its own after the role's; with the generation
    prompt as well, a 400."""
    ask = [{"role": "user", "content": "Name three colors of the rainbow."}]
    r = client.chat.completions.create(model=model, messages=ask,
                                       max_tokens=24, temperature=0,
                                       logprobs=True)
    whole = r.choices[0].message.content
    toks = [t.token for t in r.choices[0].logprobs.content]
    head = "".join(toks[:6])
    c = client.chat.completions.create(
        model=model, messages=ask + [{"role": "assistant", "content": head}],
        max_tokens=len(toks) - 6, temperature=0,
        extra_body={"continue_final_message": True,
                    "add_generation_prompt": False})
    check(f"continue_final_message {model}: the rest of the greedy answer, "
          "the prompt 6 tokens longer",
          len(toks) > 8 and whole.startswith(head)
          and c.choices[0].message.content == whole[len(head):]
          and c.usage.prompt_tokens == r.usage.prompt_tokens + 6,
          (whole, head, c.choices[0].message.content,
           r.usage.prompt_tokens, c.usage.prompt_tokens))
    e = client.chat.completions.create(
        model=model, messages=ask + [{"role": "assistant", "content": head}],
        max_tokens=len(toks) - 6, temperature=0,
        extra_body={"continue_final_message": True,
                    "add_generation_prompt": False, "echo": True})
    check(f"continue_final_message {model} with echo: the content the "
          "prefill and its rest, the greedy answer whole; usage as without",
          e.choices[0].message.content == whole
          and e.usage.completion_tokens == c.usage.completion_tokens,
          (whole, e.choices[0].message.content))
    parts = []
    for ch in client.chat.completions.create(
            model=model,
            messages=ask + [{"role": "assistant", "content": head}],
            max_tokens=len(toks) - 6, temperature=0, stream=True,
            extra_body={"continue_final_message": True,
                        "add_generation_prompt": False, "echo": True}):
        for d in ch.choices:
            if d.delta.role is not None or d.delta.content:
                parts.append((d.delta.role, d.delta.content or ""))
    check(f"continue_final_message {model} with echo, streamed: after the "
          "role's chunk one of the prefill, then the rest",
          len(parts) > 2 and parts[0] == ("assistant", "")
          and parts[1] == (None, head)
          and "".join(p[1] for p in parts) == whole, parts[:3])
    try:
        client.chat.completions.create(
            model=model, max_tokens=4,
            messages=ask + [{"role": "assistant", "content": head}],
            extra_body={"continue_final_message": True})
        check(f"continue_final_message {model} with the generation prompt "
              "raises BadRequestError", False, "no exception")
    except openai.BadRequestError as e:
        check(f"continue_final_message {model} with the generation prompt "
              "raises BadRequestError",
              e.status_code == 400 and isinstance(e.body, dict)
              and e.body.get("param") == "continue_final_message", e.body)


def prediction(client, model):
    """OpenAI's predicted outputs: an answer asked again with an edit of
    it as the prediction is the same answer, most of its tokens taken from
    the prediction (usage's completion_tokens_details), streamed the same;
    without a prediction usage has no such details."""
    kw = dict(model=model, max_tokens=96, temperature=0, messages=[
        {"role": "user", "content": "Write a Python function that adds "
                                    "two numbers."}])
    ref = client.chat.completions.create(**kw)
    want = ref.choices[0].message.content or ""
    cut = len(want) // 3
    edited = want[:cut] + "\n# added\n" + want[cut:]
    pr = {"type": "content", "content": edited}
    r = client.chat.completions.create(prediction=pr, **kw)
    d = r.usage.completion_tokens_details
    check(f"prediction {model}: the answer without it, most of its "
          "tokens taken from the prediction",
          r.choices[0].message.content == want
          and r.choices[0].finish_reason == ref.choices[0].finish_reason
          and r.usage.completion_tokens == ref.usage.completion_tokens
          and d is not None
          and d.accepted_prediction_tokens * 2 > r.usage.completion_tokens
          and d.rejected_prediction_tokens >= 0
          and ref.usage.completion_tokens_details is None,
          (r.choices[0].message.content, want, d))
    text, usage = "", None
    for chunk in client.chat.completions.create(
            prediction=pr, stream=True, stream_options={"include_usage": True},
            **kw):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    check(f"prediction {model} stream: the same text, the same "
          "completion_tokens_details", text == want and usage is not None
          and usage.completion_tokens_details == d, (text, usage))


def errors(client):
    try:
        client.chat.completions.create(
            model="no-such-adapter", max_tokens=4,
            messages=[{"role": "user", "content": "hi"}])
        check("unknown model raises NotFoundError", False, "no exception")
    except openai.NotFoundError as e:
        check("unknown model raises NotFoundError", e.status_code == 404,
              e.status_code)
        msg = (e.body or {}).get("message") if isinstance(e.body, dict) \
            else None
        check("... with the error message parsed", bool(msg), e.body)
        check("... and the request's id", REQ_ID.fullmatch(e.request_id
                                                          or "")
              is not None, e.request_id)
    except openai.APIError as e:
        check("unknown model raises NotFoundError", False, repr(e))

    try:
        client.chat.completions.create(
            model="base", max_tokens=0,
            messages=[{"role": "user", "content": "hi"}])
        check("max_tokens=0 raises BadRequestError", False, "no exception")
    except openai.BadRequestError as e:
        check("max_tokens=0 raises BadRequestError", e.status_code == 400,
              e.status_code)
    except openai.APIError as e:
        check("max_tokens=0 raises BadRequestError", False, repr(e))

    name = "a completion's prediction raises BadRequestError naming it"
    try:
        client.completions.create(
            model="base", prompt="def f(", max_tokens=4,
            extra_body={"prediction": {"type": "content", "content": "x"}})
        check(name, False, "no exception")
    except openai.BadRequestError as e:
        check(name, isinstance(e.body, dict)
              and e.body.get("param") == "prediction"
              and e.body.get("code") == "unsupported_parameter", e.body)
    except openai.APIError as e:
        check(name, False, repr(e))


def main():
    base_url, adapter = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key="unused",
                           max_retries=0, timeout=120)

    ids = [m.id for m in client.models.list().data]
    check("models lists base", "base" in ids, ids)
    check("models lists the adapter", adapter in ids, ids)

    chat_pair(client, "base", "What is the capital of France?", 24)
    text_pair(client, "base", "The capital of France is", 16)
    chat_pair(client, adapter, "Name three fruits.", 16, need_text=False)
    logprobs(client, "base")
    choices(client, adapter)
    prompts(client)
    json_mode(client)
    json_schema(client)
    json_blanks(client)
    guided_choice(client)
    guided_regex(client)
    structured_outputs(client)
    structural_tags(client)
    tools(client, adapter)
    prefill(client, "base")
    prefill(client, adapter)
    prediction(client, "base")
    prediction(client, adapter)
    errors(client)


if __name__ == "__main__":
    run(main)
