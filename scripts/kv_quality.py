#!/usr/bin/env python3
"""Perplexity against KV memory: every cache policy x KV storage type, several budgets, side by side
with llama.cpp's own KV cache types on the same weights.

SinkKit: `skrun perplexity` on the int8 SmolLM2 file (made from the HF checkpoint), held-out
English (Fixtures/text/heldout.txt), ctx 2048, the first `--chunks` windows (llama-perplexity's
protocol: the last 1023 predictions of each window scored), bounded caches scored through the
one-token decode path (evicting as generation would). Policies: window (StreamingLLM), h2o, vatp,
tova, snapkv, pyramidkv, adakv at 10/20/50% budgets with f16 KV; each at 20% with int8, int4, k8v4 (int8
keys, int4 values) and kivi4 (KIVI: int4 keys per channel over groups of 32 tokens, int4 values) KV;
a few larger budgets with int8/int4/k8v4/kivi4 KV for the memory target.

llama.cpp (the repo's llama-cpp-python 0.3.36 build, see scripts/bench_vs_llama_cpp.py): the same
int8 weights exported by `skconv export` as a Q8_0 GGUF (bit-identical blocks), llama-perplexity at
the same ctx and windows with its default f16 KV cache, and with q8_0 / q4_0 KV and q8_0 keys with
q4_0 values (flash attention on, which quantized V needs); its KV size is read from its log. With
`--resume` and no llama.cpp build on this machine, its rows are taken from the previous
kv-quality.json (they do not depend on SinkKit's code; the json then says so in `llama_cpp_reused`).

KV bytes: what each configuration holds at most between steps, `layers x KV heads x slots x slot
bytes` (a 64-element head's key + value: f32 512, f16 256, int8 136, int4 72, k8v4 68 + 36 = 104;
llama.cpp's q8_0 136, q4_0 72, q8_0/q4_0 104; kivi4 36 + 36 = 72 plus what it holds beside the slots,
reported by skrun as `kv_side_bytes`: the unsealed keys and the groups' scales, at their peak),
relative to llama.cpp's f16 full cache of the same context.

    python3 scripts/kv_quality.py [--chunks 3] [--jobs 2] [--resume]

Writes docs/measurements/kv-quality.{json,md} and kv-quality.png (matplotlib is installed into the
repo's venv if missing). Not run in CI (about 15 minutes on 2 cores).
"""
import argparse, json, os, re, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache" / "sinkkit"
MODEL = CACHE / "passkey-int8.skm"
GGUF = CACHE / "kv-quality-q8_0.gguf"
TEXT = ROOT / "Fixtures" / "text" / "heldout.txt"
LLAMA_BIN = CACHE / "llama.cpp" / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp" / "build" / "bin"
OUT = ROOT / "docs" / "measurements"
RUNS = OUT / "kv-quality-runs.jsonl"
CTX = 2048
SLOT = {"f32": 512, "f16": 256, "int8": 136, "int4": 72, "k8v4": 104, "kivi4": 72, "q8_0": 136, "q4_0": 72, "q8_0/q4_0": 104}   # key + value bytes, 64-element head
DTYPES = ["f32", "f16", "int8", "k8v4", "kivi4", "int4"]
POLICIES = ["window", "h2o", "vatp", "tova", "snapkv", "pyramidkv", "adakv"]


def native_blas():
    """The full-cache rows are scored in batch, their attention through OpenBLAS's sgemm, whose
    kernels ("core") OpenBLAS picks when it loads unless OPENBLAS_CORETYPE names one (our benchmark
    box's environment sets Haswell on an AVX-512 CPU). Different cores round differently, and the
    int8 activations of the int8 weights turn that rounding into a perplexity difference: the f32
    full cache measured 9.6734 with the detected core and 9.6910 with Haswell (+0.18%; the decode
    path, which uses no BLAS, 9.6760). Runs drop the variable, as a user's machine would, like
    bench_vs_llama_cpp.py's native runs; the bounded caches (decode path) are not affected."""
    os.environ.pop("OPENBLAS_CORETYPE", None)


