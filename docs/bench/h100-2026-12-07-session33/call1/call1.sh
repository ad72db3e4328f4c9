#!/usr/bin/env bash
# Session 33, call 1: where the decode rows' time goes (issue 15's copy-bandwidth bar).
exec > >(tee $OUT/call.log) 2>&1
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv
R=.device/bpt-run; D=.device-s33/dec
echo "== bpt-run timing (median/min ms), plain then graph"
for j in $D/*.json; do
  a=$(timeout 60 $R $j --no-check --iterations=2000 --warmup=200 2>&1 | tail -1)
  g=$(timeout 60 $R $j --no-check --iterations=2000 --warmup=200 --graph 2>&1 | tail -1)
  echo "$(basename $j .json) | $a | graph: $g"
done
echo "== float64 checks of the variant combines"
for s in mqa-w32 gqa-w8 mqa-s1024-w32; do timeout 120 $R $D/$s.json --iterations=3 2>&1 | tail -3; done
echo "== ncu per kernel"
for s in mqa-def mqa-w32 gqa-def gqa-w8 mqa-s1024 gqa-s16 mqa-st4; do
  echo "-- $s"
  timeout 120 ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active \
    --launch-skip 4 --launch-count 2 $R $D/$s.json --no-check --iterations=3 --warmup=0 2>&1 | grep -E "attention_split|gpu__time|dram__|warps_active" 
done
echo "== torch short copies / reads (ms per call, 1000 back to back)"
python3 - <<'PY'
import torch
for mib in (16, 64, 1024):
    n = mib * 2**20 // 2
    x = torch.randn(n, device='cuda', dtype=torch.bfloat16); y = torch.empty_like(x)
    for name, fn in (("copy", lambda: y.copy_(x)), ("sum", lambda: x.sum())):
        for _ in range(20): fn()
        torch.cuda.synchronize()
        a = torch.cuda.Event(enable_timing=True); b = torch.cuda.Event(enable_timing=True)
        reps = 1000 if mib < 1024 else 50
        a.record()
        for _ in range(reps): fn()
        b.record(); b.synchronize()
        ms = a.elapsed_time(b) / reps
        moved = (2 if name == "copy" else 1) * mib * 2**20
        print(f"{name} {mib} MiB: {ms*1000:.2f} us, {moved/ms/1e6:.0f} GB/s")
PY
echo "== python/bpt KernelSet host time per call: old then new"
BPT_RUNTIME_LIB=$PWD/.device/libbpt_runtime.so timeout 120 python3 .device-s33/calls.py .device-s33/old python .device-s33/dec/gqa-def.json .device-s33/dec/block600.json
BPT_RUNTIME_LIB=$PWD/.device/libbpt_runtime.so timeout 120 python3 .device-s33/calls.py python .device-s33/old .device-s33/dec/gqa-def.json .device-s33/dec/block600.json
echo "== GPU tests of python/bpt (runtime.py changed)"
timeout 300 .device/run-gpu-tests.sh --filter 'torch-' 2>&1 | tail -8
