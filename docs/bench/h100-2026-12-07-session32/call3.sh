#!/usr/bin/env bash
# Session 32 call 3: bench.py's FFN, block and training rows on main's sets
# with the launches prepared once per allocation (same rows as call 1).
cd "$(dirname "$0")/.."
exec > >(tee $OUT/call.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
timeout 400 python3 -W ignore bench/bench.py --kernels .device-s32/k --only ffn,block,train --max-seconds 8 --out $OUT/bench > $OUT/bench.txt 2>&1; echo "bench rc=$?"
grep -v "^    " $OUT/bench.txt | grep "|"
