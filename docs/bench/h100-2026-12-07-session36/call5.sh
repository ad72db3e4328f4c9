#!/usr/bin/env bash
# Session 36, call 5: per-instruction SASS with ncu's stall samples for the
# mma.sync backward at S 16k non-causal (D 64 _qs2, D 128 _ps rotated):
# where a step's latency sits, for the next change.
exec > >(tee $OUT/call5.log) 2>&1
for s in b64/attention-grad-d64-s16384 r80-128/attention-grad-d128-s16384; do
  n=$(basename $(dirname $s))
  echo "-- $s"
  timeout 200 ncu --kernel-name regex:attention_grad_sm80_d --launch-count 1 \
    --section SourceCounters --section WarpStateStats --section InstructionStats \
    --page source --print-source sass --csv \
    .device/bpt-run .device-s36/$s.json --no-check --iterations=1 --warmup=0 > $OUT/$n-source.csv 2> $OUT/$n-err.txt
  echo "rc $? lines $(wc -l < $OUT/$n-source.csv)"; head -c 600 $OUT/$n-source.csv; tail -3 $OUT/$n-err.txt
done
