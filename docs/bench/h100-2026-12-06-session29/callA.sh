#!/usr/bin/env bash
# Session 29, call A: GPU suite with dependent launches (bundle built with
# bpt-dependent-launch; new: sm90-ffn-tall-tiles.test, runtime unit test
# OnDevice.DependentLaunches), then call2.sh (dependent launch A/B).
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name --format=csv,noheader
echo "== GPU suite"
timeout 220 .device/run-gpu-tests.sh > $OUT/suite.log 2>&1; echo "suite rc=$?"
grep -E "^(FAIL|UNSUP|XFAIL|TIMEOUT)|Passed|Failed|Unsupported|Timed" $OUT/suite.log | tail -15
bash .device-s29/call2.sh
