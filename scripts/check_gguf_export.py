#!/usr/bin/env python3
"""Checks a GGUF written by `skconv export` / `skconv quantize --output X.gguf` with the `gguf`
Python package (llama.cpp's reader): every tensor of the SKM file is there under llama.cpp's
name, in the ggml type of its SKM type, and decodes (gguf.quants.dequantize, q/k rows put back
in transformers' order) to exactly the values the SKM file holds (scripts/skm_reader.py); the
config and tokenizer metadata say what the SKM file says.

    python3 scripts/check_gguf_export.py MODEL.skm MODEL.gguf     # exit 0 and a summary when equal
"""
import json, sys
from pathlib import Path

import numpy as np
import gguf
from gguf.quants import dequantize

sys.path.insert(0, str(Path(__file__).resolve().parent))
import skm_reader as skm

GGML = {0: "F32", 1: "F16", 2: "INT8", 3: "INT4", 4: "INT4_SYM", 5: "INT5_SYM"}
EXPECTED_TYPE = {0: "F32", 1: "F16", 2: "Q8_0", 3: "Q4_1", 4: "Q4_0", 5: "Q5_0"}
PER_LAYER = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def gguf_name(name):
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    if name in fixed:
        return fixed[name]
    _, _, layer, rest = name.split(".", 3)
    return f"blk.{layer}.{PER_LAYER[rest[:-len('.weight')]]}.weight"


def unpermute(w, n_head):
    # llama.cpp's row h*D + 2p + i is transformers' row h*D + i*D/2 + p
    rows = w.shape[0]
    d = rows // n_head
    return w.reshape(n_head, d // 2, 2, -1).swapaxes(1, 2).reshape(w.shape)


def main():
    skm_path, gguf_path = sys.argv[1], sys.argv[2]
    buf, doff, meta, tensors = skm.open_skm(skm_path)
    cfg = json.loads(meta["model.config"])
    r = gguf.GGUFReader(gguf_path)
    fields = {k: f.contents() for k, f in r.fields.items()}
    by_name = {t.name: t for t in r.tensors}
    errors = []
    if fields.get("general.architecture") != "llama":
        errors.append(f"general.architecture {fields.get('general.architecture')}")
    for key, want in [("llama.block_count", cfg["num_hidden_layers"]), ("llama.embedding_length", cfg["hidden_size"]),
                      ("llama.feed_forward_length", cfg["intermediate_size"]), ("llama.attention.head_count", cfg["num_attention_heads"]),
                      ("llama.attention.head_count_kv", cfg["num_key_value_heads"]), ("llama.vocab_size", cfg["vocab_size"])]:
        if fields.get(key) != want:
            errors.append(f"{key} = {fields.get(key)}, expected {want}")
    tokens = fields.get("tokenizer.ggml.tokens")
    if tokens != list(meta["tokenizer.vocab"]):
        errors.append("tokenizer.ggml.tokens differ from the SKM vocabulary")
    if fields.get("tokenizer.ggml.merges") != list(meta["tokenizer.merges"]):
        errors.append("tokenizer.ggml.merges differ from the SKM merges")
    if fields.get("tokenizer.chat_template", "") != meta.get("tokenizer.chat_template", ""):
        errors.append("chat template differs")
    if len(r.tensors) != len(tensors):
        errors.append(f"{len(r.tensors)} tensors in the GGUF, {len(tensors)} in the SKM file")
    identical = 0
    types = {}
    for t in tensors:
        g = by_name.get(gguf_name(t["name"]))
        if g is None:
            errors.append(f"{t['name']}: missing"); continue
        if g.tensor_type.name != EXPECTED_TYPE[t["qtype"]]:
            errors.append(f"{t['name']}: {g.tensor_type.name}, expected {EXPECTED_TYPE[t['qtype']]}"); continue
        types[g.tensor_type.name] = types.get(g.tensor_type.name, 0) + 1
        got = dequantize(np.asarray(g.data), g.tensor_type).astype(np.float32).reshape(t["shape"])
        if t["name"].endswith("q_proj.weight"):
            got = unpermute(got, cfg["num_attention_heads"])
        elif t["name"].endswith("k_proj.weight"):
            got = unpermute(got, cfg["num_key_value_heads"])
        want = skm.dequantize(skm.raw_bytes(buf, doff, t), t).reshape(t["shape"])
        if np.array_equal(got.view(np.uint32), want.astype(np.float32).view(np.uint32)):
            identical += 1
        else:
            errors.append(f"{t['name']}: {int((got != want).sum())} values differ")
    print(json.dumps({"tensors": len(tensors), "identical": identical, "types": types, "errors": errors[:20]}))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
