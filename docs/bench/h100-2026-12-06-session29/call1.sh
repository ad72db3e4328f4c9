#!/usr/bin/env bash
# Session 29, call 1: GPU suite on main (1dd1290; sm90-ffn-tall-tiles.test
# has not run yet), then the persistent tall GEMM (pers) against main (tall).
cd "$(dirname "$0")/.."
export PATH=$PWD/.device:$PATH
nvidia-smi --query-gpu=name --format=csv,noheader
echo "== pers checks"
for s in chk-ffn-gelu-2048 chk-ffn-relu-f16-1024 chk-ffn-silu-4096 chk-block-2x1024 chk-train-1024; do
  timeout 90 .device/bpt-run .device-s29/perschk/$s.json --iterations=3 > /tmp/c.txt 2>&1; echo "-- $s rc=$? $(grep -iE 'rel|err' /tmp/c.txt | tail -2 | cut -c1-150 | tr '\n' ' ') $(tail -1 /tmp/c.txt)"
  cat /tmp/c.txt >> $OUT/checks.log
done
for tool in memcheck racecheck; do
  timeout 80 compute-sanitizer --tool $tool .device/bpt-run .device-s29/perschk/chk-ffn-relu-f16-1024.json --iterations=1 --warmup=0 2>&1 | tail -1
done
echo "== gemm_vs_cublas warm"
for v in tall pers; do
  timeout 50 python3 bench/gemm_vs_cublas.py --sets ffn-gelu-s16384 --kernels .device-s29/$v --bpt-run .device/bpt-run --out /tmp/g.json > /tmp/g.txt 2>&1
  echo "-- $v rc=$?"; grep "ffn-gelu" /tmp/g.txt | cut -c22-
done
echo "== bench ffn,block,train"
for v in pers tall; do
  timeout 80 python3 bench/bench.py --kernels .device-s29/$v --only ffn,block --max-seconds 1 --out /tmp/b-$v > /tmp/b.txt 2>&1
  echo "-- $v rc=$?"; grep -E "^\| [0-9a-z]" /tmp/b.txt | head -20; cat /tmp/b.txt >> $OUT/bench.log
done
