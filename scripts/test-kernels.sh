#!/usr/bin/env bash
# The C kernels against their scalar reference: natively (AVX2 on x86-64), and the NEON path
# built with Debian's aarch64 cross compiler and run under qemu-user. Installs both if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
src="Sources/SKKernels/scalar.c Sources/SKKernels/avx2.c Sources/SKKernels/neon.c Sources/SKKernels/dispatch.c Sources/SKKernels/sha256.c Sources/SKKernels/pack.c Sources/SKKernels/vnni.c Sources/SKKernels/quant.c Sources/SKKernels/half.c Sources/SKKernels/crc32.c Tests/KernelTests/test_kernels.c"
echo "== native ($(uname -m))"
cc -O2 -Wall -ffp-contract=off -I Sources/SKKernels/include $src -lm -o "$out/native"
"$out/native"
echo "== scalar forced"
SK_KERNELS=scalar "$out/native" >/dev/null
echo "== aarch64 NEON under qemu-user"
aarch64-linux-gnu-gcc -O2 -Wall -ffp-contract=off -march=armv8-a -I Sources/SKKernels/include $src -lm -o "$out/neon"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/neon"
