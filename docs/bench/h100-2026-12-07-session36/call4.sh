#!/usr/bin/env bash
# Session 36, call 4 (branch d64-ps, experiment): D 64 with Pᵀ and dSᵀ
# through shared memory (_ps; 224 registers) against main's _qs2 (b64).
exec > >(tee $OUT/call4.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv
ab() { for v in "$@"; do echo "-- $v"; timeout 90 python3 -W ignore bench/bench.py --kernels .device-s36/$v --only backward --max-seconds 0.25 --out $OUT/$v-$RANDOM 2>&1 | grep "^|" | grep -v "^| D \|---"; done; }
ab b64 p64 p64 b64
