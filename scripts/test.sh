#!/usr/bin/env bash
# README command 2: install what is missing, build the real model if needed, run every test
# (unit tests on the committed fixtures and the end-to-end tests on the real model).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/fetch-real-model.sh
export SINKKIT_REQUIRE_REAL_MODEL=1
swift test 2>&1
