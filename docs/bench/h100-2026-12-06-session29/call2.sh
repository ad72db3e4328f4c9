#!/usr/bin/env bash
# Session 29, call 2: programmatic dependent launch (pdl-bin: runtime with
# BPT_LAUNCH_DEPENDENT; sets whose kernels begin with griddepcontrol.wait).
# float64 checks with it on; then bpt-run times, BPT_DEPENDENT_LAUNCH=0
# (plain launches, same PTX) against 1, alternating.
cd "$(dirname "$0")/.."
B=.device-s29/pdl-bin; D=.device-s29/pdl
export LD_LIBRARY_PATH=$PWD/$B:$LD_LIBRARY_PATH
nvidia-smi --query-gpu=name --format=csv,noheader
echo "== checks (dependent launches on)"
for s in chk-block-2x1000 chk-train-1024 chk-attn-bwd-1000 shape-decode-q1-k4096-gqa shape-ffn-2176-gelu shape-block-600-swiglu-gqa; do
  timeout 120 $B/bpt-run $D/$s.json --iterations=3 > /tmp/c.txt 2>&1; echo "-- $s rc=$? $(tail -1 /tmp/c.txt | cut -c1-150)"; cat /tmp/c.txt >> $OUT/pdl-checks.log
done
timeout 60 $B/bpt-run $D/shape-decode-q1-k4096-gqa.json --graph --iterations=3 2>&1 | tail -1
echo "== times: set | plain | dependent | plain | dependent (median ms)"
for s in shape-decode-q1-k4096-gqa shape-ffn-2176-gelu shape-block-600-swiglu-gqa shape-block-2x1000-gelu ffn-gelu-s16384 ffn-swiglu-s16384 block-s4096 block-s16384 train-s4096 train-s16384; do
  line="$s"
  for round in 1 2; do for v in 0 1; do
    t=$(BPT_DEPENDENT_LAUNCH=$v timeout 60 $B/bpt-run $D/$s.json --no-check --iterations=20 2>&1 | grep -o 'median [0-9.]*' | cut -d' ' -f2)
    line="$line | $t"
  done; done
  echo "$line"
done
echo "== decode with graphs: plain | dependent"
for v in 0 1; do BPT_DEPENDENT_LAUNCH=$v timeout 60 $B/bpt-run $D/shape-decode-q1-k4096-gqa.json --no-check --graph --iterations=50 2>&1 | grep -o 'median [0-9.]*'; done
echo "== bench.py --only block (its own dependent launches through ctypes): plain, dependent"
for v in 0 1; do
  BPT_DEPENDENT_LAUNCH=$v timeout 80 python3 bench/bench.py --kernels $D --only block --max-seconds 1 --out /tmp/bb-$v > /tmp/bb.txt 2>&1
  echo "-- $v rc=$?"; grep -E "^\| [0-9]" /tmp/bb.txt; tail -3 /tmp/bb.txt | grep -i error
done