def bin_dir():
    return Path(os.environ.get("SINKKIT_BIN_DIR") or subprocess.run(
        ["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip())


def configs():
    out = [("full", None, d) for d in ("f32", "f16", "int8", "int4", "k8v4", "kivi4")]
    out += [(p, b, "f16") for p in POLICIES for b in (10, 20, 50)]
    out += [(p, 20, d) for p in POLICIES for d in ("int8", "int4", "k8v4", "kivi4")]
    out += [(p, b, d) for p in ("window", "h2o", "vatp", "snapkv")
            for b, d in ((30, "int8"), (30, "k8v4"), (34, "kivi4"), (40, "kivi4"), (40, "int4"), (50, "int4"))]
    return out


def flags(policy, budget, dtype):
    f = ["--kv-dtype", dtype]
    if policy != "full":
        f += ["--kv", policy, "--kv-budget", f"{budget}%"]
    return f


def sk_run(b, chunks, cfg, done):
    key = " ".join(flags(*cfg))
    if key in done:
        return done[key]
    t = time.time()
    r = subprocess.run([b / "skrun", "perplexity", MODEL, "--file", TEXT, "--ctx", str(CTX), "--chunks", str(chunks),
                        "--threads", "1", "--json"] + flags(*cfg), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{key}: {r.stderr}")
    d = json.loads(r.stdout)
    d.update(flags=key, policy=cfg[0], budget_percent=cfg[1], dtype=cfg[2], wall_seconds=round(time.time() - t, 1))
    with RUNS.open("a") as f:
        f.write(json.dumps(d, sort_keys=True) + "\n")
    print(f"{key:45s} ppl {d['ppl']:.4f}  ({d['wall_seconds']} s)", flush=True)
    return d


def llama_run(chunks, ctk, ctv, fa):
    args = [LLAMA_BIN / "llama-perplexity", "-m", GGUF, "-f", TEXT, "-c", CTX, "--chunks", chunks, "-t", 2, "-ctk", ctk, "-ctv", ctv]
    args += ["-fa", "on" if fa else "off", "-lv", "4"]
    r = subprocess.run(list(map(str, args)), capture_output=True, text=True)
    text = r.stdout + r.stderr
    if r.returncode != 0:
        raise RuntimeError(text[-2000:])
    ppl = float(re.findall(r"Final estimate: PPL = ([0-9.]+)", text)[-1])
    m = re.search(r"KV buffer size =\s+([0-9.]+) MiB", text)
    kv = float(m.group(1)) * 2**20 if m else None
    kind = ctk if ctk == ctv else f"{ctk}/{ctv}"
    print(f"llama.cpp KV {kind:9s} fa {fa}: ppl {ppl:.4f}  KV {kv / 2**20 if kv else float('nan'):.2f} MiB", flush=True)
    return {"ppl": ppl, "kv_bytes_reported": kv, "ctk": ctk, "ctv": ctv, "kind": kind, "flash_attention": fa}


def plot(res):
    try:
        import matplotlib
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=True)
        import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = res["sinkkit"]
    full = next(r for r in rows if r["policy"] == "full" and r["dtype"] == "f32")["ppl"]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    marks = {"f16": "o", "int8": "s", "int4": "^", "f32": "D", "k8v4": "P", "kivi4": "X"}
    for p in ["full"] + POLICIES:
        for d in DTYPES:
            pts = sorted((r["kv_relative"], r["ppl"]) for r in rows if r["policy"] == p and r["dtype"] == d)
            if not pts:
                continue
            style = "-" if d == "f16" and p != "full" else ""
            color = {"full": "black", "window": "tab:gray", "h2o": "tab:blue", "vatp": "tab:cyan", "tova": "tab:orange", "snapkv": "tab:green",
                     "pyramidkv": "tab:purple", "adakv": "tab:red"}[p]
            ax.plot([x for x, _ in pts], [y for _, y in pts], style + marks[d], color=color, ms=4,
                    label=f"{p} {d}" if (d == "f16" or p == "full") else None, alpha=0.9 if d == "f16" else 0.6)
    for r in res["llama_cpp"]:
        ax.plot(r["kv_relative"], r["ppl"], "x", color="black", ms=8)
    ax.axhline(full * 1.05, color="gray", ls=":", label="full cache +5%")
    ax.axvline(1 / 8, color="gray", ls="--", label="1/8 of llama.cpp f16 full")
    ax.set_xscale("log")
    ax.set_xlabel("KV bytes held, relative to llama.cpp's f16 full cache (ctx 2048)\n[o f16, s int8, P k8v4, X kivi4, ^ int4, x llama.cpp]")
    ax.set_ylabel("perplexity (held-out English)")
    ax.set_title("SmolLM2-135M int8: perplexity vs KV memory")
    ax.set_ylim(full * 0.98, full * 1.45)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(OUT / "kv-quality.png", dpi=120)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--resume", action="store_true", help="reuse runs already in docs/measurements/kv-quality-runs.jsonl")
    ap.add_argument("--skip-llama-cpp", action="store_true")
    a = ap.parse_args()
    native_blas()
    b = bin_dir()
    if not MODEL.exists():
        subprocess.run([b / "skconv", "quantize", "--model", CACHE / "smollm2-135m-instruct", "--type", "int8", "--output", MODEL],
                       check=True, capture_output=True)
    OUT.mkdir(parents=True, exist_ok=True)
    done = {}
    if a.resume and RUNS.exists():
        for line in RUNS.read_text().splitlines():
            d = json.loads(line)
            if d.get("chunks") == a.chunks:
                done[d["flags"]] = d
    elif RUNS.exists():
        RUNS.unlink()
    with ThreadPoolExecutor(a.jobs) as ex:
        rows = list(ex.map(lambda c: sk_run(b, a.chunks, c, done), configs()))
    hf = json.loads((CACHE / "smollm2-135m-instruct" / "config.json").read_text())
    layers, kv_heads = hf["num_hidden_layers"], hf["num_key_value_heads"]
    assert hf["hidden_size"] // hf["num_attention_heads"] == 64, "SLOT assumes 64-element heads"
    f16_full = layers * kv_heads * CTX * SLOT["f16"]
    for r in rows:
        slots = CTX if r["policy"] == "full" else r["kv_budget"]
        r["kv_bytes"] = layers * kv_heads * slots * SLOT[r["dtype"]] + r.get("kv_side_bytes", 0)
        r["kv_relative"] = r["kv_bytes"] / f16_full
    full = next(r for r in rows if r["policy"] == "full" and r["dtype"] == "f32")["ppl"]
    for r in rows:
        r["vs_full"] = r["ppl"] / full - 1
    res = {"model": "SmolLM2-135M-Instruct, int8 SKM (skconv quantize of the HF checkpoint)", "text": "Fixtures/text/heldout.txt",
           "ctx": CTX, "chunks": a.chunks, "scored_tokens": rows[0]["tokens"], "threads": 1,
           "kv_bytes_rule": f"layers {layers} x KV heads {kv_heads} x slots x slot bytes (key + value: f32 512, f16 256, int8/q8_0 136, int4/q4_0 72, k8v4 and q8_0/q4_0 104, kivi4 72), plus kivi4's kv_side_bytes",
           "f16_full_bytes": f16_full, "sinkkit": rows, "llama_cpp": []}
    previous = OUT / "kv-quality.json"
    if a.skip_llama_cpp:
        pass
    elif a.resume and not (LLAMA_BIN / "llama-perplexity").exists() and previous.exists():
        old = json.loads(previous.read_text())
        if old.get("chunks") == a.chunks and old.get("f16_full_bytes") == f16_full:
            res["llama_cpp"] = old["llama_cpp"]
            res["llama_cpp_reused"] = old.get("llama_cpp_reused") or "rows of an earlier run of this script (no llama.cpp build here)"
            print("llama.cpp: no build here, its rows reused from the previous kv-quality.json", flush=True)
    elif (LLAMA_BIN / "llama-perplexity").exists():
        if not GGUF.exists():
            subprocess.run([b / "skconv", "export", MODEL, "--output", GGUF], check=True, capture_output=True)
        for ctk, ctv, fa in (("f16", "f16", False), ("f16", "f16", True), ("q8_0", "q8_0", True), ("q8_0", "q4_0", True), ("q4_0", "q4_0", True)):
            d = llama_run(a.chunks, ctk, ctv, fa)
            d["kv_bytes"] = layers * kv_heads * CTX * SLOT[d["kind"]]
            d["kv_relative"] = d["kv_bytes"] / f16_full
            res["llama_cpp"].append(d)
    (OUT / "kv-quality.json").write_text(json.dumps(res, indent=1, sort_keys=True))
    md = [f"Perplexity on held-out English, ctx {CTX}, {a.chunks} windows ({rows[0]['tokens']} scored tokens); f32 full cache "
          f"{full:.4f}. KV = bytes held at most, relative to llama.cpp's f16 full cache ({f16_full / 2**20:.1f} MiB).", "",
          "| policy | budget | KV type | KV (× f16 full) | perplexity | vs f32 full |", "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (["full"] + POLICIES).index(r["policy"]) * 1000 + (r["budget_percent"] or 100) * 5 +
                    DTYPES.index(r["dtype"])):
        md.append(f"| {r['policy']} | {str(r['budget_percent']) + '%' if r['budget_percent'] else 'all'} | {r['dtype']} | "
                  f"{r['kv_relative']:.3f} (1/{1 / r['kv_relative']:.1f}) | {r['ppl']:.4f} | {r['vs_full'] * 100:+.1f}% |")
    for d in res["llama_cpp"]:
        md.append(f"| llama.cpp{' (flash attn)' if d['flash_attention'] else ''} | all | {d['kind']} | {d['kv_relative']:.3f} | {d['ppl']:.4f} | "
                  f"(llama.cpp's own f16 full: see its row) |")
    (OUT / "kv-quality.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    plot(res)


if __name__ == "__main__":
    main()
