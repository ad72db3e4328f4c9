#!/usr/bin/env bash
# Session 34, call 2: the q80 backward without spills; causal q80 probe.
exec > >(tee $OUT/call2.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv
echo "== q80 GPU tests"
.device/run-gpu-tests.sh --filter 'q80|ragged-kv-mqa|sm90-attention-backward-d128' 2>&1 | grep -E "PASS|FAIL|Passed|Failed"
echo "== causal q80 checks (float64)"
for f in .device-s34/check/*.json; do echo "-- $f"; .device/bpt-run $f --iterations=0 --seed=77 2>&1 | tail -4; done
ptxas -arch=sm_90a -v .device-s34/new/attention-grad-d128-s16384.ptx -o /tmp/new.cubin 2>&1 | grep -A2 "attention_grad_sm90" | tail -1
echo "== non-causal A/B (old, new, new, old); causal (c64, c80, c80, c64)"
for v in old new new old c64 c80 c80 c64; do
  echo "-- $v"
  python3 -W ignore bench/bench.py --kernels .device-s34/$v --only backward --max-seconds 0.5 --out $OUT/bwd2-$v-$RANDOM 2>&1 | grep "^| 128"
done
