#!/usr/bin/env python3
"""KV experiments in numpy on the HF checkpoint (scripts/numpy_llama.py's forward pass, its hooks
opening the attention of every layer to a rule), perplexity of the second half of the first `--ctx`
tokens of Fixtures/text/heldout.txt. Explorations behind docs/MEASUREMENTS.md's KV section; not
run in CI (needs the checkpoint from scripts/fetch-real-model.sh).

    python3 scripts/kv_numpy_experiments.py keys [--ctx 2048]
    python3 scripts/kv_numpy_experiments.py oracle [--ctx 2048]
    python3 scripts/kv_numpy_experiments.py stream [--ctx 2048] [--chunks 3] [--pct 20] [RULE ...]
    python3 scripts/kv_numpy_experiments.py spread [--ctx 2048] [--pct 20]

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

`stream`: H2O-layout caches (sinks 4, recent (B − 4)/2, the rest ranked) simulated on the decode
path, one token at a time (attend, then evict down to B), per KV head, on the first `--chunks`
windows of `--ctx` tokens of `--text` (default the held-out English; skrun perplexity's windows,
its prefill chunks aside), ranking by:
`h2o` accumulated attention; `h2o-v` times the value's l1 norm (VATP); `mean` accumulated attention
divided by the queries that have seen the slot (ZipCache's normalized score); `vatp` mean times
the value's l1 norm (`--kv vatp`); `decayG` accumulated attention decayed by G per step (A2SF);
`max` the largest weight received; `scissor` the share of queries that gave the slot more than
1/n of their weight (Scissorhands); `window` keeps the newest only. `RULE+merge` merges each
evicted slot into the kept non-sink slot with the most similar key (cosine; keys and values
averaged by count, log(count) added to the slot's logit: D2O / CaM's idea); `RULE@L=N` gives layer
L a budget of N slots, the other layers sharing what is left of the same total; `RULE@only=L`
bounds layer L alone (the others keep everything).

`spread`: per layer, on the first window, the share of the later half's attention that lands
beyond the recent window of a `--pct` budget (H2O's recent (B − 4)/2, sinks aside), and the
per-layer budgets in proportion to 0.1 + that share (the layers whose attention is spread get
more: PyramidKV's and CAKE's idea), printed as a `stream` rule.
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


def perplexity(m, toks, keys=None, values=None, keep=None, attend=None):
    """keys(k), values(v): (kv heads, T, hd) → rounded copies; keep(weights, group) → the kept weights."""
    kv = (lambda k, v: (keys(k) if keys else k, values(v) if values else v)) if keys or values else None
    lg = m.forward(toks, kv=kv, weights=keep, attend=attend)
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


def rank(rule, cand, t, pos, acc, V, top, above):
    """The score `stream`'s rule ranks the candidate slots by (the lowest goes)."""
    age = t + 1 - pos[cand]
    if rule == "window":
        return pos[cand].astype(np.float64)
    if rule == "h2o-v":
        return acc[cand] * np.abs(V[cand]).sum(1)
    if rule == "mean":
        return acc[cand] / age
    if rule == "vatp":
        return acc[cand] / age * np.abs(V[cand]).sum(1)
    if rule == "max":
        return top[cand]
    if rule == "scissor":
        return above[cand] / age
    return acc[cand]   # h2o, decayG (the decayed sum)


