#!/usr/bin/env python3
"""Passkey retrieval: what a bounded KV cache loses when one fact in a long document matters.

A random 5-digit pass key is hidden at a given depth of a long filler text (the passkey test of
Mohtashami & Jaggi, "Landmark Attention", 2023); the prompt ends by asking for it, and `skrun
generate` answers greedily. A trial succeeds when the key appears in the first 12 generated
tokens. Every KV configuration sees the same prompts.

    python3 scripts/passkey.py [--model FILE.skm] [--tokens 2048] [--trials 2] [--budget 20]
    python3 scripts/passkey.py --budgets 10,35,50 [--tokens 2048] [--trials 2]

Writes docs/measurements/passkey.{json,md}: accuracy by depth for each configuration. Bounded
caches run with the default 256-token prefill chunks (evicting while the prompt streams in) and,
for H2O, TOVA, SnapKV, PyramidKV and Ada-KV, with the whole prompt in one chunk (compressed once,
after the question: SnapKV's setting). With `--budgets`, instead: accuracy by depth and budget
for window, H2O and VATP (streaming) and TOVA and SnapKV (prompt whole) at each listed budget, in
docs/measurements/passkey-budgets.{json,md}.
"""
import argparse, json, random, re, subprocess, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "


def bin_dir():
    return Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip())


