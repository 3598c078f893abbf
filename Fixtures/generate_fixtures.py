#!/usr/bin/env python3
"""Deterministic generator for the small committed fixtures (run by hand, outputs committed).

Everything here is produced by the libraries users actually use: transformers' save_pretrained
writes the tiny LLaMA checkpoints, PEFT's save_pretrained writes the adapters, PEFT's
merge_and_unload() produces the expected merged tensors, transformers produces the reference
logits, torch.save writes the LongLoRA-style trainable_params.bin. CI never runs this.

    pip install "torch==2.13.0+cpu" transformers peft safetensors
    python3 Fixtures/generate_fixtures.py            # rewrites Fixtures/tiny/
"""
import io, json, os, pickle, shutil, sys, zipfile, warnings
from pathlib import Path

if os.environ.get("PYTHONHASHSEED") != "0":  # PEFT keeps target_modules in a set: fix its order
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM
from peft import LoraConfig, PeftModel, get_peft_model

OUT = Path(__file__).resolve().parent / "tiny"
SEED = 1234
VOCAB, HIDDEN, INTER, LAYERS, HEADS, KV = 128, 32, 64, 2, 4, 2
FIXED_TIME = (2024, 1, 1, 0, 0, 0)
LOGIT_TOKENS = [1, 17, 42, 99, 5, 64, 3, 127, 8, 21, 77, 2]


def config(tied=False, bias=False, vocab=VOCAB):
    return LlamaConfig(vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
                       num_attention_heads=HEADS, num_key_value_heads=KV, max_position_embeddings=64,
                       rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=tied, attention_bias=bias,
                       bos_token_id=1, eos_token_id=2, pad_token_id=None)


def base_model(tied=False, bias=False, seed=SEED):
    torch.manual_seed(seed)
    m = LlamaForCausalLM(config(tied, bias)).eval()
    with torch.no_grad():  # larger than the default init so LoRA deltas and rounding are visible
        for n, p in m.named_parameters():
            if "norm" in n:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    return m


