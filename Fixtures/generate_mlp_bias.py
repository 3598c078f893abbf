#!/usr/bin/env python3
"""The tiny LLaMA with MLP biases (`mlp_bias=True`: gate/up/down_proj carry biases) saved by
transformers, and its reference logits (run by hand; outputs committed):

    Fixtures/tiny/llama-mlp-bias-f32/            config.json, model.safetensors, tokenizer files
    Fixtures/tiny/expected/logits-mlp-bias.safetensors

Same shapes, seed convention and tokens as Fixtures/generate_fixtures.py.
"""
import json, shutil, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from safetensors.torch import save_file
from transformers import LlamaForCausalLM
import generate_fixtures as g

OUT = g.OUT


def main():
    cfg = g.config()
    cfg.mlp_bias = True
    torch.manual_seed(g.SEED + 7)
    m = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn_like(p) if "norm" in n else 0.2 * torch.randn_like(p))
    d = OUT / "llama-mlp-bias-f32"
    shutil.rmtree(d, ignore_errors=True)
    m.save_pretrained(d)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(OUT / "llama-f32" / f, d / f)
    with torch.no_grad():
        logits = m(torch.tensor([g.LOGIT_TOKENS])).logits[0].contiguous()
    save_file({"llama-mlp-bias-f32": logits}, OUT / "expected" / "logits-mlp-bias.safetensors",
              metadata={"tokens": json.dumps(g.LOGIT_TOKENS)})
    print("wrote", d)


if __name__ == "__main__":
    main()
