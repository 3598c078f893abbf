#!/usr/bin/env python3
"""The importance statistic `skconv calibrate` collects, computed independently with the numpy
reference forward (scripts/numpy_llama.py): for every linear layer, the mean square of each
input channel over the rows the model computes; for the output head, over the scored rows only
(positions ctx/2 … ctx−1 of each window, the rows calibrate asks logits for). Used by the tests.

    python3 scripts/numpy_imatrix.py MODEL_DIR CTX OUT.json TOKEN...   # TOKENs: the windows, concatenated
"""
import json, sys
import numpy as np
from numpy_llama import NumpyLlama


def stats(m, windows, ctx):
    sums, rows = {}, {}
    def add(name, x):
        s = (x.astype(np.float64) ** 2).sum(axis=0)
        sums[name] = sums.get(name, 0) + s
        rows[name] = rows.get(name, 0) + x.shape[0]
    w = m.w
    for tokens in windows:
        T = len(tokens)
        x = w["model.embed_tokens.weight"][np.asarray(tokens)]
        pos = np.arange(T)
        mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
        group = m.n_head // m.n_kv
        for l in range(m.cfg["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = m.rms(x, w[p + "input_layernorm.weight"])
            for n in ("q_proj", "k_proj", "v_proj"):
                add(p + f"self_attn.{n}.weight", h)
            q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(T, m.n_head, m.head_dim).transpose(1, 0, 2)
            k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(T, m.n_kv, m.head_dim).transpose(1, 0, 2)
            v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(T, m.n_kv, m.head_dim).transpose(1, 0, 2)
            q, k = m.rope(q, pos), m.rope(k, pos)
            k, v = np.repeat(k, group, axis=0), np.repeat(v, group, axis=0)
            s = q @ k.transpose(0, 2, 1) / np.sqrt(m.head_dim) + mask
            s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
            o = (s @ v).transpose(1, 0, 2).reshape(T, m.n_head * m.head_dim)
            add(p + "self_attn.o_proj.weight", o)
            x = x + o @ w[p + "self_attn.o_proj.weight"].T
            h = m.rms(x, w[p + "post_attention_layernorm.weight"])
            add(p + "mlp.gate_proj.weight", h); add(p + "mlp.up_proj.weight", h)
            g = h @ w[p + "mlp.gate_proj.weight"].T
            u = h @ w[p + "mlp.up_proj.weight"].T
            a = (g / (1 + np.exp(-g))) * u
            add(p + "mlp.down_proj.weight", a)
            x = x + a @ w[p + "mlp.down_proj.weight"].T
        head = "lm_head.weight" if "lm_head.weight" in w else "model.embed_tokens.weight"
        add(head, m.rms(x, w["model.norm.weight"])[ctx // 2:])
    return {k: (sums[k] / rows[k]).tolist() for k in sums}


if __name__ == "__main__":
    d, ctx, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    toks = [int(t) for t in sys.argv[4:]]
    windows = [toks[i:i + ctx] for i in range(0, len(toks), ctx)]
    json.dump(stats(NumpyLlama(d), windows, ctx), open(out, "w"))
