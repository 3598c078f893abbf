#!/usr/bin/env python3
"""Speed and memory on models bigger than SmolLM2, side by side with llama.cpp.

No model can be downloaded here, so this writes LLaMA-architecture checkpoints of realistic shapes
with seeded random weights (speed and memory do not depend on the values; perplexity would be
meaningless, so none is reported): TinyLlama-1.1B's shapes (22 layers, d 2048, FFN 5632, 32/4
heads) and Llama-2-7B's (32 layers, d 4096, FFN 11008, 32/32 heads), BF16, with SmolLM2's
tokenizer (so the vocabulary is 49,152, not 32,000).

1.1B: SinkKit converts it (`skconv quantize`, timed, peak RSS) to SKM and, from the same
quantized blocks, to a GGUF for llama.cpp (`skconv export`: the same values in Q8_0 / Q4_0 /
Q4_1), then `skrun bench` and `llama-bench` run interleaved on the same prompt/generation lengths
and threads, and time to first token (a process that loads the model, reads a short prompt and
writes one token) is timed for both.

7B (--models 7B; about 40 GB of free disk at the peak, tens of minutes): a seeded rank-16 PEFT
adapter on every projection (q/k/v/o, gate/up/down) is written beside the checkpoint; SinkKit's
`skconv merge` (BF16 out) and `skconv quantize --adapter … --type int4 / int4-sym` (merged on
the fly) are timed with their peak RSS, against llama.cpp's own path, `convert_hf_to_gguf.py`
(BF16 GGUF) + `llama-quantize` to Q4_0 (which merges no adapter: less work). Then int4-sym and
int4 generation, prompt and TTFT against llama.cpp's Q4_0. Large intermediates are deleted as
soon as they have been measured.

    python3 scripts/bench_scale.py [--models 1.1B,7B] [--threads 1,2] [--reps 2]

Writes docs/measurements/scale.{json,md} (rows of models not run this time are kept). Not run in
CI (gigabytes, minutes).
"""
import argparse, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SINKKIT_CACHE", Path.home() / ".cache" / "sinkkit"))
LLAMA_SRC = CACHE / "llama.cpp" / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp"
LLAMA_BIN = LLAMA_SRC / "build" / "bin"
SHAPES = {
    "1.1B": dict(layers=22, hidden=2048, ffn=5632, heads=32, kv=4),
    "7B": dict(layers=32, hidden=4096, ffn=11008, heads=32, kv=32),
}
VOCAB = 49152


def bf16(a):
    return (a.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)


def write_checkpoint(name, s, out):
    """A safetensors BF16 checkpoint written tensor by tensor (never the whole model in memory)."""
    if (out / "model.safetensors").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1234)
    hd = s["hidden"] // s["heads"]
    shapes = [("model.embed_tokens.weight", (VOCAB, s["hidden"]))]
    for l in range(s["layers"]):
        p = f"model.layers.{l}."
        shapes += [(p + "input_layernorm.weight", (s["hidden"],)), (p + "post_attention_layernorm.weight", (s["hidden"],)),
                   (p + "self_attn.q_proj.weight", (s["heads"] * hd, s["hidden"])), (p + "self_attn.k_proj.weight", (s["kv"] * hd, s["hidden"])),
                   (p + "self_attn.v_proj.weight", (s["kv"] * hd, s["hidden"])), (p + "self_attn.o_proj.weight", (s["hidden"], s["heads"] * hd)),
                   (p + "mlp.gate_proj.weight", (s["ffn"], s["hidden"])), (p + "mlp.up_proj.weight", (s["ffn"], s["hidden"])),
                   (p + "mlp.down_proj.weight", (s["hidden"], s["ffn"]))]
    shapes += [("model.norm.weight", (s["hidden"],)), ("lm_head.weight", (VOCAB, s["hidden"]))]
    header, off = {}, 0
    for n, shp in shapes:
        size = int(np.prod(shp)) * 2
        header[n] = {"dtype": "BF16", "shape": list(shp), "data_offsets": [off, off + size]}
        off += size
    header["__metadata__"] = {"format": "pt", "source": f"seeded random weights, {name} shapes (scripts/bench_scale.py)"}
    hb = json.dumps(header).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = out / "model.safetensors.tmp"
    with open(tmp, "wb") as f:
        f.write(len(hb).to_bytes(8, "little"))
        f.write(hb)
        for n, shp in shapes:
            if len(shp) == 1:
                a = 1 + 0.05 * rng.standard_normal(shp, dtype=np.float32)
            else:
                a = rng.standard_normal(shp, dtype=np.float32) * (1 / np.sqrt(shp[1]))
            f.write(bf16(a).tobytes())
    tmp.rename(out / "model.safetensors")
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": s["hidden"], "intermediate_size": s["ffn"],
           "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"], "num_key_value_heads": s["kv"], "head_dim": hd,
           "vocab_size": VOCAB, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "tie_word_embeddings": False, "torch_dtype": "bfloat16", "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2}
    (out / "config.json").write_text(json.dumps(cfg, indent=1))
    src = CACHE / "smollm2-135m-instruct"
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (out / f).write_bytes((src / f).read_bytes())


