#!/usr/bin/env bash
# Installs bpt into a temporary prefix and builds and runs the consumers in
# examples/ against the installed package only (no path into the source or
# build tree): the embedding contract of the CMake package.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$root/build" --prefix "$work/prefix" >/dev/null
cmake -G Ninja -S "$root/examples/consumer-cpp" -B "$work/consumer-cpp" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
ninja -C "$work/consumer-cpp" >/dev/null
"$work/consumer-cpp/bpt-consumer" "$work/attention.ptx"
# The registered pipelines give the sm_90a tensor-core kernel (bf16, head
# dim 64, 256 rows), as bpt-compile does.
grep -q '^.visible .entry attention_sm90_d64_causal' "$work/attention.ptx"
grep -q 'wgmma.mma_async' "$work/attention.ptx"
echo "consumer-cpp: PASS (the wgmma attention kernel through the registered pipelines of the installed package)"
cmake -G Ninja -S "$root/examples/consumer-c" -B "$work/consumer-c" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
ninja -C "$work/consumer-c" >/dev/null
"$work/consumer-c/bpt-consumer-c" "$work/attention-c"
# bf16, head dim 64, 128 rows: eligible for the sm_90a tensor-core kernel.
grep -q '^.visible .entry attention_sm90_d64' "$work/attention-c.ptx"
grep -q '"op": "attention"' "$work/attention-c.json"
grep -q '"tensor_map": 0' "$work/attention-c.json"
echo "consumer-c: PASS (PTX + manifest through the C API, sm_90a kernel)"
