#!/usr/bin/env bash
# Session 37, call 2: the dQ reductions at one address a lane with their
# offsets in the instruction (n64, n128) against main (g64, g128); the
# mma.sync GPU tests with it.
exec > >(tee $OUT/call2.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
timeout 110 .device/run-gpu-tests.sh --filter 'sm80-attention-grad|sm80-attention-backward' 2>&1 | grep -E "FAIL|Passed|Failed|Unsupported|Timed" | head -20
ab() { for v in "$@"; do echo "-- $v"; timeout 70 python3 -W ignore bench/bench.py --kernels .device-s37/$v --only backward --max-seconds 0.25 --out $OUT/$v-$RANDOM 2>&1 | grep "^|" | grep -v "^| D \|---" | cut -d"|" -f2-7,11,14,15; done; }
ab g64 n64 n64 g64 g128 n128 n128 g128
