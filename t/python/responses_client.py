"""responses_client.py: drives a slora server's Responses API
(POST /v1/responses) with the official `openai` Python package, the way
an agent framework built on it would.

usage: responses_client.py BASE_URL ADAPTER

It asks the same things through client.responses and through
client.chat.completions and checks that they answer alike (greedy, so
the same text, the same calls, the same token counts): plain input,
instructions, an adapter, max_output_tokens cutting the answer,
log-probabilities, a JSON
schema read by responses.parse(), function tools (tool_choice required)
and a conversation that sends the call and its output back, and the
stored responses (previous_response_id, retrieve, delete), the
conversations and the input token count of a response in one (the
prompt's tokens the response then has). Streams go
through the client's own responses.stream() helper, which checks the
events' order, indexes and ids as it assembles them. The one idea to
know: as in openai_client.py, each check is recorded, never asserted
here; one JSON line {"checks": [[name, ok, detail], ...]} is printed and
the exit status is 0 when every check passed.
"""

import json
import sys
import time

import openai
from pydantic import BaseModel

from client_checks import call_steer, check, run


WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"},
                   "unit": {"enum": ["C", "F"]}},
    "required": ["city", "unit"],
}
ASK = "What is the weather in Paris?"
# the function as Responses (flat) and chat (nested) write it
TOOLS = [{"type": "function", "name": "get_weather",
          "description": "Weather in a city", "parameters": WEATHER}]
CHAT_TOOLS = [{"type": "function",
               "function": {"name": "get_weather",
                            "description": "Weather in a city",
                            "parameters": WEATHER}}]


def chat_text(client, model, msgs, max_tokens, **kw):
    r = client.chat.completions.create(model=model, messages=msgs,
                                       max_tokens=max_tokens, temperature=0,
                                       **kw)
    return r.choices[0].message.content or "", r.usage, r.choices[0]


def streamed(client, **kw):
    """The helper's events and final response (None when the stream ended
    otherwise), and the deltas' text."""
    with client.responses.stream(**kw) as s:
        events = list(s)
        final = None
        try:
            final = s.get_final_response()
        except RuntimeError:
            pass
    text = "".join(e.delta for e in events
                   if e.type == "response.output_text.delta")
    return events, final, text


def order_ok(events, kinds):
    """The events in the Responses order: created, in_progress, then per
    item added ... done, then the last; sequence numbers 0, 1, 2..."""
    types = [e.type for e in events]
    seq = [e.sequence_number for e in events]
    inner = [t for t in types[2:-1]
             if not t.endswith(".delta")]
    want = []
    for k in kinds:
        if k == "message":
            want += ["response.output_item.added",
                     "response.content_part.added",
                     "response.output_text.done",
                     "response.content_part.done",
                     "response.output_item.done"]
        else:
            want += ["response.output_item.added",
                     "response.function_call_arguments.done",
                     "response.output_item.done"]
    return (types[:2] == ["response.created", "response.in_progress"]
            and inner == want and seq == list(range(len(events)))
            and len({e.response.id for e in events
                     if e.type.startswith("response.")
                     and hasattr(e, "response")}) == 1)


