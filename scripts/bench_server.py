#!/usr/bin/env python3
"""`skrun serve` vs `llama-server` under load, side by side (run by hand; not in CI).

Both serve SmolLM2-135M-Instruct at the same bit width (int8 / Q8_0, or int4-sym / Q4_0) with the
same number of slots, threads and per-slot context, on loopback. A load generator in this process
sends a fixed set of chat requests (greedy, max_tokens fixed, streamed so the first token can be
timed) from C concurrent clients, and reports: requests/s, aggregate generated tokens/s, time to
first token p50/p95, and the server's RSS before and after the run. The two servers run
interleaved, `reps` times each; medians are reported with SinkKit / llama-server ratios.

llama-server is built from the llama.cpp sources vendored in the llama-cpp-python 0.3.36 sdist
(scripts/bench_vs_llama_cpp.py's build, with the llama-server target); the GGUFs are made from the
same dequantized weights as the HF checkpoint (scripts/llama_cpp_reference.py's F32 writer, then
llama-quantize).

    python3 scripts/bench_server.py [--type int8] [--slots 2] [--clients 8] [--requests 48] [--reps 3]
"""
import argparse, concurrent.futures, json, os, re, signal, statistics, subprocess, sys, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
CACHE = Path(os.environ.get("SINKKIT_CACHE", Path.home() / ".cache" / "sinkkit"))
LLAMA_BIN = CACHE / "llama.cpp" / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp" / "build" / "bin"
GGUF = CACHE / "gguf"
HF = CACHE / "smollm2-135m-instruct"
PAIRS = {"int8": "Q8_0", "int4-sym": "Q4_0", "int4": "Q4_1"}
TOPICS = ["the sea", "mountains", "a library", "bread", "trains", "the moon", "a garden", "winter", "music", "a market",
          "rivers", "bicycles", "clocks", "coffee", "a lighthouse", "bees"]


def sk_bin(name):
    return Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()) / name


def ensure_models(skm_type):
    GGUF.mkdir(parents=True, exist_ok=True)
    f32 = GGUF / "smollm2-f32.gguf"
    if not f32.exists():
        import llama_cpp_reference, make_smollm2
        llama_cpp_reference.write_f32_gguf(make_smollm2.gguf_path(), f32)
    gg = GGUF / f"smollm2-{PAIRS[skm_type].lower()}.gguf"
    if not gg.exists():
        subprocess.run([LLAMA_BIN / "llama-quantize", f32, gg, PAIRS[skm_type]], check=True, capture_output=True)
    skm = CACHE / "bench" / f"smollm2-{skm_type}.skm"
    if not skm.exists():
        skm.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sk_bin("skconv"), "quantize", "--model", HF, "--type", skm_type, "--output", skm], check=True, capture_output=True)
    return skm, gg


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_ready(port, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError("server not ready")


def start(kind, model, port, slots, ctx, threads):
    if kind == "sinkkit":
        cmd = [sk_bin("skrun"), "serve", model, "--port", str(port), "--parallel", str(slots), "-c", str(ctx), "-t", str(threads),
               "--queue", "256"]
    else:
        cmd = [LLAMA_BIN / "llama-server", "-m", model, "--port", str(port), "-np", str(slots), "-c", str(ctx * slots),
               "-t", str(threads), "-tb", str(threads), "--no-webui", "-ngl", "0"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, p)
    return p


def one_request(port, i, max_tokens):
    body = {"model": "m", "messages": [{"role": "user", "content": f"Write a short paragraph about {TOPICS[i % len(TOPICS)]}."}],
            "max_tokens": max_tokens, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    ttft, tokens, pieces = None, 0, 0
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            for c in chunk.get("choices", []):
                if (c.get("delta") or {}).get("content"):
                    pieces += 1
                    if ttft is None:
                        ttft = time.perf_counter() - t0
    return ttft or (time.perf_counter() - t0), tokens or pieces, time.perf_counter() - t0


def load_run(kind, model, args, port):
    p = start(kind, model, port, args.slots, args.ctx, args.threads)
    try:
        one_request(port, 0, 8)   # warm-up
        before = rss_kb(p.pid)
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as ex:
            results = list(ex.map(lambda i: one_request(port, i, args.max_tokens), range(args.requests)))
        wall = time.perf_counter() - t0
        after = rss_kb(p.pid)
        # The same load again: what a long-running server holds after serving it twice (growth
        # beyond the first run would be a leak; the first run's growth is KV pages in use).
        with concurrent.futures.ThreadPoolExecutor(args.clients) as ex:
            list(ex.map(lambda i: one_request(port, i, args.max_tokens), range(args.requests)))
        again = rss_kb(p.pid)
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    ttfts = sorted(r[0] for r in results)
    tokens = sum(r[1] for r in results)
    q = statistics.quantiles(ttfts, n=20)
    return {"requests_per_s": args.requests / wall, "tokens_per_s": tokens / wall, "ttft_p50": statistics.median(ttfts),
            "ttft_p95": q[18], "rss_before_mb": before / 1024, "rss_after_mb": after / 1024, "rss_after_second_run_mb": again / 1024,
            "tokens": tokens, "seconds": wall}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--type", default="int8", choices=sorted(PAIRS))
    ap.add_argument("--slots", type=int, default=2)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=48)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "docs" / "measurements" / "server-load.json"))
    args = ap.parse_args()
    skm, gguf = ensure_models(args.type)
    runs = {"sinkkit": [], "llama-server": []}
    for rep in range(args.reps):
        for kind, model in (("sinkkit", skm), ("llama-server", gguf)):
            r = load_run(kind, model, args, 18300 + rep * 2 + (kind == "llama-server"))
            runs[kind].append(r)
            print(f"rep {rep + 1} {kind:13s} {r['requests_per_s']:.2f} req/s  {r['tokens_per_s']:.1f} tok/s  "
                  f"TTFT p50 {r['ttft_p50'] * 1000:.0f} ms p95 {r['ttft_p95'] * 1000:.0f} ms  RSS {r['rss_before_mb']:.1f} -> {r['rss_after_mb']:.1f} -> {r['rss_after_second_run_mb']:.1f} MB", flush=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    s, l = med["sinkkit"], med["llama-server"]
    summary = {"type": args.type, "gguf": PAIRS[args.type], "slots": args.slots, "clients": args.clients, "requests": args.requests,
               "max_tokens": args.max_tokens, "ctx_per_slot": args.ctx, "threads": args.threads, "reps": args.reps,
               "median": med, "ratios": {"requests_per_s": s["requests_per_s"] / l["requests_per_s"], "tokens_per_s": s["tokens_per_s"] / l["tokens_per_s"],
                                         "ttft_p50": s["ttft_p50"] / l["ttft_p50"], "ttft_p95": s["ttft_p95"] / l["ttft_p95"]},
               "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: summary[k] for k in ("median", "ratios")}, indent=1))


if __name__ == "__main__":
    main()
