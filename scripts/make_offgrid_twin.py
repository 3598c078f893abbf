#!/usr/bin/env python3
"""An honest 4-bit test model: a function-identical twin of SmolLM2-135M-Instruct whose weights lie
on no quantization grid (the released weights sit on a Q4_1 grid, which flatters any int4
quantizer that finds the grid again).

Construction (QuaRot-style, arXiv 2404.00456; every step exact in real arithmetic):
  1. fold every RMSNorm weight γ into the linear layers that read its output (W ← W·diag(γ)),
     the norms become all ones; the final norm folds into the output head, which is untied;
  2. rotate the residual stream by a seeded random orthogonal matrix R (hidden × hidden):
     embedding E ← E·R; layers reading the stream W ← W·R; layers writing it (o_proj, down_proj)
     W ← Rᵀ·W; head ← head·R (RMSNorm commutes with R: it preserves the norm);
  3. rotate each KV head's values by its own random orthogonal H (head_dim × head_dim):
     v_proj rows of the head ← Hᵀ·W, and the o_proj columns of every query head reading it ← W·H.
Done in float64 and stored as F32. The script checks, in float64, that the twin's logits equal the
original's within 1e-4 on a few hundred tokens, and writes the HF checkpoint to
$SINKKIT_CACHE/smollm2-offgrid (tokenizer files copied).

    python3 scripts/make_offgrid_twin.py [--seed 2026] [--out DIR]
"""
import argparse, json, os, shutil, sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from numpy_llama import NumpyLlama, load_safetensors  # noqa: E402

CACHE = Path(os.environ.get("SINKKIT_CACHE", Path.home() / ".cache" / "sinkkit"))
SRC = CACHE / "smollm2-135m-instruct"
OUT = CACHE / "smollm2-offgrid"


def orthogonal(n, rng):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))          # Haar-distributed


def twin(w, cfg, seed):
    rng = np.random.default_rng(seed)
    d = cfg["hidden_size"]
    nh, nkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd = cfg.get("head_dim") or d // nh
    group = nh // nkv
    w = {k: v.astype(np.float64) for k, v in w.items()}
    R = orthogonal(d, rng)
    out = {}
    embed = w["model.embed_tokens.weight"]
    head = w.get("lm_head.weight", embed)
    out["model.embed_tokens.weight"] = embed @ R
    out["lm_head.weight"] = (head * w["model.norm.weight"][None, :]) @ R
    out["model.norm.weight"] = np.ones(d)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        g1, g2 = w[p + "input_layernorm.weight"], w[p + "post_attention_layernorm.weight"]
        def reads(name, gamma):
            return (w[p + name] * gamma[None, :]) @ R
        q, k, v = reads("self_attn.q_proj.weight", g1), reads("self_attn.k_proj.weight", g1), reads("self_attn.v_proj.weight", g1)
        o = R.T @ w[p + "self_attn.o_proj.weight"]
        for kh in range(nkv):
            H = orthogonal(hd, rng)
            v[kh * hd:(kh + 1) * hd, :] = H.T @ v[kh * hd:(kh + 1) * hd, :]
            for qh in range(kh * group, (kh + 1) * group):
                o[:, qh * hd:(qh + 1) * hd] = o[:, qh * hd:(qh + 1) * hd] @ H
        out[p + "self_attn.q_proj.weight"], out[p + "self_attn.k_proj.weight"] = q, k
        out[p + "self_attn.v_proj.weight"], out[p + "self_attn.o_proj.weight"] = v, o
        out[p + "mlp.gate_proj.weight"] = reads("mlp.gate_proj.weight", g2)
        out[p + "mlp.up_proj.weight"] = reads("mlp.up_proj.weight", g2)
        out[p + "mlp.down_proj.weight"] = R.T @ w[p + "mlp.down_proj.weight"]
        out[p + "input_layernorm.weight"] = np.ones(d)
        out[p + "post_attention_layernorm.weight"] = np.ones(d)
    return out


class Float64Llama(NumpyLlama):
    """The numpy reference in float64 (the check must see the transform, not f32 rounding)."""
    def __init__(self, directory, weights=None):
        super().__init__(directory)
        if weights is not None:
            self.w = weights
        self.w = {k: v.astype(np.float64) for k, v in self.w.items()}
        self.head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        self.inv_freq = self.inv_freq.astype(np.float64)

    def rms(self, x, w):
        return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--src", type=Path, default=SRC)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    from safetensors.numpy import save_file
    cfg = json.loads((args.src / "config.json").read_text())
    w = load_safetensors(args.src)
    t = twin(w, cfg, args.seed)
    stored = {k: v.astype(np.float32) for k, v in t.items()}
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in args.src.iterdir():
        if f.name not in ("model.safetensors", "config.json") and f.is_file():
            shutil.copy(f, tmp / f.name)
    cfg2 = dict(cfg)
    cfg2["tie_word_embeddings"] = False
    (tmp / "config.json").write_text(json.dumps(cfg2, indent=2, sort_keys=True))
    save_file(stored, str(tmp / "model.safetensors"), metadata={"format": "pt", "sinkkit_offgrid_twin": json.dumps({"seed": args.seed, "source": "SmolLM2-135M-Instruct"})})

    # The check: float64 forward of the original and of the stored (F32) twin.
    tokens = json.loads((ROOT / "Fixtures" / "reference" / "smollm2-llama-cpp.json").read_text()).get("check_tokens") or \
        [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 504, 3575, 282, 4649, 314, 7042] * 16
    a = Float64Llama(args.src).forward(tokens)
    b = Float64Llama(tmp).forward(tokens)
    diff = float(np.max(np.abs(a - b)))
    print(f"twin vs original: max |logit difference| {diff:.2e} over {len(tokens)} tokens (logits up to {np.max(np.abs(a)):.1f})")
    if diff > 1e-4:
        raise SystemExit(f"the twin does not compute the same function: {diff} > 1e-4")
    # How far the weights are from any Q4_1 grid: fraction of 32-blocks whose values take ≤ 16 levels.
    q = stored["model.layers.0.self_attn.q_proj.weight"].reshape(-1, 32)
    on_grid = np.mean([len(np.unique(r)) <= 16 for r in q[:2000]])
    print(f"blocks of 32 with at most 16 distinct values (on a 4-bit grid): original {np.mean([len(np.unique(r)) <= 16 for r in w['model.layers.0.self_attn.q_proj.weight'].reshape(-1, 32)[:2000]]):.2f}, twin {on_grid:.2f}")
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.rename(args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
