#!/usr/bin/env bash
# Session 33, call 3: the combine with four slices a block where one warp takes a slice's splits.
exec > >(tee $OUT/call.log) 2>&1
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
R=.device/bpt-run; S=.device-s33
echo "== GPU tests: split-K/V and the sanitizer"
timeout 240 .device/run-gpu-tests.sh --filter 'split-kv' 2>&1 | grep -E "PASS|FAIL|Passed|Failed|Unsupported"
echo "== float64 checks"
for s in mqa gqa gqa-s16 gqa32k q16 d80 odd; do timeout 120 $R $S/new2/$s.json --iterations=2 2>&1 | grep -E "relative error|FAIL|rror" | tr '\n' ' '; echo " $s"; done
echo "== ncu"
for s in new/q16 new2/q16 new/gqa32k new2/gqa32k new2/gqa-s16 new2/mqa new2/gqa; do
  echo "-- $s"
  timeout 90 ncu --clock-control none --metrics gpu__time_duration.sum \
    --launch-skip 4 --launch-count 2 $R $S/$s.json --no-check --iterations=3 --warmup=0 2>&1 | grep -E "^  attention_split|gpu__time" | sed 's/(.*CC 9.0//'
done
echo "== bench.py shapes"
timeout 300 python3 -W ignore bench/bench.py --kernels $S/shapes --only shapes --max-seconds 2 --out $OUT/bench 2>&1 | grep -E "copy bandwidth|^\|"
