#!/usr/bin/env bash
# Session 34, call 6: the GEMM epilogues' ex2 in its flush-to-zero form.
exec > >(tee $OUT/call6.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv
echo "== GEMM / FFN / block / linear GPU tests"
.device/run-gpu-tests.sh --filter 'ffn|gemm|linear|block' 2>&1 | grep -E "FAIL|Passed|Failed|Unsupported"
for v in old new new old; do
  echo "== gemm_vs_cublas $v"
  python3 -W ignore bench/gemm_vs_cublas.py --kernels .device-s34/ffn-$v --bpt-run .device/bpt-run --out $OUT/gemm-$v-$RANDOM.json 2>&1 | tail -8
done
