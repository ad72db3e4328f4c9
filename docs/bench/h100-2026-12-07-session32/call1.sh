#!/usr/bin/env bash
# Session 32 call 1: main's tall persistent GEMM at four stages (k) against
# three (s3), GELU and ReLU; then bench.py's alternating rows on main's sets.
cd "$(dirname "$0")/.."
K=.device-s32/k; S=.device-s32/s3
exec > >(tee $OUT/call.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
echo "== gemm_vs_cublas k/s3 gelu relu"
for d in $K $S; do
  timeout 90 python3 bench/gemm_vs_cublas.py --sets ffn-gelu-s16384,ffn-relu-s16384 --kernels $d --bpt-run .device/bpt-run --out $OUT/gemm-$(basename $d).json > $OUT/gemm-$(basename $d).txt 2>&1; echo "$d rc=$?"; grep -E "gemm_sm90" $OUT/gemm-$(basename $d).txt | cut -c1-220
done
echo "== bpt-run alternating"
for s in ffn-gelu-s16384 ffn-relu-s16384; do
  for d in $K $S $K $S; do
    printf "%s %s " $s $d; timeout 30 .device/bpt-run $d/$s.json --no-check --iterations=20 2>&1 | grep -E "^time"
  done
done
echo "== bench.py ffn,block,train,shapes (main)"
timeout 330 python3 bench/bench.py --kernels $K --only ffn,block,train,shapes --max-seconds 8 --out $OUT/bench > $OUT/bench.txt 2>&1; echo "bench rc=$?"
tail -80 $OUT/bench.txt
