#!/usr/bin/env python3
"""GGUF out, judged by llama.cpp itself (llama-cpp-python 0.3.36's build, as the benchmarks use):
for the real SmolLM2 (weights on a Q4_1 grid) and its off-grid twin (scripts/make_offgrid_twin.py),
SinkKit writes an F32 GGUF (`skconv quantize --type f32 --output X.gguf`); llama-quantize makes
Q8_0, Q4_0, Q4_1 and Q5_0 from it (token embedding and output head in Q8_0, as SinkKit's recipe
keeps them), and SinkKit makes the same types straight from the Hugging Face checkpoint
(`skconv quantize --type int8|int4-sym|int4|int5-sym --output X.gguf`). Reported: how many of the
layer matrices are bit-identical to llama.cpp's, and llama-perplexity of both files (GPL-3 text,
ctx 512), which must load in llama.cpp and be equal where the tensors are.

    python3 scripts/gguf_vs_llama_cpp.py      # writes docs/measurements/gguf-export.{json,md}
"""
import json, os, subprocess, sys
from pathlib import Path

import numpy as np
import gguf

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SINKKIT_CACHE", Path.home() / ".cache" / "sinkkit"))
LLAMA_BIN = CACHE / "llama.cpp" / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp" / "build" / "bin"
TEXT = ROOT / "Fixtures" / "gpl-3.0.txt"
OUT = ROOT / "docs" / "measurements"
WORK = CACHE / "gguf-export"
MODELS = {"real (Q4_1 grid)": CACHE / "smollm2-135m-instruct", "off-grid twin": CACHE / "smollm2-offgrid"}
TYPES = [("Q8_0", "int8"), ("Q4_0", "int4-sym"), ("Q4_1", "int4"), ("Q5_0", "int5-sym")]


def bin_dir():
    return Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip())


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{r.stderr[-2000:]}")
    return r.stdout + r.stderr


def ppl(path):
    out = run([LLAMA_BIN / "llama-perplexity", "-m", path, "-f", TEXT, "-c", 512, "-t", os.cpu_count()])
    line = [l for l in out.splitlines() if "Final estimate" in l][-1]
    return float(line.split("PPL = ")[1].split()[0])


def identical_matrices(a, b):
    ra, rb = gguf.GGUFReader(str(a)), gguf.GGUFReader(str(b))
    tb = {t.name: t for t in rb.tensors}
    same = total = 0
    for t in ra.tensors:
        if not t.name.startswith("blk.") or len(t.shape) != 2:
            continue
        total += 1
        o = tb[t.name]
        same += int(t.tensor_type == o.tensor_type and np.array_equal(np.asarray(t.data), np.asarray(o.data)))
    return same, total


def main():
    skconv = bin_dir() / "skconv"
    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, model in MODELS.items():
        if not (model / "model.safetensors").exists():
            print(f"skipping {label}: {model} missing"); continue
        tag = "real" if "real" in label else "twin"
        f32 = WORK / f"{tag}-f32.gguf"
        run([skconv, "quantize", "--model", model, "--type", "f32", "--output", f32, "--force"])
        base_ppl = ppl(f32)
        rows.append({"model": label, "type": "F32 / f32", "sinkkit_ppl": base_ppl, "llama_ppl": None,
                     "identical": None, "sinkkit_mb": f32.stat().st_size / 1e6, "llama_mb": None})
        for ggml, ours in TYPES:
            ref = WORK / f"{tag}-llama-{ggml}.gguf"
            mine = WORK / f"{tag}-sinkkit-{ours}.gguf"
            run([LLAMA_BIN / "llama-quantize", "--token-embedding-type", "q8_0", "--output-tensor-type", "q8_0", f32, ref, ggml])
            run([skconv, "quantize", "--model", model, "--type", ours, "--output", mine, "--force"])
            same, total = identical_matrices(mine, ref)
            row = {"model": label, "type": f"{ggml} / {ours}", "sinkkit_ppl": ppl(mine), "llama_ppl": ppl(ref),
                   "identical": f"{same}/{total}", "sinkkit_mb": mine.stat().st_size / 1e6, "llama_mb": ref.stat().st_size / 1e6}
            rows.append(row)
            print(row, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "gguf-export.json").write_text(json.dumps({"text": TEXT.name, "ctx": 512, "rows": rows}, indent=1))
    md = ["| model | type (llama.cpp / SinkKit) | layer matrices bit-identical | llama-perplexity of SinkKit's GGUF | of llama-quantize's | MB (SinkKit / llama.cpp) |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        lp = f"{r['llama_ppl']:.4f}" if r["llama_ppl"] else "–"
        lm = f"{r['sinkkit_mb']:.1f} / {r['llama_mb']:.1f}" if r["llama_mb"] else f"{r['sinkkit_mb']:.1f}"
        md.append(f"| {r['model']} | {r['type']} | {r['identical'] or '–'} | {r['sinkkit_ppl']:.4f} | {lp} | {lm} |")
    (OUT / "gguf-export.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