def text(client, model, label, max_tokens=24):
    """Plain input and instructions: the chat's answer, token counts and
    all; streamed the same."""
    r = client.responses.create(model=model, input=ASK,
                                max_output_tokens=max_tokens, temperature=0)
    want, usage, c = chat_text(client, model,
                               [{"role": "user", "content": ASK}],
                               max_tokens)
    msg = r.output[0] if r.output else None
    check(f"{label}: a response object, one message of output_text",
          r.object == "response" and r.id.startswith("resp_")
          and len(r.output) == 1 and msg.type == "message"
          and msg.role == "assistant" and msg.content[0].type == "output_text"
          and r.model == model, r)
    check(f"{label}: the chat's answer, its token counts",
          r.output_text == want
          and r.usage.input_tokens == usage.prompt_tokens
          and r.usage.output_tokens == usage.completion_tokens
          and r.usage.total_tokens == usage.total_tokens,
          f"{r.output_text!r} vs {want!r}; {r.usage} vs {usage}")
    check(f"{label}: status as the chat's finish_reason",
          (r.status, c.finish_reason) in (("completed", "stop"),
                                          ("incomplete", "length")),
          (r.status, c.finish_reason))

    events, final, stext = streamed(client, model=model, input=ASK,
                                    max_output_tokens=max_tokens,
                                    temperature=0)
    last = events[-1] if events else None
    check(f"{label} stream: the events in order, one id, numbered",
          order_ok(events, ["message"]), [e.type for e in events][:8])
    check(f"{label} stream: the deltas are the non-streamed text, and the "
          f"last event's",
          stext == r.output_text and last is not None
          and last.response.output[0].content[0].text == stext
          and last.response.status == r.status
          and last.response.usage.output_tokens == r.usage.output_tokens,
          f"{stext!r} vs {r.output_text!r}")

    r = client.responses.create(model=model, input=ASK,
                                instructions="Answer in French.",
                                max_output_tokens=max_tokens, temperature=0)
    want, usage, _ = chat_text(client, model,
                               [{"role": "system",
                                 "content": "Answer in French."},
                                {"role": "user", "content": ASK}],
                               max_tokens)
    check(f"{label}: instructions are the chat's system message",
          r.output_text == want and r.instructions == "Answer in French."
          and r.usage.input_tokens == usage.prompt_tokens,
          f"{r.output_text!r} vs {want!r}")


def cut(client):
    """max_output_tokens ends it: incomplete, and why; streamed, the last
    event is response.incomplete."""
    r = client.responses.create(model="base", input="Count to one hundred.",
                                max_output_tokens=5, temperature=0)
    check("max_output_tokens: status incomplete, reason "
          "max_output_tokens, 5 tokens",
          r.status == "incomplete"
          and r.incomplete_details.reason == "max_output_tokens"
          and r.output[0].status == "incomplete"
          and r.usage.output_tokens == 5 and r.max_output_tokens == 5, r)
    events, final, stext = streamed(client, model="base",
                                    input="Count to one hundred.",
                                    max_output_tokens=5, temperature=0)
    check("max_output_tokens stream: response.incomplete last, the same "
          "text, no response.completed",
          events and events[-1].type == "response.incomplete"
          and final is None and stext == r.output_text,
          [e.type for e in events][-3:])


def logprobs(client):
    """include's message.output_text.logprobs with top_logprobs: the
    chat's entries, alternatives and all; streamed, the deltas' entries
    are the same ones, and the done events' all of them."""
    kw = dict(model="base", input="Count to five.", max_output_tokens=12,
              temperature=0, top_logprobs=2,
              include=["message.output_text.logprobs"])
    r = client.responses.create(**kw)
    lp = r.output[0].content[0].logprobs or []
    c = client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": "Count to five."}],
        max_tokens=12, temperature=0, logprobs=True, top_logprobs=2)
    want = [(e.token, e.logprob, [(t.token, t.logprob)
                                  for t in e.top_logprobs])
            for e in c.choices[0].logprobs.content]
    got = [(e.token, e.logprob, [(t.token, t.logprob)
                                 for t in e.top_logprobs]) for e in lp]
    check("logprobs: the chat's entries, two alternatives each, the "
          "tokens the text",
          got == want and len(got) == r.usage.output_tokens
          and all(len(e[2]) == 2 for e in got)
          and "".join(e[0] for e in got) == r.output_text, (got, want))

    events, final, _ = streamed(client, **kw)
    deltas = [(e.token, e.logprob) for ev in events
              if ev.type == "response.output_text.delta"
              for e in ev.logprobs]
    done = [ev for ev in events if ev.type == "response.output_text.done"]
    last = events[-1].response.output[0].content[0].logprobs \
        if events else []
    check("logprobs stream: the deltas carry each entry once, the done "
          "event and the last object all of them",
          deltas == [(t, l) for t, l, _ in want] and len(done) == 1
          and [(e.token, e.logprob) for e in done[0].logprobs] == deltas
          and [(e.token, e.logprob) for e in last] == deltas,
          (deltas, want))


