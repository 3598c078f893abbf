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
# Every C file of the kernel target (build_info.c needs the build's generated commit header).
src="$(ls Sources/SKKernels/*.c | grep -v build_info.c | tr '\n' ' ') Tests/KernelTests/test_kernels.c"
echo "== native ($(uname -m))"
cc -O2 -Wall -ffp-contract=off -I Sources/SKKernels/include $src -lm -o "$out/native"
"$out/native"
echo "== scalar forced"
SK_KERNELS=scalar "$out/native" >/dev/null
echo "== aarch64 NEON under qemu-user"
aarch64-linux-gnu-gcc -O2 -Wall -ffp-contract=off -march=armv8-a -I Sources/SKKernels/include $src -lm -o "$out/neon"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/neon"   # qemu's "max" CPU: NEON and the sdot kernels
echo "== aarch64 NEON without the dot-product extension (Cortex-A72, the Raspberry Pi 4's core)"
qemu-aarch64 -cpu cortex-a72 -L /usr/aarch64-linux-gnu "$out/neon"
# The Swift package builds these files with the toolchain's clang, whose spelling of the target
# attributes differs from gcc's: compile every kernel file for aarch64 with it too.
swift_clang="$(dirname "$(readlink -f "$(command -v swift)")")/clang"
if [ -x "$swift_clang" ]; then
  echo "== aarch64 with the Swift toolchain's clang (compile only)"
  for f in $(ls Sources/SKKernels/*.c | grep -v build_info.c); do
    "$swift_clang" --target=aarch64-linux-gnu -isystem /usr/aarch64-linux-gnu/include -O2 -Wall -Werror \
      -I Sources/SKKernels/include -c "$f" -o "$out/clang-$(basename "$f").o"
  done
fi
