#!/usr/bin/env bash
# Session 36, call 6 (branch grad-stagger): D 64 _qs2 with odd warp pairs
# taking the previous step's dQ after the scores' math (g64) against main
# (b64); the mma.sync GPU tests with it.
exec > >(tee $OUT/call6.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv
timeout 200 .device/run-gpu-tests.sh --filter 'sm80|sm86' 2>&1 | grep -E "FAIL|Passed|Failed|Unsupported|Timed" | head -20
ab() { for v in "$@"; do echo "-- $v"; timeout 90 python3 -W ignore bench/bench.py --kernels .device-s36/$v --only backward --max-seconds 0.25 --out $OUT/$v-$RANDOM 2>&1 | grep "^|" | grep -v "^| D \|---"; done; }
ab b64 g64 g64 b64
