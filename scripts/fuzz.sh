#!/usr/bin/env bash
# Fuzzes every reader of untrusted bytes with libFuzzer (and AddressSanitizer), each target for
# SECONDS (default 30), starting from the committed seeds in Fixtures/fuzz/corpus/TARGET, the
# regression inputs in Fixtures/fuzz/regressions/TARGET (a crash libFuzzer finds goes there, with a
# catalogue case for it) and, for the pickle and zip readers, the hostile files in
# Fixtures/hostile. New inputs go to a scratch corpus, not into git. A crash, a timeout (10 s per input) or an out-of-memory (2 GB) fails the run; the
# input that caused it is kept under $FUZZ_ARTIFACTS (default .build-fuzz/artifacts) and printed.
#     bash scripts/fuzz.sh [SECONDS] [TARGET...]
#     FUZZ_RUNS=1000000 bash scripts/fuzz.sh 0 skm     # a fixed number of executions instead
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"; shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors pickle zip skm skm-header tokenizer template config adapter-config gguf)
swift build -c release --product skfuzz --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING 2>&1 | grep -E "error|warning: unre|Compiling skfuzz|Build" || true
bin="$(swift build -c release --scratch-path .build-fuzz --show-bin-path)/skfuzz"
[ -x "$bin" ] || { echo "fuzz build failed"; exit 1; }
art="${FUZZ_ARTIFACTS:-$PWD/.build-fuzz/artifacts}"
mkdir -p "$art"
status=0
for t in "${targets[@]}"; do
  case "$t" in
    skm|skm-header|tokenizer|safetensors|pickle|zip|gguf) maxlen=262144 ;;
    *) maxlen=16384 ;;
  esac
  work="$(mktemp -d)"
  seeds="$t"; [ "$t" = skm-header ] && seeds=skm
  cp -r "Fixtures/fuzz/corpus/$seeds/." "$work/"
  [ -d "Fixtures/fuzz/regressions/$t" ] && cp -r "Fixtures/fuzz/regressions/$t/." "$work/"
  case "$t" in pickle|zip) cp Fixtures/hostile/*.bin "$work/" ;; esac
  # real chat templates as extra seeds when scripts/test_chat_templates.py has fetched them
  tdir="${SINKKIT_CACHE:-$HOME/.cache/sinkkit}/llama-templates"
  if [ "$t" = template ] && [ -d "$tdir" ]; then cp "$tdir"/*.jinja "$work/" 2>/dev/null || true; fi
  limit=(-max_total_time="$seconds")
  [ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
  log="$art/$t.log"
  echo "== fuzz $t (${FUZZ_RUNS:-${seconds}s})"
  if ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 "$bin" "$t" "${limit[@]}" -max_len="$maxlen" -timeout=10 \
       -rss_limit_mb=2048 -malloc_limit_mb=2048 -artifact_prefix="$art/$t-" -print_final_stats=1 "$work" > "$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "$log" | tail -2 || true
  else
    echo "fuzz $t FAILED: see $log"; grep -E "ERROR|SUMMARY|Test unit written|==[0-9]+==" "$log" | head -20
    status=1
  fi
  rm -rf "$work"
done
exit $status
