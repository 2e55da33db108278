"""templates_client.py: chat templates and their tool formats, through
the official openai client and the token endpoints.

usage: templates_client.py SMOL_URL QWEN_URL TEMPLATES_DIR SMOL_GGUF
       [URL=TEMPLATE_FILE ...]

SMOL_URL is a server on SmolLM2 (its own template under /v1, Llama
3.1's under /l31/v1, 3.2's under /l32/v1), QWEN_URL one on a model with
Qwen2.5-7B-Instruct's template; TEMPLATES_DIR holds the models' own
Jinja templates (llama.cpp's models/templates, from the reference
sdist); SmolLM2's is read from SMOL_GGUF.

- The prompt the server builds (its /tokenize, read back by /detokenize)
  is the text tools/chat-reference renders with the model's template
  (beginning with the vocabulary's BOS where the template writes
  bos_token, as vLLM's prompt does, and only there):
  SmolLM2's (with the system message it writes when a chat has none);
  Meta's Llama 3.1 for a plain chat, one without a system message, one
  with tools, one with a call and its results sent back, one without
  the generation prompt, and 3.2's (today's date); Qwen2.5's with its
  default system message, tools (json.dumps as tojson writes them),
  calls and results.
- tool_choice naming a function, and "required" (one call: Llama 3.1's
  template has one a message), give a call whose arguments the
  function's parameters admit, the stream the same call.
- "auto": a model shown earlier calls in the format answers with one,
  held to the tools' schema from its first bytes, and parsed into
  tool_calls, streamed the same; asked what needs no tool it answers in
  text. SmolLM2 was not tuned on Llama 3.1's turns: shown the calls it
  begins its answer with a newline and then text or the call, so JSON's
  first token '{"' is nudged (logit_bias +5).
- Mistral's templates and Qwen3's (URL=TEMPLATE_FILE: a server on a
  model that carries that template): NeMo's, Small 3.2's (its default
  system message, today's date in it), Devstral's, Ministral 3's and
  Qwen3-0.6B's, with and without a system message and over several
  turns.
- A call and its result sent back are answered, the prompt counted as
  /tokenize counts it; two calls in one assistant message, and tools
  with no user message to put them in, are 400s.
"""

import json
import os
import struct
import subprocess
import sys

import openai

from client_checks import CLOCK, WEATHER, admits, check, run

def gguf_meta(path):
    """A GGUF file's metadata, key to value."""
    def value(f, t):
        if t == 8:
            n, = struct.unpack("<Q", f.read(8))
            return f.read(n).decode("utf-8")
        if t == 9:
            et, n = struct.unpack("<IQ", f.read(12))
            return [value(f, et) for _ in range(n)]
        fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i",
               6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}[t]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

    meta = {}
    with open(path, "rb") as f:
        magic, _, _, n_kv = struct.unpack("<4sIQQ", f.read(24))
        assert magic == b"GGUF"
        for _ in range(n_kv):
            n, = struct.unpack("<Q", f.read(8))
            key = f.read(n).decode("utf-8")
            t, = struct.unpack("<I", f.read(4))
            meta[key] = value(f, t)
    return meta


def gguf_chat_template(path):
    """tokenizer.chat_template from a GGUF file's metadata."""
    return gguf_meta(path).get("tokenizer.chat_template")


# The BOS text of the servers' vocabulary (SmolLM2's: every server here
# but Qwen2.5's, whose template writes none), which a prompt begins with
# where its template writes bos_token, as vLLM renders it; main sets it.
SERVER_BOS = ""


def reference(template, messages, tools=None, gen=True, bos=None,
              eos=None, kwargs=None):
    """tools/chat-reference's rendering of the chat with template (a
    file); bos and eos the model's where not Llama 3's; kwargs the
    template's other variables. The leading bos_token the reference
    leaves out is the servers' BOS where the template writes one."""
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    req = {"template": template, "messages": messages,
           "add_generation_prompt": gen}
    if kwargs is not None:
        req["kwargs"] = kwargs
    if bos is not None:
        req["bos_token"] = bos
        req["eos_token"] = eos
    if tools is not None:
        req["tools"] = tools
    with open(template, encoding="utf-8") as f:
        lead = SERVER_BOS if "bos_token" in f.read() else ""
    return lead + subprocess.run(
        [os.path.join(root, "tools", "chat-reference")],
        input=json.dumps(req), capture_output=True, text=True,
        check=True).stdout


