#!/usr/bin/env bash
# Instructions one generated token's weight matmuls of SmolLM2-135M take on each kernel path
# (Tests/KernelTests/token_icount.c), counted under qemu-user with one instruction per
# translation block and every executed block logged: the count for 1 token minus the count for
# 0 tokens. The same method on both architectures (x86-64 under qemu-x86_64 -cpu max, so the
# AVX2 path; aarch64 under qemu-aarch64: the sdot path on -cpu max, plain NEON on cortex-a72).
# Writes docs/measurements/kernel-icount.md. A count of work, not a speed: see that page.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
src="$(ls Sources/SKKernels/*.c | grep -v build_info.c | tr '\n' ' ') Tests/KernelTests/token_icount.c"
cc -O2 -ffp-contract=off -I Sources/SKKernels/include $src -lm -o "$out/x86"
aarch64-linux-gnu-gcc -O2 -ffp-contract=off -march=armv8-a -I Sources/SKKernels/include $src -lm -o "$out/arm"
count() {  # qemu-binary cpu program args...
  local q=$1 cpu=$2; shift 2
  QEMU_LD_PREFIX=/usr/aarch64-linux-gnu "$q" -cpu "$cpu" -singlestep -d nochain,exec -D /dev/stdout "$@" | grep -c '^Trace' || true
}
md=docs/measurements/kernel-icount.md
{
  echo "# Instructions per generated token: SmolLM2-135M's weight matmuls, per kernel path"
  echo
  echo "Written by \`scripts/kernel_icount.sh\` ($(date -u +%Y-%m-%d)). Counted under qemu-user (one"
  echo "instruction per translation block, every executed block logged): the program runs one token's"
  echo "matmuls (30 layers × q/k/v/o/gate/up/down, then the 49,152-row output matrix; activation"
  echo "quantization included; attention, norms and sampling not) and the count for 0 tokens is"
  echo "subtracted. Instructions are not time: an sdot or vpmaddubsw does 16-32 multiply-adds."
  echo
  echo "| path | int8 | int4 | int4-sym |"
  echo "|---|---|---|---|"
} > "$md.tmp"
# table_rows "types" [mode] spec...: one row per spec "label|qemu|cpu|program|path", one column
# per type: the count for 1 (token or quantization) minus the count for 0.
table_rows() {
  local types=$1 mode=$2; shift 2
  local spec label qemu cpu prog path row type c0 c1 m
  for spec in "$@"; do
    IFS='|' read -r label qemu cpu prog path <<< "$spec"
    row="| $label |"
    for type in $types; do
      c0=$(count $qemu "$cpu" "$prog" $mode "$path" "$type" 0)
      c1=$(count $qemu "$cpu" "$prog" $mode "$path" "$type" 1)
      if [ "$c0" -le 0 ] || [ "$c1" -le "$c0" ]; then echo "no count for $label $type ($c0, $c1)" >&2; exit 1; fi
      m=$(python3 -c "print(f'{($c1 - $c0) / 1e6:.1f} M')")
      echo "${mode:+$mode }$label $type: $m" >&2
      row="$row $m |"
    done
    echo "$row" >> "$md.tmp"
  done
}
table_rows "int8 int4 int4-sym" "" \
  "x86-64 AVX2|qemu-x86_64|max|$out/x86|avx2" \
  "aarch64 NEON + sdot|qemu-aarch64|max|$out/arm|neon" \
  "aarch64 plain NEON|qemu-aarch64|cortex-a72|$out/arm|neon-plain" \
  "aarch64 NEON, SKM row layout (before the x8 kernels)|qemu-aarch64|cortex-a72|$out/arm|neon-rows"
{
  echo
  echo "## The quantizer: instructions to quantize one 192 × 576 matrix (SmolLM2's k_proj, Gaussian values)"
  echo
  echo "The same counting: \`token_icount quant <path> <type> 1\` minus \`… 0\`. The scalar path evaluates"
  echo "every candidate of the spec's search; the SIMD paths (quant_lanes.h: AVX2 4 blocks per f64"
  echo "vector, NEON 2) prune the candidates that cannot win and write the same bytes."
  echo
  echo "| path | int4 | int4-sym |"
  echo "|---|---|---|"
} >> "$md.tmp"
table_rows "int4 int4-sym" quant \
  "x86-64 scalar|qemu-x86_64|max|$out/x86|scalar" "x86-64 AVX2|qemu-x86_64|max|$out/x86|simd" \
  "aarch64 scalar|qemu-aarch64|max|$out/arm|scalar" "aarch64 NEON|qemu-aarch64|max|$out/arm|simd"
mv "$md.tmp" "$md"
cat "$md"
# the table into the README, between its icount markers
python3 - "$md" <<'PY'
import re, sys
table = "\n".join(l for l in open(sys.argv[1]).read().split("## The quantizer")[0].splitlines() if l.startswith("|"))
readme = open("README.md").read()
new = re.sub(r"(<!-- icount:start -->\n).*?(\n<!-- icount:end -->)", lambda m: m.group(1) + table + m.group(2), readme, flags=re.S)
open("README.md.tmp", "w").write(new)
PY
mv README.md.tmp README.md
