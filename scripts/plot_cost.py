#!/usr/bin/env python3
"""How cost grows: generation speed and peak RSS against model size and against context length,
drawn from the committed measurements (no benchmark runs here):

- model size: docs/measurements/bench.json (SmolLM2-135M, scripts/bench_vs_llama_cpp.py) and
  scale.json (TinyLlama-1.1B and Llama-2-7B shapes, scripts/bench_scale.py; the 7B as int4-sym
  against llama.cpp's own Q4_0), 2 threads, both tools;
- context: bench-long.json's sweep (scripts/bench_long.py: SinkKit int8 with the full f16 cache,
  H2O 512 and SF-Attn) and its llama.cpp rows at depth (best of flash attention off / on).

    python3 scripts/plot_cost.py        # writes docs/measurements/cost.png

Needs matplotlib.
"""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

M = Path(__file__).resolve().parent.parent / "docs" / "measurements"


def main():
    bench = json.loads((M / "bench.json").read_text())
    scale = json.loads((M / "scale.json").read_text())
    long = json.loads((M / "bench-long.json").read_text())
    fig, ax = plt.subplots(2, 2, figsize=(11, 8))

    # size: 2 threads, int8 / Q8_0 and int4-sym / Q4_0
    for skm, gguf, color in (("int8", "Q8_0", "tab:blue"), ("int4-sym", "Q4_0", "tab:orange")):
        pts = {"sinkkit": [], "llama": []}
        for r in bench["rows"]:
            if r["skm"] == skm and r["threads"] == 2:
                pts["sinkkit"].append((135e6, r["sinkkit"]["tg"], r["sinkkit"]["rss_mb"]))
                pts["llama"].append((135e6, r["llama"]["tg"], r["llama"]["rss_mb"]))
        for r in scale["rows"]:
            if r["pair"] == f"{gguf} / {skm}" and r["threads"] == 2:
                size = {"1.1B": 1.1e9, "7B": 6.7e9}[r["model"]]
                pts["sinkkit"].append((size, r["sinkkit_tg"], r["sinkkit_rss_mb"]))
                pts["llama"].append((size, r["llama_tg"], r["llama_rss_mb"]))
        for side, style in (("sinkkit", "-o"), ("llama", "--s")):
            p = sorted(pts[side])
            if not p:
                continue
            name = f"{'SinkKit ' + skm if side == 'sinkkit' else 'llama.cpp ' + gguf}"
            ax[0][0].plot([x[0] for x in p], [x[1] for x in p], style, color=color, label=name)
            ax[0][1].plot([x[0] for x in p], [x[2] for x in p], style, color=color, label=name)
    for a, yl in ((ax[0][0], "generation tok/s (2 threads)"), (ax[0][1], "peak RSS MB (generation)")):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("parameters")
        a.set_ylabel(yl)
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    ax[0][0].set_title("cost against model size (135M real; 1.1B, 7B random weights)")

    # context: SinkKit int8 sweep, llama.cpp's best at depth
    sw = long.get("sweep", [])
    if sw:
        d = [r["depth"] for r in sw]
        for key, label, style in (("full", "SinkKit full cache (f16)", "-o"), ("h2o", "SinkKit H2O 512", "-^"), ("sf", "SinkKit SF-Attn", "-s")):
            ax[1][0].plot(d, [r[f"{key}_tg"] for r in sw], style, label=label)
            ax[1][1].plot(d, [r[f"{key}_rss_mb"] for r in sw], style, label=label)
    ll = [(r["depth"], max(r["ll_tg"], r["ll_tg_fa"])) for r in long["rows"] if r["pair"].startswith("Q8_0")]
    if ll:
        ax[1][0].plot([x[0] for x in ll], [x[1] for x in ll], "k--x", label="llama.cpp Q8_0 (best of fa off/on)")
    for a, yl in ((ax[1][0], "generation tok/s after the context"), (ax[1][1], "peak RSS MB")):
        a.set_xscale("log", base=2)
        a.set_xlabel("context (tokens)")
        a.set_ylabel(yl)
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    ax[1][0].set_title(f"cost against context (SmolLM2-135M int8, {long.get('threads', 2)} threads)")
    fig.tight_layout()
    fig.savefig(M / "cost.png", dpi=110)
    print(f"wrote {M / 'cost.png'}")


if __name__ == "__main__":
    main()
