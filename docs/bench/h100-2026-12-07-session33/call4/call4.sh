#!/usr/bin/env bash
# Session 33, call 4: the combine's one merge function (the lane merge's FMA order changed).
exec > >(tee $OUT/call.log) 2>&1
cd "$(dirname "$0")/.."
R=.device/bpt-run; S=.device-s33
timeout 200 .device/run-gpu-tests.sh --filter 'split-kv' 2>&1 | grep -E "FAIL|Passed|Failed"
for s in mqa gqa q16 odd; do timeout 120 $R $S/new3/$s.json --iterations=200 2>&1 | grep -E "relative error|time:|FAIL|rror" | tr '\n' ' '; echo " $s"; done
