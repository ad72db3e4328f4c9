#!/usr/bin/env bash
# Session 28, call 3: (1) float64 checks of the warp-arrive variant (one
# empty-barrier arrival a consumer warp, not a thread); (2) GEMM vs cuBLAS
# and bench ffn,block: tall against warp, alternating; (3) ncu source-level
# stall samples of the tall up GEMM.
cd "$(dirname "$0")/.."
export PATH=$PWD/.device:$PATH
nvidia-smi --query-gpu=name --format=csv,noheader
echo "== warp checks"
for s in chk-ffn-gelu-2048 chk-ffn-swiglu-f16-1000 chk-ffn-relu-77 chk-block-2x1024 chk-train-1024; do
  timeout 90 .device/bpt-run .device-s28/warpchk/$s.json --iterations=3 > /tmp/c.txt 2>&1; echo "-- $s rc=$? $(tail -1 /tmp/c.txt)"
done
timeout 60 compute-sanitizer --tool racecheck .device/bpt-run .device-s28/warpchk/chk-ffn-relu-77.json --iterations=1 --warmup=0 2>&1 | tail -1
timeout 60 compute-sanitizer --tool synccheck .device/bpt-run .device-s28/warpchk/chk-ffn-gelu-2048.json --iterations=1 --warmup=0 2>&1 | tail -1
echo "== gemm_vs_cublas warm"
for v in tall warp tall warp; do
  timeout 50 python3 bench/gemm_vs_cublas.py --sets ffn-gelu-s16384 --kernels .device-s28/$v --bpt-run .device/bpt-run --out /tmp/g.json > /tmp/g.txt 2>&1
  echo "-- $v rc=$?"; grep "ffn-gelu" /tmp/g.txt | cut -c22-
done
echo "== bench ffn,block"
for v in warp tall warp tall; do
  timeout 60 python3 bench/bench.py --kernels .device-s28/$v --only ffn,block --max-seconds 1 --out /tmp/b-$v > /tmp/b.txt 2>&1
  echo "-- $v rc=$?"; grep -E "^\| [0-9]" /tmp/b.txt
done
echo "== ncu source stalls, tall up GEMM"
v=tall
timeout 150 ncu -k regex:k2048_gelu --launch-count 1 --cache-control none --clock-control none --section SourceCounters --section WarpStateStats --import-source no --export /tmp/src-$v --force-overwrite .device/bpt-run .device-s28/$v/ffn-gelu-s16384.json --no-check --iterations=1 --warmup=0 > /tmp/ncu-$v.txt 2>&1
echo "-- $v rc=$?"
ncu -i /tmp/src-$v.ncu-rep --page source --csv --print-source sass > /tmp/src-$v.csv 2> /tmp/src-$v.err; echo "page rc=$? $(wc -l < /tmp/src-$v.csv) lines"; head -c 600 /tmp/src-$v.err
python3 .device-s28/stalls.py /tmp/src-$v.csv > $OUT/stalls-$v.txt 2>&1; head -55 $OUT/stalls-$v.txt
gzip -c /tmp/src-$v.csv > $OUT/src-$v.csv.gz
