#!/usr/bin/env bash
# Session 28, call 4: persistent 256-row GEMM (BPT_GEMM_PERSISTENT sets,
# "pers") against main's tall tiles: float64 checks, sanitizers, GEMM vs
# cuBLAS, bench ffn,block and train.
cd "$(dirname "$0")/.."
export PATH=$PWD/.device:$PATH
nvidia-smi --query-gpu=name --format=csv,noheader
echo "== pers checks"
for s in chk-ffn-gelu-2048 chk-ffn-relu-f16-512 chk-ffn-silu-4096 chk-block-2x1024 chk-train-1024; do
  timeout 90 .device/bpt-run .device-s28/perschk/$s.json --iterations=3 > /tmp/c.txt 2>&1; echo "-- $s rc=$? $(grep -E 'rel|err' /tmp/c.txt | tail -1 | cut -c1-120) $(tail -1 /tmp/c.txt)"
done
for tool in memcheck racecheck; do
  timeout 60 compute-sanitizer --tool $tool .device/bpt-run .device-s28/perschk/chk-ffn-relu-f16-512.json --iterations=1 --warmup=0 2>&1 | tail -1
done
echo "== gemm_vs_cublas warm"
for v in tall pers; do
  timeout 50 python3 bench/gemm_vs_cublas.py --sets ffn-gelu-s16384 --kernels .device-s28/$v --bpt-run .device/bpt-run --out /tmp/g.json > /tmp/g.txt 2>&1
  echo "-- $v rc=$?"; grep "ffn-gelu" /tmp/g.txt | cut -c22-
done
echo "== bench ffn,block"
for v in pers tall; do
  timeout 60 python3 bench/bench.py --kernels .device-s28/$v --only ffn,block --max-seconds 1 --out /tmp/b-$v > /tmp/b.txt 2>&1
  echo "-- $v rc=$?"; grep -E "^\| [0-9]" /tmp/b.txt
done