def served(client, messages, tools=None, gen=True, kwargs=None):
    """The server's prompt for the chat, as its token ids read back."""
    body = {"messages": messages, "add_generation_prompt": gen}
    if kwargs is not None:
        body["chat_template_kwargs"] = kwargs
    if tools is not None:
        body["tools"] = tools
    ids = client.post("/tokenize", cast_to=object, body=body)["tokens"]
    return client.post("/detokenize", cast_to=object,
                       body={"tokens": ids})["prompt"], len(ids)


def call_turns(city, result):
    """A question, the model's call in Llama 3.1's format, its result and
    the answer."""
    return [{"role": "user", "content": f"What is the weather in {city}?"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "call_" + city, "type": "function",
                             "function": {"name": "get_weather",
                                          "arguments": json.dumps(
                                              {"city": city})}}]},
            {"role": "tool", "tool_call_id": "call_" + city,
             "content": result},
            {"role": "assistant", "content": f"It is {result} in {city}."}]


def streamed_calls(client, kw):
    """A stream's calls by index ([id, name, arguments]) and finish."""
    got, finish = {}, []
    for chunk in client.chat.completions.create(stream=True, **kw):
        if not chunk.choices:
            continue
        d = chunk.choices[0].delta
        for tc in d.tool_calls or []:
            g = got.setdefault(tc.index, ["", "", ""])
            g[0] += tc.id or ""
            g[1] += (tc.function and tc.function.name) or ""
            g[2] += (tc.function and tc.function.arguments) or ""
        if chunk.choices[0].finish_reason:
            finish.append(chunk.choices[0].finish_reason)
    return got, finish


def renders_own(client, smol, qwen, tdir, smol_gguf):
    """SmolLM2's own template, and Qwen2.5's."""
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                        f"smollm2-{os.getpid()}.jinja")
    with open(path, "w", encoding="utf-8") as f:
        f.write(gguf_chat_template(smol_gguf))
    system = {"role": "system", "content": "You are terse."}
    ask = {"role": "user", "content": "What is 2+2?"}
    for what, msgs, gen in (("without a system message", [ask], True),
                            ("with one", [system, ask], True),
                            ("without the generation prompt", [ask], False)):
        want = reference(path, msgs, None, gen)
        got, _ = served(smol, msgs, None, gen)
        check(f"smollm2 {what}: the server's prompt is its template's text",
              got == want, json.dumps([got, want])[-300:])
    os.unlink(path)

    tq = os.path.join(tdir, "Qwen-Qwen2.5-7B-Instruct.jinja")
    calls = call_turns("Paris", "sunny \"and\" 20\u00b0C") + [
        {"role": "user", "content": "And the time in Tokyo and Rome?"},
        {"role": "assistant", "content": "Let me see.", "tool_calls": [
            {"id": "c2", "type": "function", "function": {
                "name": "get_time",
                "arguments": "{\"timezone\":\"Asia/Tokyo\","
                             "\"n\":[1,2.5,true,null]}"}},
            {"id": "c3", "type": "function", "function": {
                "name": "get_time", "arguments": {"timezone": "Rome"}}}]},
        {"role": "tool", "tool_call_id": "c2", "content": "noon"},
        {"role": "tool", "tool_call_id": "c3", "content": "five"}]
    for what, msgs, tools in (
            ("without a system message", [ask], None),
            ("tools", [ask], [WEATHER, CLOCK]),
            ("tools and a system message", [system, ask], [CLOCK]),
            ("calls and their results sent back", calls, [WEATHER, CLOCK])):
        want = reference(tq, msgs, tools)
        got, _ = served(qwen, msgs, tools)
        check(f"qwen2.5 {what}: the server's prompt is the template's text",
              got == want, json.dumps([got, want])[-300:])


