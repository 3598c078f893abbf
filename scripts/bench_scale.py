#!/usr/bin/env python3
"""Speed and memory on models bigger than SmolLM2, side by side with llama.cpp.

No model can be downloaded here, so this writes LLaMA-architecture checkpoints of realistic shapes
with seeded random weights (speed and memory do not depend on the values; perplexity would be
meaningless, so none is reported): TinyLlama-1.1B's shapes (22 layers, d 2048, FFN 5632, 32/4
heads) and, with --7b, Llama-2-7B's (32 layers, d 4096, FFN 11008, 32/32 heads), BF16, with
SmolLM2's tokenizer (so the vocabulary is 49,152, not 32,000). SinkKit converts it
(`skconv quantize`, timed, peak RSS) to SKM and, from the same quantized blocks, to a GGUF for
llama.cpp (`--output X.gguf`: the same values in Q8_0 / Q4_0), then `skrun bench` and
`llama-bench` run interleaved on the same prompt/generation lengths and threads.

    python3 scripts/bench_scale.py [--7b] [--threads 1,2] [--reps 2]

Writes docs/measurements/scale.{json,md}. Not run in CI (gigabytes, minutes).
"""
import argparse, json, os, re, subprocess, sys, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SINKKIT_CACHE", Path.home() / ".cache" / "sinkkit"))
LLAMA_BIN = CACHE / "llama.cpp" / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp" / "build" / "bin"
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


def timed(cmd):
    t = time.time()
    r = subprocess.run(["/usr/bin/time", "-f", "%M"] + [str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {cmd}\n{r.stderr[-2000:]}")
    rss_kb = int(r.stderr.strip().splitlines()[-1])
    return time.time() - t, rss_kb / 1024, r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--7b", dest="big", action="store_true")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--pp", type=int, default=256)
    ap.add_argument("--tg", type=int, default=32)
    a = ap.parse_args()
    bin_dir = Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip())
    threads = [int(t) for t in str(a.threads).split(",")]
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_vs_llama_cpp import bandwidth
    bw = {t: bandwidth(t, False) for t in threads}
    print("streaming read bandwidth:", {t: round(v, 1) for t, v in bw.items()}, flush=True)
    rows = []
    for name in (["1.1B", "7B"] if a.big else ["1.1B"]):
        d = CACHE / "scale" / f"llama-{name}-random"
        write_checkpoint(name, SHAPES[name], d)
        for ours, ggml in [("int8", "Q8_0"), ("int4-sym", "Q4_0"), ("int4", "Q4_1")]:
            skm = d.parent / f"{name}-{ours}.skm"
            gguf = d.parent / f"{name}-{ggml}.gguf"
            secs, rss, _ = timed([bin_dir / "skconv", "quantize", "--model", d, "--type", ours, "--output", skm, "--force"])
            timed([bin_dir / "skconv", "export", skm, "--output", gguf, "--force"])
            # bytes generation reads per token: every tensor but the input embedding (one row of
            # it); the GGUF holds the same blocks, so the same figure serves both tools
            info = json.loads(subprocess.run([bin_dir / "skconv", "inspect", skm, "--json"], capture_output=True, text=True, check=True).stdout)
            read_bytes = sum(t["raw_bytes"] for t in info["tensors"] if t["name"] != "model.embed_tokens.weight")
            for th in threads:
                sk, ll = [], []
                for _ in range(a.reps):
                    _, sk_rss, out = timed([bin_dir / "skrun", "bench", skm, "--prompt-tokens", a.pp, "--gen-tokens", a.tg, "-t", th, "--json"])
                    j = json.loads(out)
                    sk.append((j["prompt_tokens_per_s"], j["gen_tokens_per_s"], sk_rss))
                    _, ll_rss, out = timed([LLAMA_BIN / "llama-bench", "-m", gguf, "-p", a.pp, "-n", a.tg, "-t", th, "-r", 1, "-o", "json"])
                    lj = json.loads(out)
                    pp = next(x["avg_ts"] for x in lj if x["n_prompt"] > 0)
                    tg = next(x["avg_ts"] for x in lj if x["n_gen"] > 0)
                    ll.append((pp, tg, ll_rss))
                med = lambda xs, i: sorted(x[i] for x in xs)[len(xs) // 2]
                row = {"model": name, "pair": f"{ggml} / {ours}", "threads": th, "quantize_s": round(secs, 1), "quantize_rss_mb": round(rss),
                       "sinkkit_pp": med(sk, 0), "llama_pp": med(ll, 0), "sinkkit_tg": med(sk, 1), "llama_tg": med(ll, 1),
                       "sinkkit_rss_mb": round(med(sk, 2)), "llama_rss_mb": round(med(ll, 2)), "skm_mb": round(skm.stat().st_size / 1e6),
                       "read_mb_per_token": round(read_bytes / 1e6, 1), "read_bw_gb_s": round(bw[th], 1)}
                rows.append(row)
                print(row, flush=True)
    out = ROOT / "docs" / "measurements"
    (out / "scale.json").write_text(json.dumps({"pp": a.pp, "tg": a.tg, "read_bw_gb_s": bw, "rows": rows}, indent=1))
    md = [f"Streaming read bandwidth (scripts/bandwidth.c): " + ", ".join(f"{t} thr {v:.1f} GB/s" for t, v in bw.items())
          + ". Weight GB/s = the bytes generation reads per token (every tensor but the input embedding) × tokens/s.", "",
          f"| model | llama.cpp / SinkKit | threads | prompt {a.pp} tok/s | ratio | generation tok/s | ratio | weight GB/s (% of read bw) | peak RSS MB | quantize s (RSS MB) |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gbs = lambda tg: r["read_mb_per_token"] * tg / 1e3
        pct = lambda tg: 100 * gbs(tg) / r["read_bw_gb_s"]
        md.append(f"| {r['model']} (random weights) | {r['pair']} | {r['threads']} | {r['llama_pp']:.1f} / {r['sinkkit_pp']:.1f} | {r['sinkkit_pp'] / r['llama_pp']:.2f}× | "
                  f"{r['llama_tg']:.2f} / {r['sinkkit_tg']:.2f} | {r['sinkkit_tg'] / r['llama_tg']:.2f}× | "
                  f"{gbs(r['llama_tg']):.1f} ({pct(r['llama_tg']):.0f}%) / {gbs(r['sinkkit_tg']):.1f} ({pct(r['sinkkit_tg']):.0f}%) | "
                  f"{r['llama_rss_mb']} / {r['sinkkit_rss_mb']} | {r['quantize_s']} ({r['quantize_rss_mb']}) |")
    (out / "scale.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
