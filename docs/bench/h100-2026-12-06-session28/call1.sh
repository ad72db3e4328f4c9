#!/usr/bin/env bash
# Session 28, call 1: GPU suite with the tall-tile patch; float64 checks of
# the in-flight variant (flight); GEMM vs cuBLAS and ncu of the up GEMM for
# main, tall, flight; bench ffn,block for the three.
cd "$(dirname "$0")/.."
export PATH=$PWD/.device:$PATH
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
echo "== flight checks"
for s in chk-ffn-gelu-2048 chk-ffn-relu-f16-1536 chk-block-2x1024 chk-train-1024; do
  echo "-- $s"; timeout 90 .device/bpt-run .device-s28/flightchk/$s.json --iterations=3 > $OUT/chk-$s.txt 2>&1; echo "rc=$?"; tail -2 $OUT/chk-$s.txt
done
timeout 60 compute-sanitizer --tool racecheck .device/bpt-run .device-s28/flightchk/chk-ffn-relu-f16-1536.json --iterations=1 --warmup=0 2>&1 | tail -2
echo "== gemm_vs_cublas warm"
for v in main tall flight; do
  timeout 50 python3 bench/gemm_vs_cublas.py --sets ffn-gelu-s16384 --kernels .device-s28/$v --bpt-run .device/bpt-run --out $OUT/gemm-$v.json > $OUT/gemm-$v.txt 2>&1
  echo "-- $v rc=$?"; tail -4 $OUT/gemm-$v.txt
done
echo "== ncu up GEMM"
M=gpu__time_duration.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,lts__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__data_pipe_lsu_wavefronts_mem_shared_op_gmma.sum
for v in main tall flight; do
timeout 60 ncu -k regex:k2048_gelu --launch-count 1 --cache-control none --clock-control none --section WarpStateStats --metrics $M --export $OUT/up-$v --force-overwrite .device/bpt-run .device-s28/$v/ffn-gelu-s16384.json --no-check --iterations=1 --warmup=0 > $OUT/ncu-up-$v.txt 2>&1
echo "-- $v rc=$?"; grep -E "duration|hmma|lts__|gmma|Stall|Warp Cycles" $OUT/ncu-up-$v.txt | head -12
done
echo "== bench ffn,block"
for v in tall flight main flight tall; do
  timeout 60 python3 bench/bench.py --kernels .device-s28/$v --only ffn,block --max-seconds 1 --out $OUT/bench-$v > $OUT/bench-$v.txt 2>&1
  echo "-- $v rc=$?"; grep -E "^\| [0-9a-z]" $OUT/bench-$v.txt | head -12
done
echo "== gpu tests"
timeout 200 .device/run-gpu-tests.sh > $OUT/gpu-tests.txt 2>&1; echo "rc=$?"
grep -E '^(FAIL|UNRESOLVED|TIMEOUT|XPASS)|Passed|Failed|Unsupported' $OUT/gpu-tests.txt | tail -15
