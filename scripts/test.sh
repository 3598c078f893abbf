#!/usr/bin/env bash
# README command 2: install what is missing, build the real model if needed, run every test
# (unit tests on the committed fixtures and the end-to-end tests on the real model).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
source scripts/env.sh
bash scripts/fetch-real-model.sh
export SINKKIT_REQUIRE_REAL_MODEL=1
# The C kernels: scalar reference vs AVX2 natively, vs NEON under qemu-aarch64.
bash scripts/test-kernels.sh
# Every reader of untrusted bytes under libFuzzer + AddressSanitizer, 20 s per target (a crash,
# hang or blow-up fails the run; scripts/fuzz.sh runs longer on request).
bash scripts/fuzz.sh 20
# End-to-end tests run the release binaries (real-model perplexity in a debug build is slow).
bash scripts/build.sh
export SINKKIT_BIN_DIR="$(swift build -c release --show-bin-path)"
# The Debian package: built, installed with dpkg into an empty root, run from there (version,
# size <= 25 MB, manual pages, completions, declared dependencies, a tiny model end to end).
bash scripts/test-deb.sh
# llama.cpp's own tokenizer tests (models/ggml-vocab-*.gguf with their .inp/.out pairs from the
# llama-cpp-python sdist, fetched once) through skrun tokenize.
python3 scripts/test_llama_vocab.py
# Real chat templates (llama.cpp's models/templates from the same sdist) rendered by skrun template
# byte for byte like transformers' apply_chat_template (transformers installed on first use).
python3 scripts/test_chat_templates.py
# The side-by-side benchmark harness in its quick smoke mode (no timing is checked; llama.cpp
# only if already built, which CI never does).
python3 scripts/bench_vs_llama_cpp.py --smoke --out "$(mktemp -d)" >/dev/null
# All tests are XCTest; Swift Testing is off so the run closes on XCTest's own count, and the
# last line is the plain "N passed, N failed" summary.
log=$(mktemp)
set +e
swift test --disable-swift-testing 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
summary=$(python3 - "$log" <<'PY'
import re, sys
lines = [l for l in open(sys.argv[1], errors="replace") if re.search(r"^\s+Executed \d+ tests?", l)]
if lines:
    m = re.search(r"Executed (\d+) tests?, with (?:(\d+) tests? skipped and )?(\d+) failures?", lines[-1])
    if m:
        n, skipped, failed = int(m[1]), int(m[2] or 0), int(m[3])
        print(f"{n - skipped - failed} passed, {failed} failed, {skipped} skipped")
PY
)
rm -f "$log"
[ -n "$summary" ] && echo "$summary"
exit "$status"
