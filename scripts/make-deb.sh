#!/usr/bin/env bash
# Builds a Debian package of SinkKit with dpkg-deb:
#
#   bash scripts/make-deb.sh [--no-build] [--out DIR]      -> DIR/sinkkit_VERSION_ARCH.deb
#
# It holds what scripts/install.sh installs under /usr (stripped skrun and skconv, manual pages,
# bash/zsh/fish completions, the documents). Depends lists the package of every shared library
# the binaries load (found with dpkg -S; the Swift runtime is linked in statically): glibc at
# least 2.36 (packed relative relocations), libstdc++, libgcc, zstd and OpenBLAS (any of its
# Debian builds). scripts/test-deb.sh installs it into an empty root and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0; shift ;;
    --out) out="$2"; shift 2 ;;
    *) echo "make-deb.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v dpkg-deb >/dev/null || { echo "make-deb.sh: dpkg-deb is missing (apt-get install dpkg)" >&2; exit 4; }
version=$(sed -n 's/.*static let release = "\(.*\)".*/\1/p' Sources/SKCore/Version.swift)
arch=$(dpkg --print-architecture)
[ "$build" = 1 ] && bash scripts/build.sh >&2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
bash scripts/install.sh --no-build --prefix /usr --destdir "$stage/root"
# One package name (or alternatives) per shared library the binaries ask for.
owner() {   # the package that ships a library (merged-/usr systems register either path)
  local lib="$1" p
  for path in "/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/$lib" "/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/$lib"; do
    p=$(dpkg -S "$path" 2>/dev/null | sed -n 1p | cut -d: -f1) && [ -n "$p" ] && { echo "$p"; return; }
  done
  p=$(dpkg -S "$(readlink -f "$(ldconfig -p | awk -v l="$lib" '$1 == l && !f {print $NF; f = 1}')")" 2>/dev/null | sed -n 1p | cut -d: -f1)
  echo "$p"
}
deps=()
for lib in $(for b in "$stage/root/usr/bin/"*; do readelf -d "$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; done | sort -u); do
  case "$lib" in
    libc.so.*|libm.so.*|ld-linux*|libpthread.so.*|libdl.so.*) deps+=("libc6 (>= 2.36)") ;;
    libopenblas.so.*) deps+=("libopenblas0 | libopenblas0-pthread | libopenblas0-openmp | libopenblas0-serial") ;;
    *) p=$(owner "$lib"); [ -n "$p" ] || { echo "make-deb.sh: no package ships $lib" >&2; exit 4; }; deps+=("$p") ;;
  esac
done
depends=$(printf '%s\n' "${deps[@]}" | sort -u | paste -sd, | sed 's/,/, /g')
mkdir -p "$stage/root/DEBIAN"
cat > "$stage/root/DEBIAN/control" <<CONTROL
Package: sinkkit
Version: $version
Architecture: $arch
Maintainer: SinkKit authors <sinkkit@localhost>
Installed-Size: $(du -sk "$stage/root/usr" | cut -f1)
Depends: $depends
Section: science
Priority: optional
Description: LoRA/SinkLoRA checkpoints to fast, low-memory CPU inference
 skconv merges PEFT LoRA adapters (and LongLoRA/SinkLoRA extras) into Hugging Face
 LLaMA-family checkpoints and quantizes them into SKM files; skrun runs SKM files on the
 CPU: generation, chat, an OpenAI-compatible server, perplexity and benchmarks, with
 SF-Attn and H2O / sink-window KV caches for long inputs in bounded memory.
CONTROL
(cd "$stage/root" && find usr -type f -exec md5sum {} + | sort -k2 > DEBIAN/md5sums)
mkdir -p "$out"
deb="$out/sinkkit_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage/root" "$deb.tmp" >/dev/null
mv "$deb.tmp" "$deb"
echo "$deb ($(du -h "$deb" | cut -f1)); Depends: $depends"
