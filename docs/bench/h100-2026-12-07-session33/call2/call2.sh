#!/usr/bin/env bash
# Session 33, call 2: the sliced combine kernel (new/) against main's (dec/).
exec > >(tee $OUT/call.log) 2>&1
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
R=.device/bpt-run; S=.device-s33
echo "== GPU tests: split-K/V and the sanitizer"
timeout 240 .device/run-gpu-tests.sh --filter 'split-kv' 2>&1 | grep -E "PASS|FAIL|Passed|Failed|Unsupported"
echo "== ncu, old (dec) then new"
for s in dec/mqa-def new/mqa dec/gqa-def new/gqa dec/mqa-s1024 new/mqa-s1024 new/gqa32k new/q16; do
  echo "-- $s"
  timeout 90 ncu --clock-control none --metrics gpu__time_duration.sum \
    --launch-skip 4 --launch-count 2 $R $S/$s.json --no-check --iterations=3 --warmup=0 2>&1 | grep -E "^  attention_split|gpu__time" | sed 's/(.*CC 9.0//'
done
echo "== bpt-run, plain and --graph (median/min), old then new, twice"
for round in 1 2; do
for s in dec/mqa-def new/mqa dec/gqa-def new/gqa; do
  a=$(timeout 60 $R $S/$s.json --no-check --iterations=1000 --warmup=100 2>&1 | grep "time:")
  g=$(timeout 60 $R $S/$s.json --no-check --iterations=1000 --warmup=100 --graph 2>&1 | grep "time:")
  echo "$s | $a | graph $g"
done; done
echo "== float64 checks"
for s in mqa mqa-s1024 mqa-s128 gqa gqa-s16 gqa32k q16 d80; do timeout 120 $R $S/new/$s.json --iterations=2 2>&1 | grep -E "PASS|FAIL|error" | tr '\n' ' '; echo " $s"; done
echo "== bench.py shapes (new combine)"
timeout 300 python3 -W ignore bench/bench.py --kernels $S/shapes --only shapes --max-seconds 2 --out $OUT/bench 2>&1 | grep -E "copy bandwidth|^\|"
