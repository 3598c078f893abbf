#!/usr/bin/env python3
"""Tiny random models of the other LLaMA-block families, saved by transformers, with their
reference logits and a PEFT LoRA merged by PEFT (run by hand; outputs committed):

    Fixtures/tiny/qwen2-f32/      Qwen2ForCausalLM (q/k/v biases, untied head)
    Fixtures/tiny/mistral-f32/    MistralForCausalLM with sliding_window 4 (shorter than the
                                  12 reference tokens, so the window changes the logits)
    Fixtures/tiny/qwen3-f32/      Qwen3ForCausalLM (per-head q/k RMSNorm; head_dim 16, so the
                                  attention width 64 differs from hidden_size 32)
    Fixtures/tiny/phi3-f32/       Phi3ForCausalLM (fused qkv_proj and gate_up_proj; longrope with
                                  original_max_position_embeddings 8: the 12 reference tokens use
                                  the long factors, `phi3-f32-short` the first 6 the short ones)
    Fixtures/tiny/llama3-f32/     LlamaForCausalLM as Llama 3.x: llama3 RoPE (factor 8, low/high
                                  frequency factors 1/4, original context 8, so every rule of it
                                  applies within the 12 tokens), tied embeddings
    Fixtures/tiny/gemma2-f32/     Gemma2ForCausalLM (GeGLU with tanh GELU, (1 + w) RMSNorms before and
                                  after attention and MLP, embeddings times sqrt(hidden), attention
                                  and final logit soft-capping small enough to bite, sliding window 4
                                  on alternate layers, query_pre_attn_scalar 16 != head_dim, tied)
    Fixtures/tiny/expected/logits-families.safetensors   logits at every position (eager attention)
    Fixtures/tiny/adapters/qwen2-lora/                   PEFT LoRA on q/k/v/o/gate/up/down
    Fixtures/tiny/expected/qwen2-lora.safetensors        its merge_and_unload() result
    Fixtures/tiny/adapters/qwen3-lora/, expected/qwen3-lora.safetensors   the same for Qwen3
    Fixtures/tiny/adapters/phi3-lora/, expected/phi3-lora.safetensors     Phi-3's modules (qkv_proj, o_proj, gate_up_proj, down_proj)
    Fixtures/tiny/adapters/gemma2-lora/, expected/gemma2-lora.safetensors the same for Gemma 2
    Fixtures/tiny/adapters/{mistral,llama3}-lora/, expected/…            and for Mistral and Llama 3

Same shapes, seed convention and tokens as Fixtures/generate_fixtures.py.
"""
import json, shutil, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from safetensors.torch import save_file
from transformers import Gemma2Config, Gemma2ForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Phi3Config, Phi3ForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM
import generate_fixtures as g

OUT = g.OUT
COMMON = dict(vocab_size=g.VOCAB, hidden_size=g.HIDDEN, intermediate_size=g.INTER, num_hidden_layers=g.LAYERS,
              num_attention_heads=g.HEADS, num_key_value_heads=g.KV, max_position_embeddings=64, rms_norm_eps=1e-5,
              rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)


def randomize(m, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(1.0 + 0.1 * torch.randn_like(p) if "norm" in n else 0.2 * torch.randn_like(p))
    return m.eval()


def save(m, name):
    d = OUT / name
    shutil.rmtree(d, ignore_errors=True)
    m.save_pretrained(d)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(OUT / "llama-f32" / f, d / f)
    return d


def main():
    models = {
        "qwen2-f32": randomize(Qwen2ForCausalLM(Qwen2Config(**COMMON, use_sliding_window=False, attn_implementation="eager")), g.SEED + 11),
        "mistral-f32": randomize(MistralForCausalLM(MistralConfig(**COMMON, sliding_window=4, head_dim=8, attn_implementation="eager")), g.SEED + 12),
        "qwen3-f32": randomize(Qwen3ForCausalLM(Qwen3Config(**COMMON, head_dim=16, use_sliding_window=False, attn_implementation="eager")), g.SEED + 14),
        "phi3-f32": randomize(Phi3ForCausalLM(Phi3Config(**COMMON, original_max_position_embeddings=8, attn_implementation="eager", pad_token_id=0,
                                                         rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                                                                          "short_factor": [1.0, 1.1, 1.3, 1.7], "long_factor": [1.0, 1.9, 3.7, 6.0]})), g.SEED + 16),
        "llama3-f32": randomize(LlamaForCausalLM(LlamaConfig(**{**COMMON, "tie_word_embeddings": True}, head_dim=8, attn_implementation="eager",
                                                             rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                                                              "high_freq_factor": 4.0, "original_max_position_embeddings": 8})), g.SEED + 20),
        "gemma2-f32": randomize(Gemma2ForCausalLM(Gemma2Config(**{**COMMON, "tie_word_embeddings": True}, head_dim=8, sliding_window=4, query_pre_attn_scalar=16,
                                                               attn_logit_softcapping=2.0, final_logit_softcapping=3.0, hidden_activation="gelu_pytorch_tanh",
                                                               attn_implementation="eager", pad_token_id=0)), g.SEED + 18),
    }
    logits = {}
    for name, m in models.items():
        save(m, name)
        with torch.no_grad():
            logits[name] = m(torch.tensor([g.LOGIT_TOKENS])).logits[0].contiguous()
    # Phi-3 on a prompt within original_max_position_embeddings: the short factors.
    with torch.no_grad():
        logits["phi3-f32-short"] = models["phi3-f32"](torch.tensor([g.LOGIT_TOKENS[:6]])).logits[0].contiguous()
    # Mistral without its window, to show the window matters in these logits.
    m = models["mistral-f32"]
    m.config.sliding_window = None
    with torch.no_grad():
        logits["mistral-f32-no-window"] = m(torch.tensor([g.LOGIT_TOKENS])).logits[0].contiguous()
    save_file(logits, OUT / "expected" / "logits-families.safetensors", metadata={"tokens": json.dumps(g.LOGIT_TOKENS)})

    from peft import LoraConfig, get_peft_model
    for name, cls, seed, modules in (
            ("qwen2", Qwen2ForCausalLM, g.SEED + 13, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
            ("qwen3", Qwen3ForCausalLM, g.SEED + 15, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
            ("phi3", Phi3ForCausalLM, g.SEED + 17, ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]),
            ("gemma2", Gemma2ForCausalLM, g.SEED + 19, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
            ("mistral", MistralForCausalLM, g.SEED + 21, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
            ("llama3", LlamaForCausalLM, g.SEED + 22, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])):
        torch.manual_seed(seed)
        base = cls.from_pretrained(OUT / f"{name}-f32")
        cfg = LoraConfig(r=4, lora_alpha=8, target_modules=modules, init_lora_weights=False)
        pm = get_peft_model(base, cfg)
        d = OUT / "adapters" / f"{name}-lora"
        shutil.rmtree(d, ignore_errors=True)
        pm.save_pretrained(d)
        merged = pm.merge_and_unload()
        tied = merged.config.tie_word_embeddings   # lm_head is the embedding: saved once
        save_file({k: v.detach().contiguous() for k, v in merged.state_dict().items() if not (tied and k == "lm_head.weight")},
                  OUT / "expected" / f"{name}-lora.safetensors")
    print("wrote", list(models), d)


if __name__ == "__main__":
    main()
