#!/usr/bin/env bash
# Session 36, call 8 (branch ps-stagger): D 128 _ps with odd warp pairs
# taking the step's dQ piece before dV/dK, even ones after (s128), against
# main (m128f); the D 128 mma.sync tests with it.
exec > >(tee $OUT/call8.log) 2>&1
nvidia-smi --query-gpu=name --format=csv,noheader
timeout 100 .device/run-gpu-tests.sh --filter 'sm80.*d128|sm80-attention-backward|sanitize-sm80|sm80-attention-grad-ragged' 2>&1 | grep -E "FAIL|Passed|Failed|Unsupported|Timed" | head
ab() { for v in "$@"; do echo "-- $v"; timeout 40 python3 -W ignore bench/bench.py --kernels .device-s36/$v --only backward --max-seconds 0.2 --out $OUT/$v-$RANDOM 2>&1 | grep "^|" | grep -v "^| D \|---" | cut -d'|' -f2-7,14; done; }
ab m128f s128 s128 m128f
