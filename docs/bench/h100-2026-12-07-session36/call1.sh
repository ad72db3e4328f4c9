#!/usr/bin/env bash
# Session 36, call 1 (branch sm80-grad-split): GPU tests of the mma.sync
# kernels, then A/B of the paired backward (b64 _qs2, b128 _ps) against
# main's (m64, m128), with flash and cuDNN in the same run.
exec > >(tee $OUT/call1.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv
echo "== mma.sync GPU tests"
time timeout 300 .device/run-gpu-tests.sh --filter 'sm80|sm86' 2>&1 | grep -E "FAIL|Passed|Failed|Unsupported|Timed|error" | head -40
ab() { for v in "$@"; do echo "-- $v"; timeout 90 python3 -W ignore bench/bench.py --kernels .device-s36/$v --only backward --max-seconds 0.25 --out $OUT/$v-$RANDOM 2>&1 | grep "^|" | grep -v "^| D \|---"; done; }
echo "== A/B D 64"
ab m64 b64 b64 m64
echo "== A/B D 128"
ab m128 b128 b128 m128
