#!/usr/bin/env bash
# The release build every script uses. Extra arguments go to `swift build`.
#  - records the git commit for --version (Sources/SKKernels/sk_commit.h, git-ignored, rewritten
#    only when it changes, so a new commit recompiles one C file);
#  - links the Swift standard library statically (the binaries need only glibc, libstdc++,
#    OpenBLAS and zstd at run time);
#  - C kernels at -O3 (+1-3% prompt speed, ~15% quantize time; passed here rather than as a
#    target flag so a package depending on SinkKit can build it: SwiftPM refuses unsafeFlags in
#    dependencies);
#  - smaller binaries: every function and datum in its own section, so the linker's
#    --gc-sections drops what nothing uses, and the toolchain's lld with packed relative
#    relocations (DT_RELR, glibc >= 2.36: 1.5 MB of relocation entries become 13 KB) and identical
#    code folding (--icf=all: the many byte-identical generic specializations kept once; nothing
#    in SinkKit compares function addresses). skrun, stripped: 27.4 MB with none of these,
#    23.5 MB with all. Where the toolchain has no lld, the default linker is used (same program,
#    larger file).
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$(git rev-parse --short=10 HEAD 2>/dev/null || echo unknown)
if ! git diff --quiet HEAD -- Sources Package.swift 2>/dev/null; then commit="$commit+dirty"; fi
header=Sources/SKKernels/sk_commit.h
line="#define SK_COMMIT \"$commit\""
if [ ! -f "$header" ] || [ "$(cat "$header")" != "$line" ]; then echo "$line" > "$header"; fi
flags=(-c release --static-swift-stdlib -Xcc -O3
       -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xcc -fdata-sections)
lld="$(dirname "$(readlink -f "$(command -v swift)")")/ld.lld"
glibc_minor=$(ldd --version 2>/dev/null | sed -n 1p | sed -n 's/.* 2\.\([0-9][0-9]*\).*/\1/p')
if [ -x "$lld" ] && [ "${glibc_minor:-0}" -ge 36 ]; then
  toolset=.build/sinkkit-toolset.json
  mkdir -p .build
  printf '{"schemaVersion":"1.0","linker":{"path":"%s","extraCLIOptions":["-z","pack-relative-relocs","--icf=all"]}}\n' "$lld" > "$toolset.new"
  if cmp -s "$toolset.new" "$toolset"; then
    rm "$toolset.new"
  else
    # SwiftPM keeps its build plan (and so the old options) when only the toolset changes:
    # drop the plan and the old links.
    mv "$toolset.new" "$toolset"
    rm -f .build/release.yaml .build/*/release/description.json .build/*/release/skrun .build/*/release/skconv .build/*/release/skfuzz
  fi
  flags+=(--toolset "$toolset")
fi
swift build "${flags[@]}" "$@"
