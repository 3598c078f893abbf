# Sourced by the scripts: the Python virtual environment install-deps.sh made comes first on PATH,
# so `python3` (in the scripts and in the tests) is the one with SinkKit's packages.
export PATH="${SINKKIT_CACHE:-$HOME/.cache/sinkkit}/venv/bin:$PATH"
