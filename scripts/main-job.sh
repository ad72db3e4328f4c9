#!/usr/bin/env bash
# The main job: builds bpt and compiles the default transformer block
# (examples/block.mlir). With a usable NVIDIA GPU it compiles the block to
# PTX (bpt-compile) and runs it there against the float64 reference
# (bpt-run); otherwise it runs the same blockwise IR on the CPU
# (bpt-blockwise + bpt-to-cpu, bpt-cpu-run) with the numerical check and the
# memory report. Exit status is non-zero if the result is out of tolerance.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" bpt-opt bpt-cpu-run bpt-compile bpt-run >/dev/null

example="$root/examples/block.mlir"
bin="$root/build/bin"
echo "== bpt main job: $example"
echo "-- blockwise IR (bpt-blockwise): the fused query-block loop"
"$bin/bpt-opt" --bpt-blockwise "$example" |
  grep -E 'scf.forall|scf.for |bpt\.(linear|ffn|rms_norm|layer_norm)|bpt.q_block' || true

if gpu=$("$bin/bpt-run" --probe 2>&1); then
  out=$(mktemp -d)/block
  echo "-- GPU: $gpu"
  echo "-- bpt-compile (bpt-blockwise + bpt-to-nvvm) -> $out.ptx, $out.json"
  "$bin/bpt-compile" "$example" -o "$out"
  echo "-- bpt-run on the GPU, against the float64 reference"
  "$bin/bpt-run" "$out.json"
else
  echo "-- no GPU ($gpu): running on the CPU"
  echo "-- CPU run (bpt-blockwise + bpt-to-cpu), fused, against the float64 reference"
  "$bin/bpt-cpu-run" "$example"
  echo "-- the same block unfused (FFN over the whole sequence), for the memory comparison"
  "$bin/bpt-cpu-run" --no-fuse "$example"
fi
echo "== done"