class City(BaseModel):
    name: str
    country: str


def schema(client):
    """text.format json_schema, as responses.parse() sends a pydantic
    model: the client validates the answer into it."""
    r = client.responses.parse(model="base", input="Name a city in France.",
                               text_format=City, temperature=0,
                               max_output_tokens=60)
    check("parse(): the answer validated into the pydantic model",
          isinstance(r.output_parsed, City) and r.status == "completed"
          and r.text.format.type == "json_schema", r.output_text)


def auto_items(client, msgs, inp, **bias):
    """tool_choice "auto" asked of chat (msgs) and of Responses (inp, the
    same conversation as items), greedy: the Responses output as (kind,
    what) pairs, the chat's answer as the same pairs, the streamed
    response's pairs, and the stream's events."""
    extra = {"extra_body": bias} if bias else {}
    ra = client.responses.create(model="base", input=inp, tools=TOOLS,
                                 temperature=0, max_output_tokens=60,
                                 **extra)
    ca = client.chat.completions.create(
        model="base", messages=msgs, tools=CHAT_TOOLS, temperature=0,
        max_tokens=60, **bias).choices[0].message
    want = ([("message", ca.content)] if ca.content else []) + [
        ("function_call", (t.function.name, t.function.arguments))
        for t in ca.tool_calls or []]
    got = [("message", o.content[0].text) if o.type == "message"
           else (o.type, (o.name, o.arguments)) for o in ra.output]
    events, final, _ = streamed(client, model="base", input=inp, tools=TOOLS,
                                temperature=0, max_output_tokens=60, **extra)
    last = events[-1].response if events \
        and events[-1].type in ("response.completed",
                                "response.incomplete") else None
    sgot = [("message", o.content[0].text) if o.type == "message"
            else (o.type, (o.name, o.arguments))
            for o in (last.output if last else [])]
    return got, want, sgot, events


