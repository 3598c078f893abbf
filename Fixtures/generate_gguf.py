#!/usr/bin/env python3
"""GGUF fixtures and their golden values, made with the `gguf` Python package (llama.cpp's own
reader/writer, PyPI; the golden values are its numpy dequantizers, never SinkKit's output).

    python3 Fixtures/generate_gguf.py        # needs numpy, gguf, safetensors

Writes Fixtures/gguf/:
  types.gguf + types-expected.safetensors
      one [3, 256] tensor of each ggml type SinkKit reads (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
      Q8_0, Q4_K, Q5_K, Q6_K) made of random blocks (random bits, scales set to finite f16), and
      each one dequantized by gguf.quants.dequantize.
  tiny-llama.gguf + tiny-llama-expected.safetensors
      Fixtures/tiny/llama-f32 written as llama.cpp's convert_hf_to_gguf.py writes a llama model
      (q/k rows permuted for its RoPE, llama.cpp tensor names, tokenizer.ggml.* from tokenizer.json),
      its matrices in several block types; the expected file holds what SinkKit must read back:
      each stored tensor dequantized by gguf and un-permuted, under transformers' names.
  tiny-imatrix.gguf + tiny-imatrix-expected.safetensors
      an importance matrix in llama-imatrix's GGUF form for the tiny model (NAME.in_sum2, NAME.counts
      per linear weight, general.type "imatrix"), and the mean squares SinkKit must read from it
      (in_sum2 / counts, transformers' names)
  tiny-llama3.gguf
      Fixtures/tiny/llama3-f32 (run Fixtures/generate_families.py first) in F32, tied, with Llama 3's
      RoPE as llama.cpp's converter stores it: rope_freqs.weight, the llama3 rule's divisor of each
      frequency (1 above the high-frequency wavelength, the factor below the low one, smoothed between)
  unsupported-arch.gguf   general.architecture "gemma9" (refused by name)
  unsupported-type.gguf   a Q2_K tensor (refused by type)
"""
import json
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize
from safetensors.numpy import load_file, save_file

HERE = Path(__file__).resolve().parent
OUT = HERE / "gguf"
TINY = HERE / "tiny" / "llama-f32"
rng = np.random.default_rng(20261130)

# (type, block bytes, byte offsets of f16 scale fields in each block)
BLOCKS = {
    T.Q4_0: (18, [0]), T.Q4_1: (20, [0, 2]), T.Q5_0: (22, [0]), T.Q5_1: (24, [0, 2]), T.Q8_0: (34, [0]),
    T.Q4_K: (144, [0, 2]), T.Q5_K: (176, [0, 2]), T.Q6_K: (210, [208]),
}
ELEMS = {T.Q4_K: 256, T.Q5_K: 256, T.Q6_K: 256}