def tiny_tokenizer():
    """A 128-token BPE tokenizer saved by transformers (tokenizers' BPE model, one token per
    ASCII character, no merges), so the tiny models are complete Hugging Face checkpoints."""
    from tokenizers import Tokenizer
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for i in range(32, 32 + VOCAB - 3):
        vocab[chr(i)] = len(vocab)
    t = Tokenizer(BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    fast = PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.chat_template = "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    return fast


def randomize_adapter(peft_model, seed):
    """PEFT initialises lora_B to zero (a no-op merge); give every adapter weight a value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_" in n or "modules_to_save" in n:
                if "magnitude" in n:
                    p.mul_(1.0 + 0.2 * torch.rand(p.shape, generator=g))
                else:
                    p.copy_(0.3 * torch.randn(p.shape, generator=g))


def merged_state(peft_dir, base):
    """Loads the adapter back from disk with PEFT and merges it: the expected result."""
    m = PeftModel.from_pretrained(base, peft_dir).merge_and_unload()
    sd = {k: v.detach().to(torch.float32).contiguous() for k, v in m.state_dict().items()}
    if m.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    return sd


def make_adapter(name, cfg_kwargs, seed, tied=False, bias=False, safe=True, edit_config=None):
    base = base_model(tied, bias)
    pm = get_peft_model(base, LoraConfig(**cfg_kwargs))
    randomize_adapter(pm, seed)
    d = OUT / "adapters" / name
    pm.save_pretrained(d, safe_serialization=safe)
    if edit_config:  # a config as some exporters write it; PEFT reads it back below
        c = json.loads((d / "adapter_config.json").read_text())
        edit_config(c)
        (d / "adapter_config.json").write_text(json.dumps(c, indent=2, sort_keys=True))
    save_file(merged_state(d, base_model(tied, bias)), OUT / "expected" / f"{name}.safetensors")
    return d


def main():
    warnings.filterwarnings("ignore")
    torch.use_deterministic_algorithms(True)
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "expected").mkdir(parents=True)

    # Base checkpoints, saved by transformers itself, each with a tiny tokenizer.
    tok = tiny_tokenizer()
    for name, m, kw in (("llama-f32", base_model(), {}), ("llama-tied-f32", base_model(tied=True), {}),
                        ("llama-f16", base_model().to(torch.float16), {}), ("llama-bf16", base_model().to(torch.bfloat16), {}),
                        ("llama-sharded", base_model(), {"max_shard_size": "40KB"}), ("llama-bias-f32", base_model(bias=True), {})):
        m.save_pretrained(OUT / name, **kw)
        tok.save_pretrained(OUT / name)

    lin = ["q_proj", "k_proj", "v_proj", "o_proj"]
    make_adapter("plain", dict(r=4, lora_alpha=8, target_modules=lin), 1)
    make_adapter("rslora", dict(r=4, lora_alpha=8, use_rslora=True, target_modules=["gate_proj", "up_proj", "down_proj"]), 2)
    make_adapter("patterns", dict(r=4, lora_alpha=8, target_modules=lin + ["down_proj"],
                                  rank_pattern={"q_proj": 2, "layers.1.self_attn.v_proj": 6},
                                  alpha_pattern={"o_proj": 3, "down_proj": 16}), 3)
    make_adapter("dora", dict(r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "v_proj", "down_proj"]), 4)
    make_adapter("embedding", dict(r=4, lora_alpha=8, target_modules=["embed_tokens", "q_proj"]), 5)
    make_adapter("modules-to-save", dict(r=4, lora_alpha=8, target_modules=["v_proj"], modules_to_save=["lm_head"]), 6)
    make_adapter("regex", dict(r=4, lora_alpha=8, target_modules=r".*\.layers\.1\.(mlp\.(gate|up)_proj|self_attn\.k_proj)"), 7)
    make_adapter("bin", dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]), 8, safe=False)
    # PEFT rewrites fan_in_fan_out to False for nn.Linear when saving; a config that says True
    # (as exporters from GPT-2-style models write) is read back by PEFT with a warning and ignored.
    make_adapter("fan-in-fan-out", dict(r=4, lora_alpha=8, target_modules=["q_proj"]), 9,
                 edit_config=lambda c: c.update(fan_in_fan_out=True))
    make_adapter("tied", dict(r=4, lora_alpha=8, target_modules=["q_proj", "embed_tokens"]), 10, tied=True)
    make_adapter("layers", dict(r=4, lora_alpha=8, target_modules=lin, layers_to_transform=[1]), 11)
    make_adapter("lora-bias", dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_bias=True), 12, bias=True)
    make_adapter("second", dict(r=2, lora_alpha=4, target_modules=["q_proj", "gate_proj"]), 13)

    # Two adapters applied in order: merge the first, then the second on top (PEFT, in f32).
    m = PeftModel.from_pretrained(base_model(), OUT / "adapters" / "plain").merge_and_unload()
    m = PeftModel.from_pretrained(m, OUT / "adapters" / "second").merge_and_unload()
    save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()}, OUT / "expected" / "plain+second.safetensors")

    # An adapter config PEFT would refuse to merge.
    rep = OUT / "adapters" / "layer-replication"
    shutil.copytree(OUT / "adapters" / "plain", rep)
    c = json.loads((rep / "adapter_config.json").read_text())
    c["layer_replication"] = [[0, 2], [1, 2]]
    (rep / "adapter_config.json").write_text(json.dumps(c, indent=2, sort_keys=True))

    make_longlora()
    make_logits()
    make_bad_pickles()


def make_longlora():
    """LongLoRA's merge (dvlab-research/LongLoRA merge_lora_weights_and_save_hf_model.py):
    add [PAD] (vocab + 1, new rows = mean of old rows), load the LoRA on q/k/v/o, load the
    fully trained embeddings and norms from trainable_params.bin, merge_and_unload()."""
    def resized():
        m = base_model()
        m.resize_token_embeddings(VOCAB + 1, mean_resizing=False)
        with torch.no_grad():
            for emb in (m.get_input_embeddings().weight, m.get_output_embeddings().weight):
                emb[-1:] = emb[:-1].mean(dim=0, keepdim=True)
        return m

    d = OUT / "adapters" / "longlora"
    pm = get_peft_model(resized(), LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    randomize_adapter(pm, 20)
    pm.save_pretrained(d)
    # Fine-tunes that add [PAD] ship their tokenizer files with the adapter.
    (d / "tokenizer_config.json").write_text(json.dumps({"pad_token": "[PAD]", "model_max_length": 256}, indent=2))
    g = torch.Generator().manual_seed(21)
    trainable = {}
    for n, p in resized().named_parameters():
        if "embed" in n or "norm" in n:
            trainable[n] = (p.detach() + 0.05 * torch.randn(p.shape, generator=g)).contiguous()
    torch.save(trainable, OUT / "longlora-trainable_params.bin")

    m = PeftModel.from_pretrained(resized(), d)
    m.base_model.model.load_state_dict(trainable, strict=False)
    m = m.merge_and_unload()
    save_file({k: v.detach().contiguous() for k, v in m.state_dict().items()}, OUT / "expected" / "longlora.safetensors")


def make_logits():
    """Reference logits from transformers for the runtime's future tests."""
    out = {}
    for name, tied in (("llama-f32", False), ("llama-tied-f32", True), ("llama-bias-f32", False)):
        m = LlamaForCausalLM.from_pretrained(OUT / name, attn_implementation="eager").eval()
        with torch.no_grad():
            out[name] = m(torch.tensor([LOGIT_TOKENS])).logits[0].contiguous()
    save_file(out, OUT / "expected" / "logits.safetensors", metadata={"tokens": json.dumps(LOGIT_TOKENS)})


def make_bad_pickles():
    """A torch.save-shaped zip whose pickle names os.system: must be refused, never run."""
    bad = OUT / "bad"
    bad.mkdir()
    payload = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."
    with zipfile.ZipFile(bad / "evil.bin", "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo("archive/data.pkl", FIXED_TIME), payload)
        z.writestr(zipfile.ZipInfo("archive/byteorder", FIXED_TIME), "little")
        z.writestr(zipfile.ZipInfo("archive/version", FIXED_TIME), "3\n")
    # A pickle that builds a tensor but also calls builtins.eval.
    payload2 = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01cbuiltins\neval\nq\x02X\x04\x00\x00\x001+1q\x03\x85q\x04Rq\x05s."
    with zipfile.ZipFile(bad / "eval.bin", "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo("archive/data.pkl", FIXED_TIME), payload2)
        z.writestr(zipfile.ZipInfo("archive/byteorder", FIXED_TIME), "little")


if __name__ == "__main__":
    sys.exit(main())
