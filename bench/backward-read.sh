#!/usr/bin/env bash
# Where the attention backward's time goes, on the GPU machine, from the
# repository root: the GPU suite (.device/run-gpu-tests.sh), then the time
# of each kernel (ncu, one run, microseconds) of the attention_grad sets
# that `BENCH_OPS=backward bench/compile.sh .device/bench` made here.
# The side-by-side table against SDPA's backward is
# `bench/bench.py --only backward`.
cd "$(dirname "$0")/.."
timeout 240 .device/run-gpu-tests.sh 2>&1 | grep -E "FAIL|Passed|Failed|Unsupported" | tail -8
for j in .device/bench/attention-grad-*.json; do
  n=$(basename "$j" .json)
  timeout 60 ncu --clock-control none --cache-control none \
    --metrics gpu__time_duration.sum .device/bpt-run "$j" --no-check \
    --iterations=1 --warmup=0 > "$OUT/$n.ncu" 2>&1
  echo "$n: $(awk '/^  [a-z_0-9]+ \(/{n=$1} /gpu__time_duration/{u=$(NF-1); v=$NF; if(u=="ms") v=v*1000; printf "%s=%.0f ", n, v}' "$OUT/$n.ncu" | cut -c1-400)"
done
