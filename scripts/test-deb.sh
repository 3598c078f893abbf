#!/usr/bin/env bash
# CI check of the Debian package: builds it (scripts/make-deb.sh), installs it with dpkg into an
# empty root (its own dpkg database; the system's libraries serve the dependencies, which dpkg
# is told to accept), then checks from that root alone: skrun/skconv --version name this commit,
# skrun is at most 25 MB, the manual pages and completions are in place (the completions know the
# enum values), every shared library the binaries load is shipped by a package the control file
# declares, and a tiny model runs end to end (skconv quantize, skrun generate).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
deb=$(bash scripts/make-deb.sh --no-build --out "$work" | tail -1 | cut -d' ' -f1)
root="$work/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
dpkg --root="$root" --force-depends --force-not-root --log=/dev/null -i "$deb" >/dev/null 2>"$work/dpkg.log" || { cat "$work/dpkg.log"; exit 1; }
fail() { echo "test-deb: $*" >&2; exit 1; }
dpkg --root="$root" -s sinkkit | grep "^Status: install ok installed" >/dev/null || fail "dpkg does not list sinkkit as installed"
bin="$root/usr/bin"
commit=$(git rev-parse --short=10 HEAD)
for t in skrun skconv; do
  v=$(env -i "$bin/$t" --version)
  case "$v" in *"$commit"*) ;; *) fail "$t --version says '$v', not commit $commit" ;; esac
done
size=$(stat -c %s "$bin/skrun")
[ "$size" -le 25000000 ] || fail "skrun is $size bytes, over 25 MB"
for page in skrun.1 skrun-serve.1 skconv.1 skconv-quantize.1; do
  [ -s "$root/usr/share/man/man1/$page" ] || fail "manual page $page missing"
done
grep -q "int4-sym" "$root/usr/share/bash-completion/completions/skconv" || fail "bash completion lacks the --type values"
grep -q "h2o" "$root/usr/share/zsh/site-functions/_skrun" || fail "zsh completion lacks the --kv values"
grep -q "h2o" "$root/usr/share/fish/vendor_completions.d/skrun.fish" || fail "fish completion lacks the --kv values"
bash -n "$root/usr/share/bash-completion/completions/skrun" || fail "bash completion does not parse"
depends=$(dpkg --root="$root" -s sinkkit | sed -n 's/^Depends: //p')
for b in "$bin/skrun" "$bin/skconv"; do
  for lib in $(readelf -d "$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !f {print $NF; f = 1}')
    pkg=""
    for p in "$path" "$(readlink -f "$path")" "/usr$path"; do pkg=$(dpkg -S "$p" 2>/dev/null | sed -n 1p | cut -d: -f1 | cut -d, -f1) && [ -n "$pkg" ] && break; done
    [ -n "$pkg" ] || fail "no package ships $lib"
    case "$pkg" in libopenblas0*) pkg=libopenblas0 ;; esac
    echo "$depends" | grep "\b$pkg\b" >/dev/null || fail "$lib comes from $pkg, which Depends ($depends) does not name"
  done
done
"$bin/skconv" quantize --model Fixtures/tiny/llama-f32 --type int8 --output "$work/tiny.skm" >/dev/null 2>&1 || fail "skconv quantize failed"
out=$(env -i "$bin/skrun" "$work/tiny.skm" -p "hello" -n 4 --temp 0 2>/dev/null) || fail "skrun generate failed"
echo "test-deb: $(basename "$deb") installs with dpkg; skrun $(( size / 1000000 )) MB; --version, manual pages, completions, dependencies and a tiny model end to end OK"