def renders(client31, client32, tdir):
    t31 = os.path.join(tdir, "meta-llama-Llama-3.1-8B-Instruct.jinja")
    t32 = os.path.join(tdir, "meta-llama-Llama-3.2-3B-Instruct.jinja")
    system = {"role": "system", "content": "  You are terse. "}
    cases = [
        ("a plain chat", [system,
                          {"role": "user", "content": "Hi!"},
                          {"role": "assistant", "content": "Hello."},
                          {"role": "user", "content": "What is 2+2?"}],
         None, True),
        ("no system message", [{"role": "user", "content": " Hi! "}],
         None, True),
        ("tools", [system, {"role": "user", "content": "Weather in Rome?"}],
         [WEATHER, CLOCK], True),
        ("a call and its results sent back",
         call_turns("Paris", "sunny \"and\" 20\u00b0C\n")
         + [{"role": "user", "content": "And the time in Tokyo?"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c2", "type": "function", "function": {
                 "name": "get_time",
                 "arguments": "{\"timezone\": \"Asia/Tokyo\", "
                              "\"n\": [1, 2.5, true, null]}"}}]},
            {"role": "tool", "tool_call_id": "c2", "content": "noon"}],
         [WEATHER, CLOCK], True),
        ("without the generation prompt",
         [system, {"role": "user", "content": "Hi!"}], [CLOCK], False),
    ]
    for what, msgs, tools, gen in cases:
        want = reference(t31, msgs, tools, gen)
        got, _ = served(client31, msgs, tools, gen)
        check(f"llama3.1 {what}: the server's prompt is Meta's template's "
              "text", got == want, json.dumps([got, want])[-300:])
    msgs = [{"role": "user", "content": "Hi!"}]
    want = reference(t32, msgs, [CLOCK])
    got, _ = served(client32, msgs, [CLOCK])
    check("llama3.2 tools: the server's prompt is Meta's template's text, "
          "today's date", got == want, json.dumps([got, want])[-300:])


def calls(client):
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    kw = dict(model="base", messages=ask, max_tokens=64, temperature=0,
              tools=[WEATHER, CLOCK],
              tool_choice={"type": "function",
                           "function": {"name": "get_time"}})
    c = client.chat.completions.create(**kw).choices[0]
    got = c.message.tool_calls or []
    check("named: one call of that function, its arguments admitted, "
          "content null, finish stop",
          len(got) == 1 and got[0].function.name == "get_time"
          and admits("get_time", got[0].function.arguments)
          and c.message.content is None and c.finish_reason == "stop",
          c.message)
    s, finish = streamed_calls(client, kw)
    check("named stream: the same call under index 0",
          list(s) == [0] and s[0][1:] == ["get_time",
                                          got[0].function.arguments]
          and s[0][0].startswith("call_") and finish == ["stop"],
          (s, finish))

    ask = [{"role": "user",
            "content": "What is the weather in Paris and the time in Rome?"}]
    kw = dict(model="base", messages=ask, max_tokens=64, temperature=0,
              tools=[WEATHER, CLOCK], tool_choice="required")
    c = client.chat.completions.create(**kw).choices[0]
    got = c.message.tool_calls or []
    check("required: one call (one a message in Llama 3.1's format), "
          "admitted, finish tool_calls",
          len(got) == 1 and admits(got[0].function.name,
                                   got[0].function.arguments)
          and c.finish_reason == "tool_calls", c.message)
    s, finish = streamed_calls(client, kw)
    check("required stream: the same call",
          got and list(s) == [0]
          and s[0][1:] == [got[0].function.name, got[0].function.arguments]
          and finish == ["tool_calls"], (s, finish))


def auto(client):
    shots = call_turns("Paris", "sunny") + call_turns("London", "rainy")
    brace = client.post("/tokenize", cast_to=object,
                        body={"prompt": "{\""})["tokens"]
    kw = dict(model="base", max_tokens=64, temperature=0,
              tools=[WEATHER, CLOCK], logit_bias={str(brace[0]): 5},
              messages=shots + [{"role": "user",
                                 "content": "What is the weather in Rome?"}])
    c = client.chat.completions.create(**kw).choices[0]
    got = c.message.tool_calls or []
    check("auto, shown calls in its format: the answer a call, admitted, "
          "content null, finish tool_calls",
          len(got) == 1 and got[0].function.name == "get_weather"
          and admits("get_weather", got[0].function.arguments)
          and c.message.content is None
          and c.finish_reason == "tool_calls", c.message)
    s, finish = streamed_calls(client, kw)
    check("auto stream: the same call under index 0",
          got and list(s) == [0]
          and s[0][1:] == ["get_weather", got[0].function.arguments]
          and finish == ["tool_calls"], (s, finish))

    kw = dict(model="base", max_tokens=32, temperature=0,
              tools=[WEATHER, CLOCK],
              messages=[{"role": "user",
                         "content": "Write a haiku about the sea."}])
    c = client.chat.completions.create(**kw).choices[0]
    parts = [ch.choices[0].delta.content or ""
             for ch in client.chat.completions.create(stream=True, **kw)
             if ch.choices]
    check("auto, nothing to call: text, the stream the same",
          c.message.tool_calls is None and (c.message.content or "") != ""
          and "".join(parts) == c.message.content, c.message)


