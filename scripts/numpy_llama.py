#!/usr/bin/env python3
"""A small, obviously-correct numpy forward pass of a Hugging Face LLaMA checkpoint
(f32/f16/bf16 safetensors, GQA, RoPE in rotate_half layout with default or linear scaling,
RMSNorm, SwiGLU, tied or untied head). It is the independent reference the Swift code is
tested against: written from transformers' `modeling_llama.py`, never from our own output.

    python3 scripts/numpy_llama.py MODEL_DIR 1 2 3 ...    # prints the last position's top-5
"""
import json, sys
from pathlib import Path

import numpy as np


def load_safetensors(directory):
    from safetensors.numpy import load_file
    d = Path(directory)
    idx = d / "model.safetensors.index.json"
    files = sorted(set(json.loads(idx.read_text())["weight_map"].values())) if idx.exists() else ["model.safetensors"]
    out = {}
    for f in files:
        for k, v in load_file(str(d / f)).items():
            out[k] = v.astype(np.float32)
    return out


class NumpyLlama:
    def __init__(self, directory):
        self.cfg = json.loads((Path(directory) / "config.json").read_text())
        self.w = load_safetensors(directory)
        c = self.cfg
        self.n_head = c["num_attention_heads"]
        self.n_kv = c.get("num_key_value_heads", self.n_head)
        self.head_dim = c.get("head_dim") or c["hidden_size"] // self.n_head
        self.eps = c.get("rms_norm_eps", 1e-6)
        rp = c.get("rope_scaling") or c.get("rope_parameters") or {}
        theta = c.get("rope_theta", rp.get("rope_theta", 10000.0))
        inv = 1.0 / (theta ** (np.arange(0, self.head_dim, 2, dtype=np.float64) / self.head_dim))
        kind = rp.get("rope_type", rp.get("type", "default"))
        if kind == "linear":
            inv = inv / rp["factor"]
        elif kind not in ("default", None):
            raise NotImplementedError(f"rope scaling {kind}")
        self.inv_freq = inv.astype(np.float32)
        self.head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])

    def rms(self, x, w):
        x64 = x.astype(np.float32)
        return w * (x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + self.eps))

    def rope(self, x, pos):
        # x: (heads, seq, head_dim); rotate_half convention
        freqs = np.outer(pos.astype(np.float32), self.inv_freq)          # (seq, hd/2)
        emb = np.concatenate([freqs, freqs], axis=-1)                      # (seq, hd)
        cos, sin = np.cos(emb), np.sin(emb)
        half = self.head_dim // 2
        rot = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
        return x * cos + rot * sin

    def forward(self, tokens, kv=None, weights=None, attend=None):
        """Logits (seq, vocab) for a token list, full causal attention from position 0.
        Experiments (scripts/kv_numpy_experiments.py) may change a layer's attention: `kv(k, v)`
        returns the keys (after RoPE) and values to use, (kv heads, seq, head_dim) each;
        `weights(s, group)` the softmax weights, (heads, seq, seq), given the query heads per KV head;
        `attend(q, k, v, group, layer)` replaces the attention: the outputs (heads, seq, head_dim)
        from the queries (heads, seq, head_dim) and the keys and values (kv heads, seq, head_dim), or
        None to keep this layer's full attention."""
        w, T = self.w, len(tokens)
        x = w["model.embed_tokens.weight"][np.asarray(tokens)]            # (seq, hidden)
        pos = np.arange(T)
        mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
        group = self.n_head // self.n_kv
        for l in range(self.cfg["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = self.rms(x, w[p + "input_layernorm.weight"])
            def proj(name):
                y = h @ w[p + f"self_attn.{name}.weight"].T
                b = w.get(p + f"self_attn.{name}.bias")
                return y if b is None else y + b
            q = proj("q_proj").reshape(T, self.n_head, self.head_dim).transpose(1, 0, 2)
            k = proj("k_proj").reshape(T, self.n_kv, self.head_dim).transpose(1, 0, 2)
            v = proj("v_proj").reshape(T, self.n_kv, self.head_dim).transpose(1, 0, 2)
            q, k = self.rope(q, pos), self.rope(k, pos)
            if kv:
                k, v = kv(k, v)
            o = attend(q, k, v, group, l) if attend else None
            if o is None:
                k, v = np.repeat(k, group, axis=0), np.repeat(v, group, axis=0)
                s = q @ k.transpose(0, 2, 1) / np.sqrt(self.head_dim) + mask     # (heads, seq, seq)
                s = np.exp(s - s.max(-1, keepdims=True))
                s /= s.sum(-1, keepdims=True)
                if weights:
                    s = weights(s, group)
                o = s @ v
            o = o.transpose(1, 0, 2).reshape(T, self.n_head * self.head_dim)
            x = x + o @ w[p + "self_attn.o_proj.weight"].T
            h = self.rms(x, w[p + "post_attention_layernorm.weight"])
            g = h @ w[p + "mlp.gate_proj.weight"].T
            u = h @ w[p + "mlp.up_proj.weight"].T
            x = x + ((g / (1 + np.exp(-g))) * u) @ w[p + "mlp.down_proj.weight"].T
        return self.rms(x, w["model.norm.weight"]) @ self.head.T

    def greedy(self, tokens, n, eos=None):
        out = list(tokens)
        for _ in range(n):
            t = int(np.argmax(self.forward(out)[-1]))
            if eos is not None and t in eos:
                break
            out.append(t)
        return out[len(tokens):]


if __name__ == "__main__":
    # numpy_llama.py MODEL_DIR TOKEN... [--out FILE]: with --out, every position's logits are
    # written to FILE as little-endian float32 (seq × vocab), for tests in other languages.
    args = sys.argv[1:]
    out = None
    if "--out" in args:
        k = args.index("--out")
        out = args[k + 1]
        del args[k:k + 2]
    m = NumpyLlama(args[0])
    all_logits = m.forward([int(t) for t in args[1:]])
    if out:
        all_logits.astype("<f4").tofile(out)
    logits = all_logits[-1]
    print(np.argsort(-logits)[:5].tolist(), np.sort(logits)[::-1][:5].tolist())
