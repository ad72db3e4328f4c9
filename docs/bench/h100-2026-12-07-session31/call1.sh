#!/usr/bin/env bash
# Session 31 call 1: version 29 (activation on the producer warpgroup's idle
# warps, `_m256_ph`) against session 30's kernels (k = old, n = new).
cd "$(dirname "$0")/.."
K=.device-s31/k; N=.device-s31/n
exec > >(tee $OUT/call.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
echo "== float64 checks (new)"
for s in $N/ffn-gelu-s16384 $N/block-s4096 $N/shape-ffn-2176-gelu $N/ffn-relu-s16384 $N/train-s4096; do
  timeout 60 .device/bpt-run $s.json --iterations=3 > /tmp/c.txt 2>&1; echo "$s rc=$?"; grep -E "^output|^PASS|^FAIL|bpt-run:|error|^time" /tmp/c.txt | head -6
done
echo "== gemm_vs_cublas old/new gelu relu"
for d in $K $N; do
  timeout 80 python3 bench/gemm_vs_cublas.py --sets ffn-gelu-s16384,ffn-relu-s16384 --kernels $d --bpt-run .device/bpt-run --out $OUT/gemm-$(basename $d).json > $OUT/gemm-$(basename $d).txt 2>&1; echo "$d rc=$?"; grep -E "gemm_sm90" $OUT/gemm-$(basename $d).txt | cut -c1-220
done
echo "== GPU suite (new kernels)"
BPT_GPU_TEST_TIMEOUT=90 timeout 190 .device/run-gpu-tests.sh > $OUT/suite.log 2>&1; echo "suite rc=$?"
grep -E "^(FAIL|UNSUP|XFAIL|TIMEOUT)|Passed|Failed|Unsupported|Timed" $OUT/suite.log | tail -15
echo "== bpt-run alternating"
for s in ffn-gelu-s16384 block-s4096 ffn-relu-s16384 shape-ffn-2176-gelu; do
  for d in $K $N $K $N; do
    printf "%s %s " $s $d; timeout 30 .device/bpt-run $d/$s.json --no-check --iterations=20 2>&1 | grep -E "^time"
  done
done