def auto_mistral(client, fmt):
    """SmolLM2 told of the tools in Mistral's format (fmt: "list", NeMo's
    template; "named", Small 3.2's) and shown two calls in it: the
    answer a call, read back from after [TOOL_CALLS]. Mistral's "</s>"
    (their end of text; here plain text) is a stop string."""
    shots = []
    for i, (city, result) in enumerate((("Paris", "sunny"),
                                        ("London", "rainy"))):
        t = mistral_calls([f"call_w{i}234567x", f"call_t{i}654321y"])
        t[0]["content"] = f"What is the weather in {city}?"
        t[1]["tool_calls"] = t[1]["tool_calls"][:1]
        t[1]["tool_calls"][0]["function"]["arguments"] = json.dumps(
            {"city": city})
        t[4]["content"] = f"It is {result} in {city}."
        shots += [t[0], t[1], dict(t[2], content=result), t[4]]
    # the mark's first token favoured, and in the list's case the one
    # that tells it from [TOOL_RESULTS]: in SmolLM2's vocabulary the mark
    # is plain text of several tokens, where Mistral's models have one
    mark = client.post("/tokenize", cast_to=object,
                       body={"prompt": "[TOOL_CALLS]",
                             "add_special_tokens": False})["tokens"]
    bias = {str(mark[0]): 5, str(mark[4]): 2}
    if fmt == "named":
        # and the end of its turn after the call ("</s>", plain text)
        end = client.post("/tokenize", cast_to=object,
                          body={"prompt": "</s>",
                                "add_special_tokens": False})["tokens"]
        bias[str(end[0])] = 4
    kw = dict(model="base", max_tokens=64, temperature=0,
              tools=[WEATHER, CLOCK], stop=["</s>"], logit_bias=bias,
              messages=shots + [{"role": "user",
                                 "content": "What is the weather in Rome?"}])
    c = client.chat.completions.create(**kw).choices[0]
    got = c.message.tool_calls or []
    check(f"mistral {fmt} auto, shown calls in its format: the answer "
          "calls, the first get_weather, each admitted, content null, "
          "finish tool_calls",
          got and got[0].function.name == "get_weather"
          and all(admits(g.function.name, g.function.arguments)
                  for g in got)
          and c.message.content is None
          and c.finish_reason == "tool_calls", c.message)
    s, finish = streamed_calls(client, kw)
    check(f"mistral {fmt} auto stream: the same calls",
          got and list(s) == list(range(len(got)))
          and all(s[k][1:] == [g.function.name, g.function.arguments]
                  for k, g in enumerate(got))
          and finish == ["tool_calls"], (s, finish))


def conversation(client):
    msgs = call_turns("Paris", "sunny")[:3]
    r = client.chat.completions.create(model="base", messages=msgs,
                                       max_tokens=24, temperature=0,
                                       tools=[WEATHER, CLOCK])
    c = r.choices[0]
    _, n = served(client, msgs, [WEATHER, CLOCK])
    check("a call and its result sent back: answered, the prompt the "
          "tokens /tokenize counts",
          r.usage.prompt_tokens == n and c.finish_reason in ("stop",
                                                             "length"),
          (r.usage, n, c.message))

    two = [{"role": "user", "content": "Weather and time?"},
           {"role": "assistant", "content": None, "tool_calls": [
               {"id": "a", "type": "function", "function": {
                   "name": "get_weather", "arguments": "{\"city\": \"X\"}"}},
               {"id": "b", "type": "function", "function": {
                   "name": "get_time", "arguments": "{\"timezone\": \"Y\"}"}}
           ]}]
    try:
        client.chat.completions.create(model="base", messages=two,
                                       max_tokens=8, tools=[WEATHER, CLOCK])
        check("two calls in one message raise BadRequestError", False)
    except openai.BadRequestError as e:
        check("two calls in one message raise BadRequestError",
              "one a message" in str(e), e)

    try:
        client.chat.completions.create(
            model="base", max_tokens=8, tools=[CLOCK],
            messages=[{"role": "system", "content": "Be brief."}])
        check("tools with no user message raise BadRequestError", False)
    except openai.BadRequestError as e:
        check("tools with no user message raise BadRequestError",
              "first user message" in str(e), e)