def tools(client):
    """A call required: a function_call item with the chat's arguments;
    streamed, the same call; sent back with its output, the chat's
    answer to the same conversation."""
    r = client.responses.create(model="base", input=ASK, tools=TOOLS,
                                tool_choice="required", temperature=0)
    call = r.output[-1] if r.output else None
    c = client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": ASK}],
        tools=CHAT_TOOLS,
        tool_choice="required", temperature=0)
    cc = c.choices[0].message.tool_calls[0]
    args = json.loads(call.arguments) if call is not None \
        and call.type == "function_call" else None
    check("tools required: a function_call item, the chat's call",
          call is not None and call.type == "function_call"
          and call.name == "get_weather" and call.call_id.startswith("call_")
          and call.arguments == cc.function.arguments
          and isinstance(args, dict) and args.get("unit") in ("C", "F")
          and isinstance(args.get("city"), str), r.output)

    events, final, _ = streamed(client, model="base", input=ASK, tools=TOOLS,
                                tool_choice="required", temperature=0)
    fc = final.output[-1] if final and final.output else None
    check("tools required stream: the events in order, the same call",
          order_ok(events, ["function_call"]) and fc is not None
          and fc.type == "function_call" and fc.name == "get_weather"
          and fc.arguments == call.arguments
          and "".join(e.delta for e in events if e.type
                      == "response.function_call_arguments.delta")
          == call.arguments,
          [e.type for e in events][:6])

    # two asked for: two function_call items, the chat's two calls (with
    # instructions: after its default system message SmolLM2 makes one)
    two = "Get the weather in Paris, and the weather in Tokyo."
    says = "Answer with function calls."
    r = client.responses.create(model="base", input=two, tools=TOOLS,
                                instructions=says, tool_choice="required",
                                temperature=0)
    cc = client.chat.completions.create(
        model="base", messages=[{"role": "system", "content": says},
                                {"role": "user", "content": two}],
        tools=CHAT_TOOLS, tool_choice="required",
        temperature=0).choices[0].message.tool_calls or []
    want = [("get_weather", t.function.arguments) for t in cc]
    got = [(o.name, o.arguments) for o in r.output
           if o.type == "function_call"]
    events, final, _ = streamed(client, model="base", input=two, tools=TOOLS,
                                instructions=says, tool_choice="required",
                                temperature=0)
    sgot = [(o.name, o.arguments) for o in (final.output if final else [])
            if o.type == "function_call"]
    check("tools required, two asked: two function_call items, the chat's "
          "calls, call ids distinct; streamed the same, in order",
          len(want) == 2 and got == want and sgot == want
          and len(r.output) == 2
          and len({o.call_id for o in r.output}) == 2
          and order_ok(events, ["function_call", "function_call"]),
          (got, want, sgot))

    # "auto": the model chooses; whatever it chose, the chat's, as items
    got, want, sgot, events = auto_items(
        client, [{"role": "user", "content": ASK}], ASK)
    check("tools auto: the chat's text and calls as items; streamed the "
          "same, in order",
          got == want and sgot == want
          and order_ok(events, [k for k, _ in want]), (got, want, sgot))

    # shown earlier turns of a sentence then a call (call_steer), the
    # model writes both: a message item, then a function_call item
    msgs, items = [], []
    for city in ("Paris", "London"):
        args = json.dumps({"city": city, "unit": "C"})
        msgs += [{"role": "user",
                  "content": f"What is the weather in {city}?"},
                 {"role": "assistant", "content": "One moment.",
                  "tool_calls": [{"id": "call_" + city, "type": "function",
                                  "function": {"name": "get_weather",
                                               "arguments": args}}]},
                 {"role": "tool", "tool_call_id": "call_" + city,
                  "content": "sunny"},
                 {"role": "assistant", "content": f"It is sunny in {city}."}]
        items += [{"role": "user",
                   "content": f"What is the weather in {city}?"},
                  {"role": "assistant", "content": "One moment."},
                  {"type": "function_call", "call_id": "call_" + city,
                   "name": "get_weather", "arguments": args},
                  {"type": "function_call_output", "call_id": "call_" + city,
                   "output": "sunny"},
                  {"role": "assistant", "content": f"It is sunny in {city}."}]
    last = {"role": "user", "content": "What is the weather in Rome?"}
    got, want, sgot, events = auto_items(client, msgs + [last],
                                         items + [last],
                                         logit_bias=call_steer(client))
    check("tools auto, text then a call: a message item, then a "
          "function_call item, the chat's; streamed the same, in order",
          [k for k, _ in want] == ["message", "function_call"]
          and got == want and sgot == want
          and order_ok(events, ["message", "function_call"]),
          (got, want, sgot))

    back = [{"role": "user", "content": ASK},
            {"type": "function_call", "call_id": call.call_id,
             "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id,
             "output": "18 C, sunny"}]
    r2 = client.responses.create(model="base", input=back, tools=TOOLS,
                                 temperature=0, max_output_tokens=30)
    want, usage, _ = chat_text(
        client, "base",
        [{"role": "user", "content": ASK},
         {"role": "assistant", "content": None,
          "tool_calls": [{"id": call.call_id, "type": "function",
                          "function": {"name": call.name,
                                       "arguments": call.arguments}}]},
         {"role": "tool", "tool_call_id": call.call_id,
          "content": "18 C, sunny"}], 30,
        tools=CHAT_TOOLS)
    check("tools conversation: the call and its output sent back are the "
          "chat's, the same answer",
          r2.usage.input_tokens == usage.prompt_tokens
          and r2.output_text == want
          and r2.usage.input_tokens > r.usage.input_tokens,
          f"{r2.output_text!r} vs {want!r}; {r2.usage.input_tokens} vs "
          f"{usage.prompt_tokens}")


