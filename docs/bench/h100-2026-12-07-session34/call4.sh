#!/usr/bin/env bash
# Session 34, call 4: the mma.sync backward with its lane values taken
# anew each step (no hoisted swizzled addresses): tests and A/B.
exec > >(tee $OUT/call4.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv
echo "== mma.sync GPU tests"
.device/run-gpu-tests.sh --filter 'sm80|sm86' 2>&1 | grep -E "FAIL|Passed|Failed|Unsupported"
echo "== mma.sync backward A/B (old, new, new, old)"
for v in old new new old; do
  echo "-- $v"
  python3 -W ignore bench/bench.py --kernels .device-s34/s80-$v --only backward --max-seconds 0.4 --out $OUT/s80-$v-$RANDOM 2>&1 | grep "^|"
done