def renders_carried(pairs, tdir):
    """Mistral's templates and Qwen3's, each on a server whose model
    carries it (pairs of URL and the template's file name): a chat
    without a system message (the template's default, where it has one:
    today's date in Mistral Small 3.2's), one with, and several turns
    (Mistral's bos and eos; Qwen3's plain chats use neither)."""
    system = {"role": "system", "content": "You are terse."}
    turns = [system, {"role": "user", "content": "Hi!"},
             {"role": "assistant", "content": " Hello. "},
             {"role": "user", "content": "What is 2+2?"}]
    ask = {"role": "user", "content": "What is 2+2?"}
    for url, name in pairs:
        c = openai.OpenAI(base_url=url + "/v1", api_key="unused")
        path = os.path.join(tdir, name)
        for what, msgs in (("without a system message", [ask]),
                           ("with one", [system, ask]),
                           ("several turns", turns)):
            want = reference(path, msgs, bos="<s>", eos="</s>")
            got, _ = served(c, msgs)
            check(f"{name} {what}: the server's prompt is the template's "
                  "text", got == want, json.dumps([got, want])[-300:])
        if name.startswith("deepseek-ai"):
            msgs = [system, turns[1],
                    {"role": "assistant",
                     "content": "<think>\nx</think> a <think>y</think>Hello."},
                    ask]
            want = reference(path, msgs, bos="<s>", eos="</s>")
            got, _ = served(c, msgs)
            check(f"{name} earlier reasoning dropped: the server's prompt "
                  "is the template's text",
                  got == want and "Hello." in got and "<think>y" not in got,
                  json.dumps([got, want])[-300:])
        elif not name.startswith("Qwen-Qwen3"):
            renders_mistral_tools(c, path, name, system)
        if name.startswith("Qwen-Qwen3"):
            kw = {"enable_thinking": False}
            want = reference(path, [system, ask], kwargs=kw)
            got, _ = served(c, [system, ask], kwargs=kw)
            check(f"{name} enable_thinking false: the server's prompt is "
                  "the template's text", got == want and "<think>" in got,
                  json.dumps([got, want])[-300:])
            # Hermes' tags, as Qwen3's template writes them too (a
            # call's content "": the template cannot read a null one)
            calls = call_turns("Paris", "sunny") + [ask]
            calls[1]["content"] = ""
            for what, msgs in (("tools", [system, ask]),
                               ("calls and their results sent back",
                                calls)):
                want = reference(path, msgs, [WEATHER, CLOCK])
                got, _ = served(c, msgs, [WEATHER, CLOCK])
                check(f"{name} {what}: the server's prompt is the "
                      "template's text", got == want,
                      json.dumps([got, want])[-300:])
            renders_qwen3_think(c, path, name, system, ask)


def renders_qwen3_think(c, path, name, system, ask):
    """Qwen3's think blocks in earlier turns: dropped up to the last user
    query, written back past it (a tool loop's) and in a last message;
    reasoning_content read in place of a block."""
    loop = call_turns("Paris", "sunny")[:3]
    loop[1]["content"] = "<think>\nI should look.\n</think>\n\n"
    field = call_turns("Rome", "rainy")[:3]
    field[1]["content"] = ""
    field[1]["reasoning_content"] = "Rome, then."
    for what, msgs, gen, kept in (
            ("earlier reasoning dropped",
             [system, ask, {"role": "assistant", "content":
                            "<think>\nx</think> a <think>y</think>\n\n4."},
              ask], True, None),
            ("a tool loop's reasoning kept", [system] + loop, True,
             "I should look."),
            ("reasoning_content kept", [system] + field, True,
             "Rome, then."),
            ("the last message's empty block",
             [system, ask, {"role": "assistant", "content": "4."}], False,
             "<think>\n\n</think>\n\n4.")):
        want = reference(path, msgs, [WEATHER, CLOCK], gen=gen)
        got, _ = served(c, msgs, [WEATHER, CLOCK], gen=gen)
        check(f"{name} {what}: the server's prompt is the template's text",
              got == want and ("<think>y" not in got if kept is None
                               else kept in got),
              json.dumps([got, want])[-300:])