def random_blocks(t, rows, cols):
    nbytes, scales = BLOCKS[t]
    per = ELEMS.get(t, 32)
    raw = rng.integers(0, 256, size=(rows, cols // per, nbytes), dtype=np.uint8)
    for off in scales:
        v = (rng.uniform(0.001, 0.1, size=(rows, cols // per)) * rng.choice([-1, 1], size=(rows, cols // per))).astype(np.float16)
        raw[:, :, off:off + 2] = v.view(np.uint8).reshape(rows, cols // per, 2)
    return raw.reshape(rows, -1)


def types_fixture():
    w = gguf.GGUFWriter(str(OUT / "types.gguf"), "llama")
    expected = {}
    x = rng.standard_normal((3, 256)).astype(np.float32)
    w.add_tensor("t.F32", x)
    expected["t.F32"] = x
    h = x.astype(np.float16)
    w.add_tensor("t.F16", h)
    expected["t.F16"] = h.astype(np.float32)
    b = quantize(x, T.BF16)
    w.add_tensor("t.BF16", b, raw_dtype=T.BF16)
    expected["t.BF16"] = dequantize(b, T.BF16)
    for t in BLOCKS:
        raw = random_blocks(t, 3, 256)
        w.add_tensor(f"t.{t.name}", raw, raw_dtype=t)
        expected[f"t.{t.name}"] = dequantize(raw, t).astype(np.float32)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    save_file({k: np.ascontiguousarray(v) for k, v in expected.items()}, str(OUT / "types-expected.safetensors"))


def permute(w, n_head):
    # convert_hf_to_gguf.py LlamaModel.permute
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    # its inverse, written out: llama.cpp row h*D + 2p + i is transformers' row h*D + i*D/2 + p
    rows, cols = w.shape
    d = rows // n_head
    out = np.empty_like(w)
    for h in range(n_head):
        for i in range(2):
            for p in range(d // 2):
                out[h * d + i * (d // 2) + p] = w[h * d + 2 * p + i]
    return out


def add_tokenizer(w, directory):
    tj = json.loads((directory / "tokenizer.json").read_text())
    tc = json.loads((directory / "tokenizer_config.json").read_text())
    vocab = dict(tj["model"]["vocab"])
    for a in tj["added_tokens"]:
        vocab.setdefault(a["content"], a["id"])
    tokens = [None] * (max(vocab.values()) + 1)
    for tok, i in vocab.items():
        tokens[i] = tok
    special = {a["id"]: a["special"] for a in tj["added_tokens"]}
    types = [3 if special.get(i) else 4 if i in special else 1 for i in range(len(tokens))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    ids = {t: i for i, t in enumerate(tokens)}
    for key, add in [("bos_token", w.add_bos_token_id), ("eos_token", w.add_eos_token_id), ("unk_token", w.add_unk_token_id)]:
        v = tc.get(key)
        v = v["content"] if isinstance(v, dict) else v
        if v in ids:
            add(ids[v])
    w.add_add_bos_token(bool(tc.get("add_bos_token", False)))
    tmpl = directory / "chat_template.jinja"
    if tmpl.exists():
        w.add_chat_template(tmpl.read_text())


def add_llama_metadata(w, cfg, name):
    """The llama.* keys of a transformers config as llama.cpp's converter writes them, and the tiny tokenizer."""
    w.add_name(name)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_rope_dimension_count(cfg["head_dim"])
    add_tokenizer(w, TINY)


def tiny_fixture():
    cfg = json.loads((TINY / "config.json").read_text())
    st = load_file(str(TINY / "model.safetensors"))
    heads, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    w = gguf.GGUFWriter(str(OUT / "tiny-llama.gguf"), "llama")
    add_llama_metadata(w, cfg, "tiny-llama (SinkKit fixture)")
    # transformers name -> (llama.cpp name, stored type)
    per_layer = {"input_layernorm": ("attn_norm", T.F32), "post_attention_layernorm": ("ffn_norm", T.F32),
                 "self_attn.q_proj": ("attn_q", T.Q4_1), "self_attn.k_proj": ("attn_k", T.Q4_0),
                 "self_attn.v_proj": ("attn_v", T.Q5_0), "self_attn.o_proj": ("attn_output", T.Q8_0),
                 "mlp.gate_proj": ("ffn_gate", T.F16), "mlp.up_proj": ("ffn_up", T.BF16), "mlp.down_proj": ("ffn_down", T.Q5_1)}
    expected = {}
    for name, x in st.items():
        if name == "model.embed_tokens.weight": gname, t = "token_embd.weight", T.Q8_0
        elif name == "model.norm.weight": gname, t = "output_norm.weight", T.F32
        elif name == "lm_head.weight": gname, t = "output.weight", T.F32
        else:
            _, _, layer, rest = name.split(".", 3)
            module = rest[: -len(".weight")]
            short, t = per_layer[module]
            gname = f"blk.{layer}.{short}.weight"
        x = x.astype(np.float32)
        heads_here = heads if gname.endswith("attn_q.weight") else kv if gname.endswith("attn_k.weight") else None
        if heads_here:
            x = permute(x, heads_here)
        if t == T.F32:
            stored, back = x, x
        elif t == T.F16:
            stored = x.astype(np.float16); back = stored.astype(np.float32)
        else:
            stored = quantize(x, t); back = dequantize(stored, t).astype(np.float32)
        w.add_tensor(gname, stored, raw_dtype=None if t in (T.F32, T.F16) else t)
        expected[name] = np.ascontiguousarray(unpermute(back, heads_here) if heads_here else back)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    save_file(expected, str(OUT / "tiny-llama-expected.safetensors"))


def llama3_fixture():
    src = HERE / "tiny" / "llama3-f32"
    cfg = json.loads((src / "config.json").read_text())
    st = load_file(str(src / "model.safetensors"))
    rp = cfg["rope_parameters"]
    heads, kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    w = gguf.GGUFWriter(str(OUT / "tiny-llama3.gguf"), "llama")
    add_llama_metadata(w, cfg, "tiny-llama3 (SinkKit fixture)")
    # the llama3 rule (transformers' _compute_llama3_parameters) as a divisor per frequency
    freqs = 1.0 / (rp["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    old, f, lo, hi = rp["original_max_position_embeddings"], rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
    factors = []
    for fr in freqs:
        wavelen = 2 * np.pi / fr
        if wavelen < old / hi: factors.append(1.0)
        elif wavelen > old / lo: factors.append(f)
        else:
            smooth = (old / wavelen - lo) / (hi - lo)
            factors.append(1 / ((1 - smooth) / f + smooth))
    w.add_tensor("rope_freqs.weight", np.array(factors, dtype=np.float32))
    names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for name, x in st.items():
        if name == "lm_head.weight": continue   # tied
        if name == "model.embed_tokens.weight": gname = "token_embd.weight"
        elif name == "model.norm.weight": gname = "output_norm.weight"
        else:
            _, _, layer, rest = name.split(".", 3)
            gname = f"blk.{layer}.{names[rest[: -len('.weight')]]}.weight"
        x = x.astype(np.float32)
        if gname.endswith("attn_q.weight"): x = permute(x, heads)
        if gname.endswith("attn_k.weight"): x = permute(x, kv)
        w.add_tensor(gname, np.ascontiguousarray(x))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def imatrix_fixture():
    st = load_file(str(TINY / "model.safetensors"))
    w = gguf.GGUFWriter(str(OUT / "tiny-imatrix.gguf"), "llama")
    w.add_type("imatrix")
    w.add_array("imatrix.datasets", ["calibration.txt"])
    w.add_uint32("imatrix.chunk_count", 3)
    w.add_uint32("imatrix.chunk_size", 16)
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    expected = {}
    for name, x in st.items():
        if ".layers." not in name or x.ndim != 2:
            continue
        _, _, layer, rest = name.split(".", 3)
        g = f"blk.{layer}.{names[rest[:-len('.weight')]]}.weight"
        sums = (rng.random(x.shape[1]) * 100).astype(np.float32)
        count = np.array([48.0], dtype=np.float32)
        w.add_tensor(g + ".in_sum2", sums)
        w.add_tensor(g + ".counts", count)
        expected[name] = (sums / count[0]).astype(np.float32)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    save_file(expected, str(OUT / "tiny-imatrix-expected.safetensors"))


def refused_fixtures():
    w = gguf.GGUFWriter(str(OUT / "unsupported-arch.gguf"), "gemma9")
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((4, 32), np.float32))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    w = gguf.GGUFWriter(str(OUT / "unsupported-type.gguf"), "llama")
    raw = rng.integers(0, 256, size=(1, 84), dtype=np.uint8)  # one Q2_K block
    w.add_tensor("token_embd.weight", raw, raw_dtype=T.Q2_K)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    types_fixture()
    tiny_fixture()
    llama3_fixture()
    refused_fixtures()
    imatrix_fixture()
    for p in sorted(OUT.iterdir()):
        print(p.relative_to(HERE), p.stat().st_size)
