#!/usr/bin/env bash
# Session 32 call 2: hopper.md version 30 (the activation of tile t in the
# shadow of tile t + 1's first wgmmas, `_po`; v) against main (k).
cd "$(dirname "$0")/.."
K=.device-s32/k; V=.device-s32/v
exec > >(tee $OUT/call.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
echo "== float64 checks (v30)"
for s in ffn-gelu-s16384 ffn-relu-s16384 block-s4096 ffn-swiglu-s16384; do
  timeout 60 .device/bpt-run $V/$s.json --iterations=3 > /tmp/c.txt 2>&1; echo "$s rc=$?"; grep -E "^output|^PASS|^FAIL|bpt-run:|error|^time|rel" /tmp/c.txt | head -6
done
echo "== gemm_vs_cublas k/v gelu relu"
for d in $K $V; do
  timeout 90 python3 bench/gemm_vs_cublas.py --sets ffn-gelu-s16384,ffn-relu-s16384 --kernels $d --bpt-run .device/bpt-run --out $OUT/gemm-$(basename $d).json > $OUT/gemm-$(basename $d).txt 2>&1; echo "$d rc=$?"; grep -E "gemm_sm90" $OUT/gemm-$(basename $d).txt | cut -c1-220
done
echo "== bpt-run alternating"
for s in ffn-gelu-s16384 ffn-relu-s16384 block-s4096 block-s16384; do
  for d in $K $V $K $V; do
    printf "%s %s " $s $d; timeout 30 .device/bpt-run $d/$s.json --no-check --iterations=20 2>&1 | grep -E "^time"
  done
done
echo "== GPU suite (v30 kernels)"
BPT_GPU_TEST_TIMEOUT=90 timeout 230 .device/run-gpu-tests.sh > $OUT/suite.log 2>&1; echo "suite rc=$?"
grep -E "^(FAIL|UNSUP|XFAIL|TIMEOUT)|Passed|Failed|Unsupported|Timed" $OUT/suite.log | tail -15
echo "== bench.py ffn (v30), shapes (main's sets; launches prepared once per allocation)"
cp -r $K/shape-* $V/ 2>/dev/null
timeout 125 python3 -W ignore bench/bench.py --kernels $V --only ffn,shapes --max-seconds 4 --out $OUT/bench > $OUT/bench.txt 2>&1; echo "bench rc=$?"
grep "^|" $OUT/bench.txt | tail -40
