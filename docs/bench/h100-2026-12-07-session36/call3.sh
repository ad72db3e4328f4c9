#!/usr/bin/env bash
# Session 36, call 3 (branch grad-rotate): non-causal backward kernels walk
# the query blocks from their key block's index on (mod the count), so the
# blocks of a head in flight add into different dQ rows. GPU tests of the
# backward kernels, then A/B against main (b80 / m90) at S 4k and 16k.
exec > >(tee $OUT/call3.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv
echo "== backward GPU tests"
timeout 280 .device/run-gpu-tests.sh --filter 'grad|backward' 2>&1 | grep -E "FAIL|Passed|Failed|Unsupported|Timed" | head -30
ab() { for v in "$@"; do echo "-- $v"; timeout 60 python3 -W ignore bench/bench.py --kernels .device-s36/$v --only backward --max-seconds 0.25 --out $OUT/$v-$RANDOM 2>&1 | grep "^|" | grep -v "^| D \|---"; done; }
for d in 64 128; do
  echo "== sm_80 D $d"; ab b80-$d r80-$d r80-$d b80-$d
  echo "== sm_90a D $d"; ab m90-$d r90-$d r90-$d m90-$d
done