def write_adapter(s, out, rank=16):
    """A PEFT LoRA adapter (f32, seeded) of rank `rank` on every projection of every layer."""
    if (out / "adapter_model.safetensors").exists():
        return
    from safetensors.numpy import save_file
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2406_05678)
    hd = s["hidden"] // s["heads"]
    dims = {"self_attn.q_proj": (s["hidden"], s["heads"] * hd), "self_attn.k_proj": (s["hidden"], s["kv"] * hd),
            "self_attn.v_proj": (s["hidden"], s["kv"] * hd), "self_attn.o_proj": (s["heads"] * hd, s["hidden"]),
            "mlp.gate_proj": (s["hidden"], s["ffn"]), "mlp.up_proj": (s["hidden"], s["ffn"]), "mlp.down_proj": (s["ffn"], s["hidden"])}
    t = {}
    for l in range(s["layers"]):
        for m, (i, o) in dims.items():
            k = f"base_model.model.model.layers.{l}.{m}."
            t[k + "lora_A.weight"] = (rng.standard_normal((rank, i), dtype=np.float32) / np.sqrt(i)).astype(np.float32)
            t[k + "lora_B.weight"] = (rng.standard_normal((o, rank), dtype=np.float32) * 0.01).astype(np.float32)
    save_file(t, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    (out / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank, "lora_dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], "bias": "none",
        "fan_in_fan_out": False, "use_rslora": False, "use_dora": False, "modules_to_save": None}, indent=2))


def timed(cmd, env=None):
    t = time.time()
    r = subprocess.run(["/usr/bin/time", "-f", "%M"] + [str(c) for c in cmd], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"failed: {cmd}\n{r.stderr[-2000:]}")
    rss_kb = int(r.stderr.strip().splitlines()[-1])
    return time.time() - t, rss_kb / 1024, r.stdout


