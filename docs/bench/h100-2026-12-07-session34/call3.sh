#!/usr/bin/env bash
# Session 34, call 3: GPU suite on the final build, the backward table,
# the block's training step before/after the 80-row backward.
exec > >(tee $OUT/call3.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv
echo "== full GPU suite"
timeout 420 .device/run-gpu-tests.sh 2>&1 | grep -E "FAIL|Passed|Failed|Unsupported|Testing Time"
echo "== backward table (bench shapes)"
python3 -W ignore bench/bench.py --kernels .device-s34/bwd-all --only backward --max-seconds 0.5 --out $OUT/bwd-all 2>&1 | grep "^|"
echo "== training step (old, new, new, old)"
for v in old new new old; do
  echo "-- $v"
  python3 -W ignore bench/bench.py --kernels .device-s34/train-$v --only train --max-seconds 1 --out $OUT/train-$v-$RANDOM 2>&1 | grep "^|"
done