def stored(client):
    """slora_responses_store: a response continued by its id is the chat
    of the whole conversation (text, calls and their outputs); streamed
    ones are stored too; retrieve gives the object, input_items its input,
    delete takes it away, store false keeps none, another tenant sees
    none."""
    first = "My name is Ada. Say hi."
    r1 = client.responses.create(model="base", input=first, temperature=0,
                                 max_output_tokens=20)
    r2 = client.responses.create(model="base", input="What is my name?",
                                 previous_response_id=r1.id, temperature=0,
                                 max_output_tokens=20)
    want, usage, _ = chat_text(client, "base",
                               [{"role": "user", "content": first},
                                {"role": "assistant",
                                 "content": r1.output_text},
                                {"role": "user",
                                 "content": "What is my name?"}], 20)
    check("store: previous_response_id continues the conversation, the "
          "chat's answer to all of it",
          r1.store and r2.previous_response_id == r1.id
          and r2.output_text == want
          and r2.usage.input_tokens == usage.prompt_tokens,
          f"{r2.output_text!r} vs {want!r}; {r2.usage.input_tokens} vs "
          f"{usage.prompt_tokens}")

    events, final, stext = streamed(client, model="base",
                                    input="And my name again?",
                                    previous_response_id=r2.id,
                                    temperature=0, max_output_tokens=12)
    last = events[-1].response if events else None
    got = client.responses.retrieve(last.id) if last else None
    check("store: a streamed response is stored too; retrieve gives its "
          "object",
          got is not None and got.id == last.id
          and got.output_text == stext and got.status == last.status
          and got.previous_response_id == r2.id
          and got.usage.output_tokens == last.usage.output_tokens,
          got)

    call = client.responses.create(model="base", input=ASK, tools=TOOLS,
                                   tool_choice="required", temperature=0)
    fc = call.output[-1]
    out = [{"type": "function_call_output", "call_id": fc.call_id,
            "output": "18 C, sunny"}]
    cont = client.responses.create(model="base", input=out, tools=TOOLS,
                                   previous_response_id=call.id,
                                   temperature=0, max_output_tokens=30)
    whole = client.responses.create(
        model="base", tools=TOOLS, temperature=0, max_output_tokens=30,
        input=[{"role": "user", "content": ASK},
               {"type": "function_call", "call_id": fc.call_id,
                "name": fc.name, "arguments": fc.arguments}] + out)
    check("store: a call's output sent on its response's id is the whole "
          "conversation sent at once",
          cont.output_text == whole.output_text
          and cont.usage.input_tokens == whole.usage.input_tokens,
          f"{cont.output_text!r} vs {whole.output_text!r}")

    items = list(client.responses.input_items.list(cont.id, order="asc"))
    paged = list(client.responses.input_items.list(cont.id, order="asc",
                                                   limit=1))
    newest = client.responses.input_items.list(cont.id)
    kinds = [(i.type, getattr(i, "role", None)) for i in items]
    check("input_items: the continued response's input, oldest first: the "
          "question, the call (its item's id), its output (not the answer); "
          "pages of 1 and newest first the same items",
          kinds == [("message", "user"), ("function_call", None),
                    ("function_call_output", None)]
          and items[0].content[0].text == ASK
          and items[1].call_id == fc.call_id and items[1].id == fc.id
          and items[1].arguments == fc.arguments
          and items[2].call_id == fc.call_id
          and items[2].output == "18 C, sunny"
          and [i.id for i in paged] == [i.id for i in items]
          and [i.id for i in newest.data] == [i.id for i in items][::-1]
          and not newest.has_more, (kinds, items))

    other = client.with_options(default_headers={"X-Tenant": "other"})
    try:
        other.responses.input_items.list(cont.id)
        check("input_items: another tenant's response is NotFoundError",
              False, "no exception")
    except openai.NotFoundError as e:
        check("input_items: another tenant's response is NotFoundError",
              e.status_code == 404, e.body)
    try:
        other.responses.retrieve(r1.id)
        check("store: another tenant finds none of it", False, "found")
    except openai.NotFoundError:
        check("store: another tenant finds none of it", True)

    client.responses.delete(r1.id)
    gone = []
    for f in (lambda: client.responses.retrieve(r1.id),
              lambda: client.responses.create(
                  model="base", input="Hi", previous_response_id=r1.id)):
        try:
            f()
        except openai.NotFoundError as e:
            gone.append(e.code if e.code else "not_found")
    check("store: deleted, it is neither retrieved nor continued",
          gone == ["not_found", "previous_response_not_found"], gone)

    r = client.responses.create(model="base", input="Hi", store=False,
                                max_output_tokens=4)
    try:
        client.responses.retrieve(r.id)
        check("store: store false keeps none", False, "found")
    except openai.NotFoundError:
        check("store: store false keeps none", r.store is False)