def bench_pair(bin_dir, skm, gguf, threads, a, tools):
    """Medians of `a.reps` interleaved runs: prompt, generation, peak RSS, TTFT, both tools."""
    from bench_vs_llama_cpp import llama_ttft, sk_ttft
    sk, ll = [], []
    for _ in range(a.reps):
        _, sk_rss, out = timed([bin_dir / "skrun", "bench", skm, "--prompt-tokens", a.pp, "--gen-tokens", a.tg, "-t", threads, "--json"])
        j = json.loads(out)
        sk.append((j["prompt_tokens_per_s"], j["gen_tokens_per_s"], sk_rss, sk_ttft(skm, threads)))
        _, ll_rss, out = timed([LLAMA_BIN / "llama-bench", "-m", gguf, "-p", a.pp, "-n", a.tg, "-t", threads, "-r", 1, "-o", "json"])
        lj = json.loads(out)
        pp = next(x["avg_ts"] for x in lj if x["n_prompt"] > 0)
        tg = next(x["avg_ts"] for x in lj if x["n_gen"] > 0)
        ll.append((pp, tg, ll_rss, llama_ttft(tools, gguf, threads)))
    med = lambda xs, i: sorted(x[i] for x in xs)[len(xs) // 2]
    return {"sinkkit_pp": med(sk, 0), "llama_pp": med(ll, 0), "sinkkit_tg": med(sk, 1), "llama_tg": med(ll, 1),
            "sinkkit_rss_mb": round(med(sk, 2)), "llama_rss_mb": round(med(ll, 2)),
            "sinkkit_ttft_s": round(med(sk, 3), 3), "llama_ttft_s": round(med(ll, 3), 3)}


def read_bytes_per_token(bin_dir, skm):
    """Bytes generation reads per token: every tensor but the input embedding (one row of it)."""
    info = json.loads(subprocess.run([bin_dir / "skconv", "inspect", skm, "--json"], capture_output=True, text=True, check=True).stdout)
    return sum(t["raw_bytes"] for t in info["tensors"] if t["name"] != "model.embed_tokens.weight")


def run_1b(bin_dir, a, threads, bw, tools):
    name = "1.1B"
    d = CACHE / "scale" / f"llama-{name}-random"
    write_checkpoint(name, SHAPES[name], d)
    rows, conv = [], []
    for ours, ggml in [("int8", "Q8_0"), ("int4-sym", "Q4_0"), ("int4", "Q4_1")]:
        skm, gguf = d.parent / f"{name}-{ours}.skm", d.parent / f"{name}-{ggml}.gguf"
        secs, rss, _ = timed([bin_dir / "skconv", "quantize", "--model", d, "--type", ours, "--output", skm, "--force"])
        conv.append({"model": name, "tool": "SinkKit", "step": f"skconv quantize ({ours})", "s": round(secs, 1), "rss_mb": round(rss),
                     "out_mb": round(skm.stat().st_size / 1e6)})
        # the GGUF holds the same blocks, so the bytes read per token serve both tools
        timed([bin_dir / "skconv", "export", skm, "--output", gguf, "--force"])
        rb = read_bytes_per_token(bin_dir, skm)
        for th in threads:
            row = {"model": name, "pair": f"{ggml} / {ours}", "threads": th, **bench_pair(bin_dir, skm, gguf, th, a, tools), "skm_mb": round(skm.stat().st_size / 1e6),
                   "read_mb_per_token": round(rb / 1e6, 1), "read_bw_gb_s": round(bw[th], 1)}
            rows.append(row)
            print(row, flush=True)
    return rows, conv


def run_7b(bin_dir, a, threads, bw, tools):
    name = "7B"
    s = SHAPES[name]
    # llama.cpp's converter imports torch and (for LLaMA's vocabulary probe) sentencepiece: fail
    # now, not after the SinkKit conversions
    for mod in ("torch", "sentencepiece", "transformers"):
        if subprocess.run([sys.executable, "-c", f"import {mod}"], capture_output=True).returncode != 0:
            sys.exit(f"convert_hf_to_gguf.py needs the Python package {mod}: pip install {mod}")
    d = CACHE / "scale" / f"llama-{name}-random"
    t0 = time.time()
    write_checkpoint(name, s, d)
    adapter = CACHE / "scale" / f"llama-{name}-lora-r16"
    write_adapter(s, adapter)
    print(f"7B checkpoint and adapter ready ({time.time() - t0:.0f} s)", flush=True)
    skms = {ours: d.parent / f"{name}-{ours}.skm" for ours in ("int4-sym", "int4")}
    q4 = d.parent / f"{name}-Q4_0.gguf"
    if a.reuse and q4.exists() and all(p.exists() for p in skms.values()):
        print("--reuse: the converted files are there; speed only (conversion rows kept)", flush=True)
        return bench_7b(bin_dir, a, threads, bw, tools, skms, q4), None
    conv = []
    # SinkKit: merge to a BF16 Hugging Face directory (measured, then deleted: 13.5 GB) ...
    merged = d.parent / f"llama-{name}-merged"
    secs, rss, _ = timed([bin_dir / "skconv", "merge", "--base", d, "--adapter", adapter, "--output", merged, "--force", "--quiet"])
    conv.append({"model": name, "tool": "SinkKit", "step": "skconv merge (rank-16 adapter, BF16 out)", "s": round(secs, 1), "rss_mb": round(rss)})
    print(conv[-1], flush=True)
    shutil.rmtree(merged)
    # ... and merge + quantize in one pass, straight from the base and the adapter.
    for ours, skm in skms.items():
        secs, rss, _ = timed([bin_dir / "skconv", "quantize", "--model", d, "--adapter", adapter, "--type", ours, "--output", skm, "--force"])
        conv.append({"model": name, "tool": "SinkKit", "step": f"skconv quantize --adapter (merge + {ours})", "s": round(secs, 1),
                     "rss_mb": round(rss), "out_mb": round(skm.stat().st_size / 1e6)})
        print(conv[-1], flush=True)
    # llama.cpp: its converter to a BF16 GGUF, then its quantizer to Q4_0 (no adapter merged).
    bf16_gguf = d.parent / f"{name}-BF16.gguf"
    env = dict(os.environ, PYTHONPATH=str(LLAMA_SRC / "gguf-py"))
    secs, rss, _ = timed([sys.executable, LLAMA_SRC / "convert_hf_to_gguf.py", d, "--outtype", "bf16", "--outfile", bf16_gguf], env=env)
    conv.append({"model": name, "tool": "llama.cpp", "step": "convert_hf_to_gguf.py (BF16 GGUF)", "s": round(secs, 1), "rss_mb": round(rss)})
    print(conv[-1], flush=True)
    secs2, rss2, _ = timed([LLAMA_BIN / "llama-quantize", bf16_gguf, q4, "Q4_0", max(threads)])
    conv.append({"model": name, "tool": "llama.cpp", "step": "llama-quantize Q4_0", "s": round(secs2, 1), "rss_mb": round(rss2),
                 "out_mb": round(q4.stat().st_size / 1e6)})
    print(conv[-1], flush=True)
    bf16_gguf.unlink()
    return bench_7b(bin_dir, a, threads, bw, tools, skms, q4), conv


def bench_7b(bin_dir, a, threads, bw, tools, skms, q4):
    name = "7B"
    rows = []
    for ours in ("int4-sym", "int4"):
        rb = read_bytes_per_token(bin_dir, skms[ours])
        for th in threads:
            row = {"model": name, "pair": f"Q4_0 / {ours}", "threads": th, **bench_pair(bin_dir, skms[ours], q4, th, a, tools),
                   "skm_mb": round(skms[ours].stat().st_size / 1e6), "read_mb_per_token": round(rb / 1e6, 1),
                   "read_bw_gb_s": round(bw[th], 1)}
            rows.append(row)
            print(row, flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="1.1B", help="comma-separated: 1.1B, 7B")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--pp", type=int, default=256)
    ap.add_argument("--tg", type=int, default=32)
    ap.add_argument("--reuse", action="store_true", help="7B: reuse the converted files if present (speed rows only)")
    a = ap.parse_args()
    bin_dir = Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip())
    os.environ["SINKKIT_BIN_DIR"] = str(bin_dir)
    threads = [int(t) for t in str(a.threads).split(",")]
    models = [m.strip() for m in a.models.split(",")]
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_vs_llama_cpp import bandwidth, blas_core
    blas_core(avx2_only=False)
    tools = {t: LLAMA_BIN / t for t in ("llama-bench", "llama-quantize", "llama-completion")}
    bw = {t: bandwidth(t, False) for t in threads}
    print("streaming read bandwidth:", {t: round(v, 1) for t, v in bw.items()}, flush=True)
    out = ROOT / "docs" / "measurements"
    old = json.loads((out / "scale.json").read_text()) if (out / "scale.json").exists() else {}
    rows = [r for r in old.get("rows", []) if r["model"] not in models]
    conv = list(old.get("conversion", []))
    runs = dict(old.get("runs", {}))
    for m in models:
        r, c = {"1.1B": run_1b, "7B": run_7b}[m](bin_dir, a, threads, bw, tools)
        rows += r
        if c is not None:   # None: conversion not re-run (--reuse), its rows kept
            conv = [x for x in conv if x["model"] != m] + c
        runs[m] = {"pp": a.pp, "tg": a.tg, "reps": a.reps, "read_bw_gb_s": {str(t): round(v, 1) for t, v in bw.items()}}
    rows.sort(key=lambda r: (list(SHAPES).index(r["model"]), r["pair"], r["threads"]))
    (out / "scale.json").write_text(json.dumps({"runs": runs, "rows": rows, "conversion": conv}, indent=1))
    md = ["Weight GB/s = the bytes generation reads per token (every tensor but the input embedding) × tokens/s, against the "
          "streaming read bandwidth measured in the same run (scripts/bandwidth.c): "
          + "; ".join(f"{m}: " + ", ".join(f"{t} thr {v} GB/s" for t, v in r["read_bw_gb_s"].items()) for m, r in runs.items()) + ". "
          + "Prompt / generation lengths: " + "; ".join(f"{m}: {r['pp']} / {r['tg']}" for m, r in runs.items())
          + ". TTFT: a process that loads the model, reads a short prompt and writes one token (page cache warm).", "",
          "| model | llama.cpp / SinkKit | threads | prompt tok/s | ratio | generation tok/s | ratio | SinkKit weight GB/s (% of read bw) | TTFT s | ratio | peak RSS MB | ratio |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gbs = r["read_mb_per_token"] * r["sinkkit_tg"] / 1e3
        ttft = (f"{r['llama_ttft_s']:.2f} / {r['sinkkit_ttft_s']:.2f} | {r['sinkkit_ttft_s'] / r['llama_ttft_s']:.2f}×"
                if r.get("sinkkit_ttft_s") else "— | —")
        md.append(f"| {r['model']} (random weights) | {r['pair']} | {r['threads']} | {r['llama_pp']:.1f} / {r['sinkkit_pp']:.1f} | {r['sinkkit_pp'] / r['llama_pp']:.2f}× | "
                  f"{r['llama_tg']:.2f} / {r['sinkkit_tg']:.2f} | {r['sinkkit_tg'] / r['llama_tg']:.2f}× | "
                  f"{gbs:.1f} ({100 * gbs / r['read_bw_gb_s']:.0f}%) | {ttft} | "
                  f"{r['llama_rss_mb']} / {r['sinkkit_rss_mb']} | {r['sinkkit_rss_mb'] / r['llama_rss_mb']:.2f}× |")
    if conv:
        md += ["", "Conversion (1.1B: `skconv quantize` of the BF16 checkpoint; 7B: with a rank-16 adapter merged, against llama.cpp's convert + quantize, which merges none):", "",
               "| model | tool | step | seconds | peak RSS MB | output MB |", "|---|---|---|---|---|---|"]
        for c in conv:
            md.append(f"| {c['model']} | {c['tool']} | {c['step']} | {c['s']} | {c['rss_mb']} | {c.get('out_mb', '—')} |")
    (out / "scale.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
