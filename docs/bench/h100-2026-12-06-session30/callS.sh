#!/usr/bin/env bash
# Session 30, lean: GPU suite, then float64 checks of three bench-size sets,
# then (time allowing) the up GEMM old vs new.
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name --format=csv,noheader
echo "== GPU suite"
timeout 260 .device/run-gpu-tests.sh > $OUT/suite.log 2>&1; echo "suite rc=$?"
grep -E "^(FAIL|UNSUP|XFAIL|TIMEOUT)|Passed|Failed|Unsupported|Timed" $OUT/suite.log | tail -15
O=.device-s29f/final; N=.device-s30/new; S=.device-s30/shapes
for s in $N/ffn-gelu-s16384 $N/block-s4096 $S/shape-ffn-2176-gelu $N/train-s4096; do
  timeout 60 .device/bpt-run $s.json --iterations=3 > /tmp/c.txt 2>&1; echo "$s rc=$?"; grep -E "^output|^PASS|^FAIL|bpt-run:" /tmp/c.txt | head -8
done
echo "== gemm_vs_cublas old new"
for d in $O $N; do
  timeout 40 python3 bench/gemm_vs_cublas.py --sets ffn-gelu-s16384 --kernels $d --bpt-run .device/bpt-run --out /tmp/g.json > /tmp/g.txt 2>&1; echo "$d"; grep "ffn-gelu" /tmp/g.txt | cut -c22-
done
for s in ffn-gelu-s16384 block-s4096; do
  for d in $O $N $O $N; do
    printf "%s %s " $s $d; timeout 30 .device/bpt-run $d/$s.json --no-check --iterations=20 2>&1 | grep -E "^time"
  done
done
for s in shape-ffn-2176-gelu shape-ffn-4099-silu; do
  for d in $O $S $O $S; do
    printf "%s %s " $s $d; timeout 30 .device/bpt-run $d/$s.json --no-check --iterations=20 2>&1 | grep -E "^time"
  done
done
