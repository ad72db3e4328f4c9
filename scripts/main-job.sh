#!/usr/bin/env bash
# The main job: builds bpt, then takes the default transformer block
# (examples/block.mlir) through as much of the pipeline as exists today:
# verification and bpt-decompose-block. Later stages (blockwise tiling,
# CPU and GPU execution) extend this script as they land.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh" bpt-opt >/dev/null

example="$root/examples/block.mlir"
echo "== bpt main job: $example"
echo "-- model level, verified and printed by bpt-opt"
"$root/build/bin/bpt-opt" "$example"
echo "-- after bpt-decompose-block"
"$root/build/bin/bpt-opt" --bpt-decompose-block "$example"
echo "== done: the block verified and decomposed into bpt primitives"
