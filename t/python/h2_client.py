"""h2_client.py: the API over HTTP/2, frame by frame, with the `h2`
protocol library on a plain socket (cleartext, prior knowledge: what a
TLS-terminating proxy or gRPC-style client speaks to nginx).

usage: h2_client.py H2_PORT HTTP1_PORT ADAPTER

nginx listens on H2_PORT with `http2` and on HTTP1_PORT without. Each
answer over HTTP/2 is checked against the same request made over
HTTP/1.1 (greedy, so the same text): a chat answer whole and streamed
as SSE; six streams at once on one connection, their DATA frames
interleaved, each its own answer; a stream the client resets mid-answer
(RST_STREAM), which must free the engine's slot and stop its tokens,
and the connection then serving the next stream; a body spread over
many DATA frames and flow-control windows; a background response,
answered "queued" while the engine goes on, and a background stream
reset mid-way and picked up again on the same connection; a reader that
grants no window, whose answer waits while other clients are served and
then comes whole, and one that never grants it, ended by send_timeout;
and the errors (413, 400) in OpenAI's shape. As in
openai_client.py each check is recorded, never asserted: one JSON line
{"checks": [[name, ok, detail], ...]} is printed, exit 0 when all
passed.
"""

import json
import random
import socket
import sys
import time
import urllib.request

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings

from client_checks import check, run


class Conn:
    """One HTTP/2 connection: streams opened with request(), frames read
    by pump() into each stream's record (status, headers, body bytes,
    ended, reset code) and into the order DATA frames came in."""

    def __init__(self, port, window=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True))
        self.h2.initiate_connection()
        if window is not None:
            self.h2.update_settings(
                {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.streams, self.order, self.pending = {}, [], {}
        self.ends = []      # streams in the order they ended
        self.hold = set()   # streams whose DATA is not acknowledged
        self.flush()

    def flush(self):
        out = self.h2.data_to_send()
        if out:
            self.sock.sendall(out)

    def request(self, path, body, method="POST"):
        sid = self.h2.get_next_available_stream_id()
        headers = [(":method", method), (":path", path),
                   (":scheme", "http"), (":authority", "127.0.0.1")]
        if body is not None:
            headers += [("content-type", "application/json"),
                        ("content-length", str(len(body)))]
        self.h2.send_headers(sid, headers, end_stream=body is None)
        self.streams[sid] = {"status": None, "headers": {}, "body": b"",
                             "ended": False, "reset": None, "frames": 0}
        if body is not None:
            self.pending[sid] = body
        self.send_pending()
        return sid

    def send_pending(self):
        """Sends what the peer's windows allow of the bodies not yet
        sent; the rest waits for a WINDOW_UPDATE."""
        for sid, body in list(self.pending.items()):
            if self.streams[sid]["ended"] or self.streams[sid]["reset"]:
                del self.pending[sid]
                continue
            while body:
                n = min(self.h2.local_flow_control_window(sid),
                        self.h2.max_outbound_frame_size, len(body))
                if n <= 0:
                    break
                self.h2.send_data(sid, body[:n], end_stream=n == len(body))
                body = body[n:]
            if body:
                self.pending[sid] = body
            else:
                del self.pending[sid]
        self.flush()

    def reset(self, sid):
        self.h2.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        self.pending.pop(sid, None)
        self.streams[sid]["reset"] = "sent"
        self.flush()

    def grant(self, sid, n):
        self.hold.discard(sid)
        self.h2.increment_flow_control_window(n, stream_id=sid)
        self.h2.increment_flow_control_window(n)
        self.flush()

    def pump(self, until, timeout=60):
        """Reads frames until until() is true; False on a timeout."""
        end = time.time() + timeout
        while not until():
            left = end - time.time()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                return False
            if not data:
                return until()
            for ev in self.h2.receive_data(data):
                self.event(ev)
            self.send_pending()
        return True

    def event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived) and st:
            st["headers"] = {k.decode(): v.decode() for k, v in ev.headers}
            st["status"] = int(st["headers"][":status"])
        elif isinstance(ev, h2.events.DataReceived) and st:
            st["body"] += ev.data
            st["frames"] += 1
            self.order.append(ev.stream_id)
            if ev.stream_id not in self.hold:
                self.h2.acknowledge_received_data(ev.flow_controlled_length,
                                                  ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded) and st:
            st["ended"] = True
            self.ends.append(ev.stream_id)
        elif isinstance(ev, h2.events.StreamReset) and st:
            st["reset"] = st["reset"] or ev.error_code

    def done(self, *sids):
        return lambda: all(self.streams[s]["ended"] or self.streams[s]["reset"]
                           for s in sids)

    def close(self):
        self.h2.close_connection()
        self.flush()
        self.sock.close()


def sse_text(body):
    """The deltas' text of an SSE body, and whether it ended in [DONE]
    after a finish_reason."""
    text, finish, events = "", None, []
    for block in body.decode().split("\n\n"):
        if not block.startswith("data: "):
            continue
        data = block[6:]
        events.append(data)
        if data == "[DONE]":
            continue
        ch = json.loads(data)["choices"]
        for c in ch:
            text += (c.get("delta") or {}).get("content") or c.get("text") or ""
            finish = c.get("finish_reason") or finish
    return text, finish, bool(events) and events[-1] == "[DONE]"


def sse_events(body):
    """The whole named events' data (JSON) of an SSE body, in order (an
    unended last one left out)."""
    blocks = body.decode(errors="replace").split("\n\n")[:-1]
    return [json.loads(line[6:]) for b in blocks for line in b.split("\n")
            if line.startswith("data: ")]


def http1(port, path, req):
    """The same request over HTTP/1.1: (status, JSON)."""
    r = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                               data=json.dumps(req).encode(),
                               headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status",
                                timeout=10) as resp:
        return json.load(resp)


