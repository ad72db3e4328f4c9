#!/usr/bin/env bash
# Session 28, call 2: train and shapes, main against tall; ncu stalls of the
# tall up GEMM. Everything into one log ($OUT/call2.log) and the tables.
cd "$(dirname "$0")/.."
export PATH=$PWD/.device:$PATH
log=$OUT/call2.log
nvidia-smi --query-gpu=name --format=csv,noheader
for v in main tall main tall; do
  timeout 75 python3 bench/bench.py --kernels .device-s28/$v --only train --max-seconds 1 --out /tmp/b-$v > /tmp/t.txt 2>&1
  echo "-- train $v rc=$?"; grep -E "^\| [0-9a-z]" /tmp/t.txt
done
for v in main tall; do
  timeout 150 python3 bench/bench.py --kernels .device-s28/$v --only shapes --max-seconds 1 --out /tmp/s-$v > /tmp/s.txt 2>&1
  echo "-- shapes $v rc=$?"; grep -E "^\| [0-9a-z]" /tmp/s.txt | cut -c1-160
done
echo "== ncu tall up GEMM"
timeout 90 ncu -k regex:k2048_gelu --launch-count 1 --cache-control none --clock-control none --section WarpStateStats --section SchedulerStats --section SpeedOfLight --metrics sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_gmma.sum .device/bpt-run .device-s28/tall/ffn-gelu-s16384.json --no-check --iterations=1 --warmup=0 > $log 2>&1
echo "rc=$?"; grep -v "^==PROF" $log | grep -E "[0-9]" | grep -vE "^ *-+ *$" | head -60
