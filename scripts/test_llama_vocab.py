#!/usr/bin/env python3
"""llama.cpp's own tokenizer tests, run through `skrun tokenize` on GGUF vocabularies.

The llama-cpp-python 0.3.36 sdist (PyPI) vendors llama.cpp's `models/ggml-vocab-*.gguf` files
with `.inp` / `.out` pairs (the texts, and the ids llama.cpp's test-tokenizer-0 expects: no BOS,
special tokens not parsed). This script fetches the sdist once (pip download, into
$SINKKIT_CACHE/llama-vocab), extracts those files, and checks that `skrun tokenize FILE.gguf
--no-special --ids` gives exactly the expected ids for every text.

    python3 scripts/test_llama_vocab.py [--bin DIR] [VOCAB ...]

Exit status 0 when every vocabulary passes. Others named on the command line (e.g. bert-bge,
command-r, mpt, refact) are reported; a refusal (the message says why) fails only for ALL's.
"""
import argparse, json, os, subprocess, sys, tarfile, tempfile
from pathlib import Path

VERSION = "0.3.36"
CACHE = Path(os.environ.get("SINKKIT_CACHE", Path.home() / ".cache" / "sinkkit"))
DEST = CACHE / "llama-vocab"
ROOT = Path(__file__).resolve().parent.parent
# The vocabularies the issue asks for; the ones SinkKit supports must pass.
ALL = ["llama-bpe", "llama-spm", "phi-3", "qwen2", "gpt-2", "deepseek-llm", "deepseek-coder", "falcon", "starcoder",
       "mpt", "refact", "command-r"]
SUPPORTED = set(ALL)


def extract(dest, wanted):
    """The sdist's files for which wanted(member name) holds, into dest (by base name; the sdist is
    the one bench_vs_llama_cpp.py keeps, or downloaded once by pip)."""
    dest.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / "llama.cpp" / f"llama_cpp_python-{VERSION}.tar.gz"
    if not sdist.exists():
        d = Path(tempfile.mkdtemp())
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                        f"llama_cpp_python=={VERSION}", "-d", str(d)], check=True)
        sdist = d / f"llama_cpp_python-{VERSION}.tar.gz"
    with tarfile.open(sdist) as t:
        for m in t.getmembers():
            name = Path(m.name).name
            if m.isfile() and wanted(m.name):
                with t.extractfile(m) as src:
                    tmp = dest / (name + ".tmp")
                    tmp.write_bytes(src.read())
                    tmp.rename(dest / name)


def fetch():
    if (DEST / "ggml-vocab-llama-bpe.gguf.out").exists():
        return
    extract(DEST, lambda n: "/vendor/llama.cpp/models/" in n and Path(n).name.startswith("ggml-vocab-"))


def cases(vocab):
    raw = (DEST / f"ggml-vocab-{vocab}.gguf.inp").read_bytes().decode("utf-8")
    texts = raw.split("\n__ggml_vocab_test__\n")
    if texts and texts[-1] == "":
        texts = texts[:-1] if raw.endswith("\n__ggml_vocab_test__\n") else texts
    outs = (DEST / f"ggml-vocab-{vocab}.gguf.out").read_text().split("\n")
    outs = outs[:len(texts)]
    return [(t, [int(x) for x in o.split()]) for t, o in zip(texts, outs)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", type=Path, help="directory of skrun (default: swift build -c release --show-bin-path)")
    ap.add_argument("vocabs", nargs="*", default=ALL)
    a = ap.parse_args()
    bin_dir = a.bin or Path(subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT,
                                           capture_output=True, text=True, check=True).stdout.strip())
    skrun = bin_dir / "skrun"
    fetch()
    failed = False
    summary = {}
    for v in a.vocabs:
        gguf = DEST / f"ggml-vocab-{v}.gguf"
        tests = cases(v)
        ok, wrong, refused = 0, [], None
        with tempfile.TemporaryDirectory() as tmp:
            for i, (text, want) in enumerate(tests):
                f = Path(tmp) / f"{i}.txt"
                f.write_bytes(text.encode("utf-8"))
                r = subprocess.run([str(skrun), "tokenize", str(gguf), "-f", str(f), "--ids", "--no-special"], capture_output=True, text=True)
                if r.returncode != 0:
                    refused = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
                    break
                got = json.loads(r.stdout)
                if got == want:
                    ok += 1
                else:
                    wrong.append((text, want, got))
        if refused:
            summary[v] = f"refused: {refused}"
            if v in SUPPORTED:
                failed = True
        else:
            summary[v] = f"{ok}/{len(tests)} texts"
            if wrong:
                failed = True
                for text, want, got in wrong[:3]:
                    print(f"  {v}: {text!r}\n    llama.cpp {want}\n    SinkKit   {got}")
        print(f"{v:16s} {summary[v]}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
