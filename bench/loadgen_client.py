"""loadgen_client.py: sends a workload to a server and times every token.

Plain asyncio and HTTP/1.1 by hand, one connection per request
(`Connection: close`), so nothing between the socket and the clock
buffers a stream: the chunked coding and the SSE events are parsed as
the bytes arrive.  Each request is an OpenAI completions call with
`stream: true`, `max_tokens` = the request's output tokens,
`ignore_eos: true` (honoured by servers that know it), greedy sampling,
and a prompt of exactly the request's prompt tokens.  The one idea to
know: the prompt length is hit by measurement, not by guess: before a
run, `calibrate()` asks the server to count the tokens of the prompt word
repeated 1, 2 and 9 times (`usage.prompt_tokens`), checks that the count
is a + b*k, and the prompt of n tokens is then the word repeated
(n - a) / b times; every answer's usage is recorded to prove it.

Requests are sent open-loop at their arrival times (as the paper's
run_exp.py does), whatever the server's state; a 429 answer is an early
abort, counted as an SLO miss.
"""

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


class HTTPError(Exception):
    pass


class Target:
    """Where requests go: http://host:port, and the path and model
    templates ({tenant}, {adapter})."""

    def __init__(self, url, path, model):
        u = urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError("--url must be http://HOST[:PORT] (got %r)"
                             % url)
        self.host = u.hostname
        self.port = u.port or 80
        self.base = u.path.rstrip("/")
        self.path = path
        self.model = model
        self.hostport = "%s:%d" % (self.host, self.port)

    def request_path(self, tenant, adapter):
        return self.base + self.path.format(tenant=tenant or "",
                                            adapter=adapter or "")

    def model_name(self, tenant, adapter):
        if adapter is None:
            adapter = "default" if tenant else "base"
        return self.model.format(tenant=tenant or "", adapter=adapter)