def stream(rule, budget, sinks=4):
    """attend(q, k, v, group, layer) for numpy_llama.forward: the cache of each KV head held to `budget`."""
    merge = rule.endswith("+merge")
    rule = rule.removesuffix("+merge")
    decay = float(rule[5:]) if rule.startswith("decay") else 1.0
    if not rule.startswith("decay") and rule not in ("window", "h2o", "h2o-v", "mean", "vatp", "max", "scissor"):
        raise SystemExit(f"unknown rule {rule}")

    def attend(q, k, v, group, layer):
        heads, T, d = q.shape
        out = np.zeros_like(q)
        recent = budget - sinks if rule == "window" else (budget - sinks) // 2
        for h in range(k.shape[0]):
            qs = q[h * group:(h + 1) * group] / np.sqrt(d)
            K, V = np.zeros((budget + 1, d), np.float32), np.zeros((budget + 1, d), np.float32)
            bias, acc = np.zeros(budget + 1, np.float32), np.zeros(budget + 1, np.float64)
            top, above = np.zeros(budget + 1, np.float64), np.zeros(budget + 1, np.float64)
            pos, n = np.zeros(budget + 1, np.int64), 0
            for t in range(T):
                K[n], V[n], bias[n], acc[n], top[n], above[n], pos[n] = k[h, t], v[h, t], 0, 0, 0, 0, t
                n += 1
                w = qs[:, t] @ K[:n].T + bias[:n]
                w = np.exp(w - w.max(-1, keepdims=True))
                w /= w.sum(-1, keepdims=True)
                out[h * group:(h + 1) * group, t] = w @ V[:n]
                acc[:n] = acc[:n] * decay + w.sum(0)
                top[:n] = np.maximum(top[:n], w.sum(0))
                above[:n] += (w > 1.0 / n).sum(0)
                if n <= budget:
                    continue
                cand = np.nonzero((pos[:n] >= sinks) & (np.arange(n) < n - recent))[0]
                j = cand[np.lexsort((-pos[cand], rank(rule, cand, t, pos, acc, V, top, above)))[0]]   # lowest score, then the higher position
                if merge:
                    o = np.nonzero((pos[:n] >= sinks) & (np.arange(n) != j))[0]
                    cos = (K[o] @ K[j]) / (np.linalg.norm(K[o], axis=1) * np.linalg.norm(K[j]) + 1e-9)
                    i = o[np.argmax(cos)]
                    ni, nj = np.exp(bias[i]), np.exp(bias[j])
                    K[i], V[i] = (ni * K[i] + nj * K[j]) / (ni + nj), (ni * V[i] + nj * V[j]) / (ni + nj)
                    bias[i], acc[i] = np.log(ni + nj), acc[i] + acc[j]
                keep = np.arange(n) != j
                for arr in (K, V, bias, acc, top, above, pos):
                    arr[:n - 1] = arr[:n][keep]
                n -= 1
        return out
    return attend


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("experiment", choices=["keys", "oracle", "stream", "spread"])
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--chunks", type=int, default=3)
    ap.add_argument("--pct", type=int, default=20)
    ap.add_argument("--text", type=Path, default=ROOT / "Fixtures" / "text" / "heldout.txt")
    ap.add_argument("rules", nargs="*", default=["window", "h2o", "h2o-v", "mean", "vatp"])
    a = ap.parse_intermixed_args()
    from tokenizers import Tokenizer
    m = NumpyLlama(CKPT)
    ids = Tokenizer.from_file(str(CKPT / "tokenizer.json")).encode(a.text.read_text()).ids
    toks = [1] + ids[:a.ctx - 1]
    if a.experiment == "keys":
        H = hadamard(m.head_dim)
        v4 = lambda v: per_token(v @ H, m.head_dim) @ H.T   # noqa: E731
        base = None
        for rule in ["f32", "per-token", "per-channel", "centred", "centred+scaled"]:
            ppl = perplexity(m, toks, keys=lambda k: quantize_keys(k, rule, H), values=v4)
            base = base or ppl
            print(f"keys {rule:15s} (values int4): perplexity {ppl:.4f}  {100 * (ppl / base - 1):+.2f}% vs f32 keys", flush=True)
    elif a.experiment == "spread":
        b = a.ctx * a.pct // 100
        recent = (b - 4) // 2
        shares = []

        def far(s, g):
            T = s.shape[1]
            shares.append(np.mean([s[:, t, 4:max(4, t - recent)].sum(-1).mean() for t in range(T // 2, T)]))
            return s
        m.forward(toks, weights=far)
        w = np.array(shares) + 0.1
        budgets = (len(w) * b * w / w.sum()).astype(int)
        for l, sh in enumerate(shares):
            print(f"layer {l:2d}: {sh:.3f} of the attention beyond the newest {recent} keys -> {budgets[l]} slots")
        print("rule: vatp@" + "@".join(f"{l}={budgets[l]}" for l in range(len(w) - 1)))
    elif a.experiment == "stream":
        wins = [[1] + ids[c * a.ctx + 1:(c + 1) * a.ctx] if c else toks for c in range(a.chunks)]
        layers = m.cfg["num_hidden_layers"]

        def mean_ppl(attend=None):
            return float(np.exp(np.mean([np.log(perplexity(m, w, attend=attend)) for w in wins])))
        base = mean_ppl()
        print(f"full attention, {a.chunks} windows of {a.ctx}: perplexity {base:.4f}", flush=True)
        b = a.ctx * a.pct // 100
        for r in a.rules:
            rule, *special = r.split("@")
            special = dict(s.split("=") for s in special)
            if "only" in special:
                per_layer = [stream(rule, b) if l == int(special["only"]) else None for l in range(layers)]
            else:
                special = {int(x): int(y) for x, y in special.items()}
                rest = (layers * b - sum(special.values())) // (layers - len(special))
                per_layer = [stream(rule, special.get(l, rest)) for l in range(layers)]
            ppl = mean_ppl(lambda q, k, v, group, layer: per_layer[layer] and per_layer[layer](q, k, v, group, layer))
            print(f"{r:20s} budget {b} ({a.pct}%): perplexity {ppl:.4f}  {100 * (ppl / base - 1):+.2f}%", flush=True)
    else:
        base = perplexity(m, toks)
        print(f"full attention: perplexity {base:.4f}", flush=True)
        for pct in (20, 10, 5):
            b = a.ctx * pct // 100
            ppl = perplexity(m, toks, keep=top_per_query(b))
            print(f"each query's own top {b} keys ({pct}% of {a.ctx}): perplexity {ppl:.4f}  {100 * (ppl / base - 1):+.2f}%", flush=True)


if __name__ == "__main__":
    main()
