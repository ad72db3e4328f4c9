#!/usr/bin/env bash
# Session 39, call 1 (one call, ~7 min; carry [".device", ".device-next"]).
# Here first:
#   BENCH_OPS=train bench/compile.sh .device-next/plain
#   BENCH_OPS=train bench/compile.sh .device-next/recompute --recompute-projections
#   for S in 131072 163840 196608 229376: bpt-compile --chip=sm_90a --op=block
#     --backward --batch=1 --dtype=bf16 --seq=$S --hidden=2048 --heads=16
#     --ffn=8192 --activation=gelu --norm=rms_norm --causal
#     --recompute-projections -o .device-next/maxlen-r/maxlen-s$S
#   scripts/gpu-bundle.sh
# (1) The GPU tests of the training step (session 38's recompute and sm_80
# FFN-gradient chunks, session 39's writes-over and split pre-pass, none
# run before) and the memory report of the 16k recompute set; (2) the bench
# step plain against --recompute-projections (predicted +4% time at 16k,
# +2% at 64k; memory 705 -> 513 and 2052 -> 1544.5 MiB); (3) the longest
# step under 8 GiB with the recompute (predicted 196608 tokens, 7.71 GiB
# from the manifest; eager ~88k).
exec > >(tee $OUT/call1.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
echo "-- GPU tests"
timeout 170 .device/run-gpu-tests.sh --filter "block-backward|recompute|memory-report|sm80-block" 2>&1 | tail -15
echo "-- memory report of the recompute set at 16k"
.device/bpt-run .device-next/recompute/train-s16384.json --no-check --iterations=1 --warmup=0 2>&1 | grep -i "device memory"
echo "-- bench: plain, recompute (eager in each run)"
for d in plain recompute; do
  echo "== $d"
  timeout 100 python3 -W ignore bench/bench.py --kernels .device-next/$d --only train --max-seconds 0.5 2>&1 | grep "^|" | tail -4
done
echo "-- maxlen under 8 GiB, recompute sets"
timeout 120 python3 -W ignore bench/bench.py --kernels .device-next/maxlen-r --only maxlen --cap-gib 8 2>&1 | tail -8
