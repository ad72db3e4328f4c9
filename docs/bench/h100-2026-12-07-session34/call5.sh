#!/usr/bin/env bash
# Session 34, call 5: the sm_90a backward's lane values anew each step
# (D 64 spills 12-16 -> 0 bytes); the mma.sync D 64 backward at 3 stages.
exec > >(tee $OUT/call5.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv
echo "== sm_90a backward GPU tests"
.device/run-gpu-tests.sh --filter 'sm90-attention-grad|sm90-attention-backward|sanitize-attention-backward|sanitize-sm90-attention-grad|torch-attention|block-backward|sm90-block-backward' 2>&1 | grep -E "FAIL|Passed|Failed|Unsupported"
echo "== sm_90a D 64 backward A/B (base, var, var, base)"
for v in base var var base; do
  echo "-- $v"
  python3 -W ignore bench/bench.py --kernels .device-s34/d64-$v --only backward --max-seconds 0.4 --out $OUT/d64-$v-$RANDOM 2>&1 | grep "^| 64"
done
echo "== mma.sync D 64: 2 stages (new) against 3 (st3), alternating"
for v in new st3 st3 new; do
  echo "-- $v"
  python3 -W ignore bench/bench.py --kernels .device-s34/s80-$v --only backward --max-seconds 0.4 --out $OUT/s80b-$v-$RANDOM 2>&1 | grep "^| 64"
done
