#!/usr/bin/env python3
"""Long contexts side by side with llama.cpp: prompt processing of 4,096 tokens and generation at
depth 4,096 and 16,384, on SmolLM2-135M (the GGUFs and SKMs bench_vs_llama_cpp.py makes).

llama.cpp runs `llama-bench` with flash attention off and on (`-fa`), and its best setting is the
one compared; generation at depth uses `-d` (the depth filled first, untimed, then `-n` tokens
timed). SinkKit runs `skrun bench --prompt-tokens D --gen-tokens N` with the full cache in f16
(llama.cpp's default KV type), and, as extra rows, what only it has: SF-Attn prompts and an H2O
cache of 512 slots, plus generation with the full cache in int8 (its ratio to the f16 cache's).
OpenBLAS (SinkKit's prompt attention) detects its kernels itself: see blas_core in
bench_vs_llama_cpp.py. Interleaved, medians.

    python3 scripts/bench_long.py [--threads 2] [--reps 2] [--deep-reps 1] [--sweep 512,…,16384]

Also sweeps SinkKit's own cost against context length (int8: full f16 cache, H2O 512, SF-Attn).

Writes docs/measurements/bench-long.{json,md}. Not run in CI (minutes).
"""
import argparse, json, os, statistics, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_vs_llama_cpp import CACHE, GGUF, OUT, blas_core, ensure_ggufs, ensure_llama, ensure_skm, log, run, sk_bin  # noqa: E402

PAIRS = [("Q8_0", "int8"), ("Q4_0", "int4-sym")]


def llama(tools, gguf, threads, fa, pp=0, tg=0, depth=0):
    cmd = [tools["llama-bench"], "-m", gguf, "-t", threads, "-r", 1, "-o", "json", "--no-warmup", "-fa", "on" if fa else "off",
           "-p", pp, "-n", tg, "-d", depth]
    out, _, _ = run(cmd)
    return json.loads(out)[0]["avg_ts"]


