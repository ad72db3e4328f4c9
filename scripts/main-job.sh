#!/usr/bin/env bash
# The main job: builds bpt, then compiles the default transformer block
# (examples/block.mlir) through bpt-blockwise and bpt-to-cpu, runs it on the
# CPU on seeded random inputs, and prints its error against the float64
# reference and the memory report (fused, and unfused for comparison).
# Exit status is non-zero if the result is out of tolerance.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" bpt-opt bpt-cpu-run >/dev/null

example="$root/examples/block.mlir"
bin="$root/build/bin"
echo "== bpt main job: $example"
echo "-- blockwise IR (bpt-blockwise): the fused query-block loop"
"$bin/bpt-opt" --bpt-blockwise "$example" |
  grep -E 'scf.forall|scf.for |bpt\.(linear|ffn|rms_norm|layer_norm)|bpt.q_block' || true
echo "-- CPU run (bpt-blockwise + bpt-to-cpu), fused, against the float64 reference"
"$bin/bpt-cpu-run" "$example"
echo "-- the same block unfused (FFN over the whole sequence), for the memory comparison"
"$bin/bpt-cpu-run" --no-fuse "$example"
echo "== done"