def prompt(key, depth, words):
    n = max(1, words // len(FILLER.split()))
    before = int(n * depth)
    return ("There is an important piece of information hidden inside a lot of irrelevant text. Find it and "
            "memorize it; you will be asked about it.\n" + FILLER * before +
            f"The pass key is {key}. Remember it. {key} is the pass key. " + FILLER * (n - before) +
            "\nWhat is the pass key? The pass key is")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=Path.home() / ".cache" / "sinkkit" / "passkey-int8.skm")
    ap.add_argument("--tokens", type=int, default=2048, help="about this many prompt tokens")
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--budget", type=int, default=20, help="percent of the prompt for bounded caches")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "measurements")
    ap.add_argument("--only", help="run only the configurations whose name contains this text; the others' results are kept "
                                   "from the existing passkey.json (same tokens, trials and budget)")
    ap.add_argument("--budgets", help="comma-separated percentages: the budget sweep (passkey-budgets.{json,md})")
    a = ap.parse_args()
    b = bin_dir()
    if not a.model.exists():
        subprocess.run([b / "skconv", "quantize", "--model", Path.home() / ".cache" / "sinkkit" / "smollm2-135m-instruct",
                        "--type", "int8", "--output", a.model], check=True, capture_output=True)
    budget = a.tokens * a.budget // 100
    configs = {
        "full f32 KV": [],
        "full int8 KV": ["--kv-dtype", "int8"],
        "full k8v4 KV": ["--kv-dtype", "k8v4"],
        "full kivi4 KV": ["--kv-dtype", "kivi4"],
        f"window {a.budget}%": ["--kv", "window", "--kv-budget", str(budget)],
        f"h2o {a.budget}%": ["--kv", "h2o", "--kv-budget", str(budget)],
        f"vatp {a.budget}%": ["--kv", "vatp", "--kv-budget", str(budget)],
        f"tova {a.budget}%": ["--kv", "tova", "--kv-budget", str(budget)],
        f"h2o {a.budget}% int8 KV": ["--kv", "h2o", "--kv-budget", str(budget), "--kv-dtype", "int8"],
        # The whole prompt prefilled in one chunk, then compressed to the budget: the question's
        # attention (TOVA: the last query's; SnapKV: the last 32 queries') decides what stays.
        f"h2o {a.budget}%, prompt whole": ["--kv", "h2o", "--kv-budget", str(budget), "--prefill-chunk", str(a.tokens + 256)],
        f"vatp {a.budget}%, prompt whole": ["--kv", "vatp", "--kv-budget", str(budget), "--prefill-chunk", str(a.tokens + 256)],
        f"tova {a.budget}%, prompt whole": ["--kv", "tova", "--kv-budget", str(budget), "--prefill-chunk", str(a.tokens + 256)],
        f"snapkv {a.budget}%": ["--kv", "snapkv", "--kv-budget", str(budget)],
        f"snapkv {a.budget}%, prompt whole": ["--kv", "snapkv", "--kv-budget", str(budget), "--prefill-chunk", str(a.tokens + 256)],
        f"pyramidkv {a.budget}%, prompt whole": ["--kv", "pyramidkv", "--kv-budget", str(budget), "--prefill-chunk", str(a.tokens + 256)],
        f"adakv {a.budget}%, prompt whole": ["--kv", "adakv", "--kv-budget", str(budget), "--prefill-chunk", str(a.tokens + 256)],
        f"snapkv {a.budget}%, prompt whole, int4 KV": ["--kv", "snapkv", "--kv-budget", str(budget), "--prefill-chunk", str(a.tokens + 256), "--kv-dtype", "int4"],
        f"snapkv 30%, prompt whole, k8v4 KV": ["--kv", "snapkv", "--kv-budget", str(a.tokens * 30 // 100), "--prefill-chunk", str(a.tokens + 256), "--kv-dtype", "k8v4"],
        f"h2o 34%, prompt whole, kivi4 KV": ["--kv", "h2o", "--kv-budget", str(a.tokens * 34 // 100), "--prefill-chunk", str(a.tokens + 256), "--kv-dtype", "kivi4"],
        f"vatp 34%, prompt whole, kivi4 KV": ["--kv", "vatp", "--kv-budget", str(a.tokens * 34 // 100), "--prefill-chunk", str(a.tokens + 256), "--kv-dtype", "kivi4"],
        f"snapkv 34%, prompt whole, kivi4 KV": ["--kv", "snapkv", "--kv-budget", str(a.tokens * 34 // 100), "--prefill-chunk", str(a.tokens + 256), "--kv-dtype", "kivi4"],
        f"snapkv 5%, prompt whole": ["--kv", "snapkv", "--kv-budget", str(a.tokens * 5 // 100), "--prefill-chunk", str(a.tokens + 256)],
    }
    stem = "passkey"
    if a.budgets:
        stem, whole = "passkey-budgets", ["--prefill-chunk", str(a.tokens + 256)]
        configs = {}
        for pct in map(int, a.budgets.split(",")):
            n = str(a.tokens * pct // 100)
            configs.update({f"window {pct}%": ["--kv", "window", "--kv-budget", n],
                            f"h2o {pct}%": ["--kv", "h2o", "--kv-budget", n],
                            f"vatp {pct}%": ["--kv", "vatp", "--kv-budget", n],
                            f"tova {pct}%, prompt whole": ["--kv", "tova", "--kv-budget", n] + whole,
                            f"snapkv {pct}%, prompt whole": ["--kv", "snapkv", "--kv-budget", n] + whole})
    depths = [0.1, 0.3, 0.5, 0.7, 0.9]
    rng = random.Random(20261130)
    words = int(a.tokens * 0.72)
    cases = [(d, rng.randrange(10000, 99999)) for d in depths for _ in range(a.trials)]
    results = {c: {str(d): 0 for d in depths} for c in configs}
    kept = {}
    if a.only:
        assert not a.budgets, "--only applies to the main table"
        prev = json.loads((a.out / "passkey.json").read_text())
        assert (prev["tokens"], prev["trials"], prev["budget_percent"]) == (a.tokens, a.trials, a.budget), "--only needs the same settings"
        kept = {c: r for c, r in prev["results"].items() if c in configs and a.only not in c}
        configs = {c: f for c, f in configs.items() if c not in kept}
        results.update(kept)
    with tempfile.TemporaryDirectory() as tmp:
        for i, (d, key) in enumerate(cases):
            f = Path(tmp) / f"p{i}.txt"
            f.write_text(prompt(key, d, words))
            for name, flags in configs.items():
                r = subprocess.run([b / "skrun", "generate", str(a.model), "-f", str(f), "-n", "12", "--temp", "0",
                                    "-c", str(a.tokens + 256)] + flags, capture_output=True, text=True)
                ok = r.returncode == 0 and str(key) in re.sub(r"\s", "", r.stdout)
                results[name][str(d)] += int(ok)
                print(f"depth {d:.1f} key {key} {name:22s} {'ok' if ok else 'MISS'} {r.stdout.strip()[:40]!r}", flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{stem}.json").write_text(json.dumps({"tokens": a.tokens, "trials": a.trials,
                                                    "budget_percent": a.budgets or a.budget, "results": results}, indent=1))
    md = ["| KV configuration | " + " | ".join(f"depth {d:.0%}" for d in depths) + " | all |", "|---|" + "---|" * (len(depths) + 1)]
    for name, r in results.items():
        md.append(f"| {name} | " + " | ".join(f"{r[str(d)]}/{a.trials}" for d in depths) + f" | {sum(r.values())}/{len(cases)} |")
    (a.out / f"{stem}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
