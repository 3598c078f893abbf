#!/usr/bin/env bash
# Installs SinkKit's two programs with their manual pages and shell completions:
#
#   bash scripts/install.sh [--prefix DIR] [--destdir DIR] [--no-build]
#
#   DIR/bin/skrun, DIR/bin/skconv                    stripped binaries
#   DIR/share/man/man1/*.1                           manual pages (scripts/make_man.py, from each tool's help)
#   DIR/share/bash-completion/completions/*          bash completions
#   DIR/share/zsh/site-functions/_*                  zsh completions
#   DIR/share/fish/vendor_completions.d/*.fish       fish completions
#   DIR/share/doc/sinkkit/                           README, LICENSE, CHANGELOG, the SKM spec
#
# --prefix defaults to /usr/local (use ~/.local for a user install; put DIR/bin on PATH);
# --destdir stages everything under another root (packaging: scripts/make-deb.sh); --no-build
# installs what scripts/build.sh last built. Needs strip (binutils) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/usr/local destdir="" build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#*=}"; shift ;;
    --destdir) destdir="$2"; shift 2 ;;
    --destdir=*) destdir="${1#*=}"; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path (got $prefix)" >&2; exit 2 ;; esac
[ "$build" = 1 ] && bash scripts/build.sh >&2
bin="$(swift build -c release --show-bin-path)"
root="$destdir$prefix"
install -d "$root/bin" "$root/share/man/man1" "$root/share/bash-completion/completions" \
  "$root/share/zsh/site-functions" "$root/share/fish/vendor_completions.d" "$root/share/doc/sinkkit"
for tool in skrun skconv; do
  [ -x "$bin/$tool" ] || { echo "install.sh: $bin/$tool is missing (run without --no-build)" >&2; exit 4; }
  strip -o "$root/bin/$tool.tmp" "$bin/$tool"
  chmod 755 "$root/bin/$tool.tmp"
  mv "$root/bin/$tool.tmp" "$root/bin/$tool"
  "$bin/$tool" --generate-completion-script bash > "$root/share/bash-completion/completions/$tool"
  "$bin/$tool" --generate-completion-script zsh > "$root/share/zsh/site-functions/_$tool"
  "$bin/$tool" --generate-completion-script fish > "$root/share/fish/vendor_completions.d/$tool.fish"
done
# Manual pages: one per command and subcommand (skrun.1, skrun-serve.1, ...), from each tool's
# own help (--experimental-dump-help).
for tool in skrun skconv; do
  python3 scripts/make_man.py "$bin/$tool" "$root/share/man/man1" >/dev/null
done
install -m 644 README.md LICENSE CHANGELOG.md Formats/SKM.md "$root/share/doc/sinkkit/"
echo "installed skrun and skconv in $root/bin ($(du -h "$root/bin/skrun" | cut -f1) and $(du -h "$root/bin/skconv" | cut -f1)), $(ls "$root/share/man/man1" | grep -c -E '^sk(run|conv)') manual pages, bash/zsh/fish completions" >&2
