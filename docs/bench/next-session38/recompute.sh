#!/usr/bin/env bash
# Prepared in session 38 (no device was lent) for the next device session:
# issue 13's --recompute-projections, correctness and cost. Here first:
#   BENCH_OPS=train bench/compile.sh .device-next/plain
#   BENCH_OPS=train bench/compile.sh .device-next/recompute --recompute-projections
#   scripts/gpu-bundle.sh        # builds .device/, the new GPU test included
# (the GPU tests include the sm_80 training sets whose FFN gradient now
# goes by chunks, also new in session 38) then one device call (about 5 minutes) with carry [".device", ".device-next"]:
#   bash docs/bench/next-session38/recompute.sh
# Predicted (docs/design.md, "Recomputed projections"): S 16k workspace
# 705 -> 515 MiB (bench memory column 0.51 -> ~0.41 of eager), time +0.8 ms
# (+4%, three 16k x 2048 x 2048 GEMMs and a norm); S 64k memory unchanged,
# time +3 ms (+2%); S 4k memory -25%, time +4%. bpt-run's memory report
# must stay within 10% of the driver's drop on the recompute set.
exec > >(tee $OUT/recompute.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
echo "-- GPU tests: the new set, the block backward sets, the memory report"
.device/run-gpu-tests.sh --filter "block-backward|recompute|memory-report|sm80-block" 2>&1 | tail -15
echo "-- memory report of the recompute set at 16k"
.device/bpt-run .device-next/recompute/train-s16384.json --no-check --iterations=1 --warmup=0 2>&1 | grep -i "device memory"
echo "-- bench: plain, recompute, recompute, plain (eager in each run)"
for d in plain recompute recompute plain; do
  echo "== $d"
  python3 -W ignore bench/bench.py --kernels .device-next/$d --only train --max-seconds 0.5 2>&1 | grep "^|" | tail -4
done