def mistral_calls(ids):
    """A question, two calls in one message (ids: their two ids), their
    results and the answer, then a question; the calls' content "" (some
    of Mistral's templates cannot read a null one)."""
    return [{"role": "user", "content": "Weather in Paris, and the time?"},
            {"role": "assistant", "content": "",
             "tool_calls": [
                 {"id": ids[0], "type": "function",
                  "function": {"name": "get_weather",
                               "arguments": json.dumps({"city": "Paris"})}},
                 {"id": ids[1], "type": "function",
                  "function": {"name": "get_time", "arguments": json.dumps(
                      {"timezone": "Europe/Paris"})}}]},
            {"role": "tool", "tool_call_id": ids[0], "content": "sunny"},
            {"role": "tool", "tool_call_id": ids[1], "content": "\"noon\""},
            {"role": "assistant", "content": "Sunny, at noon."},
            {"role": "user", "content": "And in Rome?"}]


def renders_mistral_tools(c, path, name, system):
    """Mistral's tool formats on a template's server: the tools where
    the template puts them, two calls with their ids, their results, and
    a chat that ends with the results (the system text of NeMo's then
    dropped, as its template does). The server takes OpenAI's long ids,
    of which the template reads the last 9 characters (the reference is
    given those)."""
    long_ids, ids = ["call_w1234567x", "call_t7654321y"], ["w1234567x",
                                                         "t7654321y"]
    for what, sent, want_msgs in (
            ("tools", [system, {"role": "user", "content": "Hi!"}],
             [system, {"role": "user", "content": "Hi!"}]),
            ("calls and their results sent back",
             mistral_calls(long_ids), mistral_calls(ids)),
            ("the chat ending with the results",
             [system] + mistral_calls(long_ids)[:4],
             [system] + mistral_calls(ids)[:4])):
        want = reference(path, want_msgs, [WEATHER, CLOCK], bos="<s>",
                         eos="</s>")
        got, _ = served(c, sent, [WEATHER, CLOCK])
        check(f"{name} {what}: the server's prompt is the template's text",
              got == want and "[AVAILABLE_TOOLS]" in got,
              json.dumps([got, want])[-400:])
    # where the template writes ids, one too short is a 400; where it
    # writes none, any id does
    with open(path, encoding="utf-8") as f:
        writes_ids = "|length != 9" in f.read()
    short = mistral_calls(["call_1", "call_2"])
    try:
        got, _ = served(c, short, [WEATHER, CLOCK])
        want = reference(path, short, [WEATHER, CLOCK], bos="<s>",
                         eos="</s>")
        check(f"{name}: call ids under 9 characters: "
              + ("a 400" if writes_ids else "the template's text"),
              not writes_ids and got == want, json.dumps([got, want])[-300:])
    except openai.BadRequestError as e:
        check(f"{name}: call ids under 9 characters: "
              + ("a 400" if writes_ids else "the template's text"),
              writes_ids and "at least 9 characters" in str(e), str(e))


def main():
    global SERVER_BOS
    smol_url, qwen_url, tdir, smol_gguf = sys.argv[1:5]
    meta = gguf_meta(smol_gguf)
    SERVER_BOS = meta["tokenizer.ggml.tokens"][
        meta["tokenizer.ggml.bos_token_id"]]
    carried = [a.split("=", 1) for a in sys.argv[5:]]

    def client(url):
        return openai.OpenAI(base_url=url, api_key="unused")

    renders_carried(carried, tdir)

    client31 = client(smol_url + "/l31/v1")
    renders_own(client31, client(smol_url + "/v1"),
                client(qwen_url + "/v1"), tdir, smol_gguf)
    renders(client31, client(smol_url + "/l32/v1"), tdir)
    calls(client31)
    auto(client31)
    auto_mistral(client(smol_url + "/mn/v1"), "list")
    auto_mistral(client(smol_url + "/m7/v1"), "named")
    conversation(client31)


if __name__ == "__main__":
    run(main)