async def _read_head(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        raise HTTPError("connection closed before the response header")
    except asyncio.LimitOverrunError:
        raise HTTPError("response header too long")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HTTPError("bad status line: %r" % lines[0][:80])
    try:
        status = int(parts[1])
    except ValueError:
        raise HTTPError("bad status line: %r" % lines[0][:80])
    headers = {}
    for ln in lines[1:]:
        if not ln:
            continue
        k, sep, v = ln.partition(":")
        if not sep:
            raise HTTPError("bad header line: %r" % ln[:80])
        k = k.strip().lower()
        v = v.strip()
        headers[k] = headers[k] + ", " + v if k in headers else v
    return status, headers


async def _body(reader, headers):
    """The response body as it arrives; raises HTTPError when it ends
    before its framing says it is complete."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            try:
                line = await reader.readuntil(b"\r\n")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass
                    return
                data = await reader.readexactly(size + 2)
            except asyncio.IncompleteReadError:
                raise HTTPError("stream cut: the connection closed inside "
                                "the chunked body (no last chunk)")
            except ValueError:
                raise HTTPError("bad chunk size line")
            if data[-2:] != b"\r\n":
                raise HTTPError("chunk not followed by CRLF")
            yield data[:-2]
    elif "content-length" in headers:
        left = int(headers["content-length"])
        while left > 0:
            data = await reader.read(min(left, 65536))
            if not data:
                raise HTTPError("connection closed %d bytes short of "
                                "Content-Length" % left)
            left -= len(data)
            yield data
    else:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            yield data


async def _exchange(target, method, path, body):
    reader, writer = await asyncio.open_connection(target.host, target.port)
    head = ("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
            "User-Agent: slora-loadgen\r\n" % (method, path, target.hostport))
    if body is not None:
        head += ("Content-Type: application/json\r\n"
                 "Content-Length: %d\r\n" % len(body))
    writer.write(head.encode("latin-1") + b"\r\n" + (body or b""))
    await writer.drain()
    return reader, writer


async def http_json(target, method, path, obj=None, timeout=60):
    """One non-streamed exchange: (status, headers, decoded JSON or None,
    raw body)."""
    async def go():
        body = None if obj is None else json.dumps(obj).encode()
        reader, writer = await _exchange(target, method, path, body)
        try:
            status, headers = await _read_head(reader)
            data = b""
            async for d in _body(reader, headers):
                data += d
        finally:
            writer.close()
        try:
            j = json.loads(data)
        except ValueError:
            j = None
        return status, headers, j, data
    return await asyncio.wait_for(go(), timeout)


def make_prompt(word, k):
    return word + (" " + word) * (k - 1)


class Calibration:
    """prompt_tokens(k words) = a + b*k, measured on the server."""

    def __init__(self, word, a, b, exact, points):
        self.word = word
        self.a = a
        self.b = b
        self.exact = exact
        self.points = points

    def words_for(self, n):
        if self.b <= 0:
            return max(1, n)
        return max(1, int(round((n - self.a) / self.b)))

    def prompt(self, n):
        return make_prompt(self.word, self.words_for(n))

    def as_dict(self):
        return {"word": self.word, "a": self.a, "b": self.b,
                "exact": self.exact, "points": self.points}


async def calibrate(target, word, tenant, adapter, timeout=60):
    path = target.request_path(tenant, adapter)
    model = target.model_name(tenant, adapter)
    pts = {}
    for k in (1, 2, 9):
        obj = {"prompt": make_prompt(word, k), "max_tokens": 1,
               "temperature": 0}
        if model:
            obj["model"] = model
        status, _, j, raw = await http_json(target, "POST", path, obj,
                                            timeout)
        if status != 200 or not isinstance(j, dict):
            raise HTTPError("calibration request POST %s (model %r) got "
                            "HTTP %d: %s" % (path, model, status,
                                             raw[:200].decode("utf-8",
                                                              "replace")))
        try:
            pts[k] = int(j["usage"]["prompt_tokens"])
        except (KeyError, TypeError, ValueError):
            raise HTTPError("calibration: the answer has no "
                            "usage.prompt_tokens")
    b = pts[2] - pts[1]
    a = pts[1] - b
    exact = b == 1 and pts[9] == a + 9 * b
    return Calibration(word, a, b, exact, pts)


async def list_adapters(target, timeout=30):
    """The adapters GET <base>/v1/models lists (entries with a parent)."""
    path = target.base + "/v1/models"
    status, _, j, raw = await http_json(target, "GET", path, None, timeout)
    if status != 200 or not isinstance(j, dict):
        raise HTTPError("GET %s: HTTP %d: %s"
                        % (path, status, raw[:200].decode("utf-8",
                                                          "replace")))
    return [m["id"] for m in j.get("data", [])
            if isinstance(m, dict) and m.get("parent") and "id" in m]


def _error_text(j, raw):
    if isinstance(j, dict) and isinstance(j.get("error"), dict):
        e = j["error"]
        return "%s: %s" % (e.get("code") or e.get("type"), e.get("message"))
    return raw[:200].decode("utf-8", "replace")


async def one_request(target, req, prompt, tenant, adapter, t_start,
                      slo_ttft, timeout, temperature):
    """Sends one request; returns its record (times in seconds)."""
    path = target.request_path(tenant, adapter)
    model = target.model_name(tenant, adapter)
    obj = {"prompt": prompt, "max_tokens": req.output_tokens,
           "temperature": temperature, "stream": True,
           "stream_options": {"include_usage": True}, "ignore_eos": True}
    if model:
        obj["model"] = model
    body = json.dumps(obj).encode()

    rec = {"idx": req.idx, "arrival": round(req.arrival, 6),
           "tenant": tenant, "adapter": adapter, "model": model,
           "prompt_tokens": req.prompt_tokens,
           "output_tokens": req.output_tokens,
           "status": None, "outcome": None, "error": None,
           "ttft": None, "e2e": None, "itl": [],
           "usage_prompt_tokens": None, "usage_completion_tokens": None,
           "finish_reason": None, "events": 0}
    t0 = time.monotonic()
    rec["sent"] = round(t0 - t_start, 6)
    tokens = []

    async def go():
        reader, writer = await _exchange(target, "POST", path, body)
        try:
            status, headers = await _read_head(reader)
            rec["status"] = status
            ctype = headers.get("content-type", "")
            if status != 200 or not ctype.startswith("text/event-stream"):
                data = b""
                async for d in _body(reader, headers):
                    data += d
                try:
                    j = json.loads(data)
                except ValueError:
                    j = None
                rec["error"] = _error_text(j, data)
                rec["outcome"] = "aborted" if status == 429 else "error"
                return
            buf = b""
            done = False
            async for d in _body(reader, headers):
                now = time.monotonic()
                buf += d
                while True:
                    i = buf.find(b"\n\n")
                    if i < 0:
                        break
                    block = buf[:i]
                    buf = buf[i + 2:]
                    if not block.startswith(b"data: "):
                        continue
                    payload = block[6:]
                    if payload == b"[DONE]":
                        done = True
                        continue
                    try:
                        ev = json.loads(payload)
                    except ValueError:
                        rec["error"] = "an event is not JSON"
                        continue
                    rec["events"] += 1
                    if isinstance(ev.get("error"), dict):
                        rec["error"] = _error_text(ev, payload)
                        continue
                    if isinstance(ev.get("usage"), dict):
                        u = ev["usage"]
                        rec["usage_prompt_tokens"] = u.get("prompt_tokens")
                        rec["usage_completion_tokens"] = \
                            u.get("completion_tokens")
                    ch = ev.get("choices") or []
                    if not ch:
                        continue
                    c = ch[0]
                    text = c.get("text")
                    if text is None and isinstance(c.get("delta"), dict):
                        text = c["delta"].get("content")
                    if text:
                        tokens.append(now)
                    elif rec["ttft"] is None and not tokens:
                        rec["ttft"] = now - t0
                    if c.get("finish_reason"):
                        rec["finish_reason"] = c["finish_reason"]
            if rec["error"] is None and not done:
                rec["error"] = "the stream ended without data: [DONE]"
            rec["outcome"] = "ok" if rec["error"] is None else "error"
        finally:
            writer.close()

    try:
        await asyncio.wait_for(go(), timeout)
    except asyncio.TimeoutError:
        rec["outcome"] = "error"
        rec["error"] = "timeout after %g s" % timeout
    except HTTPError as e:
        rec["outcome"] = "error"
        rec["error"] = str(e)
    except (OSError, asyncio.IncompleteReadError) as e:
        rec["outcome"] = "error"
        rec["error"] = "%s: %s" % (type(e).__name__, e)

    t1 = time.monotonic()
    rec["e2e"] = round(t1 - t0, 6)
    if tokens:
        rec["ttft"] = tokens[0] - t0
        rec["itl"] = [round(b - a, 6) for a, b in zip(tokens, tokens[1:])]
    if rec["ttft"] is not None:
        rec["ttft"] = round(rec["ttft"], 6)
    rec["slo_met"] = (rec["outcome"] == "ok" and rec["ttft"] is not None
                      and rec["ttft"] < slo_ttft)
    return rec


class Progress:
    """A one-line progress bar on stderr (a line every 10 s when stderr
    is not a terminal)."""

    def __init__(self, total, label, enabled=True):
        self.total = total
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.sent = 0
        self.done = 0
        self.ok = 0
        self.aborted = 0
        self.errors = 0
        self.t0 = time.monotonic()
        self.last = 0.0

    def line(self):
        w = 24
        f = int(w * self.done / self.total) if self.total else w
        return ("%s [%s%s] %d/%d done, %d sent, ok %d, 429 %d, err %d, "
                "%.1f s" % (self.label, "#" * f, "." * (w - f), self.done,
                            self.total, self.sent, self.ok, self.aborted,
                            self.errors, time.monotonic() - self.t0))

    def tick(self, final=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            sys.stderr.write("\r" + self.line() + ("\n" if final else ""))
            sys.stderr.flush()
        elif final or now - self.last >= 10:
            sys.stderr.write(self.line() + "\n")
            sys.stderr.flush()
            self.last = now

    def count(self, rec):
        self.done += 1
        if rec["outcome"] == "ok":
            self.ok += 1
        elif rec["outcome"] == "aborted":
            self.aborted += 1
        else:
            self.errors += 1


async def replay(target, reqs, names, calib, slo_ttft, timeout, temperature,
                 label, progress=True):
    """Sends every request at its arrival time; returns (records, the
    run's wall time from the first send to the last answer)."""
    prog = Progress(len(reqs), label, progress)
    loop_done = asyncio.Event()

    async def ticker():
        while not loop_done.is_set():
            prog.tick()
            try:
                await asyncio.wait_for(loop_done.wait(), 0.25)
            except asyncio.TimeoutError:
                pass

    async def tracked(coro):
        rec = await coro
        prog.count(rec)
        return rec

    tick = asyncio.ensure_future(ticker())
    tasks = []
    start = time.monotonic()
    for r in reqs:
        delay = start + r.arrival - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tenant, adapter = names(r)
        tasks.append(asyncio.ensure_future(tracked(one_request(
            target, r, calib.prompt(r.prompt_tokens), tenant, adapter,
            start, slo_ttft, timeout, temperature))))
        prog.sent += 1
    recs = await asyncio.gather(*tasks)
    wall = time.monotonic() - start
    loop_done.set()
    await tick
    prog.tick(final=True)
    return list(recs), wall