def active_connections(port):
    """nginx's open client connections (stub_status at /connections),
    the one asking among them."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/connections",
                                timeout=10) as resp:
        return int(resp.read().split()[2])


def status_until(port, cond, seconds):
    """Whether the status comes to satisfy cond within seconds."""
    end = time.time() + seconds
    while time.time() < end:
        if cond(status(port)):
            return True
        time.sleep(0.1)
    return False


def chat(model, prompt, max_tokens, **kw):
    return dict(model=model, max_tokens=max_tokens, temperature=0,
                messages=[{"role": "user", "content": prompt}], **kw)


def answer(j):
    c = j["choices"][0]
    return c["message"]["content"] if "message" in c else c["text"]


def main():
    h2port, port, adapter = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    path = "/v1/chat/completions"

    # one answer whole and streamed
    req = chat("base", "What is the capital of France?", 24)
    _, ref = http1(port, path, req)
    c = Conn(h2port)
    a = c.request(path, json.dumps(req).encode())
    b = c.request(path, json.dumps(dict(req, stream=True)).encode())
    c.pump(c.done(a, b))
    sa, sb = c.streams[a], c.streams[b]
    got = json.loads(sa["body"]) if sa["status"] == 200 else {}
    check("h2 chat: 200, application/json, the HTTP/1.1 answer and token "
          "counts",
          sa["status"] == 200 and sa["ended"]
          and sa["headers"].get("content-type", "").startswith(
              "application/json")
          and got and answer(got) == answer(ref)
          and all(got["usage"][k] == ref["usage"][k]
                  for k in ("prompt_tokens", "completion_tokens")),
          (sa["status"], got, ref))
    text, finish, done = sse_text(sb["body"])
    check("h2 stream: text/event-stream, the deltas the HTTP/1.1 answer, "
          "its finish_reason, [DONE] last",
          sb["status"] == 200 and sb["ended"]
          and sb["headers"].get("content-type", "").startswith(
              "text/event-stream")
          and text == answer(ref)
          and finish == ref["choices"][0]["finish_reason"] and done,
          (sb["status"], text, answer(ref), finish, done))

    # six streams at once on one connection
    reqs = [(path, chat(m, p, 32))
            for m in ("base", adapter)
            for p in ("Name three colours.", "Count to five.")] + [
        ("/v1/completions", dict(model=m, prompt="Once upon a time",
                                 max_tokens=32, temperature=0))
        for m in ("base", adapter)]
    want = [answer(http1(port, p, r)[1]) for p, r in reqs]
    sids = [c.request(p, json.dumps(dict(r, stream=True)).encode())
            for p, r in reqs]
    c.pump(c.done(*sids))
    texts = [sse_text(c.streams[s]["body"])[0] for s in sids]
    first = {s: c.order.index(s) for s in sids if s in c.order}
    last = {s: len(c.order) - 1 - c.order[::-1].index(s)
            for s in sids if s in c.order}
    overlap = any(first[x] < last[y] and first[y] < last[x]
                  for x in first for y in first if x != y)
    check("h2 multiplexed: six streams at once on one connection (chat and "
          "completions, base and adapter), each its own answer",
          texts == want and all(c.streams[s]["ended"] for s in sids),
          (texts, want))
    check("h2 multiplexed: the streams' DATA frames interleave (answered "
          "together, not one after another)", overlap,
          [c.order[i] for i in range(min(len(c.order), 40))])

    # a stream reset mid-answer frees its slot; the connection goes on
    before = status(port)["tokens"]["completion"]
    long = chat("base", "Write a long story about a lighthouse.", 900,
                stream=True, ignore_eos=True)
    s = c.request(path, json.dumps(long).encode())
    c.pump(lambda: c.streams[s]["body"].count(b"data: ") >= 5)
    c.reset(s)
    freed = status_until(port, lambda st: st["slots"]["used"] == 0
                         and st["requests"]["running"] == 0, 5)
    spent = status(port)["tokens"]["completion"] - before
    time.sleep(1.0)
    later = status(port)["tokens"]["completion"] - before
    check("h2 reset: RST_STREAM mid-answer frees the engine's slot, its "
          "tokens stop well short of max_tokens",
          freed and spent == later and spent < 500, (freed, spent, later))
    n = c.request(path, json.dumps(req).encode())
    c.pump(c.done(n))
    check("h2 reset: the same connection then serves another stream",
          c.streams[n]["status"] == 200
          and answer(json.loads(c.streams[n]["body"])) == answer(ref),
          c.streams[n])

    # background: the "queued" object ends its stream while the answer
    # goes on; the same connection then polls it to its end
    bg = dict(model="base", input="Write a long story.", temperature=0,
              max_output_tokens=200, ignore_eos=True, background=True)
    q = c.request("/v1/responses", json.dumps(bg).encode())
    c.pump(c.done(q))
    sq = c.streams[q]
    obj = json.loads(sq["body"]) if sq["status"] == 200 else {}
    going = status(port)["slots"]["used"]
    last = obj
    for _ in range(300):
        if last.get("status") not in ("queued", "in_progress"):
            break
        time.sleep(0.1)
        g = c.request("/v1/responses/" + obj.get("id", ""), None, "GET")
        c.pump(c.done(g))
        last = json.loads(c.streams[g]["body"] or b"{}")
    check("h2 background: the queued object ends its stream while the "
          "answer goes on, and the same connection polls it to its end",
          sq["ended"] and obj.get("status") == "queued" and going >= 1
          and last.get("status") == "incomplete"
          and last.get("usage", {}).get("output_tokens") == 200,
          (sq["status"], obj.get("status"), going, last.get("status")))

    # a background stream reset after 8 events goes on; the same
    # connection picks it up after the last event it had and follows it
    # to its end, while another reader of it is reset mid-way
    s1 = c.request("/v1/responses",
                   json.dumps(dict(bg, stream=True)).encode())
    c.pump(lambda: c.streams[s1]["body"].count(b"\n\n") >= 8)
    c.reset(s1)
    got = sse_events(c.streams[s1]["body"])
    rid = got[0]["response"]["id"] if got else ""
    k = got[-1]["sequence_number"] if got else -1
    r2 = c.request(f"/v1/responses/{rid}?stream=true&starting_after={k}",
                   None, "GET")
    r3 = c.request(f"/v1/responses/{rid}?stream=true", None, "GET")
    c.pump(lambda: c.streams[r3]["body"].count(b"\n\n") >= 3)
    c.reset(r3)
    c.pump(c.done(r2))
    rest = sse_events(c.streams[r2]["body"])
    last = rest[-1] if rest else {}
    text = "".join(e.get("delta", "") for e in got + rest
                   if e["type"] == "response.output_text.delta")
    whole = "".join(p.get("text", "")
                    for o in last.get("response", {}).get("output", [])
                    for p in o.get("content", []))
    check("h2 background stream: reset after 8 events, the same connection "
          "picks it up after the last it had (another reader reset "
          "mid-way) and follows it to its end",
          c.streams[r2]["ended"] and rest
          and [e["sequence_number"] for e in rest]
              == list(range(k + 1, k + 1 + len(rest)))
          and last["type"] == "response.incomplete" and text == whole
          and last["response"]["usage"]["output_tokens"] == 200,
          (k, len(rest), last.get("type"), text[:60], whole[:60]))

    # a body over many frames and windows: 512 KB of blanks in the JSON
    pad = json.dumps(req)[:-1] + " " * (512 * 1024) + "}"
    p = c.request(path, pad.encode())
    c.pump(c.done(p))
    sp = c.streams[p]
    check("h2 body: 512 KB over many DATA frames and windows read whole, "
          "the small body's answer",
          sp["status"] == 200
          and answer(json.loads(sp["body"])) == answer(ref), sp["status"])

    # the errors, in OpenAI's shape
    e = c.request(path, b'{"model": "base", "messages": [')
    big = c.request(path, b'{"pad": "' + b"x" * (2 << 20) + b'"}')
    c.pump(c.done(e, big))
    se, sbig = c.streams[e], c.streams[big]
    err = json.loads(se["body"] or b"{}").get("error", {})
    check("h2 malformed JSON: 400, OpenAI's error object",
          se["status"] == 400 and err.get("code") == "invalid_json"
          and err.get("type") == "invalid_request_error", se)
    err = json.loads(sbig["body"] or b"{}").get("error", {})
    check("h2 body over client_max_body_size: 413, OpenAI's error object",
          sbig["status"] == 413 and err.get("code") == "request_too_large",
          (sbig["status"], sbig["body"][:200]))

    # one word of 900 KB as a prompt: its byte-pair merges (most of a
    # second) go to the thread pool, so a stream opened after it on the
    # same connection (the model list, the worker's own answer) is
    # answered first, then the word's 413
    rng = random.Random(3)
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                   for _ in range(900 * 1024))
    w = c.request("/v1/completions", json.dumps(
        {"model": "base", "prompt": word, "max_tokens": 1}).encode())
    c.pump(lambda: w not in c.pending)
    time.sleep(0.1)
    q = c.request("/v1/models", None, method="GET")
    c.pump(c.done(w, q))
    sw, sq = c.streams[w], c.streams[q]
    check("h2 long word: a stream opened after it is answered first (the "
          "worker not held by its merges), then the word's 413",
          sq["status"] == 200 and sw["status"] == 413
          and json.loads(sq["body"])["object"] == "list"
          and q in c.ends and w in c.ends
          and c.ends.index(q) < c.ends.index(w),
          (sq["status"], sw["status"], w, q, c.ends[-4:]))
    c.close()

    # a reader that grants no window: the engine runs the request to its
    # end all the same (its tokens wait in the slot, then, once it is
    # finished, in the worker: its KV pages and its slot back), other
    # clients are served, and the answer comes whole once granted
    slow = Conn(h2port, window=0)
    sreq = chat(adapter, "Name three colours.", 32, stream=True)
    s = slow.request(path, json.dumps(sreq).encode())
    slow.hold.add(s)
    slow.pump(lambda: slow.streams[s]["status"] is not None, timeout=30)
    t0 = time.time()
    _, other = http1(port, path, req)
    waited = time.time() - t0
    idle = status_until(port, lambda st: st["requests"]["running"] == 0
                        and st["pool"]["pages_kv"] == 0
                        and st["slots"]["used"] == 0, 10)
    slow.pump(lambda: False, timeout=0.2)
    held = slow.streams[s]["body"]
    slow.grant(s, 1 << 20)
    slow.pump(slow.done(s))
    text, finish, done = sse_text(slow.streams[s]["body"])
    check("h2 no window: nothing sent while the window is shut, the "
          "engine's request run to its end meanwhile (its slot given "
          "back, its tokens kept by the worker), another client answered; "
          "then the whole stream",
          held == b"" and idle and answer(other) == answer(ref)
          and waited < 30 and text == want[2] and done,
          (held[:80], idle, waited, text, want[2]))
    slow.close()

    # a reader that never grants one: send_timeout (5 s in http2.t) ends
    # the stream, and its slot is let go
    stuck = Conn(h2port, window=0)
    s = stuck.request(path, json.dumps(sreq).encode())
    stuck.hold.add(s)
    t0 = time.time()
    stuck.pump(lambda: stuck.streams[s]["reset"] is not None, timeout=30)
    took = time.time() - t0
    check("h2 never a window: send_timeout resets the stream, its slot "
          "let go", stuck.streams[s]["reset"] is not None and 4 < took < 20
          and status(port)["slots"]["used"] == 0,
          (stuck.streams[s], took, status(port)["slots"]))
    stuck.close()

    # an error answer the client cannot take (its window shut), then the
    # client gone: the request ends with its connection, which nginx
    # closes (was: the request, made after its body, took the send's
    # "not all sent" for work still on the thread pool and was never
    # finalized, its connection left open until the worker exited). The
    # count is compared with the one before this connection opened, taken
    # once the earlier clients' connections are closed (or 20 s on).
    t0 = time.time()
    before = active_connections(port)
    while before > 1 and time.time() - t0 < 20:
        time.sleep(0.1)
        before = active_connections(port)
    quiet = round(time.time() - t0, 1)
    gone = Conn(h2port, window=0)
    g = gone.request(path, json.dumps(chat("no-such-adapter", "Hi.",
                                           4)).encode())
    gone.hold.add(g)
    gone.pump(lambda: gone.streams[g]["status"] is not None, timeout=30)
    code = gone.streams[g]["status"]
    during = active_connections(port)
    gone.close()
    t0 = time.time()
    seen = [during]
    while seen[-1] > before and time.time() - t0 < 20:
        time.sleep(0.1)
        seen.append(active_connections(port))
    check("h2 an error under a shut window, then the client gone: its "
          "connection closed", code == 404 and seen[-1] <= before,
          dict(code=code, before=before, quiet_after=quiet,
               counts=seen[:5] + seen[-5:],
               waited=round(time.time() - t0, 1)))


if __name__ == "__main__":
    run(main)