def conversations(client):
    """The Conversations API: a conversation made with items and metadata;
    responses created in it read its items first and add their input and
    answer (as the chat of all of it would answer); its items listed,
    paged, retrieved, added and deleted; its metadata updated; deleted,
    it is NotFoundError."""
    conv = client.conversations.create(
        items=[{"type": "message", "role": "user",
                "content": "My name is Ada."}],
        metadata={"app": "tests"})
    r1 = client.responses.create(model="base", conversation=conv.id,
                                 input="Say hi.", temperature=0,
                                 max_output_tokens=12)
    counted = client.responses.input_tokens.count(
        model="base", conversation={"id": conv.id}, input="What is my name?")
    r2 = client.responses.create(model="base", conversation={"id": conv.id},
                                 input="What is my name?", temperature=0,
                                 max_output_tokens=12)
    check("input_tokens.count: a response.input_tokens of the prompt the "
          "response made next has (its conversation's items counted)",
          counted.object == "response.input_tokens"
          and counted.input_tokens == r2.usage.input_tokens,
          f"{counted} vs {r2.usage.input_tokens}")
    want, usage, _ = chat_text(client, "base",
                               [{"role": "user", "content": "My name is Ada."},
                                {"role": "user", "content": "Say hi."},
                                {"role": "assistant",
                                 "content": r1.output_text},
                                {"role": "user",
                                 "content": "What is my name?"}], 12)
    items = list(client.conversations.items.list(conv.id, order="asc"))
    check("conversations: responses in one read its items first and add "
          "theirs, the chat's answer to all of it, under their items' ids",
          conv.id.startswith("conv_") and conv.metadata == {"app": "tests"}
          and [i.id for i in items][2::2] == [r1.output[0].id,
                                             r2.output[0].id]
          and r2.conversation is not None and r2.conversation.id == conv.id
          and r2.output_text == want
          and r2.usage.input_tokens == usage.prompt_tokens,
          f"{r2.output_text!r} vs {want!r}; {r2.usage.input_tokens} vs "
          f"{usage.prompt_tokens}")

    items = list(client.conversations.items.list(conv.id, order="asc"))
    paged = list(client.conversations.items.list(conv.id, order="asc",
                                                 limit=2))
    texts = [i.content[0].text for i in items]
    check("conversations: items.list gives the five, oldest first, in "
          "pages of 2 the same",
          texts == ["My name is Ada.", "Say hi.", r1.output_text,
                    "What is my name?", r2.output_text]
          and [i.role for i in items] == ["user", "user", "assistant",
                                          "user", "assistant"]
          and [i.id for i in paged] == [i.id for i in items], texts)

    added = client.conversations.items.create(
        conv.id, items=[{"type": "message", "role": "user",
                         "content": [{"type": "input_text",
                                      "text": "Remember: blue."}]}])
    one = client.conversations.items.retrieve(added.data[0].id,
                                              conversation_id=conv.id)
    client.conversations.items.delete(items[0].id, conversation_id=conv.id)
    after = [i.id for i in client.conversations.items.list(conv.id,
                                                           order="asc")]
    check("conversations: items.create answers with the new item, "
          "retrieve gives it, delete takes one away and leaves the "
          "others' ids",
          len(added.data) == 1 and one.id == added.data[0].id
          and one.content[0].text == "Remember: blue."
          and after == [i.id for i in items[1:]] + [one.id], after)

    upd = client.conversations.update(conv.id, metadata={"app": "v2"})
    got = client.conversations.retrieve(conv.id)
    check("conversations: update replaces the metadata, retrieve gives it",
          upd.metadata == {"app": "v2"} and got.metadata == {"app": "v2"}
          and got.created_at == conv.created_at, got)

    gone = client.conversations.delete(conv.id)
    try:
        client.conversations.retrieve(conv.id)
        check("conversations: deleted, it is NotFoundError", False, "found")
    except openai.NotFoundError as e:
        check("conversations: deleted, it is NotFoundError",
              gone.deleted and gone.id == conv.id and e.status_code == 404,
              e.body)


