#!/usr/bin/env python3
"""Real chat templates rendered by SinkKit byte for byte as transformers renders them.

llama.cpp keeps a collection of the chat templates models ship (`models/templates/*.jinja` in the
llama-cpp-python 0.3.36 sdist on PyPI, fetched once into $SINKKIT_CACHE/llama-templates, as
scripts/test_llama_vocab.py does for the vocabularies). For each template and several
conversations (system or not, multi-turn, non-ASCII, non-alternating roles), with and without the
generation prompt, this renders with transformers' `apply_chat_template(..., tokenize=False)` and
with `skrun template`, and compares the bytes. A template that raises in transformers must fail in
SinkKit too.

    python3 scripts/test_chat_templates.py [--bin DIR] [--all]

The FAMILIES templates must pass (exit 1 otherwise); --all also reports every other template in the
collection (tool-calling templates use features SinkKit's renderer does not have; reported, not
required).
"""
import argparse, json, os, subprocess, sys, tempfile
from pathlib import Path

CACHE = Path(os.environ.get("SINKKIT_CACHE", Path.home() / ".cache" / "sinkkit"))
DEST = CACHE / "llama-templates"
ROOT = Path(__file__).resolve().parent.parent
# The model families SinkKit runs or converts, as their models ship their templates.
FAMILIES = {
    "Qwen-Qwen3-0.6B": ("", "<|im_end|>"),
    "Qwen-Qwen2.5-7B-Instruct": ("", "<|im_end|>"),
    "microsoft-Phi-3.5-mini-instruct": ("<s>", "<|endoftext|>"),
    "google-gemma-2-2b-it": ("<bos>", "<eos>"),
    "meta-llama-Llama-3.1-8B-Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "meta-llama-Llama-3.2-3B-Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "meta-llama-Llama-3.3-70B-Instruct": ("<|begin_of_text|>", "<|eot_id|>"),
    "mistralai-Mistral-Nemo-Instruct-2407": ("<s>", "</s>"),
    "HuggingFaceTB-SmolLM3-3B": ("", "<|im_end|>"),
    "deepseek-ai-DeepSeek-R1-Distill-Llama-8B": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "Qwen-QwQ-32B": ("", "<|im_end|>"),
}
# generate_chat_goldens.py's conversations, and one with reasoning in an assistant turn (the
# Qwen3 / DeepSeek-R1 templates strip or keep it)
THINKING = [{"role": "user", "content": "Think first."}, {"role": "assistant", "content": "<think>\nsome reasoning\n</think>\n\nThe answer."},
            {"role": "user", "content": "Again?"}]


def fetch():
    if (DEST / "Qwen-Qwen3-0.6B.jinja").exists():
        return
    sys.path.insert(0, str(ROOT / "scripts"))
    import test_llama_vocab
    test_llama_vocab.extract(DEST, lambda n: "/models/templates/" in n and n.endswith(".jinja"))


def transformers_render(template, bos, eos, conv, gen):
    from tokenizers import Tokenizer
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(BPE(vocab={"a": 0}, merges=[])), bos_token=bos or None, eos_token=eos)
    tok.chat_template = template
    try:
        return tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen), None
    except Exception as e:  # raise_exception in the template, or a Jinja error
        return None, str(e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", type=Path, default=None)
    ap.add_argument("--all", action="store_true")
    a = ap.parse_args()
    b = a.bin or Path(os.environ.get("SINKKIT_BIN_DIR") or subprocess.run(
        ["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip())
    try:
        import transformers  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "transformers", "jinja2"], check=True)
    sys.path.insert(0, str(ROOT / "Fixtures"))
    from generate_chat_goldens import CONVERSATIONS
    conversations = CONVERSATIONS + [THINKING]
    fetch()
    names = list(FAMILIES) + ([p.stem for p in sorted(DEST.glob("*.jinja")) if p.stem not in FAMILIES] if a.all else [])
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path = DEST / f"{name}.jinja"
            template = path.read_text()
            bos, eos = FAMILIES.get(name, ("<s>", "</s>"))
            ok = cases = 0
            first_diff = None
            for i, conv in enumerate(conversations):
                mf = Path(tmp) / f"m{i}.json"
                mf.write_text(json.dumps(conv, ensure_ascii=False))
                for gen in (True, False):
                    want, err = transformers_render(template, bos, eos, conv, gen)
                    args = [b / "skrun", "template", "--template", path, "--messages", mf, "--bos", bos, "--eos", eos]
                    if not gen:
                        args.append("--no-generation-prompt")
                    r = subprocess.run(list(map(str, args)), capture_output=True)
                    cases += 1
                    if want is None:
                        good = r.returncode != 0
                    else:
                        good = r.returncode == 0 and r.stdout.decode() == want
                    ok += good
                    if not good and first_diff is None:
                        first_diff = (i, gen, want if want is not None else f"(error: {err[:80]})",
                                      r.stdout.decode() if r.returncode == 0 else r.stderr.decode().strip())
            status = "ok" if ok == cases else "FAIL"
            print(f"{status:4s} {name}: {ok}/{cases}" + ("" if name in FAMILIES else " (not required)"), flush=True)
            if first_diff:
                i, gen, want, got = first_diff
                print(f"     conversation {i}, generation prompt {gen}:\n     transformers: {want[:300]!r}\n     skrun:        {got[:300]!r}")
                if name in FAMILIES:
                    failed.append(name)
    if failed:
        print("FAILED:", ", ".join(failed))
        return 1
    print(f"all {len(FAMILIES)} family templates render like transformers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