def sinkkit(skm, threads, pp, tg, extra=(), kv="f16"):
    out, _, rss = run([sk_bin("skrun"), "bench", skm, "--threads", threads, "--prompt-tokens", pp, "--gen-tokens", tg,
                       "--kv-dtype", kv, "--json", *extra])
    d = json.loads(out)
    return d["prompt_tokens_per_s"], d["gen_tokens_per_s"], rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--deep-reps", type=int, default=1, help="repetitions at depth 16,384")
    ap.add_argument("--tg", type=int, default=32)
    ap.add_argument("--depths", default="4096,16384", help="the first gets prompt rows and every pair; the others int8 only")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--sweep", default="512,1024,2048,4096,8192,16384", help="SinkKit-only context sweep (int8); empty: none")
    a = ap.parse_args()
    blas_core(avx2_only=False)
    tools = ensure_llama(build=True)
    ensure_ggufs(tools, [p[0] for p in PAIRS])
    skm_dir = CACHE / "bench"
    rows = []
    for gt, st in PAIRS:
        gguf = GGUF / f"smollm2-135m-{gt.lower()}.gguf"
        skm = ensure_skm(st, skm_dir, [])
        depths = [int(d) for d in a.depths.split(",")]
        for depth, reps in [(depths[0], a.reps)] + [(d, a.deep_reps) for d in depths[1:]]:
            first = depth == depths[0]
            if not first and st != "int8":
                continue   # minutes per run: one pair is enough to show the trend
            m = {k: [] for k in ("ll_pp_fa", "ll_pp", "ll_tg_fa", "ll_tg", "sk_pp", "sk_tg", "sk_pp_sf", "sk_tg_h2o", "sk_tg_kv8")}
            for rep in range(reps):
                log(f"{gt} / {st}, depth {depth}, rep {rep + 1}/{reps}")
                if first:
                    m["ll_pp_fa"].append(llama(tools, gguf, a.threads, True, pp=depth))
                    m["ll_pp"].append(llama(tools, gguf, a.threads, False, pp=depth))
                m["ll_tg_fa"].append(llama(tools, gguf, a.threads, True, tg=a.tg, depth=depth))
                m["ll_tg"].append(llama(tools, gguf, a.threads, False, tg=a.tg, depth=depth))
                pp, tg, _ = sinkkit(skm, a.threads, depth, a.tg)
                m["sk_pp"].append(pp)
                m["sk_tg"].append(tg)
                if first:
                    pp_sf, _, _ = sinkkit(skm, a.threads, depth, 1, ["--attention", "sf"])
                    m["sk_pp_sf"].append(pp_sf)
                    _, tg_kv8, _ = sinkkit(skm, a.threads, depth, a.tg, kv="int8")   # the int8 KV cache against f16
                    m["sk_tg_kv8"].append(tg_kv8)
                _, tg_h2o, _ = sinkkit(skm, a.threads, depth, a.tg, ["--kv", "h2o", "--kv-budget", "512"])
                m["sk_tg_h2o"].append(tg_h2o)
            med = {k: (statistics.median(v) if v else None) for k, v in m.items()}
            row = {"pair": f"{gt} / {st}", "depth": depth, "threads": a.threads, "reps": reps, **med}
            rows.append(row)
            log(json.dumps(row))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    # How SinkKit's cost grows with the context (int8): generation speed and peak RSS after D
    # tokens with the full f16 cache, an H2O cache of 512 slots, and SF-Attn (segment cache).
    sweep = []
    skm8 = ensure_skm("int8", skm_dir, [])
    for depth in [int(d) for d in a.sweep.split(",")] if a.sweep else []:
        log(f"sweep: depth {depth}")
        pp, tg, rss = sinkkit(skm8, a.threads, depth, a.tg)
        _, tg_h2o, rss_h2o = sinkkit(skm8, a.threads, depth, a.tg, ["--kv", "h2o", "--kv-budget", "512"])
        pp_sf, tg_sf, rss_sf = sinkkit(skm8, a.threads, depth, a.tg, ["--attention", "sf"])
        sweep.append({"depth": depth, "full_pp": pp, "full_tg": tg, "full_rss_mb": rss / 1e6, "h2o_tg": tg_h2o, "h2o_rss_mb": rss_h2o / 1e6,
                      "sf_pp": pp_sf, "sf_tg": tg_sf, "sf_rss_mb": rss_sf / 1e6})
        log(json.dumps(sweep[-1]))
    (out / "bench-long.json").write_text(json.dumps({"tg": a.tg, "threads": a.threads, "rows": rows, "sweep": sweep}, indent=1) + "\n")
    md = [f"SmolLM2-135M, {a.threads} threads, medians; llama.cpp's best of flash attention off / on; SinkKit full cache in f16 "
          f"(extra: SF-Attn prompt, H2O 512 generation, the full cache in int8). Generation: {a.tg} tokens after the depth.", "",
          "| pair | depth | prompt tok/s llama.cpp (fa off / on) | SinkKit full | ratio to best | SinkKit SF-Attn | generation tok/s llama.cpp (fa off / on) | SinkKit full | ratio to best | SinkKit H2O 512 | SinkKit full, int8 KV (vs f16 KV) |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    f = lambda v: "—" if v is None else f"{v:.1f}"
    for r in rows:
        pp_best = max(r["ll_pp"], r["ll_pp_fa"]) if r["ll_pp"] else None
        tg_best = max(r["ll_tg"], r["ll_tg_fa"])
        pp_ratio = f"{r['sk_pp'] / pp_best:.2f}×" if pp_best else "—"
        md.append(f"| {r['pair']} | {r['depth']:,} | {f(r['ll_pp'])} / {f(r['ll_pp_fa'])} | "
                  f"{f(r['sk_pp']) if pp_best else '—'} | {pp_ratio} | {f(r['sk_pp_sf'])} | "
                  f"{f(r['ll_tg'])} / {f(r['ll_tg_fa'])} | {f(r['sk_tg'])} | {r['sk_tg'] / tg_best:.2f}× | {f(r['sk_tg_h2o'])} | "
                  + (f"{f(r['sk_tg_kv8'])} ({r['sk_tg_kv8'] / r['sk_tg']:.2f}×) |" if r["sk_tg_kv8"] else "— |"))
    if sweep:
        md += ["", f"SinkKit int8, {a.threads} threads: cost against context length (prompt tok/s, generation tok/s after the prompt, peak RSS MB).", "",
               "| context | full f16: prompt | generation | RSS | H2O 512: generation | RSS | SF-Attn: prompt | generation | RSS |",
               "|---|---|---|---|---|---|---|---|---|"]
        for r in sweep:
            md.append(f"| {r['depth']:,} | {r['full_pp']:.0f} | {r['full_tg']:.1f} | {r['full_rss_mb']:.0f} | {r['h2o_tg']:.1f} | {r['h2o_rss_mb']:.0f} | "
                      f"{r['sf_pp']:.0f} | {r['sf_tg']:.1f} | {r['sf_rss_mb']:.0f} |")
    (out / "bench-long.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
