#!/usr/bin/env python3
"""End-to-end tests of `skrun serve` with the official `openai` Python client, and of the
interactive chat under a pseudo-terminal (pexpect). Run by the XCTest SKRunTests/ServerTests
(CI), or by hand:

    python3 scripts/test_server.py BIN_DIR MODEL.skm

Checks: plain and streamed chat and completions; greedy output through the API identical to
`skrun generate` for the same prompt; 8 concurrent clients on 2 slots all finish with the text
each gets alone; malformed requests each get the right status and error object while the server
keeps serving; a full queue answers 503 with Retry-After; a client that disconnects frees its
slot; the chat keeps its KV cache between turns, answers Ctrl-C by stopping the reply, knows
/help /clear /bye, and exits on a second Ctrl-C at the prompt.
"""
import concurrent.futures, json, os, re, signal, subprocess, sys, time, urllib.error, urllib.request

BIN, MODEL = sys.argv[1], sys.argv[2]
SKRUN = os.path.join(BIN, "skrun")
failures = []
passed = 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print("FAIL:", what, flush=True)


def start_server(*extra):
    p = subprocess.Popen([SKRUN, "serve", MODEL, "--port", "0", *extra], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = p.stderr.readline()
        m = re.search(r"listening on [^:]+:(\d+)", line)
        if m:
            return p, int(m.group(1))
    raise RuntimeError("server did not start")


def post(port, path, body, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


def skrun_generate(prompt, n, chat):
    args = [SKRUN, "generate", MODEL, "-p", prompt, "-n", str(n), "--temperature", "0", "--ctx", "4096"] + (["--chat"] if chat else [])
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout[:-1]   # the final newline is skrun's


def api_tests():
    from openai import OpenAI
    server, port = start_server("--parallel", "2", "--queue", "16")
    try:
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none")
        models = client.models.list()
        check(len(models.data) == 1, "GET /v1/models lists the model")

        q = "What is the capital of France?"
        r = client.chat.completions.create(model="any", messages=[{"role": "user", "content": q}], max_tokens=24, temperature=0)
        text = r.choices[0].message.content
        check(text == skrun_generate(q, 24, chat=True), f"greedy chat through the API equals skrun generate --chat: {text!r}")
        check(r.usage.completion_tokens > 0 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, "usage counts")
        check(r.choices[0].finish_reason in ("stop", "length"), "finish_reason")

        streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="any", messages=[{"role": "user", "content": q}], max_tokens=24, temperature=0, stream=True) if c.choices)
        check(streamed == text, f"streamed chat equals the plain one: {streamed!r}")

        p = "The three primary colors are"
        c = client.completions.create(model="any", prompt=p, max_tokens=20, temperature=0)
        check(c.choices[0].text == skrun_generate(p, 20, chat=False), f"greedy completion equals skrun generate: {c.choices[0].text!r}")

        s = client.completions.create(model="any", prompt="1, 2, 3,", max_tokens=40, temperature=0, stop=[" 6"])
        check(" 6" not in s.choices[0].text and "5" in s.choices[0].text and s.choices[0].finish_reason == "stop", f"stop string: {s.choices[0].text!r}")

        # 8 concurrent clients on 2 slots: each gets exactly the text it gets alone. Batching never
        # changes a generation; prompt reuse (a prefix computed in an earlier request) may, in the
        # last bits, as in llama-server: cache_prompt false pins each request to a fresh prefill.
        prompts = [f"Write one sentence about the number {i}." for i in range(8)]
        def one(i, temperature):
            return client.chat.completions.create(model="any", messages=[{"role": "user", "content": prompts[i]}], max_tokens=32,
                                                  temperature=temperature, seed=i, extra_body={"cache_prompt": False}).choices[0].message.content
        for temperature in (0, 0.8):
            alone = [one(i, temperature) for i in range(8)]
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                together = list(ex.map(lambda i: one(i, temperature), range(8)))
            check(together == alone, f"temperature {temperature}: 8 concurrent clients on 2 slots get the texts they get alone: {[a == b for a, b in zip(alone, together)]}")
        # The next turn of a chat reuses the cached prompt (only the new tokens are computed).
        turn1 = [{"role": "user", "content": "Name a fruit."}]
        a1 = client.chat.completions.create(model="any", messages=turn1, max_tokens=16, temperature=0)
        turn2 = turn1 + [{"role": "assistant", "content": a1.choices[0].message.content}, {"role": "user", "content": "And a vegetable?"}]
        status, _, a2 = post(port, "/v1/chat/completions", {"messages": turn2, "max_tokens": 16, "temperature": 0})
        cached = a2["usage"]["prompt_tokens_details"]["cached_tokens"]
        check(status == 200 and cached >= a1.usage.prompt_tokens, f"the second turn reuses the first turn's cached prompt ({cached} of {a2['usage']['prompt_tokens']} tokens)")

        # Malformed requests: each its status and an OpenAI error object; the server keeps serving.
        bad = [
            ("/v1/chat/completions", None, b"{not json", 400),
            ("/v1/chat/completions", {"messages": []}, None, 400),
            ("/v1/chat/completions", {}, None, 400),
            ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]}, None, 400),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, None, 400),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, None, 400),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "n": 3}, None, 400),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, None, 400),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "stop": [1, 2]}, None, 400),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "a": 1, "a": 2}, b'{"messages":[{"role":"user","content":"x"}],"a":1,"a":2}', 400),
            ("/v1/completions", {"prompt": 5}, None, 400),
            ("/v1/completions", {"prompt": "word " * 5000, "max_tokens": 1}, None, 413),
            ("/v1/completions", None, b'{"prompt":"' + b"x" * (2 << 20) + b'"}', 413),
            ("/v1/nothing", {}, None, 404),
        ]
        for path, body, raw, want in bad:
            status, _, obj = post(port, path, body, raw)
            check(status == want and isinstance(obj.get("error"), dict) and obj["error"].get("message"),
                  f"{path} {str(body or raw)[:60]!r}: status {status} (want {want}), error object {str(obj)[:120]}")
        r = client.chat.completions.create(model="any", messages=[{"role": "user", "content": q}], max_tokens=24, temperature=0)
        check(r.choices[0].message.content == text, "still serving after malformed requests")

        # A client that disconnects mid-stream frees its slot (the generation is cancelled).
        import http.client
        for _ in range(2):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": "Tell a long story."}],
                                                                     "max_tokens": 4000, "temperature": 0, "stream": True}))
            resp = conn.getresponse()
            resp.read(300)
            resp.close()
            conn.close()
        time.sleep(1.0)
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/health").read())
        check(health["slots_busy"] == 0, f"disconnected clients' generations were cancelled: {health}")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)

    # A full queue: 1 slot, queue of 1: the third concurrent request is refused with 503 + Retry-After.
    server, port = start_server("--parallel", "1", "--queue", "1")
    try:
        body = {"messages": [{"role": "user", "content": "Tell a long story."}], "max_tokens": 300, "temperature": 0}
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            futs = []
            for _ in range(3):
                futs.append(ex.submit(post, port, "/v1/chat/completions", body))
                time.sleep(0.3)
            results = [f.result() for f in futs]
        statuses = sorted(r[0] for r in results)
        busy = [r for r in results if r[0] == 503]
        check(statuses == [200, 200, 503] and busy and busy[0][1].get("Retry-After") == "1", f"queue full: statuses {statuses}")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def chat_tests():
    import pexpect
    child = pexpect.spawn(SKRUN, [MODEL, "--chat", "--temperature", "0", "-n", "200"], encoding="utf-8", timeout=60)
    child.expect("> ")
    child.sendline("")                       # an empty line does nothing
    child.expect("> ")
    child.sendline("/help")
    child.expect("/clear")
    child.expect("> ")
    child.sendline("Name a color.")
    child.expect("> ")
    first = child.before
    check(len(first.strip()) > 0, f"first reply: {first!r}")
    child.sendline("Tell me a very long story about the sea and its ships and their captains.")
    time.sleep(0.4)
    child.sendcontrol("c")                   # stops the reply, back at the prompt
    child.expect(r"\(stopped\)")
    child.expect("> ")
    check(child.isalive(), "Ctrl-C during a reply returns to the prompt")
    child.sendline("/clear")
    child.expect(r"\(conversation cleared\)")
    child.expect("> ")
    child.sendcontrol("c")
    child.expect("Ctrl-C again")
    child.sendcontrol("c")
    child.expect(pexpect.EOF)
    child.close()
    check(child.exitstatus == 130, f"a second Ctrl-C at the prompt exits 130 (got {child.exitstatus}, signal {child.signalstatus})")
    # Outgrowing the context: a full cache says how to go on; a bounded one goes on and says so once.
    child = pexpect.spawn(SKRUN, [MODEL, "--chat", "--temperature", "0", "-c", "96"], encoding="utf-8", timeout=60)
    child.expect("> ")
    said = False
    for _ in range(6):
        child.sendline("Tell me about the history of the sea and its ships.")
        i = child.expect([r"fills the 96-token context", r"no longer fits the 96-token context", "> "])
        if i < 2:
            said = True
            break
    check(said, "a full cache says when the conversation fills the context")
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    child = pexpect.spawn(SKRUN, [MODEL, "--chat", "--temperature", "0", "-n", "40", "--kv", "window", "--kv-budget", "64"],
                          encoding="utf-8", timeout=60)
    child.expect("> ")
    notes = 0
    for _ in range(4):
        child.sendline("Tell me about the history of the sea and its ships.")
        i = child.expect([r"keeps going", "> "])
        if i == 0:
            notes += 1
            child.expect("> ")
    check(notes == 1, f"a bounded cache keeps the conversation going and says so once (said {notes} times)")
    check(child.isalive(), "the bounded chat is still running")
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    child = pexpect.spawn(SKRUN, [MODEL, "--chat"], encoding="utf-8", timeout=60)
    child.expect("> ")
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    child.close()
    check(child.exitstatus == 0, "/bye exits 0")


api_tests()
chat_tests()
print(f"server and chat tests: {passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