def background(client):
    """background=True: the client gets the response "queued" at once,
    retrieve() polls it to the foreground's answer; a background stream
    is picked up after an event; cancel() stops one being answered."""
    kw = dict(model="base", input="Say something.", temperature=0,
              max_output_tokens=16)
    fg = client.responses.create(**kw)
    r = client.responses.create(background=True, **kw)
    first = r.status
    for _ in range(600):
        if r.status not in ("queued", "in_progress"):
            break
        time.sleep(0.1)
        r = client.responses.retrieve(r.id)
    check("background: queued at once, retrieve() polls it to the "
          "foreground's answer",
          first == "queued" and r.background and r.status == fg.status
          and r.output_text == fg.output_text
          and r.usage.output_tokens == fg.usage.output_tokens,
          (first, r.status, r.output_text, fg.output_text))

    # a background stream whose client stops reading after event 10 is
    # picked up there: stream(response_id=, starting_after=) and
    # retrieve(stream=True, starting_after=) give the rest to the end
    events, rid = [], None
    with client.responses.stream(background=True, **kw) as stream:
        for ev in stream:
            events.append(ev)
            if ev.type == "response.created":
                rid = ev.response.id
            if ev.sequence_number == 10:
                break
    with client.responses.stream(response_id=rid, starting_after=10) as st:
        rest = list(st)
    text = "".join(e.delta for e in events + rest
                   if e.type == "response.output_text.delta")
    again = list(client.responses.retrieve(rid, stream=True,
                                           starting_after=12))
    check("background stream: stream(response_id=, starting_after=10) "
          "gives events 11 on, to the end; the text the foreground's",
          rest and rest[0].sequence_number == 11
          and rest[-1].type == "response." + fg.status
          and text == fg.output_text == rest[-1].response.output_text
          and again[0].sequence_number == 13
          and [e.sequence_number for e in again]
              == [e.sequence_number for e in rest[2:]],
          (rest[0].sequence_number if rest else None,
           rest[-1].type if rest else None, text, fg.output_text))

    long = client.responses.create(model="base", input="Count.",
                                   max_output_tokens=256, background=True,
                                   extra_body={"ignore_eos": True})
    c = client.responses.cancel(long.id)
    got = client.responses.retrieve(long.id)
    check("background: cancel() gives the object cancelled, and it stays so",
          c.status == "cancelled" and got.status == "cancelled",
          (c.status, got.status))


def errors(client):
    """What a stateless text server cannot do is a 400 naming it; an
    unknown model a 404."""
    for name, kw in (("tools", dict(tools=[{"type": "web_search"}])),
                     ("reasoning", dict(reasoning={"effort": "high"}))):
        try:
            client.responses.create(model="base", input="Hi", **kw)
            check(f"{name} raises BadRequestError naming it", False,
                  "no error")
        except openai.BadRequestError as e:
            check(f"{name} raises BadRequestError naming it",
                  e.status_code == 400 and e.param == name, e.body)
    try:
        client.responses.create(model="no-such-adapter", input="Hi")
        check("an unknown model raises NotFoundError", False, "no error")
    except openai.NotFoundError as e:
        check("an unknown model raises NotFoundError",
              e.code == "model_not_found", e.body)


def main():
    base_url, adapter = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base_url, api_key="unused",
                           max_retries=0, timeout=120)

    text(client, "base", "responses base")
    text(client, adapter, "responses tuned", max_tokens=12)
    cut(client)
    logprobs(client)
    schema(client)
    tools(client)
    stored(client)
    conversations(client)
    background(client)
    errors(client)


if __name__ == "__main__":
    run(main)
