#!/usr/bin/env bash
# Session 34, call 1: the 80-row query blocks of the D 128 backward.
exec > >(tee $OUT/call1.log) 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv
echo "== new and changed GPU tests"
.device/run-gpu-tests.sh --filter 'q80|ragged-kv-mqa|sm90-attention-backward-d128|sanitize-attention-backward-sm90-d128|torch-attention' 2>&1 | tail -25
echo "== SASS spills"
for v in old new; do
  ptxas -arch=sm_90a -v .device-s34/$v/attention-grad-d128-s16384.ptx -o /tmp/$v.cubin 2>&1 | grep -A2 "attention_grad_sm90" | head -3
  cuobjdump -sass /tmp/$v.cubin > $OUT/sass-$v.txt 2>&1; grep -c "STL\|LDL" $OUT/sass-$v.txt
done
echo "== backward A/B (old, new, new, old)"
for v in old new new old; do
  echo "-- $v"
  python3 -W ignore bench/bench.py --kernels .device-s34/$v --only backward --max-seconds 0.5 --out $OUT/bwd-$v-$RANDOM.json 2>&1 | grep "^|"
done
echo "== full GPU suite"
timeout 400 .device/run-gpu-tests.sh 2>&1 | tail -15
