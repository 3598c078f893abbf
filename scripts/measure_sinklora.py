#!/usr/bin/env python3
"""SF-Attn and KV-cache measurements on the real SmolLM2 (run by hand; results committed in
docs/measurements/sinklora.json and plotted to docs/measurements/*.png for the README).

  A. perplexity vs KV budget on a long English text (Debian's license texts,
     Fixtures/licenses-long.txt, 52k tokens): full, sf at several G, h2o vs window at 50/20/10%
     (ctx 2048, 3 windows, every scored token through the one-token decode path);
  B. past the trained context: one 16,384-token window (2x SmolLM2's 8,192) streamed with
     window/h2o caches and cache vs absolute positions, against the in-context figure;
  C. KV memory and RSS against generated length, full vs h2o, up to 20,000 tokens;
  D. prompt-processing time, full vs sf, at 1k/2k/4k/8k tokens.

    python3 scripts/measure_sinklora.py MODEL.skm [--quick] [--only A,B,C,D] [--resume]
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "measurements"
TEXT = ROOT / "Fixtures" / "licenses-long.txt"


def skrun(*args):
    bin_dir = os.environ.get("SINKKIT_BIN_DIR") or subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return [str(Path(bin_dir) / "skrun"), *map(str, args)]


RUNS = OUT / "sinklora-runs.jsonl"   # every perplexity run, appended as it completes
RESUME = False


def known(ctx, flags):
    """A completed run with the same window and flags from the runs log (--resume)."""
    if not (RESUME and RUNS.exists()):
        return None
    for line in RUNS.read_text().splitlines():
        r = json.loads(line)
        if r.get("ctx") == ctx and r.get("flags") == flags:
            return r
    return None


def ppl(model, ctx, chunks, extra):
    prev = known(ctx, " ".join(map(str, extra)))
    if prev:
        print(json.dumps({"resumed": True, **{k: prev[k] for k in ("flags", "ppl", "tokens")}}), flush=True)
        return prev
    t = time.time()
    r = subprocess.run(skrun("perplexity", model, "--file", TEXT, "--ctx", ctx, "--chunks", chunks, "--json", *extra), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    d = json.loads(r.stdout)
    d["wall_seconds"] = round(time.time() - t, 1)
    d["flags"] = " ".join(map(str, extra))
    print(json.dumps({k: d[k] for k in ("flags", "ppl", "tokens", "wall_seconds")}), flush=True)
    d["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    with RUNS.open("a") as f:
        f.write(json.dumps(d, sort_keys=True) + "\n")
    return d


def part_a(model, quick):
    ctx, chunks = 2048, (1 if quick else 3)
    rows = [ppl(model, ctx, chunks, [])]
    for g in (256, 512, 1024):
        rows.append(ppl(model, ctx, chunks, ["--attention", "sf", "--sf-group", g]))
    for b in ("50%", "20%", "10%"):
        for kv in ("window", "h2o"):
            rows.append(ppl(model, ctx, chunks, ["--kv", kv, "--kv-budget", b]))
    return rows


def part_b(model, quick):
    """Scored tokens of a 16,384-token window are its second half, positions 8,192..16,383: all past
    SmolLM2's trained context. Compared with the in-context figures (ctx 8192: full cache, and the
    same bounded cache)."""
    ctx, inside = (4096, 2048) if quick else (16384, 8192)
    rows = [dict(ppl(model, inside, 1, []), label=f"in-context: full cache, ctx {inside}")]
    d = ppl(model, inside, 1, ["--kv", "window", "--kv-budget", 1024, "--positions", "cache"])
    rows.append(dict(d, label=f"in-context: window 1024, ctx {inside}"))
    for kv, budget, pos in (("window", 1024, "cache"), ("h2o", 1024, "cache"), ("window", 1024, "absolute"), ("h2o", 4096, "cache")):
        d = ppl(model, ctx, 1, ["--kv", kv, "--kv-budget", budget, "--positions", pos])
        d["label"] = f"{kv} {budget}, {pos} positions, ctx {ctx}"
        rows.append(d)
    return rows


def memory_run(model, gen, extra):
    cmd = skrun("bench", model, "--prompt-tokens", 64, "--gen-tokens", gen, "--report-every", max(1, gen // 40), "--json", *extra)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = []
    for line in p.stderr:
        if line.startswith("{"):
            samples.append(json.loads(line))
    final = json.loads(p.stdout.read())
    p.wait()
    print(json.dumps({"flags": " ".join(map(str, extra)), "gen": gen, "peak_rss_bytes": final["peak_rss_bytes"]}), flush=True)
    return {"flags": " ".join(map(str, extra)), "samples": samples, "final": final}


def part_c(model, quick):
    return [memory_run(model, 2000 if quick else 20000, []),
            memory_run(model, 2000 if quick else 20000, ["--kv", "h2o", "--kv-budget", 512, "--positions", "absolute"])]


def part_d(model, quick):
    rows = []
    for n in ((1024, 2048) if quick else (1024, 2048, 4096, 8192)):
        for extra in ([], ["--attention", "sf", "--sf-group", 512]):
            r = subprocess.run(skrun("bench", model, "--prompt-tokens", n, "--gen-tokens", 0, "--json", *extra), capture_output=True, text=True)
            d = json.loads(r.stdout)
            d["flags"] = " ".join(map(str, extra)) or "full"
            d["prompt_seconds"] = n / d["prompt_tokens_per_s"]
            print(json.dumps({"n": n, "flags": d["flags"], "prompt_seconds": round(d["prompt_seconds"], 2)}), flush=True)
            rows.append(d)
    return rows


def plot(res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if "A" in res:
        rows = res["A"]
        full = rows[0]["ppl"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for kv, style in (("window", "o-"), ("h2o", "s-")):
            pts = [(int(r["flags"].split()[-1].rstrip("%")), r["ppl"]) for r in rows if f"--kv {kv}" in r["flags"]]
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=kv)
        ax.axhline(full, color="gray", ls="--", label="full cache")
        ax.set_xlabel("KV budget (% of the 2048-token window)")
        ax.set_ylabel("perplexity")
        ax.set_title("SmolLM2-135M int8: perplexity vs KV budget")
        ax.legend()
        fig.tight_layout()
        fig.savefig(OUT / "ppl_vs_budget.png", dpi=120)
    if "C" in res:
        fig, ax = plt.subplots(figsize=(6, 4))
        for run, label in zip(res["C"], ("full cache", "h2o, budget 512")):
            xs = [s["generated"] for s in run["samples"]]
            ax.plot(xs, [s["kv_used_bytes"] / 1e6 for s in run["samples"]], label=f"KV in use, {label}")
            ax.plot(xs, [s["rss_bytes"] / 1e6 for s in run["samples"]], ls="--", label=f"RSS, {label}")
        ax.set_xlabel("generated tokens")
        ax.set_ylabel("MB")
        ax.set_title("Memory vs generated length (SmolLM2 int8)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(OUT / "memory_vs_length.png", dpi=120)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="A,B,C,D")
    ap.add_argument("--resume", action="store_true", help="reuse perplexity runs already in docs/measurements/sinklora-runs.jsonl")
    a = ap.parse_args()
    global RESUME
    RESUME = a.resume
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "sinklora.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    for part in a.only.split(","):
        res[part] = {"A": part_a, "B": part_b, "C": part_c, "D": part_d}[part](a.model, a.quick)
        path.write_text(json.dumps(res, indent=1) + "\n")
    plot(res)


if __name__ == "__main__":
    main()
