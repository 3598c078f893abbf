#!/usr/bin/env python3
"""Writes a deterministic PEFT-format LoRA adapter for the real SmolLM2 checkpoint (numpy only,
so CI needs no torch): r=8, alpha=16 on q/k/v/o_proj (LongLoRA's recipe) plus an embedding LoRA,
and numpy-merged expected values for a few tensors (W + alpha/r * B @ A, E + alpha/r * (B @ A)^T)
as an independent spot check of `skconv merge` on the real model.

    python3 scripts/make_smollm2_adapter.py [--model DIR] [--out DIR]
"""
import argparse, json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

import make_smollm2

R, ALPHA = 8, 16
SPOT = ["model.layers.0.self_attn.q_proj.weight", "model.layers.29.self_attn.v_proj.weight", "model.embed_tokens.weight"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=make_smollm2.DEFAULT_OUT)
    ap.add_argument("--out", type=Path, default=make_smollm2.DEFAULT_OUT.parent / "smollm2-lora-adapter")
    a = ap.parse_args()
    cfg = json.loads((a.model / "config.json").read_text())
    h, layers, vocab = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    kv = cfg["num_key_value_heads"] * (cfg.get("head_dim") or h // cfg["num_attention_heads"])
    rng = np.random.default_rng(2406_05678)
    t = {}
    p = "base_model.model.model."
    for l in range(layers):
        for name, out_dim in (("q_proj", h), ("k_proj", kv), ("v_proj", kv), ("o_proj", h)):
            t[f"{p}layers.{l}.self_attn.{name}.lora_A.weight"] = (rng.standard_normal((R, h)) * 0.02).astype(np.float32)
            t[f"{p}layers.{l}.self_attn.{name}.lora_B.weight"] = (rng.standard_normal((out_dim, R)) * 0.02).astype(np.float32)
    t[f"{p}embed_tokens.lora_embedding_A"] = (rng.standard_normal((R, vocab)) * 0.02).astype(np.float32)
    t[f"{p}embed_tokens.lora_embedding_B"] = (rng.standard_normal((h, R)) * 0.02).astype(np.float32)
    a.out.mkdir(parents=True, exist_ok=True)
    save_file(t, str(a.out / "adapter_model.safetensors"), metadata={"format": "pt"})
    (a.out / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": R, "lora_alpha": ALPHA, "lora_dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "embed_tokens"], "bias": "none",
        "fan_in_fan_out": False, "use_rslora": False, "use_dora": False, "modules_to_save": None,
        "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"}, indent=2))
    base = load_file(str(a.model / "model.safetensors"))
    s = ALPHA / R
    exp = {}
    for n in SPOT:
        w = base[n].astype(np.float64)
        if "embed" in n:
            A, B = t[f"{p}embed_tokens.lora_embedding_A"], t[f"{p}embed_tokens.lora_embedding_B"]
            w = w + s * (B.astype(np.float64) @ A.astype(np.float64)).T
        else:
            m = p + n[len("model."):-len(".weight")]
            w = w + s * (t[m + ".lora_B.weight"].astype(np.float64) @ t[m + ".lora_A.weight"].astype(np.float64))
        exp[n] = np.ascontiguousarray(w.astype(np.float32))
    save_file(exp, str(a.out / "expected_spot.safetensors"))
    print(a.out)


if __name__ == "__main__":
    main()
