#!/usr/bin/env python3
"""Golden token ids from the Python `tokenizers` package (run by hand; outputs committed).

Three tokenizers: the real SmolLM2 tokenizer.json (byte-level BPE, built by scripts/make_smollm2.py
from the GGUF and shown to tokenize like llama.cpp), a Llama-2-style tokenizer trained here
(SentencePiece-style BPE: Prepend/Replace "▁" normalizer, byte fallback, `<s>` template,
Replace/ByteFallback/Fuse/Strip decoder), committed in Fixtures/tokenizers/llama2-style/, and a
Llama-3-style one trained here (NFKC normalizer, Digits runs, a Split on Llama-3's regex, then
byte-level without its own regex), committed in Fixtures/tokenizers/llama3-style/: it runs the
general regex engine, compatibility normalization and the numeric-run splitter.
Cases: the whole GPL-3 text, hand-picked samples, and 10,000 seeded random strings.

    pip install tokenizers && python3 Fixtures/generate_tokenizer_goldens.py
"""
import json, os, random, sys
from pathlib import Path

from tokenizers import Tokenizer, decoders, normalizers, processors
from tokenizers.models import BPE
from tokenizers.trainers import BpeTrainer

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "tokenizers"
sys.path.insert(0, str(ROOT.parent / "scripts"))
import make_smollm2  # noqa: E402

SAMPLES = [
    "Hello world", "  leading spaces and\ttabs\n\n\nnewlines", "Digits 1234567890 and 3.14159 and 1,000,000",
    "unicode: café, naïve, 日本語, Ελληνικά, Ünïcödé, emoji 🚀🔥👍🏽 family 👨‍👩‍👧", "code:\n    for (int i = 0; i < n; ++i) {\n        x[i] *= 2;\n    }\n",
    "<|im_start|>user\nspecial tokens inside text<|im_end|>\n<|im_start|>assistant\n", "don't won't it's we're they've I'd I'll",
    "MixedCASE words, punctuation!? (brackets) [and] {braces} — dashes… ellipsis", "", " ", "\n", "a", "   ",
    "trailing spaces   ", "<s>hello</s>", "tab\tseparated\tvalues\r\nwindows line", "ça va? ¿qué tal? über straße",
    "math: ∑_{i=1}^{n} x_i² ≤ ∞", "zero\u200bwidth", "combining e\u0301 vs é",
    "numbers of every kind: ½ ² ³ ⅔ ٣٤ ① Ⅻ 12½", "compatibility: ﬁne ｆｕｌｌｗｉｄｔｈ ㌀ Å ﬀ ™ x²",
    "Hangul 한국어 ᄒᆞᆫ and Ǆ ǅ ǆ", "  ALL CAPS WE'RE 'S 'T 'LL  ",
]
ALPHABET = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") * 3 + list("0123456789") * 2
            + list(" " * 12) + list("\n\t.,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`") + list("éüñçøßàÆ") + list("日本語中文한국어")
            + ["🚀", "👍🏽", "🔥", "\u0301", "\u200b", "Ω", "€", "½", "²", "٣", "ﬁ", "Ａ", "\u00a0", "\u3000", "\r"])


def random_strings(n, specials, seed=1234):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24)))
        if rng.random() < 0.08 and specials:
            k = rng.randint(0, len(s))
            s = s[:k] + rng.choice(specials) + s[k:]
        out.append(s)
    return out


def llama2_style(text):
    """A Llama-2-shaped tokenizer (as transformers' LlamaTokenizerFast saves it) trained on the GPL."""
    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    tok = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer = BpeTrainer(vocab_size=1200, special_tokens=["<unk>", "<s>", "</s>"] + byte_tokens, show_progress=False,
                         initial_alphabet=[], limit_alphabet=120)
    tok.train_from_iterator(text.split("\n"), trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    return tok


LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def llama3_style(text):
    """A Llama-3-shaped byte-level BPE with an NFKC normalizer and a Digits pre-tokenizer in front."""
    from tokenizers import pre_tokenizers, Regex
    tok = Tokenizer(BPE())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(vocab_size=1500, special_tokens=["<|begin_of_text|>", "<|end_of_text|>"], show_progress=False,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text.split("\n"), trainer)
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                                      special_tokens=[("<|begin_of_text|>", 0)])
    return tok


def main():
    text = (ROOT / "gpl-3.0.txt").read_text(encoding="utf-8")
    d = OUT / "llama2-style"
    d.mkdir(parents=True, exist_ok=True)
    l2 = llama2_style(text)
    l2.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
                                                         "eos_token": "</s>", "unk_token": "<unk>"}, indent=2) + "\n")
    d3 = OUT / "llama3-style"
    d3.mkdir(parents=True, exist_ok=True)
    l3 = llama3_style(text)
    l3.save(str(d3 / "tokenizer.json"))
    (d3 / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": True, "bos_token": "<|begin_of_text|>",
                                                          "eos_token": "<|end_of_text|>"}, indent=2) + "\n")
    smol_dir = make_smollm2.build(make_smollm2.DEFAULT_OUT)
    for name, tok, specials in (("smollm2", Tokenizer.from_file(str(smol_dir / "tokenizer.json")), ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]),
                                ("llama2-style", Tokenizer.from_file(str(d / "tokenizer.json")), ["<s>", "</s>"]),
                                ("llama3-style", Tokenizer.from_file(str(d3 / "tokenizer.json")), ["<|begin_of_text|>", "<|end_of_text|>"])):
        cases = [{"text": text, "add_special_tokens": False}]
        cases += [{"text": s, "add_special_tokens": False} for s in SAMPLES]
        cases += [{"text": s, "add_special_tokens": True} for s in SAMPLES[:6]]
        cases += [{"text": s, "add_special_tokens": False} for s in random_strings(10000, specials)]
        for c in cases:
            c["ids"] = tok.encode(c["text"], add_special_tokens=c["add_special_tokens"]).ids
            decoded = tok.decode(c["ids"], skip_special_tokens=False)
            if decoded != c["text"]:  # stored only where decoding does not give the input back
                c["decoded"] = decoded
        (OUT / f"{name}-goldens.json").write_text(json.dumps({"tokenizer": name, "cases": cases}, ensure_ascii=False, separators=(",", ":")) + "\n")
        print(name, len(cases), "cases")


if __name__ == "__main__":
    main()
