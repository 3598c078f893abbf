#!/usr/bin/env python3
"""KV experiments in numpy on the HF checkpoint (scripts/numpy_llama.py's forward pass, its hooks
opening the attention of every layer to a rule), perplexity of the second half of the first `--ctx`
tokens of Fixtures/text/heldout.txt. Explorations behind docs/MEASUREMENTS.md's KV section; not
run in CI (needs the checkpoint from scripts/fetch-real-model.sh).

    python3 scripts/kv_numpy_experiments.py keys [--ctx 2048]
    python3 scripts/kv_numpy_experiments.py oracle [--ctx 2048]

`keys`: how to quantize keys to 4 bits, values int4 per token throughout (Walsh-Hadamard rotated,
blocks of 32: `--kv-dtype int4`'s rule), against f32 keys: per token (int4's rule); per channel
over groups of 32 tokens (KIVI: f16 scale (max-min)/15 and minimum per channel, kivi4's rule,
every group complete); per token after subtracting a per-channel centre from tokens 1-63 (a fixed
offset cancels in the softmax), and after also dividing by a per-channel scale from them.

`oracle`: what a bounded cache could keep at best. Each query keeps only the B keys its own KV head
group attends to most (the weights of the group's query heads summed), renormalised: a set chosen
per query with its own attention, which no eviction policy can know in advance (a policy keeps
one set for all the queries after it). The gap between this and the policies is the prediction
of what later queries will need, not the number of slots.
"""
import argparse, sys
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from numpy_llama import NumpyLlama  # noqa: E402

CKPT = Path.home() / ".cache" / "sinkkit" / "smollm2-135m-instruct"


def hadamard(n):
    h = np.array([[1.0]])
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return (h / np.sqrt(n)).astype(np.float32)


def f16(x):
    return x.astype(np.float16).astype(np.float32)


def per_token(x, hd):
    """Blocks of 32 along the head, f16 scale max|x|/7, codes in [-8, 7]."""
    s = x.reshape(*x.shape[:-1], hd // 32, 32)
    d = f16(np.abs(s).max(-1, keepdims=True) / 7)
    d[d == 0] = 1
    return (np.clip(np.round(s / d), -8, 7) * d).reshape(x.shape)


def per_channel(k, g=32):
    """KIVI: per channel over groups of g tokens, f16 scale (max-min)/15 and f16 minimum."""
    out = k.copy()
    for t0 in range(0, k.shape[1] - k.shape[1] % g, g):
        s = k[:, t0:t0 + g]
        lo, hi = s.min(1, keepdims=True), s.max(1, keepdims=True)
        d, m = f16((hi - lo) / 15), f16(lo)
        d[d == 0] = 1
        out[:, t0:t0 + g] = np.clip(np.round((s - m) / d), 0, 15) * d + m
    return out


def quantize_keys(k, rule, H):
    if rule == "f32":
        return k
    if rule == "per-channel":
        return per_channel(k)
    early = k[:, 1:64]
    centre = early.mean(1, keepdims=True) if rule.startswith("centred") else 0
    scale = np.abs(early - centre).max(1, keepdims=True) + 1e-6 if rule == "centred+scaled" else 1
    y = (k - centre) / scale
    return (per_token(y @ H, k.shape[-1]) @ H.T) * scale + centre


def perplexity(m, toks, keys=None, values=None, keep=None):
    """keys(k), values(v): (kv heads, T, hd) → rounded copies; keep(weights, group) → the kept weights."""
    kv = (lambda k, v: (keys(k) if keys else k, values(v) if values else v)) if keys or values else None
    lg = m.forward(toks, kv=kv, weights=keep)
    T = len(toks)
    lg = lg - lg.max(-1, keepdims=True)
    lp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
    nll = -lp[np.arange(T - 1), np.asarray(toks[1:])]
    return float(np.exp(nll[T // 2:].mean()))


def top_per_query(budget):
    def keep(s, g):
        heads, T, _ = s.shape
        sg = s.reshape(heads // g, g, T, T).sum(1)   # the KV head group's weights
        thr = -np.partition(-sg, budget - 1, axis=-1)[..., budget - 1:budget]
        kept = np.where(np.repeat(sg >= thr, g, 0), s, 0)
        return kept / kept.sum(-1, keepdims=True)
    return keep


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("experiment", choices=["keys", "oracle"])
    ap.add_argument("--ctx", type=int, default=2048)
    a = ap.parse_args()
    from tokenizers import Tokenizer
    m = NumpyLlama(CKPT)
    ids = Tokenizer.from_file(str(CKPT / "tokenizer.json")).encode((ROOT / "Fixtures" / "text" / "heldout.txt").read_text()).ids
    toks = [1] + ids[:a.ctx - 1]
    if a.experiment == "keys":
        H = hadamard(m.head_dim)
        v4 = lambda v: per_token(v @ H, m.head_dim) @ H.T   # noqa: E731
        base = None
        for rule in ["f32", "per-token", "per-channel", "centred", "centred+scaled"]:
            ppl = perplexity(m, toks, keys=lambda k: quantize_keys(k, rule, H), values=v4)
            base = base or ppl
            print(f"keys {rule:15s} (values int4): perplexity {ppl:.4f}  {100 * (ppl / base - 1):+.2f}% vs f32 keys", flush=True)
    else:
        base = perplexity(m, toks)
        print(f"full attention: perplexity {base:.4f}", flush=True)
        for pct in (20, 10, 5):
            b = a.ctx * pct // 100
            ppl = perplexity(m, toks, keep=top_per_query(b))
            print(f"each query's own top {b} keys ({pct}% of {a.ctx}): perplexity {ppl:.4f}  {100 * (ppl / base - 1):+.2f}%", flush=True)


if __name__ == "__main__":
    main()
