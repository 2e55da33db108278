#!/usr/bin/env python3
# bench/lora-runtime.py: vLLM's runtime LoRA registration on a running
# server, whatever its backend (bench/device-nginx.sh runs it on the
# GPU with LORA=1; `make run` on the CPU): the greedy tokens of two
# adapter folders A and B and of the base model, asked alone; then a
# name registered with load_lora_adapter to A's folder, asked (its
# tokens against A's), registered again (vLLM's 400), swapped to B's
# folder with load_inplace (its tokens against B's), asked in a batch
# beside A and the base model (each request's tokens against the same
# request asked alone), unloaded (then a 404). Prints each step's
# status, time and whether the tokens are equal (or the first position
# they part at); asserts nothing: t/lora_runtime.t and t/catalog.t do.
# Standard library only (the device has no PyPI).
#
#   python3 bench/lora-runtime.py BASE ADMIN ROOT A B [tokens]
#
# BASE the server (http://127.0.0.1:8080), ADMIN the location the two
# admin paths end in (/v1/), ROOT a folder under the adapter roots, A
# and B adapter folders in it that the server also serves by their
# names.

import json
import sys
import threading
import time
import urllib.error
import urllib.request

BASE = sys.argv[1].rstrip("/")
ADMIN = BASE + sys.argv[2]
ROOT = sys.argv[3].rstrip("/")
A, B = sys.argv[4], sys.argv[5]
TOKENS = int(sys.argv[6]) if len(sys.argv) > 6 else 24
NAME = "registered-at-run-time"
PROMPT = "The three most useful things to know about a city are"


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    t0 = time.time()
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            status, data = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, data = e.code, e.read()
    return status, data.decode("utf-8", "replace"), time.time() - t0


def tokens(model):
    status, data, dt = post(BASE + "/v1/completions",
                            {"model": model, "prompt": PROMPT,
                             "max_tokens": TOKENS, "temperature": 0,
                             "ignore_eos": True, "return_token_ids": True})
    if status != 200:
        return status, None, dt
    return status, json.loads(data)["choices"][0]["token_ids"], dt


def against(got, want):
    if got is None or want is None:
        return "no tokens"
    if got == want:
        return f"equal ({len(got)} tokens)"
    k = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y),
             min(len(got), len(want)))
    return f"PARTS at token {k} of {len(want)}"


def error_message(data):
    try:
        return json.loads(data)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return data.strip()


t_wait = time.time()
for _ in range(1800):
    try:
        st = json.load(urllib.request.urlopen(BASE + "/health", timeout=2))
        if st.get("status") == "ok":
            break
    except Exception:
        pass
    time.sleep(0.5)
print(f"server ready after {time.time() - t_wait:.0f} s")

alone = {}
for m in ("base", A, B):
    status, alone[m], dt = tokens(m)
    print(f"{m:24} alone: {status}, {dt * 1e3:7.1f} ms")

rows = []


def step(what, status, dt, note):
    rows.append((what, status, dt * 1e3, note))
    print(f"{what:44} {status} {dt * 1e3:8.1f} ms  {note}")


status, data, dt = post(ADMIN + "load_lora_adapter",
                        {"lora_name": NAME, "lora_path": f"{ROOT}/{A}"})
step(f"load_lora_adapter -> {A}", status, dt, data.strip())
status, got, dt = tokens(NAME)
step("first request of the name", status, dt, against(got, alone[A]))
status, data, dt = post(ADMIN + "load_lora_adapter",
                        {"lora_name": NAME, "lora_path": f"{ROOT}/{B}"})
step("the same name again", status, dt, error_message(data))
status, data, dt = post(ADMIN + "load_lora_adapter",
                        {"lora_name": NAME, "lora_path": f"{ROOT}/{B}",
                         "load_inplace": True})
step(f"load_inplace -> {B}", status, dt, data.strip())
status, got, dt = tokens(NAME)
step("the name after load_inplace", status, dt, against(got, alone[B]))

# a batch: the registered name beside A and the base model, 4 of each
models = [NAME, A, "base"] * 4
out = [None] * len(models)


def ask(i):
    out[i] = tokens(models[i])


t0 = time.time()
threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(models))]
for t in threads:
    t.start()
for t in threads:
    t.join()
dt = time.time() - t0
want = {NAME: alone[B], A: alone[A], "base": alone["base"]}
equal = sum(1 for i, m in enumerate(models) if out[i][1] == want[m])
parted = [f"{m}: {against(out[i][1], want[m])}" for i, m in enumerate(models)
          if out[i][1] != want[m]]
step(f"{len(models)} at once (name, {A}, base)", 200 if all(
    o[0] == 200 for o in out) else "!", dt,
     f"{equal} of {len(models)} equal to alone"
     + (" (" + "; ".join(parted) + ")" if parted else ""))

status, data, dt = post(ADMIN + "unload_lora_adapter", {"lora_name": NAME})
step("unload_lora_adapter", status, dt, data.strip())
status, got, dt = tokens(NAME)
step("the name after unload", status, dt, "404 expected")
