#!/usr/bin/env bash
# Configures (once) and builds bpt into build/ with Ninja; tools land in
# build/bin/. Extra arguments are Ninja targets (default: all).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"

build="$root/build"
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -G Ninja -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    -DLLVM_USE_LINKER=gold >/dev/null
fi
ninja -C "$build" "$@"
